package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
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

// A guest's status --json element is as large as its agent's replies make
// it: a 2 MiB interface list is within guest-network-get-interfaces' limit,
// and Marshal writes each '<' of a name as \u003c. encodeChunk sizes its
// output after the chunk's first element; with a hostile guest first, that
// guess must not turn one large element into the chunk's length times it
// (255 × 1.1 × 300 KB was 84 MB for a chunk whose output is 0.7 MB). The
// bytes allocated are held to about what json.Marshal and json.Indent into
// a growing buffer, the path encodeChunk replaced, allocate for the same
// chunk.
func TestEncodeChunkHostileFirstGuest(t *testing.T) {
	big := simStatusGuest(1)
	big.Interfaces = nil
	for i := range 700 {
		big.Interfaces = append(big.Interfaces, agentclient.Interface{
			Name: strings.Repeat("<", 60) + strconv.Itoa(i), HardwareAddress: "52:54:00:00:00:01",
			IPAddresses: []agentclient.IPAddress{{Address: "192.0.2.1", Type: "ipv4", Prefix: 24}},
		})
	}
	gs := []*fleet.Guest{big}
	for i := 1; i < jsonChunk; i++ {
		gs = append(gs, simStatusGuest(i+1))
	}
	elem := func(i int) any { return toStatusJSON(gs[i]) }
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	var out []byte
	got := allocated(func() {
		var err error
		if out, err = encodeChunk(0, len(gs), len(gs), elem); err != nil {
			t.Fatal(err)
		}
	})
	var ref bytes.Buffer
	want := allocated(func() {
		ref.WriteString("[\n")
		for i := range gs {
			raw, err := json.Marshal(elem(i))
			if err != nil {
				t.Fatal(err)
			}
			ref.WriteString("  ")
			if err := json.Indent(&ref, raw, "  ", "  "); err != nil {
				t.Fatal(err)
			}
			if i < len(gs)-1 {
				ref.WriteString(",\n")
			}
		}
		ref.WriteString("\n]\n")
		present.SafeJSON(ref.Bytes())
	})
	if !bytes.Equal(out, present.SafeJSON(ref.Bytes())) {
		t.Fatal("encodeChunk's output is not the reference's")
	}
	t.Logf("output %d bytes (first element %d); encodeChunk allocated %d bytes, the reference %d", len(out), bytes.Index(out, []byte("\n  },\n")), got, want)
	if got > 2*want+1<<20 {
		t.Errorf("encodeChunk allocated %d bytes for a %d-byte output, the reference %d", got, len(out), want)
	}
}
