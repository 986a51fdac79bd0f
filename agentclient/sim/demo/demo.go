// Package demo serves guestdeck's built-in demo fleet: simulated guests
// (package sim) on unix sockets in every interesting condition, something
// to look at with no VM and no fleet file. It knows nothing of fleets: the
// command line turns its Guests into fleet targets.
package demo

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// Fleet is the demo's simulated guests. Every guest is a wire-level
// simulated agent on a unix socket, so the dashboard talks to it exactly as
// to a real one.
type Fleet struct {
	Guests []Guest
	Dir    string // holds the sockets
	guests []*sim.Guest
	ownDir bool
}

// Guest is one demo guest as a fleet target: its name, the host it is
// shown on, its agent's address ("unix:/path") and its tags.
type Guest struct {
	Name, Host, Address string
	Tags                []string
}

// Close stops every simulated guest and removes the sockets.
func (d *Fleet) Close() error {
	for _, g := range d.guests {
		g.Close()
	}
	if d.ownDir {
		return os.RemoveAll(d.Dir)
	}
	return nil
}

// demoOS are the operating systems the demo rotates through.
func demoOS() []agentclient.OSInfo {
	return []agentclient.OSInfo{
		{ID: "debian", Name: "Debian GNU/Linux", PrettyName: "Debian GNU/Linux 12 (bookworm)", Version: "12 (bookworm)", VersionID: "12", KernelRelease: "6.1.0-28-amd64", Machine: "x86_64"},
		{ID: "ubuntu", Name: "Ubuntu", PrettyName: "Ubuntu 24.04.1 LTS", Version: "24.04.1 LTS (Noble Numbat)", VersionID: "24.04", KernelRelease: "6.8.0-49-generic", Machine: "x86_64"},
		{ID: "rocky", Name: "Rocky Linux", PrettyName: "Rocky Linux 9.5 (Blue Onyx)", Version: "9.5 (Blue Onyx)", VersionID: "9.5", KernelRelease: "5.14.0-503.14.1.el9_5.x86_64", Machine: "x86_64"},
		{ID: "alpine", Name: "Alpine Linux", PrettyName: "Alpine Linux v3.20", VersionID: "3.20.3", KernelRelease: "6.6.58-0-virt", Machine: "x86_64"},
		{ID: "fedora", Name: "Fedora Linux", PrettyName: "Fedora Linux 41 (Server Edition)", Version: "41 (Server Edition)", VersionID: "41", KernelRelease: "6.11.4-301.fc41.x86_64", Machine: "x86_64"},
		{ID: "opensuse-leap", Name: "openSUSE Leap", PrettyName: "openSUSE Leap 15.6", VersionID: "15.6", KernelRelease: "6.4.0-150600.23.25-default", Machine: "x86_64"},
		{ID: "debian", Name: "Debian GNU/Linux", PrettyName: "Debian GNU/Linux 11 (bullseye)", Version: "11 (bullseye)", VersionID: "11", KernelRelease: "5.10.0-33-amd64", Machine: "x86_64"},
		{ID: "ubuntu", Name: "Ubuntu", PrettyName: "Ubuntu 22.04.5 LTS", Version: "22.04.5 LTS (Jammy Jellyfish)", VersionID: "22.04", KernelRelease: "5.15.0-126-generic", Machine: "aarch64"},
	}
}

type demoRole struct {
	role  string
	tags  []string
	vcpus int
}

// demoRoles name the guests: role, tags, vCPUs.
func demoRoles() []demoRole {
	return []demoRole{
		{"web", []string{"web", "prod"}, 2},
		{"api", []string{"api", "prod"}, 4},
		{"db", []string{"db", "prod"}, 8},
		{"cache", []string{"cache", "prod"}, 2},
		{"worker", []string{"batch"}, 4},
		{"ci", []string{"ci", "dev"}, 16},
		{"mon", []string{"monitoring"}, 1},
	}
}

// Size is how many guests Start serves.
const Size = 40

// Start serves the demo fleet: Size simulated guests on three hosts
// (hv-a, hv-b, hv-c), with varied OSes, vCPUs, interfaces and users, and a
// few guests in every interesting condition: one frozen, one silent (channel
// up, agent not answering), one with guest-exec disabled, one Windows guest,
// one with a large clock skew, one with many interfaces, one slow. dir holds
// the sockets; "" makes a short temporary directory that Close removes.
func Start(ctx context.Context, dir string) (*Fleet, error) {
	d := &Fleet{Dir: dir}
	if dir == "" {
		// Unix socket paths must stay under 108 bytes: a short dir in /tmp.
		tmp, err := os.MkdirTemp("/tmp", "gddemo")
		if err != nil {
			return nil, fmt.Errorf("demo fleet: %w", err)
		}
		d.Dir, d.ownDir = tmp, true
	}
	hosts := []string{"hv-a", "hv-b", "hv-c"}
	var frozen []string
	for i := range Size {
		cfg, special := demoGuest(i)
		host := hosts[i%len(hosts)]
		sock := filepath.Join(d.Dir, cfg.Name+".sock")
		l, err := sim.Listen(sock)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("demo fleet: %w", err)
		}
		g := sim.New(cfg)
		d.guests = append(d.guests, g)
		go g.Serve(l)
		switch special {
		case "frozen":
			frozen = append(frozen, "unix:"+sock)
		case "silent":
			g.SetSilent(true)
		case "slow":
			g.SetLatency(120 * time.Millisecond)
		}
		tags := append([]string{host}, cfg.Tags...)
		d.Guests = append(d.Guests, Guest{Name: cfg.Name, Host: host, Address: "unix:" + sock, Tags: tags})
	}
	// Freeze through the agent itself, as a backup tool would have: the
	// fleet sees a guest frozen by someone else.
	for _, addr := range frozen {
		if err := sim.Freeze(ctx, addr); err != nil {
			d.Close()
			return nil, fmt.Errorf("demo fleet: freezing %s: %w", addr, err)
		}
	}
	return d, nil
}

// demoGuest builds guest i of the demo and names its special condition, if any.
func demoGuest(i int) (sim.Config, string) {
	roles, oses := demoRoles(), demoOS()
	role := roles[i%len(roles)]
	name := fmt.Sprintf("%s-%02d", role.role, i/len(roles)+1)
	var special string
	var cfg sim.Config
	switch i {
	case 7: // a Windows domain controller
		name = "win-dc-01"
		cfg = sim.WindowsConfig(name)
		cfg.Tags = []string{"windows", "prod"}
		cfg.Number(i)
		cfg.Users = append(cfg.Users, agentclient.User{User: "svc-backup", Domain: "CORP", LoginTime: float64(time.Now().Add(-3 * time.Hour).Unix())})
		return cfg, ""
	case 19: // a second Windows guest
		name = "win-rdp-02"
		cfg = sim.WindowsConfig(name)
		cfg.Tags = []string{"windows", "dev"}
		cfg.Number(i)
		return cfg, ""
	}
	cfg = sim.DefaultConfig(name)
	cfg.Tags = slices.Clone(role.tags)
	cfg.OS = oses[i%len(oses)]
	cfg.Files = demoFiles(cfg)
	cfg.VCPUs = make([]agentclient.VCPU, role.vcpus)
	for v := range cfg.VCPUs {
		cfg.VCPUs[v] = agentclient.VCPU{LogicalID: v, Online: true}
	}
	mac := func(n int) string { return fmt.Sprintf("52:54:00:%02x:%02x:%02x", i, n, (i*7+n)&0xff) }
	// eth0: addresses of its own (sim.Number), traffic after its number.
	cfg.Number(i)
	cfg.Interfaces[1].Statistics = &agentclient.InterfaceStats{RxBytes: uint64(1e6 * (i + 1)), RxPackets: uint64(1e3 * (i + 1)), TxBytes: uint64(4e5 * (i + 1)), TxPackets: uint64(7e2 * (i + 1))}
	if i%5 == 0 {
		cfg.Users = append(cfg.Users, agentclient.User{User: "ops", LoginTime: float64(time.Now().Add(-time.Duration(i) * time.Hour).Unix())})
	}
	if i%11 == 3 {
		cfg.Users = nil // nobody logged in
	}
	switch i {
	case 2: // a database caught mid-backup
		special = "frozen"
	case 5: // booting: the channel is up, the agent not yet
		special = "silent"
	case 9: // locked down: no guest-exec
		cfg.NoExec = true
		cfg.Tags = append(cfg.Tags, "hardened")
	case 12: // a guest whose clock drifted
		cfg.ClockOffset = 47*time.Second + 300*time.Millisecond
		cfg.ClockDrift = 0.0005
	case 14: // a router with many interfaces
		cfg.Interfaces = append(cfg.Interfaces,
			demoIface("eth1", mac(1), "172.16.0.1", 16),
			demoIface("eth2", mac(2), "172.17.0.1", 16),
			demoIface("bond0", mac(3), "198.51.100.1", 24),
			demoIface("br0", mac(4), "203.0.113.1", 24),
			demoIface("wg0", "", "10.99.0.1", 24),
			demoIface("vlan100", mac(5), "10.100.0.1", 24),
		)
		cfg.Tags = append(cfg.Tags, "network")
	case 17: // a Kubernetes node: container bridges and veths
		cfg.Interfaces = append(cfg.Interfaces,
			demoIface("cni0", mac(6), "10.244.1.1", 24),
			demoIface("flannel.1", mac(7), "10.244.1.0", 32),
			demoIface("veth3f2a1b", mac(8), "", 0),
			demoIface("veth9c0d4e", mac(9), "", 0),
		)
		cfg.Tags = append(cfg.Tags, "k8s")
	case 23: // guest admin blocked freeze and set-time
		cfg.Disabled = []string{"guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list", "guest-set-time"}
	case 26: // a clock running behind
		cfg.ClockOffset = -3200 * time.Millisecond
	case 29: // an overloaded guest answering slowly
		special = "slow"
	case 31: // an old agent
		cfg.AgentVersion = "4.2.1"
	case 10: // an overcommitted host steals a third of its CPU
		cfg.Workload = sim.WorkloadSteal
	case 20: // a root filesystem about to fill up
		used, total := uint64(10_600_000_000), uint64(10_737_418_240)
		cfg.Filesystems = slices.Clone(cfg.Filesystems)
		cfg.Filesystems[0].UsedBytes, cfg.Filesystems[0].TotalBytes = &used, &total
	case 33: // waiting on its disks
		cfg.Workload = sim.WorkloadIO
	case 36: // half its vCPUs taken offline
		for v := range cfg.VCPUs {
			cfg.VCPUs[v].Online = v < len(cfg.VCPUs)/2
		}
	}
	demoMetrics(i, role.role, &cfg)
	return cfg, special
}

// demoMetrics varies how busy guests are and what their agents report:
// databases, workers and CI busy, caches and monitoring idle, a quarter on
// a newer agent (guest-get-load, routes), databases on NVMe with SMART data.
func demoMetrics(i int, role string, cfg *sim.Config) {
	if cfg.Workload == "" {
		switch role {
		case "db", "worker", "ci":
			if i%2 == 0 {
				cfg.Workload = sim.WorkloadBusy
			}
		case "cache", "mon":
			cfg.Workload = sim.WorkloadIdle
		}
	}
	if i%4 == 1 && cfg.AgentVersion == "7.2.22" {
		cfg.AgentVersion = "10.0.2"
	}
	if role == "db" && len(cfg.Filesystems) == 1 {
		fs := cfg.Filesystems[0]
		fs.Name = "nvme0n1p1"
		fs.Disk = []agentclient.DiskAddress{{BusType: "nvme", PCIController: agentclient.PCIAddress{Slot: 5}, Dev: "/dev/nvme0n1p1", Serial: fmt.Sprintf("NVME%04d", i)}}
		cfg.Filesystems = []agentclient.Filesystem{fs}
	}
}

func demoIface(name, mac, ip string, prefix int) agentclient.Interface {
	ifc := agentclient.Interface{Name: name, HardwareAddress: mac}
	if ip != "" {
		ifc.IPAddresses = []agentclient.IPAddress{{Address: ip, Type: "ipv4", Prefix: prefix}}
	}
	return ifc
}

// demoFiles gives a guest the default file tree with /etc/os-release and
// /etc/hostname that agree with what its agent reports, so what the file
// browser shows matches the table.
func demoFiles(cfg sim.Config) map[string]sim.File {
	files := maps.Clone(cfg.Files)
	old := files["/etc/os-release"]
	var b strings.Builder
	for _, kv := range [][2]string{
		{"PRETTY_NAME", cfg.OS.PrettyName}, {"NAME", cfg.OS.Name}, {"VERSION_ID", cfg.OS.VersionID},
		{"VERSION", cfg.OS.Version}, {"ID", cfg.OS.ID}, {"VARIANT_ID", cfg.OS.VariantID},
	} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s=%q\n", kv[0], kv[1])
		}
	}
	old.Data = b.String()
	files["/etc/os-release"] = old
	files["/etc/hostname"] = sim.File{Data: cfg.Hostname + "\n", Mode: 0o644, ModTime: old.ModTime}
	return files
}
