package exporter_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/exporter"
)

// Names a libvirt host (or a socket directory) could give a guest: the
// fleet file's validator never sees them.
var hostileNames = []string{
	"q\"uote\\back\nnewline",
	"bad\xff\xfeutf8",
	"bad\xfd\xfeutf8", // differs from the one above only in invalid bytes
	strings.Repeat("long-", 60) + "a",
	strings.Repeat("long-", 60) + "b", // same first 128 bytes as the one above
}

// simFleet is a fleet of simulated guests, one per name, polled once.
func simFleet(t *testing.T, names ...string) *fleet.Fleet {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, len(names), func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("s%d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	// Metrics on every poll: two polls give rates.
	f := fleet.New(fleet.Options{Timeout: 2 * time.Second, Readonly: true, MetricsInterval: time.Millisecond})
	t.Cleanup(func() { f.Close() })
	for i, sock := range farm.Sockets() {
		f.Add(fleet.Target{Name: names[i], Host: "hv\"1", Address: "unix:" + sock, Tags: []string{"web", "prod"}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A rate needs two samples a metrics interval apart and the guest's
	// counters moved between them (the simulator's tick in 10 ms): poll
	// until every guest has one (a poll takes longer than the 1 ms
	// interval; one over a kept connection, a round trip, may take less
	// than the tick), until the deadline.
	for ctx.Err() == nil {
		f.RefreshOnce(ctx, nil)
		all := true
		for _, g := range f.Snapshot().Guests {
			all = all && g.Metrics.CPUBusy.OK
		}
		if all {
			break
		}
	}
	return f
}

// scrape renders the collector's metrics in the text exposition format and
// parses them back, as Prometheus would.
func scrape(t *testing.T, c prometheus.Collector) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, b.String())
	}
	return b.String(), parsed
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// byGuest is a family's values by guest label.
func byGuest(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		v := m.GetGauge().GetValue()
		if m.GetCounter() != nil {
			v = m.GetCounter().GetValue()
		}
		out[label(m, "guest")] = v
	}
	return out
}

// Simulated guests with hostile names: every series parses back, every
// guest is there once under its own label value, and the values are what
// the agents said.
func TestCollectorSimulatedGuests(t *testing.T) {
	names := append([]string{"plain"}, hostileNames...)
	f := simFleet(t, names...)
	c := exporter.New(f)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	text, mfs := scrape(t, c)

	// The exposition escapes quotes, backslashes and newlines itself.
	if want := `guestdeck_guest_up{guest="q\"uote\\back\nnewline",host="hv\"1"} 1`; !strings.Contains(text, want) {
		t.Errorf("exposition lacks %s:\n%s", want, text)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[exporter.Label(n)] = true
	}
	if len(want) != len(names) {
		t.Fatalf("Label made %d distinct values of %d names", len(want), len(names))
	}
	for _, family := range []string{"guestdeck_guest_up", "guestdeck_guest_vcpus_online", "guestdeck_guest_rtt_seconds", "guestdeck_guest_info"} {
		mf := mfs[family]
		if mf == nil {
			t.Fatalf("no %s in\n%s", family, text)
		}
		got := byGuest(mf)
		if len(got) != len(names) {
			t.Errorf("%s: %d guests, want %d: %v", family, len(got), len(names), got)
		}
		for g, v := range got {
			if !want[g] || !utf8.ValidString(g) || len(g) > exporter.MaxLabelBytes {
				t.Errorf("%s: guest label %q is not one of the guests' labels", family, g)
			}
			switch family {
			case "guestdeck_guest_up", "guestdeck_guest_info":
				if v != 1 {
					t.Errorf("%s{guest=%q} = %v, want 1", family, g, v)
				}
			case "guestdeck_guest_vcpus_online":
				if v != 2 { // sim.DefaultConfig: two online vCPUs
					t.Errorf("%s{guest=%q} = %v, want 2", family, g, v)
				}
			case "guestdeck_guest_rtt_seconds":
				if v <= 0 || v > 2 {
					t.Errorf("%s{guest=%q} = %v", family, g, v)
				}
			}
		}
	}
	// The guests' own metrics, from the simulator's counters.
	for family, ok := range map[string]func(float64) bool{
		"guestdeck_guest_cpu_busy_ratio":        func(v float64) bool { return v >= 0 && v <= 1 },
		"guestdeck_guest_filesystem_used_bytes": func(v float64) bool { return v > 0 },
	} {
		got := byGuest(mfs[family])
		if len(got) != len(names) {
			t.Errorf("%s: %d guests, want %d", family, len(got), len(names))
		}
		for g, v := range got {
			if !ok(v) {
				t.Errorf("%s{guest=%q} = %v", family, g, v)
			}
		}
	}
	for _, m := range mfs["guestdeck_guest_filesystem_used_bytes"].GetMetric() {
		if label(m, "mountpoint") != "/" || label(m, "fstype") != "ext4" {
			t.Errorf("filesystem labels %v", m.GetLabel())
		}
	}
	for _, m := range mfs["guestdeck_guest_info"].GetMetric() {
		if label(m, "tags") != "web,prod" {
			t.Errorf("info tags %q", label(m, "tags"))
		}
	}
	// One state per guest is 1, the others 0.
	ready := 0
	for _, m := range mfs["guestdeck_guest_state"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			if label(m, "state") != "ready" {
				t.Errorf("guest %q in state %s", label(m, "guest"), label(m, "state"))
			}
			ready++
		}
	}
	if n := len(mfs["guestdeck_guest_state"].GetMetric()); ready != len(names) || n != len(names)*len(fleet.States) {
		t.Errorf("%d ready of %d state series", ready, n)
	}
	if v := mfs["guestdeck_export_guests_dropped"].GetMetric()[0].GetGauge().GetValue(); v != 0 {
		t.Errorf("guests dropped: %v", v)
	}
}

// staticFleet is one fixed snapshot.
type staticFleet struct {
	snap    *fleet.Snapshot
	sources []fleet.SourceState
}

func (s staticFleet) Snapshot() *fleet.Snapshot    { return s.snap }
func (s staticFleet) Sources() []fleet.SourceState { return s.sources }

// A guest with 10,000 hostile mountpoints costs MaxFilesystems series, and
// what was left out is counted; rates are exported only when known and
// percentages as ratios; the host's view and the sources are there.
func TestCollectorBounds(t *testing.T) {
	var fss []fleet.FSUsage
	fss = append(fss, fleet.FSUsage{Mountpoint: "/", Type: "ext4", UsedBytes: 10, TotalBytes: 100},
		fleet.FSUsage{Mountpoint: "/", Type: "ext4", UsedBytes: 11, TotalBytes: 100}) // repeated
	for i := range 10_000 {
		fss = append(fss, fleet.FSUsage{Mountpoint: fmt.Sprintf("/m\"\n\xff%d/%s", i, strings.Repeat("x", 300)), Type: "t\xfe", UsedBytes: 1, TotalBytes: 2})
	}
	g := &fleet.Guest{Target: fleet.Target{Name: "g", Host: "h"}, State: fleet.Ready}
	g.Metrics.CPUBusy = fleet.Rate{V: 50, OK: true}
	g.Metrics.Steal = fleet.Rate{V: 99, OK: false} // unknown: not exported
	g.Metrics.Filesystems = fss
	g.HostStats = &fleet.HostStats{At: time.Now(), CPUPct: fleet.Rate{V: 5, OK: true}, BalloonBytes: 2 << 30, BalloonOK: true,
		NetRxBps: fleet.Rate{V: 1000, OK: true}}
	other := &fleet.Guest{Target: fleet.Target{Name: "other"}, State: fleet.Unreachable}
	sf := staticFleet{
		snap: &fleet.Snapshot{Guests: []*fleet.Guest{g, other}},
		sources: []fleet.SourceState{{Name: "hv1", Kind: "libvirt", Phase: fleet.SourceUp, Guests: 1},
			{Name: "hv2", Kind: "libvirt", Phase: fleet.SourceUnreachable}},
	}
	c := exporter.New(sf)
	text, mfs := scrape(t, c)
	if n := len(mfs["guestdeck_guest_filesystem_used_bytes"].GetMetric()); n != exporter.MaxFilesystems {
		t.Errorf("%d filesystem series, want %d", n, exporter.MaxFilesystems)
	}
	if v := byGuest(mfs["guestdeck_guest_filesystems_dropped"])["g"]; v != float64(len(fss)-exporter.MaxFilesystems) {
		t.Errorf("dropped %v, want %d", v, len(fss)-exporter.MaxFilesystems)
	}
	for _, m := range mfs["guestdeck_guest_filesystem_used_bytes"].GetMetric() {
		for _, l := range m.GetLabel() {
			if !utf8.ValidString(l.GetValue()) || len(l.GetValue()) > exporter.MaxLabelBytes {
				t.Errorf("label %s=%q", l.GetName(), l.GetValue())
			}
		}
	}
	want := `
# HELP guestdeck_guest_cpu_busy_ratio Share of the guest's vCPU time busy (0..1), by the guest's own account.
# TYPE guestdeck_guest_cpu_busy_ratio gauge
guestdeck_guest_cpu_busy_ratio{guest="g",host="h"} 0.5
# HELP guestdeck_guest_host_cpu_ratio The domain's CPU time per wall time as its libvirt host sees it, share of its vCPUs (0..1).
# TYPE guestdeck_guest_host_cpu_ratio gauge
guestdeck_guest_host_cpu_ratio{guest="g",host="h"} 0.05
# HELP guestdeck_guest_host_balloon_bytes The domain's current balloon size (the memory the guest has) as its libvirt host sees it.
# TYPE guestdeck_guest_host_balloon_bytes gauge
guestdeck_guest_host_balloon_bytes{guest="g",host="h"} 2.147483648e+09
# HELP guestdeck_guest_host_network_receive_bytes_per_second Network bytes received per second as the libvirt host sees it.
# TYPE guestdeck_guest_host_network_receive_bytes_per_second gauge
guestdeck_guest_host_network_receive_bytes_per_second{guest="g",host="h"} 1000
# HELP guestdeck_guest_cpu_steal_ratio Share of the guest's vCPU time stolen by the hypervisor (0..1).
# TYPE guestdeck_guest_cpu_steal_ratio gauge
# HELP guestdeck_guest_up 1 when the guest's agent answers (state ready or frozen), else 0.
# TYPE guestdeck_guest_up gauge
guestdeck_guest_up{guest="g",host="h"} 1
guestdeck_guest_up{guest="other",host=""} 0
# HELP guestdeck_source_up 1 when the discovery source (libvirt host, ssh host, socket directory) is up.
# TYPE guestdeck_source_up gauge
guestdeck_source_up{kind="libvirt",source="hv1"} 1
guestdeck_source_up{kind="libvirt",source="hv2"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "guestdeck_guest_cpu_busy_ratio", "guestdeck_guest_host_cpu_ratio",
		"guestdeck_guest_host_balloon_bytes", "guestdeck_guest_host_network_receive_bytes_per_second", "guestdeck_guest_cpu_steal_ratio",
		"guestdeck_guest_up", "guestdeck_source_up"); err != nil {
		t.Error(err)
	}
	if n := strings.Count(text, "\n"); n > 400 {
		t.Errorf("a guest with %d filesystems made %d lines", len(fss), n)
	}
}

func TestLabel(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	for _, tc := range []struct {
		in   string
		same bool // comes back unchanged
	}{
		{"web-1", true},
		{`q"uote\n`, true}, // the exposition escapes these
		{"hv1/dom\n", true},
		{strings.Repeat("a", exporter.MaxLabelBytes), true},
		{strings.Repeat("a", exporter.MaxLabelBytes+1), false},
		{"bad\xff", false},
		{long, false},
	} {
		got := exporter.Label(tc.in)
		if (got == tc.in) != tc.same {
			t.Errorf("Label(%q) = %q", tc.in, got)
		}
		if !utf8.ValidString(got) || len(got) > exporter.MaxLabelBytes {
			t.Errorf("Label(%q) = %q: invalid or too long (%d bytes)", tc.in, got, len(got))
		}
	}
	if exporter.Label("bad\xff") == exporter.Label("bad\xfe") {
		t.Error("values differing in their invalid bytes share a label")
	}
}

// BenchmarkScrape is one scrape (gather and text encoding) of 1,000 and
// 10,000 guests, each with every rate, its host's view and four
// filesystems.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("guests=%d", n), func(b *testing.B) { benchScrape(b, n) })
	}
}

func benchScrape(b *testing.B, n int) {
	gs := make([]*fleet.Guest, n)
	r := fleet.Rate{V: 42, OK: true}
	for i := range gs {
		g := &fleet.Guest{Target: fleet.Target{Name: fmt.Sprintf("hv%d/guest-%05d", i%10, i), Host: fmt.Sprintf("hv%d", i%10), Tags: []string{"web", "prod"}},
			State: fleet.Ready, RTT: time.Millisecond, SkewKnown: true}
		m := &g.Metrics
		m.CPUBusy, m.IOWait, m.Steal, m.DiskReadBps, m.DiskWriteBps, m.DiskReadIOPS, m.DiskWriteIOPS = r, r, r, r, r, r, r
		m.NetRxBps, m.NetTxBps, m.NetErrsPerSec, m.Load1, m.Load5, m.Load15 = r, r, r, r, r, r
		for _, mp := range []string{"/", "/boot", "/var", "/data"} {
			m.Filesystems = append(m.Filesystems, fleet.FSUsage{Mountpoint: mp, Type: "ext4", UsedBytes: 1 << 30, TotalBytes: 10 << 30})
		}
		g.HostStats = &fleet.HostStats{At: time.Now(), CPUPct: r, BalloonBytes: 1 << 30, BalloonOK: true, BlockRdBps: r, BlockWrBps: r, NetRxBps: r, NetTxBps: r}
		gs[i] = g
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(exporter.New(staticFleet{snap: &fleet.Snapshot{Guests: gs}}))
	var size, series int
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		series = 0
		for _, mf := range mfs {
			series += len(mf.GetMetric())
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
	b.ReportMetric(float64(series), "series")
}
