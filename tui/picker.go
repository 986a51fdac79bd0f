package tui

import (
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/tui/present"
)

// columnPicker is the :columns overlay: every column, the shown ones first
// in their order, each toggled on or off and moved up or down; enter
// applies the set to the current view for the session.
type columnPicker struct {
	items  []colID
	on     map[colID]bool
	cursor int
	offset int
}

// pickerKeys are the picker's own keys, matched and shown from here.
func pickerKeys() (toggle, moveUp, moveDown, auto, apply, cancel key.Binding) {
	return bind("show/hide", "space", "x"), bind("move up", "shift+up", "K"), bind("move down", "shift+down", "J"),
		bind("by width", "a"), bind("apply", "enter"), bind("cancel", "esc", "q")
}

// openColumnPicker opens the picker on what the table shows now.
func (m *Model) openColumnPicker() {
	p := &columnPicker{on: map[colID]bool{}}
	for _, c := range m.visibleColumns() {
		p.items = append(p.items, c.id)
		p.on[c.id] = true
	}
	for _, id := range autoOrder {
		if !slices.Contains(p.items, id) {
			p.items = append(p.items, id)
		}
	}
	m.picker = p
	m.open(layer{kind: layerColumns})
}

func (m *Model) columnsKey(k tea.KeyPressMsg) tea.Cmd {
	p := m.picker
	toggle, up, down, auto, apply, cancel := pickerKeys()
	switch {
	case key.Matches(k, cancel):
		m.closeLayer(layerColumns)
	case key.Matches(k, apply):
		var cols []colID
		for _, id := range p.items {
			if p.on[id] {
				cols = append(cols, id)
			}
		}
		m.setColumns(cols)
		m.closeLayer(layerColumns)
	case key.Matches(k, auto):
		m.setColumns(nil)
		m.closeLayer(layerColumns)
	case key.Matches(k, toggle):
		if id := p.items[p.cursor]; id != colName { // NAME always shows
			p.on[id] = !p.on[id]
		}
	case key.Matches(k, up):
		if p.cursor > 0 && p.items[p.cursor-1] != colName {
			p.items[p.cursor-1], p.items[p.cursor] = p.items[p.cursor], p.items[p.cursor-1]
			p.cursor--
		}
	case key.Matches(k, down):
		if p.cursor > 0 && p.cursor < len(p.items)-1 {
			p.items[p.cursor+1], p.items[p.cursor] = p.items[p.cursor], p.items[p.cursor+1]
			p.cursor++
		}
	case key.Matches(k, m.keys.Up):
		p.cursor = max(p.cursor-1, 0)
	case key.Matches(k, m.keys.Down):
		p.cursor = min(p.cursor+1, len(p.items)-1)
	}
	return nil
}

// setColumns gives the current view cols (nil: by width) for the session.
func (m *Model) setColumns(cols []colID) {
	m.views.cols[m.views.current] = cols
	m.tbl.cols = cols
	if cols == nil {
		m.setStatus("columns: chosen by width", false)
		return
	}
	m.columnsStatus(m.views.current, cols)
}

// renderColumnPicker draws the picker in w x h, the cursor's line kept on
// screen.
func (m *Model) renderColumnPicker(w, h int) string {
	p := m.picker
	toggle, up, down, auto, apply, cancel := pickerKeys()
	title := "Columns of view " + present.Text(m.views.current, nameCells)
	var ks []string
	for _, b := range []key.Binding{toggle, up, down, auto, apply, cancel} {
		ks = append(ks, b.Help().Key+" "+b.Help().Desc)
	}
	head := hangWrap(m.st.Title.Render(title), present.Width(title), strings.Join(ks, " · "), w)
	rows := max(h-len(head), 1)
	if p.cursor < p.offset {
		p.offset = p.cursor
	}
	if p.cursor >= p.offset+rows {
		p.offset = p.cursor - rows + 1
	}
	lines := head
	for i := p.offset; i < len(p.items) && i < p.offset+rows; i++ {
		id := p.items[i]
		box := "[ ]"
		switch {
		case id == colName:
			box = "[•]" // always shown
		case p.on[id]:
			box = "[x]"
		}
		cur := "  "
		if i == p.cursor {
			cur = "▸ "
		}
		line := fmt.Sprintf("%s%s %-10s %s", cur, box, columns[id].title, columnAbout[id])
		if i == p.cursor {
			line = m.st.Selection.Render(fit(line, w, false))
		}
		lines = append(lines, line)
	}
	return place(w, h, strings.Join(lines, "\n"))
}

// columnAbout says what each column shows, in the picker.
var columnAbout = [numCols]string{
	colName:    "the guest's name (always shown)",
	colHost:    "the libvirt host or socket source",
	colState:   "ready, frozen, silent, unreachable, ...",
	colAgent:   "qemu-ga version",
	colOS:      "the guest's OS name",
	colAddr:    "the first addresses (not loopback)",
	colVCPU:    "vCPUs online/total",
	colCPUBusy: "CPU busy %",
	colIOWait:  "CPU iowait %",
	colSteal:   "CPU steal %",
	colLoad:    "load average, 1 min",
	colDiskR:   "disk read bytes/s",
	colDiskW:   "disk write bytes/s",
	colNetRx:   "network receive bytes/s",
	colNetTx:   "network transmit bytes/s",
	colFSFull:  "the fullest filesystem, %",
	colSkew:    "guest clock minus host clock",
	colFreeze:  "filesystem freeze, thaw countdown",
	colRTT:     "guest-sync round trip",
	colErr:     "the last error",
}
