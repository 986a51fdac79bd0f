package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
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
	if os.Getenv(e2eEnv) == "pulse" {
		os.Exit(runPulseDashboard(os.Getenv(e2eLiveEnv)))
	}
	os.Exit(m.Run())
}

// e2eLiveEnv names a file: while it exists, the pulse dashboard's fake
// fleet changes every guest's CPU figure every 100 ms (live updates that
// reshuffle a CPU sort); once it is removed the figures stand still.
const e2eLiveEnv = "GUESTDECK_TUI_E2E_LIVE"

func runPulseDashboard(live string) int {
	src := newFakeSource(testGuests(200))
	go func() {
		cpu := func(f func(i int) float64) {
			old := src.Snapshot().Guests
			next := make([]*fleet.Guest, len(old))
			for i, g := range old {
				c := *g
				c.Metrics.CPUBusy = fleet.Rate{V: f(i), OK: i%6 != 5}
				next[i] = &c
			}
			src.set(next)
		}
		for tick := 1; ; tick++ {
			time.Sleep(100 * time.Millisecond) // the fake fleet's poll interval, not a synchronisation
			if _, err := os.Stat(live); err != nil {
				break
			}
			cpu(func(i int) float64 { return float64((i*37 + tick*13) % 100) })
		}
		// The last update, after any in flight: figures the test knows
		// (vm-00099 then vm-00199 busiest), so that once it sees them it
		// knows no later snapshot can move the selection.
		cpu(func(i int) float64 { return float64(i % 100) })
	}()
	if _, err := tea.NewProgram(New(src, Options{Styles: themes.Mono()})).Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "pulse dashboard quit")
	return 0
}

// TestTmuxPulse: in a real terminal, sort by CPU under live updates (the
// rows reshuffle), hold the order (names stay put while the figures keep
// changing), then open the pulse view and jump from it to a guest.
func TestTmuxPulse(t *testing.T) {
	live := filepath.Join(t.TempDir(), "live")
	if err := os.WriteFile(live, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tt := startTUI(t, 110, 32, e2eEnv+"=pulse", e2eLiveEnv+"="+live)
	screen, until, waitFor := tt.screen, tt.until, tt.waitFor
	keys := tt.keys
	// The table's rows: the guest names in screen order, and the rows' text.
	rowRE := regexp.MustCompile(`(?m)^.{3}(vm-\d{5}) .*$`)
	rows := func(s string) (names []string, text string) {
		for _, m := range rowRE.FindAllStringSubmatch(s, -1) {
			names = append(names, m[1])
			text += m[0] + "\n"
		}
		return names, text
	}

	waitFor("guestdeck 200 guests")
	keys(":")
	waitFor(":")
	keys("-l", "sort cpu")
	keys("Enter")
	first, _ := rows(waitFor("sort cpu% ↓"))
	if len(first) < 5 {
		t.Fatalf("rows: %v\n%s", first, screen())
	}
	// Live: the order follows the figures.
	until("the CPU order reshuffle under live updates", func(s string) bool {
		n, _ := rows(s)
		return len(n) == len(first) && !slices.Equal(n, first)
	})

	keys("o")
	// The held order, from a frame drawn after the hold.
	held, heldText := rows(waitFor("sort cpu% ↓ held"))
	s := until("the figures change under the held order", func(s string) bool {
		_, text := rows(s)
		return text != heldText
	})
	if n, _ := rows(s); !slices.Equal(n, held) {
		t.Errorf("held order moved:\nheld %v\nnow  %v\n%s", held, n, s)
	}

	// Freeze the fake fleet's figures so that the pulse lists stand still.
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}
	keys("P")
	// below is true when the line under the CPU list's title at offset
	// row starts with prefix.
	below := func(s string, row int, prefix string) bool {
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "CPU busy") && i+row < len(lines) {
				return strings.HasPrefix(lines[i+row], prefix)
			}
		}
		return false
	}
	// The selection follows its guest across updates, so where it is
	// depends on which updates came after P; once the last figures are
	// drawn none can come, and home puts it on the first row.
	until("the last figures in the pulse view", func(s string) bool {
		// Three rows: a live update can put vm-00099 and vm-00199 first
		// too, never with vm-00098 third.
		listed := func(row int, name string) bool { return below(s, row, "  "+name) || below(s, row, "▸ "+name) }
		return strings.Contains(s, "Pulse · 200 guests") && listed(1, "vm-00099") && listed(2, "vm-00199") && listed(3, "vm-00098")
	})
	keys("Home")
	until("the selection on the first row", func(s string) bool {
		return below(s, 1, "▸ vm-00099") && below(s, 2, "  vm-00199")
	})
	keys("Down")
	want := "vm-00199"
	until("the selection on the second row", func(s string) bool {
		return below(s, 1, "  vm-00099") && below(s, 2, "▸ "+want)
	})
	keys("Enter")
	s = waitFor("jumped to " + want)
	if !strings.Contains(s, "─ "+want) {
		t.Errorf("the detail pane is not on %s:\n%s", want, s)
	}
	if strings.Contains(s, "Pulse · ") {
		t.Errorf("the pulse view did not close:\n%s", s)
	}
	keys("q")
	tt.waitStderr("pulse dashboard quit")
}

// TestTmux runs the dashboard in a real terminal (tmux, on a private server)
// and drives it with keys: filter, mark, an action with confirmation, a
// resize below the minimum, and quitting with a guest frozen by us: a
// habitual q q thaws it before the program ends.
func TestTmux(t *testing.T) {
	tt := startTUI(t, 110, 32, e2eEnv+"=1")
	tmux, waitFor, keys := tt.tmux, tt.waitFor, tt.keys

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
	tt.waitStderr("thawed=1 runs=1")
}

// TestTmuxGroup: in a real terminal, :group tag (picked by tab from the
// palette), z folds the cursor's group, space on its header marks the
// group, and an action goes to those guests, folded as they are.
func TestTmuxGroup(t *testing.T) {
	tt := startTUI(t, 100, 30, e2eEnv+"=1")
	waitFor, keys := tt.waitFor, tt.keys

	waitFor("guestdeck 200 guests")
	keys(":")
	keys("-l", "group t")
	waitFor("group tag")
	keys("Tab", "Enter")
	// The cursor stays on vm-00000, in web, the last group.
	waitFor("▾ web  67 · 10 frozen · 10 connecting · 9 silent · 9 unreachable")
	keys("z")
	waitFor("▸ web  67")
	keys("Space")
	waitFor("●  ▸ web  67")
	keys("p")
	waitFor("ping: 67 ok, 0 failed, 0 skipped")
	keys(":")
	keys("-l", "group none")
	keys("Enter")
	waitFor("group: none")
	keys("q")
	waitFor("1 guest frozen by guestdeck")
	keys("q")
	tt.waitStderr("thawed=1 runs=1")
}

// tuiTerm is this test binary's dashboard (TestMain picks it by env) in a
// terminal of its own: a private tmux server, killed when the test ends,
// with the program's stderr in a file.
type tuiTerm struct {
	t      *testing.T
	sock   string
	stderr string
}

// tuiPatience bounds every wait for the screen: a loaded 2-core machine;
// polling makes it quick otherwise.
const tuiPatience = 30 * time.Second

// startTUI runs the dashboard at w×h with env (NAME=VALUE) added.
func startTUI(t *testing.T, w, h int, env ...string) *tuiTerm {
	t.Helper()
	testpeers.Require(t, testpeers.NeedTmux)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tt := &tuiTerm{t: t, sock: fmt.Sprintf("gdtui%d-%d", os.Getpid(), time.Now().UnixNano()),
		stderr: filepath.Join(t.TempDir(), "stderr")}
	args := []string{"-f", "/dev/null", "new-session", "-d", "-s", "gd", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h),
		"-e", "TERM=xterm-256color"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	tt.tmux(append(args, fmt.Sprintf("%s -test.run=^$ 2>%s; sleep 60", exe, tt.stderr))...)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", tt.sock, "kill-server").Run() })
	return tt
}

func (tt *tuiTerm) tmux(args ...string) string {
	tt.t.Helper()
	b, err := exec.Command("tmux", append([]string{"-L", tt.sock}, args...)...).CombinedOutput()
	if err != nil {
		tt.t.Fatalf("tmux %v: %v: %s", args, err, b)
	}
	return string(b)
}

func (tt *tuiTerm) screen() string { return tt.tmux("capture-pane", "-p", "-t", "gd") }

// until polls the screen until cond accepts it, and returns that screen.
func (tt *tuiTerm) until(what string, cond func(string) bool) string {
	tt.t.Helper()
	var s string
	wait.For(tt.t, tuiPatience, func() (bool, string) {
		s = tt.screen()
		return cond(s), fmt.Sprintf("the screen shows no %s:\n%s", what, s)
	})
	return s
}

func (tt *tuiTerm) waitFor(text string) string {
	tt.t.Helper()
	return tt.until(fmt.Sprintf("%q", text), func(s string) bool { return strings.Contains(s, text) })
}

// keys types keys; a short pause lets esc-prefixed sequences settle.
func (tt *tuiTerm) keys(k ...string) {
	tt.t.Helper()
	tt.tmux(append([]string{"send-keys", "-t", "gd"}, k...)...)
	time.Sleep(100 * time.Millisecond)
}

// waitStderr waits until the program's stderr holds text (it prints there
// as it ends).
func (tt *tuiTerm) waitStderr(text string) {
	tt.t.Helper()
	wait.For(tt.t, tuiPatience, func() (bool, string) {
		b, _ := os.ReadFile(tt.stderr)
		return strings.Contains(string(b), text), fmt.Sprintf("stderr has no %q: %q\n%s", text, b, tt.screen())
	})
}
