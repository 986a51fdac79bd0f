package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Spec declares one action: the one home of every fact about it. The
// parsers (ParseAction, the CLI's `run`, the dashboard's `:` line), their
// help and completions, the read-only gate, confirmations, the dry run,
// the audit log and the execution itself all read it; nothing above fleet
// names an action's modes or arguments.
//
// Adding an action is one entry in actionTable: its Kind, its words, its
// argument shape, what it sends (sends) and how it runs (run).
type Spec struct {
	Kind Kind
	// Aliases are other words for the action, some fixing its mode
	// (virsh's `reboot` is shutdown reboot; `cat` is read).
	Aliases []Alias
	// Summary is the help line.
	Summary string
	// Args is which words follow the name.
	Args Args
	// Modes are the valid modes of a ModeArg or ModeIDsArg action, the
	// default first when DefaultMode is set.
	Modes []Mode
	// DefaultMode is the mode when none is given; "" means a mode is
	// required.
	DefaultMode string
	// QuickMode is the mode a one-key shortcut uses (the dashboard's
	// suspend key); DefaultMode when empty.
	QuickMode string
	// Mutating: the action changes the guest; read-only mode refuses it
	// (the CLI, the dashboard's keys and `:` line, the fleet itself).
	Mutating bool
	// Danger is how hard the action is to undo (a mode may raise it):
	// what confirmation it needs.
	Danger Danger
	// Examples are extra completions for the dashboard's `:` line.
	Examples []string
	// ResultFields names the structured Result fields the action fills,
	// as `run --json` prints them (see ResultField).
	ResultFields []string
	// Options are the --name [VALUE] words an action takes right after its
	// name, before any other argument (options.go).
	Options []Option

	// For Args == CustomArgs, the action reads and writes its own words:
	// parse fills a from the words after the name, arity says how many of
	// them are its own (Arity), usage is its syntax, str is String and
	// check is validate.
	parse      func(a *Action, rest []string) error
	arity      func(rest []string) int
	usage      string
	shortUsage string // usage where space is short (HelpUsage)
	str        func(a Action) string
	check      func(a Action) error

	// machine, for an action on the guest's machine through its libvirt
	// host rather than its agent (wake, start: domain.go), says why a guest
	// cannot take it ("" when it can); it replaces the agent's capability
	// check (Check), and sends names the libvirt call.
	machine func(g *Guest) string

	// question is the confirmation's sentence for n guests (see Question).
	question func(a Action, n int, thawAfter time.Duration) string
	// sends is what the action sends to a guest that can run it (see Sends).
	sends func(a Action, now time.Time) []Send
	// run performs the action on one guest; it fills r and returns the
	// error that fails it. Run and the dashboard reach it through Fleet.Run.
	run func(s *session, ctx context.Context, a Action, r *Result) error
}

// Alias is another word for an action; Mode, when set, is the mode it
// stands for.
type Alias struct {
	Word string
	Mode string
	// Short marks a typing short form (k9s-style, "fz" for freeze): taken
	// by every parser and offered by completion, but left out of the help
	// screen's syntax lines, which have no room for both spellings.
	Short bool
}

// Mode is one mode of an action.
type Mode struct {
	Name string
	// Aliases are other words for the mode (virsh's `suspend mem` is ram).
	Aliases []string
	Help    string
	// Danger raises the action's Danger in this mode (vcpus offline).
	Danger Danger
	// LooksOnly: in this mode the action only reads (ssh-key list): it is
	// not Mutating and needs no confirmation.
	LooksOnly bool
}

// Args is the shape of the words after an action's name.
type Args int

const (
	NoArgs      Args = iota
	ModeArg          // MODE (optional when the Spec has a DefaultMode)
	ModeIDsArg       // MODE IDS: vCPU ids such as 2,3 or 2-5
	PathArg          // PATH on the guest
	PathDataArg      // PATH DATA: the rest of the words are the content
	// CustomArgs: the action parses its own words (Spec.parse and the
	// others beside it): password, ssh-key. An exec-like action (a
	// program and its arguments, every word after the name) fits here too,
	// with Action fields for them.
	CustomArgs
)

// Danger is what confirmation an action needs.
type Danger int

const (
	// Harmless actions run without asking.
	Harmless Danger = iota
	// Disruptive actions interrupt the guest or lose data: they are
	// confirmed (y/N), and need --yes without a terminal.
	Disruptive
	// Severe actions take guests away (shutdown): on more than one
	// guest the operator types the count, in the CLI on a terminal and in
	// the dashboard alike.
	Severe
)

// Result fields an action may fill (Spec.ResultFields), by their JSON name.
const (
	FieldRTT          = "rtt_ns"        // Result.RTT
	FieldFilesystems  = "filesystems"   // Result.Filesystems
	FieldTrimmedBytes = "trimmed_bytes" // Result.TrimmedBytes
	FieldVCPUs        = "vcpus_set"     // Result.VCPUs
	FieldBytes        = "bytes"         // Result.Bytes
	FieldClock        = "clock"         // Result.Clock
	FieldThawAt       = "thaw_at"       // Result.ThawAt
	FieldSkew         = "skew_ns"       // Result.Skew
)

// actionTable is every action, in the order help lists them. It is read,
// never written.
var actionTable = []Spec{
	{
		Kind: ActPing, Summary: "check that the agent answers",
		ResultFields: []string{FieldRTT},
		sends:        fixedSends("guest-ping"), run: onAgent((*session).actPing),
	},
	{
		Kind: ActInfo, Summary: "refresh everything the dashboard shows, now",
		Aliases: []Alias{{Word: "refresh", Short: true}},
		// A refresh of everything the poller reads; guest-info comes first
		// and decides what else may be asked (only commands that look).
		sends: fixedSends("guest-info"), run: (*session).actInfo,
	},
	{
		Kind: ActFreeze, Summary: "freeze the filesystems (writes block until thawed)",
		Aliases:  []Alias{{Word: "fz", Short: true}},
		Mutating: true, Danger: Disruptive, ResultFields: []string{FieldFilesystems, FieldThawAt},
		Options:  []Option{mountpointOption},
		question: freezeQuestion,
		sends:    freezeSends, run: onAgent((*session).actFreeze),
	},
	{
		Kind: ActThaw, Summary: "thaw the filesystems",
		Aliases:  []Alias{{Word: "th", Short: true}},
		Mutating: true, ResultFields: []string{FieldFilesystems},
		Options: []Option{{Name: "mountpoint", Arg: "PATH",
			Refused: "thaw thaws every frozen filesystem: guest-fsfreeze-thaw takes no mountpoints (libvirt refuses them too)"}},
		sends: func(Action, time.Time) []Send { return thawSends() },
		run:   onAgent((*session).actThaw),
	},
	{
		Kind: ActShutdown, Summary: "shut the guest down, reboot or halt it",
		// virsh reboot; virsh shutdown's --mode names other mechanisms.
		Aliases: []Alias{{Word: "reboot", Mode: agentclient.ShutdownReboot}, {Word: "sd", Short: true}},
		Args:    ModeArg, DefaultMode: agentclient.ShutdownPowerdown,
		Modes: []Mode{
			{Name: agentclient.ShutdownPowerdown, Help: "power off"},
			{Name: agentclient.ShutdownReboot, Help: "restart"},
			{Name: agentclient.ShutdownHalt, Help: "stop without powering off"},
		},
		Mutating: true, Danger: Severe,
		question: shutdownQuestion,
		sends: func(a Action, _ time.Time) []Send {
			if a.Mode == "" {
				return []Send{{Execute: "guest-shutdown"}}
			}
			return []Send{{Execute: "guest-shutdown", Arguments: map[string]string{"mode": a.Mode}}}
		},
		run: onAgent((*session).actGoAway),
	},
	{
		Kind: ActSuspend, Summary: "suspend to disk, RAM or both",
		Aliases: []Alias{{Word: "sus", Short: true}},
		Args:    ModeArg, QuickMode: agentclient.SuspendRAM,
		Modes: []Mode{
			{Name: agentclient.SuspendDisk, Help: "hibernate"},
			{Name: agentclient.SuspendRAM, Aliases: []string{"mem"}, Help: "sleep (virsh: mem)"},
			{Name: agentclient.SuspendHybrid, Help: "both"},
		},
		Mutating: true, Danger: Disruptive,
		question: suspendQuestion,
		sends:    func(a Action, _ time.Time) []Send { return []Send{{Execute: "guest-suspend-" + a.Mode}} },
		run:      onAgent((*session).actGoAway),
	},
	{
		Kind: ActWake, Summary: "wake a guest suspended to RAM (libvirt guests: virsh dompmwakeup)",
		Mutating: true, machine: wakeCheck,
		sends: hostSends("virDomainPMWakeup"), run: (*session).actWake,
	},
	{
		Kind: ActStart, Summary: "boot a stopped libvirt domain (virsh start)",
		Mutating: true, machine: startCheck,
		sends: hostSends("virDomainCreate"), run: (*session).actStart,
	},
	{
		Kind: ActSetTime, Summary: "set the guest clock from the host clock",
		Mutating: true, ResultFields: []string{FieldClock},
		sends: func(_ Action, now time.Time) []Send {
			return []Send{{Execute: "guest-set-time", Arguments: map[string]int64{"time": now.UnixNano()}}}
		},
		run: onAgent((*session).actSetTime),
	},
	{
		Kind: ActFstrim, Summary: "discard unused blocks",
		Aliases:  []Alias{{Word: "trim", Short: true}},
		Mutating: true, ResultFields: []string{FieldFilesystems, FieldTrimmedBytes},
		Options: []Option{minimumOption, {Name: "mountpoint", Arg: "PATH",
			Refused: "fstrim trims every mounted filesystem: guest-fstrim takes no mountpoints (libvirt refuses them too)"}},
		sends: fstrimSends, run: onAgent((*session).actFstrim),
	},
	{
		Kind: ActClock, Summary: "print the guest clock, or set it",
		// virsh domtime: the same options, in the same sense.
		Aliases: []Alias{{Word: "domtime"}},
		Options: clockOptions, DefaultMode: ClockGet,
		Modes: []Mode{
			{Name: ClockGet, Help: "print the guest clock and its skew", LooksOnly: true},
			{Name: ClockNow, Help: "set it to the host clock (as settime)"},
			{Name: ClockSync, Help: "set it from the guest's own hardware clock (RTC)"},
			{Name: ClockSet, Help: "set it to --time SECONDS", Danger: Disruptive},
		},
		Mutating: true, ResultFields: []string{FieldClock, FieldSkew},
		question: clockQuestion,
		sends:    clockSends, run: onAgent((*session).actClock),
	},
	{
		Kind: ActVCPUs, Summary: "bring vCPUs online or take them offline",
		Args: ModeIDsArg,
		Modes: []Mode{
			{Name: VCPUsOnline, Help: "bring online"},
			{Name: VCPUsOffline, Help: "take offline", Danger: Disruptive},
		},
		Mutating: true, ResultFields: []string{FieldVCPUs},
		question: vcpusQuestion,
		sends:    vcpuSends, run: onAgent((*session).actVCPUs),
	},
	{
		Kind: ActRead, Summary: "print a guest file (up to 1 MiB; the cat command streams any size)",
		Aliases: []Alias{{Word: "cat"}}, Args: PathArg,
		Examples:     []string{"cat /etc/os-release", "cat /etc/hostname"},
		ResultFields: []string{FieldBytes},
		sends:        readSends, run: onAgent((*session).actRead),
	},
	{
		Kind: ActWrite, Summary: "write DATA to a guest file (replacing it)",
		Args: PathDataArg, Mutating: true, Danger: Disruptive, ResultFields: []string{FieldBytes},
		question: func(a Action, n int, _ time.Duration) string {
			return fmt.Sprintf("Replace %s with %d bytes on %s?", a.Path, len(a.Data), guestCount(n))
		},
		sends: func(a Action, _ time.Time) []Send { return WriteSends(a.Path, int64(len(a.Data))) },
		run:   onAgent((*session).actWrite),
	},
	{
		Kind: ActPassword, Summary: "set a user's password (asked for, never given in the words)",
		Aliases: []Alias{{Word: "passwd", Short: true}},
		Args:    CustomArgs, usage: "password [--crypted] USER", shortUsage: "password USER",
		parse: (*Action).parseUsers, arity: usersArity(ActPassword), str: Action.usersString, check: Action.validateUsers,
		Mutating: true, Danger: Disruptive,
		question: func(a Action, n int, _ time.Duration) string {
			return fmt.Sprintf("Set the password of %s on %s?", a.Users.User, guestCount(n))
		},
		sends: func(a Action, _ time.Time) []Send { return a.usersSends() },
		run:   onAgent((*session).userAct),
	},
	{
		Kind: ActSSHKey, Summary: "add, set (replace all), remove or list a user's SSH keys",
		Args: CustomArgs, usage: "ssh-key add|set|remove USER KEYFILE, ssh-key list USER", shortUsage: "ssh-key MODE USER [KEYFILE]",
		parse: (*Action).parseUsers, arity: usersArity(ActSSHKey), str: Action.usersString, check: Action.validateUsers,
		Modes: []Mode{
			{Name: KeyAdd, Help: "append the keys not there yet"},
			{Name: KeySet, Help: "replace all of the user's keys"},
			{Name: KeyRemove, Help: "remove the keys"},
			{Name: KeyList, Help: "list the keys", LooksOnly: true},
		},
		Mutating: true, Danger: Disruptive,
		question: sshKeyQuestion,
		sends:    func(a Action, _ time.Time) []Send { return a.usersSends() },
		run:      onAgent((*session).userAct),
	},
}

// usersArity is a users-and-keys action's Arity (users.go's UserArity).
func usersArity(k Kind) func(rest []string) int {
	return func(rest []string) int {
		n, _ := UserArity(string(k), rest)
		return n
	}
}

func sshKeyQuestion(a Action, n int, _ time.Duration) string {
	keys := plural(len(a.Users.Keys), "key")
	switch a.Mode {
	case KeySet:
		return fmt.Sprintf("Replace all SSH keys of %s with %s from %s on %s?", a.Users.User, keys, a.Users.KeyFile, guestCount(n))
	case KeyRemove:
		return fmt.Sprintf("Remove %s of %s (from %s) on %s?", keys, a.Users.User, a.Users.KeyFile, guestCount(n))
	}
	return fmt.Sprintf("Add %s to %s's SSH keys (from %s) on %s?", keys, a.Users.User, a.Users.KeyFile, guestCount(n))
}

// vCPU modes.
const (
	VCPUsOnline  = "online"
	VCPUsOffline = "offline"
)

// Specs lists every action, in help order.
func Specs() []Spec { return slices.Clone(actionTable) }

// SpecOf returns the declaration of kind k.
func SpecOf(k Kind) (Spec, bool) {
	for _, s := range actionTable {
		if s.Kind == k {
			return s, true
		}
	}
	return Spec{}, false
}

// spec is a's declaration; the zero Spec for an unknown kind.
func (a Action) spec() Spec {
	s, _ := SpecOf(a.Kind)
	return s
}

// QuickAction is kind as a one-key shortcut starts it: in its QuickMode,
// else its DefaultMode. The kind must take no other arguments.
func QuickAction(k Kind) Action {
	s, _ := SpecOf(k)
	mode := s.QuickMode
	if mode == "" {
		mode = s.DefaultMode
	}
	return Action{Kind: k, Mode: mode}
}

// IsActionWord reports whether word names an action (or an alias of one),
// for the CLI's hint when one is typed where a command goes.
func IsActionWord(word string) bool {
	_, _, ok := lookupWord(word)
	return ok
}

// lookupWord finds the action a word names, and the mode an alias fixes.
func lookupWord(word string) (s Spec, mode string, ok bool) {
	word = strings.ToLower(word)
	for _, s := range actionTable {
		if string(s.Kind) == word {
			return s, "", true
		}
		for _, al := range s.Aliases {
			if al.Word == word {
				return s, al.Mode, true
			}
		}
	}
	return Spec{}, "", false
}

// mode finds the mode a word names (its name or an alias).
func (s Spec) mode(word string) (Mode, bool) {
	word = strings.ToLower(word)
	for _, m := range s.Modes {
		if m.Name == word || slices.Contains(m.Aliases, word) {
			return m, true
		}
	}
	return Mode{}, false
}

// modeList is the modes for an error or usage line: "disk, ram or hybrid".
func (s Spec) modeList() string {
	names := make([]string, len(s.Modes))
	for i, m := range s.Modes {
		names[i] = m.Name
	}
	return orList(names)
}

func orList(ss []string) string {
	if len(ss) < 2 {
		return strings.Join(ss, "")
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " or " + ss[len(ss)-1]
}

// modeSyntax is the modes as usage writes them: "disk|ram|hybrid".
func (s Spec) modeSyntax() string {
	names := make([]string, len(s.Modes))
	for i, m := range s.Modes {
		names[i] = m.Name
	}
	return strings.Join(names, "|")
}

// Usage is the action's syntax: "shutdown [powerdown|reboot|halt]",
// "freeze [--mountpoint PATH]...".
func (s Spec) Usage() string {
	if u := s.optionUsage(); u != "" {
		return s.baseUsage() + " " + u
	}
	return s.baseUsage()
}

// baseUsage is Usage without the options.
func (s Spec) baseUsage() string {
	if s.usage != "" {
		return s.usage
	}
	modes := s.modeSyntax()
	switch s.Args {
	case ModeArg:
		if s.DefaultMode != "" {
			return fmt.Sprintf("%s [%s]", s.Kind, modes)
		}
		return fmt.Sprintf("%s %s", s.Kind, modes)
	case ModeIDsArg:
		return fmt.Sprintf("%s %s IDS", s.Kind, modes)
	case PathArg:
		return fmt.Sprintf("%s PATH", s.Kind)
	case PathDataArg:
		return fmt.Sprintf("%s PATH DATA", s.Kind)
	}
	return string(s.Kind)
}

// HelpLevel is how much of an action's syntax a help line shows.
type HelpLevel int

const (
	HelpFull  HelpLevel = iota // "suspend disk|ram|hybrid"
	HelpShort                  // "suspend MODE"
	HelpNames                  // "suspend", without aliases
)

// HelpUsage is the syntax for a compact help line, aliases folded in:
// "read|cat PATH", "suspend disk|ram|hybrid", and an alias that fixes the
// mode as an item of its own ("reboot").
func (s Spec) HelpUsage(level HelpLevel) []string {
	// Without the options: the dashboard's help line has room for the
	// words, and run -h lists the options.
	u := s.baseUsage()
	switch {
	case level == HelpNames:
		u = string(s.Kind)
	case level == HelpShort && s.shortUsage != "":
		u = s.shortUsage
	case level == HelpShort && len(s.Modes) > 0:
		u = strings.Replace(u, s.modeSyntax(), "MODE", 1)
	}
	if level == HelpNames {
		// The names alone, aliases left to the `:` line's completion:
		// where space is this short, every word counts.
		return []string{u}
	}
	var own []string
	for _, al := range s.Aliases {
		if al.Short {
			continue
		}
		if al.Mode == "" {
			u = strings.Replace(u, string(s.Kind), string(s.Kind)+"|"+al.Word, 1)
		} else {
			own = append(own, al.Word)
		}
	}
	return append([]string{u}, own...)
}

// Words are the names an operator may type for the action: its kind, then
// its aliases.
func (s Spec) Words() []string {
	out := []string{string(s.Kind)}
	for _, al := range s.Aliases {
		out = append(out, al.Word)
	}
	return out
}

// AliasHelp describes the aliases: "reboot = shutdown reboot, halt = ...".
func (s Spec) AliasHelp() string {
	var out []string
	for _, al := range s.Aliases {
		to := string(s.Kind)
		if al.Mode != "" {
			to += " " + al.Mode
		}
		out = append(out, al.Word+" = "+to)
	}
	for _, m := range s.Modes {
		for _, w := range m.Aliases {
			out = append(out, fmt.Sprintf("%s %s = %s %s", s.Kind, w, s.Kind, m.Name))
		}
	}
	return strings.Join(out, ", ")
}

// Arity says how many words after the action's first word belong to it,
// for a command line where the guests follow (`run ACTION [ARGS] GUEST...`).
// An optional mode is taken only when it is one of the modes, so `run
// shutdown web-1` and `run shutdown reboot web-1` both read as expected; a
// write's data is one word there. Unknown words take none.
func Arity(word string, rest []string) int {
	s, fixed, ok := lookupWord(word)
	if !ok {
		return 0
	}
	n := s.optionArity(rest)
	return n + s.argArity(fixed, rest[n:])
}

// argArity is Arity after the options.
func (s Spec) argArity(fixed string, rest []string) int {
	switch s.Args {
	case ModeArg:
		if fixed != "" {
			return 0
		}
		if s.DefaultMode != "" {
			if len(rest) > 0 {
				if _, ok := s.mode(rest[0]); ok {
					return 1
				}
			}
			return 0
		}
		return 1
	case PathArg:
		return 1
	case ModeIDsArg, PathDataArg:
		if fixed != "" {
			return 1
		}
		return 2
	case CustomArgs:
		return s.arity(rest)
	}
	return 0
}

// Suggestion is one completion for a command line.
type Suggestion struct {
	Text     string // what to insert; a trailing space asks for more words
	Help     string // one line on what it does: the Summary, or the mode's Help
	Mutating bool   // read-only mode leaves it out
	Complete bool   // a whole action (a dry run of it makes sense)
}

// Suggestions are the completions of every action: each name, alias and
// mode, and the examples.
func Suggestions() []Suggestion {
	var out []Suggestion
	add := func(s Spec, text string, complete bool) {
		help := s.Summary
		word, _, _ := strings.Cut(text, " ")
		if _, fixed, _ := lookupWord(word); fixed != "" {
			m, _ := s.mode(fixed)
			help = m.Help + " (= " + string(s.Kind) + " " + fixed + ")"
		} else if word != string(s.Kind) {
			help += " (= " + string(s.Kind) + ")"
		}
		out = append(out, Suggestion{Text: text, Help: help, Mutating: s.Mutating, Complete: complete})
	}
	addMode := func(s Spec, m Mode, text string, complete bool) {
		out = append(out, Suggestion{Text: text, Help: m.Help, Mutating: s.Mutating && !m.LooksOnly, Complete: complete})
	}
	for _, s := range actionTable {
		for _, w := range s.Words() {
			name := w
			_, fixed, _ := lookupWord(w)
			switch {
			case s.Args == NoArgs && fixed == "":
				// The action as a bare word is in its default mode (clock
				// only reads). Its options are not completions: the `:`
				// line's cycle stays one entry per action (run -h and the
				// usage list them).
				add(s, name, true)
				out[len(out)-1].Mutating = Action{Kind: s.Kind, Mode: s.DefaultMode}.Mutating()
			case s.Args == NoArgs || fixed != "":
				add(s, name, true)
			case s.Args == ModeArg:
				if s.DefaultMode != "" {
					add(s, name, true)
				}
				for _, m := range s.Modes {
					for _, mw := range append([]string{m.Name}, m.Aliases...) {
						addMode(s, m, name+" "+mw, true)
					}
				}
			case s.Args == ModeIDsArg || (s.Args == CustomArgs && len(s.Modes) > 0):
				for _, m := range s.Modes {
					addMode(s, m, name+" "+m.Name+" ", false)
				}
			default:
				add(s, name+" ", false)
			}
		}
		for _, e := range s.Examples {
			add(s, e, true)
		}
	}
	return out
}

// kindList is every action's name for an error: "ping, info, ...".
func kindList() string {
	names := make([]string, len(actionTable))
	for i, s := range actionTable {
		names[i] = string(s.Kind)
	}
	return strings.Join(names, ", ")
}

// UsageList is every action's syntax, for a usage line.
func UsageList() string {
	us := make([]string, len(actionTable))
	for i, s := range actionTable {
		us[i] = s.Usage()
	}
	return strings.Join(us, ", ")
}

// danger is a's Danger: the action's, raised by its mode's.
func (a Action) danger() Danger {
	s := a.spec()
	d := s.Danger
	if m, ok := a.modeSpec(); ok {
		if m.LooksOnly {
			return Harmless
		}
		d = max(d, m.Danger)
	}
	return d
}

// modeSpec is the declaration of a's mode, if it has one.
func (a Action) modeSpec() (Mode, bool) {
	if a.Mode == "" {
		return Mode{}, false
	}
	return a.spec().mode(a.Mode)
}

// TypedCount reports whether confirming a on n guests needs the count
// typed, not just yes: the one rule for the CLI on a terminal and the
// dashboard.
func (a Action) TypedCount(n int) bool { return typedCount(a.danger(), n) }

func typedCount(d Danger, n int) bool { return d >= Severe && n > 1 }

// RawConfirmation is what sending the raw agent command execute (guestdeck
// agent) to n guests needs, by the rule actions follow: ask is true when it
// needs a yes (or --yes), typed when the count must be typed. One guest
// named by its name (byName) is the raw command's escape hatch and is never
// asked; one that a pattern happened to match is asked, as run asks; on
// several, a command
// is as dangerous as the most dangerous action that sends it (guest-shutdown
// is shutdown's: the count is typed), and any other command that changes
// the guest (the agent-command table says) asks.
func RawConfirmation(execute string, n int, byName bool) (ask, typed bool) {
	if n < 1 || n == 1 && byName || !agentclient.Mutates(execute) {
		return false, false
	}
	d := Disruptive
	for _, s := range actionTable {
		modes := []string{s.DefaultMode}
		for _, m := range s.Modes {
			modes = append(modes, m.Name)
		}
		for _, m := range modes {
			a := Action{Kind: s.Kind, Mode: m}
			if slices.Contains(a.Commands(), execute) {
				d = max(d, a.danger())
			}
		}
	}
	return true, typedCount(d, n)
}

// Question is the confirmation for a on n guests, a sentence: "Shut down 2
// guests (powerdown)?". thawAfter is, for a freeze, when guestdeck thaws
// the guests on its own (0: it does not).
func (a Action) Question(n int, thawAfter time.Duration) string {
	if q := a.spec().question; q != nil {
		return q(a, n, thawAfter)
	}
	s := a.spec().Summary
	if s == "" {
		s = a.String()
	}
	return fmt.Sprintf("%s%s on %s?", strings.ToUpper(s[:1]), s[1:], guestCount(n))
}

func guestCount(n int) string { return plural(n, "guest") }

func freezeQuestion(a Action, n int, thawAfter time.Duration) string {
	q := fmt.Sprintf("Freeze %s? Writes block until thawed;", guestCount(n))
	if len(a.Mountpoints) > 0 {
		q = fmt.Sprintf("Freeze %s on %s? Writes there block until thawed;", strings.Join(a.Mountpoints, ", "), guestCount(n))
	}
	if thawAfter <= 0 {
		return q + " guestdeck will not thaw them."
	}
	return q + " guestdeck thaws them after " + shortDuration(thawAfter) + "."
}

func shutdownQuestion(a Action, n int, _ time.Duration) string {
	mode := a.Mode
	if mode == "" {
		mode = "the agent's default"
	}
	switch mode {
	case agentclient.ShutdownReboot:
		return fmt.Sprintf("Reboot %s?", guestCount(n))
	case agentclient.ShutdownHalt:
		return fmt.Sprintf("Halt %s?", guestCount(n))
	}
	return fmt.Sprintf("Shut down %s (%s)?", guestCount(n), mode)
}

func suspendQuestion(a Action, n int, _ time.Duration) string {
	to := map[string]string{agentclient.SuspendDisk: "to disk", agentclient.SuspendRAM: "to RAM", agentclient.SuspendHybrid: "to disk and RAM"}[a.Mode]
	return strings.TrimSpace(fmt.Sprintf("Suspend %s %s?", guestCount(n), to))
}

func vcpusQuestion(a Action, n int, _ time.Duration) string {
	ids := make([]string, len(a.IDs))
	for i, id := range a.IDs {
		ids[i] = fmt.Sprint(id)
	}
	what := "no vCPU"
	if len(ids) == 1 {
		what = "vCPU " + ids[0]
	}
	if len(ids) > 1 {
		what = "vCPUs " + orList(ids)
		what = strings.Replace(what, " or ", " and ", 1)
	}
	if a.Mode == VCPUsOffline {
		return fmt.Sprintf("Take %s offline on %s?", what, guestCount(n))
	}
	return fmt.Sprintf("Bring %s online on %s?", what, guestCount(n))
}

// shortDuration spells d without zero parts: 5m, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// thawSends is what a thaw sends, the action's and the fleet's own (the
// watchdog's, which reads it here and not through the table: the table
// refers to the freeze, which starts the watchdog). The thaw is confirmed
// with the freeze state, where the agent can report it.
func thawSends() []Send {
	return []Send{{Execute: "guest-fsfreeze-thaw"}, {Execute: "guest-fsfreeze-status", optional: true}}
}

// fixedSends sends one command without arguments.
// hostSends is a machine action's one call to the guest's libvirt host;
// its arguments say so wherever the send is shown (dry run, audit log),
// since it is no agent command.
func hostSends(api string) func(Action, time.Time) []Send {
	return func(Action, time.Time) []Send {
		return []Send{{Execute: api, Arguments: map[string]string{"via": "the guest's libvirt host"}, host: true}}
	}
}

func fixedSends(execute string) func(Action, time.Time) []Send {
	return func(Action, time.Time) []Send { return []Send{{Execute: execute}} }
}

func vcpuSends(a Action, _ time.Time) []Send {
	type setVCPU struct {
		LogicalID int  `json:"logical-id"`
		Online    bool `json:"online"`
	}
	vs := make([]setVCPU, len(a.IDs))
	for i, id := range a.IDs {
		vs[i] = setVCPU{id, a.Mode == VCPUsOnline}
	}
	return []Send{{Execute: "guest-set-vcpus", Arguments: map[string]any{"vcpus": vs}}}
}

func readSends(a Action, _ time.Time) []Send {
	return []Send{
		{Execute: "guest-file-open", Arguments: map[string]string{"path": a.Path, "mode": "r"}},
		// The size, where the agent tells it (a bound on the read), and
		// back to the start; an agent that cannot seek is read to the end
		// without.
		{Execute: "guest-file-seek", Arguments: map[string]any{"handle": HandleArg, "offset": 0, "whence": agentclient.SeekEnd}, optional: true},
		{Execute: "guest-file-seek", Arguments: map[string]any{"handle": HandleArg, "offset": 0, "whence": agentclient.SeekSet}, optional: true},
		// Repeated until the end of the file.
		{Execute: "guest-file-read", Arguments: map[string]any{"handle": HandleArg, "count": agentclient.DefaultReadChunk}},
		{Execute: "guest-file-close", Arguments: map[string]string{"handle": HandleArg}},
	}
}
