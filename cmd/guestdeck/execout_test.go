package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// encodedRow is what exec --json wrote for one guest before its output was
// streamed: the execJSON value through encoding/json, made safe.
func encodedRow(r fleet.ExecResult) string {
	j := execJSON{Name: r.Guest, State: string(r.State), ExitCode: r.ExitCode, Signal: r.Signal,
		Stdout: string(r.Stdout), Stderr: string(r.Stderr), Truncated: r.Truncated, DurationMS: ms(r.Duration)}
	if r.PID != 0 {
		j.PID = &r.PID
	}
	if !utf8.Valid(r.Stdout) {
		s := b64(r.Stdout)
		j.StdoutBase64 = &s
	}
	if !utf8.Valid(r.Stderr) {
		s := b64(r.Stderr)
		j.StderrBase64 = &s
	}
	if r.Err != "" {
		j.Error = &r.Err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("  ", "  ")
	enc.Encode(j)
	return string(present.SafeJSON(bytes.TrimSuffix(b.Bytes(), []byte("\n"))))
}

func TestWriteExecRowIsEncoderOutput(t *testing.T) {
	code, sig := 3, 9
	hostile := "a\x00b\x1b]0;OWNED\x07\u009b31m\u202eevil\u2028<b>&\"\\\xff\xfe\xe2\x82 é😀\xf0\x9f\x98"
	for _, r := range []fleet.ExecResult{
		{Guest: "web-1", State: fleet.ExecExited, PID: 42, ExitCode: &code, Stdout: []byte("ok\n"), Duration: 41 * time.Millisecond},
		{Guest: "x\u202e\x1b[2J", State: fleet.ExecExited, PID: -7, Signal: &sig, Stdout: []byte(hostile), Stderr: []byte(strings.Repeat(hostile, 5)), Truncated: true},
		{Guest: "y", State: fleet.ExecFailed, Err: "pid 3: " + hostile},
		{Guest: "z", State: fleet.ExecSkipped, Stdout: bytes.Repeat([]byte{0}, 1000), Stderr: []byte("€€€€€€€€\xe2\x82")},
	} {
		want := encodedRow(r)
		for _, chunk := range []int{1, 2, 3, 4, 5, 7, 64, execChunk} {
			var b bytes.Buffer
			w := bufio.NewWriter(&b)
			writeExecRow(w, r, chunk)
			w.Flush()
			if b.String() != want {
				t.Errorf("%q, chunks of %d:\n%s\nwant\n%s", r.Guest, chunk, b.String(), want)
			}
		}
	}
}

// TestWriteBlockChunked: the escaped text is what present.Block makes of
// the whole output, whichever rune, CRLF or line a chunk ends in.
func TestWriteBlockChunked(t *testing.T) {
	long := func(fill string, at string) []byte {
		b := []byte(strings.Repeat(fill, execChunk/len(fill)+3))
		return append(append(b[:execChunk-1:execChunk-1], at...), strings.Repeat("z\n", 10)...)
	}
	for name, in := range map[string][]byte{
		"NULs":          bytes.Repeat([]byte{0}, 3*execChunk+5),
		"lines":         []byte(strings.Repeat("line\tone \x1b[31m\u202e\r\n", execChunk/5)),
		"CRLF at cut":   long("a", "\r\n"),
		"rune at cut":   long("b", "😀"),
		"bidi at cut":   long("c", "\u202e"),
		"invalid":       long("\xff", "\xe2\x82\xac"),
		"no newline":    []byte(strings.Repeat("é", execChunk)),
		"short":         []byte("x"),
		"short newline": []byte("x\n"),
	} {
		var b bytes.Buffer
		writeBlock(&b, in)
		want := present.Block(string(in), 8)
		if !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if b.String() != want {
			t.Errorf("%s: %d bytes differ from Block's %d", name, b.Len(), len(want))
		}
	}
}

// TestExecOutputWrittenInPieces: a guest's 4 MiB of NULs, 24 MiB as JSON
// and 16 MiB as text, reaches the writer in pieces of the size of a few
// chunks: the escaped form is never held whole (it was, three times over,
// in JSON: the encoder's buffer, its copy and SafeJSON's).
func TestExecOutputWrittenInPieces(t *testing.T) {
	r := fleet.ExecResult{Guest: "g", State: fleet.ExecExited, Stdout: make([]byte, 4<<20), Stderr: []byte{0xff}}
	const most = 6*execChunk + 64<<10 // a chunk as \u0000s, and bufio's buffer
	var j maxWriter
	w := bufio.NewWriterSize(&j, 64<<10)
	writeExecRow(w, r, execChunk)
	w.Flush()
	if j.total < 6*4<<20 || j.largest > most {
		t.Errorf("JSON: %d bytes, the largest write %d", j.total, j.largest)
	}
	var x maxWriter
	writeBlock(&x, r.Stdout)
	if x.total < 4*4<<20 || x.largest > most {
		t.Errorf("text: %d bytes, the largest write %d", x.total, x.largest)
	}
}

// maxWriter counts what is written to it, and the largest write.
type maxWriter struct{ total, largest int }

func (m *maxWriter) Write(p []byte) (int, error) {
	m.total += len(p)
	m.largest = max(m.largest, len(p))
	return len(p), nil
}
