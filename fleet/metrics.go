package fleet

import (
	"context"
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Metrics: what the guest's agent says about its own CPU, disks and network
// (guest-get-cpustats, guest-get-diskstats, the interface counters of
// guest-network-get-interfaces, guest-get-load), turned into rates from
// successive samples. They are asked on their own interval
// (Options.MetricsInterval), in the same pipelined batch as the live items
// when that poll is due; the disks and routes ride with the slow items.
//
// The guest controls every counter. A rate is shown only when both samples
// are believable: counters that went down (a reboot, an agent restart, a
// wrap), an interval with no time in it, or a rate past what the hardware
// could do make that interval's rate unknown (OK false), never negative or
// absurd.

// Rate is one derived per-second (or percent) figure. OK is false when it is
// unknown: the first sample, an agent that lacks the data, a counter reset or
// a value the guest reported that cannot be true.
type Rate struct {
	V  float64
	OK bool
}

// FSUsage is one mounted filesystem's size as the agent reports it.
type FSUsage struct {
	Mountpoint, Type      string
	UsedBytes, TotalBytes uint64
}

// Metrics is one metrics sample of one guest, with the rates computed from
// it and the sample before.
type Metrics struct {
	At time.Time

	// Percent of all vCPUs' time, 0..100: CPUBusy is the time the guest
	// ran (not idle, waiting for I/O or stolen); the three add up to at
	// most 100.
	CPUBusy, IOWait, Steal Rate

	DiskReadBps, DiskWriteBps, DiskReadIOPS, DiskWriteIOPS Rate

	NetRxBps, NetTxBps, NetErrsPerSec Rate

	Load1, Load5, Load15 Rate
	LoadDerived          bool // derived from cpustats, not from guest-get-load
	// CPUs is how many CPUs the last cpustats listed (0: none read; at
	// most maxItems). Beside LoadDerived: one word for both.
	CPUs int32

	Filesystems []FSUsage

	// Note says why something is absent ("agent 5.2.0 lacks
	// guest-get-cpustats (qemu-ga 7.1+)"); "" when nothing is.
	Note string

	// Disks (guest-get-disks) and Routes (guest-network-get-route) are
	// read with the slow items; nil where the agent lacks them or before
	// they were read. Guest-controlled text: escape before display.
	Disks  []agentclient.DiskInfo
	Routes []agentclient.Route
}

// DefaultMetricsInterval is how often the metrics are asked when the fleet
// file does not say: every second live poll at the default 5 s interval.
// Measured at 10,000 simulated guests (README, Performance) it adds 3.5
// points of one core and about 24 KB RSS per guest to the dashboard; rates
// over 10 s are still fine-grained for a dashboard, and the ring of
// HistorySize samples then spans ten minutes.
const DefaultMetricsInterval = 10 * time.Second

// HistorySize is how many metrics samples a guest keeps (History): ten
// minutes at the default interval, about 2.3 KiB per guest (histRing).
const HistorySize = 60

// Bounds past which a reported rate is refused: well past any virtual
// disk or NIC (and past QEMU's 4,096 vCPUs for the lists), so a real
// guest never trips them.
const (
	maxDiskBps  = 200e9 // bytes/s over every disk
	maxDiskIOPS = 200e6
	maxNetBps   = 200e9 // bytes/s over every interface (1.6 Tbit/s)
	maxNetErrs  = 1e9   // errors/s
	maxLoad     = 1e6
	maxItems    = 8192 // CPUs, devices or interfaces counted in one sample
	// cpuSlack: a CPU's counters may advance at most this many times the
	// host's elapsed time (plus a second), allowing for the round trip
	// jitter between the two samples.
	cpuSlack = 2
)

// Load average time constants, as the kernel's (1, 5, 15 minutes).
var loadTau = [3]float64{60, 300, 900}

// metricsCmds are the commands of a metrics poll and of the slow part.
const (
	cmdCPUStats  = "guest-get-cpustats"
	cmdDiskStats = "guest-get-diskstats"
	cmdLoad      = "guest-get-load"
	cmdDisks     = "guest-get-disks"
	cmdRoutes    = "guest-network-get-route"
)

// metricsPoll is one poll's metrics replies (pollResult.metrics).
type metricsPoll struct {
	asked   bool          // a metrics sample was asked in this poll
	at      time.Time     // when its calls were sent
	scratch *statsScratch // where the batch decoded cpu and disk; nil if it did not
	cpu     []agentclient.CPUStats
	cpuOK   bool
	disk    []agentclient.DiskStatsInfo
	diskOK  bool
	load    *agentclient.Load
	loadOK  bool
	disks   []agentclient.DiskInfo
	disksOK bool
	routes  []agentclient.Route
	routeOK bool
}

// statsScratch is what a batch decodes a sample's cpustats and diskstats
// into (agentclient.Scratch): their lists are summed into counters within
// the poll, so the storage is lent from statsScratches for the poll and
// taken back after, shared by the polls in flight. Kept per session it
// would be 1-3 KB a guest; allocated per poll, 18 allocations.
type statsScratch struct {
	cpu  agentclient.Scratch[agentclient.CPUStats]
	disk agentclient.Scratch[agentclient.DiskStatsInfo]
}

// statsScratches recycles statsScratch between polls, like agentclient's
// read buffers.
var statsScratches = sync.Pool{New: func() any { return new(statsScratch) }}

func getStatsScratch() *statsScratch { return statsScratches.Get().(*statsScratch) }

// maxPooledItems bounds the lists a pooled statsScratch holds room for:
// a guest's thousands of CPUs or devices (the reply limit allows them)
// would otherwise stay in the pool for everyone.
const maxPooledItems = 256

// release gives the poll's scratch back: its lists are not used after the
// poll (sampleCounters copied what it needed). Holds sem.
func (m *metricsPoll) release() {
	sc := m.scratch
	if sc == nil {
		return
	}
	m.cpu, m.disk, m.scratch = nil, nil, nil
	sc.cpu.Shape, sc.disk.Shape = nil, nil // the session's, not the pool's
	if cap(sc.cpu.List) <= maxPooledItems && cap(sc.disk.List) <= maxPooledItems {
		statsScratches.Put(sc)
	}
}

// metricsState is a session's metrics between polls. prev and load are
// guarded by sem (polls), hist by mu (History reads it).
type metricsState struct {
	last   time.Time // when the last sample was asked
	prev   *counters
	load   [3]float64 // derived load averages
	hist   histRing
	loadOK bool
}

// counters are one sample's raw counters, summed the way rates need them.
type counters struct {
	at                   time.Time
	cpus                 []cpuCounter
	disks                []devCounter
	nets                 []devCounter
	cpuOK, diskOK, netOK bool
}

// cpuCounter is one CPU's milliseconds: all of them, and those idle,
// waiting for I/O, and stolen by the host.
type cpuCounter struct {
	id                         int
	total, idle, iowait, steal uint64
}

// devCounter is one disk (sectors and I/Os read, written) or one
// interface (bytes received, sent, errors; d unused).
type devCounter struct {
	name       string
	a, b, c, d uint64
}

// metricsDue reports whether this poll asks a metrics sample: metrics are on,
// the guest is not known frozen, and the interval is up (half a live
// interval early, so that a metrics interval that is a multiple of the live
// one does not slip by a whole poll), or a slow refresh runs (a forced poll,
// a fresh connection) and the last sample is not just now.
func (s *session) metricsDue(r *pollResult, now time.Time) bool {
	return s.metricsDueAt(r, now, r.slow)
}

// metricsDueAt is metricsDue with slow for r.slow: prefetchPoll asks
// before guest-info has set it.
func (s *session) metricsDueAt(r *pollResult, now time.Time, slow bool) bool {
	mi := s.f.opts.MetricsInterval
	if mi <= 0 || r.metrics.asked || r.frozen || r.frozenSeen || r.freeze == agentclient.Frozen {
		return false
	}
	last := s.metrics.last
	if last.IsZero() {
		return true
	}
	gap := now.Sub(last)
	return gap >= mi-s.f.opts.Interval/2 || (slow && gap >= minSampleGap)
}

// minSampleGap keeps a forced poll right after a sample from taking
// another: counters tick in 10 ms, and rates over a few milliseconds say
// nothing.
const minSampleGap = 250 * time.Millisecond

// metricsCalls appends a due metrics sample's commands to the live batch
// (pollLive), and the disks and routes on a slow refresh. Holds sem.
func (s *session) metricsCalls(g *Guest, r *pollResult, calls []agentclient.BatchCall) []agentclient.BatchCall {
	m := &r.metrics
	now := time.Now()
	if !s.metricsDue(r, now) {
		return calls
	}
	m.asked, m.at = true, now
	s.metrics.last = m.at
	add := func(cmd string, out any) {
		if s.usable(g, r, cmd) {
			calls = append(calls, agentclient.BatchCall{Name: cmd, Out: out})
		}
	}
	if !s.f.opts.NoCounters {
		m.scratch = getStatsScratch() // metricsDone takes the lists from it
		sh := s.replyShapes()
		m.scratch.cpu.Shape, m.scratch.disk.Shape = &sh.cpu, &sh.disk
		add(cmdCPUStats, &m.scratch.cpu)
		add(cmdDiskStats, &m.scratch.disk)
	}
	add(cmdLoad, &m.load)
	if r.slow {
		add(cmdDisks, &m.disks)
		if !s.f.opts.NoRoutes {
			add(cmdRoutes, &m.routes)
		}
	}
	return calls
}

// metricsDone reads the outcome of the metrics commands of a batch; item has
// already seen each error. Holds sem.
func (s *session) metricsDone(r *pollResult, calls []agentclient.BatchCall) {
	m := &r.metrics
	for _, c := range calls {
		ok := c.Err == nil
		switch c.Name {
		case cmdCPUStats:
			m.cpu, m.cpuOK = m.scratch.cpu.List, ok
		case cmdDiskStats:
			m.disk, m.diskOK = m.scratch.disk.List, ok
		case cmdLoad:
			m.loadOK = ok && m.load != nil
		case cmdDisks:
			m.disksOK = ok
		case cmdRoutes:
			m.routeOK = ok
		}
	}
}

// gatherMetrics asks a due metrics sample one call at a time, for
// connections that take no batch (libvirt) or polls whose live items were
// not batched. Holds sem; ctx is the poll's.
func (s *session) gatherMetrics(ctx context.Context, r *pollResult) (cmd string, fatal error) {
	if s.agent == nil || !s.metricsDue(r, time.Now()) {
		return "", nil
	}
	sa, ok := s.agent.a.(agentclient.StatsAgent)
	if !ok {
		return "", nil
	}
	g := s.cur.Load()
	if g.Freeze == agentclient.Frozen {
		return "", nil
	}
	c := s.agent
	m := &r.metrics
	m.asked, m.at = true, time.Now()
	s.metrics.last = m.at
	steps := []struct {
		cmd  string
		slow bool
		run  func() error
	}{
		{cmdCPUStats, false, func() (err error) {
			m.cpu, err = do(c, ctx, cmdCPUStats, nil, sa.CPUStats)
			m.cpuOK = err == nil
			return err
		}},
		{cmdDiskStats, false, func() (err error) {
			m.disk, err = do(c, ctx, cmdDiskStats, nil, sa.DiskStats)
			m.diskOK = err == nil
			return err
		}},
		{cmdLoad, false, func() (err error) {
			m.load, err = do(c, ctx, cmdLoad, nil, sa.Load)
			m.loadOK = err == nil && m.load != nil
			return err
		}},
		{cmdDisks, true, func() (err error) {
			m.disks, err = do(c, ctx, cmdDisks, nil, sa.Disks)
			m.disksOK = err == nil
			return err
		}},
		{cmdRoutes, true, func() (err error) {
			m.routes, err = do(c, ctx, cmdRoutes, nil, sa.Routes)
			m.routeOK = err == nil
			return err
		}},
	}
	for _, st := range steps {
		counter := st.cmd == cmdCPUStats || st.cmd == cmdDiskStats
		if (st.slow && !r.slow) || (counter && s.f.opts.NoCounters) || (st.cmd == cmdRoutes && s.f.opts.NoRoutes) ||
			r.frozenSeen || !s.usable(g, r, st.cmd) {
			continue
		}
		if _, fatal := s.item(r, st.cmd, st.run()); fatal != nil {
			return st.cmd, fatal
		}
	}
	return "", nil
}

// applyMetrics turns a poll's metrics replies into g.Metrics and a history
// sample. Runs inside update (mu held) of a poll (sem held).
func (s *session) applyMetrics(g *Guest, r *pollResult) {
	m := &r.metrics
	st := &s.metrics
	// The disks, routes and filesystems carry over from sample to sample
	// in g (a copy of the Guest before): the session keeps no copy.
	if m.disksOK {
		g.Metrics.Disks = m.disks
	}
	if m.routeOK {
		g.Metrics.Routes = m.routes
	}
	if r.fsOK && !r.fsShown {
		g.Metrics.Filesystems = fsUsage(r.fs)
	}
	if !m.asked {
		return
	}
	cur := sampleCounters(m, r)
	out := Metrics{At: m.at, Disks: g.Metrics.Disks, Routes: g.Metrics.Routes, Filesystems: g.Metrics.Filesystems, CPUs: int32(len(cur.cpus))}
	computeRates(st.prev, cur, &out)
	if m.loadOK {
		out.Load1, out.Load5, out.Load15 = loadRate(m.load.Load1), loadRate(m.load.Load5), loadRate(m.load.Load15)
		st.loadOK = false // an agent's own load takes over
	} else if out.CPUBusy.OK {
		s.deriveLoad(st, &out, cur)
	}
	// A group this sample lacks (a failed call) has no rate next time
	// either: its counters and this sample's time do not go together.
	out.Note = s.metricsNote(g, r, cur)
	if out.Note != "" {
		// The same few notes for most guests, made anew at every sample.
		out.Note = s.f.logTables.share(out.Note)
	}
	st.prev = cur
	g.Metrics = out
	st.push(out)
}

// deriveLoad updates the load averages derived from CPU use: the share of
// the vCPUs busy, waiting for I/O or stolen (what the kernel's load counts:
// tasks running, runnable, or in uninterruptible sleep) times their number,
// averaged like the kernel does.
func (s *session) deriveLoad(st *metricsState, out *Metrics, cur *counters) {
	n := float64(len(cur.cpus)) * (out.CPUBusy.V + out.IOWait.V + out.Steal.V) / 100
	dt := 0.0
	if st.prev != nil {
		dt = cur.at.Sub(st.prev.at).Seconds()
	}
	for i, tau := range loadTau {
		if !st.loadOK {
			st.load[i] = n
			continue
		}
		e := math.Exp(-dt / tau)
		st.load[i] = st.load[i]*e + n*(1-e)
	}
	st.loadOK = true
	out.Load1, out.Load5, out.Load15 = Rate{st.load[0], true}, Rate{st.load[1], true}, Rate{st.load[2], true}
	out.LoadDerived = true
}

func loadRate(v float64) Rate {
	if math.IsNaN(v) || v < 0 || v > maxLoad {
		return Rate{}
	}
	return Rate{v, true}
}

// metricsNote says why metrics are missing: a command the agent lacks, one
// it disables, one that failed. "" when every source answered. Written
// into a buffer, and when the words are the last sample's (the usual case:
// an agent lacks the same commands every time) that note is kept, not a
// copy made.
func (s *session) metricsNote(g *Guest, r *pollResult, cur *counters) string {
	m := &r.metrics
	var buf [256]byte
	b := buf[:0]
	part := func() {
		if len(b) > 0 {
			b = append(b, "; "...)
		}
	}
	why := func(cmd, what string) {
		part()
		b = append(append(s.appendMissing(b, g, r, cmd), ": "...), what...)
	}
	switch {
	case s.f.opts.NoCounters:
		// Not asked (one poll gives no rate): not the agent's failing.
		part()
		b = append(b, "one poll: no CPU or disk rates (their counters need a second sample)"...)
	default:
		if !m.cpuOK {
			why(cmdCPUStats, "no CPU rates")
		}
		if !m.diskOK {
			why(cmdDiskStats, "no disk rates")
		}
	}
	if !m.loadOK {
		if m.cpuOK {
			why(cmdLoad, "load derived from CPU use")
		} else {
			why(cmdLoad, "no load")
		}
	}
	switch {
	case !r.ifacesOK:
		why("guest-network-get-interfaces", "no network rates")
	case !cur.netOK:
		part()
		b = append(b, "the interfaces report no counters: no network rates"...)
	}
	if string(b) == g.Metrics.Note {
		return g.Metrics.Note
	}
	return string(b)
}

// appendMissing appends in words why cmd gave nothing this time.
func (s *session) appendMissing(b []byte, g *Guest, r *pollResult, cmd string) []byte {
	commands := g.Commands
	if r.info != nil {
		commands = r.info.SupportedCommands
	}
	if err, bad := s.broken[cmd]; bad {
		return append(b, callErrorText(cmd, err)...)
	}
	listed, enabled := false, false
	for _, c := range commands {
		if c.Name == cmd {
			listed, enabled = true, c.Enabled
		}
	}
	c, _ := agentclient.Lookup(cmd)
	version := g.AgentVersion
	if r.info != nil {
		version = r.info.Version
	}
	switch {
	case listed && !enabled:
		return append(append(b, cmd...), " is disabled in the guest"...)
	case listed || len(commands) == 0:
		if s.skip[cmd] {
			return append(append(b, "the agent refused "...), cmd...)
		}
		return append(append(b, cmd...), " did not answer"...)
	case g.OS != nil && g.OS.ID == "mswindows" && c.OS&agentclient.Windows == 0:
		return append(append(b, "qemu-ga for Windows has no "...), cmd...)
	case c.Since != "":
		// agent VERSION lacks CMD (qemu-ga SINCE+)
		b = append(append(append(b, "agent "...), version...), " lacks "...)
		return append(append(append(append(b, cmd...), " (qemu-ga "...), c.Since...), "+)"...)
	}
	return append(append(b, "agent lacks "...), cmd...)
}

// sampleCounters sums one poll's replies into counters; a list that is not
// believable (too long, a counter sum that overflows) counts as absent.
func sampleCounters(m *metricsPoll, r *pollResult) *counters {
	c := &counters{at: m.at}
	if m.cpuOK && len(m.cpu) <= maxItems {
		c.cpus, c.cpuOK = cpuCounters(m.cpu)
	}
	// The disks' and interfaces' counters stay until the next sample: one
	// array for both, of their exact size (the lists also name partitions,
	// stacked devices and lo, which count for nothing).
	var buf [8]devCounter
	devs := buf[:0]
	if m.diskOK && len(m.disk) <= maxItems {
		devs, c.diskOK = diskCounters(devs, m.disk)
	}
	nd := len(devs)
	if r.ifacesOK && len(r.ifaces) <= maxItems {
		devs, c.netOK = netCounters(devs, r.ifaces)
	}
	kept := make([]devCounter, len(devs)) // not slices.Clone: buf stays on the stack
	copy(kept, devs)
	c.disks, c.nets = kept[:nd:nd], kept[nd:]
	return c
}

func cpuCounters(in []agentclient.CPUStats) ([]cpuCounter, bool) {
	out := make([]cpuCounter, 0, len(in))
	for _, s := range in {
		var idle, iowait, steal uint64
		total, ok := sum(s.User, s.Nice, s.System, s.Idle)
		// Guest and guestnice are counted in user and nice already.
		for _, p := range []*uint64{s.IOWait, s.IRQ, s.SoftIRQ, s.Steal} {
			if p != nil && ok {
				total, ok = sum(total, *p)
			}
		}
		if !ok {
			return nil, false
		}
		idle = s.Idle
		if s.IOWait != nil {
			iowait = *s.IOWait
		}
		if s.Steal != nil {
			steal = *s.Steal
		}
		out = append(out, cpuCounter{id: s.CPU, total: total, idle: idle, iowait: iowait, steal: steal})
	}
	return out, true
}

// diskCounters sums whole disks only: partitions, and devices stacked on
// others (device mapper, md RAID) or backed by memory or files (loop, ram,
// zram), would count the same I/O twice.
// They are appended to out.
func diskCounters(out []devCounter, in []agentclient.DiskStatsInfo) ([]devCounter, bool) {
	names := make(map[string]bool, len(in))
	for _, d := range in {
		names[d.Name] = true
	}
	for _, d := range in {
		if !wholeDisk(d.Name, names) {
			continue
		}
		st := d.Stats
		out = append(out, devCounter{name: d.Name, a: val(st.ReadSectors), b: val(st.WriteSectors), c: val(st.ReadIOs), d: val(st.WriteIOs)})
	}
	return out, true
}

func wholeDisk(name string, names map[string]bool) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "fd", "sr", "nbd"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	// A partition is its disk's name plus a number, with a "p" between
	// when the disk's name ends in a digit (nvme0n1p1, mmcblk0p2).
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	if i == len(name) || i == 0 {
		return true
	}
	base := name[:i]
	if names[base] {
		return false
	}
	return !(strings.HasSuffix(base, "p") && names[base[:len(base)-1]])
}

// netCounters appends the interfaces' counters to out; on failure out is
// as it was.
func netCounters(out []devCounter, in []agentclient.Interface) ([]devCounter, bool) {
	start := len(out)
	for _, ifc := range in {
		if ifc.Statistics == nil || ifc.Name == "lo" {
			continue
		}
		st := ifc.Statistics
		errs, ok := sum(st.RxErrs, st.TxErrs)
		if !ok {
			return out[:start], false
		}
		out = append(out, devCounter{name: ifc.Name, a: st.RxBytes, b: st.TxBytes, c: errs})
	}
	// An agent without statistics (older, or Windows before 9.1) gives
	// no counters at all: no rate, not a rate of zero.
	return out, len(out) > start
}

func val(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// sum adds counters, failing on overflow (a guest's invention).
func sum(vs ...uint64) (uint64, bool) {
	var t, carry uint64
	for _, v := range vs {
		t, carry = bits.Add64(t, v, 0)
		if carry != 0 {
			return 0, false
		}
	}
	return t, true
}

// computeRates fills out's rates from two samples. Each group (CPU, disk,
// network) is known only when both samples have it, every counter of it
// that both list grew or stayed, and the result is believable.
func computeRates(prev, cur *counters, out *Metrics) {
	if prev == nil {
		return
	}
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return
	}
	if prev.cpuOK && cur.cpuOK {
		out.CPUBusy, out.IOWait, out.Steal = cpuRates(prev.cpus, cur.cpus, dt)
	}
	if prev.diskOK && cur.diskOK {
		d, ok := deltas(prev.disks, cur.disks)
		if ok {
			out.DiskReadBps = bounded(float64(d.a)*512/dt, maxDiskBps)
			out.DiskWriteBps = bounded(float64(d.b)*512/dt, maxDiskBps)
			out.DiskReadIOPS = bounded(float64(d.c)/dt, maxDiskIOPS)
			out.DiskWriteIOPS = bounded(float64(d.d)/dt, maxDiskIOPS)
		}
	}
	if prev.netOK && cur.netOK {
		d, ok := deltas(prev.nets, cur.nets)
		if ok {
			out.NetRxBps = bounded(float64(d.a)/dt, maxNetBps)
			out.NetTxBps = bounded(float64(d.b)/dt, maxNetBps)
			out.NetErrsPerSec = bounded(float64(d.c)/dt, maxNetErrs)
		}
	}
}

func bounded(v, limit float64) Rate {
	if math.IsNaN(v) || v < 0 || v > limit {
		return Rate{}
	}
	return Rate{v, true}
}

// deltas sums the growth of the devices both samples list (one that came or
// went has no rate); any counter that went down fails the whole interval.
func deltas(prev, cur []devCounter) (devCounter, bool) {
	var d devCounter
	// The usual sample lists the devices the last one did, in its order:
	// each pairs with the one at its index, as the map would pair them
	// (TestRatesInOrderAsByKey), without building it.
	inOrder := sameKeys(prev, cur, func(c devCounter) string { return c.name })
	var byName map[string]devCounter
	if !inOrder {
		byName = make(map[string]devCounter, len(prev))
		for _, p := range prev {
			byName[p.name] = p
		}
	}
	matched := 0
	for i, c := range cur {
		var p devCounter
		if inOrder {
			p = prev[i]
		} else {
			var ok bool
			if p, ok = byName[c.name]; !ok {
				continue
			}
			delete(byName, c.name) // a name listed twice counts once
		}
		if c.a < p.a || c.b < p.b || c.c < p.c || c.d < p.d {
			return devCounter{}, false
		}
		var o1, o2, o3, o4 bool
		d.a, o1 = sum(d.a, c.a-p.a)
		d.b, o2 = sum(d.b, c.b-p.b)
		d.c, o3 = sum(d.c, c.c-p.c)
		d.d, o4 = sum(d.d, c.d-p.d)
		if !o1 || !o2 || !o3 || !o4 {
			return devCounter{}, false
		}
		matched++
	}
	return d, matched > 0
}

// maxInOrder bounds the lists sameKeys compares pair by pair (its check
// that no key repeats is quadratic); longer ones take the map.
const maxInOrder = 32

// sameKeys reports whether cur lists prev's keys at the same indices, none
// twice: each entry then pairs with the one at its index, exactly as a map
// of prev by key would pair them.
func sameKeys[T any, K comparable](prev, cur []T, key func(T) K) bool {
	if len(prev) != len(cur) || len(cur) > maxInOrder {
		return false
	}
	for i := range cur {
		k := key(cur[i])
		if key(prev[i]) != k {
			return false
		}
		for j := range i {
			if key(cur[j]) == k {
				return false
			}
		}
	}
	return true
}

// cpuRates are the busy, iowait and steal shares (percent) of every CPU
// both samples list, over dt seconds. Busy is the time the guest ran: not
// idle, not waiting for I/O, not stolen by the host.
func cpuRates(prev, cur []cpuCounter, dt float64) (busy, iowait, steal Rate) {
	inOrder := sameKeys(prev, cur, func(c cpuCounter) int { return c.id }) // as deltas
	var byID map[int]cpuCounter
	if !inOrder {
		byID = make(map[int]cpuCounter, len(prev))
		for _, p := range prev {
			byID[p.id] = p
		}
	}
	var total, idle, wait, stolen float64
	matched := 0
	limit := (cpuSlack*dt + 1) * 1000 // ms one CPU may advance
	for i, c := range cur {
		var p cpuCounter
		if inOrder {
			p = prev[i]
		} else {
			var ok bool
			if p, ok = byID[c.id]; !ok {
				continue
			}
			delete(byID, c.id)
		}
		if c.total < p.total || c.idle < p.idle || c.iowait < p.iowait || c.steal < p.steal {
			return // reset: rebooted, or a CPU replugged
		}
		dTotal := c.total - p.total
		dIdle, dWait, dSteal := c.idle-p.idle, c.iowait-p.iowait, c.steal-p.steal
		if float64(dTotal) > limit || dIdle+dWait+dSteal > dTotal {
			return // faster than time, or parts larger than the whole
		}
		total += float64(dTotal)
		idle += float64(dIdle)
		wait += float64(dWait)
		stolen += float64(dSteal)
		matched++
	}
	if matched == 0 || total == 0 {
		return
	}
	pct := func(v float64) Rate { return Rate{min(100, max(0, 100*v/total)), true} }
	return pct(total - idle - wait - stolen), pct(wait), pct(stolen)
}

// fsUsage is the filesystems with both sizes, the used part no larger than
// the whole.
func fsUsage(fs []agentclient.Filesystem) []FSUsage {
	out := make([]FSUsage, 0, len(fs))
	for _, f := range fs {
		if f.UsedBytes == nil || f.TotalBytes == nil || *f.UsedBytes > *f.TotalBytes {
			continue
		}
		out = append(out, FSUsage{Mountpoint: f.Mountpoint, Type: f.Type, UsedBytes: *f.UsedBytes, TotalBytes: *f.TotalBytes})
	}
	return out
}

// histRing is a guest's metrics history: HistorySize samples of the rates
// the metrics tabs draw (series), as arrays per rate, and the sample times.
// Two allocations made at the first sample, 2,368 bytes a guest (a ring of
// per-sample structs with all thirteen rates as float32 took 4,096). Load5
// and Load15 are not kept: only the newest sample's are shown, and
// Guest.Metrics has them.
type histRing struct {
	v       *histValues
	at      *histTimes
	derived uint64 // bit i: slot i's load was derived (LoadDerived)
	head, n int32  // < HistorySize
}

// histTimes are the sample times, exact to the nanosecond, in 316 bytes
// (a 320-byte allocation, not 480): the newest as unix nanoseconds, each
// other as the gap to the sample after it in five bytes, up to 18 minutes.
// A gap that does not fit (a metrics interval past 18 minutes, the wall
// clock set back) turns the ring to wide, exact times, for good.
type histTimes struct {
	last int64               // the newest sample's time
	wide *[HistorySize]int64 // non-nil: every slot's time, unix nanoseconds
	gap  [HistorySize][5]byte
}

// maxGap is the longest gap five bytes hold: 2^40-1 ns, 18m19s.
const maxGap = 1<<40 - 1

// times are the ring's sample times, by slot. mu held.
func (h *histRing) times() *[HistorySize]int64 {
	t := h.at
	if t.wide != nil {
		return t.wide
	}
	var out [HistorySize]int64
	i := (int(h.head) - 1 + HistorySize) % HistorySize // the newest
	at := t.last
	for range h.n {
		out[i] = at
		g := t.gap[i]
		at -= int64(g[0])<<32 | int64(g[1])<<24 | int64(g[2])<<16 | int64(g[3])<<8 | int64(g[4])
		i = (i - 1 + HistorySize) % HistorySize
	}
	return &out
}

// setTime records slot i's time, the newest. mu held.
func (h *histRing) setTime(i int32, at int64) {
	t := h.at
	if t.wide == nil && h.n > 0 {
		if d := at - t.last; at < t.last || d > maxGap {
			t.wide = h.times() // before this slot counts
		} else {
			t.gap[i] = [5]byte{byte(d >> 32), byte(d >> 24), byte(d >> 16), byte(d >> 8), byte(d)}
		}
	}
	if t.wide != nil {
		t.wide[i] = at
	}
	t.last = at
}

// histValues are the series' values, 2,040 bytes (a 2 KiB allocation):
// the percentages as pct16; the byte rates, shown to three digits, as
// rate24; the counts (IOPS and errors per second, shown to the unit up to
// six digits, and the load, to four) as float32, NaN for unknown (a known
// rate is never NaN: bounded and loadRate refuse it).
type histValues struct {
	pct [nPct][HistorySize]pct16
	r24 [n24 - nPct][HistorySize]rate24
	f32 [nSeries - n24][HistorySize]float32
}

const (
	nSeries = 11
	nPct    = 3 // the first nPct of series are kept as pct16
	n24     = 7 // the next ones up to n24 as rate24
)

// series lists m's rates in histValues order: those History keeps.
func (m *Metrics) series() [nSeries]*Rate {
	return [nSeries]*Rate{&m.CPUBusy, &m.IOWait, &m.Steal,
		&m.DiskReadBps, &m.DiskWriteBps, &m.NetRxBps, &m.NetTxBps,
		&m.DiskReadIOPS, &m.DiskWriteIOPS, &m.NetErrsPerSec, &m.Load1}
}

// pct16 is a known percentage (0..100) in two bytes, in steps matched to
// how one is shown (fmtPct: tenths below 10, whole numbers above): below
// 10 in steps of 1/3200, so within 1/6400 of the value; from 10 to 100 in
// steps of 1/360, within 1/720. Whole numbers are exact. A shown figure
// right at a rounding boundary can come out one off in its last digit,
// about as rarely as rate24's (one cell in five hundred or fewer). All
// ones is unknown, and so is a value outside 0..100 (none is: cpuRates
// clamps; a screen shows one as absent anyway): never wrapped or clamped
// into a percentage the guest did not have.
type pct16 uint16

const (
	unknownPct16 = 0xffff
	pct16Low     = 3200  // steps per point below 10
	pct16High    = 360   // steps per point from 10
	pct16Ten     = 32000 // the code of 10%
)

func toPct16(r Rate) pct16 {
	v := r.V
	switch {
	case !r.OK || math.IsNaN(v) || v < 0 || v > 100:
		return unknownPct16
	case v < 10:
		return pct16(math.Round(v * pct16Low))
	}
	return pct16(pct16Ten + math.Round((v-10)*pct16High))
}

func (c pct16) rate() Rate {
	switch {
	case c == unknownPct16:
		return Rate{}
	case c <= pct16Ten:
		return Rate{float64(c) / pct16Low, true}
	}
	return Rate{10 + float64(c-pct16Ten)/pct16High, true}
}

// rate24 is a known rate in three bytes: a float32 without its sign (a
// rate is never negative) and with its significand rounded to 16 bits, so
// within 2^-17 (8 parts in a million) of the value, where float32 is within
// 2^-24. For a figure shown to three digits, a mean or largest value right
// at a rounding boundary can show its last digit one off: about one cell
// in a thousand or fewer. All ones (a float32 NaN) is unknown.
type rate24 [3]byte

const unknownBits24 = 0xffffff

func toRate24(r Rate) rate24 {
	b := uint32(unknownBits24)
	if r.OK && !math.IsNaN(r.V) && r.V >= 0 && r.V <= math.MaxFloat32 {
		b = math.Float32bits(float32(r.V))
		b += 1 << 6 // round to nearest: half of the 7 bits dropped
		b >>= 7
	}
	return rate24{byte(b >> 16), byte(b >> 8), byte(b)}
}

func (v rate24) rate() Rate {
	b := uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2])
	if b == unknownBits24 {
		return Rate{}
	}
	return Rate{float64(math.Float32frombits(b << 7)), true}
}

func toFloat32(r Rate) float32 {
	if !r.OK || math.IsNaN(r.V) {
		return float32(math.NaN())
	}
	return float32(r.V)
}

func float32Rate(v float32) Rate {
	if math.IsNaN(float64(v)) {
		return Rate{}
	}
	return Rate{float64(v), true}
}

// push adds m to the ring. mu held.
func (st *metricsState) push(m Metrics) {
	h := &st.hist
	if h.v == nil {
		h.v, h.at = new(histValues), new(histTimes)
	}
	i := h.head
	h.setTime(i, m.At.UnixNano())
	for j, r := range m.series() {
		switch {
		case j < nPct:
			h.v.pct[j][i] = toPct16(*r)
		case j < n24:
			h.v.r24[j-nPct][i] = toRate24(*r)
		default:
			h.v.f32[j-n24][i] = toFloat32(*r)
		}
	}
	h.derived &^= 1 << i
	if m.LoadDerived {
		h.derived |= 1 << i
	}
	h.head = (h.head + 1) % HistorySize
	h.n = min(h.n+1, HistorySize)
}

// history copies the ring out, oldest first. mu held.
func (st *metricsState) history() []Metrics {
	h := &st.hist
	if h.n == 0 {
		return nil
	}
	out := make([]Metrics, h.n)
	at := h.times()
	start := int((h.head - h.n + HistorySize) % HistorySize)
	for k := range out {
		i := (start + k) % HistorySize
		m := &out[k]
		m.At, m.LoadDerived = time.Unix(0, at[i]), h.derived&(1<<i) != 0
		for j, r := range m.series() {
			switch {
			case j < nPct:
				*r = h.v.pct[j][i].rate()
			case j < n24:
				*r = h.v.r24[j-nPct][i].rate()
			default:
				*r = float32Rate(h.v.f32[j-n24][i])
			}
		}
	}
	return out
}

// History returns the guest's metrics samples, oldest first: a copy of a
// fixed ring of HistorySize. Entries carry the time, LoadDerived and the
// rates the metrics tabs draw as series (Load1 but not Load5 and Load15);
// the newest sample in full (every rate, filesystems, disks, note) is
// Guest.Metrics. nil for an unknown guest or one not sampled yet.
func (f *Fleet) History(name string) []Metrics {
	s := f.session(name)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metrics.history()
}

// derived is a bit per ring slot.
const _ uint = 64 - HistorySize
