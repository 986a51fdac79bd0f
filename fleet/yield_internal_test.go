package fleet

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// The watcher's wait keeps a look near a 250th of the time, within
// its bounds.
func TestYieldWait(t *testing.T) {
	for _, tt := range []struct{ took, want time.Duration }{
		{0, yieldPeriod},
		{time.Millisecond, yieldPeriod},
		{2 * time.Millisecond, 500 * time.Millisecond},
		{4 * time.Millisecond, time.Second},
		{time.Second, maxYieldPeriod},
	} {
		if got := yieldWait(tt.took); got != tt.want {
			t.Errorf("yieldWait(%v) = %v, want %v", tt.took, got, tt.want)
		}
	}
}

// The watcher's gate: the first look at once; then a look when the count
// of unix stream sockets moved, when it cannot be read, when enrolments
// wait for their listener, and at yieldForced after the last look
// whatever the count; none while the count stays and nothing waits.
func TestLookGate(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	var g lookGate
	if !g.due(t0, 100, true, false) {
		t.Fatal("no look yet: want one")
	}
	g.last, g.count = t0, 100
	for _, tt := range []struct {
		after        time.Duration
		count        int64
		known, fresh bool
		want         bool
	}{
		{time.Second, 100, true, false, false},
		{yieldForced - time.Millisecond, 100, true, false, false},
		{yieldForced, 100, true, false, true},
		{time.Second, 101, true, false, true},
		{time.Second, 99, true, false, true},
		{time.Second, 0, false, false, true},
		{time.Second, 100, true, true, true},
	} {
		if got := g.due(t0.Add(tt.after), tt.count, tt.known, tt.fresh); got != tt.want {
			t.Errorf("%v after a look at count 100: count %d (known %v), fresh %v: due %v, want %v", tt.after, tt.count, tt.known, tt.fresh, got, tt.want)
		}
	}
}

// Which addresses the watcher can watch: unix socket paths, not abstract
// names or other transports.
func TestLocalSocket(t *testing.T) {
	for _, tt := range []struct {
		addr string
		path string
		ok   bool
	}{
		{"unix:/run/qga.sock", "/run/qga.sock", true},
		{"/run/qga.sock", "/run/qga.sock", true},
		{"unix:rel.sock", "rel.sock", true},
		{"unix:@abstract", "", false},
		{"tcp:127.0.0.1:4444", "", false},
		{"vsock:3:1234", "", false},
		{"ssh://host/run/qga.sock", "", false},
		{"libvirt:h/dom", "", false},
		{"fake:x", "", false},
	} {
		if path, ok := localSocket(tt.addr); path != tt.path || ok != tt.ok {
			t.Errorf("localSocket(%q) = %q %v, want %q %v", tt.addr, path, ok, tt.path, tt.ok)
		}
	}
}

// serveSim serves a simulated guest named name on a sim.Listen socket at
// path until the test ends; the socket file stays when it closes (the test
// may have moved another one to its path).
func serveSim(t *testing.T, name, path string) {
	t.Helper()
	l, err := sim.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	g := sim.New(sim.DefaultConfig(name))
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(l) }()
	t.Cleanup(func() { g.Close(); <-done })
}

// handWatched is a fleet of one guest at path whose polls and watcher's
// looks the test makes (no loop, no watcher goroutine), and its session.
func handWatched(t *testing.T, path string, dialers map[string]Dialer) (*Fleet, *session) {
	t.Helper()
	f := New(Options{Interval: time.Hour, SlowInterval: time.Hour, Timeout: 2 * time.Second, Dialers: dialers})
	t.Cleanup(func() { f.Close() })
	f.Add(Target{Name: "w", Address: "unix:" + path})
	f.yield.mu.Lock()
	f.yield.running = true // the test looks: watch starts no goroutine
	f.yield.mu.Unlock()
	return f, f.session("w")
}

// handPoll polls s as its loop would.
func handPoll(t *testing.T, s *session) {
	t.Helper()
	if err := s.poll(t.Context(), false); err != nil {
		t.Fatalf("poll: %v", err)
	}
}

// connected reports whether s holds a connection (peeking under its token,
// without a release that would let go).
func connected(s *session) bool {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	return s.agent != nil
}

// The socket file is replaced (a VM restarted at the same path) during a
// look, after its stat(2) and dump, and the session meanwhile lets go of
// its connection to the old listener and enrols one to the new listener,
// at the same path. The look's result is about the old connection: it
// must not enrol the new one under the old listener's inode, where a
// client waiting at the new listener never makes the session let go.
func TestYieldReenrolDuringLook(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path, next := filepath.Join(dir, "w.sock"), filepath.Join(dir, "n.sock")
	serveSim(t, "old", path)
	f, s := handWatched(t, path, nil)
	w := &f.yield
	handPoll(t, s) // kept, enrolled: listener to be found

	w.afterDump = func() {
		w.afterDump = nil // once (the look copied it under w.mu)
		serveSim(t, "new", next)
		if err := os.Rename(next, path); err != nil {
			t.Error(err)
			return
		}
		// The old connection goes (the old VM's QEMU exits), and the next
		// poll dials the new listener and enrols again.
		s.sem <- struct{}{}
		s.dropAgent()
		s.release()
		handPoll(t, s)
	}
	w.look()
	if !connected(s) {
		t.Fatal("the session let go of its new connection")
	}
	w.look() // finds the new connection's listener

	// A client waiting at the new listener: the session lets go at the
	// next look.
	var d net.Dialer
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	other, err := d.DialContext(ctx, "unix", path) // queued behind the session
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	w.look()
	if connected(s) {
		w.mu.Lock()
		e, fresh := w.fresh[s]
		ino, found := w.where[s]
		w.mu.Unlock()
		t.Errorf("a client waits at the new listener and the session keeps its channel (to be found %v %+v, found %v at inode %d)", fresh, e, found, ino)
	}
}

// A session off (its listener not found for yieldMisses connections) tries
// again once its backoff has passed: still not found, it is off again for
// twice as long; found (here the socket at its path starts listening, as
// a VM restarted with a normal socket), it keeps its channel again.
func TestYieldOffRetries(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	real, unseen := filepath.Join(dir, "r.sock"), filepath.Join(dir, "u.sock")
	serveSim(t, "r", real)
	// Bound, not listening: the dump does not show it (as a listener in
	// another network namespace); the dialer reaches the agent at real.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: unseen}); err != nil {
		t.Fatal(err)
	}
	f, s := handWatched(t, unseen, map[string]Dialer{"unix": func(ctx context.Context, tg Target) (agentclient.Agent, error) {
		return agentclient.Dial(ctx, "unix:"+real)
	}})
	w := &f.yield
	for i := range yieldMisses {
		handPoll(t, s)
		if !connected(s) {
			t.Fatalf("connection %d let go before a look", i)
		}
		w.look()
		if connected(s) {
			t.Fatalf("connection %d kept though its listener was not found", i)
		}
	}
	if !s.watch.off.Load() || time.Duration(s.watch.retryFor.Load()) != yieldRetry {
		t.Fatalf("after %d misses: off %v for %v, want off for %v", yieldMisses, s.watch.off.Load(), time.Duration(s.watch.retryFor.Load()), yieldRetry)
	}
	handPoll(t, s)
	if connected(s) {
		t.Fatal("off, within its backoff: the connection kept")
	}

	// The backoff passes (the test moves the try forward): the next
	// connection is watched again, not found, and the session is off for
	// twice as long.
	s.watch.retryAt.Store(0)
	handPoll(t, s)
	if !connected(s) {
		t.Fatal("the try after the backoff: the connection let go before a look")
	}
	w.look()
	if connected(s) || !s.watch.off.Load() || time.Duration(s.watch.retryFor.Load()) != 2*yieldRetry {
		t.Fatalf("a try not found: connected %v, off %v for %v; want let go, off for %v",
			connected(s), s.watch.off.Load(), time.Duration(s.watch.retryFor.Load()), 2*yieldRetry)
	}

	// Findable now; within the backoff nothing changes, and the try after
	// it finds the listener: kept again.
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	handPoll(t, s)
	if connected(s) {
		t.Fatal("off, within its backoff: the connection kept")
	}
	s.watch.retryAt.Store(0)
	handPoll(t, s)
	w.look()
	if !connected(s) || s.watch.off.Load() || s.watch.retryFor.Load() != 0 {
		t.Fatalf("a try that finds the listener: connected %v, off %v (backoff %v); want kept, on",
			connected(s), s.watch.off.Load(), time.Duration(s.watch.retryFor.Load()))
	}
	w.mu.Lock()
	_, found := w.where[s]
	w.mu.Unlock()
	if !found {
		t.Error("kept, but not filed under its listener")
	}
	handPoll(t, s)
	w.look()
	if !connected(s) {
		t.Error("found: the connection let go at the next poll and look")
	}
}

// A look once every enrolment is found allocates no more for having had
// thousands of them: the map of the enrolments still to find kept a
// launch's room, and each look cloned it (656 KB at 10,000 guests).
func TestYieldLookAfterLaunch(t *testing.T) {
	if err := agentclient.ListenerQueues(false, func(agentclient.ListenerQueue) {}); err != nil {
		t.Fatalf("sock_diag: %v", err) // the look below needs it
	}
	const n = 10000
	w := &yieldWatcher{
		fresh:  make(map[*session]enrolment),
		bySock: make(map[uint32][]*session),
		where:  make(map[*session]uint32),
	}
	ss := make([]session, n)
	for i := range ss {
		w.fresh[&ss[i]] = enrolment{path: "/nonexistent", n: uint64(i)}
	}
	for i := range ss { // found, as a look finds them
		delete(w.fresh, &ss[i])
		w.where[&ss[i]], w.bySock[0] = 0, append(w.bySock[0], &ss[i])
	}
	// Once to settle what the dump keeps, then measured.
	if _, more := w.look(); !more {
		t.Fatal("the watcher stopped with sessions to watch")
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w.look()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("a look with none to find allocated %d bytes, want at most 64 KiB", got)
	}
}
