// Package backoff is the retry delay of every retrying loop in guestdeck
// (a failing guest's polls, a thaw guestdeck owes, a libvirt host's
// reconnects): doubling from a minimum to a cap, with ±20% jitter so that
// peers that failed together do not retry in step.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff hands out the delays of one retrying loop; its zero value is not
// usable (Min, Max and Rand are required). Not safe for concurrent use,
// like its Rand.
type Backoff struct {
	Min, Max time.Duration
	Rand     *rand.Rand
	n        int // delays handed out since the last Reset
}

// Next is the delay before the next retry: Min, then doubling up to Max,
// each with ±20% jitter.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.n && d < b.Max; i++ {
		d *= 2
	}
	b.n++
	return Jitter(min(d, b.Max), b.Rand)
}

// Reset starts again from Min (the peer answered).
func (b *Backoff) Reset() { b.n = 0 }

// Jitter is d ±20%.
func Jitter(d time.Duration, rng *rand.Rand) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rng.Float64()))
}
