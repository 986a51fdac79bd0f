package tui

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
)

// KeyMap holds every key binding of the dashboard. It feeds bubbles/help and
// can be rebound by action name (see Apply); names match config's keys table.
type KeyMap struct {
	Up, Down, PageUp, PageDown, Top, Bottom key.Binding

	Mark, MarkRange, ExtendUp, ExtendDown, MarkAll, Clear key.Binding
	InvertMarks                                           key.Binding

	// Jump starts a type-ahead jump to a guest by name (nav.go).
	Jump key.Binding

	Filter, Command, Help, Quit, Back    key.Binding
	Sort, SortReverse, HoldOrder         key.Binding
	Fold, FoldAll                        key.Binding // group.go
	Pulse                                key.Binding
	Detail, DetailNextTab, DetailPrevTab key.Binding
	DetailPane                           key.Binding
	DetailDown, DetailUp                 key.Binding
	Events, Files, Refresh, Exec, Hosts  key.Binding
	Yank, Audit                          key.Binding // clip.go, auditpane.go

	// Actions on the marked guests (or the guest under the cursor).
	Ping, Freeze, Thaw, Shutdown, Suspend, SetTime key.Binding

	// Stop stops the running action: no further guest is started, and the
	// calls already sent finish (actions.go, stopAction).
	Stop key.Binding
}

func bind(help string, keys ...string) key.Binding {
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(keyHelp(keys), help))
}

// keyHelp spells keys for the help view ("↑/k").
func keyHelp(keys []string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		switch k {
		case "up":
			k = "↑"
		case "down":
			k = "↓"
		case "shift+up":
			k = "⇧↑"
		case "shift+down":
			k = "⇧↓"
		}
		out[i] = k
	}
	return strings.Join(out, "/")
}

// DefaultKeyMap returns the stock bindings.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:       bind("up", "up", "k"),
		Down:     bind("down", "down", "j"),
		PageUp:   bind("page up", "pgup", "ctrl+b"),
		PageDown: bind("page down", "pgdown", "ctrl+f"),
		Top:      bind("first", "home", "g"),
		Bottom:   bind("last", "end", "G"),

		Mark:       bind("mark, move down", "space"),
		MarkRange:  bind("visual range", "v"),
		ExtendUp:   bind("extend up", "shift+up", "K"),
		ExtendDown: bind("extend down", "shift+down", "J"),
		MarkAll:    bind("mark all shown", "ctrl+a"),
		Clear:      bind("clear marks/filter", "esc"),
		// mc's key for inverting the selection; ctrl+i is tab.
		InvertMarks: bind("invert marks", "*"),
		Jump:        bind("go to name", "'"),

		Filter:      bind("filter", "/"),
		Command:     bind("command", ":"),
		Help:        bind("help", "?"),
		Quit:        bind("quit", "q", "ctrl+c"),
		Back:        bind("close/cancel", "esc"),
		Sort:        bind("sort column", "s"),
		SortReverse: bind("reverse sort", "S"),
		HoldOrder:   bind("hold row order", "o"), // H is the hosts pane
		// vi's fold key; Z is suspend, so fold-all is htop's collapse key.
		Fold:    bind("fold group", "z"),
		FoldAll: bind("fold all", "-"),
		Pulse:   bind("fleet pulse", "P"),

		Detail:        bind("detail pane", "enter"), // opens it over the table (detailview.go)
		DetailPane:    bind("pane on/off", "i"),
		DetailNextTab: bind("next tab", "tab"),
		DetailPrevTab: bind("prev tab", "shift+tab"),
		DetailDown:    bind("detail down", "ctrl+d"),
		DetailUp:      bind("detail up", "ctrl+u"),
		Events:        bind("event log", "e"),
		Files:         bind("files", "f"),
		Refresh:       bind("refresh", "r"),
		Exec:          bind("run a program", "!"),
		Hosts:         bind("hosts", "H"),
		Yank:          bind("copy", "y"),
		Audit:         bind("audit log", "A"),

		Ping:     bind(quickHelp(fleet.ActPing), "p"),
		Freeze:   bind(quickHelp(fleet.ActFreeze), "F"),
		Thaw:     bind(quickHelp(fleet.ActThaw), "T"),
		Shutdown: bind(quickHelp(fleet.ActShutdown), "X"),
		Suspend:  bind(quickHelp(fleet.ActSuspend), "Z"),
		SetTime:  bind("set time", "C"),
		// A control key: no letter of the table is taken from an
		// installation's [[commands]], and no slip of the shift key (X is
		// shutdown) reaches it. It does nothing but say so when no
		// action runs.
		Stop: bind("stop action", "ctrl+x"),
	}
}

// byName maps the action names used in config files to the bindings.
func (k *KeyMap) byName() map[string]*key.Binding {
	return map[string]*key.Binding{
		"up": &k.Up, "down": &k.Down, "page_up": &k.PageUp, "page_down": &k.PageDown, "top": &k.Top, "bottom": &k.Bottom,
		"mark": &k.Mark, "mark_range": &k.MarkRange, "extend_up": &k.ExtendUp, "extend_down": &k.ExtendDown,
		"mark_all": &k.MarkAll, "clear": &k.Clear, "invert_marks": &k.InvertMarks, "jump": &k.Jump,
		"filter": &k.Filter, "command": &k.Command, "help": &k.Help, "quit": &k.Quit, "back": &k.Back,
		"sort": &k.Sort, "sort_reverse": &k.SortReverse, "hold_order": &k.HoldOrder, "pulse": &k.Pulse,
		"fold": &k.Fold, "fold_all": &k.FoldAll,
		"open": &k.Detail, "detail_pane": &k.DetailPane, "detail_next_tab": &k.DetailNextTab, "detail_prev_tab": &k.DetailPrevTab,
		"detail_down": &k.DetailDown, "detail_up": &k.DetailUp,
		"events": &k.Events, "files": &k.Files, "refresh": &k.Refresh, "exec": &k.Exec, "hosts": &k.Hosts,
		"yank": &k.Yank, "audit": &k.Audit,
		"ping": &k.Ping, "freeze": &k.Freeze, "thaw": &k.Thaw, "shutdown": &k.Shutdown,
		"suspend": &k.Suspend, "settime": &k.SetTime, "stop": &k.Stop,
	}
}

// KeyActions lists the action names Apply accepts, sorted.
func KeyActions() []string {
	var k KeyMap
	m := k.byName()
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Apply rebinds actions from a config keys table (action name -> keys). An
// unknown action name, an empty key list or a key that two actions would
// share is an error; nothing is changed then. A clash is refused, not
// resolved: taking freeze's F for ping would silently leave freeze with no
// key. Actions that share a key by default (clear and back on esc act on
// different screens) may keep sharing it.
func (k *KeyMap) Apply(overrides map[string][]string) error {
	next := *k
	m := next.byName()
	names := make([]string, 0, len(overrides))
	for n := range overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	owner := map[string]string{} // key -> the overridden action bound to it
	for _, n := range names {
		b, ok := m[n]
		if !ok {
			return fmt.Errorf("keys: unknown action %q (known: %s)", n, strings.Join(KeyActions(), ", "))
		}
		keys := overrides[n]
		if len(keys) == 0 {
			return fmt.Errorf("keys: action %q: no keys given", n)
		}
		for _, key := range keys {
			if prev, taken := owner[key]; taken && prev != n && !sharedByDefault(prev, n) {
				return fmt.Errorf("keys: %q is bound to both %s and %s; give each action its own key", key, prev, n)
			}
			owner[key] = n
		}
		b.SetKeys(keys...)
		b.SetHelp(keyHelp(keys), b.Help().Desc)
	}
	others := make([]string, 0, len(m))
	for n := range m {
		if _, over := overrides[n]; !over {
			others = append(others, n)
		}
	}
	sort.Strings(others)
	for _, n := range others {
		for _, key := range m[n].Keys() {
			if by, taken := owner[key]; taken && !sharedByDefault(by, n) {
				return &KeyError{Action: by, Msg: fmt.Sprintf("%s = %q takes the key of %s; bind %s to another key too", by, key, n, n)}
			}
		}
	}
	*k = next
	return nil
}

// KeyError is a rebinding refused because of the built-in keys, which only
// the dashboard knows: Action is the rebound action, so that the caller can
// point at its line in the fleet file.
type KeyError struct {
	Action string
	Msg    string
}

func (e *KeyError) Error() string { return "keys: " + e.Msg }

// sharedByDefault reports whether actions a and b share a key in the stock
// bindings, and so may share one when rebound.
func sharedByDefault(a, b string) bool {
	d := DefaultKeyMap()
	m := d.byName()
	for _, key := range m[a].Keys() {
		if slices.Contains(m[b].Keys(), key) {
			return true
		}
	}
	return false
}

// actionKey is a key that starts an action on the marked guests.
type actionKey struct {
	b    *key.Binding
	kind fleet.Kind
}

// actionKeys pairs each action key with the action it starts (in the mode
// the action table gives one-key shortcuts, fleet.QuickAction).
func (k *KeyMap) actionKeys() []actionKey {
	return []actionKey{
		{&k.Refresh, fleet.ActInfo}, {&k.Ping, fleet.ActPing}, {&k.Freeze, fleet.ActFreeze}, {&k.Thaw, fleet.ActThaw},
		{&k.Shutdown, fleet.ActShutdown}, {&k.Suspend, fleet.ActSuspend}, {&k.SetTime, fleet.ActSetTime},
	}
}

// actionFor is the action a key starts. A binding that read-only mode
// disabled still names its action, so that the key is refused in words
// (startAction) rather than doing nothing.
func (k *KeyMap) actionFor(press tea.KeyPressMsg) (fleet.Action, bool) {
	for _, ak := range k.actionKeys() {
		if slices.Contains(ak.b.Keys(), press.String()) {
			return fleet.QuickAction(ak.kind), true
		}
	}
	return fleet.Action{}, false
}

// setReadonly disables (and so hides from help) every binding whose action
// the action table says mutates.
func (k *KeyMap) setReadonly(ro bool) {
	for _, ak := range k.actionKeys() {
		if fleet.QuickAction(ak.kind).Mutating() {
			ak.b.SetEnabled(!ro)
		}
	}
	// exec is not an action of the table (fleet.Exec runs it), and a
	// program may always change the guest.
	k.Exec.SetEnabled(!ro)
}

// quickHelp is an action key's help: the action, and its mode where the
// key picks one other than the default ("suspend (ram)").
func quickHelp(k fleet.Kind) string {
	s, _ := fleet.SpecOf(k)
	if s.QuickMode == "" {
		return string(k)
	}
	return fmt.Sprintf("%s (%s)", k, s.QuickMode)
}

// ShortHelp is the one-line help under the table.
func (k KeyMap) ShortHelp() []key.Binding {
	// The line is short: "mark" there, "mark, move down" on the ? screen.
	mark := k.Mark
	mark.SetHelp(mark.Help().Key, "mark")
	return []key.Binding{k.Help, mark, k.Filter, k.Command, k.Sort, k.Detail, k.Quit}
}

// FullHelp is the `?` screen, one column per group.
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Jump, k.Detail, k.DetailPane, k.DetailNextTab, k.DetailPrevTab, k.DetailDown, k.DetailUp, k.Yank},
		{k.Mark, k.MarkRange, k.ExtendUp, k.ExtendDown, k.MarkAll, k.InvertMarks, k.Clear, k.Events, k.Hosts, k.Files, k.Refresh, k.Exec, k.HoldOrder, k.Pulse, k.Audit},
		{k.Filter, k.Command, k.Sort, k.SortReverse, k.Fold, k.FoldAll, k.Help, k.Back, k.Quit},
		{k.Ping, k.Freeze, k.Thaw, k.Shutdown, k.Suspend, k.SetTime, k.Stop},
	}
}

// confirmKeys are the confirmation dialog's keys, matched and shown in help
// from here. Dialog keys are fixed, not rebindable: an "are you sure"
// answers to the same keys on every installation. When the count must be
// typed, y and n are not answers (digits are the input).
func confirmKeys(typed bool) (yes, no key.Binding) {
	if typed {
		return bind("confirm the count", "enter"), bind("cancel", "esc")
	}
	return bind("confirm", "y", "enter"), bind("cancel", "n", "esc", "q")
}

// quitKeys are the keys of the dialog that asks before quitting with guests
// frozen by us. Asking to quit again (the quit keys, q and ctrl+c by
// default) thaws them and quits, as SIGTERM does: a habitual q q or
// ctrl+c ctrl+c ends the program the safe way. Leaving guests frozen, the
// outage, needs a key of its own that no quit key shadows.
func (k KeyMap) quitKeys() (thaw, leave, cancel key.Binding) {
	thawKeys := []string{"y", "enter"}
	for _, s := range append(k.Quit.Keys(), "ctrl+c") {
		if !slices.Contains(thawKeys, s) {
			thawKeys = append(thawKeys, s)
		}
	}
	others := func(keys ...string) []string {
		var out []string
		for _, s := range keys {
			if !slices.Contains(thawKeys, s) {
				out = append(out, s)
			}
		}
		return out
	}
	return bind("thaw them and quit", thawKeys...),
		bind("quit, leave them frozen", others("Q", "!")...),
		bind("cancel", others("n", "esc")...)
}

// closeKeys is one binding for "close this screen": the keys of opener
// (help, event log), back and quit. ctrl+c is left out: it asks to quit
// from everywhere.
func (k KeyMap) closeKeys(opener key.Binding) key.Binding {
	var keys []string
	for _, b := range []key.Binding{opener, k.Back, k.Quit} {
		for _, s := range b.Keys() {
			if s != "ctrl+c" && !slices.Contains(keys, s) {
				keys = append(keys, s)
			}
		}
	}
	return bind("close", keys...)
}

// layerHelp is the help line for the layer that receives the keys: what it
// shows is what the keys do right now.
func (k KeyMap) layerHelp(l layer) []key.Binding {
	quit := bind("quit", "ctrl+c")
	switch l.kind {
	case layerFilter:
		return []key.Binding{bind("apply filter", "enter"), bind("clear filter", "esc"), bind("history", "↑/↓"), quit}
	case layerCommand:
		return []key.Binding{bind("run", "enter"), bind("next/prev completion", "tab/shift+tab"), bind("pick", "↑/↓"), bind("cancel", "esc"), quit}
	case layerJump:
		return []key.Binding{bind("stay here", "enter"), bind("next/prev match", "tab/shift+tab"), bind("go back", "esc"), quit}
	case layerHelp:
		return []key.Binding{k.closeKeys(k.Help), k.Up, k.Down, k.PageUp, k.PageDown, quit}
	case layerEvents:
		return []key.Binding{k.closeKeys(k.Events), entryOpenKey, k.Up, k.Down, k.PageUp, k.PageDown, quit}
	case layerEntry:
		return []key.Binding{k.entryCloseKeys(), k.Up, k.Down, k.PageUp, k.PageDown, quit}
	case layerDetail:
		return []key.Binding{k.detailCloseKeys(), k.Up, k.Down, k.DetailNextTab, bind("tab", "1-9"), k.PageDown, quit}
	case layerHosts:
		return []key.Binding{k.closeKeys(k.Hosts), k.Up, k.Down, k.PageUp, k.PageDown, quit}
	case layerConfirm:
		yes, no := confirmKeys(l.confirm.needType)
		return []key.Binding{yes, no, quit}
	case layerQuit:
		thaw, leave, cancel := k.quitKeys()
		return []key.Binding{thaw, leave, cancel}
	case layerFiles:
		return nil // the browser draws its own
	case layerExecCmd:
		return []key.Binding{bind("run", "enter"), bind("history", "↑/↓"), bind("cancel", "esc"), quit}
	case layerExec:
		return execHelp(l.exec, k.Stop)
	case layerPulse:
		return k.pulseHelp()
	case layerColumns:
		toggle, up, down, auto, apply, cancel := pickerKeys()
		return []key.Binding{k.Up, k.Down, toggle, up, down, auto, apply, cancel}
	case layerYank:
		return yankHelp()
	case layerAudit:
		return k.auditHelp(l.audit)
	case layerAsk:
		return askHelp()
	}
	return k.ShortHelp()
}
