package tui

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
	"github.com/guestdeck/guestdeck/tui/history"
)

// namedModel is a model on guests with the given names (the test guests'
// other fields), 120x30.
func namedModel(t *testing.T, opts Options, names ...string) (Model, *fakeSource) {
	t.Helper()
	gs := testGuests(len(names))
	for i, n := range names {
		gs[i].Name, gs[i].Address = n, "unix:/run/"+n+".sock"
	}
	slices.SortFunc(gs, func(a, b *fleet.Guest) int { return strings.Compare(a.Name, b.Name) })
	src := newFakeSource(gs)
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	opts.Styles = themes.Mono()
	m := New(src, opts)
	m.resize(120, 30)
	return m, src
}

func cursorName(m Model) string {
	if g := m.cursorGuest(); g != nil {
		return g.Name
	}
	return ""
}

// Type-ahead: ' then letters move the cursor to the first guest whose name
// starts with them (else contains them); letters are text, not action keys;
// tab goes to the next match; esc goes back, enter stays.
func TestJump(t *testing.T) {
	m, src := namedModel(t, Options{}, "api-01", "api-02", "cache-01", "db-01", "db-02", "frontend", "web-01", "web-02", "xdb")
	m = press(t, m, "down")
	eq(t, "start", cursorName(m), "api-02")

	m = press(t, m, "'")
	eq(t, "jump open", m.top().kind, layerJump)
	m = typeText(t, m, "db")
	eq(t, "db: first prefix match", cursorName(m), "db-01")
	if v := view(m); !strings.Contains(v, "'db▏  → db-01") || !strings.Contains(v, "1/3") {
		t.Errorf("jump line:\n%s", v)
	}
	m = press(t, m, "tab")
	eq(t, "tab: next", cursorName(m), "db-02")
	m = press(t, m, "tab")
	eq(t, "tab: then the name that contains it", cursorName(m), "xdb")
	m = press(t, m, "tab")
	eq(t, "tab wraps", cursorName(m), "db-01")
	m = press(t, m, "shift+tab")
	eq(t, "shift+tab back", cursorName(m), "xdb")
	m = press(t, m, "backspace", "backspace")
	m = typeText(t, m, "F")
	eq(t, "F is a letter here, not freeze", cursorName(m), "frontend")
	if len(src.runs) != 0 || m.openConfirmation() != nil {
		t.Fatal("a letter typed in the jump started an action")
	}
	m = press(t, m, "esc")
	eq(t, "esc goes back", cursorName(m), "api-02")
	eq(t, "esc closes", m.top().kind, layerTable)

	m = press(t, m, "'")
	m = typeText(t, m, "WEB-02")
	m = press(t, m, "enter")
	eq(t, "enter stays (case ignored)", cursorName(m), "web-02")
	eq(t, "enter closes", m.top().kind, layerTable)
	if v := view(m); !strings.Contains(v, "─ web-02") {
		t.Errorf("detail pane is not on the guest jumped to:\n%s", v)
	}

	// A name the filter hides: the line says so, the cursor stays.
	m = press(t, m, "/")
	m = typeText(t, m, "re:db")
	m = press(t, m, "enter", "'")
	m = typeText(t, m, "web")
	if v := view(m); !strings.Contains(v, `no shown guest's name has "web" (2 guests hidden by the filter)`) {
		t.Errorf("hidden match:\n%s", v)
	}
}

// A guest's name is escaped on the jump line.
func TestJumpEscapesName(t *testing.T) {
	m, _ := namedModel(t, Options{}, "evil\x1b]0;OWNED\x07\u202e", "good")
	m = press(t, m, "'")
	m = typeText(t, m, "ev")
	v := m.View().Content
	screenSafe(t, "jump line", v)
	if !strings.Contains(v, `→ evil\x1b]0;OWNED\x07\u202e`) {
		t.Errorf("jump line:\n%s", view(m))
	}
}

// Counts: 5j moves five rows and leaves the detail tab as it was (a digit
// alone still picks a tab); 10↓, 3k, 12G, 2 space; a count before any other
// key is dropped.
func TestCounts(t *testing.T) {
	m, src := newTestModel(40, 120, 30, Options{})
	m = press(t, m, "5", "j")
	eq(t, "5j", m.tbl.cursor, 5)
	eq(t, "5j keeps the tab", m.tab, 0)
	m = press(t, m, "1", "0", "down")
	eq(t, "10↓", m.tbl.cursor, 15)
	m = press(t, m, "3", "k")
	eq(t, "3k", m.tbl.cursor, 12)
	m = press(t, m, "1", "2")
	if v := view(m); !strings.Contains(v, "12  a motion repeats 12 times") {
		t.Errorf("a two-digit count is not shown:\n%s", v)
	}
	m = press(t, m, "G")
	eq(t, "12G goes to row 12", m.tbl.cursor, 11)
	m = press(t, m, "2", "space")
	eq(t, "2 space marks two", marked(m), []string{"vm-00011", "vm-00012"})
	eq(t, "and moves past them", m.tbl.cursor, 13)
	m = press(t, m, "esc", "3")
	eq(t, "a digit alone picks its tab", m.tab, 2)
	m = press(t, m, "p")
	eq(t, "the count is dropped before p: one guest pinged", len(src.runs), 1)
	eq(t, "the tab it picked stays", m.tab, 2)
	m = press(t, m, "j")
	eq(t, "j after that moves one", m.tbl.cursor, 14)
	m = press(t, m, "9", "9", "9", "j")
	eq(t, "a count past the end stops at the last row", m.tbl.cursor, 39)
	// At the table's end the count stops: the last row is marked, not
	// toggled back off by the steps that cannot move.
	end := m.tbl.lineCount() - 1
	m.tbl.cursor = end - 1
	m = press(t, m, "esc", "5", "space")
	if got := marked(m); len(got) != 2 || got[0] != m.tbl.rows[end-1].Name || got[1] != m.tbl.rows[end].Name {
		t.Errorf("5 space on the second-last row: marked %v", got)
	}
}

// * inverts the marks of the rows shown; marks the filter hides stay.
func TestInvertMarks(t *testing.T) {
	m, _ := newTestModel(6, 120, 30, Options{})
	m = press(t, m, "space", "space", "*")
	eq(t, "inverted", marked(m), []string{"vm-00002", "vm-00003", "vm-00004", "vm-00005"})
	m = press(t, m, "/")
	m = typeText(t, m, "tag:web") // vm-00000, vm-00003
	m = press(t, m, "enter", "*")
	eq(t, "within the filter; hidden marks kept", marked(m), []string{"vm-00000", "vm-00002", "vm-00004", "vm-00005"})

	km := DefaultKeyMap()
	if err := km.Apply(map[string][]string{"invert_marks": {"I"}, "jump": {"`"}}); err != nil {
		t.Fatalf("invert_marks and jump cannot be rebound: %v", err)
	}
}

// Regular expressions, inverse and fuzzy words filter the table; a bad
// regular expression is an error beside the prompt while the table keeps
// the last filter that worked, and enter does not take it.
func TestFilterRegexInverseFuzzy(t *testing.T) {
	m, _ := newTestModel(24, 120, 40, Options{})
	shown := func(m Model) []string {
		var out []string
		for _, g := range m.tbl.rows {
			out = append(out, g.Name)
		}
		return out
	}
	m = press(t, m, "/")
	m = typeText(t, m, `re:^vm-0001[0-3]$`)
	eq(t, "regexp", shown(m), []string{"vm-00010", "vm-00011", "vm-00012", "vm-00013"})
	m = typeText(t, m, " !state:frozen")
	eq(t, "and not frozen", shown(m), []string{"vm-00011", "vm-00012", "vm-00013"})
	m = typeText(t, m, " re:(")
	if v := view(m); !strings.Contains(v, `"re:(": bad regular expression: missing closing )`) {
		t.Errorf("bad regexp not shown beside the prompt:\n%s", v)
	}
	eq(t, "the rows of the last good filter stay", len(m.tbl.rows), 3)
	m = press(t, m, "enter")
	eq(t, "enter keeps the prompt on an error", m.top().kind, layerFilter)
	m = press(t, m, "esc")
	eq(t, "esc clears", len(m.tbl.rows), 24)
	eq(t, "and the error goes", m.filterErr, "")

	m = press(t, m, "/")
	m = typeText(t, m, "~v23")
	eq(t, "fuzzy", shown(m), []string{"vm-00023"})
	if v := view(m); !strings.Contains(v, "enter applies · esc clears") {
		t.Errorf("the prompt does not say enter/esc:\n%s", v)
	}
}

// The filter history outlives the process: enter records a filter in the
// file, a new dashboard recalls it with ↑ (and ↓ back to what was typed)
// but does not apply it at start.
func TestFilterHistoryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "guestdeck", "filters")
	opts := Options{FilterHistory: history.Open(path)}
	m, _ := newTestModel(10, 120, 30, opts)
	for _, f := range []string{"tag:web", `re:^vm-0000[1-3]`} {
		m = press(t, m, "/", "esc", "/") // esc clears the last one
		m = typeText(t, m, f)
		m = press(t, m, "enter")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "file", string(b), "tag:web\nre:^vm-0000[1-3]\n")
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("history file mode %v", st.Mode())
	}

	m, _ = newTestModel(10, 120, 30, Options{FilterHistory: history.Open(path)})
	eq(t, "not applied at start", m.tbl.filter, "")
	m = press(t, m, "/")
	m = typeText(t, m, "draft")
	m = press(t, m, "up")
	eq(t, "↑ newest", m.filterInput.Value(), `re:^vm-0000[1-3]`)
	eq(t, "applied as recalled", len(m.tbl.rows), 3)
	m = press(t, m, "up", "up")
	eq(t, "↑ oldest (and no further)", m.filterInput.Value(), "tag:web")
	m = press(t, m, "down", "down")
	eq(t, "↓ back to the draft", m.filterInput.Value(), "draft")
	if v := view(m); !strings.Contains(v, "↑/↓ history") {
		t.Errorf("the prompt does not offer the history:\n%s", v)
	}
}

// A history file someone else wrote: its escapes never reach the screen
// (those entries are dropped), and the dashboard starts.
func TestFilterHistoryHostile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "filters")
	if err := os.WriteFile(path, []byte("ok\n\x1b]52;c;cm0gLXJmIH4=\x07\nweb\u202e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, _ := newTestModel(5, 120, 30, Options{FilterHistory: history.Open(path)})
	m = press(t, m, "/", "up")
	eq(t, "the clean entry", m.filterInput.Value(), "ok")
	m = press(t, m, "up")
	eq(t, "nothing older", m.filterInput.Value(), "ok")
	screenSafe(t, "filter prompt", m.View().Content)
}

// The `:` palette: as you type, the matching commands with their help;
// tab cycles (shift+tab back) and the arrows pick; enter runs the pick.
func TestCommandPalette(t *testing.T) {
	m, src := newTestModel(5, 120, 30, Options{})
	m = press(t, m, ":")
	m = typeText(t, m, "fr")
	v := view(m)
	if !strings.Contains(v, " freeze  ") || !strings.Contains(v, "freeze the filesystems (writes block until thawed)") {
		t.Errorf("palette for fr:\n%s", v)
	}
	m = typeText(t, m, "eez")
	// Those it begins, then those with it inside.
	want := []string{"freeze", "sort freeze", dryRunVerb + " freeze"}
	var got []string
	for _, it := range m.nav.matches {
		got = append(got, it.text)
	}
	eq(t, "matches for freez", got, want)
	for i, w := range append(want, want[0]) {
		m = press(t, m, "tab")
		eq(t, "tab "+string(rune('1'+i)), m.cmdInput.Value(), w)
	}
	m = press(t, m, "shift+tab")
	eq(t, "shift+tab back", m.cmdInput.Value(), want[2])
	m = press(t, m, "down")
	eq(t, "↓ on", m.cmdInput.Value(), want[0])
	m = press(t, m, "up")
	eq(t, "↑ back", m.cmdInput.Value(), want[2])
	if v := view(m); !strings.Contains(v, "3 of 3") && !strings.Contains(v, "show what it would send") {
		t.Errorf("picked line:\n%s", v)
	}
	m = press(t, m, "esc", ":")
	m = typeText(t, m, "pin")
	m = press(t, m, "tab", "enter")
	if len(src.runs) != 1 || src.runs[0].action.Kind != fleet.ActPing {
		t.Fatalf("enter did not run the pick: %v", m.status)
	}

	// Typing again after a pick starts a new list.
	m = press(t, m, ":")
	m = typeText(t, m, "boot")
	v = view(m)
	if !strings.Contains(v, " reboot ") || !strings.Contains(v, "restart (= shutdown reboot)") {
		t.Errorf("palette for boot (inside a word):\n%s", v)
	}
	// tab on an empty line lists every command.
	m = press(t, m, "esc", ":", "tab")
	eq(t, "empty line, tab", m.cmdInput.Value(), m.nav.commands[0].text)
	m = press(t, m, "esc")
	if len(src.runs) != 1 {
		t.Errorf("%d runs", len(src.runs))
	}
}

// The `:` line takes every word the CLI's run takes (the action table's
// names, aliases, short forms and mode aliases), and completion offers
// each.
func TestCommandLineTakesEveryCLIWord(t *testing.T) {
	m, _ := newTestModel(3, 120, 30, Options{})
	comps := m.completions()
	for _, s := range fleet.Specs() {
		for _, w := range s.Words() {
			if !slices.ContainsFunc(comps, func(c string) bool { return c == w || strings.HasPrefix(c, w+" ") }) {
				t.Errorf("completion lacks %q (%s)", w, s.Kind)
			}
		}
	}
	for _, line := range []string{"fz", "th", "sd reboot", "reboot", "sus mem", "trim", "refresh", "cat /etc/hostname", "passwd root"} {
		want, err := fleet.ParseAction(strings.Fields(line))
		if err != nil {
			t.Fatalf("the CLI refuses %q: %v", line, err)
		}
		m := press(t, m, ":")
		m = typeText(t, m, line)
		got, ok := m.pendingAction()
		if !ok || got.String() != want.String() {
			t.Errorf(":%s reads as %v (%v), the CLI as %v", line, got, ok, want)
		}
	}
}

// A paste into the jump is its text: controls and newlines are dropped,
// never taken as keys.
func TestJumpPaste(t *testing.T) {
	m, _ := namedModel(t, Options{}, "alpha", "beta-7", "gamma")
	m = press(t, m, "'")
	next, _ := m.Update(tea.PasteMsg{Content: "be\x1b[2J\nta-7\r"})
	m = next.(Model)
	eq(t, "pasted", m.nav.jump, "be[2Jta-7")
	eq(t, "still open", m.top().kind, layerJump)
	m = press(t, m, "backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace")
	eq(t, "edited", m.nav.jump, "be")
	eq(t, "cursor", cursorName(m), "beta-7")
}
