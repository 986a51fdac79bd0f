package fleet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/ledger"
)

// A bulk action stopped (RunUntil's stop) after its first result: the
// guests not yet started are sent nothing and report NotStarted at once,
// while the calls already sent run to their real end, and RunUntil returns
// when they have. The three guests still answering at the stop are held
// (sim hang) until every not-started guest has reported, so the order is
// the point of the test, not a timing. A freeze's ledger holds no entry for
// a guest it never reached, already while the calls in flight go on.
func TestRunUntilStopStartsNoMore(t *testing.T) {
	const n, conc = 40, 4
	for _, tc := range []struct {
		name    string
		action  fleet.Action
		command string
	}{
		{"freeze", fleet.Action{Kind: fleet.ActFreeze}, "guest-fsfreeze-freeze"},
		{"shutdown", fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownPowerdown}, "guest-shutdown"},
		{"settime", fleet.Action{Kind: fleet.ActSetTime}, "guest-set-time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledger.Open(t.TempDir())
			opts := fastOptions()
			opts.Concurrency, opts.Timeout, opts.Ledger, opts.FreezeTimeout = conc, 20*time.Second, l, time.Hour
			farm, f := simFleet(t, n, opts)
			guests := farm.Guests()
			names := make([]string, n)
			for i, g := range guests {
				names[i] = g.Config().Name
				g.SetLatency(20 * time.Millisecond)
			}
			// The first guest answers; the other three started with it
			// answer only once the stop has played out.
			for _, g := range guests[1:conc] {
				g.SetHang(true)
			}

			ctx := t.Context()
			stop, stopNow := context.WithCancel(ctx)
			defer stopNow()
			var (
				mu          sync.Mutex
				order       []fleet.Result
				notStarted  int
				ledgerAtEnd = -1 // our entries when the last not-started guest reported
			)
			results := f.RunUntil(ctx, stop, tc.action, names, func(r fleet.Result) {
				mu.Lock()
				defer mu.Unlock()
				order = append(order, r)
				if len(order) == 1 {
					stopNow() // the operator saw the first result
				}
				if r.NotStarted {
					notStarted++
					if notStarted == n-conc {
						ledgerAtEnd = len(ledgerEntries(t, l))
						for _, g := range guests[1:conc] {
							g.SetHang(false)
						}
					}
				}
			})

			if len(order) != n {
				t.Fatalf("%d progress calls, want %d", len(order), n)
			}
			if order[0].Guest != names[0] || !order[0].OK {
				t.Fatalf("first result: %+v", order[0])
			}
			// Not started are reported before the held calls end.
			for i, r := range order[1 : 1+n-conc] {
				if !r.NotStarted {
					t.Fatalf("progress %d: %+v, want a not-started guest while three calls are held", i+1, r)
				}
			}
			for i, r := range results {
				g := guests[i]
				sent := g.Calls(tc.command)
				if i < conc {
					if r.NotStarted || !r.OK || sent != 1 {
						t.Errorf("%s (started before the stop): %+v, %s sent %d times", r.Guest, r, tc.command, sent)
					}
					continue
				}
				if !r.NotStarted || r.OK || r.Err != fleet.NotStartedText || sent != 0 {
					t.Errorf("%s (not started): %+v, %s sent %d times", r.Guest, r, tc.command, sent)
				}
				if g.Frozen() {
					t.Errorf("%s: frozen though never started", r.Guest)
				}
			}
			if tc.action.Kind != fleet.ActFreeze {
				return
			}
			// The held guests' entries were written ahead (prerecordFreezes)
			// and stay: they are being frozen.
			if ledgerAtEnd != conc {
				t.Errorf("ledger while stopping: %d entries, want %d (the guests started)", ledgerAtEnd, conc)
			}
			es := ledgerEntries(t, l)
			got := map[string]bool{}
			for _, e := range es {
				got[e.Guest] = true
			}
			if len(es) != conc {
				t.Errorf("ledger after the stopped freeze: %d entries, want %d", len(es), conc)
			}
			for i := range conc {
				if !got[names[i]] || !guests[i].Frozen() {
					t.Errorf("%s: frozen %v, in the ledger %v; want both", names[i], guests[i].Frozen(), got[names[i]])
				}
			}
			if frozen := f.FrozenByUs(); len(frozen) != conc {
				t.Errorf("FrozenByUs after the stopped freeze: %v", frozen)
			}
			for _, r := range f.ThawOurs(ctx) {
				if !r.OK {
					t.Errorf("thaw: %+v", r)
				}
			}
		})
	}
}

// Run is RunUntil with one context: ending it stops the starting too, and
// the guests not started say so in the same words and flag.
func TestRunCancelledNotStarted(t *testing.T) {
	opts := fastOptions()
	opts.Concurrency = 1
	farm, f := simFleet(t, 3, opts)
	ctx, cancel := context.WithCancel(t.Context())
	names := []string{"s00", "s01", "s02"}
	rs := f.Run(ctx, fleet.Action{Kind: fleet.ActPing}, names, func(fleet.Result) { cancel() })
	if !rs[0].OK {
		t.Fatalf("first: %+v", rs[0])
	}
	for i, r := range rs[1:] {
		if !r.NotStarted || r.Err != fleet.NotStartedText || farm.Guests()[i+1].Calls("guest-ping") != 0 {
			t.Errorf("%s: %+v, %d pings", r.Guest, r, farm.Guests()[i+1].Calls("guest-ping"))
		}
	}
}

// An exec stopped (ExecUntil's stop) as its first program starts: the two
// guests started (Concurrency 2) run their programs to the end, waited for
// and with their output, and the other six are sent nothing. The programs
// wait for a file the test makes only once the six have reported, so the
// stop plays out while they run.
func TestExecUntilStopStartsNoMore(t *testing.T) {
	const n, conc = 8, 2
	opts := fastOptions()
	opts.Concurrency, opts.Timeout = conc, 20*time.Second
	var cfgs []sim.Config
	for i := range n {
		cfgs = append(cfgs, sim.DefaultConfig(fmt.Sprintf("x%d", i)))
	}
	farm, f := execFleet(t, opts, cfgs...)
	gate := filepath.Join(t.TempDir(), "go")
	spec := shSpec(fmt.Sprintf("while [ ! -e %s ]; do sleep 0.01; done; echo done", gate))
	names := make([]string, n)
	for i := range names {
		names[i] = cfgs[i].Name
	}
	ctx := t.Context()
	stop, stopNow := context.WithCancel(ctx)
	defer stopNow()
	var order []fleet.ExecResult
	notStarted := 0
	rs := f.ExecUntil(ctx, stop, spec, names, func(r fleet.ExecResult) {
		order = append(order, r) // never called concurrently
		if r.State == fleet.ExecRunning {
			stopNow()
		}
		if r.NotStarted {
			if notStarted++; notStarted == n-conc {
				if err := os.WriteFile(gate, nil, 0o600); err != nil {
					t.Error(err)
				}
			}
		}
	})
	if notStarted != n-conc {
		t.Fatalf("%d reported not started, want %d: %+v", notStarted, n-conc, order)
	}
	for i, r := range rs {
		sent := farm.Guests()[i].Calls("guest-exec")
		if i < conc {
			if !r.OK() || string(r.Stdout) != "done\n" || r.NotStarted || sent != 1 {
				t.Errorf("%s (started): %+v, guest-exec sent %d times", r.Guest, r, sent)
			}
			continue
		}
		if !r.NotStarted || r.State != fleet.ExecFailed || r.Err != fleet.NotStartedText || sent != 0 {
			t.Errorf("%s (not started): %+v, guest-exec sent %d times", r.Guest, r, sent)
		}
	}
}
