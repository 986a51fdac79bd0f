package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// simGuests serves one simulated guest per config from this test process
// (so the test sees what reached each) and writes a fleet file naming them,
// extra first.
func simGuests(t *testing.T, extra string, cfgs ...sim.Config) (map[string]*sim.Guest, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	farm, err := sim.ServeDir(dir, len(cfgs), func(i int) sim.Config { return cfgs[i] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close(); os.RemoveAll(dir) })
	gs := map[string]*sim.Guest{}
	var pairs [][2]string
	for i, c := range cfgs {
		gs[c.Name] = farm.Guests()[i]
		pairs = append(pairs, [2]string{c.Name, "unix:" + farm.Sockets()[i]})
	}
	return gs, fleetFile(t, extra, pairs...)
}

func simCfg(name string, edit func(*sim.Config)) sim.Config {
	c := sim.DefaultConfig(name)
	if edit != nil {
		edit(&c)
	}
	return c
}

// stateEnv gives runs one audit log (XDG_STATE_HOME) and returns its path.
func stateEnv(t *testing.T) ([]string, string) {
	dir := t.TempDir()
	return []string{"XDG_STATE_HOME=" + dir}, filepath.Join(dir, "guestdeck", audit.FileName)
}

// auditEntries reads `guestdeck audit --json ARGS...` back.
func auditEntries(t *testing.T, env []string, args ...string) []audit.Entry {
	t.Helper()
	r := gdEnv(t, 20*time.Second, env, append([]string{"audit", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("audit --json %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var es []audit.Entry
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil {
		t.Fatalf("audit --json: %v\n%s", err, r.stdout)
	}
	return es
}

func sendsText(g audit.Guest) string {
	var parts []string
	for _, s := range g.Sends {
		var b bytes.Buffer
		json.Compact(&b, s)
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " ")
}

// The audit log after a freeze, a thaw, a dry run and a raw guest-exec
// through `agent` (all against the simulator), read back with `audit
// --json`, with a selector and with --since.
func TestAuditLogThroughBinary(t *testing.T) {
	gs, cfg := simGuests(t, "", simCfg("a0", nil), simCfg("a1", nil))
	env, logPath := stateEnv(t)
	run := func(want int, args ...string) result {
		t.Helper()
		r := gdEnv(t, 30*time.Second, env, append([]string{"-c", cfg}, args...)...)
		if r.code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, r.code, want, r.stdout, r.stderr)
		}
		return r
	}
	run(0, "run", "--yes", "freeze", "a0")
	run(0, "run", "thaw", "a*")
	if gs["a0"].Frozen() {
		t.Fatal("a0 still frozen after run thaw")
	}
	run(0, "run", "--dry-run", "shutdown", "reboot", "a0", "a1")
	const exec = `{"execute":"guest-exec","arguments":{"path":"/bin/cat","input-data":"aHVudGVyMg==","env":["TOKEN=hunter2"],"capture-output":true}}`
	r := run(0, "agent", "a1", exec)
	if !strings.Contains(r.stdout, `"pid"`) || gs["a1"].Calls("guest-exec") != 1 {
		t.Fatalf("agent guest-exec: %s, %d calls", r.stdout, gs["a1"].Calls("guest-exec"))
	}
	// A command that only looks is not audited.
	run(0, "agent", "a1", `{"execute":"guest-info"}`)
	run(0, "run", "ping", "a0")

	es := auditEntries(t, env)
	type row struct{ phase, action, guests string }
	var got []row
	for _, e := range es {
		var g []string
		for _, x := range e.Guests {
			g = append(g, x.Name+"="+x.Result)
		}
		got = append(got, row{e.Phase, e.Action, strings.Join(g, ",")})
	}
	want := []row{
		{"intent", "freeze", "a0=pending"}, {"outcome", "freeze", "a0=ok"},
		{"intent", "thaw", "a0=pending,a1=pending"}, {"outcome", "thaw", "a0=ok,a1=ok"},
		{"dry-run", "shutdown reboot", "a0=would-send,a1=would-send"},
		{"intent", "agent guest-exec", "a1=pending"}, {"outcome", "agent guest-exec", "a1=ok"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log:\n got %v\nwant %v", got, want)
	}
	freeze, thaw, dry, agent := es[0], es[2], es[4], es[5]
	if es[1].ID != freeze.ID || es[3].ID != thaw.ID || es[6].ID != agent.ID || freeze.ID == thaw.ID {
		t.Errorf("intent and outcome IDs: %s %s, %s %s, %s %s", freeze.ID, es[1].ID, thaw.ID, es[3].ID, agent.ID, es[6].ID)
	}
	for _, e := range es {
		if e.Source != audit.SourceCLI || e.PID == 0 || e.User == "" || len(e.Command) == 0 || e.Command[0] != binary {
			t.Errorf("entry %s %s: source %q pid %d user %q command %q", e.Phase, e.Action, e.Source, e.PID, e.User, e.Command)
		}
	}
	if !slices.Equal(freeze.Command, []string{binary, "-c", cfg, "run", "--yes", "freeze", "a0"}) ||
		!slices.Equal(freeze.Selector, []string{"a0"}) || !slices.Equal(thaw.Selector, []string{"a*"}) {
		t.Errorf("freeze command %q selector %q; thaw selector %q", freeze.Command, freeze.Selector, thaw.Selector)
	}
	if g := freeze.Guests[0]; sendsText(g) != `{"execute":"guest-fsfreeze-freeze"}` || !strings.HasPrefix(g.Address, "unix:/") {
		t.Errorf("freeze intent guest: %+v", g)
	}
	if d := es[1].Guests[0].Detail; !strings.Contains(d, "froze 1 filesystem") {
		t.Errorf("freeze outcome detail %q", d)
	}
	for _, g := range dry.Guests {
		if sendsText(g) != `{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}` {
			t.Errorf("dry run %s sends %s", g.Name, sendsText(g))
		}
	}
	for _, g := range gs {
		if _, down := g.ShutdownMode(); down || g.Calls("guest-shutdown") != 0 {
			t.Error("the dry run shut a guest down")
		}
	}
	wantExec := `{"execute":"guest-exec","arguments":{"capture-output":true,"env":["TOKEN=\u003cnot recorded\u003e"],"input-data":"\u003c7 bytes, not recorded\u003e","path":"/bin/cat"}}`
	if s := sendsText(agent.Guests[0]); s != wantExec {
		t.Errorf("agent sends\n %s\nwant %s", s, wantExec)
	}
	if last := agent.Command[len(agent.Command)-1]; strings.Contains(last, "hunter2") || !strings.Contains(last, "not recorded") {
		t.Errorf("agent command recorded as %q", agent.Command)
	}
	if d := es[6].Guests[0].Detail; !strings.Contains(d, "pid") {
		t.Errorf("agent outcome detail %q", d)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("hunter2")) || bytes.Contains(raw, []byte("aHVudGVyMg")) {
		t.Errorf("a secret reached the audit log:\n%s", raw)
	}

	// A selector keeps the entries naming a matching guest, and only those guests.
	sel := auditEntries(t, env, "a1")
	if len(sel) != 5 || sel[0].Action != "thaw" || sel[2].Phase != "dry-run" || sel[3].Action != "agent guest-exec" {
		t.Fatalf("audit a1: %+v", sel)
	}
	for _, e := range sel {
		if len(e.Guests) != 1 || e.Guests[0].Name != "a1" {
			t.Errorf("audit a1 kept guests %+v", e.Guests)
		}
	}
	// --since a time: the entries from then on.
	since := auditEntries(t, env, "--since", dry.Time.Format(time.RFC3339Nano))
	if len(since) != 3 || since[0].Phase != "dry-run" {
		t.Errorf("audit --since the dry run: %d entries, first %+v", len(since), since)
	}
	if n := len(auditEntries(t, env, "--since", "1h")); n != len(es) {
		t.Errorf("audit --since 1h: %d entries, want %d", n, len(es))
	}
	if n := len(auditEntries(t, env, "--since", "2099-01-01")); n != 0 {
		t.Errorf("audit --since 2099-01-01: %d entries", n)
	}
	// The table: one row per guest of each entry.
	tr := gdEnv(t, 20*time.Second, env, "audit", "a0")
	if tr.code != 0 || !regexp.MustCompile(`(?m)intent .* freeze +a0 +pending`).MatchString(tr.stdout) {
		t.Errorf("audit table: exit %d\n%s%s", tr.code, tr.stdout, tr.stderr)
	}
}

// Every row of the exit-code table, through the binary.
func TestExitCodes(t *testing.T) {
	noFreeze := func(c *sim.Config) { c.Disabled = []string{"guest-fsfreeze-freeze"} }
	gs, cfg := simGuests(t, "[defaults]\ntimeout = \"500ms\"\n",
		simCfg("ok", nil), simCfg("ok2", nil), simCfg("nofs", func(c *sim.Config) { c.Filesystems = nil }),
		simCfg("nf1", noFreeze), simCfg("nf2", noFreeze), simCfg("pre", nil), simCfg("hung", nil))
	// Frozen by someone else (a backup tool), before guestdeck runs.
	if err := sim.Freeze(context.Background(), fleetAddress(t, cfg, "pre")); err != nil {
		t.Fatal(err)
	}
	env, _ := stateEnv(t)
	unwritable := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(unwritable, nil, 0o600)
	src := filepath.Join(t.TempDir(), "src.txt")
	os.WriteFile(src, []byte("hello\n"), 0o644)

	type step struct {
		name   string
		args   []string
		env    []string // instead of the shared audit log
		code   int
		stderr string // substring
		stdout string // substring
		after  func(t *testing.T)
	}
	freezes := func(name string) int { return gs[name].Calls("guest-fsfreeze-freeze") }
	before := map[string]int{} // freeze calls when the step started
	unsent := func(names ...string) func(t *testing.T) {
		return func(t *testing.T) {
			for _, n := range names {
				if freezes(n) != before[n] || n != "pre" && gs[n].Frozen() {
					t.Errorf("%s: freeze sent (%d calls, frozen %v)", n, freezes(n)-before[n], gs[n].Frozen())
				}
			}
		}
	}
	thawed := func(names ...string) func(t *testing.T) {
		return func(t *testing.T) {
			if r := gdEnv(t, 30*time.Second, env, append([]string{"-c", cfg, "run", "thaw"}, names...)...); r.code != 0 {
				t.Errorf("thaw %v: exit %d %s", names, r.code, r.stderr)
			}
		}
	}
	steps := []step{
		{name: "ok", args: []string{"run", "--yes", "freeze", "ok", "ok2"}, code: exitOK, stdout: "stays frozen after guestdeck exits", after: thawed("ok", "ok2")},
		{name: "skipped on every guest", args: []string{"run", "--yes", "freeze", "nf1", "nf2"}, code: exitSkipped, stdout: "guest-fsfreeze-freeze is disabled", after: unsent("nf1", "nf2")},
		{name: "skipped on some", args: []string{"run", "--yes", "freeze", "ok", "nf1"}, code: exitSkipped, after: thawed("ok")},
		{name: "froze nothing", args: []string{"run", "--yes", "freeze", "nofs"}, code: exitFail, stdout: "froze 0 filesystems"},
		{name: "froze nothing beside ok", args: []string{"run", "--yes", "freeze", "nofs", "ok"}, code: exitFail, after: thawed("ok")},
		{name: "hold on a guest frozen before", args: []string{"run", "--yes", "--hold", "10m", "freeze", "pre"}, code: exitFail,
			stderr: "already frozen, and not by this guestdeck: --hold will neither hold nor thaw it",
			after: func(t *testing.T) {
				if !gs["pre"].Frozen() || gs["pre"].Calls("guest-fsfreeze-thaw") != 0 {
					t.Error("guestdeck thawed a freeze it did not make")
				}
			}},
		{name: "hold negative", args: []string{"run", "--hold", "-1s", "freeze", "ok"}, code: exitUsage, stderr: "more than zero", after: unsent("ok")},
		{name: "hold zero", args: []string{"run", "--hold", "0s", "freeze", "ok"}, code: exitUsage, stderr: "more than zero", after: unsent("ok")},
		{name: "hold not a duration", args: []string{"run", "--hold", "soon", "freeze", "ok"}, code: exitUsage, stderr: "want a duration", after: unsent("ok")},
		{name: "hold too long", args: []string{"run", "--hold", "25h", "freeze", "ok"}, code: exitUsage, stderr: "at most 24h", after: unsent("ok")},
		{name: "readonly", args: []string{"--readonly", "run", "--yes", "freeze", "ok"}, code: exitUsage, stderr: "--readonly", after: unsent("ok")},
		{name: "freeze without --yes or --hold", args: []string{"run", "freeze", "ok"}, code: exitUsage, after: unsent("ok")},
		{name: "unknown guest", args: []string{"run", "--yes", "freeze", "nosuch"}, code: exitUsage},
		{name: "audit log unwritable: run", args: []string{"run", "--yes", "freeze", "ok"}, env: []string{"XDG_STATE_HOME=" + unwritable},
			code: exitUsage, stderr: "cannot write the audit log (" + unwritable, after: unsent("ok")},
		{name: "audit log unwritable: dry run", args: []string{"run", "--dry-run", "freeze", "ok"}, env: []string{"XDG_STATE_HOME=" + unwritable},
			code: exitUsage, stderr: "the real run would be refused", stdout: "guest-fsfreeze-freeze", after: unsent("ok")},
		{name: "audit log unwritable: agent", args: []string{"agent", "ok", `{"execute":"guest-fsfreeze-freeze"}`}, env: []string{"XDG_STATE_HOME=" + unwritable},
			code: exitUsage, stderr: unwritable, after: unsent("ok")},
		{name: "audit log unwritable: put", args: []string{"put", src, "ok", "/tmp/put.txt"}, env: []string{"XDG_STATE_HOME=" + unwritable},
			code: exitUsage, stderr: unwritable, after: func(t *testing.T) {
				if n := gs["ok"].Calls("guest-file-open"); n != 0 {
					t.Errorf("put opened the guest's file %d times with no audit log", n)
				}
			}},
		{name: "audit log unwritable: looking is not refused", args: []string{"run", "ping", "ok"}, env: []string{"XDG_STATE_HOME=" + unwritable}, code: exitOK},
		{name: "mixed fail", args: []string{"run", "--yes", "freeze", "ok", "hung"}, code: exitFail, after: func(t *testing.T) {
			gs["hung"].SetHang(false)
			thawed("ok")(t)
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			for n := range gs {
				before[n] = freezes(n)
			}
			if s.name == "mixed fail" {
				gs["hung"].SetHang(true)
			}
			e := env
			if s.env != nil {
				e = s.env
			}
			r := gdEnv(t, 60*time.Second, e, append([]string{"-c", cfg}, s.args...)...)
			if r.code != s.code || !strings.Contains(r.stderr, s.stderr) || !strings.Contains(r.stdout, s.stdout) {
				t.Errorf("exit %d, want %d (stderr has %q, stdout %q)\nstdout: %s\nstderr: %s", r.code, s.code, s.stderr, s.stdout, r.stdout, r.stderr)
			}
			if s.after != nil {
				s.after(t)
			}
		})
	}
}

// fleetAddress is a guest's address in a fleet file written by fleetFile.
func fleetAddress(t *testing.T, cfg, name string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`name = "` + regexp.QuoteMeta(name) + `"\naddress = "([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no guest %s in %s", name, cfg)
	}
	return string(m[1])
}

// A dry run prints the exact arguments, needs no confirmation, sends
// nothing (the simulator counts every command it runs), exits 3 when a guest
// would be skipped, and is logged as phase dry-run with secrets hidden.
func TestDryRunSendsNothing(t *testing.T) {
	gs, cfg := simGuests(t, "", simCfg("d0", nil), simCfg("d1", func(c *sim.Config) { c.Disabled = []string{"guest-set-vcpus"} }))
	env, logPath := stateEnv(t)
	dry := func(code int, args ...string) result {
		t.Helper()
		r := gdEnv(t, 30*time.Second, env, append([]string{"-c", cfg, "run", "--dry-run"}, args...)...)
		if r.code != code {
			t.Fatalf("run --dry-run %v: exit %d, want %d\n%s%s", args, r.code, code, r.stdout, r.stderr)
		}
		return r
	}

	r := dry(exitSkipped, "--json", "vcpus", "offline", "1", "d0", "d1")
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != 2 {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	for _, obj := range raw {
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"name", "reason", "skipped", "would_send"}) {
			t.Errorf("dry run --json keys %v", keys)
		}
	}
	var b bytes.Buffer
	json.Compact(&b, raw[0]["would_send"])
	if want := `[{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":1,"online":false}]}}]`; b.String() != want {
		t.Errorf("d0 would send %s, want %s", b.String(), want)
	}
	if string(raw[1]["skipped"]) != "true" || !strings.Contains(string(raw[1]["reason"]), "guest-set-vcpus is disabled") ||
		string(raw[1]["would_send"]) != "[]" {
		t.Errorf("d1: %s", mustJSON(raw[1]))
	}

	lo := time.Now().UnixNano()
	r = dry(exitOK, "settime", "d0")
	hi := time.Now().UnixNano()
	m := regexp.MustCompile(`d0 +\{"execute":"guest-set-time","arguments":\{"time":(\d+)\}\}`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("settime dry run:\n%s", r.stdout)
	}
	if ns, _ := strconv.ParseInt(m[1], 10, 64); ns < lo || ns > hi {
		t.Errorf("settime would send %d, not the host clock in [%d, %d]", ns, lo, hi)
	}
	r = dry(exitOK, "write", "/tmp/x", "s3cret-words", "d0")
	if strings.Contains(r.stdout, "s3cret") || !strings.Contains(r.stdout, `"buf-b64":"<12 bytes, not recorded>"`) {
		t.Errorf("write dry run:\n%s", r.stdout)
	}
	// Destructive actions need no confirmation and no --yes in a dry run.
	if r = dry(exitOK, "freeze", "d0"); !strings.Contains(r.stdout, `{"execute":"guest-fsfreeze-freeze"}`) {
		t.Errorf("freeze dry run:\n%s", r.stdout)
	}
	if r = dry(exitOK, "--hold", "5m", "freeze", "d0"); !regexp.MustCompile(`guest-fsfreeze-freeze"\}\n +\{"execute":"guest-fsfreeze-thaw"\}`).MatchString(r.stdout) {
		t.Errorf("freeze --hold dry run:\n%s", r.stdout)
	}
	dry(exitOK, "shutdown", "halt", "d0")
	dry(exitOK, "ping", "d0", "d1")

	for name, g := range gs {
		for _, c := range []string{"guest-set-vcpus", "guest-set-time", "guest-file-open", "guest-file-write", "guest-fsfreeze-freeze", "guest-shutdown"} {
			if n := g.Calls(c); n != 0 {
				t.Errorf("%s got %d %s calls from dry runs", name, n, c)
			}
		}
		if _, down := g.ShutdownMode(); down || g.Frozen() {
			t.Errorf("%s changed by a dry run", name)
		}
	}
	es := auditEntries(t, env)
	if len(es) != 6 { // the ping is not mutating: not logged
		t.Fatalf("want 6 dry-run entries, got %d: %+v", len(es), es)
	}
	for _, e := range es {
		if e.Phase != audit.DryRun {
			t.Errorf("entry %s %s: phase %s", e.Action, e.ID, e.Phase)
		}
	}
	if es[0].Guests[1].Result != "skipped" || es[0].Guests[0].Result != "would-send" {
		t.Errorf("vcpus dry run guests: %+v", es[0].Guests)
	}
	if es[4].Action != "freeze (--hold 5m0s)" {
		t.Errorf("hold dry run action %q", es[4].Action)
	}
	logged, _ := os.ReadFile(logPath)
	if bytes.Contains(logged, []byte("s3cret")) || !bytes.Contains(logged, []byte("12 bytes, not recorded")) {
		t.Errorf("the write's data in the audit log:\n%s", logged)
	}
}

// --hold's rows say when the hold thaws (the time it then keeps), not the
// watchdog's later deadline; a final thaw that fails exits 4, naming the
// guest still frozen.
func TestHoldThawTimes(t *testing.T) {
	gs, cfg := simGuests(t, "[defaults]\ntimeout = \"300ms\"\n", simCfg("h0", nil))
	env, _ := stateEnv(t)
	r := gdEnv(t, 60*time.Second, env, "-c", cfg, "run", "--yes", "--hold", "1s", "freeze", "h0")
	if r.code != exitOK || gs["h0"].Frozen() {
		t.Fatalf("hold 1s: exit %d, frozen %v\n%s%s", r.code, gs["h0"].Frozen(), r.stdout, r.stderr)
	}
	row := regexp.MustCompile(`held frozen until (\d\d:\d\d:\d\d), then thawed by guestdeck`).FindStringSubmatch(r.stdout)
	msg := regexp.MustCompile(`holding 1 guest\(s\) frozen until (\d\d:\d\d:\d\d)`).FindStringSubmatch(r.stderr)
	if row == nil || msg == nil || row[1] != msg[1] || strings.Contains(r.stdout+r.stderr, "automatic thaw") {
		t.Errorf("hold rows and message disagree:\n%s%s", r.stdout, r.stderr)
	}
	es := auditEntries(t, env)
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Phase+" "+e.Action)
	}
	if want := []string{"intent freeze (--hold 1s)", "outcome freeze (--hold 1s)", "intent thaw (end of --hold)", "outcome thaw (end of --hold)"}; !slices.Equal(actions, want) {
		t.Errorf("audit of a hold: %q, want %q", actions, want)
	}

	// The thaw that ends the hold (here: ctrl-c, so no race with a timer)
	// fails: exit 4.
	p := startGDEnv(t, env, "-c", cfg, "run", "--yes", "--hold", "10m", "freeze", "h0")
	cmd, out, errb, done := p.cmd, p.stdout, p.stderr, p.done
	// The freeze is another process's: watch the guest for it.
	wait.For(t, 20*time.Second, func() (bool, string) {
		return strings.Contains(errb.String(), "holding"), "no hold yet:\n" + out.String() + errb.String()
	})
	gs["h0"].SetHang(true)
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("guestdeck still holding 120s after ctrl-c")
	}
	code := 0
	if ee, ok := p.err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != exitFrozen || !strings.Contains(errb.String(), "h0") || !strings.Contains(errb.String(), "FROZEN") {
		t.Errorf("failed final thaw: exit %d, want %d\n%s%s", code, exitFrozen, out.String(), errb.String())
	}
	// Checked while the agent still hangs: a thaw request that reached the
	// channel (a connection still waiting in the one-client queue when the
	// process exited) may yet run once the agent answers again, as a real
	// agent would run it.
	if !gs["h0"].Frozen() {
		t.Fatal("the guest thawed although the thaw hung")
	}
	gs["h0"].SetHang(false)
	if r := gdEnv(t, 30*time.Second, env, "-c", cfg, "run", "thaw", "h0"); r.code != 0 {
		t.Errorf("thaw after: exit %d %s", r.code, r.stderr)
	}
	es = auditEntries(t, env)
	last := es[len(es)-3] // the failed thaw's outcome, then the manual thaw's intent and outcome
	if last.Phase != audit.Outcome || last.Action != "thaw (end of --hold)" || last.Guests[0].Result != "failed" {
		t.Errorf("the failed thaw's outcome: %+v", last)
	}
}
