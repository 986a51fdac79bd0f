package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// nodeFile writes a libvirt test-driver node file with agent-capable
// domains doms: every connection to test:///PATH sees them (so every run of
// the binary does), and a restarted daemon has them again.
func nodeFile(t *testing.T, doms ...string) string {
	t.Helper()
	// The daemon runs as nobody: the file must be readable by it.
	dir, err := os.MkdirTemp("/tmp", "gdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("<node>")
	for _, d := range doms {
		b.WriteString("<domain type='test'><name>" + d + "</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>" +
			"<devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>")
	}
	b.WriteString("</node>")
	p := filepath.Join(dir, "node.xml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// twoHosts starts two test-driver libvirtds, a and lab, each running a
// domain lv1 (and one of its own: only-a, db-1), and returns them with a
// fleet file naming both hosts and, when sim is set, one simulated [[guest]]
// s0 served by the returned farm.
func twoHosts(t *testing.T, withSim bool) (a, lab *testpeers.LibvirtTest, farm *sim.Farm, cfg string) {
	t.Helper()
	a, lab = testpeers.StartLibvirtTest(t), testpeers.StartLibvirtTest(t)
	extra := fmt.Sprintf("[[host]]\nname = \"a\"\nuri = \"test+unix://%s?socket=%s\"\n\n[[host]]\nname = \"lab\"\nuri = \"test+unix://%s?socket=%s\"\n",
		nodeFile(t, "lv1", "only-a"), a.Socket, nodeFile(t, "lv1", "db-1"), lab.Socket)
	if !withSim {
		return a, lab, nil, fleetFile(t, extra)
	}
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	farm, err = sim.ServeDir(dir, 1, func(int) sim.Config { return sim.DefaultConfig("s0") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close(); os.RemoveAll(dir) })
	return a, lab, farm, fleetFile(t, extra, [2]string{"s0", "unix:" + farm.Sockets()[0]})
}

// simSent counts the requests a simulated guest ran that any poll or action
// would start with.
func simSent(g *sim.Guest) int {
	n := 0
	for _, c := range []string{"guest-sync-delimited", "guest-sync", "guest-info", "guest-ping", "guest-get-time",
		"guest-fsfreeze-status", "guest-shutdown", "guest-file-open"} {
		n += g.Calls(c)
	}
	return n
}

// TestSameDomainOnTwoHosts runs the binary on two real libvirtds that both
// run a domain lv1: the names are HOST/DOMAIN in every run; the bare name is
// refused (exit 2, both candidates listed) by every command before anything
// reaches any guest; the qualified names work; and with one host down the
// bare name is still refused rather than taken to mean the other host's.
func TestSameDomainOnTwoHosts(t *testing.T) {
	a, _, farm, cfg := twoHosts(t, true)
	want := map[string]string{
		"a/lv1": "libvirt:a/lv1", "a/only-a": "libvirt:a/only-a",
		"lab/lv1": "libvirt:lab/lv1", "lab/db-1": "libvirt:lab/db-1",
		"s0": "unix:" + farm.Sockets()[0],
	}
	for run := range 5 {
		got := map[string]string{}
		for name, g := range status(t, cfg) {
			got[name] = g.Address
			if g.Address != want[name] || g.State != "ready" {
				t.Errorf("run %d: %s: %s at %s", run, name, g.State, g.Address)
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("status run %d: guests %v, want %v", run, got, want)
		}
	}
	s0 := farm.Guests()[0]
	sentBefore := simSent(s0)

	// The bare name, in every command, also next to a good name and after
	// state: (which polls the fleet: the names are checked first).
	dest := filepath.Join(t.TempDir(), "out")
	for _, args := range [][]string{
		{"run", "ping", "lv1"},
		{"run", "--yes", "shutdown", "lv1"},
		{"run", "ping", "s0", "lv1"},
		{"run", "ping", "state:ready", "lv1"},
		{"status", "lv1"},
		{"status", "--json", "state:ready", "lv1"},
		{"cat", "lv1", "/etc/hostname"},
		{"get", "lv1", "/etc/hostname", dest},
		{"put", cfg, "lv1", "/tmp/never"},
		{"agent", "lv1", `{"execute":"guest-ping"}`},
	} {
		r := gd(t, 60*time.Second, append([]string{"-c", cfg}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, `"lv1" is ambiguous`) ||
			!strings.Contains(r.stderr, "a/lv1") || !strings.Contains(r.stderr, "lab/lv1") || r.stdout != "" {
			t.Errorf("%s: exit %d, want 2 naming a/lv1 and lab/lv1\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if _, err := os.Stat(dest); err == nil {
		t.Error("get of the bare name wrote a file")
	}
	if n := simSent(s0) - sentBefore; n != 0 {
		t.Errorf("the refused commands sent %d requests to s0", n)
	}
	// One domain on one host: still only by its whole name.
	if r := gd(t, 60*time.Second, "-c", cfg, "run", "ping", "db-1"); r.code != 2 || !strings.Contains(r.stderr, "HOST/DOMAIN: lab/db-1") {
		t.Errorf("run ping db-1: exit %d, stderr %q", r.code, r.stderr)
	}

	// The qualified names. The test driver has no agent passthrough, so a
	// ping fails there; it must fail at the guest it names, and only there.
	for _, name := range []string{"a/lv1", "lab/lv1"} {
		r := gd(t, 60*time.Second, "-c", cfg, "run", "--json", "ping", name)
		var res []runJSON
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code == 2 || len(res) != 1 || res[0].Name != name ||
			!res[0].OK && !strings.Contains(res[0].Error, "libvirt:"+name+":") {
			t.Errorf("run ping %s: exit %d, %v %+v\nstderr: %s", name, r.code, err, res, r.stderr)
		}
	}
	r := gd(t, 60*time.Second, "-c", cfg, "run", "--json", "info", "lab/lv1", "a/lv1")
	var res []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res) != 2 ||
		res[0].Name != "a/lv1" || res[1].Name != "lab/lv1" || !res[0].OK || !res[1].OK {
		t.Errorf("run info lab/lv1 a/lv1: exit %d, %v %+v\nstderr: %s", r.code, err, res, r.stderr)
	}
	if r := gd(t, 60*time.Second, "-c", cfg, "cat", "a/lv1", "/etc/hostname"); r.code == 2 || !strings.Contains(r.stderr, "cat a/lv1:/etc/hostname") {
		t.Errorf("cat a/lv1: exit %d, stderr %q", r.code, r.stderr)
	}
	r = gd(t, 60*time.Second, "-c", cfg, "agent", "lab/lv1", `{"execute":"guest-ping"}`)
	var reply map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &reply); err != nil || r.code == 2 || (reply["return"] == nil && reply["error"] == nil) {
		t.Errorf("agent lab/lv1: exit %d, %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	if r := gd(t, 60*time.Second, "-c", cfg, "status", "--json", "lab/*"); r.code != 0 ||
		!strings.Contains(r.stdout, `"lab/lv1"`) || strings.Contains(r.stdout, `"a/lv1"`) {
		t.Errorf("status lab/*: exit %d\n%s", r.code, r.stdout)
	}

	// Host a down: lv1 has one candidate left, and is still refused.
	a.Kill()
	r = gd(t, 60*time.Second, "-c", cfg, "run", "--yes", "shutdown", "lv1")
	if r.code != 2 || !strings.Contains(r.stderr, "HOST/DOMAIN: lab/lv1") || !strings.Contains(r.stderr, "libvirt host a") {
		t.Errorf("run shutdown lv1 with host a down: exit %d, stderr %q", r.code, r.stderr)
	}
	r = gd(t, 60*time.Second, "-c", cfg, "run", "--json", "ping", "lab/lv1")
	res = nil
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code == 2 || len(res) != 1 || res[0].Name != "lab/lv1" {
		t.Errorf("run ping lab/lv1 with host a down: exit %d, %v %+v\nstderr: %s", r.code, err, res, r.stderr)
	}
	if r := gd(t, 60*time.Second, "-c", cfg, "run", "ping", "a/lv1"); r.code != 2 || !strings.Contains(r.stderr, `"a/lv1": no guest has that name`) {
		t.Errorf("run ping a/lv1 with host a down: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestBadNameSendsNothing: selectPolled checks every name before it polls
// anything, state: selectors included; the control shows a good name does
// dial, and only its own guest.
func TestBadNameSendsNothing(t *testing.T) {
	var mu sync.Mutex
	var dialed []string
	f := fleet.New(fleet.Options{Timeout: time.Second, Dialers: map[string]fleet.Dialer{
		"libvirt": func(_ context.Context, tg fleet.Target) (agentclient.Agent, error) {
			mu.Lock()
			defer mu.Unlock()
			dialed = append(dialed, tg.Address)
			return nil, errors.New("test dialer: no agent here")
		},
	}})
	defer f.Close()
	f.Add(fleet.Target{Name: "a/lv1", Host: "a", Address: "libvirt:a/lv1"},
		fleet.Target{Name: "lab/lv1", Host: "lab", Address: "libvirt:lab/lv1"})
	ctx := context.Background()
	for _, sels := range [][]string{{"lv1"}, {"state:ready", "lv1"}, {"all", "lv1"}, {"a/lv1", "lv1"}} {
		_, err := selectPolled(ctx, f, sels)
		var ne *fleet.NameError
		if !errors.As(err, &ne) || !slices.Equal(ne.Candidates, []string{"a/lv1", "lab/lv1"}) {
			t.Errorf("selectPolled %v: %v; want a NameError naming a/lv1 and lab/lv1", sels, err)
		}
		mu.Lock()
		if len(dialed) != 0 {
			t.Errorf("selectPolled %v dialed %v", sels, dialed)
		}
		mu.Unlock()
	}
	gs, err := selectPolled(ctx, f, []string{"a/lv1"})
	mu.Lock()
	defer mu.Unlock()
	if err != nil || len(gs) != 1 || gs[0].Name != "a/lv1" || len(dialed) == 0 || slices.ContainsFunc(dialed, func(a string) bool { return a != "libvirt:a/lv1" }) {
		t.Errorf("selectPolled a/lv1: %v, %v; dialed %v", gs, err, dialed)
	}
}

// TestDashboardQualifiedNames: in a real terminal, the dashboard shows
// HOST/DOMAIN names. Host lab is down when it starts: a/lv1 is shown, then
// lab answers and lab/lv1 joins without a/lv1 changing; the filter takes
// the qualified name.
func TestDashboardQualifiedNames(t *testing.T) {
	testpeers.Require(t, testpeers.NeedTmux)
	_, lab, _, cfg := twoHosts(t, false)
	lab.Kill()
	tt := e2eStart(t, "-c", cfg)
	rowsOf := func(s string) map[string]string {
		m := map[string]string{}
		for _, r := range e2eRows(s) {
			m[r.name] = r.text
		}
		return m
	}
	tt.waitFor("a's guests ready", func(s string) bool {
		rows := rowsOf(s)
		return strings.Contains(s, "guestdeck 2 guests") && strings.Contains(rows["a/lv1"], " ready ") && strings.Contains(rows["a/only-a"], " ready ")
	})
	lab.Restart(t)
	s := tt.waitFor("lab's guests joining, all ready", func(s string) bool {
		rows := rowsOf(s)
		for _, n := range []string{"a/lv1", "a/only-a", "lab/db-1", "lab/lv1"} {
			if !strings.Contains(rows[n], " ready ") {
				return false
			}
		}
		return strings.Contains(s, "guestdeck 4 guests")
	})
	rows := rowsOf(s)
	if got := e2eNames(e2eRows(s)); !slices.Equal(got, []string{"a/lv1", "a/only-a", "lab/db-1", "lab/lv1"}) {
		t.Errorf("rows %v:\n%s", got, s)
	}
	for name, host := range map[string]string{"a/lv1": "a", "lab/lv1": "lab"} {
		if got := e2eCell(s, rows[name], "HOST"); got != host {
			t.Errorf("row %s shows host %q, want %s:\n%s", name, got, host, s)
		}
	}
	tt.keys("/")
	tt.text("lab/lv1")
	tt.keys("Enter")
	s = tt.waitText(`filter "lab/lv1": 1 shown`)
	if got := e2eNames(e2eRows(s)); !slices.Equal(got, []string{"lab/lv1"}) {
		t.Errorf("filter lab/lv1 left rows %v:\n%s", got, s)
	}
	tt.keys("q")
}

// hostileDomains are libvirt domain names a hypervisor may give that look
// like globs, prefixes or shell syntax once in a command line.
var hostileDomains = []string{"db1", "db2", "db[1]", "*", "x:y", "my vm", "$(touch pwned);x"}

// hostileDomainHost starts a test-driver libvirtd named a running
// hostileDomains and returns a fleet file for it.
func hostileDomainHost(t *testing.T) string {
	t.Helper()
	a := testpeers.StartLibvirtTest(t)
	return fleetFile(t, fmt.Sprintf("[[host]]\nname = \"a\"\nuri = \"test+unix://%s?socket=%s\"\n", nodeFile(t, hostileDomains...), a.Socket))
}

// TestDomainNamesSelectThemselves runs the binary on a libvirt host whose
// domain names look like globs and prefixes: each guest's whole name, typed
// as status shows it, selects that guest and no other.
func TestDomainNamesSelectThemselves(t *testing.T) {
	cfg := hostileDomainHost(t)
	for _, tt := range []struct{ sels, want []string }{
		{[]string{"a/db[1]"}, []string{"a/db[1]"}},
		{[]string{"a/*"}, []string{"a/*"}},
		{[]string{"a/x:y"}, []string{"a/x:y"}},
		{[]string{"a/my vm", "a/db1"}, []string{"a/db1", "a/my vm"}},
		{[]string{"a/db[12]"}, []string{"a/db1", "a/db2"}}, // no guest's name: a glob
	} {
		r := gd(t, 60*time.Second, append([]string{"-c", cfg, "run", "--json", "info"}, tt.sels...)...)
		var res []runJSON
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Errorf("run info %q: exit %d, %v\nstderr: %s", tt.sels, r.code, err, r.stderr)
			continue
		}
		var got []string
		for _, x := range res {
			got = append(got, x.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("run info %q hit %q, want %q", tt.sels, got, tt.want)
		}
	}
}

// shellArgs runs command line in bash with guestdeck replaced by a function
// that prints its arguments, one per line, in dir (where the command must
// create nothing), and returns them.
func shellArgs(t *testing.T, line string) []string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("bash", "-c", `guestdeck() { printf '%s\0' "$@"; }; `+line)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("bash -c %q: %v", line, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("running %q created %s in its directory", line, ents[0].Name())
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// TestThawCommandsQuoted: the thaw commands status prints for an orphaned
// freeze (the table's line and JSON's thaw_command) run, pasted into a
// shell, exactly guestdeck -c FILE run thaw NAME: a domain name with shell
// syntax, spaces, glob characters or escapes is one word, and runs nothing.
func TestThawCommandsQuoted(t *testing.T) {
	cfg := "/tmp/my fleet's.toml"
	for _, name := range append(hostileDomains, "evil"+sim.Hostile) {
		name = "a/" + name
		c := &cli{configPath: cfg}
		g := &fleet.Guest{Target: fleet.Target{Name: name}, FrozenBy: &fleet.FreezeRecord{PID: 1, Who: "run --yes freeze", Orphan: true, Since: time.Now()}}
		var b strings.Builder
		c.writeLedgerLines(&b, []*fleet.Guest{g})
		terminalSafe(t, "ledger lines", b.String())
		_, line, ok := strings.Cut(b.String(), "thaw it with: ")
		if !ok {
			t.Fatalf("no thaw command in %q", b.String())
		}
		want := []string{"-c", cfg, "run", "thaw", name}
		for what, cmd := range map[string]string{"status line": strings.TrimSuffix(line, "\n"), "thaw_command": c.orphanOf(g).ThawCommand} {
			if got := shellArgs(t, cmd); !slices.Equal(got, want) {
				t.Errorf("%s %q runs guestdeck %q, want %q", what, cmd, got, want)
			}
		}
	}
}

// TestFreezeThawCommandQuoted: `run --yes freeze` names the command that
// thaws what it froze; run in a shell, it thaws exactly those guests and
// runs nothing else.
func TestFreezeThawCommandQuoted(t *testing.T) {
	cfg := hostileDomainHost(t)
	froze := []string{"a/$(touch pwned);x", "a/*", "a/my vm"}
	r := gd(t, 60*time.Second, append([]string{"-c", cfg, "run", "--yes", "freeze"}, froze...)...)
	_, line, ok := strings.Cut(r.stderr, "thaw them with:  ")
	if r.code != 0 || !ok {
		t.Fatalf("run --yes freeze: exit %d, no thaw command\n%s", r.code, r.stderr)
	}
	line, _, _ = strings.Cut(line, "\n")
	got := shellArgs(t, line)
	if want := append([]string{"-c", cfg, "run", "thaw"}, froze...); !slices.Equal(got, want) {
		t.Fatalf("%q runs guestdeck %q, want %q", line, got, want)
	}
	// And the binary, given those words, thaws those guests.
	r = gd(t, 60*time.Second, append([]string{"-c", cfg, "run", "--json", "thaw"}, got[4:]...)...)
	var res []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res) != len(froze) {
		t.Fatalf("run thaw: exit %d, %v %+v\n%s", r.code, err, res, r.stderr)
	}
	for i, x := range res {
		if x.Name != froze[i] {
			t.Errorf("run thaw hit %s, want %s", x.Name, froze[i])
		}
	}
}

// TestDryRunJSONTerminalSafe: run --dry-run --json names the guests, and a
// libvirt host's domain name may hold bidi and C1 controls: the output
// decodes to the exact name and is still safe on a terminal.
func TestDryRunJSONTerminalSafe(t *testing.T) {
	a := testpeers.StartLibvirtTest(t)
	evil := "evil\u202egpj.exe\u009b2J\u200b"
	cfg := fleetFile(t, fmt.Sprintf("[[host]]\nname = \"a\"\nuri = \"test+unix://%s?socket=%s\"\n", nodeFile(t, evil), a.Socket))
	for _, args := range [][]string{{"--json"}, {}} {
		r := gd(t, 60*time.Second, append(append([]string{"-c", cfg, "run", "--dry-run"}, args...), "ping", "a/"+evil)...)
		terminalSafe(t, fmt.Sprintf("run --dry-run %v", args), r.stdout+r.stderr)
		if len(args) == 0 {
			continue
		}
		var rows []struct{ Name string }
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 1 || rows[0].Name != "a/"+evil {
			t.Errorf("run --dry-run --json: exit %d, %v %+v\n%s", r.code, err, rows, r.stderr)
		}
	}
}
