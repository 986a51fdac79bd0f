package tui

import (
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// reindex's fast path. In the steady state every pull sees a new snapshot
// (10,000 guests polled every 5 s: some 400 new Guests a pull), but the
// same guests in the same order, most of them the very same *Guest, and
// the ones re-polled mostly the same in everything the table is built
// from. A full reindex walks every Guest (the filter, ERROR and FREEZE,
// the sort's keys, the groups); when nothing it reads has changed, the
// rows, groups and lines come out as they are, so swapping the new Guests
// in where the old ones were is the same table at the cost of the guests
// that changed.

// swapScratch is the fast path's reused space.
type swapScratch struct {
	changed []int                         // snapshot positions with a new Guest
	repl    map[*fleet.Guest]*fleet.Guest // old Guest -> new, for the rows and groups
}

// maxSwapShare: when more than 1/maxSwapShare of the guests changed, the
// full reindex costs no more than the fast path.
const maxSwapShare = 4

// swapGuests puts the new snapshot's Guests into the rows, groups and
// counts without rebuilding them, if that gives what a full reindex would:
// the table was last built from the snapshot before this one with the same
// filter, sort, grouping and folds; both list the same names in the same
// order; and every guest whose Guest changed kept whether the filter lets
// it through, its place in the order (its sort key, or its held rank) and
// its group. A guest's reply can change none of these without sending the
// table through the full reindex, so no reply moves a row under the
// cursor or the marks by this path. It reports false, having changed
// nothing, when it does not apply.
func (m *Model) swapGuests() bool {
	t := &m.tbl
	if t.fullOnly || !t.built || t.builtFrom == nil || t.builtFilter != t.filter || t.builtSort != t.sortCol ||
		t.builtDesc != t.sortDesc || t.builtGroup != t.group || t.builtFold != t.foldVer ||
		(t.held && t.heldRank == nil) {
		return false
	}
	old, cur := t.builtFrom.Guests, m.snap.Guests
	if len(old) != len(cur) {
		return false
	}
	sc := &t.swap
	sc.changed = sc.changed[:0]
	for i := range cur { // pointers only: no Guest is read
		if cur[i] != old[i] {
			if len(sc.changed) >= len(cur)/maxSwapShare+1 {
				return false
			}
			sc.changed = append(sc.changed, i)
		}
	}
	match := m.filterMatch(t.filter)
	now := m.now()
	statsMoved := m.snap.Counts == nil
	nErr, nFrozen := t.nErr, t.nFrozen
	for _, i := range sc.changed {
		a, b := old[i], cur[i]
		if a.Name != b.Name {
			return false // a guest came or went in the same pull as another left or came
		}
		statsMoved = statsMoved || a.FrozenByUs != b.FrozenByUs || b.FrozenByUs && !a.ThawAt.Equal(b.ThawAt)
		in := t.filter == "" || match(b)
		if in != (t.filter == "" || match(a)) {
			return false
		}
		if !in {
			continue
		}
		if !m.samePlace(a, b, now) {
			return false
		}
		if t.lined && groupKey(a, t.group) != groupKey(b, t.group) {
			return false
		}
		nErr += b2i(b.Err != "") - b2i(a.Err != "")
		nFrozen += b2i(isFrozen(b)) - b2i(isFrozen(a))
	}

	// It applies: from here on it changes the table.
	if statsMoved {
		m.snapshotStats()
	} else {
		m.counts = m.snap.Counts
	}
	t.nErr, t.nFrozen = nErr, nFrozen
	m.holdColumns(nErr > 0, nFrozen > 0)
	t.swaps++
	if len(sc.changed) == 0 {
		return true
	}
	switch {
	case !t.lined && t.inSnapOrder:
		for _, i := range sc.changed {
			t.rows[i] = cur[i]
		}
	case !t.lined && t.inSnapReverse:
		for _, i := range sc.changed {
			t.rows[len(t.rows)-1-i] = cur[i]
		}
	default:
		if sc.repl == nil {
			sc.repl = make(map[*fleet.Guest]*fleet.Guest, len(sc.changed))
		}
		for _, i := range sc.changed {
			sc.repl[old[i]] = cur[i]
		}
		for r, g := range t.rows {
			if n, ok := sc.repl[g]; ok {
				t.rows[r] = n
			}
		}
		for gi := range t.groups {
			grp := &t.groups[gi]
			for k, g := range grp.members {
				if n, ok := sc.repl[g]; ok {
					grp.members[k] = n
					grp.states[stateSlot(g.State)]--
					grp.states[stateSlot(n.State)]++
				}
			}
		}
		clear(sc.repl) // keeps no old Guest alive
	}
	return true
}

// samePlace reports whether b, the new Guest of a's guest, sorts where a
// did: the same held rank, or the same key for the sort column.
func (m *Model) samePlace(a, b *fleet.Guest, now time.Time) bool {
	t := &m.tbl
	if t.held {
		if _, ok := t.heldRank[b.Name]; ok {
			return true // ranked guests go by their rank alone (orderRows)
		}
	}
	switch {
	case t.sortCol == colName:
		return true // the names are the same
	case isMetricCol(t.sortCol):
		av, aok := metricValue(a, t.sortCol)
		bv, bok := metricValue(b, t.sortCol)
		return aok == bok && (!aok || av == bv)
	}
	return sortKeyOf(a, t.sortCol, now) == sortKeyOf(b, t.sortCol, now)
}

// inOrder reports whether rows is guests, in their order or reversed,
// comparing pointers only.
func inOrder(rows, guests []*fleet.Guest) (same, reversed bool) {
	if len(rows) != len(guests) {
		return false, false
	}
	same, reversed = true, true
	for i, g := range rows {
		same = same && g == guests[i]
		reversed = reversed && g == guests[len(guests)-1-i]
		if !same && !reversed {
			return false, false
		}
	}
	return same, reversed
}
