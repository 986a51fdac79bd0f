package agentclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// CaptureMode is guest-exec's capture-output in the schema's newest form
// (GuestExecCaptureOutputMode, qemu-ga 8.0). Older agents take only a
// boolean, so CaptureSeparated, what guestdeck uses, goes on the wire as
// true, which every agent since 2.5 reads the same way.
type CaptureMode string

const (
	CaptureNone      CaptureMode = "none"
	CaptureStdout    CaptureMode = "stdout"
	CaptureStderr    CaptureMode = "stderr"
	CaptureSeparated CaptureMode = "separated"
	CaptureMerged    CaptureMode = "merged" // not on Windows agents
)

// MarshalJSON writes the mode as the agent reads it: separated as true (the
// 2.5 form), the others as the 8.0 enum.
func (m CaptureMode) MarshalJSON() ([]byte, error) {
	if m == CaptureSeparated {
		return []byte("true"), nil
	}
	return json.Marshal(string(m))
}

// MarshalJSON writes the request with input-data last: the transports' call
// logs cut a request after its first bytes, and the input must not be in
// them (fleet's logs replace it by its size anyway).
func (r ExecRequest) MarshalJSON() ([]byte, error) {
	type wire struct {
		Path    string   `json:"path"`
		Arg     []string `json:"arg,omitempty"`
		Env     []string `json:"env,omitempty"`
		Capture any      `json:"capture-output,omitempty"`
		Input   string   `json:"input-data,omitempty"`
	}
	w := wire{Path: r.Path, Arg: r.Arg, Env: r.Env, Input: r.InputData}
	switch {
	case r.Capture != "":
		w.Capture = r.Capture
	case r.CaptureOutput:
		w.Capture = true
	}
	return json.Marshal(w)
}

// MaxExecOutput is what qemu-ga captures of a process's stdout, and of its
// stderr, at most (GUEST_EXEC_MAX_OUTPUT, 16 MiB); the rest is read and
// dropped, and the stream reported truncated.
const MaxExecOutput = execMaxOutput

// MaxExecInput bounds the input-data guestdeck sends with guest-exec: the
// request is one JSON line the agent parses whole, and Proxmox caps its own
// at 64 KiB. 1 MiB of input is 1.4 MiB of base64.
const MaxExecInput = 1 << 20

// ExecStatusReplyLimit is the limit on a guest-exec-status reply whose
// caller keeps at most keep bytes of stdout and of stderr each: both
// streams at that size in base64, with the envelope. keep <= 0 or over
// the agent's cap means the agent's cap.
func ExecStatusReplyLimit(keep int) int {
	if keep <= 0 || keep > execMaxOutput {
		keep = execMaxOutput
	}
	return max(2*base64Reply(keep), tinyReply)
}

type replyLimitKey struct{}

// WithReplyLimit returns a context under which a call's reply is held to at
// most n bytes, below its command's own limit (Command.ReplyLimit): for a
// caller that knows it keeps less than the command could return
// (guest-exec-status with an output cap). n <= 0 changes nothing.
func WithReplyLimit(ctx context.Context, n int) context.Context {
	if n <= 0 {
		return ctx
	}
	return context.WithValue(ctx, replyLimitKey{}, n)
}

// callReplyLimit is limit lowered to what ctx asks (WithReplyLimit).
func callReplyLimit(ctx context.Context, limit int) int {
	if n, ok := ctx.Value(replyLimitKey{}).(int); ok && n < limit {
		return n
	}
	return limit
}

// StillRunningError is RunExec's error when ctx ended before the process
// exited: it may still be running in the guest, as PID. Nothing was killed
// (the protocol has no way to), and guest-exec-status PID asks again.
type StillRunningError struct {
	PID int64
	Err error // why the wait ended: ErrTimeout, context.Canceled
}

func (e *StillRunningError) Error() string {
	return fmt.Sprintf("still running in the guest as pid %d (stopped waiting: %v; nothing was killed)", e.PID, e.Err)
}

func (e *StillRunningError) Unwrap() error { return e.Err }

// IsStillRunning reports whether err says a guest-exec'd process had not
// exited when the wait ended, and gives its pid.
func IsStillRunning(err error) (pid int64, ok bool) {
	var sr *StillRunningError
	if errors.As(err, &sr) {
		return sr.PID, true
	}
	return 0, false
}
