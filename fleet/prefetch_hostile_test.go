package fleet

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// A first poll shows the same with the prefetch as without it, whatever a
// guest answers to the commands its steps do not ask: hostile guests over
// the wire (wire_test.go), inside a bubble so that their silences cost no
// time. Each guest's guest-info decides what the steps ask; the prefetch
// asks everything anyway, and the answers to the rest must change nothing.
func TestPrefetchHostileEquivalence(t *testing.T) {
	// info lists the polled commands enabled except those in off.
	info := func(off ...string) string {
		var b bytes.Buffer
		b.WriteString(`{"version": "7.2.22", "supported_commands": [`)
		for i, c := range append([]string{"guest-ping"}, polledCommands...) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `{"enabled": %v, "name": %q, "success-response": true}`, !contains(off, c), c)
		}
		b.WriteString("]}")
		return b.String()
	}
	// replying answers cmd with fn's reply when it has one, else as a
	// healthy guest of that name.
	replying := func(fn func(w io.Writer, cmd string, id []byte) (bool, error)) *wireAgent {
		return &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
			if done, err := fn(w, cmd, id); done {
				return err
			}
			return healthyAgent("g").reply(w, cmd, id)
		}}
	}
	// hang is a reply that never comes (until the test ends).
	var stop chan struct{}
	hang := func() { <-stop }
	cases := map[string]*wireAgent{
		// Garbage for a command guest-info disabled: the steps never ask
		// it, and its line must not fail the ones they do.
		"garbage-for-unasked": replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
			switch cmd {
			case "guest-info":
				return true, writeReturn(w, id, info("guest-get-vcpus"))
			case "guest-get-vcpus":
				_, err := io.WriteString(w, "\x01\x02 not json at all\n")
				return true, err
			}
			return false, nil
		}),
		// A reply for a disabled command that never comes: the steps do
		// not wait for what they did not ask.
		"silent-on-unasked": replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
			switch cmd {
			case "guest-info":
				return true, writeReturn(w, id, info("guest-get-vcpus"))
			case "guest-get-vcpus":
				hang()
				return true, nil
			}
			return false, nil
		}),
		// Answers guest-info (and syncs) but nothing after: without the
		// prefetch guest-info alone times out, after one call timeout.
		"hangs-at-info": replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
			if cmd == "guest-info" {
				hang()
				return true, nil
			}
			return false, nil
		}),
	}
	for name, agent := range cases {
		t.Run(name, func(t *testing.T) {
			var shown [2]string
			for i, on := range []bool{true, false} {
				synctest.Test(t, func(t *testing.T) {
					stop = make(chan struct{})
					f := wireFleet(Options{Interval: time.Hour, Timeout: 3 * time.Second}, map[string]*wireAgent{"g": agent})
					f.noPrefetch = !on
					start := time.Now()
					f.RefreshOnce(t.Context(), nil)
					took := time.Since(start)
					g := f.Guest("g")
					shown[i] = fmt.Sprintf("state %v err %q cause-is-poll-timeout %v took %v\n%s", g.State, g.Err, IsPollTimeout(g.Cause), took, shownOf(g))
					close(stop)
					stop = nil
					f.Close()
				})
			}
			if shown[0] != shown[1] {
				t.Errorf("with the prefetch the first poll shows\n%s\nwithout it\n%s", shown[0], shown[1])
			}
		})
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

// shownOf is what a poll shows of g, as prefetch_test.go's projection.
func shownOf(g *Guest) string {
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
	fmt.Fprintf(&b, "\nvcpus %d skew known %v rtt %v metrics cpus %d disks %d routes %d note %q",
		len(g.VCPUs), g.SkewKnown, g.RTT, g.Metrics.CPUs, len(g.Metrics.Disks), len(g.Metrics.Routes), g.Metrics.Note)
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
				var b bytes.Buffer
				b.WriteString(`{"version": "7.2.22", "supported_commands": [`)
				for i, c := range append([]string{"guest-ping"}, polledCommands...) {
					if i > 0 {
						b.WriteString(", ")
					}
					fmt.Fprintf(&b, `{"enabled": %v, "name": %q, "success-response": true}`, c != "guest-get-time", c)
				}
				b.WriteString("]}")
				return writeReturn(w, id, b.String())
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
