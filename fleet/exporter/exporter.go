// Package exporter turns fleet snapshots into Prometheus metrics: one
// Collector reads one snapshot per scrape, so the cost of a scrape is one
// pass over the fleet, and nothing is registered or run per guest.
//
// Label values a guest (or a libvirt host) controls — guest names, domain
// names, mountpoints, filesystem types — are made valid UTF-8 and capped in
// length, and filesystems are capped in count per guest, with what was
// dropped counted in a metric of its own: a guest with 10,000 mountpoints
// costs MaxFilesystems series, not 10,000.
package exporter

import (
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// Bounds on what one guest adds to a scrape.
const (
	// MaxLabelBytes caps one label value a guest controls. Longer values
	// are cut (at a rune boundary) and marked with a hash of the whole
	// value, so two long names that share a prefix stay two series.
	MaxLabelBytes = 128
	// MaxFilesystems caps the filesystems exported per guest; the rest are
	// counted in guestdeck_guest_filesystems_dropped.
	MaxFilesystems = 32
)

// Fleet is what the collector reads: *fleet.Fleet.
type Fleet interface {
	Snapshot() *fleet.Snapshot
	Sources() []fleet.SourceState
}

// Collector is a prometheus.Collector over one fleet.
type Collector struct {
	f Fleet
}

// New returns a collector of f's guests and sources.
func New(f Fleet) *Collector { return &Collector{f: f} }

var (
	guestLabels = []string{"guest", "host"}

	descInfo = prometheus.NewDesc("guestdeck_guest_info",
		"A guest the fleet knows, with its tags (comma-separated, in the fleet file's order); join on guest and host for tags.",
		[]string{"guest", "host", "tags"}, nil)
	descUp = prometheus.NewDesc("guestdeck_guest_up",
		"1 when the guest's agent answers (state ready or frozen), else 0.", guestLabels, nil)
	descState = prometheus.NewDesc("guestdeck_guest_state",
		"1 for the guest's current session state, 0 for every other state.",
		[]string{"guest", "host", "state"}, nil)
	descRTT = prometheus.NewDesc("guestdeck_guest_rtt_seconds",
		"Round trip of the guest's last agent call.", guestLabels, nil)
	descSkew = prometheus.NewDesc("guestdeck_guest_clock_skew_seconds",
		"Guest clock minus host clock, corrected by half the round trip.", guestLabels, nil)
	descFrozen = prometheus.NewDesc("guestdeck_guest_frozen",
		"1 when the guest's filesystems are frozen (guest-fsfreeze-status).", guestLabels, nil)
	descVCPUsOnline = prometheus.NewDesc("guestdeck_guest_vcpus_online",
		"vCPUs online in the guest.", guestLabels, nil)
	descVCPUs = prometheus.NewDesc("guestdeck_guest_vcpus",
		"vCPUs the guest reports, online or not.", guestLabels, nil)
	descMissed = prometheus.NewDesc("guestdeck_guest_polls_failed_total",
		"Polls of the guest that failed since the exporter started.", guestLabels, nil)

	descFSUsed = prometheus.NewDesc("guestdeck_guest_filesystem_used_bytes",
		"Bytes used on a mounted filesystem, as the guest reports it.",
		[]string{"guest", "host", "mountpoint", "fstype"}, nil)
	descFSSize = prometheus.NewDesc("guestdeck_guest_filesystem_size_bytes",
		"Size of a mounted filesystem, as the guest reports it.",
		[]string{"guest", "host", "mountpoint", "fstype"}, nil)
	descFSDropped = prometheus.NewDesc("guestdeck_guest_filesystems_dropped",
		"Filesystems of the guest not exported: over the per-guest cap, or a mountpoint repeated.", guestLabels, nil)
	descLoadDerived = prometheus.NewDesc("guestdeck_guest_load_derived",
		"1 when the load averages are derived from CPU stats (the agent lacks guest-get-load).", guestLabels, nil)

	descSourceUp = prometheus.NewDesc("guestdeck_source_up",
		"1 when the discovery source (libvirt host, ssh host, socket directory) is up.",
		[]string{"source", "kind"}, nil)
	descSourceGuests = prometheus.NewDesc("guestdeck_source_guests",
		"Guests the discovery source holds.", []string{"source", "kind"}, nil)
	descGuestsDropped = prometheus.NewDesc("guestdeck_export_guests_dropped",
		"Guests left out of this scrape because their label values collided with another guest's.", nil, nil)
)

// rateMetric is one Rate of a guest, exported only when known.
type rateMetric struct {
	desc  *prometheus.Desc
	scale float64 // percent -> ratio
	get   func(g *fleet.Guest) fleet.Rate
}

func newRate(name, help string, scale float64, get func(g *fleet.Guest) fleet.Rate) rateMetric {
	return rateMetric{prometheus.NewDesc(name, help, guestLabels, nil), scale, get}
}

// hostRate reads a rate of the guest's HostStats: unknown when it has
// none (not a libvirt guest).
func hostRate(get func(h *fleet.HostStats) fleet.Rate) func(g *fleet.Guest) fleet.Rate {
	return func(g *fleet.Guest) fleet.Rate {
		if g.HostStats == nil {
			return fleet.Rate{}
		}
		return get(g.HostStats)
	}
}

var rates = []rateMetric{
	newRate("guestdeck_guest_cpu_busy_ratio", "Share of the guest's vCPU time busy (0..1), by the guest's own account.", 0.01,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.CPUBusy }),
	newRate("guestdeck_guest_cpu_iowait_ratio", "Share of the guest's vCPU time in iowait (0..1).", 0.01,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.IOWait }),
	newRate("guestdeck_guest_cpu_steal_ratio", "Share of the guest's vCPU time stolen by the hypervisor (0..1).", 0.01,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.Steal }),
	newRate("guestdeck_guest_disk_read_bytes_per_second", "Disk bytes read per second, by the guest's account.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.DiskReadBps }),
	newRate("guestdeck_guest_disk_write_bytes_per_second", "Disk bytes written per second, by the guest's account.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.DiskWriteBps }),
	newRate("guestdeck_guest_disk_reads_per_second", "Disk read operations per second.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.DiskReadIOPS }),
	newRate("guestdeck_guest_disk_writes_per_second", "Disk write operations per second.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.DiskWriteIOPS }),
	newRate("guestdeck_guest_network_receive_bytes_per_second", "Network bytes received per second, all interfaces.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.NetRxBps }),
	newRate("guestdeck_guest_network_transmit_bytes_per_second", "Network bytes sent per second, all interfaces.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.NetTxBps }),
	newRate("guestdeck_guest_network_errors_per_second", "Network errors and drops per second, all interfaces.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.NetErrsPerSec }),
	newRate("guestdeck_guest_load1", "Load average over 1 minute.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.Load1 }),
	newRate("guestdeck_guest_load5", "Load average over 5 minutes.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.Load5 }),
	newRate("guestdeck_guest_load15", "Load average over 15 minutes.", 1,
		func(g *fleet.Guest) fleet.Rate { return g.Metrics.Load15 }),

	// The hypervisor's side, for libvirt guests (fleet.HostStats).
	newRate("guestdeck_guest_host_cpu_ratio", "The domain's CPU time per wall time as its libvirt host sees it, share of its vCPUs (0..1).", 0.01,
		hostRate(func(h *fleet.HostStats) fleet.Rate { return h.CPUPct })),
	newRate("guestdeck_guest_host_block_read_bytes_per_second", "Disk bytes read per second as the libvirt host sees it.", 1,
		hostRate(func(h *fleet.HostStats) fleet.Rate { return h.BlockRdBps })),
	newRate("guestdeck_guest_host_block_write_bytes_per_second", "Disk bytes written per second as the libvirt host sees it.", 1,
		hostRate(func(h *fleet.HostStats) fleet.Rate { return h.BlockWrBps })),
	newRate("guestdeck_guest_host_network_receive_bytes_per_second", "Network bytes received per second as the libvirt host sees it.", 1,
		hostRate(func(h *fleet.HostStats) fleet.Rate { return h.NetRxBps })),
	newRate("guestdeck_guest_host_network_transmit_bytes_per_second", "Network bytes sent per second as the libvirt host sees it.", 1,
		hostRate(func(h *fleet.HostStats) fleet.Rate { return h.NetTxBps })),
}

var descBalloon = prometheus.NewDesc("guestdeck_guest_host_balloon_bytes",
	"The domain's current balloon size (the memory the guest has) as its libvirt host sees it.", guestLabels, nil)

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descUp, descState, descRTT, descSkew, descFrozen, descVCPUsOnline,
		descVCPUs, descMissed, descFSUsed, descFSSize, descFSDropped, descLoadDerived, descBalloon,
		descSourceUp, descSourceGuests, descGuestsDropped} {
		ch <- d
	}
	for _, r := range rates {
		ch <- r.desc
	}
}

// Collect reads one snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	snap := c.f.Snapshot()
	// A guest's label values are unique in the fleet as names are, unless
	// cutting them made two alike (the hash suffix makes that a collision
	// of 32-bit hashes): a repeated series would fail the whole scrape, so
	// the second guest is left out and counted.
	seen := make(map[[2]string]bool, len(snap.Guests))
	dropped := 0
	for _, g := range snap.Guests {
		guest, host := Label(g.Name), Label(g.Host)
		if seen[[2]string{guest, host}] {
			dropped++
			continue
		}
		seen[[2]string{guest, host}] = true
		c.collectGuest(ch, gauge, g, guest, host)
	}
	gauge(descGuestsDropped, float64(dropped))
	for _, s := range c.f.Sources() {
		name, kind := Label(s.Name), Label(s.Kind)
		gauge(descSourceUp, b2f(s.Phase == fleet.SourceUp), name, kind)
		gauge(descSourceGuests, float64(s.Guests), name, kind)
	}
}

func (c *Collector) collectGuest(ch chan<- prometheus.Metric, gauge func(*prometheus.Desc, float64, ...string), g *fleet.Guest, guest, host string) {
	gauge(descInfo, 1, guest, host, tagsLabel(g.Tags))
	gauge(descUp, b2f(g.State == fleet.Ready || g.State == fleet.Frozen), guest, host)
	for _, st := range fleet.States {
		gauge(descState, b2f(g.State == st), guest, host, string(st))
	}
	if g.RTT > 0 {
		gauge(descRTT, g.RTT.Seconds(), guest, host)
	}
	if g.SkewKnown {
		gauge(descSkew, g.Skew.Seconds(), guest, host)
	}
	if g.Freeze != "" {
		gauge(descFrozen, b2f(g.Freeze == agentclient.Frozen), guest, host)
	}
	if len(g.VCPUs) > 0 {
		on := 0
		for _, v := range g.VCPUs {
			if v.Online {
				on++
			}
		}
		gauge(descVCPUsOnline, float64(on), guest, host)
		gauge(descVCPUs, float64(len(g.VCPUs)), guest, host)
	}
	ch <- prometheus.MustNewConstMetric(descMissed, prometheus.CounterValue, float64(g.Missed), guest, host)
	for _, r := range rates {
		if v := r.get(g); v.OK {
			gauge(r.desc, v.V*r.scale, guest, host)
		}
	}
	if g.Metrics.LoadDerived || g.Metrics.Load1.OK {
		gauge(descLoadDerived, b2f(g.Metrics.LoadDerived), guest, host)
	}
	if hs := g.HostStats; hs != nil && hs.BalloonOK {
		gauge(descBalloon, float64(hs.BalloonBytes), guest, host)
	}
	if fss := g.Metrics.Filesystems; len(fss) > 0 {
		mounts := make(map[string]bool, min(len(fss), MaxFilesystems))
		dropped := 0
		for _, fs := range fss {
			mp := Label(fs.Mountpoint)
			if len(mounts) >= MaxFilesystems || mounts[mp] {
				dropped++
				continue
			}
			mounts[mp] = true
			typ := Label(fs.Type)
			gauge(descFSUsed, float64(fs.UsedBytes), guest, host, mp, typ)
			gauge(descFSSize, float64(fs.TotalBytes), guest, host, mp, typ)
		}
		gauge(descFSDropped, float64(dropped), guest, host)
	}
}

// tagsLabel is a guest's tags as one label value: in the fleet file's
// order, comma-joined, capped like any label. Tags are the
// operator's (the fleet file, a libvirt host's tags), not the guest's, and
// one label on one info series per guest keeps a tag change from renaming
// every other series of the guest.
func tagsLabel(tags []string) string { return Label(strings.Join(tags, ",")) }

// Label makes s a safe label value: valid UTF-8 (invalid bytes become
// U+FFFD) and at most MaxLabelBytes. A value that had to change keeps its
// identity in a "~hash" suffix (FNV-32a of the original bytes), so values
// that differ only in their invalid bytes or past the cut stay distinct.
// The exposition format itself escapes quotes, backslashes and newlines.
func Label(s string) string {
	if utf8.ValidString(s) && len(s) <= MaxLabelBytes {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	suffix := fmt.Sprintf("~%08x", h.Sum32())
	v := strings.ToValidUTF8(s, "\uFFFD")
	if limit := MaxLabelBytes - len(suffix); len(v) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return v + suffix
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
