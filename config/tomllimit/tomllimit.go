// Package tomllimit refuses, before any TOML parser sees it, text that cannot
// be one of guestdeck's files: too big, nested too deep, or with too many
// tables. BurntSushi/toml spends time and memory quadratic in nesting depth
// (a 200 KB file of "x = [[[[...]]]]" took 24 GB with the position tracking
// config had then), and each table costs it about a kilobyte; Check bounds
// all three in one linear pass. The fleet file (config) and theme files
// (themes) both use it.
package tomllimit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// MaxDepth is how deeply tables and arrays may nest in any guestdeck file.
// Nothing deeper than three levels is valid in one (the deepest a fleet
// file holds is guest = [{tags = ["a"]}]); the limit only decides which
// message a deeper file gets, and keeps the parser's quadratic cost small.
const MaxDepth = 8

// Sentinels for errors.Is on an *Error: which limit was passed.
var (
	ErrTooLarge      = errors.New("file too large")
	ErrTooDeep       = errors.New("nested too deep")
	ErrTooManyTables = errors.New("too many tables")
)

// Limits are what Check enforces. All must be set.
type Limits struct {
	// What names the file in messages: "fleet file", "theme file".
	What     string
	MaxBytes int
	// MaxDepth is how many tables and arrays may enclose a value. Each
	// part of a table header, [[a]] as two (the array and its table), each
	// part but the last of a dotted key, and each [ and { in a value count
	// one.
	MaxDepth int
	// MaxTables is how many tables the file may make: each part of a
	// table header, each part but the last of a dotted key, and each
	// inline table counts one (a dotted key may reuse a table; it is
	// counted anyway).
	MaxTables int
}

// Error is where data first passes a limit. Line and Col are 1-based; Col
// counts bytes, and a leading byte order mark is not part of line 1.
type Error struct {
	Line, Col int
	Msg       string
	// Limit is ErrTooLarge, ErrTooDeep or ErrTooManyTables.
	Limit error
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

func (e *Error) Unwrap() error { return e.Limit }

var bom = []byte("\ufeff")

// ReadFile reads the file at path, but never more than maxBytes+1 bytes of
// it: enough for Check to see that it is too large, without reading all of
// a huge file (or /dev/zero) into memory. Errors are those of package os.
func ReadFile(path string, maxBytes int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(maxBytes)+1))
}

// Check returns an *Error for the first place data passes lim, or nil. It
// does not check syntax (the parser does that next) but understands enough
// TOML (basic, literal and multi-line strings, comments, keys, headers)
// that brackets, braces and dots inside strings and comments do not count.
// It takes time linear in len(data) and memory bounded by lim.MaxDepth.
func Check(data []byte, lim Limits) error {
	if len(data) > lim.MaxBytes {
		line, col := position(data, lim.MaxBytes)
		return &Error{Line: line, Col: col, Limit: ErrTooLarge, Msg: fmt.Sprintf(
			"%s is larger than %s, the limit; it goes on past here", lim.What, size(lim.MaxBytes))}
	}
	s := &scanner{src: data, lim: lim, line: 1}
	if bytes.HasPrefix(data, bom) {
		s.i, s.lineOff = len(bom), len(bom)
	}
	if err := s.scan(); err != nil {
		return err
	}
	return nil
}

// position is the line and column of data[off].
func position(data []byte, off int) (line, col int) {
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	start := bytes.LastIndexByte(before, '\n') + 1
	if start == 0 && bytes.HasPrefix(data, bom) && off >= len(bom) {
		start = len(bom)
	}
	return line, off - start + 1
}

// size writes n bytes as a reader would: "4 MiB", "64 KiB".
func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// count writes n with thousands separators: "100,000".
func count(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// frame is an open array or inline table.
type frame struct {
	table bool // an inline table: a key follows '{' and ','
	depth int  // tables and arrays enclosing what is directly inside it
}

type scanner struct {
	src     []byte
	lim     Limits
	i       int
	line    int // current line, 1-based
	lineOff int // offset of the current line's first column
	stack   []frame
	base    int // depth inside the latest [table] or [[table]] header
	tables  int
}

func (s *scanner) col() int { return s.i - s.lineOff + 1 }

func (s *scanner) newline() {
	s.i++
	s.line++
	s.lineOff = s.i
}

// nest checks a new level of nesting, depth deep, and whether it is a
// table; line and col are where it starts.
func (s *scanner) nest(depth int, table bool, line, col int) *Error {
	if depth > s.lim.MaxDepth {
		return &Error{Line: line, Col: col, Limit: ErrTooDeep, Msg: fmt.Sprintf(
			"tables and arrays nested more than %d deep, the limit for a %s", s.lim.MaxDepth, s.lim.What)}
	}
	if !table {
		return nil
	}
	if s.tables++; s.tables > s.lim.MaxTables {
		return &Error{Line: line, Col: col, Limit: ErrTooManyTables, Msg: fmt.Sprintf(
			"more than %s tables, the limit for a %s", count(s.lim.MaxTables), s.lim.What)}
	}
	return nil
}

// depth is how many tables and arrays enclose the current position when no
// key is being read.
func (s *scanner) depth() int {
	if n := len(s.stack); n > 0 {
		return s.stack[n-1].depth
	}
	return s.base
}

func (s *scanner) scan() *Error {
	var (
		lineStart = true  // top level, nothing but blanks since the line began
		wantKey   = false // just after '{' or ',' in an inline table
		inKey     = false // reading a key, up to its '='
		keyBase   int     // depth where the key started
		dots      int     // dots in the key so far
		keyLine   int
		keyCol    int
		cur       = 0 // depth of the value being read
	)
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch c {
		case '\n':
			s.newline()
			if len(s.stack) == 0 {
				lineStart, inKey, cur = true, false, s.base
			}
			continue
		case ' ', '\t', '\r':
			s.i++
			continue
		case '#':
			if j := bytes.IndexByte(s.src[s.i:], '\n'); j >= 0 {
				s.i += j
			} else {
				s.i = len(s.src)
			}
			continue
		}
		if lineStart {
			lineStart = false
			if c == '[' {
				if err := s.header(); err != nil {
					return err
				}
				cur = s.base
				continue
			}
			wantKey = true
		}
		if wantKey {
			wantKey = false
			if c != '}' {
				inKey, keyBase, dots, keyLine, keyCol = true, s.depth(), 0, s.line, s.col()
			}
		}
		switch c {
		case '"', '\'':
			s.skipString(c)
			continue
		case '.':
			if inKey {
				dots++
				if err := s.nest(keyBase+dots, true, keyLine, keyCol); err != nil {
					return err
				}
			}
		case '=':
			if inKey {
				inKey, cur = false, keyBase+dots
			}
		case '[', '{':
			if err := s.nest(cur+1, c == '{', s.line, s.col()); err != nil {
				return err
			}
			cur++
			s.stack = append(s.stack, frame{table: c == '{', depth: cur})
			wantKey, inKey = c == '{', false
		case ']', '}':
			if n := len(s.stack); n > 0 {
				s.stack = s.stack[:n-1]
			}
			cur = s.depth()
		case ',':
			if n := len(s.stack); n > 0 {
				cur = s.stack[n-1].depth
				wantKey = s.stack[n-1].table
			}
		}
		s.i++
	}
	return nil
}

// header reads a [table] or [[table]] header and sets base.
func (s *scanner) header() *Error {
	line, col := s.line, s.col()
	s.i++ // '['
	d := 1
	if s.i < len(s.src) && s.src[s.i] == '[' {
		s.i++
		d = 2 // an array, and the table that is its latest element
	}
	if err := s.nest(d, true, line, col); err != nil {
		return err
	}
	for s.i < len(s.src) {
		switch c := s.src[s.i]; c {
		case '"', '\'':
			s.skipString(c)
		case '.':
			d++
			if err := s.nest(d, true, line, col); err != nil {
				return err
			}
			s.i++
		case ']':
			s.i++
			if d >= 2 && s.i < len(s.src) && s.src[s.i] == ']' {
				s.i++
			}
			s.base = d
			return nil
		case '\n', '#':
			// Not a header TOML accepts; the parser will say so.
			s.base = d
			return nil
		default:
			s.i++
		}
	}
	s.base = d
	return nil
}

// skipString moves past a string starting at s.i with quote q: basic ("),
// literal ('), or their multi-line forms. An unterminated one-line string
// stops before the line end, so line counting stays right.
func (s *scanner) skipString(q byte) {
	triple := []byte{q, q, q}
	if bytes.HasPrefix(s.src[s.i:], triple) {
		s.i += 3
		for s.i < len(s.src) {
			switch c := s.src[s.i]; {
			case c == '\n':
				s.newline()
			case c == '\\' && q == '"':
				s.i++ // the escaped byte is skipped below, unless it is a line end
				if s.i < len(s.src) && s.src[s.i] != '\n' {
					s.i++
				}
			case c == q && bytes.HasPrefix(s.src[s.i:], triple):
				s.i += 3
				// Up to two more quotes are content right before the delimiter.
				for n := 0; n < 2 && s.i < len(s.src) && s.src[s.i] == q; n++ {
					s.i++
				}
				return
			default:
				s.i++
			}
		}
		return
	}
	s.i++
	for s.i < len(s.src) {
		switch c := s.src[s.i]; {
		case c == '\n':
			return
		case c == '\\' && q == '"':
			s.i++
			if s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		case c == q:
			s.i++
			return
		default:
			s.i++
		}
	}
}
