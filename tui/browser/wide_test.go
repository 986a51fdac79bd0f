package browser

import (
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// A line wider than the screen is cut at the edge; the key hint must say
// that ←/→ scroll sideways, or the rest of the line looks absent.
func TestWideLineScrollsSideways(t *testing.T) {
	cfg := guestConfig("g")
	cfg.Files["/data/wide.txt"] = sim.File{Data: strings.Repeat("x", 200) + " END\n", ModTime: epoch}
	f, _ := simFleet(t, fleet.Options{}, cfg)
	h := newHarness(t, f, "g", monoOpts())
	h.press("o")
	h.prompt("/data/wide.txt")
	if h.m.view == nil {
		t.Fatalf("wide.txt not open; msg %q", h.m.msg)
	}
	if s := h.screen(); strings.Contains(s, "END") || !strings.Contains(s, "←→") {
		t.Fatalf("before scrolling: END shown or no ←→ in the hint:\n%s", s)
	}
	for range 60 {
		h.press("right")
	}
	if s := h.screen(); !strings.Contains(s, "END") {
		t.Fatalf("→ did not scroll the line's end into view:\n%s", s)
	}
}
