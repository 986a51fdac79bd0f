package tui

// Grouping the table's rows by OS, state, tag or host, with folding. The
// table then has lines of two kinds: a group's header and a guest. rows
// stays what it always was, the guests shown in table order (a folded
// group's guests are not shown), and the cursor counts lines: lines maps
// each line to its group and its row. Ungrouped, there are no lines and
// the cursor counts rows, as before.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// groupBy is what the table's rows are grouped by.
type groupBy int

const (
	groupNone groupBy = iota
	groupOS
	groupState
	groupTag
	groupHost
)

// groupWords are the groupings' names in :group and a view's group, by
// groupBy.
var groupWords = [...]string{"none", "os", "state", "tag", "host"}

// GroupNames are the names a view's group and :group accept.
func GroupNames() []string { return slices.Clone(groupWords[:]) }

// parseGroup reads a grouping's name; "" is none.
func parseGroup(s string) (groupBy, error) {
	if s == "" {
		return groupNone, nil
	}
	for i, w := range groupWords {
		if w == s {
			return groupBy(i), nil
		}
	}
	return 0, fmt.Errorf("group %q: write one of %s", s, strings.Join(groupWords[:], ", "))
}

// rowGroup is one group of the table.
type rowGroup struct {
	// key is the value the group's guests share, raw: an OS name is the
	// guest's text (cut at sortKeyBytes), escaped where it is drawn. ""
	// holds the guests that have none.
	key string
	// members are the filtered guests in the group in table order,
	// shown or folded.
	members []*fleet.Guest
	// states counts the members by state, indexed as fleet.States (the
	// last for a state not in it): a header's summary costs nothing to draw.
	states []int
	// Where the group goes (groupOrder).
	rank  int
	order string
}

// tableLine is one line of a grouped table: the header of group grp (row
// -1) or the guest rows[row].
type tableLine struct{ grp, row int }

// groupKey is the value g is grouped under. A guest in several tags is
// under its first only: then a guest is on one line, and a group's count,
// its marks and the fleet's totals never count a guest twice.
func groupKey(g *fleet.Guest, by groupBy) string {
	switch by {
	case groupOS:
		s := present.OSLabel(g)
		// A guest's 85 MB OS name would be hashed on every snapshot.
		return s[:min(len(s), sortKeyBytes)]
	case groupState:
		return string(g.State)
	case groupTag:
		if len(g.Tags) > 0 {
			return g.Tags[0]
		}
	case groupHost:
		return g.Host
	}
	return ""
}

// groupOrder is a group's place: by name ignoring case, states in
// fleet.States' order, and the group of guests without a value last
// (rank 1). It is computed once per group: lower-casing in the comparison
// cost 280,000 allocations a snapshot at 10,000 groups.
func groupOrder(by groupBy, key string) (rank int, order string) {
	switch {
	case key == "":
		return 1, ""
	case by == groupState:
		// Once per group: a string key is what groups compare.
		return 0, fmt.Sprintf("%03d%s", stateRank(fleet.State(key)), key)
	}
	return 0, sortKey(key)
}

func compareGroups(a, b *rowGroup) int {
	if a.rank != b.rank {
		return a.rank - b.rank
	}
	if c := strings.Compare(a.order, b.order); c != 0 {
		return c
	}
	return strings.Compare(a.key, b.key)
}

// groupRows splits rows (sorted, or in the held order) into the groups,
// keeping that order inside each, and writes the guests of the unfolded
// groups back into rows in group order: the shown rows, which it returns.
// It sets the lines, or clears them when the table is not grouped.
func (m *Model) groupRows(rows []*fleet.Guest) []*fleet.Guest {
	t := &m.tbl
	hint := len(t.groups) + 1 // the last snapshot's groups: sizes without regrowing
	t.groups, t.lines, t.rowLine = nil, nil, nil
	t.lined = t.group != groupNone
	t.matched = len(rows)
	if !t.lined {
		return rows
	}
	// Two passes, so that the members and the state counts of all groups
	// share one array each: at 10,000 groups (a guest may name its own
	// OS) one allocation per group each was most of a snapshot's cost.
	ns := len(fleet.States) + 1
	at := make(map[string]int, hint)
	unsorted := make([]rowGroup, 0, hint)
	counts := make([]int, 0, hint*ns) // group i's states are counts[i*ns:][:ns]
	of := make([]int, len(rows))
	for r, g := range rows {
		k := groupKey(g, t.group)
		i, ok := at[k]
		if !ok {
			i = len(unsorted)
			at[k] = i
			rank, order := groupOrder(t.group, k)
			unsorted = append(unsorted, rowGroup{key: k, rank: rank, order: order})
			counts = append(counts, make([]int, ns)...)
		}
		of[r] = i
		counts[i*ns+stateSlot(g.State)]++
	}
	members := make([]*fleet.Guest, len(rows))
	next, end := make([]int, len(unsorted)), 0
	for i := range unsorted {
		n := 0
		for _, c := range counts[i*ns : (i+1)*ns] {
			n += c
		}
		next[i], end = end, end+n
		unsorted[i].members = members[next[i]:end:end]
		unsorted[i].states = counts[i*ns : (i+1)*ns : (i+1)*ns]
	}
	for r, g := range rows {
		members[next[of[r]]] = g
		next[of[r]]++
	}
	order := make([]int, len(unsorted))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return compareGroups(&unsorted[a], &unsorted[b]) })
	groups := make([]rowGroup, len(unsorted))
	for i, u := range order {
		groups[i] = unsorted[u]
	}
	lines := make([]tableLine, 0, len(groups)+len(rows))
	rowLine := make([]int, 0, len(rows))
	n := 0
	for gi := range groups {
		lines = append(lines, tableLine{gi, -1})
		if t.folded[groups[gi].key] {
			continue
		}
		for _, g := range groups[gi].members {
			rows[n] = g
			rowLine = append(rowLine, len(lines))
			lines = append(lines, tableLine{gi, n})
			n++
		}
	}
	clear(rows[n:])
	t.twins = nil
	if guestKeys(t.group) {
		t.twins = markTwins(groups)
	}
	t.groups, t.lines, t.rowLine = groups, lines, rowLine
	return rows[:n]
}

// stateSlot is s's index in a group's states.
func stateSlot(s fleet.State) int {
	if i := slices.Index(fleet.States, s); i >= 0 {
		return i
	}
	return len(fleet.States)
}

// lineCount is how many lines the table has: rows and group headers.
func (t *table) lineCount() int {
	if t.lined {
		return len(t.lines)
	}
	return len(t.rows)
}

// guestAt is the guest on line i, nil for a header or past the end.
func (t *table) guestAt(i int) *fleet.Guest {
	if t.lined {
		if i < 0 || i >= len(t.lines) || t.lines[i].row < 0 {
			return nil
		}
		return t.rows[t.lines[i].row]
	}
	if i < 0 || i >= len(t.rows) {
		return nil
	}
	return t.rows[i]
}

// groupAt is the group of line i, -1 when the table is not grouped.
func (t *table) groupAt(i int) int {
	if !t.lined || i < 0 || i >= len(t.lines) {
		return -1
	}
	return t.lines[i].grp
}

// lineOfRow is the line of rows[r].
func (t *table) lineOfRow(r int) int {
	if t.lined && r >= 0 && r < len(t.rowLine) {
		return t.rowLine[r]
	}
	return r
}

// headerLine is the line of the header of the group with key, -1 if none.
func (t *table) headerLine(key string) int {
	for i, l := range t.lines {
		if l.row < 0 && t.groups[l.grp].key == key {
			return i
		}
	}
	return -1
}

// placeCursor puts the cursor back where it was after the lines were
// rebuilt: on the same guest, on the same header, or, when the guest's
// group was folded, on its header.
func (t *table) placeCursor() {
	if t.lined && t.onHead {
		if i := t.headerLine(t.curGroup); i >= 0 {
			t.cursor = i
		}
		return
	}
	if t.curName == "" {
		return
	}
	if g := t.guestAt(t.cursor); g != nil && g.Name == t.curName {
		return // still on its line (a name is on one row: the fleet's key)
	}
	for r, g := range t.rows {
		if g.Name == t.curName {
			t.cursor = t.lineOfRow(r)
			return
		}
	}
	for _, grp := range t.groups {
		if slices.ContainsFunc(grp.members, func(g *fleet.Guest) bool { return g.Name == t.curName }) {
			t.cursor = t.headerLine(grp.key)
			return
		}
	}
}

// noteCursor remembers what the cursor is on, for placeCursor.
func (t *table) noteCursor() {
	if g := t.guestAt(t.cursor); g != nil {
		t.curName, t.onHead = g.Name, false
		return
	}
	if gi := t.groupAt(t.cursor); gi >= 0 {
		t.curGroup, t.onHead = t.groups[gi].key, true
	}
}

// setGroup groups the table by by; a new grouping unfolds everything.
func (m *Model) setGroup(by groupBy) {
	t := &m.tbl
	if t.group != by {
		t.group, t.folded, t.onHead = by, map[string]bool{}, false
		t.foldVer++
	}
	m.reindex()
}

// groupCommand runs :group os|state|tag|host|none.
func (m *Model) groupCommand(fields []string) {
	if len(fields) != 2 {
		m.setStatus("group: by what? "+strings.Join(groupWords[:], ", "), true)
		return
	}
	by, err := parseGroup(fields[1])
	if err != nil {
		m.setStatus(err.Error(), true)
		return
	}
	m.setGroup(by)
	if by == groupNone {
		m.setStatus("group: none", false)
		return
	}
	m.setStatus(fmt.Sprintf("group by %s: %s (%s folds one, %s all)", groupWords[by],
		present.Plural(len(m.tbl.groups), "group"), m.keys.Fold.Help().Key, m.keys.FoldAll.Help().Key), false)
}

// groupCompletions are :group's completions.
func groupCompletions() []paletteItem {
	help := [...]string{"rows ungrouped", "group the rows by OS", "group the rows by state",
		"group the rows by tag (a guest under its first tag)", "group the rows by libvirt host"}
	out := make([]paletteItem, 0, len(groupWords))
	for i, w := range groupWords[1:] {
		out = append(out, paletteItem{"group " + w, help[i+1]})
	}
	return append(out, paletteItem{"group none", help[0]})
}

// toggleFold folds or unfolds the group of the line under the cursor (a
// header or one of its guests); the cursor goes to the header.
func (m *Model) toggleFold() {
	t := &m.tbl
	gi := t.groupAt(t.cursor)
	if gi < 0 {
		m.setStatus("fold: the rows are not grouped; :group os|state|tag|host groups them", true)
		return
	}
	key := t.groups[gi].key
	if t.folded == nil {
		t.folded = map[string]bool{}
	}
	if t.folded[key] {
		delete(t.folded, key)
	} else {
		t.folded[key] = true
	}
	t.onHead, t.curGroup = true, key
	t.foldVer++
	m.reindex()
}

// toggleFoldAll folds every group, or unfolds them all when all are folded.
func (m *Model) toggleFoldAll() {
	t := &m.tbl
	if !t.lined {
		m.setStatus("fold: the rows are not grouped; :group os|state|tag|host groups them", true)
		return
	}
	all := true
	for _, g := range t.groups {
		all = all && t.folded[g.key]
	}
	t.folded = map[string]bool{}
	if !all {
		for _, g := range t.groups {
			t.folded[g.key] = true
		}
	}
	if gi := t.groupAt(t.cursor); gi >= 0 {
		t.onHead, t.curGroup = true, t.groups[gi].key
	}
	t.foldVer++
	m.reindex()
}

// unfoldFor unfolds the group that holds guest name, if it is folded, and
// reports whether it did.
func (m *Model) unfoldFor(name string) bool {
	t := &m.tbl
	for _, grp := range t.groups {
		if t.folded[grp.key] && slices.ContainsFunc(grp.members, func(g *fleet.Guest) bool { return g.Name == name }) {
			delete(t.folded, grp.key)
			t.foldVer++
			m.reindex()
			return true
		}
	}
	return false
}

// toggleGroupMarks marks the guests of group gi (the filtered ones,
// folded or not), or unmarks them when all are marked.
func (m *Model) toggleGroupMarks(gi int) {
	members := m.tbl.groups[gi].members
	all := len(members) > 0
	for _, g := range members {
		all = all && m.marks[g.Name]
	}
	for _, g := range members {
		if all {
			delete(m.marks, g.Name)
		} else {
			m.marks[g.Name] = true
		}
	}
}

// guestKeys reports whether a grouping's keys are what guests say: an OS
// name is (a state is the fleet's, a tag or host the operator's).
func guestKeys(by groupBy) bool { return by == groupOS }

// markTwins numbers, from 1 in table order, the groups whose keys escape
// to the same text (Text leaves backslashes alone: one guest's raw ESC and
// another's four characters \x1b both draw as \x1b), so that no two
// headers are drawn alike and a mark on one is not taken for a mark on the
// other; nil when there are none. Only a key Text changes can draw as
// another's: a fleet of clean names costs a scan, and no allocation.
func markTwins(groups []rowGroup) map[string]int {
	if !slices.ContainsFunc(groups, func(g rowGroup) bool { return !present.Clean(g.key) }) {
		return nil
	}
	drawn := make(map[string][]int, len(groups))
	for i := range groups {
		if groups[i].key != "" {
			d := present.Text(groups[i].key, 0)
			drawn[d] = append(drawn[d], i)
		}
	}
	var twins map[string]int
	for _, is := range drawn {
		if len(is) < 2 {
			continue
		}
		if twins == nil {
			twins = map[string]int{}
		}
		for n, i := range is {
			twins[groups[i].key] = n + 1
		}
	}
	return twins
}

// groupLabel is a group's value as drawn, raw (the header escapes it). A
// guest's OS name is drawn in quotes, and the group of guests without one
// as "(no OS)" without: a guest that names its OS "(no OS)" gets the
// header `"(no OS)"`, never the real one's, so it cannot pass for a guest
// without OS info (nor have the operator mark or fold the wrong group).
// Twins (markTwins) are numbered before the quote, where no guest's text
// can be.
func (t *table) groupLabel(grp *rowGroup) string {
	if grp.key == "" {
		return map[groupBy]string{groupOS: "(no OS)", groupState: "(no state)", groupTag: "(no tag)", groupHost: "(no host)"}[t.group]
	}
	if !guestKeys(t.group) {
		return grp.key
	}
	l := `"` + grp.key + `"`
	if n := t.twins[grp.key]; n > 0 {
		l = "(" + strconv.Itoa(n) + ") " + l
	}
	return l
}

// groupSummary is a header's count and the states worth telling: "12 ·
// 2 frozen · 1 silent". Grouped by state, the header says the state.
func (t *table) groupSummary(grp *rowGroup) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(grp.members)))
	if t.group == groupState {
		return b.String()
	}
	for i, n := range grp.states {
		if n == 0 || i < len(fleet.States) && fleet.States[i] == fleet.Ready {
			continue
		}
		name := "other"
		if i < len(fleet.States) {
			name = string(fleet.States[i])
		}
		fmt.Fprintf(&b, " · %d %s", n, name)
	}
	return b.String()
}

// renderHeader draws line i, the header of group gi: the fold sign, the
// value, escaped and cut so that the count always shows, and the count.
// The mark cell says whether the group's guests are all (●) or partly (◐)
// marked.
func (m *Model) renderHeader(i, gi int) string {
	t := &m.tbl
	grp := &t.groups[gi]
	marked := 0
	for _, g := range grp.members {
		if m.marks[g.Name] {
			marked++
		}
	}
	mark := " "
	switch {
	case marked > 0 && marked == len(grp.members):
		mark = "●"
	case marked > 0:
		mark = "◐"
	}
	sign := "▾ "
	if t.folded[grp.key] {
		sign = "▸ "
	}
	summary := t.groupSummary(grp)
	avail := m.width - prefixWidth
	label := t.groupLabel(grp) // once: a guest's is quoted, a new string
	labelW := min(present.Width(present.Text(label, avail)), avail-present.Width(sign)-2-present.Width(summary))
	body := sign + present.Cell(label, max(labelW, 1), false) + "  " + summary
	style := m.st.Accent.Bold(true)
	markStyle := m.st.Mark
	if i == t.cursor {
		style = m.st.Selection.Inherit(style)
		markStyle = m.st.Selection.Inherit(markStyle)
	}
	return markStyle.Render(mark+"  ") + style.Render(fit(body, avail, false))
}

// groupDetail is the detail pane while the cursor is on group gi's header:
// what the group holds and what the keys do there.
func (m *Model) groupDetail(gi int) []string {
	t := &m.tbl
	grp := &t.groups[gi]
	state := "unfolded"
	if t.folded[grp.key] {
		state = "folded"
	}
	return []string{
		present.Text(groupWords[t.group]+" "+t.groupLabel(grp), max(m.width, 1)) + ": " +
			present.Plural(len(grp.members), "guest") + ", " + state,
		m.st.Muted.Render(fmt.Sprintf("%s folds or unfolds it · %s marks its guests · actions go to the marked guests only",
			m.keys.Fold.Help().Key, m.keys.Mark.Help().Key)),
	}
}

// unfoldMatch unfolds the first folded group (in table order) holding a
// guest whose name has q as jumpMatches finds it, so that a jump to a
// folded guest lands on the guest; it returns the group's key, "" when it
// unfolded none.
func (m *Model) unfoldMatch(q string) string {
	t := &m.tbl
	if q == "" {
		return ""
	}
	q = strings.ToLower(q)
	for _, grp := range t.groups {
		if !t.folded[grp.key] {
			continue
		}
		for _, g := range grp.members {
			if strings.Contains(strings.ToLower(g.Name), q) || strings.HasPrefix(strings.ToLower(g.Domain()), q) {
				m.unfoldFor(g.Name)
				return grp.key
			}
		}
	}
	return ""
}

// refoldJump folds again the group a jump in progress unfolded.
func (m *Model) refoldJump() {
	n, t := &m.nav, &m.tbl
	if n.jumpOpened == "" {
		return
	}
	if t.folded == nil {
		t.folded = map[string]bool{}
	}
	t.folded[n.jumpOpened] = true
	n.jumpOpened = ""
	t.foldVer++
	m.reindex()
}
