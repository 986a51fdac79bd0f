package sim

import (
	"net/netip"
	"testing"
)

func TestAddresses(t *testing.T) {
	tests := []struct {
		i                      int
		mac, v4, v6, linkLocal string
	}{
		{0, "52:54:00:00:00:01", "192.0.2.10", "2001:db8:0:1:5054:ff:fe00:1", "fe80::5054:ff:fe00:1"},
		{239, "52:54:00:00:00:f0", "192.0.2.249", "2001:db8:0:1:5054:ff:fe00:f0", "fe80::5054:ff:fe00:f0"},
		{240, "52:54:00:00:00:f1", "198.51.100.10", "2001:db8:0:1:5054:ff:fe00:f1", "fe80::5054:ff:fe00:f1"},
		{480, "52:54:00:00:01:e1", "203.0.113.10", "2001:db8:0:1:5054:ff:fe00:1e1", "fe80::5054:ff:fe00:1e1"},
		{DistinctIPv4, "52:54:00:00:02:d1", "192.0.2.10", "2001:db8:0:1:5054:ff:fe00:2d1", "fe80::5054:ff:fe00:2d1"},
		{65535, "52:54:00:01:00:00", "192.0.2.25", "2001:db8:0:1:5054:ff:fe01:0", "fe80::5054:ff:fe01:0"},
	}
	for _, tt := range tests {
		mac, v4, v6, ll := Addresses(tt.i)
		if mac != tt.mac || v4 != tt.v4 || v6 != tt.v6 || ll != tt.linkLocal {
			t.Errorf("Addresses(%d) = %s %s %s %s, want %s %s %s %s", tt.i, mac, v4, v6, ll, tt.mac, tt.v4, tt.v6, tt.linkLocal)
		}
		for _, a := range []string{v4, v6, ll} {
			if p := netip.MustParseAddr(a); p.String() != a {
				t.Errorf("%s is not canonical (%s)", a, p)
			}
		}
	}
}

// TestNumberKeepsTheRest: Number replaces the first non-loopback
// interface's addresses and MAC only, on a copy: the loopback stays, and the
// Config it came from (DefaultConfig's slices) is not changed.
func TestNumberKeepsTheRest(t *testing.T) {
	for _, base := range []Config{DefaultConfig("a"), WindowsConfig("w")} {
		c := base
		c.Number(3)
		var eth, lo int = -1, -1
		for n, ifc := range c.Interfaces {
			if isLoopback(ifc) {
				lo = n
			} else if eth < 0 {
				eth = n
			}
		}
		if eth < 0 || lo < 0 || len(c.Interfaces) != len(base.Interfaces) {
			t.Fatalf("%s: interfaces %+v", base.Name, c.Interfaces)
		}
		got := c.Interfaces[eth]
		if got.HardwareAddress != "52:54:00:00:00:04" || got.IPAddresses[0].Address != "192.0.2.13" || got.IPAddresses[1].Address != "2001:db8:0:1:5054:ff:fe00:4" {
			t.Errorf("%s: numbered %+v", base.Name, got)
		}
		if base.Interfaces[eth].HardwareAddress == got.HardwareAddress || base.Interfaces[eth].IPAddresses[0].Address == "192.0.2.13" {
			t.Errorf("%s: Number changed the config it was given", base.Name)
		}
		if c.Interfaces[lo].IPAddresses[0].Address != "127.0.0.1" {
			t.Errorf("%s: loopback changed: %+v", base.Name, c.Interfaces[lo])
		}
	}
}
