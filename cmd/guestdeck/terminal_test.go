package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/tui/present"
)

// hostileTerm starts `guestdeck args...` in a tmux pane of its own, a real
// terminal that takes OSC 0 (the pane's title) and OSC 52 (a paste buffer)
// from what it is sent. done is created when guestdeck ends.
func hostileTerm(t *testing.T, args ...string) (tt *e2eTerm, done string) {
	t.Helper()
	testpeers.Require(t, testpeers.NeedTmux)
	dir := t.TempDir()
	conf := filepath.Join(dir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -s set-clipboard on\nset -g allow-rename on\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tt = &e2eTerm{t: t, server: "gdterm" + filepath.Base(dir)}
	quoted := []string{e2eQuote(binary)}
	for _, a := range args {
		quoted = append(quoted, e2eQuote(a))
	}
	done = filepath.Join(dir, "done")
	script := strings.Join(quoted, " ") + "; touch " + e2eQuote(done) + "; exec sleep 600"
	tt.tmux("-f", conf, "new-session", "-d", "-s", "gd", "-x", "200", "-y", "50",
		"env", "HOME="+dir, "XDG_CONFIG_HOME="+dir, "NO_COLOR=1", "sh", "-c", script)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", tt.server, "kill-server").Run() })
	return tt, done
}

// untouched fails when the terminal's title or clipboard changed.
func (tt *e2eTerm) untouched(what, title string) {
	tt.t.Helper()
	got := tt.display("#{pane_title}")
	bufs := strings.TrimSpace(tt.tmux("list-buffers", "-F", "#{buffer_sample}"))
	if got != title || bufs != "" {
		tt.t.Errorf("%s: the terminal's title became %q (want %q), its clipboard %q", what, got, title, bufs)
	}
}

// inTerminal runs `guestdeck args...` to its end in a hostileTerm and
// returns the screen it left.
func inTerminal(t *testing.T, what string, args ...string) string {
	t.Helper()
	tt, done := hostileTerm(t, args...)
	deadline := time.Now().Add(e2eWait)
	for {
		if _, err := os.Stat(done); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guestdeck %q did not end in %v", args, e2eWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tt.untouched(what, tt.display("#{host}"))
	return tt.screen()
}

// TestCatOnTerminal: cat and get - write a guest's file to a terminal as
// run read shows it, escaped; the terminal's title and clipboard stay as
// they were. Piped, they stay byte-exact (TestHostileGuestCLI).
func TestCatOnTerminal(t *testing.T) {
	cfg := hostileFarm(t)
	evil := "/tmp/evil" + sim.Hostile
	for _, args := range [][]string{{"cat", "evil", evil}, {"get", "evil", evil, "-"}} {
		screen := inTerminal(t, args[0]+" on a terminal", append([]string{"-c", cfg}, args...)...)
		if !strings.Contains(screen, "line one\n"+`\x1b]0;OWNED\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\u009b31m`) || !strings.Contains(screen, "line three") {
			t.Errorf("%s on a terminal does not show the file escaped:\n%s", args[0], screen)
		}
	}
}

// TestBlockStream: however the agent's chunks split a file (inside a rune,
// between CR and LF, inside an escape), what reaches the terminal is what
// present.Block makes of the whole file; a line longer than blockHold is
// still written as it comes, never splitting a rune.
func TestBlockStream(t *testing.T) {
	for _, in := range []string{
		"line one\n" + sim.Hostile + "\nline three\n",
		"a\tb\r\nc\td\r\n日本語 e\n",
		"no final newline \xe6\x97\xa5\xff",
		"cr at the end\r",
		"\x1b]52;c;cm0gLXJmIH4=\x07",
	} {
		want := present.Block(in, 8)
		for split := 0; split <= len(in); split++ {
			var b strings.Builder
			s := &blockStream{w: &b}
			s.Write([]byte(in[:split]))
			s.Write([]byte(in[split:]))
			if err := s.Flush(); err != nil || b.String() != want {
				t.Errorf("%q split at %d: %q, %v; want %q", in, split, b.String(), err, want)
			}
		}
	}
	long := strings.Repeat("日", blockHold) // 3 bytes each: no line end for 3*blockHold bytes
	var b strings.Builder
	s := &blockStream{w: &b}
	for i := 0; i < len(long); i += 1000 {
		s.Write([]byte(long[i:min(i+1000, len(long))]))
		if !utf8.ValidString(b.String()) {
			t.Fatalf("a rune was split after %d bytes", i+1000)
		}
	}
	if b.Len() == 0 || len(s.held) > blockHold+1000 {
		t.Errorf("a long line is held, not written: %d bytes written, %d held", b.Len(), len(s.held))
	}
	s.Flush()
	if b.String() != long {
		t.Error("the long line did not come out whole")
	}
}

// TestDashboardOnTerminal: the dashboard on a guest with escapes in every
// string, in a real terminal: through the table, every detail tab, an
// action's failure in the guest's words, the event log and the file viewer,
// the terminal's title stays guestdeck's and its clipboard empty.
func TestDashboardOnTerminal(t *testing.T) {
	cfg := hostileFarm(t)
	tt, _ := hostileTerm(t, "-c", cfg)
	esc := `\x1b]0;OWNED\x07`
	tt.waitText("guestdeck 2 guests", "EvilOS 1"+esc[:6], "Hostname     host"+esc)
	tt.untouched("table and overview", "guestdeck")
	for _, step := range []struct {
		keys []string
		want string
	}{
		{[]string{"2"}, "invalid: 192.0.2.66" + esc[:6]},
		{[]string{"4"}, "vda1" + esc[:6]},
		{[]string{"5"}, "guest-get-host-name"},
		{[]string{":"}, ":"},
		{[]string{"-l", "fstrim"}, "fstrim"},
		{[]string{"Enter"}, "trim failed" + esc[:6]},
		{[]string{"e"}, "Event log"},
		{[]string{"Escape"}, "guestdeck 2 guests"},
		{[]string{"f"}, "Files · evil"},
		{[]string{"g"}, "open:"},
		{[]string{"-l", "/tmp/"}, "/tmp/"},
		{[]string{"Enter"}, "evil" + esc[:6]},
		{[]string{"Down"}, "> evil" + esc[:6]},
		{[]string{"Enter"}, "line three"},
	} {
		tt.keys(step.keys...)
		tt.waitText(step.want)
		tt.untouched(strings.Join(step.keys, " "), "guestdeck")
	}
}
