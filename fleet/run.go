package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient"
)

// errFrozeNothing: the agent froze no filesystem, so the guest is not frozen
// as asked.
var errFrozeNothing = errors.New("froze 0 filesystems: the guest stays thawed (has it none the agent can freeze?)")

// MaxReadData bounds what a "read" action keeps per guest in Result.Data;
// larger files are cut there (ReadFile streams any size).
const MaxReadData = 1 << 20

// NotStartedText is the error of a guest whose turn never came: the action
// was stopped (RunUntil's stop) or cancelled first, and nothing was sent.
const NotStartedText = "cancelled before it started (nothing was sent)"

// Run performs a on the named guests, at most Options.Concurrency at a time,
// and returns one Result per name in the same order. progress (may be nil)
// is called once per guest as it finishes, never concurrently. When ctx ends,
// guests not yet started report "cancelled" without anything being sent,
// and the calls in flight are cut: RunUntil with ctx for both.
func (f *Fleet) Run(ctx context.Context, a Action, names []string, progress func(Result)) []Result {
	return f.RunUntil(ctx, ctx, a, names, progress)
}

// RunUntil is Run that can be stopped without cutting what was sent: when
// stop ends, no further guest is started, and each not started reports
// NotStarted (NotStartedText) at once, through progress too, while the
// calls already sent go on under ctx and report their real results. It
// returns when those have finished. A freeze or a shutdown cut mid-call
// leaves its outcome unknown; stopped this way, every guest's outcome is
// known. ctx ending stops the starting as well, and cuts the calls.
func (f *Fleet) RunUntil(ctx, stop context.Context, a Action, names []string, progress func(Result)) []Result {
	results := make([]Result, len(names))
	var pmu sync.Mutex
	report := func(i int, r Result) {
		results[i] = r
		if progress != nil {
			pmu.Lock()
			progress(r)
			pmu.Unlock()
		}
	}
	refuse := func(why string) []Result {
		for i, n := range names {
			report(i, Result{Guest: n, Err: why})
		}
		return results
	}
	if err := a.validate(); err != nil {
		return refuse(err.Error())
	}
	if f.opts.Readonly && a.Mutating() {
		return refuse(fmt.Sprintf("refused: read-only mode does not allow %s (nothing was sent)", a.Kind))
	}
	sessions := f.sessionsFor(names)
	if a.Kind == ActFreeze {
		f.prerecordFreezes(sessions)
		defer f.dropPrerecorded(sessions)
	}
	startUntil(ctx, stop, len(names), f.opts.Concurrency, func(i int) {
		s := sessions[i]
		if s == nil {
			report(i, Result{Guest: names[i], Err: "no such guest"})
			return
		}
		report(i, s.run(ctx, a))
	}, func(from int) {
		if a.Kind == ActFreeze {
			// Never to be sent: their ledger entries go now, not when
			// the calls in flight end, so that no guestdeck reads a
			// freeze into a guest that is not getting one.
			f.dropPrerecorded(sessions[from:])
		}
		for i := from; i < len(names); i++ {
			report(i, Result{Guest: names[i], Err: NotStartedText, NotStarted: true})
		}
	})
	return results
}

// startUntil calls fn(i) for i = 0, 1, ... in order, at most limit at a
// time, until ctx or stop ends; then notStarted(from) is called at once
// (before the calls in flight end) with the first i never started, unless
// every one was. It returns when every fn has returned. A guest starts
// only if neither had ended when its slot came free: after a stop is seen,
// nothing more starts.
func startUntil(ctx, stop context.Context, n, limit int, fn func(i int), notStarted func(from int)) {
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	ended := func() bool { return ctx.Err() != nil || stop.Err() != nil }
	i := 0
	for ; i < n && !ended(); i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		case <-stop.Done():
		}
		if ended() {
			break // a slot taken as it ended goes unused
		}
		wg.Add(1)
		go func(i int) { // i is the loop's, shared: this guest's is passed
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}(i)
	}
	if i < n {
		notStarted(i)
	}
	wg.Wait()
}

// FreezeTimeout is when the watchdog thaws a guest this process froze,
// counted from the freeze (Options.FreezeTimeout): what a freeze's
// confirmation promises.
func (f *Fleet) FreezeTimeout() time.Duration { return f.opts.FreezeTimeout }

// run performs one action on one guest: the capability check, then the
// action's own step from the table, with one exit for its error.
func (s *session) run(ctx context.Context, a Action) (r Result) {
	t0 := time.Now()
	r.Guest = s.target().Name
	defer func() { r.Duration = time.Since(t0) }()
	if why := a.Check(s.cur.Load()); why != "" {
		r.Skipped, r.Err = true, why
		return r
	}
	step := a.spec().run
	if step == nil {
		r.Err = fmt.Sprintf("unknown action %q", a.Kind)
		return r
	}
	if err := step(s, ctx, a, &r); err != nil {
		r.OK, r.Err = false, actionError(err)
		return r
	}
	r.OK = true
	return r
}

func actionError(err error) string { return capText(actionErrorText(err), maxErrText) }

// maxErrText bounds a result's error text. An agent's error is its own
// words, bounded only by its reply's limit (1.4 MB for a read): the
// dashboard's event log keeps 200 actions' results and the audit log
// appends every one. An error that names a path fits in far less.
const maxErrText = 16 << 10

// capText cuts s to at most max bytes at a character boundary, saying how
// much was left out.
func capText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return fmt.Sprintf("%s… (%d more bytes)", s[:i], len(s)-i)
}

func actionErrorText(err error) string {
	switch {
	case agentclient.IsFrozen(err):
		return "refused: the guest's filesystems are frozen (thaw first)"
	case agentclient.IsDisabled(err):
		return "refused: the command is disabled on this guest: " + err.Error()
	case agentclient.IsUnknown(err):
		return "the agent does not know the command: " + err.Error()
	}
	return err.Error()
}

func describe(g *Guest) string {
	var b strings.Builder
	b.WriteString(string(g.State))
	if g.AgentVersion != "" {
		fmt.Fprintf(&b, ", agent %s", g.AgentVersion)
	}
	if g.OS != nil && g.OS.PrettyName != "" {
		fmt.Fprintf(&b, ", %s", g.OS.PrettyName)
	}
	if g.Hostname != "" {
		fmt.Fprintf(&b, ", host %s", g.Hostname)
	}
	if g.Err != "" {
		fmt.Fprintf(&b, " (%s)", g.Err)
	}
	return b.String()
}

// withAgent runs fn with the guest's connection, dialing first if needed.
// A connection-level failure drops the connection and updates the state.
func (s *session) withAgent(ctx context.Context, fn func(a *callAgent) error) error {
	if err := s.acquire(ctx); err != nil {
		return fmt.Errorf("guest %s busy: %w", s.target().Name, err)
	}
	defer s.release()
	if _, err := s.connect(ctx); err != nil {
		s.failed(ctx, err, false)
		return err
	}
	err := fn(s.agent)
	if isTransport(err) {
		s.failed(ctx, err, false)
	}
	return err
}

func plural(n int, one string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", one)
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// agentStep is an action's step that talks to the agent (Spec.run through
// onAgent): it runs holding the guest's connection. Holds sem.
type agentStep func(s *session, ctx context.Context, ag *callAgent, a Action, r *Result) error

// onAgent runs step with the guest's connection, dialing first if needed.
func onAgent(step agentStep) func(s *session, ctx context.Context, a Action, r *Result) error {
	return func(s *session, ctx context.Context, a Action, r *Result) error {
		return s.withAgent(ctx, func(ag *callAgent) error { return step(s, ctx, ag, a, r) })
	}
}

// actInfo polls everything now (it dials and holds the connection itself).
func (s *session) actInfo(ctx context.Context, _ Action, r *Result) error {
	if err := s.poll(ctx, true); err != nil {
		return err
	}
	r.Result = describe(s.cur.Load())
	return nil
}

func (s *session) actPing(ctx context.Context, ag *callAgent, _ Action, r *Result) error {
	t0 := time.Now()
	if err := ag.Ping(ctx); err != nil {
		return err
	}
	r.RTT = time.Since(t0)
	r.Result = fmt.Sprintf("pong in %s", r.RTT.Round(10*time.Microsecond))
	return nil
}

// actThaw thaws, checked with guest-fsfreeze-status: only a confirmed thaw
// clears the ledger (whoever froze the guest).
func (s *session) actThaw(ctx context.Context, ag *callAgent, _ Action, r *Result) error {
	n, verified, err := s.thawVerify(ctx, ag)
	if err != nil {
		return err
	}
	s.clearFreeze()
	r.Filesystems = n
	if n == 0 {
		r.Result = "already thawed (nothing to thaw)"
	} else {
		r.Result = "thawed " + plural(n, "filesystem")
	}
	if !verified {
		r.Result += " (the agent cannot report its freeze state)"
	}
	return nil
}

// actGoAway shuts down or suspends: the guest goes away, so the agent
// replies nothing, or hangs up as it goes. Only watching it go confirms the
// outcome.
func (s *session) actGoAway(ctx context.Context, ag *callAgent, a Action, r *Result) error {
	var err error
	var entry string
	st := ShuttingDown
	if a.Kind == ActSuspend {
		st = Suspended
		// Recorded first: a guest this process suspends must show as
		// suspended to every later guestdeck, not as silent.
		if entry, err = s.recordSuspend(a.Mode); err != nil {
			return fmt.Errorf("not suspended: the suspend could not be recorded (%w); nothing was sent", err)
		}
		err = ag.Suspend(ctx, a.Mode)
	} else {
		s.markBoot() // session.go: a reboot over this connection shows
		err = ag.Shutdown(ctx, a.Mode)
	}
	if errors.Is(err, agentclient.ErrNotSent) {
		// The agent did not answer the sync sent right before (a stream
		// checks that it answers at all, as silence is the command's
		// acceptance): nothing went out, so nothing is awaited.
		s.forget(entry)
		s.bootMark = 0
		return err
	}
	lost := agentclient.IsConnLost(err)
	if lost && ag.stream() != nil {
		// A stream takes the hang-up after a request it sent for the
		// agent's acceptance itself (awaitAccepted). Lost here, the
		// request never went out whole: a connection kept since its
		// agent hung up (QEMU restarted between polls), or one that
		// broke before the write. Counted accepted, it was reported
		// accepted by an agent that never saw it.
		lost, err = false, fmt.Errorf("%s not sent: %w", a, err)
	}
	if err != nil && !lost && ctx.Err() != nil && isTransport(err) {
		// The action ended (cancelled, its deadline) with the request
		// written, as it almost always is by then, and no error from the
		// agent: the command never answers when it works, so the wait
		// for its error was cut, not failed. The suspend's ledger entry stays (it goes once the guest
		// answers: book.go).
		s.bootMark = 0
		return fmt.Errorf("%s: cancelled before the agent accepted it (%w); it may have reached the agent, and the guest may still go (guestdeck status shows whether it does)", a, err)
	}
	if err != nil && !lost {
		s.forget(entry)
		s.bootMark = 0 // no shutdown awaited
		return err
	}
	if lost {
		s.dropAgent()
	}
	s.update(func(g *Guest) {
		now := time.Now()
		setState(g, st, "", now)
		g.Since = now // a second shutdown is awaited anew (goingAway)
	})
	s.poke()
	// Accepted is all the call says: the guest goes (or not) later, as the
	// state shows (the dashboard's column, guestdeck status).
	r.Result = fmt.Sprintf("%s accepted by the agent", a)
	return nil
}

func (s *session) actSetTime(ctx context.Context, ag *callAgent, _ Action, r *Result) error {
	ns := time.Now().UnixNano()
	if err := ag.SetTime(ctx, &ns); err != nil {
		return err
	}
	s.poke()
	r.Clock = time.Unix(0, ns).UTC()
	r.Result = "clock set to host time " + r.Clock.Format(time.RFC3339Nano)
	return nil
}

func (s *session) actFstrim(ctx context.Context, ag *callAgent, a Action, r *Result) error {
	var minimum *int64
	if a.Minimum > 0 {
		minimum = &a.Minimum
	}
	tr, err := ag.Fstrim(ctx, minimum)
	if err != nil {
		return err
	}
	summarizeTrim(tr, r)
	return nil
}

func (s *session) actVCPUs(ctx context.Context, ag *callAgent, a Action, r *Result) error {
	want := make([]agentclient.VCPU, len(a.IDs))
	for i, id := range a.IDs {
		want[i] = agentclient.VCPU{LogicalID: id, Online: a.Mode == VCPUsOnline}
	}
	n, err := ag.SetVCPUs(ctx, want)
	if err != nil {
		return err
	}
	r.VCPUs = n
	r.Result = fmt.Sprintf("%d of %d vCPUs set %s", n, len(want), a.Mode)
	if n < len(want) {
		return fmt.Errorf("only %d of %d vCPUs set %s (the agent stops at the first it cannot change)", n, len(want), a.Mode)
	}
	s.poke()
	return nil
}

func (s *session) actRead(ctx context.Context, ag *callAgent, a Action, r *Result) error {
	var buf bytes.Buffer
	n, err := readFile(ctx, ag, a.Path, &limitWriter{w: &buf, n: MaxReadData}, nil)
	if err != nil && !errors.Is(err, errLimit) {
		return err
	}
	r.Data = buf.Bytes()
	r.Bytes = int64(len(r.Data))
	if errors.Is(err, errLimit) {
		r.Result = fmt.Sprintf("read the first %d bytes of %s (cut at %d)", len(r.Data), a.Path, MaxReadData)
	} else {
		r.Result = fmt.Sprintf("read %d bytes from %s", n, a.Path)
	}
	return nil
}

func (s *session) actWrite(ctx context.Context, ag *callAgent, a Action, r *Result) error {
	n, err := writeFile(ctx, ag, a.Path, bytes.NewReader(a.Data), int64(len(a.Data)), nil)
	if err != nil {
		return err
	}
	r.Bytes = n
	r.Result = fmt.Sprintf("wrote %d bytes to %s", n, a.Path)
	return nil
}

// summarizeTrim fills r from an fstrim reply: the bytes trimmed and the
// filesystems trimmed, with the ones that failed in the text.
func summarizeTrim(tr *agentclient.TrimResponse, r *Result) {
	if tr == nil || len(tr.Paths) == 0 {
		r.Result = "trimmed (the agent reports no details)"
		return
	}
	var failed []string
	for _, p := range tr.Paths {
		if p.Error != "" {
			failed = append(failed, p.Path+": "+p.Error)
			continue
		}
		r.Filesystems++
		if p.Trimmed != nil {
			r.TrimmedBytes += *p.Trimmed
		}
	}
	r.Result = fmt.Sprintf("trimmed %d bytes on %s", r.TrimmedBytes, plural(r.Filesystems, "filesystem"))
	if len(failed) > 0 {
		r.Result += "; failed: " + strings.Join(failed, "; ")
	}
}

// actFreeze freezes the guest and arms the freeze guard. Holds sem.
func (s *session) actFreeze(ctx context.Context, a *callAgent, act Action, r *Result) error {
	// The ledger entry is written before the freeze is sent: if this
	// process dies at any point after, the next guestdeck knows.
	entry, err := s.recordFreeze()
	if err != nil {
		return fmt.Errorf("not frozen: the freeze could not be recorded (%w); nothing was sent", err)
	}
	// Some filesystems (--mountpoint) or all: the ledger, the watchdog and
	// the thaw are the same either way (a thaw thaws every one).
	var n int
	if len(act.Mountpoints) > 0 {
		n, err = a.FreezeList(ctx, act.Mountpoints)
	} else {
		n, err = a.Freeze(ctx)
	}
	switch {
	case agentclient.IsFrozen(err):
		// The agent refuses a second freeze: the guest is frozen already,
		// which is what was asked. Not by this freeze, though: whoever froze
		// it keeps their ledger entry, this one goes.
		s.forget(entry)
		s.update(func(g *Guest) {
			g.Freeze = agentclient.Frozen
			setState(g, Frozen, "", time.Now())
		})
		r.Result = "already frozen"
		return nil
	case isTransport(err):
		// The freeze may have happened without its answer reaching us:
		// arm the guard anyway so the guest cannot stay frozen by accident.
		s.armGuard(false)
		return err
	case err != nil:
		s.forget(entry)
		return err
	case n == 0:
		// Nothing is frozen: a snapshot taken now would not be consistent.
		s.forget(entry)
		return errFrozeNothing
	}
	r.ThawAt = s.armGuard(true)
	r.Filesystems = n
	r.Result = "froze " + plural(n, "filesystem")
	if len(act.Mountpoints) > 0 {
		r.Result += " (" + strings.Join(act.Mountpoints, ", ") + ")"
	}
	return nil
}

// armGuard records that this process froze the guest and starts the
// watchdog that thaws it at the deadline.
func (s *session) armGuard(confirmed bool) time.Time {
	at := time.Now().Add(s.f.opts.FreezeTimeout)
	s.update(func(g *Guest) {
		g.FrozenByUs, g.ThawAt = true, at
		if confirmed {
			g.Freeze = agentclient.Frozen
			setState(g, Frozen, "", time.Now())
		}
	})
	s.kickWatchdog()
	s.startWatchdog()
	return at
}

// startWatchdog starts the freeze watchdog unless it runs already or the
// session or fleet is closed.
func (s *session) startWatchdog() {
	s.mu.Lock()
	start := !s.watchdogOn && !s.closed
	if start {
		s.watchdogOn = true
		if s.wdWake.Load() == nil {
			// Before the watchdog runs: a kick before this has nothing
			// to wake, and a watchdog reads the guest when it starts.
			c := make(chan struct{}, 1)
			s.wdWake.Store(&c)
		}
	}
	s.mu.Unlock()
	if start && !s.f.goTracked(s.watchdog) {
		s.mu.Lock()
		s.watchdogOn = false
		s.mu.Unlock()
	}
}

// thawed records a successful thaw. Holds sem.
func (s *session) thawed() {
	s.update(func(g *Guest) {
		g.Freeze = agentclient.Thawed
		g.FrozenByUs, g.ThawAt = false, time.Time{}
		// It answered: whatever failure the state showed (a channel that
		// dropped during a hold) is over.
		if g.State != ShuttingDown && g.State != Suspended {
			setState(g, Ready, "", time.Now())
		}
	})
	s.kickWatchdog()
}

func (s *session) kickWatchdog() {
	c := s.wdWake.Load()
	if c == nil {
		return // none ever started
	}
	select {
	case *c <- struct{}{}:
	default:
	}
}

// goTracked runs fn on a goroutine Close waits for; false once closed.
func (f *Fleet) goTracked(fn func(ctx context.Context)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn(f.life)
	}()
	return true
}

// watchdog thaws the guest when its thaw deadline passes while this process
// still holds it frozen, with the retrying thaw; when that gives up it
// starts again a little later, until the thaw succeeds, the guest is
// thawed by someone else, or the fleet closes.
func (s *session) watchdog(ctx context.Context) {
	wake := *s.wdWake.Load() // made before this started (startWatchdog)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		g := s.cur.Load()
		if !g.FrozenByUs || s.closed {
			s.watchdogOn = false
			ours := len(s.freezeIDs) > 0
			s.mu.Unlock()
			if !g.FrozenByUs && ours {
				// Seen thawed (by a poll, or by anyone): the entry is done.
				s.forget(s.ourFreezeIDs()...)
			}
			return
		}
		s.mu.Unlock()
		if d := time.Until(g.ThawAt); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-wake:
				continue
			case <-timer.C:
				continue
			}
		}
		s.logCall(time.Now(), "watchdog", "thaw deadline passed", "thawing", nil)
		if r := s.autoThaw(ctx, "automatic thaw (freeze_timeout passed)"); !r.OK {
			// A guest left frozen is an outage: go on trying.
			timer.Reset(min(s.f.opts.ThawBudget/4, 15*time.Second))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
	}
}

func (s *session) ourFreezeIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.freezeIDs...)
}

// FrozenByUs lists the guests this process froze that are not known to be
// thawed, sorted by name.
func (f *Fleet) FrozenByUs() []string {
	var names []string
	for _, g := range f.Snapshot().Guests {
		if g.FrozenByUs {
			names = append(names, g.Name)
		}
	}
	slices.Sort(names)
	return names
}

// ThawOurs thaws every guest this process froze (on quit, at the end of a
// hold, on a signal), each with the retrying thaw: redialled, retried
// within Options.ThawBudget, and confirmed with guest-fsfreeze-status. A
// Result is OK only for a guest seen thawed. It thaws even in read-only
// mode, which cannot have frozen anything itself.
func (f *Fleet) ThawOurs(ctx context.Context) []Result {
	names := f.FrozenByUs()
	results := make([]Result, len(names))
	sessions := f.sessionsFor(names)
	forEach(ctx, len(names), f.opts.Concurrency, func(i int) {
		if sessions[i] == nil {
			results[i] = Result{Guest: names[i], Err: "no such guest"}
			return
		}
		results[i] = sessions[i].thawOwed(ctx, "")
	})
	for i := range results {
		if results[i].Guest == "" {
			results[i] = Result{Guest: names[i], Err: "cancelled before it started (nothing was sent); the guest is still FROZEN"}
		}
	}
	return results
}
