package fleet_test

import (
	"context"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// wireWatch is a dialer whose connections report the commands written on
// them, so that a test knows a request is with the agent (held by its hang)
// before it goes on.
type wireWatch struct {
	mu    sync.Mutex
	sent  []string
	wrote chan struct{} // a value after each write that carried a command
}

func newWireWatch() *wireWatch { return &wireWatch{wrote: make(chan struct{}, 1)} }

var executeRE = regexp.MustCompile(`"execute":"([^"]+)"`)

func (w *wireWatch) dial(ctx context.Context, t fleet.Target) (agentclient.Agent, error) {
	path := strings.TrimPrefix(t.Address, "unix:")
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return agentclient.New(agentclient.NewStream(t.Address, &watchedConn{Conn: c, w: w})), nil
}

// mark is how many commands were written so far.
func (w *wireWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sent)
}

// await waits until a command other than guest-sync-delimited was written
// after mark (a sync is written, when needed, before every call). It
// fails the test after d: a bound for a stuck peer, not a timing.
func (w *wireWatch) await(t *testing.T, mark int, d time.Duration, what string) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		w.mu.Lock()
		sent := append([]string(nil), w.sent[mark:]...)
		w.mu.Unlock()
		for _, c := range sent {
			if c != "guest-sync-delimited" {
				return
			}
		}
		select {
		case <-w.wrote:
		case <-timer.C:
			t.Fatalf("%s: nothing but %v written after %v", what, sent, d)
		}
	}
}

// awaitAny waits until anything was written after mark.
func (w *wireWatch) awaitAny(t *testing.T, mark int, d time.Duration, what string) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for w.mark() <= mark {
		select {
		case <-w.wrote:
		case <-timer.C:
			t.Fatalf("%s: nothing written after %v", what, d)
		}
	}
}

type watchedConn struct {
	net.Conn
	w *wireWatch
}

func (c *watchedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	var cmds []string
	for _, m := range executeRE.FindAllSubmatch(b[:n], -1) {
		cmds = append(cmds, string(m[1]))
	}
	if len(cmds) > 0 {
		c.w.mu.Lock()
		c.w.sent = append(c.w.sent, cmds...)
		c.w.mu.Unlock()
		select {
		case c.w.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}

// A poll's answers never overwrite the state an action on the same guest
// set: shutting-down, suspended, frozen by us, thawed. Reported from the
// dashboard (TestTmuxStopAction: a guest "ready" beside the shutdown's
// result), suspected to be a poll's answer, in flight or held by the
// agent's hang, published after the action's. Two ways it could be:
//   - in flight: a poll has sent its requests and the agent holds them
//     when the action is asked; the answers come once the hang ends. The
//     poll holds the guest's token from its first request to its publish,
//     so the action waits for it and publishes after it.
//   - held: the poll ran out of time with its request held, the
//     connection was kept (a stream resyncs), and the action is sent on it
//     behind the held request. Its late answer comes first and is dropped
//     as stale (its id); the poll it was for is over.
//
// In both, the state the action set is what the guest shows when its
// result is reported, and the polls after it (the guest still answering:
// a shutdown or suspend it carries out later) keep it. The fleet is not
// started: the test drives every poll, so no other publish comes between.
func TestActionStateSurvivesHeldPoll(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	type want struct {
		state      fleet.State
		frozenByUs bool
	}
	for _, tc := range []struct {
		name   string
		before *fleet.Action // run first, without a hang
		act    fleet.Action
		want   want
	}{
		{name: "shutdown", act: fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownPowerdown},
			want: want{state: fleet.ShuttingDown}},
		{name: "suspend", act: fleet.Action{Kind: fleet.ActSuspend, Mode: agentclient.SuspendRAM},
			want: want{state: fleet.Suspended}},
		{name: "freeze", act: fleet.Action{Kind: fleet.ActFreeze},
			want: want{state: fleet.Frozen, frozenByUs: true}},
		{name: "thaw", before: &fleet.Action{Kind: fleet.ActFreeze}, act: fleet.Action{Kind: fleet.ActThaw},
			want: want{state: fleet.Ready}},
	} {
		for _, v := range []struct {
			held, exclusive bool
		}{{false, false}, {false, true}, {true, false}, {true, true}} {
			held := v.held
			name := tc.name + "/in flight"
			if held {
				name = tc.name + "/held past its timeout"
			}
			// A shared channel is let go between uses: the action dials
			// again, and waits for the agent behind the held request's
			// connection. An exclusive one is kept: the action's requests
			// follow the held one on it.
			if v.exclusive {
				name += "/exclusive"
			} else {
				name += "/shared"
			}
			t.Run(name, func(t *testing.T) {
				const timeout = time.Second
				dir, err := os.MkdirTemp("/tmp", "gdh")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
					c := sim.DefaultConfig("hp")
					// The agent goes on answering after it accepted a
					// shutdown or suspend: the polls after it are answered.
					c.ShutdownDelay = time.Hour
					return c
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { farm.Close() })
				guest := farm.Guests()[0]
				w := newWireWatch()
				f := fleet.New(fleet.Options{Timeout: timeout, Dialers: map[string]fleet.Dialer{"unix": w.dial}})
				t.Cleanup(func() { f.Close() })
				f.Add(fleet.Target{Name: "hp", Address: "unix:" + farm.Sockets()[0], Exclusive: v.exclusive})
				ctx := t.Context()
				if err := f.RefreshErrs(ctx, []string{"hp"})["hp"]; err != nil {
					t.Fatalf("first poll: %v", err)
				}
				if tc.before != nil {
					if res := f.Run(ctx, *tc.before, []string{"hp"}, nil); !res[0].OK {
						t.Fatalf("%s first: %+v", tc.before.Kind, res[0])
					}
				}

				guest.SetHang(true)
				released := false
				release := func() {
					if !released {
						released = true
						guest.SetHang(false)
					}
				}
				t.Cleanup(release)
				polled := make(chan error, 1)
				m := w.mark()
				go func() { polled <- f.RefreshErrs(ctx, []string{"hp"})["hp"] }()
				w.await(t, m, 30*time.Second, "the poll's requests")
				if held {
					// Out of time, with its request still held: the
					// connection is kept and the action goes out on it.
					if err := <-polled; !agentclient.IsTimeout(err) {
						t.Fatalf("the held poll ended with %v, want a timeout", err)
					}
				}

				var atResult *fleet.Guest
				done := make(chan []fleet.Result, 1)
				m = w.mark()
				go func() {
					done <- f.Run(ctx, tc.act, []string{"hp"}, func(fleet.Result) { atResult = f.Guest("hp") })
				}()
				if held {
					// The action's resync (or its command) is on the wire
					// behind the held request: the late answer comes first.
					w.awaitAny(t, m, 30*time.Second, "the action's requests")
				}
				release()
				res := <-done
				if !held {
					if err := <-polled; err != nil {
						t.Fatalf("the poll in flight: %v", err)
					}
				}
				if !res[0].OK {
					t.Fatalf("%s: %+v", tc.act.Kind, res[0])
				}
				check := func(when string, g *fleet.Guest) {
					t.Helper()
					if g.State != tc.want.state || g.FrozenByUs != tc.want.frozenByUs {
						t.Errorf("%s: %s %q, frozen by us %v; want %s, frozen by us %v",
							when, g.State, g.Err, g.FrozenByUs, tc.want.state, tc.want.frozenByUs)
					}
				}
				check("when the result was reported", atResult)
				check("after the action", f.Guest("hp"))
				for i := range 2 {
					if err := f.RefreshErrs(ctx, []string{"hp"})["hp"]; err != nil {
						t.Fatalf("poll %d after the action: %v", i+1, err)
					}
					check("after a poll the guest answered", f.Guest("hp"))
				}
			})
		}
	}
}
