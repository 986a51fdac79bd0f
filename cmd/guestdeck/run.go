package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/tui/present"
)

// splitAction splits `ACTION [ARGS] [--] SELECTOR...`: the action table
// says how many words after the action's name are its own (fleet.Arity).
func splitAction(args []string) (action, selectors []string) {
	if i := slices.Index(args, "--"); i >= 0 {
		return args[:i], args[i+1:]
	}
	if len(args) == 0 {
		return nil, nil
	}
	n := 1 + fleet.Arity(args[0], args[1:])
	n = min(n, len(args))
	return args[:n], args[n:]
}

// runJSON is one guest in `run --json`: the outcome, the summary for a
// person, and the structured fields the action fills (its Spec's
// ResultFields), present only when the guest did it.
type runJSON struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped"`
	Error   string `json:"error"`
	Result  string `json:"result"`

	RTTNs        *int64 `json:"rtt_ns,omitempty"`        // ping
	Filesystems  *int   `json:"filesystems,omitempty"`   // freeze, thaw, fstrim
	TrimmedBytes *int64 `json:"trimmed_bytes,omitempty"` // fstrim
	VCPUs        *int   `json:"vcpus_set,omitempty"`     // vcpus
	Bytes        *int64 `json:"bytes,omitempty"`         // read, write
	Clock        string `json:"clock,omitempty"`         // settime, clock: RFC 3339 to the nanosecond, UTC
	SkewNs       *int64 `json:"skew_ns,omitempty"`       // clock (reading): guest minus host
	// freeze: when guestdeck thaws the guest (the end of --hold), or
	// stays_frozen when it does not.
	ThawAt      string `json:"thaw_at,omitempty"`
	StaysFrozen bool   `json:"stays_frozen,omitempty"`
}

// newRunJSON is r as `run --json` prints it.
func newRunJSON(act fleet.Action, r fleet.Result) runJSON {
	j := runJSON{Name: r.Guest, OK: r.OK, Skipped: r.Skipped, Error: r.Err, Result: resultText(r)}
	if !r.OK {
		return j
	}
	spec, _ := fleet.SpecOf(act.Kind)
	for _, f := range spec.ResultFields {
		switch f {
		case fleet.FieldRTT:
			j.RTTNs = ptr(r.RTT.Nanoseconds())
		case fleet.FieldFilesystems:
			j.Filesystems = ptr(r.Filesystems)
		case fleet.FieldTrimmedBytes:
			j.TrimmedBytes = ptr(r.TrimmedBytes)
		case fleet.FieldVCPUs:
			j.VCPUs = ptr(r.VCPUs)
		case fleet.FieldBytes:
			j.Bytes = ptr(r.Bytes)
		case fleet.FieldClock:
			if !r.Clock.IsZero() { // clock --sync sets what it does not know
				j.Clock = r.Clock.UTC().Format(time.RFC3339Nano)
			}
		case fleet.FieldSkew:
			if act.Mode == fleet.ClockGet {
				j.SkewNs = ptr(r.Skew.Nanoseconds())
			}
		case fleet.FieldThawAt:
			if r.ThawAt.IsZero() {
				j.StaysFrozen = true
			} else {
				j.ThawAt = r.ThawAt.Format(time.RFC3339)
			}
		}
	}
	return j
}

func ptr[T any](v T) *T { return &v }

// maxHold bounds --hold: a freeze longer than a day is an outage, not a
// backup window.
const maxHold = 24 * time.Hour

// notOurFreeze is a --hold guest's error when it was frozen before: the hold
// is a promise to thaw what guestdeck froze, and this freeze is someone else's.
const notOurFreeze = "already frozen, and not by this guestdeck: --hold will neither hold nor thaw it"

// runRequest is a `run` command line, parsed and checked.
type runRequest struct {
	act       fleet.Action
	words     []string // the action as typed
	selectors []string
	args      []string // the words after the flags, for the audit log
	asJSON    bool
	yes, dry  bool
	hold      time.Duration
	wait      time.Duration // shutdown --wait: how long to wait for the guests to go; 0: not at all
}

// what names the request in messages: "run freeze", "run --dry-run freeze".
func (r *runRequest) what() string {
	if r.dry {
		return "run --dry-run " + r.act.String()
	}
	return "run " + r.act.String()
}

// auditAction is the action as the audit log records it.
func (r *runRequest) auditAction() string {
	if r.hold > 0 {
		return r.act.String() + fmt.Sprintf(" (--hold %s)", r.hold)
	}
	return r.act.String()
}

func (c *cli) runAction(ctx context.Context, args []string) int {
	req, code, ok := c.parseRun(args)
	if !ok {
		return code
	}
	o, code := c.openFleet(ctx, false, func(opts *fleet.Options) {
		// The watchdog must not thaw before the hold ends.
		if req.hold > 0 && opts.FreezeTimeout < req.hold+time.Minute {
			opts.FreezeTimeout = req.hold + time.Minute
		}
		opts.Audit = c.auditLog()
		opts.Who, opts.Promise = ledgerWho(req.act, req.hold)
	})
	if o == nil {
		return code
	}
	defer o.close()
	f := o.fleet
	if c.readonly && req.act.Mutating() {
		c.errorf("%s: refused: the fleet file says readonly = true (like --readonly); nothing was sent", req.what())
		return exitUsage
	}
	gs, err := selectPolled(ctx, f, req.selectors)
	if err != nil {
		c.errorf("run: %v", err)
		return exitUsage
	}
	if len(gs) == 0 {
		c.errorf("%s: the selectors %s match no guest", req.what(), strings.Join(req.selectors, " "))
		return exitUsage
	}
	command := c.recordedCommand(req.args, hiddenWords(req.act, req.words))
	if req.dry {
		return c.dryRun(req.act, gs, req.hold, command, req.selectors, req.asJSON)
	}
	if req.act.Destructive() && !req.yes && !c.confirmAction(req.act, gs, req.hold) {
		return exitUsage
	}
	if req.act.NeedsSecret() {
		if code, ok := c.readSecret(&req.act); !ok {
			return code
		}
		defer clear(req.act.Users.Secret)
	}
	var aud *audited
	if req.act.Mutating() {
		aud, err = c.auditIntent(audit.SourceCLI, req.auditAction(), command, req.selectors, fleet.AuditPlan(req.act, gs, audit.Intent, time.Now()))
		if err != nil {
			c.errorf("%s: refused: %v; nothing was sent", req.what(), err)
			return exitUsage
		}
	}
	results, stopped := c.runWithProgress(ctx, f, req.act, gs)
	return c.finishRun(ctx, f, req, results, stopped, aud)
}

// parseRun reads the flags and the action; ok is false when the caller
// should return code. It refuses what the command line alone rules out
// before any fleet file is read or any agent dialled.
func (c *cli) parseRun(args []string) (req *runRequest, code int, ok bool) {
	req = &runRequest{}
	fs := c.flags("run")
	fs.BoolVar(&req.asJSON, "json", false, "print a JSON array of per-guest results (with each action's fields, see README)")
	fs.BoolVar(&req.yes, "yes", false, "do not ask for confirmation (needed without a terminal, and for freeze without --hold)")
	fs.BoolVar(&req.dry, "dry-run", false, "print what would be sent to each guest, or why it would be skipped; send nothing")
	fs.Func("hold", "freeze only: keep guestdeck running for `D` (more than 0, at most 24h), or until ctrl-c, then thaw", func(v string) error {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return fmt.Errorf("want a duration such as 90s, 5m or 1h")
		case d <= 0:
			return fmt.Errorf("must be more than zero")
		case d > maxHold:
			return fmt.Errorf("at most %s: a longer freeze is an outage (use --yes and thaw it yourself)", maxHold)
		}
		req.hold = d
		return nil
	})
	var wait watchFlag
	fs.Var(&wait, "wait", "shutdown only: wait until each guest is confirmed gone (its agent's socket missing or refusing for 1s, or its libvirt domain shut off), at most `D` (--wait=D, default 2m, at most 1h)")
	// The action's own words are taken as they are (password --crypted),
	// as splitAction counts them.
	actionArgs := func(words, rest []string) int {
		if len(words) != 1 {
			return 0
		}
		return fleet.Arity(words[0], rest)
	}
	if code, ok := parseWords(fs, args, actionArgs); !ok {
		return nil, code, false
	}
	req.args = fs.Args()
	req.words, req.selectors = splitAction(req.args)
	if wait.set && wait.d == 0 {
		// --wait 30s reads 30s as a word: the duration goes with an =.
		for _, w := range append(slices.Clone(req.words[:min(1, len(req.words))]), req.selectors[:min(1, len(req.selectors))]...) {
			if _, err := time.ParseDuration(w); err == nil {
				c.errorf("run: --wait takes its duration after an = (--wait=%s): %q is read as a word", w, w)
				return nil, exitUsage, false
			}
		}
	}
	if len(req.words) == 0 {
		c.errorf("run: no action (%s)", fleet.UsageList())
		return nil, exitUsage, false
	}
	var err error
	if req.act, err = fleet.ParseAction(req.words); err != nil {
		c.errorf("run: %v", err)
		return nil, exitUsage, false
	}
	if wait.set {
		req.wait = cmp.Or(wait.d, defaultShutdownWait)
	}
	switch {
	case wait.set && (req.act.Kind != fleet.ActShutdown || req.act.Mode == agentclient.ShutdownReboot):
		c.errorf("run: --wait only applies to shutdown powerdown or halt (a rebooting guest comes back: guestdeck status shows it)")
	case wait.set && (req.wait <= 0 || req.wait > maxShutdownWait):
		c.errorf("run: --wait must be more than 0 and at most %s", maxShutdownWait)
	case len(req.selectors) == 0:
		c.errorf("run %s: no guests selected: name them, or use a selector such as all, tag:X, host:Y, state:Z", req.act)
	case c.readonly && req.act.Mutating():
		c.errorf("%s: refused: --readonly forbids actions that change guests; nothing was sent", req.what())
	case req.hold != 0 && req.act.Kind != fleet.ActFreeze:
		c.errorf("run: --hold only applies to freeze")
	case req.act.Kind == fleet.ActFreeze && req.hold == 0 && !req.yes && !req.dry:
		c.errorf("run freeze: guests stay frozen after guestdeck exits (their writes block until thawed);\n" +
			"  pass --yes to freeze and leave them frozen, or --hold DURATION to thaw automatically")
	default:
		return req, 0, true
	}
	return nil, exitUsage, false
}

// runWithProgress runs act on gs, counting finished guests on a terminal.
//
// An interrupt (ctx ending: ctrl-c, SIGTERM, SIGHUP) stops it as the
// dashboard's stop key does: no guest not yet started is started, and the
// calls already sent finish with their real results, so that every
// guest's outcome is known; cut mid-call, a freeze's or a shutdown's is
// not. A second interrupt cuts them too. Each call is bounded by its
// timeout either way. stopped is the audit log's record of that stop, nil
// when no interrupt came.
func (c *cli) runWithProgress(ctx context.Context, f *fleet.Fleet, act fleet.Action, gs []*fleet.Guest) (results []fleet.Result, stopped *audit.Stop) {
	// progress and the interrupts' messages run on other goroutines.
	var mu sync.Mutex
	done := 0
	tty := isTerminal(c.stderr)
	say := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if tty {
			fmt.Fprint(c.stderr, "\r\033[K")
		}
		fmt.Fprintf(c.stderr, "%s: %s\n", present.Text(act.String(), 60), msg)
	}
	calls, end, stoppedAt := twoStage(ctx, say,
		"stopping: no more guests are started; the calls already sent finish (interrupt again to cut them)",
		"cutting the calls in flight: their outcome may be unknown")
	defer end()
	results = f.RunUntil(calls, ctx, act, names(gs), func(fleet.Result) {
		mu.Lock()
		defer mu.Unlock()
		done++
		if tty {
			fmt.Fprintf(c.stderr, "\r%s: %d/%d", present.Text(act.String(), 60), done, len(gs))
		}
	})
	end()
	if tty {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
	notStarted := 0
	for _, r := range results {
		if r.NotStarted {
			notStarted++
		}
	}
	return results, interruptStop(stoppedAt(), notStarted)
}

// interruptStop is the audit record of a stop by an interrupt at at, nil
// when none came (at is zero).
func interruptStop(at time.Time, notStarted int) *audit.Stop {
	if at.IsZero() {
		return nil
	}
	return &audit.Stop{At: at, By: audit.StoppedByInterrupt, NotStarted: notStarted}
}

// twoStage is the command line's stop in two steps. The first interrupt
// (ctrl-c, SIGTERM, SIGHUP) ends ctx, through main's NotifyContext: what
// ctx bounds stops starting, and first is said. The returned context,
// for what was already sent, ends at the second (second is said), or at
// end, which must be called once the work is done (again is harmless).
// stoppedAt is when the first interrupt came (zero if none did); it is
// read after end.
func twoStage(ctx context.Context, say func(string), first, second string) (calls context.Context, end func(), stoppedAt func() time.Time) {
	calls, cut := context.WithCancel(context.WithoutCancel(ctx))
	// Registered before the work starts, beside main's NotifyContext
	// (both get every signal).
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	watched := make(chan struct{})
	var at time.Time // written before watched closes
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
		case <-calls.Done():
			// end came first, or with ctx: an interrupt that stopped the
			// work before anything started is still said.
			if ctx.Err() == nil {
				return
			}
		}
		at = time.Now()
		say(first)
		// sig holds every signal since the work began, the one that ended
		// ctx among them: the second is the operator's "again".
		seen := 0
		for {
			select {
			case <-sig:
				if seen++; seen < 2 {
					continue
				}
				say(second)
				cut()
				return
			case <-calls.Done():
				return
			}
		}
	}()
	end = func() {
		cut()
		<-watched
		signal.Stop(sig)
	}
	return calls, end, func() time.Time {
		<-watched
		return at
	}
}

// finishRun records and prints the outcome, then holds and thaws a
// freeze under --hold or warns of one left frozen.
func (c *cli) finishRun(ctx context.Context, f *fleet.Fleet, req *runRequest, results []fleet.Result, stopped *audit.Stop, aud *audited) int {
	holdEnd := time.Now().Add(req.hold)
	if req.act.Kind == fleet.ActFreeze {
		c.freezeResults(f, results, req.hold, holdEnd)
	}
	switch k := req.act.Kind; {
	case req.wait > 0:
		c.waitGone(ctx, f, results, req.wait)
	case k == fleet.ActShutdown || k == fleet.ActSuspend:
		// guestdeck exits now: say so, rather than seem to wait.
		for i := range results {
			if results[i].OK {
				results[i].Result += "; not waited for (guestdeck status shows when the guest has gone; run shutdown --wait waits)"
			}
		}
	}
	aud.outcome(c, fleet.AuditResults(results, guestAddress(f)), stopped)
	code := runExit(results)
	c.printResults(req.act, results, req.asJSON)
	if req.act.Kind != fleet.ActFreeze {
		return code
	}
	frozen := f.FrozenByUs()
	switch {
	case len(frozen) > 0 && req.hold > 0:
		if c.holdAndThaw(ctx, f, holdEnd, frozen) != exitOK {
			code = exitFrozen
		}
	case len(frozen) > 0:
		fmt.Fprintf(c.stderr, "\n!!! %d guest(s) are FROZEN and stay frozen after guestdeck exits: their disk writes block.\n"+
			"!!! thaw them with:  %s\n\n", len(frozen), c.thawCommand(frozen...))
	}
	return code
}

// defaultShutdownWait and maxShutdownWait are shutdown --wait's deadline
// without a value and its most: a guest that takes an hour to power off is
// not shutting down.
const (
	defaultShutdownWait = 2 * time.Minute
	maxShutdownWait     = time.Hour
)

// goneConfirm and goneChecks are how long and on how many checks in a row
// shutdown --wait must see a guest's gone signal (goneSignal) before it
// believes it: a refused or failed dial while the machine still runs (QEMU
// restarting the chardev, a socket moved for a moment) passes, a machine
// that has stopped keeps saying so.
const (
	goneConfirm = time.Second
	goneChecks  = 3
)

// goneSignal is what, of one check of a guest whose shutdown was accepted,
// says its machine has stopped, "" when nothing does. Only lasting, specific
// signals count: libvirt reporting the domain shut off or crashed, or, for
// a guest the fleet dials itself (unix, tcp, vsock), its socket missing
// (QEMU unlinks the chardev's socket when it exits) or its connection
// refused (the file left with nobody listening). Anything else may be a
// machine that still runs: a timeout or a silent agent (halted, or only
// slow), the channel held by another client, a dropped connection (the one
// a powerdown cuts is followed by a missing socket at the next dial), or
// the errors of a transport in between (libvirt, ssh), whose own socket
// missing says nothing of the guest. err is the check's own poll error:
// the guest's state keeps the reason it first went, whatever later checks
// meet (fleet.RefreshErrs).
func goneSignal(g *fleet.Guest, err error) string {
	if g == nil {
		return ""
	}
	switch g.State {
	case fleet.Stopped, fleet.Crashed:
		return "libvirt reports the domain " + string(g.State)
	}
	scheme, _, _ := strings.Cut(g.Address, ":")
	if scheme != "unix" && scheme != "tcp" && scheme != "vsock" {
		return ""
	}
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "no such socket"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return ""
}

// goneWatch is what shutdown --wait saw of one guest.
type goneWatch struct {
	since  time.Time // the first check of the current run of gone signals
	checks int       // checks in that run; 0: the last check saw none
	signal string    // the run's latest signal
	broken string    // the signal of the last run that broke, "" if none
	last   error     // the last check's poll error
	state  fleet.State
	done   bool      // a check finished (not all were cut short at the deadline)
	at     time.Time // when the last check finished
}

// see records one check at now and reports whether the guest is confirmed
// gone: its signal held on goneChecks checks in a row over goneConfirm.
func (w *goneWatch) see(sig string, g *fleet.Guest, err error, now time.Time) bool {
	w.last, w.done, w.at = err, true, now
	if g != nil {
		w.state = g.State
	}
	if sig == "" {
		if w.checks > 0 {
			w.broken = w.signal
		}
		w.checks = 0
		return false
	}
	if w.checks == 0 {
		w.since = now
	}
	w.checks++
	w.signal = sig
	return w.checks >= goneChecks && now.Sub(w.since) >= goneConfirm
}

// confirmBy is until when, past the deadline, a guest whose run of gone
// signals is under way is still checked rather than failed while it is
// being confirmed: goneConfirm after the run began, or, for a run that
// began earlier (its checks slowed by a slow guest in the same rounds),
// the deadline; and a check's worth (waitPoll) more. So the wait ends at
// most goneConfirm and a check past its deadline.
func (w *goneWatch) confirmBy(deadline time.Time) time.Time {
	t := w.since.Add(goneConfirm)
	if t.Before(deadline) {
		t = deadline
	}
	return t.Add(waitPoll)
}

// why says why a guest was not confirmed gone, after "(": its state, what
// its last check met, and a signal that came and went.
func (w *goneWatch) why() string {
	s := string(w.state)
	switch {
	case !w.done:
		s += ": no check finished by the deadline"
	case w.last == nil:
		s += ": its agent answers"
	case present.Brief(w.last) != "":
		s += ": " + present.Brief(w.last)
	}
	if w.state == fleet.ShuttingDown {
		s += "; a halted guest can keep its channel open"
	}
	if w.broken != "" {
		s += "; " + w.broken + " did not last"
	}
	return s
}

// channelUp reports whether the last check reached the guest's channel: it
// answered, stayed silent, or another client held it. Such a guest is still
// there; of one that failed otherwise, guestdeck cannot say.
func (w *goneWatch) channelUp() bool {
	return w.done && w.last == nil || agentclient.IsSilent(w.last) || agentclient.IsChannelHeld(w.last)
}

// waitGone polls the guests whose shutdown was accepted until each is
// confirmed gone (goneSignal, held for goneConfirm) or the deadline
// passes, and says which in each result: a guest not confirmed gone fails
// (exit 1), so `run --yes --wait shutdown ... && next` goes on only when
// every guest went. A guest merely unreachable for a moment is not gone.
func (c *cli) waitGone(ctx context.Context, f *fleet.Fleet, results []fleet.Result, d time.Duration) {
	start := time.Now()
	deadline := start.Add(d)
	pending := map[string]int{}
	watch := map[string]*goneWatch{}
	for i, r := range results {
		if r.OK {
			pending[r.Guest] = i
			watch[r.Guest] = &goneWatch{}
		}
	}
	if len(pending) == 0 {
		return
	}
	fmt.Fprintf(c.stderr, "waiting up to %s for %s to go (gone: no socket, a refused connection or libvirt's shut off, for %s)\n",
		d, present.Plural(len(pending), "guest"), goneConfirm)
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	for ctx.Err() == nil {
		// Past the deadline only guests being confirmed are checked. A
		// round of checks ends by the deadline, or past it by the end
		// of the confirmations it is for: a check waits out its poll's
		// timeout (a halted or silent guest, some 3 s; 6 s for one that
		// answers slowly; more for guests beyond Concurrency), and the
		// wait ran that far past its deadline.
		now := time.Now()
		var check []string
		end := deadline
		for name := range pending {
			switch w := watch[name]; {
			case now.Before(deadline):
				check = append(check, name)
			case w.checks > 0 && now.Before(w.confirmBy(deadline)):
				check = append(check, name)
				if e := w.confirmBy(deadline); e.After(end) {
					end = e
				}
			}
		}
		if len(check) == 0 {
			break
		}
		// Beyond Concurrency the checks go in turns: those being
		// confirmed first, then the longest unchecked, so that every
		// guest has its turn before a round is cut short.
		slices.SortFunc(check, func(a, b string) int {
			wa, wb := watch[a], watch[b]
			if c := cmp.Compare(wb.checks, wa.checks); c != 0 && (wa.checks == 0 || wb.checks == 0) {
				return c
			}
			return wa.at.Compare(wb.at)
		})
		rctx, cancel := context.WithDeadline(ctx, end)
		errs := f.RefreshErrs(rctx, check)
		cancel()
		if ctx.Err() != nil {
			break // the interrupt's errors are no check
		}
		now = time.Now()
		cut := !now.Before(end) // by the clock: the context may say so a hair later
		for _, name := range check {
			g, err := f.Guest(name), errs[name]
			sig := goneSignal(g, err)
			if cut && sig == "" && err != nil {
				// Maybe cut short at the round's end, or never started:
				// no check either way, and the last one that finished
				// says what the guest did. (A missing socket or a
				// refusal is met at once, before any cut.)
				continue
			}
			w := watch[name]
			if w.see(sig, g, err, now) {
				i := pending[name]
				results[i].Result += fmt.Sprintf("; gone after %s: %s, seen on %d checks over %s",
					roundDur(now.Sub(start)), w.signal, w.checks, roundDur(now.Sub(w.since)))
				delete(pending, name)
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	for name, i := range pending {
		w := watch[name]
		if g := f.Guest(name); !w.done && g != nil {
			w.state = g.State
		}
		why := fmt.Sprintf("shutdown accepted, but not confirmed gone after --wait %s", d)
		switch {
		case ctx.Err() != nil:
			why = "shutdown accepted; interrupted while waiting for it to go"
		case w.channelUp():
			why = fmt.Sprintf("shutdown accepted, but still there after --wait %s", d)
		}
		results[i].OK, results[i].Err = false, why+" ("+w.why()+")"
	}
}

// waitPoll is how often shutdown --wait polls the guests still there.
const waitPoll = 250 * time.Millisecond

// runExit is a finished action's exit code: any guest failed, else any
// skipped, else done.
func runExit(results []fleet.Result) int {
	code := exitOK
	for _, r := range results {
		switch {
		case !r.OK && !r.Skipped:
			return exitFail
		case r.Skipped:
			code = exitSkipped
		}
	}
	return code
}

// freezeResults says in each frozen guest's result when it thaws: at the
// end of the hold (ThawAt), or never by guestdeck (it exits, and its
// watchdog with it: ThawAt zero). Under --hold, a guest frozen before is a failure: guestdeck did not
// freeze it, so it neither holds nor thaws it.
func (c *cli) freezeResults(f *fleet.Fleet, results []fleet.Result, hold time.Duration, holdEnd time.Time) {
	ours := f.FrozenByUs()
	for i := range results {
		r := &results[i]
		if !r.OK {
			continue
		}
		switch {
		case hold > 0 && !slices.Contains(ours, r.Guest):
			r.OK, r.Err = false, notOurFreeze
			fmt.Fprintf(c.stderr, "guestdeck: %s is %s (thaw it yourself when its owner is done: %s)\n",
				present.Text(r.Guest, nameCells), notOurFreeze, c.thawCommand(r.Guest))
		case hold > 0:
			r.Result += fmt.Sprintf("; held frozen until %s, then thawed by guestdeck", holdEnd.Format("15:04:05"))
			r.ThawAt = holdEnd
			continue
		case !r.ThawAt.IsZero():
			r.Result += "; stays frozen after guestdeck exits"
		}
		r.ThawAt = time.Time{} // the watchdog's deadline is not this command's: it exits
	}
}

// hiddenWords are the action words the audit log must not keep: the data
// of an action that takes PATH DATA (write), replaced by its size. Indexes
// count from the action's name.
func hiddenWords(act fleet.Action, words []string) map[int]string {
	if spec, _ := fleet.SpecOf(act.Kind); spec.Args != fleet.PathDataArg || len(words) < 3 {
		return nil
	}
	hide := map[int]string{2: fmt.Sprintf("<%d bytes, not recorded>", len(act.Data))}
	for i := 3; i < len(words); i++ {
		hide[i] = "" // joined into the one placeholder above
	}
	return hide
}

// actionsHelp lists the actions for `run -h`, from the action table: the
// syntax, what it does, its aliases, and whether it needs --yes.
func actionsHelp() string {
	var b strings.Builder
	b.WriteString("actions:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range fleet.Specs() {
		var notes []string
		if al := s.AliasHelp(); al != "" {
			notes = append(notes, al)
		}
		if s.Danger >= fleet.Disruptive {
			notes = append(notes, "asks first (--yes skips)")
		}
		for _, m := range s.Modes {
			// An action whose options choose the mode (clock) names them.
			name := m.Name
			if s.Args == fleet.NoArgs {
				name = s.OptionFor(m.Name)
			}
			switch {
			case m.LooksOnly && name == "":
				notes = append(notes, "only looks without options")
			case m.LooksOnly:
				notes = append(notes, name+" only looks")
			case m.Danger > s.Danger:
				notes = append(notes, name+" asks first (--yes skips)")
			}
		}
		if s.Mutating {
			notes = append(notes, "refused by --readonly")
		}
		note := ""
		if len(notes) > 0 {
			note = " (" + strings.Join(notes, "; ") + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", s.Usage(), s.Summary, note)
		for _, o := range s.OptionHelp() {
			fmt.Fprintf(tw, "  \t  %s\n", o)
		}
	}
	tw.Flush()
	return b.String()
}

// dryRunJSON is one guest in `run --dry-run --json`.
type dryRunJSON struct {
	Name      string       `json:"name"`
	WouldSend []fleet.Send `json:"would_send"`
	Skipped   bool         `json:"skipped"`
	Reason    string       `json:"reason"`
}

// dryRun prints what act would send to each guest, or why a guest would be
// skipped, and sends nothing. A dry run of a mutating action is recorded in
// the audit log (phase dry-run); a log that cannot be written means the real
// run would be refused, and the dry run says so and exits as it would.
func (c *cli) dryRun(act fleet.Action, gs []*fleet.Guest, hold time.Duration, command, selectors []string, asJSON bool) int {
	now := time.Now()
	rows := make([]dryRunJSON, len(gs))
	code := exitOK
	for i, g := range gs {
		sends, skip := act.Plan(g, now)
		if skip == "" && hold > 0 && (g.State == fleet.Frozen || g.Freeze == agentclient.Frozen) && !g.FrozenByUs {
			sends, skip = nil, notOurFreeze
		}
		if skip == "" && hold > 0 {
			sends = append(sends, fleet.Action{Kind: fleet.ActThaw}.Sends(now)...)
		}
		if sends == nil {
			sends = []fleet.Send{}
		}
		rows[i] = dryRunJSON{Name: g.Name, WouldSend: sends, Skipped: skip != "", Reason: skip}
		if skip != "" {
			code = exitSkipped
		}
	}
	if asJSON {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // placeholders read <...>
		enc.Encode(rows)
		// Names are a libvirt host's: exact, and safe on a terminal.
		c.stdout.Write(present.SafeJSON(b.Bytes()))
	} else {
		fmt.Fprintf(c.stdout, "dry run: %s on %d guest(s); nothing is sent\n", present.Text(act.String(), maxLineCells), len(gs))
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GUEST\tWOULD SEND")
		for _, r := range rows {
			name := present.Text(r.Name, nameCells)
			if r.Skipped {
				fmt.Fprintf(tw, "%s\tskipped: %s\n", name, present.Text(r.Reason, errCells))
				continue
			}
			for j, s := range r.WouldSend {
				if j > 0 {
					name = ""
				}
				fmt.Fprintf(tw, "%s\t%s\n", name, present.Text(s.JSON(), 2*errCells))
			}
		}
		tw.Flush()
	}
	if !act.Mutating() {
		return code
	}
	l := c.auditLog()
	guests := make([]audit.Guest, len(rows))
	for i, r := range rows {
		guests[i] = audit.Guest{Name: r.Name, Address: gs[i].Address, Result: "would-send", Sends: fleet.AuditSends(r.WouldSend)}
		if r.Skipped {
			guests[i].Result, guests[i].Detail = "skipped", r.Reason
		}
	}
	action := act.String()
	if hold > 0 {
		action += fmt.Sprintf(" (--hold %s)", hold)
	}
	err := l.Append(audit.Entry{Phase: audit.DryRun, Source: audit.SourceCLI, Command: command,
		Action: action, Selector: selectors, Guests: guests})
	if err != nil {
		c.errorf("run --dry-run %s: %v: the real run would be refused before sending anything", act, auditError(l, err))
		return exitUsage
	}
	return code
}

// ledgerWho is what the ledger records as having frozen or suspended a
// guest, and the thaw promised: the hold's end, or none for a freeze left
// frozen on purpose.
func ledgerWho(act fleet.Action, hold time.Duration) (string, time.Duration) {
	switch {
	case act.Kind == fleet.ActFreeze && hold > 0:
		return "run --hold", hold
	case act.Kind == fleet.ActFreeze:
		return "run --yes freeze", -1
	}
	return "run " + string(act.Kind), 0
}

// holdAndThaw waits until the hold ends (or an interrupt) and thaws the
// guests this process froze.
func (c *cli) holdAndThaw(ctx context.Context, f *fleet.Fleet, end time.Time, frozen []string) int {
	fmt.Fprintf(c.stderr, "holding %d guest(s) frozen until %s (ctrl-c thaws now)\n", len(frozen), end.Format("15:04:05"))
	t := time.NewTimer(time.Until(end))
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	return c.thawOurs(ctx, f, audit.SourceCLI, "thaw (end of --hold)")
}

// globalFlagsText repeats the fleet-file flag for commands we suggest,
// quoted for a shell.
func (c *cli) globalFlagsText() string {
	switch {
	case c.configPath != "":
		return " -c " + present.ShellArg(c.configPath)
	case c.demo:
		return " --demo"
	}
	return ""
}

func (c *cli) printResults(act fleet.Action, results []fleet.Result, asJSON bool) {
	if asJSON {
		out := make([]runJSON, 0, len(results))
		for _, r := range results {
			out = append(out, newRunJSON(act, r))
		}
		writeJSON(c.stdout, out)
		return
	}
	if act.ListsData() {
		// File contents do not fit a table: print each guest's under a header.
		for _, r := range results {
			if r.OK {
				// Shown to a person, so escaped like any guest text: the exact
				// bytes are what cat, get and --json are for.
				fmt.Fprintf(c.stdout, "==> %s <==\n%s", present.Text(r.Guest, nameCells), present.Block(string(r.Data), 8))
				if len(r.Data) > 0 && r.Data[len(r.Data)-1] != '\n' {
					fmt.Fprintln(c.stdout)
				}
			}
		}
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tOUTCOME\tTIME\tDETAIL")
	for _, r := range results {
		outcome, detail := "ok", r.Result
		switch {
		case r.Skipped:
			outcome, detail = "skipped", r.Err
		case !r.OK:
			outcome, detail = "FAILED", r.Err
		}
		if act.Kind == fleet.ActRead && r.OK {
			detail = fmt.Sprintf("%d bytes", len(r.Data))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", present.Text(r.Guest, nameCells), outcome, roundDur(r.Duration), present.Text(detail, errCells))
	}
	tw.Flush()
}

// resultText is the JSON "result": the summary, or a read's content when it is text.
func resultText(r fleet.Result) string {
	if r.Data != nil && utf8.Valid(r.Data) {
		return string(r.Data)
	}
	return r.Result
}

func summariseNames(gs []*fleet.Guest) string {
	const show = 8
	ns := texts(names(gs), nameCells)
	if len(ns) <= show {
		return strings.Join(ns, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ns[:show], ", "), len(ns)-show)
}

// texts escapes and caps each of ss for the terminal (present.Text).
func texts(ss []string, max int) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = present.Text(s, max)
	}
	return out
}

// confirmAction asks before a destructive action, in the action table's
// words ("Shut down 2 guests (powerdown)? web-1, web-2"). The table's rule
// decides whether the count must be typed (Action.TypedCount), as in the
// dashboard. hold is a freeze's --hold: when guestdeck thaws.
func (c *cli) confirmAction(act fleet.Action, gs []*fleet.Guest, hold time.Duration) bool {
	q := present.Text(act.Question(len(gs), hold), maxLineCells) + " " + summariseNames(gs)
	count := 0
	if act.TypedCount(len(gs)) {
		count = len(gs)
	}
	return c.ask(fmt.Sprintf("%s on %s", act, present.Plural(len(gs), "guest")), q, count)
}

// confirm asks question (y/N) on the terminal; without a terminal it
// refuses and says why.
func (c *cli) confirm(question string) bool {
	return c.ask(strings.TrimSuffix(question, "?"), question, 0)
}

// ask asks question on the terminal: yes, or when count > 0 the count
// typed. Without a terminal it refuses, naming what.
func (c *cli) ask(what, question string, count int) bool {
	if !isTerminal(c.stdin) {
		c.errorf("refusing: %s needs confirmation and stdin is not a terminal; pass --yes", present.Text(what, maxLineCells))
		return false
	}
	if count > 0 {
		fmt.Fprintf(c.stderr, "%s\nType %d to confirm: ", question, count)
	} else {
		fmt.Fprintf(c.stderr, "%s [y/N] ", question)
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return false
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	if (count > 0 && answer == strconv.Itoa(count)) || (count == 0 && (answer == "y" || answer == "yes")) {
		return true
	}
	fmt.Fprintln(c.stderr, "cancelled")
	return false
}
