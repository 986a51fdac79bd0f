package sim

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Number gives guest i (from 0) of a fleet of simulated guests addresses of
// its own on its first interface that is not loopback: a MAC, an IPv4
// address, a global IPv6 address and the link-local one the MAC implies.
// DefaultConfig and WindowsConfig give every guest the same ones, which a
// fleet of them must not show.
//
// The addresses come from the documentation ranges, so a demo never names a
// real network: IPv4 from 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24
// (RFC 5737; distinct for the first DistinctIPv4 guests, then repeating),
// IPv6 from 2001:db8::/32 (RFC 3849; distinct for 16 million guests, as the
// MACs are). Every address is written in canonical form (RFC 5952), as
// qemu-ga writes them (inet_ntop).
func (c *Config) Number(i int) {
	mac, v4, v6, ll := Addresses(i)
	for n, ifc := range c.Interfaces {
		if isLoopback(ifc) {
			continue
		}
		ifc.HardwareAddress = mac
		prefix4 := 24
		for _, ip := range ifc.IPAddresses {
			if ip.Type == "ipv4" {
				prefix4 = ip.Prefix
			}
		}
		ips := append([]agentclient.IPAddress{{Address: v4, Type: "ipv4", Prefix: prefix4}},
			agentclient.IPAddress{Address: v6, Type: "ipv6", Prefix: 64},
			agentclient.IPAddress{Address: ll, Type: "ipv6", Prefix: 64})
		ifc.IPAddresses = ips
		c.Interfaces = slices.Clone(c.Interfaces)
		c.Interfaces[n] = ifc
		return
	}
}

// DistinctIPv4 is how many guests Number gives IPv4 addresses of their own:
// 240 hosts (.10 to .249) in each of the three documentation networks.
const DistinctIPv4 = 3 * 240

// Addresses are guest i's addresses as Number sets them: its MAC
// (52:54:00, QEMU's prefix, then i+1), its IPv4 address, its global IPv6
// address (2001:db8:0:1::/64 with the MAC's interface identifier, as SLAAC
// makes it) and its link-local address (fe80::/64, the same identifier).
func Addresses(i int) (mac, ipv4, ipv6, linkLocal string) {
	n := uint32(i+1) & 0xffffff
	m := [6]byte{0x52, 0x54, 0x00, byte(n >> 16), byte(n >> 8), byte(n)}
	mac = fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
	nets := [3][3]byte{{192, 0, 2}, {198, 51, 100}, {203, 0, 113}}
	k := i % DistinctIPv4
	net := nets[k/240]
	ipv4 = netip.AddrFrom4([4]byte{net[0], net[1], net[2], byte(10 + k%240)}).String()
	// EUI-64: the MAC with ff:fe in the middle and the universal/local bit flipped.
	eui := [8]byte{m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]}
	global := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1}
	local := [16]byte{0xfe, 0x80}
	copy(global[8:], eui[:])
	copy(local[8:], eui[:])
	return mac, ipv4, netip.AddrFrom16(global).String(), netip.AddrFrom16(local).String()
}

func isLoopback(ifc agentclient.Interface) bool {
	for _, ip := range ifc.IPAddresses {
		if a, err := netip.ParseAddr(ip.Address); err == nil && a.IsLoopback() {
			return true
		}
	}
	return ifc.Name == "lo"
}
