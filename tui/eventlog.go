package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// The event log has a selected line (↑/↓ move it, the view follows), and
// enter opens the entry under it whole (layerEntry): an action's head, one
// guest's result, or a fleet notice, every text wrapped to the screen. A
// line of the log is cut to one screen line; the entry is where the rest of
// a long error is read.

// entryView is the log entry open whole: the event and which of its
// results (-1: the event's own head).
type entryView struct {
	ev     event
	res    int
	scroll int
	// lines is entryLines at width linesW: a guest's megabyte of read data
	// or error took tens of milliseconds to escape and wrap, on every
	// frame and every key.
	lines  []string
	linesW int
}

// resetEventLog shows the log from its newest line, selected.
func (m *Model) resetEventLog() { m.eventScroll, m.eventSel = 0, 0 }

// eventAt finds the event and result that log line i belongs to (a data
// line belongs to its result): res -1 is the event's head line.
func (m *Model) eventAt(i int) (e event, res int, ok bool) {
	for _, ev := range m.events {
		if i >= ev.lines {
			i -= ev.lines
			continue
		}
		if i == 0 {
			return ev, -1, true
		}
		i--
		for j, r := range ev.results {
			n := 1 + len(dataLines(r))
			if i < n {
				return ev, j, true
			}
			i -= n
		}
		return ev, -1, true
	}
	return event{}, 0, false
}

// eventRows is how many log lines the region shows under the title.
func (m *Model) eventRows() int { return max(m.layout().regionHeight-1, 1) }

// moveEventSel moves the selection by delta lines and scrolls the log so
// that it stays on screen.
func (m *Model) moveEventSel(delta int) {
	total := m.eventLinesTotal()
	m.eventSel = min(max(m.eventSel+delta, 0), max(total-1, 0))
	rows := m.eventRows()
	if m.eventSel < m.eventScroll {
		m.eventScroll = m.eventSel
	}
	if m.eventSel >= m.eventScroll+rows {
		m.eventScroll = m.eventSel - rows + 1
	}
	m.eventScroll = min(max(m.eventScroll, 0), max(total-rows, 0))
}

// scrollEvents scrolls the event log by delta lines (the wheel), keeping
// its last line on screen; the selection stays on a line shown.
func (m *Model) scrollEvents(delta int) {
	rows := m.eventRows()
	last := max(m.eventLinesTotal()-rows, 0)
	m.eventScroll = min(max(0, m.eventScroll+delta), last)
	m.eventSel = min(max(m.eventSel, m.eventScroll), m.eventScroll+rows-1)
}

func (m *Model) eventsKey(k tea.KeyPressMsg) tea.Cmd {
	page := m.eventRows()
	switch {
	case key.Matches(k, m.keys.closeKeys(m.keys.Events)):
		m.closeLayer(layerEvents)
	case key.Matches(k, m.keys.Up):
		m.moveEventSel(-1)
	case key.Matches(k, m.keys.Down):
		m.moveEventSel(1)
	case key.Matches(k, m.keys.PageDown):
		m.moveEventSel(page)
	case key.Matches(k, m.keys.PageUp):
		m.moveEventSel(-page)
	case key.Matches(k, m.keys.Top):
		m.moveEventSel(-m.eventLinesTotal())
	case key.Matches(k, m.keys.Bottom):
		m.moveEventSel(m.eventLinesTotal())
	case key.Matches(k, entryOpenKey):
		if e, res, ok := m.eventAt(m.eventSel); ok {
			m.entry = &entryView{ev: e, res: res}
			m.open(layer{kind: layerEntry})
		}
	}
	return nil
}

// entryOpenKey opens the selected log line whole; entryCloseKeys go back.
var (
	entryOpenKey = bind("open entry", "enter")
)

func (k KeyMap) entryCloseKeys() key.Binding {
	b := k.closeKeys(k.Back)
	keys := append([]string{"enter", "backspace"}, b.Keys()...)
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp("esc/enter", "back to the log"))
}

func (m *Model) entryKey(k tea.KeyPressMsg) tea.Cmd {
	v := m.entry
	if v == nil {
		m.closeLayer(layerEntry)
		return nil
	}
	page := max(m.eventRows()-1, 1)
	switch {
	case key.Matches(k, m.keys.entryCloseKeys()):
		m.closeLayer(layerEntry)
		m.entry = nil
	case key.Matches(k, m.keys.Up):
		m.scrollEntry(-1)
	case key.Matches(k, m.keys.Down):
		m.scrollEntry(1)
	case key.Matches(k, m.keys.PageUp):
		m.scrollEntry(-page)
	case key.Matches(k, m.keys.PageDown):
		m.scrollEntry(page)
	case key.Matches(k, m.keys.Top):
		v.scroll = 0
	case key.Matches(k, m.keys.Bottom):
		m.scrollEntry(len(m.entryLines(v)))
	}
	return nil
}

func (m *Model) scrollEntry(delta int) {
	v := m.entry
	if v == nil {
		return
	}
	n := len(m.entryLines(v))
	v.scroll = min(max(v.scroll+delta, 0), max(n-m.eventRows(), 0))
}

// maxEntryLines bounds one text of an entry (a read's data, an error): a
// guest's reply is bounded by the fleet, but a screen of it is plenty more
// than a line.
const maxEntryLines = 2000

// entryLines is the entry's content: every text escaped and wrapped to the
// screen (present.Wrap), so nothing is cut at the right edge.
func (m *Model) entryLines(v *entryView) []string {
	w := max(m.width, 20)
	if v.lines == nil || v.linesW != w {
		v.lines, v.linesW = m.buildEntryLines(v, w), w
	}
	return v.lines
}

// buildEntryLines lays the entry out at width w.
func (m *Model) buildEntryLines(v *entryView, w int) []string {
	indent := strings.Repeat(" ", present.Width(kv("", "")))
	var lines []string
	field := func(label, text string, style func(...string) string) {
		for i, l := range present.Wrap(text, w-len(indent), maxEntryLines) {
			if style != nil {
				l = style(l)
			}
			if i == 0 {
				lines = append(lines, kv(label, l))
			} else {
				lines = append(lines, indent+l)
			}
		}
	}
	e := v.ev
	if n := e.note; n != nil {
		field("At", n.At.Format("2006-01-02 15:04:05"), nil)
		field("Guest", n.Guest, nil)
		st := (func(...string) string)(nil)
		if n.Err {
			st = m.st.Error.Render
		}
		field("Notice", n.Text, st)
		return lines
	}
	field("Action", actionString(e.action), nil)
	field("At", e.at.Format("2006-01-02 15:04:05"), nil)
	if v.res < 0 || v.res >= len(e.results) {
		field("Outcome", outcomeText(e.results), nil)
		if e.stopped {
			field("", "stopped by the operator: the guests not started were sent nothing", nil)
		}
		if e.dry {
			field("", "dry run: nothing was sent", nil)
		}
		if e.took > 0 {
			field("Took", fmtDur(e.took), nil)
		}
		lines = append(lines, "", m.st.Muted.Render("select a guest's line in the log and press enter for its result"))
		return lines
	}
	r := e.results[v.res]
	field("Guest", r.Guest, nil)
	switch {
	case r.Skipped:
		field("Outcome", "skipped", nil)
		field("Why", r.Err, nil)
	case r.OK:
		field("Outcome", "ok", m.st.OK.Render)
		if r.Result != "" {
			field("Result", r.Result, nil)
		}
	default:
		field("Outcome", "failed", m.st.Error.Render)
		field("Error", r.Err, m.st.Error.Render)
	}
	if !r.ThawAt.IsZero() {
		field("Thaw", "automatic thaw at "+r.ThawAt.Format("15:04:05"), nil)
	}
	if r.Duration > 0 {
		field("Took", fmtDur(r.Duration), nil)
	}
	if len(r.Data) > 0 {
		lines = append(lines, "", m.st.Header.Render(fmt.Sprintf("Data (%s)", present.Size(int64(len(r.Data))))))
		n := 0
		for _, dl := range strings.Split(strings.TrimRight(string(r.Data), "\n"), "\n") {
			for _, l := range present.Wrap(dl, w-2, maxEntryLines) {
				if n++; n > maxEntryLines {
					return append(lines, "  …")
				}
				lines = append(lines, "  "+l)
			}
		}
	}
	return lines
}

// renderEntry draws the open entry, scrolled.
func (m *Model) renderEntry(w, h int) string {
	v := m.entry
	title := m.st.Title.Render("Log entry") + m.st.Muted.Render("  (esc or enter goes back to the log, ↑/↓ scroll)")
	if v == nil {
		return place(w, h, title)
	}
	body := m.entryLines(v)
	rows := max(h-1, 0)
	scroll := min(v.scroll, max(len(body)-rows, 0))
	out := []string{title}
	for i := scroll; i < len(body) && len(out) < h; i++ {
		out = append(out, body[i])
	}
	return place(w, h, strings.Join(out, "\n"))
}

// selectLine draws the log's selected line reversed (its own colours
// dropped: the text is already escaped).
func (m *Model) selectLine(line string, w int) string {
	return m.st.Selection.Render(fit(ansi.Strip(line), w, false))
}

// eventNameCells is how wide an event's guest names are padded, so that
// the results after them line up: the longest name among them, up to a cap
// past which a long name pushes its own line only.
func eventNameCells(rs []fleet.Result) int {
	w := 0
	for _, r := range rs {
		w = max(w, present.Width(present.Text(r.Guest, maxEventName)))
	}
	return w
}

// maxEventName caps the padding of names in the event log.
const maxEventName = 24
