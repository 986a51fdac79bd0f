package tui

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// keyMsg builds the key press a terminal sends for s ("space", "shift+down", "F").
func keyMsg(t testing.TB, s string) tea.KeyPressMsg {
	t.Helper()
	var k tea.KeyPressMsg
	base := s
	if i := strings.LastIndex(s, "+"); i > 0 && i < len(s)-1 {
		mods, b := s[:i], s[i+1:]
		base = b
		for _, mod := range strings.Split(mods, "+") {
			switch mod {
			case "ctrl":
				k.Mod |= tea.ModCtrl
			case "shift":
				k.Mod |= tea.ModShift
			case "alt":
				k.Mod |= tea.ModAlt
			}
		}
	}
	switch base {
	case "space":
		k.Code, k.Text = tea.KeySpace, " "
	case "enter":
		k.Code = tea.KeyEnter
	case "esc":
		k.Code = tea.KeyEscape
	case "tab":
		k.Code = tea.KeyTab
	case "backspace":
		k.Code = tea.KeyBackspace
	case "up":
		k.Code = tea.KeyUp
	case "down":
		k.Code = tea.KeyDown
	case "pgdown":
		k.Code = tea.KeyPgDown
	default:
		r, n := utf8.DecodeRuneInString(base)
		if n != len(base) {
			t.Fatalf("keyMsg: cannot spell %q", s)
		}
		k.Code = r
		if k.Mod == 0 {
			k.Text = base
		}
	}
	if k.String() != s {
		t.Fatalf("keyMsg(%q).String() = %q", s, k.String())
	}
	return k
}

// send feeds msg to m and runs the resulting commands to completion (except
// timers), feeding their messages back. It reports whether tea.Quit came out.
func send(t testing.TB, m Model, msg tea.Msg) (Model, bool) {
	t.Helper()
	next, cmd := m.Update(msg)
	m = next.(Model)
	return drain(t, m, cmd, 0)
}

func drain(t testing.TB, m Model, cmd tea.Cmd, depth int) (Model, bool) {
	t.Helper()
	if cmd == nil || depth > 1000 {
		return m, false
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(50 * time.Millisecond):
		return m, false // a timer (tick, cursor blink): not part of the exchange under test
	}
	switch msg := msg.(type) {
	case nil:
		return m, false
	case tea.QuitMsg:
		return m, true
	case tea.BatchMsg:
		quit := false
		for _, c := range msg {
			var q bool
			m, q = drain(t, m, c, depth+1)
			quit = quit || q
		}
		return m, quit
	case spinner.TickMsg, tickMsg:
		return m, false
	}
	next, c := m.Update(msg)
	return drain(t, next.(Model), c, depth+1)
}

func press(t testing.TB, m Model, keys ...string) Model {
	t.Helper()
	for _, k := range keys {
		m, _ = send(t, m, keyMsg(t, k))
	}
	return m
}

func typeText(t testing.TB, m Model, s string) Model {
	t.Helper()
	for _, r := range s {
		k := tea.KeyPressMsg{Code: r, Text: string(r)}
		if r == ' ' {
			k.Code = tea.KeySpace
		}
		m, _ = send(t, m, k)
	}
	return m
}

func marked(m Model) []string {
	var out []string
	for _, g := range m.targets() {
		out = append(out, g.Name)
	}
	if m.markCount() == 0 {
		return nil
	}
	return out
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !equalish(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func equalish(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok && bok {
		return strings.Join(as, ",") == strings.Join(bs, ",")
	}
	return a == b
}

func TestMarking(t *testing.T) {
	m, src := newTestModel(20, 120, 30, Options{})
	m = press(t, m, "space")
	eq(t, "after space", marked(m), []string{"vm-00000"})
	eq(t, "cursor after space", m.cursorGuest().Name, "vm-00001")
	m = press(t, m, "shift+down", "shift+down")
	eq(t, "after shift+down x2", marked(m), []string{"vm-00000", "vm-00001", "vm-00002", "vm-00003"})
	m = press(t, m, "esc")
	eq(t, "after esc", marked(m), []string(nil))

	// Visual range: v, move, v commits.
	m = press(t, m, "v", "down", "down")
	eq(t, "visual in progress", marked(m), []string{"vm-00003", "vm-00004", "vm-00005"})
	// A poll in the middle of a visual range keeps it.
	src.set(testGuests(20))
	m, _ = send(t, m, changedMsg{})
	eq(t, "visual survives a snapshot", marked(m), []string{"vm-00003", "vm-00004", "vm-00005"})
	eq(t, "still visual", m.visual, true)
	m = press(t, m, "v", "down")
	eq(t, "visual committed", marked(m), []string{"vm-00003", "vm-00004", "vm-00005"})
	m = press(t, m, "space") // toggles vm-00006 on
	eq(t, "plus space", len(marked(m)), 4)
	m = press(t, m, "up", "space") // and off again
	eq(t, "space toggles off", len(marked(m)), 3)

	// ctrl+a marks everything the filter shows.
	m = press(t, m, "esc", "/")
	m = typeText(t, m, "state:frozen")
	m = press(t, m, "enter", "ctrl+a")
	eq(t, "ctrl+a on frozen", marked(m), []string{"vm-00003", "vm-00010", "vm-00017"})
	// esc clears marks first, then the filter.
	m = press(t, m, "esc")
	eq(t, "esc clears marks", m.markCount(), 0)
	eq(t, "filter kept", m.tbl.filter, "state:frozen")
	m = press(t, m, "esc")
	eq(t, "second esc clears filter", m.tbl.filter, "")
	eq(t, "rows back", len(m.tbl.rows), 20)
}

func TestTargetsCursorWhenNothingMarked(t *testing.T) {
	m, _ := newTestModel(5, 120, 30, Options{})
	m = press(t, m, "down", "down")
	ts := m.targets()
	if len(ts) != 1 || ts[0].Name != "vm-00002" {
		t.Fatalf("targets = %v", ts)
	}
}

func TestFilter(t *testing.T) {
	m, _ := newTestModel(50, 120, 30, Options{})
	m = press(t, m, "/")
	if !m.isOpen(layerFilter) {
		t.Fatal("/ did not open the filter")
	}
	m = typeText(t, m, "vm-0001")
	eq(t, "live filter rows", len(m.tbl.rows), 10)
	m = press(t, m, "enter")
	eq(t, "filter closed", m.isOpen(layerFilter), false)
	eq(t, "rows kept", len(m.tbl.rows), 10)

	for _, tt := range []struct {
		filter string
		want   int
	}{
		{"tag:db", 17}, {"host:hv2", 17}, {"state:unreachable", 7}, {"vm-0000?", 10}, {"tag:web state:ready", 7}, {"nomatch", 0},
	} {
		m = press(t, m, "/")
		for range 20 {
			m = press(t, m, "backspace")
		}
		m = typeText(t, m, tt.filter)
		m = press(t, m, "enter")
		eq(t, "rows for "+tt.filter, len(m.tbl.rows), tt.want)
	}
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, `no guest matches "nomatch"`) {
		t.Errorf("empty filter result not explained:\n%s", v)
	}
	m = press(t, m, "/", "esc")
	eq(t, "esc in the filter clears it", len(m.tbl.rows), 50)
}

func TestSort(t *testing.T) {
	m, _ := newTestModel(12, 120, 30, Options{})
	m = press(t, m, "down", "down", "down") // vm-00003
	m = press(t, m, "s")                    // host
	eq(t, "sort column", m.tbl.sortCol, colHost)
	eq(t, "cursor follows the guest", m.cursorGuest().Name, "vm-00003")
	first := []string{}
	for _, g := range m.tbl.rows[:4] {
		first = append(first, g.Name)
	}
	eq(t, "host order", first, []string{"vm-00000", "vm-00003", "vm-00006", "vm-00009"})
	m = press(t, m, "S")
	eq(t, "reversed first", m.tbl.rows[0].Host, "hv3")
	eq(t, "reversed ties keep name order", m.tbl.rows[0].Name, "vm-00002")

	m = press(t, m, "s")                                         // state
	eq(t, "state first", m.tbl.rows[0].State, fleet.Unreachable) // reversed: last in fleet.States order first
	m = press(t, m, "S")
	eq(t, "state ascending", m.tbl.rows[0].State, fleet.Ready)

	for range numCols - 2 {
		m = press(t, m, "s")
	}
	eq(t, "wraps to name", m.tbl.sortCol, colName)
	eq(t, "name ascending", m.tbl.rows[0].Name, "vm-00000")
}

func TestSnapshotUpdates(t *testing.T) {
	m, src := newTestModel(10, 120, 30, Options{})
	m = press(t, m, "down", "down", "down", "down") // vm-00004
	gs := testGuests(10)
	src.set(append(gs[:2], gs[3:]...)) // vm-00002 gone
	next, cmd := m.Update(changedMsg{})
	m = next.(Model)
	if cmd == nil {
		t.Fatal("changedMsg did not schedule the next wait on Changed")
	}
	eq(t, "rows", len(m.tbl.rows), 9)
	eq(t, "cursor stays on its guest", m.cursorGuest().Name, "vm-00004")

	// Same snapshot again: the index is not rebuilt.
	rows := m.tbl.rows
	m.refresh()
	if &rows[0] != &m.tbl.rows[0] {
		t.Error("index rebuilt for an unchanged snapshot")
	}
}

// After a pull the wait on Changed listens again only after the refresh
// gap, in the same Cmd (no message, so no frame, in between), and then
// returns at the next signal.
func TestChangedWaitsRefreshGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, src := newTestModel(10, 120, 30, Options{})
		<-src.changed // what the first wait took
		src.set(testGuests(9))
		_, cmd := m.Update(changedMsg{})
		if cmd == nil {
			t.Fatal("changedMsg did not schedule the next wait on Changed")
		}
		got := make(chan tea.Msg, 1)
		go func() { got <- cmd() }()
		time.Sleep(settledGap - time.Nanosecond) // every row on screen polled
		synctest.Wait()
		select {
		case msg := <-got:
			t.Fatalf("the wait returned %T before the refresh gap", msg)
		default:
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		wantChanged(t, got, "the wait did not return at the refresh gap with a change pending")
	})
}

// wantChanged fails unless the wait behind got has returned changedMsg
// (after synctest.Wait: every goroutine of the bubble blocked or done).
func wantChanged(t *testing.T, got <-chan tea.Msg, notYet string) {
	t.Helper()
	select {
	case msg := <-got:
		if _, ok := msg.(changedMsg); !ok {
			t.Fatalf("the wait returned %T, want changedMsg", msg)
		}
	default:
		t.Fatal(notYet)
	}
}

// TestPullGapIdle: nobody at the keyboard for idleAfter, the table is
// pulled at the idle pace; a key, a paste or a click, or an action
// running, brings the settled pace back.
func TestPullGapIdle(t *testing.T) {
	now := testNow
	m, src := newTestModel(100, 120, 30, Options{Now: func() time.Time { return now }})
	gs := testGuests(100)
	for _, g := range gs {
		g.State, g.LastLive = fleet.Ready, testNow
	}
	src.set(gs)
	m.refresh()
	eq(t, "gap just opened", m.pullGap(), settledGap)
	now = now.Add(idleAfter - time.Millisecond)
	eq(t, "gap just before idleAfter", m.pullGap(), settledGap)
	now = now.Add(time.Millisecond)
	eq(t, "gap idle", m.pullGap(), idleGap)
	m = press(t, m, "j")
	eq(t, "gap after a key", m.pullGap(), settledGap)
	now = now.Add(idleAfter)
	eq(t, "gap idle again", m.pullGap(), idleGap)
	next, _ := m.Update(tea.PasteMsg{Content: "x"})
	m = next.(Model)
	eq(t, "gap after a paste", m.pullGap(), settledGap)
	now = now.Add(idleAfter)
	next, _ = m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	m = next.(Model)
	eq(t, "gap after the mouse", m.pullGap(), settledGap)
	now = now.Add(idleAfter)
	m.run = &runState{}
	eq(t, "gap with an action running", m.pullGap(), settledGap)
	m.run = nil
	// A costly pull keeps its own, longer gap.
	m.pullCost = 50 * time.Millisecond
	eq(t, "gap idle at a high pull cost", m.pullGap(), maxRefreshGap)
	// A row on screen waiting for its first poll is watched, idle or not.
	gs[1].State, gs[1].LastLive = fleet.Connecting, time.Time{}
	src.set(gs)
	m.refresh()
	eq(t, "gap idle with a row waiting", m.pullGap(), refreshGap)
}

// TestChangedWaitWokenByInput: the wait before a pull at the idle pace
// ends when the operator comes back (noteInput), not a second later.
func TestChangedWaitWokenByInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, src := newTestModel(10, 120, 30, Options{})
		<-src.changed // what the first wait took
		src.set(testGuests(9))
		got := make(chan tea.Msg, 1)
		cmd := waitChanged(src.Changed(), idleGap, m.wake)
		go func() { got <- cmd() }()
		time.Sleep(idleGap / 2)
		synctest.Wait()
		select {
		case msg := <-got:
			t.Fatalf("the wait returned %T before the gap or a key", msg)
		default:
		}
		m.noteInput()
		synctest.Wait()
		wantChanged(t, got, "a key did not end the wait")
	})
}

func TestConfirmFlow(t *testing.T) {
	m, src := newTestModel(12, 120, 30, Options{})
	m = press(t, m, "space", "space", "space") // vm-00000 (no fsfreeze), 01, 02
	m = press(t, m, "F")
	if m.openConfirmation() == nil {
		t.Fatal("freeze did not ask for confirmation")
	}
	eq(t, "guests to run", len(m.openConfirmation().run), 2)
	eq(t, "skipped", len(m.openConfirmation().skipped), 1)
	eq(t, "skip reason names the command", strings.Contains(m.openConfirmation().skipped[0].Err, "guest-fsfreeze-freeze"), true)
	v := ansi.Strip(m.View().Content)
	for _, want := range []string{"Freeze 2 guests?", "vm-00001, vm-00002", "1 skipped", "y/enter confirms"} {
		if !strings.Contains(v, want) {
			t.Errorf("confirmation lacks %q:\n%s", want, v)
		}
	}
	m = press(t, m, "n")
	eq(t, "cancelled", m.openConfirmation() == nil, true)
	eq(t, "nothing ran", len(src.runs), 0)

	m = press(t, m, "F", "y")
	eq(t, "runs", len(src.runs), 1)
	eq(t, "ran on", src.runs[0].names, []string{"vm-00001", "vm-00002"})
	eq(t, "action", src.runs[0].action.Kind, fleet.ActFreeze)
	eq(t, "run finished", m.run == nil, true)
	eq(t, "row ok", m.rowStatus["vm-00001"], rowOK)
	eq(t, "row skipped", m.rowStatus["vm-00000"], rowSkipped)
	eq(t, "event logged", len(m.events), 1)
	eq(t, "event has skipped too", len(m.events[0].results), 3)
	if !strings.Contains(m.status, "2 ok, 0 failed, 1 skipped") {
		t.Errorf("status = %q", m.status)
	}
}

func TestShutdownNeedsCount(t *testing.T) {
	m, src := newTestModel(12, 120, 30, Options{})
	m = press(t, m, "space", "space", "space", "X")
	if m.openConfirmation() == nil || !m.openConfirmation().needType {
		t.Fatal("shutting down 3 guests must require typing the count")
	}
	m = press(t, m, "y", "enter")
	eq(t, "y and bare enter do not confirm", len(src.runs), 0)
	if m.openConfirmation() == nil {
		t.Fatal("dialog closed without the count")
	}
	m = typeText(t, m, "4")
	m = press(t, m, "enter")
	eq(t, "wrong count refused", len(src.runs), 0)
	m = press(t, m, "backspace")
	m = typeText(t, m, "3")
	m = press(t, m, "enter")
	eq(t, "runs", len(src.runs), 1)
	eq(t, "mode", src.runs[0].action.Mode, "powerdown")

	// One guest: y is enough.
	m, src = newTestModel(12, 120, 30, Options{})
	m = press(t, m, "X")
	if m.openConfirmation() == nil || m.openConfirmation().needType {
		t.Fatal("one guest: plain confirmation expected")
	}
	m = press(t, m, "y")
	eq(t, "single shutdown ran", len(src.runs), 1)
}

func TestReadonly(t *testing.T) {
	m, src := newTestModel(12, 120, 30, Options{Readonly: true})
	for _, k := range []string{"F", "T", "X", "Z", "C"} {
		m = press(t, m, k)
		if m.openConfirmation() != nil {
			t.Fatalf("%s opened a confirmation in read-only mode", k)
		}
	}
	m = press(t, m, ":")
	m = typeText(t, m, "freeze")
	m = press(t, m, "enter")
	eq(t, "nothing ran", len(src.runs), 0)
	if !strings.Contains(m.status, "read-only: freeze refused") {
		t.Errorf("status = %q", m.status)
	}
	// Reading is allowed.
	m = press(t, m, "p")
	eq(t, "ping ran", len(src.runs), 1)
	// Help hides mutating keys.
	m = press(t, m, "?")
	v := ansi.Strip(m.View().Content)
	keysHelp := v[:strings.Index(v, "Filter")]
	if strings.Contains(keysHelp, "freeze") || strings.Contains(keysHelp, "shutdown") || strings.Contains(keysHelp, "thaw") {
		t.Errorf("read-only help shows mutating keys:\n%s", v)
	}
	if !strings.Contains(v, "READ-ONLY") {
		t.Error("title does not say READ-ONLY")
	}
	for _, c := range m.completions() {
		if strings.HasPrefix(c, "freeze") || strings.HasPrefix(c, "shutdown") {
			t.Errorf("read-only completion offers %q", c)
		}
	}
}

func TestSkippedGreyed(t *testing.T) {
	// vm-00007 has guest-set-time disabled; vm-00003 is frozen (its agent
	// refuses guest-set-time until thawed).
	m, src := newTestModel(10, 120, 30, Options{})
	m = press(t, m, "ctrl+a", "C")
	eq(t, "settime ran", len(src.runs), 1)
	eq(t, "on all but vm-00000, vm-00003 and vm-00007", len(src.runs[0].names), 7)
	eq(t, "vm-00007 skipped", m.rowStatus["vm-00007"], rowSkipped)
	eq(t, "vm-00003 skipped", m.rowStatus["vm-00003"], rowSkipped)
	ok, failed, skipped := tally(m.events[0].results)
	eq(t, "tally", [3]int{ok, failed, skipped}, [3]int{7, 0, 3})

	// The cursor guest alone, disabled: nothing is sent.
	m, src = newTestModel(10, 120, 30, Options{})
	m = press(t, m, "G", "up", "up") // vm-00007
	m = press(t, m, "C")
	eq(t, "nothing sent", len(src.runs), 0)
	if !strings.Contains(m.status, "guest-set-time") {
		t.Errorf("status does not say why: %q", m.status)
	}

	// While a confirmation is open, guests that cannot run it render greyed (faint).
	m, _ = newTestModel(12, 120, 30, Options{})
	m = press(t, m, "ctrl+a", "F")
	raw := m.View().Content
	for _, line := range strings.Split(raw, "\n") {
		plain := ansi.Strip(line)
		if strings.Contains(plain, "vm-00000 ") || strings.Contains(plain, "vm-00011 ") {
			if !strings.Contains(line, "\x1b[2") && !strings.Contains(line, ";2m") {
				t.Errorf("guest without fsfreeze not greyed: %q", line)
			}
		}
		if strings.Contains(plain, "vm-00001 ") && strings.Contains(line, "\x1b[2m") {
			t.Errorf("capable guest greyed: %q", line)
		}
	}
}

func TestCommandLine(t *testing.T) {
	m, src := newTestModel(5, 120, 30, Options{})
	m = press(t, m, ":")
	m = typeText(t, m, "fr")
	m = press(t, m, "tab")
	eq(t, "tab completes", m.cmdInput.Value(), "freeze")
	m = press(t, m, "esc")
	eq(t, "esc closes", m.isOpen(layerCommand), false)

	m = press(t, m, ":")
	m = typeText(t, m, "shutdown reboot")
	m = press(t, m, "enter")
	if m.openConfirmation() == nil || m.openConfirmation().action.Mode != "reboot" {
		t.Fatalf("shutdown reboot: confirm = %+v", m.openConfirmation())
	}
	m = press(t, m, "esc")

	m = press(t, m, ":")
	m = typeText(t, m, "cat /etc/os-release")
	m = press(t, m, "enter")
	eq(t, "cat runs without confirmation", len(src.runs), 1)
	eq(t, "as read", src.runs[0].action.Kind, fleet.ActRead)
	eq(t, "path", src.runs[0].action.Path, "/etc/os-release")
	eq(t, "what was read is shown", m.isOpen(layerEvents), true)
	m = press(t, m, "esc")

	m = press(t, m, ":")
	m = typeText(t, m, "vcpus offline 1")
	m = press(t, m, "enter")
	if m.openConfirmation() == nil {
		t.Fatal("vcpus offline not confirmed")
	}
	m = press(t, m, "esc")

	m = press(t, m, ":")
	m = typeText(t, m, "launch missiles")
	m = press(t, m, "enter")
	eq(t, "error shown", m.statusErr, true)
	eq(t, "no run", len(src.runs), 1)
}

func TestQuit(t *testing.T) {
	m, _ := newTestModel(5, 120, 30, Options{})
	if _, quit := send(t, m, keyMsg(t, "q")); !quit {
		t.Fatal("q did not quit with nothing frozen")
	}

	m, src := newTestModel(5, 120, 30, Options{})
	src.frozen = []string{"vm-00003"}
	m, quit := send(t, m, keyMsg(t, "q"))
	if quit || !m.isOpen(layerQuit) {
		t.Fatal("q with frozen guests must ask")
	}
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, "1 guest frozen by guestdeck") {
		t.Errorf("quit dialog:\n%s", v)
	}
	m = press(t, m, "esc")
	eq(t, "esc cancels", m.isOpen(layerQuit), false)
	m = press(t, m, "q", "n")
	eq(t, "n cancels", m.isOpen(layerQuit), false)

	// Every answer, from a fresh dialog. Asking to quit again (q, ctrl+c)
	// thaws and quits, like y and enter; only Q and ! leave guests frozen.
	for _, tt := range []struct {
		open, answer string
		thawed       int
	}{
		{"q", "y", 1}, {"q", "enter", 1}, {"q", "q", 1}, {"q", "ctrl+c", 1},
		{"ctrl+c", "ctrl+c", 1}, {"ctrl+c", "q", 1},
		{"q", "Q", 0}, {"q", "!", 0},
	} {
		m, src := newTestModel(5, 120, 30, Options{})
		src.frozen = []string{"vm-00003"}
		m = press(t, m, tt.open)
		if !m.isOpen(layerQuit) {
			t.Fatalf("%s did not open the quit dialog", tt.open)
		}
		if _, quit := send(t, m, keyMsg(t, tt.answer)); !quit {
			t.Errorf("%s then %s did not quit", tt.open, tt.answer)
		}
		eq(t, tt.open+" then "+tt.answer+": thawed", src.thawed, tt.thawed)
	}
}

func TestKeyRebinding(t *testing.T) {
	// Names config's [keys] accepts.
	for _, n := range []string{"up", "down", "page_up", "page_down", "top", "bottom", "open", "back", "mark",
		"mark_range", "mark_all", "clear", "filter", "command", "help", "quit", "sort", "detail_next_tab",
		"detail_prev_tab", "freeze", "thaw", "shutdown", "suspend", "settime", "files", "refresh"} {
		if err := CheckKeys(map[string][]string{n: {"ctrl+o"}}); err != nil {
			t.Errorf("config action %q: %v", n, err)
		}
	}
	if err := CheckKeys(map[string][]string{"launch": {"x"}}); err == nil || !strings.Contains(err.Error(), "launch") {
		t.Errorf("unknown action: %v", err)
	}
	if err := CheckKeys(map[string][]string{"up": {}}); err == nil {
		t.Error("empty key list accepted")
	}

	// A clash is refused, naming both actions: between two rebound actions,
	// and between a rebound action and another's built-in key.
	for _, tt := range []struct {
		keys map[string][]string
		want string
	}{
		{map[string][]string{"ping": {"x"}, "thaw": {"t", "x"}}, `keys: "x" is bound to both ping and thaw; give each action its own key`},
		{map[string][]string{"ping": {"F"}}, `keys: ping = "F" takes the key of freeze; bind freeze to another key too`},
		{map[string][]string{"freeze": {"ctrl+f"}}, `keys: freeze = "ctrl+f" takes the key of page_down; bind page_down to another key too`},
	} {
		err := CheckKeys(tt.keys)
		if err == nil || err.Error() != tt.want {
			t.Errorf("CheckKeys(%v) = %v, want %s", tt.keys, err, tt.want)
		}
	}
	if err := CheckKeys(map[string][]string{"back": {"esc", "x"}, "clear": {"esc"}}); err != nil {
		t.Errorf("clear and back share esc by default, rebinding both to it: %v", err)
	}

	m, src := newTestModel(5, 120, 30, Options{Keys: map[string][]string{"freeze": {"ctrl+f"}, "page_down": {"pgdown"}, "down": {"n"}}})
	m = press(t, m, "n")
	eq(t, "rebound down", m.cursorGuest().Name, "vm-00001")
	m = press(t, m, "F")
	eq(t, "old freeze key unbound", m.openConfirmation() == nil, true)
	m = press(t, m, "ctrl+f", "y")
	eq(t, "new freeze key", len(src.runs), 1)

	m, _ = newTestModel(5, 120, 30, Options{Keys: map[string][]string{"bogus": {"x"}}})
	if !m.statusErr || !strings.Contains(m.status, "bogus") {
		t.Errorf("bad keys not reported: %q", m.status)
	}
}

func TestMouse(t *testing.T) {
	m, _ := newTestModel(30, 120, 30, Options{})
	l := m.layout()
	m, _ = send(t, m, tea.MouseClickMsg{X: 10, Y: l.tableTop + 4, Button: tea.MouseLeft})
	eq(t, "click selects row", m.cursorGuest().Name, "vm-00004")
	m, _ = send(t, m, tea.MouseWheelMsg{X: 10, Y: l.tableTop + 1, Button: tea.MouseWheelDown})
	eq(t, "wheel moves", m.cursorGuest().Name, "vm-00007")
	labels := m.tabLabels()                                          // as drawn: compact when the full ones leave no room for the name
	x := present.Width(labels[0]) + 1 + present.Width(labels[1]) + 1 // the first cell of tab 3
	m, _ = send(t, m, tea.MouseClickMsg{X: x, Y: l.detailTop, Button: tea.MouseLeft})
	eq(t, "click selects tab", m.tab, tabVCPUs)
	m, _ = send(t, m, tea.MouseClickMsg{X: prefixWidth + 1, Y: l.tableTop - 1, Button: tea.MouseLeft})
	eq(t, "click on NAME header reverses", m.tbl.sortDesc, true)
}

func TestTabs(t *testing.T) {
	m, _ := newTestModel(5, 120, 30, Options{})
	m = press(t, m, "tab", "tab")
	eq(t, "tab", m.tab, tabVCPUs)
	m = press(t, m, "shift+tab", "shift+tab", "shift+tab")
	eq(t, "wraps back", m.tab, tabRoutes)
	m = press(t, m, "4")
	eq(t, "digit", m.tab, tabFilesystems)
}

func TestActionProgress(t *testing.T) {
	m, _ := newTestModel(5, 120, 30, Options{})
	// Drive the messages by hand, as a slow fleet would deliver them.
	m.run = &runState{id: 7, action: fleet.Action{Kind: fleet.ActPing}, total: 2}
	m.rowStatus = map[string]rowStatus{"vm-00000": rowRunning, "vm-00001": rowRunning}
	m, _ = send(t, m, actionMsg{id: 7, res: fleet.Result{Guest: "vm-00000", OK: true}})
	eq(t, "done", m.run.done, 1)
	v := ansi.Strip(m.View().Content)
	if !strings.Contains(v, "ping 1/2") {
		t.Errorf("no progress line:\n%s", v)
	}
	m, _ = send(t, m, actionMsg{id: 6, res: fleet.Result{Guest: "vm-00001", OK: true}})
	eq(t, "stale run ignored", m.run.done, 1)
	m, _ = send(t, m, actionDoneMsg{id: 7, results: []fleet.Result{{Guest: "vm-00000", OK: true}, {Guest: "vm-00001", Err: "boom"}}})
	eq(t, "finished", m.run == nil, true)
	eq(t, "failed row", m.rowStatus["vm-00001"], rowFailed)
	eq(t, "status is an error", m.statusErr, true)
	m = press(t, m, "e")
	v = ansi.Strip(m.View().Content)
	if !strings.Contains(v, "✗ vm-00001  boom") {
		t.Errorf("event log:\n%s", v)
	}
}

// fakePane is a files pane that closes on q.
type fakePane struct {
	guest string
	keys  []string
	done  bool
	w, h  int
}

func (p *fakePane) Init() tea.Cmd { return nil }
func (p *fakePane) Update(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		p.keys = append(p.keys, k.String())
		p.done = k.String() == "q"
	}
	return nil
}
func (p *fakePane) View() string     { return "FILES OF " + p.guest }
func (p *fakePane) SetSize(w, h int) { p.w, p.h = w, h }
func (p *fakePane) Done() bool       { return p.done }

func TestFilesHook(t *testing.T) {
	var pane *fakePane
	m, _ := newTestModel(5, 120, 30, Options{Files: func(g string) (FilesPane, error) {
		pane = &fakePane{guest: g}
		return pane, nil
	}})
	m = press(t, m, "down", "f")
	if pane == nil || pane.guest != "vm-00001" {
		t.Fatalf("files opened for %+v", pane)
	}
	if !strings.Contains(m.View().Content, "FILES OF vm-00001") {
		t.Error("pane not shown")
	}
	m = press(t, m, "j", "q")
	eq(t, "keys forwarded", pane.keys, []string{"j", "q"})
	eq(t, "closed", m.filesPane() == nil, true)
	eq(t, "cursor unchanged", m.cursorGuest().Name, "vm-00001")

	m, _ = newTestModel(5, 120, 30, Options{})
	m = press(t, m, "f")
	eq(t, "no hook: message", m.statusErr, true)
}

// golden compares got with testdata/name.golden (-update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from %s (go test -update rewrites):\n%s", name, path, got)
	}
}

func view(m Model) string { return ansi.Strip(m.View().Content) + "\n" }

func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		w, h  int
		opts  Options
		setup func(t *testing.T, m Model) Model
	}{
		{name: "table", w: 120, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "space", "space", "i") }},
		{name: "table_wide_detail", w: 180, h: 36, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "down", "down") }},
		{name: "narrow", w: 60, h: 15},
		{name: "tab_overview", w: 120, h: 40},
		{name: "tab_interfaces", w: 120, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "2") }},
		{name: "tab_vcpus", w: 120, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "3") }},
		{name: "tab_filesystems", w: 120, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "down", "down", "4") }},
		{name: "tab_log", w: 120, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "5") }},
		{name: "confirm", w: 100, h: 30, opts: Options{FreezeTimeout: 5 * time.Minute}, setup: func(t *testing.T, m Model) Model { return press(t, m, "ctrl+a", "F") }},
		{name: "confirm_shutdown", w: 100, h: 30, setup: func(t *testing.T, m Model) Model {
			m = press(t, m, "space", "space", "X")
			return typeText(t, m, "2")
		}},
		{name: "help", w: 120, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "?") }},
		{name: "too_small", w: 50, h: 12},
		{name: "banner", w: 120, h: 30, opts: Options{Banner: "/home/me/.config/guestdeck/fleet.toml"}},
		{name: "events", w: 100, h: 24, setup: func(t *testing.T, m Model) Model {
			m = press(t, m, "ctrl+a", "C", ":")
			m = typeText(t, m, "cat /etc/hostname")
			return press(t, m, "esc", "esc", "p", "e")
		}},
		{name: "command_line", w: 100, h: 24, setup: func(t *testing.T, m Model) Model {
			m = press(t, m, ":")
			return typeText(t, m, "s")
		}},
		{name: "quit_frozen", w: 100, h: 24, setup: func(t *testing.T, m Model) Model {
			m.src.(*fakeSource).frozen = []string{"vm-00003", "vm-00010"}
			return press(t, m, "q")
		}},
		// The metrics tabs and the pulse view (metrics.go, pulse.go) at both sizes.
		{name: "tab_cpu_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "6") }},
		{name: "tab_cpu_160x45", w: 160, h: 45, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "6") }},
		{name: "tab_cpu_absent_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model {
			return press(t, m, "5", "down", "6") // a count: five rows down (nav.go)
		}},
		{name: "tab_disk_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "G", "7") }},
		{name: "tab_disk_160x45", w: 160, h: 45, setup: func(t *testing.T, m Model) Model { return press(t, m, "G", "7") }},
		{name: "tab_net_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "8") }},
		{name: "tab_net_160x45", w: 160, h: 45, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "8") }},
		{name: "tab_latency_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "9") }},
		{name: "tab_latency_160x45", w: 160, h: 45, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "9") }},
		{name: "tab_disks_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "9", "tab") }},
		{name: "tab_disks_160x45", w: 160, h: 45, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "9", "tab") }},
		{name: "tab_disks_absent_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "9", "tab") }},
		{name: "tab_routes_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "shift+tab") }},
		{name: "tab_routes_160x45", w: 160, h: 45, setup: func(t *testing.T, m Model) Model { return press(t, m, "down", "shift+tab") }},
		{name: "sort_cpu_held_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model {
			m = press(t, m, ":")
			m = typeText(t, m, "sort cpu")
			return press(t, m, "enter", "o")
		}},
		{name: "pulse_100x30", w: 100, h: 30, setup: func(t *testing.T, m Model) Model { return press(t, m, "P", "down") }},
		{name: "pulse_160x45", w: 160, h: 45, setup: func(t *testing.T, m Model) Model { return press(t, m, "P", "tab") }},
		{name: "pulse_60x15", w: 60, h: 15, setup: func(t *testing.T, m Model) Model { return press(t, m, "P") }},
		// At the smallest size the dialogs wrap inside their border instead of losing its right side.
		{name: "quit_frozen_narrow", w: 60, h: 15, setup: func(t *testing.T, m Model) Model {
			m.src.(*fakeSource).frozen = []string{"vm-00003", "vm-00010"}
			return press(t, m, "q")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newTestModel(24, tt.w, tt.h, tt.opts)
			if tt.setup != nil {
				m = tt.setup(t, m)
			}
			got := view(m)
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if len(lines) != tt.h {
				t.Errorf("view is %d lines, want %d", len(lines), tt.h)
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > tt.w {
					t.Errorf("line %d is %d wide (> %d): %q", i, w, tt.w, l)
				}
			}
			golden(t, tt.name, got)
		})
	}
}

func TestResizeKeepsCursorVisible(t *testing.T) {
	m, _ := newTestModel(200, 120, 40, Options{})
	m = press(t, m, "G")
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 80, Height: 16})
	if v := view(m); !strings.Contains(v, "vm-00199") {
		t.Errorf("cursor row not visible after shrinking:\n%s", v)
	}
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 40, Height: 10})
	if v := view(m); !strings.Contains(v, "needs at least 60x15") {
		t.Errorf("too-small message missing:\n%s", v)
	}
	if _, quit := send(t, m, keyMsg(t, "q")); !quit {
		t.Error("q does not quit on a too-small screen")
	}
}

// The dashboard refuses state:bogus with the CLI's words: the same error
// fleet.Select gives `guestdeck run ping state:bogus`. A state prefix
// (typed on the way to state:frozen) is no error.
func TestFilterUnknownState(t *testing.T) {
	m, _ := newTestModel(5, 120, 30, Options{})
	_, cliErr := fleet.Select(nil, []string{"state:bogus"})
	if cliErr == nil {
		t.Fatal("the CLI accepts state:bogus")
	}
	m = press(t, m, "/")
	m = typeText(t, m, "state:fro")
	eq(t, "a state prefix is no error", m.statusErr, false)
	for range 3 {
		m = press(t, m, "backspace")
	}
	m = typeText(t, m, "bogus")
	eq(t, "status", m.status, cliErr.Error())
	eq(t, "status is an error", m.statusErr, true)
	if v := view(m); !strings.Contains(v, `unknown state "bogus"`) {
		t.Errorf("error not on screen:\n%s", v)
	}
	m = press(t, m, "enter")
	eq(t, "enter keeps the prompt open on an error", m.isOpen(layerFilter), true)
	for range 5 {
		m = press(t, m, "backspace")
	}
	m = typeText(t, m, "ready")
	eq(t, "fixed: the error goes", m.status, "")
	m = press(t, m, "enter")
	eq(t, "enter applies the fixed filter", m.isOpen(layerFilter), false)
	eq(t, "filter", m.tbl.filter, "state:ready")
}

// r re-reads the guest: the status says so, not "info: 1 ok, 0 failed, 0
// skipped" (issue 14). Other actions keep their tally.
func TestRefreshStatus(t *testing.T) {
	m, _ := newTestModel(5, 120, 30, Options{})
	m = press(t, m, "r")
	eq(t, "status after r", m.status, "refreshed 1 guest")
	eq(t, "not an error", m.statusErr, false)
	m = press(t, m, "space", "space", "r")
	eq(t, "status after r on two marked", m.status, "refreshed 2 guests")
	m = press(t, m, "p")
	eq(t, "ping keeps its tally", m.status, "ping: 2 ok, 0 failed, 0 skipped (e: event log)")
}

// A guest with no round trip known (silent, unreachable) shows "rtt –",
// not "rtt 0s", in the detail pane.
func TestDetailRTTUnknown(t *testing.T) {
	m, _ := newTestModel(5, 120, 30, Options{})
	g := testGuests(5)[4]
	g.RTT = 0
	v := strings.Join(m.overviewLines(g), "\n")
	if !strings.Contains(v, "rtt –") || strings.Contains(v, "rtt 0s") {
		t.Errorf("silent guest's round trip:\n%s", v)
	}
	g.RTT = 850 * time.Microsecond
	if v := strings.Join(m.overviewLines(g), "\n"); !strings.Contains(v, "rtt 850µs") {
		t.Errorf("known round trip:\n%s", v)
	}
}

// TestPullGap: the gap between snapshot pulls follows what pulls cost, so a
// large fleet is re-sorted a few times a second, not ten; a small one keeps
// the least gap, and rows on screen waiting for their first poll keep it
// too (the operator watches them turn ready).
func TestPullGap(t *testing.T) {
	m, src := newTestModel(100, 120, 30, Options{})
	gs := testGuests(100)
	for _, g := range gs {
		g.State, g.LastLive = fleet.Ready, testNow
	}
	src.set(gs)
	m.refresh()
	for _, c := range []struct {
		cost time.Duration
		want time.Duration
	}{
		{0, settledGap},
		{time.Millisecond, settledGap},
		{3 * time.Millisecond, 300 * time.Millisecond},
		{50 * time.Millisecond, maxRefreshGap},
	} {
		m.pullCost = c.cost
		eq(t, "gap at a pull cost of "+c.cost.String(), m.pullGap(), c.want)
	}

	// A moving average: one slow pull does not set the pace alone.
	m.pullCost = 0
	m.notePullCost(4 * time.Millisecond)
	m.notePullCost(40 * time.Millisecond)
	eq(t, "average after a slow pull", m.pullCost, 13*time.Millisecond)

	// The second row on screen has not been polled yet.
	gs[1].State, gs[1].LastLive = fleet.Connecting, time.Time{}
	src.set(gs)
	m.refresh()
	m.pullCost = 20 * time.Millisecond // 2 s, capped
	eq(t, "gap while a row on screen waits for its first poll", m.pullGap(), refreshGap)
	// Scrolled past it: the pace is the cost's again.
	m = press(t, m, "G")
	eq(t, "gap once that row is off screen", m.pullGap(), maxRefreshGap)
}
