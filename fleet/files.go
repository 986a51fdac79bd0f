package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/guestdeck/guestdeck/agentclient"
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

// The chunked file helpers of agentclient do the work; they get the
// session's callAgent, so every chunk has its own timeout and is logged.
func readFile(ctx context.Context, a agentclient.Agent, path string, w io.Writer, progress func(done, total int64)) (int64, error) {
	return agentclient.ReadFile(ctx, a, path, w, agentclient.FileOptions{Progress: progress})
}

func writeFile(ctx context.Context, a agentclient.Agent, path string, r io.Reader, size int64, progress func(done, total int64)) (int64, error) {
	return agentclient.WriteFile(ctx, a, path, r, agentclient.FileOptions{Size: size, Progress: progress})
}

// canExec reports whether the guest's agent runs programs (guest-exec and
// guest-exec-status enabled). A guest not polled yet (a one-shot command)
// is asked with guest-info first: an agent that blocks guest-exec must not
// be sent one.
func canExec(ctx context.Context, a *callAgent, g *Guest) (bool, error) {
	if len(g.Commands) == 0 {
		info, err := a.Info(ctx)
		if isTransport(err) {
			return false, err
		}
		if err != nil {
			return false, nil
		}
		known := *g
		known.Commands = info.SupportedCommands
		g = &known
	}
	// An agent without guest-info's list still has to be shown to run them.
	return len(g.Commands) > 0 && checkCommands(g, "guest-exec", "guest-exec-status") == "", nil
}

func listDir(ctx context.Context, a agentclient.Agent, dir string) ([]agentclient.DirEntry, error) {
	return agentclient.ListDir(ctx, a, dir)
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

// WriteFile writes r to a guest file; size is the total for progress, 0 if
// unknown. Where the agent allows guest-exec the bytes go to a temporary
// file moved into place only once complete, so a failed transfer leaves the
// guest's file as it was; elsewhere the file is truncated and written in
// place. A failure after the guest was changed is an
// *agentclient.WriteError saying what the file holds now. Refused in
// read-only mode.
func (f *Fleet) WriteFile(ctx context.Context, guest, path string, r io.Reader, size int64, progress func(done, total int64)) (int64, error) {
	if f.opts.Readonly {
		return 0, fmt.Errorf("guest %s: refused: read-only mode does not allow writing %s", guest, path)
	}
	s, err := f.named(guest)
	if err != nil {
		return 0, err
	}
	opt := agentclient.FileOptions{Size: size, Progress: progress}
	var n int64
	err = s.withAgent(ctx, func(a *callAgent) (err error) {
		if opt.Replace, err = canExec(ctx, a, s.cur.Load()); err != nil {
			return err
		}
		n, err = agentclient.WriteFile(ctx, a, path, r, opt)
		return err
	})
	var we *agentclient.WriteError
	if errors.As(err, &we) && we.NeedsCleanup() {
		// Most likely the connection dropped mid-transfer, and with it the
		// write's own attempt to tidy up: try again on a fresh one, also
		// when ctx has ended (a cancelled upload must not leave its
		// temporary copy behind).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*f.opts.Timeout)
		_ = s.withAgent(cctx, func(a *callAgent) error { return we.Cleanup(cctx, a) })
		cancel()
	}
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
		ents, err = listDirFor(ctx, a, s.cur.Load(), dir)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", guest, err)
	}
	return ents, nil
}

// Raw sends one JSON request as is and returns the agent's reply object. In
// read-only mode only commands the command table says only report pass.
func (f *Fleet) Raw(ctx context.Context, guest string, req []byte) (json.RawMessage, error) {
	s, err := f.named(guest)
	if err != nil {
		return nil, err
	}
	if f.opts.Readonly {
		var head struct {
			Execute string `json:"execute"`
		}
		if json.Unmarshal(req, &head) != nil {
			return nil, fmt.Errorf("guest %s: refused: the request is not JSON, and read-only mode sends only commands it knows report", guest)
		}
		if err := agentclient.ReadOnlyRefusal(head.Execute); err != nil {
			return nil, fmt.Errorf("guest %s: refused: %w", guest, err)
		}
	}
	var out json.RawMessage
	err = s.withAgent(ctx, func(a *callAgent) (err error) {
		entry, err := s.rawFreezeRecord(req)
		if err != nil {
			return err
		}
		out, err = a.Raw(ctx, req)
		s.rawFreezeGuard(req, out, err)
		s.rawFreezeSettle(entry, out, err)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", guest, err)
	}
	return out, nil
}

// rawFreezeGuard keeps the freeze guard right when a freeze or thaw goes
// through Raw: a guest frozen that way is frozen by this process as much as
// by Run, and must not be left frozen without the watchdog or ThawOurs
// knowing. Holds sem.
func (s *session) rawFreezeGuard(req []byte, out json.RawMessage, err error) {
	var head struct {
		Execute string `json:"execute"`
	}
	if json.Unmarshal(req, &head) != nil {
		return
	}
	switch head.Execute {
	case "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list":
		if isTransport(err) {
			s.armGuard(false) // it may have frozen without the answer reaching us
			return
		}
		var reply struct {
			Return int `json:"return"`
		}
		if err == nil && json.Unmarshal(out, &reply) == nil && reply.Return > 0 {
			s.armGuard(true)
		}
	case "guest-fsfreeze-thaw":
		if err == nil {
			s.thawed()
		}
	}
}

// checkCommands is Check over an explicit command list. A missing command
// comes first: thawing would not bring it. While the guest is frozen the
// agent refuses all but a few commands, and the guest-info it answers then
// lists those as disabled, so the freeze, not the guest's admin, is the
// reason to give.
func checkCommands(g *Guest, cmds ...string) string {
	for _, c := range cmds {
		if present, _ := g.Capability(c); !present {
			return fmt.Sprintf("agent lacks %s", c)
		}
	}
	frozen := g.Freeze == agentclient.Frozen || g.State == Frozen
	for _, c := range cmds {
		_, enabled := g.Capability(c)
		switch {
		case frozen && (c == "guest-fsfreeze-freeze" || c == "guest-fsfreeze-freeze-list"):
			// The agent refuses a second freeze; Run reports the guest as
			// already frozen, which is what was asked.
		case frozen && !agentclient.AllowedWhileFrozen(c):
			return "guest is frozen: thaw it first"
		case !enabled && g.CapsFrozen && !agentclient.AllowedWhileFrozen(c):
			// Listed disabled by the freeze, not known to be disabled
			// now that it is thawed (an action right after a thaw, before
			// a poll reads the capabilities again): the agent decides.
		case !enabled:
			return fmt.Sprintf("%s is disabled on this guest", c)
		}
	}
	return ""
}
