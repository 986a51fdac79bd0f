package fleet

import (
	"context"
	"time"
)

// PollAll polls every guest once as its loop would (the slow items only when
// due), for the memory benchmark (BenchmarkHeapPerGuest): RefreshOnce forces
// the slow items, which a steady state asks once a minute.
func PollAll(ctx context.Context, f *Fleet) {
	f.mu.Lock()
	ss := f.order
	f.mu.Unlock()
	forEach(ctx, len(ss), f.opts.Concurrency, func(i int) { _ = ss[i].poll(ctx, false) })
}

// SetPrefetch turns the first poll's prefetch (prefetch.go) on or off, for
// the tests that compare a first poll with it and without.
func SetPrefetch(f *Fleet, on bool) { f.noPrefetch = !on }

// Shown is what a poll shows of g without its timings (shownOf), for the
// comparisons with and without the prefetch.
func Shown(g *Guest) string { return shownOf(g, false) }

// AgeSlow moves every guest's last slow refresh back by d, as if that much
// time had passed: the next unforced poll finds the slow items due.
func AgeSlow(f *Fleet, d time.Duration) {
	f.mu.Lock()
	ss := f.order
	f.mu.Unlock()
	for _, s := range ss {
		s.update(func(g *Guest) { g.LastSlow = g.LastSlow.Add(-d) })
	}
}
