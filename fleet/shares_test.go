package fleet

import (
	"fmt"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Guests reporting the same OS or vCPU list share one copy; different
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
	for i := range 10 * maxShared {
		sh.osInfo(&agentclient.OSInfo{Name: fmt.Sprint(i)})
		sh.vcpuList([]agentclient.VCPU{{LogicalID: i}})
		if len(sh.os) > maxShared || len(sh.vcpus) > maxShared {
			t.Fatalf("%d OS infos, %d vCPU lists shared; bound %d", len(sh.os), len(sh.vcpus), maxShared)
		}
	}
}
