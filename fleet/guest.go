// Package fleet keeps one live agent session per guest, polls what the
// dashboard shows, runs bulk actions across many guests, and discovers guests
// on libvirt hosts. Both the dashboard and the command line stand on it.
package fleet

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Target is one guest the fleet knows before any connection is made.
type Target struct {
	Name string
	// Host is the libvirt host the guest was discovered on, "" for a guest
	// reached directly.
	Host string
	// Address is "unix:/path", "tcp:host:port", "vsock:cid:port", or
	// "libvirt:HOST/DOMAIN" for a guest reached through libvirt.
	Address string
	Tags    []string
	// UUID is a libvirt domain's UUID (8-4-4-4-12 lowercase hex, as virsh
	// prints it), set by discovery; "" for a guest reached directly, which
	// has none guestdeck could trust. A selector may name it.
	UUID string
	// Exclusive keeps the agent's connection open between polls: for
	// guests guestdeck is the only client of (channel.go). By default it
	// connects per use and lets go.
	Exclusive bool
	// hostURI is the libvirt host's URI, set by discovery: with the
	// domain it identifies the guest in the ledger (targetKey).
	hostURI string
}

// State is a guest session's state as the dashboard shows it.
type State string

const (
	Connecting   State = "connecting"    // dialing or syncing
	Ready        State = "ready"         // answering
	Silent       State = "silent"        // channel up, the agent never answers
	Held         State = "held"          // another client holds the agent's channel
	Unreachable  State = "unreachable"   // cannot connect
	Frozen       State = "frozen"        // answering, filesystems frozen
	ShuttingDown State = "shutting-down" // shutdown accepted, waiting for it to go
	// Suspended: guestdeck suspended it (the ledger remembers, across
	// processes) or its libvirt host reports it pmsuspended; it stays so
	// until it answers again.
	Suspended State = "suspended"
	Gone      State = "gone" // shut down, socket gone
	// Paused, Stopped, Crashed: the guest's libvirt domain is paused,
	// shut off (defined, not running) or crashed: libvirt says so (Domain).
	Paused  State = "paused"
	Stopped State = "stopped"
	Crashed State = "crashed"
)

// States lists every state in display order.
var States = []State{Ready, Frozen, Connecting, Silent, Held, Unreachable, ShuttingDown, Suspended, Paused, Stopped, Crashed, Gone}

// LogEntry is one request and its reply (or error) in a guest's command log.
type LogEntry struct {
	At       time.Time
	Command  string
	Request  string // arguments as JSON, truncated
	Reply    string // return value or error text, truncated
	Err      bool
	Duration time.Duration
}

// Guest is an immutable snapshot of one guest. The poller replaces the
// pointer on every change; readers never see a Guest mutate.
type Guest struct {
	Target

	State State
	Err   string // last error text, "" when healthy
	// Cause is the error Err says in words, for its class (errors.Is and
	// errors.As: silent, timed out, refused, reply too large, ...), so that
	// a screen can give a short form without reading it out of the text;
	// several joined when a poll had several faults (errors.Join). nil when
	// Err is only words (libvirt's reason for a domain's state) or empty.
	Cause error
	Since time.Time // when State was entered
	// DomainState is libvirt's own view of the guest's machine ("" when not
	// known or not a libvirt guest). While it is not running it decides
	// State (paused, suspended, shutting down, stopped, crashed; booting
	// shows as connecting); DomainReason says why, in libvirt's words.
	DomainState  DomainState
	DomainReason string

	AgentVersion string
	Commands     []agentclient.CommandInfo // capabilities from guest-info
	OS           *agentclient.OSInfo
	Hostname     string
	Timezone     *agentclient.Timezone
	Users        []agentclient.User
	Filesystems  []agentclient.Filesystem
	Interfaces   []agentclient.Interface
	VCPUs        []agentclient.VCPU
	Freeze       agentclient.FreezeStatus
	// Metrics is the newest metrics sample (metrics.go); zero before one.
	Metrics Metrics
	// HostStats is what its libvirt host sees of it (hoststats.go); nil
	// for a guest not reached through libvirt, or before its host's first
	// stats call (most guests: 200 bytes a Guest saved). Never modified
	// once published, like the rest.
	HostStats *HostStats

	// ThawAt is the watchdog's automatic-thaw deadline while FrozenByUs.
	ThawAt time.Time
	// FrozenBy is another guestdeck process's freeze of this guest, from
	// the ledger: one still running, or one that is gone and left the
	// guest frozen (Orphan). nil when the ledger records none.
	FrozenBy *FreezeRecord

	// Skew is guest clock minus host clock, corrected by half the round
	// trip (known when SkewKnown).
	Skew        time.Duration
	SkewHistory Recent // oldest first, as long as RTTHistory at most

	RTT        time.Duration // last round trip
	RTTHistory Recent        // oldest first, short (the last 16)

	// The flags and counters share words: a Guest is copied at every
	// change, 888 bytes, an allocation of 896 with the runtime's 8-byte
	// header (1,152 before; 889 would take 1,024).
	FrozenByUs bool // this process froze the guest (ThawAt)
	SkewKnown  bool
	// CapsFrozen: Commands was read while the guest was frozen, when the
	// agent lists nearly every command disabled; the first poll that
	// finds it thawed reads them again.
	CapsFrozen bool

	LastLive time.Time // last completed live refresh
	LastSlow time.Time // last completed slow refresh
	Late     int32     // refreshes that completed after their slot
	Missed   int32     // refreshes that failed

	Log Log // newest first, bounded (LogSize)

	Version uint64 // increases on every change to this guest
}

// Stale reports whether the agent's values (vCPUs, skew, freeze, RTT,
// interfaces, ...) are from an earlier answer: the guest does not answer
// now, so they are as of LastLive.
func (g *Guest) Stale() bool {
	if g.State == Ready || g.State == Frozen {
		return false
	}
	return !g.LastLive.IsZero()
}

// Capability reports whether the guest's agent has command name and whether
// it is enabled. Before guest-info has answered, everything is assumed present.
func (g *Guest) Capability(name string) (present, enabled bool) {
	if len(g.Commands) == 0 {
		return true, true
	}
	for _, c := range g.Commands {
		if c.Name == name {
			return true, c.Enabled
		}
	}
	return false, false
}

// Health sums up how polling is going across the fleet.
type Health struct {
	Late    int // guests whose last live refresh is overdue
	Missed  int // failed refreshes since start, summed over guests
	Polling int // guests with a live session
}

// FreezeRecord is a freeze the ledger holds for a guest, written by
// another guestdeck process.
type FreezeRecord struct {
	PID   int
	Who   string    // "run --hold", "run --yes freeze", "dashboard"
	Since time.Time // when it was frozen
	Until time.Time // the thaw it promised; zero when none was promised
	// Orphan: the process that froze it is no longer running, so nothing
	// will thaw the guest unless someone does.
	Orphan bool
	// Config is the fleet file that process used ("" the default).
	Config string
}

// Notice is one thing the fleet did on its own or that an operator must
// know about: each attempt of a thaw it owes, an orphaned freeze it thawed,
// a guest left frozen. The newest are kept in Snapshot.Notices.
type Notice struct {
	Seq   uint64 // increases by one per notice, fleet-wide
	At    time.Time
	Guest string
	Text  string
	Err   bool // a failure, or a guest left frozen
}

// Snapshot is the whole fleet at one moment: guests sorted by name.
type Snapshot struct {
	Guests  []*Guest
	Counts  map[State]int
	Health  Health
	Version uint64
	At      time.Time
	// Notices are the newest notices (at most MaxNotices), oldest first.
	Notices []Notice
	// Sources are the discovery sources' (libvirt hosts') states, by name.
	Sources []SourceState
}

// guestShares shares what many guests report alike between their Guests
// (a fleet of clones reports one OS, timezone and vCPU list, and lists the
// same disks): one copy instead of one per guest, about 900 bytes a guest.
// Shared values are never modified, like every published one. The values are the guests': only small ones
// are shared, and a table that fills up is emptied (a guest sending ever
// new ones costs the sharing, not memory).
type guestShares struct {
	mu    sync.Mutex
	os    map[agentclient.OSInfo]*agentclient.OSInfo
	tz    map[agentclient.Timezone]*agentclient.Timezone
	vcpus map[string][]agentclient.VCPU
	// disks are disk lists (guest-get-disks) and the disk addresses of
	// filesystems (guest-get-fsinfo), by their spelling (diskKey):
	// clones of one image list the same disks at the same addresses.
	disks map[string]any
}

// Bounds of guestShares: entries per table, the bytes of one OS info's
// text, the vCPUs of one list, the bytes of a disk list's spelling.
const (
	maxShared      = 256
	maxSharedOS    = 1024
	maxSharedVCPUs = 64
	maxSharedDisks = 1024
)

// osInfo is the fleet's copy of an OS info equal to v.
func (t *guestShares) osInfo(v *agentclient.OSInfo) *agentclient.OSInfo {
	if v == nil {
		return nil
	}
	n := len(v.KernelRelease) + len(v.KernelVersion) + len(v.Machine) + len(v.ID) + len(v.Name) +
		len(v.PrettyName) + len(v.Version) + len(v.VersionID) + len(v.Variant) + len(v.VariantID)
	if n > maxSharedOS {
		return v
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.os[*v]; ok {
		return w
	}
	if t.os == nil || len(t.os) >= maxShared {
		t.os = make(map[agentclient.OSInfo]*agentclient.OSInfo)
	}
	t.os[*v] = v
	return v
}

// timezone is the fleet's copy of a timezone equal to v.
func (t *guestShares) timezone(v *agentclient.Timezone) *agentclient.Timezone {
	if v == nil || len(v.Zone) > maxSharedOS {
		return v
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.tz[*v]; ok {
		return w
	}
	if t.tz == nil || len(t.tz) >= maxShared {
		t.tz = make(map[agentclient.Timezone]*agentclient.Timezone)
	}
	t.tz[*v] = v
	return v
}

// vcpuList is the fleet's copy of a vCPU list equal to v.
func (t *guestShares) vcpuList(v []agentclient.VCPU) []agentclient.VCPU {
	if len(v) == 0 || len(v) > maxSharedVCPUs {
		return v
	}
	var buf [maxSharedVCPUs * (binary.MaxVarintLen64 + 2)]byte
	key := buf[:0]
	for _, c := range v {
		co := byte(2) // can-offline absent
		if c.CanOffline != nil && *c.CanOffline {
			co = 1
		} else if c.CanOffline != nil {
			co = 0
		}
		on := byte(0)
		if c.Online {
			on = 1
		}
		key = binary.AppendVarint(key, int64(c.LogicalID))
		key = append(key, on, co)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.vcpus[string(key)]; ok {
		return w
	}
	if t.vcpus == nil || len(t.vcpus) >= maxShared {
		t.vcpus = make(map[string][]agentclient.VCPU)
	}
	t.vcpus[string(key)] = v
	return v
}

// diskList is the fleet's copy of a disk list equal to v. A disk with
// SMART data (NVMe) is not shared: its counters change at every refresh.
func (t *guestShares) diskList(v []agentclient.DiskInfo) []agentclient.DiskInfo {
	if len(v) == 0 {
		return v
	}
	var buf [maxSharedDisks]byte
	key := append(buf[:0], 'l')
	for _, d := range v {
		if d.Smart != nil {
			return v
		}
		key = appendKeyString(key, d.Name)
		key = appendKeyBool(key, d.Partition)
		key = binary.AppendUvarint(key, uint64(len(d.Dependencies)))
		for _, dep := range d.Dependencies {
			key = appendKeyString(key, dep)
		}
		key = appendKeyBool(key, d.Address != nil)
		if d.Address != nil {
			key = appendDiskAddress(key, d.Address)
		}
		key = appendKeyString(key, d.Alias)
		if len(key) > maxSharedDisks {
			return v
		}
	}
	return share(t, key, v)
}

// diskAddresses is the fleet's copy of a filesystem's disk addresses
// equal to v.
func (t *guestShares) diskAddresses(v []agentclient.DiskAddress) []agentclient.DiskAddress {
	if len(v) == 0 {
		return v
	}
	var buf [maxSharedDisks]byte
	key := append(buf[:0], 'a')
	for i := range v {
		key = appendDiskAddress(key, &v[i])
		if len(key) > maxSharedDisks {
			return v
		}
	}
	return share(t, key, v)
}

// share is the table's value for key, which becomes v when there is none
// (the first letter of key says the value's type).
func share[T any](t *guestShares, key []byte, v []T) []T {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.disks[string(key)].([]T); ok {
		return w
	}
	if t.disks == nil || len(t.disks) >= maxShared {
		t.disks = make(map[string]any)
	}
	t.disks[string(key)] = v
	return v
}

func appendDiskAddress(b []byte, a *agentclient.DiskAddress) []byte {
	for _, n := range [...]int{a.PCIController.Domain, a.PCIController.Bus, a.PCIController.Slot, a.PCIController.Function, a.Bus, a.Target, a.Unit} {
		b = binary.AppendVarint(b, int64(n))
	}
	b = appendKeyString(b, a.BusType)
	b = appendKeyString(b, a.Serial)
	return appendKeyString(b, a.Dev)
}

// appendKeyString spells s unambiguously: its length, then its bytes.
func appendKeyString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendKeyBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
