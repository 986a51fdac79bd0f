package sim

import (
	"io/fs"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Config describes one simulated guest. The zero value of a field means "the
// default" where a default exists; DefaultConfig fills in a plausible guest.
// A Config is read, never written, by the Guest, so many guests may share the
// slices and strings of one Config.
type Config struct {
	Name         string // guest name: socket and fleet-file name in a Farm
	Tags         []string
	Hostname     string
	AgentVersion string // guest-info version, default "7.2.22"
	OS           agentclient.OSInfo
	// Windows makes the guest behave like qemu-ga on Windows where the
	// protocol differs: there is no /bin/sh or coreutils (so the directory
	// listing fails) and paths are not slash-rooted.
	Windows     bool
	Timezone    agentclient.Timezone
	Users       []agentclient.User
	Interfaces  []agentclient.Interface
	VCPUs       []agentclient.VCPU // can-offline nil means "true except vCPU 0"
	Filesystems []agentclient.Filesystem
	// Files is the in-memory file tree, by absolute path. Parent directories
	// are implied. It is copied into the guest only when a file command or
	// guest-exec first needs it, so idle guests share it.
	Files map[string]File

	// Disabled commands answer "Command X has been disabled" (qemu-ga -b).
	Disabled []string
	// NoExec disables guest-exec and guest-exec-status, as many distributions do.
	NoExec bool
	// NoSuspend makes the suspend commands fail as unsupported.
	NoSuspend bool
	// Fail makes the named commands answer a GenericError with the given
	// description, the guest's own words (a broken or hostile guest).
	Fail map[string]string
	// ExtraCommands are more names guest-info lists as enabled commands,
	// as a patched or hostile agent might; calling them finds nothing.
	ExtraCommands []string

	// ClockOffset is the guest clock's offset from the host clock at start;
	// ClockDrift is how fast it runs off (0.001 = gains 1 ms per second).
	ClockOffset time.Duration
	ClockDrift  float64
	// RTCOffset is the hardware clock's offset from the host clock: where
	// guest-set-time without a time sets the system clock from.
	RTCOffset time.Duration

	// Workload is how busy the guest's CPU, disks and network are
	// (stats.go); the default is light use.
	Workload Workload

	// ExecDuration is how long a guest-exec'd process runs before
	// guest-exec-status reports it exited (0: at once).
	ExecDuration time.Duration
	// RebootDelay is how long the agent is silent after guest-shutdown
	// mode=reboot (default 2s).
	RebootDelay time.Duration
	// ShutdownDelay is how long the agent goes on answering after it
	// accepted guest-shutdown or a suspend, before the guest goes down
	// (0: at once): a guest stopping its services first, qemu-ga among
	// the last.
	ShutdownDelay time.Duration
}

// File is one node of the in-memory tree.
type File struct {
	Data    string
	Mode    fs.FileMode // permission bits plus fs.ModeDir for a directory; 0 means 0644 file
	ModTime time.Time   // zero: the guest's start time
	// Deny makes opening the file fail with "Permission denied", as for a
	// file the agent's user may not touch.
	Deny bool
}

// simEpoch is a fixed modification time for the default tree, so listings are
// reproducible.
var simEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func boolp(b bool) *bool    { return &b }
func u64p(v uint64) *uint64 { return &v }
func stats(rx, tx uint64) *agentclient.InterfaceStats {
	return &agentclient.InterfaceStats{RxBytes: rx * 1000, RxPackets: rx, TxBytes: tx * 1000, TxPackets: tx}
}

// defaultFiles is shared by every DefaultConfig: guests copy it lazily.
var defaultFiles = map[string]File{
	"/etc":                 {Mode: fs.ModeDir | 0o755, ModTime: simEpoch},
	"/etc/os-release":      {Data: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n", Mode: 0o644, ModTime: simEpoch},
	"/etc/shadow":          {Data: "root:*:19000:0:99999:7:::\n", Mode: 0o640, ModTime: simEpoch, Deny: true},
	"/home":                {Mode: fs.ModeDir | 0o755, ModTime: simEpoch},
	"/home/user":           {Mode: fs.ModeDir | 0o700, ModTime: simEpoch},
	"/home/user/.profile":  {Data: "# ~/.profile\nPATH=\"$HOME/bin:$PATH\"\n", Mode: 0o644, ModTime: simEpoch},
	"/home/user/notes.txt": {Data: "remember to patch the fleet\n", Mode: 0o644, ModTime: simEpoch},
	"/tmp":                 {Mode: fs.ModeDir | fs.ModeSticky | 0o777, ModTime: simEpoch},
	"/var":                 {Mode: fs.ModeDir | 0o755, ModTime: simEpoch},
	"/var/log":             {Mode: fs.ModeDir | 0o755, ModTime: simEpoch},
	"/var/log/syslog":      {Data: "Jan  2 03:04:05 guest systemd[1]: Started qemu-guest-agent.service.\n", Mode: 0o640, ModTime: simEpoch},
	"/bin":                 {Mode: fs.ModeDir | 0o755, ModTime: simEpoch},
	"/bin/sh":              {Data: "\x7fELF", Mode: 0o755, ModTime: simEpoch},
}

// DefaultConfig is a plausible Debian 12 guest named name: 2 vCPUs, lo and
// eth0, one ext4 root filesystem, a small file tree.
func DefaultConfig(name string) Config {
	return Config{
		Name:         name,
		Hostname:     name,
		AgentVersion: "7.2.22",
		OS: agentclient.OSInfo{
			KernelRelease: "6.1.0-28-amd64",
			KernelVersion: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)",
			Machine:       "x86_64",
			ID:            "debian",
			Name:          "Debian GNU/Linux",
			PrettyName:    "Debian GNU/Linux 12 (bookworm)",
			Version:       "12 (bookworm)",
			VersionID:     "12",
		},
		Timezone: agentclient.Timezone{Zone: "UTC", Offset: 0},
		Users:    []agentclient.User{{User: "user", LoginTime: float64(simEpoch.Unix()) + 0.5}},
		Interfaces: []agentclient.Interface{
			{Name: "lo", HardwareAddress: "00:00:00:00:00:00", IPAddresses: []agentclient.IPAddress{
				{Address: "127.0.0.1", Type: "ipv4", Prefix: 8}, {Address: "::1", Type: "ipv6", Prefix: 128},
			}, Statistics: stats(29, 29)},
			{Name: "eth0", HardwareAddress: "52:54:00:12:34:56", IPAddresses: []agentclient.IPAddress{
				{Address: "192.0.2.10", Type: "ipv4", Prefix: 24}, {Address: "fe80::5054:ff:fe12:3456", Type: "ipv6", Prefix: 64},
			}, Statistics: stats(3725, 2689)},
		},
		VCPUs: []agentclient.VCPU{{LogicalID: 0, Online: true}, {LogicalID: 1, Online: true}},
		Filesystems: []agentclient.Filesystem{{
			Name: "vda1", Mountpoint: "/", Type: "ext4",
			UsedBytes: u64p(2_147_483_648), TotalBytes: u64p(10_737_418_240),
			Disk: []agentclient.DiskAddress{{BusType: "virtio", PCIController: agentclient.PCIAddress{Slot: 4}, Dev: "/dev/vda1"}},
		}},
		Files: defaultFiles,
	}
}

// windowsFiles is the tree of WindowsConfig guests.
var windowsFiles = map[string]File{
	`C:\`:                {Mode: fs.ModeDir | 0o777, ModTime: simEpoch},
	`C:\Windows`:         {Mode: fs.ModeDir | 0o777, ModTime: simEpoch},
	`C:\Windows\win.ini`: {Data: "; for 16-bit app support\r\n[fonts]\r\n", Mode: 0o666, ModTime: simEpoch},
}

// WindowsConfig is a Windows-like guest: Windows Server 2022 OS info, users
// with a domain, drive-letter paths, no /bin/sh, VSS-style freeze of C:.
func WindowsConfig(name string) Config {
	return Config{
		Name:         name,
		Hostname:     name,
		AgentVersion: "107.0.1",
		Windows:      true,
		OS: agentclient.OSInfo{
			KernelRelease: "20348",
			KernelVersion: "10.0",
			Machine:       "x86_64",
			ID:            "mswindows",
			Name:          "Microsoft Windows",
			PrettyName:    "Windows Server 2022 Standard",
			Version:       "Microsoft Windows Server 2022",
			VersionID:     "2022",
			Variant:       "server",
			VariantID:     "server",
		},
		Timezone: agentclient.Timezone{Zone: "W. Europe Standard Time", Offset: 3600},
		Users:    []agentclient.User{{User: "Administrator", Domain: "WIN-SIM", LoginTime: float64(simEpoch.Unix())}},
		Interfaces: []agentclient.Interface{
			{Name: "Ethernet", HardwareAddress: "52:54:00:ab:cd:ef", IPAddresses: []agentclient.IPAddress{
				{Address: "192.0.2.20", Type: "ipv4", Prefix: 24},
			}, Statistics: stats(1000, 900)},
			{Name: "Loopback Pseudo-Interface 1", IPAddresses: []agentclient.IPAddress{
				{Address: "127.0.0.1", Type: "ipv4", Prefix: 8},
			}},
		},
		VCPUs: []agentclient.VCPU{{LogicalID: 0, Online: true, CanOffline: boolp(false)}, {LogicalID: 1, Online: true, CanOffline: boolp(false)}},
		Filesystems: []agentclient.Filesystem{{
			Name: `\\?\Volume{4e3b2a1c-0000-0000-0000-100000000000}\`, Mountpoint: `C:\`, Type: "NTFS",
			UsedBytes: u64p(20_000_000_000), TotalBytes: u64p(64_000_000_000),
			Disk: []agentclient.DiskAddress{{BusType: "sata", PCIController: agentclient.PCIAddress{Slot: 31, Function: 2}}},
		}},
		Files: windowsFiles,
		// qemu-ga for Windows blocks what it cannot do.
		Disabled: []string{"guest-suspend-hybrid", "guest-set-vcpus"},
	}
}

// Hostile is what HostileConfig appends to every string the guest reports:
// a window-title set (OSC 0), a clipboard write of "rm -rf ~" (OSC 52), a
// screen clear (CSI), an 8-bit CSI (U+009B), a right-to-left override and
// isolate, a zero-width joiner, a byte-order mark and DEL. Shown raw, any of
// it drives or deceives the operator's terminal.
const Hostile = "\x1b]0;OWNED\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\u009b31m\u202e\u2066\u200d\ufeff\x7f"

// HostileConfig is DefaultConfig(name) with Hostile in every string its
// agent reports: hostname, agent version, every OS field, timezone, users,
// interface names, MACs and addresses (one address is only Hostile text,
// one is valid), filesystems, a file name and its contents, an extra
// command name, and the error text of guest-fstrim.
func HostileConfig(name string) Config {
	const h = Hostile
	c := DefaultConfig(name)
	c.Hostname = "host" + h
	c.AgentVersion = "7.2.22" + h
	c.OS = agentclient.OSInfo{
		KernelRelease: "6.1" + h, KernelVersion: "#1" + h, Machine: "x86_64" + h, ID: "evil" + h,
		Name: "EvilOS" + h, PrettyName: "EvilOS 1" + h, Version: "1" + h, VersionID: "1" + h,
		Variant: "server" + h, VariantID: "server" + h,
	}
	c.Timezone = agentclient.Timezone{Zone: "UTC" + h, Offset: 0}
	c.Users = []agentclient.User{{User: "root" + h, Domain: "DOM" + h, LoginTime: float64(simEpoch.Unix())}}
	c.Interfaces = []agentclient.Interface{
		c.Interfaces[0], // lo
		{Name: "eth0" + h, HardwareAddress: "52:54:00:12:34:56" + h, IPAddresses: []agentclient.IPAddress{
			{Address: "192.0.2.66" + h, Type: "ipv4" + h, Prefix: 24},
			{Address: "192.0.2.77", Type: "ipv4", Prefix: 24},
		}, Statistics: stats(10, 10)},
	}
	c.Filesystems = []agentclient.Filesystem{{
		Name: "vda1" + h, Mountpoint: "/" + h, Type: "ext4" + h,
		UsedBytes: u64p(1 << 30), TotalBytes: u64p(4 << 30),
		Disk: []agentclient.DiskAddress{{BusType: "virtio" + h, Dev: "/dev/vda1" + h, Serial: "SER" + h}},
	}}
	c.Files = make(map[string]File, len(defaultFiles)+1)
	for p, f := range defaultFiles {
		c.Files[p] = f
	}
	c.Files["/tmp/evil"+h] = File{Data: "line one\n" + h + "\nline three\n", Mode: 0o644, ModTime: simEpoch}
	c.ExtraCommands = []string{"guest-evil" + h}
	c.Fail = map[string]string{"guest-fstrim": "trim failed" + h}
	return c
}
