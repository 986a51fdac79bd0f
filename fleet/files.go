package fleet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Chunk sizes: reads in 64 KiB (replies grow by a third in base64), writes
// in 48 KiB (Proxmox stays under 60 KiB per request).
const (
	readChunk  = 64 << 10
	writeChunk = 48 << 10
)

var errLimit = errors.New("size limit reached")

// limitWriter accepts up to n bytes, then fails with errLimit.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		k, err := l.w.Write(p[:l.n])
		l.n -= int64(k)
		if err == nil {
			err = errLimit
		}
		return k, err
	}
	k, err := l.w.Write(p)
	l.n -= int64(k)
	return k, err
}

// closeCtx gives a handle's close its own time even when ctx was cancelled:
// the agent keeps handles open otherwise.
func closeCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func readFile(ctx context.Context, a agentclient.Agent, path string, w io.Writer, progress func(done, total int64)) (int64, error) {
	h, err := a.FileOpen(ctx, path, "r")
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer func() { _ = a.FileClose(closeCtx(ctx), h) }()
	var done int64
	for {
		rd, err := a.FileRead(ctx, h, readChunk)
		if err != nil {
			return done, fmt.Errorf("read %s: %w", path, err)
		}
		b, err := base64.StdEncoding.DecodeString(rd.BufB64)
		if err != nil {
			return done, fmt.Errorf("read %s: %w: bad base64: %v", path, agentclient.ErrMalformed, err)
		}
		n, err := w.Write(b)
		done += int64(n)
		if err != nil {
			return done, err
		}
		if progress != nil {
			progress(done, 0)
		}
		if rd.EOF || len(b) == 0 {
			return done, nil
		}
	}
}

func writeFile(ctx context.Context, a agentclient.Agent, path string, r io.Reader, size int64, progress func(done, total int64)) (int64, error) {
	h, err := a.FileOpen(ctx, path, "w")
	if err != nil {
		return 0, fmt.Errorf("open %s for writing: %w", path, err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = a.FileClose(closeCtx(ctx), h)
		}
	}()
	buf := make([]byte, writeChunk)
	var done int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			wr, err := a.FileWrite(ctx, h, base64.StdEncoding.EncodeToString(buf[:n]), n)
			if err != nil {
				return done, fmt.Errorf("write %s: %w", path, err)
			}
			done += int64(wr.Count)
			if wr.Count != n {
				return done, fmt.Errorf("write %s: short write (%d of %d bytes)", path, wr.Count, n)
			}
			if progress != nil {
				progress(done, size)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return done, fmt.Errorf("write %s: reading the source: %w", path, rerr)
		}
	}
	closed = true
	if err := a.FileClose(ctx, h); err != nil {
		return done, fmt.Errorf("close %s: %w", path, err)
	}
	return done, nil
}

// listDir runs the listing script through guest-exec and polls its status.
func listDir(ctx context.Context, a agentclient.Agent, dir string) ([]agentclient.DirEntry, error) {
	pid, err := a.Exec(ctx, agentclient.ListDirRequest(dir))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	wait := 10 * time.Millisecond
	for {
		st, err := a.ExecStatus(ctx, pid)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		if st.Exited {
			if st.ExitCode != nil && *st.ExitCode != 0 {
				msg, _ := base64.StdEncoding.DecodeString(st.ErrData)
				return nil, fmt.Errorf("list %s: exit status %d: %s", dir, *st.ExitCode, msg)
			}
			out, err := base64.StdEncoding.DecodeString(st.OutData)
			if err != nil {
				return nil, fmt.Errorf("list %s: %w: bad base64", dir, agentclient.ErrMalformed)
			}
			return agentclient.ParseListDir(out)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list %s: %w", dir, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func (f *Fleet) named(name string) (*session, error) {
	s := f.session(name)
	if s == nil {
		return nil, fmt.Errorf("no guest named %q", name)
	}
	return s, nil
}

// ReadFile streams a guest file to w in chunks; every chunk is one call with
// its own timeout, so memory stays bounded and a hang ends the read.
func (f *Fleet) ReadFile(ctx context.Context, guest, path string, w io.Writer, progress func(done, total int64)) (int64, error) {
	s, err := f.named(guest)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.withAgent(ctx, func(a *callAgent) (err error) {
		n, err = readFile(ctx, a, path, w, progress)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("guest %s: %w", guest, err)
	}
	return n, nil
}

// WriteFile writes r to a guest file (created or truncated); size is the
// total for progress, 0 if unknown. Refused in read-only mode.
func (f *Fleet) WriteFile(ctx context.Context, guest, path string, r io.Reader, size int64, progress func(done, total int64)) (int64, error) {
	if f.opts.Readonly {
		return 0, fmt.Errorf("guest %s: refused: read-only mode does not allow writing %s", guest, path)
	}
	s, err := f.named(guest)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.withAgent(ctx, func(a *callAgent) (err error) {
		n, err = writeFile(ctx, a, path, r, size, progress)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("guest %s: %w", guest, err)
	}
	return n, nil
}

// ListDir lists a guest directory (needs guest-exec on the guest).
func (f *Fleet) ListDir(ctx context.Context, guest, dir string) ([]agentclient.DirEntry, error) {
	s, err := f.named(guest)
	if err != nil {
		return nil, err
	}
	if why := checkCommands(s.cur.Load(), "guest-exec", "guest-exec-status"); why != "" {
		return nil, fmt.Errorf("guest %s: cannot list %s: %s", guest, dir, why)
	}
	var ents []agentclient.DirEntry
	err = s.withAgent(ctx, func(a *callAgent) (err error) {
		ents, err = listDir(ctx, a, dir)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", guest, err)
	}
	return ents, nil
}

// Raw sends one JSON request as is and returns the agent's reply object. In
// read-only mode only commands known not to change the guest pass.
func (f *Fleet) Raw(ctx context.Context, guest string, req []byte) (json.RawMessage, error) {
	s, err := f.named(guest)
	if err != nil {
		return nil, err
	}
	if f.opts.Readonly {
		var head struct {
			Execute string `json:"execute"`
		}
		if json.Unmarshal(req, &head) != nil || !isQuery(head.Execute) {
			return nil, fmt.Errorf("guest %s: refused: read-only mode allows only query commands, not %q", guest, head.Execute)
		}
	}
	var out json.RawMessage
	err = s.withAgent(ctx, func(a *callAgent) (err error) {
		out, err = a.Raw(ctx, req)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", guest, err)
	}
	return out, nil
}

// isQuery reports whether an agent command only reads.
func isQuery(cmd string) bool {
	switch cmd {
	case "guest-ping", "guest-info", "guest-sync", "guest-sync-delimited",
		"guest-get-time", "guest-fsfreeze-status", "guest-network-get-interfaces",
		"guest-get-vcpus", "guest-get-osinfo", "guest-get-host-name",
		"guest-get-timezone", "guest-get-users", "guest-get-fsinfo",
		"guest-get-memory-blocks", "guest-get-memory-block-info", "guest-get-disks",
		"guest-get-devices", "guest-get-load", "guest-get-cpustats", "guest-get-diskstats":
		return true
	}
	return false
}

// checkCommands is Check over an explicit command list.
func checkCommands(g *Guest, cmds ...string) string {
	for _, c := range cmds {
		present, enabled := g.Capability(c)
		switch {
		case !present:
			return fmt.Sprintf("agent lacks %s", c)
		case !enabled:
			return fmt.Sprintf("%s is disabled on this guest", c)
		}
	}
	return ""
}
