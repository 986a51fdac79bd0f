//go:build !386

package agentclient

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// SendRead, the request sent from within its reply's read: a peer that
// answers at once is never missed (the request goes after the poller's
// reset, so the reply's arrival wakes the wait), whether it answers before
// the wait begins or after; over unix and tcp sockets.
func TestRawIOSendReadAnsweredAtOnce(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c, s := connPair(t, network)
			r := newRawIO(c)
			go func() { // an echo of each line, as fast as it can
				br := bufio.NewReader(s)
				for {
					line, err := br.ReadBytes('\n')
					if err != nil {
						return
					}
					if _, err := s.Write(line); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 256)
			const rounds = 20000
			for i := range rounds {
				req := []byte("{\"execute\":\"guest-ping\",\"id\":" + strconv.Itoa(i) + "}\n")
				// A wake-up missed waits for the deadline: the round fails
				// in a second, not in the test's timeout.
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				sent, werr, n, err := r.SendRead(req, buf)
				if sent != len(req) || werr != nil || err != nil {
					t.Fatalf("round %d: SendRead = sent %d of %d, %v, read %d, %v", i, sent, len(req), werr, n, err)
				}
				got := append([]byte(nil), buf[:n]...)
				for !bytes.HasSuffix(got, []byte("\n")) { // a reply may come in parts
					m, err := r.Read(buf)
					if err != nil {
						t.Fatalf("round %d: the rest of the reply: %v", i, err)
					}
					got = append(got, buf[:m]...)
				}
				if !bytes.Equal(got, req) {
					t.Fatalf("round %d: read %q, want %q", i, got, req)
				}
			}
		})
	}
}

// A reply that is there before the wait for it begins is read at once:
// the request went after the poller's reset (a request written before the
// read would be answered, here, before the reset, and wait for the
// deadline).
func TestRawIOSendReadAnsweredBeforeTheWait(t *testing.T) {
	c, s := unixPair(t)
	r := newRawIO(c)
	req := []byte("{\"execute\":\"guest-ping\"}\n")
	replied := make(chan struct{})
	go func() {
		b := make([]byte, len(req))
		if _, err := s.Read(b); err != nil {
			return
		}
		if _, err := s.Write([]byte("{\"return\":{}}\n")); err == nil {
			close(replied)
		}
	}()
	testHookSent = func() { <-replied }
	defer func() { testHookSent = nil }()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	sent, werr, n, err := r.SendRead(req, buf)
	if sent != len(req) || werr != nil || err != nil || string(buf[:n]) != "{\"return\":{}}\n" {
		t.Fatalf("SendRead = sent %d, %v, read %q, %v; want the reply that came before the wait", sent, werr, buf[:n], err)
	}
}

// SendRead sends before it waits, and waits for a reply that comes later;
// past the read deadline it says so, with the request sent.
func TestRawIOSendReadWaits(t *testing.T) {
	c, s := unixPair(t)
	r := newRawIO(c)
	req := []byte("{\"execute\":\"guest-info\"}\n")
	type result struct {
		sent, n   int
		werr, err error
		b         []byte
	}
	done := make(chan result, 1)
	go func() {
		buf := make([]byte, 64)
		sent, werr, n, err := r.SendRead(req, buf)
		done <- result{sent, n, werr, err, buf[:n]}
	}()
	got := make([]byte, len(req))
	if _, err := s.Read(got); err != nil || !bytes.Equal(got, req) {
		t.Fatalf("the peer read %q, %v; want the request", got, err)
	}
	select {
	case res := <-done:
		t.Fatalf("SendRead returned before any reply: %+v", res)
	default: // nothing to read yet, so it cannot have returned well
	}
	if _, err := s.Write([]byte("{\"return\":{}}\n")); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.sent != len(req) || res.werr != nil || res.err != nil || string(res.b) != "{\"return\":{}}\n" {
		t.Fatalf("SendRead = %+v; want the request sent and the reply read", res)
	}

	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	sent, werr, n, err := r.SendRead(req, make([]byte, 64))
	if sent != len(req) || werr != nil || n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("no reply by the deadline: sent %d, %v, read %d, %v; want all sent and os.ErrDeadlineExceeded", sent, werr, n, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a net.Error timeout, as the connection's own is", err)
	}
}

// A request the socket cannot take whole goes in part, or not at all when
// its buffer is full, and nothing is read: the caller writes the rest and
// reads as usual. A peer gone fails the send as a write, in net.Conn's words.
func TestRawIOSendReadShort(t *testing.T) {
	c, s := unixPair(t)
	r := newRawIO(c)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: many times the socket buffer
	sent, werr, n, err := r.SendRead(big, make([]byte, 64))
	if sent <= 0 || sent >= len(big) || werr != nil || n != 0 || err != nil {
		t.Fatalf("a request beyond the socket buffer: sent %d of %d, %v, read %d, %v; want part sent, nothing read", sent, len(big), werr, n, err)
	}
	// The buffer is full now: a small request goes not at all.
	sent2, werr, n, err := r.SendRead([]byte("x\n"), make([]byte, 64))
	if sent2 != 0 || werr != nil || n != 0 || err != nil {
		t.Fatalf("into a full buffer: sent %d, %v, read %d, %v; want nothing sent, nothing read", sent2, werr, n, err)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(big))
		m := 0
		for m < len(b) {
			k, err := s.Read(b[m:])
			if err != nil {
				break
			}
			m += k
		}
		got <- b[:m]
	}()
	if _, err := r.Write(big[sent:]); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, not the request", len(b))
	}

	s.Close()
	_, _ = c.Read(make([]byte, 1)) // the peer's end
	sent, werr, _, _ = r.SendRead([]byte("x\n"), make([]byte, 64))
	var oe *net.OpError
	if sent != 0 || !errors.Is(werr, syscall.EPIPE) || !errors.As(werr, &oe) || oe.Op != "write" {
		t.Fatalf("to a peer gone: sent %d, %v; want nothing sent and a write's EPIPE", sent, werr)
	}
}
