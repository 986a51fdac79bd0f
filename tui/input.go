package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// tableKey handles keys when no prompt, dialog or overlay has focus.
func (m *Model) tableKey(k tea.KeyPressMsg) tea.Cmd {
	km := &m.keys
	page := m.layout().tableRows
	switch {
	case key.Matches(k, km.Quit):
		return m.requestQuit()
	case key.Matches(k, km.Up):
		m.moveTo(m.tbl.cursor - 1)
	case key.Matches(k, km.Down):
		m.moveTo(m.tbl.cursor + 1)
	case key.Matches(k, km.PageUp):
		m.moveTo(m.tbl.cursor - page)
	case key.Matches(k, km.PageDown):
		m.moveTo(m.tbl.cursor + page)
	case key.Matches(k, km.Top):
		m.moveTo(0)
	case key.Matches(k, km.Bottom):
		m.moveTo(len(m.tbl.rows) - 1)
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
	case key.Matches(k, km.Clear):
		m.clear()
	case key.Matches(k, km.Filter):
		m.open(layer{kind: layerFilter})
		m.filterInput.SetValue(m.tbl.filter)
		m.filterInput.CursorEnd()
		return m.filterInput.Focus()
	case key.Matches(k, km.Command):
		m.open(layer{kind: layerCommand})
		m.cmdInput.SetValue("")
		return m.cmdInput.Focus()
	case key.Matches(k, km.Help):
		m.open(layer{kind: layerHelp})
	case key.Matches(k, km.Sort):
		m.tbl.sortCol = (m.tbl.sortCol + 1) % numCols
		m.reindex()
	case key.Matches(k, km.SortReverse):
		m.tbl.sortDesc = !m.tbl.sortDesc
		m.reindex()
	case key.Matches(k, km.Detail):
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
		m.eventScroll = 0
	case key.Matches(k, km.Files):
		return m.openFiles()
	case key.Matches(k, km.Exec):
		return m.openExecPrompt("")
	case key.Matches(k, km.Refresh):
		return m.startAction(fleet.Action{Kind: fleet.ActInfo})
	case key.Matches(k, km.Ping):
		return m.startAction(fleet.Action{Kind: fleet.ActPing})
	case key.Matches(k, km.Freeze):
		return m.startAction(fleet.Action{Kind: fleet.ActFreeze})
	case key.Matches(k, km.Thaw):
		return m.startAction(fleet.Action{Kind: fleet.ActThaw})
	case key.Matches(k, km.Shutdown):
		return m.startAction(fleet.Action{Kind: fleet.ActShutdown, Mode: "powerdown"})
	case key.Matches(k, km.Suspend):
		return m.startAction(fleet.Action{Kind: fleet.ActSuspend, Mode: "ram"})
	case key.Matches(k, km.SetTime):
		return m.startAction(fleet.Action{Kind: fleet.ActSetTime})
	default:
		if k.Text != "" && k.Text >= "1" && k.Text <= "5" {
			m.setTab(int(k.Text[0] - '1'))
		}
	}
	return nil
}

func (m *Model) toggleMark() {
	g := m.cursorGuest()
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

// clear drops, in order, a visual range, the marks, the filter.
func (m *Model) clear() {
	switch {
	case m.visual:
		m.visual = false
	case len(m.marks) > 0:
		m.marks = map[string]bool{}
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
		m.closeLayer(layerFilter)
		m.filterInput.Blur()
		return nil
	case "esc":
		m.closeLayer(layerFilter)
		m.filterInput.Blur()
		m.tbl.filter = ""
		m.reindex()
		return nil
	}
	return m.updateFilter(k)
}

// updateFilter edits the filter (a key or a paste) and applies it as typed.
func (m *Model) updateFilter(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	m.filterInput, cmd = m.filterInput.Update(msg)
	if v := strings.TrimSpace(m.filterInput.Value()); v != m.tbl.filter {
		m.tbl.filter = v
		m.reindex()
	}
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
	}
	var cmd tea.Cmd
	m.cmdInput, cmd = m.cmdInput.Update(k)
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
	case "exec", "!":
		// The rest of the line, as typed, is the program (exec.go).
		if rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0])); rest != "" && m.opts.Exec != nil && !m.opts.Readonly {
			m.ex.remember(rest)
			return m.prepareExec(rest)
		}
		return m.openExecPrompt("")
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

// completions are the command-line suggestions (tab accepts one).
func (m *Model) completions() []string {
	all := []string{
		"ping", "info", "fstrim", "cat /etc/os-release", "cat /etc/hostname", "read ",
		"freeze", "thaw", "settime",
		"shutdown", "shutdown reboot", "shutdown halt", "shutdown powerdown",
		"suspend ram", "suspend disk", "suspend hybrid",
		"vcpus online ", "vcpus offline ", "write ",
		"events", "help", "quit",
	}
	// Every action can be tried first: "dry-run freeze".
	for _, c := range all {
		if a, err := parseAction(strings.Fields(c)); err == nil || strings.HasSuffix(c, " ") {
			if err == nil && !actionMutating(a) {
				continue
			}
			all = append(all, dryRunVerb+" "+c)
		}
	}
	if !m.opts.Readonly {
		return all
	}
	var out []string
	for _, c := range all {
		if strings.HasPrefix(c, dryRunVerb+" ") {
			continue // a dry run of what read-only mode refuses would only say so
		}
		if a, err := parseAction(strings.Fields(c)); err == nil && actionMutating(a) {
			continue
		}
		switch strings.Fields(c)[0] {
		case "freeze", "thaw", "settime", "shutdown", "suspend", "vcpus", "write", "fstrim":
			continue
		}
		out = append(out, c)
	}
	return out
}

func (m *Model) helpKey(k tea.KeyPressMsg) tea.Cmd {
	if key.Matches(k, m.keys.closeKeys(m.keys.Help)) {
		m.closeLayer(layerHelp)
	}
	return nil
}

func (m *Model) eventsKey(k tea.KeyPressMsg) tea.Cmd {
	page := m.layout().regionHeight
	switch {
	case key.Matches(k, m.keys.closeKeys(m.keys.Events)):
		m.closeLayer(layerEvents)
	case key.Matches(k, m.keys.Up):
		m.scrollEvents(-1)
	case key.Matches(k, m.keys.Down):
		m.scrollEvents(1)
	case key.Matches(k, m.keys.PageDown):
		m.scrollEvents(page)
	case key.Matches(k, m.keys.PageUp):
		m.scrollEvents(-page)
	}
	return nil
}

// scrollEvents moves the event log by delta lines, keeping its last line
// on screen.
func (m *Model) scrollEvents(delta int) {
	last := max(m.eventLinesTotal()-m.layout().regionHeight+1, 0)
	m.eventScroll = min(max(0, m.eventScroll+delta), last)
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
			_ = rec.outcome(results)
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
		for _, c := range visibleColumns(m.width) {
			if ms.X >= x && ms.X < x+c.width+1 {
				if m.tbl.sortCol == c.id {
					m.tbl.sortDesc = !m.tbl.sortDesc
				} else {
					m.tbl.sortCol, m.tbl.sortDesc = c.id, false
				}
				m.reindex()
				return
			}
			x += c.width + 1
		}
	case ms.Y >= l.tableTop && ms.Y < l.tableTop+l.tableRows:
		i := m.tbl.offset + ms.Y - l.tableTop
		if i < len(m.tbl.rows) {
			m.moveTo(i)
		}
	case m.detail && ms.Y == l.detailTop:
		x := 0
		for i, name := range tabNames {
			w := present.Width(tabLabel(i, name))
			if ms.X >= x && ms.X < x+w {
				m.setTab(i)
				return
			}
			x += w + 1
		}
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
