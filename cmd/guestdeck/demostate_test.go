package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
