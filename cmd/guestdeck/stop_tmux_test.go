package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// TestTmuxStopAction: in a real terminal, a shutdown of eight simulated
// guests, two at a time, is stopped with ctrl+x while two are held
// answering (sim hang): the five not started are never sent it, the two
// held finish once released and are counted ok, the dashboard keeps
// running, and `guestdeck audit` prints the stop and every guest.
func TestTmuxStopAction(t *testing.T) {
	const n = 8
	var cfgs []sim.Config
	for i := range n {
		cfgs = append(cfgs, simCfg(fmt.Sprintf("st%d", i), nil))
	}
	// A long timeout: the held calls must not time out while held.
	gs, cfg := simGuests(t, "[defaults]\nconcurrency = 2\ntimeout = \"60s\"\ninterval = \"30s\"\n", cfgs...)
	env, _ := stateEnv(t)
	tt := e2eStartEnv(t, env, "-c", cfg)
	tt.waitText(fmt.Sprintf("ready %d", n))

	// All but the first answer nothing until released: the first's slot
	// goes to st2, which is held too, and the other five wait their turn.
	for i := 1; i < n; i++ {
		gs[fmt.Sprintf("st%d", i)].SetHang(true)
	}
	t.Cleanup(func() {
		for _, g := range gs {
			g.SetHang(false)
		}
	})
	tt.keys("C-a")
	tt.keys("X")
	tt.waitText(fmt.Sprintf("Shut down %d guests (powerdown)?", n))
	tt.text(fmt.Sprint(n))
	tt.keys("Enter")
	tt.waitText("1/8 · ctrl+x stops")

	tt.keys("C-x")
	stopping := "stopping shutdown powerdown: 2 guests still answering… (5 not started"
	tt.waitText(stopping)
	tt.keys("C-x")
	tt.waitText("already " + stopping)
	gs["st1"].SetHang(false)
	gs["st2"].SetHang(false)
	s := tt.waitText("shutdown powerdown stopped: 3 ok, 0 failed, 0 skipped, 5 not started")
	// The rows on the screen that shows the result agree with it (the
	// dashboard pulls the fleet when the action ends; it used to catch up
	// only at its next paced pull, and st2 showed ready beside this
	// status): the three sent the shutdown show it (shutting-down, or gone
	// once the guest went), the five not started stay ready. The status
	// line is below the rows: a screen that shows it shows the rows drawn
	// with it.
	rows := e2eRows(s)
	if len(rows) != n {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), n, s)
	}
	for _, r := range rows {
		var i int
		if _, err := fmt.Sscanf(r.name, "st%d", &i); err != nil {
			t.Fatalf("row %q: %v", r.name, err)
		}
		going := strings.Contains(r.text, " shutting-down ") || strings.Contains(r.text, " gone ")
		if i < 3 && !going || i >= 3 && !strings.Contains(r.text, " ready ") {
			t.Errorf("beside the result, %s shows %q: want shutting-down or gone for st0-st2, ready for the others", r.name, r.text)
		}
	}
	for i := range n {
		name := fmt.Sprintf("st%d", i)
		want := 0
		if i < 3 {
			want = 1
		}
		if got := gs[name].Calls("guest-shutdown"); got != want {
			t.Errorf("%s was sent guest-shutdown %d times, want %d:\n%s", name, got, want, s)
		}
	}
	tt.keys("q")
	tt.waitText("guestdeck-exited")

	r := gdEnv(t, e2eWait, env, "audit")
	if r.code != 0 {
		t.Fatalf("audit: exit %d\n%s", r.code, r.stderr)
	}
	var stopped, notStarted int
	for _, l := range strings.Split(r.stdout, "\n") {
		if !strings.Contains(l, "outcome") {
			continue
		}
		if strings.Contains(l, "stopped by the operator at ") && strings.Contains(l, "5 guests not started (nothing was sent to them)") {
			stopped++
		}
		if strings.Contains(l, "not started  ") && strings.Contains(l, "cancelled before it started (nothing was sent)") {
			notStarted++
		}
	}
	if stopped != 1 || notStarted != 5 {
		t.Errorf("guestdeck audit shows %d stop rows and %d guests not started, want 1 and 5:\n%s", stopped, notStarted, r.stdout)
	}
}
