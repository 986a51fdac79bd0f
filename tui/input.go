package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
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
		m.filtering = true
		m.filterInput.SetValue(m.tbl.filter)
		m.filterInput.CursorEnd()
		return m.filterInput.Focus()
	case key.Matches(k, km.Command):
		m.commanding = true
		m.cmdInput.SetValue("")
		return m.cmdInput.Focus()
	case key.Matches(k, km.Help):
		m.showHelp = true
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
		m.showEvents = true
		m.eventScroll = 0
	case key.Matches(k, km.Files):
		return m.openFiles()
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
		m.filtering = false
		m.filterInput.Blur()
		return nil
	case "esc":
		m.filtering = false
		m.filterInput.Blur()
		m.tbl.filter = ""
		m.reindex()
		return nil
	}
	var cmd tea.Cmd
	m.filterInput, cmd = m.filterInput.Update(k)
	if v := strings.TrimSpace(m.filterInput.Value()); v != m.tbl.filter {
		m.tbl.filter = v
		m.reindex()
	}
	return cmd
}

func (m *Model) commandKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc":
		m.commanding = false
		m.cmdInput.Blur()
		return nil
	case "enter":
		m.commanding = false
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
		m.showHelp = true
		return nil
	case "events", "log":
		m.showEvents = true
		return nil
	}
	a, err := parseAction(fields)
	if err != nil {
		m.setStatus(err.Error(), true)
		return nil
	}
	return m.startAction(a)
}

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
	if !m.opts.Readonly {
		return all
	}
	var out []string
	for _, c := range all {
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
	switch {
	case key.Matches(k, m.keys.Help), key.Matches(k, m.keys.Back), key.Matches(k, m.keys.Quit):
		m.showHelp = false
	}
	return nil
}

func (m *Model) eventsKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, m.keys.Events), key.Matches(k, m.keys.Back), key.Matches(k, m.keys.Quit):
		m.showEvents = false
	case key.Matches(k, m.keys.Up):
		if m.eventScroll > 0 {
			m.eventScroll--
		}
	case key.Matches(k, m.keys.Down):
		m.eventScroll = min(m.eventScroll+1, max(m.eventLinesTotal()-m.layout().regionHeight+1, 0))
	case key.Matches(k, m.keys.PageDown):
		m.eventScroll = min(m.eventScroll+m.layout().regionHeight, max(m.eventLinesTotal()-m.layout().regionHeight+1, 0))
	case key.Matches(k, m.keys.PageUp):
		m.eventScroll = max(0, m.eventScroll-m.layout().regionHeight)
	}
	return nil
}

// requestQuit quits, or asks first when this process froze guests.
func (m *Model) requestQuit() tea.Cmd {
	if len(m.src.FrozenByUs()) > 0 {
		m.quitAsk = true
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

func (m *Model) quitKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "t", "enter":
		if m.quiting {
			return nil
		}
		m.quiting = true
		m.setStatus("thawing guests frozen by guestdeck…", false)
		src := m.src
		return func() tea.Msg {
			// Each thaw retries within the fleet's budget; leave it room.
			ctx, cancel := context.WithTimeout(context.Background(), fleet.DefaultThawBudget+30*time.Second)
			defer cancel()
			return thawedQuitMsg{results: src.ThawOurs(ctx)}
		}
	case "q", "ctrl+c":
		return m.quit()
	case "esc", "n", "c":
		if !m.quiting {
			m.quitAsk = false
		}
	}
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
	m.files = pane
	pane.SetSize(m.width, m.height-1)
	return pane.Init()
}

// handleClick selects a row, a detail tab or a sort column.
func (m *Model) handleClick(ms tea.Mouse) {
	if ms.Button != tea.MouseLeft || m.tooSmall() || m.overlayOpen() {
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
			w := cellWidth(tabLabel(i, name))
			if ms.X >= x && ms.X < x+w {
				m.setTab(i)
				return
			}
			x += w + 1
		}
	}
}

func (m *Model) handleWheel(ms tea.Mouse) {
	if m.tooSmall() || m.files != nil || m.showHelp || m.confirm != nil || m.quitAsk {
		return
	}
	l := m.layout()
	delta := 0
	switch ms.Button {
	case tea.MouseWheelUp:
		delta = -3
	case tea.MouseWheelDown:
		delta = 3
	default:
		return
	}
	switch {
	case m.showEvents:
		m.eventScroll = min(max(0, m.eventScroll+delta), max(m.eventLinesTotal()-l.regionHeight+1, 0))
	case m.detail && ms.Y > l.detailTop:
		m.scrollDetail(delta)
	default:
		m.moveTo(m.tbl.cursor + delta)
	}
}

func (m *Model) overlayOpen() bool {
	return m.quitAsk || m.confirm != nil || m.showHelp || m.showEvents
}
