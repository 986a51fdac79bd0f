package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// silentErr is what the fleet stores for a guest whose channel is up and
// whose agent never answers the sync (agentclient's words; the class is
// what present.ErrBrief reads).
const silentErr = "connect: agent unix:/run/qga/vm-00004.sock: guest-sync-delimited: channel up but the agent is silent: " +
	"no answer in time (no agent running, guest paused or booting, or another client holds the channel)"

// longErrModel is the test fleet with guest 4 silent, its error long.
func longErrModel(t *testing.T, w, h int) (Model, *fakeSource) {
	t.Helper()
	m, src := newTestModel(24, w, h, Options{})
	gs := testGuests(24)
	gs[4].Err = silentErr
	gs[4].Cause = fmt.Errorf("connect: %w", &agentclient.OpError{Addr: "unix:/run/qga/vm-00004.sock", Command: "guest-sync-delimited", Err: agentclient.ErrSilent})
	src.set(gs)
	m.refresh()
	return m, src
}

// The table's ERROR cell has the error's short form; the detail pane has
// the whole text, wrapped, at every size.
func TestLongErrorShortInTableWholeInDetail(t *testing.T) {
	for _, sz := range []struct{ w, h int }{{80, 24}, {100, 30}, {160, 45}} {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			m, _ := longErrModel(t, sz.w, sz.h)
			m = press(t, m, "down", "down", "down", "down")
			v := view(m)
			row := lineWith(v, "vm-00004")
			if sz.w >= 100 && !strings.HasSuffix(strings.TrimRight(row, " "), "agent silent") {
				t.Errorf("table row ends %q, want the short form", row)
			}
			if strings.Contains(row, "connect: agent") {
				t.Errorf("the long text is in the cell: %q", row)
			}
			// Every word of the error is on screen, in order, once.
			var words []string
			in := false
			for _, l := range strings.Split(v, "\n") {
				l = strings.TrimRight(l, " ")
				switch {
				case strings.HasPrefix(l, "Error "):
					in = true
					words = append(words, strings.Fields(strings.TrimPrefix(l, "Error"))...)
				case in && strings.HasPrefix(l, strings.Repeat(" ", 13)):
					words = append(words, strings.Fields(l)...)
				default:
					in = false
				}
			}
			if got := strings.Join(words, " "); got != silentErr {
				t.Errorf("detail pane's error:\n got %q\nwant %q\n%s", got, silentErr, v)
			}
			golden(t, fmt.Sprintf("detail_long_error_%dx%d", sz.w, sz.h), v)
		})
	}
}

func lineWith(v, s string) string {
	for _, l := range strings.Split(v, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// In the event log a line is cut at the screen's edge; enter on it opens
// the entry whole, wrapped, and esc goes back to the log where it was.
func TestEventLogEntryView(t *testing.T) {
	m, src := newTestModel(6, 80, 24, Options{})
	src.fail = map[string]string{"vm-00002": silentErr}
	m = press(t, m, "ctrl+a", "p", "e")
	if m.top().kind != layerEvents {
		t.Fatalf("event log not open: %v", kinds(m))
	}
	v := view(m)
	if line := lineWith(v, "✗ vm-00002"); !strings.HasSuffix(strings.TrimRight(line, " "), "…") {
		t.Errorf("the failed line is not cut at the edge: %q", line)
	}
	// Lines: head, vm-00000, vm-00001, vm-00002.
	m = press(t, m, "down", "down", "down")
	eq(t, "selected line", m.eventSel, 3)
	m = press(t, m, "enter")
	eq(t, "entry open", m.top().kind, layerEntry)
	v = view(m)
	if !strings.Contains(v, "Guest        vm-00002") || !strings.Contains(v, "Outcome      failed") {
		t.Errorf("entry view:\n%s", v)
	}
	var text []string
	for _, l := range strings.Split(v, "\n") {
		if strings.HasPrefix(l, "Error ") || (len(text) > 0 && strings.HasPrefix(l, strings.Repeat(" ", 13)) && strings.TrimSpace(l) != "") {
			text = append(text, strings.Fields(strings.TrimPrefix(l, "Error"))...)
		} else if len(text) > 0 {
			break
		}
	}
	if got := strings.Join(text, " "); got != silentErr {
		t.Errorf("entry's error:\n got %q\nwant %q\n%s", got, silentErr, v)
	}
	for i, l := range strings.Split(v, "\n") {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line %d is %d wide", i, w)
		}
	}
	golden(t, "log_entry_80x24", v)
	m = press(t, m, "esc")
	eq(t, "back in the log", m.top().kind, layerEvents)
	eq(t, "selection kept", m.eventSel, 3)
	// The head line opens the action's summary.
	m = press(t, m, "g", "enter")
	if v := view(m); !strings.Contains(v, "Outcome      5 ok, 1 failed, 0 skipped") {
		t.Errorf("head entry:\n%s", v)
	}
	m = press(t, m, "enter")
	eq(t, "enter goes back too", m.top().kind, layerEvents)
}

// An event's names line up, and a ping's line does not say its time twice
// (its result names the round trip).
func TestEventLogColumns(t *testing.T) {
	m, _ := newTestModel(3, 100, 24, Options{})
	ev := event{at: testNow, action: fleet.Action{Kind: fleet.ActPing}, results: []fleet.Result{
		{Guest: "a", OK: true, Result: "pong in 3.6ms", RTT: 3600 * time.Microsecond, Duration: 20 * time.Millisecond},
		{Guest: "longer-name", OK: true, Result: "pong in 1ms", RTT: time.Millisecond, Duration: 9 * time.Millisecond},
	}}
	m.addEvent(ev)
	ev = event{at: testNow, action: fleet.Action{Kind: fleet.ActFreeze}, results: []fleet.Result{
		{Guest: "a", OK: true, Result: "froze 1 filesystem", Duration: 20 * time.Millisecond},
		{Guest: "longer-name", Err: "boom", Duration: 1500 * time.Millisecond},
		{Guest: "b", Skipped: true, Err: "agent lacks guest-fsfreeze-freeze"},
	}}
	m.addEvent(ev)
	m = press(t, m, "e")
	v := view(m)
	for _, want := range []string{
		"  ✓ a              20ms  froze 1 filesystem",
		"  ✗ longer-name    1.5s  boom",
		"  - b                    skipped: agent lacks guest-fsfreeze-freeze",
		"  ✓ a            pong in 3.6ms",
		"  ✓ longer-name  pong in 1ms",
	} {
		if !strings.Contains(v, want+" ") {
			t.Errorf("event log lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "20ms  pong") || strings.Contains(v, "pong in 3.6ms  20ms") {
		t.Errorf("a ping's time said twice:\n%s", v)
	}
}

// enter does what the footer says: it opens the detail of the guest under
// the cursor over the table, and esc (or enter) goes back with the pane
// still there. i hides and shows the pane under the table.
func TestEnterOpensDetail(t *testing.T) {
	m, _ := newTestModel(24, 100, 20, Options{})
	v := view(m)
	if !strings.Contains(v, "enter detail pane") || !strings.Contains(v, "─ vm-00000") {
		t.Fatalf("at start: footer or pane missing:\n%s", v)
	}
	m = press(t, m, "down", "enter")
	eq(t, "detail open", m.top().kind, layerDetail)
	v = view(m)
	if strings.Contains(v, "NAME↑") || !strings.Contains(v, "─ vm-00001") {
		t.Errorf("the detail does not take the table's place:\n%s", v)
	}
	if !strings.Contains(v, "esc/enter back to the table") {
		t.Errorf("the help line does not say how to go back:\n%s", v)
	}
	m = press(t, m, "down")
	eq(t, "down scrolls the detail, not the table", m.cursorGuest().Name, "vm-00001")
	eq(t, "scrolled", m.detailScroll, 1)
	m = press(t, m, "tab")
	eq(t, "tab switches the tab", m.tab, tabInterfaces)
	m = press(t, m, "4")
	eq(t, "a digit picks a tab", m.tab, tabFilesystems)
	l := m.layout()
	m, _ = send(t, m, tea.MouseClickMsg{X: 0, Y: l.regionTop, Button: tea.MouseLeft})
	eq(t, "a click on the tab bar picks the tab", m.tab, tabOverview)
	m, _ = send(t, m, tea.MouseWheelMsg{X: 10, Y: l.regionTop + 5, Button: tea.MouseWheelDown})
	eq(t, "the wheel scrolls the detail", m.detailScroll, 3)
	m = press(t, m, "esc")
	eq(t, "esc goes back", m.top().kind, layerTable)
	eq(t, "the pane stays", m.detail, true)
	m = press(t, m, "enter", "enter")
	eq(t, "enter goes back too", m.top().kind, layerTable)
	m = press(t, m, "enter", "q")
	eq(t, "q goes back, it does not quit", m.top().kind, layerTable)

	m = press(t, m, "i")
	eq(t, "i hides the pane", m.detail, false)
	if v := view(m); strings.Contains(v, "─ vm-00001") {
		t.Errorf("pane still drawn:\n%s", v)
	}
	m = press(t, m, "i")
	eq(t, "i shows it", m.detail, true)

	m, _ = send(t, m, tea.WindowSizeMsg{Width: 100, Height: 60}) // the help's keys below its syntax, unscrolled
	m = press(t, m, "?")
	v = view(m)
	for _, want := range []string{"space  mark, move down", "enter         detail pane", "i             pane on/off"} {
		if !strings.Contains(v, want) {
			t.Errorf("help lacks %q:\n%s", want, v)
		}
	}
	m = press(t, m, "esc", "space")
	eq(t, "space marks and moves down", m.cursorGuest().Name, "vm-00002")
	eq(t, "marked", marked(m), []string{"vm-00001"})
}

// Result marks go: after resultMarkTTL, at esc (with the guest marks),
// and when the next action starts.
func TestResultMarksClear(t *testing.T) {
	now := testNow
	m, _ := newTestModel(5, 100, 30, Options{Now: func() time.Time { return now }})
	m = press(t, m, "space", "space", "p")
	eq(t, "✓ after the ping", m.rowStatus["vm-00000"], rowOK)
	if v := view(m); !strings.Contains(v, "●✓ vm-00000") {
		t.Errorf("no result mark:\n%s", v)
	}
	now = now.Add(resultMarkTTL - time.Second)
	m, _ = send(t, m, tickMsg(now))
	eq(t, "still there before the time is up", m.rowStatus["vm-00000"], rowOK)
	now = now.Add(time.Second)
	m, _ = send(t, m, tickMsg(now))
	eq(t, "gone when it is up", len(m.rowStatus), 0)
	if v := view(m); strings.Contains(v, "✓") {
		t.Errorf("a result mark is still drawn:\n%s", v)
	}
	eq(t, "the guest marks stay", len(marked(m)), 2)

	m = press(t, m, "p", "esc")
	eq(t, "esc drops the result marks", len(m.rowStatus), 0)
	eq(t, "with the guest marks", m.markCount(), 0)
	m = press(t, m, "p")
	eq(t, "ping marks the cursor's guest", m.rowStatus["vm-00002"], rowOK)
	m = press(t, m, "esc")
	eq(t, "no guest marks: esc drops the result marks", len(m.rowStatus), 0)

	m = press(t, m, "p")
	eq(t, "ping marks vm-00002 (cursor)", m.rowStatus["vm-00002"], rowOK)
	m = press(t, m, "up", "r")
	eq(t, "the next action replaces them", m.rowStatus["vm-00002"], rowStatus(0))
	eq(t, "with its own", m.rowStatus["vm-00001"], rowOK)
}

// A running action's marks (its progress) are not dropped by esc or time.
func TestResultMarksStayWhileRunning(t *testing.T) {
	now := testNow
	m, src := newTestModel(5, 100, 30, Options{Now: func() time.Time { return now }})
	release := src.holdRuns()
	next, cmd := m.Update(keyMsg(t, "p"))
	m = next.(Model)
	eq(t, "running", m.rowStatus["vm-00000"], rowRunning)
	m = press(t, m, "esc")
	now = now.Add(time.Hour)
	m, _ = send(t, m, tickMsg(now))
	eq(t, "still running", m.rowStatus["vm-00000"], rowRunning)
	release()
	m, _ = drain(t, m, cmd, 0)
	eq(t, "done", m.rowStatus["vm-00000"], rowOK)
}

// A guest without /etc/os-release reports only its kernel: the table and
// the detail pane name the kernel release, and the machine ("x86_64") is
// never where the OS's name goes.
func TestOSWithoutOSRelease(t *testing.T) {
	m, src := newTestModel(3, 160, 45, Options{})
	gs := testGuests(3)
	gs[1].OS = &agentclient.OSInfo{KernelRelease: "6.1.0-28-amd64", KernelVersion: "#1 SMP PREEMPT_DYNAMIC", Machine: "x86_64"}
	src.set(gs)
	m.refresh()
	m = press(t, m, "down")
	v := view(m)
	if row := lineWith(v, "vm-00001 "); !strings.Contains(row, "kernel 6.1.0-28-a") {
		t.Errorf("table row: %q", row)
	}
	if !strings.Contains(v, "\nOS           kernel 6.1.0-28-amd64  x86_64 ") {
		t.Errorf("detail OS line:\n%s", v)
	}
}

// The detail opened over the table (enter) on the silent guest: the whole
// region is the guest's, its error wrapped.
func TestDetailOpenGolden(t *testing.T) {
	m, _ := longErrModel(t, 100, 30)
	m = press(t, m, "down", "down", "down", "down", "enter")
	v := view(m)
	if n := len(strings.Split(strings.TrimSuffix(v, "\n"), "\n")); n != 30 {
		t.Errorf("view is %d lines, want 30", n)
	}
	golden(t, "detail_open_100x30", v)
}

// TestCapabilityNamesWhole: at 80 and 100 columns every command of the
// agent's list is shown whole, enabled or disabled (the list once cut
// "guest-get-memory-block-info (disabled)"), and a hostile name is escaped
// and bounded.
func TestCapabilityNamesWhole(t *testing.T) {
	g := &fleet.Guest{}
	for i, c := range agentclient.Commands() {
		g.Commands = append(g.Commands, agentclient.CommandInfo{Name: c.Name, Enabled: i%3 != 0})
	}
	evil := "guest-\x1b]0;owned\x07" + strings.Repeat("x", 500)
	g.Commands = append(g.Commands, agentclient.CommandInfo{Name: evil})
	for _, w := range []int{80, 100} {
		m, _ := newTestModel(1, w, 30, Options{})
		text := strings.Join(m.capabilityLines(g), "\n")
		for _, c := range agentclient.Commands() {
			if !strings.Contains(text, c.Name+" ") && !strings.HasSuffix(text, c.Name) {
				t.Errorf("%d columns: %s is cut or missing:\n%s", w, c.Name, text)
			}
		}
		for _, l := range m.capabilityLines(g) {
			if present.Width(l) > w {
				t.Errorf("%d columns: a line %d wide: %q", w, present.Width(l), l)
			}
		}
		if strings.Contains(text, "\x1b]0;") {
			t.Errorf("%d columns: the hostile name reached the screen raw", w)
		}
	}
}

// TestMarkCountSurvivesNarrow: at 80 columns, with guests frozen by us and
// the health figures on the counts line, the mark count is still there: it
// says what an action key would hit, and the line's end is what is cut.
func TestMarkCountSurvivesNarrow(t *testing.T) {
	m, _ := newTestModel(24, 80, 24, Options{})
	m = press(t, m, "space", "space")
	if c := m.renderCounts(); !strings.Contains(c, "2 marked") {
		t.Errorf("counts line at 80 columns: %q", c)
	}
}

// TestColumnsSaysWhatHasNoRoom: columns chosen that the width leaves out
// are named in the status line, not dropped without a word.
func TestColumnsSaysWhatHasNoRoom(t *testing.T) {
	m, _ := newTestModel(6, 80, 24, Options{})
	m = enterLine(t, m, "columns name,state,addresses,os,host,agent,vcpus,skew,rtt,error")
	if !strings.Contains(m.status, "no room at 80 columns for") || !strings.Contains(m.status, "error") {
		t.Errorf("status %q", m.status)
	}
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 24})
	m = enterLine(t, m, "columns name,state,error")
	if strings.Contains(m.status, "no room") {
		t.Errorf("status %q", m.status)
	}
}
