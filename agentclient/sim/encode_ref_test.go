package sim

// The encoder as it was before the single-pass rewrite (json.go at b12a59f),
// kept verbatim but for the names (ref prefix) as the reference the new one
// is compared against byte for byte (encode_test.go). The streamer and
// parser it uses to re-read json.Marshal's output are the production ones,
// which the rewrite left unchanged but for unquote's fast path for literals
// with nothing to decode; refUnquote is unquote as it was, and the fuzz
// target compares the two.

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	var st streamer
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

// refUnquote is unquote as it was (the parser now uses a fast path).
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
