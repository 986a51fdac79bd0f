package browser

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"

	"github.com/guestdeck/guestdeck/tui/present"
)

// maxMatches bounds the highlights one search sets.
const maxMatches = 10000

// fileView is an open file: text or a hex dump in a viewport, with search.
type fileView struct {
	path      string
	size      int64 // whole file, -1 unknown
	shown     int64 // bytes rendered
	binary    bool
	truncated bool // the file is longer than what was read

	content string // rendered, plain (no escapes): what search runs over
	vp      viewport.Model

	query      string
	matches    [][]int
	matchLines []int // line of each match's start
	cur        int   // index of the current match, -1 none
}

func newFileView(p string, data []byte, size int64, truncated bool, limit int64, st Styles) *fileView {
	v := &fileView{path: p, size: size, truncated: truncated, cur: -1}
	v.binary = isBinary(data)
	if v.binary {
		// A hex line is about 4.5 times its bytes: show less of a binary.
		n := min(int64(len(data)), max(limit/4, 16))
		if n < int64(len(data)) {
			v.truncated = true
		}
		data = data[:n]
		v.content = hexDump(data)
	} else {
		v.content = renderText(data)
	}
	v.shown = int64(len(data))
	v.vp = viewport.New()
	km := viewport.DefaultKeyMap()
	// d and u are download and upload here, not half pages.
	km.HalfPageDown = key.NewBinding(key.WithKeys("ctrl+d"))
	km.HalfPageUp = key.NewBinding(key.WithKeys("ctrl+u"))
	km.PageDown = key.NewBinding(key.WithKeys("pgdown", "space", "f", "ctrl+f"))
	km.PageUp = key.NewBinding(key.WithKeys("pgup", "b", "ctrl+b"))
	v.vp.KeyMap = km
	v.vp.HighlightStyle = st.Match
	v.vp.SelectedHighlightStyle = st.Current
	v.vp.SetContent(v.content)
	return v
}

func (v *fileView) resize(w, h int) {
	v.vp.SetWidth(max(w, 1))
	v.vp.SetHeight(max(h, 1))
}

// note describes what is shown, and says so when it is not the whole file.
func (v *fileView) note() string {
	kind := "text"
	if v.binary {
		kind = "binary, hex"
	}
	if !v.truncated {
		return fmt.Sprintf("%s, %s", kind, formatSize(v.shown))
	}
	of := "of a larger file"
	if v.size > 0 {
		of = "of " + formatSize(v.size)
	}
	return fmt.Sprintf("%s: showing first %s %s; use d to download the whole file", kind, formatSize(v.shown), of)
}

// search highlights every match of q (case-insensitive unless q has an
// upper-case letter) and moves to the first at or below the top line.
func (v *fileView) search(q string) {
	v.query, v.matches, v.matchLines, v.cur = q, nil, nil, -1
	v.vp.ClearHighlights()
	if q == "" {
		return
	}
	expr := regexp.QuoteMeta(q)
	if !hasUpper(q) {
		expr = "(?i)" + expr
	}
	re := regexp.MustCompile(expr)
	v.matches = re.FindAllStringIndex(v.content, maxMatches)
	if len(v.matches) == 0 {
		return
	}
	v.matchLines = make([]int, len(v.matches))
	line, last := 0, 0
	for i, mt := range v.matches {
		line += strings.Count(v.content[last:mt[0]], "\n")
		last = mt[0]
		v.matchLines[i] = line
	}
	v.vp.SetHighlights(v.matches)
	v.sync()
	if v.cur < 0 {
		v.vp.HighlightNext() // nothing below the top: select the first
		v.cur = 0
	}
}

// sync mirrors the viewport's choice of current match, which it remakes on
// every scroll: the first match on or after the top line, or none.
func (v *fileView) sync() {
	v.cur = -1
	for i, l := range v.matchLines {
		if l >= v.vp.YOffset() {
			v.cur = i
			return
		}
	}
}

func hasUpper(s string) bool {
	for _, r := range s {
		if unicode.IsUpper(r) {
			return true
		}
	}
	return false
}

// next moves to the next (d > 0) or previous match.
func (v *fileView) next(d int) {
	n := len(v.matches)
	if n == 0 {
		return
	}
	if d > 0 {
		v.cur = (v.cur + 1) % n
		v.vp.HighlightNext()
	} else {
		v.cur = (v.cur - 1 + n) % n
		v.vp.HighlightPrevious()
	}
}

func (v *fileView) matchNote() string {
	switch {
	case v.query == "":
		return v.note()
	case len(v.matches) == 0:
		return fmt.Sprintf("%q: no match", v.query)
	case v.cur < 0:
		return fmt.Sprintf("%q: %d matches above (n next, N previous)", v.query, len(v.matches))
	case len(v.matches) == maxMatches:
		return fmt.Sprintf("%q: match %d of %d+ (n next, N previous)", v.query, v.cur+1, maxMatches)
	}
	return fmt.Sprintf("%q: match %d of %d (n next, N previous)", v.query, v.cur+1, len(v.matches))
}

// isBinary looks at the first chunk: a NUL byte, invalid UTF-8 or more
// than one control byte in ten means binary.
func isBinary(data []byte) bool {
	head := data[:min(len(data), 64<<10)]
	if strings.IndexByte(string(head), 0) >= 0 {
		return true
	}
	// A multi-byte character may be cut at the end of the chunk.
	for i := 1; i <= 3 && i <= len(head); i++ {
		if utf8.RuneStart(head[len(head)-i]) {
			if !utf8.FullRune(head[len(head)-i:]) {
				head = head[:len(head)-i]
			}
			break
		}
	}
	if !utf8.Valid(head) {
		return true
	}
	// Valid UTF-8 can still be no text: "\x7fELF" is four ASCII bytes.
	// Text has a stray control now and then (a bell, a colour escape, shown
	// escaped); past one byte in ten it is data.
	ctl := 0
	for _, c := range head {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7f {
			ctl++
		}
	}
	return ctl*10 > len(head)
}

// renderText makes file text safe for the terminal (present.Block): tabs
// expanded, CR of CRLF dropped, controls, bidi and invisible characters
// shown as escapes (\x1b, \u202e) so a file cannot drive the terminal.
func renderText(data []byte) string {
	return strings.TrimSuffix(present.Block(string(data), 8), "\n")
}

// hexDump renders data like hexdump -C.
func hexDump(data []byte) string {
	var b strings.Builder
	b.Grow(len(data)/16*78 + 80)
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		fmt.Fprintf(&b, "%08x ", off)
		for i := range 16 {
			if i == 8 {
				b.WriteByte(' ')
			}
			if i < len(line) {
				fmt.Fprintf(&b, " %02x", line[i])
			} else {
				b.WriteString("   ")
			}
		}
		b.WriteString("  |")
		for _, c := range line {
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteString("|")
		if off+16 < len(data) {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// formatSize prints bytes in binary units (present.Size).
func formatSize(n int64) string { return present.Size(n) }
