package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// withNotices republishes src's snapshot with these notices and guests.
func withNotices(src *fakeSource, guests []*fleet.Guest, ns []fleet.Notice) {
	src.set(guests)
	src.mu.Lock()
	snap := *src.snap
	snap.Notices = ns
	src.snap = &snap
	src.mu.Unlock()
}

// The dashboard shows a guest left frozen by a guestdeck that died: in the
// table (with the countdown to its promised thaw), in the detail pane, and
// the fleet's notices about thawing it (each attempt, the outcome) land in
// the event log, once each.
func TestOrphanShownAndThawLogged(t *testing.T) {
	m, src := newTestModel(3, 140, 40, Options{})
	gs := testGuests(3)
	orphan := *gs[1]
	orphan.State, orphan.Freeze = fleet.Frozen, agentclient.Frozen
	orphan.FrozenBy = &fleet.FreezeRecord{PID: 4242, Who: "run --hold", Since: testNow.Add(-10 * time.Minute), Until: testNow.Add(30 * time.Second), Orphan: true}
	gs[1] = &orphan
	withNotices(src, gs, nil)
	m, _ = send(t, m, changedMsg{})
	eq(t, "freeze column", freezeText(&orphan, testNow), "orphan 0:30")
	m = press(t, m, "down", "4") // vm-00001, filesystems tab
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, "left FROZEN by guestdeck pid 4242 (run --hold), which is no longer running") ||
		!strings.Contains(v, "its promised thaw is in 0:30, then this dashboard thaws it") {
		t.Fatalf("detail pane does not name the orphan:\n%s", v)
	}

	notes := []fleet.Notice{
		{Seq: 1, At: testNow, Guest: "vm-00001", Err: true, Text: "left frozen by guestdeck pid 4242 (run --hold), which is no longer running; ...: thawing it"},
		{Seq: 2, At: testNow, Guest: "vm-00001", Err: true, Text: "orphaned freeze: thaw attempt 1 failed: connect: no such socket; retrying in 250ms"},
	}
	withNotices(src, gs, notes)
	m, _ = send(t, m, changedMsg{})
	notes = append(notes, fleet.Notice{Seq: 3, At: testNow.Add(time.Second), Guest: "vm-00001",
		Text: "orphaned freeze: thawed 1 filesystem (guest-fsfreeze-status says thawed; attempt 2)"})
	withNotices(src, gs, notes)
	m, _ = send(t, m, changedMsg{})
	m = press(t, m, "e")
	v := ansi.Strip(m.View().Content)
	for _, want := range []string{"thawing it", "thaw attempt 1 failed", "orphaned freeze: thawed 1 filesystem"} {
		if strings.Count(v, want) != 1 {
			t.Errorf("event log shows %q %d times, want once:\n%s", want, strings.Count(v, want), v)
		}
	}
	// Newest first.
	if strings.Index(v, "thawed 1 filesystem") > strings.Index(v, "attempt 1 failed") {
		t.Errorf("event log order:\n%s", v)
	}
}
