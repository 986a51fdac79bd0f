package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/testpeers/hostile"
)

// TestHostileExecLies runs every lie of the lies peer's programs: a status
// out of range or missing is no success (and no "exit 0"), a signal of 0
// does not hide the exit code, pids at the edges are kept exactly, output
// that is not base64 loses that stream only, a program never reported
// exited is still running when the wait ends, and a status answered after
// the wait is still read.
func TestHostileExecLies(t *testing.T) {
	dir := hostileDir(t)
	cfg := fleetFile(t, "", hostileGuest(t, dir, "liar", hostile.Lies, hostile.WithSlowDelay(1500*time.Millisecond)))
	one := func(t *testing.T, timeout, prog string) (execJSON, result) {
		t.Helper()
		r := gd(t, 60*time.Second, "-c", cfg, "exec", "--json", "--timeout", timeout, "liar", "--", "/bin/"+prog)
		checkSafe(t, "exec --json", r.stdout)
		rows := execRows(t, r.stdout)
		if len(rows) != 1 {
			t.Fatalf("%s: %d rows\n%s%s", prog, len(rows), r.stdout, r.stderr)
		}
		return rows[0], r
	}
	n := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	for _, c := range []struct {
		prog, timeout  string
		code           int
		state          string
		exit, signal   any
		stdout, stderr string
	}{
		{hostile.LieExitHuge, "10s", 1, "exited", nil, nil, "", ""},
		{hostile.LieExitOverflow, "10s", 1, "exited", nil, nil, "", ""},
		{hostile.LieSignalZero, "10s", 1, "exited", 1, nil, "", ""},
		{hostile.LieNoStatus, "10s", 1, "exited", nil, nil, "ok\n", ""},
		{hostile.LieBadBase64, "10s", 0, "exited", 0, nil, "", "err\n"},
		{hostile.LieNeverExits, "300ms", 1, "still-running", nil, nil, "", ""},
		{hostile.LieLate, "300ms", 0, "exited", 0, nil, "ok\n", ""},
		{hostile.LiePIDNegative, "10s", 0, "exited", 0, nil, "ok\n", ""},
	} {
		t.Run(c.prog, func(t *testing.T) {
			x, r := one(t, c.timeout, c.prog)
			if r.code != c.code || x.State != c.state || n(x.ExitCode) != c.exit || n(x.Signal) != c.signal || x.Stdout != c.stdout || x.Stderr != c.stderr {
				t.Errorf("exit %d: %s\nstderr %s", r.code, mustJSON(x), r.stderr)
			}
			if c.exit == nil && c.signal == nil && c.state == "exited" && (x.Error != nil || !strings.Contains(r.stdout, `"exitcode": null`)) {
				t.Errorf("no status: %s", mustJSON(x))
			}
		})
	}
	t.Run("pids", func(t *testing.T) {
		x, _ := one(t, "10s", hostile.LiePIDHuge)
		if x.PID == nil || *x.PID != 1<<63-1 {
			t.Errorf("pid-huge: %s", mustJSON(x))
		}
		x, _ = one(t, "10s", hostile.LiePIDNegative)
		if x.PID == nil || *x.PID != -1 {
			t.Errorf("pid-negative: %s", mustJSON(x))
		}
	})
	t.Run("text", func(t *testing.T) {
		r := gd(t, 60*time.Second, "-c", cfg, "exec", "liar", "--", "/bin/"+hostile.LieExitHuge)
		if r.code != 1 || !strings.Contains(r.stdout, "==> liar <== exited (the agent gave no status)") || !regexp.MustCompile(`(?m)^liar +FAILED `).MatchString(r.stdout) {
			t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = gd(t, 60*time.Second, "-c", cfg, "exec", "liar", "--", "/bin/"+hostile.LieEscapes)
		checkSafe(t, "exec stdout", r.stdout)
		checkSafe(t, "exec stderr", r.stderr)
		// Its output's newlines are output (the exact bytes are --json's);
		// its escapes are shown, not obeyed.
		if r.code != 0 || !regexp.MustCompile(`(?m)^liar +ok `).MatchString(r.stdout) || !strings.Contains(r.stdout, `\x1b]0;HOSTILE-TITLE\x07`) {
			t.Errorf("escapes: exit %d\n%s", r.code, r.stdout)
		}
	})
}

// TestHostileAuthorizedKeys: a key list whose keys hold line breaks lists
// one line per key (no fake second key), escaped, the non-strings dropped.
func TestHostileAuthorizedKeys(t *testing.T) {
	dir := hostileDir(t)
	cfg := fleetFile(t, "", hostileGuest(t, dir, "liar", hostile.Lies))
	checkLines := func(what, listing string) {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(listing, "\n"), "\n")
		if len(lines) != 4 {
			t.Errorf("%s: %d lines, want the guest's 4 string keys, one a line:\n%.1000s", what, len(lines), listing)
		}
		for _, l := range lines {
			for _, fake := range []string{"ssh-ed25519 AAAAfake", "ssh-rsa AAAAhidden", "forged-row"} {
				if strings.HasPrefix(l, fake) || strings.Contains(l, "\r"+fake) {
					t.Errorf("%s: the guest's %q reads as a key of its own: %.200q", what, fake, l)
				}
			}
		}
	}
	r := gd(t, 60*time.Second, "-c", cfg, "run", "ssh-key", "list", "root", "--", "liar")
	checkSafe(t, "ssh-key list", r.stdout)
	checkSafe(t, "ssh-key list stderr", r.stderr)
	listing, ok := strings.CutPrefix(r.stdout, "==> liar <==\n")
	listing, table, found := strings.Cut(listing, "GUEST  OUTCOME")
	if r.code != 0 || !ok || !found || !strings.Contains(table, "4 keys of root (3 with a line break, shown as \\n or \\r") {
		t.Fatalf("exit %d\n%.1000s\n%s", r.code, r.stdout, r.stderr)
	}
	checkLines("text", listing)

	r = gd(t, 60*time.Second, "-c", cfg, "run", "--json", "ssh-key", "list", "root", "--", "liar")
	checkSafe(t, "ssh-key list --json", r.stdout)
	var rows []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 1 || !rows[0].OK {
		t.Fatalf("--json: %v\n%.1000s", err, r.stdout)
	}
	checkLines("--json", rows[0].Result)
}

// TestGetManyCaseCollision: two guests whose names differ only in case
// would share one file on a case-insensitive file system: refused before
// anything is read, --force or not.
func TestGetManyCaseCollision(t *testing.T) {
	_, cfg := simGuests(t, "", simCfg("Web", nil), simCfg("web", nil))
	out := t.TempDir()
	for _, force := range []bool{false, true} {
		args := []string{"-c", cfg, "get", "--from", "/etc/hostname", "--to", out, "Web", "web"}
		if force {
			args = append(args[:3], append([]string{"--force"}, args[3:]...)...)
		}
		r := gd(t, 30*time.Second, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "guests Web and web would both be written to web") {
			t.Errorf("force %v: exit %d %s", force, r.code, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("files written: %v", ents)
	}
}
