package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

var execKeys = []string{"duration_ms", "error", "exitcode", "name", "pid", "signal", "state", "stderr", "stdout", "truncated"}

// execRows decodes exec --json, checking every object has exactly execKeys
// (plus the base64 forms of output that is not UTF-8).
func execRows(t *testing.T, out string) []execJSON {
	t.Helper()
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("exec --json: %v\n%s", err, out)
	}
	for _, obj := range raw {
		var keys []string
		for k := range obj {
			if k != "stdout_base64" && k != "stderr_base64" {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, execKeys) {
			t.Errorf("exec --json keys %v, want %v", keys, execKeys)
		}
	}
	var rows []execJSON
	json.Unmarshal([]byte(out), &rows)
	return rows
}

func TestExecCommand(t *testing.T) {
	gs, cfg := simGuests(t, "", simCfg("a", nil), simCfg("b", nil), simCfg("noexec", func(c *sim.Config) { c.NoExec = true }))
	env, logPath := stateEnv(t)
	run := func(args ...string) result {
		t.Helper()
		return gdEnv(t, 60*time.Second, env, append([]string{"-c", cfg, "exec"}, args...)...)
	}

	t.Run("text", func(t *testing.T) {
		r := run("a", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		want := "==> a <== exit 3\nout\n--- a stderr ---\nerr\n"
		if r.code != 1 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "a      FAILED") {
			t.Errorf("exit %d\n%s\nstderr %s", r.code, r.stdout, r.stderr)
		}
		if r := run("a", "--", "true"); r.code != 0 {
			t.Errorf("true: exit %d %s", r.code, r.stderr)
		}
	})
	t.Run("confirmation", func(t *testing.T) {
		before := gs["a"].Calls("guest-exec")
		r := run("a", "b", "--", "true")
		if r.code != 2 || !strings.Contains(r.stderr, "on 2 guests (a b): a, b") || !strings.Contains(r.stderr, "--yes") {
			t.Errorf("without --yes: exit %d %q", r.code, r.stderr)
		}
		if gs["a"].Calls("guest-exec") != before {
			t.Error("guest-exec sent without confirmation")
		}
	})
	t.Run("json", func(t *testing.T) {
		r := run("--json", "--yes", "all", "--", "sh", "-c", "echo \"$$\"; kill -KILL $$")
		rows := execRows(t, r.stdout)
		// In the order the guests finish.
		slices.SortFunc(rows, func(a, b execJSON) int { return strings.Compare(a.Name, b.Name) })
		if r.code != 1 || len(rows) != 3 {
			t.Fatalf("exit %d, %d rows\n%s%s", r.code, len(rows), r.stdout, r.stderr)
		}
		for _, x := range rows[:2] {
			if x.State != "exited" || x.Signal == nil || *x.Signal != 9 || x.ExitCode != nil || x.Stdout != "4242\n" || x.PID == nil || x.Error != nil {
				t.Errorf("%s: %s", x.Name, mustJSON(x))
			}
		}
		if x := rows[2]; x.State != "skipped" || x.Error == nil || !strings.Contains(*x.Error, "guest-exec is disabled") || x.PID != nil {
			t.Errorf("noexec: %s", mustJSON(x))
		}
		if n := gs["noexec"].Calls("guest-exec"); n != 0 {
			t.Errorf("guest-exec sent %d times to a guest that disabled it", n)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		r := run("--json", "--output-limit", "1K", "a", "--", "sh", "-c", "head -c 5000 /dev/zero")
		rows := execRows(t, r.stdout)
		if r.code != 0 || len(rows) != 1 || len(rows[0].Stdout) != 1024 || !rows[0].Truncated {
			t.Errorf("exit %d %s", r.code, r.stderr)
		}
		r = run("--output-limit", "1K", "a", "--", "sh", "-c", "head -c 5000 /dev/zero")
		if !strings.Contains(r.stdout, "--- a: output truncated (kept at most 1.0 KiB of stdout and of stderr) ---") {
			t.Errorf("text: %s", r.stdout)
		}
		if r := run("--output-limit", "17M", "a", "--", "true"); r.code != 2 {
			t.Errorf("--output-limit 17M: exit %d", r.code)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		r := run("--json", "--timeout", "300ms", "a", "--", "sleep", "600")
		rows := execRows(t, r.stdout)
		if r.code != 1 || len(rows) != 1 || rows[0].State != "still-running" || rows[0].PID == nil ||
			!strings.Contains(*rows[0].Error, "guestdeck killed nothing") {
			t.Errorf("exit %d %s %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("escaped", func(t *testing.T) {
		r := run("a", "--", "echo", "x"+sim.Hostile)
		if strings.ContainsAny(r.stdout, "\x1b\x07\u009b\u202e") || !strings.Contains(r.stdout, `x\x1b]0;OWNED\x07`) {
			t.Errorf("text output not escaped: %q", r.stdout)
		}
		r = run("--json", "a", "--", "echo", "x"+sim.Hostile)
		rows := execRows(t, r.stdout)
		if strings.ContainsAny(r.stdout, "\x1b\x07\u009b\u202e") || len(rows) != 1 || rows[0].Stdout != "x"+sim.Hostile+"\n" {
			t.Errorf("json not exact and safe: %q", r.stdout)
		}
	})
	t.Run("stdin and audit", func(t *testing.T) {
		in := filepath.Join(t.TempDir(), "in")
		os.WriteFile(in, []byte("TOPSECRET\n"), 0o600)
		r := run("--json", "--stdin", in, "a", "--", "cat")
		rows := execRows(t, r.stdout)
		if r.code != 0 || len(rows) != 1 || rows[0].Stdout != "TOPSECRET\n" {
			t.Fatalf("exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		logged, _ := os.ReadFile(logPath)
		if strings.Contains(string(logged), "TOPSECRET") || strings.Contains(string(logged), "VE9QU0VDUkVU") {
			t.Errorf("stdin in the audit log:\n%s", logged)
		}
		es := auditEntries(t, env)
		var intent, outcome *audit.Entry
		for i := range es {
			if es[i].Action == "exec cat" {
				switch es[i].Phase {
				case audit.Intent:
					intent = &es[i]
				case audit.Outcome:
					outcome = &es[i]
				}
			}
		}
		if intent == nil || outcome == nil || intent.ID != outcome.ID {
			t.Fatalf("no intent and outcome for exec cat: %+v", es)
		}
		if s := sendsText(intent.Guests[0]); !strings.Contains(s, `"input-data":"\u003c10 bytes, not recorded\u003e"`) || !strings.Contains(s, `"path":"cat"`) {
			t.Errorf("intent sends %s", s)
		}
		if g := outcome.Guests[0]; g.Result != "ok" || !strings.HasPrefix(g.Detail, "exit 0 (pid ") {
			t.Errorf("outcome %+v", g)
		}
		// An exit 3 is recorded as failed, with its code.
		run("a", "--", "sh", "-c", "exit 3")
		es = auditEntries(t, env)
		last := es[len(es)-1]
		if last.Phase != audit.Outcome || last.Guests[0].Result != "failed" || !strings.HasPrefix(last.Guests[0].Detail, "exit 3") {
			t.Errorf("exit 3 outcome %+v", last)
		}
		if r := run("--stdin", "-", "a", "--", "cat"); r.code != 0 {
			t.Errorf("--stdin - with no input: exit %d %s", r.code, r.stderr)
		}
	})
	t.Run("dry-run", func(t *testing.T) {
		before := gs["a"].Calls("guest-exec")
		r := run("--dry-run", "a", "noexec", "--", "ls", "-l", "/")
		if r.code != 1 || !strings.Contains(r.stdout, `{"execute":"guest-exec","arguments":{"arg":["-l","/"],"capture-output":true,"path":"ls"}}`) ||
			!strings.Contains(r.stdout, "noexec  skipped: guest-exec is disabled on this guest") {
			t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if gs["a"].Calls("guest-exec") != before {
			t.Error("the dry run sent guest-exec")
		}
		if es := auditEntries(t, env); es[len(es)-1].Phase != audit.DryRun || es[len(es)-1].Action != "exec ls -l /" {
			t.Errorf("dry run not in the audit log: %+v", es[len(es)-1])
		}
	})
	t.Run("refused", func(t *testing.T) {
		before := gs["a"].Calls("guest-sync-delimited")
		for _, args := range [][]string{
			{"--readonly", "-c", cfg, "exec", "a", "--", "true"},
			{"-c", cfg, "exec", "a", "true"},
			{"-c", cfg, "exec", "--", "true"},
			{"-c", cfg, "exec", "--timeout", "0s", "a", "--", "true"},
		} {
			if r := gdEnv(t, 20*time.Second, env, args...); r.code != 2 {
				t.Errorf("%v: exit %d %s", args, r.code, r.stderr)
			}
		}
		if gs["a"].Calls("guest-sync-delimited") != before {
			t.Error("a refused exec dialled the guest")
		}
	})
}
