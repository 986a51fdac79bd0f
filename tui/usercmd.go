package tui

import (
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// User-defined commands, the fleet file's [[commands]] (k9s plugins): a
// name (typed after :), an optional key, and Run, a dashboard command line
// as typed after : that names an action of the action table (with its
// words, or dry-run ACTION) or exec PROGRAM ARGS. Run is never a local
// shell and has nothing interpolated into it: it acts on the marked guests
// (or the one under the cursor) through the same paths as the typed line,
// so read-only mode, capabilities, confirmations, dry runs and the audit
// log apply unchanged.
//
// Danger only ever goes up: Dangerous = true makes a command always ask
// first and refused under read-only, whatever it runs; left out, a command
// is as dangerous as what it runs (the action table says); false on
// something that changes a guest is refused when the file is checked
// (CheckCommands), since a fleet file cannot make freeze harmless.

// Command is one [[commands]] entry.
type Command struct {
	Name        string
	Key         string // "" when it has none
	Run         string
	Description string
	// Dangerous is the file's dangerous = ...; nil when it says nothing.
	Dangerous *bool
}

// CommandError is a [[commands]] entry that cannot be used: Field is the
// key of the entry at fault ("name", "key", "run", "dangerous"), so the
// caller can point at its line in the fleet file.
type CommandError struct {
	Index int
	Field string
	Msg   string
}

func (e *CommandError) Error() string { return e.Msg }

// verbs are the words the : line takes itself; a command may not be named
// after one (runCommandLine would never reach it).
var verbs = []string{"q", "quit", "help", "events", "log", "pulse", "hold", "sort", "exec", "!", dryRunVerb, "audit", "export", "view", "columns", "group"}

// CheckCommands checks the commands against the action table and the
// dashboard's keys (with keys, the [keys] overrides, applied; built-in
// keys included). The first problem is returned as a *CommandError.
func CheckCommands(keys map[string][]string, cmds []Command) error {
	km := DefaultKeyMap()
	if err := km.Apply(keys); err != nil {
		return err // CheckKeys reports it first
	}
	owner := map[string]string{}
	for n, b := range km.byName() {
		for _, k := range b.Keys() {
			owner[k] = n
		}
	}
	seen := map[string]int{}
	for i, c := range cmds {
		bad := func(field, format string, args ...any) error {
			return &CommandError{Index: i, Field: field, Msg: fmt.Sprintf("command %q: ", c.Name) + fmt.Sprintf(format, args...)}
		}
		if slices.Contains(verbs, c.Name) || isActionWord(c.Name) {
			return bad("name", "%q is already a command of the dashboard; choose another name", c.Name)
		}
		if j, dup := seen[c.Name]; dup {
			return bad("name", "the name is used by command %d too", j+1)
		}
		seen[c.Name] = i
		r, err := parseRun(c.Run)
		if err != nil {
			return bad("run", "%v", err)
		}
		if c.Dangerous != nil && !*c.Dangerous && r.mutating() {
			return bad("dangerous", "%s changes the guest, so dangerous = false cannot make it harmless; remove the line (it is then as dangerous as %s) or say true",
				r.what(), r.what())
		}
		if c.Key == "" {
			continue
		}
		if n, taken := owner[c.Key]; taken {
			return bad("key", "key %q is already bound to %s; bind the command to another key (or rebind %s in [keys])", c.Key, n, n)
		}
		if len(c.Key) == 1 && c.Key >= "1" && c.Key <= "9" {
			return bad("key", "key %q picks a detail tab; bind the command to another key", c.Key)
		}
		owner[c.Key] = "command " + c.Name
	}
	return nil
}

// isActionWord reports whether word names an action or an alias of one.
func isActionWord(word string) bool {
	for _, s := range fleet.Specs() {
		if slices.Contains(s.Words(), word) {
			return true
		}
	}
	return false
}

// userRun is a command's Run taken apart.
type userRun struct {
	exec   string // the program line of exec ("" for an action)
	action fleet.Action
	dry    bool
}

func (r userRun) mutating() bool { return r.exec != "" || (!r.dry && actionMutating(r.action)) }

// what names what the command runs: "exec systemctl restart nginx", "freeze".
func (r userRun) what() string {
	if r.exec != "" {
		return "exec " + r.exec
	}
	if r.dry {
		return dryRunVerb + " " + actionString(r.action)
	}
	return actionString(r.action)
}

// parseRun reads a command's Run as the : line would.
func parseRun(run string) (userRun, error) {
	fields := strings.Fields(run)
	if len(fields) == 0 {
		return userRun{}, fmt.Errorf("run is empty; write an action (\"freeze\", \"shutdown reboot\") or exec PROGRAM ARGS")
	}
	switch fields[0] {
	case "exec", "!":
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(run), fields[0]))
		// exec -- PROGRAM, as the command line's exec writes it.
		if r, ok := strings.CutPrefix(rest, "--"); ok && (r == "" || r[0] == ' ' || r[0] == '\t') {
			rest = strings.TrimSpace(r)
		}
		if rest == "" {
			return userRun{}, fmt.Errorf("run: exec needs a program: exec PROGRAM ARGS")
		}
		if _, err := splitCommandLine(rest); err != nil {
			return userRun{}, fmt.Errorf("run: exec: %v", err)
		}
		return userRun{exec: rest}, nil
	}
	r := userRun{}
	if fields[0] == dryRunVerb {
		r.dry, fields = true, fields[1:]
	}
	if len(fields) > 0 && slices.Contains(verbs, fields[0]) {
		return userRun{}, fmt.Errorf("run: %q is not an action on guests; run takes an action (%s) or exec PROGRAM ARGS", fields[0], strings.Join(actionNames(), ", "))
	}
	a, err := parseAction(fields)
	if err != nil {
		return userRun{}, fmt.Errorf("run: %v", err)
	}
	r.action = a
	return r, nil
}

func actionNames() []string {
	var out []string
	for _, s := range fleet.Specs() {
		out = append(out, string(s.Kind))
	}
	return out
}

// dangerous is whether read-only mode refuses the command: it says it is
// dangerous, or what it runs changes a guest.
func (c Command) dangerous(r userRun) bool { return c.alwaysAsks() || r.mutating() }

// alwaysAsks: dangerous = true asks first even where what it runs would
// not (ping, thaw); otherwise it asks as that does (an exec always asks).
func (c Command) alwaysAsks() bool { return c.Dangerous != nil && *c.Dangerous }

// commandNamed is the user command called name.
func (m *Model) commandNamed(name string) (Command, bool) {
	for _, c := range m.opts.Commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// commandForKey is the user command bound to a key press.
func (m *Model) commandForKey(k tea.KeyPressMsg) (Command, bool) {
	for _, c := range m.opts.Commands {
		if c.Key != "" && c.Key == k.String() {
			return c, true
		}
	}
	return Command{}, false
}

// userCommandKey runs the command bound to k, if any.
func (m *Model) userCommandKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	if c, ok := m.commandForKey(k); ok {
		return m.runUserCommand(c), true
	}
	return nil, false
}

// runUserCommand runs c on the marked guests (or the one under the cursor).
func (m *Model) runUserCommand(c Command) tea.Cmd {
	name := present.Text(c.Name, nameCells)
	r, err := parseRun(c.Run)
	if err != nil {
		m.setStatus(err.Error(), true) // CheckCommands refused it before the screen
		return nil
	}
	if m.opts.Readonly && c.dangerous(r) {
		m.setStatus(fmt.Sprintf("read-only: command %s (%s) refused: it is dangerous", name, present.Text(r.what(), 60)), true)
		return nil
	}
	via := &userVia{name: c.Name, run: c.Run}
	switch {
	case r.exec != "":
		if m.opts.Exec == nil {
			m.setStatus("command "+name+": exec is not available in this dashboard", true)
			return nil
		}
		// Always asked: a typed ! line is its own confirmation, a key
		// that runs a program written once in the fleet file is not.
		return m.prepareExecVia(r.exec, via, true)
	case r.dry:
		return m.dryRun(r.action)
	case r.action.NeedsSecret():
		return m.askSecret(r.action) // the password prompt, then its own confirmation
	}
	return m.startActionVia(r.action, via, c.alwaysAsks())
}

// userVia is the user command an action or exec was started by: named in
// its confirmation and recorded in its audit entry.
type userVia struct{ name, run string }

// auditCommand is the audit entry's command: the [[commands]] entry.
func (v *userVia) auditCommand() []string { return []string{"[[commands]]", v.name, v.run} }

// commandCompletions are the : line's completions for the commands
// (read-only mode leaves out the dangerous ones, which it would refuse).
func (m *Model) commandCompletions() []string {
	var out []string
	for _, c := range m.opts.Commands {
		if r, err := parseRun(c.Run); err == nil && !(m.opts.Readonly && c.dangerous(r)) {
			out = append(out, c.Name)
		}
	}
	return out
}

// commandsHelp is the help screen's text of user commands: each as typed
// after :, with its key and description; "" when there are none.
func (m *Model) commandsHelp() string {
	var items []string
	for _, c := range m.opts.Commands {
		it := c.Name
		if c.Key != "" {
			it += " (" + c.Key + ")"
		}
		if c.Description != "" {
			it += " " + c.Description
		}
		if r, err := parseRun(c.Run); err == nil && m.opts.Readonly && c.dangerous(r) {
			it += " [read-only: refused]"
		} else if c.alwaysAsks() {
			it += " [always asks]"
		}
		items = append(items, present.Text(it, 120))
	}
	if len(items) == 0 {
		return ""
	}
	return ": then " + strings.Join(items, ", ")
}

// viaPrefix names the user command in a confirmation: "restart-nginx: ".
func viaPrefix(v *userVia) string {
	if v == nil {
		return ""
	}
	return present.Text(v.name, nameCells) + ": "
}
