package agentclient

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// StreamAgent is an Agent whose calls travel on a Stream: a Client over a
// Stream, or a wrapper around one that adds its own timeouts and logging
// (the fleet's). ReadFile and WriteFile then pipeline their chunks on the
// stream instead of calling FileRead and FileWrite one at a time.
type StreamAgent interface {
	Agent
	// FileStream returns the stream, or nil when there is none, and the
	// timeout each chunk gets (0: ctx's deadline alone).
	FileStream() (s *Stream, chunkTimeout time.Duration)
}

// FileStream is the Client's Stream, when its transport is one.
func (c *Client) FileStream() (*Stream, time.Duration) {
	s, _ := c.t.(*Stream)
	return s, 0
}

// pipeDepth is how many chunk requests a transfer keeps in flight. qemu-ga
// reads its channel sequentially and answers in order: with two requests
// out, the next one waits in the agent's socket while it works on the
// current one, so it never idles for our round trip or our decoding, and
// nothing more is gained from a third. Memory is one reply at a time: the
// replies still to come wait in the agent.
const pipeDepth = 2

// pipe is a run of requests for one command on a stream, up to pipeDepth
// in flight, as one caller: it holds the stream's semaphore from openPipe to
// close, and gives it up between requests when another caller waits (see
// yield). Every reply is held to its command's limit (the command table's,
// from each request's own arguments), like any call's.
type pipe struct {
	s       *Stream
	ctx     context.Context
	name    string
	timeout time.Duration
	armed   armed
	held    bool
	// maxDepth is the caller's choice, at most pipeDepth.
	maxDepth int

	slots [pipeDepth]pipeSlot
	head  int // slots[head] is the oldest in flight
	n     int // requests in flight
}

// pipeSlot is one request in flight; its buffers are reused.
type pipeSlot struct {
	req    []byte // the request line, newline included
	id     [2]int // where the id is in req
	limit  int
	want   int    // the caller's size of what was asked
	raw    []byte // the caller's copy of what the request carries (writes)
	start  time.Time
	rec    LogRecord
	logged bool
}

// openPipe takes the stream for a run of name requests, up to depth in
// flight, resynchronising if it must. Without ids echoed by the agent, replies could not be told apart
// after a timeout, so such a stream keeps one request in flight.
func (s *Stream) openPipe(ctx context.Context, name string, timeout time.Duration, depth int) (*pipe, error) {
	p := &pipe{s: s, ctx: ctx, name: name, timeout: timeout, maxDepth: min(max(depth, 1), pipeDepth)}
	if err := p.acquire(); err != nil {
		return nil, &OpError{Addr: s.addr, Command: name, Err: err}
	}
	return p, nil
}

func (p *pipe) acquire() error {
	s := p.s
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.acquire(p.ctx); err != nil {
		return err
	}
	p.held = true
	p.armed = s.arm(p.ctx, time.Time{})
	if err := s.deadErr(); err != nil {
		return err
	}
	if s.needSync {
		p.deadline()
		if err := s.syncLocked(p.ctx); err != nil {
			return fmt.Errorf("resync: %w", err)
		}
	}
	return nil
}

// release gives the stream back. Nothing may be in flight.
func (p *pipe) release() {
	if !p.held {
		return
	}
	p.armed.disarm()
	p.s.releaseBuffers()
	p.held = false
	<-p.s.sem
}

// depth is how many requests may be in flight.
func (p *pipe) depth() int {
	if p.s.echoIDs {
		return p.maxDepth
	}
	return 1
}

// full reports whether no further request may go out now: the pipe is at
// its depth, or another caller waits for the stream (the pipe then drains
// and yields).
func (p *pipe) full() bool {
	return p.n >= p.depth() || p.s.waiting.Load() > 0
}

// yield lets a waiting caller have the stream between two requests. Holds
// nothing in flight.
func (p *pipe) yield() error {
	if p.n > 0 || p.s.waiting.Load() == 0 {
		return nil
	}
	p.release()
	if err := p.acquire(); err != nil {
		return &OpError{Addr: p.s.addr, Command: p.name, Err: err}
	}
	return nil
}

// deadline bounds the next read or write by the chunk timeout (and ctx's
// deadline, already armed).
func (p *pipe) deadline() {
	if p.timeout <= 0 {
		return
	}
	t := time.Now().Add(p.timeout)
	if dl, ok := p.ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	p.s.setDeadline(t)
}

// send writes one request whose arguments args appends, remembering want
// and raw for the caller. The pipe must not be full.
func (p *pipe) send(args func(b []byte) []byte, want int, raw []byte) error {
	s := p.s
	sl := &p.slots[(p.head+p.n)%pipeDepth]
	s.seq++
	b := append(sl.req[:0], `{"execute":"`...)
	b = append(b, p.name...)
	b = append(b, `","arguments":`...)
	a0 := len(b)
	b = args(b)
	sl.limit = lookupOrRaw(p.name).ReplyLimit(b[a0:])
	b = append(b, `,"id":"`...)
	sl.id[0] = len(b)
	b = strconv.AppendUint(append(append(b, s.tag...), '-'), s.seq, 10)
	sl.id[1] = len(b)
	b = append(b, "\"}\n"...)
	sl.req, sl.want, sl.start, sl.logged = b, want, time.Now(), false
	sl.raw = append(sl.raw[:0], raw...)
	sl.rec = LogRecord{Request: b[:len(b)-1]}
	p.n++
	p.deadline()
	if err := s.write(p.ctx, b); err != nil {
		p.n-- // never sent whole: nothing to wait for (the next call resyncs)
		sl.logged = true
		p.finishRec(sl, err)
		return &OpError{Addr: s.addr, Command: p.name, Err: err}
	}
	return nil
}

// await reads the reply to the oldest request in flight: its return value
// (valid until the next read) and its slot. The caller decodes the value
// and then calls done with the outcome, which logs the call.
func (p *pipe) await() ([]byte, *pipeSlot, error) {
	s := p.s
	sl := &p.slots[p.head]
	p.head = (p.head + 1) % pipeDepth
	p.n--
	s.expect(p.name, sl.limit)
	p.deadline()
	ret, err := s.awaitReply(p.ctx, sl.req[sl.id[0]:sl.id[1]], &sl.rec)
	if err != nil {
		if isTransportErr(err) {
			s.needSync = true // the replies after it are still coming
		}
		err = &OpError{Addr: s.addr, Command: p.name, Err: err}
		p.done(sl, err)
		return nil, sl, err
	}
	return ret, sl, nil
}

// done logs the call in sl with its outcome (once).
func (p *pipe) done(sl *pipeSlot, err error) {
	if sl.logged {
		return
	}
	sl.logged = true
	p.finishRec(sl, err)
}

func (p *pipe) finishRec(sl *pipeSlot, err error) {
	if p.s.opts.log == nil {
		return
	}
	if err != nil && !isOpError(err) {
		err = &OpError{Addr: p.s.addr, Command: p.name, Err: err}
	}
	rec := sl.rec
	rec.Addr, rec.Command, rec.Err, rec.Start, rec.Duration = p.s.addr, p.name, err, sl.start, time.Since(sl.start)
	p.s.opts.log(rec)
}

func isOpError(err error) bool {
	_, ok := err.(*OpError)
	return ok
}

// drain reads and drops the replies still in flight (a transfer that ended
// early: at end-of-file, or on an error). A transport failure leaves the
// rest to the next call's resync.
func (p *pipe) drain() {
	for p.n > 0 {
		_, sl, err := p.await()
		if err != nil {
			p.n = 0
			return
		}
		p.done(sl, nil)
	}
}

// close drains the pipe and gives the stream back.
func (p *pipe) close() {
	if p.held && p.s.deadErr() == nil {
		p.drain()
	}
	p.n = 0
	p.release()
}

// call runs one other command between the pipe's requests, with nothing in
// flight, logged like any call.
func (p *pipe) call(name string, args, out any) error {
	s := p.s
	ctx := p.ctx
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	rec := LogRecord{}
	start := time.Now()
	_, err := s.call(ctx, name, args, out, &rec)
	// s.call armed ctx for itself: arm it again for the pipe.
	p.armed.disarm()
	p.armed = s.arm(p.ctx, time.Time{})
	if err != nil {
		err = &OpError{Addr: s.addr, Command: name, Err: err}
	}
	if s.opts.log != nil {
		rec.Addr, rec.Command, rec.Err, rec.Start, rec.Duration = s.addr, name, err, start, time.Since(start)
		s.opts.log(rec)
	}
	return err
}

// appendFileReadArgs appends guest-file-read's arguments.
func appendFileReadArgs(b []byte, h int64, count int) []byte {
	b = strconv.AppendInt(append(b, `{"handle":`...), h, 10)
	b = strconv.AppendInt(append(b, `,"count":`...), int64(count), 10)
	return append(b, '}')
}

// appendFileWriteArgs appends guest-file-write's arguments, encoding p in
// place: the chunk's base64 is written once, into the request line.
func appendFileWriteArgs(b []byte, h int64, p []byte) []byte {
	b = strconv.AppendInt(append(b, `{"handle":`...), h, 10)
	b = append(b, `,"buf-b64":"`...)
	n := base64.StdEncoding.EncodedLen(len(p))
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	base64.StdEncoding.Encode(b[start:], p)
	b = strconv.AppendInt(append(b, `","count":`...), int64(len(p)), 10)
	return append(b, '}')
}

// fileStream is the stream a transfer on a pipelines on, or nil.
func fileStream(a Agent) (*Stream, time.Duration) {
	if sa, ok := a.(StreamAgent); ok {
		return sa.FileStream()
	}
	return nil, 0
}
