package agentclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
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
	fr := &fileReader{path: path, off: off, n: n, bound: bound, size: size, total: total, w: w, opt: opt, chunk: chunk,
		buf: make([]byte, base64.StdEncoding.DecodedLen(base64.StdEncoding.EncodedLen(chunk)))}
	if s, timeout := fileStream(a); s != nil {
		err = fr.piped(ctx, s, timeout, h)
	} else {
		err = fr.sequential(ctx, a, h)
	}
	return fr.done, err
}

// fileReader is one ReadFileRange after the open: what it asked for, the
// bounds it keeps, and how far it got.
type fileReader struct {
	path               string
	off, n             int64 // the range; n < 0: to the end
	bound, size, total int64
	w                  io.Writer
	opt                FileOptions
	chunk              int
	buf                []byte // one chunk, decoded
	done               int64
	probed             bool
	empty              int
}

// atBound ends a read to the end that has come to its bound without
// end-of-file: once one more read (a file of exactly the bound, or one
// that grew a little meanwhile, reports its end then) has not ended it.
func (fr *fileReader) atBound() error {
	if fr.n >= 0 || fr.done < fr.bound {
		return nil
	}
	if !fr.probed {
		fr.probed = true
		return nil
	}
	if fr.size > 0 {
		return fmt.Errorf("read %s: %w: the guest reported %d bytes and sent %d without an end; stopped there", fr.path, ErrNoEOF, fr.size, fr.done)
	}
	return fmt.Errorf("read %s: %w: stopped after %s, past the %s limit for a file whose size the guest does not report", fr.path, ErrNoEOF, FormatBytes(fr.done), FormatBytes(fr.bound))
}

// want is the count for the next read, given expected bytes already asked
// for (done plus what is in flight); 0 when nothing more is to be asked.
func (fr *fileReader) want(expected int64) int {
	if fr.n >= 0 {
		return int(min(int64(fr.chunk), max(fr.n-expected, 0)))
	}
	return fr.chunk
}

// ahead reports whether a read to the end should ask for more while
// expected bytes are asked for: up to the bound, then one read more to see
// the end.
func (fr *fileReader) ahead(expected int64) bool {
	return fr.n >= 0 || expected < fr.bound+int64(fr.chunk)
}

// checkSize refuses a reply whose base64 could not fit the buffer.
func (fr *fileReader) checkSize(b64Len, want int) error {
	if base64.StdEncoding.DecodedLen(b64Len) > len(fr.buf) {
		return fmt.Errorf("read %s at %d: agent sent %d base64 bytes for a %d-byte read", fr.path, fr.off+fr.done, b64Len, want)
	}
	return nil
}

func (fr *fileReader) badBase64(err error) error {
	return fmt.Errorf("read %s at %d: %w: bad base64: %v", fr.path, fr.off+fr.done, ErrMalformed, err)
}

// got takes a chunk of m bytes decoded into buf: finished is true at the
// end of the file or of the range.
func (fr *fileReader) got(m int, eof bool) (finished bool, err error) {
	if fr.n >= 0 && fr.done+int64(m) > fr.n {
		m = int(fr.n - fr.done) // an agent that ignores count must not overrun the range
	}
	if m > 0 {
		if _, err := fr.w.Write(fr.buf[:m]); err != nil {
			return true, fmt.Errorf("read %s: write to destination: %w", fr.path, err)
		}
		fr.done += int64(m)
		if fr.opt.Progress != nil {
			fr.opt.Progress(fr.done, fr.total)
		}
	}
	if eof || fr.n >= 0 && fr.done >= fr.n {
		return true, nil
	}
	if m > 0 {
		fr.empty = 0
	} else if fr.empty++; fr.empty >= maxEmptyReads {
		return true, fmt.Errorf("read %s at %d: %w: %d reads in a row returned nothing", fr.path, fr.off+fr.done, ErrNoEOF, fr.empty)
	}
	return false, fr.atBound()
}

// sequential reads one chunk at a time through the Agent (libvirt, or any
// agent without a stream).
func (fr *fileReader) sequential(ctx context.Context, a Agent, h int64) error {
	scratch := make([]byte, 64<<10)
	_ = fr.atBound() // a range that starts at the bound: one read to see the end
	for {
		want := fr.want(fr.done)
		if want == 0 {
			return nil
		}
		r, err := a.FileRead(ctx, h, want)
		if err != nil {
			return fmt.Errorf("read %s at %d: %w", fr.path, fr.off+fr.done, err)
		}
		if err := fr.checkSize(len(r.BufB64), want); err != nil {
			return err
		}
		m, err := decodeBase64(fr.buf, r.BufB64, scratch)
		if err != nil {
			return fr.badBase64(err)
		}
		if fin, err := fr.got(m, r.EOF); fin || err != nil {
			return err
		}
	}
}

// piped reads with the next guest-file-read in flight while the last reply
// is decoded and written (see pipe); each reply's base64 is decoded from
// the stream's line buffer, which the transfer keeps.
func (fr *fileReader) piped(ctx context.Context, s *Stream, timeout time.Duration, h int64) error {
	p, err := s.openPipe(ctx, "guest-file-read", timeout, pipeDepth)
	if err != nil {
		return fmt.Errorf("read %s at %d: %w", fr.path, fr.off+fr.done, err)
	}
	defer p.close()
	_ = fr.atBound()   // a range that starts at the bound: one read to see the end
	var inflight int64 // bytes asked for and not answered yet
	for {
		for !p.full() {
			want := fr.want(fr.done + inflight)
			if want == 0 || p.n > 0 && !fr.ahead(fr.done+inflight) {
				break
			}
			if err := p.send(func(b []byte) []byte { return appendFileReadArgs(b, h, want) }, want, nil); err != nil {
				return fmt.Errorf("read %s at %d: %w", fr.path, fr.off+fr.done, err)
			}
			inflight += int64(want)
		}
		if p.n == 0 {
			if p.s.waiting.Load() > 0 {
				if err := p.yield(); err != nil {
					return fmt.Errorf("read %s at %d: %w", fr.path, fr.off+fr.done, err)
				}
				continue
			}
			return nil // the whole range is read
		}
		ret, sl, err := p.await()
		if err != nil {
			return fmt.Errorf("read %s at %d: %w", fr.path, fr.off+fr.done, err)
		}
		inflight -= int64(sl.want)
		m, eof, err := fr.decodeReply(ret, sl.want)
		p.done(sl, err)
		if err != nil {
			return err
		}
		if fin, err := fr.got(m, eof); fin || err != nil {
			return err
		}
	}
}

// decodeReply decodes one guest-file-read return value into buf: straight
// from the reply's bytes, or, for a reply the fast decoder does not take
// (escapes, say), through the lenient decoder as any other call's.
func (fr *fileReader) decodeReply(ret []byte, want int) (m int, eof bool, err error) {
	if r, ok := decodeFileReadRaw(ret); ok {
		if err := fr.checkSize(len(r.b64), want); err != nil {
			return 0, false, err
		}
		m, err := base64.StdEncoding.Decode(fr.buf, r.b64)
		if err != nil {
			return 0, false, fr.badBase64(err)
		}
		return m, r.eof, nil
	}
	var v FileRead
	if err := decodeLenient(ret, &v); err != nil {
		return 0, false, fmt.Errorf("read %s at %d: %w", fr.path, fr.off+fr.done, &returnError{err})
	}
	if err := fr.checkSize(len(v.BufB64), want); err != nil {
		return 0, false, err
	}
	m, err = decodeBase64(fr.buf, v.BufB64, make([]byte, 64<<10))
	if err != nil {
		return 0, false, fr.badBase64(err)
	}
	return m, v.EOF, nil
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
	// NoStatus: the agent said it exited but gave neither an exit code nor
	// a signal in range (ExitCode and Signal are 0, which is no success).
	NoStatus bool
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

// execResult is a final status, keeping keep bytes of each stream.
// A stream of the agent's whole cap counts as truncated even when the agent
// says otherwise: qemu-ga before the fix of 2025 (28c5d27dd4, backported to
// 7.2.22) wrote "out-truncated": false exactly when it had cut the output.
func execResult(pid int64, st *ExecStatus, keep int) (*ExecResult, error) {
	out, stderr := st.OutData, st.ErrData
	res := &ExecResult{PID: pid,
		OutTruncated: st.OutTruncated || len(out) >= execMaxOutput,
		ErrTruncated: st.ErrTruncated || len(stderr) >= execMaxOutput}
	// A cut stream is copied so that the reply's larger array goes.
	if len(out) > keep {
		out, res.OutTruncated = bytes.Clone(out[:keep]), true
	}
	if len(stderr) > keep {
		stderr, res.ErrTruncated = bytes.Clone(stderr[:keep]), true
	}
	res.Stdout, res.Stderr = out, stderr
	res.Truncated = res.OutTruncated || res.ErrTruncated
	// Out of range is no status: a signal is 1 up to a Windows exception
	// code (a DWORD), an exit code a POSIX status or a DWORD, maybe read
	// as signed. A signal of 0 would hide the exit code.
	switch {
	case st.Signal != nil && *st.Signal >= 1 && int64(*st.Signal) <= math.MaxUint32:
		res.Signal = *st.Signal
	case st.ExitCode != nil && int64(*st.ExitCode) >= math.MinInt32 && int64(*st.ExitCode) <= math.MaxUint32:
		res.ExitCode = *st.ExitCode
	default:
		res.NoStatus = true
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
	case r.NoStatus:
		return "exited without a status: " + msg
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
	if errors.Is(err, errTooManyEntries) {
		return ents, fmt.Errorf("list %s: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return ents, nil
}

var errTruncated = errors.New("output truncated by the agent; listing is partial")
