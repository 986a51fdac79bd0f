package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// refusingSocket leaves a unix socket file at path with nobody listening
// on it: what a dial meets there is the kernel's own ECONNREFUSED.
func refusingSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Error(err)
		return
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

// TestShutdownWaitNeedsLastingSignal: shutdown --wait counts a guest gone
// only on a lasting, specific signal. Three simulated guests accept the
// shutdown:
//   - up did not go (its agent is back at once and answers, as after a
//     cancelled shutdown), and its first two dials after that are refused
//     (a socket with nobody listening is put where its own was, then its
//     own put back): a refusal that does not last is no sign it went, so
//     it is still there at the deadline and fails. guestdeck used to count
//     it gone at the first refused dial (unreachable).
//   - gone powered off: its socket is gone (the simulator unlinks it, as
//     QEMU does), on every check: gone.
//   - refused powered off and left its socket file behind: every dial is
//     refused: gone.
//
// The transient is driven by the dials themselves (a dialer that runs the
// test's hook before the real dial), so what each check meets is fixed,
// whatever the timing.
func TestShutdownWaitNeedsLastingSignal(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	names := []string{"up", "gone", "refused"}
	farm, err := sim.ServeDir(dir, len(names), func(i int) sim.Config { return sim.DefaultConfig(names[i]) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	sock := map[string]string{}
	for i, n := range names {
		sock[n] = farm.Sockets()[i]
	}

	var mu sync.Mutex
	armed := false
	upDials, refusedDials := 0, 0
	// before runs before every dial, on the fleet's goroutines.
	before := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		if !armed {
			return
		}
		switch name {
		case "up":
			upDials++
			p := sock["up"]
			switch upDials {
			case 1: // its own socket aside, a refusing one in its place
				if err := os.Rename(p, p+".own"); err != nil {
					t.Error(err)
				}
				refusingSocket(t, p)
			case 3: // its own socket back
				os.Remove(p)
				if err := os.Rename(p+".own", p); err != nil {
					t.Error(err)
				}
			}
		case "refused":
			refusedDials++
			// Once the simulator has unlinked its socket (it does as it
			// powers off), a file nobody listens on stays there.
			if _, err := os.Lstat(sock["refused"]); os.IsNotExist(err) {
				refusingSocket(t, sock["refused"])
			}
		}
	}
	f := fleet.New(fleet.Options{Timeout: 2 * time.Second, Dialers: map[string]fleet.Dialer{
		"unix": func(ctx context.Context, tg fleet.Target) (agentclient.Agent, error) {
			before(tg.Name)
			c, err := agentclient.Dial(ctx, tg.Address)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
	}})
	t.Cleanup(func() { f.Close() })
	for _, n := range names {
		f.Add(fleet.Target{Name: n, Address: "unix:" + sock[n]})
	}
	ctx := context.Background()
	f.RefreshOnce(ctx, nil)
	for _, n := range names {
		if g := f.Guest(n); g.State != fleet.Ready {
			t.Fatalf("%s: %s %q before the shutdown", n, g.State, g.Err)
		}
	}
	results := f.Run(ctx, fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownHalt}, []string{"up"}, nil)
	results = append(results, f.Run(ctx, fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownPowerdown}, []string{"gone", "refused"}, nil)...)
	for _, r := range results {
		if !r.OK {
			t.Fatalf("%s: shutdown not accepted: %+v", r.Guest, r)
		}
	}
	// up: its agent is back, the machine never went. The restart drops the
	// connection; a poll or two later it answers on a fresh one.
	farm.Guests()[0].Restart()
	for range 3 {
		if f.Guest("up").State == fleet.Ready {
			break
		}
		f.RefreshOnce(ctx, []string{"up"})
	}
	if g := f.Guest("up"); g.State != fleet.Ready {
		t.Fatalf("up: %s %q after its agent's restart", g.State, g.Err)
	}
	mu.Lock()
	armed = true
	mu.Unlock()
	// The connection up answered on is dropped (its agent restarts once
	// more): the checks dial it again, and meet the refusals.
	farm.Guests()[0].Restart()

	var stderr bytes.Buffer
	c := &cli{stdout: &bytes.Buffer{}, stderr: &stderr}
	c.waitGone(ctx, f, results, 3*time.Second)

	got := map[string]fleet.Result{}
	for _, r := range results {
		got[r.Guest] = r
	}
	if r := got["up"]; r.OK || !strings.Contains(r.Err, "still there after --wait 3s (") ||
		!strings.Contains(r.Err, "its agent answers") || !strings.Contains(r.Err, "connection refused did not last") {
		t.Errorf("up (refused twice, then answering): %+v", r)
	}
	if r := got["gone"]; !r.OK || !strings.Contains(r.Result, "accepted by the agent; gone after ") ||
		!strings.Contains(r.Result, ": no such socket, seen on ") {
		t.Errorf("gone (socket unlinked): %+v", r)
	}
	if r := got["refused"]; !r.OK || !strings.Contains(r.Result, "; gone after ") ||
		!strings.Contains(r.Result, ": connection refused, seen on ") {
		t.Errorf("refused (socket left, nobody listening): %+v", r)
	}
	if code := runExit(results); code != exitFail {
		t.Errorf("exit %d, want %d: a guest not confirmed gone fails the run", code, exitFail)
	}
	mu.Lock()
	defer mu.Unlock()
	if upDials < 3 {
		t.Errorf("up was dialled %d times after the shutdown: the test's transient did not run its course", upDials)
	}
	if !strings.Contains(stderr.String(), "waiting up to 3s for 3 guests to go") {
		t.Errorf("stderr: %q", stderr.String())
	}
}

// TestGoneSignal: which of one check's outcomes say a guest's machine
// stopped. Only a missing socket or a refused connection on a socket the
// fleet dials itself, or libvirt's shut off or crashed; never a timeout, a
// silent agent, a held channel, a dropped connection, or a transport's own
// socket missing.
func TestGoneSignal(t *testing.T) {
	dialErr := func(errno error) error {
		return fmt.Errorf("connect: %w", &agentclient.OpError{Addr: "unix:/x", Err: &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}})
	}
	unix := &fleet.Guest{Target: fleet.Target{Address: "unix:/run/qga/a.sock"}, State: fleet.ShuttingDown}
	tcp := &fleet.Guest{Target: fleet.Target{Address: "tcp:127.0.0.1:4444"}, State: fleet.Unreachable}
	lv := &fleet.Guest{Target: fleet.Target{Address: "libvirt:h/a"}, State: fleet.ShuttingDown}
	ssh := &fleet.Guest{Target: fleet.Target{Address: "ssh://h/run/qga/a.sock"}, State: fleet.Gone}
	stopped := &fleet.Guest{Target: fleet.Target{Address: "libvirt:h/a"}, State: fleet.Stopped}
	for _, tc := range []struct {
		what string
		g    *fleet.Guest
		err  error
		want string
	}{
		{"socket missing", unix, dialErr(syscall.ENOENT), "no such socket"},
		{"refused", unix, dialErr(syscall.ECONNREFUSED), "connection refused"},
		{"tcp refused", tcp, dialErr(syscall.ECONNREFUSED), "connection refused"},
		{"answered", unix, nil, ""},
		{"timed out", unix, fmt.Errorf("connect: %w", agentclient.ErrTimeout), ""},
		{"silent", unix, fmt.Errorf("sync: %w", agentclient.ErrSilent), ""},
		{"held", unix, fmt.Errorf("sync: %w", agentclient.ErrChannelHeld), ""},
		{"connection lost", unix, fmt.Errorf("call: %w", agentclient.ErrConnLost), ""},
		{"permission denied", unix, dialErr(syscall.EACCES), ""},
		{"try again", unix, dialErr(syscall.EAGAIN), ""},
		{"libvirtd's socket missing", lv, dialErr(syscall.ENOENT), ""},
		{"ssh's remote refused", ssh, dialErr(syscall.ECONNREFUSED), ""},
		{"libvirt shut off", stopped, errors.New("domain is not running"), "libvirt reports the domain stopped"},
		{"no guest", nil, dialErr(syscall.ENOENT), ""},
	} {
		if got := goneSignal(tc.g, tc.err); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.what, got, tc.want)
		}
	}
}

// TestGoneWatch: a gone signal confirms only when it held on goneChecks
// checks in a row over goneConfirm; a check without one starts again, and
// says which signal did not last.
func TestGoneWatch(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	g := &fleet.Guest{State: fleet.Unreachable}
	for _, tc := range []struct {
		what   string
		checks []string // the signal of each check, 250 ms apart
		want   int      // the check that confirms, -1 none
	}{
		{"lasting", []string{"r", "r", "r", "r", "r", "r"}, 4},
		{"one answer between", []string{"r", "r", "r", "", "r", "r", "r", "r"}, -1},
		{"again after a break", []string{"r", "", "r", "r", "r", "r", "r"}, 6},
		{"none", []string{"", "", "", "", "", ""}, -1},
	} {
		var w goneWatch
		got := -1
		for i, sig := range tc.checks {
			if w.see(sig, g, nil, at(250*i)) {
				got = i
				break
			}
		}
		if got != tc.want {
			t.Errorf("%s: confirmed at check %d, want %d", tc.what, got, tc.want)
		}
	}
	// Too few checks over long enough is not enough either.
	var w goneWatch
	if w.see("r", g, nil, at(0)) || w.see("r", g, nil, at(5000)) || !w.see("r", g, nil, at(5001)) {
		t.Errorf("two checks over 5 s confirmed, or three did not")
	}
	w = goneWatch{}
	w.see("connection refused", g, nil, at(0))
	w.see("", &fleet.Guest{State: fleet.Ready}, nil, at(250))
	if got := w.why(); got != "ready: its agent answers; connection refused did not last" {
		t.Errorf("why: %q", got)
	}
}

// TestShutdownWaitEndsByDeadline: shutdown --wait ends by its deadline
// (past it only by a confirmation under way), even when a check would
// take far longer: a halted guest keeps its channel open with no agent
// behind it, so each check waits out the call timeout (30 s here). The
// wait used to run a whole poll timeout past a 1 s --wait, more with
// guests beyond Concurrency. The guest is still there, and says so.
func TestShutdownWaitEndsByDeadline(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config { return sim.DefaultConfig("halted") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	const timeout = 30 * time.Second
	f := fleet.New(fleet.Options{Timeout: timeout})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "halted", Address: "unix:" + farm.Sockets()[0]})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // ends a check left running when the test fails
	f.RefreshOnce(ctx, nil)
	if g := f.Guest("halted"); g.State != fleet.Ready {
		t.Fatalf("%s %q before the shutdown", g.State, g.Err)
	}
	results := f.Run(ctx, fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownHalt}, []string{"halted"}, nil)
	if !results[0].OK {
		t.Fatalf("shutdown not accepted: %+v", results[0])
	}

	var stderr bytes.Buffer
	c := &cli{stdout: &bytes.Buffer{}, stderr: &stderr}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.waitGone(ctx, f, results, time.Second)
	}()
	select {
	case <-done:
	case <-time.After(timeout / 2):
		t.Fatalf("--wait 1s still waiting after %s: a check ran its whole call timeout past the deadline", timeout/2)
	}
	r := results[0]
	if r.OK || !strings.Contains(r.Err, "after --wait 1s (shutting-down") {
		t.Errorf("halted: %+v", r)
	}
	if code := runExit(results); code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
}

// TestShutdownWaitSlowNeighbour: a guest that went is confirmed gone by the
// deadline although every round of checks waits for a slow neighbour (a
// halted guest: each of its checks waits out the 4 s call timeout; with
// --wait 10s its third check comes just before the deadline, with room
// for a loaded machine's slower rounds) and
// only one check runs at a time (Concurrency 1): checks go in turns, the
// guest being confirmed first, and its run, under way at the deadline,
// gets a check past it. guestdeck used to fail it: its second check came
// after the deadline, with the halted guest's, more than 1.25 s after its
// first, so it was no longer checked as being confirmed. The rounds cut
// short at the deadline (the halted guest's) must not starve it either.
func TestShutdownWaitSlowNeighbour(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	names := []string{"halted", "gone"}
	farm, err := sim.ServeDir(dir, len(names), func(i int) sim.Config { return sim.DefaultConfig(names[i]) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 4 * time.Second, Concurrency: 1})
	t.Cleanup(func() { f.Close() })
	for i, n := range names {
		f.Add(fleet.Target{Name: n, Address: "unix:" + farm.Sockets()[i]})
	}
	ctx := t.Context()
	f.RefreshOnce(ctx, nil)
	results := f.Run(ctx, fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownHalt}, []string{"halted"}, nil)
	results = append(results, f.Run(ctx, fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownPowerdown}, []string{"gone"}, nil)...)
	for _, r := range results {
		if !r.OK {
			t.Fatalf("%s: shutdown not accepted: %+v", r.Guest, r)
		}
	}
	c := &cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	c.waitGone(ctx, f, results, 10*time.Second)
	if r := results[1]; !r.OK || !strings.Contains(r.Result, ": no such socket, seen on ") {
		t.Errorf("gone, beside a halted guest: %+v", r)
	}
	if r := results[0]; r.OK || !strings.Contains(r.Err, "after --wait 10s (shutting-down") {
		t.Errorf("halted: %+v", r)
	}
}
