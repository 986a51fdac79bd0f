package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Log text is truncated so that a guest's log stays a few kilobytes.
const (
	logRequestMax = 96
	logReplyMax   = 160
)

// callAgent wraps a session's agent: every call gets its own timeout and
// lands in the guest's command log. File helpers that take an Agent get this
// wrapper too, so their chunked calls are bounded and logged the same way.
type callAgent struct {
	s      *session
	a      agentclient.Agent
	hooked bool // the transport logs each call through logRecord
}

var _ agentclient.Agent = (*callAgent)(nil)

func do[T any](c *callAgent, ctx context.Context, cmd string, req any, fn func(ctx context.Context) (T, error)) (T, error) {
	timeout := c.s.f.opts.Timeout
	if !agentclient.SuccessResponse(cmd) {
		// No reply on success: the transport waits out its grace period
		// for an error before it counts the command as accepted.
		timeout += agentclient.DefaultShutdownGrace
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	v, err := fn(ctx)
	if !c.hooked {
		c.s.logCall(t0, cmd, req, v, err)
	}
	return v, err
}

// stream is the agent's stream transport when it has one (a socket agent,
// not libvirt or a test's fake): only then are batches worth sending.
func (c *callAgent) stream() *agentclient.Stream {
	if cl, ok := c.a.(*agentclient.Client); ok {
		st, _ := cl.Transport().(*agentclient.Stream)
		return st
	}
	return nil
}

// FileStream lets agentclient's file transfers pipeline their chunks on the
// stream (agentclient.StreamAgent), each chunk with the call timeout; the
// stream's log hook logs them as single calls.
func (c *callAgent) FileStream() (*agentclient.Stream, time.Duration) {
	if !c.hooked {
		return nil, 0
	}
	return c.stream(), c.s.f.opts.Timeout
}

// batch runs calls pipelined on st, bounded by one timeout (they travel
// together): the call timeout times per, at least one, under ctx's own
// deadline; logged like single calls.
func (c *callAgent) batch(ctx context.Context, st *agentclient.Stream, calls []agentclient.BatchCall, per int) {
	if p := c.s.pre; p != nil && p.st == st {
		missing := p.serve(calls)
		if len(missing) == 0 {
			return // every one asked ahead
		}
		// Those not asked ahead go out now; the rest keep their answers.
		rest := make([]agentclient.BatchCall, len(missing))
		for j, i := range missing {
			rest[j] = calls[i]
		}
		c.send(ctx, st, rest, per)
		for j, i := range missing {
			calls[i] = rest[j]
		}
		return
	}
	c.send(ctx, st, calls, per)
}

// send is batch on the wire.
func (c *callAgent) send(ctx context.Context, st *agentclient.Stream, calls []agentclient.BatchCall, per int) {
	t0 := time.Now()
	// BatchWithin, not a context.WithTimeout: a context and a timer less
	// at every poll; and under a poll, its parent and deadline rather
	// than its context (pollCtx), which then is never built.
	timeout := c.s.f.opts.Timeout * time.Duration(max(per, 1))
	if pc, ok := ctx.(*pollCtx); ok {
		// The loop's context, watched once for the stream's life: no
		// context.AfterFunc of the batch's own either.
		st.Watch(pc.parent)
		ctx, timeout = pc.within(timeout)
	}
	st.BatchWithin(ctx, timeout, calls)
	if !c.hooked {
		for _, bc := range calls {
			c.s.logCall(t0, bc.Name, nil, bc.Out, bc.Err)
		}
	}
}

func do0(c *callAgent, ctx context.Context, cmd string, req any, fn func(ctx context.Context) error) error {
	_, err := do(c, ctx, cmd, req, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// logCall adds one entry to the guest's log; the next update publishes it.
func (s *session) logCall(t0 time.Time, cmd string, req, reply any, err error) {
	if s.f.opts.NoLog {
		return // nothing will show it (Options.NoLog)
	}
	e := LogEntry{At: t0, Command: cmd, Request: summarize(req, logRequestMax), Duration: time.Since(t0)}
	if err != nil {
		e.Err = true
		e.Reply = truncate(err.Error(), logReplyMax)
	} else {
		e.Reply = summarize(reply, logReplyMax)
	}
	s.mu.Lock()
	s.log.add(e)
	s.mu.Unlock()
}

// logRecord adds a transport's record of one call: the wire lines, cut,
// with a password and exec input replaced (logRequest, hideExecInput),
// without the request id the transport tags them with (its own, not the
// guest's: see withoutID). A poll's lines are then mostly what the last
// poll's were, and they share that entry's strings (logRing.text): at
// 10,000 guests the logs held half the fleet's memory before.
func (s *session) logRecord(rec agentclient.LogRecord) {
	var reqBuf [logRequestMax + 1]byte
	var repBuf [logReplyMax + 1]byte
	req, rep := withoutID(reqBuf[:0], repBuf[:0], logRequest(rec.Command, hideExecInput(rec.Command, rec.Request)), rec.Reply)
	var errText string
	if rec.Err != nil {
		errText = truncate(rec.Err.Error(), logReplyMax)
	}
	s.mu.Lock()
	s.log.record(rec.Command, rec.Start, rec.Duration, req, rep, rec.Err != nil, errText)
	s.mu.Unlock()
}

// hideExecInput is a guest-exec request line with the process's stdin
// replaced by its size (RawSend), before the log cuts it: even its first
// bytes are the operator's input, not a record.
func hideExecInput(cmd string, req []byte) []byte {
	if cmd != "guest-exec" || !bytes.Contains(req, []byte(`"input-data"`)) {
		return req
	}
	if s, hid, err := RawSend(req); err == nil && hid {
		return []byte(s.JSON())
	}
	return []byte(`{"execute":"guest-exec","arguments":"` + NotRecorded + `"}`)
}

// withoutID appends to dreq and drep (up to their capacity: what the log
// keeps, plus one byte to tell a longer line) the request line without its
// id member (`,"id":"TAG"`, last in the line as agentclient writes it), and
// the reply line without the same id where the agent echoed it (qemu-ga:
// `, "id": "TAG"`). Only that exact member goes; a line that does not hold
// it is kept as it is.
func withoutID(dreq, drep, req, rep []byte) ([]byte, []byte) {
	capped := func(d []byte, parts ...[]byte) []byte {
		for _, p := range parts {
			d = append(d, p[:min(len(p), cap(d)-len(d))]...)
		}
		return d
	}
	// The id is what follows the last quote before the closing `"}`,
	// with the key before it: as bytes.LastIndex(req, key) would find it
	// (an id holds no quote), without a search of the whole line at
	// every call (TestWithoutIDAsSearch).
	const key = `,"id":"`
	if !bytes.HasSuffix(req, []byte(`"}`)) {
		return capped(dreq, req), capped(drep, rep)
	}
	q := bytes.LastIndexByte(req[:len(req)-2], '"')
	if q < len(key)-1 || string(req[q-len(key)+1:q+1]) != key || q+1 == len(req)-2 {
		return capped(dreq, req), capped(drep, rep)
	}
	i, id := q-len(key)+1, req[q+1:len(req)-2]
	dreq = capped(dreq, req[:i], []byte("}"))
	for _, sep := range []string{`, "id": "`, `,"id":"`} {
		n := len(sep) + len(id) + 1 // the member: sep, id, its closing quote
		if n > 80 {
			break
		}
		// Where the log can show it: at the end (qemu-ga's place for
		// it), or within what is kept; a file chunk is not searched.
		j := len(rep) - n - 1
		if j < 0 || !bytes.HasSuffix(rep, []byte(`"}`)) || string(rep[j:j+len(sep)]) != sep || !bytes.Equal(rep[j+len(sep):j+n-1], id) {
			var m [80]byte
			mm := append(append(append(m[:0], sep...), id...), '"')
			j = bytes.Index(rep[:min(len(rep), cap(drep)+n)], mm)
		}
		if j >= 0 {
			return dreq, capped(drep, rep[:j], rep[j+n:])
		}
	}
	return dreq, capped(drep, rep)
}

func summarize(v any, n int) string {
	switch v := v.(type) {
	case nil:
		return ""
	case struct{}:
		return "{}"
	case string:
		return truncate(strconv.Quote(v), n)
	case json.RawMessage:
		return truncate(string(v), n)
	case []byte:
		return truncate(string(v), n)
	case *agentclient.FileRead:
		if v == nil {
			return ""
		}
		return fmt.Sprintf(`{"count":%d,"eof":%t}`, v.Count, v.EOF)
	case fileWriteReq:
		return fmt.Sprintf(`{"handle":%d,"count":%d}`, v.Handle, v.Count)
	case *agentclient.ExecStatus:
		// Not marshalled: the output may be two 16 MiB streams, and the
		// log keeps a line of it.
		if v == nil {
			return ""
		}
		return truncate(fmt.Sprintf(`{"exited":%t,"out-data":"<%d bytes>","err-data":"<%d bytes>"}`, v.Exited, len(v.OutData), len(v.ErrData)), n)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return truncate(fmt.Sprint(v), n)
	}
	return truncate(string(b), n)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

type handleReq struct {
	Handle int64 `json:"handle"`
}

// fileWriteReq keeps the data out of the log.
type fileWriteReq struct {
	Handle int64
	Count  int
}

func (c *callAgent) Addr() string { return c.a.Addr() }
func (c *callAgent) Close() error { return c.a.Close() }

func (c *callAgent) Ping(ctx context.Context) error {
	return do0(c, ctx, "guest-ping", nil, c.a.Ping)
}

func (c *callAgent) Info(ctx context.Context) (*agentclient.Info, error) {
	if p := c.s.pre; p != nil {
		// Decoded once per text for the fleet (commandLists).
		v := agentclient.SharedInfo{Lists: &c.s.f.commands.decoded}
		if _, err, ok := p.take("guest-info", &v); ok {
			return &v.Info, err // asked ahead (prefetch)
		}
	}
	return do(c, ctx, "guest-info", nil, c.a.Info)
}

func (c *callAgent) Time(ctx context.Context) (int64, error) {
	return do(c, ctx, "guest-get-time", nil, c.a.Time)
}

func (c *callAgent) SetTime(ctx context.Context, ns *int64) error {
	var req any
	if ns != nil {
		req = map[string]int64{"time": *ns}
	}
	return do0(c, ctx, "guest-set-time", req, func(ctx context.Context) error { return c.a.SetTime(ctx, ns) })
}

func (c *callAgent) Shutdown(ctx context.Context, mode string) error {
	return do0(c, ctx, "guest-shutdown", map[string]string{"mode": mode}, func(ctx context.Context) error { return c.a.Shutdown(ctx, mode) })
}

func (c *callAgent) Suspend(ctx context.Context, mode string) error {
	return do0(c, ctx, "guest-suspend-"+mode, nil, func(ctx context.Context) error { return c.a.Suspend(ctx, mode) })
}

func (c *callAgent) FileOpen(ctx context.Context, path, mode string) (int64, error) {
	return do(c, ctx, "guest-file-open", map[string]string{"path": path, "mode": mode}, func(ctx context.Context) (int64, error) { return c.a.FileOpen(ctx, path, mode) })
}

func (c *callAgent) FileClose(ctx context.Context, h int64) error {
	return do0(c, ctx, "guest-file-close", handleReq{h}, func(ctx context.Context) error { return c.a.FileClose(ctx, h) })
}

func (c *callAgent) FileRead(ctx context.Context, h int64, count int) (*agentclient.FileRead, error) {
	req := struct {
		Handle int64 `json:"handle"`
		Count  int   `json:"count"`
	}{h, count}
	return do(c, ctx, "guest-file-read", req, func(ctx context.Context) (*agentclient.FileRead, error) { return c.a.FileRead(ctx, h, count) })
}

func (c *callAgent) FileWrite(ctx context.Context, h int64, b64 string, count int) (*agentclient.FileWrite, error) {
	return do(c, ctx, "guest-file-write", fileWriteReq{h, count}, func(ctx context.Context) (*agentclient.FileWrite, error) {
		return c.a.FileWrite(ctx, h, b64, count)
	})
}

func (c *callAgent) FileSeek(ctx context.Context, h, off int64, whence int) (*agentclient.FileSeek, error) {
	req := map[string]int64{"handle": h, "offset": off, "whence": int64(whence)}
	return do(c, ctx, "guest-file-seek", req, func(ctx context.Context) (*agentclient.FileSeek, error) { return c.a.FileSeek(ctx, h, off, whence) })
}

func (c *callAgent) FileFlush(ctx context.Context, h int64) error {
	return do0(c, ctx, "guest-file-flush", handleReq{h}, func(ctx context.Context) error { return c.a.FileFlush(ctx, h) })
}

func (c *callAgent) FreezeStatus(ctx context.Context) (agentclient.FreezeStatus, error) {
	return do(c, ctx, "guest-fsfreeze-status", nil, c.a.FreezeStatus)
}

func (c *callAgent) Freeze(ctx context.Context) (int, error) {
	return do(c, ctx, "guest-fsfreeze-freeze", nil, c.a.Freeze)
}

func (c *callAgent) FreezeList(ctx context.Context, mps []string) (int, error) {
	return do(c, ctx, "guest-fsfreeze-freeze-list", map[string][]string{"mountpoints": mps}, func(ctx context.Context) (int, error) { return c.a.FreezeList(ctx, mps) })
}

func (c *callAgent) Thaw(ctx context.Context) (int, error) {
	return do(c, ctx, "guest-fsfreeze-thaw", nil, c.a.Thaw)
}

func (c *callAgent) Fstrim(ctx context.Context, minimum *int64) (*agentclient.TrimResponse, error) {
	var req any
	if minimum != nil {
		req = map[string]int64{"minimum": *minimum}
	}
	return do(c, ctx, "guest-fstrim", req, func(ctx context.Context) (*agentclient.TrimResponse, error) { return c.a.Fstrim(ctx, minimum) })
}

func (c *callAgent) Interfaces(ctx context.Context) ([]agentclient.Interface, error) {
	return do(c, ctx, "guest-network-get-interfaces", nil, c.a.Interfaces)
}

func (c *callAgent) VCPUs(ctx context.Context) ([]agentclient.VCPU, error) {
	return do(c, ctx, "guest-get-vcpus", nil, c.a.VCPUs)
}

func (c *callAgent) SetVCPUs(ctx context.Context, v []agentclient.VCPU) (int, error) {
	return do(c, ctx, "guest-set-vcpus", map[string]any{"vcpus": v}, func(ctx context.Context) (int, error) { return c.a.SetVCPUs(ctx, v) })
}

func (c *callAgent) OSInfo(ctx context.Context) (*agentclient.OSInfo, error) {
	return do(c, ctx, "guest-get-osinfo", nil, c.a.OSInfo)
}

func (c *callAgent) Hostname(ctx context.Context) (string, error) {
	return do(c, ctx, "guest-get-host-name", nil, c.a.Hostname)
}

func (c *callAgent) Timezone(ctx context.Context) (*agentclient.Timezone, error) {
	return do(c, ctx, "guest-get-timezone", nil, c.a.Timezone)
}

func (c *callAgent) Users(ctx context.Context) ([]agentclient.User, error) {
	return do(c, ctx, "guest-get-users", nil, c.a.Users)
}

func (c *callAgent) FSInfo(ctx context.Context) ([]agentclient.Filesystem, error) {
	return do(c, ctx, "guest-get-fsinfo", nil, c.a.FSInfo)
}

func (c *callAgent) Exec(ctx context.Context, req agentclient.ExecRequest) (int64, error) {
	logReq := map[string]any{"path": req.Path, "arg": req.Arg}
	return do(c, ctx, "guest-exec", logReq, func(ctx context.Context) (int64, error) { return c.a.Exec(ctx, req) })
}

func (c *callAgent) ExecStatus(ctx context.Context, pid int64) (*agentclient.ExecStatus, error) {
	return do(c, ctx, "guest-exec-status", map[string]int64{"pid": pid}, func(ctx context.Context) (*agentclient.ExecStatus, error) { return c.a.ExecStatus(ctx, pid) })
}

func (c *callAgent) Raw(ctx context.Context, request []byte) (json.RawMessage, error) {
	var head struct {
		Execute string `json:"execute"`
	}
	cmd := "raw"
	if json.Unmarshal(request, &head) == nil && head.Execute != "" {
		cmd = head.Execute
	}
	// Logged as the hooked transports log it: a password and exec input
	// replaced (a libvirt agent has no hook, and the line is the operator's).
	logged := json.RawMessage(logRequest(cmd, hideExecInput(cmd, request)))
	return do(c, ctx, cmd, logged, func(ctx context.Context) (json.RawMessage, error) { return c.a.Raw(ctx, request) })
}
