package tui

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/fleet/audit"
)

// readAudit is every entry of the log, oldest first.
func readAudit(t *testing.T, l *audit.Log) []audit.Entry {
	t.Helper()
	var es []audit.Entry
	if _, err := audit.Read(l.Path(), func(e audit.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return es
}

func guestResults(e audit.Entry) string {
	var out []string
	for _, g := range e.Guests {
		out = append(out, g.Name+"="+g.Result)
	}
	return strings.Join(out, ",")
}

// enter runs the command line's enter and the command it returns, blocking
// (an audit write is a disk sync, however long it takes), feeding messages
// back until the exchange settles.
func enterLine(t *testing.T, m Model, line string) Model {
	t.Helper()
	m = press(t, m, ":")
	m = typeText(t, m, line)
	next, cmd := m.Update(keyMsg(t, "enter"))
	m, _ = settle(t, next.(Model), cmd)
	return m
}

// ":dry-run ACTION" puts what each target would be sent in the event log,
// sends nothing, and is logged as phase dry-run.
func TestDashboardDryRun(t *testing.T) {
	log := audit.Open(t.TempDir())
	m, src := newTestModel(12, 120, 30, Options{Audit: log})
	m = press(t, m, "space", "space", "space") // vm-00000 (no fsfreeze), 01, 02
	m = enterLine(t, m, "dry-run freeze")
	eq(t, "nothing ran", len(src.runs), 0)
	eq(t, "no confirmation asked", m.openConfirmation() == nil, true)
	eq(t, "the event log is shown", m.top().kind, layerEvents)
	if len(m.events) != 1 || !m.events[0].dry {
		t.Fatalf("events: %+v", m.events)
	}
	v := ansi.Strip(m.View().Content)
	for _, want := range []string{
		"dry run: freeze  2 would be sent it, 1 skipped; nothing was sent",
		`vm-00001  would send {"execute":"guest-fsfreeze-freeze"}`,
		"vm-00000  skipped: agent lacks guest-fsfreeze-freeze",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("event log lacks %q:\n%s", want, v)
		}
	}
	es := readAudit(t, log)
	if len(es) != 1 || es[0].Phase != audit.DryRun || es[0].Source != audit.SourceDashboard || es[0].Action != "freeze" ||
		guestResults(es[0]) != "vm-00000=skipped,vm-00001=would-send,vm-00002=would-send" {
		t.Fatalf("audit log: %+v", es)
	}
	if g := es[0].Guests[1]; len(g.Sends) != 1 || string(g.Sends[0]) != `{"execute":"guest-fsfreeze-freeze"}` || g.Address == "" {
		t.Errorf("dry-run guest: %+v", g)
	}

	// The exact arguments, and tab completion.
	m = press(t, m, "esc")
	m = enterLine(t, m, "dry-run vcpus offline 1")
	if r := m.events[0].results[1]; r.Result != `would send {"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":1,"online":false}]}}` {
		t.Errorf("vcpus dry run: %+v", r)
	}
	eq(t, "still nothing ran", len(src.runs), 0)
	m = press(t, m, "esc", ":")
	m = typeText(t, m, "dry-run sh")
	m = press(t, m, "tab")
	if !strings.HasPrefix(m.cmdInput.Value(), "dry-run shutdown") {
		t.Errorf("tab completed %q", m.cmdInput.Value())
	}
	if !slices.Contains(m.completions(), "dry-run freeze") {
		t.Error("completions lack dry-run freeze")
	}
}

// A dashboard action is audited: the intent, with what each guest will be
// sent or why it is skipped, is on record before the fleet is asked; the
// outcome after.
func TestDashboardActionAudited(t *testing.T) {
	log := audit.Open(t.TempDir())
	m, src := newTestModel(12, 120, 30, Options{Audit: log})
	var atRun []audit.Entry
	src.onRun = func() { atRun = readAudit(t, log) }
	m = press(t, m, "space", "space", "space", "F")
	next, cmd := m.Update(keyMsg(t, "y"))
	m, _ = settle(t, next.(Model), cmd)
	eq(t, "ran", len(src.runs), 1)
	if len(atRun) != 1 || atRun[0].Phase != audit.Intent {
		t.Fatalf("when the fleet was asked the log held %+v, want the intent", atRun)
	}
	es := readAudit(t, log)
	if len(es) != 2 {
		t.Fatalf("audit log: %+v", es)
	}
	in, out := es[0], es[1]
	if in.ID != out.ID || in.Source != audit.SourceDashboard || in.Action != "freeze" || out.Phase != audit.Outcome {
		t.Errorf("entries: %+v", es)
	}
	eq(t, "intent guests", guestResults(in), "vm-00001=pending,vm-00002=pending,vm-00000=skipped")
	eq(t, "outcome guests", guestResults(out), "vm-00000=skipped,vm-00001=ok,vm-00002=ok")
	var b bytes.Buffer
	json.Compact(&b, in.Guests[0].Sends[0])
	eq(t, "sends", b.String(), `{"execute":"guest-fsfreeze-freeze"}`)

	// Looking is not audited.
	m = press(t, m, "esc")
	next, cmd = m.Update(keyMsg(t, "p"))
	settle(t, next.(Model), cmd)
	eq(t, "pinged", len(src.runs), 2)
	if n := len(readAudit(t, log)); n != 2 {
		t.Errorf("a ping was audited: %d entries", n)
	}
}

// An audit log that cannot be written refuses the action before the fleet
// is asked, naming the file; the quit thaw is never refused for it.
func TestDashboardActionRefusedWithoutAuditLog(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	log := audit.Open(file) // its directory is a regular file
	m, src := newTestModel(12, 120, 30, Options{Audit: log})
	m = press(t, m, "down") // vm-00001: thaw needs no confirmation
	next, cmd := m.Update(keyMsg(t, "T"))
	m, _ = settle(t, next.(Model), cmd)
	eq(t, "nothing ran", len(src.runs), 0)
	if !m.statusErr || !strings.Contains(m.status, "refused") || !strings.Contains(m.status, log.Path()) {
		t.Errorf("status %q", m.status)
	}
	if len(m.events) == 0 || !strings.Contains(m.events[0].results[0].Err, "nothing was sent") {
		t.Errorf("event: %+v", m.events)
	}
	m = enterLine(t, m, "dry-run settime")
	if !m.statusErr || !strings.Contains(m.status, "would be refused") {
		t.Errorf("dry run without an audit log: status %q", m.status)
	}

	src.frozen = []string{"vm-00003"}
	m = press(t, m, "esc", "q")
	next, cmd = m.Update(keyMsg(t, "y"))
	if _, quit := settle(t, next.(Model), cmd); !quit || src.thawed != 1 {
		t.Errorf("quit thaw without an audit log: quit %v, thawed %d", quit, src.thawed)
	}
}

// The thaw the quit dialog makes is audited too.
func TestQuitThawAudited(t *testing.T) {
	log := audit.Open(t.TempDir())
	m, src := newTestModel(5, 120, 30, Options{Audit: log})
	src.frozen = []string{"vm-00003"}
	m = press(t, m, "q")
	next, cmd := m.Update(keyMsg(t, "y"))
	if _, quit := settle(t, next.(Model), cmd); !quit {
		t.Fatal("did not quit")
	}
	es := readAudit(t, log)
	if len(es) != 2 || es[0].Phase != audit.Intent || es[1].Phase != audit.Outcome || es[0].ID != es[1].ID ||
		!strings.HasPrefix(es[0].Action, "thaw") || guestResults(es[1]) != "vm-00003=ok" {
		t.Errorf("audit log: %+v", es)
	}
}
