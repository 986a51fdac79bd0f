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

// pos is a 1-based line and byte column.
type pos struct{ Line, Col int }

// spot is where a key and its value start in the source.
type spot struct{ Key, Val pos }

// pathKey joins path segments into a map key; indices are decimal segments.
func pathKey(segs ...string) string { return strings.Join(segs, "\x00") }

// join returns a new path: base followed by more, never sharing base's array.
func join(base []string, more ...string) []string {
	return append(append(make([]string, 0, len(base)+len(more)), base...), more...)
}

type locator struct {
	src   string
	i     int
	line  int
	col   int
	spots map[string]spot
	// aot counts the [[table]] headers seen so far, by path key.
	aot map[string]int
}

// locate maps every key path in src to its position. It never fails: on
// anything it does not understand it stops, and callers fall back to a
// position-less message.
func locate(src string) map[string]spot {
	l := &locator{src: src, line: 1, col: 1, spots: map[string]spot{}, aot: map[string]int{}}
	if strings.HasPrefix(src, "\ufeff") {
		l.i = len("\ufeff") // a byte order mark is not part of line 1's columns
	}
	l.document()
	return l.spots
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
	var table []string
	for {
		start := l.i
		l.blank(true)
		if l.eof() {
			return
		}
		if l.peek() == '[' {
			table = l.header()
		} else {
			at := l.here()
			segs := l.key()
			if segs == nil {
				return
			}
			l.blank(false)
			if l.peek() != '=' {
				return
			}
			l.advance()
			l.blank(false)
			l.value(join(table, segs...), at)
		}
		if l.i == start {
			return // no progress: not TOML we understand
		}
	}
}

// header reads [a.b] or [[a.b]] and returns the table's full path.
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
		path = append(path, s)
		plain = append(plain, s)
		k := pathKey(plain...)
		last := n == len(segs)-1
		if last && array {
			idx := l.aot[k]
			l.aot[k] = idx + 1
			path = append(path, strconv.Itoa(idx))
		} else if c, ok := l.aot[k]; ok {
			path = append(path, strconv.Itoa(c-1))
		}
	}
	l.spots[pathKey(path...)] = spot{Key: at, Val: at}
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

// value records the position of the key path and skips over its value,
// descending into arrays and inline tables.
func (l *locator) value(path []string, at pos) {
	l.spots[pathKey(path...)] = spot{Key: at, Val: l.here()}
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
		for n := 0; ; n++ {
			l.blank(true)
			if l.eof() || l.peek() == ']' {
				break
			}
			start := l.i
			l.value(join(path, strconv.Itoa(n)), l.here())
			l.blank(true)
			if l.peek() == ',' {
				l.advance()
			} else if l.i == start {
				return
			}
		}
		l.advance()
	case l.peek() == '{':
		l.advance()
		for {
			l.blank(true)
			if l.eof() || l.peek() == '}' {
				break
			}
			kat := l.here()
			segs := l.key()
			l.blank(false)
			if segs == nil || l.peek() != '=' {
				return
			}
			l.advance()
			l.blank(false)
			l.value(join(path, segs...), kat)
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
