package fleet_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// dialCounter is a unix and tcp dialer that counts each guest's dials: the
// real transport, observed.
type dialCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func newDialCounter() *dialCounter { return &dialCounter{n: map[string]int{}} }

func (c *dialCounter) dial(ctx context.Context, t fleet.Target) (agentclient.Agent, error) {
	c.mu.Lock()
	c.n[t.Name]++
	c.mu.Unlock()
	a, err := agentclient.Dial(ctx, t.Address)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (c *dialCounter) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// yieldFleet is a started read-only fleet polling targets every 200 ms
// through c. The timeout leaves room for a dial that waits its turn behind
// another fleet's session: the watcher's period plus a poll.
func yieldFleet(t *testing.T, c *dialCounter, targets ...fleet.Target) *fleet.Fleet {
	t.Helper()
	f := fleet.New(fleet.Options{Interval: 200 * time.Millisecond, SlowInterval: time.Second, Timeout: 2 * time.Second, Readonly: true,
		Dialers: map[string]fleet.Dialer{"unix": c.dial, "tcp": c.dial}})
	t.Cleanup(func() { f.Close() })
	f.Add(targets...)
	f.Start(t.Context())
	return f
}

// polledAfter waits until the guest has finished a successful live poll
// that started after t0 (LastLive is stamped when a poll is applied).
func polledAfter(t *testing.T, f *fleet.Fleet, name string, t0 time.Time) {
	t.Helper()
	wait.For(t, 30*time.Second, func() (bool, string) {
		g := f.Guest(name)
		return g.State == fleet.Ready && g.LastLive.After(t0), fmt.Sprintf("%s: %s %q, last live %v, waiting for a poll after %v", name, g.State, g.Err, g.LastLive, t0)
	})
}

// pollTwice waits for two more polls of name: the second started after the
// first was done (the first may have started before the call).
func pollTwice(t *testing.T, f *fleet.Fleet, name string) {
	t.Helper()
	polls(t, f, name, 2)
}

// polls waits for k more polls of name, each started after the one before
// was done: at least k-1 of them started after the call.
func polls(t *testing.T, f *fleet.Fleet, name string, k int) {
	t.Helper()
	for range k {
		polledAfter(t, f, name, time.Now())
	}
}

// syncClient is another client of the agent at sock (a script, a backup's
// freeze): it connects and asks guest-sync-delimited, and must have the
// reply before ctx's deadline. It returns the connection, still open.
func syncClient(ctx context.Context, sock string, id int) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	fail := func(err error) (net.Conn, error) { conn.Close(); return nil, err }
	if _, err := fmt.Fprintf(conn, `{"execute":"guest-sync-delimited","arguments":{"id":%d}}`+"\n", id); err != nil {
		return fail(err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return fail(fmt.Errorf("no reply to the sync before the deadline: %w", err))
	}
	var r struct {
		Return *int `json:"return"`
	}
	if err := json.Unmarshal(bytes.TrimLeft(line, "\xff"), &r); err != nil || r.Return == nil || *r.Return != id {
		return fail(fmt.Errorf("sync reply %q, want return %d", line, id))
	}
	return conn, nil
}

// checkKeepYield: a session keeps its connection between polls; another
// client that connects is served within a bound (its context's 5 s
// deadline; without the yield it would wait for as long as the session
// stays idle, forever); while that client holds the channel, the session's
// next dial waits its turn in the queue; once the client leaves, that dial
// is served and the session polls, and keeps, again.
func checkKeepYield(t *testing.T, sock string) {
	c := newDialCounter()
	f := yieldFleet(t, c, fleet.Target{Name: "g", Address: "unix:" + sock})
	wait.For(t, 30*time.Second, func() (bool, string) {
		g := f.Guest("g")
		return g.State == fleet.Ready, fmt.Sprintf("%s %q", g.State, g.Err)
	})
	pollTwice(t, f, "g")
	if n := c.count("g"); n != 1 {
		t.Fatalf("%d dials over three polls, want 1: the connection kept between polls", n)
	}

	for round := range 3 {
		before := c.count("g") // kept: no dial until the session lets go
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		other, err := syncClient(ctx, sock, 4242+round)
		cancel()
		if err != nil {
			t.Fatalf("round %d: another client: %v (the session kept the channel from it)", round, err)
		}
		// The session's next poll dials and waits behind the other client.
		sf, err := agentclient.StatSocketFile(sock)
		if err != nil {
			t.Fatal(err)
		}
		wait.For(t, 30*time.Second, func() (bool, string) {
			q := listenerQueue(t, sf)
			return q > 0, fmt.Sprintf("round %d: the session's dial not queued behind the other client (queue %d, dials %d)", round, q, c.count("g"))
		})
		closed := time.Now()
		other.Close()
		polledAfter(t, f, "g", closed)
		if g := f.Guest("g"); g.Missed != 0 {
			t.Errorf("round %d: %d polls missed: the queued dial should have waited its turn", round, g.Missed)
		}
		after := c.count("g")
		if after != before+1 {
			t.Errorf("round %d: %d dials for the turn after the other client's, want 1 (waiting in the queue, then served)", round, after-before)
		}
		pollTwice(t, f, "g")
		if n := c.count("g"); n != after {
			t.Errorf("round %d: %d more dials over two polls once back, want none: kept again", round, n-after)
		}
	}
}

// listenerQueue is how many connections wait at the listener bound to sf.
func listenerQueue(t *testing.T, sf agentclient.SocketFile) int {
	n := -1
	if err := agentclient.ListenerQueues(true, func(q agentclient.ListenerQueue) {
		if q.File == sf {
			n = q.Queued
		}
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// simSockets serves n simulated guests on sim.Listen sockets (backlog 1,
// one client at a time, as the real agent).
func simSockets(t *testing.T, n int) *sim.Farm {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdy") // socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, n, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("y%02d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	return farm
}

func TestKeepYieldRealAgent(t *testing.T) {
	checkKeepYield(t, testpeers.StartAgents(t, 1).Sockets[0])
}

func TestKeepYieldSim(t *testing.T) {
	checkKeepYield(t, simSockets(t, 1).Sockets()[0])
}

// Two fleets (two guestdecks) on one agent: each keeps the channel until
// the other's dial waits for it, so they take turns, and both keep polling
// without a miss.
func TestKeepYieldTwoFleets(t *testing.T) {
	for _, peer := range []struct {
		name string
		sock func(t *testing.T) string
	}{
		{"qemu-ga", func(t *testing.T) string { return testpeers.StartAgents(t, 1).Sockets[0] }},
		{"sim", func(t *testing.T) string { return simSockets(t, 1).Sockets()[0] }},
	} {
		t.Run(peer.name, func(t *testing.T) {
			target := fleet.Target{Name: "g", Address: "unix:" + peer.sock(t)}
			c1, c2 := newDialCounter(), newDialCounter()
			f1, f2 := yieldFleet(t, c1, target), yieldFleet(t, c2, target)
			for range 5 {
				t0 := time.Now()
				polledAfter(t, f1, "g", t0)
				polledAfter(t, f2, "g", t0)
			}
			for i, f := range []*fleet.Fleet{f1, f2} {
				if g := f.Guest("g"); g.State != fleet.Ready || g.Missed != 0 {
					t.Errorf("fleet %d: %s %q, %d missed", i+1, g.State, g.Err, g.Missed)
				}
			}
			// Neither held on to the channel: each dialled again for its
			// turns after the other's.
			if c1.count("g") < 3 || c2.count("g") < 3 {
				t.Errorf("dials %d and %d over five polls each: want them taking turns", c1.count("g"), c2.count("g"))
			}
		})
	}
}

// Where the watcher cannot see the queue (a tcp agent here; ssh, vsock and
// non-Linux alike), the session lets go after each poll, as before: one
// dial per poll, and the channel free between polls.
func TestKeepYieldFallback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := sim.New(sim.DefaultConfig("tcp"))
	go g.Serve(l)
	t.Cleanup(func() { g.Close() })
	c := newDialCounter()
	f := yieldFleet(t, c, fleet.Target{Name: "t", Address: "tcp:" + l.Addr().String()})
	polledAfter(t, f, "t", time.Now())
	d0 := c.count("t")
	polls(t, f, "t", 3)
	if n := c.count("t") - d0; n < 2 {
		t.Errorf("%d dials over three polls of a tcp agent (two started after the count), want one each: let go after each poll", n)
	}
}

// A dial of ours waiting behind another client's hold on one guest is not
// a client waiting for the channels we keep: the fleet's other guests keep
// theirs.
func TestKeepYieldOwnQueuedDial(t *testing.T) {
	farm := simSockets(t, 2)
	a, b := farm.Sockets()[0], farm.Sockets()[1]
	c := newDialCounter()
	f := yieldFleet(t, c, fleet.Target{Name: "a", Address: "unix:" + a}, fleet.Target{Name: "b", Address: "unix:" + b})
	polledAfter(t, f, "a", time.Now())
	polledAfter(t, f, "b", time.Now())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	holder, err := syncClient(ctx, b, 7)
	cancel()
	if err != nil {
		t.Fatalf("holder of b: %v", err)
	}
	defer holder.Close()
	sf, err := agentclient.StatSocketFile(b)
	if err != nil {
		t.Fatal(err)
	}
	da := c.count("a")
	// b's dials wait behind the holder, poll after poll; a goes on.
	db := c.count("b")
	wait.For(t, 30*time.Second, func() (bool, string) {
		return c.count("b") >= db+2 && listenerQueue(t, sf) > 0, fmt.Sprintf("b: %d dials, want two more waiting behind the holder", c.count("b")-db)
	})
	pollTwice(t, f, "a")
	if n := c.count("a") - da; n != 0 {
		t.Errorf("a dialled %d times while b's dials waited: a's kept channel was let go for our own dial", n)
	}
}

// A socket path whose listener the kernel's dump does not show (here a
// socket bound but not listening, standing in for a listener in another
// network namespace; the dialer reaches the agent elsewhere) cannot be
// watched: the session goes back to letting go after each poll, rather
// than keeping a channel it could not give up on demand.
func TestKeepYieldListenerNotSeen(t *testing.T) {
	real := simSockets(t, 1).Sockets()[0]
	unseen := filepath.Join(filepath.Dir(real), "unseen.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: unseen}); err != nil {
		t.Fatal(err)
	}
	c := newDialCounter()
	f := fleet.New(fleet.Options{Interval: 200 * time.Millisecond, SlowInterval: time.Second, Timeout: 2 * time.Second, Readonly: true,
		Dialers: map[string]fleet.Dialer{"unix": func(ctx context.Context, tg fleet.Target) (agentclient.Agent, error) {
			tg.Address = "unix:" + real
			return c.dial(ctx, tg)
		}}})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "u", Address: "unix:" + unseen})
	f.Start(t.Context())
	// The watcher lets go of each connection whose listener it cannot
	// find, and after three (yieldMisses) the session stops keeping.
	wait.For(t, 30*time.Second, func() (bool, string) {
		return c.count("u") >= 4, fmt.Sprintf("%d dials: the connection kept though its listener cannot be seen", c.count("u"))
	})
	d0 := c.count("u")
	polls(t, f, "u", 3)
	if n := c.count("u") - d0; n < 2 {
		t.Errorf("%d dials over three polls (two started after the count) of a socket whose listener cannot be seen, want one each", n)
	}
}

// A stream whose calls run out of time keeps its connection (session.go's
// keepsAfterTimeout), and a hung agent's guest then holds it poll after
// poll; the yield watcher still makes it let go when another client waits,
// and that client is served once the agent answers again.
func TestKeepYieldHungAgent(t *testing.T) {
	farm := simSockets(t, 1)
	sock, g := farm.Sockets()[0], farm.Guests()[0]
	c := newDialCounter()
	f := fleet.New(fleet.Options{Interval: 200 * time.Millisecond, SlowInterval: time.Second, Timeout: 300 * time.Millisecond, Readonly: true,
		Dialers: map[string]fleet.Dialer{"unix": c.dial}})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "h", Address: "unix:" + sock})
	f.Start(t.Context())
	polledAfter(t, f, "h", time.Now())
	g.SetHang(true)
	released := false
	t.Cleanup(func() {
		if !released {
			g.SetHang(false)
		}
	})
	wait.For(t, 30*time.Second, func() (bool, string) {
		st := f.Guest("h")
		return st.State == fleet.Silent && st.Missed >= 1, fmt.Sprintf("%s %q, %d missed", st.State, st.Err, st.Missed)
	})
	d0 := c.count("h")
	m0 := f.Guest("h").Missed
	wait.For(t, 30*time.Second, func() (bool, string) {
		st := f.Guest("h")
		return st.Missed >= m0+3, fmt.Sprintf("%d missed, want %d", st.Missed, m0+3)
	})
	if n := c.count("h") - d0; n != 0 {
		t.Errorf("%d dials over three timed-out polls of a hung agent, want none: the connection kept after a timeout", n)
	}

	// Another client waits; the session lets go (it dials again after),
	// and once the agent answers again the client is served.
	type res struct {
		conn net.Conn
		err  error
	}
	done := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		conn, err := syncClient(ctx, sock, 99)
		done <- res{conn, err}
	}()
	wait.For(t, 30*time.Second, func() (bool, string) {
		return c.count("h") > d0, "the session kept the hung agent's channel from a waiting client"
	})
	g.SetHang(false)
	released = true
	r := <-done
	if r.err != nil {
		t.Fatalf("the waiting client: %v", r.err)
	}
	r.conn.Close()
	polledAfter(t, f, "h", time.Now())
}

// A thaw that runs out of time keeps its connection (the agent is slow, not
// gone): the retry resyncs on it, is not handed the late answer of the
// attempt before, and confirms the thaw; the thawed guest's channel is
// then given up to another client that waits for it.
func TestThawTimeoutRetryOnKeptConnection(t *testing.T) {
	farm := simSockets(t, 1)
	sock, g := farm.Sockets()[0], farm.Guests()[0]
	c := newDialCounter()
	// No polls after the first: every call after the freeze is the thaw's.
	f := fleet.New(fleet.Options{Interval: time.Hour, SlowInterval: time.Hour, Timeout: 300 * time.Millisecond, ThawBudget: 30 * time.Second,
		Dialers: map[string]fleet.Dialer{"unix": c.dial}})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "z", Address: "unix:" + sock})
	f.Start(t.Context())
	polledAfter(t, f, "z", time.Time{})
	if r := f.Run(t.Context(), fleet.Action{Kind: fleet.ActFreeze}, []string{"z"}, nil)[0]; !r.OK {
		t.Fatalf("freeze: %+v", r)
	}
	g.SetHang(true)
	hung := true
	t.Cleanup(func() {
		if hung {
			g.SetHang(false)
		}
	})
	done := make(chan []fleet.Result, 1)
	go func() { done <- f.ThawOurs(t.Context()) }()
	wait.For(t, 30*time.Second, func() (bool, string) {
		st := f.Guest("z")
		return st.State == fleet.Silent, fmt.Sprintf("%s %q: waiting for the first thaw attempt to time out", st.State, st.Err)
	})
	g.SetHang(false)
	hung = false
	rs := <-done
	if len(rs) != 1 || !rs[0].OK {
		t.Fatalf("ThawOurs: %+v", rs)
	}
	if !strings.Contains(rs[0].Result, "guest-fsfreeze-status says thawed") {
		t.Errorf("thaw result %q: want it confirmed by the status", rs[0].Result)
	}
	if n := c.count("z"); n != 1 {
		t.Errorf("%d dials, want 1: the retry runs on the connection kept after the timeout", n)
	}
	if st := f.Guest("z"); st.FrozenByUs {
		t.Errorf("after the thaw: still frozen by us (%s %q)", st.State, st.Err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	other, err := syncClient(ctx, sock, 77)
	if err != nil {
		t.Fatalf("another client after the thaw: %v (the thawed guest's channel was not given up)", err)
	}
	other.Close()
}

// A guest rebooted by guestdeck (guest-shutdown mode reboot) keeps its
// agent channel across the reboot, as virtio-serial does (the host side
// stays connected; the agent is silent until it is back). The session's
// polls time out meanwhile; once the agent answers again the guest is
// ready, and its channel goes back to being given up to another client,
// not held as a guest on its way down's for ever.
func TestRebootComesBack(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		cfg := sim.DefaultConfig("rb")
		cfg.RebootDelay = 4 * time.Second // past the shutdown's grace: polls time out meanwhile
		return cfg
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	sock := farm.Sockets()[0]
	c := newDialCounter()
	f := fleet.New(fleet.Options{Interval: 200 * time.Millisecond, SlowInterval: time.Second, Timeout: 300 * time.Millisecond,
		Dialers: map[string]fleet.Dialer{"unix": c.dial}})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "rb", Address: "unix:" + sock})
	f.Start(t.Context())
	polledAfter(t, f, "rb", time.Time{})
	res := f.Run(t.Context(), fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownReboot}, []string{"rb"}, nil)
	if len(res) != 1 || !res[0].OK {
		t.Fatalf("reboot: %+v", res)
	}
	wait.For(t, 30*time.Second, func() (bool, string) {
		g := f.Guest("rb")
		return g.State == fleet.Ready, fmt.Sprintf("%s %q, %d missed: want ready once the agent is back", g.State, g.Err, g.Missed)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	other, err := syncClient(ctx, sock, 55)
	if err != nil {
		t.Fatalf("another client after the reboot: %v", err)
	}
	other.Close()
}

// A reboot shorter than the shutdown's grace period (the agent is back
// before the action returns): the poll after it answers on the connection
// kept through the reboot (virtio-serial: the host side stays connected),
// never a fresh one. The agent answering as a new boot (its CPUs' time
// since boot went back) ends shutting-down.
func TestQuickRebootComesBack(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		cfg := sim.DefaultConfig("qr")
		cfg.RebootDelay = 200 * time.Millisecond // within agentclient.DefaultShutdownGrace
		return cfg
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	c := newDialCounter()
	f := fleet.New(fleet.Options{Interval: 200 * time.Millisecond, SlowInterval: time.Minute, Timeout: time.Second,
		Dialers: map[string]fleet.Dialer{"unix": c.dial}})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "qr", Address: "unix:" + farm.Sockets()[0]})
	f.Start(t.Context())
	polledAfter(t, f, "qr", time.Time{})
	sampled(t, f, "qr")
	dials := c.count("qr")
	res := f.Run(t.Context(), fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownReboot}, []string{"qr"}, nil)
	if len(res) != 1 || !res[0].OK {
		t.Fatalf("reboot: %+v", res)
	}
	wait.For(t, 30*time.Second, func() (bool, string) {
		g := f.Guest("qr")
		return g.State == fleet.Ready, fmt.Sprintf("%s %q: want ready once the agent is back", g.State, g.Err)
	})
	if n := c.count("qr"); n != dials {
		t.Errorf("%d dials across the reboot: the test wants the connection kept through it", n-dials)
	}
	// Ready, the channel is no longer held for the shutdown: another
	// client gets it (the watcher makes the session let go).
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	other, err := syncClient(ctx, farm.Sockets()[0], 56)
	if err != nil {
		t.Fatalf("another client after the reboot: %v", err)
	}
	other.Close()
}

// sampled waits for name's first metrics sample: the boot mark a shutdown
// takes comes from it (markBoot).
func sampled(t *testing.T, f *fleet.Fleet, name string) {
	t.Helper()
	wait.For(t, 30*time.Second, func() (bool, string) {
		g := f.Guest(name)
		return g.Metrics.CPUs > 0, fmt.Sprintf("%s %q: waiting for a metrics sample", g.State, g.Err)
	})
}

// A guest still on its way down answers polls for a while (its agent
// stops among the last): that is not a reboot, and it stays shutting-down
// until it has rebooted. So over the connection kept since the shutdown,
// and over a fresh one after a poll ran out of time (a shutting-down
// guest's silence drops its connection), where the first answer used to
// show it ready while it went on going down.
func TestShutdownStillGoingStays(t *testing.T) {
	for _, tc := range []struct {
		name    string
		silence bool // silent for one poll right after the shutdown
	}{
		{"kept", false},
		{"fresh after a timeout", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("/tmp", "gds")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
				cfg := sim.DefaultConfig("sg")
				cfg.ShutdownDelay = 8 * time.Second // answers normally for this long
				cfg.RebootDelay = 200 * time.Millisecond
				return cfg
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { farm.Close() })
			guest := farm.Guests()[0]
			f := fleet.New(fleet.Options{Interval: 200 * time.Millisecond, SlowInterval: time.Minute, Timeout: time.Second})
			t.Cleanup(func() { f.Close() })
			f.Add(fleet.Target{Name: "sg", Address: "unix:" + farm.Sockets()[0]})
			f.Start(t.Context())
			polledAfter(t, f, "sg", time.Time{})
			sampled(t, f, "sg")
			syncs := guest.Calls("guest-sync-delimited") // one per connection
			res := f.Run(t.Context(), fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownReboot}, []string{"sg"}, nil)
			if len(res) != 1 || !res[0].OK {
				t.Fatalf("reboot: %+v", res)
			}
			if tc.silence {
				missed := f.Guest("sg").Missed
				guest.SetSilent(true)
				wait.For(t, 10*time.Second, func() (bool, string) {
					g := f.Guest("sg")
					return g.Missed > missed, fmt.Sprintf("%s %q: waiting for a poll to run out of time", g.State, g.Err)
				})
				guest.SetSilent(false)
			}
			t1 := time.Now()
			var g *fleet.Guest
			for range 2 { // two polls answered since the action, while the guest is still up
				wait.For(t, 10*time.Second, func() (bool, string) {
					g = f.Guest("sg")
					return g.LastLive.After(t1), fmt.Sprintf("%s %q, last live %v: waiting for a poll after %v", g.State, g.Err, g.LastLive, t1)
				})
				t1 = g.LastLive
			}
			if _, down := guest.ShutdownMode(); down {
				t.Fatal("the guest went down before two polls were seen: the machine is too slow for this test's 8 s")
			}
			if fresh := guest.Calls("guest-sync-delimited") - syncs; tc.silence && fresh < 1 {
				t.Fatal("no fresh connection after the poll that ran out of time")
			}
			if g.State != fleet.ShuttingDown {
				t.Errorf("still going down, answering: %s %q, want shutting-down", g.State, g.Err)
			}
			wait.For(t, 30*time.Second, func() (bool, string) {
				g := f.Guest("sg")
				return g.State == fleet.Ready, fmt.Sprintf("%s %q: want ready once it has rebooted", g.State, g.Err)
			})
		})
	}
}

// A shutdown sent on a connection kept since its agent hung up (the
// guest's QEMU restarted between polls: the connection read nothing
// since) never reaches an agent: it fails as not sent. It used to fail as
// a lost connection, which is how a guest going down hangs up, and was
// reported accepted. (The agent here lacks guest-get-cpustats, as it did
// when the boot mark was a call of its own that could find the connection
// broken first.)
func TestShutdownNotSentOnDeadKeptConnection(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		cfg := sim.DefaultConfig("dk")
		cfg.Disabled = append(cfg.Disabled, "guest-get-cpustats")
		return cfg
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	guest := farm.Guests()[0]
	c := newDialCounter()
	f := fleet.New(fleet.Options{Timeout: 2 * time.Second, Dialers: map[string]fleet.Dialer{"unix": c.dial}})
	t.Cleanup(func() { f.Close() })
	// Exclusive: the connection is kept between uses whoever waits.
	f.Add(fleet.Target{Name: "dk", Address: "unix:" + farm.Sockets()[0], Exclusive: true})
	f.RefreshOnce(t.Context(), nil)
	if g := f.Guest("dk"); g.State != fleet.Ready {
		t.Fatalf("%s %q before the shutdown", g.State, g.Err)
	}
	dials := c.count("dk")
	guest.Restart() // drops the kept connection
	res := f.Run(t.Context(), fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownPowerdown}, []string{"dk"}, nil)
	if n := c.count("dk"); n != dials {
		t.Fatalf("%d dials for the shutdown: the test wants it sent on the kept connection", n-dials)
	}
	if n := guest.Calls("guest-shutdown"); n != 0 {
		t.Fatalf("the agent ran guest-shutdown %d times on a connection it had dropped", n)
	}
	if len(res) != 1 || res[0].OK || !strings.Contains(res[0].Err, "not sent") {
		t.Errorf("shutdown on a dead kept connection: %+v, want failed, not sent", res)
	}
	if g := f.Guest("dk"); g.State == fleet.ShuttingDown {
		t.Errorf("%s %q: shutting down without a shutdown sent", g.State, g.Err)
	}
}

// NoKeep (one-shot status): each use dials and lets go at once, against
// the real agent: two refreshes, two dials. Without it the same refreshes
// dial once (the connection kept for the watcher to yield).
func TestNoKeepLetsGoAfterUse(t *testing.T) {
	sock := testpeers.StartAgents(t, 1).Sockets[0]
	for _, noKeep := range []bool{true, false} {
		c := newDialCounter()
		f := fleet.New(fleet.Options{Timeout: 5 * time.Second, Readonly: true, NoKeep: noKeep,
			Dialers: map[string]fleet.Dialer{"unix": c.dial}})
		f.Add(fleet.Target{Name: "g", Address: "unix:" + sock})
		errs := f.RefreshErrs(t.Context(), []string{"g"})
		if errs["g"] != nil {
			t.Fatalf("NoKeep %v: first refresh: %v", noKeep, errs["g"])
		}
		if errs := f.RefreshErrs(t.Context(), []string{"g"}); errs["g"] != nil {
			t.Fatalf("NoKeep %v: second refresh: %v", noKeep, errs["g"])
		}
		want := map[bool]int{true: 2, false: 1}[noKeep]
		if n := c.count("g"); n != want {
			t.Errorf("NoKeep %v: %d dials for two refreshes, want %d", noKeep, n, want)
		}
		f.Close()
	}
}

// NoKeep lets go only what would have been kept until another client
// asks: a connection kept for a reason of its own (an exclusive channel,
// a freeze of ours not yet thawed) stays, against the simulator: after
// the first use no refresh dials again.
func TestNoKeepStillKeepsOwnReasons(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exclusive bool
		freeze    bool
	}{
		{"exclusive", true, false},
		{"frozen by us", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			farm := simSockets(t, 1)
			c := newDialCounter()
			f := fleet.New(fleet.Options{Timeout: 5 * time.Second, NoKeep: true, ThawBudget: 30 * time.Second,
				Dialers: map[string]fleet.Dialer{"unix": c.dial}})
			t.Cleanup(func() { f.Close() })
			f.Add(fleet.Target{Name: "k", Address: "unix:" + farm.Sockets()[0], Exclusive: tc.exclusive})
			if errs := f.RefreshErrs(t.Context(), []string{"k"}); errs["k"] != nil {
				t.Fatalf("first refresh: %v", errs["k"])
			}
			if tc.freeze {
				if r := f.Run(t.Context(), fleet.Action{Kind: fleet.ActFreeze}, []string{"k"}, nil)[0]; !r.OK {
					t.Fatalf("freeze: %+v", r)
				}
				t.Cleanup(func() { f.Run(context.Background(), fleet.Action{Kind: fleet.ActThaw}, []string{"k"}, nil) })
			}
			before := c.count("k")
			for range 2 {
				if errs := f.RefreshErrs(t.Context(), []string{"k"}); errs["k"] != nil {
					t.Fatalf("refresh: %v", errs["k"])
				}
			}
			if n := c.count("k") - before; n != 0 {
				t.Errorf("%d dials for two refreshes: the connection kept for its own reason was let go", n)
			}
			if tc.freeze {
				if g := f.Guest("k"); !g.FrozenByUs {
					t.Errorf("after the refreshes: %s, not frozen by us", g.State)
				}
			}
		})
	}
}
