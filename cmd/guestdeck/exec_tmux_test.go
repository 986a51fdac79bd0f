package main

import (
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// TestExecDashboardE2E drives the dashboard's exec in a real terminal on
// simulated guests: ! with a command line, the confirmation naming the
// count, the results pane with exit codes and escaped output, search, the
// history, and esc stopping a wait for a program that keeps running.
func TestExecDashboardE2E(t *testing.T) {
	gs, cfg := simGuests(t, "", simCfg("a", nil), simCfg("b", nil), simCfg("c", func(c *sim.Config) { c.NoExec = true }))
	tt := e2eStart(t, "-c", cfg)
	tt.waitText("guestdeck 3 guests", "ready 3")
	tt.keys("Space", "Space", "Space") // a, b and c
	tt.text("!")
	tt.text(`sh -c 'echo hello-e2e; echo "warn` + "\u202e" + `ing" >&2; exit 3'`)
	tt.keys("Enter")
	tt.waitText("on 3 guests?", "a, b, c", "y/enter runs it")
	if n := gs["a"].Calls("guest-exec"); n != 0 {
		t.Fatalf("guest-exec sent before the confirmation (%d)", n)
	}
	tt.text("y")
	s := tt.waitText("finished in", "0 exit 0, 2 failed, 1 skipped", "── a: exit 3", "hello-e2e", "── stderr ──")
	if !strings.Contains(s, `warn\u202eing`) || strings.Contains(s, "\u202e") {
		t.Errorf("stderr not escaped on screen:\n%s", s)
	}
	if !strings.Contains(s, "guest-exec is disabled on this guest") {
		t.Errorf("the skipped guest does not say why:\n%s", s)
	}
	if n := gs["c"].Calls("guest-exec"); n != 0 {
		t.Errorf("guest-exec sent %d times to a guest that disabled it", n)
	}
	// Search the output, select the next guest.
	tt.text("/")
	tt.text("e2e")
	tt.keys("Enter")
	tt.keys("Down")
	tt.waitText("── b: exit 3")
	tt.keys("Escape") // closes the finished pane
	tt.waitFor("the table again", func(s string) bool { return strings.Contains(s, "NAME") && !strings.Contains(s, "── b:") })

	// The history brings the line back; a program that keeps running is
	// waited for until esc, and reported still running.
	tt.text("!")
	tt.keys("Up")
	tt.waitText(`! sh -c 'echo hello-e2e`)
	tt.keys("C-u") // clear the line
	tt.text("sleep 600")
	tt.keys("Enter")
	tt.waitText("on 3 guests?")
	tt.text("y")
	tt.waitText("done (esc stops waiting)", "running as pid")
	tt.keys("Escape")
	tt.waitText("stopped waiting, programs may still run", "still-running")
	tt.keys("Escape")
	tt.text("q")
	tt.waitText("guestdeck-exited")
}
