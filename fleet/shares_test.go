package fleet

import (
	"fmt"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Guests reporting the same OS, timezone or vCPU list share one copy; different
// values are kept apart (the key spells every field); a huge value is not
// shared, and the tables stay bounded however many values guests send.
func TestGuestShares(t *testing.T) {
	var sh guestShares
	a := &agentclient.OSInfo{ID: "debian", PrettyName: "Debian 12", KernelRelease: "6.1"}
	b := *a
	if got := sh.osInfo(&b); got != &b {
		t.Fatal("the first OS info is not kept as the shared copy")
	}
	if got := sh.osInfo(a); got != &b {
		t.Error("an equal OS info does not share the first")
	}
	if c := (&agentclient.OSInfo{ID: "debian", PrettyName: "Debian 13", KernelRelease: "6.1"}); sh.osInfo(c) != c {
		t.Error("a different OS info shares another's copy")
	}
	if sh.osInfo(nil) != nil {
		t.Error("nil OS info")
	}
	huge := &agentclient.OSInfo{PrettyName: strings.Repeat("x", maxSharedOS+1)}
	if sh.osInfo(huge); sh.os[*huge] != nil {
		t.Error("a huge OS info was shared")
	}

	yes, no := true, false
	l1 := []agentclient.VCPU{{LogicalID: 0, Online: true, CanOffline: &no}, {LogicalID: 1, Online: true, CanOffline: &yes}}
	l2 := []agentclient.VCPU{{LogicalID: 0, Online: true, CanOffline: &no}, {LogicalID: 1, Online: true, CanOffline: &yes}}
	if got := sh.vcpuList(l1); &got[0] != &l1[0] {
		t.Fatal("the first vCPU list is not kept as the shared copy")
	}
	if got := sh.vcpuList(l2); &got[0] != &l1[0] {
		t.Error("an equal vCPU list does not share the first")
	}
	for _, l := range [][]agentclient.VCPU{
		{{LogicalID: 0, Online: true, CanOffline: &no}, {LogicalID: 1, Online: true}},                    // can-offline absent
		{{LogicalID: 0, Online: true, CanOffline: &no}, {LogicalID: 1, Online: false, CanOffline: &yes}}, // offline
		{{LogicalID: 0, Online: true, CanOffline: &no}, {LogicalID: -1, Online: true, CanOffline: &yes}},
	} {
		if got := sh.vcpuList(l); &got[0] != &l[0] {
			t.Errorf("%+v shares another list", l)
		}
	}
	tz := &agentclient.Timezone{Zone: "UTC"}
	if sh.timezone(tz) != tz || sh.timezone(&agentclient.Timezone{Zone: "UTC"}) != tz {
		t.Error("equal timezones do not share the first")
	}
	if other := (&agentclient.Timezone{Zone: "UTC", Offset: 3600}); sh.timezone(other) != other {
		t.Error("a different timezone shares another's copy")
	}
	if sh.timezone(nil) != nil {
		t.Error("nil timezone")
	}
	for i := range 10 * maxShared {
		sh.timezone(&agentclient.Timezone{Offset: i})
		if len(sh.tz) > maxShared {
			t.Fatalf("%d timezones shared; bound %d", len(sh.tz), maxShared)
		}
		sh.osInfo(&agentclient.OSInfo{Name: fmt.Sprint(i)})
		sh.vcpuList([]agentclient.VCPU{{LogicalID: i}})
		if len(sh.os) > maxShared || len(sh.vcpus) > maxShared {
			t.Fatalf("%d OS infos, %d vCPU lists shared; bound %d", len(sh.os), len(sh.vcpus), maxShared)
		}
	}
}

// Equal disk lists and filesystem disk addresses share one copy; a list
// that differs in any field, a disk with SMART data (its counters change)
// and a huge list are the guest's own; the table stays bounded.
func TestDiskShares(t *testing.T) {
	var sh guestShares
	disks := func() []agentclient.DiskInfo {
		return []agentclient.DiskInfo{
			{Name: "/dev/vda", Address: &agentclient.DiskAddress{BusType: "virtio", PCIController: agentclient.PCIAddress{Slot: 4}, Dev: "/dev/vda"}},
			{Name: "/dev/vda1", Partition: true, Dependencies: []string{"/dev/vda"}},
		}
	}
	first, second := disks(), disks()
	if got := sh.diskList(first); &got[0] != &first[0] {
		t.Fatal("the first disk list is not kept as the shared copy")
	}
	if got := sh.diskList(second); &got[0] != &first[0] {
		t.Error("an equal disk list does not share the first")
	}
	for name, change := range map[string]func(d []agentclient.DiskInfo){
		"name":         func(d []agentclient.DiskInfo) { d[1].Name = "/dev/vda2" },
		"partition":    func(d []agentclient.DiskInfo) { d[0].Partition = true },
		"dependencies": func(d []agentclient.DiskInfo) { d[1].Dependencies = []string{"/dev/vd", "a"} },
		"no address":   func(d []agentclient.DiskInfo) { d[0].Address = nil },
		"slot":         func(d []agentclient.DiskInfo) { d[0].Address.PCIController.Slot = 5 },
		"serial":       func(d []agentclient.DiskInfo) { d[0].Address.Serial = "x" },
		"alias":        func(d []agentclient.DiskInfo) { d[1].Alias = "root" },
		"smart":        func(d []agentclient.DiskInfo) { d[0].Smart = &agentclient.DiskSmart{Type: "nvme"} },
		"huge":         func(d []agentclient.DiskInfo) { d[0].Name = strings.Repeat("x", maxSharedDisks) },
	} {
		l := disks()
		change(l)
		if got := sh.diskList(l); &got[0] != &l[0] {
			t.Errorf("%s: a different disk list shares another's copy", name)
		}
	}
	if got := sh.diskList(disks()[:0]); got == nil || len(got) != 0 {
		t.Errorf("an empty list comes back as %#v", got)
	}

	addrs := func() []agentclient.DiskAddress {
		return []agentclient.DiskAddress{{BusType: "virtio", PCIController: agentclient.PCIAddress{Slot: 4}, Dev: "/dev/vda1"}}
	}
	a1, a2 := addrs(), addrs()
	if got := sh.diskAddresses(a1); &got[0] != &a1[0] {
		t.Fatal("the first address list is not kept as the shared copy")
	}
	if got := sh.diskAddresses(a2); &got[0] != &a1[0] {
		t.Error("an equal address list does not share the first")
	}
	a3 := addrs()
	a3[0].Unit = 1
	if got := sh.diskAddresses(a3); &got[0] != &a3[0] {
		t.Error("a different address list shares another's copy")
	}
	for i := range 10 * maxShared {
		sh.diskAddresses([]agentclient.DiskAddress{{Unit: i}})
		sh.diskList([]agentclient.DiskInfo{{Name: fmt.Sprint(i)}})
		if len(sh.disks) > maxShared {
			t.Fatalf("%d disk lists shared; bound %d", len(sh.disks), maxShared)
		}
	}
}
