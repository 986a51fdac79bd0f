package tui

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// churn makes the next snapshot's guests from prev as a fleet publishes
// them: most changed guests only re-polled, some changing what the table
// is built from (state and error, freeze, OS, host, tag, the metrics),
// now and then a guest gone or a new one. Every changed guest is a new
// Guest; the others are the same pointers.
func churn(r *rand.Rand, prev []*fleet.Guest, next *int, now time.Time) []*fleet.Guest {
	gs := slices.Clone(prev)
	states := []fleet.State{fleet.Ready, fleet.Frozen, fleet.Silent, fleet.Unreachable, fleet.Connecting, "odd"}
	for range r.IntN(len(gs)/8 + 1) {
		i := r.IntN(len(gs))
		g := *gs[i]
		g.LastLive, g.RTT = now, time.Duration(1+r.IntN(20))*time.Millisecond
		g.Version++
		switch k := r.IntN(40); {
		case k < 4:
			g.State = states[r.IntN(len(states))]
			g.Err = ""
			if g.State == fleet.Silent || g.State == fleet.Unreachable {
				g.Err = "no reply " + g.Name
			}
		case k < 6:
			g.FrozenByUs = !g.FrozenByUs
			g.ThawAt = time.Time{}
			if g.FrozenByUs && r.IntN(2) == 0 {
				g.ThawAt = now.Add(time.Duration(1+r.IntN(300)) * time.Second)
			}
		case k < 8:
			os := *g.OS
			os.PrettyName = []string{"Debian 12", "Alpine 3.20", "Fedora 41"}[r.IntN(3)]
			g.OS = &os
		case k < 9:
			g.Host = fmt.Sprintf("hv%d", 1+r.IntN(4))
		case k < 10:
			g.Tags = []string{[]string{"web", "db", "batch", "edge"}[r.IntN(4)]}
		case k < 12:
			g.Err = []string{"", "", "junk before the reply"}[r.IntN(3)] // the guest's own error
		case k < 20:
			g.Metrics.CPUBusy.V = float64(r.IntN(100))
		}
		gs[i] = &g
	}
	switch r.IntN(12) {
	case 0:
		if len(gs) > 2 {
			i := r.IntN(len(gs))
			gs = slices.Delete(gs, i, i+1)
		}
	case 1:
		g := testGuest(*next)
		*next++
		i, _ := slices.BinarySearchFunc(gs, g, func(a, b *fleet.Guest) int { return strings.Compare(a.Name, b.Name) })
		gs = slices.Insert(gs, i, g)
	}
	return gs
}

// swapSetup is one way the operator looks at the table.
type swapSetup struct {
	name  string
	keys  []string // pressed before the snapshots come
	apply func(m *Model)
	// minSwaps is the fewest pulls of 400 the fast path must take (default
	// 100): under a metric sort most pulls move a row.
	minSwaps int
}

var swapSetups = []swapSetup{
	{name: "name"},
	{name: "name-desc", keys: []string{"S"}},
	{name: "state", apply: func(m *Model) { m.tbl.sortCol = colState; m.reindex() }},
	{name: "os-desc", apply: func(m *Model) { m.tbl.sortCol, m.tbl.sortDesc = colOS, true; m.reindex() }},
	{name: "freeze", apply: func(m *Model) { m.tbl.sortCol = colFreeze; m.reindex() }},
	{name: "cpu", apply: func(m *Model) { m.sortBy(colCPUBusy) }, minSwaps: 10},
	{name: "cpu-held", keys: []string{"o"}, apply: func(m *Model) { m.sortBy(colCPUBusy) }},
	{name: "filter", apply: func(m *Model) { m.tbl.filter = "host:hv1"; m.reindex() }},
	{name: "filter-state", apply: func(m *Model) { m.tbl.filter = "state:ready"; m.tbl.sortCol = colAddr; m.reindex() }},
	{name: "filter-ready-hv1", apply: func(m *Model) { m.tbl.filter = "host:hv1 state:ready"; m.reindex() }},
	{name: "group-host", apply: func(m *Model) { m.setGroup(groupHost) }},
	{name: "group-state-folded", keys: []string{"down", "z"}, apply: func(m *Model) { m.setGroup(groupState) }},
	{name: "group-os-filter", apply: func(m *Model) { m.tbl.filter = "!state:frozen"; m.setGroup(groupOS) }},
	{name: "group-tag-cpu", apply: func(m *Model) { m.setGroup(groupTag); m.sortBy(colCPUBusy) }, minSwaps: 10},
}

// The keys pressed between snapshots: moves, marks and visual ranges.
var swapKeys = []string{"down", "down", "up", "pgdown", "space", "v", "J", "J", "esc", "g", "G", "z", "ctrl+a", "*"}

// TestSwapGuestsMatchesFullReindex drives two models through the same
// snapshots and keys, one with reindex's fast path and the row cache, one
// with neither: after every pull they must hold the same rows (the very
// same Guests), groups, lines, cursor, marks, visual range, held columns
// and counts, and draw the same frame.
func TestSwapGuestsMatchesFullReindex(t *testing.T) {
	for _, su := range swapSetups {
		t.Run(su.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(su.name))))
			now := testNow
			clock := func() time.Time { return now }
			mk := func(full bool) (Model, *fakeSource) {
				m, src := newTestModel(300, 160, 40, Options{Now: clock})
				m.tbl.fullOnly = full
				if full {
					m.rowCache = nil // and every row drawn afresh: the frames compare the cache too
				}
				for _, k := range su.keys {
					next, _ := m.Update(keyMsg(t, k))
					m = next.(Model)
				}
				if su.apply != nil {
					su.apply(&m)
				}
				return m, src
			}
			fast, srcF := mk(false)
			full, srcB := mk(true)
			gs, nextName := srcF.snap.Guests, 300
			for step := range 400 {
				now = now.Add(7 * time.Second) // the columns' hold ends within the run
				gs = churn(r, gs, &nextName, now)
				if step%37 == 0 {
					gs = slices.Clone(gs) // a new version, no Guest changed
				}
				srcF.set(gs)
				srcB.set(gs)
				if step%3 == 0 {
					k := swapKeys[r.IntN(len(swapKeys))]
					next, _ := fast.Update(keyMsg(t, k))
					fast = next.(Model)
					next, _ = full.Update(keyMsg(t, k))
					full = next.(Model)
				}
				next, _ := fast.Update(changedMsg{})
				fast = next.(Model)
				next, _ = full.Update(changedMsg{})
				full = next.(Model)
				if diff := tableDiff(&fast, &full); diff != "" {
					t.Fatalf("step %d: the fast path differs from a full reindex: %s", step, diff)
				}
			}
			if full.tbl.swaps != 0 {
				t.Fatalf("the full model took the fast path %d times", full.tbl.swaps)
			}
			if fast.tbl.swaps < cmp.Or(su.minSwaps, 100) {
				t.Errorf("the fast path ran %d times in 400 pulls: the test hardly tests it", fast.tbl.swaps)
			}
			t.Logf("fast path %d of 400 pulls", fast.tbl.swaps)
		})
	}
}

// tableDiff names the first thing that differs between a and b's tables.
func tableDiff(a, b *Model) string {
	ta, tb := &a.tbl, &b.tbl
	if !slices.Equal(ta.rows, tb.rows) { // pointers: the same Guests, not look-alikes
		return fmt.Sprintf("rows: %s vs %s", guestNames(ta.rows), guestNames(tb.rows))
	}
	if len(ta.groups) != len(tb.groups) {
		return fmt.Sprintf("%d groups vs %d", len(ta.groups), len(tb.groups))
	}
	for i := range ta.groups {
		ga, gb := ta.groups[i], tb.groups[i]
		if !slices.Equal(ga.members, gb.members) || !slices.Equal(ga.states, gb.states) ||
			ga.key != gb.key || ga.rank != gb.rank || ga.order != gb.order {
			return fmt.Sprintf("group %d: %q %v %s vs %q %v %s", i, ga.key, ga.states, guestNames(ga.members),
				gb.key, gb.states, guestNames(gb.members))
		}
	}
	for _, c := range []struct {
		what string
		a, b any
	}{
		{"lines", ta.lines, tb.lines}, {"rowLine", ta.rowLine, tb.rowLine}, {"twins", ta.twins, tb.twins},
		{"matched", ta.matched, tb.matched}, {"cursor", ta.cursor, tb.cursor}, {"offset", ta.offset, tb.offset},
		{"curName", ta.curName, tb.curName}, {"onHead", ta.onHead, tb.onHead}, {"curGroup", ta.curGroup, tb.curGroup},
		{"nErr", ta.nErr, tb.nErr}, {"nFrozen", ta.nFrozen, tb.nFrozen},
		{"anyErr", ta.anyErr, tb.anyErr}, {"anyFrozen", ta.anyFrozen, tb.anyFrozen},
		{"errUntil", ta.errUntil, tb.errUntil}, {"frozenUntil", ta.frozenUntil, tb.frozenUntil},
		{"counts", a.counts, b.counts}, {"frozenOurs", a.frozenOurs, b.frozenOurs}, {"nextThaw", a.nextThaw, b.nextThaw},
		{"visual", a.visual, b.visual}, {"visualAnchor", a.visualAnchor, b.visualAnchor},
		{"marks", slices.Sorted(maps.Keys(a.marks)), slices.Sorted(maps.Keys(b.marks))},
	} {
		if !reflect.DeepEqual(c.a, c.b) {
			return fmt.Sprintf("%s: %v vs %v", c.what, c.a, c.b)
		}
	}
	if va, vb := a.View().Content, b.View().Content; va != vb {
		return "the frames differ:\n" + va + "\n---\n" + vb
	}
	return ""
}

func guestNames(gs []*fleet.Guest) string {
	var b strings.Builder
	for _, g := range gs {
		b.WriteString(g.Name)
		b.WriteByte(' ')
	}
	return b.String()
}

// A guest whose reply moves it in the sort (here: its state, sorted by
// state) sends the table through the full reindex: the row order follows,
// and the cursor stays on its guest, not on the line it was on.
func TestSwapGuestsNotForAMovedGuest(t *testing.T) {
	m, src := newTestModel(30, 160, 40, Options{})
	m.tbl.sortCol = colState
	m.reindex()
	m.moveTo(5)
	on := m.cursorGuest().Name
	gs := slices.Clone(src.snap.Guests)
	i := slices.IndexFunc(gs, func(g *fleet.Guest) bool { return g.State == fleet.Ready && g.Name < on })
	g := *gs[i]
	g.State, g.Err = fleet.Unreachable, "gone"
	gs[i] = &g
	src.set(gs)
	swaps := m.tbl.swaps
	next, _ := m.Update(changedMsg{})
	m = next.(Model)
	if m.tbl.swaps != swaps {
		t.Fatal("the fast path took a snapshot in which a guest changed its place")
	}
	eq(t, "cursor stays on its guest", m.cursorGuest().Name, on)
	eq(t, "the moved guest is among the unreachable", m.tbl.rows[len(m.tbl.rows)-1].State, fleet.Unreachable)

	// A reply that changes nothing the table orders by takes the fast path
	// and keeps the cursor where it was.
	gs = slices.Clone(gs)
	g2 := *gs[3]
	g2.RTT++
	gs[3] = &g2
	src.set(gs)
	next, _ = m.Update(changedMsg{})
	m = next.(Model)
	eq(t, "fast path taken", m.tbl.swaps, swaps+1)
	eq(t, "cursor stays on its guest", m.cursorGuest().Name, on)
}
