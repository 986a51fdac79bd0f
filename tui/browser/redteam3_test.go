package browser

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// An upload's destination is a FIFO on a guest without guest-exec: the
// read probe's guest-file-open blocks, and qemu-ga, single-threaded, then
// answers nothing at all (the simulator's hang). The probe gives up at the
// browser's timeout; the question says it could not tell rather than call
// the file new; the browser is usable at once, and again for the guest
// once its agent answers.
func TestUploadProbeOfABlockingFile(t *testing.T) {
	cfg := guestConfig("g")
	cfg.NoExec = true
	f, guests := simFleet(t, fleet.Options{}, cfg)
	opts := monoOpts()
	opts.Timeout = time.Second
	h := newHarness(t, f, "g", opts)
	m := h.m
	h.press("esc") // the path prompt a guest without a listing opens with
	src := filepath.Join(t.TempDir(), "up.txt")
	if err := os.WriteFile(src, []byte("new content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.press("u")
	h.prompt(src)
	guests["g"].SetHang(true)
	h.prompt("/run/fifo")
	if m.confirm == nil {
		t.Fatalf("no question after the probe; message %q loading %q", m.msg, m.loading)
	}
	q := m.confirm.question
	if !strings.Contains(q, "could not tell whether it exists") || strings.Contains(q, "exists: overwrite") {
		t.Errorf("question %q", q)
	}
	if m.loading != "" {
		t.Errorf("still loading %q after the probe gave up", m.loading)
	}
	h.press("n")
	h.wantMsg("cancelled")
	if n := guests["g"].Calls("guest-file-write"); n != 0 {
		t.Errorf("%d writes after no", n)
	}
	guests["g"].SetHang(false)
	h.press("o")
	h.prompt("/data/hello.txt")
	if m.view == nil || !strings.Contains(h.screen(), "line a") {
		t.Errorf("the guest's file does not open after its agent answers again:\n%s", h.screen())
	}
}

// A guest file made to pass as text (fewer than one control byte in ten:
// the binary test looks no further) with escapes, bidi controls and
// characters of disputed width in it and in its name: the listing and the
// viewer show it escaped, every line within the screen and as wide by
// wcwidth (Bubble Tea's renderer, tmux, xterm) as by grapheme clusters.
func TestTextThatPassesAsTextAndLies(t *testing.T) {
	disputed := strings.Repeat("a\U0001F3FB", 6) + strings.Repeat("\u263a\ufe0f", 6) + "\U0001F1FA"
	var body strings.Builder
	for i := range 40 {
		// 95 bytes of text and 5 of escapes a line: 5% control bytes.
		fmt.Fprintf(&body, "%02d \x1b]0;t\x07\u202e%s\x1b[2J%s%s\n", i, disputed, strings.Repeat("-", 20), strings.Repeat("x", 30))
	}
	if isBinary([]byte(body.String())) {
		t.Fatal("the file is taken for binary: the attack needs it shown as text")
	}
	cfg := guestConfig("g")
	cfg.Files["/data/liar-"+disputed+".txt"] = sim.File{Data: body.String()}
	f, _ := simFleet(t, fleet.Options{}, cfg)
	for _, size := range [][2]int{{80, 20}, {160, 30}} {
		h := newHarness(t, f, "g", monoOpts())
		h.m.SetSize(size[0], size[1])
		fits := func(what string) {
			t.Helper()
			frame := h.m.View()
			screenSafe(t, what, frame)
			for i, l := range strings.Split(ownSGR.ReplaceAllString(frame, ""), "\n") {
				g, wc := ansi.StringWidth(l), ansi.StringWidthWc(l)
				if g > size[0] || g != wc {
					t.Errorf("%s at %v: line %d is %d cells by clusters, %d by wcwidth: %q", what, size, i, g, wc, l)
				}
			}
		}
		h.press("o")
		h.prompt("/data")
		fits("listing")
		h.press("o")
		h.prompt("/data/liar-" + disputed + ".txt")
		if h.m.view == nil || h.m.view.binary {
			t.Fatalf("the file is not shown as text: %q", h.m.msg)
		}
		fits("viewer")
		if !strings.Contains(h.m.View(), `a\U0001f3fb`) || !strings.Contains(h.m.View(), `\x1b]0;t\x07\u202e`) {
			t.Errorf("the viewer does not show the escapes:\n%s", h.m.View())
		}
	}
}
