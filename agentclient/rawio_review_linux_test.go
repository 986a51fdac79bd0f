//go:build !386

package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// connPair is a connected pair of real sockets of network ("unix" or
// "tcp", on loopback).
func connPair(t *testing.T, network string) (client, server net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	c, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// rwer is what the stream reads and writes with: the conn's own methods or
// rawIO's.
type rwer interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
}

func ioFor(t *testing.T, c net.Conn, raw bool) rwer {
	t.Helper()
	if !raw {
		return c
	}
	r := newRawIO(c)
	if r == nil {
		t.Fatalf("no rawIO for a %T", c)
	}
	return r
}

// normalise takes the connection's addresses out of an error's text (two
// tcp connections have different ports).
func normalise(c net.Conn, err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	s = strings.ReplaceAll(s, c.LocalAddr().String()+"->", "LOCAL->")
	return strings.ReplaceAll(s, c.RemoteAddr().String(), "REMOTE")
}

// rawIO fails as net.Conn's Read and Write fail, in the same words (what
// reaches the operator after "connection lost: "), and with the same
// classes: a reset peer, a write to a peer gone, a read past its deadline,
// a write to a peer that never reads past its deadline (partial), a read
// or write on a connection closed meanwhile; over unix and tcp sockets.
func TestRawIOFailsAsConn(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 16<<20) // far beyond any socket buffer
	cases := []struct {
		name string
		run  func(t *testing.T, c, s net.Conn, rw rwer) (int, error)
		is   error // errors.Is must hold (nil: err is nil)
	}{
		{"reset during read", func(t *testing.T, c, s net.Conn, rw rwer) (int, error) {
			if _, err := c.Write([]byte("unread\n")); err != nil {
				t.Fatal(err)
			}
			if tc, ok := s.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			} else {
				// A unix socket closed with bytes unread resets its peer;
				// wait until they are there to be left unread.
				_, _ = s.Read(make([]byte, 1))
			}
			s.Close()
			return rw.Read(make([]byte, 64))
		}, syscall.ECONNRESET},
		{"write to a peer gone", func(t *testing.T, c, s net.Conn, rw rwer) (int, error) {
			s.Close()
			// The peer's end first (EOF on tcp), then the write.
			_, _ = c.Read(make([]byte, 1))
			_, _ = rw.Write([]byte("a"))       // tcp: answered by a reset
			_, _ = c.Read(make([]byte, 1))     // which the read takes
			return rw.Write([]byte("again\n")) // then EPIPE
		}, syscall.EPIPE},
		{"read past its deadline", func(t *testing.T, c, s net.Conn, rw rwer) (int, error) {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			return rw.Read(make([]byte, 64))
		}, os.ErrDeadlineExceeded},
		{"write past its deadline to a peer that never reads", func(t *testing.T, c, s net.Conn, rw rwer) (int, error) {
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := rw.Write(big)
			if n <= 0 || n >= len(big) {
				t.Errorf("wrote %d of %d bytes: want part of them", n, len(big))
			}
			return 0, err
		}, os.ErrDeadlineExceeded},
		{"read on a connection closed meanwhile", func(t *testing.T, c, s net.Conn, rw rwer) (int, error) {
			time.AfterFunc(20*time.Millisecond, func() { c.Close() })
			return rw.Read(make([]byte, 64))
		}, net.ErrClosed},
		{"write on a connection closed meanwhile", func(t *testing.T, c, s net.Conn, rw rwer) (int, error) {
			time.AfterFunc(20*time.Millisecond, func() { c.Close() })
			n, err := rw.Write(big)
			if n >= len(big) {
				t.Errorf("wrote all of %d bytes to a peer that never reads", n)
			}
			return 0, err
		}, net.ErrClosed},
	}
	for _, network := range []string{"unix", "tcp"} {
		for _, tc := range cases {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				var texts [2]string
				for i, raw := range []bool{false, true} {
					c, s := connPair(t, network)
					n, err := tc.run(t, c, s, ioFor(t, c, raw))
					if n != 0 || !errors.Is(err, tc.is) {
						t.Errorf("raw %v: %d, %v; want 0 and %v", raw, n, err, tc.is)
					}
					var ne net.Error
					if err != nil && !errors.As(err, &ne) {
						t.Errorf("raw %v: %v is not a net.Error as conn's is", raw, err)
					}
					texts[i] = normalise(c, err)
				}
				if texts[0] != texts[1] {
					t.Errorf("rawIO's error reads %q; net.Conn's read %q", texts[1], texts[0])
				}
			})
		}
	}
}

// What the operator sees when the agent drops the connection under a call
// is the same with rawIO as with the connection's own Read: the connection
// reset while the sync waits for its reply.
func TestRawIOStreamDropMessage(t *testing.T) {
	var msgs [2]string
	for i, raw := range []bool{false, true} {
		c, s := connPair(t, "unix")
		st := newStream("unix:test.sock", c)
		if !raw {
			st.rio = nil
		} else if st.rio == nil {
			t.Fatal("no rawIO for a unix stream")
		}
		go func() {
			// The agent takes the 0xFF and hangs up on the rest.
			_, _ = s.Read(make([]byte, 1))
			s.Close()
		}()
		_, err := st.Call(context.Background(), "guest-ping", nil)
		if !IsConnLost(err) {
			t.Fatalf("raw %v: %v, want connection lost", raw, err)
		}
		msgs[i] = normalise(c, err)
		st.Close()
	}
	if msgs[0] != msgs[1] {
		t.Errorf("with rawIO the operator reads\n\t%s\nwhere before it read\n\t%s", msgs[1], msgs[0])
	}
}

// A socket whose open file description some other holder made blocking
// (a dup from File and its Fd, a descriptor shared with another process)
// must not have the stream's read hold its thread and the runtime's P
// inside the kernel: with one P, the peer's goroutine could then never run
// to answer (nor could anything else; a collection's stop of the world
// would wait on the kernel too). net.Conn's Read hands the P off; so must
// rawIO. A child process writes "late" into the socket after a while, so
// that a read stuck in the kernel ends and the test fails instead of
// hanging.
func TestRawIOBlockingDescriptor(t *testing.T) {
	for _, raw := range []bool{false, true} {
		c, s := connPair(t, "unix")
		rc, err := c.(*net.UnixConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		sf, err := s.(*net.UnixConn).File()
		if err != nil {
			t.Fatal(err)
		}
		late := exec.Command("sh", "-c", "sleep 15; echo late")
		late.Stdout = sf
		if err := late.Start(); err != nil {
			t.Fatal(err)
		}
		sf.Close()
		t.Cleanup(func() { _ = late.Process.Kill(); _ = late.Wait() })

		rw := ioFor(t, c, raw)
		prev := runtime.GOMAXPROCS(1)
		go func() {
			// The peer answers the line it is sent.
			line, err := bufio.NewReader(s).ReadBytes('\n')
			if err == nil {
				_, _ = s.Write(line)
			}
		}()
		_, werr := rw.Write([]byte("ping\n"))
		buf := make([]byte, 64)
		n, err := rw.Read(buf)
		runtime.GOMAXPROCS(prev)
		if werr != nil || err != nil || string(buf[:n]) != "ping\n" {
			t.Errorf("raw %v: Write: %v; Read = %q, %v; want the peer's answer", raw, werr, buf[:n], err)
		}
	}
}

// Bytes through a socket order what came before them: a value set before
// a raw write is seen by the peer's goroutine after its read, and a value
// the peer set before its write is seen after a raw read, as they are with
// net.Conn (whose system calls tell the race detector so).
func TestRawIORaceOrder(t *testing.T) {
	c, s := unixPair(t)
	r := newRawIO(c)
	var sent, answered int
	done := make(chan int)
	go func() {
		buf := make([]byte, 1)
		if _, err := s.Read(buf); err != nil {
			done <- -1
			return
		}
		v := sent
		answered = v + 1
		_, _ = s.Write(buf)
		done <- v
	}()
	sent = 41
	if _, err := r.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if a := answered; a != 42 {
		t.Errorf("answered = %d", a)
	}
	<-done
}

// A peer that answers the sync, takes the start of the next request and
// then reads no more: a large request (a guest-file-write's chunk) stops
// in a full socket buffer, and the call ends at its deadline (a timeout),
// at its context's cancellation (context.Canceled) and at Close
// (ErrClosed), with rawIO as with the connection's own Write.
func TestRawIOStreamBlockedWrite(t *testing.T) {
	chunk := strings.Repeat("QUFB", 4<<20) // 16 MiB of base64
	cases := []struct {
		name    string
		timeout time.Duration // the call's; 0: none
		end     func(st *Stream, cancel context.CancelFunc)
		want    func(error) bool
	}{
		{"deadline", 2 * time.Second, func(*Stream, context.CancelFunc) {}, IsTimeout},
		{"cancel", 0, func(_ *Stream, cancel context.CancelFunc) { cancel() },
			func(err error) bool { return errors.Is(err, context.Canceled) && !IsTimeout(err) }},
		{"close", 0, func(st *Stream, _ context.CancelFunc) { st.Close() },
			func(err error) bool { return errors.Is(err, ErrClosed) }},
	}
	for _, tc := range cases {
		for _, raw := range []bool{false, true} {
			c, s := connPair(t, "unix")
			st := newStream("unix:test.sock", c)
			if !raw {
				st.rio = nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.timeout > 0 {
				ctx, cancel = context.WithTimeout(context.Background(), tc.timeout)
			}
			midWrite := make(chan bool, 1)
			go func() {
				br := bufio.NewReader(s)
				line, _ := br.ReadBytes('\n')
				i := bytes.Index(line, []byte(`"id":`))
				if i < 0 {
					midWrite <- false
					return
				}
				n := line[i+5:]
				n = n[:bytes.IndexByte(n, '}')]
				_, _ = s.Write(append(append([]byte(`{"return":`), n...), "}\n"...))
				// The chunk is on its way: take 64 KiB of it, no more.
				_, err := io.ReadFull(br, make([]byte, 64<<10))
				midWrite <- err == nil
				tc.end(st, cancel)
			}()
			// The call syncs first (answered), then sends the chunk.
			_, err := st.Call(ctx, "guest-file-write", map[string]any{"handle": 1, "buf-b64": chunk})
			cancel()
			if !<-midWrite {
				t.Errorf("%s, raw %v: the peer did not see the chunk start", tc.name, raw)
			}
			if !tc.want(err) {
				t.Errorf("%s, raw %v: %v", tc.name, raw, err)
			}
			st.Close()
		}
	}
}
