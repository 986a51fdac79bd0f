package sim

// The encoder as it was before the single-pass rewrite (json.go at b12a59f),
// kept verbatim but for the names (ref prefix) as the reference the new one
// is compared against byte for byte (encode_test.go), down to the streamer
// and parser it re-read json.Marshal's output with (refStreamer, refParser,
// refUnquote): the production ones since take a fast path in unquote, so
// that the benchmark's "before" is what the code cost before.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient"
)

// refQemuEscape escapes s as QEMU's JSON writer does: printable ASCII as is,
// everything else (including invalid UTF-8, as U+FFFD) as \uXXXX.
func refQemuEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r >= 0x20 && r <= 0x7E:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04X\u%04X`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04X`, r)
		}
	}
	return b.String()
}

// refEncode writes v in the agent's output style: `{"a": 1, "b": [1, 2]}`.
// v is either a parsed request value (object, []any, ...) or any Go value
// encoding/json accepts (the agentclient wire types).
func refEncode(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case *object:
		buf.WriteByte('{')
		for n, i := range refQdictOrder(x.keys) {
			if n > 0 {
				buf.WriteString(", ")
			}
			buf.WriteString(`"` + refQemuEscape(x.keys[i]) + `": `)
			refEncode(buf, x.vals[i])
		}
		buf.WriteByte('}')
		return
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteString(", ")
			}
			refEncode(buf, e)
		}
		buf.WriteByte(']')
		return
	case nullValue:
		buf.WriteString("null")
		return
	case string:
		buf.WriteString(`"` + refQemuEscape(x) + `"`)
		return
	case float64:
		buf.WriteString(strconv.FormatFloat(x, 'g', 17, 64)) // QEMU prints doubles with %.17g
		return
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
		return
	case bool:
		buf.WriteString(strconv.FormatBool(x))
		return
	case agentclient.FileRead:
		// Reads can be 64 MiB of base64: skip the generic re-ordering path.
		// The member order is the QDict's (checked against the real agent).
		fmt.Fprintf(buf, `{"count": %d, "buf-b64": "%s", "eof": %t}`, x.Count, x.BufB64, x.EOF)
		return
	}
	raw, err := json.Marshal(v)
	if err != nil {
		buf.WriteString("{}")
		return
	}
	if o := refOrdered(raw); o != nil {
		refEncode(buf, o)
		return
	}
	refRespace(buf, raw)
}

// refRespace copies compact JSON adding the agent's ", " and ": " separators and
// re-escaping strings the agent's way.
func refRespace(buf *bytes.Buffer, raw []byte) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case ',':
			buf.WriteString(", ")
		case ':':
			buf.WriteString(": ")
		case '"':
			j := i + 1
			for ; j < len(raw); j++ {
				if raw[j] == '\\' {
					j++
					continue
				}
				if raw[j] == '"' {
					break
				}
			}
			s, _ := unquote(string(raw[i : j+1]))
			buf.WriteString(`"` + refQemuEscape(s) + `"`)
			i = j
		default:
			buf.WriteByte(c)
		}
	}
}

// refQdictOrder returns the indices of keys (in insertion order) in the order
// a QDict walk visits them.
func refQdictOrder(keys []string) []int {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ba, bb := tdbHash(keys[idx[a]])%512, tdbHash(keys[idx[b]])%512
		if ba != bb {
			return ba < bb
		}
		return idx[a] > idx[b] // same bucket: newest first
	})
	return idx
}

// refOrdered turns compact JSON from encoding/json into parsed values with
// member order kept, so encode can write it the agent's way.
func refOrdered(raw []byte) any {
	var st refStreamer
	var v any
	st.feed(raw, func(m message) { v = m.val })
	st.feed([]byte{'\n'}, func(m message) { v = m.val }) // terminate a bare number or keyword
	return v
}

// refReply writes a reply line: {key: val} plus the request's id, if any,
// members in the agent's order.
func refReply(key string, val, id any) []byte {
	env := &object{keys: []string{key}, vals: []any{val}}
	if id != nil {
		env.keys = append(env.keys, "id")
		env.vals = append(env.vals, id)
	}
	var buf bytes.Buffer
	refEncode(&buf, env)
	buf.WriteByte('\n')
	return buf.Bytes()
}

// refUnquote is unquote as it was (unquote now has a fast path).
func refUnquote(lit string) (string, bool) {
	if !utf8.ValidString(lit) {
		return "", false
	}
	if strings.HasPrefix(lit, "'") {
		// Rewrite 'single' as "double": \' means ', a bare " needs escaping.
		var b strings.Builder
		b.WriteByte('"')
		body := lit[1 : len(lit)-1]
		for i := 0; i < len(body); i++ {
			switch c := body[i]; {
			case c == '\\' && i+1 < len(body) && body[i+1] == '\'':
				b.WriteByte('\'')
				i++
			case c == '\\' && i+1 < len(body):
				b.WriteByte(c)
				b.WriteByte(body[i+1])
				i++
			case c == '"':
				b.WriteString(`\"`)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
		lit = b.String()
	}
	var s string
	if err := json.Unmarshal([]byte(lit), &s); err != nil {
		return "", false
	}
	return s, true
}

// refStreamer turns bytes into messages. It is per connection and holds only the
// tokens of the message in progress.
type refStreamer struct {
	state  lexState
	quote  byte // the quote of the string being lexed: QEMU also takes 'single'
	cur    []byte
	toks   []token
	braces int
	brack  int
	size   int
}

// feed consumes b and calls emit for each complete message, in order.
func (s *refStreamer) feed(b []byte, emit func(message)) {
	for i := 0; i < len(b); i++ {
		c := b[i]
	again:
		switch s.state {
		case lexStart:
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			case c == '{':
				s.token(tokLCurly, "{", emit)
			case c == '}':
				s.token(tokRCurly, "}", emit)
			case c == '[':
				s.token(tokLSquare, "[", emit)
			case c == ']':
				s.token(tokRSquare, "]", emit)
			case c == ':':
				s.token(tokColon, ":", emit)
			case c == ',':
				s.token(tokComma, ",", emit)
			case c == '"' || c == '\'':
				s.cur = append(s.cur[:0], c)
				s.quote = c
				s.state = lexString
			case c == '-':
				s.cur = append(s.cur[:0], c)
				s.state = lexNeg
			case c >= '0' && c <= '9':
				s.cur = append(s.cur[:0], c)
				s.state = lexNumber
			case c >= 'a' && c <= 'z':
				s.cur = append(s.cur[:0], c)
				s.state = lexKeyword
			default:
				s.cur = append(s.cur[:0], c)
				s.lexError(emit)
			}
		case lexString:
			switch {
			case c == s.quote:
				s.cur = append(s.cur, c)
				s.state = lexStart
				s.token(tokString, string(s.cur), emit)
			case c == '\\':
				s.cur = append(s.cur, c)
				s.state = lexStringEsc
			case c < 0x20 || c >= 0xFE:
				s.cur = append(s.cur, c)
				s.lexError(emit)
			default:
				s.cur = append(s.cur, c)
			}
			if len(s.cur) > maxMessage {
				s.reset()
				emit(message{err: "JSON token size limit exceeded"})
			}
		case lexStringEsc:
			if c < 0x20 || c >= 0xFE {
				s.cur = append(s.cur, c)
				s.lexError(emit)
				continue
			}
			s.cur = append(s.cur, c)
			s.state = lexString
		case lexNeg:
			s.cur = append(s.cur, c)
			if c >= '0' && c <= '9' {
				s.state = lexNumber
				continue
			}
			s.lexError(emit)
		case lexNumber:
			if (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
				s.cur = append(s.cur, c)
				continue
			}
			typ := tokInteger
			if bytes.ContainsAny(s.cur, ".eE") {
				typ = tokFloat
			}
			s.state = lexStart
			s.token(typ, string(s.cur), emit)
			goto again // the terminating byte starts the next token
		case lexKeyword:
			if c >= 'a' && c <= 'z' {
				s.cur = append(s.cur, c)
				continue
			}
			s.state = lexStart
			s.token(tokKeyword, string(s.cur), emit)
			goto again
		case lexRecover:
			if c < 0x20 || c == 0xFF || strings.IndexByte("{}[]:,", c) >= 0 {
				s.state = lexStart
				goto again
			}
		}
	}
}

// lexError reports the pending bytes as a stray token, as the agent does, and
// skips input until something that can start a message.
func (s *refStreamer) lexError(emit func(message)) {
	desc := "JSON parse error, stray '" + bytesToRunes(s.cur) + "'"
	s.reset()
	s.state = lexRecover
	emit(message{err: desc})
}

func (s *refStreamer) reset() {
	s.cur = s.cur[:0]
	s.toks = nil
	s.braces, s.brack, s.size = 0, 0, 0
	s.state = lexStart
}

func (s *refStreamer) token(t tokType, text string, emit func(message)) {
	switch t {
	case tokLCurly:
		s.braces++
	case tokRCurly:
		s.braces--
	case tokLSquare:
		s.brack++
	case tokRSquare:
		s.brack--
	}
	s.size += len(text)
	if s.size > maxMessage {
		s.reset()
		emit(message{err: "JSON token size limit exceeded"})
		return
	}
	if s.braces+s.brack > 1024 {
		s.reset()
		emit(message{err: "JSON nesting depth limit exceeded"})
		return
	}
	s.toks = append(s.toks, token{t, text})
	if (s.braces > 0 || s.brack > 0) && s.braces >= 0 && s.brack >= 0 {
		return
	}
	p := refParser{toks: s.toks}
	v := p.value()
	toks := s.toks
	s.toks = toks[:0]
	clear(toks)
	s.braces, s.brack, s.size = 0, 0, 0
	if p.err != "" {
		emit(message{err: "JSON parse error, " + p.err})
		return
	}
	emit(message{val: v})
}

// refParser is a recursive-descent parser over one message's tokens, with the
// error texts of QEMU's json-parser.c (the first error wins).
type refParser struct {
	toks []token
	pos  int
	err  string
}

func (p *refParser) fail(msg string) {
	if p.err == "" {
		p.err = msg
	}
}

func (p *refParser) peek() *token {
	if p.pos >= len(p.toks) {
		return nil
	}
	return &p.toks[p.pos]
}

func (p *refParser) pop() *token {
	t := p.peek()
	if t != nil {
		p.pos++
	}
	return t
}

func (p *refParser) value() any {
	t := p.peek()
	if t == nil {
		p.fail("premature EOI")
		return nil
	}
	switch t.typ {
	case tokLCurly:
		return p.object()
	case tokLSquare:
		return p.array()
	case tokString:
		p.pos++
		s, ok := refUnquote(t.text)
		if !ok {
			if !utf8.ValidString(t.text) {
				p.fail("invalid UTF-8 sequence in string")
			} else {
				p.fail("invalid escape sequence in string")
			}
			return nil
		}
		return s
	case tokInteger:
		p.pos++
		if n, err := strconv.ParseInt(t.text, 10, 64); err == nil {
			return n
		}
		f, _ := strconv.ParseFloat(t.text, 64)
		return f
	case tokFloat:
		p.pos++
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil && !math.IsInf(f, 0) {
			p.fail("invalid number")
			return nil
		}
		return f
	case tokKeyword:
		p.pos++
		switch t.text {
		case "true":
			return true
		case "false":
			return false
		case "null":
			return nullValue{}
		}
		p.fail("invalid keyword '" + t.text + "'")
		return nil
	}
	p.fail("expecting value")
	return nil
}

func (p *refParser) object() any {
	p.pop() // '{'
	obj := &object{}
	t := p.peek()
	if t == nil {
		p.fail("premature EOI")
		return nil
	}
	if t.typ == tokRCurly {
		p.pos++
		return obj
	}
	if !p.pair(obj) {
		return nil
	}
	for {
		t = p.pop()
		if t == nil {
			p.fail("premature EOI")
			return nil
		}
		if t.typ == tokRCurly {
			return obj
		}
		if t.typ != tokComma {
			p.fail("expected separator in dict")
			return nil
		}
		if !p.pair(obj) {
			return nil
		}
	}
}

func (p *refParser) pair(obj *object) bool {
	if p.peek() == nil {
		p.fail("premature EOI")
		return false
	}
	k := p.value()
	key, ok := k.(string)
	if !ok {
		p.fail("key is not a string in object")
		return false
	}
	t := p.pop()
	if t == nil {
		p.fail("premature EOI")
		return false
	}
	if t.typ != tokColon {
		p.fail("missing : in object pair")
		return false
	}
	v := p.value()
	if v == nil {
		p.fail("Missing value in dict")
		return false
	}
	if _, dup := obj.get(key); dup {
		p.fail("duplicate key")
		return false
	}
	obj.keys = append(obj.keys, key)
	obj.vals = append(obj.vals, v)
	return true
}

func (p *refParser) array() any {
	p.pop() // '['
	arr := []any{}
	t := p.peek()
	if t == nil {
		p.fail("premature EOI")
		return nil
	}
	if t.typ == tokRSquare {
		p.pos++
		return arr
	}
	for {
		v := p.value()
		if v == nil {
			p.fail("expecting value")
			return nil
		}
		arr = append(arr, v)
		t = p.pop()
		if t == nil {
			p.fail("premature EOI")
			return nil
		}
		if t.typ == tokRSquare {
			return arr
		}
		if t.typ != tokComma {
			p.fail("expected separator in list")
			return nil
		}
	}
}
