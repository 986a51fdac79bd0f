package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// tableKey handles keys when no prompt, dialog or overlay has focus: each
// group of keys has its handler, tried in turn.
func (m *Model) tableKey(k tea.KeyPressMsg) tea.Cmd {
	if key.Matches(k, m.keys.Quit) {
		m.nav.count = 0
		return m.requestQuit()
	}
	if cmd, ok := m.countKey(k); ok { // nav.go: 5j
		return cmd
	}
	for _, handle := range []func(tea.KeyPressMsg) (tea.Cmd, bool){m.moveKey, m.markKey, m.viewKey, m.actionKey, m.savedViewKey, m.userCommandKey} {
		if cmd, ok := handle(k); ok {
			return cmd
		}
	}
	if len(k.Text) == 1 && k.Text >= "1" && int(k.Text[0]-'1') < len(tabNames) {
		m.setTab(int(k.Text[0] - '1'))
	}
	return nil
}

// moveKey moves the cursor.
func (m *Model) moveKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	km, cur, page := &m.keys, m.tbl.cursor, m.layout().tableRows
	for _, mv := range []struct {
		b  key.Binding
		to int
	}{
		{km.Up, cur - 1}, {km.Down, cur + 1}, {km.PageUp, cur - page}, {km.PageDown, cur + page},
		{km.Top, 0}, {km.Bottom, m.tbl.lineCount() - 1},
	} {
		if key.Matches(k, mv.b) {
			m.moveTo(mv.to)
			return nil, true
		}
	}
	return nil, false
}

// markKey marks and unmarks guests.
func (m *Model) markKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	km := &m.keys
	switch {
	case key.Matches(k, km.Mark):
		m.toggleMark()
	case key.Matches(k, km.ExtendUp):
		m.extend(-1)
	case key.Matches(k, km.ExtendDown):
		m.extend(+1)
	case key.Matches(k, km.MarkRange):
		m.toggleVisual()
	case key.Matches(k, km.MarkAll):
		for _, g := range m.tbl.rows {
			m.marks[g.Name] = true
		}
	case key.Matches(k, km.InvertMarks):
		m.invertMarks() // nav.go
	case key.Matches(k, km.Clear):
		m.clear()
	default:
		return nil, false
	}
	return nil, true
}

// viewKey opens prompts and overlays, sorts, and works the detail pane.
func (m *Model) viewKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	km := &m.keys
	switch {
	case key.Matches(k, km.Filter):
		return m.openFilter(), true // nav.go
	case key.Matches(k, km.Jump):
		return m.openJump(), true // nav.go
	case key.Matches(k, km.Command):
		m.open(layer{kind: layerCommand})
		m.cmdInput.SetValue("")
		m.nav.paletteMatch("")
		return m.cmdInput.Focus(), true
	case key.Matches(k, km.Help):
		m.open(layer{kind: layerHelp})
	case key.Matches(k, km.Sort):
		m.tbl.sortCol = (m.tbl.sortCol + 1) % numCols
		m.reindex()
	case key.Matches(k, km.SortReverse):
		m.tbl.sortDesc = !m.tbl.sortDesc
		m.reindex()
	case key.Matches(k, km.HoldOrder):
		m.toggleHold() // metrics.go
	case key.Matches(k, km.Fold):
		m.toggleFold() // group.go
	case key.Matches(k, km.FoldAll):
		m.toggleFoldAll()
	case key.Matches(k, km.Pulse):
		m.openPulse() // pulse.go
	case key.Matches(k, km.Detail):
		m.openDetail() // detailview.go
	case key.Matches(k, km.DetailPane):
		m.detail = !m.detail
		m.clampScroll()
	case key.Matches(k, km.DetailNextTab):
		m.setTab(m.tab + 1)
	case key.Matches(k, km.DetailPrevTab):
		m.setTab(m.tab - 1)
	case key.Matches(k, km.DetailDown):
		m.scrollDetail(max(m.layout().detailRows/2, 1))
	case key.Matches(k, km.DetailUp):
		m.scrollDetail(-max(m.layout().detailRows/2, 1))
	case key.Matches(k, km.Events):
		m.open(layer{kind: layerEvents})
		m.resetEventLog()
	case key.Matches(k, km.Hosts):
		m.open(layer{kind: layerHosts})
		m.hostScroll = 0
	case key.Matches(k, km.Files):
		return m.openFiles(), true
	case key.Matches(k, km.Yank):
		m.openYank() // clip.go
	case key.Matches(k, km.Audit):
		return m.openAudit(), true // auditpane.go
	case key.Matches(k, km.Exec), slices.Contains(km.Exec.Keys(), k.String()):
		// Matched disabled too: read-only mode refuses it in words.
		return m.openExecPrompt(""), true
	default:
		return nil, false
	}
	return nil, true
}

// actionKey starts the action a key is bound to (the table's quick
// actions, see KeyMap.actionFor).
func (m *Model) actionKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	if a, ok := m.keys.actionFor(k); ok {
		return m.startAction(a), true
	}
	return nil, false
}

func (m *Model) toggleMark() {
	g := m.cursorGuest()
	if gi := m.tbl.groupAt(m.tbl.cursor); g == nil && gi >= 0 {
		m.toggleGroupMarks(gi) // group.go: a header marks its group
		m.moveTo(m.tbl.cursor + 1)
		return
	}
	if g == nil {
		return
	}
	if m.marks[g.Name] {
		delete(m.marks, g.Name)
	} else {
		m.marks[g.Name] = true
	}
	m.moveTo(m.tbl.cursor + 1)
}

// extend marks the current row and the one dir away, moving there: holding
// shift+down sweeps a range.
func (m *Model) extend(dir int) {
	if g := m.cursorGuest(); g != nil {
		m.marks[g.Name] = true
	}
	m.moveTo(m.tbl.cursor + dir)
	if g := m.cursorGuest(); g != nil {
		m.marks[g.Name] = true
	}
}

func (m *Model) toggleVisual() {
	if m.visual {
		m.commitVisual()
		return
	}
	if m.cursorGuest() == nil {
		return
	}
	m.visual = true
	m.visualAnchor = m.tbl.cursor
}

// clear drops, in order, a visual range, the marks (and with them the
// last action's result marks), the filter.
func (m *Model) clear() {
	switch {
	case m.visual:
		m.visual = false
	case len(m.marks) > 0:
		m.marks = map[string]bool{}
		m.clearResultMarks()
	case m.clearResultMarks():
	case m.tbl.filter != "":
		m.tbl.filter = ""
		m.reindex()
	default:
		m.setStatus("", false)
	}
}

func (m *Model) setTab(t int) {
	m.tab = (t + len(tabNames)) % len(tabNames)
	m.detailScroll = 0
	m.detail = true
}

func (m *Model) filterKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "enter":
		if m.filterErr != "" {
			return nil // the error stays shown, as the CLI refuses the selector
		}
		m.closeLayer(layerFilter)
		m.filterInput.Blur()
		return m.rememberFilter(m.tbl.filter) // nav.go
	case "esc":
		m.closeLayer(layerFilter)
		m.filterInput.Blur()
		m.filterInput.SetValue("")
		m.applyTypedFilter()
		return nil
	case "up":
		return m.recallFilter(-1) // nav.go
	case "down":
		return m.recallFilter(+1)
	}
	return m.updateFilter(k)
}

// updateFilter edits the filter (a key or a paste) and applies it as typed
// when it compiles; the CLI's error for a selector such as state:bogus, or
// a bad re:, shows until it is fixed (nav.go).
func (m *Model) updateFilter(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	m.filterInput, cmd = m.filterInput.Update(msg)
	m.applyTypedFilter()
	return cmd
}

func (m *Model) commandKey(k tea.KeyPressMsg) tea.Cmd {
	if m.secret != nil {
		return m.secretKey(k) // secret.go
	}
	switch k.String() {
	case "esc":
		m.closeLayer(layerCommand)
		m.cmdInput.Blur()
		return nil
	case "enter":
		m.closeLayer(layerCommand)
		m.cmdInput.Blur()
		return m.runCommandLine(m.cmdInput.Value())
	case "tab", "down":
		m.pickCommand(+1) // nav.go: cycles the palette
		return nil
	case "shift+tab", "up":
		m.pickCommand(-1)
		return nil
	}
	var cmd tea.Cmd
	m.cmdInput, cmd = m.cmdInput.Update(k)
	m.commandEdited()
	return cmd
}

// runCommandLine parses ":verb args" and starts the action.
func (m *Model) runCommandLine(line string) tea.Cmd {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	switch fields[0] {
	case "q", "quit":
		return m.requestQuit()
	case "help":
		m.open(layer{kind: layerHelp})
		return nil
	case "events", "log":
		m.open(layer{kind: layerEvents})
		return nil
	case "pulse":
		m.openPulse()
		return nil
	case "hold":
		m.toggleHold()
		return nil
	case "view", "columns":
		m.viewCommand(fields) // views.go
		return nil
	case "group":
		m.groupCommand(fields) // group.go
		return nil
	case "audit":
		return m.openAudit() // auditpane.go
	case "export":
		return m.export(strings.TrimPrefix(strings.TrimSpace(line), fields[0])) // export.go
	case "sort":
		if len(fields) == 2 {
			if c, ok := sortColumnNamed(fields[1]); ok {
				m.sortBy(c)
				return nil
			}
		}
		m.setStatus("sort: name a column: "+strings.Join(sortWords(), ", "), true)
		return nil
	case "exec", "!":
		// The rest of the line, as typed, is the program (exec.go).
		if rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0])); rest != "" && m.opts.Exec != nil && !m.opts.Readonly {
			m.ex.remember(rest)
			return m.prepareExec(rest)
		}
		return m.openExecPrompt("")
	}
	if c, ok := m.commandNamed(fields[0]); ok {
		if len(fields) > 1 {
			m.setStatus(fmt.Sprintf("%s: a command of the fleet file takes no words (it runs %q on the marked guests)", c.Name, c.Run), true)
			return nil
		}
		return m.runUserCommand(c) // usercmd.go
	}
	dry := fields[0] == dryRunVerb
	if dry {
		fields = fields[1:]
	}
	a, err := parseAction(fields)
	if err != nil {
		m.setStatus(err.Error(), true)
		return nil
	}
	if dry {
		return m.dryRun(a)
	}
	if a.NeedsSecret() {
		return m.askSecret(a) // secret.go
	}
	return m.startAction(a)
}

// dryRunVerb before an action on the command line shows what it would send.
const dryRunVerb = "dry-run"

// completions are the command-line suggestions (tab cycles through them):
// every action's words and modes from the action table, a dry run of each
// mutating one ("dry-run freeze"), and the dashboard's own verbs (see
// commandItems, which gives each its help). Read-only mode leaves out what
// it would refuse, and the dry runs of it.
func (m *Model) completions() []string {
	items := m.commandItems()
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.text
	}
	return out
}

func helpItems(readonly bool, level fleet.HelpLevel) []string {
	var items []string
	for _, s := range fleet.Specs() {
		if readonly && s.Mutating {
			continue
		}
		items = append(items, s.HelpUsage(level)...)
	}
	if readonly {
		items = append(items, "nothing that changes a guest (read-only)")
	}
	return items
}

// requestQuit quits, or asks first (on top of everything) when this process
// froze guests.
func (m *Model) requestQuit() tea.Cmd {
	if len(m.src.FrozenByUs()) > 0 {
		if !m.isOpen(layerQuit) {
			m.open(layer{kind: layerQuit, quit: &quitDialog{}})
		}
		return nil
	}
	return m.quit()
}

// quit ends the program, cancelling an action still in flight so that the
// exit does not wait on slow guests.
func (m *Model) quit() tea.Cmd {
	if m.run != nil && m.run.cancel != nil {
		m.run.cancel()
	}
	return tea.Quit
}

// quitKey answers the quit dialog (see quitKeys). While the thaw runs only
// the explicit leave-them-frozen key still acts, for a thaw that hangs.
func (m *Model) quitKey(q *quitDialog, k tea.KeyPressMsg) tea.Cmd {
	thaw, leave, cancel := m.keys.quitKeys()
	switch {
	case key.Matches(k, leave):
		return m.quit()
	case q.thawing:
		return nil
	case key.Matches(k, thaw):
		q.thawing = true
		m.setStatus("thawing guests frozen by guestdeck…", false)
		src := m.src
		rec := m.quitThawRecord()
		return func() tea.Msg {
			// Each thaw retries within the fleet's budget; leave it room.
			ctx, cancel := context.WithTimeout(context.Background(), fleet.DefaultThawBudget+30*time.Second)
			defer cancel()
			// Thaws guestdeck owes are never refused for the audit log: a
			// guest left frozen is worse than a gap in the record.
			_ = rec.intent()
			results := src.ThawOurs(ctx)
			_ = rec.outcome(results, nil)
			return thawedQuitMsg{results: results}
		}
	case key.Matches(k, cancel):
		m.closeLayer(layerQuit)
	}
	return nil
}

// thawedQuit quits once every guest we froze is thawed. A guest that did
// not thaw keeps the dialog open, naming it (the event log says why), for
// the operator to retry, cancel or leave it frozen knowingly.
func (m *Model) thawedQuit(msg thawedQuitMsg) tea.Cmd {
	var failed []string
	for _, r := range msg.results {
		if !r.OK {
			failed = append(failed, r.Guest)
		}
	}
	if len(failed) == 0 {
		return m.quit()
	}
	m.addEvent(event{at: m.now(), action: fleet.Action{Kind: fleet.ActThaw}, results: msg.results})
	l, ok := m.find(layerQuit)
	if !ok {
		l = layer{kind: layerQuit, quit: &quitDialog{}}
		m.open(l)
	}
	l.quit.thawing, l.quit.failed = false, failed
	m.setStatus(fmt.Sprintf("thaw failed on %s: not quitting", present.Plural(len(failed), "guest")), true)
	return nil
}

func (m *Model) openFiles() tea.Cmd {
	g := m.cursorGuest()
	switch {
	case g == nil:
		return nil
	case m.opts.Files == nil:
		m.setStatus("file browser not available", true)
		return nil
	}
	pane, err := m.opts.Files(g.Name)
	if err != nil {
		m.setStatus(fmt.Sprintf("files %s: %v", g.Name, err), true)
		return nil
	}
	m.open(layer{kind: layerFiles, files: pane})
	pane.SetSize(m.width, m.height-1)
	return pane.Init()
}

// handleClick selects a row, a detail tab or a sort column.
func (m *Model) handleClick(ms tea.Mouse) {
	if ms.Button != tea.MouseLeft {
		return
	}
	l := m.layout()
	switch {
	case ms.Y == l.tableTop-1:
		x := prefixWidth
		for _, c := range m.visibleColumns() {
			if ms.X >= x && ms.X < x+c.width+1 {
				if m.tbl.sortCol == c.id {
					m.tbl.sortDesc = !m.tbl.sortDesc
					m.reindex()
				} else {
					m.sortBy(c.id) // metrics busiest first
				}
				return
			}
			x += c.width + 1
		}
	case ms.Y >= l.tableTop && ms.Y < l.tableTop+l.tableRows:
		i := m.tbl.offset + ms.Y - l.tableTop
		if i < m.tbl.lineCount() {
			m.moveTo(i)
		}
	case m.detail && ms.Y == l.detailTop:
		m.clickTab(ms.X)
	}
}

// clickTab picks the tab drawn at column x of the tab bar.
func (m *Model) clickTab(x int) {
	left := 0
	for i, label := range m.tabLabels() {
		w := present.Width(label)
		if x >= left && x < left+w {
			m.setTab(i)
			return
		}
		left += w + 1
	}
}

// handleWheel scrolls the detail pane or moves the table cursor.
func (m *Model) handleWheel(ms tea.Mouse) {
	delta := wheelDelta(ms)
	if delta == 0 {
		return
	}
	if l := m.layout(); m.detail && ms.Y > l.detailTop {
		m.scrollDetail(delta)
		return
	}
	m.moveTo(m.tbl.cursor + delta)
}

// wheelDelta is how many lines a wheel event scrolls (0: not the wheel).
func wheelDelta(ms tea.Mouse) int {
	switch ms.Button {
	case tea.MouseWheelUp:
		return -3
	case tea.MouseWheelDown:
		return 3
	}
	return 0
}
