package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// simStatusGuest is guest i as one poll of `guestdeck sim` leaves it: what
// status --json prints at 10,000 guests, element by element.
func simStatusGuest(i int) *fleet.Guest {
	used, total := uint64(2<<30), uint64(10<<30)
	mac := fmt.Sprintf("52:54:00:00:%02x:%02x", i>>8&0xff, i&0xff)
	return &fleet.Guest{
		Target:       fleet.Target{Name: fmt.Sprintf("sim-%04d", i), Address: fmt.Sprintf("unix:/tmp/scpu.abcd/s/sim-%04d.sock", i), Tags: []string{"sim"}},
		State:        fleet.Ready,
		AgentVersion: "7.2.22",
		Hostname:     fmt.Sprintf("sim-%04d", i),
		LastLive:     time.Unix(1700000000, 0),
		OS:           &agentclient.OSInfo{ID: "debian", Name: "Debian GNU/Linux", PrettyName: "Debian GNU/Linux 12 (bookworm)", KernelRelease: "6.1.0-28-amd64"},
		VCPUs:        []agentclient.VCPU{{LogicalID: 0, Online: true}, {LogicalID: 1, Online: true}},
		Interfaces: []agentclient.Interface{
			{Name: "lo", HardwareAddress: "00:00:00:00:00:00", IPAddresses: []agentclient.IPAddress{
				{Address: "127.0.0.1", Type: "ipv4", Prefix: 8}, {Address: "::1", Type: "ipv6", Prefix: 128}}},
			{Name: "eth0", HardwareAddress: mac, IPAddresses: []agentclient.IPAddress{
				{Address: fmt.Sprintf("192.0.2.%d", i%250), Type: "ipv4", Prefix: 24},
				{Address: fmt.Sprintf("2001:db8:0:1:5054:ff:fe00:%x", i), Type: "ipv6", Prefix: 64},
				{Address: fmt.Sprintf("fe80::5054:ff:fe00:%x", i), Type: "ipv6", Prefix: 64}}},
		},
		SkewKnown:   true,
		Skew:        -2192 * time.Microsecond,
		RTT:         4642 * time.Microsecond,
		Timezone:    &agentclient.Timezone{Zone: "UTC"},
		Users:       []agentclient.User{{User: "user", LoginTime: 1767323045.5}},
		Filesystems: []agentclient.Filesystem{{Name: "vda1", Mountpoint: "/", Type: "ext4", UsedBytes: &used, TotalBytes: &total}},
		Metrics: fleet.Metrics{
			Disks: []agentclient.DiskInfo{{Name: "/dev/vda"}, {Name: "/dev/vda1", Partition: true, Dependencies: []string{"/dev/vda"}}},
			Note:  "one poll: no CPU or disk rates (their counters need a second sample); agent 7.2.22 lacks guest-get-load (qemu-ga 10.0+): no load",
		},
	}
}

// BenchmarkEncodeChunk encodes one chunk of status --json (jsonChunk
// guests as the simulator's look after a poll): the output's share of
// status's CPU, a fortieth of it at 10,000 guests.
func BenchmarkEncodeChunk(b *testing.B) {
	gs := make([]*fleet.Guest, jsonChunk)
	for i := range gs {
		gs[i] = simStatusGuest(i + 1)
	}
	c := &cli{}
	elem := func(i int) any {
		sj := toStatusJSON(gs[i])
		sj.OrphanFreeze = c.orphanOf(gs[i])
		return sj
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := encodeChunk(0, len(gs), len(gs), elem)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
}
