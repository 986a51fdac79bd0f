package tui

import "strings"

// A sparkline is a series drawn as one line of block glyphs, newest at the
// right. No charting library: ntcharts (the one well kept for Bubble Tea)
// is still on Bubble Tea v1 and Lip Gloss v1 (v0.4.0 as of this writing),
// and one line of eighth blocks is all a detail pane needs.

var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// point is one sample of a series; ok false leaves a gap.
type point struct {
	v  float64
	ok bool
}

// sparkline draws the newest w points in w cells (padded on the left when
// there are fewer). hi is the top of the scale; 0 scales to the largest
// value shown. Values must already be bounded (metrics.go); anything below
// 0 draws as the lowest block and above hi as the highest.
func sparkline(pts []point, w int, hi float64) string {
	if w <= 0 {
		return ""
	}
	pts = pts[max(len(pts)-w, 0):]
	if hi <= 0 {
		for _, p := range pts {
			if p.ok {
				hi = max(hi, p.v)
			}
		}
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", w-len(pts)))
	top := len(sparkBlocks) - 1
	for _, p := range pts {
		switch {
		case !p.ok:
			b.WriteByte(' ')
		case hi <= 0:
			b.WriteRune(sparkBlocks[0])
		default:
			i := int(p.v/hi*float64(top) + 0.5)
			b.WriteRune(sparkBlocks[min(max(i, 0), top)])
		}
	}
	return b.String()
}

// seriesStats are a series' newest value (ok false when the newest
// sample lacks it), and the mean and largest of its known values (any
// false when none is known).
func seriesStats(pts []point) (last float64, lastOK bool, mean, most float64, any bool) {
	n := 0
	for _, p := range pts {
		if p.ok {
			mean += p.v
			most = max(most, p.v)
			n++
		}
	}
	if len(pts) > 0 {
		last, lastOK = pts[len(pts)-1].v, pts[len(pts)-1].ok
	}
	if n == 0 {
		return last, lastOK, 0, 0, false
	}
	return last, lastOK, mean / float64(n), most, true
}
