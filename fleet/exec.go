package fleet

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

// Exec limits: how long a guest's program is waited for, and what is kept
// of what it prints.
const (
	// DefaultExecTimeout is the wait for a program to exit, per guest,
	// from guest-exec on.
	DefaultExecTimeout = 30 * time.Second
	// MaxExecTimeout bounds a wait asked for.
	MaxExecTimeout = 24 * time.Hour
	// DefaultExecOutput is what is kept of a program's stdout, and of its
	// stderr, per guest.
	DefaultExecOutput = 1 << 20
	// MaxExecOutput is the most that can be asked for: the agent's own cap.
	MaxExecOutput = agentclient.MaxExecOutput
	// ExecFleetOutput bounds the output one Exec keeps for all its guests
	// together; past it each guest's output is cut (and says so).
	ExecFleetOutput = 256 << 20
	// MaxExecInput is the most stdin sent to each guest.
	MaxExecInput = agentclient.MaxExecInput
)

// ExecSpec is a program to run in guests through guest-exec.
type ExecSpec struct {
	Path string
	Args []string
	// Stdin is sent as input-data (base64); nil sends none. Never
	// recorded or logged, only its size.
	Stdin []byte
	// Timeout is the wait per guest (0: DefaultExecTimeout). When it runs
	// out the program is reported still running: nothing kills it.
	Timeout time.Duration
	// MaxOutput is what is kept of stdout and of stderr each, per guest
	// (0: DefaultExecOutput).
	MaxOutput int
}

func (e ExecSpec) timeout() time.Duration {
	if e.Timeout <= 0 {
		return DefaultExecTimeout
	}
	return min(e.Timeout, MaxExecTimeout)
}

func (e ExecSpec) maxOutput() int {
	if e.MaxOutput <= 0 {
		return DefaultExecOutput
	}
	return min(e.MaxOutput, MaxExecOutput)
}

// String is the program and its arguments as a command line, each word
// that needs it in single quotes, so that "sh -c 'a; b'" reads as three
// words (for the audit log and confirmations; shown escaped).
func (e ExecSpec) String() string {
	words := make([]string, 0, 1+len(e.Args))
	for _, w := range append([]string{e.Path}, e.Args...) {
		words = append(words, quoteWord(w))
	}
	return strings.Join(words, " ")
}

// quoteWord single-quotes w unless it is made only of characters no shell
// treats specially.
func quoteWord(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

func (e ExecSpec) validate() error {
	switch {
	case e.Path == "":
		return fmt.Errorf("exec: no program")
	case len(e.Stdin) > MaxExecInput:
		return fmt.Errorf("exec: stdin of %s is over the %s limit", agentclient.FormatBytes(int64(len(e.Stdin))), agentclient.FormatBytes(MaxExecInput))
	}
	return nil
}

// PIDArg stands for the pid guest-exec returns.
const PIDArg = "<pid from guest-exec>"

// Sends is what running e sends to a guest that can run it: guest-exec,
// then guest-exec-status until the program exits or the wait ends. Stdin
// is replaced by its size.
func (e ExecSpec) Sends() []Send {
	args := map[string]any{"path": e.Path, "capture-output": true}
	if len(e.Args) > 0 {
		args["arg"] = e.Args
	}
	if e.Stdin != nil {
		args["input-data"] = bytesArg(int64(len(e.Stdin)))
	}
	return []Send{
		{Execute: "guest-exec", Arguments: args},
		// Repeated, backing off from 10 ms to 1 s, until it exits.
		{Execute: "guest-exec-status", Arguments: map[string]any{"pid": PIDArg}},
	}
}

// ExecCheck returns "" when g's agent runs programs, else why it is
// skipped: it lacks guest-exec or guest-exec-status, or has them disabled
// (guest-info enabled false), or the guest is frozen.
func ExecCheck(g *Guest) string {
	if g == nil {
		return "unknown guest"
	}
	return checkCommands(g, "guest-exec", "guest-exec-status")
}

// ExecPlan is what e would send to g, or why it would be skipped.
func (e ExecSpec) Plan(g *Guest) (sends []Send, skip string) {
	if why := ExecCheck(g); why != "" {
		return nil, why
	}
	return e.Sends(), ""
}

// ExecState is where one guest's program is.
type ExecState string

const (
	ExecWaiting      ExecState = "waiting"       // not started yet
	ExecRunning      ExecState = "running"       // guest-exec accepted; waiting for it to exit
	ExecExited       ExecState = "exited"        // it exited (ExitCode) or was killed (Signal)
	ExecStillRunning ExecState = "still-running" // the wait ended first; it may still run, as PID
	ExecFailed       ExecState = "failed"        // not started, or its end is unknown: Err says why
	ExecSkipped      ExecState = "skipped"       // the agent does not run programs: Err says why
)

// ExecResult is one guest's run of an ExecSpec.
type ExecResult struct {
	Guest string
	State ExecState
	PID   int64 // in the guest, once started
	// ExitCode or Signal, once exited (nil otherwise).
	ExitCode, Signal *int
	Stdout, Stderr   []byte
	// Truncated: stdout or stderr was cut (by the agent at its 16 MiB, at
	// the per-guest cap, or at the fleet-wide one).
	Truncated bool
	Err       string // failed, skipped or still running: why, in words
	Duration  time.Duration
	// NotStarted: its turn never came (the run was stopped or cancelled
	// first) and nothing was sent; Err says so (NotStartedText).
	NotStarted bool
}

// OK reports whether the program exited with status 0.
func (r ExecResult) OK() bool {
	return r.State == ExecExited && r.Signal == nil && r.ExitCode != nil && *r.ExitCode == 0
}

// Summary is the result in a few words: "exit 0", "killed by signal 9",
// "still running as pid 123", or the error.
func (r ExecResult) Summary() string {
	switch {
	case r.State == ExecExited && r.Signal != nil:
		return fmt.Sprintf("killed by signal %d", *r.Signal)
	case r.State == ExecExited && r.ExitCode != nil:
		return fmt.Sprintf("exit %d", *r.ExitCode)
	case r.State == ExecExited:
		return "exited (the agent gave no status)"
	case r.State == ExecRunning:
		return fmt.Sprintf("running as pid %d", r.PID)
	case r.State == ExecWaiting:
		return "waiting"
	}
	return r.Err
}

// Exec runs e on the named guests, at most Options.Concurrency at a time
// (fewer when large output limits would put more than ExecFleetOutput of
// replies in flight), and returns one result per name, in order. progress (may be nil) is
// called, never concurrently, when a guest's program starts (ExecRunning)
// and when its result is final. When ctx ends, guests not started report
// so with nothing sent, and the ones running stop being waited for: their
// programs are reported still running (nothing in the guest is killed).
// Refused for every guest in read-only mode.
func (f *Fleet) Exec(ctx context.Context, e ExecSpec, names []string, progress func(ExecResult)) []ExecResult {
	return f.exec(ctx, ctx, e, names, progress, false)
}

// ExecUntil is Exec that can be stopped without giving up on what runs:
// when stop ends, no program is started on a further guest (each not
// started reports NotStarted at once, through progress too), and the
// programs started are waited for under ctx, as Exec waits, with their
// real results. ctx ending stops the starting as well.
func (f *Fleet) ExecUntil(ctx, stop context.Context, e ExecSpec, names []string, progress func(ExecResult)) []ExecResult {
	return f.exec(ctx, stop, e, names, progress, false)
}

// ExecStream is Exec for a caller that takes each guest's output as the
// guest finishes: progress is given each final result with its output,
// and the results returned carry none. The output of a guest is let go
// once progress returns, and the fleet-wide budget (ExecFleetOutput) gets
// it back, so a run holds the output of the guests in flight only.
func (f *Fleet) ExecStream(ctx context.Context, e ExecSpec, names []string, progress func(ExecResult)) []ExecResult {
	return f.exec(ctx, ctx, e, names, progress, true)
}

// ExecStreamUntil is ExecStream that stops as ExecUntil does: when stop
// ends no program is started on a further guest, and the ones started
// are waited for under ctx.
func (f *Fleet) ExecStreamUntil(ctx, stop context.Context, e ExecSpec, names []string, progress func(ExecResult)) []ExecResult {
	return f.exec(ctx, stop, e, names, progress, true)
}

func (f *Fleet) exec(ctx, stop context.Context, e ExecSpec, names []string, progress func(ExecResult), stream bool) []ExecResult {
	results := make([]ExecResult, len(names))
	budget := &outputBudget{left: ExecFleetOutput}
	var pmu sync.Mutex
	report := func(i int, r ExecResult) {
		pmu.Lock()
		defer pmu.Unlock()
		if progress != nil {
			progress(r)
		}
		if stream && r.State != ExecRunning && r.State != ExecWaiting {
			budget.give(len(r.Stdout) + len(r.Stderr))
			r.Stdout, r.Stderr = nil, nil
		}
		results[i] = r
	}
	refuse := func(why string) []ExecResult {
		for i, n := range names {
			report(i, ExecResult{Guest: n, State: ExecFailed, Err: why})
		}
		return results
	}
	if err := e.validate(); err != nil {
		return refuse(err.Error())
	}
	if f.opts.Readonly {
		return refuse("refused: read-only mode does not allow exec (nothing was sent)")
	}
	sessions := f.sessionsFor(names)
	// Replies in flight at once are held to the fleet-wide output budget
	// too: at the 16 MiB cap a reply may be 43 MiB, so fewer guests run at
	// once (at the 1 MiB default, 94: more than the default concurrency).
	conc := min(f.opts.Concurrency, max(1, ExecFleetOutput/agentclient.ExecStatusReplyLimit(e.maxOutput())))
	startUntil(ctx, stop, len(names), conc, func(i int) {
		s := sessions[i]
		if s == nil {
			report(i, ExecResult{Guest: names[i], State: ExecFailed, Err: "no such guest"})
			return
		}
		report(i, s.exec(ctx, e, budget, func(r ExecResult) { report(i, r) }))
	}, func(from int) {
		for i := from; i < len(names); i++ {
			report(i, ExecResult{Guest: names[i], State: ExecFailed, Err: NotStartedText, NotStarted: true})
		}
	})
	return results
}

// outputBudget is what an Exec may still keep of all its guests' output.
type outputBudget struct {
	mu   sync.Mutex
	left int64
}

// take grants up to n bytes.
func (b *outputBudget) take(n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := min(int64(n), b.left)
	b.left -= k
	return int(k)
}

// give returns n bytes granted before.
func (b *outputBudget) give(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left += int64(n)
}

// exec runs e on one guest. started is called once guest-exec answered.
func (s *session) exec(ctx context.Context, e ExecSpec, budget *outputBudget, started func(ExecResult)) ExecResult {
	t0 := time.Now()
	r := ExecResult{Guest: s.target().Name, State: ExecFailed}
	done := func() ExecResult { r.Duration = time.Since(t0); return r }
	g := s.cur.Load()
	if len(g.Commands) > 0 {
		if why := ExecCheck(g); why != "" {
			r.State, r.Err = ExecSkipped, why
			return done()
		}
	} else {
		// Not polled yet: guest-info decides (an agent that blocks
		// guest-exec must not be sent one).
		var ok bool
		err := s.withAgent(ctx, func(a *callAgent) (err error) { ok, err = canExec(ctx, a, g); return err })
		switch {
		case err != nil:
			r.Err = actionError(err)
			return done()
		case !ok:
			r.State, r.Err = ExecSkipped, "the agent does not run programs (guest-exec or guest-exec-status missing or disabled)"
			return done()
		}
	}
	req := agentclient.ExecRequest{Path: e.Path, Arg: e.Args, CaptureOutput: true}
	if e.Stdin != nil {
		req.InputData = base64.StdEncoding.EncodeToString(e.Stdin)
	}
	wctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	var pid atomic.Int64
	res, err := agentclient.RunExecWith(wctx, sessionExec{s: s}, req, agentclient.ExecOptions{
		MaxOutput: e.maxOutput(),
		Started: func(p int64) {
			pid.Store(p)
			started(ExecResult{Guest: r.Guest, State: ExecRunning, PID: p, Duration: time.Since(t0)})
		},
	})
	r.PID = pid.Load()
	if p, ok := agentclient.IsStillRunning(err); ok {
		r.State, r.PID = ExecStillRunning, p
		why := fmt.Sprintf("still running after %s", e.timeout())
		if ctx.Err() != nil {
			why = "no longer waited for (cancelled)"
		}
		r.Err = fmt.Sprintf("%s, as pid %d in the guest; guestdeck killed nothing", why, p)
		return done()
	}
	if err != nil {
		r.Err = actionError(err)
		if errors.Is(err, agentclient.ErrTooLarge) {
			// More output than the reply may hold: unread, so cut to nothing.
			r.Truncated = true
			r.Err = fmt.Sprintf("more output than %s per stream (the output limit) could hold: %s", agentclient.FormatBytes(int64(e.maxOutput())), r.Err)
		}
		if r.PID != 0 {
			r.Err = fmt.Sprintf("pid %d: %s", r.PID, r.Err)
		}
		return done()
	}
	r.State = ExecExited
	switch {
	case res.NoStatus:
		// Neither: not a success (Summary says so).
	case res.Signal != 0:
		r.Signal = &res.Signal
	default:
		r.ExitCode = &res.ExitCode
	}
	r.Truncated = res.Truncated
	r.Stdout, r.Stderr = res.Stdout, res.Stderr
	if n := budget.take(len(r.Stdout)); n < len(r.Stdout) {
		r.Stdout, r.Truncated = r.Stdout[:n], true
	}
	if n := budget.take(len(r.Stderr)); n < len(r.Stderr) {
		r.Stderr, r.Truncated = r.Stderr[:n], true
	}
	return done()
}

// sessionExec is the part of Agent RunExecWith uses, each call taking the
// guest's session for itself so that polls go on between the status polls
// of a long program. The calls run to their own timeout even when the
// wait's context ends meanwhile: a started program's pid, and a status
// that reports it exited (the agent forgets it then), are never dropped
// half-way. RunExecWith checks the wait's context between calls.
type sessionExec struct {
	agentclient.Agent // nil: only Exec and ExecStatus are called
	s                 *session
}

func (x sessionExec) Exec(ctx context.Context, req agentclient.ExecRequest) (pid int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	cctx := context.WithoutCancel(ctx)
	err = x.s.withAgent(cctx, func(a *callAgent) (err error) { pid, err = a.Exec(cctx, req); return err })
	return pid, err
}

func (x sessionExec) ExecStatus(ctx context.Context, pid int64) (st *agentclient.ExecStatus, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx := context.WithoutCancel(ctx)
	var callErr error
	err = x.s.withAgent(cctx, func(a *callAgent) error {
		// The final reply carries the output: up to two 16 MiB streams in
		// base64, 43 MiB, which takes longer to arrive than the call
		// timeout allows a small reply, and which is read to its end even
		// when it is over the limit (skipped as it arrives). A second more
		// per 4 MiB the agent may send.
		d := x.s.f.opts.Timeout + time.Duration(agentclient.ExecStatusReplyLimit(agentclient.MaxExecOutput)/(4<<20))*time.Second
		tctx, cancel := context.WithTimeout(cctx, d)
		defer cancel()
		t0 := time.Now()
		st, callErr = a.a.ExecStatus(tctx, pid)
		if !a.hooked {
			x.s.logCall(t0, "guest-exec-status", map[string]int64{"pid": pid}, st, callErr)
		}
		if errors.Is(callErr, agentclient.ErrTooLarge) {
			// More output than asked for: skipped, and the stream is in
			// step again. Not a failure of the guest's channel.
			return nil
		}
		return callErr
	})
	if err == nil {
		err = callErr
	}
	return st, err
}

// ExecAuditPlan is the guests of an exec's audit intent or dry run: each
// with what it will be sent (stdin as its size) or why it is skipped.
func ExecAuditPlan(e ExecSpec, gs []*Guest, phase string) []audit.Guest {
	send := "pending"
	if phase == audit.DryRun {
		send = "would-send"
	}
	out := make([]audit.Guest, 0, len(gs))
	for _, g := range gs {
		sends, skip := e.Plan(g)
		ag := audit.Guest{Name: g.Name, Address: g.Address, Result: send, Sends: AuditSends(sends)}
		if skip != "" {
			ag.Result, ag.Detail = "skipped", skip
		}
		out = append(out, ag)
	}
	return out
}

// ExecAuditResults is the guests of an exec's audit outcome: ok (exit 0),
// failed (another exit code, a signal, still running, an error) or
// skipped, with the exit code or reason. Output is never recorded.
func ExecAuditResults(rs []ExecResult, address func(guest string) string) []audit.Guest {
	out := make([]audit.Guest, 0, len(rs))
	for _, r := range rs {
		ag := audit.Guest{Name: r.Guest, Result: "ok", Detail: r.Summary(), NotStarted: r.NotStarted}
		switch {
		case r.State == ExecSkipped:
			ag.Result = "skipped"
		case !r.OK():
			ag.Result = "failed"
		}
		if r.PID != 0 && r.State == ExecExited {
			ag.Detail += fmt.Sprintf(" (pid %d)", r.PID)
		}
		if address != nil {
			ag.Address = address(r.Guest)
		}
		out = append(out, ag)
	}
	return out
}
