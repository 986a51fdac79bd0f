package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// TestRunJSONFields runs each action on a simulated guest and checks that
// `run --json` carries the structured fields the action table names for it
// (Spec.ResultFields), with values the action actually produced, and no
// field of another action.
func TestRunJSONFields(t *testing.T) {
	_, cfg := simFarm(t, 1)
	allFields := []string{fleet.FieldRTT, fleet.FieldFilesystems, fleet.FieldTrimmedBytes, fleet.FieldVCPUs,
		fleet.FieldBytes, fleet.FieldClock, fleet.FieldThawAt, "stays_frozen"}
	tests := []struct {
		args  []string
		check func(t *testing.T, obj map[string]json.RawMessage, r runJSON)
	}{
		{[]string{"ping"}, func(t *testing.T, _ map[string]json.RawMessage, r runJSON) {
			if r.RTTNs == nil || *r.RTTNs <= 0 {
				t.Errorf("rtt_ns %v, want > 0", r.RTTNs)
			}
		}},
		{[]string{"--yes", "freeze"}, func(t *testing.T, _ map[string]json.RawMessage, r runJSON) {
			if r.Filesystems == nil || *r.Filesystems == 0 || !r.StaysFrozen || r.ThawAt != "" {
				t.Errorf("freeze --yes: filesystems %v stays_frozen %v thaw_at %q", r.Filesystems, r.StaysFrozen, r.ThawAt)
			}
		}},
		{[]string{"thaw"}, func(t *testing.T, _ map[string]json.RawMessage, r runJSON) {
			if r.Filesystems == nil || *r.Filesystems == 0 {
				t.Errorf("thaw: filesystems %v, want the ones frozen", r.Filesystems)
			}
		}},
		{[]string{"thaw"}, func(t *testing.T, obj map[string]json.RawMessage, r runJSON) {
			// Nothing to thaw is 0, present: a count, not an absent field.
			if string(obj[fleet.FieldFilesystems]) != "0" {
				t.Errorf("second thaw: filesystems %s, want 0", obj[fleet.FieldFilesystems])
			}
		}},
		{[]string{"fstrim"}, func(t *testing.T, _ map[string]json.RawMessage, r runJSON) {
			if r.Filesystems == nil || r.TrimmedBytes == nil || *r.Filesystems == 0 {
				t.Errorf("fstrim: filesystems %v trimmed_bytes %v", r.Filesystems, r.TrimmedBytes)
			}
		}},
		{[]string{"settime"}, func(t *testing.T, _ map[string]json.RawMessage, r runJSON) {
			at, err := time.Parse(time.RFC3339Nano, r.Clock)
			if err != nil || time.Since(at) < 0 || time.Since(at) > time.Minute {
				t.Errorf("settime: clock %q (%v), want the host time just sent", r.Clock, err)
			}
		}},
		{[]string{"vcpus", "online", "1"}, func(t *testing.T, _ map[string]json.RawMessage, r runJSON) {
			if r.VCPUs == nil || *r.VCPUs != 1 {
				t.Errorf("vcpus online 1: vcpus_set %v, want 1", r.VCPUs)
			}
		}},
		{[]string{"--yes", "write", "/tmp/gd-run-json", "hello"}, func(t *testing.T, _ map[string]json.RawMessage, r runJSON) {
			if r.Bytes == nil || *r.Bytes != 5 {
				t.Errorf("write: bytes %v, want 5", r.Bytes)
			}
		}},
		{[]string{"cat", "/tmp/gd-run-json"}, func(t *testing.T, _ map[string]json.RawMessage, r runJSON) {
			if r.Bytes == nil || *r.Bytes != 5 || r.Result != "hello" {
				t.Errorf("read back: bytes %v result %q", r.Bytes, r.Result)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"-c", cfg, "run", "--json"}, tt.args...)
			args = append(args, "s0")
			r := gd(t, 30*time.Second, args...)
			var objs []map[string]json.RawMessage
			var res []runJSON
			if err := json.Unmarshal([]byte(r.stdout), &objs); err != nil || len(objs) != 1 || json.Unmarshal([]byte(r.stdout), &res) != nil {
				t.Fatalf("exit %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
			}
			if !res[0].OK {
				t.Fatalf("not ok: %+v", res[0])
			}
			words, _ := splitAction(tt.args[slices.IndexFunc(tt.args, func(s string) bool { return !strings.HasPrefix(s, "--") }):])
			act, err := fleet.ParseAction(words)
			if err != nil {
				t.Fatal(err)
			}
			spec, _ := fleet.SpecOf(act.Kind)
			for _, f := range allFields {
				_, has := objs[0][f]
				want := slices.Contains(spec.ResultFields, f)
				if f == "stays_frozen" || f == fleet.FieldThawAt {
					// A freeze has one or the other (its check says
					// which); no other action has either.
					if has && !slices.Contains(spec.ResultFields, fleet.FieldThawAt) {
						t.Errorf("field %s on %s: %s", f, act, r.stdout)
					}
					continue
				}
				if has != want {
					t.Errorf("field %s present %v, the table says %v: %s", f, has, want, r.stdout)
				}
			}
			tt.check(t, objs[0], res[0])
		})
	}
}

// TestRunHoldJSONThawAt: under --hold, thaw_at is the end of the hold.
func TestRunHoldJSONThawAt(t *testing.T) {
	_, cfg := simFarm(t, 1)
	before := time.Now().Truncate(time.Second)
	r := gd(t, 60*time.Second, "-c", cfg, "run", "--json", "--yes", "--hold", "1s", "freeze", "s0")
	var res []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 || r.code != 0 {
		t.Fatalf("exit %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	at, err := time.Parse(time.RFC3339, res[0].ThawAt)
	if err != nil || at.Before(before.Add(time.Second)) || res[0].StaysFrozen {
		t.Errorf("--hold 1s: thaw_at %q (%v), stays_frozen %v", res[0].ThawAt, err, res[0].StaysFrozen)
	}
}

// TestRunConfirmQuestions: the confirmation without a terminal names the
// action and refuses; with one, the question is the table's sentence
// (checked in TestRunConfirmsOnTerminal and TestRunTypedCountOnTerminal).
func TestRunConfirmRefusedWithoutTerminal(t *testing.T) {
	farm, cfg := simFarm(t, 2)
	for _, args := range [][]string{{"reboot"}, {"shutdown", "halt"}, {"suspend", "mem"}, {"vcpus", "offline", "1"}, {"write", "/tmp/x", "y"}} {
		r := gd(t, 30*time.Second, append(append([]string{"-c", cfg, "run"}, args...), "s0", "s1")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "needs confirmation and stdin is not a terminal; pass --yes") {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	for _, g := range farm.Guests() {
		for _, c := range []string{"guest-shutdown", "guest-suspend-ram", "guest-set-vcpus", "guest-file-open"} {
			if n := g.Calls(c); n != 0 {
				t.Errorf("%s was sent %s %d times without confirmation", g.Config().Name, c, n)
			}
		}
	}
}

// TestRunTypedCountOnTerminal: shutting down several guests on a terminal
// needs the count typed, as in the dashboard (one rule, Action.TypedCount):
// "y" cancels, "2" shuts both down.
func TestRunTypedCountOnTerminal(t *testing.T) {
	testpeers.Require(t, testpeers.NeedTmux)
	farm, cfg := simFarm(t, 2)
	dir, err := os.MkdirTemp("/tmp", "gdt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, answer := range []string{"y", "2"} {
		// A socket per round: the last round's server may still be
		// exiting after its session was killed.
		sock := dir + "/tmux-" + answer + ".sock"
		t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
		script := "HOME=" + dir + " XDG_STATE_HOME=" + dir + "/state " + binary + " -c " + cfg + " run reboot s0 s1; echo exit=$?; sleep 30"
		tmux(t, sock, "new-session", "-d", "-s", "gd", "-x", "120", "-y", "20", "sh", "-c", script)
		waitScreen(t, sock, "Reboot 2 guests? s0, s1", 15*time.Second)
		waitScreen(t, sock, "Type 2 to confirm:", 5*time.Second)
		tmux(t, sock, "send-keys", "-t", "gd", answer, "Enter")
		if answer == "y" {
			waitScreen(t, sock, "exit=2", 10*time.Second)
			if n := farm.Guests()[0].Calls("guest-shutdown") + farm.Guests()[1].Calls("guest-shutdown"); n != 0 {
				t.Fatal("y shut guests down where the count was asked")
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

// --readonly refuses every action the table says mutates (every completion,
// aliases included) before the fleet file is read: nothing reaches a guest.
func TestReadonlyRunByTable(t *testing.T) {
	farm, cfg := simFarm(t, 1)
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one@host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range fleet.Suggestions() {
		if !s.Mutating {
			continue
		}
		words := strings.Fields(s.Text)
		switch {
		case s.Complete:
		case words[0] == string(fleet.ActSSHKey):
			words = append(words, "root", keys)
		case words[0] == string(fleet.ActPassword):
			words = append(words, "root")
		default:
			words = append(words, "1")
		}
		args := append(append([]string{"--readonly", "-c", cfg, "run", "--yes"}, words...), "--", "s0")
		r := gd(t, 20*time.Second, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "refused: --readonly forbids actions that change guests") {
			t.Errorf("%v: exit %d\n%s", words, r.code, r.stderr)
		}
	}
	if n := farm.Guests()[0].Calls("guest-sync-delimited") + farm.Guests()[0].Calls("guest-info"); n != 0 {
		t.Errorf("%d calls reached the guest under --readonly", n)
	}
}

// Aliases are recorded as what they stand for: the dry run shows the
// commands of the action, and the audit log names it ("shutdown reboot"
// for reboot), with the command line as typed.
func TestAliasesDryRunAndAudit(t *testing.T) {
	gs, cfg := simGuests(t, "", simCfg("a0", nil))
	env, _ := stateEnv(t)
	r := gdEnv(t, 30*time.Second, env, "-c", cfg, "run", "--dry-run", "reboot", "a0")
	if r.code != exitOK || !strings.Contains(r.stdout, "dry run: shutdown reboot on 1 guest(s)") ||
		!strings.Contains(r.stdout, `{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}`) {
		t.Fatalf("dry run reboot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = gdEnv(t, 30*time.Second, env, "-c", cfg, "run", "--dry-run", "suspend", "mem", "a0")
	if r.code != exitOK || !strings.Contains(r.stdout, `{"execute":"guest-suspend-ram"}`) {
		t.Fatalf("dry run suspend mem: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := gdEnv(t, 30*time.Second, env, "-c", cfg, "run", "--yes", "reboot", "a0"); r.code != exitOK {
		t.Fatalf("run --yes reboot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if mode, down := gs["a0"].ShutdownMode(); !down || mode != "reboot" {
		t.Fatalf("reboot: the guest went %q %v", mode, down)
	}
	var got []string
	for _, e := range auditEntries(t, env) {
		got = append(got, e.Phase+" "+e.Action+" ["+strings.Join(e.Command[len(e.Command)-2:], " ")+"] "+e.Guests[0].Result)
	}
	want := []string{
		"dry-run shutdown reboot [reboot a0] would-send",
		"dry-run suspend ram [mem a0] would-send",
		"intent shutdown reboot [reboot a0] pending",
		"outcome shutdown reboot [reboot a0] ok",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestShutdownWait: run shutdown --wait waits until each guest has gone (the
// simulator closes its socket on powerdown) and says so per guest; a halted
// guest keeps its channel (QEMU still runs) with no agent, so no check of it
// finishes within 500 ms (each waits for the call timeout; the wait does
// not), it is not confirmed gone at the deadline and fails the run (exit
// 1); --wait is refused before anything is
// sent for a reboot and when its duration is a word of its own.
func TestShutdownWait(t *testing.T) {
	farm, cfg := simFarm(t, 3)
	for _, args := range [][]string{
		{"--yes", "--wait", "reboot", "s0"},
		{"--yes", "--wait", "30s", "shutdown", "s0"},
		{"--yes", "--wait=2h", "shutdown", "s0"},
		{"--yes", "--wait=1s", "ping", "s0"},
	} {
		r := gd(t, 30*time.Second, append([]string{"-c", cfg, "run"}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--wait") {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	for _, g := range farm.Guests() {
		if _, down := g.ShutdownMode(); down {
			t.Fatalf("%s was shut down by a refused run", g.Config().Name)
		}
	}
	r := gd(t, 60*time.Second, "-c", cfg, "run", "--json", "--yes", "--wait=20s", "shutdown", "s0", "s1")
	var res []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != exitOK || len(res) != 2 {
		t.Fatalf("shutdown --wait: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	for _, x := range res {
		if !x.OK || !strings.Contains(x.Result, "accepted by the agent; gone after ") || strings.Contains(x.Result, "not waited for") {
			t.Errorf("%s: %+v", x.Name, x)
		}
	}
	r = gd(t, 60*time.Second, "-c", cfg, "run", "--json", "--yes", "--wait=500ms", "shutdown", "halt", "s2")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != exitFail || len(res) != 1 || res[0].OK ||
		!strings.Contains(res[0].Error, "not confirmed gone after --wait 500ms (shutting-down: no check finished by the deadline") {
		t.Errorf("halt --wait=500ms: exit %d %v %+v\n%s", r.code, err, res, r.stderr)
	}
	if mode, down := farm.Guests()[2].ShutdownMode(); !down || mode != "halt" {
		t.Errorf("s2: %q %v, want halted", mode, down)
	}
}
