package tui

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

type colID int

const (
	colName colID = iota
	colHost
	colState
	colAgent
	colOS
	colAddr
	colVCPU
	// The live metrics (metrics.go), from the guest's own counters.
	colCPUBusy
	colIOWait
	colSteal
	colLoad
	colDiskR
	colDiskW
	colNetRx
	colNetTx
	colFSFull
	colSkew
	colFreeze
	colRTT
	colErr
	numCols
)

// column describes one table column. prio decides which columns survive a
// narrow terminal (lower survives longer) when the view does not list its
// own columns.
type column struct {
	id    colID
	title string
	width int
	prio  int
	right bool
}

// The priorities follow what an operator needs first: which guest (NAME),
// whether it is well (STATE), how to reach it (ADDRESSES), what it runs
// (OS); then ERROR and FREEZE, but only while they say something (see
// layoutColumns); then where it runs and the agent, then the figures. At
// 80 columns that is NAME STATE ADDRESSES OS; at 100 ERROR, FREEZE or
// HOST joins them.
var columns = [numCols]column{
	{colName, "NAME", 16, 0, false},
	{colHost, "HOST", 10, 6, false},
	{colState, "STATE", 13, 1, false},
	{colAgent, "AGENT", 8, 8, false},
	{colOS, "OS", 18, 3, false},
	{colAddr, "ADDRESSES", 22, 2, false},
	// Metrics columns are one cell wider than their title: the sort arrow.
	{colVCPU, "VCPUS", 6, 9, true}, // online/total, as status calls it
	{colCPUBusy, "CPU%", 5, 7, true},
	{colIOWait, "IOW%", 5, 14, true},
	{colSteal, "STL%", 5, 15, true},
	{colLoad, "LOAD", 5, 12, true},
	{colDiskR, "DSK-R", 6, 16, true},
	{colDiskW, "DSK-W", 6, 17, true},
	{colNetRx, "NET-RX", 7, 18, true},
	{colNetTx, "NET-TX", 7, 19, true},
	{colFSFull, "FS%", 4, 13, true}, // the fullest filesystem
	{colSkew, "SKEW", 7, 11, true},
	{colFreeze, "FREEZE", 13, 5, false},
	{colRTT, "RTT", 7, 10, true},
	{colErr, "ERROR", 12, 4, false}, // takes whatever width is left
}

// autoOrder is the left-to-right order of the columns when the view does
// not list its own: near the priority order, the figures grouped, ERROR
// last because it takes the slack.
var autoOrder = []colID{colName, colState, colAddr, colOS, colFreeze, colHost, colAgent, colVCPU,
	colCPUBusy, colIOWait, colSteal, colLoad, colDiskR, colDiskW, colNetRx, colNetTx, colFSFull, colSkew, colRTT, colErr}

// freezeIdlePrio is FREEZE's priority while no shown guest is frozen: a
// column of "thawed" says little, so it goes after the figures.
const freezeIdlePrio = 16

// prefixWidth is the mark and per-guest action status cells before NAME.
const prefixWidth = 3

// table is the filtered, sorted view of the snapshot plus the cursor. The
// index is recomputed only when the snapshot version, the filter or the sort
// changes (reindex), never while rendering.
type table struct {
	rows []*fleet.Guest
	// spare is the array of the rows before the last reindex (cleared),
	// which the next one reuses: at 10,000 guests and a new snapshot every
	// 100 ms, a fresh one each time was 0.8 MB of garbage a second.
	// Nothing else holds it.
	spare []*fleet.Guest

	// What rows was computed from.
	builtFrom    *fleet.Snapshot
	builtVersion uint64
	builtFilter  string
	builtSort    colID
	builtDesc    bool
	built        bool
	builtGroup   groupBy
	builtFold    int

	filter   string
	sortCol  colID
	sortDesc bool

	// cols is the view's column set in display order, nil for the
	// automatic choice by priority (views.go).
	cols []colID
	// Whether any row (the filtered guests, not only those on screen: the
	// columns must not come and go as the table scrolls) has an error or
	// is frozen, or had within columnHold; computed with the rows.
	anyErr, anyFrozen bool
	// When ERROR and FREEZE may go, once no row has an error or is frozen.
	errUntil, frozenUntil time.Time

	// For reindex's fast path (swap.go): how many of the filtered guests
	// have an error or are frozen, whether rows is the snapshot's guests in
	// its order (or reversed; never when lined), and its scratch space.
	nErr, nFrozen int
	inSnapOrder   bool
	inSnapReverse bool
	swap          swapScratch
	// fullOnly turns the fast path off, and swaps counts the reindexes
	// that took it: tests compare the two, benchmarks time them.
	fullOnly bool
	swaps    int

	cursor  int
	offset  int
	curName string
	told    []string // the visible rows last told to the source (launch.go)

	// held keeps the order of heldRank under live updates (metrics.go).
	held     bool
	heldRank map[string]int

	// Grouping (group.go): what by, the groups folded (by key), a count
	// bumped when they change, and the groups and lines of the last
	// reindex. When lined, the cursor and the offset count lines.
	group   groupBy
	folded  map[string]bool
	foldVer int
	groups  []rowGroup
	lines   []tableLine
	rowLine []int // rows[r] is on line rowLine[r]
	// twins numbers, by key, the groups whose keys would be drawn alike
	// (markTwins); nil when none are, as in any fleet of clean names.
	twins    map[string]int
	lined    bool
	matched  int    // the guests the filter lets through, folded or not
	onHead   bool   // the cursor is on the header of group curGroup
	curGroup string //
}

// reindex recomputes the rows if anything they depend on changed, keeping the
// cursor on the same guest when it is still shown.
func (m *Model) reindex() {
	t := &m.tbl
	if t.built && t.builtFrom == m.snap && t.builtVersion == m.snap.Version && t.builtFilter == t.filter &&
		t.builtSort == t.sortCol && t.builtDesc == t.sortDesc && t.builtGroup == t.group && t.builtFold == t.foldVer {
		return
	}
	newSnap := t.builtFrom != m.snap || t.builtVersion != m.snap.Version || !t.built
	// A visual range is line positions: a new filter, sort, grouping or fold
	// reorders lines, so
	// fix the range as marks first; a new snapshot keeps it, re-anchored by name.
	resort := t.builtSort != t.sortCol || t.builtDesc != t.sortDesc
	regroup := t.builtGroup != t.group || t.builtFold != t.foldVer // group.go: lines move
	if t.builtFilter != t.filter || resort || regroup {
		m.commitVisual()
	} else if m.visual && t.built {
		// A new snapshot: the order can follow what guests report (their
		// CPU in a sort, their OS in a group), so a range of positions
		// would take in whoever moved between its ends. What it covers now
		// becomes marks, and the range goes on from the cursor.
		m.commitVisual()
		m.visual, m.visualAnchor = true, t.cursor
	}
	anchor := ""
	if g := t.guestAt(m.visualAnchor); m.visual && g != nil {
		anchor = g.Name
	}
	if !newSnap || !m.swapGuests() { // swap.go: the same rows, new Guests
		if newSnap {
			m.snapshotStats()
		}
		m.buildRows(resort)
	}
	t.builtFrom, t.builtVersion, t.builtFilter, t.builtSort, t.builtDesc, t.built =
		m.snap, m.snap.Version, t.filter, t.sortCol, t.sortDesc, true
	t.builtGroup, t.builtFold = t.group, t.foldVer
	rows := t.rows

	t.placeCursor()
	if m.visual {
		m.visualAnchor = t.cursor
		for i, g := range rows {
			if g.Name == anchor {
				m.visualAnchor = t.lineOfRow(i)
				break
			}
		}
	}
	m.clampScroll()
}

// buildRows filters, sorts and groups the snapshot's guests into the rows.
func (m *Model) buildRows(resort bool) {
	t := &m.tbl
	rows := t.spare[:0]
	if cap(rows) < len(m.snap.Guests) || cap(rows) > 2*len(m.snap.Guests)+64 {
		rows = make([]*fleet.Guest, 0, len(m.snap.Guests))
	}
	match := m.filterMatch(t.filter) // nav.go: compiled once
	nErr, nFrozen := 0, 0
	for _, g := range m.snap.Guests {
		if t.filter == "" || match(g) {
			rows = append(rows, g)
			nErr += b2i(g.Err != "")
			nFrozen += b2i(isFrozen(g))
		}
	}
	t.nErr, t.nFrozen = nErr, nFrozen
	m.holdColumns(nErr > 0, nFrozen > 0)
	m.orderRows(rows, resort) // metrics.go: the sort, or the held order
	rows = m.groupRows(rows)  // group.go: headers, folds; the order holds inside each group
	t.rows, t.spare = rows, t.rows
	clear(t.spare[:cap(t.spare)]) // keeps no old Guest alive
	t.inSnapOrder, t.inSnapReverse = false, false
	if !t.lined {
		t.inSnapOrder, t.inSnapReverse = inOrder(rows, m.snap.Guests)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// columnHold is how long ERROR (FREEZE) stays after the last row with an
// error (frozen) has none. A guest decides its own error and freeze state
// (junk before a reply, fsfreeze from inside): without a hold it could make
// the column come and go with every poll, and with it another column of
// every guest's row.
const columnHold = time.Minute

// holdColumns sets anyErr and anyFrozen from what the rows have now and
// the hold. A new filter is the operator's choice: its rows decide at once.
func (m *Model) holdColumns(anyErr, anyFrozen bool) {
	t := &m.tbl
	if !t.built || t.builtFilter != t.filter {
		t.errUntil, t.frozenUntil = time.Time{}, time.Time{}
	}
	now := m.now()
	if anyErr {
		t.errUntil = now.Add(columnHold)
	}
	if anyFrozen {
		t.frozenUntil = now.Add(columnHold)
	}
	t.anyErr = anyErr || now.Before(t.errUntil)
	t.anyFrozen = anyFrozen || now.Before(t.frozenUntil)
}

// snapshotStats sums up a new snapshot once, so frames never walk the fleet.
func (m *Model) snapshotStats() {
	m.frozenOurs, m.nextThaw = 0, time.Time{}
	m.counts = m.snap.Counts
	if m.counts == nil {
		m.counts = map[fleet.State]int{}
		for _, g := range m.snap.Guests {
			m.counts[g.State]++
		}
	}
	for _, g := range m.snap.Guests {
		if !g.FrozenByUs {
			continue
		}
		m.frozenOurs++
		if !g.ThawAt.IsZero() && (m.nextThaw.IsZero() || g.ThawAt.Before(m.nextThaw)) {
			m.nextThaw = g.ThawAt
		}
	}
}

// sortRows sorts by col; ties keep name order (the snapshot's order).
func sortRows(rows []*fleet.Guest, col colID, desc bool, now time.Time) {
	if isMetricCol(col) {
		sortMetric(rows, col, desc)
		return
	}
	if col == colName {
		// The snapshot is sorted by name already.
		if !sort.SliceIsSorted(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name }) {
			sort.SliceStable(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
		}
		if desc {
			for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
				rows[i], rows[j] = rows[j], rows[i]
			}
		}
		return
	}
	type keyed struct {
		g *fleet.Guest
		k rowKey
	}
	ks := make([]keyed, len(rows))
	numeric := col == colVCPU || col == colSkew || col == colRTT || col == colFreeze
	for i, g := range rows {
		ks[i] = keyed{g, sortKeyOf(g, col, now)}
	}
	// slices, not sort.SliceStable: its reflection-based swaps were most of
	// a re-sort at 10,000 guests.
	compare := func(a, b keyed) int {
		if a.k.r != b.k.r {
			return cmp.Compare(a.k.r, b.k.r)
		}
		if numeric {
			return cmp.Compare(a.k.n, b.k.n)
		}
		return strings.Compare(a.k.s, b.k.s)
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		if desc {
			return compare(b, a)
		}
		return compare(a, b)
	})
	for i := range ks {
		rows[i] = ks[i].g
	}
}

// rowKey is what sortRows compares of a guest for a column that is not
// a metric or the name: a group first, then a number or a text.
type rowKey struct {
	r int // group, compared first (freeze: countdown, frozen, thawed, unknown)
	s string
	n int64
}

// sortKeyOf is g's rowKey for col. It reads only g: none of these keys
// changes with the clock, so a guest whose Guest is the same keeps its
// place (reindex's fast path, swap.go, counts on it).
func sortKeyOf(g *fleet.Guest, col colID, now time.Time) rowKey {
	var k rowKey
	switch col {
	case colVCPU:
		on, _ := present.VCPUCounts(g)
		k.n = int64(on)
	case colSkew:
		k.n = int64(absDur(g.Skew))
		if !g.SkewKnown {
			k.n = -1
		}
	case colRTT:
		k.n = int64(g.RTT)
	case colState:
		k.r = stateRank(g.State)
		k.s = string(g.State) // a state fleet.States does not list, after them by name
	case colAgent:
		k.s = versionKey(g.AgentVersion)
	case colFreeze:
		// Not the text: "frozen 10:00" would sort before "frozen 4:30".
		k.r, k.n = freezeOrder(g)
	default:
		k.s = sortKey(cellText(g, col, now))
	}
	return k
}

// sortKeyBytes is how much of a cell sorting looks at: lower-casing a
// guest's 85 MB OS name on every snapshot would cost what it is long.
const sortKeyBytes = 256

func sortKey(s string) string { return strings.ToLower(s[:min(len(s), sortKeyBytes)]) }

// freezeOrder ranks guests frozen by us with an automatic thaw first, soonest
// thaw first, then other frozen guests, thawed ones, and those not known.
func freezeOrder(g *fleet.Guest) (rank int, thawAt int64) {
	switch {
	case g.FrozenByUs && !g.ThawAt.IsZero():
		return 0, g.ThawAt.UnixNano()
	case g.FrozenByUs || g.Freeze == "frozen":
		return 1, 0
	case g.Freeze == "thawed":
		return 2, 0
	}
	return 3, 0
}

// versionKey makes dotted versions compare as numbers: each run of digits
// is left-padded, so "7.2.22" sorts after "7.2.3" and before "107.0.1".
func versionKey(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); {
		j := i
		for j < len(v) && v[j] >= '0' && v[j] <= '9' {
			j++
		}
		if j == i {
			b.WriteByte(v[i])
			i++
			continue
		}
		if pad := 10 - (j - i); pad > 0 {
			b.WriteString(strings.Repeat("0", pad))
		}
		b.WriteString(v[i:j])
		i = j
	}
	return strings.ToLower(b.String())
}

// stateRank is s's place in fleet.States; a state it does not list comes
// after them all.
func stateRank(s fleet.State) int {
	for i, st := range fleet.States {
		if st == s {
			return i
		}
	}
	return len(fleet.States)
}

func absDur(d time.Duration) time.Duration {
	switch {
	case d == math.MinInt64:
		// A guest's wild clock can give this; -d would stay negative.
		return math.MaxInt64
	case d < 0:
		return -d
	}
	return d
}

// cursorGuest is the guest under the cursor, nil when none is shown.
func (m *Model) cursorGuest() *fleet.Guest { return m.tbl.guestAt(m.tbl.cursor) }

// moveTo puts the cursor on line i (clamped) and scrolls it into view.
func (m *Model) moveTo(i int) {
	t := &m.tbl
	if i >= t.lineCount() {
		i = t.lineCount() - 1
	}
	if i < 0 {
		i = 0
	}
	if i != t.cursor {
		m.detailScroll = 0
	}
	t.cursor = i
	m.clampScroll()
}

func (m *Model) clampScroll() {
	t := &m.tbl
	if t.cursor >= t.lineCount() {
		t.cursor = t.lineCount() - 1
	}
	if t.cursor < 0 {
		t.cursor = 0
	}
	t.noteCursor()
	h := m.layout().tableRows
	if h < 1 {
		h = 1
	}
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+h {
		t.offset = t.cursor - h + 1
	}
	if max := t.lineCount() - h; t.offset > max {
		t.offset = max
	}
	if t.offset < 0 {
		t.offset = 0
	}
	m.tellVisible()
}

// isMarked reports whether the guest name on line i is marked, counting a
// visual range in progress.
func (m *Model) isMarked(i int, name string) bool {
	if m.marks[name] {
		return true
	}
	if m.visual {
		lo, hi := m.visualAnchor, m.tbl.cursor
		if lo > hi {
			lo, hi = hi, lo
		}
		return i >= lo && i <= hi
	}
	return false
}

func (m *Model) markCount() int {
	n := len(m.marks)
	if m.visual {
		lo, hi := m.visualAnchor, m.tbl.cursor
		if lo > hi {
			lo, hi = hi, lo
		}
		for i := lo; i <= hi; i++ {
			if g := m.tbl.guestAt(i); g != nil && !m.marks[g.Name] {
				n++
			}
		}
	}
	return n
}

// commitVisual turns a visual range into ordinary marks.
func (m *Model) commitVisual() {
	if !m.visual {
		return
	}
	lo, hi := m.visualAnchor, m.tbl.cursor
	if lo > hi {
		lo, hi = hi, lo
	}
	for i := lo; i <= hi; i++ {
		if g := m.tbl.guestAt(i); g != nil {
			m.marks[g.Name] = true
		}
	}
	m.visual = false
}

// targets are the guests an action applies to: the marked guests (table
// order, then marked guests hidden by the filter or in a folded group), or
// the guest under the cursor (none on a group's header).
func (m *Model) targets() []*fleet.Guest {
	if m.markCount() == 0 {
		if g := m.cursorGuest(); g != nil {
			return []*fleet.Guest{g}
		}
		return nil
	}
	var out []*fleet.Guest
	seen := map[string]bool{}
	for i, g := range m.tbl.rows {
		if m.isMarked(m.tbl.lineOfRow(i), g.Name) {
			out = append(out, g)
			seen[g.Name] = true
		}
	}
	for _, g := range m.snap.Guests {
		if m.marks[g.Name] && !seen[g.Name] {
			out = append(out, g)
		}
	}
	return out
}

// isFrozen reports whether FREEZE has news for g: frozen, by us or by
// someone, or left frozen by a guestdeck that died.
func isFrozen(g *fleet.Guest) bool {
	rank, _ := freezeOrder(g)
	return rank <= 1 || g.FrozenBy != nil && g.FrozenBy.Orphan
}

// visibleColumns is the table's columns at the model's width.
func (m *Model) visibleColumns() []column {
	t := &m.tbl
	return layoutColumns(m.width, t.sortCol, t.cols, t.anyErr, t.anyFrozen)
}

// layoutColumns picks the columns that fit width, in display order, and
// widens the last (flexible) one to the full width. The sort column is
// always among them: sorting by a column that is not shown sorts blind.
//
// With set nil the choice is automatic, by priority (columns). ERROR is
// then shown only while some guest in the table has an error, and for
// columnHold after (anyErr): an
// empty ERROR column was the widest thing at 80 columns and said nothing,
// while the STATE cell already says unreachable or silent, and the detail
// pane has the whole error. When there is one, ERROR's priority is next
// after OS's, before FREEZE's: its words are nowhere else in the table,
// while STATE already says frozen; it is drawn last, where it takes the
// slack. FREEZE drops to the back unless some guest is frozen (anyFrozen).
//
// A view's own set is shown in its order; what does not fit is dropped
// from the end of the list (its order is its priority), NAME always stays
// first, and the sort column, when the set lacks it, goes after NAME.
func layoutColumns(width int, sortCol colID, set []colID, anyErr, anyFrozen bool) []column {
	avail := width - prefixWidth
	var order []colID // display order
	prio := map[colID]float64{}
	if set == nil {
		for _, id := range autoOrder {
			if id == colErr && !anyErr {
				continue
			}
			order = append(order, id)
			prio[id] = float64(columns[id].prio)
		}
		if !anyFrozen {
			prio[colFreeze] = freezeIdlePrio
		}
	} else {
		order = append(order, colName)
		if sortCol != colName && !slices.Contains(set, sortCol) {
			order = append(order, sortCol)
		}
		for _, id := range set {
			if id != colName && !slices.Contains(order, id) {
				order = append(order, id)
			}
		}
		for i, id := range order {
			prio[id] = float64(i)
		}
	}
	prio[colName] = 0
	if sortCol != colName {
		prio[sortCol] = 0.5 // right after the name
	}
	byPrio := slices.Clone(order)
	sort.SliceStable(byPrio, func(i, j int) bool { return prio[byPrio[i]] < prio[byPrio[j]] })
	keep := map[colID]bool{}
	used := 0
	for _, id := range byPrio {
		need := columns[id].width + 1
		if used+need > avail {
			continue
		}
		used += need
		keep[id] = true
	}
	var out []column
	for _, id := range order {
		if keep[id] {
			out = append(out, columns[id])
		}
	}
	// ERROR (or else the last column) absorbs the slack so rows span the
	// screen, with the cell of the separator the last column lacks.
	if n := len(out); n > 0 {
		i := n - 1
		for j, c := range out {
			if c.id == colErr {
				i = j
			}
		}
		out[i].width += avail - used + 1
	}
	return out
}

// cellText is what a guest shows in a column, raw: sorting compares it,
// and renderRow escapes and cuts it with present.Cell.
func cellText(g *fleet.Guest, c colID, now time.Time) string {
	switch c {
	case colName:
		return g.Name
	case colHost:
		if g.Host == "" {
			return "-"
		}
		return g.Host
	case colState:
		return string(g.State)
	case colAgent:
		return g.AgentVersion
	case colOS:
		return present.OSLabel(g)
	case colAddr:
		return present.FirstAddrs(g)
	case colVCPU:
		on, total := present.VCPUCounts(g)
		if total == 0 {
			return ""
		}
		return strconv.Itoa(on) + "/" + strconv.Itoa(total)
	case colSkew:
		if !g.SkewKnown {
			return ""
		}
		return fmtSkew(g.Skew)
	case colFreeze:
		return freezeText(g, now)
	case colRTT:
		if g.RTT == 0 {
			return ""
		}
		return fmtDur(g.RTT)
	case colErr:
		return present.ErrBrief(g) // the detail pane has the whole text
	}
	if isMetricCol(c) {
		return metricCell(g, c)
	}
	return ""
}

// freezeText is the FREEZE cell: a guest left frozen by a guestdeck that
// died shows the countdown to the thaw it promised, when this dashboard
// thaws it.
func freezeText(g *fleet.Guest, now time.Time) string {
	if r := g.FrozenBy; r != nil && r.Orphan && !g.FrozenByUs {
		if r.Until.IsZero() {
			return "orphan"
		}
		return "orphan " + present.Countdown(r.Until.Sub(now))
	}
	return present.FreezeText(g, now)
}

// fmtDur is a short duration: 850µs, 12ms, 1.2s, 3m05s.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return strconv.Itoa(int(d/time.Microsecond)) + "µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	case d < time.Second:
		return strconv.Itoa(int(d/time.Millisecond)) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		s := int(d / time.Second)
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return d.Round(time.Minute).String()
}

// fmtSkew is a signed skew. Below a microsecond it is "+0µs" whatever its
// sign: fmtDur would print a tiny negative skew as "-0µs" and zero as "0s".
func fmtSkew(d time.Duration) string {
	if absDur(d) < time.Microsecond {
		return "+0µs"
	}
	if d >= 0 {
		return "+" + fmtDur(d)
	}
	return "-" + fmtDur(absDur(d))
}

// fit cuts or pads composed (already escaped, possibly styled) text to
// exactly w cells: present.Pad. Guest text goes through present.Text or
// present.Cell first.
func fit(s string, w int, right bool) string { return present.Pad(s, w, right) }
