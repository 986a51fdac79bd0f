package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Command is a user-defined dashboard command from [[commands]] (k9s's
// plugins): Run is a dashboard command line as typed after ':' (an action
// such as "freeze" or "shutdown reboot", "dry-run ACTION", or "exec
// PROGRAM ARGS"), run on the marked guests or the one under the cursor.
// It is never given to a local shell.
//
// This package checks the shape (names, key names, clashes within the
// file); whether Run parses, what it does and whether Key clashes with a
// built-in key is for the dashboard to say (tui.CheckCommands): the action
// table and the built-in keys live there. The *At positions let the caller
// report that at the right line (File.ErrorAt).
type Command struct {
	Name        string
	Key         string // "" when none
	Run         string
	Description string
	// Dangerous is nil when the file does not say: the command is then as
	// dangerous as what it runs.
	Dangerous *bool

	At, NameAt, KeyAt, RunAt, DangerousAt Position
}

// Position is a place in the fleet file, 1-based; zero when unknown.
type Position struct{ Line, Col int }

// ErrorAt is a fleet-file error at p, for problems found after Parse.
func (f *File) ErrorAt(p Position, msg string) error {
	return &Error{Path: f.Path, Line: p.Line, Col: p.Col, Msg: msg}
}

var commandKeys = []string{"name", "key", "run", "dangerous", "description"}

// maxCommands bounds [[commands]]: each is a help line and a completion.
const maxCommands = 200

func (d *decoder) command(t map[string]any, segs ...string) Command {
	where := entry("commands", t)
	before := len(d.errs)
	c := Command{At: Position(d.keyAt(segs...))}
	for _, k := range d.ordered(t, segs) {
		v, at := t[k], join(segs, k)
		switch k {
		case "name":
			c.NameAt = Position(d.valAt(at...))
			if s, ok := d.str(v, k, where, at); ok && d.name(s, where, at) {
				c.Name = s
			}
		case "key":
			c.KeyAt = Position(d.valAt(at...))
			if s, ok := d.str(v, k, where, at); ok {
				if problem, hint := checkKeyName(s); problem != "" {
					d.errf(d.valAt(at...), "%s for %s; %s", problem, where, hint)
				} else {
					c.Key = s
				}
			}
		case "run":
			c.RunAt = Position(d.valAt(at...))
			if s, ok := d.str(v, k, where, at); ok {
				if strings.TrimSpace(s) == "" {
					d.errf(d.valAt(at...), "run in %s is empty; write what to type after ':', e.g. run = \"freeze\" or \"exec -- systemctl restart nginx\"", where)
				} else if strings.ContainsAny(s, "\n\r") {
					d.errf(d.valAt(at...), "run in %s must be one line", where)
				}
				c.Run = s
			}
		case "dangerous":
			c.DangerousAt = Position(d.valAt(at...))
			if b, ok := v.(bool); ok {
				c.Dangerous = &b
			} else {
				d.errf(d.valAt(at...), "dangerous in %s must be true or false, got %s", where, describe(v))
			}
		case "description":
			if s, ok := d.str(v, k, where, at); ok {
				c.Description = s
			}
		default:
			d.unknown(k, where, commandKeys, at...)
		}
	}
	if len(d.errs) > before {
		return c
	}
	start := d.keyAt(segs...)
	if _, ok := t["name"]; !ok {
		d.errf(start, "%s has no name; add name = \"...\" (what you type after ':')", where)
	}
	if _, ok := t["run"]; !ok {
		d.errf(start, "%s has no run; add e.g. run = \"exec -- systemctl restart nginx\"", where)
	}
	return c
}

// commandClashes reports two commands with one name or one key, and a
// command key that [keys] gives an action or a [[views]] entry switches to. Keys the dashboard binds by
// default are checked by the dashboard (tui.CheckCommands).
func (d *decoder) commandClashes(f *File) {
	if len(f.Commands) > maxCommands {
		d.errf(pos(f.Commands[maxCommands].At), "more than %d [[commands]]", maxCommands)
	}
	byName := map[string]int{}
	byKey := map[string]int{}
	actions := make([]string, 0, len(f.Keys))
	for a := range f.Keys {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	for i, c := range f.Commands {
		if j, ok := byName[c.Name]; ok && c.Name != "" {
			d.errf(pos(c.NameAt), "duplicate command name %q: already used by the [[commands]] at line %d", c.Name, f.Commands[j].NameAt.Line)
		} else {
			byName[c.Name] = i
		}
		if c.Key == "" {
			continue
		}
		if j, ok := byKey[c.Key]; ok {
			d.errf(pos(c.KeyAt), "key %q is bound to both command %q (line %d) and command %q; give each its own key",
				c.Key, f.Commands[j].Name, f.Commands[j].KeyAt.Line, c.Name)
			continue
		}
		byKey[c.Key] = i
		for _, v := range f.Views {
			if v.Key == c.Key {
				d.errf(pos(c.KeyAt), "key %q of command %q is the key of [[views]] %q; give the command another key", c.Key, c.Name, v.Name)
			}
		}
		for _, a := range actions {
			for _, k := range f.Keys[a] {
				if k == c.Key {
					d.errf(pos(c.KeyAt), "key %q of command %q is bound to %s in [keys]; give the command another key", c.Key, c.Name, a)
				}
			}
		}
	}
}

// commandsAt decodes the [[commands]] array (segs: "commands").
func (d *decoder) commands(v any, key string) []Command {
	var out []Command
	for i, t := range d.tables(v, key) {
		out = append(out, d.command(t, key, strconv.Itoa(i)))
	}
	return out
}

// String names a command in messages: [[commands]] "restart-nginx".
func (c Command) String() string { return fmt.Sprintf("[[commands]] %q", c.Name) }
