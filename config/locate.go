package config

import (
	"strconv"
	"strings"
)

// BurntSushi/toml keeps each key's position private, so error messages about a
// decoded value ("interval = 5") would only know the key, not where it is.
// locate re-reads the (already syntax-checked) source and records where every
// key and value starts, addressed by its full path with array indices:
// "host\x001\x00uri" is the uri of the second [[host]].

// maxTracked is the longest path locate records. The decoder asks for
// nothing deeper than an element of an array in a [[host]] or [[guest]]
// (host, 0, include, 2); leaving deeper paths out keeps the cost of each
// value constant, so locate is linear in the file however deeply it nests.
const maxTracked = 4

// pos is a 1-based line and byte column.
type pos struct{ Line, Col int }

// spot is where a key and its value start in the source.
type spot struct{ Key, Val pos }

// positions are the spots locate found.
type positions struct {
	// keys holds keys, tables and the tables and arrays inside arrays.
	keys map[string]spot
	// elems holds where each element of an array starts, by the array's
	// path: one slice per array rather than one map entry per element.
	elems map[string][]pos
}

// at returns the spot of a path; zero when unknown.
func (p *positions) at(segs ...string) spot {
	if s, ok := p.keys[pathKey(segs...)]; ok {
		return s
	}
	if n := len(segs); n > 0 {
		if i, err := strconv.Atoi(segs[n-1]); err == nil && i >= 0 {
			if e := p.elems[pathKey(segs[:n-1]...)]; i < len(e) {
				return spot{Key: e[i], Val: e[i]}
			}
		}
	}
	return spot{}
}

// pathKey joins path segments into a map key; indices are decimal segments.
func pathKey(segs ...string) string { return strings.Join(segs, "\x00") }

// join returns a new path: base followed by more, never sharing base's array.
func join(base []string, more ...string) []string {
	return append(append(make([]string, 0, len(base)+len(more)), base...), more...)
}

// child is join for the locator: nil (not tracked) when base is untracked
// or the result would be longer than maxTracked.
func child(base []string, more ...string) []string {
	if base == nil || len(base)+len(more) > maxTracked {
		return nil
	}
	return join(base, more...)
}

type locator struct {
	src  string
	i    int
	line int
	col  int
	positions
	// aot counts the [[table]] headers seen so far, by path key.
	aot map[string]int
}

// locate maps every key path in src, up to maxTracked segments, to its
// position. It never fails: on anything it does not understand it stops,
// and callers fall back to a position-less message.
func locate(src string) *positions {
	l := &locator{src: src, line: 1, col: 1, aot: map[string]int{},
		positions: positions{keys: map[string]spot{}, elems: map[string][]pos{}}}
	if strings.HasPrefix(src, "\ufeff") {
		l.i = len("\ufeff") // a byte order mark is not part of line 1's columns
	}
	l.document()
	return &l.positions
}

func (l *locator) eof() bool { return l.i >= len(l.src) }

func (l *locator) peek() byte {
	if l.eof() {
		return 0
	}
	return l.src[l.i]
}

func (l *locator) has(s string) bool { return strings.HasPrefix(l.src[l.i:], s) }

func (l *locator) advance() {
	if l.eof() {
		return
	}
	if l.src[l.i] == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	l.i++
}

func (l *locator) skip(n int) {
	for ; n > 0; n-- {
		l.advance()
	}
}

func (l *locator) here() pos { return pos{l.line, l.col} }

// blank skips spaces and tabs, and with newlines also line ends and comments.
func (l *locator) blank(newlines bool) {
	for !l.eof() {
		switch c := l.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			l.advance()
		case c == '#':
			if !newlines {
				return
			}
			for !l.eof() && l.peek() != '\n' {
				l.advance()
			}
		case c == '\n' && newlines:
			l.advance()
		default:
			return
		}
	}
}

func (l *locator) document() {
	table := []string{} // the root: tracked, and empty
	for {
		start := l.i
		l.blank(true)
		if l.eof() {
			return
		}
		if l.peek() == '[' {
			table = l.header()
		} else if !l.keyValue(table) {
			return
		}
		if l.i == start {
			return // no progress: not TOML we understand
		}
	}
}

// keyValue reads key = value in the table at base (nil: not tracked).
func (l *locator) keyValue(base []string) bool {
	at := l.here()
	segs := l.key()
	if segs == nil {
		return false
	}
	l.blank(false)
	if l.peek() != '=' {
		return false
	}
	l.advance()
	l.blank(false)
	l.value(l.prefixes(base, segs, at), at)
	return true
}

// prefixes records the tables a dotted key's leading parts name, where the
// first key to name each one starts, and returns the key's full path (nil
// when not tracked).
func (l *locator) prefixes(base, segs []string, at pos) []string {
	for n := 1; n < len(segs); n++ {
		p := child(base, segs[:n]...)
		if p == nil {
			return nil
		}
		l.first(p, at)
	}
	return child(base, segs...)
}

// first records at as the spot of path unless it has one already.
func (l *locator) first(path []string, at pos) {
	if k := pathKey(path...); l.keys[k] == (spot{}) {
		l.keys[k] = spot{Key: at, Val: at}
	}
}

// header reads [a.b] or [[a.b]] and returns the table's full path (nil
// when it is too deep to track).
func (l *locator) header() []string {
	at := l.here()
	array := l.has("[[")
	if array {
		l.skip(2)
	} else {
		l.skip(1)
	}
	l.blank(false)
	segs := l.key()
	l.blank(false)
	if array {
		l.skip(2)
	} else {
		l.skip(1)
	}
	// A header names tables inside the latest element of any array of
	// tables on its way, e.g. [host.ssh] after [[host]].
	var path, plain []string
	for n, s := range segs {
		if n >= maxTracked {
			return nil // its leading tables are recorded; the rest is too deep
		}
		path = append(path, s)
		plain = append(plain, s)
		k := pathKey(plain...)
		last := n == len(segs)-1
		if last && array {
			if len(path) <= maxTracked {
				l.first(path, at) // the array: where its first table is
			}
			idx := l.aot[k]
			l.aot[k] = idx + 1
			path = append(path, strconv.Itoa(idx))
		} else if c, ok := l.aot[k]; ok {
			path = append(path, strconv.Itoa(c-1))
		}
		if len(path) > maxTracked {
			return nil
		}
		if !last {
			l.first(path, at)
		}
	}
	l.keys[pathKey(path...)] = spot{Key: at, Val: at}
	return path
}

// key reads a dotted key of bare and quoted parts.
func (l *locator) key() []string {
	var segs []string
	for {
		l.blank(false)
		var s string
		switch {
		case l.peek() == '"':
			s = l.basicString()
		case l.peek() == '\'':
			l.advance()
			b := l.i
			for !l.eof() && l.peek() != '\'' && l.peek() != '\n' {
				l.advance()
			}
			s = l.src[b:l.i]
			l.advance()
		default:
			b := l.i
			for !l.eof() && isBare(l.peek()) {
				l.advance()
			}
			if b == l.i {
				return segs
			}
			s = l.src[b:l.i]
		}
		segs = append(segs, s)
		l.blank(false)
		if l.peek() != '.' {
			return segs
		}
		l.advance()
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// basicString reads a one-line "..." string and returns its content, with
// simple escapes resolved (enough to name a quoted key).
func (l *locator) basicString() string {
	l.advance()
	var b strings.Builder
	for !l.eof() && l.peek() != '"' && l.peek() != '\n' {
		if l.peek() == '\\' {
			l.advance()
			switch l.peek() {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(l.peek())
			}
			l.advance()
			continue
		}
		b.WriteByte(l.peek())
		l.advance()
	}
	l.advance()
	return b.String()
}

// value records where the value of the key at path (nil: not tracked)
// starts, and skips over it.
func (l *locator) value(path []string, at pos) {
	if path != nil {
		l.keys[pathKey(path...)] = spot{Key: at, Val: l.here()}
	}
	l.skipValue(path)
}

// skipValue skips a value, descending into arrays and inline tables to
// record what is inside under path (nil: nothing).
func (l *locator) skipValue(path []string) {
	switch {
	case l.has(`"""`):
		l.multiline(`"""`, true)
	case l.has(`'''`):
		l.multiline(`'''`, false)
	case l.peek() == '"':
		l.basicString()
	case l.peek() == '\'':
		l.advance()
		for !l.eof() && l.peek() != '\'' && l.peek() != '\n' {
			l.advance()
		}
		l.advance()
	case l.peek() == '[':
		l.advance()
		var elems []pos
		for n := 0; ; n++ {
			l.blank(true)
			if l.eof() || l.peek() == ']' {
				break
			}
			start := l.i
			var inner []string // only arrays and tables have insides to record
			if path != nil {
				elems = append(elems, l.here())
				if c := l.peek(); c == '[' || c == '{' {
					inner = child(path, strconv.Itoa(n))
				}
			}
			l.skipValue(inner)
			l.blank(true)
			if l.peek() == ',' {
				l.advance()
			} else if l.i == start {
				return
			}
		}
		if path != nil {
			l.elems[pathKey(path...)] = elems
		}
		l.advance()
	case l.peek() == '{':
		l.advance()
		for {
			l.blank(true)
			if l.eof() || l.peek() == '}' {
				break
			}
			if !l.keyValue(path) {
				return
			}
			l.blank(true)
			if l.peek() == ',' {
				l.advance()
			}
		}
		l.advance()
	default:
		// Numbers, booleans, dates (which may hold a space).
		for !l.eof() && !strings.ContainsRune(",]}\n#", rune(l.peek())) {
			l.advance()
		}
	}
}

func (l *locator) multiline(delim string, escapes bool) {
	l.skip(3)
	for !l.eof() {
		if escapes && l.peek() == '\\' {
			l.skip(2)
			continue
		}
		if l.has(delim) {
			l.skip(3)
			// Up to two quotes may end the content right before the delimiter.
			for n := 0; n < 2 && l.peek() == delim[0]; n++ {
				l.advance()
			}
			return
		}
		l.advance()
	}
}
