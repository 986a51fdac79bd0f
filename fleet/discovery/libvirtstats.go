package discovery

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/guestdeck/guestdeck/internal/blocking"
)

// StatsSink is a Sink that also takes the hypervisor's counters of a
// libvirt host's guests. A host whose sink is one takes them with one bulk
// call (virConnectGetAllDomainStats) per interval while it is connected:
// the cost is one RPC per host, whatever its number of guests.
type StatsSink interface {
	Sink
	// StatsInterval is how often to take them; <= 0 means never.
	StatsInterval() time.Duration
	// DomainStats takes one call's counters, by guest name (only the
	// host's known guests). It must not block for long.
	DomainStats(byGuest map[string]DomainCounters)
}

// CounterSet says which groups of a DomainCounters the host reported.
type CounterSet uint8

const (
	HasCPU     CounterSet = 1 << iota // CPUTimeNs and VCPUs
	HasBalloon                        // BalloonKiB
	HasBlock                          // BlockRdBytes, BlockWrBytes
	HasNet                            // NetRxBytes, NetTxBytes
)

// DomainCounters is one domain's cumulative counters at one moment, as its
// libvirt host reports them; the fleet turns successive ones into rates.
type DomainCounters struct {
	At  time.Time
	Has CounterSet
	// CPUTimeNs is cpu.time: the domain's CPU time so far. VCPUs is
	// vcpu.current.
	CPUTimeNs uint64
	VCPUs     int
	// BalloonKiB is balloon.current: the memory the guest has now.
	BalloonKiB uint64
	// Sums over block.N and net.N.
	BlockRdBytes, BlockWrBytes uint64
	NetRxBytes, NetTxBytes     uint64
}

// statsGroups are the stats groups asked for: no per-vCPU times (VCPU gives
// vcpu.current, and with it vcpu.N.* which we ignore, but is small).
const statsGroups = libvirt.DomainStatsCPUTotal | libvirt.DomainStatsBalloon | libvirt.DomainStatsVCPU |
	libvirt.DomainStatsInterface | libvirt.DomainStatsBlock

// statsLoop takes the stats of every running domain with one call per
// interval until ctx ends or the connection drops. A failed call is skipped
// (the guests keep their last counters, whose age says so); the host's
// health is the event stream's business, not this loop's.
func (h *Libvirt) statsLoop(ctx context.Context, l *libvirt.Libvirt) {
	ss, ok := h.sink.(StatsSink)
	if !ok {
		return
	}
	every := ss.StatsInterval()
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if byGuest, err := h.takeStats(ctx, l); err == nil && len(byGuest) > 0 {
			ss.DomainStats(byGuest)
		}
		select {
		case <-ctx.Done():
			return
		case <-l.Disconnected():
			return
		case <-t.C:
		}
	}
}

// takeStats is one ConnectGetAllDomainStats call for every active domain,
// mapped to this host's guests by domain name.
func (h *Libvirt) takeStats(ctx context.Context, l *libvirt.Libvirt) (map[string]DomainCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, hostRPCTimeout)
	defer cancel()
	recs, err := blocking.Call(ctx, func() ([]libvirt.DomainStatsRecord, error) {
		return l.ConnectGetAllDomainStats(nil, uint32(statsGroups), uint32(libvirt.ConnectGetAllDomainsStatsActive))
	})
	if err != nil {
		return nil, err
	}
	at := time.Now()
	out := make(map[string]DomainCounters, len(recs))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range recs {
		name, ok := h.guests[r.Dom.Name]
		if !ok {
			continue
		}
		c := parseDomainStats(r.Params)
		c.At = at
		out[name] = c
	}
	return out, nil
}

// parseDomainStats sums one record's typed parameters. Unknown or
// mistyped fields are ignored: a daemon of another version adds fields.
func parseDomainStats(ps []libvirt.TypedParam) DomainCounters {
	var c DomainCounters
	for _, p := range ps {
		v, ok := paramUint(p.Value)
		if !ok {
			continue
		}
		switch f := p.Field; {
		case f == "cpu.time":
			c.CPUTimeNs = v
			c.Has |= HasCPU
		case f == "vcpu.current":
			c.VCPUs = int(min(v, 1<<20))
		case f == "balloon.current":
			c.BalloonKiB = v
			c.Has |= HasBalloon
		case indexed(f, "block.", ".rd.bytes"):
			c.BlockRdBytes += v
			c.Has |= HasBlock
		case indexed(f, "block.", ".wr.bytes"):
			c.BlockWrBytes += v
			c.Has |= HasBlock
		case indexed(f, "net.", ".rx.bytes"):
			c.NetRxBytes += v
			c.Has |= HasNet
		case indexed(f, "net.", ".tx.bytes"):
			c.NetTxBytes += v
			c.Has |= HasNet
		}
	}
	if c.VCPUs == 0 {
		c.Has &^= HasCPU // no rate without the vCPU count it is a share of
	}
	return c
}

// indexed matches "PREFIX<N>SUFFIX" (block.0.rd.bytes), not the backing
// chain's "block.0.backingIndex" and the like.
func indexed(f, prefix, suffix string) bool {
	rest, ok := strings.CutPrefix(f, prefix)
	if !ok {
		return false
	}
	n, ok := strings.CutSuffix(rest, suffix)
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 32)
	return err == nil
}

// paramUint reads an integer typed parameter of any width.
func paramUint(v libvirt.TypedParamValue) (uint64, bool) {
	switch x := v.I.(type) {
	case uint64:
		return x, true
	case uint32:
		return uint64(x), true
	case int64:
		return uint64(max(x, 0)), x >= 0
	case int32:
		return uint64(max(x, 0)), x >= 0
	}
	return 0, false
}

// startStats runs statsLoop over connection l; the function it returns
// stops it and waits for it.
func (h *Libvirt) startStats(ctx context.Context, l *libvirt.Libvirt) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.statsLoop(ctx, l)
	}()
	return func() { cancel(); <-done }
}
