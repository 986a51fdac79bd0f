package agentclient

import "context"

// What the agent reports about the guest's own load, devices and routes:
// guest-get-cpustats and guest-get-diskstats (qemu-ga 7.1, Linux),
// guest-get-disks (5.2; SMART data since 7.1), guest-get-devices (5.2,
// Windows), guest-network-get-route (9.1 Linux, 11.0 Windows), guest-get-load
// (10.0) and the memory block commands (2.3, Linux). Field names are the
// schema's (qga/qapi-schema.json, QEMU 10). Every number here is the guest's
// word: the fleet range-checks what it derives from them.

// StatsAgent is what an agent offers beyond Agent for metrics and the
// guest's devices. *Client implements it over any transport (the libvirt
// agent through QemuAgentCommand); fleet wraps it with timeouts and its
// command log, and gates each call on the guest's capabilities.
type StatsAgent interface {
	CPUStats(ctx context.Context) ([]CPUStats, error)
	DiskStats(ctx context.Context) ([]DiskStatsInfo, error)
	Disks(ctx context.Context) ([]DiskInfo, error)
	Devices(ctx context.Context) ([]DeviceInfo, error)
	Routes(ctx context.Context) ([]Route, error)
	Load(ctx context.Context) (*Load, error)
	MemoryBlocks(ctx context.Context) ([]MemoryBlock, error)
	// SetMemoryBlocks onlines or offlines blocks; the reply has one result
	// per block asked, in order (an empty list when the agent failed as a
	// whole and changed nothing).
	SetMemoryBlocks(ctx context.Context, blocks []MemoryBlock) ([]MemoryBlockResponse, error)
	MemoryBlockInfo(ctx context.Context) (*MemoryBlockInfo, error)
}

var _ StatsAgent = (*Client)(nil)

// CPUStats is one CPU of guest-get-cpustats (a union on type; "linux" is the
// only type so far). The counters are milliseconds since boot, summed from
// /proc/stat's ticks; the optional ones are absent on kernels too old to
// count them. Guest and GuestNice are already included in User and Nice.
type CPUStats struct {
	Type      string  `json:"type"`
	CPU       int     `json:"cpu"`
	User      uint64  `json:"user"`
	Nice      uint64  `json:"nice"`
	System    uint64  `json:"system"`
	Idle      uint64  `json:"idle"`
	IOWait    *uint64 `json:"iowait,omitempty"`
	IRQ       *uint64 `json:"irq,omitempty"`
	SoftIRQ   *uint64 `json:"softirq,omitempty"`
	Steal     *uint64 `json:"steal,omitempty"`
	Guest     *uint64 `json:"guest,omitempty"`
	GuestNice *uint64 `json:"guestnice,omitempty"`
}

// DiskStatsInfo is one block device of guest-get-diskstats (every device in
// /proc/diskstats: whole disks, partitions, loop, dm and md devices).
type DiskStatsInfo struct {
	Name  string    `json:"name"`
	Major uint64    `json:"major"`
	Minor uint64    `json:"minor"`
	Stats DiskStats `json:"stats"`
}

// DiskStats are one device's counters since boot; every member is optional
// in the schema. Sectors are 512 bytes whatever the device's own sector
// size; ticks are milliseconds.
type DiskStats struct {
	ReadSectors    *uint64 `json:"read-sectors,omitempty"`
	ReadIOs        *uint64 `json:"read-ios,omitempty"`
	ReadMerges     *uint64 `json:"read-merges,omitempty"`
	WriteSectors   *uint64 `json:"write-sectors,omitempty"`
	WriteIOs       *uint64 `json:"write-ios,omitempty"`
	WriteMerges    *uint64 `json:"write-merges,omitempty"`
	DiscardSectors *uint64 `json:"discard-sectors,omitempty"`
	DiscardIOs     *uint64 `json:"discard-ios,omitempty"`
	DiscardMerges  *uint64 `json:"discard-merges,omitempty"`
	FlushIOs       *uint64 `json:"flush-ios,omitempty"`
	ReadTicks      *uint64 `json:"read-ticks,omitempty"`
	WriteTicks     *uint64 `json:"write-ticks,omitempty"`
	DiscardTicks   *uint64 `json:"discard-ticks,omitempty"`
	FlushTicks     *uint64 `json:"flush-ticks,omitempty"`
	IOsPgr         *uint64 `json:"ios-pgr,omitempty"`
	TotalTicks     *uint64 `json:"total-ticks,omitempty"`
	WeightTicks    *uint64 `json:"weight-ticks,omitempty"`
}

// DiskInfo is one entry of guest-get-disks: on Linux every root block device
// of non-zero size (and, as partition true, their partitions), on Windows
// the physical disks.
type DiskInfo struct {
	Name         string       `json:"name"`
	Partition    bool         `json:"partition"`
	Dependencies []string     `json:"dependencies,omitempty"` // Linux: the PVs of an LV, the disk under LUKS
	Address      *DiskAddress `json:"address,omitempty"`
	Alias        string       `json:"alias,omitempty"` // Linux: the device-mapper name
	Smart        *DiskSmart   `json:"smart,omitempty"` // since 7.1
}

// DiskSmart is a disk's SMART data, a union on the bus type: only "nvme"
// carries members (the NVMe SMART / Health log, 128-bit counters as lo/hi
// halves).
type DiskSmart struct {
	Type                      string `json:"type"`
	CriticalWarning           int    `json:"critical-warning"`
	Temperature               int    `json:"temperature"` // kelvin, as the log page has it
	AvailableSpare            int    `json:"available-spare"`
	AvailableSpareThreshold   int    `json:"available-spare-threshold"`
	PercentageUsed            int    `json:"percentage-used"`
	DataUnitsReadLo           uint64 `json:"data-units-read-lo"`
	DataUnitsReadHi           uint64 `json:"data-units-read-hi"`
	DataUnitsWrittenLo        uint64 `json:"data-units-written-lo"`
	DataUnitsWrittenHi        uint64 `json:"data-units-written-hi"`
	HostReadCommandsLo        uint64 `json:"host-read-commands-lo"`
	HostReadCommandsHi        uint64 `json:"host-read-commands-hi"`
	HostWriteCommandsLo       uint64 `json:"host-write-commands-lo"`
	HostWriteCommandsHi       uint64 `json:"host-write-commands-hi"`
	ControllerBusyTimeLo      uint64 `json:"controller-busy-time-lo"`
	ControllerBusyTimeHi      uint64 `json:"controller-busy-time-hi"`
	PowerCyclesLo             uint64 `json:"power-cycles-lo"`
	PowerCyclesHi             uint64 `json:"power-cycles-hi"`
	PowerOnHoursLo            uint64 `json:"power-on-hours-lo"`
	PowerOnHoursHi            uint64 `json:"power-on-hours-hi"`
	UnsafeShutdownsLo         uint64 `json:"unsafe-shutdowns-lo"`
	UnsafeShutdownsHi         uint64 `json:"unsafe-shutdowns-hi"`
	MediaErrorsLo             uint64 `json:"media-errors-lo"`
	MediaErrorsHi             uint64 `json:"media-errors-hi"`
	NumberOfErrorLogEntriesLo uint64 `json:"number-of-error-log-entries-lo"`
	NumberOfErrorLogEntriesHi uint64 `json:"number-of-error-log-entries-hi"`
}

// DeviceInfo is one device driver of guest-get-devices (Windows only).
type DeviceInfo struct {
	DriverName    string    `json:"driver-name"`
	DriverDate    *int64    `json:"driver-date,omitempty"` // nanoseconds since the epoch
	DriverVersion string    `json:"driver-version,omitempty"`
	ID            *DeviceID `json:"id,omitempty"`
}

// DeviceID identifies a device, a union on type: "pci" is the only type.
type DeviceID struct {
	Type     string `json:"type"`
	VendorID uint16 `json:"vendor-id"`
	DeviceID uint16 `json:"device-id"`
}

// Route is one entry of guest-network-get-route: the IPv4 members come from
// /proc/net/route, the IPv6 ones (prefix lengths and next hop as hex text)
// from /proc/net/ipv6_route.
type Route struct {
	Iface        string  `json:"iface"`
	Destination  string  `json:"destination"`
	Metric       int     `json:"metric"`
	Gateway      string  `json:"gateway,omitempty"`
	Mask         string  `json:"mask,omitempty"` // IPv4
	IRTT         *int    `json:"irtt,omitempty"` // IPv4, not Windows
	Flags        *uint64 `json:"flags,omitempty"`
	RefCnt       *int    `json:"refcnt,omitempty"`
	Use          *int    `json:"use,omitempty"`
	Window       *int    `json:"window,omitempty"` // IPv4
	MTU          *int    `json:"mtu,omitempty"`
	DesPrefixLen string  `json:"desprefixlen,omitempty"` // IPv6
	Source       string  `json:"source,omitempty"`       // IPv6
	SrcPrefixLen string  `json:"srcprefixlen,omitempty"` // IPv6
	NextHop      string  `json:"nexthop,omitempty"`      // IPv6
	Version      int     `json:"version"`                // 4 or 6
}

// Load is guest-get-load's reply: the load averages (getloadavg on POSIX;
// Windows agents emulate them from CPU use, counted from their first
// guest-get-load).
type Load struct {
	Load1  float64 `json:"load1m"`
	Load5  float64 `json:"load5m"`
	Load15 float64 `json:"load15m"`
}

// MemoryBlock is one memory block (guest-get-memory-blocks; the argument of
// guest-set-memory-blocks, where can-offline is ignored).
type MemoryBlock struct {
	PhysIndex  uint64 `json:"phys-index"`
	Online     bool   `json:"online"`
	CanOffline *bool  `json:"can-offline,omitempty"`
}

// MemoryBlockResponse is the outcome for one block of guest-set-memory-blocks.
type MemoryBlockResponse struct {
	PhysIndex uint64 `json:"phys-index"`
	// Response: "success", "not-found", "operation-not-supported" or
	// "operation-failed".
	Response  string `json:"response"`
	ErrorCode *int   `json:"error-code,omitempty"` // errno when it failed
}

// MemoryBlockInfo is guest-get-memory-block-info's reply: the size in bytes
// of one block, the unit of memory hotplug.
type MemoryBlockInfo struct {
	Size uint64 `json:"size"`
}

func (c *Client) CPUStats(ctx context.Context) ([]CPUStats, error) {
	var v []CPUStats
	return v, c.call(ctx, "guest-get-cpustats", nil, &v)
}

func (c *Client) DiskStats(ctx context.Context) ([]DiskStatsInfo, error) {
	var v []DiskStatsInfo
	return v, c.call(ctx, "guest-get-diskstats", nil, &v)
}

func (c *Client) Disks(ctx context.Context) ([]DiskInfo, error) {
	var v []DiskInfo
	return v, c.call(ctx, "guest-get-disks", nil, &v)
}

func (c *Client) Devices(ctx context.Context) ([]DeviceInfo, error) {
	var v []DeviceInfo
	return v, c.call(ctx, "guest-get-devices", nil, &v)
}

func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var v []Route
	return v, c.call(ctx, "guest-network-get-route", nil, &v)
}

func (c *Client) Load(ctx context.Context) (*Load, error) {
	var v Load
	if err := c.call(ctx, "guest-get-load", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func (c *Client) MemoryBlocks(ctx context.Context) ([]MemoryBlock, error) {
	var v []MemoryBlock
	return v, c.call(ctx, "guest-get-memory-blocks", nil, &v)
}

func (c *Client) SetMemoryBlocks(ctx context.Context, blocks []MemoryBlock) ([]MemoryBlockResponse, error) {
	// The agent ignores can-offline on input: send index and state only.
	type setBlock struct {
		PhysIndex uint64 `json:"phys-index"`
		Online    bool   `json:"online"`
	}
	req := make([]setBlock, len(blocks))
	for i, b := range blocks {
		req[i] = setBlock{b.PhysIndex, b.Online}
	}
	var v []MemoryBlockResponse
	return v, c.call(ctx, "guest-set-memory-blocks", map[string]any{"mem-blks": req}, &v)
}

func (c *Client) MemoryBlockInfo(ctx context.Context) (*MemoryBlockInfo, error) {
	var v MemoryBlockInfo
	if err := c.call(ctx, "guest-get-memory-block-info", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// decodeCPUStats and decodeDiskStats decode the metrics replies without
// reflection (a fleet asks them of every guest every few seconds); on
// anything but plain, well-typed JSON they report false and decodeReturn
// falls back to decodeLenient, the reference they are checked against.
func decodeCPUStats(b []byte) ([]CPUStats, bool) { return decodeCPUStatsInto(b, nil) }

func decodeDiskStats(b []byte) ([]DiskStatsInfo, bool) { return decodeDiskStatsInto(b, nil) }

// Scratch is an Out (Stream.Batch) for a metrics reply that is used at once
// and dropped, as a fleet sums guest-get-cpustats and guest-get-diskstats
// into its counters: the list is decoded into List's own storage, a name
// the reply repeats from the last decode is kept rather than copied, and
// the counters the pointers point to live in storage kept here. So a poll's
// sample allocates nothing once the list has its size; in exchange every
// decode overwrites the last one's List and everything its pointers point
// to: keep nothing of it. The values are exactly what a fresh decode gives.
// Its storage never outgrows List's capacity (a reply that fails the fast
// decoder takes the counters' storage with it), so a pool may bound what
// it keeps by cap(List). *Scratch[CPUStats] and *Scratch[DiskStatsInfo]
// are understood.
type Scratch[T any] struct {
	List []T
	vals [][]uint64 // counters of List[i]
	// Shape, when set, is the guest's memo of its last reply's layout
	// (as InterfaceList's): the storage is the pool's, the memo the
	// guest's.
	Shape *Shape
}

// counters is element i's storage for n counters.
func (sc *Scratch[T]) counters(i, n int) []uint64 {
	for len(sc.vals) <= i {
		sc.vals = append(sc.vals, make([]uint64, n))
	}
	return sc.vals[i]
}

// fit drops the counters' storage when it outgrew List's room, which the
// decode given need not have made: a Shape that missed, or a "return"
// member before the last, may have decoded a longer list into it. The
// counters List points to stay theirs; the next decode stores anew.
func (sc *Scratch[T]) fit() {
	if len(sc.vals) > cap(sc.List) {
		sc.vals = nil
	}
}

// scratchList is where a decode into sc (nil: a fresh list of room n)
// appends, and the last decode's elements.
func scratchList[T any](sc *Scratch[T], n int) (out, was []T) {
	if sc == nil || sc.List == nil {
		return make([]T, 0, n), nil
	}
	return sc.List[:0], sc.List
}

func decodeCPUStatsInto(b []byte, sc *Scratch[CPUStats]) ([]CPUStats, bool) {
	l := &lexer{b: b}
	if v, ok := l.cpuStatsInto(sc); ok && l.done() {
		return v, true
	}
	return nil, false
}

// cpuStatsInto is decodeCPUStatsInto at l, which it leaves just past the list.
func (l *lexer) cpuStatsInto(sc *Scratch[CPUStats]) ([]CPUStats, bool) {
	out, was := scratchList(sc, 8)
	ok := l.elements(func() bool {
		var c CPUStats
		var opt []uint64 // the optional counters
		if sc != nil {
			opt = sc.counters(len(out), 6)
		} else {
			opt = new([6]uint64)[:] // one allocation for them
		}
		var wasType string
		if len(out) < len(was) {
			wasType = was[len(out)].Type
		}
		ok := l.members(func(key []byte) (ok bool) {
			var p *uint64
			f := 0
			switch string(key) {
			case "type":
				c.Type, ok = l.strAs(wasType)
				return ok
			case "cpu":
				l.to(tgtCPUNum, len(out), 0)
				c.CPU, ok = l.int()
				return ok
			case "user":
				p = &c.User
				f = 0
			case "nice":
				p = &c.Nice
				f = 1
			case "system":
				p = &c.System
				f = 2
			case "idle":
				p = &c.Idle
				f = 3
			case "iowait":
				p, c.IOWait = &opt[0], &opt[0]
				f = 4
			case "irq":
				p, c.IRQ = &opt[1], &opt[1]
				f = 5
			case "softirq":
				p, c.SoftIRQ = &opt[2], &opt[2]
				f = 6
			case "steal":
				p, c.Steal = &opt[3], &opt[3]
				f = 7
			case "guest":
				p, c.Guest = &opt[4], &opt[4]
				f = 8
			case "guestnice":
				p, c.GuestNice = &opt[5], &opt[5]
				f = 9
			default:
				return l.other()
			}
			l.to(tgtCPUCtr, len(out), f)
			*p, ok = l.uint64()
			return ok
		})
		out = append(out, c)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true
}

func decodeDiskStatsInto(b []byte, sc *Scratch[DiskStatsInfo]) ([]DiskStatsInfo, bool) {
	l := &lexer{b: b}
	if v, ok := l.diskStatsInto(sc); ok && l.done() {
		return v, true
	}
	return nil, false
}

// diskStatsInto is decodeDiskStatsInto at l, which it leaves just past the list.
func (l *lexer) diskStatsInto(sc *Scratch[DiskStatsInfo]) ([]DiskStatsInfo, bool) {
	out, was := scratchList(sc, 8)
	ok := l.elements(func() bool {
		var d DiskStatsInfo
		var wasName string
		if len(out) < len(was) {
			wasName = was[len(out)].Name
		}
		ok := l.members(func(key []byte) (ok bool) {
			switch string(key) {
			case "name":
				d.Name, ok = l.strAs(wasName)
			case "major":
				l.to(tgtDiskMajor, len(out), 0)
				d.Major, ok = l.uint64()
			case "minor":
				l.to(tgtDiskMinor, len(out), 0)
				d.Minor, ok = l.uint64()
			case "stats":
				var vals []uint64
				if sc != nil {
					vals = sc.counters(len(out), 17)
				}
				d.Stats, ok = l.diskStats(vals, len(out))
			default:
				ok = l.other()
			}
			return ok
		})
		out = append(out, d)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// diskStats decodes GuestDiskStats with its counters in vals (17 of them),
// or in one allocation when vals is nil.
func (l *lexer) diskStats(vals []uint64, dev int) (DiskStats, bool) {
	var s DiskStats
	if vals == nil {
		vals = new([17]uint64)[:]
	}
	ok := l.members(func(key []byte) (ok bool) {
		i, p := diskStatField(&s, key)
		if p == nil {
			return l.other()
		}
		l.to(tgtDiskCtr, dev, i)
		vals[i], ok = l.uint64()
		*p = &vals[i]
		return ok
	})
	return s, ok
}

// diskStatField is the member key of s, and its index in GuestDiskStats'
// order; nil for a key it does not have. A switch: a list searched in
// order cost some 150 comparisons per device.
func diskStatField(s *DiskStats, key []byte) (int, **uint64) {
	switch string(key) {
	case "read-sectors":
		return 0, &s.ReadSectors
	case "read-ios":
		return 1, &s.ReadIOs
	case "read-merges":
		return 2, &s.ReadMerges
	case "write-sectors":
		return 3, &s.WriteSectors
	case "write-ios":
		return 4, &s.WriteIOs
	case "write-merges":
		return 5, &s.WriteMerges
	case "discard-sectors":
		return 6, &s.DiscardSectors
	case "discard-ios":
		return 7, &s.DiscardIOs
	case "discard-merges":
		return 8, &s.DiscardMerges
	case "flush-ios":
		return 9, &s.FlushIOs
	case "read-ticks":
		return 10, &s.ReadTicks
	case "write-ticks":
		return 11, &s.WriteTicks
	case "discard-ticks":
		return 12, &s.DiscardTicks
	case "flush-ticks":
		return 13, &s.FlushTicks
	case "ios-pgr":
		return 14, &s.IOsPgr
	case "total-ticks":
		return 15, &s.TotalTicks
	case "weight-ticks":
		return 16, &s.WeightTicks
	}
	return 0, nil
}
