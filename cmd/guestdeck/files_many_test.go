package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// put to three guests, one file per guest back with get, cat of all with
// headers; a guest without the file fails on its own row and the others
// still arrive.
func TestFilesToMany(t *testing.T) {
	farm, cfg := simFarm(t, 3)
	src := filepath.Join(t.TempDir(), "motd")
	os.WriteFile(src, []byte("welcome to the fleet\n"), 0o644)

	// A path ending in / is a directory: the file keeps its name there.
	r := gd(t, 30*time.Second, "-c", cfg, "put", "--yes", "--from", src, "--to", "/tmp/", "s0", "s1")
	if r.code != 0 || strings.Count(r.stdout, "  ok  ") != 2 || !strings.Contains(r.stdout, "/tmp/motd") {
		t.Fatalf("put to many: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := farm.Guests()[2].Calls("guest-file-open"); n != 0 {
		t.Errorf("s2 (not selected) got %d guest-file-open calls", n)
	}

	out := t.TempDir()
	r = gd(t, 30*time.Second, "-c", cfg, "get", "--from", "/tmp/motd", "--to", out, "s0", "s1", "s2")
	if r.code != 1 || !strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stdout, "No such file") {
		t.Errorf("get from many (s2 lacks the file): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, n := range []string{"s0", "s1"} {
		if b, err := os.ReadFile(filepath.Join(out, n)); err != nil || string(b) != "welcome to the fleet\n" {
			t.Errorf("%s's copy: %q %v", n, b, err)
		}
	}
	onlyEntries(t, out, "s0", "s1")

	// Existing copies are not replaced without --force: refused before
	// anything is read.
	opens := farm.Guests()[0].Calls("guest-file-open")
	r = gd(t, 30*time.Second, "-c", cfg, "get", "--from", "/tmp/motd", "--to", out, "s0", "s1")
	if r.code != 2 || !strings.Contains(r.stderr, "--force") || !strings.Contains(r.stderr, "nothing was read") {
		t.Errorf("get over existing copies: exit %d %s", r.code, r.stderr)
	}
	if n := farm.Guests()[0].Calls("guest-file-open"); n != opens {
		t.Errorf("a refused get opened %d guest files", n-opens)
	}
	os.Chmod(filepath.Join(out, "s0"), 0o600)
	if r := gd(t, 30*time.Second, "-c", cfg, "get", "--force", "--from", "/etc/os-release", "--to", out, "s0", "s1"); r.code != 0 {
		t.Errorf("get --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "s1")); !strings.HasPrefix(string(b), "PRETTY_NAME=") {
		t.Errorf("s1's copy after --force: %q", b)
	}
	if st, _ := os.Stat(filepath.Join(out, "s0")); st.Mode().Perm() != 0o600 {
		t.Errorf("a replaced copy has mode %v, want its old 0600", st.Mode().Perm())
	}

	r = gd(t, 30*time.Second, "-c", cfg, "cat", "--from", "/tmp/motd", "s0", "s1")
	if r.code != 0 || r.stdout != "==> s0 <==\nwelcome to the fleet\n\n==> s1 <==\nwelcome to the fleet\n" {
		t.Errorf("cat from many: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Flags hold the paths: a selector never names a file.
	if r := gd(t, 30*time.Second, "-c", cfg, "get", "--from", "/tmp/motd", "--to", out); r.code != 2 || !strings.Contains(r.stderr, "no guests selected") {
		t.Errorf("get without selectors: exit %d %s", r.code, r.stderr)
	}
	if r := gd(t, 30*time.Second, "-c", cfg, "get", "--from", "/tmp/motd", "--to", filepath.Join(out, "s0"), "s0"); r.code != 2 || !strings.Contains(r.stderr, "not a directory") {
		t.Errorf("get --to a file: exit %d %s", r.code, r.stderr)
	}
}

// put to many changes guests: without a terminal it needs --yes, read-only
// mode refuses it, and the audit log has it.
func TestPutManyConfirmReadonlyAudit(t *testing.T) {
	farm, cfg := simFarm(t, 2)
	state := t.TempDir()
	env := []string{"XDG_STATE_HOME=" + state}
	src := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(src, []byte("x"), 0o644)
	for _, args := range [][]string{
		{"-c", cfg, "put", "--from", src, "--to", "/tmp/f.txt", "s0", "s1"},
		{"--readonly", "-c", cfg, "put", "--yes", "--from", src, "--to", "/tmp/f.txt", "s0", "s1"},
		{"-c", cfg, "put", "--yes", "--from", "-", "--to", "/tmp/f.txt", "s0", "s1"},
	} {
		if r := gdEnv(t, 30*time.Second, env, args...); r.code != 2 {
			t.Errorf("%v: exit %d %s", args, r.code, r.stderr)
		}
	}
	for _, g := range farm.Guests() {
		if n := g.Calls("guest-file-open"); n != 0 {
			t.Errorf("a refused put opened %d files", n)
		}
	}
	if r := gdEnv(t, 30*time.Second, env, "-c", cfg, "put", "--yes", "--from", src, "--to", "/tmp/f.txt", "s0", "s1"); r.code != 0 {
		t.Fatalf("put --yes: exit %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(state, "guestdeck", "audit.jsonl"))
	if err != nil || strings.Count(string(b), `"action":"put /tmp/f.txt"`) != 2 || !strings.Contains(string(b), `"result":"ok","detail":"wrote 1 bytes"`) {
		t.Errorf("audit log: %v\n%s", err, b)
	}
}

// The directory rule and the overwrite rule of the one-guest forms: put
// into GUEST /tmp/ writes /tmp/NAME; get never replaces a local file
// without --force; a new local file is 0644 less the umask, whatever a
// group-writable umask says.
func TestOneGuestDirectoryAndOverwriteRules(t *testing.T) {
	farm, cfg := simFarm(t, 1)
	src := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(src, []byte("n\n"), 0o644)
	if r := gd(t, 30*time.Second, "-c", cfg, "put", src, "s0", "/tmp/"); r.code != 0 || !strings.Contains(r.stderr, "s0:/tmp/notes.txt") {
		t.Fatalf("put into /tmp/: exit %d %s", r.code, r.stderr)
	}
	if r := gd(t, 30*time.Second, "-c", cfg, "cat", "s0", "/tmp/notes.txt"); r.stdout != "n\n" {
		t.Errorf("cat after put into a directory: %q %s", r.stdout, r.stderr)
	}
	if r := gd(t, 30*time.Second, "-c", cfg, "put", "-", "s0", "/tmp/"); r.code != 2 {
		t.Errorf("put - into a directory: exit %d %s", r.code, r.stderr)
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", `umask 002; exec "$0" "$@"`, binary, "-c", cfg, "get", "s0", "/tmp/notes.txt", dir)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("get into a directory: %v %s", err, out)
	}
	dest := filepath.Join(dir, "notes.txt")
	if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("new local file: %v %v, want 0644 under umask 002", st.Mode(), err)
	}
	opens := farm.Guests()[0].Calls("guest-file-open")
	if r := gd(t, 30*time.Second, "-c", cfg, "get", "s0", "/etc/os-release", dest); r.code != 2 || !strings.Contains(r.stderr, "exists") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("get over a file: exit %d %s", r.code, r.stderr)
	}
	if r := gd(t, 30*time.Second, "-c", cfg, "get", "s0", "/etc/os-release", dir); r.code != 0 || !strings.Contains(r.stderr, "os-release") {
		t.Errorf("get of another name into the directory: exit %d %s", r.code, r.stderr)
	}
	if n := farm.Guests()[0].Calls("guest-file-open"); n != opens+1 {
		t.Errorf("%d guest files opened, want 1 (the refused get opens none)", n-opens)
	}
	if b, _ := os.ReadFile(dest); string(b) != "n\n" {
		t.Errorf("the refused get changed the file: %q", b)
	}
	if r := gd(t, 30*time.Second, "-c", cfg, "get", "--force", "s0", "/etc/os-release", dest); r.code != 0 {
		t.Errorf("get --force: exit %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(dest); !strings.HasPrefix(string(b), "PRETTY_NAME=") {
		t.Errorf("after get --force: %q", b)
	}
}

func TestGuestFileName(t *testing.T) {
	for _, tc := range []struct {
		guest, want string
		ok          bool
	}{
		{"web-1", "web-1", true},
		{"hv-a/web-1", "hv-a_web-1", true},
		{`hv-a/dom\x`, "hv-a_dom_x", true},
		{"hv-a/..", "hv-a_..", true},
		{"..", "", false},
		{"hv-a/evil" + sim.Hostile, "", false},
	} {
		got, ok := guestFileName(tc.guest)
		if got != tc.want || ok != tc.ok {
			t.Errorf("guestFileName(%q) = %q, %v; want %q, %v", tc.guest, got, ok, tc.want, tc.ok)
		}
	}
}
