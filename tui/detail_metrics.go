package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// The metrics tabs: each figure as a sparkline over the samples the fleet
// keeps (Source's History, a fixed ring), with its newest, mean and largest
// value. Absent values are gaps in the line and "–" in the figures; the
// sample's Note says why.

// series is one line of a metrics tab.
type series struct {
	label  string
	of     func(fleet.Metrics) (float64, bool)
	format func(float64) string
	hi     float64 // the scale's top; 0 scales to the largest shown
}

func pctSeries(label string, r func(fleet.Metrics) fleet.Rate) series {
	return series{label, func(mt fleet.Metrics) (float64, bool) { return pctOf(r(mt)) }, func(v float64) string { return fmtPct(v) + "%" }, 100}
}

func bpsSeries(label string, r func(fleet.Metrics) fleet.Rate) series {
	return series{label, func(mt fleet.Metrics) (float64, bool) { return bpsOf(r(mt)) }, func(v float64) string { return fmtBps(v) + "/s" }, 0}
}

func countSeries(label string, r func(fleet.Metrics) fleet.Rate, hi float64) series {
	return series{label, func(mt fleet.Metrics) (float64, bool) { return bounded(r(mt), hi) }, fmtLoad, 0}
}

// samples is g's history, or its newest sample alone when the source keeps
// none; nil before the first sample. History keeps only the rates drawn as
// series: the newest sample is g.Metrics in full (its note, filesystems,
// 5 and 15 minute load, exact rates) when the history ends in it.
func (m *Model) samples(g *fleet.Guest) []fleet.Metrics {
	if h := m.history(g.Name); len(h) > 0 {
		if last := &h[len(h)-1]; last.At.Equal(g.Metrics.At) {
			*last = g.Metrics
		}
		return h
	}
	if !g.Metrics.At.IsZero() {
		return []fleet.Metrics{g.Metrics}
	}
	return nil
}

// metricsLines is the content of the current metrics tab for g.
func (m *Model) metricsLines(g *fleet.Guest) []string {
	if m.tab == tabLatency {
		return m.latencyLines(g)
	}
	hist := m.samples(g)
	if len(hist) == 0 {
		return []string{m.st.Muted.Render("no metrics sampled yet")}
	}
	var lines []string
	newest := hist[len(hist)-1]
	if newest.Note != "" {
		lines = append(lines, m.st.Warn.Render("note: "+present.Text(newest.Note, max(m.width-6, 1))))
	}
	var ss []series
	switch m.tab {
	case tabCPU:
		ss = []series{
			pctSeries("CPU busy", func(mt fleet.Metrics) fleet.Rate { return mt.CPUBusy }),
			pctSeries("I/O wait", func(mt fleet.Metrics) fleet.Rate { return mt.IOWait }),
			pctSeries("Steal", func(mt fleet.Metrics) fleet.Rate { return mt.Steal }),
			countSeries("Load 1m", func(mt fleet.Metrics) fleet.Rate { return mt.Load1 }, maxLoad),
		}
	case tabDisk:
		ss = []series{
			bpsSeries("Read", func(mt fleet.Metrics) fleet.Rate { return mt.DiskReadBps }),
			bpsSeries("Write", func(mt fleet.Metrics) fleet.Rate { return mt.DiskWriteBps }),
			countSeries("Read IOPS", func(mt fleet.Metrics) fleet.Rate { return mt.DiskReadIOPS }, maxIOPS),
			countSeries("Write IOPS", func(mt fleet.Metrics) fleet.Rate { return mt.DiskWriteIOPS }, maxIOPS),
		}
	case tabNet:
		ss = []series{
			bpsSeries("Receive", func(mt fleet.Metrics) fleet.Rate { return mt.NetRxBps }),
			bpsSeries("Transmit", func(mt fleet.Metrics) fleet.Rate { return mt.NetTxBps }),
			countSeries("Errors/s", func(mt fleet.Metrics) fleet.Rate { return mt.NetErrsPerSec }, maxIOPS),
		}
	}
	for _, s := range ss {
		pts := make([]point, len(hist))
		for i, mt := range hist {
			pts[i].v, pts[i].ok = s.of(mt)
		}
		lines = append(lines, m.seriesLine(s.label, pts, s.format, s.hi))
	}
	switch m.tab {
	case tabCPU:
		if l5, ok := loadOf(newest.Load5); ok {
			l15, _ := loadOf(newest.Load15)
			extra := fmt.Sprintf("load 5m %s, 15m %s", fmtLoad(l5), fmtLoad(l15))
			if newest.LoadDerived {
				extra += " (derived from cpustats: the agent lacks guest-get-load)"
			}
			lines = append(lines, kv("", m.st.Muted.Render(extra)))
		}
	case tabDisk:
		lines = append(lines, m.fsUsageLines(newest)...)
	}
	return append(lines, m.spanLine(hist))
}

// seriesLine is "label  sparkline  now X  mean Y  max Z".
func (m *Model) seriesLine(label string, pts []point, format func(float64) string, hi float64) string {
	const labelW, statsW = 11, 36
	w := max(m.width-labelW-statsW-2, 8)
	last, lastOK, mean, most, any := seriesStats(pts)
	now, avg, top := absentCell, absentCell, absentCell
	if lastOK {
		now = format(last)
	}
	if any {
		avg, top = format(mean), format(most)
	}
	stats := fmt.Sprintf("now %-7s mean %-7s max %-7s", now, avg, top)
	return fit(label, labelW, false) + m.st.Accent.Render(sparkline(pts, w, hi)) + "  " + stats
}

// spanLine says how much time the series cover.
func (m *Model) spanLine(hist []fleet.Metrics) string {
	if len(hist) < 2 {
		return m.st.Muted.Render(fmt.Sprintf("%s, newest right", present.Plural(len(hist), "sample")))
	}
	span := hist[len(hist)-1].At.Sub(hist[0].At).Round(time.Second)
	return m.st.Muted.Render(fmt.Sprintf("last %s, %s, newest right", fmtDur(span), present.Plural(len(hist), "sample")))
}

// fsUsageLines are the newest sample's filesystems with a usage bar; the
// mountpoints and types are the guest's text.
func (m *Model) fsUsageLines(mt fleet.Metrics) []string {
	if len(mt.Filesystems) == 0 {
		return nil
	}
	lines := []string{"", m.st.Header.Render(fmt.Sprintf("%-24s %-8s %10s %10s %5s  %s", "MOUNT", "TYPE", "USED", "SIZE", "USE%", ""))}
	const barW = 20
	const maxFS = 32 // a guest may report thousands of mounts
	for _, f := range mt.Filesystems[:min(len(mt.Filesystems), maxFS)] {
		pct, bar := "", ""
		g := fleet.Guest{Metrics: fleet.Metrics{Filesystems: []fleet.FSUsage{f}}}
		if p, _, ok := fullestFS(&g); ok {
			pct = fmtPct(p) + "%"
			bar = sparkBar(p/100, barW)
			if p >= fullFSPct {
				bar = m.st.Error.Render(bar)
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s %10s %10s %5s  %s", padText(f.Mountpoint, 24, 64), padText(f.Type, 8, 16),
			size(f.UsedBytes), size(f.TotalBytes), pct, bar))
	}
	if n := len(mt.Filesystems) - maxFS; n > 0 {
		lines = append(lines, m.st.Muted.Render(fmt.Sprintf("and %d more", n)))
	}
	return lines
}

// sparkBar is a horizontal bar of frac (0..1) in w cells, in eighths.
func sparkBar(frac float64, w int) string {
	eighths := int(min(max(frac, 0), 1)*float64(w*8) + 0.5)
	s := strings.Repeat("█", eighths/8)
	if r := eighths % 8; r > 0 {
		s += string([]rune("▏▎▍▌▋▊▉")[r-1])
	}
	return s + strings.Repeat("·", w-present.Width(s))
}

// latencyLines: the round trips the fleet measured (its own clock, so no
// bound is needed beyond the type) and the clock skew.
func (m *Model) latencyLines(g *fleet.Guest) []string {
	ms := func(v float64) string { return fmtDur(time.Duration(v * float64(time.Millisecond))) }
	var lines []string
	if g.RTTHistory.Len() > 0 {
		pts := make([]point, g.RTTHistory.Len())
		for i, d := range g.RTTHistory.All() {
			pts[i] = point{float64(d) / float64(time.Millisecond), d > 0}
		}
		lines = append(lines, m.seriesLine("Round trip", pts, ms, 0))
		lines = append(lines, m.st.Muted.Render(fmt.Sprintf("%s of guest-sync, newest right", present.Plural(len(pts), "round trip"))))
	} else {
		lines = append(lines, kv("Round trip", m.st.Muted.Render("none measured yet")))
	}
	skew := m.st.Muted.Render("unknown")
	if g.SkewKnown {
		skew = fmtSkew(g.Skew) + " (guest clock minus host clock, corrected by half the round trip)"
	}
	lines = append(lines, "", kv("Clock skew", skew))
	if g.SkewHistory.Len() > 0 {
		// The sparkline draws how far off the clock is, either way.
		pts := make([]point, g.SkewHistory.Len())
		for i, d := range g.SkewHistory.All() {
			pts[i] = point{float64(absDur(d)) / float64(time.Millisecond), true}
		}
		lines = append(lines, m.seriesLine("|Skew|", pts, ms, 0))
		lines = append(lines, m.st.Muted.Render(fmt.Sprintf("%s, either way, newest right", present.Plural(len(pts), "reading"))))
	}
	return lines
}

// Bounds on the disks and routes tabs: a guest may report thousands.
const (
	maxDiskRows  = 64
	maxRouteRows = 128
)

// absentLine says why a list the slow poll reads is empty: the agent lacks
// the command (and which qemu-ga has it), or it was not read yet.
func (m *Model) absentLine(g *fleet.Guest, cmd, since, what string) []string {
	if present, enabled := g.Capability(cmd); !present || !enabled {
		why := "lacks"
		if present {
			why = "has disabled"
		}
		return []string{m.st.Muted.Render(fmt.Sprintf("no %s: the agent %s %s (qemu-ga %s)", what, why, cmd, since))}
	}
	return []string{m.st.Muted.Render("no " + what + " read yet (read with the slow items)")}
}

// disksLines: guest-get-disks, with the NVMe SMART health where the agent
// gives it. Every number is the guest's and range-checked; names escaped.
func (m *Model) disksLines(g *fleet.Guest) []string {
	disks := g.Metrics.Disks
	if len(disks) == 0 {
		return m.absentLine(g, "guest-get-disks", "5.2+", "disks")
	}
	lines := []string{m.st.Header.Render(fmt.Sprintf("%-14s %-5s %-6s %-20s %-12s %s", "NAME", "PART", "BUS", "SERIAL", "ALIAS", "SMART"))}
	for i, d := range disks[:min(len(disks), maxDiskRows)] {
		part, bus, serial := "", "", ""
		if d.Partition {
			part = "yes"
		}
		if a := d.Address; a != nil {
			bus, serial = a.BusType, a.Serial
		}
		lines = append(lines, fmt.Sprintf("%s %-5s %s %s %s %s", padText(d.Name, 14, 40), part, padText(bus, 6, 12),
			padText(serial, 20, 40), padText(d.Alias, 12, 40), m.smartText(g, i)))
	}
	if n := len(disks) - maxDiskRows; n > 0 {
		lines = append(lines, m.st.Muted.Render(fmt.Sprintf("and %d more", n)))
	}
	return lines
}

// smartText sums up disk i's SMART data; a figure out of its range is "?".
// (By index: tui reads agent types through fleet, never imports agentclient.)
func (m *Model) smartText(g *fleet.Guest, i int) string {
	s := g.Metrics.Disks[i].Smart
	if s == nil {
		return m.st.Muted.Render("–")
	}
	if s.Type != "nvme" {
		return present.Text(s.Type, 16) + m.st.Muted.Render(" (no health data)")
	}
	in := func(v, lo, hi int, unit string) string {
		if v < lo || v > hi {
			return "?"
		}
		return fmt.Sprintf("%d%s", v, unit)
	}
	// 128-bit counters: the high half set is past any real disk.
	u128 := func(lo, hi uint64) string {
		if hi != 0 {
			return "?"
		}
		return fmt.Sprintf("%d", lo)
	}
	temp := "?"
	if s.Temperature > 0 && s.Temperature < 273+200 {
		temp = fmt.Sprintf("%d°C", s.Temperature-273)
	}
	out := fmt.Sprintf("nvme %s, %s used, spare %s (min %s), media errors %s, %s h on, %s unsafe shutdowns", temp,
		in(s.PercentageUsed, 0, 255, "%"), in(s.AvailableSpare, 0, 100, "%"), in(s.AvailableSpareThreshold, 0, 100, "%"),
		u128(s.MediaErrorsLo, s.MediaErrorsHi), u128(s.PowerOnHoursLo, s.PowerOnHoursHi), u128(s.UnsafeShutdownsLo, s.UnsafeShutdownsHi))
	// The warning is a byte of flags; outside a byte it is no flags, but
	// it is not silence either.
	switch cw := s.CriticalWarning; {
	case cw < 0 || cw > 0xff:
		return m.st.Error.Render("CRITICAL WARNING ?; ") + out
	case cw != 0:
		return m.st.Error.Render(fmt.Sprintf("CRITICAL WARNING %#02x; ", cw)) + out
	}
	return out
}

// routesLines: guest-network-get-route, IPv4 and IPv6 as the agent gives
// them (its text, escaped and cut).
func (m *Model) routesLines(g *fleet.Guest) []string {
	routes := g.Metrics.Routes
	if len(routes) == 0 {
		return m.absentLine(g, "guest-network-get-route", "9.1+", "routes")
	}
	lines := []string{m.st.Header.Render(fmt.Sprintf("%-3s %-34s %-26s %-10s %7s %6s", "IP", "DESTINATION", "GATEWAY / NEXT HOP", "IFACE", "METRIC", "MTU"))}
	for _, r := range routes[:min(len(routes), maxRouteRows)] {
		dest, via := r.Destination, r.Gateway
		switch {
		case r.Mask != "":
			dest += " mask " + r.Mask
		case r.DesPrefixLen != "":
			dest += "/" + r.DesPrefixLen
		}
		if r.NextHop != "" {
			via = r.NextHop
		}
		mtu := ""
		if r.MTU != nil && *r.MTU > 0 && *r.MTU < 1<<20 {
			mtu = fmt.Sprintf("%d", *r.MTU)
		}
		ver := "?"
		if r.Version == 4 || r.Version == 6 {
			ver = fmt.Sprintf("v%d", r.Version)
		}
		lines = append(lines, fmt.Sprintf("%-3s %s %s %s %7d %6s", ver, padText(dest, 34, 64), padText(via, 26, 48),
			padText(r.Iface, 10, 32), r.Metric, mtu))
	}
	if n := len(routes) - maxRouteRows; n > 0 {
		lines = append(lines, m.st.Muted.Render(fmt.Sprintf("and %d more", n)))
	}
	return lines
}
