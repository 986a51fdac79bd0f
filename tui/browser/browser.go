// Package browser is the dashboard's file browser for one guest: directory
// listings where the agent allows guest-exec, open-by-path where it does not,
// a text and hex viewer with search, and downloads and uploads with progress.
//
// It is written against plain Bubble Tea types and does not import tui: the
// dashboard hosts a *Model as its tui.FilesPane. Every agent call runs in a
// tea.Cmd with its own context and timeout; transfer progress reaches the
// model through a Cmd that waits on the transfer and is re-armed after each
// message, so the screen never stalls on a slow guest.
package browser

import (
	"context"
	"image/color"
	"io"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
)

// Source is what the browser needs from the fleet; *fleet.Fleet satisfies it.
type Source interface {
	ListDir(ctx context.Context, guest, dir string) ([]agentclient.DirEntry, error)
	ReadFile(ctx context.Context, guest, path string, w io.Writer, progress func(done, total int64)) (int64, error)
	WriteFile(ctx context.Context, guest, path string, r io.Reader, size int64, progress func(done, total int64)) (int64, error)
	// Guest is the guest's latest state (nil if unknown): its capabilities
	// say whether directory listings (guest-exec) are possible.
	Guest(name string) *fleet.Guest
}

// Styles are the lipgloss styles the browser draws with.
type Styles struct {
	Title, Header, Selected, Dir, File, Dim, Error, OK lipgloss.Style
	Match                                              lipgloss.Style // every search match
	Current                                            lipgloss.Style // the search match under the cursor
	// BarColors colour the progress bar; nil draws it with '#' and '.'.
	BarColors []color.Color

	set bool // distinguishes StylesFrom's result from the zero value
}

// StylesFrom derives the browser's styles from the dashboard's theme.
func StylesFrom(t themes.Styles) Styles {
	s := Styles{
		Title: t.Title, Header: t.Header, Selected: t.Selection,
		Dir: t.Accent.Bold(true), File: lipgloss.NewStyle(), Dim: t.Muted,
		Error: t.Error, OK: t.OK,
		Match:   lipgloss.NewStyle().Reverse(true),
		Current: lipgloss.NewStyle().Reverse(true).Bold(true).Underline(true),
		set:     true,
	}
	if t.NoColor {
		s.Selected = lipgloss.NewStyle().Reverse(true)
	} else if t.AccentColor != nil && t.OKColor != nil {
		s.BarColors = []color.Color{t.AccentColor, t.OKColor}
	}
	return s
}

// Options configure New.
type Options struct {
	// Styles to draw with; the zero value means StylesFrom(themes.Mono()).
	Styles Styles
	// Readonly hides and refuses upload.
	Readonly bool
	// Dir is the directory listed first; "" means "/", or C:\ on a
	// Windows guest.
	Dir string
	// Timeout bounds one listing or one file view (default 30s); TransferTimeout
	// one download or upload (default 1h). The fleet also bounds every agent call.
	Timeout, TransferTimeout time.Duration
	// ViewLimit is how much of a file the viewer reads (default 4 MiB); the
	// hex view shows at most a quarter of it. Download gets the whole file.
	ViewLimit int64
	// Now is the clock for transfer rates; nil means time.Now.
	Now func() time.Time
	// Location is the zone modification times are shown in; nil means time.Local.
	Location *time.Location
}

const (
	defaultTimeout         = 30 * time.Second
	defaultTransferTimeout = time.Hour
	defaultViewLimit       = 4 << 20
)

// KeyMap holds the browser's keys.
type KeyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding
	Open, Parent, Path, Reload            key.Binding
	Search, Next, Prev                    key.Binding
	Download, Upload, Back, Yes, No       key.Binding
}

// DefaultKeyMap returns the browser's default keys.
func DefaultKeyMap() KeyMap {
	b := func(help string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(keys[0], help))
	}
	return KeyMap{
		Up: b("up", "up", "k"), Down: b("down", "down", "j"),
		PageUp: b("page up", "pgup", "ctrl+b"), PageDown: b("page down", "pgdown", "ctrl+f"),
		// g and G are first and last, as in the dashboard's table; o
		// opens a path (and / in a listing, where nothing is searched).
		Home: b("first", "home", "g"), End: b("last", "end", "G"),
		Open: b("open", "enter", "right", "l"), Parent: b("up a dir", "backspace", "-", "left", "h"),
		Path: b("open path", "o"), Reload: b("reload", "r"),
		Search: b("search", "/"), Next: b("next match", "n"), Prev: b("previous match", "N"),
		Download: b("download", "d"), Upload: b("upload", "u"),
		Back: b("back", "esc", "q"), Yes: b("yes", "y", "Y"), No: b("no", "n", "N", "esc"),
	}
}

type promptKind int

const (
	promptNone promptKind = iota
	promptPath
	promptSearch
	promptSaveTo
	promptUploadFrom
	promptUploadTo
)

type msgKind int

const (
	msgInfo msgKind = iota
	msgErr
	msgOK
)

// Model is the file browser. Create it with New.
type Model struct {
	src   Source
	guest string
	opts  Options
	st    Styles
	keys  KeyMap

	// life bounds everything the browser starts; closing cancels it.
	life   context.Context
	cancel context.CancelFunc
	done   bool

	width, height int

	canExec bool
	noExec  string // why listings are unavailable, "" when they are
	frozen  bool   // the guest is frozen: nothing of the browser works until a thaw

	dir     string
	ents    []agentclient.DirEntry
	listed  bool // ents belongs to dir
	cursor  int
	top     int
	loading string // what the in-flight listing/view load is doing
	loadCxl context.CancelFunc
	seq     int // numbers loads; stale results are dropped

	view *fileView

	input     textinput.Model
	prompt    promptKind
	history   map[promptKind][]string
	histIdx   int
	histDraft string

	pendingDownload *downloadPlan
	pendingUpload   *uploadPlan
	confirm         *confirmation

	job    *job
	jobSeq int
	bar    progress.Model

	msg     string
	msgKind msgKind
}

// confirmation is a yes/no question in the message line.
type confirmation struct {
	question string
	yes      func() tea.Cmd
}

// New returns a browser for guest on src.
func New(src Source, guest string, opts Options) *Model {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.TransferTimeout <= 0 {
		opts.TransferTimeout = defaultTransferTimeout
	}
	if opts.ViewLimit <= 0 {
		opts.ViewLimit = defaultViewLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	st := opts.Styles
	if !st.set {
		st = StylesFrom(themes.Mono())
	}
	dir := opts.Dir
	if dir == "" || !isAbs(dir) {
		dir = "/"
		if fleet.IsWindows(src.Guest(guest)) {
			dir = `C:\`
		}
	}
	m := &Model{
		src: src, guest: guest, opts: opts, st: st, keys: DefaultKeyMap(),
		dir: cleanPath(dir), width: 80, height: 24,
		history: map[promptKind][]string{},
	}
	m.life, m.cancel = context.WithCancel(context.Background())

	m.input = textinput.New()
	is := textinput.Styles{
		Focused: textinput.StyleState{Prompt: st.Header, Text: lipgloss.NewStyle(), Placeholder: st.Dim, Suggestion: st.Dim},
		Blurred: textinput.StyleState{Prompt: st.Dim, Text: st.Dim, Placeholder: st.Dim, Suggestion: st.Dim},
	}
	// A static cursor: a blinking one would keep a tick Cmd alive forever.
	is.Cursor.Blink = false
	m.input.SetStyles(is)

	popts := []progress.Option{progress.WithWidth(20)}
	if len(st.BarColors) > 0 {
		popts = append(popts, progress.WithColors(st.BarColors...))
	} else {
		popts = append(popts, progress.WithFillCharacters('#', '.'), progress.WithColors(lipgloss.NoColor{}))
	}
	m.bar = progress.New(popts...)
	if len(st.BarColors) == 0 {
		m.bar.EmptyColor = lipgloss.NoColor{}
	}
	m.checkExec()
	return m
}

// checkExec reads the guest's capabilities: listings need guest-exec and
// guest-exec-status.
func (m *Model) checkExec() {
	m.canExec, m.noExec, m.frozen = true, "", false
	g := m.src.Guest(m.guest)
	if g == nil {
		return // unknown yet: try, and let the listing's error speak
	}
	if g.State == fleet.Frozen || g.Freeze == agentclient.Frozen {
		// The agent disables guest-exec and the file commands while frozen:
		// say why, rather than "guest-exec is disabled".
		m.canExec, m.noExec, m.frozen = false, "the guest is frozen: thaw it first", true
		return
	}
	for _, c := range []string{"guest-exec", "guest-exec-status"} {
		present, enabled := g.Capability(c)
		switch {
		case !present:
			m.canExec, m.noExec = false, c+" is absent from this agent"
			return
		case !enabled:
			m.canExec, m.noExec = false, c+" is disabled on this guest"
			return
		}
	}
}

// Init lists the start directory, or opens the path prompt where listings
// are impossible.
func (m *Model) Init() tea.Cmd {
	if m.frozen {
		// No file command works either: a path prompt would only fail.
		m.setMsg("no directory listing and no file reads: "+m.noExec+", then r", msgErr)
		return nil
	}
	if !m.canExec {
		m.setMsg("no directory listing: "+m.noExec+"; open a file by path", msgInfo)
		return m.openPrompt(promptPath, "open: ", m.dir)
	}
	return m.list(m.dir, "", false)
}

// Done reports whether the browser was closed.
func (m *Model) Done() bool { return m.done }

// SetSize sets the screen area the browser draws in.
func (m *Model) SetSize(w, h int) {
	m.width, m.height = max(w, 1), max(h, 1)
	m.input.SetWidth(max(m.width-20, 10))
	if m.view != nil {
		m.view.resize(m.width, m.bodyHeight())
	}
	m.clampCursor()
}

// close cancels everything in flight and marks the browser done.
func (m *Model) close() tea.Cmd {
	m.cancel()
	m.done = true
	return nil
}

func (m *Model) setMsg(s string, k msgKind) { m.msg, m.msgKind = s, k }

// Messages.
type (
	listedMsg struct {
		seq  int
		dir  string
		ents []agentclient.DirEntry
		err  error
		pick string // entry to put the cursor on
		open bool   // open that entry once listed (a path typed in the prompt)
	}
	openedMsg struct {
		seq  int
		path string
		view *fileView // rendered in the Cmd
		err  error
	}
	statMsg struct {
		local string
		size  int64
		err   error
	}
	// probedMsg says whether an upload's destination exists on the guest.
	probedMsg struct {
		seq   int
		plan  uploadPlan
		found probe
	}
)

// Update handles one message and returns what to run next.
func (m *Model) Update(msg tea.Msg) tea.Cmd {
	if m.done {
		return nil
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.SetSize(msg.Width, msg.Height)
	case listedMsg:
		return m.onListed(msg)
	case openedMsg:
		return m.onOpened(msg)
	case statMsg:
		return m.onStat(msg)
	case probedMsg:
		return m.onProbed(msg)
	case jobProgressMsg:
		return m.jobProgress(msg)
	case jobDoneMsg:
		return m.jobDone(msg)
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	case tea.PasteMsg:
		if m.prompt != promptNone {
			var cmd tea.Cmd
			m.input, cmd = m.input.Update(msg)
			return cmd
		}
	case tea.MouseWheelMsg:
		return m.wheel(msg.Mouse())
	}
	return nil
}

func (m *Model) wheel(ms tea.Mouse) tea.Cmd {
	delta := 3
	if ms.Button == tea.MouseWheelUp {
		delta = -3
	} else if ms.Button != tea.MouseWheelDown {
		return nil
	}
	if m.view != nil {
		if delta < 0 {
			m.view.vp.ScrollUp(-delta)
		} else {
			m.view.vp.ScrollDown(delta)
		}
		m.scrolled()
		return nil
	}
	m.move(delta)
	return nil
}
