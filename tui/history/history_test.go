package history

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestSaveLoad: entries come back oldest first, the file is 0600 in a
// directory made 0700, and a save replaces the file rather than appending.
func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "guestdeck")
	f := Open(filepath.Join(dir, "filters"))
	if got, err := f.Load(); err != nil || got != nil {
		t.Fatalf("Load of a missing file = %q, %v; want nothing", got, err)
	}
	if err := f.Save([]string{"web", `re:^db-\d+`, "web", "  ", "!state:ready"}); err != nil {
		t.Fatal(err)
	}
	got, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`re:^db-\d+`, "web", "!state:ready"}; !slices.Equal(got, want) {
		t.Errorf("Load = %q, want %q", got, want)
	}
	for path, want := range map[string]os.FileMode{f.Path(): 0o600, dir: 0o700 | os.ModeDir} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
		}
	}
	if err := f.Save([]string{"one"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Load(); !slices.Equal(got, []string{"one"}) {
		t.Errorf("after a second save: %q", got)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

// TestLoadHostile: a history file someone else wrote cannot inject into the
// screen or grow memory: escapes and controls are dropped, long lines are
// dropped, only MaxBytes are read and MaxEntries kept.
func TestLoadHostile(t *testing.T) {
	var b strings.Builder
	b.WriteString("ok-1\n\x1b]52;c;AAAA\x07\nbidi\u202eevil\nbad\xffutf8\ntab\there\n")
	b.WriteString(strings.Repeat("x", MaxEntryBytes+1) + "\n")
	b.WriteString("ok-2\n")
	for i := range 3 * MaxEntries {
		fmt.Fprintf(&b, "n-%d\n", i)
	}
	b.WriteString(strings.Repeat("y", 2*MaxBytes)) // one huge line at the end
	path := filepath.Join(t.TempDir(), "filters")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Open(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != MaxEntries {
		t.Errorf("%d entries kept, want %d", len(got), MaxEntries)
	}
	if got[len(got)-1] != fmt.Sprintf("n-%d", 3*MaxEntries-1) {
		t.Errorf("newest entry %q", got[len(got)-1])
	}
	for _, e := range got {
		if !strings.HasPrefix(e, "n-") {
			t.Errorf("kept %q", e)
		}
	}
	// A small hostile file: only the clean entries survive.
	if err := os.WriteFile(path, []byte("ok-1\n\x1b[2Jclear\nok-2\r\n\u200bzw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := Open(path).Load(); !slices.Equal(got, []string{"ok-1", "ok-2"}) {
		t.Errorf("Load = %q, want the clean entries", got)
	}
}

// TestSpecialFiles: a FIFO or a link at the path is neither read (a FIFO
// would block) nor replaced.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, link, dir} {
		f := Open(p)
		if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load(%s) = %v, want a not-a-regular-file error", p, err)
		}
		if err := f.Save([]string{"x"}); err == nil {
			t.Errorf("Save(%s) replaced it", p)
		}
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode().Type() != os.ModeNamedPipe {
		t.Errorf("the FIFO was replaced: %v %v", st, err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode().Type() != os.ModeSymlink {
		t.Errorf("the link was replaced: %v %v", st, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Errorf("the link's target changed: %q", b)
	}
}

func TestAdd(t *testing.T) {
	var h []string
	for i := range MaxEntries + 5 {
		h = Add(h, fmt.Sprint(i))
	}
	h = Add(h, "50")
	if len(h) != MaxEntries || h[len(h)-1] != "50" || h[0] != "5" || slices.Index(h, "50") != len(h)-1 {
		t.Errorf("Add keeps %d, first %q, last %q", len(h), h[0], h[len(h)-1])
	}
	if got := Add(h, "\x1b[31m"); len(got) != len(h) {
		t.Error("Add took an escape")
	}
}
