package agentclient_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Hostile agents for the reply limits and the budget: real sockets, replies
// streamed in chunks so that the server itself holds no big buffer.

// hugeMember writes {"return": {"name": "AAAA..."}, "id": ...} with n bytes of
// A, and returns the line's length without its newline. stall, if not nil,
// is waited on before the end of the line is written.
func hugeMember(c *agentConn, req *wireRequest, n int, stall <-chan struct{}) (int, error) {
	head := `{"return": {"name": "`
	tail := `"}, "id": ` + string(req.ID) + "}"
	chunk := bytes.Repeat([]byte("A"), 64<<10)
	if _, err := c.Write([]byte(head)); err != nil {
		return 0, err
	}
	for left := n; left > 0; {
		k := min(left, len(chunk))
		if _, err := c.Write(chunk[:k]); err != nil {
			return 0, err
		}
		left -= k
	}
	if stall != nil {
		<-stall
	}
	if _, err := c.Write([]byte(tail + "\n")); err != nil {
		return 0, err
	}
	return len(head) + n + len(tail), nil
}

// allocated runs fn and returns the bytes the whole process allocated meanwhile.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// One 85 MB OS name: the call fails naming the command and the exact size,
// the skip buffers nothing, and the stream answers the next call.
func TestHostileOSInfoReply(t *testing.T) {
	const n = 85_000_000
	lineLen := make(chan int, 1)
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		switch req.Execute {
		case "guest-get-osinfo":
			l, err := hugeMember(c, req, n, nil)
			if err != nil {
				return false
			}
			lineLen <- l
		default:
			c.reply(req, `{"host-name":"after"}`)
		}
		return true
	})
	c := dialT(t, addr, agentclient.WithReadBuffer(4<<10))
	var err error
	alloc := allocated(func() { _, err = c.OSInfo(ctxFor(t, 30*time.Second)) })
	want := fmt.Sprintf("reply too large (%d bytes from guest-get-osinfo, limit 64 KiB)", <-lineLen)
	if !errors.Is(err, agentclient.ErrTooLarge) || !strings.Contains(err.Error(), want) {
		t.Fatalf("85 MB osinfo: %v, want ErrTooLarge saying %q", err, want)
	}
	if agentclient.IsTimeout(err) || !agentclient.IsCallError(err) {
		t.Errorf("a reply skipped to its end is the call's failure, not the transport's: %v", err)
	}
	t.Logf("skipping an 85 MB reply allocated %d bytes", alloc)
	if alloc > 1<<20 {
		t.Errorf("skipping an 85 MB reply allocated %d bytes: it must not buffer", alloc)
	}
	if h, err := c.Hostname(ctxFor(t, 10*time.Second)); err != nil || h != "after" {
		t.Fatalf("the call after it = %q, %v", h, err)
	}
}

// A line that has not ended when the call's time is up: "more than N", and
// the stream resyncs past the rest of it.
func TestOversizedReplyCutByDeadline(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		if req.Execute == "guest-get-osinfo" {
			_, err := hugeMember(c, req, 1<<20, release)
			return err == nil
		}
		c.reply(req, `{"host-name":"after"}`)
		return true
	})
	c := dialT(t, addr)
	_, err := c.OSInfo(ctxFor(t, 300*time.Millisecond))
	free()
	var tl *agentclient.TooLargeError
	if !errors.As(err, &tl) || !agentclient.IsTimeout(err) || !strings.Contains(err.Error(), "reply too large (more than ") ||
		!strings.Contains(err.Error(), " bytes from guest-get-osinfo, limit 64 KiB)") {
		t.Fatalf("cut oversized reply: %v, want too large (more than N bytes) and timed out", err)
	}
	if tl.Bytes <= 64<<10 || tl.Bytes > 1<<20+64 {
		t.Errorf("counted %d bytes of a line that had at least 64 KiB and at most 1 MiB when the call ended", tl.Bytes)
	}
	if agentclient.IsCallError(err) {
		t.Errorf("a cut line leaves the stream out of step: not a call-only error")
	}
	if h, err := c.Hostname(ctxFor(t, 10*time.Second)); err != nil || h != "after" {
		t.Fatalf("the call after it = %q, %v", h, err)
	}
}

// In a batch each reply has its own limit: the oversized one fails alone.
func TestBatchReplyLimits(t *testing.T) {
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		switch req.Execute {
		case "guest-get-time":
			c.reply(req, "111")
		case "guest-network-get-interfaces": // limit 2 MiB
			_, err := hugeMember(c, req, 3<<20, nil)
			return err == nil
		case "guest-get-vcpus":
			c.reply(req, `[{"logical-id":0,"online":true}]`)
		case "guest-get-fsinfo": // 3 MiB is within its 4 MiB
			_, err := hugeMember(c, req, 3<<20, nil)
			return err == nil
		}
		return true
	})
	c := dialT(t, addr)
	st := c.Transport().(*agentclient.Stream)
	var ns int64
	var ifs []agentclient.Interface
	var vcpus []agentclient.VCPU
	calls := []agentclient.BatchCall{
		{Name: "guest-get-time", Out: &ns},
		{Name: "guest-network-get-interfaces", Out: &ifs},
		{Name: "guest-get-vcpus", Out: &vcpus},
		{Name: "guest-get-fsinfo"},
	}
	st.Batch(ctxFor(t, 10*time.Second), calls)
	if calls[0].Err != nil || ns != 111 {
		t.Errorf("time = %d, %v", ns, calls[0].Err)
	}
	if !strings.Contains(fmt.Sprint(calls[1].Err), "bytes from guest-network-get-interfaces, limit 2 MiB)") {
		t.Errorf("interfaces: %v, want too large against its 2 MiB", calls[1].Err)
	}
	if calls[2].Err != nil || len(vcpus) != 1 {
		t.Errorf("vcpus after the oversized reply = %+v, %v", vcpus, calls[2].Err)
	}
	// fsinfo's reply is not a list, but it is within its limit: it arrives
	// and fails only to decode.
	if calls[3].Err != nil {
		t.Errorf("3 MiB fsinfo reply, within 4 MiB: %v", calls[3].Err)
	}
}

// The line buffer grows by doubling but never past the reply's limit: a
// reply just under a 150,000-byte limit (doubling from 4 or 64 KiB reads
// would reach 256 KiB) is held in at most 150,000 bytes. The line is longer
// than any read buffer, so it is assembled in the line buffer.
func TestLineBufferStopsAtLimit(t *testing.T) {
	const limit = 150_000
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		tail := `"}], "id": ` + string(req.ID) + "}"
		pad := limit - len(`{"return": [{"user": "`) - len(tail) - 1
		c.reply(req, `[{"user": "`+strings.Repeat("B", pad)+`"}]`)
		return true
	})
	var peak int
	c := dialT(t, addr, agentclient.WithReadBuffer(4<<10), agentclient.WithMaxReply(limit), agentclient.WithLog(func(r agentclient.LogRecord) {
		if r.Command == "guest-get-users" {
			peak = cap(r.Reply)
		}
	}))
	users, err := c.Users(ctxFor(t, 10*time.Second))
	if err != nil || len(users) != 1 || len(users[0].User) < limit-100 {
		t.Fatalf("users just under the limit: %v", err)
	}
	if peak > limit || peak < limit-100 {
		t.Errorf("a %d-byte reply was held in a %d-byte buffer; want at most its %d limit", len(users[0].User), peak, limit)
	}
}

// Two streams share a small budget. While one assembles a long reply, the
// other's long reply fails at once with ErrBudget (not at its deadline);
// short replies, which fit the read buffer, still work; once the first is
// done the budget is whole again and the second succeeds.
func TestBudgetExhausted(t *testing.T) {
	const readBuf = 4 << 10
	budget := agentclient.NewBudget(100 << 10)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	slow := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		if req.Execute == "guest-get-users" {
			// 90 KiB, then a pause mid-line holding ~86 KiB of budget.
			_, err := hugeMember(c, req, 90<<10, release)
			return err == nil
		}
		c.reply(req, `{}`)
		return true
	})
	fast := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		if req.Execute == "guest-get-users" {
			_, err := hugeMember(c, req, 60<<10, nil)
			return err == nil
		}
		c.reply(req, `{}`)
		return true
	})
	// Registered after serveAgent's cleanups, so it runs before them (they
	// run last first): a failed test must not leave the server stalled.
	t.Cleanup(free)
	opts := []agentclient.Option{agentclient.WithReadBuffer(readBuf), agentclient.WithBudget(budget)}
	a, b := dialT(t, slow, opts...), dialT(t, fast, opts...)

	slowDone := make(chan error, 1)
	go func() {
		_, err := a.Transport().Call(ctxFor(t, 30*time.Second), "guest-get-users", nil)
		slowDone <- err
	}()
	// Wait (on the budget, not the clock) until the slow reply holds all it
	// will: the whole of what came, less the read buffer. Part of it is not
	// enough: the slow reply's next growth could then fail on what the
	// second one holds, drop its line and free the budget for the second.
	held := int64(len(`{"return": {"name": "`) + 90<<10 - readBuf)
	for budget.InUse() < held {
		select {
		case err := <-slowDone:
			t.Fatalf("slow reply ended early: %v", err)
		default:
			runtime.Gosched()
		}
	}
	_, err := b.Transport().Call(ctxFor(t, 30*time.Second), "guest-get-users", nil)
	var be *agentclient.BudgetError
	if !errors.As(err, &be) || !errors.Is(err, agentclient.ErrBudget) || agentclient.IsTimeout(err) {
		t.Fatalf("second long reply while the budget is held: %v, want ErrBudget at once", err)
	}
	if !strings.Contains(err.Error(), "reply budget exhausted: the reply to guest-get-users needed") || be.Limit != 100<<10 {
		t.Errorf("budget error reads %q", err)
	}
	if err := b.Ping(ctxFor(t, 10*time.Second)); err != nil {
		t.Errorf("a short reply while the budget is held: %v", err)
	}
	free()
	if err := <-slowDone; err != nil {
		t.Fatalf("the reply holding the budget: %v", err)
	}
	if n := budget.InUse(); n != 0 {
		t.Fatalf("budget holds %d bytes after every call ended", n)
	}
	if _, err := b.Transport().Call(ctxFor(t, 10*time.Second), "guest-get-users", nil); err != nil {
		t.Fatalf("second long reply once the budget is free: %v", err)
	}
	if n := budget.InUse(); n != 0 {
		t.Errorf("budget holds %d bytes after every call ended", n)
	}
}

// Every way a call can end gives its charge back: a timeout mid-line, a
// reply too large, a connection dropped mid-line.
func TestBudgetReleased(t *testing.T) {
	budget := agentclient.NewBudget(8 << 20)
	for _, mode := range []string{"stall", "huge", "drop"} {
		t.Run(mode, func(t *testing.T) {
			hang := make(chan struct{})
			addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
				if req.Execute != "guest-get-users" {
					c.reply(req, "{}")
					return true
				}
				switch mode {
				case "stall":
					hugeMember(c, req, 40<<10, hang)
				case "huge":
					hugeMember(c, req, 300<<10, nil)
				case "drop":
					c.Write([]byte(`{"return": [{"user": "` + strings.Repeat("u", 40<<10)))
					return false
				}
				return true
			})
			t.Cleanup(func() { close(hang) }) // after serveAgent's: runs first
			c := dialT(t, addr, agentclient.WithReadBuffer(4<<10), agentclient.WithBudget(budget))
			_, err := c.Users(ctxFor(t, 300*time.Millisecond))
			if err == nil {
				t.Fatalf("no error")
			}
			if n := budget.InUse(); n != 0 {
				t.Errorf("%v: budget still holds %d bytes", err, n)
			}
		})
	}
}

// BenchmarkHostileOSInfo measures what one 85 MB guest-get-osinfo reply
// costs the client: bytes allocated per reply skipped (B/op).
func BenchmarkHostileOSInfo(b *testing.B) {
	const n = 85_000_000
	l, addr := listenUnix(b)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				c := &agentConn{Conn: conn, r: bufio.NewReader(conn), echoID: true}
				for {
					req, err := c.next()
					if err != nil {
						return
					}
					if req.Execute == "guest-sync-delimited" {
						c.sync(req)
						continue
					}
					if _, err := hugeMember(c, req, n, nil); err != nil {
						return
					}
				}
			}()
		}
	}()
	c, err := agentclient.Dial(context.Background(), addr, agentclient.WithReadBuffer(4<<10))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	b.SetBytes(n)
	for b.Loop() {
		if _, err := c.OSInfo(context.Background()); !errors.Is(err, agentclient.ErrTooLarge) {
			b.Fatalf("85 MB osinfo: %v", err)
		}
	}
}
