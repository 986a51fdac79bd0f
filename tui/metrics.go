package tui

import (
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/guestdeck/guestdeck/fleet"
)

// historySource is what the metrics tabs need beyond Source: a guest's
// samples, oldest first (*fleet.Fleet has it). It is optional so that a
// Source without metrics history (tests, older fakes) still drives the
// dashboard; the tabs then say there is no history.
type historySource interface {
	History(name string) []fleet.Metrics
}

var _ historySource = (*fleet.Fleet)(nil)

// history is the guest's metrics samples, nil when the source keeps none.
func (m *Model) history(name string) []fleet.Metrics {
	if h, ok := m.src.(historySource); ok {
		return h.History(name)
	}
	return nil
}

// Bounds on what a guest's figures may be before they are shown or
// compared. A guest controls its counters: a value outside these is not a
// measurement, and is shown as absent ("–") rather than as 1e308 B/s.
const (
	maxPct  = 100
	maxBps  = 1 << 50 // 1 PiB/s: beyond any virtual disk or NIC
	maxIOPS = 1e9
	maxLoad = 1e6
)

// absentCell is what a metric column shows when the value is unknown.
const absentCell = "–"

// isMetricCol reports whether c is one of the live metrics columns: they
// sort absent values last in either direction, and start descending
// (busiest first) when picked by name or by a click.
func isMetricCol(c colID) bool {
	switch c {
	case colCPUBusy, colIOWait, colSteal, colLoad, colDiskR, colDiskW, colNetRx, colNetTx, colFSFull:
		return true
	}
	return false
}

// bounded is r's value when it is known and plausible for its kind.
func bounded(r fleet.Rate, hi float64) (float64, bool) {
	if !r.OK || math.IsNaN(r.V) || r.V < 0 || r.V > hi {
		return 0, false
	}
	return r.V, true
}

func pctOf(r fleet.Rate) (float64, bool)  { return bounded(r, maxPct) }
func bpsOf(r fleet.Rate) (float64, bool)  { return bounded(r, maxBps) }
func loadOf(r fleet.Rate) (float64, bool) { return bounded(r, maxLoad) }

// metricValue is guest g's figure in metrics column c.
func metricValue(g *fleet.Guest, c colID) (float64, bool) {
	mt := &g.Metrics
	switch c {
	case colCPUBusy:
		return pctOf(mt.CPUBusy)
	case colIOWait:
		return pctOf(mt.IOWait)
	case colSteal:
		return pctOf(mt.Steal)
	case colLoad:
		return loadOf(mt.Load1)
	case colDiskR:
		return bpsOf(mt.DiskReadBps)
	case colDiskW:
		return bpsOf(mt.DiskWriteBps)
	case colNetRx:
		return bpsOf(mt.NetRxBps)
	case colNetTx:
		return bpsOf(mt.NetTxBps)
	case colFSFull:
		pct, _, ok := fullestFS(g)
		return pct, ok
	}
	return 0, false
}

// metricCell is the text of metrics column c for g ("–" when absent).
func metricCell(g *fleet.Guest, c colID) string {
	v, ok := metricValue(g, c)
	if !ok {
		return absentCell
	}
	switch c {
	case colCPUBusy, colIOWait, colSteal, colFSFull:
		return fmtPct(v)
	case colLoad:
		return fmtLoad(v)
	}
	return fmtBps(v)
}

// fmtPct is a percentage in at most 4 cells: "0.4", "12", "100".
func fmtPct(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
}

// fmtLoad is a load average in at most 5 cells.
func fmtLoad(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
}

// fmtBps is a byte rate in at most 5 cells, binary units: "512", "1.2K",
// "340M", "12G". The column's title says it is per second.
func fmtBps(v float64) string {
	const units = "KMGTP"
	if v < 1024 {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	prec := 0
	if v < 10 {
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + string(units[i])
}

// fullestFS is g's fullest filesystem: its use in percent and its index in
// the list it came from. It reads the metrics sample's filesystems, or the
// agent's fsinfo when the sample has none. A filesystem whose used bytes
// exceed its size, or whose size is 0, is no percentage and is skipped.
func fullestFS(g *fleet.Guest) (pct float64, mount string, ok bool) {
	best := -1.0
	consider := func(used, total uint64, mp string) {
		if total == 0 || used > total {
			return
		}
		// used*100 would wrap near 2^64: multiply in 128 bits.
		hi, lo := bits.Mul64(used, 10000)
		q, _ := bits.Div64(hi, lo, total)
		if p := float64(q) / 100; p > best {
			best, mount = p, mp
		}
	}
	if fs := g.Metrics.Filesystems; len(fs) > 0 {
		for _, f := range fs {
			consider(f.UsedBytes, f.TotalBytes, f.Mountpoint)
		}
	} else {
		for _, f := range g.Filesystems {
			if f.UsedBytes != nil && f.TotalBytes != nil {
				consider(*f.UsedBytes, *f.TotalBytes, f.Mountpoint)
			}
		}
	}
	if best < 0 {
		return 0, "", false
	}
	return best, mount, true
}

// sortMetric orders rows by metrics column col. Guests whose value is
// absent go last in either direction (in name order): "unknown" is not
// "idle", and must not crowd the busiest guests off the top.
func sortMetric(rows []*fleet.Guest, col colID, desc bool) {
	type keyed struct {
		g  *fleet.Guest
		v  float64
		ok bool
	}
	ks := make([]keyed, len(rows))
	for i, g := range rows {
		v, ok := metricValue(g, col)
		ks[i] = keyed{g, v, ok}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		switch {
		case a.ok != b.ok:
			if a.ok {
				return -1
			}
			return 1
		case !a.ok || a.v == b.v:
			return 0
		case (a.v < b.v) != desc:
			return -1
		}
		return 1
	})
	for i := range ks {
		rows[i] = ks[i].g
	}
}

// sortBy makes col the sort column: metrics start busiest first (as in
// top), the others in ascending order.
func (m *Model) sortBy(col colID) {
	m.tbl.sortCol, m.tbl.sortDesc = col, isMetricCol(col)
	m.reindex()
}

// sortColumnNamed finds a column by its title or a short name ("cpu",
// "iowait", "disk-r", "fs"), case-insensitively.
func sortColumnNamed(name string) (colID, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	aliases := map[string]colID{
		"cpu": colCPUBusy, "busy": colCPUBusy, "iowait": colIOWait, "iow": colIOWait, "steal": colSteal, "stl": colSteal,
		"load": colLoad, "disk": colDiskR, "read": colDiskR, "write": colDiskW, "net": colNetRx, "rx": colNetRx, "tx": colNetTx,
		"fs": colFSFull, "full": colFSFull, "vcpu": colVCPU, "vcpus": colVCPU,
	}
	if c, ok := aliases[name]; ok {
		return c, true
	}
	for _, c := range columns {
		if strings.ToLower(c.title) == name || strings.TrimSuffix(strings.ToLower(c.title), "%") == name {
			return c.id, true
		}
	}
	return 0, false
}

// sortWords name the columns for :sort, one per column.
func sortWords() []string {
	out := make([]string, 0, numCols)
	for _, c := range columns {
		out = append(out, strings.TrimSuffix(strings.ToLower(c.title), "%"))
	}
	return out
}

// sortNames are the :sort completions.
func sortNames() []string {
	out := sortWords()
	for i, w := range out {
		out[i] = "sort " + w
	}
	return out
}

// Holding the order (the o key, :hold; like top's frozen display): the rows keep
// the order they had when it was held while values change underneath.
// Choosing another sort, or reversing it, re-sorts once and holds the new
// order; guests new to the fleet go after the held ones, sorted among
// themselves.

// toggleHold holds the current order, or lets it follow the values again.
func (m *Model) toggleHold() {
	t := &m.tbl
	t.held = !t.held
	t.heldRank = nil
	if t.held {
		t.heldRank = m.rankAll()
		m.setStatus("order held: rows stay put under live updates ("+m.keys.HoldOrder.Help().Key+" releases)", false)
		return
	}
	t.built = false // re-sort by the live values now
	m.reindex()
	m.setStatus("order follows the values again", false)
}

// rankAll sorts every guest of the snapshot by the current sort and
// numbers them: the held order, filter or not.
func (m *Model) rankAll() map[string]int {
	all := slices.Clone(m.snap.Guests)
	sortRows(all, m.tbl.sortCol, m.tbl.sortDesc, m.now())
	rank := make(map[string]int, len(all))
	for i, g := range all {
		rank[g.Name] = i
	}
	return rank
}

// orderRows sorts the filtered rows: by the sort column, or, while the
// order is held, by the held rank. resort says the sort itself changed.
func (m *Model) orderRows(rows []*fleet.Guest, resort bool) {
	t := &m.tbl
	if !t.held {
		sortRows(rows, t.sortCol, t.sortDesc, m.now())
		return
	}
	if resort || t.heldRank == nil {
		t.heldRank = m.rankAll()
	}
	// Ranked guests first, by rank; the rest (new since the hold) after,
	// in the sort's order. Each rank is looked up once, not per comparison.
	type keyed struct {
		g *fleet.Guest
		r int
	}
	known := make([]keyed, 0, len(rows))
	var fresh []*fleet.Guest
	for _, g := range rows {
		if r, ok := t.heldRank[g.Name]; ok {
			known = append(known, keyed{g, r})
		} else {
			fresh = append(fresh, g)
		}
	}
	slices.SortFunc(known, func(a, b keyed) int { return a.r - b.r })
	sortRows(fresh, t.sortCol, t.sortDesc, m.now())
	for i, k := range known {
		rows[i] = k.g
	}
	copy(rows[len(known):], fresh)
}
