package tui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
)

var testNow = time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)

// fakeSource is a Source over a fixed snapshot that records actions.
type fakeSource struct {
	mu      sync.Mutex
	snap    *fleet.Snapshot
	changed chan struct{}
	runs    []fakeRun
	frozen  []string
	thawed  int
	fail    map[string]string // guest -> error text for Run
	// hold, when set, keeps every Run in flight until it is closed.
	hold chan struct{}
	// thawFail, when set, makes ThawOurs fail with it and thaw nothing.
	thawFail string
	// onRun, when set, is called as each Run and ThawOurs starts.
	onRun func()
	// inFlight, with hold, is how many guests a held Run has started;
	// the others start at the release, or never if it is stopped first.
	inFlight int
	// thawAt is a freeze's Result.ThawAt (zero: none, as before).
	thawAt time.Time
	// cut: a held Run's context ended before the release (its calls
	// would have been cut, as quitting does).
	cut bool
}

// holdRuns keeps actions in flight until the returned func is called.
func (s *fakeSource) holdRuns() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
	return sync.OnceFunc(func() { close(s.hold) })
}

type fakeRun struct {
	action fleet.Action
	names  []string
}

func newFakeSource(guests []*fleet.Guest) *fakeSource {
	s := &fakeSource{changed: make(chan struct{}, 1), fail: map[string]string{}}
	s.set(guests)
	return s
}

func (s *fakeSource) set(guests []*fleet.Guest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[fleet.State]int{}
	for _, g := range guests {
		counts[g.State]++
	}
	var v uint64 = 1
	if s.snap != nil {
		v = s.snap.Version + 1
	}
	s.snap = &fleet.Snapshot{Guests: guests, Counts: counts, Version: v, At: testNow,
		Health: fleet.Health{Polling: len(guests)}}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *fakeSource) Snapshot() *fleet.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

func (s *fakeSource) Changed() <-chan struct{} { return s.changed }

func (s *fakeSource) RunUntil(ctx, stop context.Context, a fleet.Action, names []string, progress func(fleet.Result)) []fleet.Result {
	s.mu.Lock()
	s.runs = append(s.runs, fakeRun{a, names})
	hold, onRun, inFlight, thawAt := s.hold, s.onRun, s.inFlight, s.thawAt
	s.mu.Unlock()
	if onRun != nil {
		onRun()
	}
	out := make([]fleet.Result, len(names))
	started := names
	if hold != nil && inFlight > 0 {
		// As the fleet does: inFlight guests are sent the action and held;
		// a stop while they are starts none of the others, which report
		// at once, and the held ones still finish.
		started = names[:min(inFlight, len(names))]
		select {
		case <-hold:
			started = names
		case <-ctx.Done():
		case <-stop.Done():
		}
		for i := len(started); i < len(names); i++ {
			out[i] = fleet.Result{Guest: names[i], Err: fleet.NotStartedText, NotStarted: true}
			if progress != nil {
				progress(out[i])
			}
		}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			s.mu.Lock()
			s.cut = true
			s.mu.Unlock()
		}
	}
	for i, n := range started {
		r := fleet.Result{Guest: n, OK: true, Result: string(a.Kind) + " ok", Duration: 3 * time.Millisecond}
		if a.Kind == fleet.ActFreeze {
			r.ThawAt = thawAt
		}
		if e, ok := s.fail[n]; ok {
			r = fleet.Result{Guest: n, Err: e}
		}
		if progress != nil {
			progress(r)
		}
		out[i] = r
	}
	return out
}

func (s *fakeSource) FrozenByUs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.frozen...)
}

func (s *fakeSource) ThawOurs(ctx context.Context) []fleet.Result {
	if s.onRun != nil {
		s.onRun()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.thawFail != "" {
		out := make([]fleet.Result, len(s.frozen))
		for i, n := range s.frozen {
			out[i] = fleet.Result{Guest: n, Err: s.thawFail}
		}
		return out
	}
	out := make([]fleet.Result, len(s.frozen))
	for i, n := range s.frozen {
		out[i] = fleet.Result{Guest: n, OK: true}
	}
	s.thawed += len(s.frozen)
	s.frozen = nil
	return out
}

func (s *fakeSource) ReadFile(ctx context.Context, guest, path string, w io.Writer, progress func(done, total int64)) (int64, error) {
	n, err := io.WriteString(w, "contents of "+path)
	return int64(n), err
}

func u64(n uint64) *uint64 { return &n }
func bptr(b bool) *bool    { return &b }

var allCommands = []string{"guest-ping", "guest-info", "guest-sync", "guest-fsfreeze-freeze", "guest-fsfreeze-thaw",
	"guest-fsfreeze-status", "guest-shutdown", "guest-suspend-ram", "guest-suspend-disk", "guest-set-time",
	"guest-get-time", "guest-fstrim", "guest-set-vcpus", "guest-get-vcpus", "guest-file-open", "guest-file-read",
	"guest-file-write", "guest-file-close", "guest-exec", "guest-network-get-interfaces", "guest-get-osinfo"}

// testGuest builds guest i deterministically: states cycle, every 7th guest
// has guest-set-time disabled, every 11th lacks fsfreeze.
func testGuest(i int) *fleet.Guest {
	states := []fleet.State{fleet.Ready, fleet.Ready, fleet.Ready, fleet.Frozen, fleet.Silent, fleet.Unreachable, fleet.Connecting}
	g := &fleet.Guest{
		Target: fleet.Target{
			Name:    fmt.Sprintf("vm-%05d", i),
			Host:    fmt.Sprintf("hv%d", i%3+1),
			Address: fmt.Sprintf("libvirt:hv%d/vm-%05d", i%3+1, i),
			Tags:    []string{[]string{"web", "db", "batch"}[i%3]},
		},
		State:        states[i%len(states)],
		Since:        testNow.Add(-time.Duration(i%50) * time.Minute),
		AgentVersion: "8.2.2",
		OS: &agentclient.OSInfo{PrettyName: "Debian GNU/Linux 12 (bookworm)", KernelRelease: "6.1.0-28-amd64",
			KernelVersion: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1", Machine: "x86_64", ID: "debian"},
		Hostname: fmt.Sprintf("vm-%05d", i),
		Timezone: &agentclient.Timezone{Zone: "UTC", Offset: 0},
		Users:    []agentclient.User{{User: "alice", LoginTime: float64(testNow.Add(-2 * time.Hour).Unix())}},
		Filesystems: []agentclient.Filesystem{{Name: "vda1", Mountpoint: "/", Type: "ext4",
			UsedBytes: u64(3 << 30), TotalBytes: u64(20 << 30)}},
		Interfaces: []agentclient.Interface{
			{Name: "lo", HardwareAddress: "00:00:00:00:00:00", IPAddresses: []agentclient.IPAddress{
				{Address: "127.0.0.1", Type: "ipv4", Prefix: 8}, {Address: "::1", Type: "ipv6", Prefix: 128}}},
			{Name: "eth0", HardwareAddress: fmt.Sprintf("52:54:00:00:%02x:%02x", i/256%256, i%256),
				IPAddresses: []agentclient.IPAddress{
					{Address: fmt.Sprintf("10.0.%d.%d", i/250%250, i%250+1), Type: "ipv4", Prefix: 24},
					{Address: fmt.Sprintf("fd00::%x", i+1), Type: "ipv6", Prefix: 64}},
				Statistics: &agentclient.InterfaceStats{RxBytes: 123456789, RxPackets: 98765, TxBytes: 4567890, TxPackets: 4321}},
		},
		VCPUs: []agentclient.VCPU{{LogicalID: 0, Online: true, CanOffline: bptr(false)},
			{LogicalID: 1, Online: i%5 != 0, CanOffline: bptr(true)}},
		Freeze:    agentclient.Thawed,
		Skew:      time.Duration(i%9-4) * 150 * time.Millisecond,
		SkewKnown: true,
		SkewHistory: fleet.RecentOf(-20*time.Millisecond, 40*time.Millisecond, -150*time.Millisecond,
			time.Duration(i%9-4)*150*time.Millisecond),
		RTT: time.Duration(1+i%17) * time.Millisecond,
		RTTHistory: fleet.RecentOf(time.Millisecond, 2*time.Millisecond, 0, 5*time.Millisecond, 3*time.Millisecond,
			time.Duration(1+i%17)*time.Millisecond),
		LastLive: testNow,
		Log: fleet.LogOf(
			fleet.LogEntry{At: testNow.Add(-time.Second), Command: "guest-get-vcpus", Request: "{}", Reply: `[{"logical-id":0,...}]`, Duration: 2 * time.Millisecond},
			fleet.LogEntry{At: testNow.Add(-2 * time.Second), Command: "guest-set-time", Request: "{}", Reply: "Command guest-set-time has been disabled", Err: true, Duration: time.Millisecond},
		),
		Version: 1,
	}
	for _, c := range allCommands {
		enabled := !(c == "guest-set-time" && i%7 == 0)
		if i%11 == 0 && strings.HasPrefix(c, "guest-fsfreeze") {
			continue
		}
		g.Commands = append(g.Commands, agentclient.CommandInfo{Name: c, Enabled: enabled})
	}
	g.Metrics = testMetrics(i)
	switch g.State {
	case fleet.Frozen:
		g.Freeze = agentclient.Frozen
		g.FrozenByUs = true
		g.ThawAt = testNow.Add(4*time.Minute + 30*time.Second)
	case fleet.Unreachable:
		g.Err = "dial unix /run/qga.sock: connect: connection refused"
		g.RTT = 0
		g.SkewKnown = false
	case fleet.Silent:
		g.Err = "agent silent: no reply to guest-sync in 5s"
	}
	return g
}

// testMetrics is guest i's newest metrics sample: every 6th guest's agent
// lacks cpustats (CPU absent, with a note), every 8th has a /var 97.5% full.
func testMetrics(i int) fleet.Metrics {
	r := func(v float64) fleet.Rate { return fleet.Rate{V: v, OK: true} }
	mt := fleet.Metrics{
		At:      testNow,
		CPUBusy: r(float64(i*37%100) + 0.5), IOWait: r(float64(i*13%40) / 2), Steal: r(float64(i%4) * 1.5),
		DiskReadBps: r(float64(i*7919%5000) * 1024), DiskWriteBps: r(float64(i*104729%3000) * 2048),
		DiskReadIOPS: r(float64(i * 7 % 300)), DiskWriteIOPS: r(float64(i * 11 % 200)),
		NetRxBps: r(float64(i*31%97) * 10000), NetTxBps: r(float64(i*17%89) * 5000), NetErrsPerSec: r(0),
		Load1: r(float64(i*37%100) / 40), Load5: r(float64(i*37%100) / 50), Load15: r(float64(i*37%100) / 60),
		Filesystems: []fleet.FSUsage{{Mountpoint: "/", Type: "ext4", UsedBytes: 3 << 30, TotalBytes: 20 << 30}},
	}
	if i%8 == 7 {
		mt.Filesystems = append(mt.Filesystems, fleet.FSUsage{Mountpoint: "/var", Type: "xfs", UsedBytes: 39 << 29, TotalBytes: 20 << 30})
	}
	if i%2 == 1 {
		mtu := 1500
		mt.Disks = []agentclient.DiskInfo{
			{Name: "/dev/nvme0n1", Address: &agentclient.DiskAddress{BusType: "nvme", Serial: fmt.Sprintf("SN%05d", i)},
				Smart: &agentclient.DiskSmart{Type: "nvme", Temperature: 310, AvailableSpare: 100, AvailableSpareThreshold: 10,
					PercentageUsed: 3, PowerOnHoursLo: 1234, UnsafeShutdownsLo: 2}},
			{Name: "/dev/nvme0n1p1", Partition: true, Dependencies: []string{"/dev/nvme0n1"}},
			{Name: "/dev/dm-0", Alias: "vg0-root", Dependencies: []string{"/dev/nvme0n1p1"}},
		}
		mt.Routes = []agentclient.Route{
			{Iface: "eth0", Destination: "0.0.0.0", Gateway: fmt.Sprintf("10.0.%d.1", i/250%250), Mask: "0.0.0.0", Metric: 100, MTU: &mtu, Version: 4},
			{Iface: "eth0", Destination: fmt.Sprintf("10.0.%d.0", i/250%250), Mask: "255.255.255.0", Metric: 100, MTU: &mtu, Version: 4},
			{Iface: "eth0", Destination: "fd00::", DesPrefixLen: "40", NextHop: "::", Metric: 256, Version: 6},
		}
	}
	if i%6 == 5 {
		mt.CPUBusy, mt.IOWait, mt.Steal = fleet.Rate{}, fleet.Rate{}, fleet.Rate{}
		mt.Load1, mt.Load5, mt.Load15 = fleet.Rate{}, fleet.Rate{}, fleet.Rate{}
		mt.Note = "agent 5.2 lacks guest-get-cpustats"
	}
	return mt
}

// History is a minute of samples (one per second) ending in the guest's
// newest one: values ramp up to it, with a gap where sample 30 failed. Like
// fleet's, its samples carry the time, LoadDerived and the series' rates
// only (no note, filesystems, disks, routes, 5 and 15 minute load).
func (s *fakeSource) History(name string) []fleet.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.snap.Guests {
		if g.Name != name || g.Metrics.At.IsZero() {
			continue
		}
		const n = 60
		out := make([]fleet.Metrics, n)
		for k := range out {
			mt := g.Metrics
			f := float64((k*7)%n+1) / n
			scale := func(r fleet.Rate) fleet.Rate { return fleet.Rate{V: r.V * f, OK: r.OK && k != 30} }
			mt.At = g.Metrics.At.Add(time.Duration(k-n+1) * time.Second)
			mt.CPUBusy, mt.IOWait, mt.Steal = scale(mt.CPUBusy), scale(mt.IOWait), scale(mt.Steal)
			mt.DiskReadBps, mt.DiskWriteBps = scale(mt.DiskReadBps), scale(mt.DiskWriteBps)
			mt.DiskReadIOPS, mt.DiskWriteIOPS = scale(mt.DiskReadIOPS), scale(mt.DiskWriteIOPS)
			mt.NetRxBps, mt.NetTxBps = scale(mt.NetRxBps), scale(mt.NetTxBps)
			mt.Load1 = scale(mt.Load1)
			if k == n-1 {
				mt = g.Metrics
			}
			out[k] = fleet.Metrics{At: mt.At, LoadDerived: mt.LoadDerived, CPUBusy: mt.CPUBusy, IOWait: mt.IOWait, Steal: mt.Steal,
				DiskReadBps: mt.DiskReadBps, DiskWriteBps: mt.DiskWriteBps, DiskReadIOPS: mt.DiskReadIOPS, DiskWriteIOPS: mt.DiskWriteIOPS,
				NetRxBps: mt.NetRxBps, NetTxBps: mt.NetTxBps, NetErrsPerSec: mt.NetErrsPerSec, Load1: mt.Load1}
		}
		return out
	}
	return nil
}

func testGuests(n int) []*fleet.Guest {
	gs := make([]*fleet.Guest, n)
	for i := range gs {
		gs[i] = testGuest(i)
	}
	return gs
}

// newTestModel is a model on n test guests at a fixed size, colour off.
func newTestModel(n, w, h int, opts Options) (Model, *fakeSource) {
	src := newFakeSource(testGuests(n))
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	if opts.Styles.States == nil {
		opts.Styles = themes.Mono()
	}
	m := New(src, opts)
	m.resize(w, h)
	return m, src
}
