package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// binary is guestdeck built once for every test: the tests run it as a user would.
var binary string

func TestMain(m *testing.M) {
	// No test writes to the developer's ledger or audit log: a test that
	// wants a state directory sets its own.
	os.Unsetenv("XDG_STATE_HOME")
	dir, err := os.MkdirTemp("", "gdbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "guestdeck")
	// Freezes are recorded under the state directory: never the real home's.
	// Tests that look at the ledger set their own with t.Setenv.
	os.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building guestdeck:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// gd runs the binary with args, bounded by timeout, with no terminal.
func gd(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	return gdEnv(t, timeout, nil, args...)
}

// gdEnv is gd with extra environment variables (XDG_STATE_HOME for a test's
// own audit log shared by several runs).
func gdEnv(t *testing.T, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// A home of its own: no developer's fleet file leaks into a test, and
	// the state (ledger, audit log) goes there too unless the test sets
	// XDG_STATE_HOME (TestMain clears the developer's).
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME=", "NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("guestdeck %s: still running after %v\nstderr: %s", strings.Join(args, " "), timeout, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("guestdeck %s: %v", strings.Join(args, " "), err)
	}
	return result{code, out.String(), errb.String()}
}

// fleetFile writes a fleet file with one [[guest]] per name/address pair.
func fleetFile(t *testing.T, extra string, guests ...[2]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(extra)
	for _, g := range guests {
		fmt.Fprintf(&b, "\n[[guest]]\nname = %q\naddress = %q\ntags = [\"test\"]\n", g[0], g[1])
	}
	p := filepath.Join(t.TempDir(), "fleet.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type statusGuest struct {
	Name         string `json:"name"`
	Host         string `json:"host"`
	Address      string `json:"address"`
	State        string `json:"state"`
	Error        string `json:"error"`
	AgentVersion string `json:"agent_version"`
	OS           string `json:"os"`
	Hostname     string `json:"hostname"`
	VCPUs        struct{ Online, Total int }
	Interfaces   []struct {
		Name      string   `json:"name"`
		MAC       string   `json:"mac"`
		Addresses []string `json:"addresses"`
	} `json:"interfaces"`
	TimeSkewMS *float64 `json:"time_skew_ms"`
	Freeze     string   `json:"freeze"`
	RTTMS      float64  `json:"rtt_ms"`
	Tags       []string `json:"tags"`
	Orphan     *struct {
		Since       time.Time  `json:"since"`
		Until       *time.Time `json:"until"`
		PID         int        `json:"pid"`
		Who         string     `json:"who"`
		ThawCommand string     `json:"thaw_command"`
	} `json:"orphan_freeze"`
}

var statusKeys = []string{"name", "host", "address", "uuid", "state", "error", "agent_version", "os", "hostname",
	"vcpus", "interfaces", "time_skew_ms", "freeze", "rtt_ms", "tags", "domain_state", "stale", "orphan_freeze",
	"kernel", "timezone", "users", "filesystems", "disks", "load", "metrics_note"}

// status runs `status --json` and decodes it, checking the exact key set.
func status(t *testing.T, cfg string, selectors ...string) map[string]statusGuest {
	t.Helper()
	r := gd(t, 60*time.Second, append([]string{"-c", cfg, "status", "--json"}, selectors...)...)
	if r.code != 0 {
		t.Fatalf("status: exit %d\nstderr: %s", r.code, r.stderr)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	var gs []statusGuest
	json.Unmarshal([]byte(r.stdout), &gs)
	out := map[string]statusGuest{}
	for i, obj := range raw {
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := slices.Clone(statusKeys)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Fatalf("status --json keys = %v, want %v", keys, want)
		}
		out[gs[i].Name] = gs[i]
	}
	return out
}

// TestStatusRealAgents polls 20 real qemu-ga processes through the CLI.
// Only read-only commands reach them: they run on this machine.
func TestStatusRealAgents(t *testing.T) {
	ag := testpeers.StartAgents(t, 20)
	var guests [][2]string
	for i, s := range ag.Sockets {
		guests = append(guests, [2]string{fmt.Sprintf("qga-%02d", i), "unix:" + s})
	}
	cfg := fleetFile(t, "", guests...)
	gs := status(t, cfg, "all")
	if len(gs) != 20 {
		t.Fatalf("status listed %d guests, want 20", len(gs))
	}
	for name, g := range gs {
		if g.State != "ready" || g.AgentVersion == "" || len(g.Interfaces) == 0 || g.VCPUs.Total == 0 {
			t.Errorf("%s: state %q version %q interfaces %d vcpus %+v err %q", name, g.State, g.AgentVersion,
				len(g.Interfaces), g.VCPUs, g.Error)
		}
		if g.Freeze != "thawed" {
			t.Errorf("%s: freeze %q, want thawed", name, g.Freeze)
		}
	}
	// The table names every guest too.
	r := gd(t, 60*time.Second, "-c", cfg, "status", "tag:test")
	if r.code != 0 || strings.Count(r.stdout, " ready ") != 20 {
		t.Errorf("status table: exit %d, want 20 ready rows:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestVM drives one real VM: freeze, a refused read, thaw, a read, shutdown.
func TestVM(t *testing.T) {
	vm := testpeers.BootVM(t, "gdvm")
	cfg := fleetFile(t, "", [2]string{"vm1", "unix:" + vm.Socket})
	const hello = "hello from the guest ext4 disk\n" // build-guest.sh writes it; the disk is mounted on /data

	if g := status(t, cfg, "vm1")["vm1"]; g.State != "ready" || g.Freeze != "thawed" {
		t.Fatalf("before freeze: %+v", g)
	}

	r := gd(t, 60*time.Second, "-c", cfg, "run", "--yes", "freeze", "vm1")
	if r.code != 0 {
		t.Fatalf("run freeze: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "FROZEN") || !strings.Contains(r.stderr, "run thaw vm1") {
		t.Errorf("run freeze gave no thaw reminder:\n%s", r.stderr)
	}
	t.Cleanup(func() { gd(t, 60*time.Second, "-c", cfg, "run", "thaw", "vm1") })
	if g := status(t, cfg, "vm1")["vm1"]; g.State != "frozen" || g.Freeze != "frozen" {
		t.Errorf("after freeze: state %q freeze %q", g.State, g.Freeze)
	}

	r = gd(t, 60*time.Second, "-c", cfg, "cat", "vm1", "/data/hello.txt")
	if r.code != 1 || !strings.Contains(r.stderr, "vm1") || !strings.Contains(r.stderr, "frozen") {
		t.Errorf("cat while frozen: exit %d, stderr %q: want 1 and a message naming vm1 and frozen", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("cat while frozen printed %q", r.stdout)
	}

	r = gd(t, 60*time.Second, "-c", cfg, "run", "--json", "thaw", "vm1")
	if r.code != 0 {
		t.Fatalf("run thaw: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = gd(t, 60*time.Second, "-c", cfg, "cat", "vm1", "/data/hello.txt")
	if r.code != 0 || r.stdout != hello {
		t.Errorf("cat after thaw: exit %d stdout %q stderr %q, want %q", r.code, r.stdout, r.stderr, hello)
	}

	// get writes the same bytes to a local file.
	dest := filepath.Join(t.TempDir(), "hello.txt")
	r = gd(t, 60*time.Second, "-c", cfg, "get", "vm1", "/data/hello.txt", dest)
	if b, _ := os.ReadFile(dest); r.code != 0 || string(b) != hello {
		t.Errorf("get: exit %d, file %q, stderr %q", r.code, b, r.stderr)
	}

	r = gd(t, 60*time.Second, "-c", cfg, "run", "--yes", "shutdown", "vm1")
	if r.code != 0 {
		t.Fatalf("run shutdown: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := vm.WaitExit(60 * time.Second); err != nil {
		t.Fatalf("the VM did not exit after shutdown: %v", err)
	}
}

// TestSimSubcommand serves simulated guests with `guestdeck sim` and reads
// the fleet file it writes with `status`.
func TestSimSubcommand(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := startGD(t, "sim", "--guests", "5", "--frozen", "1", "--silent", "1", "--dir", dir)
	cmd, out, errb, done := p.cmd, p.stdout, p.stderr, p.done
	cfg := filepath.Join(dir, "fleet.toml")
	wait.For(t, 20*time.Second, func() (bool, string) {
		_, err := os.Stat(cfg)
		return err == nil && strings.Contains(out.String(), "status"),
			fmt.Sprintf("sim wrote no fleet file\nstdout: %s\nstderr: %s", out.String(), errb.String())
	})
	gs := status(t, cfg)
	counts := map[string]int{}
	for _, g := range gs {
		counts[g.State]++
	}
	if len(gs) != 5 || counts["ready"] != 3 || counts["frozen"] != 1 || counts["silent"] != 1 {
		t.Errorf("sim fleet states = %v (of %d), want 3 ready, 1 frozen, 1 silent", counts, len(gs))
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
		if p.err != nil {
			t.Errorf("sim after SIGINT: %v (want exit 0)\n%s", p.err, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not exit within 10s of SIGINT")
	}
}

func TestBadFleetFile(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "fleet.toml")
	os.WriteFile(cfg, []byte("[[guest]]\nname = \"a\"\naddress = \"unix:/x.sock\"\n\n[[guest]]\nname = \"b\"\naddress = = 3\n"), 0o644)
	for _, args := range [][]string{{"status"}, {"run", "ping", "all"}, {"cat", "a", "/x"}, {}} {
		r := gd(t, 20*time.Second, append([]string{"-c", cfg}, args...)...)
		if r.code != 2 || !regexp.MustCompile(regexp.QuoteMeta(cfg)+`:7:\d+: `).MatchString(r.stderr) {
			t.Errorf("%v on a bad fleet file: exit %d, stderr %q; want 2 and %s:7:COL", args, r.code, r.stderr, cfg)
		}
	}
}

// TestThemeCheckedByEveryCommand: a theme the dashboard would refuse is
// refused by status and run too, before any guest is polled, naming what a
// theme may be (auto included) or, for a theme file, its valid keys.
func TestThemeCheckedByEveryCommand(t *testing.T) {
	dir := t.TempDir()
	badFile := filepath.Join(dir, "mine.toml")
	os.WriteFile(badFile, []byte("[colors]\nfoo = \"#fff\"\n"), 0o644)
	goodFile := filepath.Join(dir, "good.toml")
	os.WriteFile(goodFile, []byte("base = \"light\"\n[colors]\nready = \"#0f0\"\n"), 0o644)
	addr := "unix:" + filepath.Join(dir, "nobody.sock")
	tests := []struct {
		name, defaults string
		flags          []string
		code           int
		want           string
	}{
		{"file solarized", "[defaults]\ntheme = \"solarized\"\n", nil, 2, `theme in [defaults]: theme "solarized": unknown (built-in themes: dark, light, high-contrast; auto:`},
		{"flag solarized", "", []string{"--theme", "solarized"}, 2, `--theme: theme "solarized": unknown`},
		{"theme file unknown key", "", []string{"--theme", badFile}, 2, "unknown keys: colors.foo (a theme file has name, base and a [colors] table of accent, border, "},
		{"auto", "[defaults]\ntheme = \"auto\"\n", nil, 0, "unreachable"},
		{"good theme file", fmt.Sprintf("[defaults]\ntheme = %q\n", goodFile), nil, 0, "unreachable"},
		// What only the dashboard uses is checked by every command too.
		{"keys take a built-in key", "[keys]\nping = \"F\"\n", nil, 2, `fleet.toml:2:8: [keys] ping = "F" takes the key of freeze`},
		{"a command made harmless", "[[commands]]\nname = \"freeze-now\"\nrun = \"freeze\"\ndangerous = false\n", nil, 2,
			`command "freeze-now": freeze changes the guest, so dangerous = false cannot make it harmless`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fleetFile(t, tt.defaults, [2]string{"ghost", addr})
			for _, cmd := range [][]string{{"status"}, {"run", "ping", "all"}} {
				r := gd(t, 20*time.Second, append(append([]string{"-c", cfg}, tt.flags...), cmd...)...)
				ok := r.code == tt.code
				if tt.code == 2 {
					ok = ok && strings.Contains(r.stderr, tt.want) && r.stdout == ""
				} else if cmd[0] == "status" {
					ok = ok && strings.Contains(r.stdout, tt.want)
				} else {
					ok = r.code == exitFail // the one guest is unreachable: the theme passed
				}
				if !ok {
					t.Errorf("%v: exit %d\nstdout %q\nstderr %q\nwant exit %d and %q", cmd, r.code, r.stdout, r.stderr, tt.code, tt.want)
				}
			}
		})
	}
}

func TestMissingSocket(t *testing.T) {
	dir, _ := os.MkdirTemp("/tmp", "gd")
	t.Cleanup(func() { os.RemoveAll(dir) })
	addr := "unix:" + filepath.Join(dir, "nobody.sock")
	cfg := fleetFile(t, "", [2]string{"ghost", addr})
	start := time.Now()
	g := status(t, cfg)["ghost"]
	if g.State != "unreachable" || !strings.Contains(g.Error, addr) && !strings.Contains(g.Error, strings.TrimPrefix(addr, "unix:")) {
		t.Errorf("missing socket: state %q error %q; want unreachable naming %s", g.State, g.Error, addr)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("status took %v for one unreachable guest", d)
	}
	r := gd(t, 20*time.Second, "-c", cfg, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "unreachable") {
		t.Errorf("status table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// simFarm serves n simulated guests from this test process, so the test can
// count what reached them.
func simFarm(t *testing.T, n int) (*sim.Farm, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	farm, err := sim.ServeDir(dir, n, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("s%d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close(); os.RemoveAll(dir) })
	var guests [][2]string
	for i, s := range farm.Sockets() {
		guests = append(guests, [2]string{fmt.Sprintf("s%d", i), "unix:" + s})
	}
	return farm, fleetFile(t, "", guests...)
}

func TestReadonlyRefusesBeforeAsking(t *testing.T) {
	farm, cfg := simFarm(t, 3)
	for _, args := range [][]string{
		{"--readonly", "-c", cfg, "run", "--yes", "freeze", "all"},
		{"--readonly", "-c", cfg, "run", "--yes", "shutdown", "s0"},
		{"--readonly", "-c", cfg, "put", "/etc/hostname", "s0", "/tmp/x"},
		{"--readonly", "-c", cfg, "agent", "s0", `{"execute":"guest-fsfreeze-freeze"}`},
	} {
		r := gd(t, 20*time.Second, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--readonly") {
			t.Errorf("%v: exit %d stderr %q; want 2 and a message naming --readonly", args, r.code, r.stderr)
		}
	}
	for i, g := range farm.Guests() {
		for _, c := range []string{"guest-sync-delimited", "guest-info", "guest-fsfreeze-freeze", "guest-shutdown"} {
			if n := g.Calls(c); n != 0 {
				t.Errorf("guest s%d got %d %s calls under --readonly", i, n, c)
			}
		}
	}
	// Looking is still allowed.
	if r := gd(t, 20*time.Second, "--readonly", "-c", cfg, "run", "ping", "all"); r.code != 0 {
		t.Errorf("--readonly run ping: exit %d %s", r.code, r.stderr)
	}
}

func TestRunJSONShape(t *testing.T) {
	farm, cfg := simFarm(t, 3)
	r := gd(t, 30*time.Second, "-c", cfg, "run", "--json", "ping", "--", "s0", "s1", "s2")
	if r.code != 0 {
		t.Fatalf("run ping: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != 3 {
		t.Fatalf("run --json: %v, %d objects\n%s", err, len(raw), r.stdout)
	}
	for _, obj := range raw {
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"error", "name", "ok", "result", "rtt_ns", "skipped"}) {
			t.Errorf("run --json keys %v", keys)
		}
		if string(obj["ok"]) != "true" {
			t.Errorf("run ping: %s", mustJSON(obj))
		}
	}

	// A failing guest makes the exit code 1; its error is in the JSON.
	farm.Guests()[1].SetHang(true)
	r = gd(t, 60*time.Second, "-c", cfg, "run", "--json", "--yes", "freeze", "all")
	var res []runJSON
	json.Unmarshal([]byte(r.stdout), &res)
	if r.code != 1 || len(res) != 3 {
		t.Fatalf("freeze with a hung guest: exit %d, %d results\n%s%s", r.code, len(res), r.stdout, r.stderr)
	}
	for _, x := range res {
		if (x.Name == "s1") == x.OK || (x.Name == "s1") != (x.Error != "") {
			t.Errorf("result %+v", x)
		}
	}
	if !farm.Guests()[0].Frozen() || farm.Guests()[1].Frozen() {
		t.Errorf("after freeze: s0 frozen %v, s1 frozen %v", farm.Guests()[0].Frozen(), farm.Guests()[1].Frozen())
	}
}

// On a frozen guest, run says the guest is frozen, not that the command is
// disabled (its agent lists the commands it refuses while frozen as
// disabled), and a second freeze is "already frozen".
func TestRunOnFrozenGuest(t *testing.T) {
	farm, cfg := simFarm(t, 1)
	if r := gd(t, 20*time.Second, "-c", cfg, "run", "--yes", "freeze", "s0"); r.code != 0 || !farm.Guests()[0].Frozen() {
		t.Fatalf("freeze: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { gd(t, 20*time.Second, "-c", cfg, "run", "thaw", "s0") })
	opens := farm.Guests()[0].Calls("guest-file-open")
	r := gd(t, 20*time.Second, "-c", cfg, "run", "--json", "read", "/etc/hostname", "s0")
	var res []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 {
		t.Fatalf("run read: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if x := res[0]; !x.Skipped || !strings.Contains(x.Error, "frozen") || strings.Contains(x.Error, "disabled") {
		t.Errorf("run read on a frozen guest: %+v, want skipped saying it is frozen", x)
	}
	if n := farm.Guests()[0].Calls("guest-file-open"); n != opens {
		t.Errorf("run read on a frozen guest sent guest-file-open")
	}
	r = gd(t, 20*time.Second, "-c", cfg, "run", "--json", "--yes", "freeze", "s0")
	res = nil
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 {
		t.Fatalf("second freeze: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if x := res[0]; !x.OK || x.Result != "already frozen" {
		t.Errorf("second freeze: %+v, want ok, already frozen", x)
	}
}

func TestFreezeNeedsYesOrHold(t *testing.T) {
	farm, cfg := simFarm(t, 1)
	r := gd(t, 20*time.Second, "-c", cfg, "run", "freeze", "s0")
	if r.code != 2 || !strings.Contains(r.stderr, "--hold") || farm.Guests()[0].Calls("guest-fsfreeze-freeze") != 0 {
		t.Errorf("freeze without --yes: exit %d stderr %q", r.code, r.stderr)
	}
	// Shutdown without a terminal and without --yes is refused.
	r = gd(t, 20*time.Second, "-c", cfg, "run", "shutdown", "s0")
	if r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Errorf("shutdown without --yes: exit %d stderr %q", r.code, r.stderr)
	}
	if _, ok := farm.Guests()[0].ShutdownMode(); ok {
		t.Error("the guest was shut down without confirmation")
	}
	// --hold freezes, then thaws when the hold ends.
	r = gd(t, 30*time.Second, "-c", cfg, "run", "--yes", "--hold", "1s", "freeze", "s0")
	if r.code != 0 || farm.Guests()[0].Frozen() || farm.Guests()[0].Calls("guest-fsfreeze-freeze") != 1 {
		t.Errorf("freeze --hold 1s: exit %d, frozen after %v\n%s%s", r.code, farm.Guests()[0].Frozen(), r.stdout, r.stderr)
	}
}

func TestDemoStatus(t *testing.T) {
	start := time.Now()
	r := gd(t, 30*time.Second, "--demo", "status", "--json")
	if r.code != 0 {
		t.Fatalf("--demo status: exit %d\n%s", r.code, r.stderr)
	}
	var gs []statusGuest
	json.Unmarshal([]byte(r.stdout), &gs)
	hosts, states := map[string]bool{}, map[string]int{}
	for _, g := range gs {
		hosts[g.Host] = true
		states[g.State]++
	}
	if len(gs) < 40 || len(hosts) < 3 || states["frozen"] == 0 || states["silent"] == 0 || states["ready"] < 30 {
		t.Errorf("demo: %d guests, hosts %v, states %v", len(gs), hosts, states)
	}
	var windows, skewed, manyIfaces, bigCPU bool
	for _, g := range gs {
		windows = windows || strings.Contains(g.OS, "Windows")
		skewed = skewed || g.TimeSkewMS != nil && *g.TimeSkewMS > 30000
		manyIfaces = manyIfaces || len(g.Interfaces) >= 6
		bigCPU = bigCPU || g.VCPUs.Total >= 16
	}
	if !windows || !skewed || !manyIfaces || !bigCPU {
		t.Errorf("demo lacks variety: windows %v, large skew %v, many interfaces %v, 16 vCPUs %v", windows, skewed, manyIfaces, bigCPU)
	}
	// One guest has guest-exec disabled: a listing-free guest for the file browser.
	r = gd(t, 30*time.Second, "--demo", "agent", "db-02", `{"execute":"guest-info"}`)
	if r.code != 0 || !regexp.MustCompile(`"enabled": false,\s*"name": "guest-exec"`).MatchString(r.stdout) {
		t.Errorf("demo db-02 should have guest-exec disabled: exit %d\n%.400s%s", r.code, r.stdout, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("demo status took %v", d)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}} {
		r := gd(t, 10*time.Second, args...)
		if r.code != 0 {
			t.Errorf("%v: exit %d", args, r.code)
		}
		for _, c := range []string{"status", "run", "cat", "get", "put", "agent", "sim"} {
			if !regexp.MustCompile(`(?m)^  ` + c + ` `).MatchString(r.stdout) {
				t.Errorf("%v does not list %s:\n%s", args, c, r.stdout)
			}
		}
	}
	if r := gd(t, 10*time.Second, "frobnicate"); r.code != 2 {
		t.Errorf("unknown command: exit %d", r.code)
	}
	// virsh's habit, an action where a command goes: pointed to run.
	if r := gd(t, 10*time.Second, "domtime", "web-1"); r.code != 2 ||
		!strings.Contains(r.stderr, `unknown command "domtime"; it is an action: guestdeck run domtime SELECTOR...`) {
		t.Errorf("an action as a command: exit %d, %q", r.code, r.stderr)
	}
}

func TestSplitAction(t *testing.T) {
	for _, tc := range []struct {
		in          string
		action, sel string
	}{
		{"ping all", "ping", "all"},
		{"shutdown web-1", "shutdown", "web-1"},
		{"shutdown reboot web-1 web-2", "shutdown reboot", "web-1 web-2"},
		{"vcpus offline 2,3 tag:db", "vcpus offline 2,3", "tag:db"},
		{"read /etc/hostname host:hv-a", "read /etc/hostname", "host:hv-a"},
		{"suspend ram -- a b", "suspend ram", "a b"},
		{"freeze", "freeze", ""},
	} {
		a, s := splitAction(strings.Fields(tc.in))
		if strings.Join(a, " ") != tc.action || strings.Join(s, " ") != tc.sel {
			t.Errorf("splitAction(%q) = %q | %q, want %q | %q", tc.in, a, s, tc.action, tc.sel)
		}
	}
}

// lockedBuffer is a bytes.Buffer a running command writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestLibvirtHost reads a [[host]] on a real libvirtd (test driver) and
// shows its domains under the host's name.
func TestLibvirtHost(t *testing.T) {
	lv := testpeers.StartLibvirtTest(t)
	conn := lv.Connect(t)
	for _, name := range []string{"lab-1", "lab-2"} {
		xml := "<domain type='test'><name>" + name + "</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>" +
			"<devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>"
		if _, err := conn.DomainCreateXML(xml, 0); err != nil {
			t.Fatal(err)
		}
	}
	extra := fmt.Sprintf("[[host]]\nname = \"hv-t\"\nuri = \"test+unix:///default?socket=%s\"\ntags = [\"lab\"]\n", lv.Socket)
	cfg := fleetFile(t, extra)
	gs := status(t, cfg, "host:hv-t")
	if len(gs) != 2 {
		t.Fatalf("status host:hv-t listed %d guests, want lab-1 and lab-2: %+v", len(gs), gs)
	}
	for name, g := range gs {
		if g.Host != "hv-t" || !slices.Contains(g.Tags, "lab") || !strings.HasPrefix(g.Address, "libvirt:hv-t/") {
			t.Errorf("%s: host %q tags %v address %q", name, g.Host, g.Tags, g.Address)
		}
	}
}

// TestFilesRealAgent moves files through a real qemu-ga: put, get and cat
// agree, and errors carry the agent's reason. The agent only writes inside
// its test directory.
func TestFilesRealAgent(t *testing.T) {
	ag := testpeers.StartAgents(t, 1)
	cfg := fleetFile(t, "", [2]string{"q1", ag.Addrs()[0]})

	// 1 MiB + a bit: several chunks each way.
	data := make([]byte, 1<<20+12345)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	src := filepath.Join(t.TempDir(), "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(ag.Writable, "copy.bin")
	r := gd(t, 60*time.Second, "-c", cfg, "put", src, "q1", remote)
	if r.code != 0 || !strings.Contains(r.stderr, fmt.Sprintf("(%d bytes)", len(data))) {
		t.Fatalf("put: exit %d stderr %q", r.code, r.stderr)
	}
	destDir := t.TempDir()
	r = gd(t, 60*time.Second, "-c", cfg, "get", "q1", remote, destDir)
	if got, _ := os.ReadFile(filepath.Join(destDir, "copy.bin")); r.code != 0 || !bytes.Equal(got, data) {
		t.Fatalf("get into a directory: exit %d, %d bytes back (want %d), stderr %q", r.code, len(got), len(data), r.stderr)
	}
	r = gd(t, 60*time.Second, "-c", cfg, "cat", "q1", remote)
	if r.code != 0 || r.stdout != string(data) {
		t.Errorf("cat: exit %d, %d bytes, stderr %q", r.code, len(r.stdout), r.stderr)
	}

	// The agent's reasons reach the user, with the guest named.
	missing := filepath.Join(ag.Writable, "nope.txt")
	r = gd(t, 30*time.Second, "-c", cfg, "cat", "q1", missing)
	if r.code != 1 || !strings.Contains(r.stderr, "q1:"+missing) || !strings.Contains(strings.ToLower(r.stderr), "no such file") {
		t.Errorf("cat of a missing file: exit %d stderr %q", r.code, r.stderr)
	}
	// The agents run as nobody: /etc/shadow is unreadable (and only read:
	// writes outside the test directory never go to an agent on this machine).
	r = gd(t, 30*time.Second, "-c", cfg, "cat", "q1", "/etc/shadow")
	if r.code != 1 || !strings.Contains(r.stderr, "q1:/etc/shadow") || !strings.Contains(strings.ToLower(r.stderr), "permission denied") {
		t.Errorf("cat of a file the agent may not read: exit %d stderr %q", r.code, r.stderr)
	}
	dest := filepath.Join(t.TempDir(), "never.txt")
	if r = gd(t, 30*time.Second, "-c", cfg, "get", "q1", missing, dest); r.code != 1 {
		t.Errorf("get of a missing file: exit %d", r.code)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Error("a failed get left a file behind")
	}
	if r = gd(t, 30*time.Second, "-c", cfg, "cat", "nosuchguest", "/etc/hostname"); r.code != 2 || !strings.Contains(r.stderr, "nosuchguest") {
		t.Errorf("cat from an unknown guest: exit %d stderr %q", r.code, r.stderr)
	}

	// agent: one raw command, the reply object printed.
	r = gd(t, 30*time.Second, "-c", cfg, "agent", "q1", `{"execute":"guest-info"}`)
	var reply struct {
		Return struct {
			Version string `json:"version"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &reply); r.code != 0 || err != nil || reply.Return.Version == "" {
		t.Errorf("agent guest-info: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	r = gd(t, 30*time.Second, "-c", cfg, "agent", "q1", `{"execute":"guest-no-such-command"}`)
	var errReply struct {
		Error struct{ Class, Desc string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &errReply); r.code != 1 || err != nil || errReply.Error.Class != "CommandNotFound" {
		t.Errorf("agent with an unknown command: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
}

// TestStatusUnknownIsNull: a guest whose agent has never answered has
// "vcpus" and "interfaces" null, not zero vCPUs and an empty list, which a
// script would read as a guest without CPUs or network.
func TestStatusUnknownIsNull(t *testing.T) {
	cfg := fleetFile(t, "", [2]string{"gone", "unix:" + filepath.Join(t.TempDir(), "none.sock")})
	r := gd(t, 60*time.Second, "-c", cfg, "status", "--json")
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != 1 {
		t.Fatalf("status --json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	for _, k := range []string{"vcpus", "interfaces", "time_skew_ms"} {
		if got := string(raw[0][k]); got != "null" {
			t.Errorf("%s = %s, want null", k, got)
		}
	}
}
