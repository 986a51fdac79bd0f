package sim

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// startGuest serves a guest built from cfg on a unix socket in a short temp dir.
func startGuest(t testing.TB, cfg Config) (*Guest, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "g.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	g := New(cfg)
	done := make(chan error, 1)
	go func() { done <- g.Serve(l) }()
	t.Cleanup(func() {
		g.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		os.RemoveAll(dir)
	})
	return g, sock
}

func dial(t testing.TB, sock string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a test client speaking raw lines.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func newRaw(t testing.TB, sock string) *rawConn {
	c := dial(t, sock)
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatal(err)
	}
}

// line reads one reply line (newline included), failing after d.
func (rc *rawConn) line(d time.Duration) (string, error) {
	rc.c.SetReadDeadline(time.Now().Add(d))
	defer rc.c.SetReadDeadline(time.Time{})
	return rc.r.ReadString('\n')
}

func (rc *rawConn) mustLine() string {
	rc.t.Helper()
	// The deadline only bounds a failure: a 16 MiB reply under -race on a
	// loaded 2-core machine took over 3 s.
	l, err := rc.line(30 * time.Second)
	if err != nil {
		got := l
		if len(got) > 200 {
			got = got[:200]
		}
		rc.t.Fatalf("reading reply: %v (got %d bytes: %q...)", err, len(l), got)
	}
	return l
}

// call sends one request and decodes the reply's return into out, failing
// the test on an error reply.
func (rc *rawConn) call(req string, out any) {
	rc.t.Helper()
	rc.send(req)
	l := rc.mustLine()
	var rep struct {
		Return json.RawMessage `json:"return"`
		Error  *struct{ Class, Desc string }
	}
	if err := json.Unmarshal([]byte(l), &rep); err != nil {
		rc.t.Fatalf("%s: bad reply %q: %v", req, l, err)
	}
	if rep.Error != nil {
		rc.t.Fatalf("%s: error %s: %s", req, rep.Error.Class, rep.Error.Desc)
	}
	if out != nil {
		if err := json.Unmarshal(rep.Return, out); err != nil {
			rc.t.Fatalf("%s: decode %s: %v", req, rep.Return, err)
		}
	}
}

// callErr sends one request and returns the error reply's class and desc.
func (rc *rawConn) callErr(req string) (class, desc string) {
	rc.t.Helper()
	rc.send(req)
	l := rc.mustLine()
	var rep struct {
		Error *struct{ Class, Desc string }
	}
	if err := json.Unmarshal([]byte(l), &rep); err != nil || rep.Error == nil {
		rc.t.Fatalf("%s: want an error reply, got %q", req, l)
	}
	return rep.Error.Class, rep.Error.Desc
}
