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

// inTerminal runs `guestdeck args...` to its end in a tmux pane of its own,
// a real terminal that takes OSC 0 (pane title) and OSC 52 (a paste buffer)
// from what it is sent, and returns the screen, the pane's title and the
// paste buffers.
func inTerminal(t *testing.T, args ...string) (screen, title, buffers string) {
	t.Helper()
	testpeers.Require(t, testpeers.NeedTmux)
	dir := t.TempDir()
	conf := filepath.Join(dir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -s set-clipboard on\nset -g allow-rename on\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	server := "gdterm" + filepath.Base(dir)
	tmux := func(a ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", server}, a...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = tmux("kill-server") })
	quoted := []string{e2eQuote(binary)}
	for _, a := range args {
		quoted = append(quoted, e2eQuote(a))
	}
	done := filepath.Join(dir, "done")
	script := strings.Join(quoted, " ") + "; touch " + e2eQuote(done) + "; exec sleep 600"
	if out, err := tmux("-f", conf, "new-session", "-d", "-s", "gd", "-x", "200", "-y", "50",
		"env", "HOME="+dir, "XDG_CONFIG_HOME="+dir, "NO_COLOR=1", "sh", "-c", script); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
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
	screen, _ = tmux("capture-pane", "-p", "-t", "gd")
	title, _ = tmux("display-message", "-p", "-t", "gd", "#{pane_title}")
	buffers, _ = tmux("list-buffers", "-F", "#{buffer_sample}")
	return screen, strings.TrimSpace(title), strings.TrimSpace(buffers)
}

// TestCatOnTerminal: cat and get - write a guest's file to a terminal as
// run read shows it, escaped; the terminal's title and clipboard stay as
// they were. Piped, they stay byte-exact (TestHostileGuestCLI).
func TestCatOnTerminal(t *testing.T) {
	cfg := hostileFarm(t)
	evil := "/tmp/evil" + sim.Hostile
	for _, args := range [][]string{{"cat", "evil", evil}, {"get", "evil", evil, "-"}} {
		screen, title, buffers := inTerminal(t, append([]string{"-c", cfg}, args...)...)
		if strings.Contains(title, "OWNED") || buffers != "" {
			t.Errorf("%s on a terminal: its title became %q, its clipboard %q", args[0], title, buffers)
		}
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
