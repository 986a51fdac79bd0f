package fleet

import (
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/ledger"
)

// A poll that publishes while the ledger is being synced wins: syncLedger
// decides on the guest it writes, not on the one it looked at. A guest
// thawed in between is not shown frozen by the ledger's other process, and
// one that answered in between is not shown suspended (until the next
// reload, which came LedgerInterval later).
func TestSyncLedgerAfterPoll(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	other := ledger.Self()
	other.PID, other.Start = cmd.Process.Pid, 1 // a process gone: an orphan
	for _, c := range []struct {
		name   string
		kind   ledger.Kind
		before func(g *Guest) // the guest as the sync looks at it
		poll   func(g *Guest) // what a poll publishes in between
		check  func(g *Guest) string
	}{{
		name:   "thawed",
		kind:   ledger.Freeze,
		before: func(g *Guest) { g.Freeze, g.FrozenBy = agentclient.Frozen, nil },
		poll:   func(g *Guest) { g.Freeze = agentclient.Thawed },
		check: func(g *Guest) string {
			if g.FrozenBy != nil {
				return "a thawed guest shown frozen by pid " + strconv.Itoa(g.FrozenBy.PID)
			}
			return ""
		},
	}, {
		name:   "answered",
		kind:   ledger.Suspend,
		before: func(g *Guest) { g.State, g.LastLive = Unreachable, time.Now().Add(-time.Hour) },
		poll:   func(g *Guest) { g.State, g.LastLive = Ready, time.Now() },
		check: func(g *Guest) string {
			if g.State != Ready {
				return "an answering guest shown " + string(g.State)
			}
			return ""
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			l := ledger.Open(t.TempDir())
			addr := "unix:/nonexistent/g.sock" // never polled: the test publishes
			if _, err := l.Add(ledger.Entry{Kind: c.kind, Guest: "g", Key: addr, Address: addr, Who: "run",
				Process: other, Since: time.Now().Add(-time.Minute)}); err != nil {
				t.Fatal(err)
			}
			f := New(Options{Interval: time.Hour, Timeout: time.Second, Ledger: l})
			defer f.Close()
			f.Add(Target{Name: "g", Address: addr})
			s := f.session("g")
			s.update(c.before)
			polled := false
			ledgerSyncLooked = func(got *session) {
				if got == s && !polled {
					polled = true
					s.update(c.poll)
				}
			}
			defer func() { ledgerSyncLooked = nil }()
			s.syncLedger()
			if !polled {
				t.Fatal("the sync found nothing to change: the case tests nothing")
			}
			if msg := c.check(s.cur.Load()); msg != "" {
				t.Error(msg)
			}
		})
	}
}
