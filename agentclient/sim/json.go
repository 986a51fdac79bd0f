package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The real agent reads its channel with QEMU's streaming JSON lexer: it splits
// the byte stream into tokens, counts braces, and parses a message as soon as
// the nesting depth returns to zero. Bad bytes become an error token and the
// lexer then skips input until a structural character, a control character or
// 0xFF. Clients depend on those details (0xFF flushes a half-read request; the
// reply to the 0xFF itself is a parse error), so this is a small port of that
// lexer, streamer and parser, down to the error texts observed on qemu-ga 7.2.

type tokType uint8

const (
	tokLCurly tokType = iota
	tokRCurly
	tokLSquare
	tokRSquare
	tokColon
	tokComma
	tokString
	tokInteger
	tokFloat
	tokKeyword
)

type token struct {
	typ  tokType
	text string
}

type lexState uint8

const (
	lexStart lexState = iota
	lexString
	lexStringEsc
	lexNeg     // after '-': a digit must follow
	lexNumber  // digits, '.', exponent
	lexKeyword // [a-z]+
	lexRecover // skipping after an error
)

// maxMessage bounds what one message may accumulate (QEMU: 64 MiB of tokens);
// the simulator keeps it smaller so a flood cannot grow a guest without bound.
const maxMessage = 64 << 20

// message is what the streamer hands on: a parsed value or a parse error.
type message struct {
	val any
	err string // desc of a GenericError, "" if val is valid
}

// streamer turns bytes into messages. It is per connection and holds only the
// tokens of the message in progress.
type streamer struct {
	state  lexState
	quote  byte // the quote of the string being lexed: QEMU also takes 'single'
	cur    []byte
	toks   []token
	braces int
	brack  int
	size   int
}

// feed consumes b and calls emit for each complete message, in order.
func (s *streamer) feed(b []byte, emit func(message)) {
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
func (s *streamer) lexError(emit func(message)) {
	desc := "JSON parse error, stray '" + bytesToRunes(s.cur) + "'"
	s.reset()
	s.state = lexRecover
	emit(message{err: desc})
}

func (s *streamer) reset() {
	s.cur = s.cur[:0]
	s.toks = nil
	s.braces, s.brack, s.size = 0, 0, 0
	s.state = lexStart
}

func (s *streamer) token(t tokType, text string, emit func(message)) {
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
	p := parser{toks: s.toks}
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

// parser is a recursive-descent parser over one message's tokens, with the
// error texts of QEMU's json-parser.c (the first error wins).
type parser struct {
	toks []token
	pos  int
	err  string
}

func (p *parser) fail(msg string) {
	if p.err == "" {
		p.err = msg
	}
}

func (p *parser) peek() *token {
	if p.pos >= len(p.toks) {
		return nil
	}
	return &p.toks[p.pos]
}

func (p *parser) pop() *token {
	t := p.peek()
	if t != nil {
		p.pos++
	}
	return t
}

func (p *parser) value() any {
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
		s, ok := unquote(t.text)
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

// nullValue is JSON null, kept distinct from "absent" (Go nil).
type nullValue struct{}

func (p *parser) object() any {
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

func (p *parser) pair(obj *object) bool {
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

func (p *parser) array() any {
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

// object is a JSON object with its member order kept, so that "first
// unexpected member" is well defined.
type object struct {
	keys []string
	vals []any
}

func (o *object) get(k string) (any, bool) {
	for i, kk := range o.keys {
		if kk == k {
			return o.vals[i], true
		}
	}
	return nil, false
}

func unquote(lit string) (string, bool) {
	if !utf8.ValidString(lit) {
		return "", false
	}
	if plainLiteral(lit) {
		return lit[1 : len(lit)-1], true
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

// plainLiteral reports whether lit is a "double-quoted" literal with
// nothing in it for json.Unmarshal to decode or reject (no escape, quote or
// control character): its value is then its body.
func plainLiteral(lit string) bool {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return false
	}
	for i := 1; i < len(lit)-1; i++ {
		if c := lit[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// bytesToRunes decodes b as UTF-8 with each invalid byte replaced by U+FFFD,
// which is how the agent quotes stray input back.
func bytesToRunes(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		sb.WriteRune(r)
		b = b[n:]
	}
	return sb.String()
}

// QEMU keeps JSON objects in a QDict: 512 hash buckets (tdb_hash), each a
// list with the newest entry first, walked bucket by bucket. That walk is
// the member order of every reply the agent writes and the order in which it
// checks request members, so the simulator reproduces it exactly.

func tdbHash[S string | []byte](s S) uint32 {
	v := uint32(0x238F13AF) * uint32(len(s))
	for i := 0; i < len(s); i++ {
		v += uint32(s[i]) << (uint(i) * 5 % 24)
	}
	return 1103515243*v + 12345
}

// qdictOrder returns the indices of keys (in insertion order) in the order
// a QDict walk visits them: by bucket, newest first within one. Each key is
// hashed once; the order is a total one, so any sort gives the same result.
func qdictOrder(keys []string) []int {
	idx := make([]int, len(keys))
	var small [16]uint32
	bucket := small[:0]
	if len(keys) > len(small) {
		bucket = make([]uint32, 0, len(keys))
	}
	for i, k := range keys {
		idx[i] = i
		bucket = append(bucket, tdbHash(k)%512)
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case bucket[a] != bucket[b]:
			return cmp.Compare(bucket[a], bucket[b])
		default:
			return cmp.Compare(b, a) // same bucket: newest first
		}
	})
	return idx
}

// firstLeftover mimics how the QAPI input visitor picks the member it calls
// unexpected: it puts all members (in QDict order) into a GLib hash table
// (g_str_hash, 8 slots, index (h*11)%7, quadratic probing), removes the ones
// it consumed, and reports the first left in slot order. Beyond 7 members
// the table would grow; then the first leftover in QDict order is used.
func firstLeftover(keys []string, known func(string) bool) (string, bool) {
	order := qdictOrder(keys)
	var left []string
	for _, i := range order {
		if !known(keys[i]) {
			left = append(left, keys[i])
		}
	}
	if len(left) == 0 {
		return "", false
	}
	if len(keys) > 7 {
		return left[0], true
	}
	var slots [8]string
	used := [8]bool{}
	for _, i := range order {
		k := keys[i]
		h := uint32(5381)
		for j := 0; j < len(k); j++ {
			h = h*33 + uint32(int32(int8(k[j]))) // g_str_hash reads signed chars
		}
		if h < 2 {
			h = 2
		}
		n := (h * 11) % 7
		for step := uint32(0); used[n]; {
			step++
			n = (n + step) & 7
		}
		slots[n], used[n] = k, true
	}
	for n := range slots {
		if used[n] && !known(slots[n]) {
			return slots[n], true
		}
	}
	return left[0], true
}

// ordered turns compact JSON from encoding/json into parsed values with
// member order kept, so encode can write it the agent's way.
func ordered(raw []byte) any {
	var st streamer
	var v any
	st.feed(raw, func(m message) { v = m.val })
	st.feed([]byte{'\n'}, func(m message) { v = m.val }) // terminate a bare number or keyword
	return v
}
