package agentclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// diagMsg builds one SOCK_DIAG_BY_FAMILY message: a unix_diag_msg for a
// socket in state with inode ino, then attrs (type, value), each padded to
// 4 bytes as the kernel pads them.
func diagMsg(state uint8, ino uint32, attrs ...diagAttr) []byte {
	ne := binary.NativeEndian
	body := make([]byte, unixDiagMsgLen)
	body[0], body[1], body[2] = syscall.AF_UNIX, syscall.SOCK_STREAM, state
	ne.PutUint32(body[4:], ino)
	for _, a := range attrs {
		h := make([]byte, 4)
		ne.PutUint16(h[0:], uint16(4+len(a.v)))
		ne.PutUint16(h[2:], a.typ)
		body = append(body, h...)
		body = append(body, a.v...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
	}
	return nlMsg(sockDiagByFamily, body)
}

type diagAttr struct {
	typ uint16
	v   []byte
}

// u32s is a value of native-endian 32-bit words.
func u32s(ws ...uint32) []byte {
	b := make([]byte, 4*len(ws))
	for i, w := range ws {
		binary.NativeEndian.PutUint32(b[4*i:], w)
	}
	return b
}

func nlMsg(typ uint16, body []byte) []byte {
	b := make([]byte, nlmsgHdrLen, nlmsgHdrLen+len(body))
	binary.NativeEndian.PutUint32(b[0:], uint32(nlmsgHdrLen+len(body)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	return append(b, body...)
}

func nlError(errno syscall.Errno) []byte {
	return nlMsg(syscall.NLMSG_ERROR, u32s(uint32(-int32(errno))))
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// The dump's parsing: the attributes each kind of socket carries, the
// padding between them, malformed attributes (dropped, the socket kept) and
// messages (an error), and the dump's end.
func TestParseUnixDiag(t *testing.T) {
	dev := uint32(8<<20 | 3) // 8:3, as the kernel numbers it
	tests := []struct {
		name    string
		in      []byte
		want    []unixSock
		done    bool
		wantErr error // errors.Is, or any error when errText is set
		errText string
	}{
		{name: "listener with queue and file",
			in: cat(diagMsg(tcpListen, 77,
				diagAttr{unixDiagVFS, u32s(1234, dev)},
				diagAttr{unixDiagRQLen, u32s(2, 1)},
			), nlMsg(syscall.NLMSG_DONE, u32s(0))),
			want: []unixSock{{state: tcpListen, ino: 77, vfs: true, vfsIno: 1234, vfsDev: dev, rqueue: 2}},
			done: true},
		{name: "unknown and empty attributes are skipped",
			in:   diagMsg(tcpListen, 78, diagAttr{3, nil}, diagAttr{unixDiagVFS, u32s(9, dev)}, diagAttr{42, []byte{1, 2, 3}}, diagAttr{unixDiagRQLen, u32s(0, 1)}),
			want: []unixSock{{state: tcpListen, ino: 78, vfs: true, vfsIno: 9, vfsDev: dev, rqueue: 0}}},
		{name: "abstract listener: no file",
			in:   diagMsg(tcpListen, 79, diagAttr{unixDiagRQLen, u32s(1, 1)}),
			want: []unixSock{{state: tcpListen, ino: 79, rqueue: 1}}},
		{name: "connected, name padded",
			in: cat(diagMsg(tcpEstablished, 80, diagAttr{unixDiagName, []byte("/run/q.sock")}, diagAttr{unixDiagPeer, u32s(81)}),
				diagMsg(tcpEstablished, 81, diagAttr{unixDiagPeer, u32s(80)})),
			want: []unixSock{{state: tcpEstablished, ino: 80, peer: 81, name: []byte("/run/q.sock")}, {state: tcpEstablished, ino: 81, peer: 80}}},
		{name: "short vfs and rqlen attributes are dropped",
			in:   diagMsg(tcpListen, 82, diagAttr{unixDiagVFS, u32s(1)}, diagAttr{unixDiagRQLen, u32s(3)}),
			want: []unixSock{{state: tcpListen, ino: 82}}},
		{name: "attribute longer than the message ends the attributes",
			in: func() []byte {
				m := diagMsg(tcpListen, 83, diagAttr{unixDiagRQLen, u32s(4, 1)}, diagAttr{unixDiagVFS, u32s(5, dev)})
				binary.NativeEndian.PutUint16(m[nlmsgHdrLen+unixDiagMsgLen+12:], 200) // the VFS attribute's length
				return m
			}(),
			want: []unixSock{{state: tcpListen, ino: 83, rqueue: 4}}},
		{name: "other message types are skipped",
			in:   cat(nlMsg(99, u32s(1, 2, 3)), diagMsg(tcpListen, 84)),
			want: []unixSock{{state: tcpListen, ino: 84}}},
		{name: "error reply", in: cat(diagMsg(tcpListen, 85), nlError(syscall.EPERM)),
			want: []unixSock{{state: tcpListen, ino: 85}}, wantErr: syscall.EPERM},
		{name: "bad length", in: func() []byte {
			m := diagMsg(tcpListen, 86)
			binary.NativeEndian.PutUint32(m[0:], 4)
			return m
		}(), errText: "bad message length"},
		{name: "short message", in: nlMsg(sockDiagByFamily, u32s(1)), errText: "short message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []unixSock
			done, err := parseUnixDiag(tt.in, func(s *unixSock) { got = append(got, *s) })
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error %v, want %v", err, tt.wantErr)
			case tt.errText != "" && (err == nil || !contains(err.Error(), tt.errText)):
				t.Errorf("error %v, want one saying %q", err, tt.errText)
			case tt.wantErr == nil && tt.errText == "" && err != nil:
				t.Errorf("error %v", err)
			}
			if done != tt.done {
				t.Errorf("done %v, want %v", done, tt.done)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// The kernel's device numbers against stat's, including the ones that
// differ (a minor above 255; the kernel's 32-bit number has 12 bits of
// major, 20 of minor).
func TestUserDev(t *testing.T) {
	for _, tt := range []struct {
		major, minor uint32
		want         uint64
	}{
		{0, 0, 0}, {8, 3, 0x803}, {0, 0x2a, 0x2a}, {0, 0x1234, 0x120_0034}, {259, 0xfffff, 0xfff1_03ff},
	} {
		if got := userDev(tt.major<<20 | tt.minor); got != tt.want {
			t.Errorf("userDev(%d:%d) = %#x, want %#x", tt.major, tt.minor, got, tt.want)
		}
	}
}

// listenBacklog1 listens at path the way the agents do (backlog 1).
func listenBacklog1(t testing.TB, path string) int {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	return fd
}

// queueOf finds the listener bound to f, asking for files, and the same
// listener by its own inode in a dump without them.
func queueOfFile(t *testing.T, f SocketFile) (ListenerQueue, bool) {
	t.Helper()
	var q ListenerQueue
	found := false
	if err := ListenerQueues(true, func(l ListenerQueue) {
		if l.File == f {
			q, found = l, true
		}
	}); err != nil {
		t.Fatalf("ListenerQueues: %v", err)
	}
	if !found {
		return q, false
	}
	var by ListenerQueue
	if err := ListenerQueues(false, func(l ListenerQueue) {
		if l.Ino == q.Ino {
			by = l
		}
	}); err != nil {
		t.Fatalf("ListenerQueues without files: %v", err)
	}
	if by.Ino != q.Ino || by.Queued != q.Queued || by.File != (SocketFile{}) {
		t.Errorf("without files: %+v; with: %+v", by, q)
	}
	return q, true
}

// Against the kernel: a listener's socket file as stat names it is found in
// the dump, with its queue: clients that connect while nobody accepts are
// queued, one that hangs up stays queued until accepted, an accepted one
// leaves the queue. A path that is not a socket is refused.
func TestListenerQueues(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdlq") // t.TempDir can be too long for a socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "l.sock")
	lfd := listenBacklog1(t, path)
	defer syscall.Close(lfd)
	f, err := StatSocketFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if q, ok := queueOfFile(t, f); !ok || q.Queued != 0 {
		t.Fatalf("idle listener: %+v found %v, want found with an empty queue", q, ok)
	}
	c1, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := queueOfFile(t, f); q.Queued != 2 {
		t.Errorf("two clients connected: %+v, want 2 queued", q)
	}
	c2.Close()
	if q, _ := queueOfFile(t, f); q.Queued != 2 {
		t.Errorf("one client hung up: %+v, want still 2 queued", q)
	}
	nfd, _, err := syscall.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(nfd)
	if q, _ := queueOfFile(t, f); q.Queued != 1 {
		t.Errorf("the first accepted: %+v, want 1 queued", q)
	}

	if _, err := StatSocketFile(dir); err == nil {
		t.Error("StatSocketFile of a directory: no error")
	}
	if _, err := StatSocketFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("StatSocketFile of nothing: %v, want not exist", err)
	}
}

// What ListenerQueues makes of a parsed socket: listeners only, with their
// file (in stat's device numbering) when the dump had it, and without a
// file left out when files were asked.
func TestListenerQueueOf(t *testing.T) {
	dev := uint32(0x123<<20 | 0x456)
	for _, tt := range []struct {
		name  string
		s     unixSock
		files bool
		want  ListenerQueue
		ok    bool
	}{
		{"listener with file", unixSock{state: tcpListen, ino: 7, vfs: true, vfsDev: dev, vfsIno: 99, rqueue: 2}, true,
			ListenerQueue{Ino: 7, File: SocketFile{Dev: 0x41_2356 /* 0x400<<12 | 0x123<<8 | 0x56 */, Ino: 99}, Queued: 2}, true},
		{"abstract, files asked", unixSock{state: tcpListen, ino: 8, rqueue: 1}, true, ListenerQueue{}, false},
		{"abstract, no files asked", unixSock{state: tcpListen, ino: 8, rqueue: 1}, false, ListenerQueue{Ino: 8, Queued: 1}, true},
		{"connected", unixSock{state: tcpEstablished, ino: 9, vfs: true}, false, ListenerQueue{}, false},
	} {
		q, ok := tt.s.listenerQueue(tt.files)
		if ok != tt.ok || q != tt.want {
			t.Errorf("%s: %+v %v, want %+v %v", tt.name, q, ok, tt.want, tt.ok)
		}
	}
}

// BenchmarkListenerQueues is one dump of the listening unix sockets with
// 10,000 of them listening (and whatever else the machine has): what a
// fleet's yield watcher pays per look at 10,000 guests, without the socket
// files (every look) and with them (while new connections' listeners are
// to be found).
//
//	go test ./agentclient -run '^$' -bench ListenerQueues -benchmem
func BenchmarkListenerQueues(b *testing.B) {
	const n = 10000
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < n+200 {
		rl.Cur = min(rl.Max, n+1000)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	dir, err := os.MkdirTemp("/tmp", "gdlq")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for i := range n {
		fd := listenBacklog1(b, filepath.Join(dir, fmt.Sprintf("%d.sock", i)))
		defer syscall.Close(fd)
	}
	for _, files := range []bool{false, true} {
		b.Run(fmt.Sprintf("files=%v", files), func(b *testing.B) {
			listeners := 0
			var r0, r1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			for b.Loop() {
				listeners = 0
				if err := ListenerQueues(files, func(ListenerQueue) { listeners++ }); err != nil {
					b.Fatal(err)
				}
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			// CPU, the kernel's walk mostly: what a look costs the machine,
			// whatever else runs on it (wall time grows with the load).
			cpu := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
			b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/op")
			if listeners < n {
				b.Fatalf("%d listeners seen, want at least %d", listeners, n)
			}
			b.ReportMetric(float64(listeners), "listeners")
		})
	}
}

// TestConnIndexQueueOf: a connection is queued while its peer has no inode
// (not accepted), and held when another accepted connection to the same
// listener has a peer.
func TestConnIndexQueueOf(t *testing.T) {
	x := newConnIndex([]unixSock{
		{ino: 10, peer: 0},                         // ours, queued
		{ino: 11, peer: 12},                        // another client, served
		{ino: 12, peer: 11, name: []byte("/a")},    // the server end serving it
		{ino: 20, peer: 0},                         // queued at /b, nobody served there
		{ino: 30, peer: 31},                        // served
		{ino: 31, peer: 30, name: []byte("/c")},    // at /c
		{ino: 40, peer: 41, name: []byte("/junk")}, // unrelated
	})
	for _, c := range []struct {
		ino                 uint32
		name                string
		queued, held, isErr bool
	}{
		{10, "/a", true, true, false},
		{20, "/b", true, false, false},
		{30, "/c", false, false, false},
		{99, "/a", false, false, true},
	} {
		q, h, err := x.queueOf(c.ino, c.name)
		if q != c.queued || h != c.held || (err != nil) != c.isErr {
			t.Errorf("queueOf(%d, %s) = %v, %v, %v; want %v, %v, error %v", c.ino, c.name, q, h, err, c.queued, c.held, c.isErr)
		}
	}
}

// TestDumpCacheCoalesces: connections whose syncs ran out together share
// dumps (a dump that began after the question answers it) instead of one
// dump each, and a question asked after a dump began gets a newer one.
func TestDumpCacheCoalesces(t *testing.T) {
	var dumps atomic.Int32
	release := make(chan struct{})
	c := &dumpCache{dump: func() ([]unixSock, error) {
		dumps.Add(1)
		<-release
		return []unixSock{{ino: 1}}, nil
	}}
	asked := time.Now()
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := c.since(asked); err != nil {
				t.Error(err)
			}
		})
	}
	for dumps.Load() == 0 {
		runtime.Gosched() // the first asker's dump is in flight
	}
	close(release)
	wg.Wait()
	if got := dumps.Load(); got != 1 {
		t.Errorf("%d askers made %d dumps; want 1", n, got)
	}
	// Asked after that dump began: it does not answer.
	if _, err := c.since(time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := dumps.Load(); got != 2 {
		t.Errorf("a later question made %d dumps in all; want 2", got)
	}
}
