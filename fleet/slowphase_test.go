package fleet_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/wait"
)

// After a launch the slow refreshes are spread over the slow interval,
// not bunched into the interval a slow interval after the looks: each
// guest's first full slow refresh after its look comes at its own phase.
// Bunched, every one came in the same interval of every minute (at
// 10,000 guests, twice a steady interval's CPU, and the process's peak
// RSS).
func TestSlowRefreshPhased(t *testing.T) {
	const n, phases = 96, 12
	opts := fastOptions()
	opts.SlowInterval = phases * opts.Interval
	_, f := simFleet(t, n, opts)
	f.Start(t.Context())
	// Each guest's slow refreshes as LastSlow shows them: the look, the
	// rest of its slow items at the next poll, then the first full one.
	seen := map[string][]time.Time{}
	wait.For(t, 30*time.Second, func() (bool, string) {
		done := 0
		for _, g := range f.Snapshot().Guests {
			ts := seen[g.Name]
			if !g.LastSlow.IsZero() && (len(ts) == 0 || !g.LastSlow.Equal(ts[len(ts)-1])) {
				seen[g.Name] = append(ts, g.LastSlow)
			}
			if len(seen[g.Name]) >= 3 {
				done++
			}
		}
		return done == n, fmt.Sprintf("%d of %d guests past their first full slow refresh", done, n)
	})
	var buckets [phases + 2]int
	for name, ts := range seen {
		gap := ts[2].Sub(ts[1]) // the rest to the first full refresh
		b := min(int(gap/opts.Interval), len(buckets)-1)
		buckets[b]++
		if gap > opts.SlowInterval+opts.Interval {
			t.Errorf("%s: its first full slow refresh came %v after the rest, past the slow interval (%v)", name, gap, opts.SlowInterval)
		}
	}
	most, used := 0, 0
	for _, c := range buckets {
		most = max(most, c)
		if c > 0 {
			used++
		}
	}
	// Evenly, n/phases (8) an interval; bunched, all n in one or two.
	if most > n/4 || used < phases*2/3 {
		t.Errorf("the first full slow refreshes by interval after the rest: %v (at most %d in one, %d intervals used): bunched", buckets, most, used)
	}
}
