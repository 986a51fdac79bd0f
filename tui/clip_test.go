package tui

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/tui/present"
)

// clipboardOf is the text a command sets the clipboard to: tea.SetClipboard's
// message is a string type Bubble Tea writes as OSC 52. ok is false for any
// other message.
func clipboardOf(t *testing.T, cmd tea.Cmd) (string, bool) {
	t.Helper()
	if cmd == nil {
		return "", false
	}
	msg := cmd()
	if fmt.Sprintf("%T", msg) != "tea.setClipboardMsg" {
		return "", false
	}
	return reflect.ValueOf(msg).String(), true
}

// yank presses y then choice and returns the model and the clipboard text.
func yank(t *testing.T, m Model, choice string) (Model, string, bool) {
	t.Helper()
	next, cmd := m.Update(keyMsg(t, "y"))
	m = next.(Model)
	if cmd != nil {
		t.Fatalf("y alone did something: %T", cmd())
	}
	eq(t, "y opens the chooser", m.top().kind, layerYank)
	next, cmd = m.Update(keyMsg(t, choice))
	m = next.(Model)
	s, ok := clipboardOf(t, cmd)
	return m, s, ok
}

func TestYank(t *testing.T) {
	m, _ := newTestModel(6, 120, 30, Options{})
	m = press(t, m, "down") // vm-00001: ready, no error
	cases := []struct {
		key, want, status string
	}{
		{"n", "vm-00001", "copied vm-00001's name (8 bytes): vm-00001"},
		{"y", "vm-00001", "copied vm-00001's name"},
		{"a", "10.0.0.2 fd00::2", "copied vm-00001's addresses (16 bytes): 10.0.0.2 fd00::2"},
		{"l", "State        ready for 1m00s", "copied vm-00001's detail line"},
	}
	for _, c := range cases {
		var got string
		var ok bool
		m, got, ok = yank(t, m, c.key)
		if !ok || got != c.want {
			t.Errorf("y %s copied %q (%v), want %q", c.key, got, ok, c.want)
		}
		if !strings.HasPrefix(m.status, c.status) || m.statusErr {
			t.Errorf("y %s: status %q, want %q…", c.key, m.status, c.status)
		}
		eq(t, "the chooser closed", m.top().kind, layerTable)
	}

	// Nothing to copy is said, and nothing is sent.
	m, _, ok := yank(t, m, "e")
	if ok || m.status != "copy: vm-00001 has no error" || !m.statusErr {
		t.Errorf("y e on a guest without an error: sent %v, status %q", ok, m.status)
	}
	// Any other key cancels.
	m, _, ok = yank(t, m, "esc")
	if ok || m.status != "copy cancelled" {
		t.Errorf("y esc: sent %v, status %q", ok, m.status)
	}
	// The chooser's keys are on the input and help lines.
	m = press(t, m, "y")
	v := ansi.Strip(m.View().Content)
	for _, want := range []string{"copy vm-00001: n name · a addresses · e error · l detail line · esc cancels", "n/y name"} {
		if !strings.Contains(v, want) {
			t.Errorf("chooser screen lacks %q:\n%s", want, v)
		}
	}
}

// A guest controls its name and error: what is copied is what the screen
// shows, every control, escape and bidi character escaped, so that a paste
// can carry neither an ESC (a bracketed-paste end, after which a shell
// runs the rest) nor a newline; and it is bounded.
func TestYankHostileText(t *testing.T) {
	m, src := newTestModel(3, 120, 30, Options{})
	gs := testGuests(3)
	gs[0].Name = "evil\x1b]52;c;SGVsbG8=\x07\u202e"
	gs[0].Err = "agent says: \x1b[201~rm -rf ~\nreboot\r\x9b31m"
	src.set(gs)
	m, _ = send(t, m, changedMsg{})

	m, name, ok := yank(t, m, "n")
	if !ok || name != `evil\x1b]52;c;SGVsbG8=\x07\u202e` {
		t.Errorf("name copied as %q", name)
	}
	m, errText, ok := yank(t, m, "e")
	if !ok || errText != `agent says: \x1b[201~rm -rf ~\nreboot\r\x9b31m` {
		t.Errorf("error copied as %q", errText)
	}
	for _, s := range []string{name, errText, m.status} {
		if strings.ContainsAny(s, "\x1b\n\r\x07\u202e\u009b") {
			t.Errorf("a control character got through: %q", s)
		}
	}
	if v := m.View().Content; strings.Contains(v, "\x1b[201~") || strings.Contains(v, "\x1b]52") {
		t.Errorf("the screen carries the guest's sequence")
	}

	// A megabyte of error is cut to clipCells, and the status says so.
	gs[0].Err = strings.Repeat("x", 1<<20)
	src.set(gs)
	m, _ = send(t, m, changedMsg{})
	m, big, ok := yank(t, m, "e")
	if !ok || present.Width(big) != clipCells || !strings.HasSuffix(big, "…") {
		t.Errorf("a 1 MiB error copied as %d cells (%v)", present.Width(big), ok)
	}
	if !strings.Contains(m.status, fmt.Sprintf("cut to %d cells", clipCells)) {
		t.Errorf("status %q does not say it was cut", m.status)
	}
}

// y is rebindable from [keys] like any action (cmd/guestdeck's
// TestKeyActionsMatchTUI checks that the fleet file accepts the name).
func TestYankRebound(t *testing.T) {
	m, _ := newTestModel(3, 120, 30, Options{Keys: map[string][]string{"yank": {"c"}}})
	m = press(t, m, "y")
	eq(t, "y no longer copies", m.top().kind, layerTable)
	m = press(t, m, "c")
	eq(t, "c opens the chooser", m.top().kind, layerYank)
}

// ? lists y and A (the help scrolls: page through it).
func TestHelpListsCopyAndAudit(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {100, 30}, {160, 45}} {
		m, _ := newTestModel(5, size[0], size[1], Options{})
		m = press(t, m, "?")
		var seen strings.Builder
		for range 6 {
			seen.WriteString(view(m))
			m = press(t, m, "pgdown")
		}
		for _, want := range []string{"y             copy ", "A      audit log"} {
			if !strings.Contains(seen.String(), want) {
				t.Errorf("%dx%d help never shows %q:\n%s", size[0], size[1], want, seen.String())
			}
		}
	}
}
