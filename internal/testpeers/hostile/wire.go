package hostile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The agent's JSON style, as recorded from qemu-ga 7.2 (see
// agentclient/sim/testdata): `{"return": VALUE}` with ", " and ": "
// separators, printable ASCII written as is and everything else as \uXXXX,
// members in the order of QEMU's QDict walk. Values here are built as
// ordered objects so that order is the recorded one.

// member is one member of an ordered JSON object.
type member struct {
	k string
	v any
}

// object is a JSON object with its member order kept.
type object []member

// raw is JSON text written as is: numbers no decoder can hold, strings with
// bytes that are not UTF-8.
type raw string

// appendJSON writes v in the agent's style.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case object:
		b = append(b, '{')
		for i, m := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendString(b, m.k)
			b = append(b, ": "...)
			b = appendJSON(b, m.v)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case string:
		return appendString(b, x)
	case raw:
		return append(b, x...)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case float64:
		return strconv.AppendFloat(b, x, 'g', 17, 64) // QEMU prints doubles with %.17g
	case bool:
		return strconv.AppendBool(b, x)
	case nil:
		return append(b, "null"...)
	}
	panic(fmt.Sprintf("hostile: no JSON encoding for %T", v))
}

// appendString writes s as QEMU's JSON writer does: printable ASCII as is,
// the short escapes, everything else as \uXXXX (surrogate pairs above the
// BMP, U+FFFD for bytes that are not UTF-8).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '"':
			b = append(b, `\"`...)
		case r == '\\':
			b = append(b, `\\`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r >= 0x20 && r <= 0x7E:
			b = append(b, byte(r))
		case r > 0xFFFF:
			r -= 0x10000
			b = fmt.Appendf(b, `\u%04X\u%04X`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			b = fmt.Appendf(b, `\u%04X`, r)
		}
	}
	return append(b, '"')
}

// replyLine is `{"return": RET, "id": ID}` (id only if the request had one;
// "return" comes first in the QDict walk), newline included.
func replyLine(ret, id []byte) []byte {
	b := make([]byte, 0, len(ret)+len(id)+24)
	b = append(b, `{"return": `...)
	b = append(b, ret...)
	if id != nil {
		b = append(append(b, `, "id": `...), id...)
	}
	return append(b, "}\n"...)
}

// errorLine is `{"id": ID, "error": {"class": C, "desc": D}}`: with an id,
// the QDict walk puts "id" before "error".
func errorLine(class, desc string, id []byte) []byte {
	e := object{{"class", class}, {"desc", desc}}
	b := []byte{'{'}
	if id != nil {
		b = append(append(append(b, `"id": `...), id...), ", "...)
	}
	b = append(b, `"error": `...)
	b = appendJSON(b, e)
	return append(b, "}\n"...)
}

// echoID re-encodes a request's id the agent's way; nil for none.
func echoID(id json.RawMessage) []byte {
	if len(bytes.TrimSpace(id)) == 0 {
		return nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(id))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil
	}
	return appendJSON(nil, fromDecoded(v))
}

// fromDecoded turns an encoding/json value into one appendJSON writes.
// Object members come out sorted (encoding/json maps lose the order); the
// ids guestdeck sends are strings, so that never shows.
func fromDecoded(v any) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		o := make(object, 0, len(x))
		for _, k := range keys {
			o = append(o, member{k, fromDecoded(x[k])})
		}
		return o
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fromDecoded(e)
		}
		return out
	case json.Number:
		return raw(x.String())
	}
	return v
}

// splitter cuts the byte stream from a client into messages the way the
// agent's streaming lexer does for well-formed input: a message ends when
// the brace and bracket depth returns to zero; 0xFF anywhere (the client's
// resync byte) flushes what was pending and is answered with the agent's
// parse error; anything else outside a message is a stray token.
type splitter struct {
	msg     []byte
	depth   int
	inStr   bool
	esc     bool
	stray   bool // inside a run of stray bytes: one error for the run
	overrun bool // the message in progress passed maxMessage
}

// maxMessage bounds one request (the agent allows 64 MiB; guestdeck's
// largest requests, file writes, are under 100 KiB).
const maxMessage = 16 << 20

// strayFF is the agent's answer to the 0xFF byte (recorded from qemu-ga 7.2).
const strayFF = "JSON parse error, stray '\uFFFD'"

// feed splits b, calling msg for each complete message and parseErr for
// each error the agent would report, in stream order.
func (s *splitter) feed(b []byte, msg func([]byte), parseErr func(desc string)) {
	for _, c := range b {
		if c == 0xFF {
			s.reset()
			parseErr(strayFF)
			continue
		}
		if s.depth == 0 {
			switch c {
			case ' ', '\t', '\r', '\n':
				s.stray = false
				continue
			case '{', '[':
				s.stray = false
			default:
				if !s.stray {
					parseErr("JSON parse error, stray '" + string(rune(c)) + "'")
				}
				s.stray = true
				continue
			}
		}
		if len(s.msg) < maxMessage {
			s.msg = append(s.msg, c)
		} else if !s.overrun {
			s.overrun = true
		}
		switch {
		case s.inStr && s.esc:
			s.esc = false
		case s.inStr && c == '\\':
			s.esc = true
		case s.inStr && c == '"':
			s.inStr = false
		case s.inStr:
		case c == '"':
			s.inStr = true
		case c == '{' || c == '[':
			s.depth++
		case c == '}' || c == ']':
			s.depth--
			if s.depth == 0 {
				if s.overrun {
					parseErr("JSON token size limit exceeded")
				} else {
					msg(s.msg)
				}
				s.msg = s.msg[:0]
				s.overrun = false
			}
		}
	}
}

func (s *splitter) reset() {
	s.msg = s.msg[:0]
	s.depth, s.inStr, s.esc, s.stray, s.overrun = 0, false, false, false, false
}
