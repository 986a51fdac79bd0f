package tui

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/themes"
	"github.com/guestdeck/guestdeck/tui/present"
)

// ExecFunc runs a program on the named guests, calling progress (from any
// goroutine) as each starts and finishes: (*fleet.Fleet).ExecUntil. When
// stop ends no program is started on a further guest (each reports
// NotStarted) and the ones started are waited for; ctx ending gives up
// the wait too.
type ExecFunc func(ctx, stop context.Context, spec fleet.ExecSpec, names []string, progress func(fleet.ExecResult)) []fleet.ExecResult

// execHistoryMax bounds the command lines the exec prompt remembers.
const execHistoryMax = 100

// execUI is the dashboard's exec state: the prompt and its history (for
// the session), and the results pane of the last run. It lives behind a
// pointer so that every copy of the Model shares it.
type execUI struct {
	input   textinput.Model
	history []string
	histPos int // len(history): a new line

	pane *execPane
	seq  int
}

// execPane is one run of a program on guests, from its confirmation to
// its results.
type execPane struct {
	id      int
	line    string // as typed
	spec    fleet.ExecSpec
	guests  []*fleet.Guest
	results []fleet.ExecResult // by guests' order; State waiting until it starts
	index   map[string]int

	confirming bool
	via        *userVia // the user command that started it (usercmd.go)
	running    bool
	cancelled  bool
	cancel     context.CancelFunc
	// stop ends the starting of programs (the stop key) with a
	// stopCause; the ones started are still waited for.
	stop       context.CancelCauseFunc
	stopping   bool
	notStarted int
	started    time.Time
	took       time.Duration
	done       int
	auditErr   error

	cursor int // the guest whose output is shown
	scroll int // first output line shown

	searching bool
	search    textinput.Model
	query     string

	// lines caches the selected guest's output, escaped, by guest index.
	lines    []string
	linesFor int
	linesGen int // results changes seen by lines
	gen      int
}

func newExecUI(st themes.Styles) *execUI {
	in := textinput.New()
	in.Prompt = "! "
	in.Placeholder = "PROGRAM ARGS... (quote words with ' or \"; sh -c '...' for a shell)"
	in.SetStyles(execInputStyles(st))
	return &execUI{input: in}
}

func execInputStyles(st themes.Styles) textinput.Styles {
	return textinput.Styles{
		Focused: textinput.StyleState{Prompt: st.Accent, Text: lipgloss.NewStyle(), Placeholder: st.Muted, Suggestion: st.Muted},
		Blurred: textinput.StyleState{Prompt: st.Muted, Text: st.Muted, Placeholder: st.Muted, Suggestion: st.Muted},
	}
}

// Messages of an exec run.
type (
	execProgressMsg struct {
		id   int
		res  fleet.ExecResult
		next tea.Cmd
	}
	execDoneMsg struct {
		id       int
		results  []fleet.ExecResult
		refused  error
		auditErr error
	}
)

// openExecPrompt opens the exec prompt on the input line, with line typed.
func (m *Model) openExecPrompt(line string) tea.Cmd {
	switch {
	case m.opts.Readonly:
		m.setStatus("read-only: exec refused", true)
		return nil
	case m.opts.Exec == nil:
		m.setStatus("exec is not available here", true)
		return nil
	case m.ex.pane != nil && m.ex.pane.running:
		m.open(layer{kind: layerExec, exec: m.ex})
		m.setStatus("a program is still running: esc stops waiting for it", true)
		return nil
	}
	m.open(layer{kind: layerExecCmd})
	m.ex.histPos = len(m.ex.history)
	m.ex.input.SetValue(line)
	m.ex.input.CursorEnd()
	m.ex.input.SetWidth(max(m.width-4, 10))
	return m.ex.input.Focus()
}

// execPromptKey edits the command line; up and down walk the history.
func (m *Model) execPromptKey(k tea.KeyPressMsg) tea.Cmd {
	x := m.ex
	switch k.String() {
	case "esc":
		m.closeLayer(layerExecCmd)
		x.input.Blur()
		return nil
	case "enter":
		line := strings.TrimSpace(x.input.Value())
		m.closeLayer(layerExecCmd)
		x.input.Blur()
		if line == "" {
			return nil
		}
		x.remember(line)
		return m.prepareExec(line)
	case "up":
		if x.histPos > 0 {
			x.histPos--
			x.input.SetValue(x.history[x.histPos])
			x.input.CursorEnd()
		}
		return nil
	case "down":
		if x.histPos < len(x.history) {
			x.histPos++
			v := ""
			if x.histPos < len(x.history) {
				v = x.history[x.histPos]
			}
			x.input.SetValue(v)
			x.input.CursorEnd()
		}
		return nil
	}
	var cmd tea.Cmd
	x.input, cmd = x.input.Update(k)
	return cmd
}

// remember adds line to the history (once: a repeat moves to the end).
func (x *execUI) remember(line string) {
	out := x.history[:0:0]
	for _, h := range x.history {
		if h != line {
			out = append(out, h)
		}
	}
	out = append(out, line)
	if len(out) > execHistoryMax {
		out = out[len(out)-execHistoryMax:]
	}
	x.history = out
}

// prepareExec parses line and opens the results pane for the marked guests
// (or the one under the cursor): asking first when there is more than one.
func (m *Model) prepareExec(line string) tea.Cmd { return m.prepareExecVia(line, nil, false) }

// prepareExecVia is prepareExec for a user command (via, nil when typed);
// confirm asks first even for one guest.
func (m *Model) prepareExecVia(line string, via *userVia, confirm bool) tea.Cmd {
	argv, err := splitCommandLine(line)
	if err != nil {
		m.setStatus("exec: "+err.Error(), true)
		return nil
	}
	m.commitVisual()
	targets := m.targets()
	if len(targets) == 0 {
		m.setStatus("no guest selected", true)
		return nil
	}
	m.ex.seq++
	p := &execPane{id: m.ex.seq, line: line, spec: fleet.ExecSpec{Path: argv[0], Args: argv[1:]},
		guests: targets, results: make([]fleet.ExecResult, len(targets)), index: map[string]int{}, linesFor: -1, via: via}
	for i, g := range targets {
		p.results[i] = fleet.ExecResult{Guest: g.Name, State: fleet.ExecWaiting}
		p.index[g.Name] = i
	}
	p.search = textinput.New()
	p.search.Prompt = "/"
	p.search.SetStyles(execInputStyles(*m.st))
	m.ex.pane = p
	m.open(layer{kind: layerExec, exec: m.ex})
	if len(targets) > 1 || confirm {
		p.confirming = true
		return nil
	}
	return m.launchExec(p)
}

// launchExec runs the pane's program in the background; its progress comes
// back through a channel read by a re-armed Cmd.
func (m *Model) launchExec(p *execPane) tea.Cmd {
	p.confirming, p.running, p.started = false, true, m.now()
	ctx, cancel := context.WithCancel(context.Background())
	stop, stopWith := context.WithCancelCause(ctx)
	p.cancel, p.stop = cancel, stopWith
	names := make([]string, len(p.guests))
	for i, g := range p.guests {
		names[i] = g.Name
	}
	m.setStatus(fmt.Sprintf("exec %s on %s…", present.Text(p.spec.String(), 80), present.Plural(len(names), "guest")), false)
	// Two progress calls per guest (started, finished) and the end.
	ch := make(chan tea.Msg, 2*len(names)+1)
	run, rec, id, spec := m.opts.Exec, m.execRecord(p), p.id, p.spec
	go func() {
		defer cancel()
		if err := rec.intent(); err != nil {
			ch <- execDoneMsg{id: id, refused: err}
			return
		}
		results := run(ctx, stop, spec, names, func(r fleet.ExecResult) {
			select {
			case ch <- execProgressMsg{id: id, res: r}:
			default:
			}
		})
		notStarted := 0
		for _, r := range results {
			if r.NotStarted {
				notStarted++
			}
		}
		ch <- execDoneMsg{id: id, results: results, auditErr: rec.execOutcome(results, operatorStop(stop, notStarted))}
	}()
	return tea.Batch(waitExec(ch), m.spin.Tick)
}

func waitExec(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg := <-ch
		if pm, ok := msg.(execProgressMsg); ok {
			pm.next = waitExec(ch)
			return pm
		}
		return msg
	}
}

// execRecord prepares the run's audit record: the program, its arguments
// and stdin's size, never output.
func (m *Model) execRecord(p *execPane) record {
	al := m.opts.Audit
	if al == nil {
		return record{}
	}
	addr := make(map[string]string, len(p.guests))
	for _, g := range p.guests {
		addr[g.Name] = g.Address
	}
	command := []string{"!" + p.line}
	if p.via != nil {
		command = p.via.auditCommand()
	}
	return record{log: al, addr: addr, entry: audit.Entry{ID: al.NewID(), Phase: audit.Intent, Source: audit.SourceDashboard,
		Command: command, Action: "exec " + p.spec.String(), Guests: fleet.ExecAuditPlan(p.spec, p.guests, audit.Intent)}}
}

// execOutcome writes every guest's exit code under the intent's ID, and
// how the operator stopped the run (nil: it was not).
func (r record) execOutcome(results []fleet.ExecResult, stopped *audit.Stop) error {
	if r.log == nil {
		return nil
	}
	e := r.entry
	e.Phase, e.Stopped = audit.Outcome, stopped
	e.Guests = fleet.ExecAuditResults(results, func(n string) string { return r.addr[n] })
	if err := r.log.Append(e); err != nil {
		return fleet.AuditError(r.log.Path(), err)
	}
	return nil
}

func (m *Model) execProgress(msg execProgressMsg) {
	p := m.ex.pane
	if p == nil || p.id != msg.id {
		return
	}
	i, ok := p.index[msg.res.Guest]
	if !ok {
		return
	}
	if msg.res.State != fleet.ExecRunning && p.results[i].State != fleet.ExecRunning && p.results[i].State != fleet.ExecWaiting {
		return // already final
	}
	if msg.res.State != fleet.ExecRunning {
		p.done++
	}
	if msg.res.NotStarted {
		p.notStarted++
	}
	p.results[i] = msg.res
	p.gen++
}

func (m *Model) execDone(msg execDoneMsg) {
	p := m.ex.pane
	if p == nil || p.id != msg.id {
		return
	}
	p.running, p.took, p.auditErr = false, m.now().Sub(p.started), msg.auditErr
	if msg.refused != nil {
		for i := range p.results {
			p.results[i] = fleet.ExecResult{Guest: p.results[i].Guest, State: fleet.ExecFailed, Err: "refused: " + msg.refused.Error()}
		}
		p.done = len(p.results)
		p.gen++
		m.setStatus(fmt.Sprintf("exec refused: %v; nothing was sent", msg.refused), true)
		return
	}
	for _, r := range msg.results {
		if i, ok := p.index[r.Guest]; ok {
			p.results[i] = r
		}
	}
	p.done = len(p.results)
	p.gen++
	ok, failed, skipped := execTally(p.results)
	switch {
	case msg.auditErr != nil && p.notStarted > 0:
		m.setStatus(fmt.Sprintf("exec: %d exit 0, %d failed, %d skipped, %d not started; the outcome is not in the audit log: %v",
			ok, failed, skipped, p.notStarted, msg.auditErr), true)
	case msg.auditErr != nil:
		m.setStatus(fmt.Sprintf("exec: %d exit 0, %d failed, %d skipped; the outcome is not in the audit log: %v", ok, failed, skipped, msg.auditErr), true)
	case p.cancelled:
		m.setStatus("exec: stopped waiting; programs still running in the guests were not killed", true)
	case p.stopping:
		m.setStatus(fmt.Sprintf("exec stopped: %d exit 0, %d failed, %d skipped, %d not started (nothing was sent to them)",
			ok, failed, skipped, p.notStarted), failed > 0)
	default:
		m.setStatus(fmt.Sprintf("exec: %d exit 0, %d failed, %d skipped", ok, failed, skipped), failed > 0)
	}
}

// execTally counts the programs that ran; one not started is none of
// them.
func execTally(rs []fleet.ExecResult) (ok, failed, skipped int) {
	for _, r := range rs {
		switch {
		case r.NotStarted:
		case r.State == fleet.ExecSkipped:
			skipped++
		case r.OK():
			ok++
		default:
			failed++
		}
	}
	return
}

// execKeys are the pane's keys, fixed like the dialogs': the help line and
// execPaneKey read them.
type execKeys struct {
	yes, no, stop, close, search, next, prev, up, down, pageUp, pageDown key.Binding
}

func paneKeys() execKeys {
	return execKeys{
		yes:      bind("run it", "y", "enter"),
		no:       bind("cancel", "n", "esc", "q"),
		stop:     bind("stop waiting", "esc", "ctrl+c"),
		close:    bind("close", "esc", "q"),
		search:   bind("search output", "/"),
		next:     bind("next match", "n"),
		prev:     bind("prev match", "N"),
		up:       bind("prev guest", "up", "k"),
		down:     bind("next guest", "down", "j"),
		pageUp:   bind("scroll up", "pgup", "ctrl+u"),
		pageDown: bind("scroll down", "pgdown", "ctrl+d", "space"),
	}
}

// execHelp is the pane's help line for its state.
func execHelp(x *execUI, stop key.Binding) []key.Binding {
	k := paneKeys()
	p := x.pane
	switch {
	case p == nil:
		return nil
	case p.confirming:
		return []key.Binding{k.yes, k.no}
	case p.searching:
		return []key.Binding{bind("find", "enter"), bind("cancel", "esc")}
	case p.running && !p.stopping:
		stop.SetHelp(stop.Help().Key, "start no more")
		return []key.Binding{stop, k.stop, k.up, k.down, k.pageDown, k.search}
	case p.running:
		return []key.Binding{k.stop, k.up, k.down, k.pageDown, k.search}
	}
	return []key.Binding{k.close, k.up, k.down, k.pageDown, k.search, k.next, k.prev}
}

// execPaneKey answers the pane: the confirmation, the search prompt, or the
// results.
func (m *Model) execPaneKey(k tea.KeyPressMsg) tea.Cmd {
	p := m.ex.pane
	if p == nil {
		m.closeLayer(layerExec)
		return nil
	}
	keys := paneKeys()
	switch {
	case p.confirming:
		switch {
		case key.Matches(k, keys.yes):
			return m.launchExec(p)
		case key.Matches(k, keys.no), k.String() == "ctrl+c":
			m.ex.pane = nil
			m.closeLayer(layerExec)
			m.setStatus("exec cancelled", false)
		}
		return nil
	case p.searching:
		switch k.String() {
		case "esc":
			p.searching = false
			p.search.Blur()
		case "enter":
			p.searching = false
			p.search.Blur()
			p.query = p.search.Value()
			m.findNext(+1, true)
		default:
			var cmd tea.Cmd
			p.search, cmd = p.search.Update(k)
			return cmd
		}
		return nil
	case p.running && key.Matches(k, m.keys.Stop):
		m.stopExec(p)
		return nil
	case p.running && key.Matches(k, keys.stop):
		p.cancelled = true
		p.cancel()
		m.setStatus("stopping: no longer waiting; the programs may still run in the guests (nothing is killed)", true)
		return nil
	case k.String() == "ctrl+c":
		m.closeAllButFiles()
		return m.requestQuit()
	case !p.running && key.Matches(k, keys.close):
		m.closeLayer(layerExec)
		return nil
	case key.Matches(k, keys.up):
		m.selectExecGuest(p.cursor - 1)
	case key.Matches(k, keys.down):
		m.selectExecGuest(p.cursor + 1)
	case key.Matches(k, keys.pageDown):
		m.scrollExec(max(m.execOutputRows()-1, 1))
	case key.Matches(k, keys.pageUp):
		m.scrollExec(-max(m.execOutputRows()-1, 1))
	case key.Matches(k, keys.search):
		p.searching = true
		p.search.SetValue(p.query)
		p.search.CursorEnd()
		return p.search.Focus()
	case key.Matches(k, keys.next):
		m.findNext(+1, false)
	case key.Matches(k, keys.prev):
		m.findNext(-1, false)
	}
	return nil
}

func (m *Model) selectExecGuest(i int) {
	p := m.ex.pane
	i = min(max(i, 0), len(p.results)-1)
	if i != p.cursor {
		p.cursor, p.scroll = i, 0
	}
}

func (m *Model) scrollExec(delta int) {
	p := m.ex.pane
	last := max(len(m.execLines())-m.execOutputRows(), 0)
	p.scroll = min(max(p.scroll+delta, 0), last)
}

// findNext moves the output to the next line (dir +1) or previous one (-1)
// holding the query, case-insensitively; fresh starts at the top.
func (m *Model) findNext(dir int, fresh bool) {
	p := m.ex.pane
	if p.query == "" {
		return
	}
	lines := m.execLines()
	q := strings.ToLower(p.query)
	start := p.scroll + dir
	if fresh {
		start = 0
	}
	for i := start; i >= 0 && i < len(lines); i += dir {
		if strings.Contains(strings.ToLower(lines[i]), q) {
			p.scroll = i
			return
		}
	}
	m.setStatus(fmt.Sprintf("%q: no more matches in %s's output", p.query, present.Text(p.results[p.cursor].Guest, nameCells)), true)
}

// execLines is the selected guest's output as shown: stdout, then stderr
// under a rule, every line escaped (present.Block). Cached until the
// guest's result changes.
func (m *Model) execLines() []string {
	p := m.ex.pane
	if p.linesFor == p.cursor && p.linesGen == p.gen {
		return p.lines
	}
	r := p.results[p.cursor]
	var lines []string
	add := func(b []byte) {
		s := strings.TrimSuffix(present.Block(string(b), 8), "\n")
		lines = append(lines, strings.Split(s, "\n")...)
	}
	if len(r.Stdout) > 0 {
		add(r.Stdout)
	}
	if len(r.Stderr) > 0 {
		lines = append(lines, "── stderr ──")
		add(r.Stderr)
	}
	if r.Truncated {
		lines = append(lines, "── output truncated ──")
	}
	p.lines, p.linesFor, p.linesGen = lines, p.cursor, p.gen
	return lines
}

// displayPrefix is the start of the escaped line s that fills w cells: a
// line of a guest's output may be megabytes (1 MiB of NULs is one 4 MiB
// line), and measuring all of it for every frame took 0.2 s a line. A
// cell takes at most 4 bytes but for zero-width runes, and escaped text
// holds no styles, so a cut where a rune starts shows the same; the
// ellipsis says there is more where the cut comes before the edge.
func displayPrefix(s string, w int) string {
	n := 4*max(w, 0) + 16
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + present.Ellipsis
}

// execListRows is how many guest rows the pane shows above the output.
func (m *Model) execListRows() int {
	h := m.layout().regionHeight
	return min(len(m.ex.pane.results), max((h-3)/3, 1))
}

// execOutputRows is how many output lines fit under the list.
func (m *Model) execOutputRows() int {
	return max(m.layout().regionHeight-2-m.execListRows(), 1)
}

// renderExec draws the pane in w x h: a title with progress, the guests
// with their state and exit codes, and the selected guest's output.
func (m *Model) renderExec(w, h int) string {
	p := m.ex.pane
	if p == nil {
		return place(w, h, "")
	}
	title := fmt.Sprintf("exec %s · %s", present.Text(p.spec.String(), w), present.Plural(len(p.results), "guest"))
	switch {
	case p.confirming:
	case p.running && p.cancelled:
		title += fmt.Sprintf(" · %d/%d · stopping…", p.done, len(p.results))
	case p.running && p.stopping:
		title += fmt.Sprintf(" · %s %d/%d · stopped starting: %d not started, waiting for %d (esc stops waiting)",
			m.spin.View(), p.done, len(p.results), p.notStarted, len(p.results)-p.done)
	case p.running:
		title += fmt.Sprintf(" · %s %d/%d done (esc stops waiting)", m.spin.View(), p.done, len(p.results))
	default:
		ok, failed, skipped := execTally(p.results)
		if p.cancelled {
			title += " · stopped waiting, programs may still run"
		} else {
			title += " · finished in " + p.took.Round(time.Millisecond).String()
		}
		title += fmt.Sprintf(": %d exit 0, %d failed, %d skipped", ok, failed, skipped)
	}
	lines := []string{m.st.Title.Render(fit(title, w, false))}
	rows := m.execListRows()
	first := min(max(p.cursor-rows+1, 0), max(len(p.results)-rows, 0))
	for i := first; i < first+rows && i < len(p.results); i++ {
		lines = append(lines, m.execRow(p.results[i], i == p.cursor, w))
	}
	r := p.results[p.cursor]
	rule := fmt.Sprintf("── %s: %s ", present.Text(r.Guest, nameCells), present.Text(r.Summary(), w))
	if p.query != "" {
		rule += fmt.Sprintf("· /%s ", present.Text(p.query, 40))
	}
	lines = append(lines, m.st.Border.Render(fit(rule+strings.Repeat("─", max(w-present.Width(rule), 0)), w, false)))
	out := m.execLines()
	n := m.execOutputRows()
	for i := p.scroll; i < p.scroll+n && i < len(out); i++ {
		lines = append(lines, fit(displayPrefix(out[i], w), w, false))
	}
	body := place(w, h, strings.Join(lines, "\n"))
	if !p.confirming {
		return body
	}
	names := make([]string, min(len(p.guests), 6))
	for i := range names {
		names[i] = present.Text(p.guests[i].Name, nameCells)
	}
	k := paneKeys()
	dialog := m.dialogBox([]string{
		m.st.Warn.Bold(true).Render(viaPrefix(p.via) + fmt.Sprintf("Run %s on %s?", present.Text(p.spec.String(), w/2), present.Plural(len(p.guests), "guest"))),
		guestList(names, len(p.guests), 5),
		"",
		k.yes.Help().Key + " runs it · " + k.no.Help().Key + " cancels",
	})
	dh := lipgloss.Height(dialog)
	top := strings.Split(body, "\n")[:max(h-dh, 0)]
	return place(w, h, strings.Join(top, "\n")+"\n"+lipgloss.PlaceHorizontal(w, lipgloss.Center, dialog))
}

// execRow is one guest in the pane's list.
func (m *Model) execRow(r fleet.ExecResult, selected bool, w int) string {
	mark := "  "
	if selected {
		mark = "▸ "
	}
	var st lipgloss.Style
	state := string(r.State)
	switch {
	case r.State == fleet.ExecRunning || r.State == fleet.ExecWaiting:
		st = m.st.Accent
	case r.State == fleet.ExecSkipped:
		st = m.st.Disabled
	case r.OK():
		st = m.st.OK
	default:
		st = m.st.Error
	}
	detail := r.Summary()
	if r.State == fleet.ExecExited {
		detail = fmt.Sprintf("%s  %s", detail, roundDuration(r.Duration))
		if n := len(r.Stdout) + len(r.Stderr); n > 0 {
			detail += "  " + present.Size(int64(n))
		}
		if r.Truncated {
			detail += " (truncated)"
		}
	}
	line := mark + present.Pad(present.Text(r.Guest, nameCells), 24, false) + " " + present.Pad(state, 13, false) + " " + present.Text(detail, w)
	line = fit(line, w, false)
	if selected {
		return m.st.Selection.Render(st.Render(line))
	}
	return st.Render(line)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// splitCommandLine splits a typed command line into words: blanks separate
// them, '...' quotes literally, "..." quotes with \" and \\, and a
// backslash outside quotes escapes the next character. No shell runs: the
// first word is the program (sh -c '...' for a shell).
func splitCommandLine(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf(`unterminated " quote`)
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("no program")
	}
	return words, nil
}

// stopExec stops a running exec (the stop key in its pane): no program is
// started on a further guest, and the ones started are waited for, as
// stopAction does for an action. esc, which stops waiting, stays the way
// to give up on them.
func (m *Model) stopExec(p *execPane) {
	if p.stopping {
		m.setStatus("already stopping: no more programs are started; esc stops waiting for those running", false)
		return
	}
	p.stopping = true
	p.stop(stopCause{at: m.now()})
	m.setStatus("exec: no more programs are started; waiting for those running (esc stops waiting)", false)
}
