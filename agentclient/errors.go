package agentclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is an error reply from the agent, with its class and text kept.
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return e.Desc + " (" + e.Class + ")" }

// Sentinels for errors.Is. A transport wraps them in an *OpError that names
// the address and command.
var (
	// ErrTimeout: the context's deadline passed before the agent answered.
	// Errors carrying it also match context.DeadlineExceeded.
	ErrTimeout = timeoutError{}
	// ErrConnLost: the connection dropped while a call was in flight.
	ErrConnLost = errors.New("connection to the agent lost")
	// ErrSilent: the channel accepted the connection but nothing ever answered
	// the sync (no agent running in the guest, guest paused or booting).
	ErrSilent = errors.New("channel up but the agent is silent")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("agent client closed")
	// ErrMalformed: the peer sent bytes that are not a guest-agent reply.
	ErrMalformed = errors.New("malformed reply")
	// ErrTooLarge: a reply exceeded its command's limit (see Command and
	// *TooLargeError).
	ErrTooLarge = errors.New("reply too large")
	// ErrBudget: the reply budget shared by several streams could not hold
	// a reply (see Budget and *BudgetError).
	ErrBudget = errors.New("reply budget exhausted")
	// ErrNotSent: a command that answers nothing when it works (shutdown,
	// suspend) was not sent, because the agent did not answer the sync
	// sent right before it. Silence after such a command counts as
	// acceptance, so a stream first makes sure that the agent answers at
	// all: a hung agent's silence is not its consent.
	ErrNotSent = errors.New("not sent")
)

// TooLargeError is a reply longer than its command's limit (Command.
// ReplyLimit). The stream skips such a line without buffering it, counting
// its bytes, and stays usable. It matches ErrTooLarge, and Cause when set.
type TooLargeError struct {
	Command string
	Bytes   int64 // the line's length; with Cause, the bytes that came before the call ended
	Limit   int
	// Cause is why the line had not ended when the call ended (its
	// deadline, the connection dropping); nil when the whole line was
	// counted.
	Cause error
}

func (e *TooLargeError) Error() string {
	n := strconv.FormatInt(e.Bytes, 10)
	if e.Cause != nil {
		n = "more than " + n
	}
	return fmt.Sprintf("%v (%s bytes from %s, limit %s)", ErrTooLarge, n, e.Command, sizeText(int64(e.Limit)))
}

func (e *TooLargeError) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrTooLarge}
	}
	return []error{ErrTooLarge, e.Cause}
}

// silentError is ErrSilent with why the sync got nothing. It matches
// ErrTimeout too (the sync ran out of time) but says so once: wrapping both
// sentinels in one message ("silent (agent did not answer in time): no
// answer ...") told the operator the same thing three times.
type silentError struct{ why string }

func (e *silentError) Error() string   { return ErrSilent.Error() + ": " + e.why }
func (e *silentError) Unwrap() []error { return []error{ErrSilent, ErrTimeout} }

type timeoutError struct{}

func (timeoutError) Error() string { return "agent did not answer in time" }

// Is lets errors.Is(err, context.DeadlineExceeded) hold for timeouts too.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }
func (timeoutError) Timeout() bool        { return true }

// OpError says which address and command an error belongs to.
type OpError struct {
	Addr    string // e.g. "unix:/run/qga/dev-1.sock" or "libvirt:hv1/web-3"
	Command string // may be empty for connect/sync failures
	Err     error
}

func (e *OpError) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("agent %s: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("agent %s: %s: %v", e.Addr, e.Command, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

func agentError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsUnknown reports whether the agent does not know the command.
func IsUnknown(err error) bool {
	e, ok := agentError(err)
	return ok && e.Class == "CommandNotFound" && strings.Contains(e.Desc, "has not been found")
}

// IsDisabled reports whether the guest admin disabled the command (qemu-ga -b).
// A command refused because the guest is frozen is not "disabled" here: see IsFrozen.
func IsDisabled(err error) bool {
	e, ok := agentError(err)
	return ok && e.Class == "CommandNotFound" && strings.Contains(e.Desc, "has been disabled") && !strings.Contains(e.Desc, "frozen state")
}

// IsFrozen reports whether the agent refused the command because the guest's
// filesystems are frozen.
func IsFrozen(err error) bool {
	e, ok := agentError(err)
	return ok && strings.Contains(e.Desc, "frozen state")
}

// IsInvalidArgs reports whether the agent rejected the command's arguments.
func IsInvalidArgs(err error) bool {
	e, ok := agentError(err)
	if !ok || e.Class != "GenericError" {
		return false
	}
	d := e.Desc
	return strings.HasPrefix(d, "Parameter ") || strings.HasPrefix(d, "Invalid parameter") || strings.Contains(d, "is missing")
}

// returnError is a reply that arrived whole and in step, whose return value
// did not decode as the command's result: only its own call fails.
type returnError struct{ err error }

func (e *returnError) Error() string        { return ErrMalformed.Error() + ": " + e.err.Error() }
func (e *returnError) Is(target error) bool { return target == ErrMalformed }
func (e *returnError) Unwrap() error        { return e.err }

// IsCallError reports whether err failed only the call it came from: the
// agent refused the command, or its reply was too large (and skipped to its
// end) or did not decode. The connection carries on: the next call gets its
// own reply. Anything else (timeouts, a lost connection, garbage on the
// wire, an exhausted budget) is about the transport.
func IsCallError(err error) bool {
	if _, ok := agentError(err); ok {
		return true
	}
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return tl.Cause == nil
	}
	var re *returnError
	return errors.As(err, &re)
}

// IsTimeout reports whether the call ran out of time.
func IsTimeout(err error) bool { return errors.Is(err, ErrTimeout) }

// IsConnLost reports whether the connection dropped under the call.
func IsConnLost(err error) bool { return errors.Is(err, ErrConnLost) }

// IsSilent reports whether the channel is up with no agent answering.
func IsSilent(err error) bool { return errors.Is(err, ErrSilent) }
