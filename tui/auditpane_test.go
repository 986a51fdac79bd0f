package tui

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/fleet/audit"
)

// A actions the dashboard took show in the audit pane, newest first; enter
// shows one whole; a guest's words in an entry are escaped.
func TestAuditPane(t *testing.T) {
	log := audit.Open(t.TempDir())
	m, _ := newTestModel(6, 120, 30, Options{Audit: log})
	m = press(t, m, "down", "space", "space") // vm-00001, vm-00002
	m = press(t, m, "T")                      // thaw: mutating, audited, no confirmation
	m = press(t, m, "esc")
	// Another process's entry, with a hostile guest name and detail.
	send, _ := json.Marshal(map[string]string{"execute": "guest-fsfreeze-freeze"})
	if err := log.Append(audit.Entry{Phase: audit.Outcome, Source: audit.SourceCLI, Action: "freeze",
		Command: []string{"guestdeck", "run", "freeze", "evil"},
		Guests: []audit.Guest{{Name: "evil\x1b[2J\u202e", Result: "failed", Detail: "agent: \x1b]52;c;AAAA\x07 " + strings.Repeat("long ", 60),
			Sends: []json.RawMessage{send}}}}); err != nil {
		t.Fatal(err)
	}

	m = pressRead(t, m, "A")
	eq(t, "the pane is open", m.top().kind, layerAudit)
	v := view(m)
	lines := strings.Split(v, "\n")
	for _, want := range []string{"Audit log " + log.Path(), "3 entries, newest first"} {
		if !strings.Contains(v, want) {
			t.Errorf("pane lacks %q:\n%s", want, v)
		}
	}
	// Newest first: the CLI's freeze, then the thaw's outcome, then its intent.
	var order []string
	for _, l := range lines {
		for _, w := range []string{"outcome  cli       freeze", "outcome  dashboard thaw", "intent   dashboard thaw"} {
			if strings.Contains(l, w) {
				order = append(order, w)
			}
		}
	}
	if strings.Join(order, "|") != "outcome  cli       freeze|outcome  dashboard thaw|intent   dashboard thaw" {
		t.Errorf("order %q:\n%s", order, v)
	}
	if !strings.Contains(v, "vm-00001, vm-00002: 2 ok") || !strings.Contains(v, "vm-00001, vm-00002: 2 pending") {
		t.Errorf("guest summaries missing:\n%s", v)
	}
	if c := m.View().Content; strings.Contains(c, "\x1b[2J") || strings.Contains(c, "\x1b]52") || strings.Contains(c, "\u202e") {
		t.Errorf("a guest's sequence reached the screen")
	}

	// enter shows the selected (newest) entry whole, wrapped, not cut.
	m = press(t, m, "enter")
	v = view(m)
	for _, want := range []string{"entry 1 of 3", "Phase        outcome", "Source       cli", "Command      guestdeck run freeze evil",
		`evil\x1b[2J\u202e  failed`, `agent: \x1b]52;c;AAAA\x07 long`, `sends {"execute":"guest-fsfreeze-freeze"}`} {
		if !strings.Contains(v, want) {
			t.Errorf("entry view lacks %q:\n%s", want, v)
		}
	}
	if n := strings.Count(v, "long"); n != 60 {
		t.Errorf("the detail shows %d of its 60 words:\n%s", n, v)
	}
	// esc goes back to the list; down selects the next; esc again closes.
	m = press(t, m, "esc")
	eq(t, "back at the list", m.top().kind, layerAudit)
	m = press(t, m, "down", "enter")
	if v := view(m); !strings.Contains(v, "entry 2 of 3") || !strings.Contains(v, "Action       thaw") {
		t.Errorf("second entry:\n%s", v)
	}
	m = press(t, m, "esc", "esc")
	eq(t, "closed", m.top().kind, layerTable)

	// :audit opens it too; r re-reads the log.
	m = enterLine(t, m, "audit")
	eq(t, ":audit opens the pane", m.top().kind, layerAudit)
	if err := log.Append(audit.Entry{Phase: audit.Intent, Source: audit.SourceCLI, Action: "fstrim"}); err != nil {
		t.Fatal(err)
	}
	m = pressRead(t, m, "r")
	if v := view(m); !strings.Contains(v, "4 entries") || !strings.Contains(v, "intent   cli       fstrim") {
		t.Errorf("after r:\n%s", v)
	}
}

// The pane reads the end of the log only: a log far larger than the bound
// shows its newest entries and says older ones exist.
func TestAuditPaneBounded(t *testing.T) {
	log := audit.Open(t.TempDir())
	for i := range auditTailEntries + 5 {
		if err := log.Append(audit.Entry{Phase: audit.Intent, Source: audit.SourceCLI, Action: fmt.Sprintf("act-%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := newTestModel(3, 120, 30, Options{Audit: log})
	m = pressRead(t, m, "A")
	v := view(m)
	if !strings.Contains(v, fmt.Sprintf("%d entries, newest first; older ones: guestdeck audit", auditTailEntries)) ||
		!strings.Contains(v, fmt.Sprintf("act-%04d", auditTailEntries+4)) {
		t.Errorf("bounded pane:\n%s", v)
	}
	m = press(t, m, "G")
	if v := view(m); !strings.Contains(v, "act-0005") || strings.Contains(v, "act-0004") {
		t.Errorf("the oldest shown should be act-0005:\n%s", v)
	}
	// No log configured: said, not an empty pane.
	m2, _ := newTestModel(3, 120, 30, Options{})
	m2 = press(t, m2, "A")
	if m2.top().kind != layerTable || !strings.HasPrefix(m2.status, "audit log: none") {
		t.Errorf("without a log: %v %q", m2.top().kind, m2.status)
	}
}

func TestWrapCells(t *testing.T) {
	for _, c := range []struct {
		in   string
		w    int
		want string
	}{
		{"short", 10, "short"},
		{"one two three four", 9, "one two|three|four"},
		{"abcdefghij", 4, "abcd|efgh|ij"},
		{"世界世界", 1, "世|界|世|界"}, // wider than w: one a line, no endless loop
	} {
		if got := strings.Join(wrapCells(c.in, c.w), "|"); got != c.want {
			t.Errorf("wrapCells(%q, %d) = %q, want %q", c.in, c.w, got, c.want)
		}
	}
}

// pressRead presses k and runs the log read it starts to its end: drain
// gives a command 50 ms, which a read of a thousand entries can take on a
// loaded machine.
func pressRead(t *testing.T, m Model, k string) Model {
	t.Helper()
	next, cmd := m.Update(keyMsg(t, k))
	m = next.(Model)
	if cmd == nil {
		t.Fatalf("%s started no read", k)
	}
	msg := cmd()
	if _, ok := msg.(auditLoadedMsg); !ok {
		t.Fatalf("%s: %T, want the log read", k, msg)
	}
	m, _ = send(t, m, msg)
	return m
}
