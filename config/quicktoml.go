package config

import (
	"strconv"
	"strings"
)

// quickTOML decodes src as toml.Decode into a map[string]any does, for the
// plain TOML fleet files are mostly written in (guestdeck sim writes
// nothing else): one key = value a line, bare keys, one-line strings
// without escapes, whole numbers, booleans, one-line arrays of strings,
// [table] and [[array]] headers of one bare key, comments, blank lines.
// On anything else (another form, a redefinition, a byte outside printable
// ASCII) it says no, and the caller asks BurntSushi/toml, which reads the
// rest of TOML and says what is wrong with a bad file: quickTOML never
// decides that a file is bad. BurntSushi/toml was three quarters of Parse's
// time on a 10,000-guest file (README, Performance); the subset is a
// fraction of it. FuzzQuickTOML holds it to toml.Decode's result.
//
// The strings it returns share src's memory: a fleet file is at most
// MaxFileBytes, and its values are most of it.
func quickTOML(src string) (map[string]any, bool) {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c >= 0x7f || c < 0x20 && c != '\t' && c != '\n' && (c != '\r' || i+1 == len(src) || src[i+1] != '\n') {
			return nil, false
		}
	}
	root := map[string]any{}
	arrays := map[string]bool{} // root keys made by [[key]] headers
	cur := root
	for src != "" {
		var line string
		line, src, _ = strings.Cut(src, "\n")
		line = strings.TrimLeft(strings.TrimSuffix(line, "\r"), " \t")
		switch {
		case line == "" || line[0] == '#':
			continue
		case line[0] == '[':
			t, ok := quickHeader(line, root, arrays)
			if !ok {
				return nil, false
			}
			cur = t
			continue
		}
		n := bareKeyLen(line)
		if n == 0 {
			return nil, false
		}
		key := line[:n]
		rest := strings.TrimLeft(line[n:], " \t")
		if rest == "" || rest[0] != '=' {
			return nil, false
		}
		v, rest, ok := quickValue(strings.TrimLeft(rest[1:], " \t"))
		if !ok || !lineEnds(rest) {
			return nil, false
		}
		if _, dup := cur[key]; dup {
			return nil, false
		}
		cur[key] = v
	}
	return root, true
}

// quickHeader opens the table a [name] or [[name]] line names, in root.
func quickHeader(line string, root map[string]any, arrays map[string]bool) (map[string]any, bool) {
	array := strings.HasPrefix(line, "[[")
	open, close := "[", "]"
	if array {
		open, close = "[[", "]]"
	}
	line = line[len(open):]
	n := bareKeyLen(line)
	if n == 0 || !strings.HasPrefix(line[n:], close) || !lineEnds(line[n+len(close):]) {
		return nil, false
	}
	name := line[:n]
	prev, exists := root[name]
	t := map[string]any{}
	switch {
	case !array && !exists:
		root[name] = t
	case array && !exists:
		root[name] = []map[string]any{t}
		arrays[name] = true
	case array && arrays[name]:
		root[name] = append(prev.([]map[string]any), t)
	default:
		return nil, false // a redefinition: toml.Decode says so
	}
	return t, true
}

// quickValue reads a string, a whole number, a boolean or a one-line array
// of strings at the start of s, and returns what follows it.
func quickValue(s string) (any, string, bool) {
	switch {
	case s == "":
		return nil, "", false
	case s[0] == '"' || s[0] == '\'':
		return quickString(s)
	case s[0] == '[':
		return quickStrings(s)
	case strings.HasPrefix(s, "true"):
		return true, s[len("true"):], true
	case strings.HasPrefix(s, "false"):
		return false, s[len("false"):], true
	}
	n := 0
	if s[0] == '-' {
		n++
	}
	digits := n
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	if n == digits || s[digits] == '0' && n > digits+1 {
		return nil, "", false // no digits, or a leading zero
	}
	i, err := strconv.ParseInt(s[:n], 10, 64)
	if err != nil {
		return nil, "", false
	}
	return i, s[n:], true
}

// quickString reads a one-line basic string without escapes ("...") or a
// one-line literal string ('...').
func quickString(s string) (any, string, bool) {
	q := s[0]
	end := strings.IndexByte(s[1:], q)
	if end < 0 {
		return nil, "", false
	}
	body := s[1 : 1+end]
	if q == '"' && strings.IndexByte(body, '\\') >= 0 {
		return nil, "", false
	}
	return body, s[2+end:], true
}

// quickStrings reads a one-line array of strings.
func quickStrings(s string) (any, string, bool) {
	out := []any{}
	s = strings.TrimLeft(s[1:], " \t")
	for {
		if s != "" && s[0] == ']' {
			return out, s[1:], true
		}
		if s == "" || s[0] != '"' && s[0] != '\'' {
			return nil, "", false
		}
		v, rest, ok := quickString(s)
		if !ok {
			return nil, "", false
		}
		out = append(out, v)
		s = strings.TrimLeft(rest, " \t")
		switch {
		case s != "" && s[0] == ',':
			s = strings.TrimLeft(s[1:], " \t")
		case s != "" && s[0] == ']':
		default:
			return nil, "", false
		}
	}
}

// bareKeyLen is the length of the bare key (A-Za-z0-9_-) s starts with.
func bareKeyLen(s string) int {
	n := 0
	for n < len(s) {
		c := s[n]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' {
			n++
			continue
		}
		break
	}
	return n
}

// lineEnds reports whether only blanks and a comment are left on a line.
func lineEnds(s string) bool {
	s = strings.TrimLeft(s, " \t")
	return s == "" || s[0] == '#'
}
