package browser

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// devNull is the device number of /dev/null (major 1, minor 3).
const devNull = 1<<8 | 3

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func lmode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

// downloadTo opens the file's download prompt, names dest and, when the
// browser asks before writing into something that exists, answers yes.
// It returns the question asked ("" if none).
func (h *harness) downloadTo(remote, dest string) string {
	h.t.Helper()
	if h.m.view == nil || h.m.view.path != remote {
		h.press("o")
		h.prompt(remote)
	}
	h.press("d")
	h.prompt(dest)
	q := ""
	if h.m.confirm != nil {
		q = h.m.confirm.question
		h.press("y")
	}
	return q
}

// TestDownloadSpecialDestinations: the dashboard's download never replaces
// a special file. A device, a FIFO and a symlink to the device are written
// into (after asking) and stay what they were; a socket is refused; a
// regular file is replaced whole, and an interrupted download leaves it as
// it was.
func TestDownloadSpecialDestinations(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mknod needs root (CI=true: run the tests as root)")
		}
		t.Skip("mknod needs root: run the tests as root")
	}
	f, guests := simFleet(t, fleet.Options{}, guestConfig("g"))
	want := guests["g"].Config().Files["/data/big.bin"].Data
	h := newHarness(t, f, "g", monoOpts())
	dir := t.TempDir()
	null, fifo, link, sock, reg := filepath.Join(dir, "null"), filepath.Join(dir, "fifo"), filepath.Join(dir, "link"), filepath.Join(dir, "sock"), filepath.Join(dir, "regular")
	if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, devNull); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("null", link); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.WriteFile(reg, []byte("old\n"), 0o600)

	isDevNull := func() {
		t.Helper()
		st, err := os.Stat(null)
		if err != nil || st.Mode()&fs.ModeCharDevice == 0 || st.Sys().(*syscall.Stat_t).Rdev != devNull {
			t.Errorf("%s is no longer the null device: %v %v", null, st.Mode(), err)
		}
	}
	if q := h.downloadTo("/data/big.bin", null); q != null+" is a character device: write the download into it?" {
		t.Errorf("question %q", q)
	}
	h.wantMsg("downloaded /data/big.bin (3.0 MiB) to " + null)
	isDevNull()
	h.downloadTo("/data/big.bin", link)
	h.wantMsg("downloaded /data/big.bin (3.0 MiB) to " + link)
	if lmode(t, link)&fs.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v", lmode(t, link))
	}
	isDevNull()

	read := make(chan []byte, 1)
	go func() {
		r, err := os.Open(fifo) // blocks until the download opens the other end
		if err != nil {
			read <- nil
			return
		}
		b, _ := io.ReadAll(r)
		r.Close()
		read <- b
	}()
	if q := h.downloadTo("/data/big.bin", fifo); q != fifo+" is a FIFO: write the download into it?" {
		t.Errorf("question %q", q)
	}
	h.wantMsg("downloaded /data/big.bin (3.0 MiB) to " + fifo)
	select {
	case b := <-read:
		if string(b) != want {
			t.Errorf("the FIFO's reader got %d bytes, want %d", len(b), len(want))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the FIFO's reader got no end of file")
	}
	if lmode(t, fifo)&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v", lmode(t, fifo))
	}

	opens := guests["g"].Calls("guest-file-open")
	h.downloadTo("/data/big.bin", sock)
	h.wantMsg("download /data/big.bin: refused: " + sock + " is a socket")
	if lmode(t, sock)&fs.ModeSocket == 0 {
		t.Errorf("the socket was replaced: %v", lmode(t, sock))
	}
	if n := guests["g"].Calls("guest-file-open") - opens; n != 0 {
		t.Errorf("%d opens for a refused download", n)
	}

	before := inode(t, reg)
	if q := h.downloadTo("/data/big.bin", reg); q != reg+" exists: overwrite it?" {
		t.Errorf("question %q", q)
	}
	if b, _ := os.ReadFile(reg); string(b) != want || inode(t, reg) == before || lmode(t, reg).Perm() != 0o600 {
		t.Errorf("regular file: %d bytes, inode %d (was %d), mode %v; want a replacement of the same mode", len(b), inode(t, reg), before, lmode(t, reg))
	}
	// Interrupted: the old content stays.
	os.WriteFile(reg, []byte("old again\n"), 0o600)
	before = inode(t, reg)
	guests["g"].DropBefore("guest-file-read", 2)
	h.downloadTo("/data/big.bin", reg)
	t.Log(h.m.msg)
	if !strings.HasPrefix(h.m.msg, "download /data/big.bin: ") || strings.HasPrefix(h.m.msg, "downloaded") {
		t.Errorf("interrupted download: %q", h.m.msg)
	}
	if b, _ := os.ReadFile(reg); string(b) != "old again\n" || inode(t, reg) != before {
		t.Errorf("after an interrupted download the file holds %q (inode %d, was %d)", b, inode(t, reg), before)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"fifo", "link", "null", "regular", "sock"}) {
		t.Errorf("%s holds %q: a temporary file is left", dir, names)
	}
}

// TestUploadInterrupted: the dashboard's upload says what the guest's file
// holds after the connection drops midway: untouched where the agent allows
// guest-exec, partial (with how much) where it does not.
func TestUploadInterrupted(t *testing.T) {
	withExec, noExec := guestConfig("ex"), guestConfig("noex")
	noExec.NoExec = true
	f, guests := simFleet(t, fleet.Options{}, withExec, noExec)
	src := filepath.Join(t.TempDir(), "up.bin")
	data := bytes.Repeat([]byte("uploaded\n"), 1<<20/9+1)[:1<<20]
	os.WriteFile(src, data, 0o644)
	for _, tc := range []struct{ guest string }{{"ex"}, {"noex"}} {
		t.Run(tc.guest, func(t *testing.T) {
			old := guests[tc.guest].Config().Files["/data/hello.txt"].Data
			h := newHarness(t, f, tc.guest, monoOpts())
			guests[tc.guest].DropBefore("guest-file-write", 5)
			h.run(h.m.startUpload(uploadPlan{local: src, size: int64(len(data)), remote: "/data/hello.txt"}))
			outcome := "; /data/hello.txt on ex was not changed"
			if tc.guest == "noex" {
				outcome = "; /data/hello.txt on noex is now partial: 240 KiB of 1.0 MiB written"
			}
			t.Log(h.m.msg)
			if !strings.HasPrefix(h.m.msg, "upload to /data/hello.txt: ") || !strings.HasSuffix(h.m.msg, outcome) {
				t.Fatalf("message %q, want it to end %q", h.m.msg, outcome)
			}
			var got bytes.Buffer
			if _, err := f.ReadFile(context.Background(), tc.guest, "/data/hello.txt", &got, nil); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.guest == "ex" && got.String() != old:
				t.Errorf("the guest's file changed: %d bytes", got.Len())
			case tc.guest == "noex" && !bytes.Equal(got.Bytes(), data[:5*48<<10]):
				t.Errorf("the guest's file holds %d bytes, want the %d that arrived", got.Len(), 5*48<<10)
			}
			ents, err := f.ListDir(context.Background(), "ex", "/data")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if strings.Contains(e.Name, ".part") {
					t.Errorf("temporary copy left: %q", e.Name)
				}
			}
		})
	}
}
