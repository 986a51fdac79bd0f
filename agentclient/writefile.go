package agentclient

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	pathpkg "path"
	"strconv"
	"strings"
	"time"
)

// WriteState is what a failed write left at the path it was asked to write.
type WriteState int

const (
	// Untouched: the path holds what it held before (the bytes went to a
	// temporary file, or nothing was written).
	Untouched WriteState = iota
	// Partial: the path was truncated and holds only the bytes written.
	Partial
	// Unknown: the final move may or may not have happened (its answer was
	// lost).
	Unknown
)

// WriteError is a WriteFile that failed after it started changing the
// guest: it says what the guest's file holds now. Its text is the cause's.
type WriteError struct {
	Path    string     // the file asked for
	State   WriteState // what Path holds now
	Written int64      // bytes the agent confirmed
	Total   int64      // the source's size if known, else 0
	// Temp is the temporary copy still in the guest, "" if there is none
	// (never made, moved into place, or removed).
	Temp string
	Err  error

	handle int64 // a handle whose close failed (the agent may still hold it), 0 if none
}

func (e *WriteError) Error() string { return e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Outcome says in words what Path holds now, to follow "PATH on GUEST":
// "is now partial: 12.0 MiB of 64.0 MiB written", "was not changed".
func (e *WriteError) Outcome() string {
	var s string
	switch e.State {
	case Partial:
		s = "is now partial: " + FormatBytes(e.Written)
		if e.Total > 0 {
			s += " of " + FormatBytes(e.Total)
		}
		s += " written"
	case Unknown:
		s = "may or may not have been replaced by the new copy (the agent's answer to the move was lost)"
	default:
		s = "was not changed"
	}
	if e.Temp != "" {
		s += "; the incomplete copy " + e.Temp + " is left in the guest"
	}
	return s
}

// Cleanup retries what the failed write could not tidy up, typically because
// its connection was lost: it closes a handle the agent may still hold and
// removes the temporary copy. Call it with a working session (a fresh
// connection). It clears Temp once the copy is gone.
func (e *WriteError) Cleanup(ctx context.Context, a Agent) error {
	var err error
	if e.handle != 0 {
		if err = a.FileClose(ctx, e.handle); err == nil || isAgentError(err) {
			e.handle, err = 0, nil // closed, or the agent no longer knows it
		}
	}
	if e.Temp != "" {
		if rerr := removeGuestFile(ctx, a, e.Temp); rerr != nil {
			return rerr
		}
		e.Temp = ""
	}
	return err
}

// NeedsCleanup reports whether Cleanup has anything left to do.
func (e *WriteError) NeedsCleanup() bool { return e.handle != 0 || e.Temp != "" }

// tidy is Cleanup on the write's own session, bounded and uncancelled (the
// write's context may be what ended it); what fails stays for Cleanup.
func (e *WriteError) tidy(ctx context.Context, a Agent) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	_ = e.Cleanup(cctx, a)
}

// source hands out the reader's bytes a chunk at a time. The first chunk is
// read before the guest is touched.
type source struct {
	r     io.Reader
	buf   []byte
	m     int   // bytes in buf
	err   error // the read's error: io.EOF or io.ErrUnexpectedEOF at the end
	fresh bool  // buf holds a chunk not handed out yet
}

func (s *source) next() ([]byte, error) {
	if !s.fresh {
		s.m, s.err = io.ReadFull(s.r, s.buf)
	}
	s.fresh = false
	return s.buf[:s.m], s.err
}

// WriteFile copies r to the guest file at path in chunks and returns the
// bytes the agent confirmed. A source that fails before its first chunk
// leaves the guest untouched.
//
// By default path is opened with "w" (created or truncated) and written in
// place: a failure after the open returns a *WriteError with State Partial.
//
// With opt.Replace, an absolute path that is a regular file or does not
// exist is written to a temporary file in the same directory (given the old
// file's owner and mode) and moved over path with mv, run through
// guest-exec with an argument vector (no shell), only once complete; a
// failure then returns a *WriteError with State Untouched and the temporary
// copy removed where possible. A symlink, a device or a FIFO is written in
// place, through it, as are paths where the temporary file cannot be made
// or given the old owner (the agent is not root, say), and guests without
// stat or mv.
func WriteFile(ctx context.Context, a Agent, path string, r io.Reader, opt FileOptions) (int64, error) {
	chunk := opt.Chunk
	if chunk <= 0 {
		chunk = DefaultWriteChunk
	}
	chunk = min(chunk, maxWriteChunk)
	if err := checkPath("write", path); err != nil {
		return 0, err
	}
	src := &source{r: r, buf: make([]byte, chunk), fresh: true}
	// Opening with "w" empties the guest's file: read the first chunk
	// before, so a source that fails at once (a directory, an unreadable
	// file) leaves the guest's copy as it was.
	src.m, src.err = io.ReadFull(r, src.buf)
	if src.err != nil && src.err != io.EOF && src.err != io.ErrUnexpectedEOF {
		return 0, fmt.Errorf("write %s: read source: %w (the guest's file was not touched)", path, src.err)
	}
	if opt.Replace {
		if n, err, done := replaceFile(ctx, a, path, src, opt); done {
			return n, err
		}
	}
	h, err := a.FileOpen(ctx, path, "w")
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	n, err := writeChunks(ctx, a, h, path, src, opt)
	if err = closeAfterWrite(ctx, a, h, path, err); err != nil {
		we := &WriteError{Path: path, State: Partial, Written: n, Total: opt.Size, Err: err}
		if !closed(err) {
			we.handle = h
		}
		return n, we
	}
	return n, nil
}

// closeError marks a failed close, so the caller knows the handle may live on.
type closeError struct{ error }

func (e closeError) Unwrap() error { return e.error }

func closed(err error) bool {
	_, failed := err.(closeError)
	return !failed
}

// closeAfterWrite closes h (which flushes) with a fresh, short context and
// returns the write's error, else the close's as a closeError.
func closeAfterWrite(ctx context.Context, a Agent, h int64, path string, werr error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	cerr := a.FileClose(cctx, h)
	switch {
	case cerr != nil && !isAgentError(cerr):
		// The session failed: the handle may still be open in the agent.
		if werr == nil {
			werr = fmt.Errorf("close %s (handle %d): %w", path, h, cerr)
		}
		return closeError{werr}
	case werr != nil:
		return werr
	case cerr != nil:
		return fmt.Errorf("close %s (handle %d): %w", path, h, cerr)
	}
	return nil
}

// writeDepth is how many guest-file-write requests a write keeps in flight.
// One: a real VM's agent (qemu-ga 7.2 over virtio-serial, under TCG) left
// the second of two queued 64 KiB writes unanswered for 30 s
// (TestFilesVM), and a write is bound by the agent's own JSON parsing of
// the base64 anyway (against qemu-ga on this machine two in flight gained
// nothing). Reads, whose requests are small, keep two.
const writeDepth = 1

// writeChunks writes src to the open handle h; path names it in errors.
func writeChunks(ctx context.Context, a Agent, h int64, path string, src *source, opt FileOptions) (done int64, err error) {
	if s, timeout := fileStream(a); s != nil {
		return writeChunksPiped(ctx, s, timeout, h, path, src, opt)
	}
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(src.buf)))
	for {
		p, rerr := src.next()
		for len(p) > 0 {
			e := enc[:base64.StdEncoding.EncodedLen(len(p))]
			base64.StdEncoding.Encode(e, p)
			wr, err := a.FileWrite(ctx, h, string(e), len(p))
			if err != nil {
				return done, fmt.Errorf("write %s at %d: %w", path, done, err)
			}
			if wr.Count <= 0 || wr.Count > len(p) {
				return done, fmt.Errorf("write %s at %d: agent wrote %d of %d bytes", path, done, wr.Count, len(p))
			}
			p = p[wr.Count:]
			done += int64(wr.Count)
			if opt.Progress != nil {
				opt.Progress(done, opt.Size)
			}
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return done, nil
		case rerr != nil:
			return done, fmt.Errorf("write %s: read source: %w", path, rerr)
		}
	}
}

// guestStat is what `stat -c '%f %a %u %g'` says about a guest path.
type guestStat struct {
	exists   bool
	regular  bool
	mode     string // permission bits in octal, as chmod takes them
	uid, gid string
}

// statGuest stats p in the guest, not following a symlink. exists is false
// when stat fails (most likely: no such file). ok is false when stat cannot
// be run or says something unexpected; err is set only when the session
// itself failed.
func statGuest(ctx context.Context, a Agent, p string) (st guestStat, ok bool, err error) {
	res, err := RunExec(ctx, a, ExecRequest{Path: "stat", Arg: []string{"-c", "%f %a %u %g", "--", p}, CaptureOutput: true})
	switch {
	case err != nil && isAgentError(err):
		return st, false, nil
	case err != nil:
		return st, false, err
	case res.failure() != "":
		return st, true, nil
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) != 4 {
		return st, false, nil
	}
	raw, err1 := strconv.ParseUint(f[0], 16, 32)
	_, err2 := strconv.ParseUint(f[1], 8, 32)
	_, err3 := strconv.ParseUint(f[2], 10, 32)
	_, err4 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return st, false, nil
	}
	return guestStat{exists: true, regular: raw&0o170000 == 0o100000, mode: f[1], uid: f[2], gid: f[3]}, true, nil
}

// programError is a program run in the guest that failed: it ran (or the
// agent refused to start it) and changed nothing the caller relies on.
type programError struct {
	prog, why string
}

func (e *programError) Error() string { return e.prog + ": " + e.why }

// refused reports whether err means the guest program did not do its job
// while the session is fine: it failed, or the agent would not start it.
func refused(err error) bool {
	var pe *programError
	return errors.As(err, &pe) || isAgentError(err)
}

// runGuest runs one program in the guest and turns a failure into an error.
func runGuest(ctx context.Context, a Agent, prog string, args ...string) error {
	res, err := RunExec(ctx, a, ExecRequest{Path: prog, Arg: args, CaptureOutput: true})
	if err != nil {
		return fmt.Errorf("%s: %w", prog, err)
	}
	if why := res.failure(); why != "" {
		return &programError{prog: prog, why: why}
	}
	return nil
}

func removeGuestFile(ctx context.Context, a Agent, p string) error {
	if err := runGuest(ctx, a, "rm", "-f", "--", p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// replaceFile is WriteFile's opt.Replace path. done is false when it chose
// to leave the write to the in-place path, having changed nothing.
func replaceFile(ctx context.Context, a Agent, p string, src *source, opt FileOptions) (n int64, err error, done bool) {
	dir, base := pathpkg.Split(p)
	if !strings.HasPrefix(p, "/") || base == "" || base == "." || base == ".." || len(base) > 200 {
		return 0, nil, false
	}
	// Nothing has changed until the temporary file exists: a failure of
	// the session is reported as is, an answer that refuses leaves the
	// write to the in-place path.
	old, ok, err := statGuest(ctx, a, p)
	switch {
	case err != nil:
		return 0, fmt.Errorf("write %s: %w", p, err), true
	case !ok || old.exists && !old.regular:
		// No stat to tell, or a symlink, device or FIFO: written in
		// place, through it, as without Replace.
		return 0, nil, false
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := dir + "." + base + ".guestdeck-" + hex.EncodeToString(rnd[:]) + ".part"
	h, err := a.FileOpen(ctx, tmp, "w")
	if err != nil {
		if isAgentError(err) {
			return 0, nil, false // say, a directory only the file is writable in
		}
		return 0, fmt.Errorf("write %s: %w", p, err), true
	}
	we := &WriteError{Path: p, State: Untouched, Total: opt.Size, Temp: tmp}
	if old.exists {
		// The new copy takes the old one's owner and mode (chown first:
		// it clears set-id bits). Failing that, it is not used.
		err := runGuest(ctx, a, "chown", old.uid+":"+old.gid, "--", tmp)
		if err == nil {
			err = runGuest(ctx, a, "chmod", old.mode, "--", tmp)
		}
		if err != nil {
			cerr := closeAfterWrite(ctx, a, h, tmp, nil)
			if !closed(cerr) {
				we.handle = h
			}
			we.Err = fmt.Errorf("write %s: %w", p, err)
			we.tidy(ctx, a)
			if refused(err) && !we.NeedsCleanup() {
				return 0, nil, false
			}
			return 0, we, true
		}
	}
	n, err = writeChunks(ctx, a, h, p, src, opt)
	we.Written = n
	if err = closeAfterWrite(ctx, a, h, tmp, err); err != nil {
		if !closed(err) {
			we.handle = h
		}
		we.Err = err
		we.tidy(ctx, a)
		return n, we, true
	}
	if err := runGuest(ctx, a, "mv", "-f", "--", tmp, p); err != nil {
		we.Err = fmt.Errorf("write %s: moving the new copy into place: %w", p, err)
		if !refused(err) {
			we.State = Unknown // the move may have run
		}
		we.tidy(ctx, a)
		return n, we, true
	}
	return n, nil, true
}

// writeChunksPiped is writeChunks on a stream: each chunk is encoded
// straight into its request line, once, in a buffer the transfer reuses.
//
// Writes keep one request in flight (writeDepth). A chunk the agent writes
// only part of would have the chunk after it land at the wrong offset: with
// more in flight the pipe drains, seeks back to the bytes confirmed and
// sends the rest again, so the file ends up as with one request at a time.
func writeChunksPiped(ctx context.Context, s *Stream, timeout time.Duration, h int64, path string, src *source, opt FileOptions) (done int64, err error) {
	p, err := s.openPipe(ctx, "guest-file-write", timeout, writeDepth)
	if err != nil {
		return 0, fmt.Errorf("write %s at 0: %w", path, err)
	}
	defer p.close()
	var redo []byte // bytes to send again after a short write, before the source's
	var srcErr error
	srcDone := false
	for {
		for !p.full() && (len(redo) > 0 || !srcDone) {
			var chunk []byte
			if len(redo) > 0 {
				k := min(len(redo), len(src.buf))
				chunk, redo = redo[:k], redo[k:]
			} else {
				var rerr error
				chunk, rerr = src.next()
				if rerr != nil {
					srcDone = true
					if rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
						srcErr = rerr
					}
				}
			}
			if len(chunk) == 0 {
				continue
			}
			if err := p.send(func(b []byte) []byte { return appendFileWriteArgs(b, h, chunk) }, len(chunk), chunk); err != nil {
				return done, fmt.Errorf("write %s at %d: %w", path, done, err)
			}
		}
		if p.n == 0 {
			if len(redo) > 0 || !srcDone {
				if err := p.yield(); err != nil {
					return done, fmt.Errorf("write %s at %d: %w", path, done, err)
				}
				continue
			}
			if srcErr != nil {
				return done, fmt.Errorf("write %s: read source: %w", path, srcErr)
			}
			return done, nil
		}
		ret, sl, err := p.await()
		if err != nil {
			return done, fmt.Errorf("write %s at %d: %w", path, done, err)
		}
		var wr FileWrite
		if derr := decodeReturn(ret, &wr); derr != nil {
			err := &OpError{Addr: s.addr, Command: p.name, Err: &returnError{derr}}
			p.done(sl, err)
			return done, fmt.Errorf("write %s at %d: %w", path, done, err)
		}
		p.done(sl, nil)
		if wr.Count <= 0 || wr.Count > sl.want {
			return done, fmt.Errorf("write %s at %d: agent wrote %d of %d bytes", path, done, wr.Count, sl.want)
		}
		done += int64(wr.Count)
		if opt.Progress != nil {
			opt.Progress(done, opt.Size)
		}
		if wr.Count == sl.want {
			continue
		}
		// Short: what followed went to the wrong offset. Collect it all
		// (the chunks in flight are rewritten whatever they answer),
		// seek back and go on from the bytes confirmed.
		again := append([]byte(nil), sl.raw[wr.Count:]...)
		moved := p.n > 0
		for p.n > 0 {
			_, sl, err := p.await()
			if err != nil {
				return done, fmt.Errorf("write %s at %d: %w", path, done, err)
			}
			p.done(sl, nil)
			again = append(again, sl.raw...)
		}
		redo = append(again, redo...)
		if !moved {
			continue // nothing else was written: the offset is right
		}
		var fs FileSeek
		if err := p.call("guest-file-seek", map[string]int64{"handle": h, "offset": done, "whence": SeekSet}, &fs); err != nil {
			return done, fmt.Errorf("write %s: seek back to %d after a short write: %w", path, done, err)
		}
	}
}
