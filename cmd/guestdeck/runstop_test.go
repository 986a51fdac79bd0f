package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// An interrupt stops `run` as the dashboard's stop key does: the guests not
// yet started are not, and the call in flight is not cut but finishes with
// its real result. Four simulated guests, one at a time; once the intent is
// on record every agent is made to hang, so the guest whose turn it is
// stays in flight while ctrl-c arrives, and answers after. A second ctrl-c
// cuts it: the agent still hangs, and the call ends at once.
//
// The interrupt follows the intent by however long the machine takes; one
// that comes before the first guest's turn stops everything before it
// starts (also right, and checked), but shows nothing about a call in
// flight, so the run is tried again, up to three times.
func TestRunInterruptStopsStarting(t *testing.T) {
	for _, twice := range []bool{false, true} {
		t.Run(map[bool]string{false: "once", true: "twice"}[twice], func(t *testing.T) {
			for attempt := 1; attempt <= 3; attempt++ {
				if checkRunInterrupt(t, twice) {
					return
				}
				t.Logf("attempt %d: the interrupt came before the first guest's turn", attempt)
			}
			t.Fatal("the interrupt never landed while a guest's call was in flight, in 3 attempts")
		})
	}
}

// checkRunInterrupt runs the scenario once and reports whether the
// interrupt landed with a guest started.
func checkRunInterrupt(t *testing.T, twice bool) (landed bool) {
	var cfgs []sim.Config
	var names []string
	for i := range 4 {
		names = append(names, fmt.Sprintf("i%d", i))
		cfgs = append(cfgs, simCfg(names[i], nil))
	}
	gs, cfg := simGuests(t, "[defaults]\nconcurrency = 1\ntimeout = \"30s\"\n", cfgs...)
	for _, g := range gs {
		g.SetLatency(100 * time.Millisecond) // a turn outlasts the look at the audit log
	}
	env, logPath := stateEnv(t)
	p := startGDEnv(t, env, "-c", cfg, "run", "--json", "--yes", "settime", "all")
	cmd, out, errb, done := p.cmd, p.stdout, p.stderr, p.done
	wait.For(t, 60*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(logPath)
		return bytes.Contains(b, []byte(`"intent"`)), "no intent in the audit log yet:\n" + errb.String()
	})
	for _, g := range gs {
		g.SetHang(true)
	}
	cmd.Process.Signal(syscall.SIGINT)
	wait.For(t, 30*time.Second, func() (bool, string) {
		return strings.Contains(errb.String(), "stopping: no more guests are started"), "no stop message:\n" + errb.String()
	})
	if twice {
		cmd.Process.Signal(syscall.SIGINT)
	} else {
		for _, g := range gs {
			g.SetHang(false)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("run still going 60 s after the interrupt:\n%s", errb.String())
	}
	code := 0
	if ee, ok := p.err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	var rs []runJSON
	if err := json.Unmarshal([]byte(out.String()), &rs); err != nil || len(rs) != len(names) {
		t.Fatalf("run --json: %v, %d results\n%s%s", err, len(rs), out.String(), errb.String())
	}
	started := 0
	for i, r := range rs {
		calls := gs[r.Name].Calls("guest-set-time")
		switch {
		case r.Name != names[i]:
			t.Fatalf("result %d is %s, want %s", i, r.Name, names[i])
		case r.OK && calls == 1 && started == i:
			started++ // a prefix was started, each carried out once
		case twice && !r.OK && strings.Contains(r.Error, "context canceled") && calls == 0 && started == i:
			started++ // the one in flight, cut by the second interrupt
		case !r.OK && r.Error == fleet.NotStartedText && calls == 0 && i >= started:
		default:
			t.Errorf("%s: ok %v, error %q, set-time carried out %d times (started so far %d)", r.Name, r.OK, r.Error, calls, started)
		}
	}
	if started == len(names) {
		t.Errorf("%d of %d started: the interrupt stopped nothing\n%s", started, len(names), errb.String())
	}
	if code != exitFail {
		t.Errorf("exit %d, want %d (guests not started did not get the action)", code, exitFail)
	}
	checkInterruptAudited(t, env, len(names)-started)
	if started == 0 {
		return false // nothing was in flight to cut, whatever the interrupts
	}
	if cutMsg := strings.Contains(errb.String(), "cutting the calls"); cutMsg != twice {
		t.Errorf("cut the calls: %v after %d interrupts\n%s", cutMsg, map[bool]int{false: 1, true: 2}[twice], errb.String())
	}
	return true
}

// exec stops the same way: the first interrupt starts no program on a
// further guest and still waits for the one running, which exits on its
// own (sleep 2); the second stops waiting, and the program is reported
// still running.
func TestExecInterruptStopsStarting(t *testing.T) {
	t.Run("once", func(t *testing.T) { checkExecInterrupt(t, false) })
	t.Run("twice", func(t *testing.T) { checkExecInterrupt(t, true) })
}

func checkExecInterrupt(t *testing.T, twice bool) {
	var cfgs []sim.Config
	var names []string
	for i := range 3 {
		names = append(names, fmt.Sprintf("x%d", i))
		cfgs = append(cfgs, simCfg(names[i], nil))
	}
	gs, cfg := simGuests(t, "", cfgs...)
	env, _ := stateEnv(t)
	defer func() {
		if !t.Failed() {
			checkInterruptAudited(t, env, len(names)-1)
		}
	}()
	p := startGDEnv(t, env, "-c", cfg, "exec", "--yes", "--json", "--concurrency", "1", "all", "--", "sleep", "2")
	// The first guest's program is running: interrupt then.
	wait.For(t, 60*time.Second, func() (bool, string) {
		return gs["x0"].Calls("guest-exec") == 1, "x0 not started yet:\n" + p.stderr.String()
	})
	p.cmd.Process.Signal(syscall.SIGINT)
	p.waitStderr(t, "stopping: no program is started on a further guest", 30*time.Second)
	if twice {
		p.cmd.Process.Signal(syscall.SIGINT)
	}
	p.wait(t, 60*time.Second)
	var rows []execJSON
	if err := json.Unmarshal([]byte(p.stdout.String()), &rows); err != nil || len(rows) != len(names) {
		t.Fatalf("exec --json: %v, %d rows\n%s%s", err, len(rows), p.stdout.String(), p.stderr.String())
	}
	want := map[string]string{"x0": string(fleet.ExecExited), "x1": string(fleet.ExecFailed), "x2": string(fleet.ExecFailed)}
	if twice {
		want["x0"] = string(fleet.ExecStillRunning)
	}
	for _, r := range rows {
		errText := ""
		if r.Error != nil {
			errText = *r.Error
		}
		if r.State != want[r.Name] {
			t.Errorf("%s: state %s, want %s (error %q)", r.Name, r.State, want[r.Name], errText)
		}
		if r.Name != "x0" && (errText != fleet.NotStartedText || gs[r.Name].Calls("guest-exec") != 0) {
			t.Errorf("%s: error %q, %d programs started: want none, not started", r.Name, errText, gs[r.Name].Calls("guest-exec"))
		}
	}
}

// checkInterruptAudited: the outcome on record says the action was stopped
// by an interrupt, with notStarted guests not started, as the dashboard's
// stop key's outcome says it was stopped by the operator.
func checkInterruptAudited(t *testing.T, env []string, notStarted int) {
	t.Helper()
	var outcome *audit.Entry
	es := auditEntries(t, env)
	for i := range es {
		if es[i].Phase == audit.Outcome {
			outcome = &es[i]
		}
	}
	switch {
	case outcome == nil:
		t.Errorf("no outcome in the audit log: %+v", es)
	case outcome.Stopped == nil:
		t.Errorf("the outcome does not say the action was stopped: %+v", *outcome)
	case outcome.Stopped.By != audit.StoppedByInterrupt || outcome.Stopped.NotStarted != notStarted || outcome.Stopped.At.IsZero():
		t.Errorf("stopped %+v, want by %s with %d not started", *outcome.Stopped, audit.StoppedByInterrupt, notStarted)
	case !strings.Contains(outcome.Stopped.Words(), "stopped by an interrupt at"):
		t.Errorf("the stop in words: %q", outcome.Stopped.Words())
	}
}
