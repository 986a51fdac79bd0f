package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
)

// settle runs cmd and every command the messages it yields lead to, one
// after another and without a timeout, feeding each message to Update. It
// is for chains known to end, such as an action's results once the fleet
// has returned; the spinner's frames are not fed back. It reports whether
// tea.Quit came out.
func settle(t *testing.T, m Model, cmd tea.Cmd) (Model, bool) {
	t.Helper()
	if cmd == nil {
		return m, false
	}
	switch msg := cmd().(type) {
	case nil, spinner.TickMsg, tickMsg:
		return m, false
	case tea.QuitMsg:
		return m, true
	case tea.BatchMsg:
		quit := false
		for _, c := range msg {
			var q bool
			m, q = settle(t, m, c)
			quit = quit || q
		}
		return m, quit
	default:
		next, c := m.Update(msg)
		return settle(t, next.(Model), c)
	}
}

// startRead types ":cat PATH" and enter with the fleet holding actions in
// flight. It returns the command that delivers the read's results once
// release is called.
func startRead(t *testing.T, m Model, src *fakeSource, path string) (Model, tea.Cmd, func()) {
	t.Helper()
	release := src.holdRuns()
	t.Cleanup(release)
	m = press(t, m, ":")
	m = typeText(t, m, "cat "+path)
	next, cmd := m.Update(keyMsg(t, "enter"))
	m = next.(Model)
	if m.run == nil || m.run.action.Kind != fleet.ActRead {
		t.Fatalf("the read is not in flight: run = %+v", m.run)
	}
	return m, cmd, release
}

// kinds spells the stack, bottom first, for comparing and messages.
func kinds(m Model) string {
	var out []layerKind
	for _, l := range m.layers {
		out = append(out, l.kind)
	}
	return stack(out...)
}

func stack(ks ...layerKind) string { return fmt.Sprint(ks) }

// The reproduced bug: a guest frozen by us, a read in flight, ctrl+c opens
// the quit dialog, the read finishes (it used to open the event log over the
// dialog while keys still went to the dialog), then q (the event log says q
// closes it; the hidden dialog took it as "quit anyway"). Now the dialog
// stays on screen and keeps the keys, the log waits beneath it, and q in the
// dialog thaws before quitting.
func TestQuitDialogOverInFlightRead(t *testing.T) {
	for _, tt := range []struct {
		name string
		then func(t *testing.T, m Model, src *fakeSource)
	}{
		{"q thaws and quits", func(t *testing.T, m Model, src *fakeSource) {
			m, quit := send(t, m, keyMsg(t, "q"))
			if !quit {
				t.Fatalf("q in the quit dialog did not quit:\n%s", view(m))
			}
			eq(t, "guests thawed before quitting", src.thawed, 1)
		}},
		{"esc shows the read, q closes it, q asks again", func(t *testing.T, m Model, src *fakeSource) {
			m = press(t, m, "esc")
			v := view(m)
			if !strings.Contains(v, "Event log") || !strings.Contains(v, "read ok") {
				t.Fatalf("cancelling the dialog did not show the read waiting beneath it:\n%s", v)
			}
			m, quit := send(t, m, keyMsg(t, "q"))
			if quit || m.isOpen(layerEvents) {
				t.Fatalf("q in the event log: quit %v, log still open %v", quit, m.isOpen(layerEvents))
			}
			m, quit = send(t, m, keyMsg(t, "q"))
			if quit || m.top().kind != layerQuit {
				t.Fatalf("q on the table with a guest frozen: quit %v, top %v", quit, m.top().kind)
			}
			eq(t, "nothing thawed yet", src.thawed, 0)
			if v := view(m); !strings.Contains(v, "1 guest frozen by guestdeck") {
				t.Errorf("quit dialog not on screen:\n%s", v)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, src := newTestModel(5, 120, 30, Options{})
			src.frozen = []string{"vm-00003"}
			m, readCmd, release := startRead(t, m, src, "/x")

			m, quit := send(t, m, keyMsg(t, "ctrl+c"))
			if quit || m.top().kind != layerQuit {
				t.Fatalf("ctrl+c with a frozen guest: quit %v, top %v", quit, m.top().kind)
			}

			release()
			m, quit = settle(t, m, readCmd)
			if quit || m.run != nil {
				t.Fatalf("the read's completion: quit %v, run %+v", quit, m.run)
			}
			eq(t, "the read was logged", len(m.events), 1)
			eq(t, "stack: the log queued beneath the dialog", kinds(m), stack(layerEvents, layerQuit))
			v := view(m)
			for _, want := range []string{"1 guest frozen by guestdeck", "thaw them and quit", "shown when you close this"} {
				if !strings.Contains(v, want) {
					t.Errorf("screen after the read finished lacks %q:\n%s", want, v)
				}
			}
			if strings.Contains(v, "Event log") {
				t.Errorf("the event log covers the quit dialog:\n%s", v)
			}
			tt.then(t, m, src)
		})
	}
}

// fixture holds what a layer under test acts on.
type fixture struct {
	src  *fakeSource
	pane *fakePane
}

// openKind opens a layer of kind k on top, with what it needs.
func openKind(m *Model, f *fixture, k layerKind) {
	switch k {
	case layerFilter:
		m.open(layer{kind: k})
		m.filterInput.SetValue("")
		m.filterInput.Focus()
	case layerCommand:
		m.open(layer{kind: k})
		m.cmdInput.SetValue("")
		m.cmdInput.Focus()
	case layerFiles:
		f.pane = &fakePane{guest: "vm-00001"}
		m.open(layer{kind: k, files: f.pane})
	case layerConfirm:
		m.open(layer{kind: k, confirm: &confirmation{action: fleet.Action{Kind: fleet.ActFreeze}, run: m.snap.Guests[1:2]}})
	case layerQuit:
		m.open(layer{kind: k, quit: &quitDialog{}})
	default:
		m.open(layer{kind: k})
	}
}

// Every layer kind acts on a key only while it is on top, and what is on
// top is what the screen and the help line show. Each kind is tried under
// and over every other.
func TestLayersTakeKeysOnlyOnTop(t *testing.T) {
	kindsUnderTest := []struct {
		kind  layerKind
		name  string
		key   string // a key this layer acts on
		drawn string // on screen while it is on top
		help  string // on the help line while it is on top
		acted func(m Model, f *fixture, quit bool) bool
	}{
		{layerFilter, "filter", "x", "name, glob, tag:X", "enter apply filter",
			func(m Model, f *fixture, quit bool) bool { return m.filterInput.Value() == "x" && m.tbl.filter == "x" }},
		{layerCommand, "command", "x", "enter run", "enter run",
			func(m Model, f *fixture, quit bool) bool { return m.cmdInput.Value() == "x" }},
		{layerHelp, "help", "esc", "Help  (? or esc closes)", "?/esc/q close",
			func(m Model, f *fixture, quit bool) bool { return !m.isOpen(layerHelp) }},
		{layerEvents, "events", "esc", "Event log", "e/esc/q close",
			func(m Model, f *fixture, quit bool) bool { return !m.isOpen(layerEvents) }},
		{layerFiles, "files", "j", "FILES OF vm-00001", "",
			func(m Model, f *fixture, quit bool) bool { return slices.Contains(f.pane.keys, "j") }},
		{layerConfirm, "confirm", "y", "Freeze 1 guest?", "y/enter confirm",
			func(m Model, f *fixture, quit bool) bool { return len(f.src.runs) == 1 }},
		{layerQuit, "quit", "Q", "1 guest frozen by guestdeck", "thaw them and quit",
			func(m Model, f *fixture, quit bool) bool { return quit && f.src.thawed == 0 }},
	}
	for _, k := range kindsUnderTest {
		for _, c := range kindsUnderTest {
			if c.kind == k.kind {
				continue
			}
			for _, onTop := range []bool{false, true} {
				name := k.name + " under " + c.name
				if onTop {
					name = k.name + " over " + c.name
				}
				t.Run(name, func(t *testing.T) {
					m, src := newTestModel(5, 120, 30, Options{})
					src.frozen = []string{"vm-00003"}
					f := &fixture{src: src}
					kf := &fixture{src: src}
					if onTop {
						openKind(&m, f, c.kind)
						openKind(&m, kf, k.kind)
					} else {
						openKind(&m, kf, k.kind)
						openKind(&m, f, c.kind)
					}
					top, under := c, k
					if onTop {
						top, under = k, c
					}
					v := view(m)
					if !strings.Contains(v, top.drawn) {
						t.Errorf("top layer %s not on screen (%q):\n%s", top.name, top.drawn, v)
					}
					if top.help != "" && !strings.Contains(v, top.help) {
						t.Errorf("help line is not the top layer's (%q):\n%s", top.help, v)
					}
					bothInRegion := layer{kind: top.kind}.drawsInRegion() && layer{kind: under.kind}.drawsInRegion()
					if bothInRegion && strings.Contains(v, under.drawn) {
						t.Errorf("%s is drawn though %s covers it:\n%s", under.name, top.name, v)
					}

					m, quit := send(t, m, keyMsg(t, k.key))
					if got := k.acted(m, kf, quit); got != onTop {
						t.Errorf("%s acted on %q: %v, want %v (stack now %v)", k.name, k.key, got, onTop, kinds(m))
					}
				})
			}
		}
	}
}

// The mouse goes to what is drawn in the region: the event log scrolls only
// when it is drawn, and nothing under a dialog or the help screen is clicked.
func TestMouseReachesWhatIsDrawn(t *testing.T) {
	wheel := tea.MouseWheelMsg{X: 10, Y: 10, Button: tea.MouseWheelDown}
	withEvents := func(t *testing.T) (Model, *fakeSource) {
		m, src := newTestModel(30, 120, 20, Options{})
		m = press(t, m, "ctrl+a", "p")
		return m, src
	}

	m, _ := withEvents(t)
	f := &fixture{}
	openKind(&m, f, layerEvents)
	openKind(&m, f, layerHelp)
	m, _ = send(t, m, wheel)
	eq(t, "wheel over help: event log under it not scrolled", m.eventScroll, 0)
	m = press(t, m, "esc")
	m, _ = send(t, m, wheel)
	eq(t, "wheel over the event log scrolls it", m.eventScroll, 3)
	// A prompt leaves the region to what is beneath it.
	openKind(&m, f, layerFilter)
	m, _ = send(t, m, wheel)
	eq(t, "wheel with a prompt over the event log scrolls the log", m.eventScroll, 6)

	m, _ = withEvents(t)
	m = press(t, m, "esc", "down", "F")
	if m.top().kind != layerConfirm {
		t.Fatalf("no confirmation: %v", kinds(m))
	}
	l := m.layout()
	m, _ = send(t, m, tea.MouseClickMsg{X: 10, Y: l.tableTop + 4, Button: tea.MouseLeft})
	eq(t, "click under a dialog does not move the cursor", m.cursorGuest().Name, "vm-00001")
	m, _ = send(t, m, wheel)
	eq(t, "wheel under a dialog does not move the cursor", m.cursorGuest().Name, "vm-00001")
}

// A read that finishes under a prompt, the help screen or the file browser
// does not take the keys from it: the event log waits beneath.
func TestReadFinishingQueuesBeneath(t *testing.T) {
	for _, tt := range []struct {
		name  string
		open  []string
		after func(t *testing.T, m Model, pane *fakePane)
	}{
		{"filter", []string{"/"}, func(t *testing.T, m Model, _ *fakePane) {
			m = typeText(t, m, "vm-0000")
			eq(t, "typing still reaches the filter", m.tbl.filter, "vm-0000")
			m = press(t, m, "enter")
			if !strings.Contains(view(m), "Event log") {
				t.Errorf("closing the filter did not show the read:\n%s", view(m))
			}
		}},
		{"help", []string{"?"}, func(t *testing.T, m Model, _ *fakePane) {
			if v := view(m); !strings.Contains(v, "Help  (") || strings.Contains(v, "Event log") {
				t.Errorf("help screen covered:\n%s", v)
			}
			m = press(t, m, "esc")
			if !strings.Contains(view(m), "Event log") {
				t.Errorf("closing help did not show the read:\n%s", view(m))
			}
		}},
		{"files", []string{"f"}, func(t *testing.T, m Model, pane *fakePane) {
			m = press(t, m, "j")
			eq(t, "keys still reach the browser", pane.keys, []string{"j"})
			m = press(t, m, "q")
			if !strings.Contains(view(m), "Event log") {
				t.Errorf("closing the browser did not show the read:\n%s", view(m))
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var pane *fakePane
			m, src := newTestModel(5, 120, 30, Options{Files: func(g string) (FilesPane, error) {
				pane = &fakePane{guest: g}
				return pane, nil
			}})
			m, readCmd, release := startRead(t, m, src, "/etc/hostname")
			m = press(t, m, tt.open...)
			release()
			m, _ = settle(t, m, readCmd)
			if m.run != nil || m.isOpen(layerEvents) == false {
				t.Fatalf("read not finished and queued: run %+v, stack %v", m.run, kinds(m))
			}
			if m.layers[0].kind != layerEvents || m.top().kind == layerEvents {
				t.Fatalf("event log not beneath: %v", kinds(m))
			}
			tt.after(t, m, pane)
		})
	}
}

// q closes the file browser; q again is the table's quit, with the same
// question about frozen guests (and a habitual third q thaws first).
func TestFilesThenQuitAsks(t *testing.T) {
	m, src := newTestModel(5, 120, 30, Options{Files: func(g string) (FilesPane, error) {
		return &fakePane{guest: g}, nil
	}})
	src.frozen = []string{"vm-00003"}
	m = press(t, m, "f")
	if m.filesPane() == nil {
		t.Fatal("browser not open")
	}
	m, quit := send(t, m, keyMsg(t, "q"))
	if quit || m.filesPane() != nil {
		t.Fatalf("q in the browser: quit %v, browser open %v", quit, m.filesPane() != nil)
	}
	m, quit = send(t, m, keyMsg(t, "q"))
	if quit || m.top().kind != layerQuit {
		t.Fatalf("q after the browser: quit %v, top %v", quit, m.top().kind)
	}
	if v := view(m); !strings.Contains(v, "1 guest frozen by guestdeck") {
		t.Errorf("quit dialog not shown:\n%s", v)
	}
	if _, quit = send(t, m, keyMsg(t, "q")); !quit {
		t.Fatal("q in the quit dialog did not quit")
	}
	eq(t, "thawed first", src.thawed, 1)
}

// A thaw that fails keeps the dialog open, naming the guest, instead of
// quitting with it frozen; the operator retries, cancels or leaves it.
func TestQuitThawFailureKeepsAsking(t *testing.T) {
	m, src := newTestModel(5, 120, 30, Options{})
	src.frozen = []string{"vm-00003"}
	src.thawFail = "agent went away"
	m = press(t, m, "q")
	m, quit := send(t, m, keyMsg(t, "y"))
	if quit {
		t.Fatal("quit though the thaw failed")
	}
	if m.top().kind != layerQuit || m.top().quit.thawing {
		t.Fatalf("dialog not back for an answer: %v", kinds(m))
	}
	v := view(m)
	for _, want := range []string{"Thaw failed on vm-00003", "thaw them and quit", "thaw failed on 1 guest"} {
		if !strings.Contains(v, want) {
			t.Errorf("screen lacks %q:\n%s", want, v)
		}
	}
	if len(m.events) != 1 || m.events[0].results[0].Err != "agent went away" {
		t.Errorf("the failed thaw is not in the event log: %+v", m.events)
	}

	src.thawFail = ""
	if _, quit = send(t, m, keyMsg(t, "y")); !quit {
		t.Fatal("retry did not quit")
	}
	eq(t, "thawed on retry", src.thawed, 1)
}

// Below the minimum size only the too-small notice is drawn, so only what
// it offers acts: q (which still asks about frozen guests, and draws the
// question). A confirmation open before the shrink does not take a y unseen.
func TestTooSmallActsOnlyOnWhatIsShown(t *testing.T) {
	m, src := newTestModel(5, 120, 30, Options{})
	src.frozen = []string{"vm-00003"}
	m = press(t, m, "down", "F")
	if m.top().kind != layerConfirm {
		t.Fatal("no confirmation")
	}
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 50, Height: 12})
	m = press(t, m, "y", "enter", "?", "p")
	eq(t, "nothing ran unseen", len(src.runs), 0)
	if v := view(m); !strings.Contains(v, "needs at least 60x15") {
		t.Fatalf("too-small notice missing:\n%s", v)
	}

	m = press(t, m, "q")
	v := view(m)
	for _, want := range []string{"1 guest frozen by guestdeck", "thaw them and quit", "Q/! quit, leave them frozen", "this terminal is 50x12"} {
		if !strings.Contains(v, want) {
			t.Errorf("too-small quit question lacks %q:\n%s", want, v)
		}
	}
	eq(t, "the confirmation was dropped", kinds(m), stack(layerQuit))
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
	if v := view(m); !strings.Contains(v, "1 guest frozen by guestdeck") {
		t.Errorf("enlarged: quit dialog not drawn:\n%s", v)
	}
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 50, Height: 12})
	m = press(t, m, "n")
	eq(t, "n cancels there too", len(m.layers), 0)
	m = press(t, m, "q")
	if _, quit := send(t, m, keyMsg(t, "Q")); !quit {
		t.Fatal("Q did not quit")
	}
	eq(t, "Q leaves them frozen", src.thawed, 0)
}

// The quit dialog's keys come from the quit binding: rebinding quit onto Q
// makes Q thaw and quit, and leaving guests frozen stays on !.
func TestQuitKeysFollowRebinding(t *testing.T) {
	m, src := newTestModel(5, 120, 30, Options{Keys: map[string][]string{"quit": {"Q"}}})
	src.frozen = []string{"vm-00003"}
	m = press(t, m, "Q")
	if m.top().kind != layerQuit {
		t.Fatal("rebound quit did not ask")
	}
	if v := view(m); !strings.Contains(v, "y/enter/Q/ctrl+c thaw them and quit · ! quit, leave them frozen") {
		t.Errorf("dialog keys:\n%s", v)
	}
	if _, quit := send(t, m, keyMsg(t, "Q")); !quit {
		t.Fatal("Q (the quit key) did not quit")
	}
	eq(t, "Q as the quit key thaws", src.thawed, 1)
}
