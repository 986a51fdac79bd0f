package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/backoff"
)

// Backoff between the attempts of a thaw guestdeck owes.
const (
	thawBackoffMin = 250 * time.Millisecond
	thawBackoffMax = 5 * time.Second
)

// errStillFrozen: the thaw answered, and guest-fsfreeze-status still says frozen.
var errStillFrozen = errors.New("the agent answered the thaw but guest-fsfreeze-status still says frozen")

// thawCall is one thawOwed in flight; later callers wait for its result.
type thawCall struct {
	done chan struct{}
	res  Result
}

// redialKey marks a dial made for a thaw guestdeck owes: a libvirt host
// that is down is redialled at once instead of at its next backoff.
type redialKey struct{}

func urgentDial(ctx context.Context) bool {
	v, _ := ctx.Value(redialKey{}).(bool)
	return v
}

func (s *session) thawInFlight() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.thawing != nil
}

// thawOwed thaws the guest and does not give up at the first failure: each
// attempt redials (the agent socket, or the libvirt host connection) and
// thaws, and the outcome is confirmed with guest-fsfreeze-status. Failed
// attempts are retried with backoff until Options.ThawBudget is spent.
// Every attempt becomes a notice. The result is OK only when the guest was
// seen thawed; a second caller while one runs gets the same result. why
// names who owes the thaw when it is not the caller ("orphaned freeze",
// "automatic thaw"), or is "".
func (s *session) thawOwed(ctx context.Context, why string) Result {
	s.mu.Lock()
	if c := s.thawing; c != nil {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.res
		case <-ctx.Done():
			return Result{Guest: s.target().Name, Err: fmt.Sprintf("thaw not confirmed: %v; the guest may still be FROZEN", ctx.Err())}
		}
	}
	c := &thawCall{done: make(chan struct{})}
	s.thawing = c
	s.mu.Unlock()
	c.res = s.thawRetry(ctx, why)
	s.mu.Lock()
	s.thawing = nil
	// The attempts' releases ran while thawing kept the channel (and out
	// of the yield watch): settle it now, or a thawed guest's connection
	// stays held, unwatched, until its next use. Busy, the holder's
	// release decides (under mu: it sees thawing cleared).
	select {
	case s.sem <- struct{}{}:
		if s.closed {
			s.dropAgent()
		} else {
			s.letGoLocked()
		}
		<-s.sem
	default:
	}
	s.mu.Unlock()
	close(c.done)
	return c.res
}

func (s *session) thawRetry(ctx context.Context, why string) Result {
	name := s.target().Name
	if why != "" {
		why += ": "
	}
	t0 := time.Now()
	budget := s.f.opts.ThawBudget
	deadline := t0.Add(budget)
	ctx = context.WithValue(ctx, redialKey{}, true)
	rng := rand.New(rand.NewPCG(s.seed, uint64(t0.UnixNano())))
	retry := backoff.Backoff{Min: thawBackoffMin, Max: thawBackoffMax, Rand: rng}
	var lastErr error
	attempt := 0
	for {
		attempt++
		// An attempt is a dial, a thaw and a status check, each bounded by
		// Timeout; one started before the deadline may finish after it.
		actx, cancel := context.WithTimeout(ctx, 3*s.f.opts.Timeout)
		n, verified, err := s.thawOnce(actx)
		cancel()
		if err == nil {
			s.clearFreeze()
			what := "no filesystem was frozen any more"
			if n > 0 {
				what = "thawed " + plural(n, "filesystem")
			}
			check := "guest-fsfreeze-status says thawed"
			if !verified {
				check = "the agent cannot report its freeze state"
			}
			res := fmt.Sprintf("%s (%s; attempt %d)", what, check, attempt)
			s.f.notice(name, false, "%s%s", why, res)
			return Result{Guest: name, OK: true, Result: res, Duration: time.Since(t0)}
		}
		lastErr = err
		left := time.Until(deadline)
		if agentclient.IsUnknown(err) || agentclient.IsDisabled(err) || left <= 0 || ctx.Err() != nil {
			break // no retry can help, or no time is left
		}
		wait := min(retry.Next(), left)
		s.f.notice(name, true, "%sthaw attempt %d failed: %s; retrying in %s (%s of the %s budget left)",
			why, attempt, oneLineErr(err), wait.Round(10*time.Millisecond), left.Round(100*time.Millisecond), budget)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	msg := fmt.Sprintf("still FROZEN (no thaw confirmed) after %s and %s: %s", time.Since(t0).Round(100*time.Millisecond), plural(attempt, "thaw attempt"), oneLineErr(lastErr))
	s.f.notice(name, true, "%s%s", why, msg)
	return Result{Guest: name, Err: msg, Duration: time.Since(t0)}
}

// thawOnce is one attempt: connect (redialling when the last connection was
// lost), thaw, and ask guest-fsfreeze-status. verified is false when the
// agent cannot report its freeze state (the thaw's answer is all there is).
func (s *session) thawOnce(ctx context.Context) (n int, verified bool, err error) {
	err = s.withAgent(ctx, func(a *callAgent) error {
		var err error
		n, verified, err = s.thawVerify(ctx, a)
		return err
	})
	return n, verified, err
}

// thawVerify thaws and checks; on success the guest is recorded thawed.
// Holds sem.
func (s *session) thawVerify(ctx context.Context, a *callAgent) (n int, verified bool, err error) {
	n, err = a.Thaw(ctx)
	if err != nil {
		return 0, false, err
	}
	st, err := a.FreezeStatus(ctx)
	switch {
	case err == nil && st == agentclient.Frozen:
		return n, false, errStillFrozen
	case err == nil:
		verified = true
	case agentclient.IsUnknown(err) || agentclient.IsDisabled(err):
	default:
		return n, false, fmt.Errorf("the thaw answered (%s) but checking the freeze state failed: %w", plural(n, "filesystem"), err)
	}
	s.thawed()
	return n, verified, nil
}

func oneLineErr(err error) string {
	if err == nil {
		return "no answer"
	}
	return truncate(err.Error(), 300)
}
