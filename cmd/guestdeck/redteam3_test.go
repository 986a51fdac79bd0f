package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// status's table lines its columns up by display cells. A guest without
// os-release shows its kernel release as its OS, and the guest writes it:
// with combining marks (many runes, one cell) or wide characters (one
// rune, two cells) there, text/tabwriter, which counts runes, drew every
// column after OS off its header on that guest's row, and widened OS for
// all. Each row with no error ends where the header's ERROR begins.
func TestStatusTableAlignsByCells(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	kernels := []string{
		"6.1-e" + strings.Repeat("\u0301", 12) + "x", // 18 runes, 7 cells
		"6.1-日本語日本語",                                 // 10 runes, 16 cells
		"6.1.0-28-amd64",
	}
	farm, err := sim.ServeDir(dir, len(kernels), func(i int) sim.Config {
		c := sim.DefaultConfig(fmt.Sprintf("g%d", i))
		c.OS = agentclient.OSInfo{KernelRelease: kernels[i], Machine: "x86_64"}
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { f.Close() })
	for i, s := range farm.Sockets() {
		f.Add(fleet.Target{Name: fmt.Sprintf("g%d", i), Address: "unix:" + s})
	}
	f.RefreshOnce(context.Background(), nil)
	gs := f.Snapshot().Guests
	for _, g := range gs {
		if g.State != fleet.Ready || g.Err != "" {
			t.Fatalf("%s: %s %q", g.Name, g.State, g.Err)
		}
	}
	var b strings.Builder
	writeStatusTable(&b, gs)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	head := lines[0]
	want := present.Width(head[:strings.Index(head, "ERROR")])
	for _, l := range lines[1:] {
		if got := present.Width(l); got != want {
			t.Errorf("row is %d cells up to its empty ERROR, the header's ERROR is at %d:\n%s\n%s", got, want, head, l)
		}
	}
	if !strings.Contains(b.String(), "kernel 6.1-日本語日本語") {
		t.Errorf("the OS column lacks the kernel release:\n%s", b.String())
	}
}

// status --interfaces (domifaddr) prints the guest's interface names and
// MACs in columns: a name with combining marks or wide characters keeps
// the addresses under their header.
func TestInterfaceTableAlignsByCells(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		c := sim.DefaultConfig("g")
		c.Interfaces = append(c.Interfaces,
			agentclient.Interface{Name: "eth-e" + strings.Repeat("\u0301", 12), HardwareAddress: "52:54:00:00:00:01",
				IPAddresses: []agentclient.IPAddress{{Address: "192.0.2.21", Type: "ipv4", Prefix: 24}}},
			agentclient.Interface{Name: "網路介面卡", HardwareAddress: "52:54:00:00:00:02" + strings.Repeat("\u0301", 5),
				IPAddresses: []agentclient.IPAddress{{Address: "192.0.2.22", Type: "ipv4", Prefix: 24}}})
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "g", Address: "unix:" + farm.Sockets()[0]})
	f.RefreshOnce(context.Background(), nil)
	var b strings.Builder
	writeInterfaceTable(&b, f.Snapshot().Guests)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	head := lines[0]
	want := present.Width(head[:strings.Index(head, "ADDRESS")])
	if !strings.Contains(b.String(), "網路介面卡") || len(lines) < 4 {
		t.Fatalf("the interfaces are not all listed:\n%s", b.String())
	}
	for _, l := range lines[1:] {
		if got := present.Width(l[:strings.LastIndex(l, "  ")+2]); got != want {
			t.Errorf("address at cell %d, the header's ADDRESS at %d:\n%s\n%s", got, want, head, l)
		}
	}
}
