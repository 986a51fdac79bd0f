package fleet_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// slowItems are the commands of a slow refresh past guest-info.
var slowItems = []string{"guest-get-osinfo", "guest-get-host-name", "guest-get-timezone", "guest-get-users", "guest-get-fsinfo"}

func slowCalls(g *sim.Guest) map[string]int {
	m := make(map[string]int, len(slowItems))
	for _, c := range slowItems {
		m[c] = g.Calls(c)
	}
	return m
}

// The slide (issue 10): a failed poll became a fresh connection, and a
// fresh connection used to do a full slow refresh, so on a starved machine
// every timeout made the next likelier. A guest that times out keeps its
// connection and is asked nothing more; one whose connection is lost comes
// back on a fresh connection that re-reads its capabilities (guest-info)
// and nothing else of the slow items, which are not due; when the agent
// behind the socket has another version, the slow items are read at once.
// Counted by the simulator, per command.
func TestSlowRefreshAfterReconnect(t *testing.T) {
	opts := fastOptions()
	opts.SlowInterval = time.Hour // not due again in this test
	farm, f := simFleet(t, 1, opts)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f.Start(ctx)
	sg, sock, name := farm.Guests()[0], farm.Sockets()[0], "s00"

	// The first look reads the OS; the next poll the rest of the slow
	// items, once.
	once := map[string]int{}
	for _, c := range slowItems {
		once[c] = 1
	}
	wait.For(t, 5*time.Second, func() (bool, string) {
		got := slowCalls(sg)
		return maps.Equal(got, once) && f.Guest(name).State == fleet.Ready, fmt.Sprintf("slow items asked %v, want each once", got)
	})

	// One timeout: the agent was slow, not gone, so the connection stays
	// (a new one would queue behind the requests the agent still works
	// through) and it answers on it again, asked nothing more than before.
	info := sg.Calls("guest-info")
	sg.SetHang(true)
	waitFor(t, f, name, 5*time.Second, func(g *fleet.Guest) bool { return g.State == fleet.Silent })
	sg.SetHang(false)
	waitFor(t, f, name, 5*time.Second, func(g *fleet.Guest) bool { return g.State == fleet.Ready })
	if got := sg.Calls("guest-info"); got != info {
		t.Errorf("guest-info asked %d times after a timeout on the kept connection, want none", got-info)
	}

	// The connection lost: a fresh one re-reads the capabilities, once.
	sg.DropBefore("guest-get-time", 1)
	wait.For(t, 5*time.Second, func() (bool, string) {
		return sg.Calls("guest-info") > info && f.Guest(name).State == fleet.Ready, "waiting for the reconnect"
	})
	if got := sg.Calls("guest-info"); got != info+1 {
		t.Errorf("guest-info asked %d times on reconnect, want once (the capabilities)", got-info)
	}
	// A few polls on the new connection, and still no slow item.
	live := sg.Calls("guest-get-time")
	wait.For(t, 5*time.Second, func() (bool, string) {
		return sg.Calls("guest-get-time") >= live+3, "waiting for three live polls after the reconnect"
	})
	if got := slowCalls(sg); !maps.Equal(got, once) {
		t.Errorf("after one timeout and a reconnect the slow items were asked %v times, want %v (not due)", got, once)
	}

	// Times out again, and comes back as another agent version (upgraded
	// meanwhile): the fresh connection finds it and reads the slow items
	// at once.
	before := f.Guest(name).LastSlow
	sg.SetHang(true)
	waitFor(t, f, name, 5*time.Second, func(g *fleet.Guest) bool { return g.State == fleet.Silent })
	sg.Close()
	cfg := sg.Config()
	cfg.AgentVersion = "8.2.1"
	ng := sim.New(cfg)
	t.Cleanup(func() { ng.Close() })
	_ = os.Remove(sock) // a closed listener unlinks it; make sure
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ng.Serve(l) }()
	waitFor(t, f, name, 5*time.Second, func(g *fleet.Guest) bool {
		return g.State == fleet.Ready && g.AgentVersion == "8.2.1" && g.LastSlow.After(before)
	})
	if got := slowCalls(ng); !maps.Equal(got, once) {
		t.Errorf("the new agent version's slow items were asked %v times, want %v", got, once)
	}
	if got := ng.Calls("guest-info"); got != 1 {
		t.Errorf("the new agent was asked guest-info %d times, want once", got)
	}
}

// TestNoRoutes: status's one-shot poll leaves out the routes it does not
// show, and still asks the disks it does; the dashboard asks both. (An
// agent new enough to have guest-network-get-route.)
func TestNoRoutes(t *testing.T) {
	for _, noRoutes := range []bool{false, true} {
		dir := t.TempDir()
		farm, err := sim.ServeDir(dir, 1, func(i int) sim.Config {
			cfg := sim.DefaultConfig(fmt.Sprintf("s%02d", i))
			cfg.AgentVersion = "9.2.0"
			return cfg
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { farm.Close() })
		opts := fastOptions()
		opts.NoRoutes = noRoutes
		f := fleet.New(opts)
		t.Cleanup(func() { f.Close() })
		f.Add(fleet.Target{Name: "s00", Address: "unix:" + farm.Sockets()[0]})
		f.RefreshOnce(t.Context(), nil)
		sg := farm.Guests()[0]
		if got := f.Guest("s00").State; got != fleet.Ready {
			t.Fatalf("NoRoutes %v: state %v", noRoutes, got)
		}
		routes, disks := sg.Calls("guest-network-get-route"), sg.Calls("guest-get-disks")
		if disks == 0 || (routes == 0) != noRoutes {
			t.Errorf("NoRoutes %v: guest-network-get-route asked %d times, guest-get-disks %d", noRoutes, routes, disks)
		}
	}
}
