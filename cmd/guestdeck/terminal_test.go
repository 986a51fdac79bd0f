package main

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/tui/present"
)

// TestCatOnTerminal: cat and get - write a guest's file to a terminal as
// run read shows it, escaped; the terminal's title, window name and
// clipboard stay as they were. Piped, they stay byte-exact
// (TestHostileGuestCLI).
func TestCatOnTerminal(t *testing.T) {
	cfg := hostileFarm(t)
	evil := "/tmp/evil" + sim.Hostile
	for _, args := range [][]string{{"cat", "evil", evil}, {"get", "evil", evil, "-"}} {
		t.Run(args[0], func(t *testing.T) { // one tmux server each
			tt := hostileStart(t, append([]string{"-c", cfg}, args...)...)
			tt.waitText("guestdeck-exited")
			screen := tt.safe(args[0] + " on a terminal")
			if !strings.Contains(screen, "line one\n"+`\x1b]0;OWNED\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\u009b31m`) || !strings.Contains(screen, "line three") {
				t.Errorf("%s on a terminal does not show the file escaped:\n%s", args[0], screen)
			}
		})
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
