package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func TestCheckCommands(t *testing.T) {
	cases := []struct {
		name  string
		keys  map[string][]string
		cmd   Command
		field string // "" when fine
		msg   string
	}{
		{"fine", nil, Command{Name: "pingall", Key: "ctrl+n", Run: "ping"}, "", ""},
		{"exec with --", nil, Command{Name: "nginx", Run: "exec -- systemctl restart nginx", Dangerous: yes()}, "", ""},
		{"dry run", nil, Command{Name: "would-freeze", Run: "dry-run freeze", Dangerous: no()}, "", ""},
		{"harmless may say false", nil, Command{Name: "p", Run: "ping", Dangerous: no()}, "", ""},
		{"built-in key", nil, Command{Name: "x", Key: "F", Run: "ping"}, "key", `key "F" is already bound to freeze`},
		{"key given in [keys]", map[string][]string{"ping": {"x"}}, Command{Name: "c", Key: "x", Run: "ping"}, "key", `key "x" is already bound to ping`},
		{"key freed by [keys]", map[string][]string{"freeze": {"f9"}}, Command{Name: "c", Key: "F", Run: "ping"}, "", ""},
		{"tab digit", nil, Command{Name: "c", Key: "3", Run: "ping"}, "key", "picks a detail tab"},
		{"name is an action", nil, Command{Name: "freeze", Run: "ping"}, "name", "already a command of the dashboard"},
		{"name is an alias", nil, Command{Name: "reboot", Run: "ping"}, "name", "already a command of the dashboard"},
		{"name is a verb", nil, Command{Name: "export", Run: "ping"}, "name", "already a command of the dashboard"},
		{"unknown action", nil, Command{Name: "c", Run: "frobnicate all"}, "run", "run: "},
		{"not an action", nil, Command{Name: "c", Run: "sort cpu"}, "run", `"sort" is not an action on guests`},
		{"exec without program", nil, Command{Name: "c", Run: "exec --"}, "run", "exec needs a program"},
		{"exec bad quoting", nil, Command{Name: "c", Run: "exec sh -c 'x"}, "run", "unterminated"},
		{"false cannot make freeze harmless", nil, Command{Name: "c", Run: "freeze", Dangerous: no()}, "dangerous", "freeze changes the guest, so dangerous = false cannot make it harmless"},
		{"nor exec", nil, Command{Name: "c", Run: "exec uptime", Dangerous: no()}, "dangerous", "exec uptime changes the guest"},
	}
	for _, c := range cases {
		err := CheckCommands(c.keys, []Command{{Name: "first", Run: "ping"}, c.cmd})
		var ce *CommandError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.field == "":
		case !errors.As(err, &ce):
			t.Errorf("%s: %v, want a CommandError on %s", c.name, err, c.field)
		case ce.Index != 1 || ce.Field != c.field || !strings.Contains(ce.Msg, c.msg):
			t.Errorf("%s: %+v, want index 1, field %s, %q", c.name, ce, c.field, c.msg)
		}
	}
	err := CheckCommands(nil, []Command{{Name: "a", Run: "ping", Key: "ctrl+n"}, {Name: "a", Run: "info"}})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Field != "name" || ce.Index != 1 {
		t.Errorf("duplicate name: %v", err)
	}
	err = CheckCommands(nil, []Command{{Name: "a", Run: "ping", Key: "ctrl+n"}, {Name: "b", Run: "info", Key: "ctrl+n"}})
	if !errors.As(err, &ce) || ce.Field != "key" || !strings.Contains(ce.Msg, "command a") {
		t.Errorf("two commands on one key: %v", err)
	}
}

// A command runs its action on the marked guests through the same path as
// the typed line: by key and by :name, listed in help and completion.
func TestUserCommandRuns(t *testing.T) {
	cmds := []Command{
		{Name: "pingall", Key: "ctrl+n", Run: "ping", Description: "ping them"},
		{Name: "careful-ping", Key: "ctrl+p", Run: "ping", Dangerous: yes()},
		{Name: "fzz", Run: "freeze"},
		{Name: "would-thaw", Run: "dry-run thaw"},
		{Name: "unfreeze", Run: "thaw"},
	}
	m, src := newTestModel(6, 120, 30, Options{Commands: cmds})
	m = press(t, m, "down", "space", "space") // vm-00001, vm-00002
	m = press(t, m, "ctrl+n")
	if len(src.runs) != 1 || src.runs[0].action.Kind != fleet.ActPing || strings.Join(src.runs[0].names, ",") != "vm-00001,vm-00002" {
		t.Fatalf("ctrl+n ran %+v", src.runs)
	}
	eq(t, "a harmless command asks nothing", m.openConfirmation() == nil, true)

	// dangerous = true asks first, naming the command, even for ping.
	m = press(t, m, "ctrl+p")
	c := m.openConfirmation()
	if c == nil || len(src.runs) != 1 {
		t.Fatalf("careful-ping did not ask (runs %d)", len(src.runs))
	}
	if v := view(m); !strings.Contains(v, "careful-ping: ") {
		t.Errorf("the confirmation does not name the command:\n%s", v)
	}
	m = press(t, m, "y")
	eq(t, "ran after yes", len(src.runs), 2)

	// Left out, dangerous is what the action says: freeze asks as F does.
	m = enterLine(t, m, "fzz")
	if c := m.openConfirmation(); c == nil || c.action.Kind != fleet.ActFreeze || c.via == nil || c.via.name != "fzz" {
		t.Fatalf("fzz: %+v", c)
	}
	m = press(t, m, "n")
	eq(t, "nothing ran after no", len(src.runs), 2)

	// thaw changes a guest but asks nothing, as T does.
	m = enterLine(t, m, "unfreeze")
	if m.openConfirmation() != nil || len(src.runs) != 3 || src.runs[2].action.Kind != fleet.ActThaw {
		t.Fatalf("unfreeze: runs %+v", src.runs)
	}
	m = press(t, m, "esc")

	// It takes no words: they would be silently dropped.
	m = enterLine(t, m, "unfreeze vm-00003")
	if m.status != `unfreeze: a command of the fleet file takes no words (it runs "thaw" on the marked guests)` || len(src.runs) != 3 {
		t.Errorf("unfreeze with words: %q, runs %d", m.status, len(src.runs))
	}

	// A dry run sends nothing.
	m = enterLine(t, m, "would-thaw")
	eq(t, "dry run: nothing ran", len(src.runs), 3)
	if len(m.events) == 0 || !m.events[0].dry {
		t.Errorf("no dry run in the event log: %+v", m.events)
	}
	m = press(t, m, "esc")

	if comps := m.completions(); !slices.Contains(comps, "pingall") || !slices.Contains(comps, "fzz") {
		t.Errorf("completions lack the commands: %v", comps)
	}
	m = press(t, m, "?")
	v := view(m)
	for _, want := range []string{"Custom", "pingall (ctrl+n) ping them,", "careful-ping (ctrl+p) [always asks]", "fzz,"} {
		if !strings.Contains(v, want) {
			t.Errorf("help lacks %q:\n%s", want, v)
		}
	}
}

// Read-only mode refuses a dangerous command in words, by key and by name,
// and leaves it out of completion; a harmless one still runs.
func TestUserCommandReadonly(t *testing.T) {
	cmds := []Command{
		{Name: "pingall", Key: "ctrl+n", Run: "ping"},
		{Name: "careful-ping", Key: "ctrl+p", Run: "ping", Dangerous: yes()},
		{Name: "fzz", Key: "ctrl+z", Run: "freeze"},
		{Name: "unfreeze", Key: "ctrl+t", Run: "thaw"},
	}
	m, src := newTestModel(4, 120, 30, Options{Commands: cmds, Readonly: true})
	for _, k := range []string{"ctrl+p", "ctrl+z", "ctrl+t"} {
		m = press(t, m, k)
		if !strings.HasPrefix(m.status, "read-only: command ") || !strings.HasSuffix(m.status, "refused: it is dangerous") {
			t.Errorf("%s: status %q", k, m.status)
		}
	}
	m = enterLine(t, m, "fzz")
	if m.status != "read-only: command fzz (freeze) refused: it is dangerous" || m.openConfirmation() != nil {
		t.Errorf(":fzz status %q", m.status)
	}
	eq(t, "nothing dangerous ran", len(src.runs), 0)
	m = press(t, m, "ctrl+n")
	eq(t, "the harmless one ran", len(src.runs), 1)
	comps := m.completions()
	if !slices.Contains(comps, "pingall") || slices.Contains(comps, "fzz") || slices.Contains(comps, "careful-ping") {
		t.Errorf("read-only completions: %v", comps)
	}
	m = press(t, m, "?")
	if v := view(m); !strings.Contains(v, "fzz (ctrl+z) [read-only: refused]") {
		t.Errorf("help:\n%s", v)
	}
}

// A command that runs a program goes through exec, on the simulator: it
// asks first (dangerous), runs, and the audit log records the command.
func TestUserCommandExec(t *testing.T) {
	farm, err := sim.ServeDir(t.TempDir(), 2, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("vm-%05d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { f.Close() })
	for i, s := range farm.Sockets() {
		f.Add(fleet.Target{Name: fmt.Sprintf("vm-%05d", i), Address: "unix:" + s})
	}
	f.RefreshOnce(t.Context(), nil)
	log := audit.Open(t.TempDir())
	run := "exec -- sh -c 'echo restarted; exit 0'"
	m, _ := newTestModel(2, 100, 24, Options{Exec: f.ExecUntil, Audit: log,
		Commands: []Command{{Name: "restart-nginx", Key: "ctrl+n", Run: run}}})
	m = press(t, m, "ctrl+n") // the cursor's guest alone, no dangerous = true: asked all the same
	if p := m.ex.pane; p == nil || !p.confirming {
		t.Fatalf("no confirmation for one guest")
	}
	if v := view(m); !strings.Contains(v, "restart-nginx: Run sh -c 'echo restarted; exit 0' on 1 guest?") {
		t.Errorf("confirmation:\n%s", v)
	}
	next, cmd := m.Update(keyMsg(t, "y"))
	m, _ = settle(t, next.(Model), cmd)
	if p := m.ex.pane; p == nil || p.running || p.results[0].Summary() != "exit 0" || string(p.results[0].Stdout) != "restarted\n" {
		t.Fatalf("results: %+v", m.ex.pane.results)
	}
	es := readAudit(t, log)
	if len(es) != 2 || !slices.Equal(es[0].Command, []string{"[[commands]]", "restart-nginx", run}) || es[0].Action != "exec sh -c 'echo restarted; exit 0'" {
		t.Errorf("audit: %+v", es)
	}
}

// verbs (the names a command may not take) are the words the : line takes
// itself: every word it completes that is not an action is one of them,
// and none of them reads as an unknown action.
func TestVerbsAreTheCommandLines(t *testing.T) {
	m, _ := newTestModel(3, 120, 30, Options{Exec: func(context.Context, context.Context, fleet.ExecSpec, []string, func(fleet.ExecResult)) []fleet.ExecResult {
		return nil
	}})
	for _, c := range m.completions() {
		w := strings.Fields(c)[0]
		if !slices.Contains(verbs, w) && !isActionWord(w) {
			t.Errorf(":%s is completed but is neither an action nor in verbs", c)
		}
	}
	for _, v := range verbs {
		m2 := m
		m2.runCommandLine(v)
		if strings.Contains(m2.status, "unknown action") {
			t.Errorf(":%s reads as an action: %q", v, m2.status)
		}
	}
}
