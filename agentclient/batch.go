package agentclient

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// BatchCall is one command of a Stream.Batch.
type BatchCall struct {
	Name string // a command that replies on success (see SuccessResponse)
	Args any    // as for Call
	Out  any    // the return value is decoded into Out when non-nil

	// Set by Batch.
	Err      error         // the command's outcome (an *OpError, like Call's)
	Sent     time.Time     // when the command went out
	Duration time.Duration // from sending the command to its reply
}

// RawReply is an Out for a command whose return value is decoded later
// (Stream.DecodeRaw), or never: it keeps the value as it came, a copy out
// of the read buffer. A fleet's first poll of a guest asks in one round
// trip what its steps may ask, before guest-info says what they will, and
// decodes only what they do ask.
//
// What it keeps is outside the stream's Budget, which charges a reply only
// while it is read: Max bounds it (0: no bound), and a longer value is not
// kept but marked Over, for its user to ask again.
type RawReply struct {
	Ret  []byte
	Max  int
	Over bool
}

// DecodeRaw decodes a return value kept by a RawReply into out (nil: only
// checks that it is JSON) with the outcome the command's batch would have
// had decoding into out itself: nil, or an *OpError naming the command. It
// is not logged (the batch logged the command).
func (s *Stream) DecodeRaw(name string, raw *RawReply, out any) error {
	var err error
	switch {
	case decodeRawInPlace(raw.Ret, out):
	case out != nil:
		if uerr := decodeReturn(raw.Ret, out); uerr != nil {
			err = &returnError{uerr}
		}
	case !json.Valid(raw.Ret):
		err = &returnError{fmt.Errorf("invalid return value %s", sample(raw.Ret))}
	}
	if err != nil {
		return &OpError{Addr: s.addr, Command: name, Err: err}
	}
	return nil
}

// decodeRawInPlace decodes a kept return value with the steady poll's
// in-place decoders (inPlace), where out has one, and reports whether it
// did: a slow refresh's live items and metrics are asked ahead (the
// fleet's prefetch) and kept, and decoded by decodeReturn they missed their
// Shapes and the list before: the cpustats and diskstats of a slow refresh
// cost twice and a half a steady poll's. As in a batch, the value is
// decodeReturn's wherever this returns true (TestDecodeRawLikeDecodeReturn);
// where it returns false, nothing of out changed but a Scratch's storage,
// and decodeReturn decodes it.
func decodeRawInPlace(ret []byte, out any) bool {
	if out == nil || !decodesInPlace(out) {
		return false
	}
	p := inPlace{out: out}
	if end, ok := p.decodeAt(ret, 0); ok && skipSpace(ret, end) == len(ret) {
		p.commit()
		return true
	}
	p.discard()
	return false
}

// Batch runs calls in order, as one caller: nobody else's request goes
// between them. To an agent that echoes request ids (qemu-ga does) they go
// out in one write, and each reply is matched to its request by id (the
// agent answers in order), which saves a write, a read and a wake-up per
// command; to other agents they are sent one at a time. A command that
// replies nothing on success is always sent on its own. Each command's
// outcome is in its Err: an agent's refusal fails only its command; a
// transport failure (timeout, connection lost, garbage) fails the command it
// hit and every later one, and the next call resyncs as after any timeout.
// The log hook sees every command, as for Call.
func (s *Stream) Batch(ctx context.Context, calls []BatchCall) {
	s.batch(ctx, time.Now(), time.Time{}, calls)
}

// BatchWithin is Batch bounded by d from now as well as by ctx, as Batch
// under context.WithTimeout(ctx, d) would be, without that context and its
// timer (a fleet sends thousands of batches a second): the connection's
// deadline is the earlier of the two, and a command that reaches it fails
// with ErrTimeout.
func (s *Stream) BatchWithin(ctx context.Context, d time.Duration, calls []BatchCall) {
	now := time.Now()
	s.batch(ctx, now, now.Add(d), calls)
}

// batch is Batch begun at start (the clock is read once for it and the
// bound), bounded by ctx and by (zero: no bound of its own).
func (s *Stream) batch(ctx context.Context, start, by time.Time, calls []BatchCall) {
	failFrom := func(from int, err error) {
		for i := from; i < len(calls); i++ {
			var rec LogRecord
			calls[i].Err = s.finish(&rec, calls[i].Name, err, start)
		}
	}
	if len(calls) == 0 {
		return
	}
	if s.closed.Load() {
		failFrom(0, ErrClosed)
		return
	}
	if ctx.Err() != nil {
		failFrom(0, ctxError(ctx))
		return
	}
	if err := s.acquireBy(ctx, by); err != nil {
		failFrom(0, err)
		return
	}
	defer func() { <-s.sem }()
	defer s.releaseBuffers()

	if err := s.deadErr(); err != nil {
		failFrom(0, err)
		return
	}
	if s.needSync {
		// Sync first: only then is it known whether the agent echoes ids.
		armed := s.arm(ctx, by)
		err := s.syncLocked(ctx)
		armed.disarm()
		if err != nil {
			failFrom(0, fmt.Errorf("resync: %w", err))
			return
		}
	}
	pipeline := s.echoIDs && len(calls) > 1
	for _, c := range calls {
		pipeline = pipeline && SuccessResponse(c.Name)
	}
	if !pipeline {
		if !by.IsZero() {
			// One call at a time, each arming the stream by its
			// context: the rare case (agents that echo no ids) gets
			// the context.
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, by)
			defer cancel()
		}
		for i := range calls {
			c := &calls[i]
			t0 := time.Now()
			var rec LogRecord
			_, err := s.call(ctx, c.Name, c.Args, c.Out, &rec)
			c.Sent, c.Duration = t0, time.Since(t0)
			c.Err = s.finish(&rec, c.Name, err, t0)
			if err != nil && isTransportErr(err) {
				failFrom(i+1, err)
				return
			}
		}
		return
	}
	s.pipelined(ctx, by, calls, start, failFrom)
}

// pipelined sends calls in one write and reads their replies in order.
// Holds sem; the stream is in sync and its agent echoes ids.
func (s *Stream) pipelined(ctx context.Context, by time.Time, calls []BatchCall, start time.Time, failFrom func(int, error)) {
	type span struct {
		req, id [2]int
		limit   int
	}
	var spanBuf [8]span
	spans := spanBuf[:0]
	b := takeSmall(&s.reqBuf, &s.reqBufp)
	for i := range calls {
		s.seq++
		r0 := len(b)
		nb, i0, i1, limit, err := s.appendRequest(b, calls[i].Name, calls[i].Args)
		if err != nil {
			// Not sent: only this command fails.
			var rec LogRecord
			calls[i].Err = s.finish(&rec, calls[i].Name, err, start)
			spans = append(spans, span{})
			continue
		}
		b = nb
		spans = append(spans, span{req: [2]int{r0, len(b)}, id: [2]int{i0, i1}, limit: limit})
	}
	s.keepReqBuf(b)
	armed := s.arm(ctx, by)
	defer armed.disarm()
	t0 := time.Now()
	if err := s.write(ctx, b); err != nil {
		failFrom(0, err)
		return
	}
	for i, sp := range spans {
		if sp.req[1] == 0 {
			continue // not sent
		}
		c := &calls[i]
		rec := LogRecord{Request: b[sp.req[0] : sp.req[1]-1]}
		s.expect(c.Name, sp.limit) // each reply its own limit
		// The steady poll's replies are decoded as they are scanned.
		var ip inPlace
		var p *inPlace
		if decodesInPlace(c.Out) {
			ip.out, p = c.Out, &ip
		}
		ret, err := s.awaitReplyInPlace(ctx, b[sp.id[0]:sp.id[1]], &rec, p)
		// One clock read a reply, for its round trip and the log's
		// duration since the batch began: at 10,000 guests reading the
		// clock, tens of times a poll, was some 5 % of the dashboard's
		// samples (the runtime's own reads with it).
		d := time.Since(t0)
		c.Sent, c.Duration = t0, d
		since := d + t0.Sub(start)
		if err != nil {
			c.Err = s.finishAfter(&rec, c.Name, err, start, since)
			// A reply skipped for its size was skipped to its end: the
			// later replies still come, matched by their ids.
			if isTransportErr(err) {
				s.needSync = true // the later replies are still coming
				failFrom(i+1, err)
				return
			}
			continue
		}
		// Decode now: ret points into the read buffer, which the next
		// reply may overwrite.
		switch {
		case p != nil && p.ok:
			p.commit()
		case c.Out != nil:
			p.discard()
			if uerr := decodeReturn(ret, c.Out); uerr != nil {
				err = &returnError{uerr}
			}
		case !json.Valid(ret):
			err = &returnError{fmt.Errorf("invalid return value %s", sample(ret))}
		}
		c.Err = s.finishAfter(&rec, c.Name, err, start, since)
	}
}

// acquireBy is acquire bounded by by as well (zero: no bound of its own);
// the context for it is made only when the stream is busy.
func (s *Stream) acquireBy(ctx context.Context, by time.Time) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	if !by.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, by)
		defer cancel()
	}
	return s.acquire(ctx)
}

// finish wraps a command's error and hands its record to the log hook.
func (s *Stream) finish(rec *LogRecord, name string, err error, start time.Time) error {
	return s.finishAfter(rec, name, err, start, -1)
}

// finishAfter is finish with the command's duration since start when the
// caller has it (-1: read the clock).
func (s *Stream) finishAfter(rec *LogRecord, name string, err error, start time.Time, d time.Duration) error {
	if err != nil {
		err = &OpError{Addr: s.addr, Command: name, Err: err}
	}
	if s.opts.log != nil {
		if d < 0 {
			d = time.Since(start)
		}
		rec.Addr, rec.Command, rec.Err, rec.Start, rec.Duration = s.addr, name, err, start, d
		s.opts.log(*rec)
	}
	return err
}

// isTransportErr reports whether err is about the connection rather than
// the answer to one command (see IsCallError).
func isTransportErr(err error) bool { return !IsCallError(err) }
