package present

import (
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Cell is guest text s escaped and cut or padded to exactly w cells, right
// aligned when right is set: one table cell.
func Cell(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	return Pad(Text(s, w), w, right)
}

// Fit cuts s, already safe and possibly styled, to at most w cells with an
// ellipsis. It is for lines the program composed (escaped guest text plus
// styling), never for raw guest text: use Text for that.
func Fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, Ellipsis)
}

// Pad cuts s (safe, possibly styled) to w cells and pads it with spaces to
// exactly w, on the left when right is set.
func Pad(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	sw := Width(s)
	if sw > w {
		s = ansi.Truncate(s, w, Ellipsis)
		sw = Width(s)
	}
	pad := strings.Repeat(" ", w-sw)
	if right {
		return pad + s
	}
	return s + pad
}

// Width is the display width of safe, possibly styled text; printable ASCII
// is counted without the Unicode tables.
func Width(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] < 0x20 {
			return ansi.StringWidth(s)
		}
	}
	return len(s)
}

// Plural is n and the noun: "1 guest", "3 guests", "2 entries".
func Plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	if l := len(one); l > 1 && one[l-1] == 'y' && !strings.ContainsRune("aeiou", rune(one[l-2])) {
		return strconv.Itoa(n) + " " + one[:l-1] + "ies"
	}
	return strconv.Itoa(n) + " " + one + "s"
}

// Size is a byte count in binary units: "512 B", "1.5 KiB", "12 KiB".
func Size(n int64) string { return agentclient.FormatBytes(n) }

// SafeJSON makes encoded JSON safe for a terminal without changing what it
// decodes to: encoding/json escapes C0 controls and U+2028/9 in strings but
// writes DEL, C1 controls, bidi and other format characters raw, so a
// `status --json` read on a terminal could still drive it. Those runes can
// only be inside strings, where \uXXXX means the same rune. Bytes that are
// not UTF-8 (encoding/json never writes them) become \ufffd. Clean input is
// returned as is.
func SafeJSON(b []byte) []byte {
	i := 0
	for i < len(b) {
		if b[i] < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if unsafe(r, size) {
			break
		}
		i += size
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	out = append(out, b[:i]...)
	for i < len(b) {
		c := b[i]
		if c < 0x7f {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case !unsafe(r, size):
			out = append(out, b[i:i+size]...)
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...)
		case r > 0xffff:
			hi, lo := utf16Pair(r)
			out = appendU(appendU(out, hi), lo)
		default:
			out = appendU(out, r)
		}
		i += size
	}
	return out
}

func utf16Pair(r rune) (hi, lo rune) {
	r -= 0x10000
	return 0xd800 + r>>10&0x3ff, 0xdc00 + r&0x3ff
}

func appendU(b []byte, r rune) []byte {
	b = append(b, `\u`...)
	for k := 3; k >= 0; k-- {
		b = append(b, hexDigits[r>>(4*k)&0xf])
	}
	return b
}

// Wrap is guest text s escaped (Text) and wrapped at spaces into lines of
// at most w cells, long words broken, at most lines lines: the last line
// of text that does not fit ends in an ellipsis. It is for reading a whole
// message (an error in the detail pane) where a cell would cut it. Like
// Text it reads about 16 bytes of s per cell shown, however long s is.
func Wrap(s string, w, lines int) []string {
	if w <= 0 || lines <= 0 {
		return nil
	}
	t := Text(s, w*lines)
	// Wrap's hyphen breakpoint would split "guest-sync-delimited"; a space
	// breaks first, and a word longer than the line still breaks.
	var out []string
	for l := range strings.SplitSeq(ansi.Wrap(t, w, ""), "\n") {
		// ansi.Wrap leaves a run of hyphens ("----", "a-b-c-…") past the
		// width: hard-wrap what it left too wide.
		if Width(l) > w {
			l = ansi.Hardwrap(l, w, true)
		}
		for p := range strings.SplitSeq(l, "\n") {
			out = append(out, strings.TrimRight(p, " "))
		}
		if len(out) > lines {
			break
		}
	}
	if len(out) > lines {
		out = out[:lines]
		out[lines-1] = Fit(out[lines-1]+" "+Ellipsis, w)
	}
	return out
}

// Columns writes rows of cells, each safe text (Text, Cell), as columns:
// every cell but a row's last is padded with spaces to the widest in its
// column plus gap. Widths are display cells: text/tabwriter counts runes,
// so a guest's wide characters or combining marks moved every column after
// its cell on its row, and widened that column for all.
func Columns(w io.Writer, rows [][]string, gap int) error {
	var widths []int
	for _, r := range rows {
		for i, c := range r[:max(len(r)-1, 0)] {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], Width(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.Reset()
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-Width(c)+gap))
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}
