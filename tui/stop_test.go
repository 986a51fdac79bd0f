package tui

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/themes"
)

func ansiStrip(s string) string { return ansi.Strip(s) }

// nextAction runs an action's message chain one message on: the launch's
// batch (its first command is the wait on the results; the second the
// spinner) or an actionMsg's next.
func nextAction(t *testing.T, m Model, wait tea.Cmd) (Model, tea.Cmd, tea.Msg) {
	t.Helper()
	msg := wait()
	if b, ok := msg.(tea.BatchMsg); ok {
		msg = b[0]()
	}
	next, cmd := m.Update(msg) // an actionMsg's next
	return next.(Model), cmd, msg
}

// The stop key on a running bulk action, driven through Update against a
// fleet that has started three guests and holds them: before any action
// it only says there is nothing to stop; during the run it is on the help
// line and the progress line; pressed, the seven guests not started report
// at once while the three answer on, and the status counts them; a second
// press says it is stopping already and cuts nothing; the end says how
// many ran and how many never started (for a freeze, how many are frozen
// now), and the audit outcome lists every guest with the stop.
func TestStopKeyStopsStarting(t *testing.T) {
	const n, inFlight = 10, 3
	thawAt := testNow.Add(time.Hour)
	for _, tc := range []struct {
		name, key, desc, final string
	}{
		// %d: the guests skipped (their agent cannot), then those not started.
		{"shutdown", "X", "shutdown powerdown", "shutdown powerdown stopped: 3 ok, 0 failed, %d skipped, %d not started (nothing was sent to those not started) (e: event log)"},
		{"freeze", "F", "freeze", "freeze stopped: 3 guests frozen now (automatic thaw from 16:00:00; T thaws them now); 3 ok, 0 failed, %d skipped, %d not started (nothing was sent to those not started) (e: event log)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := audit.Open(t.TempDir())
			gs := testGuests(n)
			for _, g := range gs {
				g.State = fleet.Ready // every one a target
			}
			src := newFakeSource(gs)
			m := New(src, Options{Audit: log, FreezeTimeout: time.Hour, Now: func() time.Time { return testNow }, Styles: themes.Mono()})
			m.resize(200, 30)
			asked := make(chan struct{}, 1)
			src.inFlight, src.thawAt, src.onRun = inFlight, thawAt, func() { asked <- struct{}{} }

			m = press(t, m, "ctrl+x")
			eq(t, "status with nothing running", m.status, "no action is running: nothing to stop")
			eq(t, "runs with nothing running", len(src.runs), 0)

			release := src.holdRuns()
			t.Cleanup(release)
			m = press(t, m, "ctrl+a", tc.key)
			c := m.openConfirmation()
			if c == nil {
				t.Fatalf("%s opened no confirmation:\n%s", tc.key, view(m))
			}
			skipped := len(c.skipped)
			sent := n - skipped // to be sent the action
			notStarted := sent - inFlight
			answer := "y"
			if c.needType {
				m = typeText(t, m, strconv.Itoa(len(c.run)))
				answer = "enter"
			}
			next, wait := m.Update(keyMsg(t, answer))
			m = next.(Model)
			if m.run == nil {
				t.Fatalf("no action in flight after %s:\n%s", answer, view(m))
			}
			if v := view(m); !strings.Contains(v, "ctrl+x stops") || !strings.Contains(v, "ctrl+x stop action") {
				t.Errorf("the stop key is not on the progress and help lines while %s runs:\n%s", tc.desc, v)
			}
			<-asked // the intent is written and the fleet asked
			if len(src.runs) != 1 || len(src.runs[0].names) != sent {
				t.Fatalf("the fleet was asked %+v", src.runs)
			}

			m = press(t, m, "ctrl+x")
			eq(t, "status as the stop is pressed", m.status, "stopping "+tc.desc+": no more guests are started; waiting for the calls sent…")
			for i := range notStarted {
				var msg tea.Msg
				m, wait, msg = nextAction(t, m, wait)
				if am, ok := msg.(actionMsg); !ok || !am.res.NotStarted || am.res.Err != fleet.NotStartedText {
					t.Fatalf("message %d after the stop: %#v, want a guest not started", i, msg)
				}
			}
			stopping := fmt.Sprintf("stopping %s: 3 guests still answering… (%d not started: nothing is sent to them)", tc.desc, notStarted)
			eq(t, "status while the three answer", m.status, stopping)
			if v := view(m); !strings.Contains(v, stopping) || strings.Contains(v, "ctrl+x stop action") {
				t.Errorf("while stopping, the progress line does not say so, or the help line still offers the stop:\n%s", v)
			}
			m = press(t, m, "ctrl+x")
			eq(t, "a second press", m.status, "already "+stopping+"; the calls sent are not cut")
			m = press(t, m, "p")
			eq(t, "another action while stopping", m.status, "not started: "+stopping)
			eq(t, "actions asked of the fleet", len(src.runs), 1)

			if tc.name == "freeze" {
				src.mu.Lock()
				src.frozen = src.runs[0].names[:inFlight] // as the fleet holds them
				src.mu.Unlock()
			}
			release()
			m, _ = settle(t, m, wait)
			if m.run != nil {
				t.Fatalf("still running after the release")
			}
			eq(t, "calls cut", src.cut, false)
			eq(t, "final status", m.status, fmt.Sprintf(tc.final, skipped, notStarted))
			names := src.runs[0].names
			for i, g := range names {
				want := rowNotStarted
				if i < inFlight {
					want = rowOK
				}
				eq(t, g+"'s mark", m.rowStatus[g], want)
			}
			if len(m.events) == 0 || !m.events[0].stopped || len(m.events[0].results) != n {
				t.Fatalf("event log: %+v", m.events)
			}
			if v := ansiStrip(m.eventHead(m.events[0])); !strings.Contains(v, fmt.Sprintf("3 ok, 0 failed, %d skipped, %d not started  (stopped)", skipped, notStarted)) {
				t.Errorf("event header: %q", v)
			}

			var outcome *audit.Entry
			if _, err := audit.Read(log.Path(), func(e audit.Entry) error {
				if e.Phase == audit.Outcome {
					outcome = &e
				}
				return nil
			}); err != nil || outcome == nil {
				t.Fatalf("no audit outcome (%v)", err)
			}
			if s := outcome.Stopped; s == nil || s.By != audit.StoppedByOperator || s.NotStarted != notStarted || !s.At.Equal(testNow) {
				t.Errorf("audit outcome's stop: %+v", outcome.Stopped)
			}
			if len(outcome.Guests) != n {
				t.Fatalf("audit outcome lists %d guests, want %d", len(outcome.Guests), n)
			}
			for i, g := range outcome.Guests[skipped:] { // the skipped come first
				ran := i < inFlight
				if g.Name != names[i] || g.NotStarted == ran || (g.Result == "ok") != ran {
					t.Errorf("audit guest %d: %+v (started: %v)", i, g, ran)
				}
			}
		})
	}
}

// A stop key rebound to a letter is a letter in the filter prompt, and
// the stop there: it never stops an action from a line being typed.
func TestStopKeyNotInPrompts(t *testing.T) {
	m, src := newTestModel(5, 120, 30, Options{Keys: map[string][]string{"stop": {"x"}}})
	release := src.holdRuns()
	t.Cleanup(release)
	next, wait := m.Update(keyMsg(t, "p"))
	m = next.(Model)
	if m.run == nil {
		t.Fatal("ping not in flight")
	}
	m = press(t, m, "/", "x")
	eq(t, "stopping after x in the filter", m.run.stopping, false)
	eq(t, "filter", m.filterInput.Value(), "x")
	m = press(t, m, "enter", "x")
	eq(t, "stopping after x on the table", m.run.stopping, true)
	release()
	m, _ = settle(t, m, wait)
	eq(t, "ran", m.run == nil, true)
}

// The stop key in the exec pane, against a real fleet of six simulated
// guests two at a time: pressed once the two programs run, the other four
// report not started (nothing sent), the two are still waited for and
// exit 0, and the audit outcome records the stop. The two guests are held
// (sim hang) from the moment they run until the four have reported, so
// their slots stay taken whatever the machine's load.
func TestExecPaneStop(t *testing.T) {
	const n = 6
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, n, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("vm-%05d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 20 * time.Second, Concurrency: 2})
	t.Cleanup(func() { f.Close() })
	for i, s := range farm.Sockets() {
		f.Add(fleet.Target{Name: fmt.Sprintf("vm-%05d", i), Address: "unix:" + s})
	}
	f.RefreshOnce(t.Context(), nil)
	log := audit.Open(t.TempDir())
	m, _ := newTestModel(n, 140, 30, Options{Exec: f.ExecUntil, Audit: log})
	m = press(t, m, "ctrl+a")
	m = runExecLine(t, m, "sh -c 'sleep 1; echo done'")
	next, wait := m.Update(keyMsg(t, "y"))
	m = next.(Model)
	step := func() {
		t.Helper()
		msg := wait()
		if b, ok := msg.(tea.BatchMsg); ok {
			msg = b[0]() // the wait on the run, not the spinner
		}
		next, cmd := m.Update(msg)
		m, wait = next.(Model), cmd
	}
	p := m.ex.pane
	for running := 0; running < 2; {
		step()
		running = 0
		for _, r := range p.results {
			if r.State == fleet.ExecRunning {
				running++
			}
		}
	}
	for _, g := range farm.Guests()[:2] {
		g.SetHang(true)
	}
	t.Cleanup(func() {
		for _, g := range farm.Guests()[:2] {
			g.SetHang(false)
		}
	})
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, "ctrl+x start no more") {
		t.Errorf("the pane's help does not offer the stop:\n%s", v)
	}
	m = press(t, m, "ctrl+x")
	eq(t, "status at the stop", m.status, "exec: no more programs are started; waiting for those running (esc stops waiting)")
	for range n - 2 {
		step()
	}
	eq(t, "not started", p.notStarted, n-2)
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, "stopped starting: 4 not started, waiting for 2") {
		t.Errorf("the pane's title does not say it stopped starting:\n%s", v)
	}
	m = press(t, m, "ctrl+x")
	eq(t, "a second press", m.status, "already stopping: no more programs are started; esc stops waiting for those running")
	for _, g := range farm.Guests()[:2] {
		g.SetHang(false)
	}
	m, _ = settle(t, m, wait)
	eq(t, "final status", m.status, "exec stopped: 2 exit 0, 0 failed, 0 skipped, 4 not started (nothing was sent to them)")
	for i, r := range p.results {
		sent := farm.Guests()[i].Calls("guest-exec")
		if started := i < 2; started != r.OK() || started == r.NotStarted || sent != map[bool]int{true: 1}[started] {
			t.Errorf("%s: %+v, guest-exec sent %d times", r.Guest, r, sent)
		}
	}
	es := readAudit(t, log)
	if len(es) != 2 || es[1].Stopped == nil || es[1].Stopped.NotStarted != n-2 || es[1].Guests[2].NotStarted != true || es[1].Guests[0].NotStarted {
		t.Errorf("audit: %+v", es)
	}
}
