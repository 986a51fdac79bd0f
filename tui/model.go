// Package tui is guestdeck's terminal dashboard: a fleet table with marks,
// filter and sort, a detail pane per guest, a command line for bulk actions
// with confirmation and progress, and an event log. It reads the fleet only
// through the small Source interface, so tests drive it with fake snapshots.
//
// The caller runs it: tea.NewProgram(tui.New(src, opts)).Run(). The model
// declares alt screen and mouse mode itself in View.
package tui

import (
	"context"
	"io"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
)

// The fleet is the production Source.
var _ Source = (*fleet.Fleet)(nil)

// Source is what the dashboard needs from the fleet; *fleet.Fleet satisfies it.
type Source interface {
	Snapshot() *fleet.Snapshot
	// Changed signals (coalesced) that Snapshot has something new.
	Changed() <-chan struct{}
	// Run runs a on the named guests, calling progress once per guest as it
	// finishes (from any goroutine), and returns every guest's result.
	Run(ctx context.Context, a fleet.Action, names []string, progress func(fleet.Result)) []fleet.Result
	// FrozenByUs names the guests this process froze and has not thawed.
	FrozenByUs() []string
	ThawOurs(ctx context.Context) []fleet.Result
	ReadFile(ctx context.Context, guest, path string, w io.Writer, progress func(done, total int64)) (int64, error)
}

// FilesPane is a full-screen widget (the file browser) opened for one guest.
// It is written against plain Bubble Tea types so its package need not import
// tui. The dashboard forwards every key, mouse and unknown message to it until
// Done reports true.
type FilesPane interface {
	Init() tea.Cmd
	Update(msg tea.Msg) tea.Cmd
	View() string
	SetSize(width, height int)
	Done() bool
}

// Options configure New.
type Options struct {
	// Styles to draw with; the zero value means the built-in dark theme.
	Styles themes.Styles
	// Keys rebinds actions by name (config's keys table). Check it first with
	// CheckKeys: New falls back to the defaults and reports the error in the
	// status line.
	Keys map[string][]string
	// Readonly hides and refuses every mutating action.
	Readonly bool
	// Banner, when set, is the fleet file path the "demo fleet" banner points at.
	Banner string
	// Files opens the file browser for a guest; nil disables the files key.
	Files func(guest string) (FilesPane, error)
	// Now is the clock (countdowns, ages); nil means time.Now.
	Now func() time.Time
}

// CheckKeys reports whether overrides name only known actions.
func CheckKeys(overrides map[string][]string) error {
	k := DefaultKeyMap()
	return k.Apply(overrides)
}

// Minimum usable screen; below it the dashboard shows a message instead.
const (
	MinWidth  = 60
	MinHeight = 15
)

// Model is the dashboard. Create it with New.
type Model struct {
	src  Source
	st   themes.Styles
	keys KeyMap
	opts Options

	width, height int

	snap *fleet.Snapshot
	tbl  table
	// Guests this process froze, counted per snapshot (not per frame), and
	// the earliest automatic thaw among them.
	frozenOurs int
	nextThaw   time.Time
	counts     map[fleet.State]int

	marks        map[string]bool
	visual       bool
	visualAnchor int

	filterInput textinput.Model
	filtering   bool
	cmdInput    textinput.Model
	commanding  bool

	detail       bool
	tab          int
	detailScroll int

	showHelp    bool
	showEvents  bool
	eventScroll int
	help        help.Model

	confirm *confirmation
	quitAsk bool
	quiting bool

	status    string
	statusErr bool

	run       *runState
	rowStatus map[string]rowStatus
	runSeq    int
	spin      spinner.Model
	prog      progress.Model
	events    []event
	noticeSeq uint64 // the newest fleet notice already in events

	files FilesPane
}

// New builds the dashboard on src.
func New(src Source, opts Options) Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := opts.Styles
	if st.States == nil {
		p, _ := themes.Builtin("dark")
		st = themes.Compile(p)
	}
	m := Model{
		src: src, st: st, opts: opts, keys: DefaultKeyMap(),
		width: 100, height: 30,
		marks: map[string]bool{}, rowStatus: map[string]rowStatus{},
		detail: true,
	}
	if err := m.keys.Apply(opts.Keys); err != nil {
		m.setStatus(err.Error(), true)
	}
	m.keys.setReadonly(opts.Readonly)

	m.help = help.New()
	m.help.Styles = help.Styles{
		Ellipsis: st.Muted, ShortKey: st.Accent, ShortDesc: st.Muted, ShortSeparator: st.Border,
		FullKey: st.Accent, FullDesc: lipgloss.NewStyle(), FullSeparator: st.Border,
	}
	inputStyles := textinput.Styles{
		Focused: textinput.StyleState{Prompt: st.Accent, Text: lipgloss.NewStyle(), Placeholder: st.Muted, Suggestion: st.Muted},
		Blurred: textinput.StyleState{Prompt: st.Muted, Text: st.Muted, Placeholder: st.Muted, Suggestion: st.Muted},
	}
	m.filterInput = textinput.New()
	m.filterInput.Prompt = "/"
	m.filterInput.Placeholder = "name, glob, tag:X, host:X, state:X"
	m.filterInput.SetStyles(inputStyles)
	m.cmdInput = textinput.New()
	m.cmdInput.Prompt = ":"
	m.cmdInput.SetStyles(inputStyles)
	m.cmdInput.ShowSuggestions = true
	m.cmdInput.SetSuggestions(m.completions())

	m.spin = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(st.Accent))
	popts := []progress.Option{progress.WithWidth(30)}
	if st.NoColor || st.AccentColor == nil {
		popts = append(popts, progress.WithFillCharacters('#', '.'), progress.WithColors(lipgloss.NoColor{}))
	} else {
		popts = append(popts, progress.WithColors(st.AccentColor, st.OKColor))
	}
	m.prog = progress.New(popts...)

	m.snap = src.Snapshot()
	if m.snap == nil {
		m.snap = &fleet.Snapshot{}
	}
	m.tbl.sortCol = colName
	m.reindex()
	m.takeNotices()
	return m
}

func (m *Model) now() time.Time { return m.opts.Now() }

func (m *Model) setStatus(s string, isErr bool) { m.status, m.statusErr = s, isErr }

// Messages.
type (
	changedMsg struct{}
	tickMsg    time.Time
	// actionMsg carries one guest's result of action run id.
	actionMsg struct {
		id   int
		res  fleet.Result
		next tea.Cmd // waits for the action's next message
	}
	// actionDoneMsg carries every result of action run id.
	actionDoneMsg struct {
		id      int
		results []fleet.Result
	}
	thawedQuitMsg struct{ results []fleet.Result }
)

// waitChanged is the one way fleet updates enter the program: a Cmd blocked
// on Source.Changed, re-armed refreshGap after each changedMsg.
func waitChanged(ch <-chan struct{}) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		if _, ok := <-ch; !ok {
			return nil // the fleet closed: no more updates
		}
		return changedMsg{}
	}
}

// refreshGap is the least time between two snapshot pulls. A 10,000-guest
// fleet changes thousands of times a second; pulling and re-sorting on every
// signal would spend a core on frames nobody can read. Changed is coalesced,
// so waiting loses nothing: the next pull sees every change since the last.
const refreshGap = 100 * time.Millisecond

// rearmMsg says the refresh gap has passed: listen to Changed again.
type rearmMsg struct{}

func rearmAfterGap() tea.Cmd {
	return tea.Tick(refreshGap, func(time.Time) tea.Msg { return rearmMsg{} })
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts listening for fleet changes and the once-a-second clock that
// drives countdowns.
func (m Model) Init() tea.Cmd {
	return tea.Batch(waitChanged(m.src.Changed()), tick())
}

// Update hands each message to a small method.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case changedMsg:
		m.refresh()
		return m, rearmAfterGap()
	case rearmMsg:
		return m, waitChanged(m.src.Changed())
	case tickMsg:
		return m, tick()
	case actionMsg:
		m.actionProgress(msg)
		return m, msg.next
	case actionDoneMsg:
		return m, m.actionDone(msg)
	case thawedQuitMsg:
		return m, m.quit()
	case spinner.TickMsg:
		if msg.ID != m.spin.ID() {
			break // another widget's spinner (the file browser's)
		}
		if m.run == nil {
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	}
	if m.files != nil {
		return m, m.updateFiles(msg)
	}
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.MouseClickMsg:
		m.handleClick(msg.Mouse())
	case tea.MouseWheelMsg:
		m.handleWheel(msg.Mouse())
	}
	return m, nil
}

// refresh pulls the newest snapshot.
func (m *Model) refresh() {
	if s := m.src.Snapshot(); s != nil {
		m.snap = s
	}
	m.reindex()
	m.takeNotices()
}

func (m *Model) resize(w, h int) {
	m.width, m.height = w, h
	m.help.SetWidth(w)
	m.filterInput.SetWidth(w - 2)
	// Narrow enough to leave room for the completion hints after it.
	m.cmdInput.SetWidth(min(w/3, 40))
	m.clampScroll()
	if m.files != nil {
		m.files.SetSize(w, h-1)
	}
}

func (m *Model) updateFiles(msg tea.Msg) tea.Cmd {
	cmd := m.files.Update(msg)
	if m.files.Done() {
		m.files = nil
	}
	return cmd
}

// handleKey routes a key to whichever layer has focus.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	if k.String() == "ctrl+c" && !m.quitAsk {
		// Works from any prompt or dialog, and still asks about frozen guests.
		m.confirm, m.filtering, m.commanding, m.showHelp, m.showEvents = nil, false, false, false, false
		return m.requestQuit()
	}
	switch {
	case m.quitAsk:
		return m.quitKey(k)
	case m.confirm != nil:
		return m.confirmKey(k)
	case m.filtering:
		return m.filterKey(k)
	case m.commanding:
		return m.commandKey(k)
	case m.showHelp:
		return m.helpKey(k)
	case m.showEvents:
		return m.eventsKey(k)
	}
	return m.tableKey(k)
}
