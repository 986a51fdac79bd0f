package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/backoff"
)

// rttHistory is how many round trips a Guest keeps.
const rttHistory = 16

var errSessionClosed = errors.New("guest removed or fleet closed")

// session is one guest: its connection, its poll loop and its published
// state. Whoever holds the sem token may use agent and skip; the poller,
// actions and file operations take turns, so the agent sees one request at a
// time and a hung call delays the others by at most one timeout.
type session struct {
	f    *Fleet
	key  string // identity in the ledger (targetKey)
	seed uint64
	cur  atomic.Pointer[Guest]

	sem   chan struct{}
	agent *callAgent      // nil while disconnected; guarded by sem
	skip  map[string]bool // commands that failed as unknown/unsupported; guarded by sem
	// broken: commands whose replies came back too large or undecodable,
	// with the error (callErrorText says it). They are skipped like
	// refused ones (until capabilities are read again) and shown in the
	// guest's Err. Guarded by sem; reset with skip.
	broken  map[string]error
	metrics metricsState // metrics.go
	// shapes: the layouts of the guest's last interface list, cpustats and
	// diskstats, so that the next reply, which repeats its layout with
	// other counters, is decoded by it (agentclient.Shape). Made at the
	// first poll that asks one (a pointer: the session stays in its size
	// class); used by polls, under sem.
	shapes *replyShapes
	// memos: which reply text each memoised slow item's value shown came
	// from (memo.go); made at the first slow refresh that decodes one.
	// Guarded by sem.
	memos *replyMemos
	watch channelWatch // yield.go
	// pre: a fresh connection's first poll's replies, asked ahead
	// (prefetch.go); set and taken during that poll, under sem.
	pre *prefetch
	// bootMark: how long the guest had been up (sinceBoot, ms) when this
	// process asked it to shut down; 0 when unknown or no shutdown is
	// awaited. Guarded by sem.
	bootMark uint64

	// wdWake wakes the freeze guard (watchdog): FrozenByUs or ThawAt
	// changed. Made when the first one starts: most guests never have one.
	wdWake atomic.Pointer[chan struct{}]
	loop   loopState // its place in the schedule; guarded by f.sched.mu (sched.go)

	mu        sync.Mutex // guards publishing, log and the fields below
	log       logRing
	hist      *recentPage        // where the histories' next values go (recent.go)
	stopLoop  context.CancelFunc // ends the poll loop; nil before Start
	freezeIDs []string           // this process's ledger entries for its freeze
	pending   string             // a bulk freeze's entry written ahead for this guest
	thawing   *thawCall          // a thawOwed in flight

	// snapAt is its index in the last snapshot (guarded by Fleet.snapMu;
	// a fleet has far fewer than 2^31 guests); dirty: listed in
	// Fleet.dirty, published since then. With the flags below in two
	// words, as an 8-byte int and words of their own took three more.
	snapAt int32
	dirty  atomic.Bool
	// capsFrozen: the capabilities in the snapshot were read while the guest
	// was frozen, when the agent lists nearly every command disabled. The
	// first poll that finds it thawed reads them again. Guarded by sem.
	capsFrozen bool
	// parked: the connection was let go between uses (channel.go), not
	// lost. Guarded by sem.
	parked bool
	// slowOwed: the first look (gather) read only the OS of the slow
	// items; the next poll reads the rest (a slow refresh without
	// guest-info, which the look read). Guarded by sem.
	slowOwed bool
	// slowLeads: the first slow refresh after a look comes at the
	// guest's own phase in the slow interval (slowLead), not a whole
	// interval after the look. Guarded by sem.
	slowLeads  bool
	closed     bool // guarded by mu
	watchdogOn bool // guarded by mu
}

func newSession(f *Fleet, t Target) *session {
	s := &session{
		f:    f,
		key:  targetKey(t),
		seed: nameHash(t.Name),
		sem:  make(chan struct{}, 1),
		log:  logRing{size: f.opts.LogSize, tables: &f.logTables},
	}
	g := &Guest{Target: t, State: Connecting, Since: time.Now()}
	s.seedLedger(g)
	s.cur.Store(g)
	return s
}

// target is the session's guest as it was added: every Guest published
// has it, and none changes it (a changed target is a new session), so the
// session keeps no copy of its own (112 bytes a guest).
func (s *session) target() *Target { return &s.cur.Load().Target }

// update publishes a new Guest: a copy of the current one changed by fn.
func (s *session) update(fn func(g *Guest)) {
	s.mu.Lock()
	ng := *s.cur.Load()
	fn(&ng)
	ng.Log = s.log.entries()
	ng.Version = s.f.version.Add(1)
	s.cur.Store(&ng)
	s.mu.Unlock()
	if s.dirty.CompareAndSwap(false, true) { // after the store (Snapshot)
		s.f.markDirty(s)
	}
	s.f.notify()
}

// setState moves the guest to st, keeping Since when the state stays.
func setState(g *Guest, st State, errText string, now time.Time) {
	if g.State != st {
		g.State = st
		g.Since = now
	}
	if errText != g.Err {
		g.Cause = nil // words only (or none): no error behind them
	}
	g.Err = errText
}

// setFault is setState with the error behind the text (Guest.Cause).
func setFault(g *Guest, st State, text string, cause error, now time.Time) {
	setState(g, st, text, now)
	g.Cause = cause
}

// setErr keeps the state and says err.
func setErr(g *Guest, err error) { g.Err, g.Cause = err.Error(), err }

func (s *session) acquire(ctx context.Context) error {
	// Free, as at nearly every poll: taken without a select on the
	// context's channel as well (selectgo and its locks).
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *session) release() {
	// Under mu, so that shutdown either finds the token free or sees this
	// holder drop the connection: never neither.
	s.mu.Lock()
	if s.closed {
		s.dropAgent()
	} else {
		s.letGoLocked() // channel.go: free the channel between uses
	}
	<-s.sem
	s.mu.Unlock()
}

// shutdown closes the session for good (Remove, Close).
func (s *session) shutdown() {
	s.mu.Lock()
	s.closed = true
	stop := s.stopLoop
	select {
	case s.sem <- struct{}{}:
		s.dropAgent()
		<-s.sem
	default:
		// The holder closes the agent on release.
	}
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.f.sched.stop(s)
	s.kickWatchdog()
}

func (s *session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// dropAgent closes the connection; the next user redials. Holds sem.
func (s *session) dropAgent() {
	s.unwatch() // yield.go
	if s.agent != nil {
		_ = s.agent.a.Close()
		s.agent = nil
	}
}

// poke polls the guest now (sched.go).
func (s *session) poke() { s.f.sched.poke(s) }

func (s *session) markGone(reason string) {
	if reason == "" {
		reason = "guest went away"
	}
	// Close the connection when nobody is using it; a call in flight fails
	// by itself once the socket is gone.
	select {
	case s.sem <- struct{}{}:
		s.dropAgent()
		<-s.sem
	default:
	}
	s.update(func(g *Guest) { setState(g, Gone, reason, time.Now()) })
}

// connect dials when disconnected. Holds sem.
func (s *session) connect(ctx context.Context) (fresh bool, err error) {
	if s.agent != nil {
		return false, nil
	}
	if s.isClosed() {
		return false, errSessionClosed
	}
	// The state stays what it was (connecting at first, else the last
	// failure's) until the dial decides: no flicker for failing guests.
	d, err := s.f.dialer(s.target().Address)
	if err != nil {
		return false, err
	}
	dctx, cancel := context.WithTimeout(ctx, s.f.opts.Timeout)
	defer cancel()
	hook := &logHook{fn: s.logRecord}
	dctx = context.WithValue(dctx, logHookKey{}, hook)
	resumed := s.resumeParked()
	t0 := time.Now()
	a, err := d(dctx, *s.target())
	if !resumed || err != nil {
		s.logCall(t0, "connect", s.target().Address, nil, err)
	}
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	if s.isClosed() {
		_ = a.Close()
		return false, errSessionClosed
	}
	s.agent = &callAgent{s: s, a: a, hooked: hook.used}
	if resumed {
		return false, nil // the same session, picked up again
	}
	s.skip, s.broken = nil, nil
	return true, nil
}

// failed records a transport-level failure (dial, timeout, connection lost,
// garbage): the connection is dropped and the state says why. Holds sem.
func (s *session) failed(ctx context.Context, err error, counts bool) {
	overBudget := errors.Is(err, agentclient.ErrBudget)
	if !overBudget && !s.keepsAfterTimeout(err) {
		s.dropAgent()
	}
	if ctx.Err() != nil || errors.Is(err, errSessionClosed) {
		return // stopped, not failed
	}
	now := time.Now()
	silent := agentclient.IsTimeout(err) || agentclient.IsSilent(err)
	s.update(func(g *Guest) {
		// Past its limit a shutdown is no longer awaited: the guest's
		// failure says what it is, as any other's.
		going := g.State == ShuttingDown && s.goingAway(g, now)
		if counts && g.State != Gone && !heldByDomain(g) {
			g.Missed++ // not for a machine libvirt says is not running
		}
		switch {
		case overBudget:
			// The fleet's reply budget, not the guest, failed the call:
			// the connection is fine (the stream resyncs) and the state
			// stays; the guest is retried later.
			setErr(g, err)
		case g.State == Gone:
			// Stays gone until it answers again; keep the reason.
		case heldByDomain(g):
			// libvirt says the machine is not running (libvirt.go): its
			// word, and its reason, stand until the domain runs again.
		case going && (silent || agentclient.IsChannelHeld(err)):
			// Halted guests stop answering: still going.
			setErr(g, err)
		case g.State == Suspended:
			// Silent, or unreachable (suspended to disk): suspended until
			// it answers again.
			setErr(g, err)
		case agentclient.IsChannelHeld(err):
			// Someone else is using the channel (a backup's freeze,
			// another guestdeck): the guest may be fine. The loop backs
			// off and tries again.
			setFault(g, Held, err.Error(), err, now)
		case going:
			setFault(g, Gone, "guest went away: "+err.Error(), err, now)
		case silent:
			setFault(g, Silent, err.Error(), err, now)
		case agentclient.IsConnLost(err) || errors.Is(err, agentclient.ErrClosed):
			setFault(g, Connecting, err.Error(), err, now)
		default:
			setFault(g, Unreachable, err.Error(), err, now)
		}
	})
}

// goingAway reports whether g, shutting down or suspended by this process
// (or suspended by another, as the ledger says), is still taken to be on
// its way down at now: its agent's answers on the connection kept since
// are its last before it goes (apply), and for a shutdown, silence or a
// lost connection mean it went (failed). Counted from when the state began
// (Since):
//   - a shutdown for Options.ShutdownLimit. Past it the guest is polled as
//     any other and its channel is no longer kept (channel.go): a shutdown
//     cancelled or failed in the guest, or a context that ended while it
//     was awaited, left it shutting-down with its channel held for as long
//     as guestdeck ran, and a halted guest shutting-down for good.
//   - a suspend for suspendSettle: the guest's agent stops within moments
//     (the kernel freezes its tasks first), and one that answers later is
//     awake: woken on the same connection (its requests sent while asleep
//     are answered after the wake-up), or it never slept. A suspended guest
//     that does not answer stays suspended (failed) however long it sleeps.
func (s *session) goingAway(g *Guest, now time.Time) bool {
	switch g.State {
	case ShuttingDown:
		return now.Sub(g.Since) < s.f.opts.ShutdownLimit
	case Suspended:
		return now.Sub(g.Since) < s.f.opts.suspendSettle()
	}
	return false
}

// suspendSettle is how long after a suspend its guest's answers are still
// taken for those of a guest on its way to sleep: two polls and a call's
// timeout (13s by default), far longer than a guest takes to suspend.
func (o Options) suspendSettle() time.Duration { return 2*o.Interval + o.Timeout }

// slowLead is how much sooner than a slow interval after the last slow
// refresh the next one is due: after a look, the guest's phase, a whole
// number of poll intervals in [0, SlowInterval) from its seed; else 0.
// The looks of a launch all come within an interval or two, and with
// them due a slow interval later, every guest's slow refresh came in the
// same interval of every minute: at 10,000 guests that interval took
// twice a steady one's CPU, and its allocations set the process's peak
// RSS. Phased, each interval holds a twelfth of them (at 5 s and 60 s).
func (s *session) slowLead() time.Duration {
	if !s.slowLeads {
		return 0
	}
	iv := s.f.opts.Interval
	n := uint64(s.f.opts.SlowInterval / iv)
	if n < 2 {
		return 0
	}
	// The seed mixed again (splitmix64's finaliser): FNV's bits of names
	// that differ in a character fell into a few phases of twelve.
	x := s.seed
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return iv * time.Duration(x%n)
}

// keepsAfterTimeout reports whether a connection whose call ran out of time
// stays open: a stream does (it resynchronises before its next call, so a
// late reply is never taken for a later one), and the agent, slow rather
// than gone, answers the next poll on it once it has worked through what
// it was asked. Dialling again instead queues behind the connection just
// closed, whose requests a single-client agent still works through (qemu-ga
// over virtio-serial does not even see the host hang up): on a starved
// machine each timeout then made the next one likelier, until thousands of
// guests were silent. Released, the connection is let go or kept as any
// other (channel.go). Not for a guest shutting down or suspended: its
// silence means it went, and a fresh connection once it is back ends that
// state (apply); over virtio-serial the host side of a rebooting guest's
// channel stays connected, so a connection kept through the reboot left it
// "shutting-down", its channel held (channel.go), for good. (A reboot
// quicker than the shutdown's grace period shows no silence to a poll:
// rebooted sees it over the kept connection.) Holds sem.
func (s *session) keepsAfterTimeout(err error) bool {
	if st := s.cur.Load().State; st == ShuttingDown || st == Suspended {
		return false
	}
	return s.agent != nil && s.agent.stream() != nil &&
		agentclient.IsTimeout(err) && !agentclient.IsConnLost(err) && !errors.Is(err, agentclient.ErrClosed)
}

// isTransport reports whether err is about the connection rather than an
// answer from the agent.
func isTransport(err error) bool {
	var ae *agentclient.Error
	return err != nil && !errors.As(err, &ae)
}

// pollResult collects one poll; it is applied in a single update.
type pollResult struct {
	fresh     bool
	goingDown bool // shutting down, its time since boot not gone back (gather): a fresh connection does not end it

	freeze     agentclient.FreezeStatus
	frozenSeen bool // a command was refused because the guest is frozen
	skew       time.Duration
	skewOK     bool
	rtt        time.Duration
	rttOK      bool
	ifaces     []agentclient.Interface
	ifacesOK   bool
	ifaceList  agentclient.InterfaceList // pollLive decodes the interfaces here
	vcpus      []agentclient.VCPU
	vcpuList   agentclient.VCPUList // the batch's Out: shares the list shown when unchanged
	// The live batch's calls and the Outs of its time and look (pollLive):
	// here, in the pooled result, rather than on pollLive's stack, which
	// they escaped (two allocations a poll, three with a metrics sample).
	liveCalls  [8]agentclient.BatchCall
	liveNS     int64
	lookOS     agentclient.OSInfo
	vcpusOK    bool
	slow       bool
	info       *agentclient.Info
	os         *agentclient.OSInfo
	hostname   string
	hostnameOK bool
	tz         *agentclient.Timezone
	users      []agentclient.User
	usersOK    bool
	fs         []agentclient.Filesystem
	fsOK       bool
	fsShown    bool        // fs is the list shown (the memo's): its usage is too (apply)
	metrics    metricsPoll // metrics.go

	// The plan's own state (execute): frozen as last known or just read,
	// capabilities to read again, live items asked in one batch.
	frozen, recaps, batched bool
	slowBatched             bool // the slow items were asked in one batch

	// What the slow items are this time (gather). look: the guest's first
	// look: of the slow items only the OS, and no metrics. rest: the poll
	// after it: the slow items the look left. capsOnly: guest-info is read
	// (a fresh connection) but the slow items are not due, unless the
	// agent's version changed. capsAsked: guest-info was asked.
	look, rest, capsOnly, capsAsked bool

	answered  bool  // some call of this poll got an answer
	liveOK    bool  // the live items were read (a poll that ran out may end before)
	outOfTime error // the poll ran out of time (*pollTimeoutError: what it was waiting for)
}

// pollResults recycles pollResult between polls (some 500 bytes each, at
// 2,000 polls a second): a poll's result is applied within the poll, and
// nothing keeps it.
var pollResults = sync.Pool{New: func() any { return new(pollResult) }}

// putPollResult gives r back, emptied: what it points to belongs to the
// snapshots now.
func putPollResult(r *pollResult) {
	r.metrics.release()
	*r = pollResult{}
	pollResults.Put(r)
}

// usable reports whether cmd is worth sending: the agent has it, it is
// enabled, and it did not fail as unsupported in this session.
func (s *session) usable(g *Guest, r *pollResult, cmd string) bool {
	if s.skip[cmd] {
		return false
	}
	if r.info != nil {
		for _, c := range r.info.SupportedCommands {
			if c.Name == cmd {
				return c.Enabled
			}
		}
		return len(r.info.SupportedCommands) == 0
	}
	present, enabled := g.Capability(cmd)
	return present && enabled
}

// item handles one poll item's error: agent refusals are information (the
// command is skipped from now on, or the guest is frozen), and so is a reply
// too large or undecodable (the command is skipped and its error shown);
// anything else ends the poll.
func (s *session) item(r *pollResult, cmd string, err error) (ok bool, fatal error) {
	if err == nil || agentclient.IsCallError(err) {
		r.answered = true
	}
	if err == nil {
		return true, nil
	}
	if agentclient.IsFrozen(err) {
		r.frozenSeen = true
		return false, nil
	}
	if !agentclient.IsCallError(err) {
		return false, err
	}
	if s.skip == nil {
		s.skip = make(map[string]bool)
	}
	s.skip[cmd] = true
	if !isTransport(err) {
		return false, nil // the agent's own refusal
	}
	if s.broken == nil {
		s.broken = make(map[string]error)
	}
	s.broken[cmd] = err
	return false, nil
}

// callErrorText says what went wrong with one command's reply, without the
// address (the guest's row names it).
func callErrorText(cmd string, err error) string {
	var tl *agentclient.TooLargeError
	if errors.As(err, &tl) {
		return tl.Error() // names the command
	}
	var op *agentclient.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	return cmd + ": " + err.Error()
}

// errPollTimeout is the cause of a poll's context ending at its deadline.
var errPollTimeout = errors.New("poll ran out of time")

// pollTimeoutError names the command a poll that ran out was waiting for.
type pollTimeoutError struct {
	cmd     string
	limit   time.Duration
	timeout time.Duration
}

func (e *pollTimeoutError) Error() string {
	return fmt.Sprintf("poll ran out of its %v (%s) waiting for %s; the items after it were not asked this time",
		e.limit, pollBoundText(e.limit, e.timeout), e.cmd)
}

func (e *pollTimeoutError) Unwrap() error { return agentclient.ErrTimeout }

// IsPollTimeout reports whether err is a poll that ran out of its time
// part-way (what it gathered before is shown; Guest.Cause holds it).
func IsPollTimeout(err error) bool {
	var pe *pollTimeoutError
	return errors.As(err, &pe)
}

// pollBoundText says where the poll bound comes from.
func pollBoundText(limit, timeout time.Duration) string {
	if limit%timeout == 0 {
		return fmt.Sprintf("%d × the %v call timeout", limit/timeout, timeout)
	}
	return fmt.Sprintf("the poll timeout; each call has %v", timeout)
}

// ranOut reports whether err came from the poll's own deadline (pc)
// rather than a call's timeout or the caller stopping (ctx). A stream's
// read deadline is the poll's, and can pass a hair before a context built
// on it says so: any failure at or past the deadline counts.
func ranOut(ctx context.Context, pc *pollCtx, err error) bool {
	return err != nil && ctx.Err() == nil && pc.expired()
}

// poll refreshes the live items, and the slow ones when due or forced.
//
// One poll is bounded as a whole, the dial included: every call has its own
// timeout, and all of them together Options.PollTimeout. A poll that runs
// out publishes what it gathered, with an error naming the command it was
// waiting for, and counts as a failure (the loop backs off).
func (s *session) poll(ctx context.Context, forceSlow bool) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	defer func() {
		if s.pre != nil {
			s.pre.release()
			s.pre = nil
		}
	}()
	limit := s.f.opts.PollTimeout
	pctx := newPollCtx(ctx, limit)
	defer pctx.release()
	r := pollResults.Get().(*pollResult)
	defer putPollResult(r)
	cmd, err := s.gather(pctx, forceSlow, r)
	if err == nil && !r.look {
		cmd, err = s.gatherMetrics(pctx, r) // unless the live batch carried them
	}
	if ranOut(ctx, pctx, err) {
		err = &pollTimeoutError{cmd: cmd, limit: limit, timeout: s.f.opts.Timeout}
		if s.agent != nil && r.answered {
			r.outOfTime = err // what it gathered is worth showing
		}
	}
	if err == nil || r.outOfTime != nil {
		s.apply(r)
		s.remember(s.pre)
	} else {
		s.failed(ctx, err, true)
	}
	return err
}

// gather connects if need be and runs one poll's plan into r, bounded by
// ctx (the poll's deadline). On a failure that ends the poll it returns the
// error and the command it came from. Holds sem.
func (s *session) gather(ctx context.Context, forceSlow bool, r *pollResult) (cmd string, fatal error) {
	fresh, err := s.connect(ctx)
	if err != nil {
		return "connect", err
	}
	g := s.cur.Load()
	if s.bootMark > 0 && g.State == ShuttingDown {
		// Back only if its time since boot went back, over the connection
		// kept since the shutdown as over a fresh one: a guest still on
		// its way down answers either (the kept one is dropped when a
		// shutting-down guest's call runs out of time, and the next poll
		// dials afresh), and a fresh connection alone showed it ready
		// while it went on going down.
		back, err := s.rebooted(ctx)
		if err != nil {
			return cmdCPUStats, err
		}
		if back {
			s.skip, s.broken = nil, nil // a new agent, as on a fresh connection
			fresh = true
		} else {
			r.goingDown = true
		}
	}
	if fresh && !r.goingDown {
		s.bootMark = 0
	}
	r.fresh = fresh
	r.frozen = g.Freeze == agentclient.Frozen || g.State == Frozen
	// LastSlow is when the last slow refresh ended, and polls start at
	// their slots: half an interval of slack, or the slow items came
	// every 65 s, not 60, at a 5 s interval.
	slowDue := forceSlow || g.LastSlow.IsZero() || time.Since(g.LastSlow) >= s.f.opts.SlowInterval-s.f.opts.Interval/2-s.slowLead()
	// A guest's first poll, unforced (the launch), is a first look: what
	// the table shows first (guest-info, the live items, the OS), about
	// what scripts/rawbound asks. The rest of the slow items and the
	// metrics follow at the next poll, at the guest's own offset (with
	// the capabilities the look read): at 10,000 guests the full first
	// poll asked three times the commands, and the launch took 2.5 times
	// the raw bound.
	r.look = !forceSlow && g.LastSlow.IsZero()
	r.slow, r.rest = s.slowOwed, s.slowOwed && !slowDue
	// A fresh connection after a failure re-reads the capabilities, not
	// the slow items (unless they are due, or the agent's version
	// changed: readCaps). On a starved machine a full refresh per
	// reconnect made the next timeout likelier ("the slide").
	r.capsOnly = fresh && !slowDue && !r.slow
	if fresh || slowDue {
		s.prefetchPoll(ctx, g, r, fresh)
	}
	return s.execute(ctx, g, r, slowDue || fresh)
}

// sinceBoot is how long the guest has been up, as far as its agent can
// say: the longest of its CPUs' times since boot (guest-get-cpustats: the
// counters of a CPU add up to its time online, in ms). ok is false when
// the agent lacks the command or refused it; err is a failure that ends a
// poll (the connection's, not the agent's answer). Holds sem.
func (s *session) sinceBoot(ctx context.Context) (ms uint64, ok bool, err error) {
	if s.agent == nil || s.skip[cmdCPUStats] {
		return 0, false, nil
	}
	if present, enabled := s.cur.Load().Capability(cmdCPUStats); !present || !enabled {
		return 0, false, nil
	}
	sa, isStats := s.agent.a.(agentclient.StatsAgent)
	if !isStats {
		return 0, false, nil
	}
	v, err := do(s.agent, ctx, cmdCPUStats, nil, sa.CPUStats)
	if err != nil {
		if agentclient.IsCallError(err) {
			return 0, false, nil // refused, or a reply not believed: unknown
		}
		return 0, false, err
	}
	cpus, ok := cpuCounters(v)
	for _, c := range cpus {
		ms = max(ms, c.total)
	}
	return ms, ok && ms > 0, nil
}

// markBoot records how long the guest has been up before it is asked to
// shut down, so that a reboot over the kept connection shows (rebooted):
// from the last metrics sample's CPU counters (sinceBoot's measure), not a
// call of its own. The action then sends exactly what its plan and dry run
// say (TestSendsAreWhatIsSent), and a hung agent costs no extra timeout
// before the shutdown. Without a sample (metrics off, no cpustats) the
// mark stays unknown: any answer on a fresh connection ends shutting-down,
// a guest still going down included. Holds sem.
func (s *session) markBoot() {
	s.bootMark = 0
	if p := s.metrics.prev; p != nil && p.cpuOK {
		for _, c := range p.cpus {
			s.bootMark = max(s.bootMark, c.total)
		}
	}
}

// rebooted reports whether a guest shutting down after this process's
// shutdown has booted again, over the connection kept since or a fresh
// one: its time since boot went back (guest-get-cpustats). Over
// virtio-serial the host side of the channel stays connected through a
// reboot: one quicker than the shutdown's grace period (or the agent
// restarting as fast) answers every poll on the same connection. A guest
// still on its way down answers too, on either, but its time since boot
// goes on: it stays shutting-down. Holds sem; bootMark is set.
func (s *session) rebooted(ctx context.Context) (bool, error) {
	ms, ok, err := s.sinceBoot(ctx)
	if err != nil {
		return false, err
	}
	return ok && ms < s.bootMark, nil
}

// execute runs one poll (gather): in order,
//   - a slow refresh begins with guest-info, which decides what the rest may
//     ask;
//   - the freeze state costs no extra call while thawed: guest-get-time
//     answering proves the guest thawed, and its refusal "in frozen state"
//     proves it frozen. guest-fsfreeze-status is asked while frozen (to see
//     the thaw) or when the time cannot be asked. Thawed (by us or anyone)
//     since capabilities were read while frozen, they list nearly every
//     command disabled: they are read again at once, not a slow interval
//     later;
//   - the live items, in one pipelined batch when the connection can take
//     one, else one by one;
//   - the slow items, on a slow refresh.
//
// Whether a command is asked is decided when its turn comes, from the
// answers before it. Straight-line code rather than a list of steps: a plan
// of closures cost some 30 allocations a poll, at 2,000 polls a second.
//
// Its one error exit is a call's failure that ends the poll (item); a frozen
// guest ends it early, after the capabilities and freeze state, as a
// success (only ping, info, sync, fsfreeze-status and thaw are allowed
// then). Holds sem.
func (s *session) execute(ctx context.Context, g *Guest, r *pollResult, slowDue bool) (cmd string, fatal error) {
	a := s.agent
	if slowDue {
		if cmd, fatal = s.readCaps(ctx, g, r); fatal != nil {
			return cmd, fatal
		}
	}
	timeOK := s.usable(g, r, "guest-get-time")
	if (r.frozen || !timeOK) && s.usable(g, r, "guest-fsfreeze-status") {
		t0 := time.Now()
		freeze, err := a.FreezeStatus(ctx)
		ok, fatal := s.item(r, "guest-fsfreeze-status", err)
		if fatal != nil {
			return "guest-fsfreeze-status", fatal
		}
		if ok {
			r.freeze, r.rtt, r.rttOK = freeze, time.Since(t0), true
			r.frozen = freeze == agentclient.Frozen
			r.recaps = !r.frozen && s.capsFrozen && !r.capsAsked
		}
	}
	if r.recaps {
		if cmd, fatal = s.readCaps(ctx, g, r); fatal != nil {
			return cmd, fatal
		}
	}
	// From here on a frozen guest (known, or seen refusing) ends the poll.
	halted := func() bool { return r.frozen || r.frozenSeen }
	if halted() {
		r.liveOK = true
		return "", nil
	}
	st := a.stream()
	if s.usable(g, r, "guest-get-time") {
		if st != nil {
			if cmd, fatal = s.pollLive(ctx, st, g, r); fatal != nil {
				return cmd, fatal
			}
		} else {
			t0 := time.Now()
			ns, err := a.Time(ctx)
			ok, fatal := s.item(r, "guest-get-time", err)
			if fatal != nil {
				return "guest-get-time", fatal
			}
			if ok {
				rtt := time.Since(t0)
				r.rtt, r.rttOK = rtt, true
				r.skew, r.skewOK = skew(ns, t0, rtt), true
				r.freeze = agentclient.Thawed
			}
		}
		if halted() {
			r.liveOK = true
			return "", nil
		}
	}
	// From here the poll counts as having read its live items (liveOK):
	// the slow part begins. Unbatched (no stream, or the time not
	// usable), the interfaces and vCPUs are asked one by one after the
	// slow batch, as they always were.
	r.liveOK = true
	if r.slow && st != nil {
		if cmd, fatal = s.pollSlow(ctx, st, g, r); fatal != nil {
			return cmd, fatal
		}
		if halted() {
			return "", nil
		}
	}
	if !r.batched {
		if s.usable(g, r, "guest-network-get-interfaces") {
			var err error
			r.ifaces, err = a.Interfaces(ctx)
			r.ifacesOK = err == nil
			if cmd, fatal = s.step(r, "guest-network-get-interfaces", err); fatal != nil || halted() {
				return cmd, fatal
			}
		}
		if s.usable(g, r, "guest-get-vcpus") {
			var err error
			r.vcpus, err = a.VCPUs(ctx)
			r.vcpusOK = err == nil
			if cmd, fatal = s.step(r, "guest-get-vcpus", err); fatal != nil || halted() {
				return cmd, fatal
			}
		}
	}
	if !r.slow || r.slowBatched {
		return "", nil
	}
	// The slow items one by one: the Client's pointers to empty values
	// beside an error are kept only from a reply (okOr).
	for _, name := range slowCommands {
		if !r.looks(name) || !s.usable(g, r, name) {
			continue
		}
		var err error
		switch name {
		case "guest-get-osinfo":
			var v *agentclient.OSInfo
			v, err = a.OSInfo(ctx)
			r.os = okOr(v, err)
		case "guest-get-host-name":
			r.hostname, err = a.Hostname(ctx)
			r.hostnameOK = err == nil
		case "guest-get-timezone":
			var v *agentclient.Timezone
			v, err = a.Timezone(ctx)
			r.tz = okOr(v, err)
		case "guest-get-users":
			r.users, err = a.Users(ctx)
			r.usersOK = err == nil
		case "guest-get-fsinfo":
			r.fs, err = a.FSInfo(ctx)
			r.fsOK = err == nil
		}
		if cmd, fatal = s.step(r, name, err); fatal != nil || halted() {
			return cmd, fatal
		}
	}
	return "", nil
}

// step passes one call's outcome through item: the command and the error
// when it ends the poll.
func (s *session) step(r *pollResult, cmd string, err error) (string, error) {
	if _, fatal := s.item(r, cmd, err); fatal != nil {
		return cmd, fatal
	}
	return "", nil
}

// readCaps asks guest-info: the capabilities decide what the rest of the
// poll may ask. Holds sem.
func (s *session) readCaps(ctx context.Context, g *Guest, r *pollResult) (cmd string, fatal error) {
	r.capsAsked, r.slow = true, !r.capsOnly
	info, err := s.agent.Info(ctx)
	ok, fatal := s.item(r, "guest-info", err)
	if fatal != nil {
		return "guest-info", fatal
	}
	if ok {
		r.info = info
		s.skip, s.broken = nil, nil // capabilities re-read: give refused commands another try
		// Another agent version (upgraded, or another guest behind the
		// socket): the slow items may have changed too.
		if info.Version != g.AgentVersion {
			r.slow, r.rest = true, false
		}
	}
	return "", nil
}

// pollLive asks the live items (time, interfaces, vCPUs) in one pipelined
// batch (agentclient.Stream.Batch): one write and one wake-up instead of
// three round trips. Holds sem; the connection is a stream and the time is
// usable.
func (s *session) pollLive(ctx context.Context, st *agentclient.Stream, g *Guest, r *pollResult) (cmd string, fatal error) {
	r.batched = true
	calls := append(r.liveCalls[:0], agentclient.BatchCall{Name: "guest-get-time", Out: &r.liveNS})
	if s.usable(g, r, "guest-network-get-interfaces") {
		// Sharing the strings of the list shown: a poll's mostly repeats it.
		r.ifaceList.Prev, r.ifaceList.Shape = g.Interfaces, &s.replyShapes().ifaces
		calls = append(calls, agentclient.BatchCall{Name: "guest-network-get-interfaces", Out: &r.ifaceList})
	}
	if s.usable(g, r, "guest-get-vcpus") {
		r.vcpuList.Prev, r.vcpuList.Repeat = g.VCPUs, &s.replyShapes().vcpus
		calls = append(calls, agentclient.BatchCall{Name: "guest-get-vcpus", Out: &r.vcpuList})
	}
	per := 1 // call timeouts the batch may take
	if !r.look {
		calls = s.metricsCalls(g, r, calls)
	} else if s.usable(g, r, lookCommand) {
		// A first look's one slow item rides here: one round trip less.
		calls = append(calls, agentclient.BatchCall{Name: lookCommand, Out: &r.lookOS})
		per = 2
	}
	t0 := time.Now()
	s.agent.batch(ctx, st, calls, per)
	s.metricsDone(r, calls)
	for _, c := range calls {
		ok, fatal := s.item(r, c.Name, c.Err)
		if fatal != nil {
			return c.Name, fatal
		}
		switch c.Name {
		case "guest-get-time":
			if ok {
				// The time is asked first, so its reply times a round trip.
				sent := t0
				if !c.Sent.IsZero() {
					sent = c.Sent // asked ahead (prefetch), or when written
				}
				r.rtt, r.rttOK = c.Duration, true
				r.skew, r.skewOK = skew(r.liveNS, sent, c.Duration), true
				r.freeze = agentclient.Thawed
			}
		case "guest-network-get-interfaces":
			r.ifaces, r.ifacesOK = r.ifaceList.List, ok
		case "guest-get-vcpus":
			r.vcpus, r.vcpusOK = r.vcpuList.List, ok
		case lookCommand:
			if ok {
				os := r.lookOS // kept past the result's return to its pool
				r.os = &os
			}
		}
	}
	if !r.ifacesOK {
		r.ifaces = nil
	}
	if !r.vcpusOK {
		r.vcpus = nil
	}
	return "", nil
}

// replyShapes are a session's reply layouts (session.shapes).
type replyShapes struct {
	ifaces, cpu, disk agentclient.Shape
	vcpus             agentclient.Repeat
}

// replyShapes is s.shapes, made if need be. Holds sem.
func (s *session) replyShapes() *replyShapes {
	if s.shapes == nil {
		s.shapes = new(replyShapes)
	}
	return s.shapes
}

// slowCommands are the slow items, in the order they are asked.
var slowCommands = [...]string{"guest-get-osinfo", "guest-get-host-name", "guest-get-timezone", "guest-get-users", "guest-get-fsinfo"}

// pollSlow asks the slow items (OS, hostname, timezone, users,
// filesystems) in one pipelined batch, as pollLive does the live ones: one
// write and one wake-up instead of five round trips. The batch may take
// the call timeout once per command, as the calls one by one could, within
// the poll's bound. Holds sem; the connection is a stream and r.slow is
// set.
func (s *session) pollSlow(ctx context.Context, st *agentclient.Stream, g *Guest, r *pollResult) (cmd string, fatal error) {
	r.slowBatched = true
	var (
		osv  agentclient.OSInfo
		host struct {
			HostName string `json:"host-name"`
		}
		tz agentclient.Timezone
	)
	outs := [len(slowCommands)]any{&osv, &host, &tz, &r.users, &r.fs}
	var buf [len(slowCommands)]agentclient.BatchCall
	calls := buf[:0]
	for i, name := range slowCommands {
		if r.looks(name) && s.usable(g, r, name) {
			calls = append(calls, agentclient.BatchCall{Name: name, Out: outs[i]})
		}
	}
	if len(calls) == 0 {
		return "", nil
	}
	s.agent.batch(ctx, st, calls, len(calls))
	for _, c := range calls {
		ok, fatal := s.item(r, c.Name, c.Err)
		if fatal != nil {
			return c.Name, fatal
		}
		switch c.Name {
		case "guest-get-osinfo":
			if ok {
				r.os = &osv
			}
		case "guest-get-host-name":
			r.hostname, r.hostnameOK = host.HostName, ok
		case "guest-get-timezone":
			if ok {
				r.tz = &tz
			}
		case "guest-get-users":
			r.usersOK = ok
		case "guest-get-fsinfo":
			r.fsOK = ok
		}
	}
	if !r.usersOK {
		r.users = nil
	}
	if !r.fsOK {
		r.fs = nil
	}
	return "", nil
}

// looks reports whether the slow item cmd is asked in this poll when the
// slow items are: all of them, but on a first look only the OS (the
// table's OS column), and at the poll after it the rest.
func (r *pollResult) looks(cmd string) bool {
	switch {
	case r.look:
		return cmd == lookCommand && !r.batched // else it rode with the live batch
	case r.rest:
		return cmd != lookCommand
	}
	return true
}

// lookCommand is the one slow item a first look asks.
const lookCommand = "guest-get-osinfo"

// okOr is v when err is nil, else nil.
func okOr[T any](v *T, err error) *T {
	if err != nil {
		return nil
	}
	return v
}

// skew is the guest clock (ns, read by a call sent at t0 that took rtt)
// minus the host clock, assuming the agent read it halfway through.
func skew(ns int64, t0 time.Time, rtt time.Duration) time.Duration {
	return time.Unix(0, ns).Sub(t0.Add(rtt / 2))
}

// apply publishes a completed poll.
func (s *session) apply(r *pollResult) {
	now := time.Now()
	prev := s.cur.Load()
	defer s.afterApply(prev)
	stayedUp := false // shutting-down past the limit, and answering
	defer func() {
		if stayedUp {
			s.bootMark = 0 // no shutdown awaited any more
			s.f.notice(s.target().Name, true, "still answers %s after it accepted the shutdown: it did not go down",
				now.Sub(prev.Since).Round(time.Second))
		}
	}()
	s.update(func(g *Guest) {
		if r.info != nil {
			r.info.SupportedCommands = s.f.commands.intern(r.info.SupportedCommands)
		}
		if r.os != nil {
			r.os = s.f.shares.osInfo(r.os)
		}
		r.tz = s.f.shares.timezone(r.tz)
		if r.vcpusOK && !sameList(r.vcpus, g.VCPUs) {
			// A list shown already (the decoder's Prev: unchanged) is
			// the shared one: no key and look-up under the fleet's lock.
			r.vcpus = s.f.shares.vcpuList(r.vcpus)
		}
		// A list given by the memo (memo.go) is the one shown: shared
		// already, and published, never written.
		if r.metrics.disksOK && !sameList(r.metrics.disks, g.Metrics.Disks) {
			r.metrics.disks = s.f.shares.diskList(r.metrics.disks)
		}
		if r.fsShown = r.fsOK && len(r.fs) > 0 && sameList(r.fs, g.Filesystems); !r.fsShown {
			for i := range r.fs { // not published yet: the poll's own
				r.fs[i].Disk = s.f.shares.diskAddresses(r.fs[i].Disk)
			}
		}
		r.storeFreeze(g)
		if r.info != nil {
			s.capsFrozen = g.Freeze == agentclient.Frozen
			g.CapsFrozen = s.capsFrozen
		}
		r.storeItems(g, &s.hist)
		s.applyMetrics(g, r)
		if r.liveOK {
			g.LastLive = now
		}
		if r.slow {
			// Also when the poll ran out part-way: the slow items left
			// are asked at the next slow refresh, not at every poll
			// (after a first look, at the next poll).
			g.LastSlow = now
			s.slowOwed = r.look
			// Phased until the first full slow refresh after the look
			// (the rest of its slow items, read at the next poll, is
			// not one).
			s.slowLeads = r.look || (r.rest && s.slowLeads)
		}
		if r.outOfTime != nil && g.State != Gone {
			g.Missed++
		}
		if g.DomainState == DomainBooting {
			g.DomainState, g.DomainReason = DomainRunning, "" // its agent answers
		} else if heldByDomain(g) {
			return // libvirt says it is not running: a late answer (libvirt.go)
		}
		// A guest shutting down or suspending keeps answering for a
		// moment: only losing it (or a fresh connection after it came
		// back, or a reboot seen over either: gather) ends the state,
		// until the moment is over (goingAway). Answers after that are
		// of a guest that is up: it woke on the same connection, or
		// never went.
		if (g.State == ShuttingDown || g.State == Suspended) && (!r.fresh || r.goingDown) {
			if s.goingAway(g, now) {
				return
			}
			stayedUp = g.State == ShuttingDown
		}
		st := Ready
		if g.Freeze == agentclient.Frozen {
			st = Frozen
		}
		text, cause := s.pollErr(r)
		setFault(g, st, text, cause, now)
	})
	if r.freeze == agentclient.Thawed {
		s.kickWatchdog()
	}
}

// storeFreeze records the capabilities and the freeze state read.
func (r *pollResult) storeFreeze(g *Guest) {
	if r.info != nil {
		g.AgentVersion = r.info.Version
		g.Commands = r.info.SupportedCommands
	}
	if r.freeze != "" {
		g.Freeze = r.freeze
	}
	if r.frozenSeen {
		g.Freeze = agentclient.Frozen
	}
	if g.Freeze == agentclient.Thawed {
		g.FrozenByUs, g.ThawAt = false, time.Time{}
	}
}

// storeItems records the live and slow items that were read; hist is the
// session's history page (pushBoth).
func (r *pollResult) storeItems(g *Guest, hist **recentPage) {
	if r.skewOK && r.rttOK {
		g.Skew, g.SkewKnown, g.RTT = r.skew, true, r.rtt
		pushBoth(hist, g, r.rtt, r.skew)
	} else {
		*hist = nil // the two move apart: the next pair starts a page
		if r.skewOK {
			g.Skew, g.SkewKnown = r.skew, true
			g.SkewHistory = g.SkewHistory.push(r.skew)
		}
		if r.rttOK {
			g.RTT = r.rtt
			g.RTTHistory = g.RTTHistory.push(r.rtt)
		}
	}
	if r.ifacesOK {
		g.Interfaces = r.ifaces
	}
	if r.vcpusOK {
		g.VCPUs = r.vcpus
	}
	if r.os != nil {
		g.OS = r.os
	}
	if r.hostnameOK {
		g.Hostname = r.hostname
	}
	if r.tz != nil {
		g.Timezone = r.tz
	}
	if r.usersOK {
		g.Users = r.users
	}
	if r.fsOK {
		g.Filesystems = r.fs
	}
}

// pollErr is what a completed (or partly completed) poll has to say:
// replies that were too large or undecodable, and a poll that ran out of
// time, in words and as the errors behind them (joined). Empty and nil for
// a clean poll. Holds sem.
func (s *session) pollErr(r *pollResult) (string, error) {
	if len(s.broken) == 0 && r.outOfTime == nil {
		return "", nil // the usual case, without the sorted keys' allocations
	}
	var parts []string
	var errs []error
	for _, cmd := range slices.Sorted(maps.Keys(s.broken)) {
		parts = append(parts, callErrorText(cmd, s.broken[cmd]))
		errs = append(errs, s.broken[cmd])
	}
	if r.outOfTime != nil {
		parts = append(parts, r.outOfTime.Error())
		errs = append(errs, r.outOfTime)
	}
	return strings.Join(parts, "; "), errors.Join(errs...)
}

// yieldToLaunch reports whether this slot's poll gives way to a launch in
// progress (other guests still wait for their first poll: a guest with data
// lets those without any go first, and on a busy machine the two would share
// the CPU). The loop then skips to its next slot, so that the polls resume
// spread as they were, not all at once when the launch ends; but data older
// than MaxBackoff is refreshed regardless, however long the launch takes.
func (s *session) yieldToLaunch() bool {
	return s.f.launch.busy() && time.Since(s.cur.Load().LastLive) < s.f.opts.MaxBackoff
}

// after is when to poll next after a poll that ended with err: slot when it
// succeeded, else after the next backoff delay.
func (s *session) after(err error, retry *backoff.Backoff, slot time.Time) time.Time {
	if err != nil {
		return time.Now().Add(retry.Next())
	}
	retry.Reset()
	return slot
}

// nextSlot is the first base+k*iv strictly after now.
func nextSlot(base time.Time, iv time.Duration, now time.Time) time.Time {
	if now.Before(base) {
		return base
	}
	k := now.Sub(base)/iv + 1
	return base.Add(k * iv)
}

// sameList reports whether a and b are one slice: the same array, the
// same length.
func sameList[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
