package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// A local mistake must not cost the guest its file: putting a directory used
// to open (and truncate) the guest's file before reading the source failed.
func TestPutDirectoryRefusedBeforeSending(t *testing.T) {
	farm, cfg := simFarm(t, 1)
	r := gd(t, 20*time.Second, "-c", cfg, "put", t.TempDir(), "s0", "/tmp/x")
	if r.code != 2 || !strings.Contains(r.stderr, "is a directory") || !strings.Contains(r.stderr, "nothing was sent") {
		t.Errorf("put DIR: exit %d stderr %q; want 2, naming the directory and that nothing was sent", r.code, r.stderr)
	}
	if n := farm.Guests()[0].Calls("guest-file-open"); n != 0 {
		t.Errorf("guest got %d guest-file-open calls for a directory source", n)
	}
}

// get into a missing directory names the destination, not an internal temp file.
func TestGetMissingDestinationDir(t *testing.T) {
	_, cfg := simFarm(t, 1)
	dest := filepath.Join(t.TempDir(), "nodir", "os-release")
	r := gd(t, 20*time.Second, "-c", cfg, "get", "s0", "/etc/os-release", dest)
	if r.code != 1 || !strings.Contains(r.stderr, filepath.Dir(dest)) || strings.Contains(r.stderr, ".part") {
		t.Errorf("get into missing dir: exit %d stderr %q; want 1 and a message naming %s", r.code, r.stderr, filepath.Dir(dest))
	}
	if _, err := os.Stat(filepath.Dir(dest)); !os.IsNotExist(err) {
		t.Errorf("destination dir appeared: %v", err)
	}
}

// A bad theme is reported once, naming it (it used to say `theme "x": theme "x": ...`).
func TestBadThemeSaysItOnce(t *testing.T) {
	testpeers.Require(t, testpeers.NeedTmux)
	dir, err := os.MkdirTemp("/tmp", "gdt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := dir + "/tmux.sock"
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	tmux(t, sock, "new-session", "-d", "-s", "gd", "-x", "200", "-y", "10", "sh", "-c", binary+" --demo --theme bogus; echo exit=$?; sleep 30")
	screen := waitScreen(t, sock, "exit=2", 15*time.Second)
	if strings.Count(screen, `"bogus"`) != 1 || !strings.Contains(screen, "built-in themes") {
		t.Errorf("want one mention of the theme and the built-ins:\n%s", screen)
	}
}
