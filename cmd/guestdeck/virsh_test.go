package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// clockJSON is one guest of `run --json clock`.
type clockJSON struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Result string `json:"result"`
	Clock  string `json:"clock"`
	SkewNs *int64 `json:"skew_ns"`
}

func runClock(t *testing.T, args ...string) ([]clockJSON, result) {
	t.Helper()
	r := gd(t, 30*time.Second, append([]string{"run", "--json"}, args...)...)
	var out []clockJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v: %v\n%s%s", args, err, r.stdout, r.stderr)
	}
	return out, r
}

// TestClockVirshWords: run clock (virsh domtime) reads the guest clock to
// the nanosecond and its skew; --time SECONDS sets it (after a yes), --sync
// sets it from the guest's RTC (guest-set-time without a time), --now from
// the host clock; read-only mode lets only the reading through.
func TestClockVirshWords(t *testing.T) {
	gs, cfg := simGuests(t, "",
		simCfg("c1", func(c *sim.Config) { c.ClockDrift = -1 }), // stopped: the test knows what it says
		simCfg("c2", func(c *sim.Config) { c.ClockOffset = time.Hour }))
	out, r := runClock(t, "-c", cfg, "domtime", "c1", "c2")
	if r.code != exitOK || len(out) != 2 {
		t.Fatalf("domtime: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if want := gs["c1"].Clock().UTC().Format(time.RFC3339Nano); !out[0].OK || out[0].Clock != want {
		t.Errorf("c1 clock %q, want %q (%+v)", out[0].Clock, want, out[0])
	}
	if s := out[1].SkewNs; s == nil || time.Duration(*s) < 59*time.Minute || time.Duration(*s) > 61*time.Minute || !strings.Contains(out[1].Result, "ahead of the host") {
		t.Errorf("c2 an hour ahead: %+v", out[1])
	}

	if r := gd(t, 30*time.Second, "-c", cfg, "run", "clock", "--time", "1700000000", "c1"); r.code != exitUsage || gs["c1"].Calls("guest-set-time") != 0 {
		t.Fatalf("clock --time without --yes: exit %d, %d sets\n%s", r.code, gs["c1"].Calls("guest-set-time"), r.stderr)
	}
	out, r = runClock(t, "-c", cfg, "--yes", "clock", "--time", "1700000000", "c1")
	if r.code != exitOK || out[0].Clock != "2023-11-14T22:13:20Z" || gs["c1"].Clock().Unix() != 1700000000 {
		t.Errorf("clock --time: exit %d %+v, guest clock %v", r.code, out, gs["c1"].Clock())
	}
	out, r = runClock(t, "-c", cfg, "clock", "--sync", "c2")
	if r.code != exitOK || !out[0].OK || out[0].Clock != "" || gs["c2"].Calls("guest-set-time") != 1 {
		t.Errorf("clock --sync: exit %d %+v", r.code, out)
	}
	before := time.Now()
	out, r = runClock(t, "-c", cfg, "domtime", "--now", "c2")
	if got := gs["c2"].Clock(); r.code != exitOK || got.Before(before) || got.After(time.Now().Add(time.Minute)) {
		t.Errorf("domtime --now: exit %d %+v, guest clock %v", r.code, out, got)
	}

	for _, opt := range [][]string{{}, {"--now"}, {"--sync"}, {"--time", "1"}} {
		r := gd(t, 30*time.Second, append(append([]string{"--readonly", "-c", cfg, "run", "--yes", "clock"}, opt...), "c1")...)
		if ok := r.code == exitOK; ok != (len(opt) == 0) {
			t.Errorf("--readonly clock %v: exit %d\n%s", opt, r.code, r.stderr)
		}
	}
}

// TestClockRealAgent reads real qemu-ga clocks (only reads: they run on this
// machine): the reply's nanoseconds and a skew of this machine's own clock,
// which is next to nothing.
func TestClockRealAgent(t *testing.T) {
	ag := testpeers.StartAgents(t, 2)
	var guests [][2]string
	for i, s := range ag.Sockets {
		guests = append(guests, [2]string{fmt.Sprintf("q%d", i), "unix:" + s})
	}
	cfg := fleetFile(t, "", guests...)
	out, r := runClock(t, "-c", cfg, "domtime", "all")
	if r.code != exitOK || len(out) != 2 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, g := range out {
		at, err := time.Parse(time.RFC3339Nano, g.Clock)
		if !g.OK || err != nil || g.SkewNs == nil || time.Duration(*g.SkewNs).Abs() > time.Second || time.Since(at).Abs() > time.Minute {
			t.Errorf("%s: %+v (%v)", g.Name, g, err)
		}
	}
}

// TestFsVirshOptions: freeze --mountpoint sends guest-fsfreeze-freeze-list
// with the paths and --hold thaws it; fstrim --minimum sends the minimum;
// thaw and fstrim refuse --mountpoint (the agent cannot honour it) before
// anything is sent.
func TestFsVirshOptions(t *testing.T) {
	gs, cfg := simGuests(t, "", simCfg("f1", func(c *sim.Config) {
		c.Filesystems = append(c.Filesystems, agentclient.Filesystem{Name: "vdb1", Mountpoint: "/var", Type: "xfs"})
	}))
	r := gd(t, 30*time.Second, "-c", cfg, "run", "--json", "--yes", "--hold", "1ms", "freeze", "--mountpoint", "/var", "f1")
	var res []struct {
		OK          bool   `json:"ok"`
		Result      string `json:"result"`
		Filesystems *int   `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != exitOK || len(res) != 1 || !res[0].OK || res[0].Filesystems == nil || *res[0].Filesystems != 1 {
		t.Fatalf("freeze --mountpoint --hold: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if g := gs["f1"]; g.Calls("guest-fsfreeze-freeze-list") != 1 || g.Calls("guest-fsfreeze-freeze") != 0 || g.Frozen() {
		t.Errorf("after the hold: freeze-list %d, freeze %d, frozen %v", g.Calls("guest-fsfreeze-freeze-list"), g.Calls("guest-fsfreeze-freeze"), g.Frozen())
	}
	r = gd(t, 30*time.Second, "-c", cfg, "run", "--dry-run", "--json", "fstrim", "--minimum", "65536", "f1")
	if !strings.Contains(r.stdout, `"execute": "guest-fstrim"`) || !strings.Contains(r.stdout, `"minimum": 65536`) {
		t.Errorf("fstrim --minimum dry run:\n%s%s", r.stdout, r.stderr)
	}
	r = gd(t, 30*time.Second, "-c", cfg, "run", "--json", "fstrim", "--minimum", "65536", "f1")
	if r.code != exitOK || gs["f1"].Calls("guest-fstrim") != 1 {
		t.Errorf("fstrim --minimum: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"thaw", "--mountpoint", "/var"}, {"fstrim", "--mountpoint", "/"}} {
		r := gd(t, 30*time.Second, append(append([]string{"-c", cfg, "run"}, args...), "f1")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "takes no mountpoints") {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	if n := gs["f1"].Calls("guest-fsfreeze-thaw") + gs["f1"].Calls("guest-fstrim"); n != 2 {
		t.Errorf("the refused thaw/fstrim sent something: %d calls, want the hold's thaw and one fstrim", n)
	}
}

// TestDomifaddr: one row per address as virsh domifaddr prints them, the
// guest, interface and MAC only on their first row; an interface without
// addresses has a row of its own; a guest whose interfaces are not known
// says why; a guest's interface name is escaped. status --interfaces is the
// same table.
func TestDomifaddr(t *testing.T) {
	gs, cfg := simGuests(t, "[defaults]\ntimeout = \"500ms\"\n",
		simCfg("i1", func(c *sim.Config) {
			c.Interfaces = []agentclient.Interface{
				{Name: "eth0", HardwareAddress: "52:54:00:00:00:01", IPAddresses: []agentclient.IPAddress{
					{Address: "192.0.2.10", Type: "ipv4", Prefix: 24}, {Address: "2001:db8::10", Type: "ipv6", Prefix: 64}}},
				{Name: "veth\x1b[2J", HardwareAddress: "52:54:00:00:00:02"},
			}
		}),
		simCfg("i2", nil))
	gs["i2"].SetSilent(true)
	for _, args := range [][]string{{"domifaddr", "i1", "i2"}, {"status", "--interfaces", "i1", "i2"}} {
		r := gd(t, 60*time.Second, append([]string{"-c", cfg}, args...)...)
		var rows [][]string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			rows = append(rows, strings.Fields(l))
		}
		want := [][]string{
			{"GUEST", "INTERFACE", "MAC", "PROTOCOL", "ADDRESS"},
			{"i1", "eth0", "52:54:00:00:00:01", "ipv4", "192.0.2.10/24"},
			{"-", "-", "-", "ipv6", "2001:db8::10/64"},
			{"-", `veth\x1b[2J`, "52:54:00:00:00:02", "-", "-"},
			{"i2", "-", "-", "-", "not", "known:", "the", "guest", "is", "silent"},
		}
		if r.code != exitOK || fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("%v: exit %d\n got %q\nwant %q\n%s", args, r.code, rows, want, r.stderr)
		}
	}
	if r := gd(t, 30*time.Second, "-c", cfg, "status", "--interfaces", "--json", "i1"); r.code != exitUsage {
		t.Errorf("--interfaces --json: exit %d", r.code)
	}
}

// uuidNodeFile is nodeFile with each domain's UUID given.
func uuidNodeFile(t *testing.T, doms ...[2]string) string {
	t.Helper()
	p := nodeFile(t)
	var b strings.Builder
	b.WriteString("<node>")
	for _, d := range doms {
		b.WriteString("<domain type='test'><name>" + d[0] + "</name><uuid>" + d[1] + "</uuid><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>" +
			"<devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>")
	}
	b.WriteString("</node>")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGuestsByUUID runs two real (test-driver) libvirtds: a libvirt guest's
// UUID is in status --json ("" for a socket guest) and selects it, bare or as
// uuid:, in either case; a UUID two hosts' domains share (the same
// definition on both) is refused as ambiguous, naming both, before anything
// is sent.
func TestGuestsByUUID(t *testing.T) {
	const (
		shared = "6695eb01-f6a4-8304-79aa-97f2502e193f"
		onlyA  = "aa0e8400-e29b-41d4-a716-446655440000"
		db1    = "bb0e8400-e29b-41d4-a716-446655440001"
	)
	a, lab := testpeers.StartLibvirtTest(t), testpeers.StartLibvirtTest(t)
	extra := fmt.Sprintf("[[host]]\nname = \"a\"\nuri = \"test+unix://%s?socket=%s\"\n\n[[host]]\nname = \"lab\"\nuri = \"test+unix://%s?socket=%s\"\n",
		uuidNodeFile(t, [2]string{"lv1", shared}, [2]string{"only-a", onlyA}), a.Socket,
		uuidNodeFile(t, [2]string{"lv1", shared}, [2]string{"db-1", db1}), lab.Socket)
	farm, err := sim.ServeDir(mustTmp(t), 1, func(int) sim.Config { return sim.DefaultConfig("s0") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	cfg := fleetFile(t, extra, [2]string{"s0", "unix:" + farm.Sockets()[0]})

	r := gd(t, 60*time.Second, "-c", cfg, "status", "--json")
	var gs []struct{ Name, UUID string }
	if err := json.Unmarshal([]byte(r.stdout), &gs); err != nil || r.code != exitOK {
		t.Fatalf("status --json: exit %d %v\n%s", r.code, err, r.stderr)
	}
	got := map[string]string{}
	for _, g := range gs {
		got[g.Name] = g.UUID
	}
	want := map[string]string{"a/lv1": shared, "a/only-a": onlyA, "lab/lv1": shared, "lab/db-1": db1, "s0": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("uuids %v, want %v", got, want)
	}
	for _, tc := range []struct {
		sel  string
		want string // the one guest selected
	}{
		{onlyA, "a/only-a"}, {"uuid:" + db1, "lab/db-1"}, {strings.ToUpper(db1), "lab/db-1"},
	} {
		r := gd(t, 60*time.Second, "-c", cfg, "status", "--json", tc.sel)
		var one []struct{ Name string }
		if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || r.code != exitOK || len(one) != 1 || one[0].Name != tc.want {
			t.Errorf("status %s: exit %d %v %+v, want %s\n%s", tc.sel, r.code, err, one, tc.want, r.stderr)
		}
	}
	before := simSent(farm.Guests()[0])
	for _, sel := range []string{shared, "uuid:" + shared} {
		r := gd(t, 60*time.Second, "-c", cfg, "run", "ping", "s0", sel)
		if r.code != exitUsage || !strings.Contains(r.stderr, "is ambiguous: domains on 2 hosts have that UUID; name one: a/lv1, lab/lv1") {
			t.Errorf("run ping %s: exit %d\n%s", sel, r.code, r.stderr)
		}
	}
	if r := gd(t, 30*time.Second, "-c", cfg, "status", "uuid:nope"); r.code != exitUsage || !strings.Contains(r.stderr, "not a UUID") {
		t.Errorf("uuid:nope: exit %d\n%s", r.code, r.stderr)
	}
	if n := simSent(farm.Guests()[0]) - before; n != 0 {
		t.Errorf("the refused runs sent %d requests to s0", n)
	}
}

// mustTmp is a short directory under /tmp (unix socket paths must stay
// under 108 bytes), removed when the test ends.
func mustTmp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestGuestInfo: guestinfo prints virsh guestinfo's keys for the sections
// asked (all without flags), numbers typed in --json; guest text is escaped
// in the text and exact in the JSON.
func TestGuestInfo(t *testing.T) {
	_, cfg := simGuests(t, "", simCfg("g1", nil), sim.HostileConfig("evil"))
	r := gd(t, 60*time.Second, "-c", cfg, "guestinfo", "--os", "--filesystem", "g1")
	for _, want := range []string{"==> g1 <==\n", "os.id : debian\n", "os.pretty-name : Debian GNU/Linux 12 (bookworm)\n",
		"fs.count : 1\n", "fs.0.mountpoint : /\n", "fs.0.fstype : ext4\n", "fs.0.total-bytes : 10737418240\n", "fs.0.disk.0.device : /dev/vda1\n"} {
		if !strings.Contains(strings.Join(strings.Fields(r.stdout), " ")+"\n", strings.TrimSuffix(want, "\n")) {
			t.Errorf("guestinfo --os --filesystem lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.code != exitOK || strings.Contains(r.stdout, "hostname") || strings.Contains(r.stdout, "user.") {
		t.Errorf("sections not asked for, or exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = gd(t, 60*time.Second, "-c", cfg, "guestinfo", "evil")
	if r.code != exitOK || strings.ContainsAny(r.stdout, "\x1b\u009b\u202e") || !strings.Contains(r.stdout, `\x1b]0;OWNED`) {
		t.Errorf("hostile guest text not escaped: exit %d\n%q", r.code, r.stdout)
	}
	r = gd(t, 60*time.Second, "-c", cfg, "guestinfo", "--json", "evil", "g1")
	var got []guestInfoJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 2 {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if h := got[0].Info["hostname"]; h != "host"+sim.Hostile {
		t.Errorf("--json hostname %q, want the guest's exact text", h)
	}
	if n, ok := got[1].Info["fs.count"].(float64); !ok || n != 1 || got[1].Info["user.0.name"] != "user" {
		t.Errorf("--json g1: %v", got[1].Info)
	}
}

// TestGuestInfoRealAgent: a real qemu-ga's report (only reads: it runs on
// this machine) in virsh's keys: the OS and the host name this machine has.
func TestGuestInfoRealAgent(t *testing.T) {
	ag := testpeers.StartAgents(t, 1)
	cfg := fleetFile(t, "", [2]string{"q0", "unix:" + ag.Sockets[0]})
	r := gd(t, 60*time.Second, "-c", cfg, "guestinfo", "--json", "--os", "--hostname", "--interface", "q0")
	var got []guestInfoJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != exitOK || len(got) != 1 {
		t.Fatalf("exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	host, _ := os.Hostname()
	info := got[0].Info
	if info["hostname"] != host || info["os.kernel-release"] == nil || info["if.count"] == nil || info["if.0.name"] == nil {
		t.Errorf("real agent: %v (this machine is %s)", info, host)
	}
}
