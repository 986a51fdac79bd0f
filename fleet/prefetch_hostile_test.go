package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// wireCase builds a guest's agent; hang is a reply that never comes (until
// the bubble's test ends).
type wireCase func(hang func()) *wireAgent

// capsListing is a guest-info return listing the polled commands (and
// guest-ping), enabled as on says.
func capsListing(on func(cmd string) bool) string {
	var b bytes.Buffer
	b.WriteString(`{"version": "7.2.22", "supported_commands": [`)
	for i, c := range append([]string{"guest-ping"}, polledCommands...) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"enabled": %v, "name": %q, "success-response": true}`, on(c), c)
	}
	b.WriteString("]}")
	return b.String()
}

// capsWithout lists the polled commands enabled but off.
func capsWithout(off ...string) string {
	return capsListing(func(c string) bool { return !contains(off, c) })
}

// replying answers a command with fn's reply when it has one, else as a
// healthy guest named g.
func replying(fn func(w io.Writer, cmd string, id []byte) (bool, error)) *wireAgent {
	return &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
		if done, err := fn(w, cmd, id); done {
			return err
		}
		return healthyAgent("g").reply(w, cmd, id)
	}}
}

// firstPolls is what guest g's polls show, with the prefetch (on) or
// without, inside a bubble: polls run them (the last one's outcome is
// shown), and each sees the fleet after the one before.
func firstPolls(t *testing.T, opts Options, mk wireCase, on bool, polls ...func(f *Fleet)) string {
	var shown string
	synctest.Test(t, func(t *testing.T) {
		stop := make(chan struct{})
		f := wireFleet(opts, map[string]*wireAgent{"g": mk(func() { <-stop })})
		f.noPrefetch = !on
		for _, poll := range polls {
			poll(f)
		}
		g := f.Guest("g")
		shown = fmt.Sprintf("state %v err %q poll-timeout %v\n%s", g.State, g.Err, IsPollTimeout(g.Cause), shownOf(g, true))
		close(stop)
		f.Close()
	})
	return shown
}

// forced is a status --json poll; look is a dashboard's first.
func forced(f *Fleet) { f.RefreshOnce(context.Background(), nil) }
func look(f *Fleet)   { PollAll(context.Background(), f) }

// A first poll, and a slow refresh over a kept connection, show the same
// with the prefetch as without it (see
// TestPrefetchFirstPoll for the real agent), where guest-info rules out
// what the prefetch asks anyway, where no ids are echoed (the batch goes
// one command at a time), and with metrics on and off; forced (status
// --json) and as a first look.
func TestPrefetchEquivalence(t *testing.T) {
	cases := map[string]wireCase{
		// Frozen by someone else: its guest-info lists everything but the
		// freeze allowlist disabled, and it refuses the rest as frozen.
		"frozen-by-another": func(func()) *wireAgent {
			allowed := []string{"guest-ping", "guest-info", "guest-fsfreeze-status"}
			return replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
				switch {
				case cmd == "guest-info":
					return true, writeReturn(w, id, capsListing(func(c string) bool { return contains(allowed, c) }))
				case cmd == "guest-fsfreeze-status":
					return true, writeReturn(w, id, `"frozen"`)
				case !contains(allowed, cmd):
					_, err := fmt.Fprintf(w, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command %s has been disabled: the agent is in frozen state\"}, \"id\": %s}\n", cmd, id)
					return true, err
				}
				return false, nil
			})
		},
		"info-refused": func(func()) *wireAgent {
			return replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
				if cmd == "guest-info" {
					_, err := fmt.Fprintf(w, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": %s}\n", id)
					return true, err
				}
				return false, nil
			})
		},
		"some-disabled": func(func()) *wireAgent {
			return replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
				if cmd == "guest-info" {
					return true, writeReturn(w, id, capsWithout("guest-get-vcpus", "guest-get-users", "guest-get-fsinfo"))
				}
				return false, nil
			})
		},
		// Lines that do not parse: noise, skipped, the replies awaited
		// till the poll's deadline, either way.
		"invalid-return": func(func()) *wireAgent {
			return replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
				if cmd == "guest-get-osinfo" || cmd == "guest-get-host-name" {
					return true, writeReturn(w, id, `{"name": [}`)
				}
				return false, nil
			})
		},
		// Echoes no ids: every batch goes one command at a time.
		"no-ids": func(func()) *wireAgent {
			return &wireAgent{noIDs: true, reply: func(w io.Writer, cmd string, _ []byte) error {
				v := healthyReturn("g", cmd)
				if v == "" {
					_, err := fmt.Fprintf(w, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command %s has not been found\"}}\n", cmd)
					return err
				}
				_, err := fmt.Fprintf(w, "{\"return\": %s}\n", v)
				return err
			}}
		},
		// An honest guest slow to list its capabilities: the round trip
		// shown is the time's own, as without the prefetch.
		"slow-info": func(func()) *wireAgent {
			return replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
				if cmd == "guest-info" {
					time.Sleep(time.Second)
				}
				return false, nil
			})
		},
	}
	// A guest whose capabilities change between two slow refreshes over
	// the same connection: the prefetch of the second goes by the first's.
	for name, first := range map[string]string{
		"enabled-later":  capsWithout("guest-get-users", "guest-get-fsinfo", "guest-get-vcpus"),
		"disabled-later": capsWithout(),
	} {
		cases[name] = func(func()) *wireAgent {
			var infos atomic.Int32
			return replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
				if cmd != "guest-info" {
					return false, nil
				}
				if infos.Add(1) == 1 {
					return true, writeReturn(w, id, first)
				}
				if name == "enabled-later" {
					return true, writeReturn(w, id, capsWithout())
				}
				return true, writeReturn(w, id, capsWithout("guest-get-users", "guest-get-fsinfo", "guest-get-vcpus"))
			})
		}
	}
	age := func(f *Fleet) { AgeSlow(f, 2*time.Hour) }
	modes := map[string][]func(*Fleet){
		"forced": {forced},
		"look":   {look},
		// A slow refresh over the connection kept since the look and the
		// poll after it: forced (`r`), and come due.
		"kept-forced": {look, look, forced},
		"kept-due":    {look, look, age, look},
	}
	for name, mk := range cases {
		for _, metrics := range []time.Duration{0, -1} {
			for mode, polls := range modes {
				t.Run(fmt.Sprintf("%s/metrics=%v/%s", name, metrics >= 0, mode), func(t *testing.T) {
					opts := Options{Interval: time.Hour, Timeout: 3 * time.Second, MetricsInterval: metrics}
					with, without := firstPolls(t, opts, mk, true, polls...), firstPolls(t, opts, mk, false, polls...)
					if with != without {
						t.Errorf("with the prefetch the first poll shows\n%s\nwithout it\n%s", with, without)
					}
				})
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// shownOf is what a poll shows of g, for the comparisons with and without
// the prefetch; timing adds the skew and the round trip, which move from
// one poll to the next on a real agent (prefetch_test.go's projection, via
// Shown, leaves them out).
func shownOf(g *Guest, timing bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "freeze %v agent %q\n", g.Freeze, g.AgentVersion)
	for _, c := range g.Commands {
		fmt.Fprintf(&b, "cap %s %v; ", c.Name, c.Enabled)
	}
	fmt.Fprintf(&b, "\nos %+v host %q tz %+v users %d\n", g.OS, g.Hostname, g.Timezone, len(g.Users))
	for _, fs := range g.Filesystems {
		fmt.Fprintf(&b, "fs %s %s %s; ", fs.Name, fs.Mountpoint, fs.Type)
	}
	for _, i := range g.Interfaces {
		fmt.Fprintf(&b, "\nif %s %s %v", i.Name, i.HardwareAddress, i.IPAddresses)
	}
	fmt.Fprintf(&b, "\nvcpus %d skew known %v metrics cpus %d disks %d routes %d note %q",
		len(g.VCPUs), g.SkewKnown, g.Metrics.CPUs, len(g.Metrics.Disks), len(g.Metrics.Routes), g.Metrics.Note)
	if timing {
		fmt.Fprintf(&b, " skew %v rtt %v", g.Skew, g.RTT)
	}
	return b.String()
}

// What a prefetch keeps undecoded is held outside the fleet's reply budget
// (agentclient.Budget charges a reply only while it is read), so it keeps
// little: a guest answering every command asked ahead at its limit (some
// 30 MiB) leaves at most prefetchKeep of each kept while its poll goes on,
// and the steps ask the rest again, each read under the budget as ever.
// The guest stalls the poll (its guest-get-time disabled, it is asked
// guest-fsfreeze-status, never asked ahead) and looks at what is kept.
func TestPrefetchKeepsLittle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f *Fleet
		kept := -1
		agent := &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
			switch cmd {
			case "guest-info":
				return writeReturn(w, id, infoReturn(func(c string) bool { return c != "guest-get-time" }))
			case "guest-fsfreeze-status":
				// The poll waits for this reply: the prefetch's replies
				// are what its steps hold now (set before this request
				// was written).
				if p := f.session("g").pre; p != nil {
					kept = 0
					for i := range p.n {
						kept += cap(p.raws[i].Ret)
					}
				}
				return writeReturn(w, id, `"thawed"`)
			}
			c, _ := agentclient.Lookup(cmd)
			return writeHuge(w, id, c.ReplyLimit(nil)-100)
		}}
		f = wireFleet(Options{Interval: time.Hour, Timeout: 3 * time.Second}, map[string]*wireAgent{"g": agent})
		defer f.Close()
		f.RefreshOnce(t.Context(), nil)
		if kept < 0 {
			t.Fatal("the poll asked no guest-fsfreeze-status with its prefetch held")
		}
		if max := maxPrefetch * prefetchKeep; kept > max {
			t.Errorf("the prefetch held %d bytes of undecoded replies, outside the reply budget; want at most %d", kept, max)
		}
		if n := f.budget.InUse(); n != 0 {
			t.Errorf("reply budget holds %d bytes after the refresh", n)
		}
	})
}

// A fresh connection after a failure reads the capabilities but not the
// slow items (capsOnly), unless the agent's version changed: the same with
// the prefetch as without.
func TestPrefetchCapsOnlyEquivalence(t *testing.T) {
	for _, upgraded := range []bool{false, true} {
		t.Run(fmt.Sprintf("upgraded=%v", upgraded), func(t *testing.T) {
			var drop, after atomic.Bool
			mk := func(func()) *wireAgent {
				return replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
					if drop.CompareAndSwap(true, false) {
						after.Store(true)
						return true, errors.New("hang up") // serve closes the connection
					}
					switch {
					case cmd == "guest-info" && after.Load() && upgraded:
						return true, writeReturn(w, id, strings.Replace(capsWithout(), "7.2.22", "9.2.0", 1))
					case cmd == "guest-get-host-name" && after.Load():
						return true, writeReturn(w, id, `{"host-name": "renamed"}`) // shown only if asked
					}
					return false, nil
				})
			}
			var shown [2]string
			for i, on := range []bool{true, false} {
				drop.Store(false)
				after.Store(false)
				shown[i] = firstPolls(t, Options{Interval: time.Hour, Timeout: 3 * time.Second}, mk, on,
					forced,
					func(f *Fleet) { drop.Store(true); look(f) }, // fails: the connection goes
					look, // a fresh connection, the slow items not due
				)
			}
			if shown[0] != shown[1] {
				t.Errorf("with the prefetch the poll after a failure shows\n%s\nwithout it\n%s", shown[0], shown[1])
			}
			if renamed := strings.Contains(shown[1], `host "renamed"`); renamed != upgraded {
				t.Errorf("the slow items asked after the failure: %v, want %v (upgraded)\n%s", renamed, upgraded, shown[1])
			}
		})
	}
}
