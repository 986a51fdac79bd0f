package tui

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

func names(rows []*fleet.Guest) []string {
	out := make([]string, len(rows))
	for i, g := range rows {
		out[i] = g.Name
	}
	return out
}

func cpuGuest(name string, r fleet.Rate) *fleet.Guest {
	return &fleet.Guest{Target: fleet.Target{Name: name}, State: fleet.Ready, Metrics: fleet.Metrics{At: testNow, CPUBusy: r}}
}

// A figure is shown only when known and plausible: whatever else a guest
// sends (1e308, NaN, ±Inf, negative, above 100%) is "–", and sorts with
// the absent values, last in either direction.
func TestMetricCellsBoundedAndAbsentLast(t *testing.T) {
	ok := func(v float64) fleet.Rate { return fleet.Rate{V: v, OK: true} }
	guests := []*fleet.Guest{
		cpuGuest("a-absent", fleet.Rate{}),
		cpuGuest("b-50", ok(50)),
		cpuGuest("c-1e308", ok(1e308)),
		cpuGuest("d-nan", ok(math.NaN())),
		cpuGuest("e-2", ok(2)),
		cpuGuest("f-inf", ok(math.Inf(1))),
		cpuGuest("g-neg", ok(-5)),
		cpuGuest("h-100", ok(100)),
		cpuGuest("i-101", ok(101)),
		cpuGuest("j-zero", ok(0)),
	}
	cells := map[string]string{"a-absent": "–", "b-50": "50", "c-1e308": "–", "d-nan": "–", "e-2": "2.0",
		"f-inf": "–", "g-neg": "–", "h-100": "100", "i-101": "–", "j-zero": "0.0"}
	for _, g := range guests {
		if got := cellText(g, colCPUBusy, testNow); got != cells[g.Name] {
			t.Errorf("%s: CPU%% cell %q, want %q", g.Name, got, cells[g.Name])
		}
	}
	absent := []string{"a-absent", "c-1e308", "d-nan", "f-inf", "g-neg", "i-101"}
	tests := []struct {
		desc bool
		want []string
	}{
		{true, append([]string{"h-100", "b-50", "e-2", "j-zero"}, absent...)},
		{false, append([]string{"j-zero", "e-2", "b-50", "h-100"}, absent...)},
	}
	for _, tt := range tests {
		rows := slices.Clone(guests)
		sortRows(rows, colCPUBusy, tt.desc, testNow)
		if got := names(rows); !slices.Equal(got, tt.want) {
			t.Errorf("desc=%v: %v\nwant %v", tt.desc, got, tt.want)
		}
	}

	bps := []struct {
		v    float64
		want string
	}{{0, "0"}, {1023, "1023"}, {1536, "1.5K"}, {10 << 20, "10M"}, {1 << 50, "1.0P"}, {1<<50 + 1, "–"}, {1e308, "–"}}
	for _, tt := range bps {
		g := &fleet.Guest{Metrics: fleet.Metrics{DiskReadBps: ok(tt.v)}}
		if got := cellText(g, colDiskR, testNow); got != tt.want {
			t.Errorf("DSK-R of %g = %q, want %q", tt.v, got, tt.want)
		}
		if w := len([]rune(cellText(g, colDiskR, testNow))); w > columns[colDiskR].width-1 {
			t.Errorf("DSK-R of %g is %d cells, wider than the column leaves for its arrow", tt.v, w)
		}
	}
}

// The fullest filesystem: used above size, or a zero size, is no
// percentage; sizes near 2^64 do not wrap.
func TestFullestFS(t *testing.T) {
	fs := func(used, total uint64) fleet.FSUsage {
		return fleet.FSUsage{Mountpoint: "/m", UsedBytes: used, TotalBytes: total}
	}
	tests := []struct {
		name string
		fs   []fleet.FSUsage
		pct  float64
		ok   bool
	}{
		{"none", nil, 0, false},
		{"half", []fleet.FSUsage{fs(1, 2)}, 50, true},
		{"over and zero skipped", []fleet.FSUsage{fs(5, 4), fs(1, 0), fs(1, 4)}, 25, true},
		{"near 2^64", []fleet.FSUsage{fs(math.MaxUint64-1, math.MaxUint64)}, 99.99, true},
		{"only impossible", []fleet.FSUsage{fs(9, 1)}, 0, false},
	}
	for _, tt := range tests {
		g := &fleet.Guest{Metrics: fleet.Metrics{Filesystems: tt.fs}}
		pct, _, ok := fullestFS(g)
		if pct != tt.pct || ok != tt.ok {
			t.Errorf("%s: %v %v, want %v %v", tt.name, pct, ok, tt.pct, tt.ok)
		}
	}
}

// setCPU gives each named guest a new CPU figure, as a live update does.
func setCPU(src *fakeSource, cpu map[string]float64) {
	old := src.Snapshot().Guests
	next := make([]*fleet.Guest, len(old))
	for i, g := range old {
		c := *g
		if v, ok := cpu[g.Name]; ok {
			c.Metrics.CPUBusy = fleet.Rate{V: v, OK: true}
		}
		next[i] = &c
	}
	src.set(next)
}

// Sorting by CPU follows the values until the order is held; then live
// updates leave the rows where they are (a new guest goes after them), and
// releasing it sorts by the values again.
func TestHoldOrder(t *testing.T) {
	m, src := newTestModel(0, 120, 30, Options{})
	src.set([]*fleet.Guest{cpuGuest("a", fleet.Rate{V: 10, OK: true}), cpuGuest("b", fleet.Rate{V: 30, OK: true}), cpuGuest("c", fleet.Rate{V: 20, OK: true})})
	m.refresh()
	m = press(t, m, ":")
	m = typeText(t, m, "sort cpu")
	m = press(t, m, "enter")
	eq(t, "busiest first", names(m.tbl.rows), []string{"b", "c", "a"})

	setCPU(src, map[string]float64{"a": 90})
	m.refresh()
	eq(t, "live: follows the values", names(m.tbl.rows), []string{"a", "b", "c"})

	m = press(t, m, "o")
	eq(t, "held", m.tbl.held, true)
	if v := view(m); !strings.Contains(v, "sort cpu% ↓ held") {
		t.Errorf("title does not say the order is held:\n%s", v)
	}
	setCPU(src, map[string]float64{"a": 95, "c": 99})
	m.refresh()
	eq(t, "held: rows stay put", names(m.tbl.rows), []string{"a", "b", "c"})
	old := src.Snapshot().Guests
	src.set(append(slices.Clone(old), cpuGuest("d", fleet.Rate{V: 100, OK: true})))
	m.refresh()
	eq(t, "held: a new guest goes last", names(m.tbl.rows), []string{"a", "b", "c", "d"})
	m = press(t, m, "S")
	eq(t, "reversing re-sorts once", names(m.tbl.rows), []string{"b", "a", "c", "d"})
	setCPU(src, map[string]float64{"a": 0})
	m.refresh()
	eq(t, "and holds that order", names(m.tbl.rows), []string{"b", "a", "c", "d"})

	m = press(t, m, "o")
	eq(t, "released", m.tbl.held, false)
	eq(t, "released: by the values again", names(m.tbl.rows), []string{"a", "b", "c", "d"})
}

// The pulse view's lists are the true top N: the same as sorting the
// whole fleet and cutting it, ties in name order.
func TestPulseTopMatchesFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	guests := make([]*fleet.Guest, 2000)
	for i := range guests {
		r := fleet.Rate{V: float64(rng.IntN(50)), OK: rng.IntN(5) > 0}
		guests[i] = cpuGuest(fmt.Sprintf("g%05d", i), r)
	}
	s := &fleet.Snapshot{Guests: guests, Version: 1}
	for _, per := range []int{1, 5, 10} {
		secs := buildPulse(s, per)
		var got []string
		for _, r := range secs[0].rows {
			got = append(got, r.guest)
		}
		rows := slices.Clone(guests)
		sortRows(rows, colCPUBusy, true, testNow)
		if want := names(rows[:per]); !slices.Equal(got, want) {
			t.Errorf("top %d by CPU = %v, want %v", per, got, want)
		}
	}
}

// Enter on a pulse row jumps to that guest in the table, clearing a
// filter that hides it; the selection follows its guest across updates.
func TestPulseJump(t *testing.T) {
	m, _ := newTestModel(24, 100, 30, Options{})
	m = press(t, m, "/")
	m = typeText(t, m, "vm-0000")
	m = press(t, m, "enter")
	eq(t, "filtered", len(m.tbl.rows), 10)

	m = press(t, m, "P")
	eq(t, "pulse open", m.top().kind, layerPulse)
	// CPU busy's second row (vm-00016 at 93%): outside the filter.
	m = press(t, m, "down")
	eq(t, "selected", m.pulse.selName, "vm-00016")
	m.refresh() // a new snapshot keeps the selection on its guest
	eq(t, "kept", m.pulse.selName, "vm-00016")
	m = press(t, m, "enter")
	eq(t, "closed", m.isOpen(layerPulse), false)
	eq(t, "filter cleared", m.tbl.filter, "")
	eq(t, "cursor on the guest", m.cursorGuest().Name, "vm-00016")

	// tab goes to the next list; the full filesystems list names vm-00007 first.
	m = press(t, m, ":")
	m = typeText(t, m, "pulse")
	m = press(t, m, "enter")
	eq(t, "opened by :pulse", m.top().kind, layerPulse)
	// vm-00003 leads I/O wait and Steal: a new snapshot keeps the
	// selection in the list it is in, not the first that names the guest.
	m = press(t, m, "tab", "tab")
	eq(t, "third list", m.pulse.selName, "vm-00003")
	steal := m.pulse.sel
	m.pulse.version = 0
	m.refresh()
	eq(t, "still in Steal", m.pulse.sel, steal)
	m = press(t, m, "tab", "tab", "tab")
	eq(t, "sixth list", m.pulse.selName, "vm-00007")
	m = press(t, m, "esc")
	eq(t, "esc closes", m.isOpen(layerPulse), false)
}

// Guest text in the new views (names, mountpoints, notes) is escaped, and
// impossible figures never reach the screen.
func TestHostileMetrics(t *testing.T) {
	const h = sim.Hostile
	huge := fleet.Rate{V: 1e308, OK: true}
	g := &fleet.Guest{Target: fleet.Target{Name: "evil" + h}, State: fleet.Ready, RTT: time.Millisecond,
		RTTHistory: fleet.RecentOf(time.Millisecond), SkewKnown: true, Skew: math.MinInt64,
		Metrics: fleet.Metrics{At: testNow, CPUBusy: huge, IOWait: fleet.Rate{V: math.NaN(), OK: true}, Steal: huge,
			DiskReadBps: huge, DiskWriteBps: fleet.Rate{V: math.Inf(1), OK: true}, NetRxBps: huge, NetTxBps: huge,
			Load1: huge, Load5: huge, Load15: huge, Note: "note" + h,
			Filesystems: []fleet.FSUsage{{Mountpoint: "/mnt" + h, Type: "ext4" + h, UsedBytes: 99, TotalBytes: 100}},
			Disks: []agentclient.DiskInfo{{Name: "/dev/sda" + h, Alias: "alias" + h, Address: &agentclient.DiskAddress{BusType: "nvme" + h, Serial: "SN" + h},
				Smart: &agentclient.DiskSmart{Type: "nvme", Temperature: math.MaxInt, PercentageUsed: -1, MediaErrorsHi: 1, CriticalWarning: 1 << 40}}},
			Routes: []agentclient.Route{{Iface: "eth0" + h, Destination: "0.0.0.0" + h, Gateway: "gw" + h, Mask: "m" + h, Metric: math.MaxInt, Version: 99}}}}
	src := newFakeSource([]*fleet.Guest{g, testGuest(1)})
	m := New(src, Options{Styles: plainStyles(), Now: func() time.Time { return testNow }})
	m.resize(200, 50)
	esc := `\x1b]0;OWNED\x07`
	check := func(what string, m Model, want ...string) {
		t.Helper()
		frame := m.View().Content
		screenSafe(t, what, frame)
		for _, w := range want {
			if !strings.Contains(frame, w) {
				t.Errorf("%s: frame lacks %q:\n%s", what, w, frame)
			}
		}
		for _, bad := range []string{"e+308", "NaN", "Inf"} {
			if strings.Contains(frame, bad) {
				t.Errorf("%s: frame shows %q:\n%s", what, bad, frame)
			}
		}
	}
	m = press(t, m, ":")
	m = typeText(t, m, "sort cpu")
	m = press(t, m, "enter")
	eq(t, "the impossible figure sorts last", m.tbl.rows[0].Name, "vm-00001")
	m = press(t, m, "G")
	check("table", m, "evil"+esc)
	check("cpu tab", press(t, m, "6"), "note"+esc)
	check("disk tab", press(t, m, "7"), "/mnt"+esc)
	check("net tab", press(t, m, "8"))
	check("latency tab", press(t, m, "9"))
	check("disks tab", press(t, m, "9", "tab"), "/dev/sda"+esc, "alias"+esc, "SN"+esc, "CRITICAL WARNING ?; nvme ?, ? used")
	check("routes tab", press(t, m, "9", "tab", "tab"), "eth0"+esc, "0.0.0.0"+esc, "gw"+esc)
	check("pulse", press(t, m, "P"), "evil"+esc)
}

// The pulse view at 10,000 guests: a new snapshot's lists and histograms
// (rebuild), and a frame of it (view). Neither sorts the fleet.
func BenchmarkPulse10000(b *testing.B) {
	m, src := newTestModel(10000, 160, 45, Options{})
	m.openPulse()
	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			m.pulse.version = 0 // as if a new snapshot had come
			m.pulseRefresh()
		}
	})
	b.Run("view", func(b *testing.B) {
		for b.Loop() {
			_ = m.View()
		}
	})
	// What one list would cost by sorting instead (of a shuffled fleet:
	// sorted input would flatter it).
	b.Run("one_full_sort_for_comparison", func(b *testing.B) {
		base := slices.Clone(src.Snapshot().Guests)
		rand.New(rand.NewPCG(3, 4)).Shuffle(len(base), func(i, j int) { base[i], base[j] = base[j], base[i] })
		rows := make([]*fleet.Guest, len(base))
		for b.Loop() {
			copy(rows, base)
			sortRows(rows, colCPUBusy, true, testNow)
		}
	})
}

// Sorting 10,000 guests by CPU and re-ordering them by a held order, per
// snapshot.
func BenchmarkMetricSort10000(b *testing.B) {
	for _, held := range []bool{false, true} {
		b.Run(fmt.Sprintf("held=%v", held), func(b *testing.B) {
			m, _ := newTestModel(10000, 160, 45, Options{})
			m.sortBy(colCPUBusy)
			if held {
				m.toggleHold()
			}
			for b.Loop() {
				m.tbl.built = false
				m.reindex()
			}
		})
	}
}
