package tui

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// The pulse view (P, :pulse) is the whole fleet at a glance: counts by
// state, the busiest guests by CPU, iowait, steal, disk and network, the
// guests with full filesystems, and how round trips and clock skews are
// spread. Every guest row is selectable, and enter jumps to that guest in
// the table.
//
// It is built once per snapshot, never per frame, and never sorts the
// fleet: each list is a top-N selection (n·N work, N ≤ maxPulseRows), and
// each histogram one pass. A frame formats only the rows on screen.

// fullFSPct is the use at which a filesystem counts as full.
const fullFSPct = 90

// maxPulseRows bounds each list, whatever the screen height.
const maxPulseRows = 10

// pulseView is the pulse layer's state: what was built from which
// snapshot, and the selection (kept by guest name across rebuilds).
type pulseView struct {
	from    *fleet.Snapshot
	version uint64
	per     int // rows per section it was built for

	sections []pulseSection
	sel      int    // index into the selectable rows, in reading order
	selName  string // the selected row's guest
}

// pulseSection is one list or histogram of the view.
type pulseSection struct {
	title string
	rows  []pulseRow
	empty string // shown when rows is empty
}

// pulseRow is one line of a section; guest is "" when it jumps nowhere.
type pulseRow struct {
	label string // raw: a guest name or a bucket label, escaped when drawn
	value string
	bar   int // histogram bar length in eighths of maxBar, 0 for none
	guest string
}

// topN keeps the n largest values seen, largest first; ties keep the
// order they came in (the snapshot's, by name).
type topN struct {
	n     int
	items []ranked
}

type ranked struct {
	g *fleet.Guest
	v float64
}

func (t *topN) add(g *fleet.Guest, v float64) {
	if len(t.items) == t.n && (t.n == 0 || v <= t.items[t.n-1].v) {
		return
	}
	i := len(t.items)
	for i > 0 && t.items[i-1].v < v {
		i--
	}
	if len(t.items) < t.n {
		t.items = append(t.items, ranked{})
	}
	copy(t.items[i+1:], t.items[i:len(t.items)-1])
	t.items[i] = ranked{g, v}
}

// bucket is one histogram bar: how many guests fall in it and the one
// with the largest value (where enter goes).
type bucket struct {
	label  string
	upTo   time.Duration // exclusive upper bound; the last bucket has none
	n      int
	worst  *fleet.Guest
	worstV time.Duration
}

func rttBuckets() []bucket {
	return []bucket{{label: "<1ms", upTo: time.Millisecond}, {label: "1–5ms", upTo: 5 * time.Millisecond},
		{label: "5–20ms", upTo: 20 * time.Millisecond}, {label: "20–100ms", upTo: 100 * time.Millisecond},
		{label: "0.1–1s", upTo: time.Second}, {label: "≥1s"}}
}

func skewBuckets() []bucket {
	return []bucket{{label: "<10ms", upTo: 10 * time.Millisecond}, {label: "10–100ms", upTo: 100 * time.Millisecond},
		{label: "0.1–1s", upTo: time.Second}, {label: "1–10s", upTo: 10 * time.Second},
		{label: "10s–1h", upTo: time.Hour}, {label: "≥1h"}}
}

func addToBuckets(bs []bucket, g *fleet.Guest, d time.Duration) {
	i := 0
	for i < len(bs)-1 && d >= bs[i].upTo {
		i++
	}
	b := &bs[i]
	b.n++
	if b.worst == nil || d > b.worstV {
		b.worst, b.worstV = g, d
	}
}

// magnitude is |d|, saturating: a guest can report a clock so far off that
// the skew is the most negative Duration, whose negation overflows.
func magnitude(d time.Duration) time.Duration {
	if d == math.MinInt64 {
		return math.MaxInt64
	}
	return absDur(d)
}

// buildPulse computes the view from snapshot s with per rows per section.
func buildPulse(s *fleet.Snapshot, per int) []pulseSection {
	cpu, iow, steal := topN{n: per}, topN{n: per}, topN{n: per}
	disk, net, full := topN{n: per}, topN{n: per}, topN{n: per}
	var known [5]int // cpu, iowait, steal, disk, net
	nFull := 0
	rtt, skew := rttBuckets(), skewBuckets()
	for _, g := range s.Guests {
		if v, ok := metricValue(g, colCPUBusy); ok {
			cpu.add(g, v)
			known[0]++
		}
		if v, ok := metricValue(g, colIOWait); ok {
			iow.add(g, v)
			known[1]++
		}
		if v, ok := metricValue(g, colSteal); ok {
			steal.add(g, v)
			known[2]++
		}
		r, rok := metricValue(g, colDiskR)
		w, wok := metricValue(g, colDiskW)
		if rok || wok {
			disk.add(g, r+w)
			known[3]++
		}
		rx, rxok := metricValue(g, colNetRx)
		tx, txok := metricValue(g, colNetTx)
		if rxok || txok {
			net.add(g, rx+tx)
			known[4]++
		}
		if pct, _, ok := fullestFS(g); ok && pct >= fullFSPct {
			full.add(g, pct)
			nFull++
		}
		if g.RTT > 0 {
			addToBuckets(rtt, g, g.RTT)
		}
		if g.SkewKnown {
			addToBuckets(skew, g, magnitude(g.Skew))
		}
	}
	n := len(s.Guests)
	list := func(title string, t topN, nKnown int, format func(float64) string) pulseSection {
		sec := pulseSection{title: fmt.Sprintf("%s (%d of %d known)", title, nKnown, n), empty: "no figures yet"}
		for _, it := range t.items {
			sec.rows = append(sec.rows, pulseRow{label: it.g.Name, value: format(it.v), guest: it.g.Name})
		}
		return sec
	}
	pct := func(v float64) string { return fmtPct(v) + "%" }
	bps := func(v float64) string { return fmtBps(v) + "/s" }
	fullSec := list(fmt.Sprintf("Filesystems ≥%d%%", fullFSPct), full, nFull, pct)
	fullSec.title = fmt.Sprintf("Filesystems ≥%d%% full (%s)", fullFSPct, present.Plural(nFull, "guest"))
	fullSec.empty = "none"
	for i, it := range full.items {
		if _, mp, _ := fullestFS(it.g); mp != "" {
			fullSec.rows[i].label = it.g.Name + " " + mp
		}
	}
	return []pulseSection{
		list("CPU busy", cpu, known[0], pct),
		list("I/O wait", iow, known[1], pct),
		list("Steal", steal, known[2], pct),
		list("Disk read+write", disk, known[3], bps),
		list("Network rx+tx", net, known[4], bps),
		fullSec,
		histogram("Round trip", rtt, per),
		histogram("Clock skew ±", skew, per),
	}
}

// histogram is a section of one row per bucket; a bucket's row jumps to
// its worst guest.
func histogram(title string, bs []bucket, per int) pulseSection {
	most, total := 0, 0
	for _, b := range bs {
		most, total = max(most, b.n), total+b.n
	}
	sec := pulseSection{title: fmt.Sprintf("%s (%s)", title, present.Plural(total, "guest")), empty: "none measured yet"}
	if total == 0 {
		return sec
	}
	// Short of rows, the empty buckets go first and then the lowest: the
	// outliers (the ≥1h skews) are what the section is for, and cutting
	// the list's end hid exactly them at 80x24.
	if per = max(per, 1); len(bs) > per {
		bs = slices.DeleteFunc(slices.Clone(bs), func(b bucket) bool { return b.n == 0 })
		bs = bs[max(len(bs)-per, 0):]
	}
	for _, b := range bs {
		r := pulseRow{label: b.label, value: strconv.Itoa(b.n)}
		if b.n > 0 {
			r.bar = max(b.n*8*maxBar/most, 1)
			r.guest = b.worst.Name
		}
		sec.rows = append(sec.rows, r)
	}
	return sec
}

// maxBar is a histogram bar's most cells.
const maxBar = 12

// pulseGrid is how the sections are laid out: columns across, and the
// rows each section has for its list.
func (m *Model) pulseGrid() (cols, per int) {
	cols = 3
	if m.width < 90 {
		cols = 2
	}
	rowsOfSections := (8 + cols - 1) / cols
	h := m.layout().regionHeight - 2 // title and counts lines
	per = h/rowsOfSections - 2       // a title and a blank line each
	return cols, min(max(per, 1), maxPulseRows)
}

// openPulse shows the pulse view.
func (m *Model) openPulse() {
	if m.pulse == nil {
		m.pulse = &pulseView{}
	}
	m.open(layer{kind: layerPulse})
	m.pulseRefresh()
}

// pulseRefresh rebuilds the view when the snapshot or the screen changed.
// Only while it is open: a closed view costs nothing per snapshot.
func (m *Model) pulseRefresh() {
	p := m.pulse
	if p == nil || !m.isOpen(layerPulse) {
		return
	}
	_, per := m.pulseGrid()
	if p.from == m.snap && p.version == m.snap.Version && p.per == per {
		return
	}
	p.sections = buildPulse(m.snap, per)
	p.from, p.version, p.per = m.snap, m.snap.Version, per
	// Keep the selection on its guest if it is still listed. A guest can
	// be in several lists (busiest CPU and disk): take the row nearest the
	// old one, so the selection stays in its list.
	sel := m.pulseTargets()
	old := p.sel
	p.sel = min(p.sel, max(len(sel)-1, 0))
	best := -1
	for i, name := range sel {
		if name == p.selName && (best < 0 || absInt(i-old) < absInt(best-old)) {
			best = i
		}
	}
	if best >= 0 {
		p.sel = best
	}
	if p.sel < len(sel) {
		p.selName = sel[p.sel]
	}
}

func absInt(i int) int { return max(i, -i) }

// pulseTargets are the selectable rows' guests in reading order (section
// by section).
func (m *Model) pulseTargets() []string {
	var out []string
	for _, s := range m.pulse.sections {
		for _, r := range s.rows {
			if r.guest != "" {
				out = append(out, r.guest)
			}
		}
	}
	return out
}

func (k KeyMap) pulseHelp() []key.Binding {
	return []key.Binding{bind("select", "↑/↓"), bind("next list", "tab"), bind("jump to guest", "enter"),
		k.closeKeys(k.Pulse), bind("quit", "ctrl+c")}
}

func (m *Model) pulseKey(k tea.KeyPressMsg) tea.Cmd {
	p := m.pulse
	targets := m.pulseTargets()
	move := func(i int) {
		if len(targets) == 0 {
			return
		}
		p.sel = min(max(i, 0), len(targets)-1)
		p.selName = targets[p.sel]
	}
	switch {
	case key.Matches(k, m.keys.closeKeys(m.keys.Pulse)):
		m.closeLayer(layerPulse)
	case key.Matches(k, m.keys.Up):
		move(p.sel - 1)
	case key.Matches(k, m.keys.Down):
		move(p.sel + 1)
	case key.Matches(k, m.keys.DetailNextTab), key.Matches(k, m.keys.DetailPrevTab):
		move(m.pulseNextSection(key.Matches(k, m.keys.DetailNextTab)))
	case key.Matches(k, m.keys.Top):
		move(0)
	case key.Matches(k, m.keys.Bottom):
		move(len(targets) - 1)
	case k.String() == "enter":
		if p.sel < len(targets) {
			m.jumpTo(targets[p.sel])
		}
	}
	return nil
}

// pulseNextSection is the first selectable row of the next (or previous)
// section that has one.
func (m *Model) pulseNextSection(forward bool) int {
	var starts []int // first selectable index of each section with rows
	i := 0
	for _, s := range m.pulse.sections {
		first := -1
		for _, r := range s.rows {
			if r.guest != "" {
				if first < 0 {
					first = i
				}
				i++
			}
		}
		if first >= 0 {
			starts = append(starts, first)
		}
	}
	if len(starts) == 0 {
		return 0
	}
	cur := 0
	for j, s := range starts {
		if s <= m.pulse.sel {
			cur = j
		}
	}
	if forward {
		return starts[(cur+1)%len(starts)]
	}
	return starts[(cur-1+len(starts))%len(starts)]
}

// jumpTo closes the pulse view and puts the table's cursor on guest name,
// clearing a filter that hides it.
func (m *Model) jumpTo(name string) {
	m.closeLayer(layerPulse)
	find := func() int {
		for i, g := range m.tbl.rows {
			if g.Name == name {
				return m.tbl.lineOfRow(i)
			}
		}
		return -1
	}
	i := find()
	if i < 0 && m.unfoldFor(name) { // group.go
		i = find()
	}
	if i < 0 && m.tbl.filter != "" {
		m.tbl.filter = ""
		m.reindex()
		i = find()
	}
	if i < 0 {
		m.setStatus("guest "+name+" is no longer in the fleet", true)
		return
	}
	m.moveTo(i)
	m.detail = true
	m.clampScroll()
	m.setStatus("jumped to "+name, false)
}

// renderPulse draws the view in w x h.
func (m *Model) renderPulse(w, h int) string {
	p := m.pulse
	cols, per := m.pulseGrid()
	lines := []string{m.st.Title.Render("Pulse") + fmt.Sprintf(" · %s", present.Plural(len(m.snap.Guests), "guest")) +
		m.st.Muted.Render("  (↑/↓ select · enter jumps to the guest · "+m.keys.Pulse.Help().Key+" or esc closes)")}
	var counts []string
	for _, s := range fleet.States {
		if n := m.counts[s]; n > 0 {
			counts = append(counts, m.st.State(string(s)).Render(fmt.Sprintf("%s %d", s, n)))
		}
	}
	lines = append(lines, strings.Join(counts, m.st.Muted.Render(" · ")))
	colW := (w - (cols - 1)) / cols
	selIdx := 0
	for start := 0; start < len(p.sections); start += cols {
		blocks := make([][]string, 0, cols)
		for _, sec := range p.sections[start:min(start+cols, len(p.sections))] {
			var b []string
			b, selIdx = m.renderPulseSection(sec, colW, per, selIdx)
			blocks = append(blocks, b)
		}
		for r := 0; r < per+1; r++ {
			var line strings.Builder
			for c := range cols {
				cell := strings.Repeat(" ", colW)
				if c < len(blocks) && r < len(blocks[c]) {
					cell = blocks[c][r]
				}
				if c > 0 {
					line.WriteByte(' ')
				}
				line.WriteString(cell)
			}
			lines = append(lines, line.String())
		}
		lines = append(lines, "")
	}
	return place(w, h, strings.Join(lines, "\n"))
}

// renderPulseSection draws sec in w cells: a title and per rows, each
// exactly w wide. selIdx counts the selectable rows drawn before it.
func (m *Model) renderPulseSection(sec pulseSection, w, per, selIdx int) ([]string, int) {
	out := []string{m.st.Header.Render(fit(present.Text(sec.title, w), w, false))}
	if len(sec.rows) == 0 {
		out = append(out, m.st.Muted.Render(fit("  "+sec.empty, w, false)))
	}
	for _, r := range sec.rows[:min(len(sec.rows), per)] {
		selected := r.guest != "" && selIdx == m.pulse.sel
		if r.guest != "" {
			selIdx++
		}
		mark := "  "
		if selected {
			mark = "▸ "
		}
		var line string
		if r.bar > 0 || r.guest == "" && r.value != "" {
			// A histogram row: label, bar, count, worst guest.
			// The bar gives way to the worst guest's name (10 cells) in a narrow column.
			barW := min(max(w-2-9-5-2-10, 3), maxBar)
			eighths := r.bar * barW / maxBar
			if r.bar > 0 {
				eighths = max(eighths, 1)
			}
			bar := strings.Repeat("█", eighths/8) + []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}[eighths%8]
			line = mark + fit(r.label, 9, false) + fit(bar, barW, false) + fit(r.value, 5, true)
			if r.guest != "" {
				line += "  " + present.Text(r.guest, max(w-present.Width(line)-2, 1))
			}
		} else {
			vw := max(present.Width(r.value), 8)
			line = mark + present.Cell(r.label, max(w-2-vw-1, 1), false) + " " + fit(r.value, vw, true)
		}
		line = fit(line, w, false)
		if selected {
			line = m.st.Selection.Render(line)
		}
		out = append(out, line)
	}
	return out, selIdx
}
