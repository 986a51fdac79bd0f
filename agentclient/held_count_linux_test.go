package agentclient

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// protocolSockets reads the sockets column of the UNIX-STREAM line, or of
// the UNIX line on a kernel that has no UNIX-STREAM, in either order; a
// text without them, or with a column that is no count, is unknown.
func TestProtocolSockets(t *testing.T) {
	const head = "protocol  size sockets  memory press maxhdr  slab module     cl co di ac io in de sh ss gs se re bi br ha uh gp em\n"
	for _, tt := range []struct {
		name, text string
		n          int64
		ok         bool
	}{
		{"both", head + "UNIX-STREAM 1152  30012      -1   NI       0   yes  kernel      y  n\nUNIX      1152      7      -1   NI       0   yes  kernel      y  n\nTCP       2432     12   1 no 320 yes kernel y y\n", 30012, true},
		{"UNIX first", head + "UNIX      1152      7      -1   NI       0   yes  kernel\nUNIX-STREAM 1152  5      -1   NI       0   yes  kernel\n", 5, true},
		{"old kernel", head + "TCP       2432     12   1 no 320 yes kernel\nUNIX      1152      41      -1   NI       0   yes  kernel\n", 41, true},
		{"no unix line", head + "TCP       2432     12   1 no 320 yes kernel\n", 0, false},
		{"not a count", head + "UNIX-STREAM 1152  many  -1\n", 0, false},
		{"negative", head + "UNIX-STREAM 1152  -3  -1\n", 0, false},
		{"empty", "", 0, false},
		{"no newline at the end", head + "UNIX-STREAM 1152  9  -1", 9, true},
	} {
		if n, ok := protocolSockets([]byte(tt.text)); n != tt.n || ok != tt.ok {
			t.Errorf("%s: protocolSockets = %d, %v; want %d, %v", tt.name, n, ok, tt.n, tt.ok)
		}
	}
}

// The count the watcher's gate reads grows at a connect(2) to a listener,
// before any accept(2): the server's end is counted then. Measured in a
// network namespace of the test's own thread, where nothing else opens
// sockets; where one cannot be made (not root, outside CI), the count this
// process's own sockets set as its floor.
func TestUnixStreamSocketsCountsConnects(t *testing.T) {
	if _, ok := UnixStreamSockets(); !ok {
		t.Fatal("UnixStreamSockets: /proc/net/protocols unreadable or without a UNIX line")
	}
	dir := t.TempDir()
	done := make(chan error, 1)
	var counts []int64
	go func() {
		// The thread stays locked to the end: it dies with its namespace.
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		count := func() {
			n, ok := unixStreamSocketsAt("/proc/thread-self/net/protocols")
			if !ok {
				n = -1
			}
			counts = append(counts, n)
		}
		count()
		l, err := net.Listen("unix", filepath.Join(dir, "l"))
		if err != nil {
			done <- err
			return
		}
		defer l.Close()
		count()
		var conns []net.Conn
		for range 3 {
			c, err := net.Dial("unix", l.Addr().String())
			if err != nil {
				done <- err
				return
			}
			conns = append(conns, c)
		}
		count()
		for _, c := range conns {
			c.Close()
		}
		done <- nil
	}()
	err := <-done
	if errors.Is(err, syscall.EPERM) {
		if os.Getenv("CI") == "true" {
			t.Fatal("a network namespace of the test's own needs root (CI=true: run the tests as root)")
		}
		// No namespace of our own: this process's sockets are a floor.
		l, err := net.Listen("unix", filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for range 20 {
			c, err := net.Dial("unix", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		if n, _ := UnixStreamSockets(); n < 41 {
			t.Fatalf("UnixStreamSockets = %d with a listener and 20 connections waiting in its queue held here: want at least 41", n)
		}
		t.Logf("no network namespace of the test's own (%v): only the floor checked", os.ErrPermission)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{0, 1, 7} // nothing; the listener; three clients and their server ends, none accepted
	if len(counts) != len(want) || counts[0] != want[0] || counts[1] != want[1] || counts[2] != want[2] {
		t.Fatalf("counts in a fresh network namespace: %v; want %v", counts, want)
	}
}
