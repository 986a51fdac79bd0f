package main

import (
	"encoding/json"
	"fmt"
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
