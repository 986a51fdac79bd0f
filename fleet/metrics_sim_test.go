package fleet_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// metricsFleet serves the configured simulated guests and polls them fast,
// metrics at every poll.
func metricsFleet(t *testing.T, cfgs []sim.Config) (*sim.Farm, *fleet.Fleet) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, len(cfgs), func(i int) sim.Config { return cfgs[i] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	opts := fastOptions()
	opts.MetricsInterval = opts.Interval
	f := fleet.New(opts)
	t.Cleanup(func() { f.Close() })
	for _, sock := range farm.Sockets() {
		f.Add(fleet.Target{Name: strings.TrimSuffix(filepath.Base(sock), ".sock"), Address: "unix:" + sock})
	}
	f.Start(t.Context())
	return farm, f
}

// enough: three samples, the last with CPU rates (or, for an agent without
// cpustats, with network rates).
func enough(f *fleet.Fleet, name string) func(*fleet.Guest) bool {
	return func(g *fleet.Guest) bool {
		return len(f.History(name)) >= 3 && (g.Metrics.CPUBusy.OK || (g.Metrics.CPUs == 0 && g.Metrics.NetRxBps.OK))
	}
}

// Simulated guests of every kind give the rates their workload implies, an
// agent that lacks a command gives a note saying so and no error, and the
// slow items bring disks, routes and filesystem sizes.
func TestMetricsFromSim(t *testing.T) {
	busy := sim.DefaultConfig("busy")
	busy.Workload, busy.AgentVersion = sim.WorkloadBusy, "10.0.2"
	idle := sim.DefaultConfig("idle")
	idle.Workload = sim.WorkloadIdle
	steal := sim.DefaultConfig("steal")
	steal.Workload = sim.WorkloadSteal
	old := sim.DefaultConfig("old")
	old.AgentVersion = "5.2.0"
	win := sim.WindowsConfig("win")
	full := sim.DefaultConfig("full")
	full.Filesystems = []agentclient.Filesystem{full.Filesystems[0]}
	used, total := uint64(10_630_000_000), uint64(10_737_418_240)
	full.Filesystems[0].UsedBytes, full.Filesystems[0].TotalBytes = &used, &total
	blocked := sim.DefaultConfig("blocked")
	blocked.Disabled = []string{"guest-get-cpustats"}

	_, f := metricsFleet(t, []sim.Config{busy, idle, steal, old, win, full, blocked})
	for _, n := range []string{"busy", "idle", "steal", "old", "win", "full", "blocked"} {
		waitFor(t, f, n, 20*time.Second, enough(f, n))
	}
	m := func(name string) fleet.Metrics { return f.Guest(name).Metrics }
	for _, n := range []string{"busy", "idle", "steal", "old", "win"} {
		x := m(n)
		t.Logf("%s: busy %+v iowait %+v steal %+v read %+v write %+v rx %+v load %+v derived %v; note %q", n, x.CPUBusy, x.IOWait, x.Steal, x.DiskReadBps, x.DiskWriteBps, x.NetRxBps, x.Load1, x.LoadDerived, x.Note)
	}

	if b := m("busy"); b.CPUBusy.V < 60 || b.DiskWriteBps.V < 1e6 || !b.NetTxBps.OK || b.LoadDerived || !b.Load1.OK || b.Load1.V <= 0 {
		t.Errorf("busy guest: %+v", b)
	}
	if b := m("busy"); len(b.Routes) == 0 || b.Note != "" {
		t.Errorf("busy guest (agent 10.0): routes %v, note %q", b.Routes, b.Note)
	}
	if i := m("idle"); !i.CPUBusy.OK || i.CPUBusy.V > 10 || !i.IOWait.OK || !i.DiskReadBps.OK {
		t.Errorf("idle guest: %+v", i)
	}
	if s := m("steal"); s.Steal.V < 15 {
		t.Errorf("steal guest: steal %+v", s.Steal)
	}
	// qemu-ga 7.2 has no guest-get-load: derived, and labelled.
	if i := m("idle"); !i.LoadDerived || !i.Load1.OK || !strings.Contains(i.Note, "agent 7.2.22 lacks guest-get-load (qemu-ga 10.0+): load derived from CPU use") {
		t.Errorf("7.2 guest's load: %+v %+v, derived %v, note %q", i.Load1, i.Load15, i.LoadDerived, i.Note)
	}
	if i := m("idle"); len(i.Disks) != 2 || i.Disks[0].Name != "/dev/vda" || !i.Disks[1].Partition || i.Routes != nil {
		t.Errorf("7.2 guest's disks %+v, routes %+v", i.Disks, i.Routes)
	}
	if o := m("old"); o.CPUBusy.OK || o.DiskReadBps.OK || o.Load1.OK || !o.NetRxBps.OK ||
		!strings.Contains(o.Note, "agent 5.2.0 lacks guest-get-cpustats (qemu-ga 7.1+): no CPU rates") {
		t.Errorf("5.2 guest: %+v", o)
	}
	if w := m("win"); w.CPUBusy.OK || !strings.Contains(w.Note, "qemu-ga for Windows has no guest-get-cpustats") {
		t.Errorf("Windows guest: %+v", w)
	}
	if b := m("blocked"); b.CPUBusy.OK || b.Load1.OK || !b.DiskReadBps.OK || !strings.Contains(b.Note, "guest-get-cpustats is disabled in the guest: no CPU rates") {
		t.Errorf("guest with cpustats blocked: %+v", b)
	}
	if fs := m("full").Filesystems; len(fs) != 1 || fs[0].Mountpoint != "/" || fs[0].UsedBytes != used || fs[0].TotalBytes != total {
		t.Errorf("full guest's filesystems: %+v", fs)
	}
	for _, n := range []string{"old", "win", "blocked"} {
		if g := f.Guest(n); g.Err != "" || g.Missed != 0 || g.State != fleet.Ready {
			t.Errorf("%s: a missing command is no error: %s %q, %d missed", n, g.State, g.Err, g.Missed)
		}
	}
	h := f.History("busy")
	for i := 1; i < len(h); i++ {
		if !h[i].At.After(h[i-1].At) {
			t.Errorf("history not oldest first at %d: %v then %v", i, h[i-1].At, h[i].At)
		}
	}
	if f.History("nobody") != nil {
		t.Error("History of an unknown guest is not nil")
	}
}

// A reboot resets the guest's counters: that interval has no rates (none
// negative), and the next ones do again.
func TestMetricsAcrossReboot(t *testing.T) {
	cfg := sim.DefaultConfig("rb")
	cfg.Workload = sim.WorkloadBusy
	cfg.RebootDelay = 300 * time.Millisecond
	_, f := metricsFleet(t, []sim.Config{cfg})
	waitFor(t, f, "rb", 20*time.Second, enough(f, "rb"))
	before := len(f.History("rb"))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res := f.Run(ctx, fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownReboot}, []string{"rb"}, nil)
	if len(res) != 1 || !res[0].OK {
		t.Fatalf("reboot: %+v", res)
	}
	// Rates again after the reboot: two samples since it.
	waitFor(t, f, "rb", 20*time.Second, func(g *fleet.Guest) bool {
		h := f.History("rb")
		return len(h) >= before+3 && h[len(h)-1].CPUBusy.OK && h[len(h)-1].NetRxBps.OK
	})
	unknownSeen := false
	for i, s := range f.History("rb") {
		t.Logf("%d %s busy %+v rx %+v", i, s.At.Format("05.000"), s.CPUBusy, s.NetRxBps)
	}
	for i, s := range f.History("rb") {
		for _, r := range []fleet.Rate{s.CPUBusy, s.IOWait, s.Steal, s.DiskReadBps, s.DiskWriteBps, s.NetRxBps, s.NetTxBps} {
			if r.OK && (r.V < 0 || r.V > 1e11) {
				t.Errorf("sample %d: rate %v", i, r.V)
			}
		}
		if i >= before && !s.CPUBusy.OK && !s.NetRxBps.OK && !s.DiskWriteBps.OK {
			unknownSeen = true
		}
	}
	if !unknownSeen {
		t.Error("no sample after the reboot had its CPU, network and disk rates unknown: the reset went unnoticed")
	}
	if g := f.Guest("rb"); g.Metrics.CPUBusy.V < 50 {
		t.Errorf("after the reboot: busy %+v", g.Metrics.CPUBusy)
	}
}

// Metrics off: nothing of theirs is asked.
func TestMetricsOff(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config { return sim.DefaultConfig("off") })
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	opts := fastOptions()
	opts.MetricsInterval = -1
	f := fleet.New(opts)
	defer f.Close()
	f.Add(fleet.Target{Name: "off", Address: "unix:" + farm.Sockets()[0]})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	f.RefreshOnce(ctx, nil)
	f.RefreshOnce(ctx, nil)
	g := farm.Guests()[0]
	for _, c := range []string{"guest-get-cpustats", "guest-get-diskstats", "guest-get-disks"} {
		if n := g.Calls(c); n != 0 {
			t.Errorf("%s asked %d times with metrics off", c, n)
		}
	}
	if f.Guest("off").State != fleet.Ready || f.History("off") != nil {
		t.Errorf("metrics off: %s, history %v", f.Guest("off").State, f.History("off"))
	}
}

// A one-shot poll (status without --sample) asks the disks but not the
// counters: one sample gives no rate.
func TestNoCounters(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config { return sim.DefaultConfig("once") })
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	opts := fastOptions()
	opts.NoCounters = true
	f := fleet.New(opts)
	defer f.Close()
	f.Add(fleet.Target{Name: "once", Address: "unix:" + farm.Sockets()[0]})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	f.RefreshOnce(ctx, nil)
	g := farm.Guests()[0]
	for _, c := range []string{"guest-get-cpustats", "guest-get-diskstats"} {
		if n := g.Calls(c); n != 0 {
			t.Errorf("%s asked %d times without counters", c, n)
		}
	}
	if n := g.Calls("guest-get-disks"); n != 1 {
		t.Errorf("guest-get-disks asked %d times, want 1", n)
	}
	if got := f.Guest("once"); got.State != fleet.Ready || len(got.Metrics.Disks) == 0 {
		t.Errorf("without counters: %s, disks %v", got.State, got.Metrics.Disks)
	}
}

// Each poll that reads the clock adds its skew to SkewHistory, newest last,
// and the history never grows past the round trips kept.
func TestSkewHistory(t *testing.T) {
	_, f := metricsFleet(t, []sim.Config{sim.DefaultConfig("clock")})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for range 20 {
		f.RefreshOnce(ctx, []string{"clock"})
	}
	g := f.Guest("clock")
	if n := g.SkewHistory.Len(); n == 0 || n > g.RTTHistory.Len() || n > 16 {
		t.Fatalf("skew history of %d after 20 polls (round trips kept: %d)", n, g.RTTHistory.Len())
	}
	// As the history keeps it: exact below 16.7 ms, float32 beyond.
	if last := g.SkewHistory.At(g.SkewHistory.Len() - 1); !g.SkewKnown || last != fleet.RecentOf(g.Skew).At(0) {
		t.Errorf("newest skew %v, guest's skew %v (known %v)", last, g.Skew, g.SkewKnown)
	}
}
