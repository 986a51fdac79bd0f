package tui

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
	"github.com/guestdeck/guestdeck/themes"
)

// e2eEnv makes the test binary run the dashboard instead of the tests: the
// end-to-end test starts it inside tmux.
const e2eEnv = "GUESTDECK_TUI_E2E"

func TestMain(m *testing.M) {
	if os.Getenv(e2eEnv) == "1" {
		src := newFakeSource(testGuests(200))
		src.frozen = []string{"vm-00003"}
		model := New(src, Options{Styles: themes.Mono()})
		if _, err := tea.NewProgram(model).Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "thawed=%d runs=%d\n", src.thawed, len(src.runs))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestTmux runs the dashboard in a real terminal (tmux, on a private server)
// and drives it with keys: filter, mark, an action with confirmation, a
// resize below the minimum, and quitting with a guest frozen by us: a
// habitual q q thaws it before the program ends.
func TestTmux(t *testing.T) {
	testpeers.Require(t, testpeers.NeedTmux)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := fmt.Sprintf("gdtui%d", os.Getpid())
	out := t.TempDir() + "/stderr"
	tmux := func(args ...string) string {
		t.Helper()
		b, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, b)
		}
		return string(b)
	}
	tmux("new-session", "-d", "-s", "gd", "-x", "110", "-y", "32", "-e", e2eEnv+"=1", "-e", "TERM=xterm-256color",
		fmt.Sprintf("%s -test.run=^$ 2>%s; sleep 60", exe, out))
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", sock, "kill-server").Run() })

	screen := func() string { return tmux("capture-pane", "-p", "-t", "gd") }
	waitFor := func(what string) string {
		t.Helper()
		var s string
		wait.For(t, 10*time.Second, func() (bool, string) {
			s = screen()
			return strings.Contains(s, what), fmt.Sprintf("screen does not show %q:\n%s", what, s)
		})
		return s
	}
	keys := func(k ...string) {
		t.Helper()
		tmux(append([]string{"send-keys", "-t", "gd"}, k...)...)
		time.Sleep(100 * time.Millisecond) // let esc-prefixed sequences settle
	}

	waitFor("guestdeck 200 guests")
	keys("/")
	keys("-l", "vm-0001")
	keys("Enter")
	waitFor(`filter "vm-0001": 10 shown`)
	keys("C-a")
	waitFor("10 marked")
	keys("p")
	waitFor("ping: 10 ok, 0 failed, 0 skipped")
	keys("F")
	s := waitFor("guests?")
	if !strings.Contains(s, "Freeze 9 guests?") || !strings.Contains(s, "1 skipped") {
		t.Errorf("confirmation:\n%s", s)
	}
	keys("Escape")
	waitFor("freeze cancelled")

	tmux("resize-window", "-t", "gd", "-x", "50", "-y", "12")
	waitFor("needs at least 60x15")
	tmux("resize-window", "-t", "gd", "-x", "110", "-y", "32")
	waitFor("guestdeck 200 guests")

	keys("q")
	waitFor("1 guest frozen by guestdeck")
	keys("q")
	wait.For(t, 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "thawed=1 runs=1"), fmt.Sprintf("dashboard has not thawed and quit; stderr: %q\n%s", b, screen())
	})
}
