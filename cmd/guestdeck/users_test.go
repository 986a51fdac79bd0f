package main

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// gdStdin runs the binary with stdin as its standard input (no terminal)
// and, while it runs, returns what ps would show as its command line.
func gdStdin(t *testing.T, env []string, stdin string, args ...string) (result, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME=", "NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The command line of the running process, as ps reads it, before it
	// is given the password.
	argv, err := os.ReadFile(filepath.Join("/proc", itoa(cmd.Process.Pid), "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte(stdin))
	in.Close()
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("guestdeck %v: still running; stderr %s", args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}, strings.ReplaceAll(string(argv), "\x00", " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// run password: the password comes from standard input, reaches the guests
// (their /etc/shadow), and shows nowhere: not in ps, the dry run, the
// results, or the audit log. Read-only mode refuses it before asking.
func TestRunPassword(t *testing.T) {
	farm, cfg := simFarm(t, 3)
	state := t.TempDir()
	env := []string{"XDG_STATE_HOME=" + state}
	const pw = "Pa55 w0rd with spaces"
	b64 := base64.StdEncoding.EncodeToString([]byte(pw))

	r, argv := gdStdin(t, env, pw+"\n", "-c", cfg, "run", "--yes", "password", "user", "s0", "s1")
	if r.code != 0 || !strings.Contains(r.stdout, "password of user set") {
		t.Fatalf("run password: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	for i, g := range farm.Guests() {
		want := ""
		if i < 2 {
			want = sim.SimHash("user", pw)
		}
		if got := g.Shadow("user"); got != want {
			t.Errorf("s%d: shadow(user) = %q, want %q", i, got, want)
		}
	}
	dry := gd(t, 20*time.Second, "-c", cfg, "run", "--dry-run", "password", "--crypted", "root", "s0")
	if dry.code != 0 || !strings.Contains(dry.stdout, `"password":"<secret>"`) || !strings.Contains(dry.stdout, `"crypted":true`) {
		t.Errorf("dry run: exit %d\n%s%s", dry.code, dry.stdout, dry.stderr)
	}
	// Without --yes and without a terminal nothing is asked or sent.
	if r, _ := gdStdin(t, env, pw+"\n", "-c", cfg, "run", "password", "root", "s2"); r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Errorf("no --yes: exit %d %s", r.code, r.stderr)
	}
	ro, _ := gdStdin(t, env, pw+"\n", "--readonly", "-c", cfg, "run", "--yes", "password", "root", "s2")
	if ro.code != 2 || !strings.Contains(ro.stderr, "--readonly") {
		t.Errorf("--readonly: exit %d %s", ro.code, ro.stderr)
	}
	if n := farm.Guests()[2].Calls("guest-set-user-password"); n != 0 {
		t.Errorf("s2 got %d password calls", n)
	}
	// A password on two lines is refused before anything is sent.
	if r, _ := gdStdin(t, env, "one\ntwo\n", "-c", cfg, "run", "--yes", "password", "root", "s2"); r.code != 2 || !strings.Contains(r.stderr, "more than one line") {
		t.Errorf("two lines: exit %d %s", r.code, r.stderr)
	}
	logb, err := os.ReadFile(filepath.Join(state, "guestdeck", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logb), "password user") || !strings.Contains(string(logb), `"password":"\u003csecret\u003e"`) {
		t.Errorf("the audit log lacks the action or its placeholder:\n%s", logb)
	}
	for what, s := range map[string]string{"ps": argv, "stdout": r.stdout, "stderr": r.stderr, "dry run": dry.stdout, "audit log": string(logb)} {
		if strings.Contains(s, pw) || strings.Contains(s, b64) {
			t.Errorf("the password shows in %s: %q", what, s)
		}
	}
}

// run ssh-key add, list and remove, with results per guest; a guest's
// keys are its own text, shown escaped under a header per guest.
func TestRunSSHKey(t *testing.T) {
	farm, cfg := simFarm(t, 2)
	const k1, k2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one@host", "ssh-rsa AAAAB3two two@host"
	kf := filepath.Join(t.TempDir(), "id.pub")
	os.WriteFile(kf, []byte(k1+"\n"+k2+"\n"), 0o644)
	r := gd(t, 20*time.Second, "-c", cfg, "run", "--yes", "ssh-key", "add", "root", kf, "s0", "s1")
	if r.code != 0 || strings.Count(r.stdout, "added 2 keys to root's authorized keys") != 2 {
		t.Fatalf("add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The list only looks: no --yes needed, allowed under --readonly.
	r = gd(t, 20*time.Second, "--readonly", "-c", cfg, "run", "ssh-key", "list", "root", "s0", "s1")
	if r.code != 0 || !strings.Contains(r.stdout, "==> s0 <==\n"+k2+"\n"+k1+"\n") || !strings.Contains(r.stdout, "==> s1 <==\n") {
		t.Errorf("list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A hostile guest's key text is escaped.
	evil := filepath.Join(t.TempDir(), "evil.pub")
	os.WriteFile(evil, []byte("ssh-rsa AAAA \x1b]0;OWNED\x07\u202e\n"), 0o644)
	if r := gd(t, 20*time.Second, "-c", cfg, "run", "--yes", "ssh-key", "add", "root", evil, "s1"); r.code != 0 {
		t.Fatalf("add evil: %d %s", r.code, r.stderr)
	}
	r = gd(t, 20*time.Second, "-c", cfg, "run", "ssh-key", "list", "root", "s1")
	if strings.ContainsAny(r.stdout, "\x1b\x07\u202e") || !strings.Contains(r.stdout, `\x1b]0;OWNED\x07\u202e`) {
		t.Errorf("hostile key shown as %q", r.stdout)
	}
	one := filepath.Join(t.TempDir(), "one.pub")
	os.WriteFile(one, []byte(k1+"\n"), 0o644)
	if r := gd(t, 20*time.Second, "--readonly", "-c", cfg, "run", "--yes", "ssh-key", "remove", "root", one, "s0"); r.code != 2 || !strings.Contains(r.stderr, "--readonly") {
		t.Errorf("--readonly remove: %d %s", r.code, r.stderr)
	}
	if r := gd(t, 20*time.Second, "-c", cfg, "run", "--yes", "ssh-key", "remove", "root", one, "s0"); r.code != 0 {
		t.Errorf("remove: %d %s", r.code, r.stderr)
	}
	r = gd(t, 20*time.Second, "-c", cfg, "cat", "s0", "/root/.ssh/authorized_keys")
	if r.code != 0 || r.stdout != k2 {
		t.Errorf("cat authorized_keys after remove: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if n := farm.Guests()[1].Calls("guest-ssh-remove-authorized-keys"); n != 0 {
		t.Errorf("s1 got %d remove calls", n)
	}
}
