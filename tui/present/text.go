// Package present is the one place where what a guest says becomes terminal
// text. A guest is untrusted: whoever is root in it controls every string its
// agent returns, and a string printed raw can drive the operator's terminal
// (set its title, write the clipboard with OSC 52, move the cursor, reorder
// what is shown with bidi overrides) or, at 85 MB, drown a table. Text and
// Block make such strings visible and harmless; the guest helpers (OSName,
// Addrs, Reason, ...) are the views of a guest that the command line and the
// dashboard share.
//
// The rule for callers: JSON output carries the exact strings (encode them
// with SafeJSON when they go to a terminal); everything else shown to a
// person goes through Text, Block or Cell first, and is styled afterwards.
//
// present imports fleet and agentclient and nothing of tui, so both
// cmd/guestdeck and tui (and tui/browser) can use it; fleet and agentclient
// must not import it.
package present

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Ellipsis ends text cut to fit.
const Ellipsis = "…"

// bytesPerCell bounds how much of a string Text reads for each cell it may
// show: enough for wide CJK (3 bytes per 2 cells) and a few combining marks
// per character, and it keeps Text's cost proportional to the width asked
// for, not to the length of the string.
const bytesPerCell = 16

// Text returns s as one line of terminal text at most max cells wide
// (max <= 0: no cap). Every rune a terminal would act on or not show is
// replaced by a visible escape in Go syntax: C0 controls and DEL (\x1b, \n,
// \t, \r), C1 controls (\u009b), bidi overrides, embeddings, isolates and
// marks (\u202e, \u2066, \u200f, \u061c), other format characters (zero-width
// space and joiners, U+FEFF, soft hyphen, tag characters), line and paragraph
// separators, non-characters, Hangul fillers, and bytes that are not UTF-8
// (\xff). An escape sequence so loses its ESC and shows as plain text.
// Backslashes are left alone, so Text(Text(s, 0), 0) == Text(s, 0) and a
// Windows DOMAIN\user reads as written.
//
// Text longer than max is cut to max-1 cells plus an ellipsis, by display
// cells (grapheme clusters, wide characters count two). Text reads at most
// about 16*max bytes of s, so an 85 MB name costs what a short one does.
// Clean text that fits is returned as is, without allocating.
func Text(s string, max int) string {
	// The common case: printable ASCII.
	i, lim := 0, len(s)
	if max > 0 && lim > max {
		lim = max + 1
	}
	for i < lim && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	switch {
	case max > 0 && i > max:
		return s[:max-1] + Ellipsis
	case i == len(s):
		return s
	}
	return slowText(s, i, max)
}

// slowText is Text for s whose first i bytes are printable ASCII and whose
// byte i is not.
func slowText(s string, i, max int) string {
	// budget bounds the bytes read and written; unlimited without a cap.
	budget, outBudget := len(s), -1
	if max > 0 {
		outBudget = bytesPerCell*max + bytesPerCell
		budget = min(len(s), outBudget)
	}
	// Clean non-ASCII text (accents, CJK) is returned as is when it fits.
	j := i
	for j < budget {
		r, size := utf8.DecodeRuneInString(s[j:])
		if unsafe(r, size) {
			break
		}
		j += size
	}
	if j == len(s) && clustersAgree(s) {
		if max <= 0 || ansi.StringWidth(s) <= max {
			return s
		}
		return cut(s, max)
	}
	var b strings.Builder
	if outBudget > 0 {
		b.Grow(min(outBudget, 2*len(s), max) + 16)
	} else {
		b.Grow(len(s) + 16)
	}
	b.WriteString(s[:j])
	// ascii counts the printable ASCII written, escapes included: each is
	// a cell of its own, so past max the text is cut whatever follows, and
	// reading on (16 bytes a cell, for combining marks) would only cost.
	// Wrap asks for thousands of cells; 16 times that of a guest's escapes
	// was megabytes escaped and cut again on every frame.
	ascii := i
	for j < budget && (outBudget < 0 || b.Len() < outBudget) && (max <= 0 || ascii <= max) {
		r, size := utf8.DecodeRuneInString(s[j:])
		n := b.Len()
		writeRune(&b, s[j:], r, size)
		if r < 0x80 || unsafe(r, size) {
			ascii += b.Len() - n
		}
		j += size
	}
	out := agree(b.String())
	if max <= 0 {
		return out
	}
	if j < len(s) {
		// Cut short by the budget: say so even when what was read fits.
		return truncate(out, max-1) + Ellipsis
	}
	if ansi.StringWidth(out) > max {
		return cut(out, max)
	}
	return out
}

// cut shortens safe text to max cells, the last one an ellipsis.
func cut(s string, max int) string {
	return truncate(s, max-1) + Ellipsis
}

// truncate is ansi.Truncate(s, n, "") for safe text; printable ASCII (what
// escapes are) is cut by slicing, without copying it byte by byte.
func truncate(s string, n int) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return ansi.Truncate(s, n, "")
		}
	}
	return s[:min(n, len(s))]
}

// Block returns multi-line text (file contents, a read's result) for the
// terminal: newlines are kept, tabs expand to spaces at tabWidth stops
// (tabWidth <= 0 shows them as \t), the CR of a CRLF is dropped, and every
// other rune Text escapes is escaped the same way. It does not cap width or
// length: the caller bounds what it reads. Clean text without tabs or CRs is
// returned as is.
func Block(s string, tabWidth int) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c < 0x7f || c == '\n' {
			i++
			continue
		}
		if c < 0x80 {
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unsafe(r, size) {
			break
		}
		i += size
	}
	if i == len(s) && clustersAgree(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	col := i - (strings.LastIndexByte(s[:i], '\n') + 1) // approximate: counts bytes
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n':
			b.WriteByte('\n')
			col = 0
		case r == '\t' && tabWidth > 0:
			n := tabWidth - col%tabWidth
			b.WriteString(strings.Repeat(" ", n))
			col += n
		case r == '\r' && i+1 < len(s) && s[i+1] == '\n':
		case unsafe(r, size):
			n := b.Len()
			writeRune(&b, s[i:], r, size)
			col += b.Len() - n
		default:
			b.WriteString(s[i : i+size])
			col++ // tab stops after wide characters are approximate
		}
		i += size
	}
	return agree(b.String())
}

// Clean reports whether Text would show s unchanged (ignoring width).
func Clean(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unsafe(r, size) {
			return false
		}
		i += size
	}
	return clustersAgree(s)
}

// The dashboard measures text by grapheme clusters (ansi.StringWidth,
// Truncate, Wrap), but Bubble Tea's renderer and most terminals (tmux,
// xterm, VTE) count code points (wcwidth) unless the terminal reports
// grapheme support (mode 2027). Where the two disagree a guest could
// shift the columns of its row: "a" and a skin-tone modifier is one cell
// to the one and three to the other, a character and VS16 two and one, a
// regional indicator alone two and one, a spacing mark after a letter
// none and one. Text therefore escapes such clusters: every cluster it
// returns is as wide either way.

// clustersAgree reports whether every grapheme cluster of s is as wide by
// clusters as by wcwidth. Printable ASCII not followed by a non-ASCII byte
// is its own cluster and agrees.
func clustersAgree(s string) bool {
	for len(s) > 0 {
		if s[0] < 0x80 && (len(s) == 1 || s[1] < 0x80) {
			s = s[1:]
			continue
		}
		c, w := ansi.FirstGraphemeCluster(s, ansi.GraphemeWidth)
		if c == "" {
			return true
		}
		if w != ansi.StringWidthWc(c) {
			return false
		}
		s = s[len(c):]
	}
	return true
}

// agree returns safe text s with every cluster whose widths disagree
// (clustersAgree) written as its first rune, when that alone agrees, and
// the visible escapes of the rest: "a\U0001f3fb", "☺\ufe0f".
func agree(s string) string {
	if clustersAgree(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	for len(s) > 0 {
		if s[0] < 0x80 && (len(s) == 1 || s[1] < 0x80) {
			b.WriteByte(s[0])
			s = s[1:]
			continue
		}
		c, w := ansi.FirstGraphemeCluster(s, ansi.GraphemeWidth)
		if c == "" {
			break
		}
		s = s[len(c):]
		if w == ansi.StringWidthWc(c) {
			b.WriteString(c)
			continue
		}
		for k, r := range c {
			size := utf8.RuneLen(r)
			if k == 0 && ansi.StringWidth(c[:size]) == ansi.StringWidthWc(c[:size]) {
				b.WriteString(c[:size])
				continue
			}
			writeEscape(&b, c[k:], r, size)
		}
	}
	return b.String()
}

// unsafe reports whether rune r (size bytes in the string) must not reach a
// terminal as it is.
func unsafe(r rune, size int) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x80:
		return false
	case r < 0xa0: // C1 controls: 0x9b is CSI on terminals that take 8-bit controls
		return true
	case r == utf8.RuneError:
		return size == 1 // a byte that is not UTF-8; a real U+FFFD is fine
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe: // non-characters
		return true
	case r == 0x115f || r == 0x1160 || r == 0x3164 || r == 0xffa0: // Hangul fillers: blank letters
		return true
	case r == 0x034f: // combining grapheme joiner: invisible
		return true
	}
	// Format characters: bidi controls (U+061C, U+200E/F, U+202A-E,
	// U+2066-9), zero-width space, joiners, word joiner, U+FEFF, soft
	// hyphen, interlinear annotations, tag characters.
	return unicode.Is(unicode.Cf, r)
}

const hexDigits = "0123456789abcdef"

// writeRune writes the visible escape of unsafe rune r, the first size
// bytes of s.
func writeRune(b *strings.Builder, s string, r rune, size int) {
	if !unsafe(r, size) {
		b.WriteString(s[:size])
		return
	}
	writeEscape(b, s, r, size)
}

// writeEscape writes the visible escape of rune r, the first size bytes
// of s, in Go syntax.
func writeEscape(b *strings.Builder, s string, r rune, size int) {
	switch {
	case r == '\n':
		b.WriteString(`\n`)
	case r == '\t':
		b.WriteString(`\t`)
	case r == '\r':
		b.WriteString(`\r`)
	case r == utf8.RuneError && size == 1:
		writeHex(b, `\x`, uint32(s[0]), 2)
	case r < 0x80:
		writeHex(b, `\x`, uint32(r), 2)
	case r <= 0xffff:
		writeHex(b, `\u`, uint32(r), 4)
	default:
		writeHex(b, `\U`, uint32(r), 8)
	}
}

func writeHex(b *strings.Builder, prefix string, v uint32, digits int) {
	b.WriteString(prefix)
	for k := digits - 1; k >= 0; k-- {
		b.WriteByte(hexDigits[v>>(4*k)&0xf])
	}
}
