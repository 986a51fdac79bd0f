package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// The guest's own statistics: guest-get-cpustats, guest-get-diskstats,
// guest-get-disks, guest-get-load, guest-network-get-route and the memory
// block commands, in the real agent's shapes (checked against qemu-ga 7.2 by
// TestStatsMatchRealAgent, against the schema for the newer ones).
//
// Counters are integrals of smooth, slowly varying rates over the guest's
// uptime, so that they only grow, and successive samples give believable
// rates that change: how busy a guest is follows its Workload. A reboot
// (guest-shutdown mode=reboot) starts them from zero again, as a real
// kernel's do; an agent restart (Restart) does not.

// Workload is how busy a simulated guest is.
type Workload string

const (
	WorkloadDefault Workload = ""      // light use, varied by the guest's name
	WorkloadIdle    Workload = "idle"  // next to nothing
	WorkloadBusy    Workload = "busy"  // CPU bound, writing steadily
	WorkloadSteal   Workload = "steal" // an overcommitted host takes a third of the CPU
	WorkloadIO      Workload = "io"    // waiting on its disks
)

// profile is a workload's rates: each a base plus a swing of a sine wave
// (the swing at most the base, so the rate never goes negative). CPU rates
// are fractions of one vCPU; the busy, iowait and steal bases and swings
// together stay under 1.
type profile struct {
	busy, wait, steal wave
	read, write       wave // disk bytes/s
	rx, tx            wave // network bytes/s
}

type wave struct{ base, swing float64 }

func workloadProfile(w Workload, name string) profile {
	switch w {
	case WorkloadIdle:
		return profile{busy: wave{0.02, 0.01}, wait: wave{0.001, 0.001}, steal: wave{0.001, 0},
			read: wave{2e3, 1e3}, write: wave{2e4, 1e4}, rx: wave{300, 200}, tx: wave{200, 100}}
	case WorkloadBusy:
		return profile{busy: wave{0.82, 0.12}, wait: wave{0.02, 0.01}, steal: wave{0.01, 0.005},
			read: wave{6e6, 4e6}, write: wave{25e6, 15e6}, rx: wave{12e6, 8e6}, tx: wave{30e6, 20e6}}
	case WorkloadSteal:
		return profile{busy: wave{0.45, 0.1}, wait: wave{0.01, 0.005}, steal: wave{0.32, 0.06},
			read: wave{5e5, 3e5}, write: wave{1e6, 5e5}, rx: wave{1e6, 5e5}, tx: wave{8e5, 4e5}}
	case WorkloadIO:
		return profile{busy: wave{0.18, 0.06}, wait: wave{0.38, 0.1}, steal: wave{0.005, 0},
			read: wave{80e6, 30e6}, write: wave{40e6, 20e6}, rx: wave{2e6, 1e6}, tx: wave{5e5, 2e5}}
	}
	// Light use, a little different for every guest.
	k := float64(nameHash(name)%8) / 8
	return profile{busy: wave{0.06 + 0.2*k, 0.05}, wait: wave{0.005 + 0.01*k, 0.004}, steal: wave{0.003, 0.002},
		read: wave{5e4 + 4e5*k, 4e4}, write: wave{1e5 + 6e5*k, 8e4}, rx: wave{2e4 + 2e5*k, 1.5e4}, tx: wave{1e4 + 1e5*k, 8e3}}
}

func nameHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// statsState is a guest's statistics state (Guest.stats), guarded by g.mu.
type statsState struct {
	bootAt  time.Time       // zero: booted bootAge before the guest started
	offline map[uint64]bool // memory blocks taken offline
}

// rebootAt records a reboot: the counters start again from zero at t.
func (s *statsState) rebootAt(t time.Time) { s.bootAt = t }

// bootAge is how long a guest had been up when the simulator started it:
// counters of a guest up for days, not seconds.
const bootAge = 3 * 24 * time.Hour

// uptime is the guest kernel's uptime in seconds, and the phase of its rates.
func (g *Guest) uptime() (float64, float64) {
	phase := float64(nameHash(g.cfg.Name)%628) / 100
	if !g.stats.bootAt.IsZero() {
		return max(0, time.Since(g.stats.bootAt).Seconds()), phase
	}
	return (time.Since(g.start) + bootAge).Seconds(), phase
}

// period is how long a rate takes to swing up and back (seconds).
const period = 240

// integral is ∫0..t of base + swing·sin(ωx + φ): the counter of a rate.
func (w wave) integral(t, phase float64) float64 {
	om := 2 * math.Pi / period
	return w.base*t - w.swing/om*(math.Cos(om*t+phase)-math.Cos(phase))
}

// at is the rate at time t.
func (w wave) at(t, phase float64) float64 {
	return w.base + w.swing*math.Sin(2*math.Pi/period*t+phase)
}

func (g *Guest) profile() profile { return workloadProfile(g.cfg.Workload, g.cfg.Name) }

// linuxOnly are the served commands qemu-ga builds on Linux only (the
// schema's 'if': CONFIG_LINUX): a Windows guest has never heard of them.
var linuxOnly = map[string]bool{
	"guest-get-cpustats": true, "guest-get-diskstats": true,
	"guest-get-memory-blocks": true, "guest-set-memory-blocks": true, "guest-get-memory-block-info": true,
}

// builds reports whether g's agent is built with command name at all.
func (g *Guest) builds(name string) bool { return !(g.cfg.Windows && linuxOnly[name]) }

func statsCommands() map[string]command {
	return map[string]command{
		"guest-get-cpustats":      {run: (*Guest).cmdCPUStats},
		"guest-get-diskstats":     {run: (*Guest).cmdDiskStats},
		"guest-get-disks":         {run: (*Guest).cmdDisks},
		"guest-get-load":          {run: (*Guest).cmdLoad},
		"guest-network-get-route": {run: (*Guest).cmdRoutes},
		"guest-get-memory-blocks": {run: (*Guest).cmdMemoryBlocks},
		"guest-get-memory-block-info": {run: func(*Guest, args) (any, *agentclient.Error) {
			return agentclient.MemoryBlockInfo{Size: memBlockSize}, nil
		}},
		"guest-set-memory-blocks": {fields: []field{{name: "mem-blks", typ: tStructList, sub: []field{
			{name: "phys-index", typ: tInt}, {name: "online", typ: tBool}, {name: "can-offline", typ: tBool, opt: true},
		}}}, run: (*Guest).cmdSetMemoryBlocks},
	}
}

// linuxCPU is one CPU of guest-get-cpustats as qemu-ga 7.2 on Linux sends
// it: every member, in milliseconds (ticks of 10 ms).
type linuxCPU struct {
	Type      string `json:"type"`
	CPU       int    `json:"cpu"`
	User      uint64 `json:"user"`
	Nice      uint64 `json:"nice"`
	System    uint64 `json:"system"`
	Idle      uint64 `json:"idle"`
	IOWait    uint64 `json:"iowait"`
	IRQ       uint64 `json:"irq"`
	SoftIRQ   uint64 `json:"softirq"`
	Steal     uint64 `json:"steal"`
	Guest     uint64 `json:"guest"`
	GuestNice uint64 `json:"guestnice"`
}

// ticks is seconds as the agent reports them: whole 10 ms ticks, in ms.
func ticks(s float64) uint64 { return uint64(max(0, s)*100) * 10 }

func (g *Guest) cmdCPUStats(args) (any, *agentclient.Error) {
	t, phase := g.uptime()
	p := g.profile()
	var out []linuxCPU
	for _, v := range g.vcpuList() {
		if !v.Online {
			continue // /proc/stat lists online CPUs only
		}
		ph := phase + float64(v.LogicalID)*0.7
		busy, wait, steal := p.busy.integral(t, ph), p.wait.integral(t, ph), p.steal.integral(t, ph)
		c := linuxCPU{Type: "linux", CPU: v.LogicalID,
			User: ticks(busy * 0.68), Nice: ticks(busy * 0.02), System: ticks(busy * 0.26), SoftIRQ: ticks(busy * 0.04),
			IOWait: ticks(wait), Steal: ticks(steal)}
		c.Idle = ticks(t) - min(ticks(t), c.User+c.Nice+c.System+c.SoftIRQ+c.IOWait+c.Steal)
		out = append(out, c)
	}
	if out == nil {
		out = []linuxCPU{}
	}
	return out, nil
}

// blockDev is one device of the simulated /proc/diskstats.
type blockDev struct {
	name         string
	major, minor uint64
	share        float64 // of the guest's I/O
}

// blockDevs are the guest's block devices: loop0 (idle, as on a real
// Debian), and every disk its filesystems lie on, with its partition.
func (g *Guest) blockDevs() []blockDev {
	devs := []blockDev{{name: "loop0", major: 7}}
	var disks []string
	for _, fs := range g.cfg.Filesystems {
		for _, d := range fs.Disk {
			disk := diskOf(strings.TrimPrefix(d.Dev, "/dev/"))
			if disk != "" && !containsStr(disks, disk) {
				disks = append(disks, disk)
			}
		}
	}
	for i, d := range disks {
		major := uint64(254) // virtio-blk
		if strings.HasPrefix(d, "nvme") {
			major = 259
		} else if strings.HasPrefix(d, "sd") {
			major = 8
		}
		share := 1 / float64(len(disks))
		part := d + "1"
		if strings.HasPrefix(d, "nvme") {
			part = d + "p1"
		}
		devs = append(devs, blockDev{name: d, major: major, minor: uint64(16 * i), share: share},
			blockDev{name: part, major: major, minor: uint64(16*i + 1), share: share * 0.98})
	}
	return devs
}

// diskOf is the disk a device node names: vda1 -> vda, nvme0n1p2 -> nvme0n1.
func diskOf(dev string) string {
	if dev == "" {
		return ""
	}
	i := len(dev)
	for i > 0 && dev[i-1] >= '0' && dev[i-1] <= '9' {
		i--
	}
	if strings.HasPrefix(dev, "nvme") {
		if j := strings.LastIndex(dev, "p"); j > 0 {
			return dev[:j]
		}
		return dev
	}
	return dev[:i]
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// diskStats is GuestDiskStats with every member, as qemu-ga 7.2 sends it
// (the kernel's 17 fields of /proc/diskstats).
type diskStats struct {
	ReadSectors    uint64 `json:"read-sectors"`
	ReadIOs        uint64 `json:"read-ios"`
	ReadMerges     uint64 `json:"read-merges"`
	WriteSectors   uint64 `json:"write-sectors"`
	WriteIOs       uint64 `json:"write-ios"`
	WriteMerges    uint64 `json:"write-merges"`
	DiscardSectors uint64 `json:"discard-sectors"`
	DiscardIOs     uint64 `json:"discard-ios"`
	DiscardMerges  uint64 `json:"discard-merges"`
	FlushIOs       uint64 `json:"flush-ios"`
	ReadTicks      uint64 `json:"read-ticks"`
	WriteTicks     uint64 `json:"write-ticks"`
	DiscardTicks   uint64 `json:"discard-ticks"`
	FlushTicks     uint64 `json:"flush-ticks"`
	IOsPgr         uint64 `json:"ios-pgr"`
	TotalTicks     uint64 `json:"total-ticks"`
	WeightTicks    uint64 `json:"weight-ticks"`
}

type diskStatsInfo struct {
	Name  string    `json:"name"`
	Major uint64    `json:"major"`
	Minor uint64    `json:"minor"`
	Stats diskStats `json:"stats"`
}

func (g *Guest) cmdDiskStats(args) (any, *agentclient.Error) {
	t, phase := g.uptime()
	p := g.profile()
	read, write := p.read.integral(t, phase), p.write.integral(t, phase)
	var out []diskStatsInfo
	for _, d := range g.blockDevs() {
		var s diskStats
		if d.share > 0 {
			s.ReadSectors = uint64(read * d.share / 512)
			s.WriteSectors = uint64(write * d.share / 512)
			s.ReadIOs = s.ReadSectors / 24 // 12 KiB reads
			s.WriteIOs = s.WriteSectors / 40
			s.ReadMerges, s.WriteMerges = s.ReadIOs/9, s.WriteIOs/3
			s.FlushIOs = s.WriteIOs / 25
			s.ReadTicks, s.WriteTicks = s.ReadIOs/2, s.WriteIOs
			s.FlushTicks = s.FlushIOs / 4
			s.TotalTicks = uint64(p.wait.integral(t, phase)*1000*d.share) + s.ReadTicks/3
			s.WeightTicks = s.ReadTicks + s.WriteTicks + s.FlushTicks
			s.IOsPgr = uint64(p.wait.at(t, phase) * 8)
		}
		out = append(out, diskStatsInfo{Name: d.name, Major: d.major, Minor: d.minor, Stats: s})
	}
	return out, nil
}

// diskInfo is GuestDiskInfo as qemu-ga on Linux sends it: dependencies
// always present, the address only for a whole disk.
type diskInfo struct {
	Name         string                   `json:"name"`
	Partition    bool                     `json:"partition"`
	Dependencies []string                 `json:"dependencies"`
	Address      *agentclient.DiskAddress `json:"address,omitempty"`
	Smart        *agentclient.DiskSmart   `json:"smart,omitempty"`
}

func (g *Guest) cmdDisks(args) (any, *agentclient.Error) {
	out := []diskInfo{}
	seen := map[string]bool{}
	for _, fs := range g.cfg.Filesystems {
		for _, d := range fs.Disk {
			dev := strings.TrimPrefix(d.Dev, "/dev/")
			disk := diskOf(dev)
			if disk == "" || seen[disk] {
				continue
			}
			seen[disk] = true
			addr := d
			addr.Dev = "/dev/" + disk
			di := diskInfo{Name: "/dev/" + disk, Dependencies: []string{}, Address: &addr}
			if d.BusType == "nvme" {
				di.Smart = g.nvmeSmart()
			}
			out = append(out, di)
			if dev != disk {
				out = append(out, diskInfo{Name: "/dev/" + dev, Partition: true, Dependencies: []string{"/dev/" + disk}})
			}
		}
	}
	return out, nil
}

// nvmeSmart is a healthy NVMe drive's SMART / Health log with counters that
// follow the guest's I/O (a data unit is 1,000 sectors of 512 bytes).
func (g *Guest) nvmeSmart() *agentclient.DiskSmart {
	t, phase := g.uptime()
	p := g.profile()
	read, write := p.read.integral(t, phase), p.write.integral(t, phase)
	return &agentclient.DiskSmart{Type: "nvme", Temperature: 311, AvailableSpare: 100, AvailableSpareThreshold: 10,
		PercentageUsed: 2, DataUnitsReadLo: uint64(read / 512e3), DataUnitsWrittenLo: uint64(write / 512e3),
		HostReadCommandsLo: uint64(read / 12288), HostWriteCommandsLo: uint64(write / 20480),
		ControllerBusyTimeLo: uint64(t / 600), PowerCyclesLo: 14, PowerOnHoursLo: uint64(t/3600) + 2100,
		UnsafeShutdownsLo: 3}
}

// cmdLoad reports load averages that follow the CPU use: the running and
// waiting share of the vCPUs, smoothed more for the longer averages.
func (g *Guest) cmdLoad(args) (any, *agentclient.Error) {
	t, phase := g.uptime()
	p := g.profile()
	n := 0.0
	for _, v := range g.vcpuList() {
		if v.Online {
			n++
		}
	}
	base := n * (p.busy.base + p.wait.base)
	now := n * (p.busy.at(t, phase) + p.wait.at(t, phase))
	round := func(v float64) float64 { return math.Round(v*100) / 100 } // getloadavg's fixed point
	return agentclient.Load{Load1: round(now), Load5: round(0.6*base + 0.4*now), Load15: round(0.9*base + 0.1*now)}, nil
}

// cmdRoutes reports a route to each IPv4 interface's network, a default
// route through the first one's .1, and the IPv6 link-local routes, with
// the members qemu-ga 9.1 fills from /proc/net/route and ipv6_route.
func (g *Guest) cmdRoutes(args) (any, *agentclient.Error) {
	out := []agentclient.Route{}
	zero, one := 0, 1
	flags := func(f uint64) *uint64 { return &f }
	defaultDone := false
	for _, ifc := range g.cfg.Interfaces {
		if ifc.Name == "lo" {
			continue
		}
		for _, a := range ifc.IPAddresses {
			addr, err := netip.ParseAddr(a.Address)
			if err != nil {
				continue
			}
			pfx, err := addr.Prefix(a.Prefix)
			if err != nil {
				continue
			}
			if addr.Is4() {
				if !defaultDone {
					gw := pfx.Addr().Next()
					out = append(out, agentclient.Route{Iface: ifc.Name, Destination: "0.0.0.0", Gateway: gw.String(), Mask: "0.0.0.0",
						Metric: 100, Flags: flags(3), RefCnt: &zero, Use: &zero, Window: &zero, MTU: &zero, IRTT: &zero, Version: 4})
					defaultDone = true
				}
				out = append(out, agentclient.Route{Iface: ifc.Name, Destination: pfx.Addr().String(), Gateway: "0.0.0.0",
					Mask: maskText(a.Prefix), Metric: 100, Flags: flags(1), RefCnt: &zero, Use: &zero, Window: &zero, MTU: &zero, IRTT: &zero, Version: 4})
				continue
			}
			out = append(out, agentclient.Route{Iface: ifc.Name, Destination: pfx.Addr().String(), DesPrefixLen: fmt.Sprintf("%d", a.Prefix),
				Source: "::", SrcPrefixLen: "0", NextHop: "::", Metric: 256, Flags: flags(1), RefCnt: &one, Use: &zero, MTU: &zero, Version: 6})
		}
	}
	return out, nil
}

func maskText(prefix int) string {
	var b [4]byte
	for i := range 4 {
		bitsHere := min(8, max(0, prefix-8*i))
		b[i] = byte(0xff << (8 - bitsHere))
	}
	return netip.AddrFrom4(b).String()
}

// Memory blocks: 128 MiB each (x86's), 2 GiB of memory per vCPU.
const memBlockSize = 128 << 20

func (g *Guest) memBlocks() int { return max(1, len(g.cfg.VCPUs)) * 16 }

func (g *Guest) cmdMemoryBlocks(args) (any, *agentclient.Error) {
	out := make([]agentclient.MemoryBlock, g.memBlocks())
	for i := range out {
		// Block 0 holds the kernel: it can never go offline.
		out[i] = agentclient.MemoryBlock{PhysIndex: uint64(i), Online: !g.stats.offline[uint64(i)], CanOffline: boolp(i != 0)}
	}
	return out, nil
}

// cmdSetMemoryBlocks processes the list in order, as qemu-ga does: one
// result per entry.
func (g *Guest) cmdSetMemoryBlocks(a args) (any, *agentclient.Error) {
	items, _ := a["mem-blks"].([]args)
	out := make([]agentclient.MemoryBlockResponse, 0, len(items))
	for _, it := range items {
		idx := it.int("phys-index", -1)
		online, _ := it["online"].(bool)
		r := agentclient.MemoryBlockResponse{PhysIndex: uint64(idx), Response: "success"}
		switch {
		case idx < 0 || idx >= int64(g.memBlocks()):
			r.Response = "not-found"
		case idx == 0 && !online:
			r.Response = "operation-failed"
			ebusy := 16
			r.ErrorCode = &ebusy
		default:
			if g.stats.offline == nil {
				g.stats.offline = make(map[uint64]bool)
			}
			if online {
				delete(g.stats.offline, uint64(idx))
			} else {
				g.stats.offline[uint64(idx)] = true
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// addTraffic grows interface i's counters by the guest's network rates
// (guest-network-get-interfaces).
func (g *Guest) addTraffic(s *agentclient.InterfaceStats, i int) {
	t, phase := g.uptime()
	p := g.profile()
	ph := phase + float64(i)
	if !g.stats.bootAt.IsZero() {
		*s = agentclient.InterfaceStats{} // rebooted: the kernel counts from zero
	}
	since := t
	rx := uint64(p.rx.integral(since, ph))
	tx := uint64(p.tx.integral(since, ph))
	s.RxBytes += rx
	s.TxBytes += tx
	s.RxPackets += rx / 900
	s.TxPackets += tx / 900
}
