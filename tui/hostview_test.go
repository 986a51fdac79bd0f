package tui

import (
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/fleet"
)

// The overview shows the host's view of a libvirt guest under the agent's
// line, and nothing for a guest its host has given no stats for.
func TestOverviewHostView(t *testing.T) {
	m, _ := newTestModel(2, 120, 40, Options{})
	g := *testGuest(0)
	if lines := strings.Join(m.overviewLines(&g), "\n"); strings.Contains(lines, "Host view") {
		t.Errorf("a guest without host stats shows a host view:\n%s", lines)
	}
	g.HostStats = &fleet.HostStats{At: testNow, CPUPct: fleet.Rate{V: 5, OK: true}, BalloonBytes: 2 << 30, BalloonOK: true}
	lines := m.overviewLines(&g)
	for i, l := range lines {
		if strings.HasPrefix(l, "Host view") {
			if want := "Host view    cpu 5% · balloon 2.0 GiB · 0s ago"; l != want {
				t.Errorf("got  %q\nwant %q", l, want)
			}
			if i == 0 || !strings.HasPrefix(lines[i-1], "Agent") {
				t.Errorf("host view not beside the agent's line:\n%s", strings.Join(lines, "\n"))
			}
			return
		}
	}
	t.Errorf("no host view:\n%s", strings.Join(lines, "\n"))
}
