package agentclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Chunk sizes. Reads follow Proxmox (1 MiB: a 1.4 MB reply line). Writes stay
// under the 64 KiB that agents and libvirt pass comfortably once base64 has
// grown them by a third.
const (
	DefaultReadChunk  = 1 << 20
	DefaultWriteChunk = 48 << 10
	maxReadChunk      = 48 << 20 // qemu-ga's own cap on one guest-file-read
	maxWriteChunk     = 16 << 20
)

// closeTimeout bounds the guest-file-close that always follows an open, also
// when the caller's context has already ended.
const closeTimeout = 5 * time.Second

// FileOptions tunes ReadFile, ReadFileRange and WriteFile.
type FileOptions struct {
	Chunk    int                     // bytes per guest-file-read/write; 0 for the default
	Size     int64                   // known total for progress, or 0
	Progress func(done, total int64) // called after every chunk; total is Size (or the range length) or 0
	// Limit bounds a whole-file read when the guest does not report the
	// file's size (a device, a /proc file): 0 means DefaultReadLimit.
	Limit int64
	// Replace makes WriteFile write a temporary file beside the target and
	// move it into place once complete (see WriteFile). It runs programs in
	// the guest: set it only when the agent allows guest-exec and
	// guest-exec-status.
	Replace bool
}

// DefaultReadLimit is where a whole-file read of unknown size stops when the
// agent never reports end-of-file (reading /dev/zero does exactly that).
const DefaultReadLimit = 1 << 30

// maxEmptyReads is how many reads in a row may return nothing without
// end-of-file before a read gives up.
const maxEmptyReads = 3

// ErrNotUTF8 refuses a guest path that is not valid UTF-8. Requests travel
// as JSON, whose strings cannot hold such bytes (they would arrive as U+FFFD
// and name another file), so the agent cannot be asked about it; a listing
// still shows such names exactly.
var ErrNotUTF8 = errors.New("the path is not valid UTF-8, which the agent's JSON requests cannot carry")

// checkPath refuses a path the agent could not be sent faithfully.
func checkPath(op, path string) error {
	if !utf8.ValidString(path) {
		return fmt.Errorf("%s %q: %w", op, path, ErrNotUTF8)
	}
	return nil
}

// ErrNoEOF means a read was stopped because the agent kept it going past its
// bound without ever reporting end-of-file.
var ErrNoEOF = errors.New("the agent never reported the end of the file")

// ReadFile copies the guest file at path to w in chunks and returns the bytes
// written. Memory stays at about one chunk whatever the file's size.
func ReadFile(ctx context.Context, a Agent, path string, w io.Writer, opt FileOptions) (int64, error) {
	return ReadFileRange(ctx, a, path, 0, -1, w, opt)
}

// ReadFileRange copies n bytes from offset off (n < 0: to the end of the
// file). The guest handle is always closed, also on error and cancellation.
//
// A read to the end asks the guest for the file's size first (a seek to its
// end) and ends with ErrNoEOF when the agent sends past that size, plus one
// chunk, without reporting end-of-file; a file whose size is not reported
// is bounded by opt.Limit instead. Reads that return nothing without
// end-of-file end it too, after maxEmptyReads of them.
func ReadFileRange(ctx context.Context, a Agent, path string, off, n int64, w io.Writer, opt FileOptions) (done int64, err error) {
	chunk := opt.Chunk
	if chunk <= 0 {
		chunk = DefaultReadChunk
	}
	chunk = min(chunk, maxReadChunk)
	total := opt.Size
	if n >= 0 {
		total = n
	}
	if n == 0 {
		return 0, nil
	}
	if err := checkPath("read", path); err != nil {
		return 0, err
	}
	h, err := a.FileOpen(ctx, path, "r")
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer closeHandle(ctx, a, h, path, &err)
	var size int64 = -1 // reported by the guest; -1 unknown
	if n < 0 {
		if size, err = fileSize(ctx, a, h, path); err != nil {
			return 0, err
		}
	}
	if off > 0 || size >= 0 {
		// Back to the start (after the size probe) or to off.
		if _, err := a.FileSeek(ctx, h, off, SeekSet); err != nil {
			return 0, fmt.Errorf("read %s: seek to %d: %w", path, off, err)
		}
	}
	bound := n
	if n < 0 {
		switch {
		case size > 0:
			bound = max(size-off, 0)
			if total <= 0 {
				total = bound
			}
		case opt.Limit > 0:
			bound = opt.Limit
		default:
			bound = DefaultReadLimit
		}
	}
	buf := make([]byte, base64.StdEncoding.DecodedLen(base64.StdEncoding.EncodedLen(chunk)))
	scratch := make([]byte, 64<<10)
	probed, empty := false, 0
	for n < 0 || done < n {
		if n < 0 && done >= bound {
			if probed {
				if size > 0 {
					return done, fmt.Errorf("read %s: %w: the guest reported %d bytes and sent %d without an end; stopped there", path, ErrNoEOF, size, done)
				}
				return done, fmt.Errorf("read %s: %w: stopped after %s, past the %s limit for a file whose size the guest does not report", path, ErrNoEOF, FormatBytes(done), FormatBytes(bound))
			}
			// A file of exactly the bound (or one that grew a little
			// meanwhile) reports its end on the next read.
			probed = true
		}
		want := chunk
		if n >= 0 && n-done < int64(want) {
			want = int(n - done)
		}
		r, err := a.FileRead(ctx, h, want)
		if err != nil {
			return done, fmt.Errorf("read %s at %d: %w", path, off+done, err)
		}
		if base64.StdEncoding.DecodedLen(len(r.BufB64)) > len(buf) {
			return done, fmt.Errorf("read %s at %d: agent sent %d base64 bytes for a %d-byte read", path, off+done, len(r.BufB64), want)
		}
		m, err := decodeBase64(buf, r.BufB64, scratch)
		if err != nil {
			return done, fmt.Errorf("read %s at %d: %w: bad base64: %v", path, off+done, ErrMalformed, err)
		}
		if n >= 0 && done+int64(m) > n {
			m = int(n - done) // an agent that ignores count must not overrun the range
		}
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return done, fmt.Errorf("read %s: write to destination: %w", path, err)
			}
			done += int64(m)
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
		if r.EOF {
			break
		}
		if m > 0 {
			empty = 0
			continue
		}
		if empty++; empty >= maxEmptyReads {
			return done, fmt.Errorf("read %s at %d: %w: %d reads in a row returned nothing", path, off+done, ErrNoEOF, empty)
		}
	}
	return done, nil
}

// fileSize asks the agent for the size of the open file h by seeking to its
// end; -1 when the agent cannot tell (a pipe, a /proc file) or says 0 (a
// device, or an empty file, which reports its end at once anyway). Only a
// failure of the session itself is an error.
func fileSize(ctx context.Context, a Agent, h int64, path string) (int64, error) {
	r, err := a.FileSeek(ctx, h, 0, SeekEnd)
	switch {
	case err == nil && r.Position > 0:
		return r.Position, nil
	case err == nil || isAgentError(err):
		return -1, nil
	}
	return -1, fmt.Errorf("read %s: seek to the end: %w", path, err)
}

// isAgentError reports whether err is the agent's own answer: the command
// was refused and did nothing, and the session is fine.
func isAgentError(err error) bool {
	var ae *Error
	return errors.As(err, &ae)
}

// FormatBytes writes n bytes for a person: "512 B", "1.5 KiB", "12 MiB".
// It lives here, the leaf, because this package's own messages (a partial
// write, a read past its bound) need it; present.Size is the screens' name
// for it.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	prec := 0
	if v < 10 {
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + string("KMGTPE"[exp]) + "iB"
}

// decodeBase64 decodes s into dst through a small scratch buffer, sparing the
// chunk-sized copy that converting s to []byte would make. Windows are
// multiples of 4 characters, so only the last one can hold padding.
func decodeBase64(dst []byte, s string, scratch []byte) (int, error) {
	win := len(scratch) &^ 3
	n := 0
	for len(s) > 0 {
		k := min(win, len(s))
		m, err := base64.StdEncoding.Decode(dst[n:], scratch[:copy(scratch, s[:k])])
		n += m
		if err != nil {
			return n, err
		}
		s = s[k:]
	}
	return n, nil
}

// closeHandle closes h with a fresh, short context so that a cancelled or
// expired ctx cannot leak the handle in the agent. A close error is reported
// only if nothing failed before it.
func closeHandle(ctx context.Context, a Agent, h int64, path string, errp *error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if err := a.FileClose(cctx, h); err != nil && *errp == nil {
		*errp = fmt.Errorf("close %s (handle %d): %w", path, h, err)
	}
}

// ExecResult is how a guest-exec'd process ended and what it printed.
type ExecResult struct {
	PID      int64 // the process's pid in the guest
	ExitCode int   // when Signal is 0
	// Signal is the signal that killed it (on Windows, the unhandled
	// exception code), or 0.
	Signal int
	Stdout []byte
	Stderr []byte
	// OutTruncated, ErrTruncated: the stream was cut, by the agent at its
	// cap or by ExecOptions.MaxOutput. Truncated is either.
	OutTruncated, ErrTruncated bool
	Truncated                  bool
}

// ExecOptions tune RunExecWith.
type ExecOptions struct {
	// MaxOutput is what is kept of stdout and of stderr each (0: the
	// agent's own cap, MaxExecOutput). The guest-exec-status reply is held
	// to ExecStatusReplyLimit(MaxOutput): an agent sending more than both
	// streams at that size fails the wait with ErrTooLarge, its output
	// unread (the agent has reaped the process by then).
	MaxOutput int
	// Started, when set, is called with the pid once guest-exec answered.
	Started func(pid int64)
}

// Waits between guest-exec-status polls: quick for the short commands
// guestdeck runs itself, backing off to a poll a second for long ones.
const (
	execFirstWait = 10 * time.Millisecond
	execMaxWait   = time.Second
)

// RunExec runs req through guest-exec and polls guest-exec-status (with
// backoff) until the process exits or ctx ends.
func RunExec(ctx context.Context, a Agent, req ExecRequest) (*ExecResult, error) {
	return RunExecWith(ctx, a, req, ExecOptions{})
}

// RunExecWith is RunExec with options. When ctx ends first the error is a
// *StillRunningError naming the pid: nothing is killed (the protocol cannot).
func RunExecWith(ctx context.Context, a Agent, req ExecRequest, opt ExecOptions) (*ExecResult, error) {
	if len(req.InputData) > base64.StdEncoding.EncodedLen(MaxExecInput) {
		return nil, fmt.Errorf("input of %s is over the %s guestdeck sends", sizeText(int64(base64.StdEncoding.DecodedLen(len(req.InputData)))), sizeText(MaxExecInput))
	}
	pid, err := a.Exec(ctx, req)
	if err != nil {
		return nil, err
	}
	if opt.Started != nil {
		opt.Started(pid)
	}
	keep := opt.MaxOutput
	if keep <= 0 || keep > execMaxOutput {
		keep = execMaxOutput
	}
	sctx := WithReplyLimit(ctx, ExecStatusReplyLimit(keep))
	wait := execFirstWait
	var st *ExecStatus
	for {
		st, err = a.ExecStatus(sctx, pid)
		if err != nil {
			if ctx.Err() != nil {
				return nil, &StillRunningError{PID: pid, Err: ctxError(ctx)}
			}
			return nil, fmt.Errorf("exec status of pid %d: %w", pid, err)
		}
		if st.Exited {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, &StillRunningError{PID: pid, Err: ctxError(ctx)}
		}
		wait = min(wait*2, execMaxWait)
	}
	return execResult(pid, st, keep)
}

// execResult decodes a final status, keeping keep bytes of each stream.
// A stream of the agent's whole cap counts as truncated even when the agent
// says otherwise: qemu-ga before the fix of 2025 (28c5d27dd4, backported to
// 7.2.22) wrote "out-truncated": false exactly when it had cut the output.
func execResult(pid int64, st *ExecStatus, keep int) (*ExecResult, error) {
	out, err := base64.StdEncoding.DecodeString(st.OutData)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64 in out-data of pid %d: %v", ErrMalformed, pid, err)
	}
	stderr, err := base64.StdEncoding.DecodeString(st.ErrData)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64 in err-data of pid %d: %v", ErrMalformed, pid, err)
	}
	res := &ExecResult{PID: pid,
		OutTruncated: st.OutTruncated || len(out) >= execMaxOutput,
		ErrTruncated: st.ErrTruncated || len(stderr) >= execMaxOutput}
	if len(out) > keep {
		out, res.OutTruncated = out[:keep], true
	}
	if len(stderr) > keep {
		stderr, res.ErrTruncated = stderr[:keep], true
	}
	res.Stdout, res.Stderr = out, stderr
	res.Truncated = res.OutTruncated || res.ErrTruncated
	switch {
	case st.Signal != nil:
		res.Signal = *st.Signal
	case st.ExitCode != nil:
		res.ExitCode = *st.ExitCode
	}
	return res, nil
}

// failure describes a process that did not succeed, with (at most 200
// bytes of) what it said on stderr; "" if it succeeded.
func (r *ExecResult) failure() string {
	msg := strings.TrimSpace(string(bytes.ToValidUTF8(r.Stderr, []byte("?"))))
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "..."
	}
	switch {
	case r.Signal != 0:
		return fmt.Sprintf("killed by signal %d: %s", r.Signal, msg)
	case r.ExitCode != 0:
		return fmt.Sprintf("exit status %d: %s", r.ExitCode, msg)
	}
	return ""
}

// ListDir lists dir in the guest by running ListDirRequest through guest-exec.
func ListDir(ctx context.Context, a Agent, dir string) ([]DirEntry, error) {
	if err := checkPath("list", dir); err != nil {
		return nil, err
	}
	res, err := RunExec(ctx, a, ListDirRequest(dir))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if why := res.failure(); why != "" {
		if res.ExitCode == 2 && len(bytes.TrimSpace(res.Stderr)) == 0 {
			why += "cannot enter directory"
		}
		return nil, fmt.Errorf("list %s: %s", dir, why)
	}
	ents, err := ParseListDir(res.Stdout)
	if res.Truncated {
		// The agent's cap cut the output, most likely mid-record.
		return ents, fmt.Errorf("list %s: %w", dir, errTruncated)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return ents, nil
}

var errTruncated = errors.New("output truncated by the agent; listing is partial")
