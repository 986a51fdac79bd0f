package tui

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/tui/present"
)

// The audit log pane (A, or :audit): the newest entries of the persistent
// audit log (the file `guestdeck audit` prints), newest first, one line
// each; enter shows an entry whole. The log is read from its end, bounded
// (auditTailEntries, auditTailBytes), off the Update loop. Every field is
// read back from a file and most are a guest's words (names, results,
// details): all of it goes through present.Text.

// Bounds on one read of the log: the newest entries only.
const (
	auditTailEntries = 1000
	auditTailBytes   = 8 << 20
	// auditFieldCells caps one field of an entry shown whole.
	auditFieldCells = 4096
)

// auditView is the pane's state.
type auditView struct {
	path    string
	loading bool
	err     error
	recent  audit.Recent
	sel     int  // the selected entry (newest is 0)
	off     int  // the first entry line on screen
	whole   bool // the selected entry is shown whole
	scroll  int  // first line of the whole entry on screen
}

// auditLoadedMsg is a read of the log's end.
type auditLoadedMsg struct {
	view   *auditView
	recent audit.Recent
	err    error
}

func (msg auditLoadedMsg) apply(m *Model) tea.Cmd {
	l, ok := m.find(layerAudit)
	if !ok || l.audit != msg.view {
		return nil // closed (or reopened) meanwhile
	}
	v := msg.view
	v.loading, v.recent, v.err = false, msg.recent, msg.err
	v.sel = min(v.sel, max(len(v.recent.Entries)-1, 0))
	return nil
}

// openAudit opens the pane and starts reading the log.
func (m *Model) openAudit() tea.Cmd {
	if m.opts.Audit == nil {
		m.setStatus("audit log: none is kept by this dashboard", true)
		return nil
	}
	v := &auditView{path: m.opts.Audit.Path()}
	m.open(layer{kind: layerAudit, audit: v})
	return v.load()
}

// load reads the log's end in the background.
func (v *auditView) load() tea.Cmd {
	v.loading = true
	path := v.path
	return func() tea.Msg {
		r, err := audit.Tail(path, auditTailEntries, auditTailBytes)
		return auditLoadedMsg{view: v, recent: r, err: err}
	}
}

func (k KeyMap) auditHelp(v *auditView) []key.Binding {
	quit := bind("quit", "ctrl+c")
	if v != nil && v.whole {
		return []key.Binding{bind("back to the list", "esc", "enter"), k.Up, k.Down, k.PageUp, k.PageDown, quit}
	}
	return []key.Binding{k.closeKeys(k.Audit), bind("show entry", "enter"), k.Up, k.Down, bind("reload", k.Refresh.Keys()...), quit}
}

func (m *Model) auditKey(v *auditView, k tea.KeyPressMsg) tea.Cmd {
	page := max(m.layout().regionHeight-2, 1)
	if v.whole {
		switch {
		case k.String() == "enter", key.Matches(k, m.keys.Back), key.Matches(k, m.keys.Quit):
			v.whole = false
		case key.Matches(k, m.keys.Up):
			v.scroll = max(v.scroll-1, 0)
		case key.Matches(k, m.keys.Down):
			v.scroll++
		case key.Matches(k, m.keys.PageUp):
			v.scroll = max(v.scroll-page, 0)
		case key.Matches(k, m.keys.PageDown):
			v.scroll += page
		}
		return nil
	}
	n := len(v.recent.Entries)
	switch {
	case key.Matches(k, m.keys.closeKeys(m.keys.Audit)):
		m.closeLayer(layerAudit)
	case k.String() == "enter":
		if n > 0 {
			v.whole, v.scroll = true, 0
		}
	case key.Matches(k, m.keys.Refresh):
		return v.load()
	case key.Matches(k, m.keys.Up):
		v.sel = max(v.sel-1, 0)
	case key.Matches(k, m.keys.Down):
		v.sel = max(min(v.sel+1, n-1), 0)
	case key.Matches(k, m.keys.PageUp):
		v.sel = max(v.sel-page, 0)
	case key.Matches(k, m.keys.PageDown):
		v.sel = max(min(v.sel+page, n-1), 0)
	case key.Matches(k, m.keys.Top):
		v.sel = 0
	case key.Matches(k, m.keys.Bottom):
		v.sel = max(n-1, 0)
	}
	return nil
}

// auditWheel scrolls the pane.
func (v *auditView) wheel(delta int) {
	if v.whole {
		v.scroll = max(v.scroll+delta, 0)
		return
	}
	v.sel = max(min(v.sel+delta, len(v.recent.Entries)-1), 0)
}

func (m *Model) renderAudit(v *auditView, w, h int) string {
	title := m.st.Title.Render("Audit log") + " " + m.st.Muted.Render(present.Text(v.path, w/2))
	if v.whole && v.sel < len(v.recent.Entries) {
		return m.renderAuditEntry(v, v.recent.Entries[v.sel], title, w, h)
	}
	lines := []string{title}
	switch {
	case v.loading && len(v.recent.Entries) == 0:
		lines = append(lines, m.st.Muted.Render("reading…"))
	case v.err != nil:
		lines = append(lines, m.st.Error.Render(present.Text("cannot read the audit log: "+v.err.Error(), w)))
	case len(v.recent.Entries) == 0:
		lines = append(lines, m.st.Muted.Render("no entries: nothing that changes a guest has been done yet"))
	default:
		note := fmt.Sprintf("%s, newest first", present.Plural(len(v.recent.Entries), "entry"))
		if v.recent.Older {
			note += "; older ones: guestdeck audit"
		}
		if v.recent.Bad > 0 {
			note += fmt.Sprintf("; %d damaged line(s) skipped", v.recent.Bad)
		}
		lines[0] += m.st.Muted.Render("  " + note)
	}
	rows := h - len(lines)
	if rows > 0 && len(v.recent.Entries) > 0 {
		// Keep the selection on screen.
		if v.sel < v.off {
			v.off = v.sel
		}
		if v.sel >= v.off+rows {
			v.off = v.sel - rows + 1
		}
		for i := v.off; i < len(v.recent.Entries) && i < v.off+rows; i++ {
			line := present.Pad(auditLine(v.recent.Entries[i], w), w, false)
			if i == v.sel {
				line = m.st.Selection.Render(line)
			}
			lines = append(lines, line)
		}
	}
	return place(w, h, strings.Join(lines, "\n"))
}

// auditLine is one entry on one line: when, phase, source, who, action,
// and its guests with their results.
func auditLine(e audit.Entry, w int) string {
	when := e.Time.Local().Format("2006-01-02 15:04:05")
	head := fmt.Sprintf("%s  %-8s %-9s %s  ", when, present.Text(e.Phase, 8), present.Text(e.Source, 9), present.Text(e.Action, 40))
	return present.Text(head+auditGuests(e), w)
}

// auditGuests sums an entry's guests up: "web-1, web-2 and 3 more: 4 ok, 1 failed".
func auditGuests(e audit.Entry) string {
	if len(e.Guests) == 0 {
		return "no guests"
	}
	names := make([]string, min(len(e.Guests), 4))
	for i := range names {
		names[i] = present.Text(e.Guests[i].Name, nameCells)
	}
	counts := map[string]int{}
	var order []string
	for _, g := range e.Guests {
		r := present.Text(g.Shown(), 16)
		if counts[r] == 0 {
			order = append(order, r)
		}
		counts[r]++
	}
	parts := make([]string, len(order))
	for i, r := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[r], r)
	}
	s := guestList(names, len(e.Guests), 3) + ": " + strings.Join(parts, ", ")
	if e.Stopped != nil {
		s += " (stopped)"
	}
	return s
}

// renderAuditEntry shows one entry whole: every field, every guest with
// its result, detail and what it was sent.
func (m *Model) renderAuditEntry(v *auditView, e audit.Entry, title string, w, h int) string {
	// Capped, though generously: one guest's detail may be megabytes.
	txt := func(s string) string { return present.Text(s, auditFieldCells) }
	body := []string{
		kv("Time", e.Time.Local().Format("2006-01-02 15:04:05.000 MST")),
		kv("ID", txt(e.ID)),
		kv("Phase", txt(e.Phase)),
		kv("Who", fmt.Sprintf("%s (uid %d, pid %d)", txt(e.User), e.UID, e.PID)),
		kv("Source", txt(e.Source)),
		kv("Action", txt(e.Action)),
	}
	if len(e.Command) > 0 {
		words := make([]string, len(e.Command))
		for i, c := range e.Command {
			words[i] = present.ShellArg(c)
		}
		body = append(body, kv("Command", txt(strings.Join(words, " "))))
	}
	if len(e.Selector) > 0 {
		body = append(body, kv("Selector", txt(strings.Join(e.Selector, " "))))
	}
	if e.Stopped != nil {
		body = append(body, kv("Stopped", txt(e.Stopped.Words())))
	}
	body = append(body, kv("Guests", fmt.Sprint(len(e.Guests))))
	for _, g := range e.Guests {
		line := "  " + txt(g.Name) + "  " + txt(g.Shown())
		if g.Address != "" {
			line += "  (" + txt(g.Address) + ")"
		}
		body = append(body, line)
		if g.Detail != "" {
			body = append(body, "      "+txt(g.Detail))
		}
		for _, s := range g.Sends {
			body = append(body, "      sends "+txt(string(s)))
		}
	}
	// Long lines wrap rather than cut: the point is to read it all.
	var wrapped []string
	for _, l := range body {
		wrapped = append(wrapped, wrapCells(l, w)...)
	}
	rows := max(h-1, 1)
	v.scroll = min(v.scroll, max(len(wrapped)-rows, 0))
	lines := []string{title + m.st.Muted.Render("  entry "+fmt.Sprint(v.sel+1)+" of "+fmt.Sprint(len(v.recent.Entries)))}
	lines = append(lines, wrapped[v.scroll:min(v.scroll+rows, len(wrapped))]...)
	return place(w, h, strings.Join(lines, "\n"))
}

// wrapCells cuts an escaped line into lines of at most w cells, at a
// space where there is one in the line's last half.
func wrapCells(s string, w int) []string {
	if w <= 0 {
		return []string{s}
	}
	var out []string
	for present.Width(s) > w {
		var cut, lastSpace, cw int
		lastSpace = -1
		for i, r := range s {
			rw := present.Width(string(r))
			if cw+rw > w {
				cut = i
				break
			}
			if r == ' ' {
				lastSpace = i
			}
			cw += rw
		}
		if cut == 0 {
			_, cut = utf8.DecodeRuneInString(s) // one character wider than w
		}
		if lastSpace > cut/2 {
			out = append(out, s[:lastSpace])
			s = s[lastSpace+1:]
			continue
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	if s == "" && len(out) > 0 {
		return out
	}
	return append(out, s)
}
