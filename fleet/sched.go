package fleet

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/internal/backoff"
)

// scheduler runs every started guest's polls after its first (launch.go):
// one heap of due times and one timer for the whole fleet, and workers that
// run the polls due. A goroutine and a timer per guest cost 5–8 KB of stack
// each at 10,000 guests, and each poll grew a shrunken stack again.
//
// Workers are elastic so that no guest can stall the others: a due poll
// goes to an idle worker, and when none is idle a new one starts. Hung
// guests hold a worker each for at most a poll's timeout, as they held
// their own loop before; at most Options.Concurrency idle workers are kept.
type scheduler struct {
	f *Fleet

	mu      sync.Mutex
	due     dueHeap   // sessions waiting for their next slot
	armedAt time.Time // the timer's target; zero when it is not set
	// idle: the channels of the workers waiting on work (1-buffered, one
	// each), the latest to wait last: the next job goes to it, whose
	// stack and cache are warm. A worker waits on its own channel alone,
	// not in a select with the fleet's context beside a shared channel
	// (selectgo, its locks on both channels and a sudog on each, was 3 %
	// of the dashboard's CPU at 10,000 guests); run closes them when the
	// fleet stops.
	idle []chan job
	// keep: how many idle workers may wait for work, at least
	// Options.Concurrency: the size of the recent bursts (runDue), so
	// that each burst finds its workers. With only Concurrency kept, at
	// 10,000 guests every 50 ms burst of 100 polls started and ended some
	// 40 goroutines, each growing its stack again: 7 % of the fleet's
	// steady-state CPU.
	keep int
	kick chan struct{} // 1-buffered: the earliest due time moved earlier
	ctx  context.Context
	// coalesce: polls due within this of the timer go out with it, up to
	// that much early. 10,000 guests spread over 5 s are a poll every
	// 0.5 ms; woken for each, the process never settled, and the Go
	// runtime's own wake-ups (sysmon, idle Ps) cost about a third of its
	// CPU. Woken every coalesce instead, it does the work in bursts.
	coalesce time.Duration
}

// maxCoalesce bounds scheduler.coalesce: a hundredth of the interval, at
// most this.
const maxCoalesce = 50 * time.Millisecond

// job is one poll to run.
type job struct {
	s      *session
	forced bool // a Poke: slow items too, and the backoff starts again
}

// loopPhase is where a guest's poll loop is. Guarded by scheduler.mu.
type loopPhase int

const (
	loopNew       loopPhase = iota // not started
	loopLaunching                  // its first poll is queued or running (launch.go)
	loopWaiting                    // in the heap, waiting for due
	loopRunning                    // a poll is running
	loopStopped                    // removed, closed or the fleet stopped
)

// loopState is one guest's place in the schedule. Guarded by scheduler.mu
// (the poll running is the only user of retry, and it runs alone).
type loopState struct {
	phase    loopPhase
	ctx      context.Context // the session's loop context (stopLoop cancels it)
	gen      uint32          // its entry in the heap is the one with this gen (dueHeap)
	at       time.Time       // when due (loopWaiting), or the slot being polled
	base     time.Time       // the guest's offset inside the interval
	retry    backoff.Backoff
	retrying bool // the last poll failed: its next one is a retry
	poked    bool // a Poke came while a poll ran: poll again at once
}

func newScheduler(f *Fleet) *scheduler {
	return &scheduler{f: f, kick: make(chan struct{}, 1), coalesce: min(f.opts.Interval/100, maxCoalesce)}
}

// start runs the timer until ctx (the fleet's loop context) ends.
func (sc *scheduler) start(ctx context.Context) {
	sc.mu.Lock()
	sc.ctx = ctx
	sc.mu.Unlock()
	sc.f.wg.Go(func() { sc.run(ctx) })
}

// prepare sets s up for its launch under ctx, its loop context, and
// reports whether it was poked before (its first poll then goes first).
func (sc *scheduler) prepare(s *session, ctx context.Context) (poked bool) {
	iv := sc.f.opts.Interval
	sc.mu.Lock()
	defer sc.mu.Unlock()
	poked = s.loop.poked
	// gen goes on: an entry of an earlier loop still in the heap must not
	// match the new one's.
	gen := s.loop.gen + 1
	s.loop = loopState{
		gen:   gen,
		phase: loopLaunching,
		ctx:   ctx,
		base:  time.Now().Add(time.Duration(s.seed % uint64(iv))),
		retry: backoff.Backoff{Min: min(max(iv/5, 100*time.Millisecond), time.Second), Max: sc.f.opts.MaxBackoff,
			Rand: rand.New(rand.NewPCG(s.seed, 0x9e3779b97f4a7c15))},
	}
	return poked
}

// launched takes a guest whose first poll ended with err into the
// schedule. The slot after the first poll is at least half an interval
// away, so that no guest is polled twice at launch.
func (sc *scheduler) launched(s *session, err error) {
	iv := sc.f.opts.Interval
	sc.mu.Lock()
	ls := &s.loop
	if ls.phase != loopLaunching || ls.ctx.Err() != nil || s.isClosed() {
		ls.phase = loopStopped
		sc.mu.Unlock()
		return
	}
	ls.retrying = err != nil
	ls.at = s.after(err, &ls.retry, nextSlot(ls.base, iv, time.Now().Add(iv/2)))
	sc.nextLocked(s)
}

// poke polls s at once: now if it waits for its slot, after the poll
// running if one is, and first in line if its first poll still waits.
func (sc *scheduler) poke(s *session) {
	sc.mu.Lock()
	ls := &s.loop
	switch ls.phase {
	case loopNew:
		ls.poked = true // promoted when it starts (startLoops)
	case loopLaunching:
		// Its first poll jumps the queue; when it is already running,
		// the poll after it goes out at once instead.
		if !sc.f.launch.promote(s) {
			ls.poked = true
		}
	case loopRunning:
		ls.poked = true
	case loopWaiting:
		sc.due.drop(s)
		sc.markRunningLocked(s, true)
		sc.mu.Unlock()
		sc.handoff(job{s: s, forced: true})
		return
	}
	sc.mu.Unlock()
}

// stop takes s out of the schedule for good (Remove, Close).
func (sc *scheduler) stop(s *session) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if s.loop.phase == loopWaiting {
		sc.due.drop(s)
	}
	s.loop.phase = loopStopped
}

// markRunningLocked takes s out of waiting for a poll about to be handed
// off; a Poke from now on asks for one more. Holds mu.
func (sc *scheduler) markRunningLocked(s *session, forced bool) {
	s.loop.phase = loopRunning
	s.loop.poked = false
	if forced {
		s.loop.retry.Reset()
	}
}

// nextLocked schedules s after a poll: at once when a Poke came meanwhile,
// else at s.loop.at. Holds mu, and releases it.
func (sc *scheduler) nextLocked(s *session) {
	if !s.loop.poked {
		sc.pushLocked(s)
		sc.mu.Unlock()
		return
	}
	sc.markRunningLocked(s, true)
	sc.mu.Unlock()
	sc.handoff(job{s: s, forced: true})
}

// handoff gives j to an idle worker, or to a new one. Not under mu. Once
// the fleet has stopped nothing new starts (a Poke may come after Close).
func (sc *scheduler) handoff(j job) {
	sc.mu.Lock()
	stopped := sc.ctx == nil || sc.ctx.Err() != nil
	var w chan job
	if n := len(sc.idle); n > 0 && !stopped {
		w = sc.idle[n-1]
		sc.idle[n-1] = nil
		sc.idle = sc.idle[:n-1]
	}
	sc.mu.Unlock()
	switch {
	case stopped:
		sc.stop(j.s)
	case w != nil:
		w <- j // never blocks: taken from idle, it is this job's alone
	default:
		sc.f.wg.Go(func() { sc.worker(j) })
	}
}

// pushLocked puts s in the heap at s.loop.at, moving the timer earlier if
// need be. Holds mu.
func (sc *scheduler) pushLocked(s *session) {
	s.loop.phase = loopWaiting
	sc.due.push(s)
	if sc.armedAt.IsZero() || s.loop.at.Before(sc.armedAt) {
		select {
		case sc.kick <- struct{}{}:
		default:
		}
	}
}

// run keeps the one timer on the earliest due time and dispatches what is
// due.
func (sc *scheduler) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		sc.mu.Lock()
		if at, ok := sc.due.peek(); ok {
			sc.armedAt = at
			timer.Reset(time.Until(sc.armedAt))
		} else {
			sc.armedAt = time.Time{}
			timer.Stop()
		}
		sc.mu.Unlock()
		select {
		case <-ctx.Done():
			sc.mu.Lock()
			for _, w := range sc.idle {
				close(w) // its worker ends; a worker idle later sees ctx ended
			}
			sc.idle = nil
			sc.mu.Unlock()
			return
		case <-sc.kick:
		case <-timer.C:
			sc.runDue()
		}
	}
}

// runDue dispatches every poll that is due. While a launch is in progress
// a guest with recent data skips its slot (yieldToLaunch), unless its last
// poll failed.
func (sc *scheduler) runDue() {
	iv := sc.f.opts.Interval
	now := time.Now()
	horizon := now.Add(sc.coalesce)
	busy := sc.f.launch.busy()
	var ready []*session
	sc.mu.Lock()
	for {
		s := sc.due.popBy(horizon)
		if s == nil {
			break
		}
		ls := &s.loop
		if !ls.retrying && busy && s.yieldToLaunch() {
			ls.at = nextSlot(ls.base, iv, later(now, ls.at))
			sc.pushLocked(s)
			continue
		}
		sc.markRunningLocked(s, false)
		ready = append(ready, s)
	}
	// The largest recent burst, forgotten slowly (a sixteenth a burst).
	sc.keep = max(len(ready), sc.keep-(sc.keep+15)/16)
	sc.mu.Unlock()
	for _, s := range ready {
		sc.handoff(job{s: s})
	}
}

// worker runs j, then waits for more while at most Concurrency workers (or
// keep, when more) are idle.
func (sc *scheduler) worker(j job) {
	sc.mu.Lock()
	ctx := sc.ctx
	sc.mu.Unlock()
	var in chan job
	for {
		sc.runJob(j)
		sc.mu.Lock()
		// ctx.Err under mu: once run has closed the idle channels (after
		// ctx ended), no worker joins them.
		if len(sc.idle) >= max(sc.f.opts.Concurrency, sc.keep) || ctx.Err() != nil {
			sc.mu.Unlock()
			return
		}
		if in == nil {
			in = make(chan job, 1)
		}
		sc.idle = append(sc.idle, in)
		sc.mu.Unlock()
		var ok bool
		if j, ok = <-in; !ok {
			return // the fleet stopped
		}
	}
}

// runJob polls and schedules the next poll: the next slot after a success,
// a backoff delay after a failure, at once after a Poke that came meanwhile.
func (sc *scheduler) runJob(j job) {
	s, iv := j.s, sc.f.opts.Interval
	sc.mu.Lock()
	ctx, slot := s.loop.ctx, s.loop.at
	sc.mu.Unlock()
	err := s.poll(ctx, j.forced)
	if ctx.Err() != nil || s.isClosed() {
		sc.stop(s)
		return
	}
	if err == nil && !j.forced && time.Since(slot) > iv {
		s.update(func(g *Guest) { g.Late++ })
	}
	sc.mu.Lock()
	ls := &s.loop
	if ls.phase != loopRunning {
		sc.mu.Unlock()
		return // stopped meanwhile
	}
	ls.retrying = err != nil
	// From the slot, not from now: a poll coalesced early may end before
	// its slot, and must not be polled again in it. (A Poke's poll took
	// no slot: the next is the first after now.)
	from := time.Now()
	if !j.forced {
		from = later(from, slot)
	}
	ls.at = s.after(err, &ls.retry, nextSlot(ls.base, iv, from))
	sc.nextLocked(s)
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// dueHeap orders sessions by loop.at, earliest first. Its entries hold the
// due time themselves: at 10,000 guests a pop compares some 2×13 entries,
// and reaching into each session for its time (and writing its heap index
// at each swap) missed the cache every time; it was 4 % of the fleet's
// steady-state CPU. An entry is taken out lazily: drop bumps the session's
// gen, and the entry left behind, no longer matching it, is skipped when it
// surfaces (or swept, once stale entries are half the heap).
type dueHeap struct {
	epoch time.Time // at is kept as nanoseconds since it (monotonic)
	e     []dueEntry
	stale int // entries whose session's gen moved on
}

type dueEntry struct {
	at  int64 // ns since epoch
	gen uint32
	s   *session
}

func (h *dueHeap) nanos(t time.Time) int64 {
	if h.epoch.IsZero() {
		h.epoch = time.Now()
	}
	return int64(t.Sub(h.epoch))
}

// live reports whether e is its session's current entry.
func (e dueEntry) live() bool { return e.s.loop.gen == e.gen && e.s.loop.phase == loopWaiting }

// push adds s at s.loop.at. Its phase is loopWaiting.
func (h *dueHeap) push(s *session) {
	s.loop.gen++
	h.e = append(h.e, dueEntry{at: h.nanos(s.loop.at), gen: s.loop.gen, s: s})
	h.up(len(h.e) - 1)
}

// drop takes s's entry out (lazily). Its phase is loopWaiting.
func (h *dueHeap) drop(s *session) {
	s.loop.gen++
	h.stale++
	if h.stale > 64 && h.stale > len(h.e)/2 {
		h.sweep()
	}
}

// peek returns the earliest due time, skipping stale entries.
func (h *dueHeap) peek() (time.Time, bool) {
	for len(h.e) > 0 {
		if h.e[0].live() {
			return h.epoch.Add(time.Duration(h.e[0].at)), true
		}
		h.pop()
		h.stale = max(h.stale-1, 0)
	}
	return time.Time{}, false
}

// popBy takes the earliest session due by t, or returns nil.
func (h *dueHeap) popBy(t time.Time) *session {
	by := h.nanos(t)
	for len(h.e) > 0 && h.e[0].at <= by {
		e := h.pop()
		if e.live() {
			return e.s
		}
		h.stale = max(h.stale-1, 0)
	}
	return nil
}

func (h *dueHeap) pop() dueEntry {
	n := len(h.e) - 1
	e := h.e[0]
	h.e[0] = h.e[n]
	h.e[n] = dueEntry{}
	h.e = h.e[:n]
	if n > 0 {
		h.down(0)
	}
	return e
}

// sweep drops the stale entries and rebuilds the heap.
func (h *dueHeap) sweep() {
	k := 0
	for _, e := range h.e {
		if e.live() {
			h.e[k] = e
			k++
		}
	}
	clear(h.e[k:])
	h.e = h.e[:k]
	h.stale = 0
	for i := len(h.e)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *dueHeap) up(i int) {
	e := h.e[i]
	for i > 0 {
		p := (i - 1) / 2
		if h.e[p].at <= e.at {
			break
		}
		h.e[i] = h.e[p]
		i = p
	}
	h.e[i] = e
}

func (h *dueHeap) down(i int) {
	n := len(h.e)
	e := h.e[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h.e[r].at < h.e[c].at {
			c = r
		}
		if e.at <= h.e[c].at {
			break
		}
		h.e[i] = h.e[c]
		i = c
	}
	h.e[i] = e
}
