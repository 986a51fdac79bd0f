package agentclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// oddNames are file names a guest user can create that a line-based listing
// got wrong: newlines (one forging a whole record), leading and trailing
// blanks, control and escape bytes, invalid UTF-8, glob and option lookalikes.
var oddNames = []string{
	"plain.txt",
	"new\nline",
	"81a4 99 1700000000\nforged",
	"\nstarts with a newline",
	"ends with a newline\n",
	" leading space",
	"trailing space ",
	"tab\there",
	"carriage\rreturn",
	`back\slash`,
	"\x1b[31mred\x1b[0m",
	"bell\a",
	"\xff\xfe not utf-8",
	"bidi\u202eexe.txt",
	"-dash",
	"--",
	"*",
	"?",
	"quote\"'",
	".hidden",
	"..dots",
	"ünïcödé",
}

// record is one entry as ListDirScript prints it.
func record(mode uint32, size, mtime int64, name string) string {
	return fmt.Sprintf("%x %d %d\n%s\x00", mode, size, mtime, name)
}

func TestParseListDirExactNames(t *testing.T) {
	var out strings.Builder
	out.WriteString(record(0o40755, 4096, 1, "."))
	out.WriteString(record(0o40755, 4096, 1, ".."))
	for i, n := range oddNames {
		out.WriteString(record(0o100644, int64(i), 1700000000, n))
	}
	ents, err := agentclient.ParseListDir([]byte(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(oddNames)+1 || ents[0].Name != ".." {
		t.Fatalf("%d entries, want .. and %d names", len(ents), len(oddNames))
	}
	for i, n := range oddNames {
		e := ents[i+1]
		if e.Name != n || e.Size != int64(i) || !e.Mode.IsRegular() || e.ModTime.Unix() != 1700000000 {
			t.Errorf("entry %d = %+v, want %q of %d bytes", i, e, n, i)
		}
	}

	bad := []struct{ name, out, want string }{
		{"no newline", "81a4 1 1 x\x00", "bad record"},
		{"four fields", "81a4 1 1 1\nx\x00", "bad record"},
		{"a negative size", record(0o100644, -1, 1, "x"), "bad record"},
		{"not hex", "zz 1 1\nx\x00", "bad record"},
	}
	for _, b := range bad {
		if _, err := agentclient.ParseListDir([]byte(b.out)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want %q", b.name, err, b.want)
		}
	}
	// A name no file can have (a guest lying) is dropped; the honest
	// entries around it still list.
	lying := record(0o100644, 1, 1, "a") + record(0o100644, 1, 1, "../../etc/passwd") +
		record(0o100644, 1, 1, "") + record(0o100644, 1, 1, "b")
	if ents, err := agentclient.ParseListDir([]byte(lying)); err != nil || len(ents) != 2 || ents[0].Name != "a" || ents[1].Name != "b" {
		t.Errorf("lying listing: %+v %v, want a and b only", ents, err)
	}
	// A huge bad record is quoted short.
	if _, err := agentclient.ParseListDir([]byte(strings.Repeat("x", 1<<20) + "\x00")); err == nil || len(err.Error()) > 200 {
		t.Errorf("huge bad record: %d-byte error", len(err.Error()))
	}
	// Output cut mid-record keeps the entries before it.
	cut := record(0o100644, 1, 1, "whole") + "81a4 1 1\nha"
	if ents, err := agentclient.ParseListDir([]byte(cut)); err == nil || len(ents) != 1 || ents[0].Name != "whole" {
		t.Errorf("cut output: %+v, %v", ents, err)
	}
}

// makeOddDir fills a fresh local directory with oddNames (each file holding
// its index in bytes), a subdirectory, a symlink and a FIFO, all with one
// modification time.
func makeOddDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mt := time.Unix(1700000000, 0)
	for i, n := range oddNames {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), i), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o640)
		os.Chtimes(p, mt, mt)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub\ndir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("plain.txt", filepath.Join(dir, "link\nname")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo\nname"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestListDirScriptRealShells runs the listing script the guests run, with
// both implementations guests have (dash and GNU coreutils as on Debian,
// busybox as in the test VM), on a local directory of odd names: every name
// comes back exactly, with its type and size.
func TestListDirScriptRealShells(t *testing.T) {
	testpeers.Require(t, testpeers.NeedBusyboxStatic)
	dir := makeOddDir(t)
	bb := t.TempDir()
	// Only the busybox applets on PATH: its stat, not GNU's.
	for _, applet := range []string{"stat", "printf", "["} {
		if err := os.Symlink("/bin/busybox", filepath.Join(bb, applet)); err != nil {
			t.Fatal(err)
		}
	}
	shells := []struct {
		name string
		argv []string
		env  []string
	}{
		{"dash + GNU coreutils", []string{"/bin/sh"}, []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"}},
		{"busybox", []string{"/bin/busybox", "sh"}, []string{"PATH=" + bb}},
	}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			args := append(sh.argv[1:], "-c", agentclient.ListDirScript, "sh", dir)
			cmd := exec.Command(sh.argv[0], args...)
			cmd.Env = sh.env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			ents, err := agentclient.ParseListDir(out)
			if err != nil {
				t.Fatalf("%v\n%q", err, out)
			}
			checkOddListing(t, ents)
		})
	}
}

func checkOddListing(t *testing.T, ents []agentclient.DirEntry) {
	t.Helper()
	got := map[string]agentclient.DirEntry{}
	for _, e := range ents {
		if _, dup := got[e.Name]; dup {
			t.Errorf("%q listed twice", e.Name)
		}
		got[e.Name] = e
	}
	for i, n := range oddNames {
		e, ok := got[n]
		if !ok {
			t.Errorf("%q missing from the listing", n)
			continue
		}
		if !e.Mode.IsRegular() || e.Size != int64(i) || e.Mode.Perm() != 0o640 || e.ModTime.Unix() != 1700000000 {
			t.Errorf("%q: %v %d bytes %v, want a 0640 file of %d", n, e.Mode, e.Size, e.ModTime.Unix(), i)
		}
		delete(got, n)
	}
	for n, want := range map[string]fs.FileMode{"sub\ndir": fs.ModeDir, "link\nname": fs.ModeSymlink, "fifo\nname": fs.ModeNamedPipe, "..": fs.ModeDir} {
		if e, ok := got[n]; !ok || e.Mode.Type() != want {
			t.Errorf("%q: %v (listed %v), want type %v", n, e.Mode, ok, want)
		}
		delete(got, n)
	}
	for n := range got {
		t.Errorf("unexpected entry %q", n)
	}
}

// The simulator serves the same listing for the same tree as the real
// script does.
func TestListDirSimOddNames(t *testing.T) {
	mt := time.Unix(1700000000, 0)
	_, addr := startSim(t, func(cfg *sim.Config) {
		cfg.Files = map[string]sim.File{
			"/odd/sub\ndir":   {Mode: fs.ModeDir | 0o755, ModTime: mt},
			"/odd/link\nname": {Mode: fs.ModeSymlink | 0o777, ModTime: mt},
			"/odd/fifo\nname": {Mode: fs.ModeNamedPipe | 0o600, ModTime: mt},
		}
		for i, n := range oddNames {
			cfg.Files["/odd/"+n] = sim.File{Data: strings.Repeat("x", i), Mode: 0o640, ModTime: mt}
		}
	})
	c := dialT(t, addr)
	ents, err := agentclient.ListDir(ctxFor(t, 10*time.Second), c, "/odd")
	if err != nil {
		t.Fatal(err)
	}
	checkOddListing(t, ents)
}

// A path that is not valid UTF-8 would reach the agent as another name
// (JSON carries U+FFFD instead): it is refused before anything is sent.
func TestNotUTF8PathRefused(t *testing.T) {
	ft := qgaFile(10, false, false, func(int64, int) []byte { return nil })
	c := agentclient.New(ft)
	const p = "/tmp/\xff\xfe.txt"
	ctx := ctxFor(t, 5*time.Second)
	_, rerr := agentclient.ReadFile(ctx, c, p, io.Discard, agentclient.FileOptions{})
	_, werr := agentclient.WriteFile(ctx, c, p, strings.NewReader("x"), agentclient.FileOptions{Replace: true})
	_, lerr := agentclient.ListDir(ctx, c, "/tmp/\xff")
	for _, err := range []error{rerr, werr, lerr} {
		if !errors.Is(err, agentclient.ErrNotUTF8) || !strings.Contains(err.Error(), `\xff`) {
			t.Errorf("%v, want ErrNotUTF8 with the path escaped", err)
		}
	}
	if len(ft.calls) != 0 {
		t.Errorf("sent %v", ft.calls)
	}
}

// qgaFile is a fake agent with qemu-ga's read semantics for one open file:
// data(pos, count) says what a read returns; eof comes only with a short
// read, and never with noEOF.
func qgaFile(size int64, seekErr, noEOF bool, data func(pos int64, count int) []byte) *fakeTransport {
	var pos int64
	return &fakeTransport{fn: func(ctx context.Context, name string, args json.RawMessage) (any, error) {
		switch name {
		case "guest-file-open":
			return 1000, nil
		case "guest-file-close":
			return map[string]any{}, nil
		case "guest-file-seek":
			if seekErr {
				return nil, &agentclient.Error{Class: "GenericError", Desc: "failed to seek file: Illegal seek"}
			}
			var a struct{ Offset, Whence int64 }
			json.Unmarshal(args, &a)
			if a.Whence == agentclient.SeekEnd {
				pos = size + a.Offset
			} else {
				pos = a.Offset
			}
			return agentclient.FileSeek{Position: pos}, nil
		case "guest-file-read":
			var a struct{ Count int }
			json.Unmarshal(args, &a)
			b := data(pos, a.Count)
			pos += int64(len(b))
			return agentclient.FileRead{Count: len(b), BufB64: base64.StdEncoding.EncodeToString(b), EOF: !noEOF && len(b) < a.Count}, nil
		}
		return nil, fmt.Errorf("unexpected %s", name)
	}}
}

// TestReadFileEnds: a read ends when the agent never says end-of-file: at the
// size the guest reported (plus one read), at the limit when it reported
// none, or after a few empty reads; files that end normally still read whole.
func TestReadFileEnds(t *testing.T) {
	endless := func(pos int64, count int) []byte { return bytes.Repeat([]byte{'z'}, count) }
	fileOf := func(n int64) func(int64, int) []byte {
		return func(pos int64, count int) []byte {
			end := min(pos+int64(count), n)
			return bytes.Repeat([]byte{'f'}, int(max(end-pos, 0)))
		}
	}
	tests := []struct {
		name     string
		agent    *fakeTransport
		opt      agentclient.FileOptions
		want     string // error text, "" for success
		min, max int64  // bytes read
		reads    int    // guest-file-read calls, 0 to not check
	}{
		{"reported size, endless data", qgaFile(2500, false, false, endless), agentclient.FileOptions{Chunk: 1000},
			"reported 2500 bytes and sent 4000", 4000, 4000, 4},
		{"no size, endless data", qgaFile(0, true, false, endless), agentclient.FileOptions{Chunk: 1000, Limit: 5000},
			"limit for a file whose size the guest does not report", 6000, 6000, 6},
		{"size 0 (a device), endless data", qgaFile(0, false, false, endless), agentclient.FileOptions{Chunk: 1000, Limit: 3000},
			"stopped after", 4000, 4000, 4},
		{"empty reads without end", qgaFile(0, true, true, func(int64, int) []byte { return nil }), agentclient.FileOptions{Chunk: 1000},
			"3 reads in a row returned nothing", 0, 0, 3},
		{"a multiple of the chunk: the end comes on the next read", qgaFile(3000, false, false, fileOf(3000)), agentclient.FileOptions{Chunk: 1000},
			"", 3000, 3000, 4},
		{"grew by less than a chunk while read", qgaFile(2500, false, false, fileOf(3200)), agentclient.FileOptions{Chunk: 1000},
			"", 3200, 3200, 4},
		{"unknown size, ends normally", qgaFile(0, true, false, fileOf(2345)), agentclient.FileOptions{Chunk: 1000},
			"", 2345, 2345, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got bytes.Buffer
			n, err := agentclient.ReadFile(ctxFor(t, 10*time.Second), agentclient.New(tt.agent), "/f", &got, tt.opt)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ReadFile: %v", err)
			case tt.want != "" && (!errors.Is(err, agentclient.ErrNoEOF) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("ReadFile: %v, want ErrNoEOF saying %q", err, tt.want)
			}
			if n < tt.min || n > tt.max || int64(got.Len()) != n {
				t.Errorf("read %d bytes (%d written), want %d..%d", n, got.Len(), tt.min, tt.max)
			}
			if r := tt.agent.count("guest-file-read"); tt.reads != 0 && r != tt.reads {
				t.Errorf("%d reads, want %d", r, tt.reads)
			}
			if c := tt.agent.count("guest-file-close"); c != 1 {
				t.Errorf("guest-file-close sent %d times", c)
			}
		})
	}
}

// The real agent reading /dev/zero never reports end-of-file (and its seek
// to the end says 0): the limit ends the read. A file of exactly two chunks
// reads whole: its end-of-file comes on the read after the size is reached.
func TestReadFileEndsRealAgent(t *testing.T) {
	ag := testpeers.StartAgents(t, 1)
	c := dialT(t, ag.Addrs()[0])
	const chunk = 256 << 10
	var got countWriter
	n, err := agentclient.ReadFile(ctxFor(t, 60*time.Second), c, "/dev/zero", &got, agentclient.FileOptions{Chunk: chunk, Limit: 1 << 20})
	if !errors.Is(err, agentclient.ErrNoEOF) || n != 1<<20+chunk || got.n != n {
		t.Fatalf("read /dev/zero: %d bytes (%d written), %v; want ErrNoEOF after %d", n, got.n, err, 1<<20+chunk)
	}
	t.Logf("read /dev/zero: %v", err)
	exact := filepath.Join(ag.Writable, "two-chunks.bin")
	if err := os.WriteFile(exact, bytes.Repeat([]byte("0123456789abcdef"), 2*chunk/16), 0o644); err != nil {
		t.Fatal(err)
	}
	got = countWriter{}
	if n, err := agentclient.ReadFile(ctxFor(t, 60*time.Second), c, exact, &got, agentclient.FileOptions{Chunk: chunk}); err != nil || n != 2*chunk {
		t.Fatalf("read a file of exactly two chunks: %d bytes, %v", n, err)
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// readSim reads a whole file through a fresh connection.
func readSim(t *testing.T, addr, path string) string {
	t.Helper()
	c := dialT(t, addr)
	defer c.Close()
	var b bytes.Buffer
	if _, err := agentclient.ReadFile(ctxFor(t, 10*time.Second), c, path, &b, agentclient.FileOptions{}); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b.String()
}

// execSim runs one program in the simulated guest through a fresh connection.
func execSim(t *testing.T, addr, prog string, args ...string) string {
	t.Helper()
	c := dialT(t, addr)
	defer c.Close()
	res, err := agentclient.RunExec(ctxFor(t, 10*time.Second), c, agentclient.ExecRequest{Path: prog, Arg: args, CaptureOutput: true})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%s %q: %+v, %v", prog, args, res, err)
	}
	return string(res.Stdout)
}

// TestWriteFileInterrupted drops the connection after five chunks of an
// upload. In place, the guest's file is now those five chunks, and the error
// says so; with Replace, the guest's file is as it was, and the temporary
// copy goes once a fresh connection cleans up.
func TestWriteFileInterrupted(t *testing.T) {
	const chunk = 4096
	data := bytes.Repeat([]byte("new content "), 30000)[:64*chunk]
	const old = "the old content\n"
	for _, replace := range []bool{false, true} {
		t.Run(fmt.Sprintf("replace=%v", replace), func(t *testing.T) {
			g, addr := startSim(t, func(cfg *sim.Config) {
				cfg.Files = map[string]sim.File{"/srv/target.txt": {Data: old}}
			})
			g.DropBefore("guest-file-write", 5)
			c := dialT(t, addr)
			n, err := agentclient.WriteFile(ctxFor(t, 20*time.Second), c, "/srv/target.txt", bytes.NewReader(data),
				agentclient.FileOptions{Chunk: chunk, Size: int64(len(data)), Replace: replace})
			c.Close()
			var we *agentclient.WriteError
			if !errors.As(err, &we) || n != 5*chunk || we.Written != 5*chunk || we.Total != int64(len(data)) {
				t.Fatalf("WriteFile = %d, %v (%+v); want a WriteError after %d bytes", n, err, we, 5*chunk)
			}
			if !agentclient.IsConnLost(err) && !errors.Is(err, agentclient.ErrMalformed) {
				t.Errorf("cause %v, want the lost connection", err)
			}
			if !replace {
				if we.State != agentclient.Partial || we.Outcome() != "is now partial: 20 KiB of 256 KiB written" {
					t.Fatalf("state %v, outcome %q", we.State, we.Outcome())
				}
				if got := readSim(t, addr, "/srv/target.txt"); got != string(data[:5*chunk]) {
					t.Fatalf("the guest's file holds %d bytes, want the %d written", len(got), 5*chunk)
				}
				return
			}
			if we.State != agentclient.Untouched || we.Temp == "" || !we.NeedsCleanup() ||
				!strings.HasPrefix(we.Outcome(), "was not changed; the incomplete copy /srv/.target.txt.guestdeck-") {
				t.Fatalf("state %v temp %q outcome %q", we.State, we.Temp, we.Outcome())
			}
			if got := readSim(t, addr, "/srv/target.txt"); got != old {
				t.Fatalf("the guest's file changed: %q", got)
			}
			c2 := dialT(t, addr)
			if err := we.Cleanup(ctxFor(t, 10*time.Second), c2); err != nil || we.NeedsCleanup() || we.Outcome() != "was not changed" {
				t.Fatalf("Cleanup: %v; outcome %q", err, we.Outcome())
			}
			ents, err := agentclient.ListDir(ctxFor(t, 10*time.Second), c2, "/srv")
			if err != nil || len(ents) != 2 || ents[1].Name != "target.txt" {
				t.Fatalf("after cleanup /srv holds %+v, %v; want only target.txt", ents, err)
			}
		})
	}
}

// TestWriteFileReplace: the new copy takes the old file's owner and mode
// and replaces it whole; no temporary file stays. Without guest-exec the
// same call writes in place.
func TestWriteFileReplace(t *testing.T) {
	g, addr := startSim(t, func(cfg *sim.Config) {
		cfg.Files = map[string]sim.File{"/srv/app.sh": {Data: "#!/bin/sh\necho old\n", Mode: 0o755}}
	})
	execSim(t, addr, "chown", "1000:50", "--", "/srv/app.sh")
	execSim(t, addr, "chmod", "4750", "--", "/srv/app.sh")
	data := strings.Repeat("#!/bin/sh\necho new\n", 10000)
	c := dialT(t, addr)
	n, err := agentclient.WriteFile(ctxFor(t, 20*time.Second), c, "/srv/app.sh", strings.NewReader(data), agentclient.FileOptions{Replace: true})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteFile: %d, %v", n, err)
	}
	c.Close()
	if got := readSim(t, addr, "/srv/app.sh"); got != data {
		t.Fatalf("the guest's file holds %d bytes, want %d", len(got), len(data))
	}
	if st := execSim(t, addr, "stat", "-c", "%a %u %g", "--", "/srv/app.sh"); st != "4750 1000 50\n" {
		t.Errorf("after the replace: mode owner group %q, want 4750 1000 50", st)
	}
	// Opens: the temporary file, then readSim. Execs: the two above,
	// stat chown chmod mv, then the stat just now.
	if g.Calls("guest-file-open") != 1+1 || g.Calls("guest-exec") != 2+4+1 {
		t.Errorf("%d opens, %d execs", g.Calls("guest-file-open"), g.Calls("guest-exec"))
	}
	c = dialT(t, addr)
	ents, _ := agentclient.ListDir(ctxFor(t, 10*time.Second), c, "/srv")
	if len(ents) != 2 {
		t.Errorf("/srv holds %+v, want only app.sh", ents)
	}

	// No guest-exec: written in place, as before.
	_, addr2 := startSim(t, func(cfg *sim.Config) { cfg.NoExec = true })
	c2 := dialT(t, addr2)
	if _, err := agentclient.WriteFile(ctxFor(t, 20*time.Second), c2, "/tmp/x", strings.NewReader("in place"), agentclient.FileOptions{Replace: true}); err != nil {
		t.Fatalf("WriteFile without guest-exec: %v", err)
	}
	c2.Close()
	if got := readSim(t, addr2, "/tmp/x"); got != "in place" {
		t.Errorf("without guest-exec: %q", got)
	}
}

// TestFilesVM runs the listing and the replacing write against the real
// agent in the test VM, whose userland is busybox: odd names come back
// exactly; a replaced file keeps its owner and mode; a symlink is written
// through, not replaced.
func TestFilesVM(t *testing.T) {
	vm := testpeers.BootVM(t, "gd-files")
	c := dialT(t, vm.Addr())
	ctx := ctxFor(t, 240*time.Second)
	const d = 30 * time.Second // a VM under TCG on a loaded machine
	call := func() context.Context {
		cctx, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return cctx
	}
	run := func(prog string, args ...string) string {
		t.Helper()
		res, err := agentclient.RunExec(call(), c, agentclient.ExecRequest{Path: prog, Arg: args, CaptureOutput: true})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%s %q: %+v, %v", prog, args, res, err)
		}
		return string(res.Stdout)
	}
	const dir = "/tmp/gd-odd"
	run("mkdir", "-p", dir, dir+"/sub\ndir")
	mt := time.Unix(1700000000, 0)
	for i, n := range oddNames {
		p := dir + "/" + n
		if !utf8.ValidString(n) {
			// A JSON request cannot carry it: the name goes in as the
			// script's stdin, which travels in base64.
			const script = `cd -- "$1" && n=$(cat; printf x) && n=${n%x} && printf %s "$2" > "$n"`
			res, err := agentclient.RunExec(call(), c, agentclient.ExecRequest{Path: "/bin/sh", Arg: []string{"-c", script, "sh", dir, strings.Repeat("x", i)},
				InputData: base64.StdEncoding.EncodeToString([]byte(n)), CaptureOutput: true})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("create %q: %+v, %v", n, res, err)
			}
			run("sh", "-c", `cd -- "$1" && for f in *; do case "$f" in *"not utf-8") chmod 640 -- "$f"; touch -d @1700000000 -- "$f";; esac; done`, "sh", dir)
			continue
		}
		if _, err := agentclient.WriteFile(call(), c, p, strings.NewReader(strings.Repeat("x", i)), agentclient.FileOptions{}); err != nil {
			t.Fatalf("write %q: %v", p, err)
		}
		run("chmod", "640", "--", p)
		run("touch", "-d", "@"+fmt.Sprint(mt.Unix()), "--", p)
	}
	run("ln", "-s", "plain.txt", dir+"/link\nname")
	run("mkfifo", "--", dir+"/fifo\nname")
	ents, err := agentclient.ListDir(call(), c, dir)
	if err != nil {
		t.Fatal(err)
	}
	checkOddListing(t, ents)

	// Replace keeps owner and mode, and leaves no temporary file.
	target := "/data/replaced.txt"
	if _, err := agentclient.WriteFile(call(), c, target, strings.NewReader("old\n"), agentclient.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	run("chown", "12:34", "--", target)
	run("chmod", "640", "--", target)
	data := strings.Repeat("replaced through mv\n", 8000)
	for _, replace := range []bool{false, true} { // in place first, for the figure
		t0 := time.Now()
		if _, err := agentclient.WriteFile(call(), c, target, strings.NewReader(data), agentclient.FileOptions{Replace: replace}); err != nil {
			t.Fatalf("write %s (replace %v): %v", target, replace, err)
		}
		t.Logf("%d bytes written (replace %v) in %v", len(data), replace, time.Since(t0))
	}
	var got bytes.Buffer
	if _, err := agentclient.ReadFile(call(), c, target, &got, agentclient.FileOptions{}); err != nil || got.String() != data {
		t.Fatalf("after the replace %s holds %d bytes (%v), want %d", target, got.Len(), err, len(data))
	}
	if st := run("stat", "-c", "%a %u %g", "--", target); st != "640 12 34\n" {
		t.Errorf("after the replace: %q, want 640 12 34", st)
	}
	// Through a symlink: the link stays, its target gets the bytes.
	run("ln", "-s", "replaced.txt", "/data/link.txt")
	if _, err := agentclient.WriteFile(call(), c, "/data/link.txt", strings.NewReader("via the link\n"), agentclient.FileOptions{Replace: true}); err != nil {
		t.Fatalf("write through the link: %v", err)
	}
	if st := run("stat", "-c", "%F", "--", "/data/link.txt"); st != "symbolic link\n" {
		t.Errorf("the link is now %q", st)
	}
	got.Reset()
	agentclient.ReadFile(call(), c, target, &got, agentclient.FileOptions{})
	if got.String() != "via the link\n" {
		t.Errorf("the link's target holds %q", got.String())
	}
	ents, err = agentclient.ListDir(call(), c, "/data")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, ".part") }) {
		t.Errorf("a temporary file is left in /data: %q", names)
	}
}

// BenchmarkWriteFileReplace is what replacing costs over writing in place:
// a 4 KiB upload to the simulator, which runs its programs at once (a real
// guest forks stat, chown, chmod and mv: add their time).
func BenchmarkWriteFileReplace(b *testing.B) {
	for _, replace := range []bool{false, true} {
		b.Run(fmt.Sprintf("replace=%v", replace), func(b *testing.B) {
			_, addr := startSim(b, func(cfg *sim.Config) {
				cfg.Files = map[string]sim.File{"/srv/f": {Data: "old"}}
			})
			c, err := agentclient.Dial(context.Background(), addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			data := bytes.Repeat([]byte("x"), 4096)
			for b.Loop() {
				if _, err := agentclient.WriteFile(context.Background(), c, "/srv/f", bytes.NewReader(data), agentclient.FileOptions{Replace: replace}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestReadFilePipelinedRealAgent reads files of odd sizes, whole and in
// ranges, from the real agent with two reads in flight, and compares every
// byte; a ping sent during a read is answered before the read ends (the
// read lets it in between two chunks), and a write of odd size reads back
// exactly.
func TestReadFilePipelinedRealAgent(t *testing.T) {
	ag := testpeers.StartAgents(t, 1)
	c := dialT(t, ag.Addrs()[0])
	ctx := ctxFor(t, 120*time.Second)
	data := make([]byte, 5<<20+123)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	path := filepath.Join(ag.Writable, "odd.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const chunk = 256 << 10
	cases := []struct {
		name   string
		off, n int64
	}{
		{"whole", 0, -1},
		{"to the end from an odd offset", 1<<20 + 7, -1},
		{"a range of a few chunks", 333, 3*chunk + 11},
		{"a range inside one chunk", 5, 100},
		{"a range past the end", int64(len(data)) - 10, 100},
	}
	for _, tc := range cases {
		var got bytes.Buffer
		n, err := agentclient.ReadFileRange(ctx, c, path, tc.off, tc.n, &got, agentclient.FileOptions{Chunk: chunk})
		end := int64(len(data))
		if tc.n >= 0 {
			end = min(end, tc.off+tc.n)
		}
		if err != nil || n != end-tc.off || !bytes.Equal(got.Bytes(), data[tc.off:end]) {
			t.Errorf("%s: %d bytes, %v; want %d bytes equal to the file's", tc.name, n, err, end-tc.off)
		}
	}

	pinged := make(chan int64, 1)
	var done atomic.Int64
	var once sync.Once
	progress := func(d, _ int64) {
		done.Store(d)
		once.Do(func() {
			go func() {
				if err := c.Ping(ctx); err != nil {
					t.Errorf("ping during the read: %v", err)
				}
				pinged <- done.Load()
			}()
		})
	}
	var got countWriter
	if _, err := agentclient.ReadFile(ctx, c, path, &got, agentclient.FileOptions{Chunk: 64 << 10, Progress: progress}); err != nil || got.n != int64(len(data)) {
		t.Fatalf("read with a ping between: %d bytes, %v", got.n, err)
	}
	// The ping's goroutine read done once the ping came back.
	if at := <-pinged; at >= int64(len(data)) {
		t.Errorf("the ping was answered only after the whole read (%d bytes)", at)
	}

	wpath := filepath.Join(ag.Writable, "written.bin")
	if n, err := agentclient.WriteFile(ctx, c, wpath, bytes.NewReader(data), agentclient.FileOptions{}); err != nil || n != int64(len(data)) {
		t.Fatalf("write: %d bytes, %v", n, err)
	}
	if b, err := os.ReadFile(wpath); err != nil || !bytes.Equal(b, data) {
		t.Errorf("the written file holds %d bytes (%v), not the %d written", len(b), err, len(data))
	}
}

// TestReadFileHugeChunkReply: an agent that answers a small guest-file-read
// with a line of 8 MiB (ignoring count) fails the read with ErrTooLarge,
// the line skipped as it arrives rather than buffered, and the connection
// stays usable.
func TestReadFileHugeChunkReply(t *testing.T) {
	l, addr := listenUnix(t)
	// Built before the measurement: the peer runs in this process.
	huge := []byte(`{"return": {"count": 4096, "buf-b64": "` + strings.Repeat("QUFB", 2<<20) + `", "eof": false}, "id": `)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			line = bytes.TrimLeft(line, "\xff")
			var req struct {
				Execute   string          `json:"execute"`
				Arguments json.RawMessage `json:"arguments"`
				ID        json.RawMessage `json:"id"`
			}
			if json.Unmarshal(line, &req) != nil {
				continue
			}
			ret := `{}`
			switch req.Execute {
			case "guest-sync-delimited":
				var a struct {
					ID int64 `json:"id"`
				}
				json.Unmarshal(req.Arguments, &a)
				fmt.Fprintf(conn, "\xff{\"return\": %d, \"id\": %s}\n", a.ID, req.ID)
				continue
			case "guest-file-open":
				ret = `1000`
			case "guest-file-seek":
				ret = `{"position": 0, "eof": false}`
			case "guest-file-read":
				conn.Write(huge)
				conn.Write(append(req.ID, "}\n"...))
				continue
			}
			fmt.Fprintf(conn, "{\"return\": %s, \"id\": %s}\n", ret, req.ID)
		}
	}()
	c := dialT(t, addr)
	ctx := ctxFor(t, 30*time.Second)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := agentclient.ReadFile(ctx, c, "/f", io.Discard, agentclient.FileOptions{Chunk: 4096})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, agentclient.ErrTooLarge) {
		t.Fatalf("read: %v, want ErrTooLarge", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
		t.Errorf("the read allocated %d bytes for an 8 MiB reply it refused", got)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("ping after the refused reply: %v", err)
	}
}
