package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// stoppedClock is a guest whose clock stands still (a drift of -1): the test
// knows the exact nanoseconds its agent will say.
func stoppedClock(name string) sim.Config {
	return simCfg(name, func(c *sim.Config) { c.ClockDrift = -1 })
}

// TestAgentSeveralGuests: agent takes selectors. Text prints one line per
// guest that answered, "GUEST: REPLY" with the reply exact on one line, and
// the guests that did not on stderr; --json prints an array of one object
// per guest. Exit codes are run's: 3 when a guest only lacks the command, 1
// when one failed.
func TestAgentSeveralGuests(t *testing.T) {
	gs, cfg := simGuests(t, "[defaults]\ntimeout = \"500ms\"\n",
		stoppedClock("a1"), stoppedClock("a2"),
		simCfg("b-off", func(c *sim.Config) { c.Disabled = []string{"guest-get-time"} }),
		stoppedClock("c-silent"))
	clock := func(n string) string { return strconv.FormatInt(gs[n].Clock().UnixNano(), 10) }
	const getTime = `{"execute":"guest-get-time"}`

	r := gd(t, 30*time.Second, "-c", cfg, "agent", "a*", getTime)
	want := "a1: {\"return\":" + clock("a1") + "}\na2: {\"return\":" + clock("a2") + "}\n"
	if r.code != exitOK || r.stdout != want || r.stderr != "" {
		t.Fatalf("agent a*: exit %d\nstdout %q\nwant   %q\nstderr %q", r.code, r.stdout, want, r.stderr)
	}

	r = gd(t, 30*time.Second, "-c", cfg, "agent", "a1", "b-off", getTime)
	if r.code != exitSkipped || !strings.Contains(r.stdout, `b-off: {"error":{"class":"CommandNotFound","desc":"Command guest-get-time has been disabled"`) {
		t.Errorf("a disabled command: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}

	gs["c-silent"].SetSilent(true)
	r = gd(t, 60*time.Second, "-c", cfg, "agent", "--json", "all", getTime)
	if r.code != exitFail {
		t.Errorf("a silent guest: exit %d, want 1\n%s", r.code, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.UseNumber()
	var got []struct {
		Name    string          `json:"name"`
		OK      bool            `json:"ok"`
		Skipped bool            `json:"skipped"`
		Error   string          `json:"error"`
		Reply   json.RawMessage `json:"reply"`
	}
	if err := dec.Decode(&got); err != nil || len(got) != 4 {
		t.Fatalf("agent --json all: %v\n%s", err, r.stdout)
	}
	for _, g := range got {
		var compact bytes.Buffer
		json.Compact(&compact, g.Reply)
		switch g.Name {
		case "a1", "a2":
			if !g.OK || g.Skipped || g.Error != "" || compact.String() != `{"return":`+clock(g.Name)+`}` {
				t.Errorf("%s: %+v %s", g.Name, g, compact.String())
			}
		case "b-off":
			if g.OK || !g.Skipped || !strings.Contains(g.Error, "disabled") || !strings.Contains(compact.String(), `"class":"CommandNotFound"`) {
				t.Errorf("%s: %+v %s", g.Name, g, compact.String())
			}
		case "c-silent":
			if g.OK || g.Skipped || g.Error == "" || compact.String() != "null" {
				t.Errorf("%s: %+v %s", g.Name, g, compact.String())
			}
		default:
			t.Errorf("unexpected guest %q", g.Name)
		}
	}
	if got[0].Name != "a1" || got[3].Name != "c-silent" {
		t.Errorf("not in the fleet's order: %s ... %s", got[0].Name, got[3].Name)
	}
	r = gd(t, 60*time.Second, "-c", cfg, "agent", "all", getTime)
	if r.code != exitFail || !strings.Contains(r.stderr, "guestdeck: agent c-silent: ") || strings.Contains(r.stdout, "c-silent") {
		t.Errorf("text, a silent guest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestAgentSeveralMutating: on several guests a command that changes them is
// refused without --yes and without a terminal, and under --readonly, with
// nothing sent; with --yes it reaches every guest and is audited naming each.
func TestAgentSeveralMutating(t *testing.T) {
	gs, cfg := simGuests(t, "", simCfg("m1", nil), simCfg("m2", nil))
	env, _ := stateEnv(t)
	const setTime = `{"execute":"guest-set-time","arguments":{"time":1700000000000000000}}`
	for _, args := range [][]string{
		{"-c", cfg, "agent", "m1", "m2", setTime},
		{"-c", cfg, "--readonly", "agent", "--yes", "all", setTime},
		// A pattern that matched one guest is asked, as run asks: only a
		// guest named by its name is the raw command's escape hatch.
		{"-c", cfg, "agent", "m[1]", setTime},
	} {
		r := gdEnv(t, 30*time.Second, env, args...)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	for n, g := range gs {
		if c := g.Calls("guest-set-time"); c != 0 {
			t.Fatalf("%s: guest-set-time sent %d times before a yes", n, c)
		}
	}
	r := gdEnv(t, 30*time.Second, env, "-c", cfg, "agent", "--yes", "m*", setTime)
	if r.code != exitOK || r.stdout != "m1: {\"return\":{}}\nm2: {\"return\":{}}\n" {
		t.Fatalf("--yes: exit %d\n%q%s", r.code, r.stdout, r.stderr)
	}
	for n, g := range gs {
		if c := g.Calls("guest-set-time"); c != 1 {
			t.Errorf("%s: guest-set-time sent %d times, want 1", n, c)
		}
	}
	es := auditEntries(t, env)
	if len(es) != 2 || es[0].Action != "agent guest-set-time" || len(es[1].Guests) != 2 ||
		es[1].Guests[0].Name != "m1" || es[1].Guests[0].Result != "ok" || es[1].Guests[1].Name != "m2" || es[1].Guests[1].Result != "ok" ||
		strings.Join(es[0].Selector, " ") != "m*" {
		t.Errorf("audit: %+v", es)
	}
}

// TestAgentSeveralTypedCount: a raw guest-shutdown on several guests wants
// the count typed on a terminal, as run shutdown does (fleet.RawConfirmation
// and Action.TypedCount share the rule): "y" cancels, "2" sends it.
func TestAgentSeveralTypedCount(t *testing.T) {
	testpeers.Require(t, testpeers.NeedTmux)
	farm, cfg := simFarm(t, 2)
	dir, err := os.MkdirTemp("/tmp", "gdt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, answer := range []string{"y", "2"} {
		sock := dir + "/tmux-" + answer + ".sock"
		t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
		script := fmt.Sprintf(`HOME=%s XDG_STATE_HOME=%s/state %s -c %s agent 's*' '{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}'; echo exit=$?; sleep 30`, dir, dir, binary, cfg)
		tmux(t, sock, "new-session", "-d", "-s", "gd", "-x", "120", "-y", "20", "sh", "-c", script)
		waitScreen(t, sock, "Send guest-shutdown to 2 guests? s0, s1", 15*time.Second)
		waitScreen(t, sock, "Type 2 to confirm:", 5*time.Second)
		tmux(t, sock, "send-keys", "-t", "gd", answer, "Enter")
		if answer == "y" {
			waitScreen(t, sock, "exit=2", 10*time.Second)
			if n := farm.Guests()[0].Calls("guest-shutdown") + farm.Guests()[1].Calls("guest-shutdown"); n != 0 {
				t.Fatal("y sent guest-shutdown where the count was asked")
			}
		} else {
			screen := waitScreen(t, sock, "exit=0", 10*time.Second)
			for _, g := range farm.Guests() {
				if mode, down := g.ShutdownMode(); !down || mode != "reboot" {
					t.Fatalf("typed 2: %s shutdown %q %v\n%s", g.Config().Name, mode, down, screen)
				}
			}
		}
		tmux(t, sock, "kill-session", "-t", "gd")
	}
}
