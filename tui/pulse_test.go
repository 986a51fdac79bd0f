package tui

import (
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// TestHistogramShortKeepsOutliers: with fewer rows than buckets, the empty
// buckets and then the lowest go, never the worst: at 80x24 the clock-skew
// histogram hid the guests an hour off.
func TestHistogramShortKeepsOutliers(t *testing.T) {
	bs := skewBuckets()
	g := &fleet.Guest{Target: fleet.Target{Name: "far-off"}}
	near := &fleet.Guest{Target: fleet.Target{Name: "near"}}
	addToBuckets(bs, near, time.Millisecond)
	addToBuckets(bs, near, 50*time.Millisecond)
	addToBuckets(bs, g, 2*time.Hour)
	sec := histogram("Clock skew", bs, 2)
	if len(sec.rows) != 2 || sec.rows[1].label != "≥1h" || sec.rows[1].guest != "far-off" || sec.rows[0].label != "10–100ms" {
		t.Errorf("rows: %+v", sec.rows)
	}
	if sec := histogram("Clock skew", skewBuckets(), 6); len(sec.rows) != 0 {
		t.Errorf("nothing measured: %+v", sec.rows)
	}
}
