package fleet

import (
	"math"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

func u64(v uint64) *uint64 { return &v }

// cpu is one CPU's cpustats entry: busy, idle, iowait and steal ms.
func cpu(id int, busy, idle, iowait, steal uint64) agentclient.CPUStats {
	return agentclient.CPUStats{Type: "linux", CPU: id, User: busy, Idle: idle, IOWait: u64(iowait), Steal: u64(steal)}
}

func disk(name string, rsect, wsect, rios, wios uint64) agentclient.DiskStatsInfo {
	return agentclient.DiskStatsInfo{Name: name, Stats: agentclient.DiskStats{
		ReadSectors: u64(rsect), WriteSectors: u64(wsect), ReadIOs: u64(rios), WriteIOs: u64(wios)}}
}

func iface(name string, rx, tx, errs uint64) agentclient.Interface {
	return agentclient.Interface{Name: name, Statistics: &agentclient.InterfaceStats{RxBytes: rx, TxBytes: tx, RxErrs: errs}}
}

// sample is one poll's replies, at seconds after t0.
type sample struct {
	at    float64
	cpus  []agentclient.CPUStats
	disks []agentclient.DiskStatsInfo
	nets  []agentclient.Interface
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func (s sample) counters() *counters {
	m := &metricsPoll{at: t0.Add(time.Duration(s.at * float64(time.Second))),
		cpu: s.cpus, cpuOK: s.cpus != nil, disk: s.disks, diskOK: s.disks != nil}
	r := &pollResult{ifaces: s.nets, ifacesOK: s.nets != nil}
	return sampleCounters(m, r)
}

// want is an expected rate: ok false means unknown.
type want struct {
	v  float64
	ok bool
}

func known(v float64) want { return want{v, true} }

var unknown = want{}

func checkRate(t *testing.T, name string, got Rate, w want) {
	t.Helper()
	if got.OK != w.ok || (w.ok && math.Abs(got.V-w.v) > 1e-6*max(1, math.Abs(w.v))) {
		t.Errorf("%s = %+v, want %+v", name, got, w)
	}
	if got.OK && (got.V < 0 || math.IsNaN(got.V) || math.IsInf(got.V, 0)) {
		t.Errorf("%s = %v: a known rate must be finite and not negative", name, got.V)
	}
}

func TestRates(t *testing.T) {
	twoCPUs := func(busy, idle, wait, steal uint64) []agentclient.CPUStats {
		return []agentclient.CPUStats{cpu(0, busy, idle, wait, steal), cpu(1, busy, idle, wait, steal)}
	}
	tests := []struct {
		name       string
		prev, cur  sample
		busy, wait want
		steal      want
		rd, wr     want // disk bytes/s
		riops      want
		rx, tx     want
		errs       want
	}{
		{
			name: "steady",
			prev: sample{at: 0, cpus: twoCPUs(1000, 8000, 500, 500), disks: []agentclient.DiskStatsInfo{disk("vda", 0, 0, 0, 0)}, nets: []agentclient.Interface{iface("eth0", 0, 0, 0)}},
			// 10 s: each CPU 10,000 ms: 5,000 busy, 3,000 idle, 1,000 iowait, 1,000 steal.
			cur:  sample{at: 10, cpus: twoCPUs(6000-1000+1000, 11000, 1500, 1500), disks: []agentclient.DiskStatsInfo{disk("vda", 20480, 40960, 100, 200)}, nets: []agentclient.Interface{iface("eth0", 1e6, 5e5, 30)}},
			busy: known(50), wait: known(10), steal: known(10),
			rd: known(20480 * 512 / 10), wr: known(40960 * 512 / 10), riops: known(10),
			rx: known(1e5), tx: known(5e4), errs: known(3),
		},
		{
			name: "first sample has no previous",
			cur:  sample{at: 0, cpus: twoCPUs(1, 1, 1, 1), disks: []agentclient.DiskStatsInfo{disk("vda", 1, 1, 1, 1)}, nets: []agentclient.Interface{iface("eth0", 1, 1, 1)}},
		},
		{
			name: "reboot: every counter smaller",
			prev: sample{at: 0, cpus: twoCPUs(9e6, 9e7, 1e5, 1e5), disks: []agentclient.DiskStatsInfo{disk("vda", 9e9, 9e9, 9e6, 9e6)}, nets: []agentclient.Interface{iface("eth0", 9e12, 9e12, 5)}},
			cur:  sample{at: 10, cpus: twoCPUs(500, 9000, 10, 0), disks: []agentclient.DiskStatsInfo{disk("vda", 100, 100, 1, 1)}, nets: []agentclient.Interface{iface("eth0", 100, 100, 0)}},
		},
		{
			name: "one counter of one device wrapped: that group only is unknown",
			prev: sample{at: 0, cpus: twoCPUs(1000, 9000, 0, 0), disks: []agentclient.DiskStatsInfo{disk("vda", 100, 100, 10, 10), disk("vdb", 100, 100, 10, 10)}, nets: []agentclient.Interface{iface("eth0", math.MaxUint32-10, 0, 0)}},
			cur:  sample{at: 10, cpus: twoCPUs(2000, 18000, 0, 0), disks: []agentclient.DiskStatsInfo{disk("vda", 200, 200, 20, 20), disk("vdb", 50, 200, 20, 20)}, nets: []agentclient.Interface{iface("eth0", 5, 100, 0)}},
			busy: known(10), wait: known(0), steal: known(0),
		},
		{
			name: "agent restart: counters carry on",
			prev: sample{at: 0, cpus: twoCPUs(1000, 9000, 0, 0)},
			cur:  sample{at: 5, cpus: twoCPUs(3500, 11500, 0, 0)},
			busy: known(50), wait: known(0), steal: known(0),
		},
		{
			name: "CPUs advancing faster than time",
			prev: sample{at: 0, cpus: twoCPUs(0, 0, 0, 0)},
			cur:  sample{at: 1, cpus: twoCPUs(1e9, 1e9, 0, 0)},
		},
		{
			name: "parts larger than the whole (overflowing sum)",
			prev: sample{at: 0, cpus: []agentclient.CPUStats{cpu(0, 1, 1, 1, 1)}},
			cur:  sample{at: 10, cpus: []agentclient.CPUStats{cpu(0, math.MaxUint64, 5, 5, 5)}},
		},
		{
			name: "no time passed",
			prev: sample{at: 3, cpus: twoCPUs(0, 0, 0, 0), disks: []agentclient.DiskStatsInfo{disk("vda", 0, 0, 0, 0)}},
			cur:  sample{at: 3, cpus: twoCPUs(10, 10, 0, 0), disks: []agentclient.DiskStatsInfo{disk("vda", 10, 10, 1, 1)}},
		},
		{
			name: "disk faster than any hardware",
			prev: sample{at: 0, disks: []agentclient.DiskStatsInfo{disk("vda", 0, 0, 0, 0)}},
			cur:  sample{at: 1, disks: []agentclient.DiskStatsInfo{disk("vda", 1e15, 0, 0, 0)}},
			rd:   unknown, wr: known(0), riops: known(0),
		},
		{
			name: "network faster than any NIC",
			prev: sample{at: 0, nets: []agentclient.Interface{iface("eth0", 0, 0, 0)}},
			cur:  sample{at: 1, nets: []agentclient.Interface{iface("eth0", 1e18, 10, 0)}},
			rx:   unknown, tx: known(10), errs: known(0),
		},
		{
			name: "partitions, dm, loop and loopback are not counted twice",
			prev: sample{at: 0,
				disks: []agentclient.DiskStatsInfo{disk("vda", 0, 0, 0, 0), disk("vda1", 0, 0, 0, 0), disk("dm-0", 0, 0, 0, 0), disk("loop0", 0, 0, 0, 0), disk("nvme0n1", 0, 0, 0, 0), disk("nvme0n1p1", 0, 0, 0, 0)},
				nets:  []agentclient.Interface{iface("lo", 0, 0, 0), iface("eth0", 0, 0, 0)}},
			cur: sample{at: 1,
				disks: []agentclient.DiskStatsInfo{disk("vda", 2, 0, 1, 0), disk("vda1", 2, 0, 1, 0), disk("dm-0", 2, 0, 1, 0), disk("loop0", 9, 0, 9, 0), disk("nvme0n1", 2, 0, 1, 0), disk("nvme0n1p1", 2, 0, 1, 0)},
				nets:  []agentclient.Interface{iface("lo", 1e6, 1e6, 0), iface("eth0", 7, 3, 0)}},
			rd: known(4 * 512), wr: known(0), riops: known(2),
			rx: known(7), tx: known(3), errs: known(0),
		},
		{
			name: "a device that came or went has no part in the rate",
			prev: sample{at: 0, disks: []agentclient.DiskStatsInfo{disk("vda", 0, 0, 0, 0), disk("vdb", 0, 0, 0, 0)}},
			cur:  sample{at: 1, disks: []agentclient.DiskStatsInfo{disk("vda", 2, 0, 0, 0), disk("vdc", 1e12, 0, 0, 0)}},
			rd:   known(1024), wr: known(0), riops: known(0),
		},
		{
			name: "a CPU hot-added: rates over the CPUs both samples have",
			prev: sample{at: 0, cpus: []agentclient.CPUStats{cpu(0, 0, 0, 0, 0)}},
			cur:  sample{at: 10, cpus: []agentclient.CPUStats{cpu(0, 2500, 7500, 0, 0), cpu(1, 1, 1, 0, 0)}},
			busy: known(25), wait: known(0), steal: known(0),
		},
		{
			name: "the previous sample lacks CPU counters (its call failed): unknown",
			prev: sample{at: 0, disks: []agentclient.DiskStatsInfo{disk("vda", 0, 0, 0, 0)}},
			cur:  sample{at: 10, cpus: twoCPUs(1000, 9000, 0, 0), disks: []agentclient.DiskStatsInfo{disk("vda", 0, 0, 0, 0)}},
			rd:   known(0), wr: known(0), riops: known(0),
		},
		{
			name: "interfaces without counters: unknown, not zero",
			prev: sample{at: 0, nets: []agentclient.Interface{{Name: "Ethernet"}}},
			cur:  sample{at: 1, nets: []agentclient.Interface{{Name: "Ethernet"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var prev *counters
			if tc.prev.at != 0 || tc.prev.cpus != nil || tc.prev.disks != nil || tc.prev.nets != nil {
				prev = tc.prev.counters()
			}
			var m Metrics
			computeRates(prev, tc.cur.counters(), &m)
			checkRate(t, "CPUBusy", m.CPUBusy, tc.busy)
			checkRate(t, "IOWait", m.IOWait, tc.wait)
			checkRate(t, "Steal", m.Steal, tc.steal)
			checkRate(t, "DiskReadBps", m.DiskReadBps, tc.rd)
			checkRate(t, "DiskWriteBps", m.DiskWriteBps, tc.wr)
			checkRate(t, "DiskReadIOPS", m.DiskReadIOPS, tc.riops)
			checkRate(t, "NetRxBps", m.NetRxBps, tc.rx)
			checkRate(t, "NetTxBps", m.NetTxBps, tc.tx)
			checkRate(t, "NetErrsPerSec", m.NetErrsPerSec, tc.errs)
		})
	}
}

func TestWholeDisk(t *testing.T) {
	names := map[string]bool{"vda": true, "vda1": true, "sda": true, "sda2": true, "nvme0n1": true, "nvme0n1p1": true, "mmcblk0": true, "mmcblk0p1": true, "xvdb": true}
	tests := []struct {
		name  string
		whole bool
	}{
		{"vda", true}, {"vda1", false}, {"sda", true}, {"sda2", false}, {"nvme0n1", true}, {"nvme0n1p1", false},
		{"mmcblk0", true}, {"mmcblk0p1", false}, {"xvdb", true}, {"xvdb3", false}, {"xvdc3", true /* its disk is not listed */},
		{"dm-0", false}, {"md127", false}, {"loop3", false}, {"zram0", false}, {"ram0", false}, {"sr0", false}, {"nbd0", false},
	}
	for _, tc := range tests {
		if got := wholeDisk(tc.name, names); got != tc.whole {
			t.Errorf("wholeDisk(%q) = %v, want %v", tc.name, got, tc.whole)
		}
	}
}

// The ring keeps the newest HistorySize samples, oldest first, and the
// series' rates survive the compact form (unknown stays unknown, zero stays
// a known zero); Load5 and Load15 are not kept (Guest.Metrics has them).
func TestHistoryRing(t *testing.T) {
	var st metricsState
	if st.history() != nil || st.hist.v != nil || st.hist.at != nil {
		t.Fatal("history before any sample is not nil, or its ring is allocated")
	}
	for i := range HistorySize + 7 {
		m := Metrics{At: t0.Add(time.Duration(i)*time.Second + time.Duration(i)), CPUBusy: Rate{float64(i % 10), true}, LoadDerived: i%2 == 0,
			Load1: Rate{0.25, true}, Load5: Rate{5, true}, Load15: Rate{15, true}, DiskReadIOPS: Rate{123456.7, true}}
		if i%3 == 0 {
			m.NetRxBps = Rate{1.5e9, true}
		}
		if i%5 == 0 {
			m.Load1 = Rate{} // unknown
		}
		st.push(m)
	}
	h := st.history()
	if len(h) != HistorySize {
		t.Fatalf("history has %d samples, want %d", len(h), HistorySize)
	}
	for j, m := range h {
		i := j + 7
		if !m.At.Equal(t0.Add(time.Duration(i)*time.Second + time.Duration(i))) {
			t.Fatalf("sample %d at %v, want second %d and %d ns", j, m.At, i, i)
		}
		if wantLoad := i%5 != 0; m.Load1.OK != wantLoad || (wantLoad && m.Load1.V != 0.25) {
			t.Errorf("sample %d: Load1 %+v", j, m.Load1)
		}
		// A count is shown to the unit: it keeps float32's precision.
		if m.DiskReadIOPS != (Rate{float64(float32(123456.7)), true}) {
			t.Errorf("sample %d: DiskReadIOPS %+v", j, m.DiskReadIOPS)
		}
		if m.Load5.OK || m.Load15.OK {
			t.Errorf("sample %d: Load5 %+v, Load15 %+v kept", j, m.Load5, m.Load15)
		}
		if m.CPUBusy != (Rate{float64(i % 10), true}) || m.LoadDerived != (i%2 == 0) {
			t.Errorf("sample %d: %+v", j, m)
		}
		if wantRx := i%3 == 0; m.NetRxBps.OK != wantRx || (wantRx && math.Abs(m.NetRxBps.V-1.5e9) > 1.5e9/(1<<17)) {
			t.Errorf("sample %d: NetRxBps %+v", j, m.NetRxBps)
		}
		if m.DiskReadBps.OK || m.NetErrsPerSec.OK {
			t.Errorf("sample %d: DiskReadBps %+v, NetErrsPerSec %+v known though never set", j, m.DiskReadBps, m.NetErrsPerSec)
		}
	}
	h[0].CPUBusy.V = -1
	if st.history()[0].CPUBusy.V == -1 {
		t.Error("History is not a copy")
	}
}

func TestLoadRate(t *testing.T) {
	for _, tc := range []struct {
		v  float64
		ok bool
	}{{0, true}, {3.25, true}, {-0.1, false}, {math.NaN(), false}, {math.Inf(1), false}, {2e6, false}} {
		if got := loadRate(tc.v); got.OK != tc.ok || (tc.ok && got.V != tc.v) {
			t.Errorf("loadRate(%v) = %+v", tc.v, got)
		}
	}
}

// rate24 keeps a rate within 2^-17 of itself over the whole range a rate
// can take (a rate of 0.001% to maxDiskBps), exact for zero and small
// integers, and unknown stays unknown.
func TestRate24(t *testing.T) {
	for v := 1e-5; v <= maxDiskBps; v *= 1.0007 {
		got := toRate24(Rate{v, true}).rate()
		if !got.OK || math.Abs(got.V-v) > v*(1.0/(1<<17)+1.0/(1<<24)) { // and float32's own rounding
			t.Fatalf("%g comes back as %+v", v, got)
		}
	}
	for _, v := range []float64{0, 1, 7, 100, 1023, 65535} {
		if got := toRate24(Rate{v, true}).rate(); got != (Rate{v, true}) {
			t.Errorf("%g comes back as %+v", v, got)
		}
	}
	for _, r := range []Rate{{}, {V: 3, OK: false}, {V: math.NaN(), OK: true}, {V: -1, OK: true}, {V: math.Inf(1), OK: true}} {
		if got := toRate24(r).rate(); got.OK {
			t.Errorf("%+v comes back known: %+v", r, got)
		}
	}
}

// pct16 keeps a percentage within 1/6400 of itself below 10 and 1/720
// from 10 to 100 (the steps fmtPct's tenths and whole numbers need), exact
// for whole numbers and the ends; unknown, and anything that is no
// percentage (a guest's invention), comes back unknown, never as another
// percentage.
func TestPct16(t *testing.T) {
	for v := 0.0; v <= 100; v += 0.00037 {
		got := toPct16(Rate{v, true}).rate()
		limit := 1.0 / 6400
		if v >= 10 {
			limit = 1.0 / 720
		}
		if !got.OK || math.Abs(got.V-v) > limit*(1+1e-9) {
			t.Fatalf("%g comes back as %+v", v, got)
		}
	}
	for v := range 101 {
		if got := toPct16(Rate{float64(v), true}).rate(); got != (Rate{float64(v), true}) {
			t.Errorf("%d comes back as %+v", v, got)
		}
	}
	for _, r := range []Rate{{}, {V: 3, OK: false}, {V: math.NaN(), OK: true}, {V: -0.001, OK: true},
		{V: 100.001, OK: true}, {V: math.Inf(1), OK: true}, {V: math.Inf(-1), OK: true}, {V: 1e300, OK: true}} {
		if got := toPct16(r).rate(); got.OK {
			t.Errorf("%+v comes back known: %+v", r, got)
		}
	}
	// Every code below unknown decodes to a percentage, and in order.
	prev := -1.0
	for c := range pct16(unknownPct16) {
		r := c.rate()
		if c > pct16Ten+90*pct16High {
			break
		}
		if !r.OK || r.V <= prev || r.V > 100 {
			t.Fatalf("code %d: %+v after %g", c, r, prev)
		}
		prev = r.V
	}
}

// The sample times come back exact to the nanosecond whatever the gaps
// between them: gaps of up to 18 minutes in five bytes, and after one
// longer or a wall clock set back, every time in full.
func TestHistoryTimes(t *testing.T) {
	for _, tc := range []struct {
		name string
		gap  func(i int) time.Duration
		wide bool
	}{
		{"steady", func(i int) time.Duration { return 10*time.Second + time.Duration(i*7919) }, false},
		{"longest gap", func(i int) time.Duration { return maxGap }, false},
		{"a gap too long", func(i int) time.Duration {
			if i == 70 {
				return maxGap + 1
			}
			return time.Second
		}, true},
		{"clock set back", func(i int) time.Duration {
			if i == 30 {
				return -time.Hour
			}
			return 5*time.Second + 1
		}, true},
		{"same instant", func(i int) time.Duration { return 0 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st metricsState
			var want []time.Time
			at := time.Unix(1_800_000_000, 123)
			for i := range 2*HistorySize + 13 {
				at = at.Add(tc.gap(i))
				want = append(want, at)
				st.push(Metrics{At: at})
			}
			want = want[len(want)-HistorySize:]
			h := st.history()
			if len(h) != HistorySize {
				t.Fatalf("%d samples", len(h))
			}
			for i := range h {
				if !h[i].At.Equal(want[i]) {
					t.Fatalf("sample %d at %v, want %v", i, h[i].At, want[i])
				}
			}
			if wide := st.hist.at.wide != nil; wide != tc.wide {
				t.Errorf("wide %v, want %v", wide, tc.wide)
			}
		})
	}
}
