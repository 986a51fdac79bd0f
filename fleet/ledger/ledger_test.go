package ledger

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The helper process: GUESTDECK_LEDGER_CHILD=DIR,TAG,N adds N entries.
func TestMain(m *testing.M) {
	if v := os.Getenv("GUESTDECK_LEDGER_CHILD"); v != "" {
		parts := strings.Split(v, ",")
		n, _ := strconv.Atoi(parts[2])
		l := Open(parts[0])
		for i := range n {
			if _, err := l.Add(Entry{Kind: Freeze, Guest: fmt.Sprintf("%s-%d", parts[1], i), Key: fmt.Sprintf("unix:/%s/%d", parts[1], i)}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestAddLoadRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "guestdeck")
	l := Open(dir)
	if es, err := l.Load(); err != nil || len(es) != 0 {
		t.Fatalf("empty ledger: %v %v", es, err)
	}
	until := time.Now().Add(time.Minute).Round(0)
	a, err := l.Add(Entry{Kind: Freeze, Guest: "db-1", Key: "unix:/run/db-1.sock", Address: "unix:/run/db-1.sock", Who: "run --hold", Until: until})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Add(Entry{Kind: Suspend, Guest: "web-1", Key: "libvirt+qemu:///system/web-1", Mode: "ram", Who: "run suspend"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || a.ID == b.ID || !a.Process.Same(Self()) || a.Since.IsZero() {
		t.Fatalf("added %+v, %+v", a, b)
	}
	es, err := l.Load()
	if err != nil || len(es) != 2 || es[0].ID != a.ID || !es[0].Until.Equal(until) || es[1].Mode != "ram" {
		t.Fatalf("load: %v %+v", err, es)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v %v, want 0700", fi.Mode(), err)
	}
	if fi, err := os.Stat(l.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ledger mode %v %v, want 0600", fi.Mode(), err)
	}
	if err := l.Remove(a.ID); err != nil {
		t.Fatal(err)
	}
	if es, _ := l.Load(); len(es) != 1 || es[0].ID != b.ID {
		t.Fatalf("after remove: %+v", es)
	}
	gone, err := l.RemoveWhere(func(e Entry) bool { return e.Kind == Suspend })
	if err != nil || len(gone) != 1 || gone[0].ID != b.ID {
		t.Fatalf("RemoveWhere: %v %+v", err, gone)
	}
	if es, _ := l.Load(); len(es) != 0 {
		t.Fatalf("after RemoveWhere: %+v", es)
	}
	// No temporary files are left behind.
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	if len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// Concurrent writers with their own file handles never lose an entry:
// goroutines on two Ledger values, and two other processes, at once.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	const perWriter = 40
	var children []*exec.Cmd
	for _, tag := range []string{"p1", "p2"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GUESTDECK_LEDGER_CHILD="+dir+","+tag+","+strconv.Itoa(perWriter))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, cmd)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*perWriter)
	for w := range 4 {
		l := Open(dir) // a Ledger per goroutine pair: separate opens, separate locks
		wg.Go(func() {
			for i := range perWriter {
				if _, err := l.Add(Entry{Kind: Freeze, Guest: "g", Key: fmt.Sprintf("unix:/g%d/%d", w, i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	for _, c := range children {
		if err := c.Wait(); err != nil {
			t.Fatalf("child writer: %v", err)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	es, err := Open(dir).Load()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, e := range es {
		keys[e.Key] = true
	}
	if want := 6 * perWriter; len(es) != want || len(keys) != want {
		t.Fatalf("%d entries (%d distinct), want %d", len(es), len(keys), want)
	}
	// Removing concurrently loses nothing either.
	wg = sync.WaitGroup{}
	for w := range 4 {
		l := Open(dir)
		wg.Go(func() {
			_, err := l.RemoveWhere(func(e Entry) bool { return strings.HasPrefix(e.Key, fmt.Sprintf("unix:/g%d/", w)) })
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if es, _ := Open(dir).Load(); len(es) != 2*perWriter {
		t.Fatalf("after concurrent removes: %d entries, want %d", len(es), 2*perWriter)
	}
}

func TestCorruptLedger(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{"torn", `{"version":1,"entries":[{"id":"a","kind":"freeze","key":"unix:/x","gu`, "unexpected EOF"},
		{"garbage", "\x00\x00\x00\x00", "invalid character"},
		{"empty", "", "EOF"},
		{"trailing", `{"version":1,"entries":[]}{"version":1}`, "data after"},
		{"future", `{"version":7,"entries":[]}`, "version 7"},
		{"bad entry", `{"version":1,"entries":[{"id":"","kind":"freeze","key":"k"}]}`, "entry 0"},
		{"unknown field", `{"version":1,"entries":[],"extra":1}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := Open(dir)
			if err := os.WriteFile(l.Path(), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := l.Load()
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != l.Path() || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), l.Path()) {
				t.Fatalf("Load: %v; want a CorruptError naming %s and %q", err, l.Path(), tc.want)
			}
			var warned error
			l.Warn = func(err error) { warned = err }
			e, err := l.Add(Entry{Kind: Freeze, Guest: "g", Key: "unix:/g"})
			if err != nil {
				t.Fatalf("Add on a corrupt ledger: %v", err)
			}
			if !errors.As(warned, &ce) || ce.MovedTo == "" {
				t.Fatalf("no warning naming where the corrupt file went: %v", warned)
			}
			if b, err := os.ReadFile(ce.MovedTo); err != nil || string(b) != tc.content {
				t.Errorf("the corrupt file was not kept as it was: %q %v", b, err)
			}
			if es, err := l.Load(); err != nil || len(es) != 1 || es[0].ID != e.ID {
				t.Errorf("after Add: %+v %v", es, err)
			}
		})
	}
}

// A special file where the ledger should be is reported, never opened for
// reading (a FIFO would block) and never replaced by a reader.
func TestLedgerSpecialFile(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir)
	if err := syscall.Mkfifo(l.Path(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := l.Load()
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Load on a FIFO: %v", err)
	}
	if fi, err := os.Lstat(l.Path()); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("a reader touched the FIFO: %v %v", fi, err)
	}
	// The lock file must be a regular file too.
	dir2 := t.TempDir()
	if err := os.Symlink("/dev/null", filepath.Join(dir2, lockName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir2).Add(Entry{Kind: Freeze, Key: "k"}); err == nil {
		t.Fatal("Add followed a symlinked lock file")
	}
}

func TestProcessAlive(t *testing.T) {
	self := Self()
	if !self.Alive() || self.Start == 0 || self.Boot == "" {
		t.Fatalf("self %+v not alive", self)
	}
	reused := self
	reused.Start++
	if reused.Alive() {
		t.Error("a PID with another start time counts as alive (PID reuse)")
	}
	otherBoot := self
	otherBoot.Boot = "00000000-0000-0000-0000-000000000000"
	if otherBoot.Alive() {
		t.Error("a process from another boot counts as alive")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if (Process{PID: cmd.Process.Pid, Boot: self.Boot}).Alive() {
		t.Error("an exited process counts as alive")
	}
}

// BenchmarkAddRemove is one freeze's ledger cost: an entry written before
// the freeze and removed after the thaw (each a locked, fsynced rewrite),
// with 100 other entries in the file.
func BenchmarkAddRemove(b *testing.B) {
	l := Open(b.TempDir())
	for i := range 100 {
		if _, err := l.Add(Entry{Kind: Freeze, Guest: "g", Key: fmt.Sprintf("unix:/other/%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		e, err := l.Add(Entry{Kind: Freeze, Guest: "g", Key: "unix:/g"})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Remove(e.ID); err != nil {
			b.Fatal(err)
		}
	}
}
