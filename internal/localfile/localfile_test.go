package localfile

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestAtomic: a new file gets 0644 less the umask, a replaced one keeps its
// mode; Abort leaves the old content and no temporary file; a symlink to a
// file is followed, a dangling one replaced.
func TestAtomic(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o027) // this test binary's own umask; nothing else runs
	t.Cleanup(func() { syscall.Umask(old) })
	ctx := t.Context()
	write := func(p, s string, commit bool) error {
		t.Helper()
		f, err := Create(ctx, p)
		if err != nil {
			return err
		}
		if f.InPlace() {
			t.Fatalf("%s written in place", p)
		}
		f.Write([]byte(s))
		if !commit {
			f.Abort()
			return nil
		}
		return f.Commit()
	}
	fresh := filepath.Join(dir, "fresh")
	if err := write(fresh, "one", true); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(fresh); st.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, want 0640 (0644 less umask 027)", st.Mode().Perm())
	}
	os.Chmod(fresh, 0o604)
	if err := write(fresh, "two", true); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(fresh); st.Mode().Perm() != 0o604 {
		t.Errorf("replaced file mode %v, want the old 0604", st.Mode().Perm())
	}
	if err := write(fresh, "three", false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(fresh); string(b) != "two" {
		t.Errorf("after Abort: %q, want the old content", b)
	}
	// Through a symlink to a file: the file is replaced, the link stays.
	link := filepath.Join(dir, "link")
	os.Symlink("fresh", link)
	if err := write(link, "four", true); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Lstat(link); st.Mode()&fs.ModeSymlink == 0 {
		t.Error("the symlink was replaced")
	}
	if b, _ := os.ReadFile(fresh); string(b) != "four" {
		t.Errorf("the link's target holds %q", b)
	}
	// A dangling symlink is replaced, not followed out of the directory.
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), dangling)
	if err := write(dangling, "five", true); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Lstat(dangling); !st.Mode().IsRegular() {
		t.Errorf("dangling symlink: now %v, want a regular file", st.Mode())
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"dangling", "fresh", "link"}) {
		t.Errorf("%s holds %q", dir, got)
	}
}

// A special file that appears while a download runs is not replaced.
func TestCommitRechecks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	f, err := Create(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("data"))
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit replaced a FIFO that appeared meanwhile")
	}
	if st, _ := os.Lstat(p); st.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is now %v", st.Mode())
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"x"}) {
		t.Errorf("%s holds %q", dir, got)
	}
}

// Refused kinds, and a FIFO nobody reads: Create waits until ctx ends.
func TestRefusedAndWaiting(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Create(t.Context(), sock); !errors.Is(err, ErrRefused) {
		t.Errorf("socket: %v, want ErrRefused", err)
	}
	if _, err := Create(t.Context(), dir); err == nil || !errors.Is(err, syscall.EISDIR) {
		t.Errorf("directory: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := Create(ctx, fifo); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("FIFO without a reader: %v, want the context's end", err)
	}
	// With a reader it opens; a cancel then ends a write the reader stalls.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wctx, wcancel := context.WithCancel(t.Context())
	f, err := Create(wctx, fifo)
	if err != nil {
		t.Fatal(err)
	}
	if !f.InPlace() || f.Kind() != FIFO {
		t.Fatalf("FIFO opened as %v, in place %v", f.Kind(), f.InPlace())
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.Write(make([]byte, 4<<20)) // more than the pipe holds: blocks
		done <- err
	}()
	wcancel()
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("stalled write after cancel: %v", err)
	}
	f.Abort()
}

// TestCreateNew: get without --force. Whatever exists is refused before
// anything is written; a file that appears during the download is left
// alone; a new file is 0644 even under a group-writable umask.
func TestCreateNew(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o002)
	t.Cleanup(func() { syscall.Umask(old) })
	existing := filepath.Join(dir, "existing")
	os.WriteFile(existing, []byte("old"), 0o600)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("nowhere", dangling)
	for _, p := range []string{existing, dangling, dir} {
		if _, err := CreateNew(p); !errors.Is(err, fs.ErrExist) {
			t.Errorf("CreateNew(%s) = %v, want fs.ErrExist", p, err)
		}
	}
	fresh := filepath.Join(dir, "fresh")
	f, err := CreateNew(fresh)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(fresh); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("new file: %v %v, want mode 0644 under umask 002", st.Mode(), err)
	}
	racy := filepath.Join(dir, "racy")
	f, err = CreateNew(racy)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("from the guest"))
	os.WriteFile(racy, []byte("appeared"), 0o600)
	if err := f.Commit(); err == nil {
		t.Error("Commit replaced a file that appeared during the download")
	}
	if b, _ := os.ReadFile(racy); string(b) != "appeared" {
		t.Errorf("racy holds %q", b)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"dangling", "existing", "fresh", "racy"}) {
		t.Errorf("left behind: %v", got)
	}
}
