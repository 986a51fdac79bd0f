package agentclient

import (
	"bytes"
	"encoding/json"
	"errors"
)

// envelope is one reply line split into its members, each a slice of the
// line. Splitting by hand costs one light pass; decoding the whole line with
// encoding/json validated and walked the (often large) return value twice
// more before the caller decoded it yet again.
type envelope struct {
	ret    []byte // the "return" value; nil if absent
	errRaw []byte // the "error" value; nil if absent or null
	id     []byte // the "id" value; nil if absent
}

var (
	errNotObject = errors.New("not a JSON object")
	errTrailing  = errors.New("data after the reply object")
	errSyntax    = errors.New("invalid JSON")
)

// scanEnvelope splits line (which must be exactly one JSON object, with
// optional surrounding space) into its members. The return value is only
// delimited here, not validated: whoever decodes it validates it. The id and
// error values are decoded by the caller, and any other member is checked
// with json.Valid, so a line is accepted only if it is valid JSON (given a
// valid return value).
func scanEnvelope(line []byte) (envelope, error) { return scanEnvelopeInPlace(line, nil) }

// scanEnvelopeInPlace is scanEnvelope decoding the return value where it
// stands into p (nil: none), rather than only delimiting it for a second
// pass to decode: p.ok says whether the last "return" member was decoded
// (a value the decoder does not fully recognise is delimited as before).
// The envelope it returns is scanEnvelope's whenever it returns no error
// (see inPlace); on an error, it is scanEnvelope's to say which.
func scanEnvelopeInPlace(line []byte, p *inPlace) (envelope, error) {
	var env envelope
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return env, errNotObject
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			if i >= len(line) || line[i] != '"' {
				return env, errSyntax
			}
			kEnd, ok := skipString(line, i)
			if !ok {
				return env, errSyntax
			}
			key := line[i+1 : kEnd-1]
			i = skipSpace(line, kEnd)
			if i >= len(line) || line[i] != ':' {
				return env, errSyntax
			}
			i = skipSpace(line, i+1)
			vEnd, ok := 0, false
			if p != nil && string(key) == "return" {
				vEnd, ok = p.decodeAt(line, i)
			}
			if !ok {
				vEnd, ok = skipValue(line, i)
			}
			if !ok {
				return env, errSyntax
			}
			val := line[i:vEnd]
			switch string(key) {
			case "return":
				env.ret = val
			case "error":
				env.errRaw = val
				if string(val) == "null" {
					env.errRaw = nil
				}
			case "id":
				env.id = val
			default:
				if !json.Valid(val) {
					return env, errSyntax
				}
			}
			i = skipSpace(line, vEnd)
			if i >= len(line) {
				return env, errSyntax
			}
			if line[i] == '}' {
				i++
				break
			}
			if line[i] != ',' {
				return env, errSyntax
			}
			i = skipSpace(line, i+1)
		}
	}
	if skipSpace(line, i) != len(line) {
		return env, errTrailing
	}
	return env, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i] ('"').
func skipString(b []byte, i int) (int, bool) {
	n, _ := plainPrefix(b[i+1:]) // long plain runs (a file chunk) fast
	for j := i + 1 + n; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\':
			j++
		case c < 0x20:
			return 0, false
		}
	}
	return 0, false
}

// skipValue returns the index just past the JSON value starting at b[i],
// matching brackets and strings; the value's content is not validated.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
	default:
		// A number or literal: up to the next delimiter.
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				break
			}
			if c == '"' || c == '{' || c == '[' || c == ':' {
				return 0, false
			}
			j++
		}
		return j, j > i
	}
	// A bit stack of open brackets (1 for '{'); deeper nesting than it
	// holds is left to a full check.
	var stack uint64
	depth := 0
	for j := i; j < len(b); j++ {
		switch c := b[j]; c {
		case '"':
			end, ok := skipString(b, j)
			if !ok {
				return 0, false
			}
			j = end - 1
		case '{', '[':
			if depth == 64 {
				return skipValueSlow(b, i)
			}
			stack <<= 1
			if c == '{' {
				stack |= 1
			}
			depth++
		case '}', ']':
			if depth == 0 || (stack&1 == 1) != (c == '}') {
				return 0, false
			}
			stack >>= 1
			depth--
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

// skipValueSlow delimits a deeply nested value with encoding/json.
func skipValueSlow(b []byte, i int) (int, bool) {
	d := json.NewDecoder(bytes.NewReader(b[i:]))
	var v json.RawMessage
	if d.Decode(&v) != nil {
		return 0, false
	}
	return i + int(d.InputOffset()), true
}

// idIs reports whether the raw JSON value raw is the string want.
func idIs(raw []byte, want []byte) bool {
	if len(raw) == len(want)+2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.Equal(raw[1:len(raw)-1], want) {
		return true
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	var got string
	return json.Unmarshal(raw, &got) == nil && got == string(want)
}
