package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet/audit"
)

// TestDemoLeavesTheRealStateAlone: an action on the demo's guests (they
// are simulated by the process and die with it) is audited in the demo's
// own log, never in the operator's under $XDG_STATE_HOME/guestdeck: after
// a demo run, a demo dry run and a demo exec, the state directory holds
// nothing, and the temporary directory no demo state. The same run on a
// fleet file's guest is audited there (the control: the test would see a
// write).
func TestDemoLeavesTheRealStateAlone(t *testing.T) {
	env, auditPath := stateEnv(t)
	state := strings.TrimPrefix(env[0], "XDG_STATE_HOME=")
	tmp := t.TempDir()
	env = append(env, "TMPDIR="+tmp)
	for _, args := range [][]string{
		{"--demo", "run", "--yes", "fstrim", "api-01"},
		{"run", "--demo", "--dry-run", "fstrim", "api-01"},
		{"--demo", "exec", "--yes", "api-01", "--", "/bin/true"},
	} {
		r := gdEnv(t, 30*time.Second, env, args...)
		if r.code != exitOK {
			t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	var left []string
	for _, dir := range []string{state, tmp} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if p != dir {
				left = append(left, p)
			}
			return err
		})
	}
	if len(left) > 0 {
		t.Errorf("demo actions left %v", left)
	}

	_, cfg := simGuests(t, "", simCfg("a0", nil))
	if r := gdEnv(t, 30*time.Second, env, "-c", cfg, "run", "--yes", "fstrim", "a0"); r.code != exitOK {
		t.Fatalf("run fstrim a0: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(auditPath); err != nil {
		t.Errorf("a fleet file's action was not audited in the state directory: %v", err)
	}
}

// TestDashboardE2EFallbackDemoAudit: the dashboard started without a fleet
// file shows the demo, and audits its actions as --demo does: in the
// demo's own log, shown by the audit pane, not in the operator's.
func TestDashboardE2EFallbackDemoAudit(t *testing.T) {
	tt, home := e2eStartClip(t)
	tt.waitText("guestdeck 40 guests", " ready ")
	tt.keys("T")
	tt.waitText("thaw: 1 ok")
	tt.keys("A")
	s := tt.waitText("outcome  dashboard thaw")
	demoLog := regexp.MustCompile(`Audit log (\S*/guestdeck-demo-[0-9]+/audit\.jsonl)`).FindStringSubmatch(s)
	if demoLog == nil {
		t.Errorf("the audit pane is not the demo's own log:\n%s", s)
	}
	tt.keys("Escape")
	tt.keys("q")
	tt.waitText("guestdeck-exited")
	if _, err := os.Stat(filepath.Join(home, "state", "guestdeck", "audit.jsonl")); !os.IsNotExist(err) {
		t.Errorf("the demo's actions are in the operator's audit log: %v", err)
	}
}

// TestDemoWithoutTempDirWritesNothing: when the demo cannot make its own
// state directory, its actions are refused, and nothing is written: not
// the operator's log, and not a log at a fixed name in the temporary
// directory. Another user can make that name in a shared /tmp beforehand
// with audit.jsonl a symlink to a file of the operator's, and the demo
// used to append its lines there. Here the temporary directory holds such
// a name made before, and making the demo's own directory fails (a full
// disk).
func TestDemoWithoutTempDirWritesNothing(t *testing.T) {
	tmp := t.TempDir()
	planted := filepath.Join(tmp, "guestdeck-demo-unavailable", "state")
	if err := os.MkdirAll(planted, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "operators-file")
	if err := os.WriteFile(victim, []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(planted, audit.FileName)); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_STATE_HOME", state)

	c := &cli{demo: true, mkdirTemp: func(string, string) (string, error) {
		return "", &os.PathError{Op: "mkdirtemp", Path: tmp, Err: syscall.ENOSPC}
	}}
	defer c.dropDemoState()
	aud, err := c.auditIntent(audit.SourceCLI, "fstrim", []string{"guestdeck", "--demo", "run", "fstrim", "api-01"},
		[]string{"api-01"}, []audit.Guest{{Name: "api-01", Result: "pending"}})
	if err == nil {
		t.Errorf("the demo's action was audited (in %s) without a directory of its own", aud.log.Path())
	}
	if b, _ := os.ReadFile(victim); string(b) != "mine\n" {
		t.Errorf("the demo wrote through the planted symlink into the operator's file: %q", b)
	}
	if es, _ := os.ReadDir(state); len(es) > 0 {
		t.Errorf("the demo wrote to the operator's state directory: %v", es)
	}
}
