package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// A local mistake must not cost the guest its file: putting a directory used
// to open (and truncate) the guest's file before reading the source failed.
func TestPutDirectoryRefusedBeforeSending(t *testing.T) {
	farm, cfg := simFarm(t, 1)
	r := gd(t, 20*time.Second, "-c", cfg, "put", t.TempDir(), "s0", "/tmp/x")
	if r.code != 2 || !strings.Contains(r.stderr, "is a directory") || !strings.Contains(r.stderr, "nothing was sent") {
		t.Errorf("put DIR: exit %d stderr %q; want 2, naming the directory and that nothing was sent", r.code, r.stderr)
	}
	if n := farm.Guests()[0].Calls("guest-file-open"); n != 0 {
		t.Errorf("guest got %d guest-file-open calls for a directory source", n)
	}
}

// get into a missing directory names the destination, not an internal temp file.
func TestGetMissingDestinationDir(t *testing.T) {
	_, cfg := simFarm(t, 1)
	dest := filepath.Join(t.TempDir(), "nodir", "os-release")
	r := gd(t, 20*time.Second, "-c", cfg, "get", "s0", "/etc/os-release", dest)
	if r.code != 1 || !strings.Contains(r.stderr, filepath.Dir(dest)) || strings.Contains(r.stderr, ".part") {
		t.Errorf("get into missing dir: exit %d stderr %q; want 1 and a message naming %s", r.code, r.stderr, filepath.Dir(dest))
	}
	if _, err := os.Stat(filepath.Dir(dest)); !os.IsNotExist(err) {
		t.Errorf("destination dir appeared: %v", err)
	}
}

// A bad theme is reported once, naming it (it used to say `theme "x": theme "x": ...`).
func TestBadThemeSaysItOnce(t *testing.T) {
	testpeers.Require(t, testpeers.NeedTmux)
	dir, err := os.MkdirTemp("/tmp", "gdt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := dir + "/tmux.sock"
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	tmux(t, sock, "new-session", "-d", "-s", "gd", "-x", "200", "-y", "10", "sh", "-c", binary+" --demo --theme bogus; echo exit=$?; sleep 30")
	screen := waitScreen(t, sock, "exit=2", 15*time.Second)
	if strings.Count(screen, `"bogus"`) != 1 || !strings.Contains(screen, "built-in themes") {
		t.Errorf("want one mention of the theme and the built-ins:\n%s", screen)
	}
}

// simFarmWith is simFarm with each guest's configuration given.
func simFarmWith(t *testing.T, n int, cfg func(i int) sim.Config) (*sim.Farm, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	farm, err := sim.ServeDir(dir, n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close(); os.RemoveAll(dir) })
	var guests [][2]string
	for i, s := range farm.Sockets() {
		guests = append(guests, [2]string{farm.Guests()[i].Config().Name, "unix:" + s})
	}
	return farm, fleetFile(t, "", guests...)
}

// onlyEntries fails unless dir holds exactly names (no temporary file left).
func onlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

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

// TestGetSpecialDestinations copies a file from a real qemu-ga into every
// kind of destination: a device, a FIFO and a symlink to the device are
// written through and stay what they were; a socket is refused; a regular
// file is replaced whole (a new inode, the old mode), never written over.
func TestGetSpecialDestinations(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mknod needs root (CI=true: run the tests as root)")
		}
		t.Skip("mknod needs root: run the tests as root")
	}
	ag := testpeers.StartAgents(t, 1)
	cfg := fleetFile(t, "", [2]string{"q1", ag.Addrs()[0]})
	data := bytes.Repeat([]byte("from the guest agent\n"), 20000) // 420 kB: more than a pipe holds
	remote := filepath.Join(ag.Writable, "src.txt")
	if err := os.WriteFile(remote, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	null, fifo, link, sock, reg := filepath.Join(dir, "null"), filepath.Join(dir, "fifo"), filepath.Join(dir, "link"), filepath.Join(dir, "sock"), filepath.Join(dir, "regular")
	if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, int(devNull)); err != nil {
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
	if err := os.WriteFile(reg, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(reg, 0o640)

	isDevNull := func(p string) {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil || st.Mode()&fs.ModeCharDevice == 0 || st.Sys().(*syscall.Stat_t).Rdev != devNull {
			t.Errorf("%s is no longer the null device: %v %v", p, st.Mode(), err)
		}
	}
	// Every destination here exists: get writes into it only with --force.
	get := func(dest string) result {
		return gd(t, 60*time.Second, "-c", cfg, "get", "--force", "q1", remote, dest)
	}
	if r := gd(t, 60*time.Second, "-c", cfg, "get", "q1", remote, null); r.code != 2 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("get into an existing device without --force: exit %d %s", r.code, r.stderr)
	}

	if r := get(null); r.code != 0 {
		t.Errorf("get into a char device: exit %d %s", r.code, r.stderr)
	}
	isDevNull(null)
	if r := get(link); r.code != 0 {
		t.Errorf("get into a symlink to a char device: exit %d %s", r.code, r.stderr)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", st.Mode(), err)
	}
	isDevNull(null)

	read := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until get opens the other end
		if err != nil {
			read <- nil
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		read <- b
	}()
	if r := get(fifo); r.code != 0 {
		t.Errorf("get into a FIFO: exit %d %s", r.code, r.stderr)
	}
	select {
	case b := <-read:
		if !bytes.Equal(b, data) {
			t.Errorf("the FIFO's reader got %d bytes, want %d", len(b), len(data))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the FIFO's reader got no end of file")
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", st.Mode(), err)
	}

	r := get(sock)
	if r.code != 2 || !strings.Contains(r.stderr, sock+" is a socket") || !strings.Contains(r.stderr, "nothing was read") {
		t.Errorf("get into a socket: exit %d stderr %q; want 2, refused", r.code, r.stderr)
	}
	if st, err := os.Lstat(sock); err != nil || st.Mode()&fs.ModeSocket == 0 {
		t.Errorf("the socket was replaced: %v %v", st.Mode(), err)
	}

	before := inode(t, reg)
	if r := get(reg); r.code != 0 {
		t.Errorf("get over a regular file: exit %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(reg); !bytes.Equal(b, data) {
		t.Errorf("the regular file holds %d bytes, want %d", len(b), len(data))
	}
	if st, _ := os.Stat(reg); inode(t, reg) == before || st.Mode().Perm() != 0o640 {
		t.Errorf("the regular file was written over (inode %d -> %d) or lost its mode (%v): want a replacement", before, inode(t, reg), st.Mode())
	}
	// A directory keeps its meaning: the file lands inside under its name.
	if r := get(dir); r.code != 0 {
		t.Errorf("get into a directory: exit %d %s", r.code, r.stderr)
	}
	onlyEntries(t, dir, "null", "fifo", "link", "sock", "regular", "src.txt")
}

// An interrupted get leaves the destination as it was.
func TestGetInterruptedKeepsOldFile(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB: several reads
	farm, cfg := simFarmWith(t, 1, func(int) sim.Config {
		c := sim.DefaultConfig("s0")
		c.Files = map[string]sim.File{"/data/big": {Data: big}}
		return c
	})
	dir := t.TempDir()
	dest := filepath.Join(dir, "big")
	os.WriteFile(dest, []byte("old\n"), 0o644)
	before := inode(t, dest)
	farm.Guests()[0].DropBefore("guest-file-read", 1)
	r := gd(t, 30*time.Second, "-c", cfg, "get", "--force", "s0", "/data/big", dest)
	if r.code != 1 {
		t.Errorf("interrupted get: exit %d stderr %q, want 1", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(dest); string(b) != "old\n" || inode(t, dest) != before {
		t.Errorf("after an interrupted get the destination holds %d bytes (inode %d, was %d), want the old file", len(b), inode(t, dest), before)
	}
	onlyEntries(t, dir, "big")
	// Uninterrupted, it is replaced.
	if r := gd(t, 30*time.Second, "-c", cfg, "get", "--force", "s0", "/data/big", dest); r.code != 0 {
		t.Fatalf("get: exit %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(dest); string(b) != big {
		t.Errorf("after get the destination holds %d bytes, want %d", len(b), len(big))
	}
}

// TestPutInterrupted: the connection drops after five chunks. Where the
// agent allows guest-exec, the guest's file is untouched and put says so;
// where it does not, put says the file is now partial and how much arrived.
func TestPutInterrupted(t *testing.T) {
	const old = "old content\n"
	farm, cfg := simFarmWith(t, 2, func(i int) sim.Config {
		c := sim.DefaultConfig(fmt.Sprintf("s%d", i))
		c.Files = map[string]sim.File{"/srv/f.txt": {Data: old}}
		c.NoExec = i == 1
		return c
	})
	src := filepath.Join(t.TempDir(), "src")
	data := bytes.Repeat([]byte("new content\n"), 1<<20/12+1)[:1<<20]
	os.WriteFile(src, data, 0o644)
	for i, want := range []string{
		"/srv/f.txt on s0 was not changed",
		"/srv/f.txt on s1 is now partial: 240 KiB of 1.0 MiB written",
	} {
		name := fmt.Sprintf("s%d", i)
		farm.Guests()[i].DropBefore("guest-file-write", 5)
		r := gd(t, 60*time.Second, "-c", cfg, "put", src, name, "/srv/f.txt")
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: put interrupted: exit %d stderr %q; want 1 and %q", name, r.code, r.stderr, want)
		}
		cat := gd(t, 30*time.Second, "-c", cfg, "cat", name, "/srv/f.txt")
		switch {
		case i == 0 && cat.stdout != old:
			t.Errorf("s0: the guest's file changed: %d bytes", len(cat.stdout))
		case i == 1 && cat.stdout != string(data[:5*48<<10]):
			t.Errorf("s1: the guest's file holds %d bytes, want the %d that arrived", len(cat.stdout), 5*48<<10)
		}
		// Uninterrupted, it is written whole.
		if r := gd(t, 60*time.Second, "-c", cfg, "put", src, name, "/srv/f.txt"); r.code != 0 {
			t.Fatalf("%s: put: exit %d %s", name, r.code, r.stderr)
		}
		if cat := gd(t, 30*time.Second, "-c", cfg, "cat", name, "/srv/f.txt"); cat.stdout != string(data) {
			t.Errorf("%s: after put the guest's file holds %d bytes, want %d", name, len(cat.stdout), len(data))
		}
	}
}

// TestGetIntoDirectoryGuestName: `get GUEST PATH DIR` names the local file
// after the guest's: a name with escapes, or one that is no file name (.,
// ..), is refused before anything is read, and DIR is left as it was;
// named explicitly the file is written, and every line printed about it is
// escaped.
func TestGetIntoDirectoryGuestName(t *testing.T) {
	cfg := hostileFarm(t)
	evil := "/tmp/evil" + sim.Hostile
	dir := t.TempDir()
	for _, p := range []string{evil, "/etc/..", "/tmp/."} {
		r := gd(t, 30*time.Second, "-c", cfg, "get", "evil", p, dir)
		terminalSafe(t, "get stderr", r.stderr)
		if r.code != 2 || !strings.Contains(r.stderr, "nothing was read") || !strings.Contains(r.stderr, "name the local file") {
			t.Errorf("get %q into a directory: exit %d, want 2, refused\nstderr: %s", p, r.code, r.stderr)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("get %q into a directory wrote %q", p, ents[0].Name())
		}
	}
	dest := filepath.Join(dir, "named")
	r := gd(t, 30*time.Second, "-c", cfg, "get", "evil", evil, dest)
	terminalSafe(t, "get stderr", r.stderr)
	if got, err := os.ReadFile(dest); r.code != 0 || err != nil || !strings.HasPrefix(string(got), "line one\n") {
		t.Errorf("get to a named file: exit %d, %v %q\nstderr: %s", r.code, err, got, r.stderr)
	}
	if !strings.Contains(r.stderr, `evil:/tmp/evil\x1b]0;OWNED`) {
		t.Errorf("get's summary line does not show the path escaped: %q", r.stderr)
	}
	r = gd(t, 30*time.Second, "-c", cfg, "put", dest, "evil", evil)
	terminalSafe(t, "put stderr", r.stderr)
	if r.code != 0 || !strings.Contains(r.stderr, `evil:/tmp/evil\x1b]0;OWNED`) {
		t.Errorf("put: exit %d, summary %q", r.code, r.stderr)
	}
}

// TestAgentReplyExact: agent prints the reply as the agent wrote it, only
// indented: a 64-bit count keeps every digit (a float64 round trip made
// 4611686018427387905 into 4611686018427387904) and members keep their
// order.
func TestAgentReplyExact(t *testing.T) {
	_, cfg := simFarmWith(t, 1, func(int) sim.Config {
		c := sim.DefaultConfig("g")
		total, used := uint64(1<<62+1), uint64(1<<53+1)
		c.Filesystems[0].TotalBytes, c.Filesystems[0].UsedBytes = &total, &used
		return c
	})
	r := gd(t, 30*time.Second, "-c", cfg, "agent", "g", `{"execute":"guest-get-fsinfo"}`)
	if r.code != 0 || !strings.Contains(r.stdout, "4611686018427387905") || !strings.Contains(r.stdout, "9007199254740993") {
		t.Errorf("agent guest-get-fsinfo: exit %d, the counts are not exact:\n%s", r.code, r.stdout)
	}
	if i, j := strings.Index(r.stdout, `"name"`), strings.Index(r.stdout, `"mountpoint"`); i < 0 || j < i {
		t.Errorf("agent reordered the reply's members:\n%s", r.stdout)
	}
}

// TestAgentReadonly: agent under read-only mode asks the command table, the
// same rule and message as the fleet: a command that only reports is sent,
// one that may change the guest (guest-exec-status reaps the process it
// reports) or that the table does not know is refused before any guest is
// asked, whether --readonly or the fleet file says so.
func TestAgentReadonly(t *testing.T) {
	farm, cfg := simFarm(t, 1)
	dir := filepath.Dir(cfg)
	roCfg := filepath.Join(dir, "ro.toml")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(roCfg, append([]byte("[defaults]\nreadonly = true\n"), text...), 0o644); err != nil {
		t.Fatal(err)
	}
	const refusedMut = "guestdeck: agent: refused under --readonly (or readonly = true in the fleet file): read-only mode allows only commands that report, and guest-exec-status may change the guest; nothing was sent\n"
	const refusedUnknown = "guestdeck: agent: refused under --readonly (or readonly = true in the fleet file): read-only mode allows only commands that report, and \"guest-made-up\" is not a command guestdeck knows; nothing was sent\n"
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string // exact; "" for a reply
	}{
		{"mutating", []string{"--readonly", "-c", cfg, "agent", "s0", `{"execute":"guest-exec-status","arguments":{"pid":1}}`}, exitUsage, refusedMut},
		{"mutating, fleet file", []string{"-c", roCfg, "agent", "s0", `{"execute":"guest-exec-status","arguments":{"pid":1}}`}, exitUsage, refusedMut},
		{"unknown", []string{"--readonly", "-c", cfg, "agent", "s0", `{"execute":"guest-made-up"}`}, exitUsage, refusedUnknown},
		{"unknown, fleet file", []string{"-c", roCfg, "agent", "s0", `{"execute":"guest-made-up"}`}, exitUsage, refusedUnknown},
		{"reports", []string{"--readonly", "-c", cfg, "agent", "s0", `{"execute":"guest-get-time"}`}, exitOK, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := farm.Guests()[0]
			before := g.Calls("guest-get-time")
			r := gd(t, 30*time.Second, tt.args...)
			if r.code != tt.code || r.stderr != tt.stderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			if n := g.Calls("guest-exec-status") + g.Calls("guest-made-up"); n != 0 {
				t.Errorf("%d refused commands reached the guest", n)
			}
			if tt.code == exitOK && g.Calls("guest-get-time") != before+1 {
				t.Errorf("guest-get-time was not sent: stdout %q", r.stdout)
			}
		})
	}
}
