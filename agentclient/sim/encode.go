package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient"
)

// The agent writes JSON with ", " and ": " separators, object members in
// QDict walk order (tdbHash buckets, newest first within one), strings
// escaped QEMU's way (printable ASCII as is, everything else \uXXXX with
// upper-case hex, invalid UTF-8 as U+FFFD) and doubles as %.17g.
//
// The replies are Go values (the agentclient wire types), so an encoder lets
// encoding/json turn them into compact JSON and then rewrites that text in
// one pass: strings re-escaped from span to span, numbers re-printed only
// where the agent prints them differently, and each object's members written
// in stream order and then moved into QDict order by their byte spans. It
// builds no generic values. Whatever that pass does not expect (invalid
// UTF-8 or surrogate escapes from a custom MarshalJSON, duplicate keys, very
// deep nesting) makes it start the value over the general way: re-read by
// the agent's own parser into generic values (ordered) and written from
// those, or, if even that fails, respaced as it is.

// encoder holds the scratch space of one reply. Encoders are reused through
// a sync.Pool held by the Farm (or the Guest), never package-wide.
type encoder struct {
	out   []byte       // the reply being written
	raw   bytes.Buffer // json.Encoder's output for a Go value
	je    *json.Encoder
	mem   []member // members of the objects being written, innermost last
	tmp   []byte   // one object's members while they are put in order
	keys  []byte   // decoded object keys that had escapes
	depth int
	bad   bool // the one-pass rewrite met something it does not handle
}

// member is one object member in the encoder's output: out[start:end] is
// `"key": value`; idx is its position in the object.
type member struct {
	key        []byte
	bucket     uint32
	idx        int
	start, end int
}

// maxKeep bounds the buffers an encoder keeps for the next reply, so that a
// large reply (a file read, an exec's output) does not stay allocated.
const maxKeep = 64 << 10

// maxRawDepth is the nesting beyond which the one-pass rewrite gives the
// value to the general path (whose parser has the agent's limit of 1024).
const maxRawDepth = 1000

func getEncoder(p *sync.Pool) *encoder {
	if e, ok := p.Get().(*encoder); ok {
		return e
	}
	e := &encoder{}
	e.je = json.NewEncoder(&e.raw)
	// HTML escapes would only be decoded again: strings are re-escaped.
	e.je.SetEscapeHTML(false)
	return e
}

func putEncoder(p *sync.Pool, e *encoder) {
	if cap(e.out) > maxKeep || e.raw.Cap() > maxKeep || cap(e.tmp) > maxKeep || cap(e.keys) > maxKeep || cap(e.mem) > 1024 {
		return
	}
	e.out = e.out[:0]
	e.raw.Reset()
	clear(e.mem[:cap(e.mem)])
	e.mem = e.mem[:0]
	e.tmp = e.tmp[:0]
	e.keys = e.keys[:0]
	p.Put(e)
}

// value appends v in the agent's output style: `{"a": 1, "b": [1, 2]}`.
// v is either a parsed request value (object, []any, ...) or any Go value
// encoding/json accepts (the agentclient wire types).
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case *object:
		e.object(x)
	case []any:
		e.out = append(e.out, '[')
		for i, el := range x {
			if i > 0 {
				e.out = append(e.out, ", "...)
			}
			e.value(el)
		}
		e.out = append(e.out, ']')
	case nullValue:
		e.out = append(e.out, "null"...)
	case string:
		e.out = appendQuoted(e.out, x)
	case float64:
		e.out = strconv.AppendFloat(e.out, x, 'g', 17, 64) // QEMU prints doubles with %.17g
	case int64:
		e.out = strconv.AppendInt(e.out, x, 10)
	case bool:
		e.out = strconv.AppendBool(e.out, x)
	case agentclient.FileRead:
		// Reads can be 64 MiB of base64: no rewriting pass. The member
		// order is the QDict's (checked against the real agent).
		e.out = append(e.out, `{"count": `...)
		e.out = strconv.AppendInt(e.out, int64(x.Count), 10)
		e.out = append(e.out, `, "buf-b64": "`...)
		e.out = append(e.out, x.BufB64...)
		e.out = append(e.out, `", "eof": `...)
		e.out = strconv.AppendBool(e.out, x.EOF)
		e.out = append(e.out, '}')
	default:
		e.marshalled(v)
	}
}

// object appends a parsed object, members in QDict order.
func (e *encoder) object(x *object) {
	base := len(e.mem)
	for i, k := range x.keys {
		e.mem = append(e.mem, member{bucket: tdbHash(k) % 512, idx: i})
	}
	sortMembers(e.mem[base:])
	e.out = append(e.out, '{')
	for n := range x.keys {
		i := e.mem[base+n].idx // re-read: nested values may grow e.mem
		if n > 0 {
			e.out = append(e.out, ", "...)
		}
		e.out = appendQuoted(e.out, x.keys[i])
		e.out = append(e.out, ": "...)
		e.value(x.vals[i])
	}
	e.out = append(e.out, '}')
	e.mem = e.mem[:base]
}

// marshalled appends a Go value: encoding/json's compact output, rewritten.
func (e *encoder) marshalled(v any) {
	e.raw.Reset()
	if err := e.je.Encode(v); err != nil {
		e.out = append(e.out, "{}"...)
		return
	}
	raw := bytes.TrimSuffix(e.raw.Bytes(), []byte{'\n'})
	e.keys = e.keys[:0]
	start, base := len(e.out), len(e.mem)
	e.bad, e.depth = false, 0
	if end := e.rawValue(raw, 0); !e.bad && end == len(raw) {
		return
	}
	e.out, e.mem, e.bad = e.out[:start], e.mem[:base], false
	if o := ordered(raw); o != nil {
		e.value(o)
		return
	}
	e.out = respace(e.out, raw)
}

// rawValue rewrites the compact JSON value at raw[i:] and returns where it
// ends. On anything unexpected it sets e.bad and returns len(raw).
func (e *encoder) rawValue(raw []byte, i int) int {
	if i >= len(raw) {
		e.bad = true
		return len(raw)
	}
	switch c := raw[i]; {
	case c == '{':
		return e.rawObject(raw, i)
	case c == '[':
		return e.rawArray(raw, i)
	case c == '"':
		end, _ := e.rawString(raw, i)
		return end
	case c == '-' || (c >= '0' && c <= '9'):
		return e.rawNumber(raw, i)
	case c == 't':
		return e.rawKeyword(raw, i, "true")
	case c == 'f':
		return e.rawKeyword(raw, i, "false")
	case c == 'n':
		return e.rawKeyword(raw, i, "null")
	}
	e.bad = true
	return len(raw)
}

func (e *encoder) rawKeyword(raw []byte, i int, kw string) int {
	end := i + len(kw)
	if end > len(raw) || string(raw[i:end]) != kw || (end < len(raw) && raw[end] >= 'a' && raw[end] <= 'z') {
		e.bad = true
		return len(raw)
	}
	e.out = append(e.out, kw...)
	return end
}

func (e *encoder) rawArray(raw []byte, i int) int {
	if e.depth++; e.depth > maxRawDepth {
		e.bad = true
		return len(raw)
	}
	i++ // '['
	e.out = append(e.out, '[')
	if i < len(raw) && raw[i] == ']' {
		e.out = append(e.out, ']')
		e.depth--
		return i + 1
	}
	for {
		i = e.rawValue(raw, i)
		if e.bad || i >= len(raw) {
			e.bad = true
			return len(raw)
		}
		switch raw[i] {
		case ',':
			e.out = append(e.out, ", "...)
			i++
		case ']':
			e.out = append(e.out, ']')
			e.depth--
			return i + 1
		default:
			e.bad = true
			return len(raw)
		}
	}
}

// rawObject writes the members as they come, recording their spans, then
// moves them into QDict order.
func (e *encoder) rawObject(raw []byte, i int) int {
	if e.depth++; e.depth > maxRawDepth {
		e.bad = true
		return len(raw)
	}
	i++ // '{'
	e.out = append(e.out, '{')
	if i < len(raw) && raw[i] == '}' {
		e.out = append(e.out, '}')
		e.depth--
		return i + 1
	}
	base := len(e.mem)
	for n := 0; ; n++ {
		if i >= len(raw) || raw[i] != '"' {
			e.bad = true
			return len(raw)
		}
		start := len(e.out)
		end, esc := e.rawString(raw, i)
		if e.bad || end >= len(raw) || raw[end] != ':' {
			e.bad = true
			return len(raw)
		}
		key := raw[i+1 : end-1]
		if esc {
			k := len(e.keys)
			e.keys = appendUnescaped(e.keys, key)
			key = e.keys[k:len(e.keys):len(e.keys)]
		}
		e.out = append(e.out, ": "...)
		e.mem = append(e.mem, member{key: key, bucket: tdbHash(key) % 512, idx: n, start: start})
		i = e.rawValue(raw, end+1)
		if e.bad || i >= len(raw) {
			e.bad = true
			return len(raw)
		}
		e.mem[base+n].end = len(e.out)
		if raw[i] == ',' {
			e.out = append(e.out, ", "...)
			i++
			continue
		}
		if raw[i] != '}' {
			e.bad = true
			return len(raw)
		}
		break
	}
	e.reorder(e.mem[base:])
	e.mem = e.mem[:base]
	e.out = append(e.out, '}')
	e.depth--
	return i + 1
}

// reorder moves the members ms, written in stream order, into QDict order.
// Equal keys (which the agent's parser rejects) set e.bad.
func (e *encoder) reorder(ms []member) {
	inOrder := true
	for k := 1; k < len(ms); k++ {
		if ms[k].bucket <= ms[k-1].bucket {
			inOrder = false
			break
		}
	}
	if inOrder {
		return
	}
	from, to := ms[0].start, ms[len(ms)-1].end
	sortMembers(ms)
	for k := 1; k < len(ms); k++ {
		for j := k - 1; j >= 0 && ms[j].bucket == ms[k].bucket; j-- {
			if bytes.Equal(ms[j].key, ms[k].key) {
				e.bad = true
				return
			}
		}
	}
	e.tmp = append(e.tmp[:0], e.out[from:to]...)
	e.out = e.out[:from]
	for k, m := range ms {
		if k > 0 {
			e.out = append(e.out, ", "...)
		}
		e.out = append(e.out, e.tmp[m.start-from:m.end-from]...)
	}
}

// sortMembers puts ms in QDict walk order: by bucket, newest first within
// one. Objects are small: insertion sort unless they are not.
func sortMembers(ms []member) {
	if len(ms) > 12 {
		slices.SortFunc(ms, func(a, b member) int {
			if a.bucket != b.bucket {
				return cmp.Compare(a.bucket, b.bucket)
			}
			return cmp.Compare(b.idx, a.idx)
		})
		return
	}
	for k := 1; k < len(ms); k++ {
		for j := k; j > 0 && (ms[j].bucket < ms[j-1].bucket || (ms[j].bucket == ms[j-1].bucket && ms[j].idx > ms[j-1].idx)); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// rawString rewrites the string literal at raw[i] QEMU's way and returns
// where it ends and whether it had escapes.
func (e *encoder) rawString(raw []byte, i int) (end int, esc bool) {
	e.out = append(e.out, '"')
	j := i + 1
	for {
		k := j
		for k < len(raw) && raw[k] >= 0x20 && raw[k] < 0x7F && raw[k] != '"' && raw[k] != '\\' {
			k++
		}
		e.out = append(e.out, raw[j:k]...)
		j = k
		if j >= len(raw) {
			e.bad = true
			return len(raw), esc
		}
		switch c := raw[j]; {
		case c == '"':
			e.out = append(e.out, '"')
			return j + 1, esc
		case c == '\\':
			esc = true
			if j+1 >= len(raw) {
				e.bad = true
				return len(raw), esc
			}
			switch raw[j+1] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't': // the agent writes these the same
				e.out = append(e.out, c, raw[j+1])
				j += 2
			case '/':
				e.out = append(e.out, '/')
				j += 2
			case 'u':
				r, ok := hex4(raw[j+2:])
				if !ok || utf8.RuneLen(r) < 0 { // surrogates: the general path
					e.bad = true
					return len(raw), esc
				}
				e.out = appendQemuRune(e.out, r)
				j += 6
			default:
				e.bad = true
				return len(raw), esc
			}
		case c < 0x20:
			e.bad = true
			return len(raw), esc
		default: // DEL and non-ASCII
			r, n := utf8.DecodeRune(raw[j:])
			if r == utf8.RuneError && n == 1 {
				e.bad = true
				return len(raw), esc
			}
			e.out = appendQemuRune(e.out, r)
			j += n
		}
	}
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// appendUnescaped decodes the body of a string literal rawString accepted.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			dst = append(dst, s[i])
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s[i+1:])
			dst = utf8.AppendRune(dst, r)
			i += 4
		default: // '"', '\\', '/'
			dst = append(dst, s[i])
		}
	}
	return dst
}

// rawNumber writes the number at raw[i] as the agent would after parsing
// it: an integer that fits int64 as is, anything else as a %.17g double.
func (e *encoder) rawNumber(raw []byte, i int) int {
	j := i
	if raw[j] == '-' {
		j++
		if j >= len(raw) || raw[j] < '0' || raw[j] > '9' {
			e.bad = true
			return len(raw)
		}
	}
	digits, float := j, false
	for ; j < len(raw); j++ {
		c := raw[j]
		if c == '.' || c == 'e' || c == 'E' {
			float = true
		} else if (c < '0' || c > '9') && c != '+' && c != '-' {
			break
		}
	}
	tok := raw[i:j]
	if !float {
		d := raw[digits:j]
		plain := len(d) <= 18 && (d[0] != '0' || (len(d) == 1 && digits == i))
		for _, c := range d {
			plain = plain && c >= '0' && c <= '9'
		}
		if plain { // what ParseInt and FormatInt give back unchanged
			e.out = append(e.out, tok...)
			return j
		}
		if n, err := strconv.ParseInt(string(tok), 10, 64); err == nil {
			e.out = strconv.AppendInt(e.out, n, 10)
			return j
		}
		f, _ := strconv.ParseFloat(string(tok), 64)
		e.out = strconv.AppendFloat(e.out, f, 'g', 17, 64)
		return j
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !math.IsInf(f, 0) {
		e.bad = true
		return len(raw)
	}
	e.out = strconv.AppendFloat(e.out, f, 'g', 17, 64)
	return j
}

const upperHex = "0123456789ABCDEF"

// appendQuoted appends s as a string literal escaped as QEMU's JSON writer
// does: printable ASCII as is, everything else (including invalid UTF-8, as
// U+FFFD) as \uXXXX.
func appendQuoted(out []byte, s string) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7F && c != '"' && c != '\\' {
			i++
			continue
		}
		out = append(out, s[start:i]...)
		r, n := rune(c), 1
		if c >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		out = appendQemuRune(out, r)
		i += n
		start = i
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// appendQemuRune appends r escaped as QEMU's JSON writer does.
func appendQemuRune(out []byte, r rune) []byte {
	switch {
	case r == '"':
		return append(out, `\"`...)
	case r == '\\':
		return append(out, `\\`...)
	case r == '\b':
		return append(out, `\b`...)
	case r == '\f':
		return append(out, `\f`...)
	case r == '\n':
		return append(out, `\n`...)
	case r == '\r':
		return append(out, `\r`...)
	case r == '\t':
		return append(out, `\t`...)
	case r >= 0x20 && r <= 0x7E:
		return append(out, byte(r))
	case r > 0xFFFF:
		r -= 0x10000
		return appendU(appendU(out, 0xD800+(r>>10)), 0xDC00+(r&0x3FF))
	}
	return appendU(out, r)
}

func appendU(out []byte, r rune) []byte {
	return append(out, '\\', 'u', upperHex[r>>12&0xF], upperHex[r>>8&0xF], upperHex[r>>4&0xF], upperHex[r&0xF])
}

// respace copies compact JSON adding the agent's ", " and ": " separators and
// re-escaping strings the agent's way: the last resort for JSON the agent's
// parser rejects.
func respace(out, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case ',':
			out = append(out, ", "...)
		case ':':
			out = append(out, ": "...)
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
			s, _ := unquote(string(raw[i:min(j+1, len(raw))]))
			out = appendQuoted(out, s)
			i = j
		default:
			out = append(out, c)
		}
	}
	return out
}

// reply writes a reply line: {key: val} plus the request's id, if any,
// members in the agent's order. It runs with g.mu held.
func (g *Guest) reply(key string, val, id any) []byte {
	if g.encs == nil {
		g.encs = new(sync.Pool)
	}
	e := getEncoder(g.encs)
	e.out = append(e.out[:0], '{')
	// The QDict walk of {key, "id"}: "id" first if its bucket is not after key's.
	idFirst := id != nil && tdbHash("id")%512 <= tdbHash(key)%512
	if idFirst {
		e.member("id", id)
		e.out = append(e.out, ", "...)
	}
	e.member(key, val)
	if id != nil && !idFirst {
		e.out = append(e.out, ", "...)
		e.member("id", id)
	}
	e.out = append(e.out, '}', '\n')
	var line []byte
	if cap(e.out) > maxKeep {
		line, e.out = e.out, nil // too big to keep (a file read): the reply takes it
	} else {
		line = bytes.Clone(e.out)
	}
	putEncoder(g.encs, e)
	return line
}

func (e *encoder) member(key string, v any) {
	e.out = appendQuoted(e.out, key)
	e.out = append(e.out, ": "...)
	e.value(v)
}
