package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func readAll(t *testing.T, path string) ([]Entry, int) {
	t.Helper()
	var es []Entry
	bad, err := Read(path, func(e Entry) error { es = append(es, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return es, bad
}

func TestAppendReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "guestdeck")
	l := Open(dir)
	id := l.NewID()
	send, _ := json.Marshal(map[string]string{"execute": "guest-fsfreeze-freeze"})
	if err := l.Append(Entry{ID: id, Phase: Intent, Source: SourceCLI, Action: "freeze",
		Command: []string{"guestdeck", "run", "freeze", "web-1"}, Selector: []string{"web-1"},
		Guests: []Guest{{Name: "web-1", Result: "pending", Sends: []json.RawMessage{send}}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(Entry{ID: id, Phase: Outcome, Source: SourceCLI, Action: "freeze",
		Guests: []Guest{{Name: "web-1", Result: "ok", Detail: "froze 1 filesystem"}}}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v, want 0700", st.Mode(), err)
	}
	if st, _ := os.Stat(l.Path()); st.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", st.Mode())
	}
	es, bad := readAll(t, l.Path())
	if bad != 0 || len(es) != 2 {
		t.Fatalf("read %d entries, %d bad", len(es), bad)
	}
	if es[0].ID != id || es[1].ID != id || es[0].Phase != Intent || es[1].Phase != Outcome {
		t.Errorf("ids/phases: %+v", es)
	}
	if es[0].PID != os.Getpid() || es[0].User == "" || es[0].Time.IsZero() {
		t.Errorf("who/when not filled: %+v", es[0])
	}
	if string(es[0].Guests[0].Sends[0]) != string(send) || es[1].Guests[0].Detail != "froze 1 filesystem" {
		t.Errorf("guests: %+v", es)
	}
}

func TestMissingLogIsEmpty(t *testing.T) {
	es, bad := readAll(t, filepath.Join(t.TempDir(), FileName))
	if len(es) != 0 || bad != 0 {
		t.Fatalf("%v %d", es, bad)
	}
}

// A writer killed mid-line leaves a torn line: it is counted, skipped, and
// the next append starts on a line of its own.
func TestTornLine(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir)
	if err := l.Append(Entry{Phase: Intent, Action: "thaw"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-12-01T10:00:00Z","id":"x","pha`)
	f.Close()
	if err := l.Append(Entry{Phase: Outcome, Action: "thaw"}); err != nil {
		t.Fatal(err)
	}
	es, bad := readAll(t, l.Path())
	if bad != 1 || len(es) != 2 || es[1].Phase != Outcome {
		t.Fatalf("entries %+v, bad %d; want 2 entries and 1 bad line", es, bad)
	}
}

// Writers with their own descriptors (as separate processes have) never
// interleave or lose a line.
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			l := Open(dir)
			for i := range each {
				// Lines of a few KB, past any atomic-write size a
				// filesystem might promise.
				g := make([]Guest, 40)
				for k := range g {
					g[k] = Guest{Name: fmt.Sprintf("w%d-g%d", w, k), Result: "ok"}
				}
				if err := l.Append(Entry{Phase: Outcome, Action: fmt.Sprintf("w%d-%d", w, i), Guests: g}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	es, bad := readAll(t, filepath.Join(dir, FileName))
	if bad != 0 || len(es) != writers*each {
		t.Fatalf("%d entries, %d bad; want %d, 0", len(es), bad, writers*each)
	}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.Action] || len(e.Guests) != 40 {
			t.Fatalf("duplicate or damaged entry %s", e.Action)
		}
		seen[e.Action] = true
	}
}
