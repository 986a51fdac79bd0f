package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendIndented: for any JSON value written compact (as json.Marshal
// writes one), appendIndented's output is json.Indent's, byte for byte.
// Seeded with status --json elements of simulator guests and of guests
// whose strings need escaping, and with JSON of every shape: empty and
// nested containers, escapes and backslashes before quotes, numbers,
// literals.
func FuzzAppendIndented(f *testing.F) {
	for i := range 3 {
		g := simStatusGuest(i + 1)
		if i == 1 {
			g.Hostname = "web\u202egnp.exe\x1b]0;pwned\x07 \"quoted\\\" <b>&"
			g.Tags = []string{`\`, `\\"`, "", "bad\xffbyte"}
		}
		b, err := json.Marshal(toStatusJSON(g))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `[]`, `[{}]`, `{"a":[]}`, `[[[]],[{}],{"a":{}}]`, `"x"`, `"\\"`, `"\\\""`, `"a\"b\\\\"`, `["\\\\","\""]`,
		`{"a\\":"b\\\\","c":"\u2028"}`, `[1,-2.5e-7,true,false,null]`, `{"a":{"b":{"c":[1,{"d":"}]"}]}}}`, `0`, `null`,
		` { "spaced" : [ 1 , 2 ] } `, `[1,`, `{"a"}`, `"unterminated`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // Marshal writes only valid JSON
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, b); err != nil {
			t.Fatal(err)
		}
		src := compact.Bytes()
		var want bytes.Buffer
		want.WriteString("pre")
		if err := json.Indent(&want, src, "  ", "  "); err != nil {
			t.Fatal(err)
		}
		got := appendIndented([]byte("pre"), src, "  ", "  ")
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%q: appendIndented %q, json.Indent %q", src, got, want.Bytes())
		}
	})
}

// BenchmarkIndent indents one simulator guest's status --json element:
// appendIndented against json.Indent, which it replaced.
func BenchmarkIndent(b *testing.B) {
	src, err := json.Marshal(toStatusJSON(simStatusGuest(7)))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("appendIndented", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		var dst []byte
		for b.Loop() {
			dst = appendIndented(dst[:0], src, "  ", "  ")
		}
	})
	b.Run("json.Indent", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		var dst bytes.Buffer
		for b.Loop() {
			dst.Reset()
			if err := json.Indent(&dst, src, "  ", "  "); err != nil {
				b.Fatal(err)
			}
		}
	})
}
