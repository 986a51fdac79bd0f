package agentclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Tiny in-test agents for the transport's failure modes. The real agent and
// the simulator cover the protocol itself (conformance_test.go).

type wireRequest struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        json.RawMessage `json:"id"`
}

// agentConn is one server-side session.
type agentConn struct {
	net.Conn
	r      *bufio.Reader
	echoID bool
}

// next reads one request, dropping the 0xFF resync byte.
func (c *agentConn) next() (*wireRequest, error) {
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		line = bytes.TrimLeft(line, "\xff")
		var req wireRequest
		if json.Unmarshal(line, &req) != nil {
			continue
		}
		return &req, nil
	}
}

// reply writes {"return": v} (with the request's id when echoing).
func (c *agentConn) reply(req *wireRequest, v string) error {
	return c.raw(req, `"return":`+v)
}

func (c *agentConn) raw(req *wireRequest, member string) error {
	id := ""
	if c.echoID && req.ID != nil {
		id = `,"id":` + string(req.ID)
	}
	_, err := fmt.Fprintf(c, "{%s%s}\n", member, id)
	return err
}

// sync answers guest-sync-delimited the way qemu-ga does.
func (c *agentConn) sync(req *wireRequest) error {
	var a struct{ ID int64 }
	json.Unmarshal(req.Arguments, &a)
	c.Write([]byte{0xFF})
	return c.reply(req, fmt.Sprint(a.ID))
}

// serveAgent runs handle for every request of every session on a fresh
// socket; syncs are answered before handle sees anything. handle returns
// false to drop the connection.
func serveAgent(t *testing.T, echoID bool, handle func(c *agentConn, req *wireRequest) bool) string {
	t.Helper()
	l, addr := listenUnix(t)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				c := &agentConn{Conn: conn, r: bufio.NewReader(conn), echoID: echoID}
				go func() { <-ctxDone(t); conn.Close() }()
				for {
					req, err := c.next()
					if err != nil {
						return
					}
					if req.Execute == "guest-sync-delimited" {
						c.sync(req)
						continue
					}
					if !handle(c, req) {
						return
					}
				}
			}()
		}
	}()
	return addr
}

// ctxDone is closed when the test ends, to release blocked servers.
func ctxDone(t *testing.T) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(ch) }) })
	return ch
}

// within fails the test if the call took longer than want plus slack; slack
// is generous so that a loaded machine cannot make it flake.
func within(t *testing.T, start time.Time, want time.Duration) {
	t.Helper()
	if el := time.Since(start); el > want+1500*time.Millisecond {
		t.Errorf("took %v, want about %v", el, want)
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in, network, address string
		bad                  bool
	}{
		{in: "unix:/run/qga.sock", network: "unix", address: "/run/qga.sock"},
		{in: "/run/qga.sock", network: "unix", address: "/run/qga.sock"},
		{in: "tcp:127.0.0.1:4444", network: "tcp", address: "127.0.0.1:4444"},
		{in: "tcp:[::1]:4444", network: "tcp", address: "[::1]:4444"},
		{in: "vsock:3:1234", network: "vsock", address: "3:1234"},
		{in: "unix:", bad: true},
		{in: "tcp:host", bad: true},
		{in: "tcp:host:http", bad: true},
		{in: "vsock:x:1", bad: true},
		{in: "vsock:3", bad: true},
		{in: "serial:/dev/ttyS0", bad: true},
		{in: "guest-1", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		n, a, err := agentclient.ParseAddress(tt.in)
		if tt.bad {
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
				t.Errorf("ParseAddress(%q) = %q, %q, %v; want an error naming it", tt.in, n, a, err)
			}
			continue
		}
		if err != nil || n != tt.network || a != tt.address {
			t.Errorf("ParseAddress(%q) = %q, %q, %v; want %q, %q", tt.in, n, a, err, tt.network, tt.address)
		}
	}
}

// A reply that arrives after its call timed out must never be handed to the
// next call, whether or not the agent echoes request ids.
func TestLateReplyNeverReachesNextCall(t *testing.T) {
	for _, echo := range []bool{true, false} {
		t.Run(fmt.Sprintf("echo-id=%v", echo), func(t *testing.T) {
			addr := serveAgent(t, echo, func(c *agentConn, req *wireRequest) bool {
				switch req.Execute {
				case "guest-get-time":
					time.Sleep(400 * time.Millisecond)
					c.reply(req, "111")
				case "guest-get-host-name":
					c.reply(req, `{"host-name":"right"}`)
				default:
					c.reply(req, "{}")
				}
				return true
			})
			c := dialT(t, addr)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, err := c.Time(ctx)
			cancel()
			if !agentclient.IsTimeout(err) {
				t.Fatalf("slow call: %v, want timeout", err)
			}
			for i := range 3 {
				h, err := c.Hostname(ctxFor(t, 5*time.Second))
				if err != nil || h != "right" {
					t.Fatalf("call %d after timeout = %q, %v", i, h, err)
				}
			}
		})
	}
}

func TestDroppedConnectionFailsAtOnce(t *testing.T) {
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		if req.Execute == "guest-get-time" {
			time.Sleep(100 * time.Millisecond)
			return false // drop it with the call in flight
		}
		c.reply(req, "{}")
		return true
	})
	c := dialT(t, addr)
	start := time.Now()
	_, err := c.Time(ctxFor(t, 30*time.Second))
	if !agentclient.IsConnLost(err) {
		t.Fatalf("call on dropped connection: %v, want connection lost", err)
	}
	within(t, start, 100*time.Millisecond)
	if err := c.Ping(ctxFor(t, 30*time.Second)); !agentclient.IsConnLost(err) {
		t.Fatalf("later call: %v, want connection lost", err)
	}
	c.Close()
	if err := c.Ping(ctxFor(t, time.Second)); !errors.Is(err, agentclient.ErrClosed) {
		t.Fatalf("call after Close: %v, want ErrClosed", err)
	}
}

func TestCloseFailsCallInFlight(t *testing.T) {
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool { return true }) // never answers
	c := dialT(t, addr)
	time.AfterFunc(100*time.Millisecond, func() { c.Close() })
	start := time.Now()
	err := c.Ping(ctxFor(t, 30*time.Second))
	if !errors.Is(err, agentclient.ErrClosed) {
		t.Fatalf("call in flight during Close: %v, want ErrClosed", err)
	}
	within(t, start, 100*time.Millisecond)
}

func TestDeadlineHonoured(t *testing.T) {
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool { return true }) // hangs
	c := dialT(t, addr)
	const d = 200 * time.Millisecond
	// Two calls at once: the second waits for the first's slot and must
	// still give up at its own deadline.
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			start := time.Now()
			err := c.Ping(ctx)
			if !agentclient.IsTimeout(err) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("call %d: %v, want timeout", i, err)
			}
			within(t, start, d)
		}()
	}
	wg.Wait()
	// Cancellation (no deadline) is honoured too, and is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(d, cancel)
	start := time.Now()
	if err := c.Ping(ctx); !errors.Is(err, context.Canceled) || agentclient.IsTimeout(err) {
		t.Errorf("cancelled call: %v, want context.Canceled", err)
	}
	within(t, start, d)
}

func TestSilentChannel(t *testing.T) {
	// Like a QEMU chardev with no agent behind it: accepts, reads, never answers.
	l, addr := listenUnix(t)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, conn); conn.Close() }()
		}
	}()
	const d = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	_, err := agentclient.Dial(ctx, addr)
	if !agentclient.IsSilent(err) || !agentclient.IsTimeout(err) {
		t.Fatalf("Dial of a silent channel: %v, want silent", err)
	}
	within(t, start, d)
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name %s", err, addr)
	}
}

func TestDialErrorsNameTheAddress(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A socket file nobody listens on: connection refused.
	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedTCP := "tcp:" + tl.Addr().String()
	tl.Close()

	tests := []struct {
		addr, want string
		errno      error // the system error kept beneath the words, or nil
	}{
		{"unix:" + filepath.Join(dir, "missing.sock"), ": no such socket", syscall.ENOENT},
		{"unix:" + stale, ": connection refused: nothing is listening", syscall.ECONNREFUSED},
		{closedTCP, ": connection refused: nothing is listening", syscall.ECONNREFUSED},
		{"bogus:1", "unknown scheme", nil},
	}
	for _, tt := range tests {
		_, err := agentclient.Dial(ctxFor(t, 5*time.Second), tt.addr)
		if err == nil || !strings.Contains(err.Error(), tt.addr) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Dial(%s) = %v; want an error naming the address and %q", tt.addr, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "dial ") {
			t.Errorf("Dial(%s) = %v; net's own wording repeats what the message says", tt.addr, err)
		}
		if tt.errno != nil && !errors.Is(err, tt.errno) {
			t.Errorf("Dial(%s) = %v; want it to unwrap to %v", tt.addr, err, tt.errno)
		}
		if agentclient.IsSilent(err) {
			t.Errorf("Dial(%s): refused is not silent: %v", tt.addr, err)
		}
	}
}

func TestNotAnAgent(t *testing.T) {
	serve := func(t *testing.T, fn func(net.Conn)) string {
		l, addr := listenUnix(t)
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				go func() { defer conn.Close(); fn(conn) }()
			}
		}()
		return addr
	}
	tests := []struct {
		name string
		peer func(t *testing.T) string
	}{
		{"http server", func(t *testing.T) string {
			l, addr := listenUnix(t)
			srv := &http.Server{Handler: http.NotFoundHandler()}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			return addr
		}},
		{"echo server", func(t *testing.T) string {
			return serve(t, func(c net.Conn) { io.Copy(c, c) })
		}},
		{"junk then close", func(t *testing.T) string {
			return serve(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")) })
		}},
		{"endless junk", func(t *testing.T) string {
			return serve(t, func(c net.Conn) {
				for {
					if _, err := c.Write([]byte("\x00\x01garbage garbage garbage\n")); err != nil {
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.peer(t)
			const d = 2 * time.Second
			start := time.Now()
			_, err := agentclient.Dial(ctxFor(t, d), addr)
			if !errors.Is(err, agentclient.ErrMalformed) || agentclient.IsSilent(err) {
				t.Fatalf("Dial: %v, want a not-an-agent error", err)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name %s", err, addr)
			}
			within(t, start, d)
			t.Log(err)
		})
	}
}

func TestOversizedReply(t *testing.T) {
	big := `"` + strings.Repeat("A", 2<<20) + `"`
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		switch req.Execute {
		case "guest-get-host-name":
			c.reply(req, `{"host-name":`+big+`}`)
		default:
			c.reply(req, `{"host-name":"small"}`)
		}
		return true
	})
	c := dialT(t, addr, agentclient.WithMaxReply(1<<20))
	_, err := c.Hostname(ctxFor(t, 10*time.Second))
	if !errors.Is(err, agentclient.ErrTooLarge) {
		t.Fatalf("oversized reply: %v, want ErrTooLarge", err)
	}
	// The session recovers: the next call resyncs and gets its own reply.
	var v struct {
		HostName string `json:"host-name"`
	}
	raw, err := c.Transport().Call(ctxFor(t, 10*time.Second), "guest-get-osinfo", nil)
	if err != nil || json.Unmarshal(raw, &v) != nil || v.HostName != "small" {
		t.Fatalf("call after oversized reply = %s, %v", raw, err)
	}
}

func TestMalformedReply(t *testing.T) {
	addr := serveAgent(t, false, func(c *agentConn, req *wireRequest) bool {
		switch req.Execute {
		case "guest-get-time":
			c.Write([]byte("{\"return\": 12, oops\n"))
		case "guest-get-vcpus":
			c.Write([]byte("[1,2,3]\n"))
		default:
			c.reply(req, "{}")
		}
		return true
	})
	c := dialT(t, addr)
	for _, cmd := range []string{"guest-get-time", "guest-get-vcpus"} {
		_, err := c.Transport().Call(ctxFor(t, 5*time.Second), cmd, nil)
		var op *agentclient.OpError
		if !errors.Is(err, agentclient.ErrMalformed) || !errors.As(err, &op) || op.Command != cmd {
			t.Fatalf("%s: %v, want ErrMalformed in an OpError", cmd, err)
		}
		if err := c.Ping(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatalf("ping after malformed reply: %v", err)
		}
	}
}

// With an agent that echoes ids, channel noise cannot be a reply: the call
// sees through it, and fails as malformed (and timed out) only if nothing
// else comes.
func TestMalformedNoiseWithIDs(t *testing.T) {
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		c.Write([]byte("\x00\x1bnoise}{\"ret\n"))
		if req.Execute == "guest-get-host-name" {
			c.reply(req, `{"host-name":"right"}`)
		}
		return true
	})
	c := dialT(t, addr)
	if h, err := c.Hostname(ctxFor(t, 5*time.Second)); err != nil || h != "right" {
		t.Fatalf("call through noise = %q, %v", h, err)
	}
	const d = 200 * time.Millisecond
	start := time.Now()
	err := c.Ping(ctxFor(t, d))
	if !errors.Is(err, agentclient.ErrMalformed) || !agentclient.IsTimeout(err) {
		t.Fatalf("only noise: %v, want malformed and timed out", err)
	}
	within(t, start, d)
}

func TestNoReplyCommands(t *testing.T) {
	tests := []struct {
		name    string
		handle  func(c *agentConn, req *wireRequest, late chan<- struct{}) bool
		wantErr func(error) bool
	}{
		{"eof means accepted", func(c *agentConn, req *wireRequest, _ chan<- struct{}) bool { return false }, nil},
		{"silence means accepted", func(c *agentConn, req *wireRequest, late chan<- struct{}) bool {
			// A late error after the grace period must not reach the next call.
			go func() {
				time.Sleep(300 * time.Millisecond) // the agent's own pace: past the grace
				c.raw(req, `"error":{"class":"GenericError","desc":"late"}`)
				close(late)
			}()
			return true
		}, nil},
		{"error is returned", func(c *agentConn, req *wireRequest, _ chan<- struct{}) bool {
			c.raw(req, `"error":{"class":"CommandNotFound","desc":"Command guest-shutdown has been disabled"}`)
			return true
		}, agentclient.IsDisabled},
	}
	for _, tt := range tests {
		for _, echo := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/echo-id=%v", tt.name, echo), func(t *testing.T) {
				late := make(chan struct{})
				addr := serveAgent(t, echo, func(c *agentConn, req *wireRequest) bool {
					if req.Execute == "guest-shutdown" {
						return tt.handle(c, req, late)
					}
					c.reply(req, `{"host-name":"right"}`)
					return true
				})
				c := dialT(t, addr, agentclient.WithShutdownGrace(100*time.Millisecond))
				start := time.Now()
				err := c.Shutdown(ctxFor(t, 10*time.Second), "")
				switch {
				case tt.wantErr == nil && err != nil:
					t.Fatalf("shutdown: %v, want accepted", err)
				case tt.wantErr != nil && !tt.wantErr(err):
					t.Fatalf("shutdown: %v, want the agent's error", err)
				}
				within(t, start, 100*time.Millisecond)
				if tt.name == "silence means accepted" {
					<-late // the late error is on its way before the next call
					if h, err := c.Hostname(ctxFor(t, 5*time.Second)); err != nil || h != "right" {
						t.Fatalf("call after shutdown = %q, %v", h, err)
					}
				}
			})
		}
	}
}

func TestLogHook(t *testing.T) {
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		c.reply(req, "{}")
		return true
	})
	var mu sync.Mutex
	var recs []agentclient.LogRecord
	c := dialT(t, addr, agentclient.WithLog(func(r agentclient.LogRecord) {
		mu.Lock()
		defer mu.Unlock()
		r.Request, r.Reply = bytes.Clone(r.Request), bytes.Clone(r.Reply)
		recs = append(recs, r)
	}))
	if err := c.Ping(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1 (syncs are not logged)", len(recs))
	}
	r := recs[0]
	if r.Command != "guest-ping" || r.Addr != addr || r.Err != nil || !bytes.Contains(r.Request, []byte(`"execute":"guest-ping"`)) ||
		!bytes.Contains(r.Reply, []byte(`"return":{}`)) || r.Duration <= 0 || r.Start.IsZero() {
		t.Errorf("record %+v (request %s, reply %s)", r, r.Request, r.Reply)
	}
}
