package fleet

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/discovery"
	"github.com/guestdeck/guestdeck/fleet/ledger"
)

// Dialer opens an agent session to one target. The fleet owns what it
// returns and closes it when the connection is lost or the guest removed.
type Dialer func(ctx context.Context, t Target) (agentclient.Agent, error)

// Options tune polling and actions. Zero values take the defaults below.
type Options struct {
	Interval      time.Duration // live items (time, freeze, interfaces, vCPUs); default 5s
	SlowInterval  time.Duration // slow items (info, OS, hostname, users, fsinfo); default 60s
	Timeout       time.Duration // per agent call, dial included; default 3s
	PollTimeout   time.Duration // one poll of one guest as a whole, dial and every call; default 2*Timeout
	FreezeTimeout time.Duration // a guest this process froze is thawed after this; default 5m
	Concurrency   int           // guests worked on at once by Run and RefreshOnce; default 64
	Readonly      bool          // refuse every mutating action before any agent is asked
	LogSize       int           // per-guest command log entries; default 16 (about three polls)
	// ShutdownLimit bounds how long a guest whose shutdown this process
	// sent stays shutting-down (its channel kept for the hang-up that
	// confirms it went) without going: then it is polled as any other,
	// and shows whether it is still up. Default DefaultShutdownLimit.
	ShutdownLimit time.Duration
	// Dialers by address scheme ("unix", "tcp", "vsock", "libvirt").
	// unix, tcp and vsock default to agentclient.Dial, with the fleet's
	// reply budget.
	Dialers map[string]Dialer
	// MaxBackoff caps the retry delay for a failing guest; default
	// 6*Interval, at most one minute.
	MaxBackoff time.Duration
	// ReplyBudget bounds the reply bytes the fleet's socket streams buffer
	// at once, all guests together (see DefaultReplyBudget, the default);
	// a call that would exceed it fails at once and its guest is retried
	// later. Negative: no fleet-wide bound (each reply is still held to its
	// command's limit).
	ReplyBudget int64

	// MetricsInterval: CPU, disk and load counters (metrics.go); default
	// DefaultMetricsInterval, negative for none.
	MetricsInterval time.Duration
	// NoCounters leaves out the counters a rate is computed from
	// (guest-get-cpustats, guest-get-diskstats) while still asking load,
	// disks and routes: for one-shot polls (status without --sample),
	// where a single sample gives no rate and the counters only cost.
	NoCounters bool
	// NoRoutes leaves out guest-get-routes, which only the dashboard
	// shows (its Routes tab): status, one reply fewer per guest.
	NoRoutes bool
	// NoKeep lets every local socket go after each use instead of keeping
	// it until another client waits (yield.go): for one-shot polls
	// (status without --sample or --watch), which never use a connection
	// twice. It spares the channel watcher's dumps of every unix socket on
	// the machine, some 6 % of status's CPU at 10,000 guests.
	NoKeep bool
	// NoLog keeps no command log (Guest.Log stays empty): for one-shot
	// commands that never show it (status without --watch), where building
	// every call's entry only costs (some 2 % of status's CPU at 10,000
	// guests, and the transport's records of the wire lines besides).
	NoLog bool

	// Ledger records every freeze (before it is sent) and suspend, so
	// that they outlive this process (package ledger); nil keeps no record.
	Ledger *ledger.Ledger
	// Who is recorded in the ledger as what froze or suspended:
	// "dashboard", "run --hold", "run --yes freeze".
	Who string
	// Config is recorded with each ledger entry: the fleet file in use.
	Config string
	// Promise is the thaw recorded in the ledger for a freeze, from the
	// freeze: 0 means FreezeTimeout, negative means none is promised (the
	// guest is left frozen on purpose).
	Promise time.Duration
	// ThawBudget bounds every thaw guestdeck owes (the watchdog's, ThawOurs,
	// an orphan's): it redials and retries with backoff this long, then
	// reports the guest still frozen; default DefaultThawBudget.
	ThawBudget time.Duration
	// OnNotice, when set, is called with every notice, on fleet
	// goroutines, one at a time; it must not block for long.
	OnNotice func(Notice)
	// AdoptOrphans makes a started fleet thaw guests left frozen by a
	// guestdeck that is no longer running, once the thaw it promised is
	// due (the dashboard does).
	AdoptOrphans bool
	// LedgerInterval is how often a started fleet with a Ledger re-reads
	// it; default 5s.
	LedgerInterval time.Duration
	// Audit, when set, records the thaws the fleet does on its own (the
	// freeze watchdog's), intent before and outcome after (plan.go).
	Audit Auditor
}

// DefaultShutdownLimit is Options.ShutdownLimit's default: the longest
// shutdown --wait waits by default. A guest whose agent still answers that
// long after it accepted a shutdown did not go down (the shutdown failed in
// the guest, was cancelled there, or was never carried out), and one that
// halted has shown all it will.
const DefaultShutdownLimit = 2 * time.Minute

// DefaultThawBudget is how long a thaw guestdeck owes keeps trying.
const DefaultThawBudget = 60 * time.Second

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.SlowInterval <= 0 {
		o.SlowInterval = 60 * time.Second
	}
	if o.SlowInterval < o.Interval {
		o.SlowInterval = o.Interval
	}
	if o.MetricsInterval == 0 {
		o.MetricsInterval = DefaultMetricsInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 2 * o.Timeout
	}
	if o.FreezeTimeout <= 0 {
		o.FreezeTimeout = 5 * time.Minute
	}
	if o.ShutdownLimit <= 0 {
		o.ShutdownLimit = DefaultShutdownLimit
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.LogSize <= 0 {
		// Every poll adds five to seven entries; 32 per guest were a
		// third of a 10,000-guest fleet's heap.
		o.LogSize = 16
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = min(6*o.Interval, time.Minute)
	}
	if o.ReplyBudget == 0 {
		o.ReplyBudget = DefaultReplyBudget
	}
	if o.ThawBudget <= 0 {
		o.ThawBudget = DefaultThawBudget
	}
	if o.LedgerInterval <= 0 {
		o.LedgerInterval = 5 * time.Second
	}
	return o
}

// Fleet keeps one session per guest: it polls while started, runs actions,
// and publishes immutable *Guest values that readers collect with Snapshot.
type Fleet struct {
	opts Options

	// life bounds every goroutine the fleet starts; Close cancels it.
	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*session
	order    []*session // sorted by name; replaced, never mutated, on Add/Remove
	dialers  map[string]Dialer
	budget   *agentclient.Budget // shared by every stream; nil for none
	loopCtx  context.Context     // set by Start; nil before
	closed   bool
	// sources discover guests (libvirt hosts; libvirt.go); claimMu
	// serialises their claims on names.
	sources *discovery.Manager
	claimMu sync.Mutex

	version atomic.Uint64 // bumped on every published change
	changed chan struct{}

	snapMu sync.Mutex
	snap   *Snapshot
	snapIx snapIndex // what snap was built from, for the next one (Snapshot)
	// dirty lists the sessions that published since the last snapshot
	// (session.dirty says whether one is listed); guarded by dirtyMu.
	dirtyMu   sync.Mutex
	dirty     []*session
	dirtyFull bool         // the list was cut: the next snapshot walks every guest
	orderLen  atomic.Int64 // len(order), read without mu

	launch launcher   // every guest's first poll (launch.go)
	sched  *scheduler // the polls after it (sched.go)

	commands  commandLists // capability lists shared between guests (intern.go)
	logTables logTables    // what the guests' logs share (logring.go)
	shares    guestShares  // OS infos and vCPU lists shared between guests (guest.go)

	notes notices     // book.go
	book  *ledgerView // book.go; nil without Options.Ledger

	yield yieldWatcher // channels kept until another client waits (yield.go)

	// noPrefetch: first polls without their prefetch (prefetch.go), for
	// the tests that compare the two.
	noPrefetch bool
}

// New returns a fleet with no guests. Add guests, then Start polling, or use
// RefreshOnce and Run without starting.
func New(opts Options) *Fleet {
	opts = opts.withDefaults()
	f := &Fleet{
		opts:     opts,
		sessions: make(map[string]*session),
		dialers:  make(map[string]Dialer),
		changed:  make(chan struct{}, 1),
	}
	f.life, f.stop = context.WithCancel(context.Background())
	f.launch.f = f
	f.sched = newScheduler(f)
	f.sources = discovery.NewManager(sourceSink{f})
	if opts.ReplyBudget > 0 {
		f.budget = agentclient.NewBudget(opts.ReplyBudget)
	}
	for _, s := range []string{"unix", "tcp", "vsock"} {
		f.dialers[s] = f.dialStream
	}
	for s, d := range opts.Dialers {
		f.dialers[s] = d
	}
	f.openLedger()
	return f
}

// Add adds targets; a target whose name is already known replaces the old
// one's address, host and tags and reconnects it.
func (f *Fleet) Add(targets ...Target) {
	f.mu.Lock()
	var start []*session
	var stale []*session
	var guarded []*session // replacements that inherit a freeze guard
	changed := false
	for _, t := range targets {
		if t.Name == "" {
			continue
		}
		if old, ok := f.sessions[t.Name]; ok {
			if old.target().Address == t.Address && old.target().Host == t.Host && slices.Equal(old.target().Tags, t.Tags) {
				continue
			}
			stale = append(stale, old)
		}
		s := newSession(f, t)
		if old, ok := f.sessions[t.Name]; ok {
			// The replaced session's freeze guard comes along: a guest this
			// process froze must not be forgotten because its tags changed.
			if og := old.cur.Load(); og.FrozenByUs {
				g := s.cur.Load()
				g.FrozenByUs, g.ThawAt = true, og.ThawAt
				s.freezeIDs = old.ourFreezeIDs()
				guarded = append(guarded, s)
			}
		}
		f.sessions[t.Name] = s
		start = append(start, s)
		changed = true
	}
	if changed {
		f.rebuildOrderLocked(start, len(stale) > 0)
	}
	loopCtx := f.loopCtx
	f.mu.Unlock()
	for _, s := range stale {
		s.shutdown()
	}
	for _, s := range guarded {
		s.startWatchdog()
	}
	if loopCtx != nil {
		f.startLoops(loopCtx, start)
	}
	if changed {
		f.bump()
	}
}

// Remove forgets guests and closes their sessions. A guest this process
// froze is left frozen: call ThawOurs first when that matters.
func (f *Fleet) Remove(names ...string) {
	f.mu.Lock()
	var gone []*session
	for _, n := range names {
		if s, ok := f.sessions[n]; ok {
			gone = append(gone, s)
			delete(f.sessions, n)
		}
	}
	if len(gone) > 0 {
		f.rebuildOrderLocked(nil, true)
	}
	f.mu.Unlock()
	for _, s := range gone {
		s.shutdown()
	}
	if len(gone) > 0 {
		f.bump()
	}
}

// rebuildOrderLocked makes a new f.order, sorted by name: readers hold on to
// the old slice without the lock, so it is never changed in place. Only when
// dropped (sessions removed or replaced) is the old order filtered; added
// sessions are binary-searched into a copy, so adding guests one call at a
// time, as discovery events do, stays cheap (10,000 single adds took 6 s
// when every add sorted the whole fleet).
func (f *Fleet) rebuildOrderLocked(added []*session, dropped bool) {
	byName := func(a, b *session) int { return strings.Compare(a.target().Name, b.target().Name) }
	live := func(s *session) bool { return f.sessions[s.target().Name] == s }
	order := make([]*session, 0, len(f.sessions))
	for _, s := range f.order {
		if !dropped || live(s) {
			order = append(order, s)
		}
	}
	for _, s := range added {
		if !live(s) {
			continue // added twice in one call: the later one replaced it
		}
		i, _ := slices.BinarySearchFunc(order, s, byName)
		order = slices.Insert(order, i, s)
	}
	f.order = order
	f.orderLen.Store(int64(len(order)))
}

// Start polls every guest, now and as they are added, until ctx ends or
// Close is called. Calling it again has no effect.
func (f *Fleet) Start(ctx context.Context) {
	f.mu.Lock()
	if f.loopCtx != nil || f.closed {
		f.mu.Unlock()
		return
	}
	loopCtx, cancel := context.WithCancel(f.life)
	stopWith := context.AfterFunc(ctx, cancel)
	// The scheduler first: once loopCtx is public an Add may start a
	// guest's loop, and a handoff to a scheduler not started yet would
	// stop that guest for good.
	f.sched.start(loopCtx)
	f.loopCtx = loopCtx
	order := f.order
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		<-loopCtx.Done()
		stopWith()
		cancel()
	}()
	f.startLoops(loopCtx, order)
	if f.book != nil {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.ledgerLoop(loopCtx)
		}()
	}
}

// startLoops schedules the polls of ss, their first polls queued for the
// launcher in one go (so that its order decides), and the rest for the
// scheduler once each first poll is done.
func (f *Fleet) startLoops(ctx context.Context, ss []*session) {
	launches := make([]launch, 0, len(ss))
	var poked []*session
	for _, s := range ss {
		ctx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			cancel()
			continue
		}
		s.stopLoop = cancel
		s.mu.Unlock()
		if f.sched.prepare(s, ctx) {
			poked = append(poked, s)
		}
		launches = append(launches, launch{ctx, s})
	}
	f.launch.enqueue(launches)
	for _, s := range poked {
		f.launch.promote(s) // poked before the start: first in line
	}
}

// Close stops polling and the freeze watchdog, and closes every session.
// Guests this process froze stay frozen: call ThawOurs before Close.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	order := f.order
	f.mu.Unlock()
	f.stop()
	f.sources.Close()
	for _, s := range order {
		s.shutdown()
	}
	f.yield.close()
	f.wg.Wait()
	return nil
}

// SetDialer sets the dialer for an address scheme ("libvirt", ...). Guests
// already connected keep their session; new dials use d.
func (f *Fleet) SetDialer(scheme string, d Dialer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d == nil {
		delete(f.dialers, scheme)
		return
	}
	f.dialers[scheme] = d
}

func (f *Fleet) dialer(addr string) (Dialer, error) {
	scheme, _, ok := strings.Cut(addr, ":")
	if !ok {
		return nil, fmt.Errorf("address %q has no scheme (want unix:, tcp:, vsock: or libvirt:)", addr)
	}
	f.mu.Lock()
	d := f.dialers[scheme]
	f.mu.Unlock()
	if d == nil {
		return nil, fmt.Errorf("address %q: no dialer for scheme %q", addr, scheme)
	}
	return d, nil
}

func (f *Fleet) session(name string) *session {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[name]
}

// sessionsFor returns the sessions of names in order; nil entries for
// unknown names.
func (f *Fleet) sessionsFor(names []string) []*session {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*session, len(names))
	for i, n := range names {
		out[i] = f.sessions[n]
	}
	return out
}

// Poke polls the guest now, redialing at once if it is disconnected (libvirt
// reports the agent connected, the user asked for a refresh).
func (f *Fleet) Poke(name string) {
	if s := f.session(name); s != nil {
		s.poke()
	}
}

// MarkGone records that the guest went away (domain stopped, socket gone):
// its connection is closed and its state becomes Gone until it answers again.
func (f *Fleet) MarkGone(name, reason string) {
	if s := f.session(name); s != nil {
		s.markGone(reason)
	}
}

// Changed receives a value when something changed since the last receive.
// Sends never block: changes coalesce, and the reader pulls a Snapshot.
func (f *Fleet) Changed() <-chan struct{} { return f.changed }

func (f *Fleet) bump() {
	f.version.Add(1)
	f.notify()
}

func (f *Fleet) notify() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Snapshot returns the fleet now. It is cheap when nothing changed since the
// last call (the same *Snapshot comes back), and otherwise costs the guests
// that changed since the last snapshot, not the whole fleet, while the set
// of guests is the same: at 10,000 guests, walking every session was about
// 4 ms of cache misses per snapshot, and the dashboard takes several a
// second. Callers must not modify it.
func (f *Fleet) Snapshot() *Snapshot {
	v := f.version.Load()
	f.snapMu.Lock()
	defer f.snapMu.Unlock()
	if f.snap != nil && f.snap.Version == v && !f.pendingDirty() {
		return f.snap
	}
	f.mu.Lock()
	order := f.order
	f.mu.Unlock()
	f.dirtyMu.Lock()
	dirty, full := f.dirty, f.dirtyFull
	f.dirty, f.dirtyFull = nil, false
	f.dirtyMu.Unlock()
	now := time.Now()
	snap := &Snapshot{
		Guests:  make([]*Guest, len(order)),
		Counts:  make(map[State]int, len(States)),
		Version: v,
		At:      now,
		Notices: f.notes.list(),
		Sources: f.sources.States(),
	}
	ix := &f.snapIx
	if f.snap == nil || full || !ix.same(order) {
		// A new set of guests: every one of them, and a fresh index.
		for _, s := range dirty {
			s.dirty.Store(false)
		}
		ix.reset(order)
		for i, s := range order {
			s.dirty.Store(false) // before the load: a later publish lists it again
			s.snapAt = int32(i)
			g := s.cur.Load()
			snap.Guests[i] = g
			ix.add(i, g, 1)
		}
	} else {
		copy(snap.Guests, f.snap.Guests)
		for _, s := range dirty {
			s.dirty.Store(false)
			i := int(s.snapAt)
			if i < 0 || i >= len(order) || order[i] != s {
				continue // removed: the next new order drops it
			}
			g := s.cur.Load()
			ix.add(i, snap.Guests[i], -1)
			snap.Guests[i] = g
			ix.add(i, g, 1)
		}
	}
	ix.fill(snap, now, 2*f.opts.Interval+f.opts.Timeout)
	f.snap = snap
	return snap
}

// pendingDirty reports whether a session was listed since the last
// snapshot. The version alone does not say it: update takes the Guest's
// version before it stores the Guest and lists the session, so a snapshot
// built in between carries that version but the Guest before, and would
// be handed out again after the publish until another one came.
func (f *Fleet) pendingDirty() bool {
	f.dirtyMu.Lock()
	defer f.dirtyMu.Unlock()
	return len(f.dirty) > 0 || f.dirtyFull
}

// markDirty lists s as published since the last snapshot. Each session is
// listed once, but one removed stays listed until the next snapshot: with
// nobody taking snapshots while guests come and go, the list is cut and the
// next snapshot walks every guest instead.
func (f *Fleet) markDirty(s *session) {
	f.dirtyMu.Lock()
	defer f.dirtyMu.Unlock()
	if f.dirtyFull {
		return
	}
	if len(f.dirty) > 2*int(f.orderLen.Load())+64 {
		f.dirty, f.dirtyFull = nil, true
		return
	}
	f.dirty = append(f.dirty, s)
}

// snapIndex carries a snapshot's sums to the next one, so that only the
// guests that changed are looked at: the counts by state and the health
// figures, and each guest's last live refresh (while it is polling) in one
// flat array, which counting the late ones scans without touching a Guest.
// Guarded by Fleet.snapMu.
type snapIndex struct {
	order    []*session // the order the sums are of
	counts   map[State]int
	missed   int
	polling  int
	lastLive []int64 // unix nanoseconds; 0 when not polling or never refreshed
}

// same reports whether order is the one the sums are of: Add and Remove
// replace f.order, never change it in place.
func (x *snapIndex) same(order []*session) bool {
	return len(order) == len(x.order) && (len(order) == 0 || &order[0] == &x.order[0])
}

func (x *snapIndex) reset(order []*session) {
	*x = snapIndex{order: order, counts: make(map[State]int, len(States)), lastLive: make([]int64, len(order))}
}

// add adds guest g, at index i, to the sums (sign 1), or takes it out (-1).
func (x *snapIndex) add(i int, g *Guest, sign int) {
	x.counts[g.State] += sign
	x.missed += sign * int(g.Missed)
	live := int64(0)
	switch g.State {
	case Ready, Frozen, ShuttingDown:
		x.polling += sign
		if !g.LastLive.IsZero() {
			live = g.LastLive.UnixNano()
		}
	}
	if sign > 0 {
		x.lastLive[i] = live
	}
}

// fill writes the sums into snap; a guest is late when its last live
// refresh is more than overdue ago.
func (x *snapIndex) fill(snap *Snapshot, now time.Time, overdue time.Duration) {
	for st, n := range x.counts {
		if n != 0 {
			snap.Counts[st] = n
		}
	}
	snap.Health.Missed, snap.Health.Polling = x.missed, x.polling
	cut := now.Add(-overdue).UnixNano()
	for _, t := range x.lastLive {
		if t != 0 && t < cut {
			snap.Health.Late++
		}
	}
}

// Guest returns one guest's latest state, or nil.
func (f *Fleet) Guest(name string) *Guest {
	if s := f.session(name); s != nil {
		return s.cur.Load()
	}
	return nil
}

// RefreshOnce polls each named guest once, live and slow items, at most
// Options.Concurrency at a time. Every guest answers or times out; the
// outcome is in the next Snapshot. No names means every guest.
func (f *Fleet) RefreshOnce(ctx context.Context, names []string) {
	var ss []*session
	if len(names) == 0 {
		f.mu.Lock()
		ss = f.order
		f.mu.Unlock()
	} else {
		for _, s := range f.sessionsFor(names) {
			if s != nil {
				ss = append(ss, s)
			}
		}
	}
	forEach(ctx, len(ss), f.opts.Concurrency, func(i int) {
		_ = ss[i].poll(ctx, true)
	})
}

// RefreshErrs is RefreshOnce for the named guests that also returns what
// each poll failed with (nil: it answered; a name the fleet does not know
// is missing). The state a poll leaves does not say what it saw: a guest
// gone stays gone, with the reason it went, whatever later polls meet
// (session.failed). A caller that must judge each poll on its own, as
// shutdown --wait does, reads it here.
func (f *Fleet) RefreshErrs(ctx context.Context, names []string) map[string]error {
	ss := f.sessionsFor(names)
	errs := make([]error, len(ss))
	ran := make([]bool, len(ss))
	forEach(ctx, len(ss), f.opts.Concurrency, func(i int) {
		if ss[i] != nil {
			errs[i], ran[i] = ss[i].poll(ctx, true), true
		}
	})
	out := make(map[string]error, len(ss))
	for i, s := range ss {
		switch {
		case s == nil:
		case !ran[i]:
			out[names[i]] = fmt.Errorf("not polled: %w", context.Cause(ctx)) // ctx ended first: no answer either
		default:
			out[names[i]] = errs[i]
		}
	}
	return out
}

// forEach runs fn(0..n-1), at most limit at once, in order, and returns
// when all started calls are done; once ctx ends no new call starts.
func forEach(ctx context.Context, n, limit int, fn func(i int)) {
	var g errgroup.Group
	g.SetLimit(limit)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if ctx.Err() == nil { // it may have ended while Go waited for a slot
				fn(i)
			}
			return nil
		})
	}
	_ = g.Wait() // fn reports through its own results
}

// nameHash spreads guests deterministically: start offsets and jitter seeds.
func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}
