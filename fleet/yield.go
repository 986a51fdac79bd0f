package fleet

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Keep, and yield on demand (channel.go). A session whose guest is a local
// unix socket keeps its connection between uses and lets go when another
// client waits for the channel. The agent takes one client at a time, so a
// waiting client sits in the kernel's queue of the agent's listening
// socket: one watcher per fleet looks at every listener's queue
// (agentclient.ListenerQueues, one sock_diag dump) and makes the sessions
// holding a listener that has a queue let go: at once when idle, else when
// the call in flight releases the token.
//
// A look costs the kernel's walk of every unix socket on the machine and
// a message per listener: at 10,000 listeners (BenchmarkListenerQueues,
// on a 2-core machine shared with other work) 2–4 ms of CPU with only the
// queues asked, and 7–9 ms with the socket files, which are asked only
// while a new connection's listener is still to be found. So the watcher
// waits 250 times as long as its last look took (wall time, which is at
// least its CPU), at least yieldPeriod and at most maxYieldPeriod
// (yieldWait): 0.4 % of a core or less, a look every 250 ms, on a machine
// with a few hundred sockets; about one a second at 10,000 guests, where
// the cap binds (a look every 300 ms there was a tenth of the dashboard's
// steady CPU): in place, beside two simulators (30,000 unix sockets), a
// look took 7.7–8.5 ms of CPU, some 0.8 % of a core. After that wait, the
// next look waits again while the machine's count of unix stream sockets
// stays as it was (lookGate: a waiting client's connect(2) adds one), up
// to yieldForced (2 s) after the last: a waiting client is still served
// within a guestdeck's 3 s dial timeout. It stops while no session keeps
// a channel this way.
const (
	yieldPeriod    = 250 * time.Millisecond
	maxYieldPeriod = time.Second
	yieldDuty      = 250 // the wait is at least this many times the look
	// yieldMisses: connections whose listener was not found before a
	// session stops keeping. Once is not enough: a dump that runs while
	// sockets come and go can skip one (the kernel resumes each read of a
	// dump at a count within a hash chain, and does not flag the change).
	yieldMisses = 3
	// yieldRetry: a session that stopped keeping (off) tries again with
	// its first connection after this long, then after twice as long at
	// each try that finds no listener, up to maxYieldRetry. A try costs
	// one connection let go at the next look (as any connection of a
	// session off is) and that look's socket files: at 10,000 sessions
	// off, one try each per half hour at most, and the watcher's looks
	// are bounded by its own period whatever the number of tries.
	yieldRetry    = time.Minute
	maxYieldRetry = 32 * time.Minute
)

// channelWatch is a session's part in the watch.
type channelWatch struct {
	// asked: a client waits for the channel: let go at the next release
	// (or now, when idle).
	asked atomic.Bool
	// off: this guest's listener could not be found (another network
	// namespace, not a socket file) for yieldMisses connections in a row:
	// it lets go after each use, as sessions did before, until retryAt
	// (unix ns), when its next connection is watched again: the listener
	// may be findable by then (the VM restarted with a socket file), and
	// one more miss turns it off again, for twice retryFor. misses counts
	// them; written by the watcher, except for a try.
	off    atomic.Bool
	misses atomic.Int32
	// on: the session is in the watcher's maps. Guarded by sem. (Here,
	// not last: the flags fill one word.)
	on       bool
	retryAt  atomic.Int64
	retryFor atomic.Int64 // the backoff of the last off; 0 once found
}

// turnOff makes the session let go after each use until its next try,
// a backoff after now: yieldRetry at first, doubled at each try that
// found no listener, at most maxYieldRetry. Called by the watcher.
func (c *channelWatch) turnOff(now time.Time) {
	d := yieldRetry
	if prev := time.Duration(c.retryFor.Load()); prev > 0 {
		d = min(2*prev, maxYieldRetry)
	}
	c.retryFor.Store(int64(d))
	c.retryAt.Store(now.Add(d).UnixNano())
	c.off.Store(true)
}

// yieldWatcher is the fleet's one watcher. Lock order: session.mu, then
// mu; the watcher takes no session lock while holding mu.
type yieldWatcher struct {
	mu sync.Mutex
	// broken: a look failed (no sock_diag here): nothing is kept this way
	// any more, by any session of the fleet.
	broken  error
	closed  bool // the fleet is closing: no new watcher
	running bool // the watcher goroutine is on

	fresh  map[*session]enrolment // kept, listener not found yet
	bySock map[uint32][]*session  // kept and found: by the listening socket's inode
	where  map[*session]uint32    // the inverse of bySock
	// enrolled numbers the enrolments (enrolment.n).
	enrolled uint64

	// afterDump, when set (tests), runs in each look between the dump and
	// its results being applied: where a session may let go of its
	// connection and enrol again with another.
	afterDump func()
}

// enrolment is one connection of a session waiting for its listener to be
// found: the socket path it was dialled at, and which enrolment it is. A
// look applies what it found only to the enrolment it looked for: the
// session may have let go meanwhile and enrolled another connection at
// the same path, maybe to another listener (the socket file replaced: a
// VM restarted), which the look's stat(2) did not see.
type enrolment struct {
	path string
	n    uint64
}

// keepsUntilAsked reports whether the connection stays open at release
// because the watcher will say when another client waits; it enrols the
// session with the watcher. Holds sem and mu.
func (s *session) keepsUntilAsked() bool {
	if s.watch.asked.Load() || s.f.opts.NoKeep {
		return false
	}
	if s.watch.off.Load() {
		if time.Now().UnixNano() < s.watch.retryAt.Load() {
			return false
		}
		// Backed off long enough: this connection tries again, and a
		// single miss turns the session off again.
		s.watch.misses.Store(yieldMisses - 1)
		s.watch.off.Store(false)
	}
	if s.watch.on {
		return true
	}
	path, ok := localSocket(s.target().Address)
	if !ok || !s.f.yield.watch(s, path) {
		return false
	}
	s.watch.on = true
	return true
}

// unwatch takes the session out of the watch: its connection is closed,
// or kept for a reason of its own (channel.go). Holds sem.
func (s *session) unwatch() {
	s.watch.asked.Store(false)
	if !s.watch.on {
		return
	}
	s.watch.on = false
	s.f.yield.forget(s)
}

// yieldChannel lets go of the connection because another client waits: at
// once when idle, else at the release of the token (under mu, so that the
// holder's release sees asked or this sees the token free: never neither).
func (s *session) yieldChannel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.asked.Store(true)
	select {
	case s.sem <- struct{}{}:
		s.letGoLocked()
		<-s.sem
	default:
	}
}

// localSocket is the socket path of a unix address the watcher can watch:
// a path, not an abstract name.
func localSocket(addr string) (string, bool) {
	network, path, err := agentclient.ParseAddress(addr)
	if err != nil || network != "unix" || strings.HasPrefix(path, "@") {
		return "", false
	}
	return path, true
}

// watch enrols s, keeping its channel open at path, and starts the watcher
// if need be; false when nothing may be kept this way. Holds s's sem and
// mu.
func (w *yieldWatcher) watch(s *session, path string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken != nil || w.closed {
		return false
	}
	if w.fresh == nil {
		w.fresh = make(map[*session]enrolment)
		w.bySock = make(map[uint32][]*session)
		w.where = make(map[*session]uint32)
	}
	w.enrolled++
	w.fresh[s] = enrolment{path: path, n: w.enrolled}
	if !w.running {
		w.running = true
		f := s.f
		f.wg.Go(func() { w.run(f) })
	}
	return true
}

// forget takes s out of the maps.
func (w *yieldWatcher) forget(s *session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.fresh, s)
	ino, ok := w.where[s]
	if !ok {
		return
	}
	delete(w.where, s)
	ss := w.bySock[ino]
	for i, o := range ss {
		if o == s {
			ss = append(ss[:i], ss[i+1:]...)
			break
		}
	}
	if len(ss) == 0 {
		delete(w.bySock, ino)
	} else {
		w.bySock[ino] = ss
	}
}

// close stops new watchers; Close waits for the running one (f.wg). Called
// before f.wg.Wait, so that no watcher is added to the group while it is
// waited for.
func (w *yieldWatcher) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// run looks at the listeners' queues until the fleet closes or no session
// keeps a channel this way: after each look, its wait (yieldWait); then,
// every yieldPeriod, when a connection may have come since (lookGate).
func (w *yieldWatcher) run(f *Fleet) {
	timer := time.NewTimer(yieldPeriod)
	defer timer.Stop()
	var gate lookGate
	for {
		select {
		case <-f.life.Done():
			w.stop()
			return
		case <-timer.C:
		}
		now := time.Now()
		count, known := agentclient.UnixStreamSockets()
		if !gate.due(now, count, known, w.hasFresh()) {
			timer.Reset(yieldPeriod)
			continue
		}
		gate.last, gate.count = now, count // read before the dump: what comes during it is a change
		took, more := w.look()
		if !more {
			return
		}
		timer.Reset(yieldWait(took))
	}
}

// lookGate spares the watcher's looks while no connection can have come:
// at 10,000 guests a look walks some 30,000 unix sockets (7-9 ms of CPU),
// and a look a second was a tenth of the dashboard's steady CPU, nearly
// all of it finding no queue. A client waiting for a channel connected to
// its listener, and the kernel counted a unix stream socket more then
// (agentclient.UnixStreamSockets, a read of a few lines): while the count
// stays what it was when the last look began, the next look waits, up to
// yieldForced after the last. That bound is for a connection the count
// did not show: as many sockets closed meanwhile, or the client in
// another network namespace (counted in its own). A count that changed
// is looked at within a check (yieldPeriod) of the look's own wait, as
// every look was before.
type lookGate struct {
	last  time.Time // when the last look began; zero: none yet
	count int64     // the count then
}

// yieldForced is the longest time between two looks: a client the count
// did not show is still served within a guestdeck's 3 s dial timeout.
const yieldForced = 2 * time.Second

// due reports whether to look now, the count being count (known false: it
// could not be read) and fresh whether enrolments wait for their listener.
func (g *lookGate) due(now time.Time, count int64, known, fresh bool) bool {
	return fresh || !known || g.last.IsZero() || count != g.count || now.Sub(g.last) >= yieldForced
}

// hasFresh reports whether enrolments wait for their listener to be found.
func (w *yieldWatcher) hasFresh() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.fresh) > 0
}

// yieldWait is the wait after a look that took took.
func yieldWait(took time.Duration) time.Duration {
	return min(max(yieldPeriod, yieldDuty*took), maxYieldPeriod)
}

// stop marks the watcher off.
func (w *yieldWatcher) stop() {
	w.mu.Lock()
	w.running = false
	w.mu.Unlock()
}

// look is one look at the queues: sessions whose listener has a queue let
// go, new ones have their listener found (or, not found, go back to
// letting go after each use). It returns how long the dump took, and false
// when the watcher stops (nothing to watch, or the dump failed).
func (w *yieldWatcher) look() (time.Duration, bool) {
	w.mu.Lock()
	if len(w.fresh) == 0 && len(w.where) == 0 {
		w.running = false
		w.mu.Unlock()
		return 0, false
	}
	// A copy by its entries, not maps.Clone: the map keeps the room of a
	// launch's 10,000 enrolments once they are found, and a clone copies
	// the room (some 650 KB a look, once a second, for nothing).
	var paths map[*session]enrolment
	if len(w.fresh) > 0 {
		paths = make(map[*session]enrolment, len(w.fresh))
		for s, e := range w.fresh {
			paths[s] = e
		}
	}
	afterDump := w.afterDump
	w.mu.Unlock()

	// New listeners are found by their socket file, stat(2) of the path
	// against the dump's; the dump then names the listeners by their own
	// inode, cheaper to ask (the file needs the kernel to read each
	// socket's inode).
	files := make(map[agentclient.SocketFile][]*session, len(paths))
	for s, e := range paths {
		if sf, err := agentclient.StatSocketFile(e.path); err == nil {
			files[sf] = append(files[sf], s)
		} // else not found below: let go after each use
	}
	var queued []uint32
	found := make(map[*session]uint32, len(paths))
	t0 := time.Now()
	err := agentclient.ListenerQueues(len(files) > 0, func(q agentclient.ListenerQueue) {
		if q.Queued > 0 {
			queued = append(queued, q.Ino)
		}
		for _, s := range files[q.File] {
			found[s] = q.Ino
		}
	})
	took := time.Since(t0)
	if afterDump != nil {
		afterDump()
	}

	w.mu.Lock()
	if err != nil {
		// No sock_diag: every session goes back to letting go after each
		// use, and none keeps this way again.
		w.broken, w.running = err, false
		all := make([]*session, 0, len(w.fresh)+len(w.where))
		for s := range w.fresh {
			all = append(all, s)
		}
		for s := range w.where {
			all = append(all, s)
		}
		w.mu.Unlock()
		for _, s := range all {
			s.yieldChannel()
		}
		return took, false
	}
	var lost []*session
	for s, e := range paths {
		if w.fresh[s] != e {
			// Forgotten meanwhile, or enrolled again with another
			// connection: the next look finds that one's listener.
			continue
		}
		ino, ok := found[s]
		if !ok {
			lost = append(lost, s)
			continue
		}
		s.watch.misses.Store(0)
		s.watch.retryFor.Store(0)
		delete(w.fresh, s)
		w.bySock[ino] = append(w.bySock[ino], s)
		w.where[s] = ino
	}
	if len(paths) > 0 && len(w.fresh) == 0 {
		w.fresh = make(map[*session]enrolment) // without the launch's room
	}
	var ask []*session
	for _, ino := range queued {
		ask = append(ask, w.bySock[ino]...)
	}
	w.mu.Unlock()
	for _, s := range lost {
		// Not watched: let go now, and after yieldMisses such
		// connections, after every use.
		if s.watch.misses.Add(1) >= yieldMisses {
			s.watch.turnOff(time.Now())
		}
		s.yieldChannel()
	}
	for _, s := range ask {
		s.yieldChannel()
	}
	return took, true
}
