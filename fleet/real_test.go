package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// Twenty real qemu-ga agents on this machine reach Ready in one RefreshOnce,
// with their capabilities, hostname and interfaces. Only queries are sent:
// these agents run on the host.
func TestRealAgentsRefresh(t *testing.T) {
	ag := testpeers.StartAgents(t, 20)
	f := fleet.New(fleet.Options{Timeout: 10 * time.Second, Readonly: true})
	defer f.Close()
	var names []string
	for i, addr := range ag.Addrs() {
		name := fmt.Sprintf("host-%02d", i)
		names = append(names, name)
		f.Add(fleet.Target{Name: name, Address: addr})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	f.RefreshOnce(ctx, nil)
	snap := f.Snapshot()
	if snap.Counts[fleet.Ready] != 20 {
		for _, g := range snap.Guests {
			t.Logf("%s: %s %s", g.Name, g.State, g.Err)
		}
		t.Fatalf("ready: %d of 20", snap.Counts[fleet.Ready])
	}
	for _, g := range snap.Guests {
		if g.AgentVersion == "" || len(g.Commands) == 0 || g.Hostname == "" || len(g.Interfaces) == 0 || !g.SkewKnown || g.RTT <= 0 {
			t.Errorf("%s: incomplete: version %q, %d commands, hostname %q, %d interfaces, skew known %v, rtt %v",
				g.Name, g.AgentVersion, len(g.Commands), g.Hostname, len(g.Interfaces), g.SkewKnown, g.RTT)
		}
		// The host's clock is the guest's clock here.
		if g.Skew > time.Second || g.Skew < -time.Second {
			t.Errorf("%s: skew %v against the same clock", g.Name, g.Skew)
		}
		// The log holds the wire lines from the transport's hook.
		var timeLogged bool
		for _, e := range g.Log.All() {
			if e.Command == "guest-get-time" && strings.Contains(e.Request, `"execute":"guest-get-time"`) && strings.Contains(e.Reply, `"return"`) {
				timeLogged = true
			}
		}
		if !timeLogged {
			t.Errorf("%s: no guest-get-time wire lines in the log: %+v", g.Name, g.Log.Entries())
		}
	}
	rs := f.Run(ctx, fleet.Action{Kind: fleet.ActPing}, names, nil)
	for _, r := range rs {
		if !r.OK {
			t.Errorf("ping %s: %s", r.Guest, r.Err)
		}
	}
	// Read-only mode refuses before anything is sent.
	if r := f.Run(ctx, fleet.Action{Kind: fleet.ActFreeze}, names[:1], nil)[0]; r.OK || !strings.Contains(r.Err, "read-only") {
		t.Errorf("freeze in read-only mode: %+v", r)
	}
}

// A real VM: freeze and thaw through Run, a file read refused while frozen
// and allowed after the thaw, then a shutdown confirmed by the VM exiting.
func TestRealVMFreezeThawShutdown(t *testing.T) {
	vm := testpeers.BootVM(t, "gd-fleet")
	f := fleet.New(fleet.Options{Interval: time.Second, Timeout: 10 * time.Second, FreezeTimeout: 2 * time.Minute})
	defer f.Close()
	f.Add(fleet.Target{Name: vm.Name, Address: vm.Addr()})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	f.Start(ctx)
	waitFor(t, f, vm.Name, 60*time.Second, func(g *fleet.Guest) bool { return g.State == fleet.Ready && g.Hostname != "" })

	run := func(words ...string) fleet.Result {
		t.Helper()
		a, err := fleet.ParseAction(words)
		if err != nil {
			t.Fatal(err)
		}
		return f.Run(ctx, a, []string{vm.Name}, nil)[0]
	}
	if r := run("freeze"); !r.OK || !strings.Contains(r.Result, "froze") {
		t.Fatalf("freeze: %+v", r)
	}
	if g := f.Guest(vm.Name); g.State != fleet.Frozen || !g.FrozenByUs {
		t.Fatalf("after freeze: %s FrozenByUs=%v", g.State, g.FrozenByUs)
	}
	if got := f.FrozenByUs(); len(got) != 1 || got[0] != vm.Name {
		t.Fatalf("FrozenByUs = %v", got)
	}
	if r := run("read", testpeers.HelloPath); r.OK || !strings.Contains(r.Err, "frozen") {
		t.Fatalf("read while frozen: %+v", r)
	}
	// The poller keeps the frozen guest answering (allowed commands only):
	// two polls later it is still frozen, without an error.
	since := time.Now()
	waitFor(t, f, vm.Name, 30*time.Second, func(g *fleet.Guest) bool { return g.LastLive.After(since) })
	since = f.Guest(vm.Name).LastLive
	waitFor(t, f, vm.Name, 30*time.Second, func(g *fleet.Guest) bool { return g.LastLive.After(since) })
	if g := f.Guest(vm.Name); g.State != fleet.Frozen || g.Err != "" {
		t.Fatalf("frozen guest polled: %s %q", g.State, g.Err)
	}
	if r := run("thaw"); !r.OK || !strings.Contains(r.Result, "thawed") {
		t.Fatalf("thaw: %+v", r)
	}
	if r := run("read", testpeers.HelloPath); !r.OK || string(r.Data) != testpeers.HelloContent {
		t.Fatalf("read after thaw: %+v (%q)", r, r.Data)
	}
	if g := f.Guest(vm.Name); g.State != fleet.Ready || g.FrozenByUs {
		t.Fatalf("after thaw: %s FrozenByUs=%v", g.State, g.FrozenByUs)
	}
	if r := run("shutdown"); !r.OK || !strings.Contains(r.Result, "accepted") {
		t.Fatalf("shutdown: %+v", r)
	}
	waitFor(t, f, vm.Name, 90*time.Second, func(g *fleet.Guest) bool { return g.State == fleet.Gone })
	if err := vm.WaitExit(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, f *fleet.Fleet, name string, d time.Duration, ok func(*fleet.Guest) bool) {
	t.Helper()
	wait.For(t, d, func() (bool, string) {
		g := f.Guest(name)
		return ok(g), fmt.Sprintf("%s: still %s (%q)", name, g.State, g.Err)
	})
}
