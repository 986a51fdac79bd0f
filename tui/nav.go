package tui

// Navigation and finding guests: the filter's compiled form and its history
// across restarts, type-ahead jump to a guest by name, counts before
// motions (5j), inverting the marks, and the `:` line's palette of
// commands with tab cycling.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/history"
	"github.com/guestdeck/guestdeck/tui/present"
)

// navState is the state of the features above, a value in Model (so a
// copy of the model, as a test keeps, has its own count and palette).
type navState struct {
	// The compiled filter and the text it was compiled from.
	compiledFor string
	compiled    *fleet.Filter

	// Filter history, oldest first; histPos is len(filters) on a new line.
	hist     *history.File
	filters  []string
	histPos  int
	histEdit string // what was typed before walking the history

	// Type-ahead jump: what is typed, the guest the cursor was on when it
	// began (esc goes back there), and which of the matches is shown.
	jump     string
	jumpFrom string
	jumpNth  int
	// jumpFromHead is the group whose header the cursor was on instead.
	jumpFromHead string
	// jumpOpened is the folded group the jump unfolded to show its match
	// (group.go), folded again when the match moves on or esc goes back.
	jumpOpened string

	// A count typed before a motion, and the detail pane as it was before
	// its first digit (a digit also picks a tab; a motion takes that back).
	count       int
	countTab    int
	countDetail bool
	countScroll int

	// The `:` line's palette: the commands (with their help), the matches
	// for what was typed, and the one picked by tab or the arrows (-1: none).
	commands []paletteItem
	matches  []paletteItem
	typed    string
	picked   int
}

// paletteItem is one command of the `:` line with its one-line help.
type paletteItem struct {
	text, help string
}

func newNavState(hist *history.File) (navState, error) {
	n := navState{hist: hist, picked: -1}
	var err error
	if hist != nil {
		n.filters, err = hist.Load()
	}
	n.histPos = len(n.filters)
	return n, err
}

// --- the filter -----------------------------------------------------------

// filterMatch is the table's filter as a predicate, compiled once per
// filter text. A filter that does not compile (set by other code than the
// prompt, which keeps only filters that do) shows no guest.
func (m *Model) filterMatch(filter string) func(*fleet.Guest) bool {
	n := &m.nav
	if n.compiled == nil || n.compiledFor != filter {
		f, err := fleet.CompileFilter(filter)
		if err != nil {
			return func(*fleet.Guest) bool { return false }
		}
		n.compiled, n.compiledFor = f, filter
	}
	return n.compiled.Match
}

// openFilter opens the / prompt on the current filter.
func (m *Model) openFilter() tea.Cmd {
	m.open(layer{kind: layerFilter})
	m.filterInput.SetValue(m.tbl.filter)
	m.filterInput.CursorEnd()
	m.nav.histPos, m.nav.histEdit = len(m.nav.filters), ""
	return m.filterInput.Focus()
}

// recallFilter walks the filter history (dir -1: older) and applies the
// entry as typed.
func (m *Model) recallFilter(dir int) tea.Cmd {
	n := &m.nav
	pos := n.histPos + dir
	if pos < 0 || pos > len(n.filters) {
		return nil
	}
	if n.histPos == len(n.filters) {
		n.histEdit = m.filterInput.Value()
	}
	n.histPos = pos
	v := n.histEdit
	if pos < len(n.filters) {
		v = n.filters[pos]
	}
	m.filterInput.SetValue(v)
	m.filterInput.CursorEnd()
	m.applyTypedFilter()
	return nil
}

// rememberFilter adds the applied filter to the history and writes the
// file off the Update loop; a failure is shown, not fatal.
func (m *Model) rememberFilter(f string) tea.Cmd {
	n := &m.nav
	next := history.Add(n.filters, f)
	if n.hist == nil || slices.Equal(next, n.filters) {
		n.filters = next
		return nil
	}
	n.filters = next
	file, entries := n.hist, next
	return func() tea.Msg {
		if err := file.Save(entries); err != nil {
			return auditedMsg{what: "filter history", err: err}
		}
		return nil
	}
}

// applyTypedFilter applies the prompt's text when it compiles; otherwise
// the error is shown beside the prompt and the table keeps the last filter
// that did, rather than going blank.
func (m *Model) applyTypedFilter() {
	v := strings.TrimSpace(m.filterInput.Value())
	if err := fleet.CheckFilter(v); err != nil {
		m.filterErr = err.Error()
		m.setStatus(m.filterErr, true)
		return
	}
	if m.filterErr != "" {
		if m.status == m.filterErr {
			m.setStatus("", false)
		}
		m.filterErr = ""
	}
	if v != m.tbl.filter {
		m.tbl.filter = v
		m.reindex()
	}
}

// filterHint is what the filter prompt says beside what is typed.
func (m *Model) filterHint() string {
	h := "enter applies · esc clears"
	if len(m.nav.filters) > 0 {
		h += " · ↑/↓ history"
	}
	return h
}

// --- type-ahead jump --------------------------------------------------------

// openJump starts a type-ahead jump: letters typed move the cursor to the
// first shown guest whose name starts with them, else contains them.
func (m *Model) openJump() tea.Cmd {
	n := &m.nav
	n.jump, n.jumpNth, n.jumpFrom, n.jumpFromHead, n.jumpOpened = "", 0, "", "", ""
	if g := m.cursorGuest(); g != nil {
		n.jumpFrom = g.Name
	} else if gi := m.tbl.groupAt(m.tbl.cursor); gi >= 0 {
		n.jumpFromHead = m.tbl.groups[gi].key // on a header (group.go)
	}
	m.open(layer{kind: layerJump})
	return nil
}

// jumpMatches are the rows whose name starts with q, then those that
// contain it elsewhere, ignoring case, in table order.
func (m *Model) jumpMatches(q string) []int {
	if q == "" {
		return nil
	}
	q = strings.ToLower(q)
	var prefix, inside []int
	for i, g := range m.tbl.rows {
		name := strings.ToLower(g.Name)
		switch {
		case strings.HasPrefix(name, q), strings.HasPrefix(strings.ToLower(g.Domain()), q):
			prefix = append(prefix, i)
		case strings.Contains(name, q):
			inside = append(inside, i)
		}
	}
	return append(prefix, inside...)
}

func (m *Model) jumpKey(k tea.KeyPressMsg) tea.Cmd {
	n := &m.nav
	switch k.String() {
	case "esc":
		m.closeLayer(layerJump)
		m.refoldJump()
		for i, g := range m.tbl.rows {
			if g.Name == n.jumpFrom {
				m.moveTo(m.tbl.lineOfRow(i))
				break
			}
		}
		if i := m.tbl.headerLine(n.jumpFromHead); n.jumpFrom == "" && i >= 0 {
			m.moveTo(i)
		}
		return nil
	case "enter":
		m.closeLayer(layerJump)
		n.jumpOpened = "" // it stays open
		return nil
	case "tab", "down", "ctrl+n":
		n.jumpNth++
	case "shift+tab", "up", "ctrl+p":
		n.jumpNth--
	case "backspace":
		if r := []rune(n.jump); len(r) > 0 {
			n.jump, n.jumpNth = string(r[:len(r)-1]), 0
		}
	default:
		if k.Text == "" || !present.Clean(k.Text) || len(n.jump) >= 64 {
			return nil
		}
		n.jump, n.jumpNth = n.jump+k.Text, 0
	}
	m.refoldJump()
	hits := m.jumpMatches(n.jump)
	if len(hits) == 0 {
		if n.jumpOpened = m.unfoldMatch(n.jump); n.jumpOpened != "" { // group.go: a guest in a folded group
			hits = m.jumpMatches(n.jump)
		}
	}
	if len(hits) > 0 {
		n.jumpNth = (n.jumpNth%len(hits) + len(hits)) % len(hits)
		m.moveTo(m.tbl.lineOfRow(hits[n.jumpNth])) // a guest's line, never a header
	}
	return nil
}

// jumpLine is the input line while jumping: what is typed and where it
// landed.
func (m *Model) jumpLine() string {
	n := &m.nav
	line := m.st.Accent.Render("'") + present.Text(n.jump, 64) + "▏"
	hits := m.jumpMatches(n.jump)
	switch {
	case n.jump == "":
		line += "  " + m.st.Muted.Render("type a guest's name · enter stays · esc goes back")
	case len(hits) == 0:
		msg := fmt.Sprintf("no shown guest's name has %q", n.jump)
		if hidden := m.hiddenMatches(n.jump); hidden > 0 && m.tbl.filter != "" {
			msg += fmt.Sprintf(" (%s hidden by the filter)", present.Plural(hidden, "guest"))
		}
		line += "  " + m.st.Error.Render(present.Text(msg, m.width))
	default:
		g := m.tbl.rows[hits[n.jumpNth%len(hits)]]
		line += "  → " + present.Text(g.Name, nameCells) + m.st.Muted.Render(
			fmt.Sprintf("  %d/%d · tab next · enter stays · esc goes back", n.jumpNth%len(hits)+1, len(hits)))
	}
	return fit(line, m.width, false)
}

// hiddenMatches counts the guests the filter hides whose name has q.
func (m *Model) hiddenMatches(q string) int {
	q = strings.ToLower(q)
	n := 0
	for _, g := range m.snap.Guests {
		if strings.Contains(strings.ToLower(g.Name), q) {
			n++
		}
	}
	return n - len(m.jumpMatches(q))
}

// --- counts and inverted marks ----------------------------------------------

// maxCount bounds a typed count (more rows than any fleet has).
const maxCount = 99999

// countKey takes a digit into the count, or applies the count to a motion.
// It reports whether it used the key. A digit still picks its detail tab
// (1-9) as it always did; when a motion follows, the tab goes back to what
// it was, so 5j moves five rows and changes nothing else.
func (m *Model) countKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	n := &m.nav
	if len(k.Text) == 1 && k.Text[0] >= '0' && k.Text[0] <= '9' && k.Mod == 0 {
		d := int(k.Text[0] - '0')
		if n.count == 0 {
			if d == 0 {
				return nil, false
			}
			n.countTab, n.countDetail, n.countScroll = m.tab, m.detail, m.detailScroll
		}
		n.count = min(n.count*10+d, maxCount)
		return nil, false // the digit's own meaning (a tab) still applies
	}
	if n.count == 0 {
		return nil, false
	}
	count := n.count
	n.count = 0
	km := &m.keys
	var step func()
	switch {
	case key.Matches(k, km.Up):
		step = func() { m.moveTo(m.tbl.cursor - 1) }
	case key.Matches(k, km.Down):
		step = func() { m.moveTo(m.tbl.cursor + 1) }
	case key.Matches(k, km.PageUp):
		step = func() { m.moveTo(m.tbl.cursor - m.layout().tableRows) }
	case key.Matches(k, km.PageDown):
		step = func() { m.moveTo(m.tbl.cursor + m.layout().tableRows) }
	case key.Matches(k, km.ExtendUp):
		step = func() { m.extend(-1) }
	case key.Matches(k, km.ExtendDown):
		step = func() { m.extend(+1) }
	case key.Matches(k, km.Mark):
		// 3 space marks the next three rows: marks, not toggles, so that
		// the last row (where the cursor stops) and a header's own guests
		// (marked with it) are not unmarked by the next steps.
		m.restoreCountTab()
		m.markRows(count)
		return nil, true
	case key.Matches(k, km.Top), key.Matches(k, km.Bottom):
		// 5g and 5G go to row 5, as in vi.
		m.restoreCountTab()
		m.moveTo(count - 1)
		return nil, true
	default:
		return nil, false // the count is dropped; the key does what it does
	}
	m.restoreCountTab()
	for range min(count, m.tbl.lineCount()) {
		step()
	}
	return nil, true
}

func (m *Model) restoreCountTab() {
	n := &m.nav
	m.tab, m.detail, m.detailScroll = n.countTab, n.countDetail, n.countScroll
	m.clampScroll()
}

// countLine is the input line while a count waits for its motion.
func (m *Model) countLine() string {
	c := m.nav.count
	return fit(m.st.Accent.Render(strconv.Itoa(c))+m.st.Muted.Render(
		fmt.Sprintf("  a motion repeats %d times (j/k/↑/↓, pgup/pgdn, space, J/K); g or G goes to row %d", c, c)), m.width, false)
}

// invertMarks marks every shown guest that is not marked and unmarks those
// that are. Marks on guests the filter hides stay as they are: they are
// out of sight, and the status line's count still includes them.
func (m *Model) invertMarks() {
	m.commitVisual()
	for _, g := range m.tbl.rows {
		if m.marks[g.Name] {
			delete(m.marks, g.Name)
		} else {
			m.marks[g.Name] = true
		}
	}
}

// --- the `:` line's palette -------------------------------------------------

// commandItems are the `:` line's commands with their help, from the action
// table (read-only mode leaves out what it would refuse) and the
// dashboard's own verbs.
func (m *Model) commandItems() []paletteItem {
	var all, dry []paletteItem
	for _, s := range fleet.Suggestions() {
		if s.Mutating && m.opts.Readonly {
			continue
		}
		all = append(all, paletteItem{s.Text, s.Help})
		if s.Mutating {
			dry = append(dry, paletteItem{dryRunVerb + " " + s.Text, "show what it would send, sending nothing"})
		}
	}
	all = append(all,
		paletteItem{"events", "the event log (also :log)"}, paletteItem{"log", "the event log"},
		paletteItem{"help", "every key and the filter and command syntax"},
		paletteItem{"quit", "quit (also :q)"}, paletteItem{"q", "quit"},
		paletteItem{"pulse", "the fleet at a glance"}, paletteItem{"hold", "hold the row order under live updates"})
	all = append(all, groupCompletions()...) // group.go
	for _, s := range sortNames() {
		all = append(all, paletteItem{s, "sort the table by " + strings.TrimPrefix(s, "sort ")})
	}
	for _, s := range m.viewCompletions() { // views.go
		help := map[string]string{
			"columns":       "pick the columns in a list (:columns a,b,c shows those)",
			"columns auto":  "fit the columns to the width",
			"columns reset": "the view's own columns again",
		}[s]
		if help == "" {
			help = "switch to the saved view " + strings.TrimPrefix(s, "view ")
		}
		all = append(all, paletteItem{s, help})
	}
	all = append(all, paletteItem{"audit", "the audit log: every action, newest first"},
		paletteItem{"export csv ", "write the rows shown to a CSV file"},
		paletteItem{"export json ", "write the rows shown as status --json prints them"})
	offered := m.commandCompletions() // usercmd.go: read-only leaves out the dangerous ones
	for _, c := range m.opts.Commands {
		if slices.Contains(offered, c.Name) {
			help := c.Description
			if help == "" {
				help = "[[commands]]: " + c.Run
			}
			all = append(all, paletteItem{c.Name, help})
		}
	}
	if m.opts.Exec != nil && !m.opts.Readonly {
		all = append(all, paletteItem{"exec ", "run a program on the marked guests (also :!)"})
	}
	return append(all, dry...)
}

// paletteMatch lists the commands for what is typed: those it begins, then
// (from two letters on) those with it inside, so "boot" finds reboot.
func (n *navState) paletteMatch(typed string) {
	n.typed, n.picked, n.matches = typed, -1, nil
	t := strings.ToLower(strings.TrimLeft(typed, " "))
	if t == "" {
		return
	}
	var inside []paletteItem
	for _, it := range n.commands {
		switch {
		case strings.HasPrefix(it.text, t) && strings.TrimSpace(it.text) != strings.TrimSpace(t):
			n.matches = append(n.matches, it)
		case len(t) >= 2 && !strings.HasPrefix(it.text, t) && strings.Contains(it.text, t):
			inside = append(inside, it)
		}
	}
	n.matches = append(n.matches, inside...)
}

// pickCommand moves the palette's pick by dir (tab, the arrows) and puts
// the picked command on the line; the list stays the one for what was
// typed, so tab cycles through it and shift+tab goes back.
func (m *Model) pickCommand(dir int) {
	n := &m.nav
	if len(n.matches) == 0 && strings.TrimSpace(n.typed) == "" {
		n.matches = n.commands // tab on an empty line lists everything
	}
	if len(n.matches) == 0 {
		return
	}
	switch {
	case n.picked < 0 && dir < 0:
		n.picked = len(n.matches) - 1
	case n.picked < 0:
		n.picked = 0
	default:
		n.picked = (n.picked + dir + len(n.matches)) % len(n.matches)
	}
	m.cmdInput.SetValue(n.matches[n.picked].text)
	m.cmdInput.CursorEnd()
}

// commandEdited refreshes the palette after a key that may have changed
// the line.
func (m *Model) commandEdited() {
	if v := m.cmdInput.Value(); v != m.nav.typed {
		m.nav.paletteMatch(v)
	}
}

// paletteRows is how many lines the palette takes above the input line.
const paletteRows = 8

// paletteLines draws the palette: one command a line with its help, the
// picked one highlighted, and how many more there are.
func (m *Model) paletteLines(room int) []string {
	n := &m.nav
	if m.top().kind != layerCommand || m.secret != nil || len(n.matches) == 0 || room < 2 {
		return nil
	}
	rows := min(len(n.matches), paletteRows, room)
	first := 0
	if n.picked >= rows {
		first = n.picked - rows + 1
	}
	more := len(n.matches) > rows
	if more {
		rows-- // the last line says how many more
		if n.picked >= first+rows {
			first = n.picked - rows + 1
		}
	}
	textW := 4
	for _, it := range n.matches {
		textW = max(textW, present.Width(it.text))
	}
	textW = min(textW, max(m.width/2, 12))
	var out []string
	for i := first; i < first+rows && i < len(n.matches); i++ {
		it := n.matches[i]
		name := " " + present.Cell(it.text, textW, false) + "  " // view names are the fleet file's
		help := fit(it.help, max(m.width-present.Width(name), 0), false)
		if i == n.picked {
			out = append(out, m.st.Selection.Render(name+help))
		} else {
			out = append(out, name+m.st.Muted.Render(help))
		}
	}
	if more {
		pos := fmt.Sprintf("%d commands", len(n.matches))
		if n.picked >= 0 {
			pos = fmt.Sprintf("%d of %d", n.picked+1, len(n.matches))
		}
		out = append(out, m.st.Muted.Render(fit(" "+pos+" · tab/↓ next · shift+tab/↑ back", m.width, false)))
	}
	return out
}

// overlayPalette draws the palette over the bottom lines of the region,
// right above the `:` line it belongs to.
func (m *Model) overlayPalette(region string) string {
	lines := strings.Split(region, "\n")
	p := m.paletteLines(len(lines) - 1)
	if len(p) == 0 {
		return region
	}
	copy(lines[len(lines)-len(p):], p)
	return strings.Join(lines, "\n")
}

// commandLine is the `:` input line.
func (m *Model) commandLine() string {
	line := m.cmdInput.View()
	if len(m.nav.matches) > 0 {
		line = strings.TrimRight(line, " ") + "  " + m.st.Muted.Render("tab/↑↓ pick · enter runs · esc cancels")
	}
	return fit(line, m.width, false)
}

// checkFilter shows the error of the table's filter when it was set other
// than by typing (a saved view's), and takes a stale one away.
func (m *Model) checkFilter() {
	err := fleet.CheckFilter(m.tbl.filter)
	switch {
	case err != nil:
		m.filterErr = err.Error()
		m.setStatus(m.filterErr, true)
	case m.filterErr != "":
		if m.status == m.filterErr {
			m.setStatus("", false)
		}
		m.filterErr = ""
	}
}

// markRows marks n rows from the cursor down, a header's whole group, and
// leaves the cursor after them; it stops at the table's end.
func (m *Model) markRows(n int) {
	for range n {
		if g := m.cursorGuest(); g != nil {
			m.marks[g.Name] = true
		} else if gi := m.tbl.groupAt(m.tbl.cursor); gi >= 0 {
			for _, g := range m.tbl.groups[gi].members {
				m.marks[g.Name] = true
			}
		}
		prev := m.tbl.cursor
		m.moveTo(m.tbl.cursor + 1)
		if m.tbl.cursor == prev {
			return
		}
	}
}
