package fleet

import (
	"iter"
	"math"
	"time"
)

// Recent is a guest's last few durations, oldest first: its round trips
// (Guest.RTTHistory) and clock skews (SkewHistory), at most rttHistory.
// One word of the Guest: the values are an immutable buffer that each
// change replaces, shared by every Guest published from it. They are kept
// as float32 nanoseconds, 64 bytes for sixteen (int64 slices with room to
// grow took 192 each; a poll that has both a round trip and a skew makes
// their two buffers in one allocation): exact to 16.7 ms, within 6 parts in 100 million
// beyond (a sparkline and its figures need three digits). Any duration
// fits, a guest's clock days off included: none is clamped or wrapped,
// and the extremes come back as the largest and smallest Duration. The
// zero Recent is empty.
type Recent struct{ b *recentBuf }

// recentBuf holds the durations from the front, the unused rest NaN (no
// duration is: its length is where they end).
type recentBuf [rttHistory]float32

// RecentOf is a Recent of the last rttHistory of ds, oldest first: for a
// source of Guests other than a Fleet (a test's, a replay's).
func RecentOf(ds ...time.Duration) Recent {
	var r Recent
	for _, d := range ds {
		r = r.push(d)
	}
	return r
}

// Len is how many durations r holds.
func (r Recent) Len() int {
	if r.b == nil {
		return 0
	}
	for i, v := range r.b {
		if math.IsNaN(float64(v)) {
			return i
		}
	}
	return rttHistory
}

// At is duration i, oldest first.
func (r Recent) At(i int) time.Duration {
	if i < 0 || i >= r.Len() {
		panic("fleet: Recent.At index out of range")
	}
	return fromRecent(r.b[i])
}

// All yields the durations oldest first, with their index.
func (r Recent) All() iter.Seq2[int, time.Duration] {
	return func(yield func(int, time.Duration) bool) {
		for i := range r.Len() {
			if !yield(i, r.At(i)) {
				return
			}
		}
	}
}

// Durations is a copy of r, oldest first; nil when it is empty.
func (r Recent) Durations() []time.Duration {
	if r.Len() == 0 {
		return nil
	}
	out := make([]time.Duration, r.Len())
	for i := range out {
		out[i] = r.At(i)
	}
	return out
}

// push is r with d added, the oldest dropped past rttHistory: a new
// buffer, as r's may be published.
func (r Recent) push(d time.Duration) Recent { return r.pushTo(d, new(recentBuf)) }

// pushTo is push into nb, a fresh buffer.
func (r Recent) pushTo(d time.Duration, nb *recentBuf) Recent {
	n := r.Len()
	if n == rttHistory {
		copy(nb[:], r.b[1:])
		n--
	} else if n > 0 {
		copy(nb[:], r.b[:n])
	}
	nb[n] = float32(d)
	for i := n + 1; i < rttHistory; i++ {
		nb[i] = float32(math.NaN())
	}
	return Recent{nb}
}

// fromRecent is the Duration nearest v: float32 reaches past Duration's
// range (the largest Duration rounds up to 2^63), which comes back as
// the largest or smallest Duration, not wrapped.
func fromRecent(v float32) time.Duration {
	f := float64(v)
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(f)
}

// recentPage holds a session's round trips and clock skews
// (Guest.RTTHistory, SkewHistory) once both are full, each Recent a window
// of rttHistory values in it: a poll's pair is written past the newest
// windows (which no published Guest's window reaches) and the windows
// move on, so that a poll allocates nothing for them, a page every
// recentPageLen-rttHistory polls (a pair of fresh buffers each poll was a
// seventh of a steady poll's allocated bytes). Only the session's update
// writes it (under its mu), and only at next, after every window handed
// out: published values never change. 260 bytes, no pointers.
type recentPage struct {
	rtt, skew [recentPageLen]float32
	next      int // values written in each; the newest windows end here
}

// recentPageLen is a page's values per history: twice the history, a
// page every sixteen polls.
const recentPageLen = 2 * rttHistory

// window is the Recent of the rttHistory values of v up to p.next.
func (p *recentPage) window(v *[recentPageLen]float32) Recent {
	return Recent{(*recentBuf)(v[p.next-rttHistory : p.next])}
}

// pushBoth is g's round trips and skews with rtt and skew pushed, as
// push makes them: in *pp when the two histories are full and its newest
// windows, else in a fresh page that *pp becomes (while they fill up, in a
// pair of fresh buffers, as before).
func pushBoth(pp **recentPage, g *Guest, rtt, skew time.Duration) {
	if g.RTTHistory.Len() < rttHistory || g.SkewHistory.Len() < rttHistory {
		bufs := new([2]recentBuf) // both in one allocation
		g.SkewHistory = g.SkewHistory.pushTo(skew, &bufs[0])
		g.RTTHistory = g.RTTHistory.pushTo(rtt, &bufs[1])
		*pp = nil
		return
	}
	p := *pp
	if p == nil || p.next == recentPageLen || g.RTTHistory != p.window(&p.rtt) || g.SkewHistory != p.window(&p.skew) {
		p = &recentPage{next: rttHistory - 1}
		copy(p.rtt[:], g.RTTHistory.b[1:])
		copy(p.skew[:], g.SkewHistory.b[1:])
		*pp = p
	}
	p.rtt[p.next], p.skew[p.next] = float32(rtt), float32(skew)
	p.next++
	g.RTTHistory, g.SkewHistory = p.window(&p.rtt), p.window(&p.skew)
}
