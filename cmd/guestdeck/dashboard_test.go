package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// tmux runs one tmux command on the test's own server socket.
func tmux(t *testing.T, sock string, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitScreen polls the pane until it shows want.
func waitScreen(t *testing.T, sock, want string, d time.Duration) string {
	t.Helper()
	var screen string
	wait.For(t, d, func() (bool, string) {
		screen = tmux(t, sock, "capture-pane", "-p", "-t", "gd")
		return strings.Contains(screen, want), fmt.Sprintf("the screen does not show %q:\n%s", want, screen)
	})
	return screen
}

// TestDashboardThawsOnSIGTERM runs the dashboard in a real terminal (tmux),
// freezes a guest from it, then kills it with SIGTERM: the dashboard has no
// chance to ask, so guestdeck must thaw what it froze before exiting.
func TestDashboardThawsOnSIGTERM(t *testing.T) {
	testpeers.Require(t, testpeers.NeedTmux)
	farm, cfg := simFarm(t, 2)
	dir, err := os.MkdirTemp("/tmp", "gdt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := dir + "/tmux.sock"
	tmux(t, sock, "new-session", "-d", "-s", "gd", "-x", "140", "-y", "40",
		"env", "NO_COLOR=1", "HOME="+dir, "XDG_STATE_HOME="+dir+"/state", binary, "-c", cfg)
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	pid, err := strconv.Atoi(strings.TrimSpace(tmux(t, sock, "display-message", "-p", "-t", "gd", "#{pane_pid}")))
	if err != nil {
		t.Fatal(err)
	}
	waitScreen(t, sock, "ready 2", 15*time.Second)

	// The cursor starts on s0: freeze it and confirm.
	tmux(t, sock, "send-keys", "-t", "gd", "F")
	waitScreen(t, sock, "y/enter confirms", 5*time.Second)
	tmux(t, sock, "send-keys", "-t", "gd", "y")
	wait.For(t, 10*time.Second, func() (bool, string) {
		return farm.Guests()[0].Frozen(), "s0 was not frozen from the dashboard:\n" + tmux(t, sock, "capture-pane", "-p", "-t", "gd")
	})

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() (bool, string) {
		return syscall.Kill(pid, 0) != nil, "guestdeck has not exited after SIGTERM"
	})
	if farm.Guests()[0].Frozen() {
		t.Error("guestdeck exited on SIGTERM leaving s0 frozen")
	}
	if n := farm.Guests()[0].Calls("guest-fsfreeze-thaw"); n != 1 {
		t.Errorf("s0 got %d thaw calls, want 1", n)
	}
	// Both are in the audit log: the dashboard's freeze and its own thaw.
	var got []string
	audit.Read(filepath.Join(dir, "state/guestdeck", audit.FileName), func(e audit.Entry) error {
		got = append(got, fmt.Sprintf("%s %s %s %s=%s", e.Source, e.Phase, e.Action, e.Guests[0].Name, e.Guests[0].Result))
		return nil
	})
	want := []string{"dashboard intent freeze s0=pending", "dashboard outcome freeze s0=ok",
		"dashboard intent thaw (the dashboard was signalled to exit) s0=pending", "dashboard outcome thaw (the dashboard was signalled to exit) s0=ok"}
	if !slices.Equal(got, want) {
		t.Errorf("audit log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunConfirmsOnTerminal answers the confirmation of a destructive
// action on a real terminal: "n" sends nothing, "y" shuts the guest down.
func TestRunConfirmsOnTerminal(t *testing.T) {
	testpeers.Require(t, testpeers.NeedTmux)
	farm, cfg := simFarm(t, 1)
	dir, err := os.MkdirTemp("/tmp", "gdt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, answer := range []string{"n", "y"} {
		// A socket per round: the last round's server may still be
		// exiting after its session was killed.
		sock := dir + "/tmux-" + answer + ".sock"
		t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
		// The pane stays after the command so its last words can be read.
		script := "HOME=" + dir + " XDG_STATE_HOME=" + dir + "/state " + binary + " -c " + cfg + " run shutdown s0; echo exit=$?; sleep 30"
		tmux(t, sock, "new-session", "-d", "-s", "gd", "-x", "120", "-y", "20", "sh", "-c", script)
		waitScreen(t, sock, "Shut down 1 guest (powerdown)? s0 [y/N]", 15*time.Second)
		tmux(t, sock, "send-keys", "-t", "gd", answer, "Enter")
		if answer == "n" {
			waitScreen(t, sock, "exit=2", 10*time.Second)
			if _, down := farm.Guests()[0].ShutdownMode(); down || farm.Guests()[0].Calls("guest-shutdown") != 0 {
				t.Fatal("answering n still shut the guest down")
			}
		} else {
			screen := waitScreen(t, sock, "exit=0", 10*time.Second)
			if mode, down := farm.Guests()[0].ShutdownMode(); !down || mode != "powerdown" {
				t.Fatalf("answering y: shutdown %q %v\n%s", mode, down, screen)
			}
		}
		tmux(t, sock, "kill-session", "-t", "gd")
	}
}
