package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// waitGuests polls the fleet's snapshot until ok holds (the agents are
// external processes: their answers are the event) or fails after d.
func waitGuests(t *testing.T, f *fleet.Fleet, d time.Duration, what string, ok func(map[string]*fleet.Guest) bool) {
	t.Helper()
	wait.For(t, d, func() (bool, string) {
		gs := map[string]*fleet.Guest{}
		var states []string
		for _, g := range f.Snapshot().Guests {
			gs[g.Name] = g
			states = append(states, fmt.Sprintf("%s %s %q", g.Name, g.State, g.Err))
		}
		return ok(gs), what + ": " + strings.Join(states, "; ")
	})
}

func allIn(st fleet.State) func(map[string]*fleet.Guest) bool {
	return func(gs map[string]*fleet.Guest) bool {
		for _, g := range gs {
			if g.State != st {
				return false
			}
		}
		return len(gs) > 0
	}
}

func realFleet(t *testing.T, addrs []string, exclusive bool) (*fleet.Fleet, []string) {
	f := fleet.New(fleet.Options{Interval: 200 * time.Millisecond, Timeout: time.Second, Readonly: true})
	t.Cleanup(func() { f.Close() })
	var names []string
	for i, a := range addrs {
		names = append(names, fmt.Sprintf("qga-%d", i))
		f.Add(fleet.Target{Name: names[i], Address: a, Exclusive: exclusive})
	}
	return f, names
}

// With a fleet polling real agents (the dashboard's part), a second fleet
// (a second guestdeck status, run ping) finds every guest ready, again and
// again: the first keeps each channel only until another client waits for
// it (yield.go), and the second's dials are served within its timeout. A
// client that holds one channel makes that guest, and only it, "held", and
// it comes back once the holder lets go.
func TestSharedChannelRealAgents(t *testing.T) {
	ag := testpeers.StartAgents(t, 3)
	dash, _ := realFleet(t, ag.Addrs(), false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dash.Start(ctx)
	waitGuests(t, dash, 30*time.Second, "dashboard fleet ready", allIn(fleet.Ready))

	for round := range 5 {
		second, names := realFleet(t, ag.Addrs(), false)
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		second.RefreshOnce(rctx, nil)
		for _, g := range second.Snapshot().Guests {
			if g.State != fleet.Ready {
				t.Errorf("round %d: second fleet: %s %s (%s)", round, g.Name, g.State, g.Err)
			}
		}
		for _, r := range second.Run(rctx, fleet.Action{Kind: fleet.ActPing}, names, nil) {
			if !r.OK {
				t.Errorf("round %d: second fleet: ping %s: %s", round, r.Guest, r.Err)
			}
		}
		rcancel()
		second.Close()
	}

	hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
	holder, err := agentclient.Dial(hctx, ag.Addrs()[1])
	hcancel()
	if err != nil {
		t.Fatalf("holder: %v", err)
	}
	waitGuests(t, dash, 30*time.Second, "qga-1 held, the others ready", func(gs map[string]*fleet.Guest) bool {
		h := gs["qga-1"]
		return h.State == fleet.Held && strings.Contains(h.Err, "another client holds the channel") &&
			gs["qga-0"].State == fleet.Ready && gs["qga-2"].State == fleet.Ready
	})
	holder.Close()
	waitGuests(t, dash, 30*time.Second, "qga-1 back after the holder left", allIn(fleet.Ready))
}

// exclusive = true keeps the old behaviour: once polled, the socket stays
// held, and another client's dial is told another client holds the channel.
func TestExclusiveHoldsChannel(t *testing.T) {
	ag := testpeers.StartAgents(t, 1)
	f, _ := realFleet(t, ag.Addrs(), true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f.Start(ctx)
	waitGuests(t, f, 30*time.Second, "ready", allIn(fleet.Ready))
	dctx, dcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer dcancel()
	c, err := agentclient.DialStream(dctx, ag.Addrs()[0])
	if err == nil {
		c.Close()
		t.Fatal("another client got through an exclusive guest's channel")
	}
	if !agentclient.IsChannelHeld(err) {
		t.Fatalf("dial to an exclusive guest's agent: %v, want another client holds the channel", err)
	}
}
