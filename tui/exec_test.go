package tui

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

// cannedExec is an ExecFunc with fixed results (for golden views): guest
// vm-00001 exits 3 with output on both streams and a hostile line, the
// others print their name.
type cannedExec struct {
	mu    sync.Mutex
	specs []fleet.ExecSpec
	names [][]string
}

func (c *cannedExec) run(ctx, _ context.Context, spec fleet.ExecSpec, names []string, progress func(fleet.ExecResult)) []fleet.ExecResult {
	c.mu.Lock()
	c.specs, c.names = append(c.specs, spec), append(c.names, names)
	c.mu.Unlock()
	out := make([]fleet.ExecResult, len(names))
	for i, n := range names {
		zero, three := 0, 3
		r := fleet.ExecResult{Guest: n, State: fleet.ExecExited, PID: int64(4000 + i), ExitCode: &zero,
			Stdout: []byte("hello from " + n + "\n"), Duration: 12 * time.Millisecond}
		if n == "vm-00001" {
			r.ExitCode = &three
			r.Stdout = []byte("line one\nneedle in line two\x1b]0;OWNED\x07\nline three\n")
			r.Stderr = []byte("warning: \u202eevil\n")
		}
		progress(fleet.ExecResult{Guest: n, State: fleet.ExecRunning, PID: r.PID})
		progress(r)
		out[i] = r
	}
	return out
}

func execModel(t *testing.T, n, w, h int, opts Options) (Model, *cannedExec) {
	t.Helper()
	c := &cannedExec{}
	opts.Exec = c.run
	m, _ := newTestModel(n, w, h, opts)
	return m, c
}

// runExecLine types "!" and line and enter, settling what it starts.
func runExecLine(t *testing.T, m Model, line string) Model {
	t.Helper()
	m = press(t, m, "!")
	m = typeText(t, m, line)
	next, cmd := m.Update(keyMsg(t, "enter"))
	m, _ = settle(t, next.(Model), cmd)
	return m
}

func TestExecPaneFlow(t *testing.T) {
	m, c := execModel(t, 6, 120, 30, Options{})
	m = press(t, m, "space", "space") // vm-00000, vm-00001
	m = runExecLine(t, m, `sh -c 'echo "a b"; exit 3'`)
	p := m.ex.pane
	if p == nil || !p.confirming || m.top().kind != layerExec {
		t.Fatalf("want the confirmation, top %v pane %+v", m.top().kind, p)
	}
	if v := view(m); !strings.Contains(v, `Run sh -c 'echo "a b"; exit 3' on 2 guests?`) || !strings.Contains(v, "vm-00000, vm-00001") {
		t.Errorf("confirmation does not name the program and guests:\n%s", v)
	}
	eq(t, "nothing ran before the confirmation", len(c.specs), 0)
	next, cmd := m.Update(keyMsg(t, "y"))
	m, _ = settle(t, next.(Model), cmd)
	if len(c.specs) != 1 || c.specs[0].Path != "sh" || strings.Join(c.specs[0].Args, "|") != `-c|echo "a b"; exit 3` ||
		strings.Join(c.names[0], ",") != "vm-00000,vm-00001" {
		t.Fatalf("ran %+v on %v", c.specs, c.names)
	}
	p = m.ex.pane
	eq(t, "finished", p.running, false)
	eq(t, "done", p.done, 2)
	eq(t, "status", m.status, "exec: 1 exit 0, 1 failed, 0 skipped")

	// The selected guest's output, escaped; down selects the next guest.
	m = press(t, m, "down")
	v := view(m)
	if !strings.Contains(v, `needle in line two\x1b]0;OWNED\x07`) || !strings.Contains(v, `warning: \u202eevil`) || strings.Contains(v, "\x1b]0;") {
		t.Errorf("output not shown escaped:\n%q", v)
	}
	// Search jumps to the matching line.
	m = press(t, m, "/")
	m = typeText(t, m, "NEEDLE")
	m = press(t, m, "enter")
	eq(t, "scrolled to the match", m.ex.pane.scroll, 1)
	// History: the line comes back with up.
	m = press(t, m, "esc", "!", "up")
	eq(t, "history", m.ex.input.Value(), `sh -c 'echo "a b"; exit 3'`)
	m = press(t, m, "esc")
	eq(t, "closed", m.top().kind, layerTable)

	// One guest: no confirmation. :exec runs the rest of the line.
	m = press(t, m, "esc") // clear marks
	m = enterLine(t, m, "exec uname -a")
	if len(c.specs) != 2 || c.specs[1].Path != "uname" || len(c.names[1]) != 1 {
		t.Errorf("exec on one guest: %+v %v", c.specs, c.names)
	}
}

func TestExecPaneCancelledAndReadonly(t *testing.T) {
	started := make(chan struct{})
	run := func(ctx, _ context.Context, spec fleet.ExecSpec, names []string, progress func(fleet.ExecResult)) []fleet.ExecResult {
		progress(fleet.ExecResult{Guest: names[0], State: fleet.ExecRunning, PID: 77})
		close(started)
		<-ctx.Done()
		return []fleet.ExecResult{{Guest: names[0], State: fleet.ExecStillRunning, PID: 77, Err: "no longer waited for (cancelled), as pid 77 in the guest; guestdeck killed nothing"}}
	}
	m, _ := newTestModel(3, 100, 24, Options{Exec: run})
	m = press(t, m, "!")
	m = typeText(t, m, "sleep 600")
	next, cmd := m.Update(keyMsg(t, "enter"))
	m = next.(Model)
	// The batch is the wait for the run's messages, then the spinner.
	wait := cmd().(tea.BatchMsg)[0]
	next, wait = m.Update(wait())
	m = next.(Model)
	<-started
	if !m.ex.pane.running || m.ex.pane.results[0].State != fleet.ExecRunning {
		t.Fatalf("pane results %+v", m.ex.pane.results)
	}
	if v := view(m); !strings.Contains(v, "0/1 done (esc stops waiting)") || !strings.Contains(v, "running as pid 77") {
		t.Errorf("progress not shown:\n%s", v)
	}
	// ctrl+c stops waiting; it does not quit.
	next, cmd = m.Update(keyMsg(t, "ctrl+c"))
	m = next.(Model)
	eq(t, "ctrl+c quits", cmd == nil, true)
	next, _ = m.Update(wait())
	m = next.(Model)
	p := m.ex.pane
	if p.running || p.results[0].State != fleet.ExecStillRunning || !strings.Contains(m.status, "not killed") {
		t.Errorf("after cancel: %+v status %q", p.results[0], m.status)
	}
	if v := view(m); !strings.Contains(v, "stopped waiting, programs may still run: 0 exit 0, 1 failed") {
		t.Errorf("pane after cancel:\n%s", v)
	}

	ro, _ := newTestModel(3, 100, 24, Options{Exec: run, Readonly: true})
	ro = press(t, ro, "!")
	eq(t, "! under read-only", ro.top().kind, layerTable)
	ro = enterLine(t, ro, "exec ls")
	eq(t, ":exec under read-only", ro.status, "read-only: exec refused")
}

// TestExecPaneSim runs the pane against a real fleet of simulated guests
// (named like the test snapshot's), with the audit log: exit codes in the
// outcome, a guest without exec skipped.
func TestExecPaneSim(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 3, func(i int) sim.Config {
		c := sim.DefaultConfig(fmt.Sprintf("vm-%05d", i))
		c.NoExec = i == 2
		return c
	})
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
	m, _ := newTestModel(3, 100, 24, Options{Exec: f.ExecUntil, Audit: log})
	m = press(t, m, "ctrl+a")
	m = runExecLine(t, m, "sh -c 'echo out; exit 3'")
	next, cmd := m.Update(keyMsg(t, "y"))
	m, _ = settle(t, next.(Model), cmd)
	p := m.ex.pane
	got := []string{}
	for _, r := range p.results {
		got = append(got, r.Guest+"="+r.Summary())
	}
	if want := "vm-00000=exit 3,vm-00001=exit 3,vm-00002=guest-exec is disabled on this guest"; strings.Join(got, ",") != want {
		t.Errorf("results %s, want %s", strings.Join(got, ","), want)
	}
	es := readAudit(t, log)
	if len(es) != 2 || es[0].Phase != audit.Intent || es[1].Phase != audit.Outcome || es[0].Action != "exec sh -c 'echo out; exit 3'" ||
		guestResults(es[1]) != "vm-00000=failed,vm-00001=failed,vm-00002=skipped" || !strings.HasPrefix(es[1].Guests[0].Detail, "exit 3") {
		t.Errorf("audit: %+v", es)
	}
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, "finished in") || !strings.Contains(v, "1 skipped") {
		t.Errorf("pane:\n%s", v)
	}
}

func TestSplitCommandLine(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{`uname -a`, `uname|-a`, ""},
		{`sh -c 'echo "x y"; exit 3'`, `sh|-c|echo "x y"; exit 3`, ""},
		{`echo "a \"b\" \\c" d\ e`, `echo|a "b" \c|d e`, ""},
		{`echo 'open`, "", "unterminated ' quote"},
		{`   `, "", "no program"},
	}
	for _, c := range cases {
		got, err := splitCommandLine(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: err %v, want %s", c.in, err, c.err)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != c.want {
			t.Errorf("%q: %q %v, want %s", c.in, got, err, c.want)
		}
	}
}

// TestExecGolden: the confirmation and the results pane (the guest that
// exited 3 selected: its output escaped, stderr under a rule).
func TestExecGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		keys []string
	}{
		{"exec_confirm", nil},
		{"exec_pane", []string{"y", "down"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := execModel(t, 6, 100, 24, Options{})
			m = press(t, m, "space", "space", "space")
			m = runExecLine(t, m, "sh -c 'cat /etc/motd; exit 3'")
			for _, k := range tt.keys {
				next, cmd := m.Update(keyMsg(t, k))
				m, _ = settle(t, next.(Model), cmd)
			}
			got := view(m)
			for i, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if w := ansi.StringWidth(l); w > 100 {
					t.Errorf("line %d is %d wide", i, w)
				}
			}
			golden(t, tt.name, got)
		})
	}
}
