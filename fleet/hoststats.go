package fleet

import (
	"time"

	"github.com/guestdeck/guestdeck/fleet/discovery"
)

// HostStats is what a guest's libvirt host sees of it (the hypervisor's
// side, beside the guest's own Metrics): from one bulk stats call per host
// per poll interval (discovery/libvirtstats.go), never one call per guest.
// A guest at 100% busy by its own account but at 5% host CPU is starved.
// A Guest has none (nil) when it is not reached through libvirt, or
// before the host's first stats call.
type HostStats struct {
	At time.Time // when the host sampled it
	// CPUPct is the domain's CPU time (vCPUs and emulator) per wall time,
	// in percent of its vCPUs (0..100, like Metrics.CPUBusy; it can exceed
	// 100 a little from QEMU's own threads).
	CPUPct Rate
	// BalloonBytes is balloon.current: the memory the guest has now (for a
	// domain without a balloon device libvirt reports its configured
	// memory). BalloonOK is false when the host did not report it.
	BalloonBytes uint64
	BalloonOK    bool
	// Block and network throughput summed over the domain's disks and
	// interfaces.
	BlockRdBps, BlockWrBps, NetRxBps, NetTxBps Rate

	// prev is the sample the rates came from the next time.
	prev discovery.DomainCounters
}

// nextHostStats derives the rates from the previous counters (old's; nil
// before the first call) and c. A counter that went backwards (the domain
// restarted, a disk was detached) makes that rate unknown rather than
// negative or absurd.
func nextHostStats(old *HostStats, c discovery.DomainCounters) *HostStats {
	hs := &HostStats{At: c.At, BalloonBytes: c.BalloonKiB * 1024, BalloonOK: c.Has&discovery.HasBalloon != 0, prev: c}
	var p discovery.DomainCounters
	if old != nil {
		p = old.prev
	}
	dt := c.At.Sub(p.At).Seconds()
	if p.At.IsZero() || dt <= 0 {
		return hs
	}
	rate := func(flag discovery.CounterSet, now, before uint64) Rate {
		if c.Has&flag == 0 || p.Has&flag == 0 || now < before {
			return Rate{}
		}
		return Rate{V: float64(now-before) / dt, OK: true}
	}
	if cpu := rate(discovery.HasCPU, c.CPUTimeNs, p.CPUTimeNs); cpu.OK && c.VCPUs > 0 {
		hs.CPUPct = Rate{V: cpu.V / 1e9 / float64(c.VCPUs) * 100, OK: true}
	}
	hs.BlockRdBps = rate(discovery.HasBlock, c.BlockRdBytes, p.BlockRdBytes)
	hs.BlockWrBps = rate(discovery.HasBlock, c.BlockWrBytes, p.BlockWrBytes)
	hs.NetRxBps = rate(discovery.HasNet, c.NetRxBytes, p.NetRxBytes)
	hs.NetTxBps = rate(discovery.HasNet, c.NetTxBytes, p.NetTxBytes)
	return hs
}

// StatsInterval is how often a libvirt host takes its guests' stats: the
// fleet's live poll interval (discovery.StatsSink).
func (k sourceSink) StatsInterval() time.Duration { return k.f.opts.Interval }

// DomainStats takes one bulk stats call's counters, by guest name, and
// publishes each guest's HostStats (discovery.StatsSink).
func (k sourceSink) DomainStats(byGuest map[string]discovery.DomainCounters) {
	for name, c := range byGuest {
		s := k.f.session(name)
		if s == nil {
			continue
		}
		s.update(func(g *Guest) { g.HostStats = nextHostStats(g.HostStats, c) })
	}
}
