//go:build !386

package agentclient

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// unixPair is connPair's unix pair, as the types a stream gets.
func unixPair(t *testing.T) (client, server *net.UnixConn) {
	t.Helper()
	c, s := connPair(t, "unix")
	return c.(*net.UnixConn), s.(*net.UnixConn)
}

// rawIO behaves as net.Conn's Read and Write: bytes both ways, a write
// larger than the socket's buffer completed across EAGAIN while the peer
// reads, the read deadline as os.ErrDeadlineExceeded, a close from
// another goroutine ending a waiting read, and io.EOF at the peer's end.
func TestRawIOAsConn(t *testing.T) {
	c, s := unixPair(t)
	r := newRawIO(c)
	if r == nil {
		t.Fatal("no rawIO for a *net.UnixConn")
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: many times the socket buffer
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(s, int64(len(big))))
		got <- b
	}()
	if n, err := r.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, not what was written", len(b))
	}

	if _, err := s.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "hello\n" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}

	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	_ = c.SetReadDeadline(time.Time{})

	s.Close()
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at the peer's close = %d, %v; want 0, io.EOF", n, err)
	}

	c2, _ := unixPair(t)
	r2 := newRawIO(c2)
	done := make(chan error, 1)
	go func() {
		_, err := r2.Read(buf)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the read wait (if it has not, Close still ends it at once)
	c2.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read after Close returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a waiting Read")
	}
}

// A stream whose connection is no socket of the kernel's (a pipe, an ssh
// channel) keeps the connection's own Read and Write.
func TestRawIONotForPipes(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if newRawIO(a) != nil {
		t.Fatal("rawIO for a net.Pipe")
	}
}
