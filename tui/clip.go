package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/tui/present"
)

// Copying to the clipboard: y opens a chooser on the input line, and the
// next key picks what of the guest under the cursor is copied. The text
// goes to the terminal in an OSC 52 sequence (tea.SetClipboard), which the
// terminal (or tmux with set-clipboard on) puts on its clipboard.
//
// A guest chooses its name and error text, so what is copied is what the
// screen shows: every control character, escape sequence and invisible or
// bidi character escaped by present.Text. A paste can then never carry an
// ESC (a bracketed-paste end that makes a shell run the rest) or a newline
// into the operator's shell. The payload is base64 inside the sequence and
// cannot end it early; its size is bounded by clipCells.

// clipCells bounds what one copy takes: present.Text cuts there (reading at
// most 16 bytes a cell), so an OSC 52 payload stays under ~40 KiB base64,
// within what terminals and tmux accept.
const clipCells = 8192

// clipChoice is one thing y can copy.
type clipChoice struct {
	key  string // the key after y (fixed, like a dialog's)
	what string // the help word, and the status line's noun
}

// clipChoices are the chooser's keys. y y copies the name, as in vi.
var clipChoices = []clipChoice{
	{"n", "name"}, {"a", "addresses"}, {"e", "error"}, {"l", "detail line"},
}

// yankHelp is the chooser's help line.
func yankHelp() []key.Binding {
	out := make([]key.Binding, 0, len(clipChoices)+2)
	for _, c := range clipChoices {
		keys := []string{c.key}
		if c.key == "n" {
			keys = append(keys, "y")
		}
		out = append(out, bind(c.what, keys...))
	}
	return append(out, bind("cancel", "esc"), bind("quit", "ctrl+c"))
}

// openYank opens the chooser for the guest under the cursor.
func (m *Model) openYank() {
	if m.cursorGuest() == nil {
		m.setStatus("copy: no guest under the cursor", true)
		return
	}
	m.open(layer{kind: layerYank})
}

// yankKey answers the chooser: a choice copies, anything else cancels.
func (m *Model) yankKey(k tea.KeyPressMsg) tea.Cmd {
	m.closeLayer(layerYank)
	choice := k.String()
	if choice == "y" {
		choice = "n"
	}
	for _, c := range clipChoices {
		if c.key == choice {
			return m.copyChoice(c)
		}
	}
	m.setStatus("copy cancelled", false)
	return nil
}

// copyChoice copies one value of the guest under the cursor and says in
// the status line what was copied (escaped there like every status).
func (m *Model) copyChoice(c clipChoice) tea.Cmd {
	g := m.cursorGuest()
	if g == nil {
		m.setStatus("copy: no guest under the cursor", true)
		return nil
	}
	name := present.Text(g.Name, nameCells)
	var text string
	switch c.key {
	case "n":
		text = g.Name
	case "a":
		as := present.Addrs(g)
		parts := make([]string, len(as))
		for i, a := range as {
			parts[i] = a.String()
		}
		text = strings.Join(parts, " ")
		if text == "" {
			m.setStatus(fmt.Sprintf("copy: %s reports no addresses (loopback and link-local are left out)", name), true)
			return nil
		}
	case "e":
		text = g.Err
		if text == "" {
			m.setStatus(fmt.Sprintf("copy: %s has no error", name), true)
			return nil
		}
	case "l":
		text = m.detailTopLine()
		if text == "" {
			m.setStatus("copy: the detail pane shows no line (enter opens it)", true)
			return nil
		}
	}
	clip := present.Text(text, clipCells)
	cut := ""
	if present.Width(clip) >= clipCells {
		cut = fmt.Sprintf(", cut to %d cells", clipCells)
	}
	m.setStatus(fmt.Sprintf("copied %s's %s (%s%s): %s", name, c.what, present.Plural(len(clip), "byte"), cut, clip), false)
	return tea.SetClipboard(clip)
}

// detailTopLine is the first line the detail pane shows (ctrl+d, ctrl+u
// and the wheel scroll it), as drawn: already escaped, styles stripped.
func (m *Model) detailTopLine() string {
	if !m.detail || m.layout().detailRows == 0 {
		return ""
	}
	lines := m.detailLines(m.cursorGuest())
	scroll := min(m.detailScroll, max(len(lines)-m.layout().detailRows, 0))
	if scroll >= len(lines) {
		return ""
	}
	return strings.TrimSpace(ansi.Strip(lines[scroll]))
}

// yankPrompt is the chooser's input line.
func (m *Model) yankPrompt() string {
	parts := make([]string, len(clipChoices))
	for i, c := range clipChoices {
		parts[i] = c.key + " " + c.what
	}
	g := m.cursorGuest()
	name := ""
	if g != nil {
		name = present.Text(g.Name, nameCells)
	}
	return m.st.Accent.Render("copy "+name+": ") + strings.Join(parts, " · ") + m.st.Muted.Render(" · esc cancels")
}
