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

	"github.com/guestdeck/guestdeck/agentclient"
)

// errFrozeNothing: the agent froze no filesystem, so the guest is not frozen
// as asked.
var errFrozeNothing = errors.New("froze 0 filesystems: the guest stays thawed (has it none the agent can freeze?)")

// MaxReadData bounds what a "read" action keeps per guest in Result.Data;
// larger files are cut there (ReadFile streams any size).
const MaxReadData = 1 << 20

// Run performs a on the named guests, at most Options.Concurrency at a time,
// and returns one Result per name in the same order. progress (may be nil)
// is called once per guest as it finishes, never concurrently. When ctx ends,
// guests not yet started report "cancelled" without anything being sent.
func (f *Fleet) Run(ctx context.Context, a Action, names []string, progress func(Result)) []Result {
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
	started := make([]bool, len(names))
	forEach(ctx, len(names), f.opts.Concurrency, func(i int) {
		started[i] = true
		s := sessions[i]
		if s == nil {
			report(i, Result{Guest: names[i], Err: "no such guest"})
			return
		}
		report(i, s.run(ctx, a))
	})
	for i, ok := range started {
		if !ok {
			report(i, Result{Guest: names[i], Err: "cancelled before it started (nothing was sent)"})
		}
	}
	return results
}

// run performs one action on one guest.
func (s *session) run(ctx context.Context, a Action) Result {
	t0 := time.Now()
	r := Result{Guest: s.target.Name}
	if why := a.Check(s.cur.Load()); why != "" {
		r.Skipped, r.Err = true, why
		r.Duration = time.Since(t0)
		return r
	}
	var err error
	if a.Kind == ActInfo {
		err = s.poll(ctx, true)
		g := s.cur.Load()
		if err == nil {
			r.Result = describe(g)
		}
	} else {
		err = s.withAgent(ctx, func(ag *callAgent) error { return s.act(ctx, ag, a, &r) })
	}
	if err != nil {
		r.OK = false
		r.Err = actionError(err)
	} else {
		r.OK = true
	}
	r.Duration = time.Since(t0)
	return r
}

func actionError(err error) string {
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
		return fmt.Errorf("guest %s busy: %w", s.target.Name, err)
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

// act sends the action's commands. Holds sem.
func (s *session) act(ctx context.Context, a *callAgent, act Action, r *Result) error {
	now := time.Now
	switch act.Kind {
	case ActPing:
		t0 := now()
		if err := a.Ping(ctx); err != nil {
			return err
		}
		r.Result = fmt.Sprintf("pong in %s", time.Since(t0).Round(10*time.Microsecond))
	case ActFreeze:
		return s.freeze(ctx, a, r)
	case ActThaw:
		// Checked with guest-fsfreeze-status: only a confirmed thaw clears
		// the ledger (whoever froze the guest).
		n, verified, err := s.thawVerify(ctx, a)
		if err != nil {
			return err
		}
		s.clearFreeze()
		if n == 0 {
			r.Result = "already thawed (nothing to thaw)"
		} else {
			r.Result = "thawed " + plural(n, "filesystem")
		}
		if !verified {
			r.Result += " (the agent cannot report its freeze state)"
		}
	case ActShutdown, ActSuspend:
		var err error
		var entry string
		if act.Kind == ActShutdown {
			err = a.Shutdown(ctx, act.Mode)
		} else {
			// Recorded first: a guest this process suspends must show as
			// suspended to every later guestdeck, not as silent.
			if entry, err = s.recordSuspend(act.Mode); err != nil {
				return fmt.Errorf("not suspended: the suspend could not be recorded (%w); nothing was sent", err)
			}
			err = a.Suspend(ctx, act.Mode)
		}
		lost := agentclient.IsConnLost(err)
		if err != nil && !lost {
			s.forget(entry)
			return err
		}
		// Accepted: the agent replies nothing, or the guest hangs up as it
		// goes. Only watching it go confirms the outcome.
		if lost {
			s.dropAgent()
		}
		st := ShuttingDown
		if act.Kind == ActSuspend {
			st = Suspended
		}
		s.update(func(g *Guest) { setState(g, st, "", time.Now()) })
		s.poke()
		r.Result = fmt.Sprintf("%s accepted; waiting for the guest to go", act)
	case ActSetTime:
		ns := now().UnixNano()
		if err := a.SetTime(ctx, &ns); err != nil {
			return err
		}
		s.poke()
		r.Result = "clock set to host time " + time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
	case ActFstrim:
		tr, err := a.Fstrim(ctx, nil)
		if err != nil {
			return err
		}
		r.Result = summarizeTrim(tr)
	case ActVCPUs:
		want := make([]agentclient.VCPU, len(act.IDs))
		for i, id := range act.IDs {
			want[i] = agentclient.VCPU{LogicalID: id, Online: act.Mode == "online"}
		}
		n, err := a.SetVCPUs(ctx, want)
		if err != nil {
			return err
		}
		r.Result = fmt.Sprintf("%d of %d vCPUs set %s", n, len(want), act.Mode)
		if n < len(want) {
			return fmt.Errorf("only %d of %d vCPUs set %s (the agent stops at the first it cannot change)", n, len(want), act.Mode)
		}
		s.poke()
	case ActRead:
		var buf bytes.Buffer
		n, err := readFile(ctx, a, act.Path, &limitWriter{w: &buf, n: MaxReadData}, nil)
		if err != nil && !errors.Is(err, errLimit) {
			return err
		}
		r.Data = buf.Bytes()
		if errors.Is(err, errLimit) {
			r.Result = fmt.Sprintf("read the first %d bytes of %s (cut at %d)", len(r.Data), act.Path, MaxReadData)
		} else {
			r.Result = fmt.Sprintf("read %d bytes from %s", n, act.Path)
		}
	case ActWrite:
		n, err := writeFile(ctx, a, act.Path, bytes.NewReader(act.Data), int64(len(act.Data)), nil)
		if err != nil {
			return err
		}
		r.Result = fmt.Sprintf("wrote %d bytes to %s", n, act.Path)
	case ActPassword, ActSSHKey:
		return s.userAct(ctx, a, act, r)
	default:
		return fmt.Errorf("unknown action %q", act.Kind)
	}
	return nil
}

func summarizeTrim(tr *agentclient.TrimResponse) string {
	if tr == nil || len(tr.Paths) == 0 {
		return "trimmed (the agent reports no details)"
	}
	var total int64
	var failed []string
	for _, p := range tr.Paths {
		if p.Error != "" {
			failed = append(failed, p.Path+": "+p.Error)
			continue
		}
		if p.Trimmed != nil {
			total += *p.Trimmed
		}
	}
	s := fmt.Sprintf("trimmed %d bytes on %s", total, plural(len(tr.Paths)-len(failed), "filesystem"))
	if len(failed) > 0 {
		s += "; failed: " + strings.Join(failed, "; ")
	}
	return s
}

// freeze freezes the guest and arms the freeze guard. Holds sem.
func (s *session) freeze(ctx context.Context, a *callAgent, r *Result) error {
	// The ledger entry is written before the freeze is sent: if this
	// process dies at any point after, the next guestdeck knows.
	entry, err := s.recordFreeze()
	if err != nil {
		return fmt.Errorf("not frozen: the freeze could not be recorded (%w); nothing was sent", err)
	}
	n, err := a.Freeze(ctx)
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
	r.Result = "froze " + plural(n, "filesystem")
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
	select {
	case s.wdWake <- struct{}{}:
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
			case <-s.wdWake:
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
