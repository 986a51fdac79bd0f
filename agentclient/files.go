package agentclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
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
}

// ReadFile copies the guest file at path to w in chunks and returns the bytes
// written. Memory stays at about one chunk whatever the file's size.
func ReadFile(ctx context.Context, a Agent, path string, w io.Writer, opt FileOptions) (int64, error) {
	return ReadFileRange(ctx, a, path, 0, -1, w, opt)
}

// ReadFileRange copies n bytes from offset off (n < 0: to the end of the
// file). The guest handle is always closed, also on error and cancellation.
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
	h, err := a.FileOpen(ctx, path, "r")
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer closeHandle(ctx, a, h, path, &err)
	if off > 0 {
		if _, err := a.FileSeek(ctx, h, off, SeekSet); err != nil {
			return 0, fmt.Errorf("read %s: seek to %d: %w", path, off, err)
		}
	}
	buf := make([]byte, base64.StdEncoding.DecodedLen(base64.StdEncoding.EncodedLen(chunk)))
	scratch := make([]byte, 64<<10)
	for n < 0 || done < n {
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
		if r.EOF || m == 0 {
			break
		}
	}
	return done, nil
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

// WriteFile copies r to the guest file at path (created or truncated) in
// chunks and returns the bytes written. The handle is always closed; a failed
// close (which flushes) is reported.
func WriteFile(ctx context.Context, a Agent, path string, r io.Reader, opt FileOptions) (done int64, err error) {
	chunk := opt.Chunk
	if chunk <= 0 {
		chunk = DefaultWriteChunk
	}
	chunk = min(chunk, maxWriteChunk)
	buf := make([]byte, chunk)
	// Opening with "w" empties the guest's file: read the first chunk
	// before, so a source that fails at once (a directory, an unreadable
	// file) leaves the guest's copy as it was.
	m, rerr := io.ReadFull(r, buf)
	if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
		return 0, fmt.Errorf("write %s: read source: %w (the guest's file was not touched)", path, rerr)
	}
	h, err := a.FileOpen(ctx, path, "w")
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	defer closeHandle(ctx, a, h, path, &err)
	enc := make([]byte, base64.StdEncoding.EncodedLen(chunk))
	for first := true; ; first = false {
		if !first {
			m, rerr = io.ReadFull(r, buf)
		}
		p := buf[:m]
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

// ListDir lists dir in the guest by running ListDirRequest through guest-exec
// and polling guest-exec-status (with backoff) until it exits.
func ListDir(ctx context.Context, a Agent, dir string) ([]DirEntry, error) {
	pid, err := a.Exec(ctx, ListDirRequest(dir))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	wait := 5 * time.Millisecond
	var st *ExecStatus
	for {
		st, err = a.ExecStatus(ctx, pid)
		if err != nil {
			return nil, fmt.Errorf("list %s: exec status of pid %d: %w", dir, pid, err)
		}
		if st.Exited {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("list %s: waiting for pid %d: %w", dir, pid, ctxError(ctx))
		}
		wait = min(wait*2, 250*time.Millisecond)
	}
	out, err := base64.StdEncoding.DecodeString(st.OutData)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w: bad base64 output: %v", dir, ErrMalformed, err)
	}
	stderr, _ := base64.StdEncoding.DecodeString(st.ErrData)
	msg := strings.TrimSpace(string(bytes.ToValidUTF8(stderr, []byte("?"))))
	switch {
	case st.Signal != nil:
		return nil, fmt.Errorf("list %s: killed by signal %d: %s", dir, *st.Signal, msg)
	case st.ExitCode != nil && *st.ExitCode != 0:
		if msg == "" && *st.ExitCode == 2 {
			msg = "cannot enter directory"
		}
		return nil, fmt.Errorf("list %s: exit status %d: %s", dir, *st.ExitCode, msg)
	}
	ents, err := ParseListDir(out)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if st.OutTruncated {
		return ents, fmt.Errorf("list %s: %w", dir, errTruncated)
	}
	return ents, nil
}

var errTruncated = errors.New("output truncated by the agent; listing is partial")
