package demo

import (
	"net/netip"
	"testing"
)

// TestDemoAddresses: no two demo guests share an address or a MAC, every
// address is written canonically (as qemu-ga's inet_ntop writes it), and each
// guest's first interface has documentation addresses only (RFC 5737, RFC
// 3849): the demo names no real network. Issue 14: both Windows guests had
// 192.0.2.20 and one IPv6 address was not canonical.
func TestDemoAddresses(t *testing.T) {
	docs := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("fe80::/64"),
	}
	owner := map[string]string{}
	for i := range Size {
		cfg, _ := demoGuest(i)
		first := true
		for _, ifc := range cfg.Interfaces {
			loopback := false
			for _, ip := range ifc.IPAddresses {
				a, err := netip.ParseAddr(ip.Address)
				if err != nil {
					t.Fatalf("%s %s: %q: %v", cfg.Name, ifc.Name, ip.Address, err)
				}
				if a.String() != ip.Address {
					t.Errorf("%s %s: %q is not canonical (%s)", cfg.Name, ifc.Name, ip.Address, a)
				}
				if a.IsLoopback() {
					loopback = true
					continue
				}
				if prev, ok := owner[ip.Address]; ok {
					t.Errorf("%s %s: %s already belongs to %s", cfg.Name, ifc.Name, ip.Address, prev)
				}
				owner[ip.Address] = cfg.Name
				inDocs := false
				for _, p := range docs {
					inDocs = inDocs || p.Contains(a)
				}
				if first && !inDocs {
					t.Errorf("%s %s: %s is not a documentation address", cfg.Name, ifc.Name, ip.Address)
				}
			}
			if loopback {
				continue
			}
			if ifc.HardwareAddress != "" {
				if prev, ok := owner[ifc.HardwareAddress]; ok {
					t.Errorf("%s %s: MAC %s already belongs to %s", cfg.Name, ifc.Name, ifc.HardwareAddress, prev)
				}
				owner[ifc.HardwareAddress] = cfg.Name
			}
			if first && len(ifc.IPAddresses) < 3 {
				t.Errorf("%s %s: want IPv4, global IPv6 and link-local, got %+v", cfg.Name, ifc.Name, ifc.IPAddresses)
			}
			first = false
		}
	}
}
