package fleet_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// simFleet serves n simulated guests in this process and polls them fast.
func simFleet(t *testing.T, n int, opts fleet.Options) (*sim.Farm, *fleet.Fleet) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, n, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("s%02d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(opts)
	t.Cleanup(func() { f.Close() })
	for _, sock := range farm.Sockets() {
		f.Add(fleet.Target{Name: strings.TrimSuffix(filepath.Base(sock), ".sock"), Address: "unix:" + sock})
	}
	return farm, f
}

func fastOptions() fleet.Options {
	return fleet.Options{Interval: 200 * time.Millisecond, SlowInterval: time.Second, Timeout: 300 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}
}

// Each fault moves only its guest to the expected state while the others
// keep refreshing on time, and the guest recovers when the fault clears.
func TestSimFaults(t *testing.T) {
	type fault struct {
		name  string
		set   func(t *testing.T, g *sim.Guest, sock string) (clear func())
		state fleet.State // expected while the fault lasts
		err   string      // substring of Guest.Err while the fault lasts
	}
	faults := []fault{
		{name: "hang", state: fleet.Silent, err: "in time", set: func(t *testing.T, g *sim.Guest, _ string) func() {
			g.SetHang(true)
			return func() { g.SetHang(false) }
		}},
		{name: "silent", state: fleet.Silent, set: func(t *testing.T, g *sim.Guest, _ string) func() {
			g.SetSilent(true)
			g.Restart() // the agent dies: the channel stays up, nothing answers
			return func() { g.SetSilent(false) }
		}},
		// Junk lines before every reply: the transport sees through them
		// (the agent echoes request ids), so the guest stays ready and fresh.
		{name: "garbage", state: fleet.Ready, set: func(t *testing.T, g *sim.Guest, _ string) func() {
			g.SetGarbage(true)
			return func() { g.SetGarbage(false) }
		}},
		{name: "stale", state: fleet.Ready, set: func(t *testing.T, g *sim.Guest, _ string) func() {
			g.SetStale(true)
			return func() { g.SetStale(false) }
		}},
		{name: "missing-socket", state: fleet.Unreachable, err: "no such socket", set: func(t *testing.T, g *sim.Guest, sock string) func() {
			os.Remove(sock)
			g.Restart() // drop the live connection too
			return func() {
				l, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				go g.Serve(l)
			}
		}},
	}
	for _, ft := range faults {
		t.Run(ft.name, func(t *testing.T) {
			opts := fastOptions()
			farm, f := simFleet(t, 4, opts)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			f.Start(ctx)
			waitAll(t, f, fleet.Ready, 5*time.Second)
			victim := "s01"
			t0 := time.Now()
			clear := ft.set(t, farm.Guests()[1], farm.Sockets()[1])
			// The victim shows the fault (a guest that stays ready has been
			// polled through it), and then the others poll on regardless.
			wait.For(t, 5*time.Second, func() (bool, string) {
				g := f.Guest(victim)
				ok := g.State == ft.state && strings.Contains(g.Err, ft.err) && (ft.state != fleet.Ready || g.LastLive.After(t0))
				return ok, fmt.Sprintf("during %s: %s %q, last live %v, want %s %q", ft.name, g.State, g.Err, g.LastLive, ft.state, ft.err)
			})
			polledSince(t, f, victim, time.Now())
			checkBystanders(t, f, victim, opts)
			clear()
			waitFor(t, f, victim, 5*time.Second, func(g *fleet.Guest) bool {
				return g.State == fleet.Ready && time.Since(g.LastLive) < opts.Interval
			})
			checkBystanders(t, f, victim, opts)
		})
	}
}

// Dropped connections (replies cut mid-line) and agent restarts: the fleet
// redials and the guest is back; a freeze survives the restart.
func TestSimDropAndRestart(t *testing.T) {
	opts := fastOptions()
	farm, f := simFleet(t, 3, opts)
	f.Start(t.Context())
	waitAll(t, f, fleet.Ready, 5*time.Second)
	g := farm.Guests()[1]
	missed := f.Guest("s01").Missed
	g.DropMidReply(3)
	waitFor(t, f, "s01", 5*time.Second, func(g *fleet.Guest) bool { return g.State == fleet.Ready && g.Missed > missed })
	checkBystanders(t, f, "s01", opts)

	if r := f.Run(t.Context(), fleet.Action{Kind: fleet.ActFreeze}, []string{"s01"}, nil)[0]; !r.OK {
		t.Fatalf("freeze: %+v", r)
	}
	g.Restart()
	// Redialled after the restart: polled again, still frozen by us.
	polledSince(t, f, "", time.Now())
	gs := f.Guest("s01")
	if gs.State != fleet.Frozen || !gs.FrozenByUs || !g.Frozen() {
		t.Fatalf("after restart: %s FrozenByUs=%v sim frozen=%v (%s)", gs.State, gs.FrozenByUs, g.Frozen(), gs.Err)
	}
	if rs := f.ThawOurs(t.Context()); len(rs) != 1 || !rs[0].OK || g.Frozen() {
		t.Fatalf("ThawOurs: %+v", rs)
	}
	checkBystanders(t, f, "s01", opts)
}

// Shutdown through the simulator: accepted, then gone once the guest's
// socket refuses; a reboot comes back ready.
func TestSimShutdown(t *testing.T) {
	opts := fastOptions()
	farm, f := simFleet(t, 3, opts)
	f.Start(t.Context())
	waitAll(t, f, fleet.Ready, 5*time.Second)
	a, _ := fleet.ParseAction([]string{"shutdown"})
	if r := f.Run(t.Context(), a, []string{"s00"}, nil)[0]; !r.OK {
		t.Fatalf("shutdown: %+v", r)
	}
	if mode, ok := farm.Guests()[0].ShutdownMode(); !ok || mode != "powerdown" {
		t.Fatalf("sim shutdown mode %q %v", mode, ok)
	}
	waitFor(t, f, "s00", 10*time.Second, func(g *fleet.Guest) bool { return g.State == fleet.Gone })
	checkBystanders(t, f, "s00", opts)
}

// No goroutine or file descriptor leaks over 1,000 connect/disconnect
// cycles (MarkGone closes the connection, RefreshOnce redials), nor after
// guests are added and removed, nor after clients gave up waiting for a
// busy guest's channel.
func TestSimNoLeaks(t *testing.T) {
	opts := fastOptions()
	farm, f := simFleet(t, 2, opts)
	ctx := t.Context()
	f.RefreshOnce(ctx, nil)
	count := func() (int, int) {
		runtime.GC()
		fds, _ := os.ReadDir("/proc/self/fd")
		return runtime.NumGoroutine(), len(fds)
	}
	g0, fd0 := count()
	for i := range 1000 {
		f.MarkGone("s00", "test")
		f.RefreshOnce(ctx, []string{"s00"})
		if st := f.Guest("s00").State; st != fleet.Ready {
			t.Fatalf("cycle %d: %s %q", i, st, f.Guest("s00").Err)
		}
	}
	// The agent serves one client at a time: free s01's channel first.
	f.MarkGone("s01", "test")
	for i := range 100 {
		name := fmt.Sprintf("extra%d", i)
		f.Add(fleet.Target{Name: name, Address: "unix:" + farm.Sockets()[1]})
		f.RefreshOnce(ctx, []string{name})
		if st := f.Guest(name).State; st != fleet.Ready {
			t.Fatalf("%s: %s %q", name, st, f.Guest(name).Err)
		}
		f.Remove(name)
	}
	// Clients that give up waiting for a channel another client holds
	// hang up: the simulator lets their connections go too.
	f.RefreshOnce(ctx, []string{"s01"})
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	holder, err := agentclient.Dial(hctx, "unix:"+farm.Sockets()[1])
	hcancel()
	if err != nil {
		t.Fatal(err)
	}
	var waiters []string
	for i := range 20 {
		name := fmt.Sprintf("waiter%d", i)
		f.Add(fleet.Target{Name: name, Address: "unix:" + farm.Sockets()[1]})
		waiters = append(waiters, name)
	}
	f.RefreshOnce(ctx, waiters)
	for _, name := range waiters {
		if g := f.Guest(name); g.State != fleet.Held {
			t.Fatalf("%s: %s %q while a client holds the channel, want held", name, g.State, g.Err)
		}
	}
	// Once the holder lets go, the agent takes the two connections still
	// queued (closed by now) in turn, then s01's next dial: it comes back.
	holder.Close()
	f.Remove(waiters...)
	wait.For(t, 5*time.Second, func() (bool, string) {
		f.RefreshOnce(ctx, []string{"s01"})
		g := f.Guest("s01")
		return g.State == fleet.Ready, fmt.Sprintf("s01: %s %q after the holder let go", g.State, g.Err)
	})
	// Abandoned calls and closed connections wind down in the background
	// (the simulator's side too): wait for them, within a bound.
	var g1, fd1 int
	wait.For(t, 5*time.Second, func() (bool, string) {
		g1, fd1 = count()
		return g1 <= g0+2 && fd1 <= fd0+2, fmt.Sprintf("leak after 1,000 cycles: goroutines %d -> %d, fds %d -> %d", g0, g1, fd0, fd1)
	})
	t.Logf("goroutines %d -> %d, fds %d -> %d", g0, g1, fd0, fd1)
}

func waitAll(t *testing.T, f *fleet.Fleet, st fleet.State, d time.Duration) {
	t.Helper()
	wait.For(t, d, func() (bool, string) {
		s := f.Snapshot()
		var not []string
		for _, g := range s.Guests {
			if g.State != st {
				not = append(not, fmt.Sprintf("%s: %s %q", g.Name, g.State, g.Err))
			}
		}
		return len(not) == 0, fmt.Sprintf("not all %s: %s", st, strings.Join(not, "; "))
	})
}

// polledSince waits until every guest but skip has finished a live poll
// after t0.
func polledSince(t *testing.T, f *fleet.Fleet, skip string, t0 time.Time) {
	t.Helper()
	wait.For(t, 5*time.Second, func() (bool, string) {
		for _, g := range f.Snapshot().Guests {
			if g.Name != skip && !g.LastLive.After(t0) {
				return false, fmt.Sprintf("%s not polled since %v: %s %q, last live %v", g.Name, t0, g.State, g.Err, g.LastLive)
			}
		}
		return true, ""
	})
}

// checkBystanders asserts every other guest is ready and refreshed within
// its interval (plus scheduling slack).
func checkBystanders(t *testing.T, f *fleet.Fleet, victim string, opts fleet.Options) {
	t.Helper()
	for _, g := range f.Snapshot().Guests {
		if g.Name == victim {
			continue
		}
		if g.State != fleet.Ready || time.Since(g.LastLive) > opts.Interval+150*time.Millisecond || g.Missed != 0 {
			t.Errorf("bystander %s: %s %q, last live %v ago, missed %d", g.Name, g.State, g.Err, time.Since(g.LastLive), g.Missed)
		}
	}
}

// Actions and file operations end to end through the stream transport and
// the simulator.
func TestSimActionsAndFiles(t *testing.T) {
	farm, f := simFleet(t, 2, fastOptions())
	ctx := t.Context()
	f.RefreshOnce(ctx, nil)
	g := farm.Guests()[0]
	run := func(words ...string) fleet.Result {
		t.Helper()
		a, err := fleet.ParseAction(words)
		if err != nil {
			t.Fatal(err)
		}
		return f.Run(ctx, a, []string{"s00"}, nil)[0]
	}
	if r := run("settime"); !r.OK {
		t.Errorf("settime: %+v", r)
	}
	if d := time.Since(g.Clock()); d > time.Second || d < -time.Second {
		t.Errorf("sim clock %v off after settime", d)
	}
	if r := run("vcpus", "offline", "1"); !r.OK || r.Result != "1 of 1 vCPUs set offline" {
		t.Errorf("vcpus offline: %+v", r)
	}
	if r := run("vcpus", "offline", "0"); r.OK {
		t.Errorf("offlining vCPU 0 should fail: %+v", r)
	}
	if r := run("fstrim"); !r.OK {
		t.Errorf("fstrim: %+v", r)
	}
	if r := run("ping"); !r.OK {
		t.Errorf("ping: %+v", r)
	}
	if r := run("info"); !r.OK || !strings.Contains(r.Result, "ready") {
		t.Errorf("info: %+v", r)
	}
	// Files: write, read back, list, raw.
	body := strings.Repeat("guestdeck ", 20000) // 200 kB: several chunks
	var progressed int64
	n, err := f.WriteFile(ctx, "s00", "/tmp/gd.txt", strings.NewReader(body), int64(len(body)), func(done, total int64) { progressed = done })
	if err != nil || n != int64(len(body)) || progressed != n {
		t.Fatalf("WriteFile: %d %v (progress %d)", n, err, progressed)
	}
	var out strings.Builder
	if n, err := f.ReadFile(ctx, "s00", "/tmp/gd.txt", &out, nil); err != nil || n != int64(len(body)) || out.String() != body {
		t.Fatalf("ReadFile: %d %v", n, err)
	}
	if r := run("read", "/tmp/gd.txt"); !r.OK || string(r.Data) != body {
		t.Fatalf("read action: %v %s", r.OK, r.Err)
	}
	ents, err := f.ListDir(ctx, "s00", "/tmp")
	if err != nil {
		t.Fatalf("ListDir: %v", err)
	}
	var found bool
	for _, e := range ents {
		found = found || (e.Name == "gd.txt" && e.Size == int64(len(body)))
	}
	if !found {
		t.Errorf("ListDir /tmp: %+v", ents)
	}
	raw, err := f.Raw(ctx, "s00", []byte(`{"execute":"guest-get-host-name"}`))
	if err != nil || !strings.Contains(string(raw), "s00") {
		t.Errorf("Raw: %s %v", raw, err)
	}
	if _, err := f.ReadFile(ctx, "nosuch", "/x", &out, nil); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("ReadFile on an unknown guest: %v", err)
	}
	// Suspend is accepted and the guest is suspended; the bystander is not.
	if r := run("suspend", "ram"); !r.OK || !strings.Contains(r.Result, "accepted") {
		t.Errorf("suspend: %+v", r)
	}
	if st := f.Guest("s00").State; st != fleet.Suspended {
		t.Errorf("after suspend: %s, want suspended", st)
	}
	if st := f.Guest("s01").State; st != fleet.Ready {
		t.Errorf("bystander: %s", st)
	}
}
