package main

import (
	"runtime/debug"
	"testing"
)

// TestDashboardGC: the dashboard (and a one-shot status) sets its own GOGC,
// unless the operator set GOGC or GOMEMLIMIT, whose word stands.
func TestDashboardGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	for _, c := range []struct {
		gogc, memlimit string
		want           int
	}{
		{"", "", dashboardGCPercent},
		{"100", "", 77},
		{"", "1GiB", 77},
	} {
		t.Setenv("GOGC", c.gogc)
		t.Setenv("GOMEMLIMIT", c.memlimit)
		debug.SetGCPercent(77)
		dashboardGC()
		if got := debug.SetGCPercent(100); got != c.want {
			t.Errorf("GOGC=%q GOMEMLIMIT=%q: GC percent %d, want %d", c.gogc, c.memlimit, got, c.want)
		}
		want := c.want
		if want == dashboardGCPercent {
			want = statusGCPercent
		}
		debug.SetGCPercent(77)
		gcPercent(statusGCPercent)
		if got := debug.SetGCPercent(100); got != want {
			t.Errorf("status, GOGC=%q GOMEMLIMIT=%q: GC percent %d, want %d", c.gogc, c.memlimit, got, want)
		}
	}
}
