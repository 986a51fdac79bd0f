package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Tail reads the newest entries from the end of the file, newest first,
// within its bounds; what it leaves out is reported as older.
func TestTail(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir)
	for i := range 50 {
		if err := l.Append(Entry{Phase: Intent, Action: fmt.Sprintf("act-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	actions := func(r Recent) string {
		var out []string
		for _, e := range r.Entries {
			out = append(out, e.Action)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		name     string
		n        int
		maxBytes int64
		want     string
		older    bool
	}{
		{"all", 100, 1 << 20, "", false},
		{"newest three", 3, 1 << 20, "act-49,act-48,act-47", true},
		{"byte window", 100, 400, "", true},
	}
	for _, c := range cases {
		r, err := Tail(l.Path(), c.n, c.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		got := actions(r)
		switch c.name {
		case "all":
			if len(r.Entries) != 50 || r.Entries[0].Action != "act-49" || r.Entries[49].Action != "act-00" {
				t.Errorf("%s: %s", c.name, got)
			}
		case "byte window":
			// Lines are ~150 bytes: two or three fit, the newest, whole.
			if len(r.Entries) < 1 || len(r.Entries) > 3 || r.Entries[0].Action != "act-49" || r.Bad != 0 {
				t.Errorf("%s: %s (bad %d)", c.name, got, r.Bad)
			}
		default:
			if got != c.want {
				t.Errorf("%s: %s, want %s", c.name, got, c.want)
			}
		}
		if r.Older != c.older {
			t.Errorf("%s: older %v, want %v", c.name, r.Older, c.older)
		}
	}

	// A torn last line is counted, not fatal; a missing log is empty.
	f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-12-01T10:00:00Z","pha`)
	f.Close()
	r, err := Tail(l.Path(), 2, 1<<20)
	if err != nil || r.Bad != 1 || actions(r) != "act-49,act-48" {
		t.Errorf("torn: %+v %v", r, err)
	}
	r, err = Tail(dir+"/none.jsonl", 5, 1<<20)
	if err != nil || len(r.Entries) != 0 {
		t.Errorf("missing: %+v %v", r, err)
	}
}

// A log that is one enormous line costs the window, not the line: the
// line began before the window, so it is older than what was read.
func TestTailHugeLine(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir)
	if err := l.Append(Entry{Phase: Intent, Action: strings.Repeat("x", 1<<20)}); err != nil {
		t.Fatal(err)
	}
	r, err := Tail(l.Path(), 10, 4096)
	if err != nil || len(r.Entries) != 0 || r.Bad != 0 || !r.Older {
		t.Errorf("%d entries, bad %d, older %v, %v", len(r.Entries), r.Bad, r.Older, err)
	}
	// Torn mid-write, with no newline in the window at all: one bad line.
	f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"action":"` + strings.Repeat("y", 8192))
	f.Close()
	r, err = Tail(l.Path(), 10, 4096)
	if err != nil || len(r.Entries) != 0 || r.Bad != 1 || !r.Older {
		t.Errorf("torn: %d entries, bad %d, older %v, %v", len(r.Entries), r.Bad, r.Older, err)
	}
}

// BenchmarkTail: the newest 1000 entries of a 64 MB log (about 190,000
// entries), against reading the whole file as `guestdeck audit` does.
func BenchmarkTail(b *testing.B) {
	path := b.TempDir() + "/" + FileName
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	line, _ := json.Marshal(Entry{Phase: Outcome, Source: SourceDashboard, Action: "freeze", User: "root",
		Guests: []Guest{{Name: "web-01", Address: "unix:/run/qga/web-01.sock", Result: "ok", Detail: "froze 2 filesystems"},
			{Name: "web-02", Address: "unix:/run/qga/web-02.sock", Result: "ok", Detail: "froze 2 filesystems"}}})
	line = append(line, '\n')
	for n := 0; n < 64<<20; n += len(line) {
		f.Write(line)
	}
	f.Close()
	b.Run("tail", func(b *testing.B) {
		for b.Loop() {
			if r, err := Tail(path, 1000, 8<<20); err != nil || len(r.Entries) != 1000 {
				b.Fatal(len(r.Entries), err)
			}
		}
	})
	b.Run("read-all", func(b *testing.B) {
		for b.Loop() {
			if _, err := Read(path, func(Entry) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTailFIFO: a FIFO at the log's path is refused at once, not waited on.
func TestTailFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Tail(p, 10, 1<<20); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Tail on a FIFO: %v", err)
	}
}
