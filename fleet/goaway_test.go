package fleet_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/ledger"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// goAwayGuest serves one simulated guest (cfg changes its default config)
// to a started fleet that polls it every 200 ms, and waits for its first
// poll.
func goAwayGuest(t *testing.T, opts fleet.Options, target fleet.Target, cfg func(*sim.Config)) (*fleet.Fleet, *sim.Guest, string, *dialCounter) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		c := sim.DefaultConfig(target.Name)
		cfg(&c)
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	c := newDialCounter()
	opts.Interval, opts.SlowInterval = 200*time.Millisecond, time.Minute
	if opts.Dialers == nil {
		opts.Dialers = map[string]fleet.Dialer{"unix": c.dial}
	}
	f := fleet.New(opts)
	t.Cleanup(func() { f.Close() })
	target.Address = "unix:" + farm.Sockets()[0]
	f.Add(target)
	f.Start(t.Context())
	polledAfter(t, f, target.Name, time.Time{})
	return f, farm.Guests()[0], farm.Sockets()[0], c
}

// A shutdown the agent accepted but the guest never carried out (cancelled
// or failed inside it), or a guest that halted, is shutting-down only for
// Options.ShutdownLimit: then the guest is polled as any other and shows
// what it is (ready, silent), and its channel is no longer kept from
// other clients. It used to stay shutting-down, its channel held, for as
// long as guestdeck ran.
func TestShutdownStateExpires(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  string
		delay time.Duration // sim: how long the agent answers after accepting
		want  fleet.State
	}{
		{name: "never carried out", mode: agentclient.ShutdownPowerdown, delay: time.Hour, want: fleet.Ready},
		{name: "halted", mode: agentclient.ShutdownHalt, want: fleet.Silent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const limit = 2 * time.Second
			f, _, sock, _ := goAwayGuest(t, fleet.Options{Timeout: time.Second, ShutdownLimit: limit},
				fleet.Target{Name: "sx"}, func(c *sim.Config) { c.ShutdownDelay = tc.delay })
			res := f.Run(t.Context(), fleet.Action{Kind: fleet.ActShutdown, Mode: tc.mode}, []string{"sx"}, nil)
			if len(res) != 1 || !res[0].OK {
				t.Fatalf("shutdown: %+v", res)
			}
			accepted := time.Now()
			if g := f.Guest("sx"); g.State != fleet.ShuttingDown {
				t.Fatalf("%s %q after the shutdown was accepted, want shutting-down", g.State, g.Err)
			}
			wait.For(t, limit+15*time.Second, func() (bool, string) {
				g := f.Guest("sx")
				return g.State == tc.want, fmt.Sprintf("%s %q %v after the shutdown was accepted, want %s once the %v limit has passed",
					g.State, g.Err, time.Since(accepted).Round(time.Millisecond), tc.want, limit)
			})
			if d := time.Since(accepted); d < limit {
				t.Errorf("%s after %v, before the %v limit", tc.want, d, limit)
			}
			if tc.want != fleet.Ready {
				return
			}
			said := false
			for _, n := range f.Snapshot().Notices {
				said = said || n.Guest == "sx" && n.Err && strings.Contains(n.Text, "after it accepted the shutdown: it did not go down")
			}
			if !said {
				t.Errorf("no notice says the guest did not go down: %+v", f.Snapshot().Notices)
			}
			// The channel is the agent's again: another client is served.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			other, err := syncClient(ctx, sock, 71)
			if err != nil {
				t.Fatalf("another client after the limit: %v", err)
			}
			other.Close()
		})
	}
}

// A guest suspended to RAM that wakes on the connection guestdeck kept
// through its sleep is ready again once its agent answers, and the
// ledger's record of the suspend goes. That is how a guest woken before a
// poll ran out of time is seen (the poll's requests are answered after the
// wake-up), or one that slept between two polls; only a fresh connection
// ended the state, and it stayed suspended for good.
func TestSuspendWakesOnSameConnection(t *testing.T) {
	l := ledger.Open(t.TempDir())
	f, guest, _, dials := goAwayGuest(t, fleet.Options{Timeout: time.Second, Ledger: l, Who: "test"},
		fleet.Target{Name: "sw", Exclusive: true}, func(*sim.Config) {})
	n := dials.count("sw")
	res := f.Run(t.Context(), fleet.Action{Kind: fleet.ActSuspend, Mode: agentclient.SuspendRAM}, []string{"sw"}, nil)
	if len(res) != 1 || !res[0].OK {
		t.Fatalf("suspend: %+v", res)
	}
	if g := f.Guest("sw"); g.State != fleet.Suspended {
		t.Fatalf("%s %q after the suspend was accepted, want suspended", g.State, g.Err)
	}
	if !guest.Wake() {
		t.Fatal("the guest was not asleep after the suspend")
	}
	woke := time.Now()
	wait.For(t, 20*time.Second, func() (bool, string) {
		g := f.Guest("sw")
		return g.State == fleet.Ready, fmt.Sprintf("%s %q %v after the wake-up, want ready", g.State, g.Err, time.Since(woke).Round(time.Millisecond))
	})
	if d := dials.count("sw") - n; d != 0 {
		t.Fatalf("%d dials since the suspend: the test wants the wake-up seen on the kept connection", d)
	}
	waitUntil(t, 5*time.Second, "the suspend's ledger entry cleared", func() bool { return len(ledgerEntries(t, l)) == 0 })
}

// A shutdown or suspend whose action ends (cancelled, its deadline) after
// the request went out, while guestdeck waits out the grace period for an
// error, may still be carried out: the result says so, not that the agent
// "did not answer in time" (these commands never answer when they work).
func TestGoAwayCancelledAfterSend(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  fleet.Action
		cmd  string
	}{
		{"shutdown", fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownPowerdown}, "guest-shutdown"},
		{"suspend", fleet.Action{Kind: fleet.ActSuspend, Mode: agentclient.SuspendRAM}, "guest-suspend-ram"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A grace period past the call's deadline: the action waits
			// for an error until it is cancelled, however slow the
			// machine (no acceptance by silence first).
			dial := func(ctx context.Context, t fleet.Target) (agentclient.Agent, error) {
				return agentclient.Dial(ctx, t.Address, agentclient.WithShutdownGrace(time.Minute))
			}
			f, guest, _, _ := goAwayGuest(t, fleet.Options{Timeout: 5 * time.Second, Dialers: map[string]fleet.Dialer{"unix": dial}},
				fleet.Target{Name: "cs"}, func(c *sim.Config) { c.ShutdownDelay = time.Hour })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				// The agent has the request: the action is now waiting
				// for an error that does not come. (Bounded by the
				// call's own timeout, 6 s.)
				for guest.Calls(tc.cmd) == 0 && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
			res := f.Run(ctx, tc.act, []string{"cs"}, nil)
			if n := guest.Calls(tc.cmd); n != 1 {
				t.Fatalf("the agent ran %s %d times, want once", tc.cmd, n)
			}
			if len(res) != 1 || res[0].OK || !strings.Contains(res[0].Err, "cancelled before the agent accepted it") ||
				!strings.Contains(res[0].Err, "may still") || strings.Contains(res[0].Err, "did not answer in time") {
				t.Errorf("cancelled after sending: %+v, want failed, saying the %s may still happen", res, tc.name)
			}
		})
	}
}
