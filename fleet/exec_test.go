package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

// execFleet serves guests from cfgs (named as configured) in this process.
func execFleet(t *testing.T, opts fleet.Options, cfgs ...sim.Config) (*sim.Farm, *fleet.Fleet) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, len(cfgs), func(i int) sim.Config { return cfgs[i] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(opts)
	t.Cleanup(func() { f.Close() })
	for _, sock := range farm.Sockets() {
		f.Add(fleet.Target{Name: strings.TrimSuffix(filepath.Base(sock), ".sock"), Address: "unix:" + sock})
	}
	return farm, f
}

func shSpec(script string) fleet.ExecSpec {
	return fleet.ExecSpec{Path: "/bin/sh", Args: []string{"-c", script}}
}

// TestExecSim runs programs on simulated guests: output and exit codes per
// guest, skipped guests (no exec, exec disabled), truncation, a signal, stdin,
// and a program that outlives the wait.
func TestExecSim(t *testing.T) {
	noExec := sim.DefaultConfig("noexec")
	noExec.NoExec = true
	disabled := sim.DefaultConfig("disabled")
	disabled.Disabled = []string{"guest-exec-status"}
	opts := fastOptions()
	opts.Timeout = 10 * time.Second // room for a loaded machine
	_, f := execFleet(t, opts, sim.DefaultConfig("a"), sim.DefaultConfig("b"), noExec, disabled)
	ctx := t.Context()
	f.RefreshOnce(ctx, nil)
	all := []string{"a", "b", "noexec", "disabled"}

	var events []string
	rs := f.Exec(ctx, shSpec("echo out; echo err >&2; exit 3"), all, func(r fleet.ExecResult) {
		events = append(events, r.Guest+":"+string(r.State))
	})
	for _, r := range rs[:2] {
		if r.State != fleet.ExecExited || r.ExitCode == nil || *r.ExitCode != 3 || r.OK() ||
			string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.PID == 0 || r.Truncated {
			t.Errorf("%s: %+v", r.Guest, r)
		}
	}
	if r := rs[2]; r.State != fleet.ExecSkipped || !strings.Contains(r.Err, "guest-exec is disabled") {
		t.Errorf("noexec: %+v", r)
	}
	if r := rs[3]; r.State != fleet.ExecSkipped || !strings.Contains(r.Err, "guest-exec-status is disabled") {
		t.Errorf("disabled: %+v", r)
	}
	if strings.Count(strings.Join(events, " "), ":running") != 2 || strings.Count(strings.Join(events, " "), ":exited") != 2 {
		t.Errorf("progress events %q", events)
	}

	cases := []struct {
		name  string
		spec  fleet.ExecSpec
		check func(r fleet.ExecResult) bool
	}{
		{"ok", shSpec("echo hi"), func(r fleet.ExecResult) bool { return r.OK() && string(r.Stdout) == "hi\n" }},
		{"signal", shSpec("kill -KILL $$"), func(r fleet.ExecResult) bool {
			return r.State == fleet.ExecExited && r.Signal != nil && *r.Signal == 9 && r.ExitCode == nil && r.Summary() == "killed by signal 9"
		}},
		{"stdin", fleet.ExecSpec{Path: "cat", Stdin: []byte("from the host\n")}, func(r fleet.ExecResult) bool {
			return r.OK() && string(r.Stdout) == "from the host\n"
		}},
		{"cap", fleet.ExecSpec{Path: "/bin/sh", Args: []string{"-c", "head -c 5000 /dev/zero"}, MaxOutput: 1024}, func(r fleet.ExecResult) bool {
			return r.OK() && len(r.Stdout) == 1024 && r.Truncated
		}},
		{"reply over the limit", fleet.ExecSpec{Path: "/bin/sh", Args: []string{"-c", "head -c 9000 /dev/zero; head -c 9000 /dev/zero >&2"}, MaxOutput: 2000}, func(r fleet.ExecResult) bool {
			return r.State == fleet.ExecFailed && r.Truncated && r.PID != 0 && strings.Contains(r.Err, "more output than 2.0 KiB per stream")
		}},
		{"timeout", fleet.ExecSpec{Path: "sleep", Args: []string{"3600"}, Timeout: 300 * time.Millisecond}, func(r fleet.ExecResult) bool {
			return r.State == fleet.ExecStillRunning && r.PID != 0 && !r.OK() &&
				strings.Contains(r.Err, fmt.Sprintf("as pid %d in the guest; guestdeck killed nothing", r.PID))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.Exec(ctx, c.spec, []string{"a"}, nil)[0]
			if !c.check(r) {
				t.Errorf("%+v (stdout %d bytes)", r, len(r.Stdout))
			}
		})
	}
	// The guest with the still-running program, and the reply over the
	// limit, stays usable and ready.
	if r := f.Exec(ctx, shSpec("echo after"), []string{"a"}, nil)[0]; !r.OK() {
		t.Errorf("after the timeout: %+v", r)
	}
	if g := f.Guest("a"); g.State != fleet.Ready {
		t.Errorf("guest a is %s (%s) after the exec timeout", g.State, g.Err)
	}
	// The stdin is in no command log, not even its first bytes.
	for _, e := range f.Guest("a").Log.All() {
		if strings.Contains(e.Request, "ZnJvbSB0aGUgaG9zdAo") || strings.Contains(e.Request, "from the host") {
			t.Errorf("stdin in the command log: %+v", e)
		}
	}
}

func TestExecReadonlyAndValidation(t *testing.T) {
	opts := fastOptions()
	opts.Readonly = true
	farm, f := execFleet(t, opts, sim.DefaultConfig("a"))
	f.RefreshOnce(t.Context(), nil)
	before := farm.Guests()[0].Calls("guest-exec")
	r := f.Exec(t.Context(), shSpec("echo hi"), []string{"a"}, nil)[0]
	if r.State != fleet.ExecFailed || !strings.Contains(r.Err, "read-only") {
		t.Errorf("readonly: %+v", r)
	}
	if n := farm.Guests()[0].Calls("guest-exec"); n != before {
		t.Errorf("guest-exec sent %d times under read-only", n-before)
	}
	big := fleet.ExecSpec{Path: "cat", Stdin: bytes.Repeat([]byte("x"), fleet.MaxExecInput+1)}
	if r := f.Exec(t.Context(), big, []string{"a"}, nil)[0]; r.State != fleet.ExecFailed || !strings.Contains(r.Err, "is over the") {
		t.Errorf("stdin too big: %+v", r)
	}
}

// The audit plan records the program and its arguments and stdin's size,
// never its bytes; the outcome records exit codes.
func TestExecAudit(t *testing.T) {
	noExec := sim.DefaultConfig("noexec")
	noExec.NoExec = true
	_, f := execFleet(t, fastOptions(), sim.DefaultConfig("a"), noExec)
	f.RefreshOnce(t.Context(), nil)
	spec := fleet.ExecSpec{Path: "cat", Args: []string{"-"}, Stdin: []byte("TOPSECRET")}
	gs := []*fleet.Guest{f.Guest("a"), f.Guest("noexec")}
	plan := fleet.ExecAuditPlan(spec, gs, audit.Intent)
	b, _ := json.Marshal(plan)
	if bytes.Contains(b, []byte("TOPSECRET")) || bytes.Contains(b, []byte("VE9QU0VDUkVU")) {
		t.Fatalf("stdin in the audit plan: %s", b)
	}
	if plan[0].Result != "pending" || !bytes.Contains(plan[0].Sends[0], []byte(`"input-data":"<9 bytes, not recorded>"`)) ||
		!bytes.Contains(plan[0].Sends[0], []byte(`"path":"cat"`)) || !bytes.Contains(plan[0].Sends[0], []byte(`"arg":["-"]`)) {
		t.Errorf("plan a: %s", b)
	}
	if plan[1].Result != "skipped" || plan[1].Sends != nil {
		t.Errorf("plan noexec: %+v", plan[1])
	}
	if dry := fleet.ExecAuditPlan(spec, gs[:1], audit.DryRun); dry[0].Result != "would-send" {
		t.Errorf("dry run: %+v", dry)
	}
	rs := f.Exec(t.Context(), spec, []string{"a", "noexec"}, nil)
	out := fleet.ExecAuditResults(rs, nil)
	if out[0].Result != "ok" || !strings.HasPrefix(out[0].Detail, "exit 0 (pid ") || out[1].Result != "skipped" {
		t.Errorf("outcome: %+v", out)
	}
	b, _ = json.Marshal(out)
	if bytes.Contains(b, []byte("TOPSECRET")) {
		t.Errorf("output in the audit outcome: %s", b)
	}
}

// TestExecStream: each guest's output is handed to progress once, as it
// finishes, and the results returned hold none of it.
func TestExecStream(t *testing.T) {
	_, f := execFleet(t, fastOptions(), sim.DefaultConfig("a"), sim.DefaultConfig("b"), sim.DefaultConfig("c"))
	names := []string{"a", "b", "c", "nope"}
	got := map[string]string{}
	rs := f.ExecStream(t.Context(), shSpec("echo out; echo err >&2"), names, func(r fleet.ExecResult) {
		if r.State == fleet.ExecRunning {
			return
		}
		if _, twice := got[r.Guest]; twice {
			t.Errorf("%s finished twice", r.Guest)
		}
		got[r.Guest] = string(r.Stdout) + "|" + string(r.Stderr)
	})
	for i, r := range rs {
		if r.Guest != names[i] || r.Stdout != nil || r.Stderr != nil {
			t.Errorf("result %d: %+v, want %s without output", i, r, names[i])
		}
	}
	for _, n := range names[:3] {
		if got[n] != "out\n|err\n" {
			t.Errorf("%s: progress got %q", n, got[n])
		}
		if !rs[slices.Index(names, n)].OK() {
			t.Errorf("%s: %s", n, rs[slices.Index(names, n)].Summary())
		}
	}
	if _, ok := got["nope"]; !ok || rs[3].State != fleet.ExecFailed {
		t.Errorf("unknown guest: %+v", rs[3])
	}
}

// TestRawSecretsNotLoggedUnhooked: a raw password or exec request sent
// through an agent whose transport has no log hook (libvirt's, here a
// stream dialled without it) keeps the secret out of the command log, as
// the hooked transports do.
func TestRawSecretsNotLoggedUnhooked(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config { return sim.DefaultConfig("p") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fastOptions())
	t.Cleanup(func() { f.Close() })
	f.SetDialer("plain", func(ctx context.Context, tg fleet.Target) (agentclient.Agent, error) {
		return agentclient.Dial(ctx, "unix:"+strings.TrimPrefix(tg.Address, "plain:"))
	})
	f.Add(fleet.Target{Name: "p", Address: "plain:" + farm.Sockets()[0]})
	ctx := t.Context()
	f.RefreshOnce(ctx, nil)
	for _, req := range []string{
		`{"execute":"guest-set-user-password","arguments":{"username":"root","password":"VE9QU0VDUkVU","crypted":false}}`,
		`{"execute":"guest-exec","arguments":{"path":"/bin/cat","input-data":"VE9QU0VDUkVU","capture-output":true}}`,
	} {
		f.Raw(ctx, "p", []byte(req))
	}
	f.RefreshOnce(ctx, nil) // publishes the command log
	n := 0
	for _, e := range f.Guest("p").Log.All() {
		if e.Command == "guest-set-user-password" || e.Command == "guest-exec" {
			n++
		}
		if strings.Contains(e.Request, "VE9QU0VDUkVU") {
			t.Errorf("secret in the command log: %+v", e)
		}
	}
	if n != 2 {
		t.Errorf("%d of the 2 raw requests logged: %+v", n, f.Guest("p").Log.Entries())
	}
}
