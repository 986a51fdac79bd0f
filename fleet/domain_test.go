package fleet

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/ledger"
)

type domainStep struct {
	domain DomainState // SetDomain(domain, reason), unless poll
	poll   bool        // a poll that fails as silent (what a paused domain's agent does)
	want   State
}

// countSilent is how many polls of steps fail while the machine runs.
func countSilent(steps []domainStep) int {
	n := 0
	for _, st := range steps {
		if st.poll && st.want == Silent {
			n++
		}
	}
	return n
}

// TestDomainStateRules: what libvirt says of a guest's domain decides its
// state while the machine is not running; a failed poll does not undo it
// (a paused guest never turns "silent"); a domain that runs again hands
// the state back to the agent; a guest woken from a suspend to RAM has its
// ledger entry cleared. Driven through the sink the libvirt source uses,
// and the session's own failure path, on a fleet without connections.
func TestDomainStateRules(t *testing.T) {
	type step = domainStep
	silent := fmt.Errorf("agent libvirt:h/g: %w", agentclient.ErrSilent)
	tests := []struct {
		name  string
		steps []step
	}{
		{"boots, then its agent connects", []step{
			{domain: DomainStopped, want: Stopped}, {poll: true, want: Stopped},
			{domain: DomainBooting, want: Connecting}, {poll: true, want: Connecting},
			{domain: DomainRunning, want: Connecting}, {poll: true, want: Silent},
		}},
		{"paused, resumed", []step{
			{domain: DomainRunning, want: Connecting}, {domain: DomainPaused, want: Paused},
			{poll: true, want: Paused}, {domain: DomainRunning, want: Connecting},
		}},
		{"suspended to RAM, woken", []step{
			{domain: DomainPMSuspended, want: Suspended}, {poll: true, want: Suspended},
			{domain: DomainRunning, want: Connecting},
		}},
		{"shutting down, stopped, crashed", []step{
			{domain: DomainShuttingDown, want: ShuttingDown}, {poll: true, want: ShuttingDown},
			{domain: DomainStopped, want: Stopped}, {domain: DomainCrashed, want: Crashed}, {poll: true, want: Crashed},
		}},
		{"host unreachable: the agent's state again", []step{
			{domain: DomainPaused, want: Paused}, {domain: DomainUnknown, want: Connecting}, {poll: true, want: Silent},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := ledger.Open(t.TempDir())
			f := New(Options{Interval: time.Hour, Ledger: l, Who: "test"})
			defer f.Close()
			f.Add(Target{Name: "h/g", Host: "h", Address: "libvirt:h/g"})
			s := f.session("h/g")
			if _, err := s.recordSuspend(agentclient.SuspendRAM); err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				if st.poll {
					s.failed(context.Background(), silent, true)
				} else {
					sourceSink{f}.SetDomain("h/g", st.domain, "because "+string(st.domain))
				}
				g := f.Guest("h/g")
				if g.State != st.want {
					t.Fatalf("step %d (%+v): state %s, want %s (%q)", i, st, g.State, st.want, g.Err)
				}
				if _, held := domainHolds[g.DomainState]; held && !strings.Contains(g.Err, "because") {
					t.Errorf("step %d: libvirt's reason lost: %q", i, g.Err)
				}
			}
			if g := f.Guest("h/g"); int(g.Missed) != countSilent(tc.steps) {
				t.Errorf("missed %d: only polls of a running machine count", g.Missed)
			}
			woken := tc.name == "suspended to RAM, woken"
			f.wg.Wait() // the ledger update runs on a fleet goroutine
			es, err := l.Load()
			if err != nil {
				t.Fatal(err)
			}
			if cleared := len(es) == 0; cleared != woken {
				t.Errorf("ledger entries %+v: cleared %v, want %v", es, cleared, woken)
			}
		})
	}
}
