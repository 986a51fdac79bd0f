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
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
	"github.com/guestdeck/guestdeck/tui/history"
	"github.com/guestdeck/guestdeck/tui/present"
)

// The fleet is the production Source.
var _ Source = (*fleet.Fleet)(nil)

// Source is what the dashboard needs from the fleet; *fleet.Fleet satisfies it.
type Source interface {
	Snapshot() *fleet.Snapshot
	// Changed signals (coalesced) that Snapshot has something new.
	Changed() <-chan struct{}
	// RunUntil runs a on the named guests, calling progress once per guest
	// as it finishes (from any goroutine), and returns every guest's
	// result. When stop ends no further guest is started (each reports
	// NotStarted) and the calls sent finish; ctx ending cuts them too.
	RunUntil(ctx, stop context.Context, a fleet.Action, names []string, progress func(fleet.Result)) []fleet.Result
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
	// FreezeTimeout is when the fleet thaws a guest this process froze
	// (fleet.Fleet.FreezeTimeout), stated in the freeze confirmation; 0
	// says there is no automatic thaw.
	FreezeTimeout time.Duration
	// Banner, when set, is the fleet file path the "demo fleet" banner points at.
	Banner string
	// Files opens the file browser for a guest; nil disables the files key.
	Files func(guest string) (FilesPane, error)
	// Now is the clock (countdowns, ages); nil means time.Now.
	Now func() time.Time
	// Audit, when set, records every mutating action (intent before it is
	// sent, outcome after) and every dry run of one; an action whose
	// intent cannot be written is refused. nil records nothing.
	Audit fleet.Auditor
	// Exec runs programs on guests (the ! key, :exec); nil disables it.
	Exec ExecFunc
	// Views are the saved views (views.go); check them with CheckViews.
	Views []View
	// ExportJSON writes guests as `status --json` prints them (the CLI's
	// shape, one home); nil leaves `:export json` unavailable.
	ExportJSON func(w io.Writer, guests []*fleet.Guest) error
	// Commands are the fleet file's [[commands]] (usercmd.go); check them
	// first with CheckCommands.
	Commands []Command
	// FilterHistory, when set, is the file the filter prompt's history is
	// kept in across restarts (↑/↓ in the prompt); nil keeps it for the
	// session only. The last filter is not applied at start: a dashboard
	// that opens on a filter nobody sees set hides guests, and ctrl+a then
	// an action would act on a set the operator did not choose today.
	FilterHistory *history.File
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
	src Source
	// st and opts are set once in New and only read after: pointers, so
	// that each Update's copy of the model is 20 KB smaller.
	st   *themes.Styles
	keys KeyMap
	opts *Options

	width, height int

	snap *fleet.Snapshot
	tbl  table
	// rowCache is the rows of the last frame (rowcache.go), shared by the
	// model's copies as the program passes it on; nil draws every row.
	rowCache *rowCache
	// pullCost is what pulling a snapshot costs lately (pullGap).
	pullCost time.Duration
	// lastInput is when the operator last pressed a key, pasted or used
	// the mouse (pullGap); wake cuts short the wait before the next pull
	// when they do (waitChanged). Shared by the model's copies.
	lastInput time.Time
	wake      chan struct{}
	// Guests this process froze, counted per snapshot (not per frame), and
	// the earliest automatic thaw among them.
	frozenOurs int
	nextThaw   time.Time
	counts     map[fleet.State]int

	marks        map[string]bool
	visual       bool
	visualAnchor int

	filterInput textinput.Model
	cmdInput    textinput.Model
	secret      *secretPrompt // the command line asks for a password (secret.go)

	detail       bool
	tab          int
	detailScroll int

	eventScroll int
	eventSel    int        // the event log's selected line (eventlog.go)
	entry       *entryView // the log entry open whole (layerEntry), nil when none
	hostScroll  int
	helpScroll  int // lines of the help screen scrolled off the top (help.go)
	help        help.Model

	views  viewState     // saved views and the one shown (views.go)
	picker *columnPicker // the column picker's state (picker.go)

	// layers is the dashboard's one modal state; see layer.
	layers []layer

	status    string
	statusErr bool
	// filterErr is the error the filter shows (state:bogus), "" when none.
	filterErr string

	run       *runState
	rowStatus map[string]rowStatus
	// marksUntil is when the last action's result marks (✓ ✗ -) go:
	// resultMarkTTL after it ended; zero while it runs or when none show.
	marksUntil time.Time
	runSeq     int
	spin       spinner.Model
	prog       progress.Model
	events     []event
	noticeSeq  uint64 // the newest fleet notice already in events

	ex *execUI // the exec prompt, its history and results pane (exec.go)

	pulse *pulseView // the pulse view's lists and selection (pulse.go)

	nav navState // filter history, jump, counts, the `:` palette (nav.go)
}

// layerKind names what can be open over the fleet table.
type layerKind int

const (
	layerTable   layerKind = iota // nothing open: the table has the keys
	layerFilter                   // the / prompt, drawn on the input line
	layerCommand                  // the : prompt, drawn on the input line
	layerHelp                     // the ? screen
	layerEvents                   // the event log
	layerHosts                    // the hosts pane (hosts.go)
	layerFiles                    // the file browser, full screen
	layerConfirm                  // "are you sure" before a destructive action
	layerQuit                     // quitting with guests frozen by us
	layerExecCmd                  // the ! prompt, drawn on the input line
	layerExec                     // an exec's confirmation and results pane
	layerPulse                    // the fleet pulse view (pulse.go)
	layerEntry                    // one event log entry, whole (eventlog.go)
	layerDetail                   // the detail pane opened over the region (detailview.go)
	layerColumns                  // the column picker (picker.go)
	layerYank                     // the copy chooser after y, on the input line (clip.go)
	layerAudit                    // the audit log pane (auditpane.go)
	layerAsk                      // a yes/no question: overwrite an export's file (export.go)
	layerJump                     // type-ahead jump to a guest, on the input line (nav.go)
)

// layer is one prompt, screen or dialog open over the table. Model.layers
// holds them bottom first, and key routing, drawing, the mouse and the help
// line all read that one stack, so what is on screen is what the keys reach:
//
//   - the last layer (top) alone receives keys and pastes, and the help line
//     under the table describes its keys;
//   - the topmost layer that draws in the region (anything but a prompt,
//     which lives on the input line) is drawn there and receives the mouse;
//     with none, the table and detail pane are drawn and clicked;
//   - the file browser also receives its own background messages (listings,
//     transfers) wherever it is in the stack, so nothing over it stalls them.
//
// The operator's keys open layers on top (open). A background result never
// covers anything: a finished read queues the event log at the bottom of the
// stack (queue), under whatever prompt, screen, browser or dialog is open,
// and the status line says it is waiting there. So a key pressed at a
// confirmation or the quit dialog always reaches that dialog, never one that
// appeared over it a moment before.
type layer struct {
	kind    layerKind
	confirm *confirmation // layerConfirm
	files   FilesPane     // layerFiles
	quit    *quitDialog   // layerQuit
	exec    *execUI       // layerExec
	audit   *auditView    // layerAudit
	ask     *askDialog    // layerAsk
}

// quitDialog is the state of the quit-with-frozen-guests dialog.
type quitDialog struct {
	thawing bool
	failed  []string // guests the last thaw attempt did not thaw
}

// drawsInRegion reports whether the layer replaces the table region (a
// prompt is drawn on the input line and leaves the region to what is below).
func (l layer) drawsInRegion() bool {
	return l.kind != layerTable && l.kind != layerFilter && l.kind != layerCommand && l.kind != layerExecCmd &&
		l.kind != layerYank && l.kind != layerJump
}

// top is the layer that receives keys; the zero layer is the table.
func (m *Model) top() layer {
	if len(m.layers) == 0 {
		return layer{}
	}
	return m.layers[len(m.layers)-1]
}

// region is the layer drawn in the table region and given the mouse.
func (m *Model) region() layer {
	for i := len(m.layers) - 1; i >= 0; i-- {
		if m.layers[i].drawsInRegion() {
			return m.layers[i]
		}
	}
	return layer{}
}

// find returns the open layer of kind k, if any (there is at most one).
func (m *Model) find(k layerKind) (layer, bool) {
	for _, l := range m.layers {
		if l.kind == k {
			return l, true
		}
	}
	return layer{}, false
}

func (m *Model) isOpen(k layerKind) bool {
	_, ok := m.find(k)
	return ok
}

// open puts l on top, where it receives the keys: only the operator's own
// keys open layers this way.
func (m *Model) open(l layer) {
	m.closeLayer(l.kind)
	m.layers = append(m.layers, l)
}

// queue shows l without taking the keys from what is open: at the bottom of
// the stack (which is the top when nothing is open), or where it already is.
// It reports whether l is on top, i.e. on screen.
func (m *Model) queue(l layer) bool {
	if !m.isOpen(l.kind) {
		m.layers = append([]layer{l}, m.layers...)
	}
	return m.top().kind == l.kind
}

// closeLayer removes the layer of kind k wherever it is. It builds a new
// slice: Model is a value, and an older copy may still hold the old one.
func (m *Model) closeLayer(k layerKind) {
	out := make([]layer, 0, len(m.layers))
	for _, l := range m.layers {
		if l.kind != k {
			out = append(out, l)
		}
	}
	m.layers = out
}

// closeAllButFiles drops every prompt, screen and dialog (ctrl+c, quitting
// from a too-small screen). The file browser stays: closing it is its own
// business (it cancels its transfers), and it is there again if the quit is
// cancelled.
func (m *Model) closeAllButFiles() {
	var keep []layer
	for _, l := range m.layers {
		if l.kind == layerFiles {
			keep = append(keep, l)
		}
	}
	m.layers = keep
	m.filterInput.Blur()
	m.cmdInput.Blur()
	m.ex.input.Blur()
}

func (m *Model) filesPane() FilesPane {
	l, _ := m.find(layerFiles)
	return l.files
}

// openConfirmation is the confirmation dialog's state, nil when none is open.
func (m *Model) openConfirmation() *confirmation {
	l, _ := m.find(layerConfirm)
	return l.confirm
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
		src: src, st: &st, opts: &opts, keys: DefaultKeyMap(),
		width: 100, height: 30,
		marks: map[string]bool{}, rowStatus: map[string]rowStatus{},
		detail: true, rowCache: &rowCache{},
		wake: make(chan struct{}, 1),
	}
	m.lastInput = m.now() // opening it is being at it
	if err := m.keys.Apply(opts.Keys); err != nil {
		m.setStatus(err.Error(), true)
	} else if err := CheckCommands(opts.Keys, opts.Commands); err != nil {
		m.opts.Commands = nil // none rather than some: the caller checks first
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
	m.filterInput.Placeholder = "name, glob, tag:X, host:X, state:X, re:REGEXP, ~fuzzy, !NOT"
	m.filterInput.SetStyles(inputStyles)
	m.cmdInput = textinput.New()
	m.cmdInput.Prompt = ":"
	m.cmdInput.SetStyles(inputStyles)
	// The palette over the line lists and cycles completions (nav.go).
	m.cmdInput.ShowSuggestions = false
	nav, err := newNavState(opts.FilterHistory)
	if err != nil {
		m.setStatus(err.Error()+" (the filter history starts empty)", true)
	}
	m.nav = nav

	m.spin = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(st.Accent))
	popts := []progress.Option{progress.WithWidth(30)}
	if st.NoColor || st.AccentColor == nil {
		popts = append(popts, progress.WithFillCharacters('#', '.'), progress.WithColors(lipgloss.NoColor{}))
	} else {
		popts = append(popts, progress.WithColors(st.AccentColor, st.OKColor))
	}
	m.prog = progress.New(popts...)
	m.ex = newExecUI(st)

	m.snap = src.Snapshot()
	if m.snap == nil {
		m.snap = &fleet.Snapshot{}
	}
	m.tbl.sortCol = colName
	m.setupViews()                    // views.go: the default view's filter, sort and columns
	m.nav.commands = m.commandItems() // after the views: their names are commands
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
	// actionDoneMsg carries every result of action run id. refused: its
	// intent could not be audited, so nothing was sent; auditErr: its
	// outcome could not be.
	actionDoneMsg struct {
		id       int
		results  []fleet.Result
		refused  error
		auditErr error
	}
	// auditedMsg reports an audit entry written off the Update loop.
	auditedMsg struct {
		what string
		err  error
	}
	thawedQuitMsg struct{ results []fleet.Result }
	// selfMsg is a background result that knows how to apply itself, so
	// each feature keeps its messages in its own file.
	selfMsg interface{ apply(m *Model) tea.Cmd }
)

// waitChanged is the one way fleet updates enter the program: a Cmd blocked
// on Source.Changed, re-armed after each changedMsg. after is how long it
// waits before it listens (the refresh gap): in one Cmd, not a timer's
// message and then a wait, because the program draws a frame after every
// message, and at 10,000 guests that frame was as dear as the pull.
//
// A signal on wake (1-buffered; nil: none) ends the wait before the gap:
// the operator is back at the keyboard, and the table, pulled at the idle
// pace, may be a second old.
func waitChanged(ch <-chan struct{}, after time.Duration, wake <-chan struct{}) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		if after > 0 {
			// Nothing is lost: Changed is coalesced.
			t := time.NewTimer(after)
			select {
			case <-t.C:
			case <-wake:
				t.Stop()
			}
		}
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

// A full pull (snapshot, filter, sort, group) costs what the fleet is
// large: 1-3 ms at 10,000 guests on this project's 2-core test machine (6
// ms before snapshots were incremental), 1-3 % of a core at 10 a second, a
// large part of the dashboard's whole budget. In the steady state most
// pulls only swap re-polled Guests into rows that keep their order
// (swap.go): well under 0.1 ms. So the gap grows with what
// pulls cost, measured: a pull takes at most 1/refreshCostShare of the
// time, up to maxRefreshGap between two. Small fleets keep refreshGap; a
// loaded machine, whose pulls take longer, pulls less often instead of
// falling behind. Keys are not paced: they act on the rows already pulled,
// at once.
//
// Once every row on screen has been polled, pulls are at least settledGap
// apart: five a second is more than the eye follows of data polled every
// few seconds, and at 10,000 guests each pull and its frame were still a
// few tenths of a point of a core at ten a second. And once nobody has
// touched the keyboard or the mouse for idleAfter, and no action or
// command runs, they are idleGap apart, as top's and htop's screens turn
// over: a dashboard left open all day is mostly watched, not driven, and
// at 10,000 guests its pulls and frames at five a second were some 5 % of
// its samples. A key, a paste or a click ends the wait at once (wake).
const (
	refreshCostShare = 100
	maxRefreshGap    = time.Second
	settledGap       = 200 * time.Millisecond
	idleGap          = time.Second
	idleAfter        = 10 * time.Second
)

// pullGap is how long to wait before the next pull, from the cost of the
// pulls so far. While a row on screen waits for its guest's first poll (the
// dashboard just opened, or the operator scrolled to guests not yet
// reached) it is refreshGap: those rows turn ready first (launch.go), and
// the operator is looking at them.
func (m *Model) pullGap() time.Duration {
	gap := min(max(refreshCostShare*m.pullCost, settledGap), maxRefreshGap)
	switch {
	case m.shownConnecting():
		gap = refreshGap
	case m.idle():
		gap = max(gap, idleGap)
	}
	return gap
}

// idle reports whether nobody is at the dashboard: no key, paste or click
// for idleAfter, and no action or command running.
func (m *Model) idle() bool {
	if m.run != nil || m.ex.pane != nil && m.ex.pane.running {
		return false
	}
	return m.now().Sub(m.lastInput) >= idleAfter
}

// noteInput marks the operator at the keyboard (pullGap), and ends a wait
// for the next pull at the idle pace.
func (m *Model) noteInput() {
	m.lastInput = m.now()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// notePullCost folds one pull's duration into pullCost, a moving average
// (one slow pull, a GC pause, does not slow the table for long).
func (m *Model) notePullCost(d time.Duration) {
	if m.pullCost == 0 {
		m.pullCost = d
		return
	}
	m.pullCost += (d - m.pullCost) / 4
}

// shownConnecting reports whether a row on screen has not been polled yet.
func (m *Model) shownConnecting() bool {
	t := &m.tbl
	h := max(m.layout().tableRows, 1)
	for i := t.offset; i < min(t.offset+h, t.lineCount()); i++ {
		if g := t.guestAt(i); g != nil && g.State == fleet.Connecting && g.LastLive.IsZero() {
			return true // (a group header is nil)
		}
	}
	return false
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts listening for fleet changes and the once-a-second clock that
// drives countdowns.
func (m Model) Init() tea.Cmd {
	return tea.Batch(waitChanged(m.src.Changed(), 0, m.wake), tick())
}

// Update hands each message to a small method.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case changedMsg:
		t0 := time.Now()
		m.refresh()
		m.notePullCost(time.Since(t0))
		return m, waitChanged(m.src.Changed(), m.pullGap(), m.wake)
	case tickMsg:
		m.expireResultMarks() // actions.go
		return m, tick()
	case actionMsg:
		m.actionProgress(msg)
		return m, msg.next
	case actionDoneMsg:
		return m, m.actionDone(msg)
	case thawedQuitMsg:
		return m, m.thawedQuit(msg)
	case execProgressMsg:
		m.execProgress(msg)
		return m, msg.next
	case execDoneMsg:
		m.execDone(msg)
		return m, nil
	case selfMsg:
		// Results of the clipboard, export and audit pane (their files).
		return m.byRef(msg.apply)
	case auditedMsg:
		if msg.err != nil {
			m.setStatus(msg.what+": "+msg.err.Error(), true)
		}
		return m, nil
	case spinner.TickMsg:
		if msg.ID != m.spin.ID() {
			break // another widget's spinner (the file browser's)
		}
		if m.run == nil && (m.ex.pane == nil || !m.ex.pane.running) {
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	case tea.KeyPressMsg:
		m.noteInput()
		return m.byRef(func(m *Model) tea.Cmd { return m.handleKey(msg) })
	case tea.KeyReleaseMsg:
		if top := m.top(); top.kind == layerFiles {
			return m, m.updateFiles(top.files, msg)
		}
		return m, nil
	case tea.PasteMsg:
		m.noteInput()
		return m, m.handlePaste(msg)
	case tea.MouseMsg:
		m.noteInput()
		return m, m.handleMouse(msg)
	}
	// Anything else is the file browser's own (listings, reads, transfers).
	if pane := m.filesPane(); pane != nil {
		return m, m.updateFiles(pane, msg)
	}
	return m, nil
}

// byRef runs f on m for Update where f may keep a pointer to the model (an
// interface's method, a key handler's closures): the compiler then moves
// the model to the heap, and in Update itself it would do so for every
// message, before the boxing of the result. A Model is some 47 KB, and a
// pull and its frame come ten times a second.
func (m Model) byRef(f func(*Model) tea.Cmd) (tea.Model, tea.Cmd) {
	cmd := f(&m)
	return m, cmd
}

// refresh pulls the newest snapshot.
func (m *Model) refresh() {
	if s := m.src.Snapshot(); s != nil {
		m.snap = s
	}
	m.reindex()
	m.takeNotices()
	m.pulseRefresh()
}

func (m *Model) resize(w, h int) {
	m.width, m.height = w, h
	m.help.SetWidth(w)
	m.filterInput.SetWidth(w - 2)
	// Narrow enough to leave room for the completion hints after it.
	m.cmdInput.SetWidth(min(w/3, 40))
	m.clampScroll()
	m.pulseRefresh()
	if pane := m.filesPane(); pane != nil {
		pane.SetSize(w, h-1)
	}
}

func (m *Model) updateFiles(pane FilesPane, msg tea.Msg) tea.Cmd {
	cmd := pane.Update(msg)
	if pane.Done() {
		m.closeLayer(layerFiles)
	}
	return cmd
}

// handleKey gives a key to the top layer, the one on screen.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	top := m.top()
	if m.tooSmall() {
		return m.tooSmallKey(k)
	}
	if key.Matches(k, m.keys.Stop) && stopReaches(top.kind) {
		return m.stopAction() // actions.go
	}
	if k.String() == "ctrl+c" && top.kind != layerQuit && top.kind != layerFiles && top.kind != layerExec {
		// Works from any prompt or dialog, and still asks about frozen
		// guests. The file browser takes ctrl+c itself: it cancels its
		// transfers and closes, and a second ctrl+c arrives here.
		m.closeAllButFiles()
		return m.requestQuit()
	}
	switch top.kind {
	case layerQuit:
		return m.quitKey(top.quit, k)
	case layerConfirm:
		return m.confirmKey(top.confirm, k)
	case layerFilter:
		return m.filterKey(k)
	case layerCommand:
		return m.commandKey(k)
	case layerHelp:
		return m.helpKey(k)
	case layerEvents:
		return m.eventsKey(k)
	case layerEntry:
		return m.entryKey(k)
	case layerDetail:
		return m.detailKey(k)
	case layerHosts:
		return m.hostsKey(k)
	case layerFiles:
		return m.updateFiles(top.files, k)
	case layerExecCmd:
		return m.execPromptKey(k)
	case layerExec:
		return m.execPaneKey(k)
	case layerPulse:
		return m.pulseKey(k)
	case layerColumns:
		return m.columnsKey(k)
	case layerYank:
		return m.yankKey(k)
	case layerAudit:
		return m.auditKey(top.audit, k)
	case layerAsk:
		return m.askKey(top.ask, k)
	case layerJump:
		return m.jumpKey(k)
	}
	return m.tableKey(k)
}

// tooSmallKey: below the minimum size the screen shows only that it is too
// small (and says q quits), plus the quit question when that is open. Keys
// reach only what it shows; nothing acts unseen.
func (m *Model) tooSmallKey(k tea.KeyPressMsg) tea.Cmd {
	if top := m.top(); top.kind == layerQuit {
		return m.quitKey(top.quit, k)
	}
	if k.String() == "ctrl+c" || key.Matches(k, m.keys.Quit) {
		m.closeAllButFiles()
		return m.requestQuit()
	}
	return nil
}

// handlePaste gives pasted text to the top layer if it takes text.
func (m *Model) handlePaste(msg tea.PasteMsg) tea.Cmd {
	switch top := m.top(); top.kind {
	case layerFiles:
		return m.updateFiles(top.files, msg)
	case layerFilter:
		return m.updateFilter(msg)
	case layerJump:
		for _, r := range msg.Content {
			if r > ' ' && present.Clean(string(r)) { // a pasted newline or tab is no jump key
				m.jumpKey(tea.KeyPressMsg{Code: r, Text: string(r)})
			}
		}
		return nil
	case layerCommand:
		var cmd tea.Cmd
		m.cmdInput, cmd = m.cmdInput.Update(msg)
		m.commandEdited()
		return cmd
	case layerExecCmd:
		var cmd tea.Cmd
		m.ex.input, cmd = m.ex.input.Update(msg)
		return cmd
	case layerExec:
		if p := m.ex.pane; p != nil && p.searching {
			var cmd tea.Cmd
			p.search, cmd = p.search.Update(msg)
			return cmd
		}
	}
	return nil
}

// handleMouse gives a mouse event to what is drawn in the region.
func (m *Model) handleMouse(msg tea.MouseMsg) tea.Cmd {
	if m.tooSmall() {
		return nil
	}
	switch r := m.region(); r.kind {
	case layerFiles:
		return m.updateFiles(r.files, msg)
	case layerEvents:
		if w, ok := msg.(tea.MouseWheelMsg); ok {
			m.scrollEvents(wheelDelta(w.Mouse()))
		}
	case layerEntry:
		if w, ok := msg.(tea.MouseWheelMsg); ok {
			m.scrollEntry(wheelDelta(w.Mouse()))
		}
	case layerDetail:
		switch msg := msg.(type) {
		case tea.MouseWheelMsg:
			m.scrollDetail(wheelDelta(msg.Mouse()))
		case tea.MouseClickMsg:
			if ms := msg.Mouse(); ms.Button == tea.MouseLeft && ms.Y == m.layout().regionTop {
				m.clickTab(ms.X) // the tab bar is the region's first line
			}
		}
	case layerHosts:
		if w, ok := msg.(tea.MouseWheelMsg); ok {
			m.scrollHosts(wheelDelta(w.Mouse()))
		}
	case layerHelp:
		if w, ok := msg.(tea.MouseWheelMsg); ok {
			m.scrollHelp(wheelDelta(w.Mouse())) // help.go
		}
	case layerAudit:
		if w, ok := msg.(tea.MouseWheelMsg); ok {
			r.audit.wheel(wheelDelta(w.Mouse()))
		}
	case layerTable:
		switch msg := msg.(type) {
		case tea.MouseClickMsg:
			m.handleClick(msg.Mouse())
		case tea.MouseWheelMsg:
			m.handleWheel(msg.Mouse())
		}
	}
	// The help screen and the dialogs have nothing to click.
	return nil
}
