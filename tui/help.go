package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/tui/present"
)

// hangWrap wraps text at w cells after a title of titleW cells, the lines
// after the first indented to line up under the first: "Filter  / then…".
// It breaks at spaces; a word longer than a line is cut by place.
func hangWrap(title string, titleW int, text string, w int) []string {
	indent := titleW + 2
	if indent > w/3 {
		indent = 2 // a narrow screen: a hanging indent would leave no room
	}
	var lines []string
	line, lineW := title+"  ", titleW+2
	fresh := true // nothing but the title or indent on the line yet
	for _, word := range strings.Fields(text) {
		ww := present.Width(word)
		if !fresh && lineW+1+ww > w {
			lines = append(lines, line)
			line, lineW, fresh = strings.Repeat(" ", indent), indent, true
		}
		if !fresh {
			line += " "
			lineW++
		}
		line += word
		lineW += ww
		fresh = false
	}
	return append(lines, line)
}

// helpKey closes the help screen or scrolls it.
func (m *Model) helpKey(k tea.KeyPressMsg) tea.Cmd {
	page := max(m.layout().regionHeight-1, 1)
	switch {
	case key.Matches(k, m.keys.closeKeys(m.keys.Help)):
		m.closeLayer(layerHelp)
		m.helpScroll = 0
	case key.Matches(k, m.keys.Up):
		m.scrollHelp(-1)
	case key.Matches(k, m.keys.Down):
		m.scrollHelp(1)
	case key.Matches(k, m.keys.PageUp):
		m.scrollHelp(-page)
	case key.Matches(k, m.keys.PageDown):
		m.scrollHelp(page)
	case key.Matches(k, m.keys.Top):
		m.helpScroll = 0
	case key.Matches(k, m.keys.Bottom):
		m.scrollHelp(len(m.helpLines(m.width)))
	}
	return nil
}

// scrollHelp moves the help screen by delta lines. The last line stays at
// the bottom: scrolling past it would leave keys that seem to do nothing on
// the way back.
func (m *Model) scrollHelp(delta int) {
	last := max(len(m.helpLines(m.width))-m.layout().regionHeight, 0)
	m.helpScroll = min(max(m.helpScroll+delta, 0), last)
}
