package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// TestDashboardE2EHosts: the real binary in a real terminal with one
// libvirt host up (a running and a stopped domain) and one that cannot be
// reached. The status bar names the host that is down with its error and
// retry; H lists both hosts, the one that is down first; the stopped
// domain is listed stopped.
func TestDashboardE2EHosts(t *testing.T) {
	lv := testpeers.StartLibvirtTest(t)
	conn := lv.Connect(t)
	xml := "<domain type='test'><name>lab-1</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>" +
		"<devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>"
	if _, err := conn.DomainCreateXML(xml, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.DomainDefineXML(strings.Replace(xml, "lab-1", "lab-off", 1)); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-libvirt-sock")
	cfg := fleetFile(t, fmt.Sprintf("[[host]]\nname = \"up\"\nuri = \"test+unix:///default?socket=%s\"\n\n[[host]]\nname = \"gone\"\nuri = %q\n", lv.Socket, missing))

	tt := e2eStart(t, "-c", cfg)
	tt.waitText("guestdeck 2 guests", "hosts 1 up · 1 unreachable (gone: connect: dial unix ", ", retry in ")
	s := tt.waitFor("up/lab-1 ready, up/lab-off stopped", func(s string) bool {
		rows := map[string]string{}
		for _, r := range e2eRows(s) {
			rows[r.name] = r.text
		}
		return strings.Contains(rows["up/lab-off"], " stopped ") && strings.Contains(rows["up/lab-1"], " ready ")
	})
	if !strings.Contains(s, "domain shut off") {
		t.Errorf("the stopped domain's reason is not shown:\n%s", s)
	}
	tt.keys("H")
	s = tt.waitText("Hosts  2")
	var hostRows []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "gone ") || strings.HasPrefix(l, "up ") {
			hostRows = append(hostRows, l)
		}
	}
	if len(hostRows) != 2 || !strings.Contains(hostRows[0], "unreachable") || !strings.Contains(hostRows[0], "retry in ") ||
		!strings.Contains(hostRows[0], "connect: dial unix "+missing[:20]) || !strings.Contains(hostRows[1], "2 (1 answer)") {
		t.Errorf("host rows %q:\n%s", hostRows, s)
	}
	tt.keys("Escape")
	tt.waitText("guestdeck 2 guests", "NAME")
	tt.keys("q")
	tt.waitText("guestdeck-exited")
}
