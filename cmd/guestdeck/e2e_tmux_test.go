package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
	"github.com/guestdeck/guestdeck/tui"
)

// TestKeyActionsMatchTUI: the fleet file's [keys] accepts exactly the action
// names the dashboard binds, so every key can be rebound and no name is
// accepted that does nothing.
func TestKeyActionsMatchTUI(t *testing.T) {
	cfg := slices.Sorted(slices.Values(config.KeyActions))
	ui := tui.KeyActions()
	if len(slices.Compact(slices.Clone(cfg))) != len(cfg) {
		t.Errorf("config.KeyActions lists a name twice: %v", cfg)
	}
	for _, n := range ui {
		if !slices.Contains(cfg, n) {
			t.Errorf("the tui binds %q but config.KeyActions does not accept it", n)
		}
	}
	for _, n := range cfg {
		if !slices.Contains(ui, n) {
			t.Errorf("config.KeyActions accepts %q but the tui binds no such action", n)
		}
	}
	// Every name config accepts is one the tui applies without error.
	over := map[string][]string{}
	for i, n := range cfg {
		over[n] = []string{fmt.Sprintf("f%d", i+1)}
	}
	if err := tui.CheckKeys(over); err != nil {
		t.Errorf("tui.CheckKeys rejects config's actions: %v", err)
	}
}

// e2eWait bounds every wait for the screen: generous, since the machine may
// be a loaded 2-core box; polling makes it fast when things are fine.
const e2eWait = 60 * time.Second

// e2eTerm is the real guestdeck binary running in a terminal of its own: a
// private tmux server, killed when the test ends.
type e2eTerm struct {
	t        *testing.T
	server   string // tmux -L name
	exitFile string // the shell writes EXIT=<status> here when guestdeck ends
}

// e2eStart runs `guestdeck args...` in a 140x40 tmux pane with HOME and
// XDG_CONFIG_HOME pointing at an empty directory. When guestdeck exits the
// pane's shell records its status, prints a marker and starts an
// interactive shell, so the test can look at the terminal it left behind.
func e2eStart(t *testing.T, args ...string) *e2eTerm {
	t.Helper()
	return e2eStartEnv(t, nil, args...)
}

// e2eStartEnv is e2eStart with more environment (NAME=value) for guestdeck
// and the shell left behind.
func e2eStartEnv(t *testing.T, env []string, args ...string) *e2eTerm {
	t.Helper()
	testpeers.Require(t, testpeers.NeedTmux)
	home := t.TempDir()
	tt := &e2eTerm{
		t: t,
		// The time too: under -count=N a test's previous server may still
		// be going away when the next run starts one by the same name.
		server: fmt.Sprintf("gde2e%d-%s-%d", os.Getpid(), regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"),
			time.Now().UnixNano()),
		exitFile: filepath.Join(home, "exit"),
	}
	quoted := []string{e2eQuote(binary)}
	for _, a := range args {
		quoted = append(quoted, e2eQuote(a))
	}
	script := fmt.Sprintf("%s; echo EXIT=$? > %s; echo guestdeck-exited; PS1='gd$ ' exec sh -i",
		strings.Join(quoted, " "), e2eQuote(tt.exitFile))
	// -f /dev/null: no tmux.conf of the developer's changes the terminal.
	tt.tmux(slices.Concat([]string{"-f", "/dev/null", "new-session", "-d", "-s", "gd", "-x", "140", "-y", "40",
		"env", "HOME=" + home, "XDG_CONFIG_HOME=" + home, "NO_COLOR=1"}, env, []string{"sh", "-c", script})...)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", tt.server, "kill-server").Run() })
	return tt
}

func e2eQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (tt *e2eTerm) tmux(args ...string) string {
	tt.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tt.server}, args...)...).CombinedOutput()
	if err != nil {
		tt.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (tt *e2eTerm) screen() string { return tt.tmux("capture-pane", "-p", "-t", "gd") }

// display reads one tmux format for the pane, e.g. #{alternate_on}.
func (tt *e2eTerm) display(format string) string {
	tt.t.Helper()
	return strings.TrimSpace(tt.tmux("display-message", "-p", "-t", "gd", format))
}

// keys types keys; a short pause lets esc-prefixed sequences settle.
func (tt *e2eTerm) keys(k ...string) {
	tt.t.Helper()
	tt.tmux(append([]string{"send-keys", "-t", "gd"}, k...)...)
	time.Sleep(100 * time.Millisecond)
}

// text types s literally.
func (tt *e2eTerm) text(s string) { tt.t.Helper(); tt.keys("-l", s) }

// waitFor polls the screen until ok accepts it.
func (tt *e2eTerm) waitFor(what string, ok func(screen string) bool) string {
	tt.t.Helper()
	var s string
	wait.For(tt.t, e2eWait, func() (bool, string) {
		s = tt.screen()
		return ok(s), fmt.Sprintf("the screen does not show %s:\n%s", what, s)
	})
	return s
}

func (tt *e2eTerm) waitText(want ...string) string {
	tt.t.Helper()
	return tt.waitFor(fmt.Sprintf("%q", want), func(s string) bool {
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
}

// e2eRow is one table row as drawn: mark cell, action status cell, the row text.
type e2eRow struct {
	mark, status rune
	name, text   string
}

// e2eRows parses the fleet table's rows off a screen: from the header line
// to the first empty line or the detail pane's tab bar.
func e2eRows(screen string) []e2eRow {
	var rows []e2eRow
	in := false
	for _, line := range strings.Split(screen, "\n") {
		if !in {
			in = strings.HasPrefix(strings.TrimSpace(line), "NAME")
			continue
		}
		r := []rune(line)
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "1 Overview") || len(r) < 4 {
			break
		}
		f := strings.Fields(string(r[3:]))
		if len(f) == 0 {
			break
		}
		rows = append(rows, e2eRow{mark: r[0], status: r[1], name: f[0], text: string(r[3:])})
	}
	return rows
}

func e2eNames(rows []e2eRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.name
	}
	return out
}

// e2eCase is one dashboard session to drive.
type e2eCase struct {
	args   []string
	total  int      // guests in the fleet
	ready  []string // guests that must show up ready (on the first screen)
	filter string   // typed after /
	shown  []string // exactly the rows the filter leaves, in name order
	path   string   // file opened in the browser on the guest under the cursor
	file   []string // lines of it that must be on screen
}

// e2eDashboard drives one session of the real binary: the guests show up
// ready; a filter leaves only matching rows; two guests are marked with space
// (the cursor moving on); ping reports on exactly those two, in the table and
// in the event log; the file browser opens a file from the guest under the
// cursor; q quits with status 0 and leaves the terminal as it found it.
func e2eDashboard(t *testing.T, c e2eCase) {
	tt := e2eStart(t, c.args...)
	start := time.Now()
	title := fmt.Sprintf("guestdeck %d guests", c.total)

	tt.waitFor(fmt.Sprintf("%s with %v ready", title, c.ready), func(s string) bool {
		if !strings.Contains(s, title) {
			return false
		}
		ready := map[string]bool{}
		for _, r := range e2eRows(s) {
			ready[r.name] = strings.Contains(r.text, " ready ")
		}
		for _, n := range c.ready {
			if !ready[n] {
				return false
			}
		}
		return true
	})
	if got := tt.display("#{alternate_on}"); got != "1" {
		t.Errorf("while the dashboard runs alternate_on = %q, want 1", got)
	}
	t.Logf("%d guests ready after %v", len(c.ready), time.Since(start).Round(time.Millisecond))

	// Filter.
	tt.keys("/")
	tt.text(c.filter)
	tt.keys("Enter")
	s := tt.waitText(fmt.Sprintf("filter %q: %d shown", c.filter, len(c.shown)))
	if got := e2eNames(e2eRows(s)); !slices.Equal(got, c.shown) {
		t.Fatalf("filter %q left rows %v, want %v:\n%s", c.filter, got, c.shown, s)
	}

	// Mark two guests: space marks and moves the cursor down.
	tt.keys("g") // first row
	tt.waitText("─ " + c.shown[0])
	tt.keys("Space")
	tt.waitText("1 marked", "─ "+c.shown[1])
	tt.keys("Space")
	cursor := c.shown[min(2, len(c.shown)-1)]
	s = tt.waitText("2 marked", "─ "+cursor)
	marked := c.shown[:2]
	for _, r := range e2eRows(s) {
		if want := slices.Contains(marked, r.name); (r.mark == '●') != want {
			t.Errorf("row %s: mark %q, want marked %v:\n%s", r.name, r.mark, want, s)
		}
	}

	// A read-only action on the marked guests.
	tt.keys("p")
	s = tt.waitText("ping: 2 ok, 0 failed, 0 skipped")
	for _, r := range e2eRows(s) {
		if want := slices.Contains(marked, r.name); (r.status == '✓') != want || !want && r.status != ' ' {
			t.Errorf("after ping row %s shows status %q (marked %v):\n%s", r.name, r.status, want, s)
		}
	}
	tt.keys("e")
	s = tt.waitText("Event log", "ping  2 ok, 0 failed, 0 skipped")
	for _, n := range c.shown {
		// Names are padded to the longest of the action's.
		line := regexp.MustCompile(`(?m)^  ✓ ` + regexp.QuoteMeta(n) + `  +pong`)
		if want := slices.Contains(marked, n); line.MatchString(s) != want {
			t.Errorf("event log: ping result for %s shown %v, want %v:\n%s", n, !want, want, s)
		}
	}
	tt.keys("Escape")
	tt.waitFor("the table again", func(s string) bool { return !strings.Contains(s, "Event log") && strings.Contains(s, "NAME↑") })

	// The file browser, on the guest under the cursor.
	tt.keys("f")
	s = tt.waitText("Files · " + cursor)
	if !strings.Contains(s, "open: ") {
		// Where the agent allows guest-exec the browser lists /; o opens the
		// path prompt. Elsewhere it opens with the prompt.
		tt.waitText("entries")
		tt.keys("o")
		tt.waitText("open: ")
	}
	tt.keys("C-u")
	tt.text(c.path)
	tt.keys("Enter")
	tt.waitText(append([]string{"Files · " + cursor + " · " + c.path}, c.file...)...)
	// Viewer, path prompt, listing: esc steps back one at a time. Each esc
	// waits for the last one's effect, as a stray esc would clear the marks.
	for i := 0; ; i++ {
		before := tt.screen()
		if strings.Contains(before, title) {
			break
		}
		if i == 4 {
			t.Fatalf("esc did not leave the file browser:\n%s", before)
		}
		tt.keys("Escape")
		tt.waitFor("the browser stepping back after esc", func(s string) bool { return s != before })
	}
	tt.waitText(title, "2 marked")

	// Quit: exit status 0, and the terminal is back to the shell.
	tt.keys("q")
	var exit []byte
	wait.For(t, e2eWait, func() (bool, string) {
		exit, _ = os.ReadFile(tt.exitFile)
		return len(exit) > 0, "guestdeck has not exited after q:\n" + tt.screen()
	})
	if got := strings.TrimSpace(string(exit)); got != "EXIT=0" {
		t.Errorf("guestdeck exited with %s, want EXIT=0:\n%s", got, tt.screen())
	}
	// capture-pane drops trailing blanks: the prompt is "gd$" at a line start.
	s = tt.waitFor("the shell's prompt after guestdeck-exited", func(s string) bool {
		return regexp.MustCompile(`guestdeck-exited\n(?:.*\n)*gd\$`).MatchString(s)
	})
	if strings.Contains(s, title) || strings.Contains(s, "polling") {
		t.Errorf("the dashboard is still on screen after exit:\n%s", s)
	}
	for format, want := range map[string]string{
		"#{alternate_on}":        "0", // left the alternate screen
		"#{cursor_flag}":         "1", // cursor visible
		"#{mouse_any_flag}":      "0", // mouse reporting off
		"#{mouse_button_flag}":   "0",
		"#{mouse_standard_flag}": "0",
		"#{mouse_sgr_flag}":      "0",
	} {
		if got := tt.display(format); got != want {
			t.Errorf("after exit %s = %q, want %s", format, got, want)
		}
	}
	// The line discipline is back too: what is typed is echoed, and enter
	// ends a line the shell runs.
	tt.text("echo typed-$((40+2))")
	tt.keys("Enter")
	tt.waitFor("the shell running a typed line", func(s string) bool {
		return strings.Contains(s, "gd$ echo typed-$((40+2))") && regexp.MustCompile(`(?m)^typed-42\s*$`).MatchString(s)
	})
	t.Logf("session done in %v", time.Since(start).Round(time.Millisecond))
}

// TestDashboardE2EDemo drives the real binary on the built-in demo fleet,
// with no fleet file anywhere.
func TestDashboardE2EDemo(t *testing.T) {
	e2eDashboard(t, e2eCase{
		args:   []string{"--demo"},
		total:  40,
		ready:  []string{"cache-01", "cache-02", "cache-03", "cache-04", "cache-05", "cache-06"},
		filter: "cache",
		shown:  []string{"cache-01", "cache-02", "cache-03", "cache-04", "cache-05", "cache-06"},
		path:   "/etc/os-release",
		// cache-03's agent reports Ubuntu 24.04; its os-release agrees.
		file: []string{`PRETTY_NAME="Ubuntu 24.04.1 LTS"`, `VERSION_ID="24.04"`, `ID="ubuntu"`},
	})
}

// TestDashboardE2ERealAgents drives the real binary on three real qemu-ga
// processes. They run on this machine: only read-only commands reach them
// (ping, info, file reads; the file read is one the test wrote).
func TestDashboardE2ERealAgents(t *testing.T) {
	ag := testpeers.StartAgents(t, 3)
	lines := []string{"guestdeck e2e: read through a real qemu-ga", "second line of it"}
	path := filepath.Join(ag.Writable, "e2e.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	names := []string{"alpha-1", "alpha-2", "beta-1"}
	var b strings.Builder
	for i, n := range names {
		fmt.Fprintf(&b, "[[guest]]\nname = %q\naddress = %q\n\n", n, ag.Addrs()[i])
	}
	cfg := filepath.Join(t.TempDir(), "fleet.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	e2eDashboard(t, e2eCase{
		args:   []string{"-c", cfg},
		total:  3,
		ready:  names,
		filter: "alpha",
		shown:  []string{"alpha-1", "alpha-2"},
		path:   path,
		file:   lines,
	})
}

// TestCLIJSONInTerminal runs the command lines issue 14 found broken in a
// real terminal (tmux), where stderr's progress shares the screen with the
// JSON: `run ping all --json` (a flag after the selectors) and `status -c F
// --json` (a global flag after the command). What the screen shows must be
// exactly one JSON array, one object per guest, and the exit 0.
func TestCLIJSONInTerminal(t *testing.T) {
	_, cfg := simFarm(t, 3)
	tests := []struct {
		name  string
		args  []string
		check func(obj map[string]any) string
	}{
		{"run ping all --json", []string{"-c", cfg, "run", "ping", "all", "--json"}, func(o map[string]any) string {
			if rtt, _ := o["rtt_ns"].(float64); o["ok"] != true || rtt <= 0 {
				return "want ok and rtt_ns > 0"
			}
			return ""
		}},
		{"status -c F --json", []string{"status", "-c", cfg, "--json"}, func(o map[string]any) string {
			if o["state"] != "ready" || o["agent_version"] == "" {
				return "want ready with an agent version"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := e2eStart(t, tc.args...)
			tt.waitText("guestdeck-exited")
			if b, err := os.ReadFile(tt.exitFile); err != nil || strings.TrimSpace(string(b)) != "EXIT=0" {
				t.Fatalf("exit: %q %v", b, err)
			}
			// The whole pane, scrollback included, wrapped lines joined.
			all := tt.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "gd")
			out, _, ok := strings.Cut(all, "guestdeck-exited")
			if !ok {
				t.Fatalf("no end marker:\n%s", all)
			}
			var objs []map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &objs); err != nil {
				t.Fatalf("the terminal shows no JSON array (%v):\n%s", err, out)
			}
			if len(objs) != 3 {
				t.Fatalf("%d objects, want one per guest:\n%s", len(objs), out)
			}
			for _, o := range objs {
				if why := tc.check(o); why != "" {
					t.Errorf("%v: %s", o["name"], why)
				}
			}
		})
	}
}
