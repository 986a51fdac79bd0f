package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
)

// groupGuests are n test guests with four OSes: Debian, Ubuntu, Windows and
// none (no /etc/os-release, no kernel: "(no OS)"); every fourth guest is
// in two tags.
func groupGuests(n int) []*fleet.Guest {
	gs := testGuests(n)
	for i, g := range gs {
		switch i % 4 {
		case 1:
			g.OS = &agentclient.OSInfo{PrettyName: "Ubuntu 24.04.1 LTS", ID: "ubuntu"}
		case 2:
			g.OS = &agentclient.OSInfo{PrettyName: "Windows Server 2022 Standard", ID: "mswindows"}
		case 3:
			g.OS = nil
		}
		if i%4 == 0 {
			g.Tags = append(g.Tags, "prod")
		}
	}
	return gs
}

// newGroupModel is a test model on guests, colour off.
func newGroupModel(guests []*fleet.Guest, w, h int, opts Options) (Model, *fakeSource) {
	src := newFakeSource(guests)
	opts.Now = func() time.Time { return testNow }
	opts.Styles = themes.Mono()
	m := New(src, opts)
	m.resize(w, h)
	return m, src
}

func command(t *testing.T, m Model, line string) Model {
	t.Helper()
	m = press(t, m, ":")
	m = typeText(t, m, line)
	return press(t, m, "enter")
}

// lines is the table as it is laid out: "# KEY" for a header, a guest's
// name for its row.
func lines(m Model) []string {
	var out []string
	for i := range m.tbl.lineCount() {
		if g := m.tbl.guestAt(i); g != nil {
			out = append(out, g.Name)
		} else {
			out = append(out, "# "+m.tbl.groups[m.tbl.groupAt(i)].key)
		}
	}
	return out
}

// headers are the group keys in line order.
func headers(m Model) []string {
	var out []string
	for _, l := range lines(m) {
		if k, ok := strings.CutPrefix(l, "# "); ok {
			out = append(out, k)
		}
	}
	return out
}

func TestGroupBy(t *testing.T) {
	tests := []struct {
		by      string
		headers []string
		keyOf   func(g *fleet.Guest) string
	}{
		{"os", []string{"Debian GNU/Linux 12 (bookworm)", "Ubuntu 24.04.1 LTS", "Windows Server 2022 Standard", ""},
			func(g *fleet.Guest) string {
				if g.OS == nil {
					return ""
				}
				return g.OS.PrettyName
			}},
		// In fleet.States' order, not by name.
		{"state", []string{"ready", "frozen", "connecting", "silent", "unreachable"}, func(g *fleet.Guest) string { return string(g.State) }},
		// Under the first tag only: prod is every fourth guest's second tag.
		{"tag", []string{"batch", "db", "web"}, func(g *fleet.Guest) string { return g.Tags[0] }},
		{"host", []string{"hv1", "hv2", "hv3"}, func(g *fleet.Guest) string { return g.Host }},
	}
	for _, tt := range tests {
		t.Run(tt.by, func(t *testing.T) {
			gs := groupGuests(24)
			m, _ := newGroupModel(gs, 120, 40, Options{})
			m = command(t, m, "group "+tt.by)
			eq(t, "headers", headers(m), tt.headers)
			// Every guest once, under its own header, in name order inside it.
			seen := map[string]bool{}
			cur := ""
			var inGroup []string
			check := func() {
				if !slices.IsSorted(inGroup) {
					t.Errorf("group %q not in name order: %v", cur, inGroup)
				}
			}
			for _, l := range lines(m) {
				if k, ok := strings.CutPrefix(l, "# "); ok {
					check()
					cur, inGroup = k, nil
					continue
				}
				if seen[l] {
					t.Errorf("%s shown twice", l)
				}
				seen[l] = true
				inGroup = append(inGroup, l)
				for _, g := range gs {
					if g.Name == l && tt.keyOf(g) != cur {
						t.Errorf("%s under %q, want %q", l, cur, tt.keyOf(g))
					}
				}
			}
			check()
			eq(t, "guests shown", len(seen), len(gs))
			eq(t, "rows", len(m.tbl.rows), len(gs))

			m = command(t, m, "group none")
			eq(t, "ungrouped lines", m.tbl.lineCount(), len(gs))
			eq(t, "ungrouped headers", len(headers(m)), 0)
		})
	}
}

// A header tells the count and the states other than ready; rows inside a
// group follow a descending sort too.
func TestGroupHeaderSummaryAndSort(t *testing.T) {
	m, _ := newGroupModel(groupGuests(24), 120, 40, Options{})
	m = command(t, m, "group host")
	v := view(m)
	// hv1 is guests 0, 3, ... 21, whose states (i%7) are 0,3,6,2,5,1,4,0:
	// ready, frozen, connecting, ready, unreachable, ready, silent, ready.
	for _, want := range []string{"▾ hv1  8 · 1 frozen · 1 connecting · 1 silent · 1 unreachable"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	m = press(t, m, "S") // name, descending
	l := lines(m)
	eq(t, "first group, descending", l[:4], []string{"# hv1", "vm-00021", "vm-00018", "vm-00015"})
}

func TestGroupFoldAndTargets(t *testing.T) {
	m, _ := newGroupModel(groupGuests(12), 120, 40, Options{})
	m = command(t, m, "group tag")
	// batch: 2,5,8,11; db: 1,4,7,10; web: 0,3,6,9.
	eq(t, "lines", lines(m)[:6], []string{"# batch", "vm-00002", "vm-00005", "vm-00008", "vm-00011", "# db"})

	// z on a row of the group folds it and leaves the cursor on its header.
	m = press(t, m, "g", "down", "down", "z")
	eq(t, "folded", lines(m)[:3], []string{"# batch", "# db", "vm-00001"})
	eq(t, "cursor on the header", m.tbl.cursor, 0)
	if m.cursorGuest() != nil {
		t.Errorf("cursor guest on a header = %s", m.cursorGuest().Name)
	}
	eq(t, "no target on a header", len(m.targets()), 0)
	m = press(t, m, "p")
	if !strings.Contains(m.status, "no guest selected") || !strings.Contains(m.status, "header") {
		t.Errorf("ping on a header: status %q", m.status)
	}

	// Mark all shown leaves the folded group's guests out of the targets.
	m = press(t, m, "ctrl+a")
	got := marked(m)
	eq(t, "mark all", len(got), 8)
	for _, n := range got {
		if slices.Contains([]string{"vm-00002", "vm-00005", "vm-00008", "vm-00011"}, n) {
			t.Errorf("folded %s is a target", n)
		}
	}
	m = press(t, m, "esc")

	// space on the folded header marks its guests, and they are targets.
	m = press(t, m, "g", "space")
	eq(t, "header marks", marked(m), []string{"vm-00002", "vm-00005", "vm-00008", "vm-00011"})
	eq(t, "space moved down", m.tbl.cursor, 1)
	if !strings.Contains(view(m), "●  ▸ batch") {
		t.Errorf("the marked header does not show ●:\n%s", view(m))
	}
	// Again: unmarks them.
	m = press(t, m, "g", "space")
	eq(t, "header unmarks", len(marked(m)), 0)

	// z on the header unfolds; the cursor stays on it.
	m = press(t, m, "g", "z")
	eq(t, "unfolded", lines(m)[:2], []string{"# batch", "vm-00002"})
	eq(t, "cursor", m.tbl.cursor, 0)

	// - folds all, - again unfolds all.
	m = press(t, m, "-")
	eq(t, "all folded", lines(m), []string{"# batch", "# db", "# web"})
	eq(t, "no row shown", len(m.tbl.rows), 0)
	m = press(t, m, "-")
	eq(t, "all unfolded", m.tbl.lineCount(), 15)

	// Ungrouped, the fold keys say how to group.
	m = command(t, m, "group none")
	m = press(t, m, "z")
	if !strings.Contains(m.status, ":group") {
		t.Errorf("z ungrouped: status %q", m.status)
	}
}

// A snapshot where the cursor's guest moves to a folded group puts the
// cursor on that group's header; marks of a folded group's guests stay
// and stay targets.
func TestGroupFoldedAcrossSnapshots(t *testing.T) {
	gs := groupGuests(12)
	m, src := newGroupModel(gs, 120, 40, Options{})
	m = command(t, m, "group state")
	// Fold frozen (guests 3, 10), mark vm-00003 first.
	i := slices.Index(lines(m), "vm-00003")
	m.moveTo(i)
	m = press(t, m, "space")
	m.moveTo(i)
	m = press(t, m, "z")
	eq(t, "frozen folded", slices.Contains(lines(m), "vm-00003"), false)
	eq(t, "marked folded guest is a target", marked(m), []string{"vm-00003"})

	// vm-00000 (ready, the cursor's) becomes frozen.
	m.moveTo(slices.Index(lines(m), "vm-00000"))
	gs = groupGuests(12)
	gs[0].State = fleet.Frozen
	src.set(gs)
	next, _ := m.Update(changedMsg{})
	m = next.(Model)
	eq(t, "cursor on frozen's header", lines(m)[m.tbl.cursor], "# frozen")
}

// ' jumps to guests, never to headers, and unfolded counts move by lines.
func TestGroupJumpAndCount(t *testing.T) {
	m, _ := newGroupModel(groupGuests(12), 120, 40, Options{})
	m = command(t, m, "group tag")
	m = press(t, m, "'")
	m = typeText(t, m, "vm-0000")
	eq(t, "jump lands on a guest", m.cursorGuest() != nil, true)
	eq(t, "first match in table order", m.cursorGuest().Name, "vm-00002")
	m = press(t, m, "tab")
	eq(t, "next match", m.cursorGuest().Name, "vm-00005")
	m = press(t, m, "esc", "g")
	m = typeText(t, m, "5")
	m = press(t, m, "j")
	eq(t, "5j moves five lines, the header one of them", lines(m)[m.tbl.cursor], "# db")
	m = typeText(t, m, "3")
	m = press(t, m, "G")
	eq(t, "3G", lines(m)[m.tbl.cursor], "vm-00005")
	m = press(t, m, "G")
	eq(t, "G is the last line", m.tbl.cursor, m.tbl.lineCount()-1)

	// A jump to a guest of a folded group unfolds that group only.
	m = press(t, m, "-", "'")
	m = typeText(t, m, "vm-00004")
	eq(t, "jump into a folded group", m.cursorGuest().Name, "vm-00004")
	eq(t, "only db unfolded", headers(m), []string{"batch", "db", "web"})
	eq(t, "folds", fmt.Sprint(m.tbl.folded), "map[batch:true web:true]")
	m = press(t, m, "enter")
	eq(t, "enter keeps it open", fmt.Sprint(m.tbl.folded), "map[batch:true web:true]")

	// esc goes back: the group the jump opened folds again.
	m = press(t, m, "g", "-")
	eq(t, "all folded again", len(m.tbl.rows), 0)
	m = press(t, m, "'")
	m = typeText(t, m, "vm-00009")
	eq(t, "jump into web", m.cursorGuest().Name, "vm-00009")
	m = press(t, m, "esc")
	eq(t, "esc folds web again", len(m.tbl.rows), 0)
	eq(t, "and goes back", lines(m)[m.tbl.cursor], "# batch")
}

// The held order (o) holds inside each group.
func TestGroupHeldOrder(t *testing.T) {
	gs := groupGuests(12)
	m, src := newGroupModel(gs, 120, 40, Options{})
	m = command(t, m, "sort cpu")
	m = command(t, m, "group host")
	m = press(t, m, "o")
	before := lines(m)
	gs = groupGuests(12)
	for i, g := range gs { // the busiest become the idlest
		g.Metrics.CPUBusy = fleet.Rate{V: float64(i), OK: true}
	}
	src.set(gs)
	next, _ := m.Update(changedMsg{})
	m = next.(Model)
	eq(t, "held order", lines(m), before)
	m = press(t, m, "o") // released: sorted again, busiest first in each group
	eq(t, "released", lines(m)[:3], []string{"# hv1", "vm-00009", "vm-00006"})
}

// A visual range over a header marks the guests in it, not the header's
// group.
func TestGroupVisualRange(t *testing.T) {
	m, _ := newGroupModel(groupGuests(12), 120, 40, Options{})
	m = command(t, m, "group tag")
	m.moveTo(slices.Index(lines(m), "vm-00011"))
	m = press(t, m, "v", "down", "down")
	eq(t, "range", marked(m), []string{"vm-00011", "vm-00001"})
	m = press(t, m, "v")
	eq(t, "committed", marked(m), []string{"vm-00011", "vm-00001"})

	// Folding during a range fixes it as marks first: the lines move.
	m = press(t, m, "esc")
	m.moveTo(slices.Index(lines(m), "vm-00008"))
	m = press(t, m, "v", "down", "z")
	eq(t, "range fixed before the fold", marked(m), []string{"vm-00008", "vm-00011"})
	eq(t, "visual ended", m.visual, false)
}

// An OS name is the guest's text: its header escapes it, cuts it to fit
// the line with the count still shown, and never widens the line.
func TestGroupHostileOSName(t *testing.T) {
	gs := groupGuests(8)
	hostile := "Evil\x1b]52;c;cm0gLXJmIC8=\x07OS\u202e\x1b[2J" + strings.Repeat("界", 5000)
	for _, g := range gs[3:6] { // frozen, silent, unreachable
		g.OS = &agentclient.OSInfo{PrettyName: hostile}
	}
	for _, w := range []int{80, 100, 160} {
		m, _ := newGroupModel(gs, w, 30, Options{})
		m = command(t, m, "group os")
		raw := m.View().Content
		for _, bad := range []string{"\x1b]52", "\x1b[2J", "\u202e", "\x07"} {
			if strings.Contains(raw, bad) {
				t.Errorf("%d: the screen has %q from the OS name", w, bad)
			}
		}
		var header string
		for _, l := range strings.Split(ansi.Strip(raw), "\n") {
			if strings.Contains(l, `▾ "Evil`) {
				header = l
			}
			if got := ansi.StringWidth(l); got > w {
				t.Errorf("%d: line %d cells wide: %q", w, got, l)
			}
		}
		if !strings.HasSuffix(strings.TrimRight(header, " "), "  3 · 1 frozen · 1 silent · 1 unreachable") {
			t.Errorf("%d: the header lost its count: %q", w, header)
		}
		// The key is cut for grouping: the name's 15 KB are not a map key.
		if k := m.tbl.groups[0].key; len(k) > sortKeyBytes {
			t.Errorf("group key is %d bytes", len(k))
		}
	}
}

// A saved view's group applies with the view; CheckViews refuses an
// unknown one.
func TestGroupView(t *testing.T) {
	views := []View{{Name: "default"}, {Name: "by-os", Key: "alt+3", Group: "os"}}
	m, _ := newGroupModel(groupGuests(8), 120, 40, Options{Views: views})
	eq(t, "default ungrouped", len(headers(m)), 0)
	m = press(t, m, "alt+3")
	eq(t, "view groups", len(headers(m)), 4)
	if !strings.Contains(view(m), "group os") {
		t.Errorf("the title does not say the grouping:\n%s", view(m))
	}
	m = command(t, m, "view default")
	eq(t, "back to ungrouped", len(headers(m)), 0)

	err := CheckViews(nil, []View{{Name: "v", Group: "datacentre"}})
	if err == nil || !strings.Contains(err.Error(), `group "datacentre"`) || !strings.Contains(err.Error(), "os, state, tag, host") {
		t.Errorf("CheckViews = %v", err)
	}
}

// :group completes in the palette; its fold keys can be rebound and are in
// help.
func TestGroupPaletteAndKeys(t *testing.T) {
	m, _ := newGroupModel(groupGuests(8), 120, 40, Options{Keys: map[string][]string{"fold": {"alt+z"}, "fold_all": {"alt+x"}}})
	m = press(t, m, ":")
	m = typeText(t, m, "gro")
	var got []string
	for _, it := range m.nav.matches {
		got = append(got, it.text)
	}
	eq(t, "palette", got, []string{"group os", "group state", "group tag", "group host", "group none"})
	m = press(t, m, "tab", "enter")
	eq(t, "tab picked group os", m.tbl.group, groupOS)
	m = press(t, m, "g", "alt+z")
	eq(t, "rebound fold", m.tbl.folded["Debian GNU/Linux 12 (bookworm)"], true)
	m = press(t, m, "alt+x")
	eq(t, "rebound fold all", len(m.tbl.rows), 0)
	m = press(t, m, "?")
	if v := view(m); !strings.Contains(v, "alt+z") || !strings.Contains(v, "fold group") {
		t.Errorf("help lacks the fold key:\n%s", v)
	}
	m = command(t, press(t, m, "esc"), "group bogus")
	if !strings.Contains(m.status, "write one of none, os") {
		t.Errorf(":group bogus: status %q", m.status)
	}
}

// The goldens: grouped by OS, Ubuntu folded, Windows marked from its
// header, the pane closed so that every header shows; the sizes.
func TestGroupGolden(t *testing.T) {
	for _, sz := range [][2]int{{80, 24}, {100, 30}, {160, 45}} {
		name := fmt.Sprintf("group_os_folded_%dx%d", sz[0], sz[1])
		t.Run(name, func(t *testing.T) {
			m, _ := newGroupModel(groupGuests(24), sz[0], sz[1], Options{})
			m = command(t, m, "group os")
			m.moveTo(slices.Index(lines(m), "vm-00005"))
			m = press(t, m, "z", "down", "space", "up", "i")
			got := view(m)
			ls := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if len(ls) != sz[1] {
				t.Errorf("view is %d lines, want %d", len(ls), sz[1])
			}
			for i, l := range ls {
				if w := ansi.StringWidth(l); w > sz[0] {
					t.Errorf("line %d is %d wide: %q", i, w, l)
				}
			}
			golden(t, name, got)
		})
	}
}

// Every table key on a header does its thing or says why not, and no
// action starts (or asks) on a header with nothing marked.
func TestGroupHeaderKeys(t *testing.T) {
	actions := []string{"p", "F", "T", "X", "Z", "C", "r"}
	others := []string{"enter", "y", "f", "!", "J", "K", "v", "*", "i", "tab", "P", "e", "H", "A", "o", "s", "S"}
	for _, k := range append(actions, others...) {
		t.Run(k, func(t *testing.T) {
			m, src := newGroupModel(groupGuests(12), 120, 40, Options{})
			m = command(t, m, "group host")
			m = press(t, m, "g", k)
			if slices.Contains(actions, k) {
				if len(src.runs) > 0 || m.top().kind == layerConfirm {
					t.Errorf("%s on a header: runs %v, layer %v", k, src.runs, m.top().kind)
				}
				if !strings.Contains(m.status, "no guest selected") {
					t.Errorf("%s on a header: status %q", k, m.status)
				}
			}
			m = press(t, m, "esc")
			if v := view(m); !strings.Contains(v, "guestdeck 12 guests") {
				t.Errorf("after %s:\n%s", k, v)
			}
		})
	}
}

// TestVisualRangeNotJoinedByAGuest: a visual range is fixed as marks when a
// new snapshot comes, so a guest that reports another OS (moving itself
// between the range's ends in an OS grouping) is not taken in by it.
func TestVisualRangeNotJoinedByAGuest(t *testing.T) {
	gs := testGuests(6)
	osOf := func(gs []*fleet.Guest, name string, os string) []*fleet.Guest {
		out := make([]*fleet.Guest, len(gs))
		for i, g := range gs {
			c := *g
			if c.OS != nil {
				o := *c.OS
				c.OS = &o
			}
			if c.Name == name || name == "" && i%2 == 1 {
				c.OS = &agentclient.OSInfo{PrettyName: os}
			}
			out[i] = &c
		}
		return out
	}
	gs = osOf(gs, "", "Fedora Linux 41") // vm-00001, 3, 5 Fedora; the rest Debian
	m, src := newTestModel(6, 120, 30, Options{})
	src.set(gs)
	m, _ = send(t, m, changedMsg{})
	m = enterLine(t, m, "group os")
	// Debian's header is first: its guests vm-00000, 2, 4 follow it.
	m = press(t, m, "g", "j", "v", "j", "j")
	// vm-00001 now says it is Debian: it would sort between the range's ends.
	src.set(osOf(gs, "vm-00001", "Debian GNU/Linux 12 (bookworm)"))
	m, _ = send(t, m, changedMsg{})
	press(t, m, "p")
	if len(src.runs) != 1 {
		t.Fatalf("runs %+v", src.runs)
	}
	if got := src.runs[0].names; slices.Contains(got, "vm-00001") {
		t.Errorf("the ping went to %v: vm-00001 joined the range by changing its OS", got)
	}
}

// TestGroupNoOSNotSpoofed: a guest that names its OS "(no OS)" gets a
// header of its own that does not look like the real one (the guests that
// report no OS): an OS name is the guest's text and is drawn quoted, the
// group of guests without one is not. Marking the real header marks its
// guest only. Two OS names that escape alike ("\x1b" sent raw by one guest,
// as the four characters \x1b by the other) are numbered apart.
func TestGroupNoOSNotSpoofed(t *testing.T) {
	gs := testGuests(4)
	for _, g := range gs {
		g.State, g.Err = fleet.Ready, ""
	}
	gs[0].OS = nil                                              // vm-00000: no OS info
	gs[1].OS = &agentclient.OSInfo{PrettyName: "(no OS)"}       // vm-00001: hostile
	gs[2].OS = &agentclient.OSInfo{PrettyName: "Evil\x1b"}      // vm-00002
	gs[3].OS = &agentclient.OSInfo{PrettyName: `Evil` + `\x1b`} // vm-00003: draws as vm-00002's
	m, _ := newGroupModel(gs, 100, 30, Options{})
	m = command(t, m, "group os")
	var heads []string
	for _, l := range strings.Split(ansi.Strip(m.View().Content), "\n") {
		if _, h, ok := strings.Cut(l, "▾ "); ok {
			heads = append(heads, strings.TrimRight(h, " "))
		}
	}
	eq(t, "headers", heads, []string{`"(no OS)"  1`, `(1) "Evil\x1b"  1`, `(2) "Evil\x1b"  1`, `(no OS)  1`})
	eq(t, "group keys", headers(m), []string{"(no OS)", "Evil\x1b", `Evil\x1b`, ""})

	m.moveTo(slices.Index(lines(m), "# "))
	m = press(t, m, "space")
	eq(t, "marked from the real (no OS) header", marked(m), []string{"vm-00000"})
	if d := strings.Join(m.groupDetail(m.tbl.groupAt(m.tbl.cursor)), "\n"); !strings.Contains(d, "os (no OS): 1 guest") {
		t.Errorf("detail of the real header: %q", d)
	}
	m.moveTo(slices.Index(lines(m), "# (no OS)"))
	if d := strings.Join(m.groupDetail(m.tbl.groupAt(m.tbl.cursor)), "\n"); !strings.Contains(d, `os "(no OS)": 1 guest`) {
		t.Errorf("detail of the guest's header: %q", d)
	}
}
