package agentclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/vsock"
)

// DefaultMaxReply bounds one reply line. It fits a 64 MiB guest-file-read
// (base64 makes that 85.4 MiB) with room for the JSON around it; qemu-ga
// itself caps one read at 48 MiB.
const DefaultMaxReply = 90 << 20

// DefaultShutdownGrace is how long a command that replies nothing on success
// (guest-shutdown, guest-suspend-*) waits for an error before it counts as
// accepted.
const DefaultShutdownGrace = time.Second

// Option configures Dial and DialStream.
type Option func(*streamOptions)

type streamOptions struct {
	maxReply int
	grace    time.Duration
	log      func(LogRecord)
	readBuf  int
}

// WithMaxReply bounds one reply line to n bytes; a longer reply fails its
// call with ErrTooLarge. n <= 0 keeps the default.
func WithMaxReply(n int) Option {
	return func(o *streamOptions) {
		if n > 0 {
			o.maxReply = n
		}
	}
}

// WithReadBuffer sets the size of the stream's read buffer, held for the
// connection's life (default 64 KiB). A fleet of thousands of idle sessions
// wants it small; larger replies just take more reads. n <= 0 keeps the
// default.
func WithReadBuffer(n int) Option {
	return func(o *streamOptions) {
		if n > 0 {
			o.readBuf = n
		}
	}
}

// WithShutdownGrace sets how long shutdown and suspend wait for an error
// before they count as accepted. d <= 0 keeps the default.
func WithShutdownGrace(d time.Duration) Option {
	return func(o *streamOptions) {
		if d > 0 {
			o.grace = d
		}
	}
}

// WithLog calls fn after every Call (not the internal syncs) with what was
// sent and received. fn runs on the caller's goroutine, so it must be quick;
// it must not modify or retain the record's byte slices beyond the call.
func WithLog(fn func(LogRecord)) Option {
	return func(o *streamOptions) { o.log = fn }
}

// LogRecord describes one call, for a per-guest command log.
type LogRecord struct {
	Addr     string
	Command  string
	Request  []byte // the JSON line sent, without its newline (nil if never encoded)
	Reply    []byte // the reply line received (nil if none)
	Err      error
	Start    time.Time
	Duration time.Duration
}

// ParseAddress splits a guest address into a network and an address for it:
// "unix:/run/qga.sock" -> ("unix", "/run/qga.sock"), "tcp:host:4444" ->
// ("tcp", "host:4444"), "vsock:3:1234" -> ("vsock", "3:1234"). A bare absolute
// path is taken as a unix socket.
func ParseAddress(addr string) (network, address string, err error) {
	if strings.HasPrefix(addr, "/") {
		return "unix", addr, nil
	}
	scheme, rest, ok := strings.Cut(addr, ":")
	if !ok {
		return "", "", fmt.Errorf("address %q: want unix:/path, tcp:host:port or vsock:cid:port", addr)
	}
	switch scheme {
	case "unix":
		if rest == "" {
			return "", "", fmt.Errorf("address %q: empty socket path", addr)
		}
		return "unix", rest, nil
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return "", "", fmt.Errorf("address %q: %v", addr, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil || host == "" {
			return "", "", fmt.Errorf("address %q: want tcp:host:port", addr)
		}
		return "tcp", rest, nil
	case "vsock":
		if _, _, err := parseVsock(rest); err != nil {
			return "", "", fmt.Errorf("address %q: %v", addr, err)
		}
		return "vsock", rest, nil
	}
	return "", "", fmt.Errorf("address %q: unknown scheme %q (want unix, tcp or vsock)", addr, scheme)
}

func parseVsock(s string) (cid, port uint32, err error) {
	c, p, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, errors.New("want vsock:cid:port")
	}
	c64, err1 := strconv.ParseUint(c, 10, 32)
	p64, err2 := strconv.ParseUint(p, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("want vsock:cid:port with decimal numbers")
	}
	return uint32(c64), uint32(p64), nil
}

// Dial connects to the agent at addr, synchronises, and returns a Client.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	s, err := DialStream(ctx, addr, opts...)
	if err != nil {
		return nil, err
	}
	return New(s), nil
}

// DialStream connects to the agent at addr and synchronises with it (0xFF and
// guest-sync-delimited). A channel that accepts the connection but never
// answers the sync before ctx's deadline fails with ErrSilent (which also
// matches ErrTimeout).
func DialStream(ctx context.Context, addr string, opts ...Option) (*Stream, error) {
	network, address, err := ParseAddress(addr)
	if err != nil {
		return nil, &OpError{Addr: addr, Err: err}
	}
	name := network + ":" + address
	conn, err := dialConn(ctx, network, address)
	if err != nil {
		return nil, &OpError{Addr: name, Err: fmt.Errorf("connect: %w", dialError(ctx, err))}
	}
	s := newStream(name, conn, opts...)
	if err := s.syncLocked(ctx); err != nil {
		s.Close()
		return nil, &OpError{Addr: name, Command: "guest-sync-delimited", Err: err}
	}
	return s, nil
}

func dialConn(ctx context.Context, network, address string) (net.Conn, error) {
	if network != "vsock" {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	cid, port, err := parseVsock(address)
	if err != nil {
		return nil, err
	}
	// vsock.Dial takes no context; connect on the side so ctx still bounds us.
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := vsock.Dial(cid, port, nil)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		ch <- result{c, nil}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func dialError(ctx context.Context, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return err
}

// NewStream wraps an established connection (for tests and custom
// transports). The caller still has to let the first Call synchronise: the
// stream starts unsynchronised.
func NewStream(addr string, conn net.Conn, opts ...Option) *Stream {
	return newStream(addr, conn, opts...)
}

// Stream is a Transport over one stream connection (unix, tcp, vsock). It
// keeps one request in flight, tags each request with a fresh "id" (which
// qemu-ga echoes) and resynchronises after any client-side timeout, so a late
// reply is never handed to a later call. It does not redial: after the
// connection drops every call fails with ErrConnLost.
type Stream struct {
	addr string
	conn net.Conn
	opts streamOptions

	sem     chan struct{} // one request in flight
	events  chan event    // lines from the reader goroutine
	done    chan struct{} // closed when the reader has stopped
	readErr error         // why the reader stopped; set before done closes
	closing chan struct{}
	closed  atomic.Bool
	once    sync.Once

	// writeMu guards writeGen, which stops a late context.AfterFunc from
	// poisoning a later write's deadline.
	writeMu  sync.Mutex
	writeGen uint64

	// Guarded by sem.
	needSync bool   // the next call must resync first
	echoIDs  bool   // the agent echoes request ids: match on them
	tag      string // per-stream random id prefix
	seq      uint64
}

// event is one unit from the reader: a reply line, the 0xFF sentinel, or a
// line that was cut because it exceeded the limit.
type event struct {
	line     []byte
	sentinel bool
	tooLarge bool
}

func newStream(addr string, conn net.Conn, opts ...Option) *Stream {
	o := streamOptions{maxReply: DefaultMaxReply, grace: DefaultShutdownGrace, readBuf: 64 << 10}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Stream{
		addr:     addr,
		conn:     conn,
		opts:     o,
		sem:      make(chan struct{}, 1),
		events:   make(chan event),
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
		needSync: true,
		tag:      "gd" + strconv.FormatUint(rand.Uint64()>>16, 36),
	}
	go s.readLoop()
	return s
}

var _ Transport = (*Stream)(nil)

// Addr names the peer, e.g. "unix:/run/qga.sock".
func (s *Stream) Addr() string { return s.addr }

// Close closes the connection; a call in flight fails with ErrClosed.
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		err = s.conn.Close()
	})
	return err
}

// readLoop splits the byte stream into lines at '\n' and at the 0xFF
// sentinel, never holding more than one line over the limit's size. It hands
// lines over one at a time (unbuffered), so memory stays bounded even when
// nobody is asking.
func (s *Stream) readLoop() {
	defer close(s.done)
	buf := make([]byte, s.opts.readBuf)
	// line is reused across replies and each emitted line is an exact-size
	// copy: a 1 MiB file chunk then costs one allocation instead of the dozen
	// a growing slice makes. A big buffer is kept only while big replies
	// keep coming (a file transfer); the next small reply lets it go, so
	// thousands of idle sessions hold little.
	var line []byte
	skipping := false // discarding the rest of an oversized line
	send := func(ev event) bool {
		select {
		case s.events <- ev:
			return true
		case <-s.closing:
			return false
		}
	}
	for {
		n, err := s.conn.Read(buf)
		chunk := buf[:n]
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			j := bytes.IndexByte(chunk, 0xFF)
			end, sentinel := i, false
			if j >= 0 && (i < 0 || j < i) {
				end, sentinel = j, true
			}
			part := chunk
			if end >= 0 {
				part = chunk[:end]
			}
			if !skipping {
				if len(line)+len(part) > s.opts.maxReply {
					skipping = true
					line = line[:0]
					if !send(event{tooLarge: true}) {
						return
					}
				} else {
					line = append(line, part...)
				}
			}
			if end < 0 {
				break
			}
			chunk = chunk[end+1:]
			if !skipping && len(bytes.TrimSpace(line)) > 0 {
				if !send(event{line: bytes.Clone(line)}) {
					return
				}
			}
			if cap(line) > 64<<10 && len(line) < 64<<10 {
				line = nil
			}
			line, skipping = line[:0], false
			if sentinel && !send(event{sentinel: true}) {
				return
			}
		}
		if err != nil {
			s.readErr = err
			return
		}
	}
}

// Call sends one command and returns its "return" value. See Transport.
func (s *Stream) Call(ctx context.Context, name string, args any) (json.RawMessage, error) {
	start := time.Now()
	var rec LogRecord
	ret, err := s.call(ctx, name, args, &rec)
	if err != nil {
		err = &OpError{Addr: s.addr, Command: name, Err: err}
	}
	if s.opts.log != nil {
		rec.Addr, rec.Command, rec.Err, rec.Start, rec.Duration = s.addr, name, err, start, time.Since(start)
		s.opts.log(rec)
	}
	if err != nil {
		return nil, err
	}
	return ret, nil
}

func (s *Stream) call(ctx context.Context, name string, args any, rec *LogRecord) (json.RawMessage, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx)
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxError(ctx)
	}
	defer func() { <-s.sem }()

	if err := s.deadErr(); err != nil {
		return nil, err
	}
	s.seq++
	id := s.tag + "-" + strconv.FormatUint(s.seq, 10)
	req, err := json.Marshal(request{Execute: name, Arguments: args, ID: id})
	if err != nil {
		return nil, fmt.Errorf("encode arguments: %w", err)
	}
	rec.Request = req
	if s.needSync {
		if err := s.syncLocked(ctx); err != nil {
			return nil, fmt.Errorf("resync: %w", err)
		}
	}
	if err := s.write(ctx, append(req, '\n')); err != nil {
		return nil, err
	}
	if !SuccessResponse(name) {
		return nil, s.awaitAccepted(ctx, id, rec)
	}
	return s.awaitReply(ctx, id, rec)
}

type request struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
	ID        string `json:"id"`
}

type reply struct {
	Return lineRef         `json:"return"`
	Error  *Error          `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// lineRef keeps a reference into the reply line instead of copying it:
// json.Unmarshal hands UnmarshalJSON a slice of its input, and each line is
// a fresh buffer that nothing else writes, so holding on to it is safe and
// saves a copy of every (up to 90 MB) return value.
type lineRef []byte

func (r *lineRef) UnmarshalJSON(b []byte) error {
	*r = b
	return nil
}

// deadErr reports why the stream can no longer carry calls, or nil.
func (s *Stream) deadErr() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("%w: %v", ErrConnLost, s.readErr)
}

func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ctx.Err()
}

// write sends b, giving up when ctx ends. A write cut short leaves a partial
// request on the wire, so the next call resyncs (0xFF resets the agent's
// parser).
func (s *Stream) write(ctx context.Context, b []byte) error {
	s.writeMu.Lock()
	s.writeGen++
	gen := s.writeGen
	dl, _ := ctx.Deadline()
	s.conn.SetWriteDeadline(dl)
	s.writeMu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		s.writeMu.Lock()
		if s.writeGen == gen {
			s.conn.SetWriteDeadline(time.Unix(1, 0))
		}
		s.writeMu.Unlock()
	})
	_, err := s.conn.Write(b)
	stop()
	s.writeMu.Lock()
	s.writeGen++
	s.writeMu.Unlock()
	if err == nil {
		return nil
	}
	s.needSync = true
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The conn deadline (ctx's) can fire a hair before ctx.Done.
		return ErrTimeout
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("%w: %v", ErrConnLost, err)
}

// next returns the reader's next event, or why there is none.
func (s *Stream) next(ctx context.Context) (event, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.done:
		return event{}, s.deadErr()
	case <-ctx.Done():
		s.needSync = true
		return event{}, ctxError(ctx)
	}
}

// parseReply decodes one line as a reply. Noise before the first '{' (a
// serial channel's junk) is tolerated; anything else is malformed.
func parseReply(line []byte) (*reply, error) {
	line = bytes.TrimSpace(line)
	if i := bytes.IndexByte(line, '{'); i > 0 {
		line = line[i:]
	}
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("%w: %v in %s", ErrMalformed, err, sample(line))
	}
	if r.Error == nil && r.Return == nil {
		return nil, fmt.Errorf("%w: neither \"return\" nor \"error\" in %s", ErrMalformed, sample(line))
	}
	return &r, nil
}

// sample quotes the start of b for an error message.
func sample(b []byte) string {
	const max = 80
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// matches reports whether r answers the request tagged id. Agents that echo
// ids (qemu-ga does) are matched exactly; for the rest the resync guarantees
// that the next reply is ours.
func (s *Stream) matches(r *reply, id string) bool {
	if !s.echoIDs {
		return true
	}
	var got string
	return json.Unmarshal(r.ID, &got) == nil && got == id
}

// awaitReply reads until the reply to request id. With an agent that echoes
// ids, a line that does not parse cannot be the reply (its id is unreadable),
// so it is skipped as channel noise; the call then still gets its answer, or
// fails at its deadline with ErrMalformed (and ErrTimeout). Without ids the
// noise might be the reply itself, so it fails the call at once.
func (s *Stream) awaitReply(ctx context.Context, id string, rec *LogRecord) (json.RawMessage, error) {
	var noise error
	for {
		ev, err := s.next(ctx)
		if err != nil {
			if noise != nil {
				return nil, fmt.Errorf("%w after unparseable data: %w", err, noise)
			}
			return nil, err
		}
		switch {
		case ev.sentinel:
			continue
		case ev.tooLarge:
			s.needSync = true
			return nil, fmt.Errorf("%w: a reply exceeded %d bytes", ErrTooLarge, s.opts.maxReply)
		}
		r, err := parseReply(ev.line)
		if err != nil {
			s.needSync = true
			if s.echoIDs {
				if noise == nil {
					noise = err
				}
				continue
			}
			return nil, err
		}
		if !s.matches(r, id) {
			continue // stale: the answer to a request that timed out
		}
		rec.Reply = ev.line
		if r.Error != nil {
			return nil, r.Error
		}
		return json.RawMessage(r.Return), nil
	}
}

// awaitAccepted waits for the verdict on a command that replies nothing on
// success: EOF (the guest is going away) or silence for the grace period mean
// accepted; an error reply is returned.
func (s *Stream) awaitAccepted(ctx context.Context, id string, rec *LogRecord) error {
	t := time.NewTimer(s.opts.grace)
	defer t.Stop()
	for {
		select {
		case ev := <-s.events:
			if ev.sentinel {
				continue
			}
			if ev.tooLarge {
				s.needSync = true
				return fmt.Errorf("%w: a reply exceeded %d bytes", ErrTooLarge, s.opts.maxReply)
			}
			r, err := parseReply(ev.line)
			if err != nil {
				s.needSync = true
				if s.echoIDs {
					continue // noise: see awaitReply
				}
				return err
			}
			if !s.matches(r, id) {
				continue
			}
			rec.Reply = ev.line
			if r.Error != nil {
				return r.Error
			}
			return nil
		case <-s.done:
			if s.closed.Load() {
				return ErrClosed
			}
			return nil
		case <-t.C:
			// An error could still come later; make sure nobody mistakes it
			// for their reply.
			s.needSync = true
			return nil
		case <-ctx.Done():
			s.needSync = true
			return ctxError(ctx)
		}
	}
}

// syncLocked sends 0xFF and guest-sync-delimited with a fresh id and drops
// everything until the matching reply. The caller holds sem (or owns the
// stream exclusively, as DialStream does).
func (s *Stream) syncLocked(ctx context.Context) error {
	n := rand.Int64N(1<<53) + 1
	s.seq++
	tag := s.tag + "-" + strconv.FormatUint(s.seq, 10)
	req, _ := json.Marshal(request{Execute: "guest-sync-delimited", Arguments: map[string]int64{"id": n}, ID: tag})
	msg := make([]byte, 0, len(req)+2)
	msg = append(append(append(msg, 0xFF), req...), '\n')
	writeErr := s.write(ctx, msg)
	if errors.Is(writeErr, ErrTimeout) {
		return fmt.Errorf("%w (%w): the channel does not take the sync request", ErrSilent, ErrTimeout)
	}
	// On a failed write, still read what the peer sent before it hung up:
	// that says whether it was an agent at all.
	var junk []byte // the first thing that was not an agent reply
	notAgent := func(cause error) error {
		return fmt.Errorf("%w: %s does not speak the guest-agent protocol: it sent %s (%v)", ErrMalformed, s.addr, sample(junk), cause)
	}
	for {
		ev, err := s.next(ctx)
		if err != nil {
			if junk != nil && !errors.Is(err, ErrClosed) {
				return notAgent(err)
			}
			if writeErr != nil {
				return writeErr
			}
			if errors.Is(err, ErrTimeout) {
				return fmt.Errorf("%w (%w): no answer to guest-sync-delimited (no agent running, guest paused or booting, or another client holds the channel)", ErrSilent, ErrTimeout)
			}
			return err
		}
		if ev.sentinel {
			continue
		}
		if ev.tooLarge {
			if junk == nil {
				junk = []byte("an oversized line")
			}
			continue
		}
		r, err := parseReply(ev.line)
		if err != nil {
			if junk == nil {
				junk = bytes.Clone(ev.line[:min(len(ev.line), 200)])
			}
			if bytes.Contains(ev.line, []byte(`"guest-sync-delimited"`)) {
				return fmt.Errorf("%w: %s echoed the request back: not a guest agent", ErrMalformed, s.addr)
			}
			continue
		}
		if r.Error != nil || !sameNumber(r.Return, n) {
			continue // stale, or the agent's parse error for the 0xFF byte
		}
		var got string
		s.echoIDs = json.Unmarshal(r.ID, &got) == nil && got == tag
		s.needSync = false
		return nil
	}
}

func sameNumber(raw []byte, n int64) bool {
	v, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	return err == nil && v == n
}
