package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// e2eStartClip is e2eStart with XDG_STATE_HOME in a directory of the
// test's (so the audit log is its own), and a tmux that takes the program's
// OSC 52 into its paste buffer (set-clipboard on). It returns the directory.
func e2eStartClip(t *testing.T, args ...string) (*e2eTerm, string) {
	t.Helper()
	dir := t.TempDir()
	tt := e2eStartEnv(t, []string{"XDG_STATE_HOME=" + filepath.Join(dir, "state")}, args...)
	tt.tmux("set-option", "-s", "set-clipboard", "on")
	return tt, dir
}

// buffer is tmux's newest paste buffer, "" when there is none.
func (tt *e2eTerm) buffer() string {
	out, err := exec.Command("tmux", "-L", tt.server, "show-buffer").CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// waitBuffer waits until tmux's paste buffer holds want.
func (tt *e2eTerm) waitBuffer(want string) {
	tt.t.Helper()
	wait.For(tt.t, e2eWait, func() (bool, string) {
		got := tt.buffer()
		return got == want, fmt.Sprintf("tmux buffer is %q, want %q\n%s", got, want, tt.screen())
	})
}

// TestDashboardE2ECopy: in a real terminal (tmux), y copies a guest's name,
// addresses and whole error through OSC 52 into tmux's paste buffer, and
// the status line says what was copied; :export csv writes the filtered
// rows; a thaw is then in the audit pane (A).
func TestDashboardE2ECopy(t *testing.T) {
	tt, home := e2eStartClip(t, "--demo")
	tt.waitText("guestdeck 40 guests", " ready ")

	tt.keys("/")
	tt.text("ci-01")
	tt.keys("Enter")
	tt.waitText(`filter "ci-01": 1 shown`, "─ ci-01")

	tt.keys("y")
	tt.waitText("copy ci-01: n name · a addresses · e error · l detail line · esc cancels")
	tt.keys("n")
	tt.waitBuffer("ci-01")
	tt.waitText("copied ci-01's name (5 bytes): ci-01")

	// ci-01 is silent (once its agent's first answer is overdue): its
	// error is longer than the ERROR cell; the whole of it is copied.
	tt.waitText("State        silent", "Error        connect:")
	tt.keys("y", "e")
	s := tt.waitText("copied ci-01's error")
	var errText string
	wait.For(t, e2eWait, func() (bool, string) {
		errText = tt.buffer()
		return errText != "ci-01" && errText != "", "no error in the buffer:\n" + tt.screen()
	})
	if len(errText) < 40 || strings.ContainsAny(errText, "\x1b\n") {
		t.Errorf("the copied error is %q", errText)
	}
	if !strings.Contains(s, errText[:30]) {
		t.Errorf("the status line does not show the copied text %q:\n%s", errText, s)
	}

	// Addresses of a ready guest: exactly the addresses, space-separated.
	tt.keys("/")
	tt.keys("C-u")
	tt.text("cache-03")
	tt.keys("Enter")
	tt.waitText(`filter "cache-03": 1 shown`, "─ cache-03")
	tt.keys("y", "a")
	s = tt.waitText("copied cache-03's addresses")
	var addrs string
	wait.For(t, e2eWait, func() (bool, string) {
		addrs = tt.buffer()
		return regexp.MustCompile(`^[0-9a-f.:]+( [0-9a-f.:]+)*$`).MatchString(addrs), fmt.Sprintf("buffer %q is not addresses:\n%s", addrs, tt.screen())
	})
	if first := strings.Fields(addrs)[0]; !strings.Contains(s, first) {
		t.Errorf("the first copied address %s is not on screen:\n%s", first, s)
	}

	// Export what the filter shows.
	csvPath := filepath.Join(home, "fleet.csv")
	tt.keys(":")
	tt.text("export csv " + csvPath)
	tt.keys("Enter")
	tt.waitText("exported 1 guest (csv, ")
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 2 || recs[0][0] != "NAME" || recs[1][0] != "cache-03" {
		t.Errorf("csv %q %v", recs, err)
	}

	// A thaw (mutating, audited, no confirmation) shows in the audit pane:
	// the demo's own log, not the operator's in the state directory (the
	// demo's guests die with it).
	tt.keys("T")
	tt.waitText("thaw: 1 ok")
	tt.keys("A")
	s = tt.waitText("2 entries, newest first", "outcome  dashboard thaw", "cache-03: 1 ok")
	demoLog := regexp.MustCompile(`Audit log (\S*/guestdeck-demo-[0-9]+/audit\.jsonl)`).FindStringSubmatch(s)
	if demoLog == nil {
		t.Errorf("the audit pane is not the demo's own log:\n%s", s)
	}
	tt.keys("Enter")
	tt.waitText("entry 1 of 2", "Phase        outcome", "cache-03  ok")
	tt.keys("Escape")
	tt.keys("Escape")
	tt.waitText(`filter "cache-03": 1 shown`)
	tt.keys("q")
	tt.waitText("guestdeck-exited")
	if b, _ := os.ReadFile(tt.exitFile); strings.TrimSpace(string(b)) != "EXIT=0" {
		t.Errorf("exit: %q", b)
	}
	if _, err := os.Stat(filepath.Join(home, "state", "guestdeck", "audit.jsonl")); !os.IsNotExist(err) {
		t.Errorf("the demo's actions are in the operator's audit log: %v", err)
	}
	if demoLog != nil {
		if _, err := os.Stat(filepath.Dir(demoLog[1])); !os.IsNotExist(err) {
			t.Errorf("the demo's state directory %s outlived it: %v", filepath.Dir(demoLog[1]), err)
		}
	}
}

// A [[commands]] entry whose key is a built-in one is refused at start
// with the line of the key, by the fleet file's checks (no terminal needed
// to see it is the same error; the dashboard prints it before the screen).
func TestDashboardCommandsChecked(t *testing.T) {
	src := `[[guest]]
name = "g"
address = "unix:/nonexistent/g.sock"

[[commands]]
name = "bad"
key = "F"
run = "ping"

[[commands]]
name = "freeze-now"
run = "freeze"
dangerous = false
`
	for _, c := range []struct {
		name, src, want string
	}{
		{"built-in key", src, `f.toml:7:7: command "bad": key "F" is already bound to freeze`},
		{"false on freeze", strings.Replace(src, `key = "F"`, `key = "ctrl+b"`, 1), `f.toml:7:7: command "bad": key "ctrl+b" is already bound to page_up`},
		{"dangerous false", strings.Replace(src, `key = "F"`, `key = "ctrl+n"`, 1), `f.toml:13:13: command "freeze-now": freeze changes the guest, so dangerous = false cannot make it harmless`},
		{"rebound freeze frees F", strings.Replace(src, "[[guest]]", "[keys]\nfreeze = \"f9\"\n\n[[guest]]", 1) + "", `f.toml:16:13: command "freeze-now": freeze changes the guest`},
	} {
		cfg, err := config.Parse("f.toml", []byte(c.src))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err = dashboardCommands(cfg, cfg.Keys)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s…", c.name, err, c.want)
		}
	}
	cfg, err := config.Parse("f.toml", []byte(strings.Replace(strings.Replace(src, `key = "F"`, `key = "ctrl+n"`, 1), "dangerous = false", "dangerous = true", 1)))
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := dashboardCommands(cfg, cfg.Keys)
	if err != nil || len(cmds) != 2 || cmds[1].Name != "freeze-now" || cmds[1].Dangerous == nil || !*cmds[1].Dangerous {
		t.Errorf("good file: %+v %v", cmds, err)
	}
	// The example fleet file's commands are usable as they stand.
	ex, err := config.Load(filepath.Join("..", "..", "examples", "fleet.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cmds, err := dashboardCommands(ex, ex.Keys); err != nil || len(cmds) == 0 {
		t.Errorf("examples/fleet.toml: %d commands, %v", len(cmds), err)
	}
}

// TestDashboardE2EUserCommand: a [[commands]] entry in a real terminal, on
// simulated guests: its key runs exec on the marked guests after asking
// (dangerous = true), the audit pane records the command, read-only mode
// refuses it in words, and a command on a built-in key stops the dashboard
// at start with the line of the key.
func TestDashboardE2EUserCommand(t *testing.T) {
	dir := t.TempDir()
	farm, err := sim.ServeDir(dir, 2, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("web-%d", i+1)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	var b strings.Builder
	for i, s := range farm.Sockets() {
		fmt.Fprintf(&b, "[[guest]]\nname = \"web-%d\"\naddress = \"unix:%s\"\n\n", i+1, s)
	}
	b.WriteString("[[commands]]\nname = \"greet\"\nkey = \"ctrl+n\"\nrun = \"exec -- echo hello\"\ndangerous = true\ndescription = \"say hello\"\n")
	cfg := filepath.Join(dir, "fleet.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	tt, _ := e2eStartClip(t, "-c", cfg)
	tt.waitFor("both guests ready", func(s string) bool {
		n := 0
		for _, r := range e2eRows(s) {
			if strings.Contains(r.text, " ready ") {
				n++
			}
		}
		return n == 2
	})
	tt.keys("C-a")
	tt.waitText("2 marked")
	tt.keys("C-n")
	tt.waitText("greet: Run echo hello on 2 guests?")
	tt.keys("y")
	tt.waitText("2 exit 0, 0 failed, 0 skipped", "hello")
	tt.keys("Escape")
	tt.keys("A")
	tt.waitText("outcome  dashboard exec echo hello  web-1, web-2: 2 ok")
	tt.keys("Enter")
	tt.waitText("Command      '[[commands]]' greet 'exec -- echo hello'")
	tt.keys("Escape")
	tt.keys("Escape")
	tt.keys("?")
	tt.waitText("Custom", "greet (ctrl+n) say hello [always asks]")
	tt.keys("Escape")
	tt.keys("q")
	tt.waitText("guestdeck-exited")

	// Read-only: the key says it is refused, nothing asks or runs.
	ro, _ := e2eStartClip(t, "--readonly", "-c", cfg)
	ro.waitText("READ-ONLY", " ready ")
	ro.keys("C-n")
	ro.waitText("read-only: command greet (exec echo hello) refused: it is dangerous")
	ro.keys("q")
	ro.waitText("guestdeck-exited")

	// A command on freeze's key never gets a screen.
	bad := strings.Replace(b.String(), `key = "ctrl+n"`, `key = "F"`, 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	line := strings.Count(bad[:strings.Index(bad, `key = "F"`)], "\n") + 1
	st, _ := e2eStartClip(t, "-c", cfg)
	st.waitText(fmt.Sprintf(`%s:%d:7: command "greet": key "F" is already bound to freeze`, cfg, line), "guestdeck-exited")
	wait.For(t, e2eWait, func() (bool, string) {
		b, _ := os.ReadFile(st.exitFile)
		return strings.TrimSpace(string(b)) == "EXIT=2", fmt.Sprintf("exit file %q", b)
	})
}
