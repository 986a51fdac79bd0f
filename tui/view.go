package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// screen is where each part of the dashboard goes; View and the mouse
// handlers share it so clicks land where things were drawn.
type screen struct {
	banner       int // banner lines under the title
	tableTop     int // first table row (the header is the line above)
	tableRows    int
	detailTop    int // the detail pane's tab bar
	detailRows   int // detail content lines under the tab bar
	regionTop    int // header line: where overlays start
	regionHeight int // header, rows and detail pane
}

func (m *Model) tooSmall() bool { return m.width < MinWidth || m.height < MinHeight }

func (m *Model) layout() screen {
	var s screen
	if m.opts.Banner != "" && m.height >= 22 {
		s.banner = 4
	}
	bottom := 3 // input/status, counts, help
	if m.run != nil {
		bottom++
	}
	s.regionTop = 1 + s.banner
	s.regionHeight = max(m.height-s.regionTop-bottom, 2)
	s.tableTop = s.regionTop + 1
	rest := s.regionHeight - 1
	detail := 0
	if m.detail {
		detail = max(rest*2/5, 6)
		if rest-detail < 3 {
			detail = rest - 3
		}
		if detail < 3 {
			detail = 0
		}
	}
	s.tableRows = rest - detail
	if detail > 0 {
		s.detailTop = s.tableTop + s.tableRows
		s.detailRows = detail - 1
	}
	return s
}

// View renders only what is on screen: the visible rows of the table and the
// detail of one guest, whatever the size of the fleet.
func (m Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "guestdeck"
	return v
}

func (m *Model) render() string {
	if m.tooSmall() {
		return m.renderTooSmall()
	}
	if top := m.top(); top.kind == layerFiles {
		return m.st.Title.Render("guestdeck") + " " + m.st.Muted.Render("files") + "\n" + top.files.View()
	}
	l := m.layout()
	var b strings.Builder
	b.WriteString(m.renderTitle())
	if l.banner > 0 {
		b.WriteString("\n")
		b.WriteString(m.renderBanner())
	}
	b.WriteString("\n")
	b.WriteString(m.overlayPalette(m.renderRegion(l))) // nav.go: the `:` palette
	if m.run != nil {
		b.WriteString("\n")
		b.WriteString(m.renderProgress())
	}
	b.WriteString("\n")
	b.WriteString(m.renderInputLine())
	b.WriteString("\n")
	b.WriteString(m.renderCounts())
	b.WriteString("\n")
	b.WriteString(fit(m.help.ShortHelpView(m.helpLine()), m.width, false))
	return b.String()
}

// renderTooSmall says the screen is too small, and shows the quit question
// when that is what the keys answer (see tooSmallKey).
func (m *Model) renderTooSmall() string {
	msg := fmt.Sprintf("guestdeck needs at least %dx%d\nthis terminal is %dx%d\n\nenlarge it, or press q to quit",
		MinWidth, MinHeight, m.width, m.height)
	if top := m.top(); top.kind == layerQuit {
		msg = strings.Join(m.quitDialogLines(top.quit), "\n") +
			fmt.Sprintf("\n\n(this terminal is %dx%d: guestdeck needs %dx%d)", m.width, m.height, MinWidth, MinHeight)
	}
	w, h := max(m.width, 1), max(m.height, 1)
	return lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, lipgloss.NewStyle().Align(lipgloss.Center).Render(msg))
}

func (m *Model) renderTitle() string {
	left := m.st.Title.Render("guestdeck") + " " + fmt.Sprintf("%d guests", len(m.snap.Guests))
	if v := m.views.current; v != DefaultView {
		left += " · view " + present.Text(v, nameCells) // views.go
	}
	if m.tbl.filter != "" {
		left += fmt.Sprintf(" · filter %q: %d shown", m.tbl.filter, m.tbl.matched)
	}
	if m.tbl.group != groupNone {
		left += " · group " + groupWords[m.tbl.group] // group.go
	}
	dir := "↑"
	if m.tbl.sortDesc {
		dir = "↓"
	}
	left += " · sort " + strings.ToLower(columns[m.tbl.sortCol].title) + " " + dir
	if m.tbl.held {
		left += " " + m.st.Warn.Render("held") // metrics.go: the order stays put
	}
	if m.opts.Readonly {
		left += "  " + m.st.Warn.Bold(true).Render("READ-ONLY")
	}
	return fit(left, m.width, false)
}

func (m *Model) renderBanner() string {
	lines := []string{
		"Demo fleet: no fleet file found. Create " + m.opts.Banner + " to watch your own guests, for example:",
		`  [[guest]]                                       [[host]]   # every guest with an agent on a libvirt host`,
		`  name = "web-01"                                 name = "hv1"`,
		`  address = "unix:/run/qga/web-01.sock"           uri = "qemu+ssh://root@hv1/system"`,
	}
	for i, s := range lines {
		st := m.st.Muted
		if i == 0 {
			st = m.st.Banner
		}
		lines[i] = st.Render(fit(s, m.width, false))
	}
	return strings.Join(lines, "\n")
}

// renderRegion draws the table and detail pane, or the layer that replaces
// them: the same one that receives the mouse, and, unless a prompt is open
// on the input line, the keys.
func (m *Model) renderRegion(l screen) string {
	w, h := m.width, l.regionHeight
	switch r := m.region(); r.kind {
	case layerHelp:
		return m.renderHelp(w, h)
	case layerEvents:
		return m.renderEvents(w, h)
	case layerEntry:
		return m.renderEntry(w, h)
	case layerDetail:
		return m.renderDetail(h - 1)
	case layerHosts:
		return m.renderHosts(w, h)
	case layerQuit:
		return m.withDialog(l, m.renderQuitDialog(r.quit))
	case layerConfirm:
		return m.withDialog(l, m.renderConfirm(r.confirm))
	case layerFiles:
		// Under a prompt (the browser is full screen only while on top).
		return place(w, h, r.files.View())
	case layerExec:
		return m.renderExec(w, h)
	case layerPulse:
		return m.renderPulse(w, h)
	case layerColumns:
		return m.renderColumnPicker(w, h)
	case layerAudit:
		return m.renderAudit(r.audit, w, h)
	case layerAsk:
		return m.withDialog(l, m.renderAsk(r.ask))
	}
	out := m.renderTable(l.tableRows)
	if l.detailRows > 0 {
		out += "\n" + m.renderDetail(l.detailRows)
	}
	return out
}

// withDialog draws the table above a dialog box that takes the detail pane's place.
func (m *Model) withDialog(l screen, dialog string) string {
	dh := lipgloss.Height(dialog)
	rows := max(l.regionHeight-1-dh, 1)
	if rows+1+dh > l.regionHeight {
		return place(m.width, l.regionHeight, dialog)
	}
	return m.renderTable(rows) + "\n" + lipgloss.PlaceHorizontal(m.width, lipgloss.Center, dialog)
}

// place pads s to exactly w x h.
func place(w, h int, s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i := range lines {
		lines[i] = fit(lines[i], w, false)
	}
	for len(lines) < h {
		lines = append(lines, strings.Repeat(" ", w))
	}
	return strings.Join(lines, "\n")
}

// renderTable draws the header and rows visible in n lines. Its cost does not
// depend on the number of guests.
func (m *Model) renderTable(n int) string {
	cols := m.visibleColumns()
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", prefixWidth))
	var hdr strings.Builder
	for i, c := range cols {
		title := c.title
		if c.id == m.tbl.sortCol {
			if m.tbl.sortDesc {
				title += "↓"
			} else {
				title += "↑"
			}
		}
		hdr.WriteString(fit(title, c.width, c.right))
		if i < len(cols)-1 {
			hdr.WriteByte(' ')
		}
	}
	b.WriteString(m.st.Header.Render(hdr.String()))

	off := m.tbl.offset
	if m.tbl.cursor >= off+n {
		off = m.tbl.cursor - n + 1
	}
	pending, hasPending := m.pendingAction()
	now := m.now()
	freezeShown := slices.ContainsFunc(cols, func(c column) bool { return c.id == colFreeze })
	if m.rowCache != nil {
		m.rowCache.begin(cols, n)
	}
	for line := 0; line < n; line++ {
		b.WriteByte('\n')
		i := off + line
		if i >= m.tbl.lineCount() {
			b.WriteString(strings.Repeat(" ", m.width))
			continue
		}
		g := m.tbl.guestAt(i)
		if g == nil {
			b.WriteString(m.renderHeader(i, m.tbl.groupAt(i))) // group.go
			continue
		}
		greyed := hasPending && actionCheck(pending, g) != ""
		b.WriteString(m.drawRow(line, i, g, cols, now, greyed, freezeShown)) // rowcache.go
	}
	if m.tbl.lineCount() == 0 && n > 0 {
		msg := "no guests"
		if m.tbl.filter != "" {
			msg = fmt.Sprintf("no guest matches %q (esc clears the filter)", m.tbl.filter)
		}
		out := b.String()
		first := strings.Index(out, "\n")
		if first >= 0 {
			return out[:first+1] + m.st.Muted.Render(fit("   "+msg, m.width, false)) + out[first+1+m.width:]
		}
	}
	return b.String()
}

// pendingAction is the action a confirmation or the command line is about
// to run: guests that cannot do it are greyed out.
func (m *Model) pendingAction() (fleet.Action, bool) {
	if c := m.openConfirmation(); c != nil {
		return c.action, true
	}
	if m.secret != nil {
		return m.secret.action, true // what is typed is a password, not a command
	}
	if m.top().kind == layerCommand {
		fields := strings.Fields(m.cmdInput.Value())
		if len(fields) > 0 && fields[0] == dryRunVerb {
			fields = fields[1:]
		}
		if a, err := parseAction(fields); err == nil {
			return a, true
		}
	}
	return fleet.Action{}, false
}

// rowStatusText is the status cell of a guest's row: its part in the
// current or last action.
func (m *Model) rowStatusText(name string) string {
	switch m.rowStatus[name] {
	case rowRunning:
		return m.spin.View()
	case rowOK:
		return "✓"
	case rowFailed:
		return "✗"
	case rowSkipped:
		return "-"
	case rowNotStarted:
		return "○" // stopped before its turn: nothing was sent
	}
	return " "
}

// renderRow draws a guest's row (rowcache.go says from what).
func (m *Model) renderRow(in rowInputs, cols []column, now time.Time) string {
	g := in.g
	mark, status := " ", in.status
	if in.marked {
		mark = "●"
	}
	var cells strings.Builder
	for j, c := range cols {
		cells.WriteString(present.Cell(cellText(g, c.id, now), c.width, c.right))
		if j < len(cols)-1 {
			cells.WriteByte(' ')
		}
	}
	rowStyle := m.st.State(string(g.State))
	if g.Stale() {
		// Its values are from the agent's last answer (fleet.Guest.Stale).
		rowStyle = rowStyle.Faint(true)
	}
	markStyle := m.st.Mark
	if in.greyed {
		rowStyle = m.st.Disabled
	}
	if in.cursor {
		rowStyle = m.st.Selection.Inherit(rowStyle)
		markStyle = m.st.Selection.Inherit(markStyle)
	}
	return markStyle.Render(mark+status+" ") + rowStyle.Render(cells.String())
}

// helpLine is the help under the table: the top layer's keys, and the
// stop key first while an action runs that it can stop from here.
func (m *Model) helpLine() []key.Binding {
	keys := m.keys.layerHelp(m.top())
	if m.run != nil && !m.run.stopping && stopReaches(m.top().kind) && m.keys.Stop.Enabled() {
		keys = append([]key.Binding{m.keys.Stop}, keys...)
	}
	return keys
}

func (m *Model) renderProgress() string {
	r := m.run
	pct := 0.0
	if r.total > 0 {
		pct = float64(r.done) / float64(r.total)
	}
	label := fmt.Sprintf(" %s %s %d/%d", m.spin.View(), present.Text(actionString(r.action), m.width), r.done, r.total)
	if r.stopping {
		// Here too: the status line may have moved on to another message.
		label = fmt.Sprintf(" %s %s", m.spin.View(), present.Text(m.stoppingText(), m.width))
	} else {
		label += fmt.Sprintf(" · %s stops", m.keys.Stop.Help().Key)
	}
	return fit(m.prog.ViewAs(pct)+label, m.width, false)
}

func (m *Model) renderInputLine() string {
	// A prompt is drawn only while it has the keys (on top).
	switch top := m.top().kind; {
	case top == layerFilter:
		line := m.filterInput.View()
		if m.filterErr != "" {
			// The prompt has the line: the error goes beside it, or it
			// would be invisible until the prompt closed.
			line = strings.TrimRight(line, " ") + "  " + m.st.Error.Render(present.Text(m.filterErr, m.width))
		} else {
			line = strings.TrimRight(line, " ") + "  " + m.st.Muted.Render(m.filterHint())
		}
		return fit(line, m.width, false)
	case top == layerJump:
		return m.jumpLine() // nav.go
	case top == layerTable && m.nav.count >= 10:
		// One digit is also a tab key, and the tab it shows is its
		// feedback; from two digits on it can only be a count.
		return m.countLine()
	case top == layerExecCmd:
		return fit(m.ex.input.View(), m.width, false)
	case top == layerYank:
		return fit(m.yankPrompt(), m.width, false)
	case top == layerExec && m.ex.pane != nil && m.ex.pane.searching:
		return fit(m.ex.pane.search.View(), m.width, false)
	case top == layerCommand:
		return m.commandLine() // nav.go
	case m.status != "":
		st := m.st.Accent
		if m.statusErr {
			st = m.st.Error
		}
		// Status messages quote errors and guest names: escape them.
		return st.Render(present.Cell(m.status, m.width, false))
	}
	if n := m.markCount(); n > 0 {
		s := fmt.Sprintf("%d marked", n)
		if m.visual {
			s += " (visual: v ends)"
		}
		return m.st.Mark.Render(fit(s, m.width, false))
	}
	return strings.Repeat(" ", m.width)
}

func (m *Model) renderCounts() string {
	counts := m.counts
	var parts []string
	for _, s := range fleet.States {
		if n := counts[s]; n > 0 {
			parts = append(parts, m.st.State(string(s)).Render(fmt.Sprintf("%s %d", s, n)))
		}
	}
	line := strings.Join(parts, m.st.Muted.Render(" · "))
	if hosts, trouble := m.hostsSummary(); trouble {
		// A host that is down comes first: its guests are missing or stale.
		line = m.st.Error.Render(hosts) + m.st.Muted.Render(" │ ") + line
	} else if hosts != "" {
		line += m.st.Muted.Render(" │ ") + m.st.Muted.Render(hosts)
	}
	if m.frozenOurs > 0 {
		s := fmt.Sprintf("%d frozen by us", m.frozenOurs)
		if !m.nextThaw.IsZero() {
			s += ", thaw in " + present.Countdown(m.nextThaw.Sub(m.now()))
		}
		line += m.st.Muted.Render(" │ ") + m.st.State(string(fleet.Frozen)).Render(s)
	}
	h := m.snap.Health
	poll := fmt.Sprintf("polling %d · late %d · missed %d", h.Polling, h.Late, h.Missed)
	pollStyle := m.st.Muted
	if h.Late > 0 {
		pollStyle = m.st.Warn
	}
	line += m.st.Muted.Render(" │ ") + pollStyle.Render(poll)
	// The marks first: they decide what F, X and T act on, and the end of
	// the line is what a narrow terminal cuts.
	if n := m.markCount(); n > 0 {
		line = m.st.Mark.Render(fmt.Sprintf("%d marked", n)) + m.st.Muted.Render(" │ ") + line
	}
	return fit(line, m.width, false)
}

// renderHelp draws the help screen, generated from the key map, the action
// table and the views: the syntax first (filter, commands, views), as it
// is what cannot be guessed, then the keys. What does not fit in h lines
// scrolls (helpKey), and the last line says how much is below: at 80x24
// the help was cut off in mid-syntax, silently.
func (m *Model) renderHelp(w, h int) string {
	lines := m.helpLines(w)
	lines = lines[min(m.helpScroll, max(len(lines)-h, 0)):]
	if len(lines) > h && h > 1 {
		more := len(lines) - (h - 1)
		lines = append(lines[:h-1], m.st.Muted.Render(fmt.Sprintf("↓ %d more lines (%s, %s)", more,
			m.keys.Down.Help().Key, m.keys.PageDown.Help().Key)))
	}
	return place(w, h, strings.Join(lines, "\n"))
}

// helpLines is the whole help screen, wrapped at w.
func (m *Model) helpLines(w int) []string {
	var out []string
	add := func(title, text string) {
		out = append(out, hangWrap(m.st.Title.Render(title), present.Width(title), text, w)...)
	}
	out = append(out, m.st.Title.Render("Help")+m.st.Muted.Render("  (? or esc closes)"))
	add("Filter", "/ then words that must all match: substring of name/host/address/tag, glob (web-*), tag:X, host:X, state:frozen, "+
		"hostname:X, os:X, ip:X (what the guest reports), "+
		"re:REGEXP, ~fuzzy (name), !WORD (not); ↑/↓ recall; "+m.keys.Jump.Help().Key+" jumps to a name")
	add("Commands", ": then "+strings.Join(helpItems(m.opts.Readonly, fleet.HelpFull), ", "))
	add("Views", m.viewsHelp())
	if c := m.commandsHelp(); c != "" {
		add("Custom", c) // usercmd.go: the fleet file's [[commands]]
	}
	add("Columns", ":columns picks them in a list; :columns a,b,c shows those, in that order, in this view for the session; +a adds, -a drops, "+
		"auto fits them to the width, reset restores the view's own. Names: "+strings.Join(ColumnNames(), ", "))
	targets := "the marked guests, or the guest under the cursor when none is marked"
	if !m.opts.Readonly {
		targets = "marked guests, else the cursor's · :dry-run ACTION shows, sends nothing"
	}
	add("Targets", targets)
	yes, no := confirmKeys(false)
	thaw, leave, cancel := m.keys.quitKeys()
	add("Dialogs", fmt.Sprintf("%s confirm, %s cancel. Quit with guests frozen by us: %s thaw and quit · %s leave them frozen · %s cancel",
		yes.Help().Key, no.Help().Key, thaw.Help().Key, leave.Help().Key, cancel.Help().Key))
	add("Stop", m.keys.Stop.Help().Key+" while an action runs: no more guests are started (they are sent nothing), "+
		"and the calls sent finish with their real results; quitting cuts those too")
	add("Groups", fmt.Sprintf(":group os|state|tag|host|none; %s folds the cursor's group, %s all; space on a header marks the group. "+
		"A guest with several tags is under its first; a folded group's guests are targets only when marked",
		m.keys.Fold.Help().Key, m.keys.FoldAll.Help().Key))
	add("Counts", "a number before a motion repeats it: 5j, 3k, 12G (row 12), 3 space (marks 3)")
	out = append(out, m.st.Title.Render("Keys"))
	out = append(out, strings.Split(m.helpKeys(w), "\n")...)
	return out
}

// helpKeys lays the key groups out in as many columns as fit in w, stacking
// groups when they do not all fit side by side: bubbles/help would cut the
// columns on the right off, hiding quit and every action key at 80 columns.
func (m *Model) helpKeys(w int) string {
	groups := m.keys.FullHelp()
	// Measure without help's own width limit: it would cut a layout to fit
	// (with an ellipsis) and so make every layout look as if it fits.
	h := m.help
	h.SetWidth(0)
	best, bestH := "", 0
	for cols := len(groups); cols >= 1 && best == ""; cols-- {
		for _, cut := range partitions(len(groups), cols) {
			var stacked [][]key.Binding
			for i := range cut[:len(cut)-1] {
				var col []key.Binding
				for _, g := range groups[cut[i]:cut[i+1]] {
					col = append(col, g...)
				}
				stacked = append(stacked, col)
			}
			s := h.FullHelpView(stacked)
			if lipgloss.Width(s) > w {
				continue
			}
			if h := lipgloss.Height(s); best == "" || h < bestH {
				best, bestH = s, h
			}
		}
	}
	if best == "" {
		return m.help.FullHelpView(groups)
	}
	return best
}

// partitions lists the ways to cut n items into k contiguous non-empty runs,
// each as its boundaries (0, ..., n).
func partitions(n, k int) [][]int {
	if k == 1 {
		return [][]int{{0, n}}
	}
	var out [][]int
	for first := 1; first <= n-k+1; first++ {
		for _, rest := range partitions(n-first, k-1) {
			cut := []int{0}
			for _, r := range rest {
				cut = append(cut, first+r)
			}
			out = append(out, cut)
		}
	}
	return out
}

func (m *Model) renderConfirm(c *confirmation) string {
	names := make([]string, min(len(c.run), 6))
	for i := range names {
		names[i] = present.Text(c.run[i].Name, nameCells)
	}
	lines := []string{
		m.st.Warn.Bold(true).Render(present.Text(viaPrefix(c.via)+c.action.Question(len(c.run), m.opts.FreezeTimeout), m.width)),
		guestList(names, len(c.run), 5),
	}
	if len(c.skipped) > 0 {
		sk := make([]string, min(len(c.skipped), 4))
		for i := range sk {
			sk[i] = present.Text(c.skipped[i].Guest, nameCells)
		}
		lines = append(lines, m.st.Disabled.Render(fmt.Sprintf("%d skipped (%s): %s", len(c.skipped), present.Text(c.skipped[0].Err, m.width),
			guestList(sk, len(c.skipped), 3))))
	}
	lines = append(lines, "")
	if c.needType {
		lines = append(lines, fmt.Sprintf("Type %d and press enter to confirm, esc cancels: %s▏", len(c.run), c.typed))
	} else {
		yes, no := confirmKeys(false)
		lines = append(lines, yes.Help().Key+" confirms · "+no.Help().Key+" cancels")
	}
	return m.dialogBox(lines)
}

// dialogBox draws lines in the dialog border, wrapping them inside it when
// the screen is narrower: MaxWidth cut the right border and the end of the
// warning off instead.
func (m *Model) dialogBox(lines []string) string {
	body := strings.Join(lines, "\n")
	if s := m.st.Dialog.Render(body); lipgloss.Width(s) <= m.width {
		return s
	}
	return m.st.Dialog.Width(m.width).Render(body)
}

func (m *Model) renderQuitDialog(q *quitDialog) string {
	return m.dialogBox(m.quitDialogLines(q))
}

// quitDialogLines is the quit question; its keys line comes from quitKeys,
// the keys quitKey answers to.
func (m *Model) quitDialogLines(q *quitDialog) []string {
	frozen := m.src.FrozenByUs()
	shown := make([]string, min(len(frozen), 6))
	for i := range shown {
		shown[i] = present.Text(frozen[i], nameCells)
	}
	lines := []string{
		m.st.Warn.Bold(true).Render(fmt.Sprintf("%s frozen by guestdeck", present.Plural(len(frozen), "guest"))),
		guestList(shown, len(frozen), 5),
		"Linux guests never thaw by themselves: leaving them frozen is an outage.",
	}
	if len(q.failed) > 0 {
		failed := make([]string, min(len(q.failed), 6))
		for i := range failed {
			failed[i] = present.Text(q.failed[i], nameCells)
		}
		lines = append(lines, m.st.Error.Render(fmt.Sprintf("Thaw failed on %s (the event log says why).",
			guestList(failed, len(q.failed), 5))))
	}
	lines = append(lines, "")
	thaw, leave, cancel := m.keys.quitKeys()
	if q.thawing {
		lines = append(lines, "thawing… ("+leave.Help().Key+" quits without waiting, leaving the rest frozen)")
	} else {
		lines = append(lines, fmt.Sprintf("%s %s · %s %s · %s %s", thaw.Help().Key, thaw.Help().Desc,
			leave.Help().Key, leave.Help().Desc, cancel.Help().Key, cancel.Help().Desc))
	}
	return lines
}
