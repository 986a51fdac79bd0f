package fleet

import (
	"context"
	"sync"
)

// launcher runs every guest's first poll at once, at most Concurrency at a
// time, the guests named by Prioritize (the rows on screen) first. The
// spread start offsets of the poll loops apply from the second poll on: an
// operator opening the dashboard should not watch "connecting" for a whole
// interval while each guest waits for its slot. While first polls are
// waiting, guests already launched skip their slots (for at most MaxBackoff,
// see session.yieldToLaunch): on a busy machine they would otherwise take
// the CPU the launch needs.
type launcher struct {
	f *Fleet

	mu       sync.Mutex
	queue    []launch            // waiting, in arrival order; head is the next
	head     int                 // queue[:head] are taken
	waiting  map[*session]launch // what queue holds that is not yet taken
	first    []*session          // Prioritize's guests, taken before the queue
	running  int                 // workers
	inFlight int                 // first polls taken and not yet done
}

// launch is one guest's first poll to run, under the context of its loop.
type launch struct {
	ctx context.Context
	s   *session
}

// enqueue asks for first polls; each session's result arrives on its
// launched channel.
func (l *launcher) enqueue(items []launch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiting == nil {
		l.waiting = make(map[*session]launch)
	}
	for _, it := range items {
		l.waiting[it.s] = it
		l.queue = append(l.queue, it)
	}
	for range min(len(items), l.f.opts.Concurrency-l.running) {
		l.running++
		l.f.wg.Go(l.work)
	}
}

// prioritize makes the named guests' first polls, those still waiting, go
// out before any other. The latest call wins.
func (l *launcher) prioritize(ss []*session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Kept whole, also names not waiting yet: the dashboard may say what
	// it shows before the fleet starts, or before a guest is added.
	l.first = ss
}

// promote moves s to the front (it was poked while waiting), and reports
// whether it was still waiting.
func (l *launcher) promote(s *session) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.waiting[s]; ok {
		l.first = append([]*session{s}, l.first...)
		return true
	}
	return false
}

// next takes the launch to run now: a prioritized one, else the oldest.
func (l *launcher) next() (launch, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// first is a screenful: scanning it whole each time is cheap.
	for i, s := range l.first {
		if it, ok := l.waiting[s]; ok {
			delete(l.waiting, s)
			l.first = append(l.first[:i:i], l.first[i+1:]...)
			l.inFlight++
			return it, true
		}
	}
	for l.head < len(l.queue) {
		it := l.queue[l.head]
		l.queue[l.head] = launch{}
		l.head++
		if _, ok := l.waiting[it.s]; ok {
			delete(l.waiting, it.s)
			l.inFlight++
			return it, true
		}
	}
	// Drained: let the backing array go.
	l.queue, l.head = nil, 0
	l.running--
	return launch{}, false
}

// busy reports whether first polls are waiting or running. The last ones
// of a launch on a busy machine can take seconds: the polls of every other
// guest would slow them further.
func (l *launcher) busy() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiting) > 0 || l.inFlight > 0
}

// work runs first polls until none is waiting.
func (l *launcher) work() {
	for {
		it, ok := l.next()
		if !ok {
			return
		}
		var err error
		if err = it.ctx.Err(); err == nil {
			err = it.s.poll(it.ctx, false)
		}
		l.mu.Lock()
		l.inFlight--
		l.mu.Unlock()
		l.f.sched.launched(it.s, err) // the polls after it (sched.go)
	}
}

// Prioritize tells a started fleet which guests matter most now (the
// dashboard's visible rows): the first polls of those still waiting for
// theirs go out before all others. Unknown names are ignored; each call
// replaces the last.
func (f *Fleet) Prioritize(names []string) {
	var ss []*session
	for _, s := range f.sessionsFor(names) {
		if s != nil {
			ss = append(ss, s)
		}
	}
	f.launch.prioritize(ss)
}
