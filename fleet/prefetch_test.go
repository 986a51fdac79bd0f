package fleet_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// A fresh connection's first poll asks guest-info and everything its steps
// then ask in one batch (one round trip after the resync, where without
// the prefetch it takes three), and shows exactly what the same poll shows
// without it: against the real agent, and against a simulated one with
// commands disabled (the prefetch sends them, the agent refuses them, and
// nothing may show the refusals). Both as status --json polls (forced) and
// as a dashboard's first look; and a slow refresh over the connection kept
// since, forced (`r`) and come due, in one round trip where it took three.
func TestPrefetchFirstPoll(t *testing.T) {
	peers := map[string]func(t *testing.T) string{
		"real-agent": func(t *testing.T) string {
			return testpeers.StartAgents(t, 1).Addrs()[0]
		},
		"sim-disabled": func(t *testing.T) string {
			dir, err := os.MkdirTemp("/tmp", "gdp")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
				c := sim.DefaultConfig("p0")
				c.Disabled = append(c.Disabled, "guest-get-users", "guest-get-fsinfo", "guest-get-vcpus")
				return c
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { farm.Close() })
			return "unix:" + farm.Sockets()[0]
		},
	}
	for name, start := range peers {
		t.Run(name, func(t *testing.T) {
			addr := start(t)
			for _, mode := range []string{"forced", "look", "kept-forced", "kept-due"} {
				t.Run(mode, func(t *testing.T) {
					var shown [2]string
					var batches [2]int
					for i, on := range []bool{true, false} {
						f := fleet.New(fleet.Options{Interval: time.Hour, Timeout: 5 * time.Second, Readonly: true})
						fleet.SetPrefetch(f, on)
						f.Add(fleet.Target{Name: "g", Address: addr, Exclusive: true})
						ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
						var since time.Time // the poll counted begins after it
						switch mode {
						case "forced":
							f.RefreshOnce(ctx, nil)
						case "look":
							fleet.PollAll(ctx, f) // a first poll, unforced: the look
						default:
							fleet.PollAll(ctx, f) // the look
							fleet.PollAll(ctx, f) // the rest of the slow items
							since = time.Now()
							if mode == "kept-forced" {
								f.RefreshOnce(ctx, nil)
							} else {
								fleet.AgeSlow(f, 2*time.Hour) // the interval's (time.Hour)
								fleet.PollAll(ctx, f)
							}
						}
						cancel()
						g := f.Guest("g")
						shown[i], batches[i] = projection(g), pollBatches(t, g, since)
						f.Close()
					}
					if shown[0] != shown[1] {
						t.Errorf("with the prefetch the poll shows\n%s\nwithout it\n%s", shown[0], shown[1])
					}
					if batches[0] != 1 {
						t.Errorf("with the prefetch the poll took %d round trips, want 1", batches[0])
					}
					least := 3 // guest-info, the live items, the slow ones
					if mode == "look" {
						least = 2 // the OS rides with the live items
					}
					if batches[1] < least {
						t.Errorf("without the prefetch the poll took %d round trips, want %d or more: the count cannot tell", batches[1], least)
					}
				})
			}
		})
	}
}

// pollBatches counts the round trips of a guest's poll in its command
// log, the poll begun after since (zero: its first): the commands after
// since but the connect, grouped by their start (a batch's commands share
// it). A poll after since must not connect: its connection was kept.
func pollBatches(t *testing.T, g *fleet.Guest, since time.Time) int {
	t.Helper()
	starts := map[time.Time]bool{}
	for _, e := range g.Log.Entries() {
		switch {
		case !e.At.After(since):
		case e.Command != "connect":
			starts[e.At] = true
		case !since.IsZero():
			t.Errorf("the poll after %v connected again at %v: the connection was not kept", since, e.At)
		}
	}
	return len(starts)
}

// projection is what a poll shows of g that does not move between two
// polls a moment apart.
func projection(g *fleet.Guest) string {
	return fmt.Sprintf("state %v err %q\n", g.State, g.Err) + fleet.Shown(g)
}
