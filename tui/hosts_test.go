package tui

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/fleet"
)

// setSources puts sources in the fake's snapshot (a new version, as the
// fleet publishes a source's change).
func (s *fakeSource) setSources(srcs []fleet.SourceState) {
	s.mu.Lock()
	snap := *s.snap
	snap.Sources = srcs
	snap.Version++
	s.snap = &snap
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

const hv2Err = "connect: dial tcp 192.0.2.7:22: connect: connection refused"

// hostsFleet is 12 guests on three libvirt hosts, hv2 unreachable for 40s
// (its guests kept, unreachable, their values stale), hv1 with one domain
// paused and one stopped.
func hostsFleet() ([]*fleet.Guest, []fleet.SourceState) {
	gs := testGuests(12)
	for _, g := range gs {
		g.State, g.Err, g.DomainState, g.DomainReason = fleet.Ready, "", fleet.DomainRunning, ""
		g.LastLive = testNow
		switch {
		case g.Host == "hv2":
			g.State, g.DomainState = fleet.Unreachable, fleet.DomainUnknown
			g.DomainReason = "libvirt host hv2 is unreachable"
			g.Err = "libvirt host hv2 (qemu+ssh://root@hv2/system) is not connected: " + hv2Err
			g.LastLive = testNow.Add(-40 * time.Second)
		case g.Name == "vm-00003":
			g.State, g.DomainState = fleet.Paused, fleet.DomainPaused
			g.Err, g.DomainReason = "domain paused (by a user)", "domain paused (by a user)"
			g.LastLive = testNow.Add(-12 * time.Second)
		case g.Name == "vm-00006":
			g.State, g.DomainState = fleet.Stopped, fleet.DomainStopped
			g.Err, g.DomainReason = "domain shut off (shut down)", "domain shut off (shut down)"
			g.LastLive = time.Time{}
		}
	}
	srcs := []fleet.SourceState{
		{Name: "hv1", Kind: "libvirt", Endpoint: "qemu+ssh://root@hv1/system", Phase: fleet.SourceUp, Since: testNow.Add(-time.Hour), Guests: 4},
		{Name: "hv2", Kind: "libvirt", Endpoint: "qemu+ssh://root@hv2/system", Phase: fleet.SourceUnreachable,
			Since: testNow.Add(-40 * time.Second), Guests: 4, Err: errors.New(hv2Err), Retry: testNow.Add(8 * time.Second)},
		{Name: "hv3", Kind: "libvirt", Endpoint: "qemu+tls://hv3/system", Phase: fleet.SourceUp, Since: testNow.Add(-time.Hour), Guests: 4},
	}
	return gs, srcs
}

func newHostsModel(t *testing.T, w, h int) (Model, *fakeSource) {
	t.Helper()
	m, src := newTestModel(0, w, h, Options{})
	gs, srcs := hostsFleet()
	src.set(gs)
	src.setSources(srcs)
	m.refresh()
	return m, src
}

// TestHostsGolden: an unreachable libvirt host at 100x30, in the status
// bar (first, naming the host, its error and the retry), in the hosts pane
// (listed first), and its guests kept in the table.
func TestHostsGolden(t *testing.T) {
	m, _ := newHostsModel(t, 100, 30)
	golden(t, "hosts_table", view(m))
	golden(t, "hosts_pane", view(press(t, m, "H")))
	golden(t, "hosts_detail_unreachable", view(press(t, m, "down")))
	golden(t, "hosts_detail_paused", view(press(t, m, "down", "down", "down")))
}

func TestHostsStatusBar(t *testing.T) {
	tests := []struct {
		name string
		srcs []fleet.SourceState
		want string // the counts line starts with it ("" : no hosts segment)
		has  string
	}{
		{name: "no sources", want: "ready ", has: "polling"},
		{name: "all up", srcs: []fleet.SourceState{{Name: "a", Phase: fleet.SourceUp}, {Name: "b", Phase: fleet.SourceUp}},
			want: "ready ", has: "│ hosts 2 up │"},
		{name: "one connecting", srcs: []fleet.SourceState{{Name: "a", Phase: fleet.SourceUp}, {Name: "b", Phase: fleet.SourceConnecting}},
			want: "hosts 1 up · 1 connecting (b: connecting) │ ready"},
		{name: "reconnecting after an error",
			srcs: []fleet.SourceState{{Name: "a", Phase: fleet.SourceReconnecting, Err: errors.New("connection lost")}},
			want: "hosts 1 reconnecting (a: connection lost) │"},
		{name: "hostile error text is escaped", srcs: []fleet.SourceState{{Name: "a\x1b[31m", Phase: fleet.SourceUnreachable,
			Err: errors.New("bad\x1b]0;pwned\x07 daemon"), Retry: testNow.Add(3 * time.Second)}},
			want: "hosts 1 unreachable (a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, src := newTestModel(3, 160, 30, Options{})
			src.setSources(tc.srcs)
			m.refresh()
			line := m.renderCounts()
			plain := ansi.Strip(line)
			if !strings.HasPrefix(plain, tc.want) || !strings.Contains(plain, tc.has) {
				t.Errorf("counts line %q, want prefix %q containing %q", plain, tc.want, tc.has)
			}
			if strings.ContainsAny(plain, "\x1b\x07") {
				t.Errorf("control characters reached the screen: %q", plain)
			}
		})
	}
}

// TestHostsFifty: with 50 hypervisors and one down, the status bar names
// the one that is down, and the pane lists it first.
func TestHostsFifty(t *testing.T) {
	m, src := newTestModel(3, 100, 30, Options{})
	var srcs []fleet.SourceState
	for i := range 50 {
		st := fleet.SourceState{Name: fmt.Sprintf("hv%02d", i), Kind: "libvirt", Phase: fleet.SourceUp, Guests: 20}
		if i == 7 {
			st.Phase, st.Err, st.Retry = fleet.SourceUnreachable, errors.New("connect refused"), testNow.Add(8*time.Second)
		}
		srcs = append(srcs, st)
	}
	src.setSources(srcs)
	m.refresh()
	eq(t, "status bar", strings.SplitN(ansi.Strip(m.renderCounts()), " │ ", 2)[0],
		"hosts 49 up · 1 unreachable (hv07: connect refused, retry in 0:08)")
	pane := strings.Split(view(press(t, m, "H")), "\n")
	if !strings.HasPrefix(pane[3], "hv07") || !strings.Contains(pane[3], "retry in 0:08: connect refused") {
		t.Errorf("first host row %q", pane[3])
	}
	// The wheel scrolls the pane; paging reaches the last host and stops there.
	m = press(t, m, "H")
	m, _ = send(t, m, tea.MouseWheelMsg{X: 10, Y: 10, Button: tea.MouseWheelDown})
	eq(t, "wheel scrolled", m.hostScroll > 0, true)
	m = press(t, m, "pgdown", "pgdown", "pgdown")
	eq(t, "scrolled to the end", m.hostScroll, 50-(m.layout().regionHeight-2))
	rows := strings.Split(view(m), "\n")
	if !strings.Contains(strings.Join(rows, "\n"), "hv49") {
		t.Errorf("scrolled to the end, no hv49:\n%s", strings.Join(rows, "\n"))
	}
	m = press(t, m, "esc")
	eq(t, "closed", m.isOpen(layerHosts), false)
}

// TestStaleRowsDim: a guest whose agent cannot answer is drawn faint (its
// values are from its last answer); one that answers is not.
func TestStaleRowsDim(t *testing.T) {
	m, _ := newHostsModel(t, 100, 30)
	rows := strings.Split(m.View().Content, "\n")
	faint := func(name string) bool {
		for _, r := range rows {
			if strings.Contains(ansi.Strip(r), name) {
				return strings.Contains(r, "\x1b[2") || strings.Contains(r, ";2m") || strings.Contains(r, ";2;")
			}
		}
		t.Fatalf("no row for %s", name)
		return false
	}
	eq(t, "unreachable host's guest faint", faint("vm-00001"), true)
	eq(t, "paused guest faint", faint("vm-00003"), true)
	eq(t, "ready guest faint", faint("vm-00002"), false)
}

// A frame at 10,000 guests on 50 hosts, one down: the table (the status
// bar's hosts segment costs O(hosts)), and the hosts pane (one pass over
// the guests to count those answering per host).
func BenchmarkViewHosts10000(b *testing.B) {
	for _, pane := range []bool{false, true} {
		b.Run(fmt.Sprintf("pane=%v", pane), func(b *testing.B) {
			m, src := newTestModel(10000, 160, 50, Options{})
			var srcs []fleet.SourceState
			for i := range 50 {
				st := fleet.SourceState{Name: fmt.Sprintf("hv%02d", i), Kind: "libvirt", Phase: fleet.SourceUp, Guests: 200}
				if i == 7 {
					st.Phase, st.Err, st.Retry = fleet.SourceUnreachable, errors.New("connect refused"), testNow.Add(8*time.Second)
				}
				srcs = append(srcs, st)
			}
			src.setSources(srcs)
			m.refresh()
			if pane {
				m = press(b, m, "H")
			}
			m.moveTo(5000)
			b.ResetTimer()
			for b.Loop() {
				_ = m.View()
			}
		})
	}
}
