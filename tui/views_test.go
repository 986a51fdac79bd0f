package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/fleet"
)

func colWords(cols []column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = colWord(c.id)
	}
	return out
}

func TestLayoutColumns(t *testing.T) {
	tests := []struct {
		name              string
		width             int
		sort              colID
		set               []colID
		anyErr, anyFrozen bool
		want              []string
	}{
		// What an operator needs first, at the smallest common terminal.
		{name: "80 quiet", width: 80, want: []string{"name", "state", "addresses", "os"}},
		{name: "80 errors frozen", width: 80, anyErr: true, anyFrozen: true, want: []string{"name", "state", "addresses", "os"}},
		// ERROR only while some guest has one; then before FREEZE.
		{name: "100 quiet", width: 100, want: []string{"name", "state", "addresses", "os", "host", "vcpus", "cpu"}},
		{name: "100 errors", width: 100, anyErr: true, want: []string{"name", "state", "addresses", "os", "host", "error"}},
		{name: "100 frozen", width: 100, anyFrozen: true, want: []string{"name", "state", "addresses", "os", "freeze", "cpu"}},
		{name: "160 quiet, no ERROR", width: 160,
			want: []string{"name", "state", "addresses", "os", "host", "agent", "vcpus", "cpu", "iow", "stl", "load", "dsk-r", "fs", "skew", "rtt"}},
		{name: "160 frozen", width: 160, anyFrozen: true,
			want: []string{"name", "state", "addresses", "os", "freeze", "host", "agent", "vcpus", "cpu", "iow", "load", "fs", "skew", "rtt"}},
		// The sort column always stays, next in priority after the name
		// (OS gives way).
		{name: "80 sort rtt", width: 80, sort: colRTT, want: []string{"name", "state", "addresses", "host", "rtt"}},
		// A view's own set: its order, dropped from its end, NAME first.
		{name: "set in order", width: 160, set: []colID{colState, colFreeze, colHost, colErr},
			want: []string{"name", "state", "freeze", "host", "error"}},
		{name: "set too wide drops the end", width: 80, set: []colID{colName, colOS, colAddr, colState, colHost},
			want: []string{"name", "os", "addresses", "state"}},
		{name: "set without the sort column", width: 120, sort: colCPUBusy, set: []colID{colName, colState},
			want: []string{"name", "cpu", "state"}},
		{name: "set shows ERROR even with no errors", width: 80, set: []colID{colName, colErr}, want: []string{"name", "error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := layoutColumns(tt.width, tt.sort, tt.set, tt.anyErr, tt.anyFrozen)
			if w := colWords(got); !slices.Equal(w, tt.want) {
				t.Errorf("columns = %v, want %v", w, tt.want)
			}
			total := prefixWidth + len(got) - 1 // the separators
			for _, c := range got {
				total += c.width
			}
			if total != tt.width {
				t.Errorf("columns span %d cells, want the width %d", total, tt.width)
			}
		})
	}
}

// The table decides ERROR and FREEZE from the guests the filter leaves.
func TestColumnsFollowTheRows(t *testing.T) {
	m, _ := newTestModel(24, 100, 30, Options{})
	if w := colWords(m.visibleColumns()); !slices.Contains(w, "error") {
		t.Errorf("guests with errors, columns %v lack error", w)
	}
	m = press(t, m, "/")
	m = typeText(t, m, "state:ready")
	m = press(t, m, "enter")
	if w := colWords(m.visibleColumns()); slices.Contains(w, "error") || slices.Contains(w, "freeze") {
		t.Errorf("only ready guests shown, yet columns %v", w)
	}
}

var testViews = []View{
	{Name: "frozen", Key: "alt+1", Filter: "state:frozen", Sort: "name", Columns: []string{"name", "state", "freeze", "host", "error"}},
	{Name: "busy", Key: "alt+2", Sort: "cpu", Columns: []string{"name", "cpu", "load"}},
}

func TestViewSwitchByKey(t *testing.T) {
	m, _ := newTestModel(24, 100, 30, Options{Views: testViews})
	eq(t, "starts in the default view", m.views.current, DefaultView)
	m = press(t, m, "alt+1")
	var names []string
	for _, g := range m.tbl.rows {
		names = append(names, g.Name)
	}
	eq(t, "frozen view rows", names, []string{"vm-00003", "vm-00010", "vm-00017"})
	eq(t, "frozen view columns", colWords(m.visibleColumns()), []string{"name", "state", "freeze", "host", "error"})
	v := view(m)
	if !strings.Contains(v, "guestdeck 24 guests · view frozen · filter \"state:frozen\": 3 shown") ||
		!strings.Contains(v, "NAME↑            STATE         FREEZE        HOST       ERROR") {
		t.Errorf("frozen view not on screen:\n%s", v)
	}

	m = press(t, m, "alt+2")
	eq(t, "busy view: every guest", len(m.tbl.rows), 24)
	eq(t, "busy view sorts busiest first", [2]any{m.tbl.sortCol, m.tbl.sortDesc}, [2]any{colCPUBusy, true})
	eq(t, "busy view columns", colWords(m.visibleColumns()), []string{"name", "cpu", "load"})

	m = press(t, m, ":")
	m = typeText(t, m, "view default")
	m = press(t, m, "enter")
	eq(t, ":view default", [3]any{m.views.current, len(m.tbl.rows), m.tbl.sortCol}, [3]any{DefaultView, 24, colName})
	if m.tbl.cols != nil {
		t.Errorf("default view columns = %v, want by width", m.tbl.cols)
	}

	m = press(t, m, ":")
	m = typeText(t, m, "view nope")
	m = press(t, m, "enter")
	eq(t, "unknown view", m.status, `view: no view "nope"; views: default, frozen, busy`)
}

// A view named default is the one the dashboard opens with.
func TestDefaultViewConfigured(t *testing.T) {
	m, _ := newTestModel(24, 100, 30, Options{Views: []View{{Name: DefaultView, Filter: "tag:db", Columns: []string{"name", "host"}}}})
	eq(t, "opens filtered", [2]any{m.tbl.filter, len(m.tbl.rows)}, [2]any{"tag:db", 8})
	eq(t, "opens with its columns", colWords(m.visibleColumns()), []string{"name", "host"})
	if v := view(m); strings.Contains(v, "view default") {
		t.Errorf("the title names the default view:\n%s", v)
	}
}

func TestViewCompletion(t *testing.T) {
	m, _ := newTestModel(5, 100, 30, Options{Views: testViews})
	m = press(t, m, ":")
	m = typeText(t, m, "view fr")
	m = press(t, m, "tab", "enter")
	eq(t, "tab completes the view name", m.views.current, "frozen")
}

func TestColumnsCommand(t *testing.T) {
	m, _ := newTestModel(24, 100, 30, Options{Views: testViews})
	run := func(line string) {
		t.Helper()
		m = press(t, m, ":")
		m = typeText(t, m, line)
		m = press(t, m, "enter")
	}
	run("columns name,os state")
	eq(t, "listed", colWords(m.visibleColumns()), []string{"name", "os", "state"})
	run("columns +host -os")
	eq(t, "edited", colWords(m.visibleColumns()), []string{"name", "state", "host"})
	run("columns +bogus")
	eq(t, "unknown column refused", strings.HasPrefix(m.status, `columns: unknown column "bogus"; columns: name, state, addresses`), true)
	eq(t, "columns kept", colWords(m.visibleColumns()), []string{"name", "state", "host"})
	run("columns name,state +os")
	eq(t, "mixed refused", m.statusErr, true)

	// Per view, for the session: another view has its own; coming back
	// finds what :columns set.
	m = press(t, m, "alt+1")
	eq(t, "frozen view's own", colWords(m.visibleColumns()), []string{"name", "state", "freeze", "host", "error"})
	run("columns name,error")
	m = press(t, m, ":")
	m = typeText(t, m, "view default")
	m = press(t, m, "enter")
	eq(t, "default keeps its session columns", colWords(m.visibleColumns()), []string{"name", "state", "host"})
	m = press(t, m, "alt+1")
	eq(t, "frozen keeps its session columns", colWords(m.visibleColumns()), []string{"name", "error"})
	run("columns reset")
	eq(t, "reset restores the view's own", colWords(m.visibleColumns()), []string{"name", "state", "freeze", "host", "error"})
	run("columns auto")
	if m.tbl.cols != nil {
		t.Errorf("auto: cols = %v", m.tbl.cols)
	}
}

func TestCheckViews(t *testing.T) {
	tests := []struct {
		name  string
		keys  map[string][]string
		views []View
		want  string // "" for no error
	}{
		{name: "fine", views: testViews},
		{name: "action's key", views: []View{{Name: "v", Key: "F"}},
			want: `views: view "v": key "F" already does freeze; pick a free key (f1…f12 and alt+1…alt+9 are)`},
		{name: "a key [keys] gave an action", keys: map[string][]string{"ping": {"alt+1"}}, views: testViews[:1],
			want: `views: view "frozen": key "alt+1" already does ping; pick a free key (f1…f12 and alt+1…alt+9 are)`},
		{name: "a key [keys] freed", keys: map[string][]string{"freeze": {"alt+f"}}, views: []View{{Name: "v", Key: "F"}}},
		{name: "tab digit", views: []View{{Name: "v", Key: "1"}},
			want: `views: view "v": key "1" already does detail tab 1 (Overview); pick a free key (f1…f12 and alt+1…alt+9 are)`},
		{name: "ctrl+c", views: []View{{Name: "v", Key: "ctrl+c"}},
			want: `views: view "v": key "ctrl+c" already does quit; pick a free key (f1…f12 and alt+1…alt+9 are)`},
		{name: "two views one key", views: []View{{Name: "a", Key: "alt+1"}, {Name: "b", Key: "alt+1"}},
			want: `views: view "b": key "alt+1" is view "a"'s key too`},
		{name: "twice", views: []View{{Name: "a"}, {Name: "a"}}, want: `views: view "a" is defined twice`},
		{name: "no name", views: []View{{}}, want: `views: a view has no name`},
		{name: "bad column", views: []View{{Name: "a", Columns: []string{"name", "nope"}}},
			want: `views: view "a": columns: unknown column "nope"; columns: ` + strings.Join(ColumnNames(), ", ")},
		{name: "bad sort", views: []View{{Name: "a", Sort: "cpu:sideways"}},
			want: `views: view "a": sort "cpu:sideways": direction "sideways"; write cpu:asc or cpu:desc`},
		{name: "bad filter", views: []View{{Name: "a", Filter: "state:bogus"}}, want: `views: view "a": filter: ` + fleet.CheckFilter("state:bogus").Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckViews(tt.keys, tt.views)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("CheckViews = %q\nwant %q", got, tt.want)
			}
		})
	}
	// New leaves bad views out and says why, rather than binding half.
	m, _ := newTestModel(5, 100, 30, Options{Views: []View{{Name: "v", Key: "F"}}})
	eq(t, "New: no views", len(m.views.list), 0)
	eq(t, "New: says why", m.statusErr, true)
	m = press(t, m, "down", "F")
	eq(t, "F still freezes", m.top().kind, layerConfirm)
}

// Guest text in a view's columns passes the presentation boundary and keeps
// to its cells: a long name with terminal escapes and a long address. So
// does a view's own name where the title, help and picker show it.
func TestViewHostileCells(t *testing.T) {
	name := "v\x1b]0;pwn\x07\u202e"
	m, src := newTestModel(3, 80, 24, Options{Views: []View{{Name: name, Key: "alt+1", Columns: []string{"name", "addresses", "error", "os"}}}})
	gs := testGuests(3)
	gs[1].Name = "evil\x1b]52;c;aGk=\x07\x1b[2J" + strings.Repeat("\u202ex", 200)
	gs[1].Interfaces[1].IPAddresses[0].Address = strings.Repeat("1234:", 100) + "\x1b[31m"
	gs[1].Err = "boom\r\n\x1b[H" + strings.Repeat("e", 500)
	gs[1].OS.PrettyName = strings.Repeat("\x07os", 100)
	src.set(gs)
	m, _ = send(t, m, changedMsg{})
	m = press(t, m, "alt+1")
	raw := m.View().Content
	for _, bad := range []string{"\x1b]52", "\x1b[2J", "\x1b[H", "\x07", "\u202e", "\r", "\x1b[31m"} {
		if strings.Contains(raw, bad) {
			t.Errorf("screen carries %q from the guest", bad)
		}
	}
	help := press(t, m, "?").View().Content
	m = press(t, m, ":")
	m = typeText(t, m, "columns")
	picker := press(t, m, "enter").View().Content
	for what, screen := range map[string]string{"help": help, "picker": picker} {
		for _, bad := range []string{"\x1b]0", "\x07", "\u202e"} {
			if strings.Contains(screen, bad) {
				t.Errorf("%s carries %q from the view's name", what, bad)
			}
		}
	}
	lines := strings.Split(ansi.Strip(raw), "\n")
	eq(t, "lines", len(lines), 24)
	for i, l := range lines {
		if w := ansi.StringWidth(l); w != 80 {
			t.Errorf("line %d is %d wide: %q", i, w, l)
		}
	}
}

// The picker lists every column, the shown ones first; space hides or
// shows one, K/J move it, enter applies to the current view, esc leaves
// the columns as they were. NAME stays first and shown.
func TestColumnPicker(t *testing.T) {
	m, _ := newTestModel(24, 100, 30, Options{Views: testViews})
	m = press(t, m, "alt+1") // name, state, freeze, host, error
	open := func() {
		t.Helper()
		m = press(t, m, ":")
		m = typeText(t, m, "columns")
		m = press(t, m, "enter")
		eq(t, "picker open", m.top().kind, layerColumns)
	}
	open()
	v := view(m)
	for _, want := range []string{"Columns of view frozen", "▸ [•] NAME", "[x] STATE", "[x] ERROR", "[ ] ADDRESSES"} {
		if !strings.Contains(v, want) {
			t.Errorf("picker lacks %q:\n%s", want, v)
		}
	}
	m = press(t, m, "space")                         // on NAME: stays
	m = press(t, m, "down", "space")                 // hide STATE
	m = press(t, m, "down", "down", "K")             // HOST above FREEZE
	m = press(t, m, "down", "down", "down", "space") // show ADDRESSES (after ERROR)
	m = press(t, m, "enter")
	eq(t, "picker closed", m.top().kind, layerTable)
	eq(t, "applied", colWords(m.visibleColumns()), []string{"name", "host", "freeze", "error", "addresses"})

	open()
	m = press(t, m, "K", "down", "K") // NAME cannot move, nor be passed
	m = press(t, m, "down", "space", "esc")
	eq(t, "esc changes nothing", colWords(m.visibleColumns()), []string{"name", "host", "freeze", "error", "addresses"})

	open()
	m = press(t, m, "a")
	if m.tbl.cols != nil {
		t.Errorf("a: cols = %v, want by width", m.tbl.cols)
	}
}

// TestGoldenSizes: the table, the help (its first page, and its last at
// 80x24) and the freeze and shutdown confirmations at the three sizes a
// new user tried, and a saved view at 80x24.
func TestGoldenSizes(t *testing.T) {
	screens := []struct {
		name  string
		setup func(t *testing.T, m Model) Model
	}{
		{"table", func(t *testing.T, m Model) Model { return press(t, m, "down", "space", "space") }},
		{"help", func(t *testing.T, m Model) Model { return press(t, m, "?") }},
		{"confirm_freeze", func(t *testing.T, m Model) Model { return press(t, m, "down", "space", "space", "F") }},
		{"confirm_shutdown", func(t *testing.T, m Model) Model {
			m = press(t, m, "down", "space", "space", "X")
			return typeText(t, m, "2")
		}},
	}
	type shot struct {
		name  string
		w, h  int
		setup func(t *testing.T, m Model) Model
	}
	var shots []shot
	for _, sz := range [][2]int{{80, 24}, {100, 30}, {160, 45}} {
		for _, s := range screens {
			shots = append(shots, shot{fmt.Sprintf("%s_%dx%d", s.name, sz[0], sz[1]), sz[0], sz[1], s.setup})
		}
	}
	shots = append(shots,
		shot{"help_end_80x24", 80, 24, func(t *testing.T, m Model) Model { return press(t, m, "?", "G") }},
		shot{"view_frozen_80x24", 80, 24, func(t *testing.T, m Model) Model { return press(t, m, "alt+1") }},
		shot{"columns_picker_80x24", 80, 24, func(t *testing.T, m Model) Model {
			m = press(t, m, "alt+1", ":")
			m = typeText(t, m, "columns")
			return press(t, m, "enter", "down")
		}},
	)
	for _, s := range shots {
		t.Run(s.name, func(t *testing.T) {
			m, _ := newTestModel(24, s.w, s.h, Options{FreezeTimeout: 5 * time.Minute, Views: testViews})
			m = s.setup(t, m)
			got := view(m)
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if len(lines) != s.h {
				t.Errorf("view is %d lines, want %d", len(lines), s.h)
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > s.w {
					t.Errorf("line %d is %d wide (> %d): %q", i, w, s.w, l)
				}
			}
			golden(t, s.name, got)
		})
	}
}

// The wheel scrolls the help screen as the keys do.
func TestHelpWheel(t *testing.T) {
	m, _ := newTestModel(5, 80, 24, Options{})
	m = press(t, m, "?")
	m, _ = send(t, m, tea.MouseWheelMsg{X: 10, Y: 10, Button: tea.MouseWheelDown})
	eq(t, "wheel down", m.helpScroll, 3)
	m, _ = send(t, m, tea.MouseWheelMsg{X: 10, Y: 10, Button: tea.MouseWheelUp})
	m, _ = send(t, m, tea.MouseWheelMsg{X: 10, Y: 10, Button: tea.MouseWheelUp})
	eq(t, "wheel up stops at the top", m.helpScroll, 0)
}
