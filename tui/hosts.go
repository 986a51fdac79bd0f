package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// Hosts: every discovery source (libvirt host, ssh host, socket directory)
// has a visible state. The
// status bar sums them up in one segment, naming the first host that is not
// up ("hosts 49 up · 1 unreachable (hv7: connect refused, retry in 8s)");
// the hosts pane (H) lists each one: state and for how long, guests and
// how many answer, the error and the next retry. Hosts that are not up come
// first, so with 50 hypervisors the one that matters is on top.

// hostErrCells caps a host's error in the status bar; the pane gives it
// the rest of the line.
const hostErrCells = 40

// hostPhases is the order hosts are counted and listed in: trouble first.
var hostPhases = []fleet.SourcePhase{fleet.SourceUnreachable, fleet.SourceReconnecting, fleet.SourceConnecting, fleet.SourceUp}

func phaseRank(p fleet.SourcePhase) int {
	if i := slices.Index(hostPhases, p); i >= 0 {
		return i
	}
	return len(hostPhases)
}

// sortedSources is the snapshot's sources, not-up first, then by name.
func sortedSources(srcs []fleet.SourceState) []fleet.SourceState {
	out := slices.Clone(srcs)
	slices.SortStableFunc(out, func(a, b fleet.SourceState) int {
		return cmp.Or(cmp.Compare(phaseRank(a.Phase), phaseRank(b.Phase)), strings.Compare(a.Name, b.Name))
	})
	return out
}

// hostProblem is a host that is not up in words: "hv7: connect refused,
// retry in 8s". Its name and error come from a fleet file and a remote
// daemon: escaped and capped.
func hostProblem(st fleet.SourceState, now time.Time, errCells int) string {
	s := present.Text(st.Name, hostCells) + ": " + string(st.Phase)
	if st.Err != nil {
		s = present.Text(st.Name, hostCells) + ": " + present.Text(st.Err.Error(), errCells)
	}
	if st.Phase == fleet.SourceUnreachable && !st.Retry.IsZero() {
		s += ", retry in " + present.Countdown(max(st.Retry.Sub(now), 0))
	}
	return s
}

// hostCells caps a host's name.
const hostCells = 24

// hostsSummary is the status bar's hosts segment, "" without sources;
// trouble reports that a host is not up (the segment then goes first).
func (m *Model) hostsSummary() (summary string, trouble bool) {
	srcs := m.snap.Sources
	if len(srcs) == 0 {
		return "", false
	}
	sorted := sortedSources(srcs)
	var parts []string
	for _, p := range slices.Backward(hostPhases) {
		n := 0
		for _, st := range sorted {
			if st.Phase == p {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, p))
		}
	}
	s := "hosts " + strings.Join(parts, " · ")
	trouble = sorted[0].Phase != fleet.SourceUp
	if trouble {
		s += " (" + hostProblem(sorted[0], m.now(), hostErrCells)
		if n := notUp(sorted); n > 1 {
			s += fmt.Sprintf("; +%d more: %s lists them", n-1, m.keys.Hosts.Help().Key)
		}
		s += ")"
	}
	return s, trouble
}

func notUp(srcs []fleet.SourceState) int {
	n := 0
	for _, st := range srcs {
		if st.Phase != fleet.SourceUp {
			n++
		}
	}
	return n
}

// renderHosts is the hosts pane: one line per source, not-up first.
func (m *Model) renderHosts(w, h int) string {
	now := m.now()
	srcs := sortedSources(m.snap.Sources)
	var b strings.Builder
	b.WriteString(m.st.Title.Render("Hosts") + m.st.Muted.Render(fmt.Sprintf("  %d · %s or esc closes · host:NAME filters the table",
		len(srcs), m.keys.Hosts.Help().Key)) + "\n")
	if len(srcs) == 0 {
		b.WriteString(m.st.Muted.Render("no discovery sources: every guest is in the fleet file ([[host]] adds a libvirt host)"))
		return place(w, h, b.String())
	}
	// Guests answering per host: one pass over the fleet, only while the
	// pane is open.
	answering := make(map[string]int, len(srcs))
	for _, g := range m.snap.Guests {
		if g.Host != "" && (g.State == fleet.Ready || g.State == fleet.Frozen) {
			answering[g.Host]++
		}
	}
	const nameW, stateW, sinceW, guestsW = 12, 13, 8, 16
	hdr := fit("HOST", nameW, false) + " " + fit("STATE", stateW, false) + " " + fit("FOR", sinceW, true) + " " +
		fit("GUESTS", guestsW, false) + " " + "ENDPOINT / ERROR"
	b.WriteString(m.st.Header.Render(fit(hdr, w, false)) + "\n")
	rows := h - 2
	skip := min(m.hostScroll, max(len(srcs)-rows, 0))
	for i, st := range srcs[skip:] {
		if i == rows {
			break
		}
		guests := fmt.Sprintf("%d (%d answer)", st.Guests, answering[st.Name])
		if st.Guests == 0 {
			guests = "0"
		}
		since := ""
		if !st.Since.IsZero() {
			since = hostAge(now.Sub(st.Since))
		}
		rest := w - (nameW + stateW + sinceW + guestsW + 4)
		tail := present.Text(st.Endpoint, max(rest, 1))
		if st.Phase != fleet.SourceUp && st.Err != nil {
			tail = present.Text(st.Err.Error(), max(rest, 1))
			if st.Phase == fleet.SourceUnreachable && !st.Retry.IsZero() {
				retry := "retry in " + present.Countdown(max(st.Retry.Sub(now), 0)) + ": "
				tail = retry + present.Text(st.Err.Error(), max(rest-len(retry), 1))
			}
		}
		line := present.Cell(st.Name, nameW, false) + " " + fit(string(st.Phase), stateW, false) + " " +
			fit(since, sinceW, true) + " " + fit(guests, guestsW, false) + " " + tail
		style := m.st.State(string(fleet.Ready))
		if st.Phase != fleet.SourceUp {
			style = m.st.Error
		}
		b.WriteString(style.Render(fit(line, w, false)) + "\n")
	}
	return place(w, h, strings.TrimSuffix(b.String(), "\n"))
}

// hostsKey handles keys while the hosts pane is open.
func (m *Model) hostsKey(k tea.KeyPressMsg) tea.Cmd {
	page := max(m.layout().regionHeight-2, 1)
	switch {
	case key.Matches(k, m.keys.closeKeys(m.keys.Hosts)):
		m.closeLayer(layerHosts)
	case key.Matches(k, m.keys.Up):
		m.scrollHosts(-1)
	case key.Matches(k, m.keys.Down):
		m.scrollHosts(1)
	case key.Matches(k, m.keys.PageDown):
		m.scrollHosts(page)
	case key.Matches(k, m.keys.PageUp):
		m.scrollHosts(-page)
	}
	return nil
}

func (m *Model) scrollHosts(delta int) {
	last := max(len(m.snap.Sources)-(m.layout().regionHeight-2), 0)
	m.hostScroll = min(max(0, m.hostScroll+delta), last)
}

// domainLines are the detail pane's lines about libvirt's view of the
// guest's domain and whether the agent's values are stale.
func domainLines(m *Model, g *fleet.Guest, now time.Time) []string {
	var lines []string
	if g.DomainState != fleet.DomainUnknown || g.DomainReason != "" {
		d := string(g.DomainState)
		if d == "" {
			d = "unknown"
		}
		if g.DomainReason != "" {
			d += " — " + present.Text(g.DomainReason, max(m.width-20, 1))
		}
		lines = append(lines, kv("Domain", d+m.st.Muted.Render("  (libvirt)")))
	}
	if g.Stale() {
		lines = append(lines, kv("Values", m.st.Warn.Render("stale: the agent last answered "+
			fmtDur(now.Sub(g.LastLive).Round(time.Second))+" ago")))
	}
	return lines
}

// hostAge is how long a host has been in its state: 40s, 3m05s, 2h10m, 3d04h.
func hostAge(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
