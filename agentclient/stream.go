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
	"syscall"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/guestdeck/guestdeck/internal/blocking"
)

// DefaultShutdownGrace is how long a command that replies nothing on success
// (guest-shutdown, guest-suspend-*) waits for an error before it counts as
// accepted.
const DefaultShutdownGrace = time.Second

// Option configures Dial and DialStream.
type Option func(*streamOptions)

type streamOptions struct {
	maxReply int // caps every command's limit; 0: the table's limits
	grace    time.Duration
	log      func(LogRecord)
	readBuf  int
	budget   *Budget
}

// WithMaxReply caps every reply line at n bytes, below the limit each
// command has anyway (Command.ReplyLimit); a longer reply fails its call
// with ErrTooLarge. n <= 0 keeps the commands' limits.
func WithMaxReply(n int) Option {
	return func(o *streamOptions) {
		if n > 0 {
			o.maxReply = n
		}
	}
}

// WithBudget charges the stream's reply lines beyond its read buffer to b,
// which many streams may share: see Budget. nil means no shared bound (each
// reply is still held to its command's limit).
func WithBudget(b *Budget) Option {
	return func(o *streamOptions) { o.budget = b }
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
// matches ErrTimeout), unless the connection waited all that time in the
// queue behind another client: then, as when the queue is full, it fails
// with ErrChannelHeld (see channel.go).
func DialStream(ctx context.Context, addr string, opts ...Option) (*Stream, error) {
	network, address, err := ParseAddress(addr)
	if err != nil {
		return nil, &OpError{Addr: addr, Err: err}
	}
	name := network + ":" + address
	conn, err := dialConn(ctx, network, address)
	if err != nil {
		if held, ok := heldDialError(network, err); ok {
			err = held
		} else {
			err = dialError(ctx, err)
		}
		return nil, &OpError{Addr: name, Err: err}
	}
	s := newStream(name, conn, opts...)
	armed := s.arm(ctx, time.Time{})
	err = s.syncLocked(ctx)
	armed.disarm()
	s.releaseBuffers()
	if err != nil {
		// Asked before Close: a queued connection that closes is gone.
		err = heldSyncError(conn, err)
		s.Close()
		return nil, &OpError{Addr: name, Command: "guest-sync-delimited", Err: err}
	}
	return s, nil
}

func dialConn(ctx context.Context, network, address string) (net.Conn, error) {
	if network == "unix" {
		return dialUnix(ctx, address)
	}
	if network != "vsock" {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	cid, port, err := parseVsock(address)
	if err != nil {
		return nil, err
	}
	// vsock.Dial takes no context; a connection made too late is closed.
	return blocking.CallUndo(ctx, func() (net.Conn, error) {
		c, err := vsock.Dial(cid, port, nil)
		if err != nil {
			return nil, err // not a nil *vsock.Conn in a non-nil net.Conn
		}
		return c, nil
	}, func(c net.Conn) { _ = c.Close() })
}

// dialUnix is net.Dialer.DialContext for a unix socket without what a
// unix address never needs: the resolver, the parallel and serial dialling
// of a list of addresses, a context per dial and two walks up the
// context's values for a trace (at 10,000 guests a dial a poll, that was a
// third of the dial's CPU beside its system calls). connect(2) on a unix
// socket never waits: it connects or fails at once (EAGAIN when the
// listener's queue is full), so the context is asked before and after it,
// which is all DialContext does with it there, and a connection made once
// the context has ended is closed. The errors are DialContext's, in its
// words ("dial unix /run/qga.sock: connect: no such file or directory").
func dialUnix(ctx context.Context, address string) (net.Conn, error) {
	raddr := &net.UnixAddr{Name: address, Net: "unix"}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: raddr, Err: dialCtxError{err}}
	}
	c, err := net.DialUnix("unix", nil, raddr)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		_ = c.Close()
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: raddr, Err: dialCtxError{err}}
	}
	return c, nil
}

// dialCtxError is the end of a dial's context as net's dialler says it
// ("i/o timeout", "operation was canceled"), still errors.Is the
// context's error.
type dialCtxError struct{ err error }

func (e dialCtxError) Error() string {
	if e.err == context.DeadlineExceeded {
		return "i/o timeout"
	}
	return "operation was canceled"
}
func (e dialCtxError) Timeout() bool   { return e.err == context.DeadlineExceeded }
func (e dialCtxError) Temporary() bool { return e.Timeout() }
func (e dialCtxError) Is(t error) bool { return t == e.err }

func dialError(ctx context.Context, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	// The OpError around this names the address already; net's own text
	// ("dial unix /p: connect: no such file or directory") would say it
	// again. Say the cause in the operator's words, keep the errno beneath.
	switch {
	case errors.Is(err, syscall.ENOENT):
		return &causeError{"no such socket", err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &causeError{"connection refused: nothing is listening", err}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &causeError{"permission denied", err}
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

// causeError is a plain-words cause that still unwraps to the system error.
type causeError struct {
	msg string
	err error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.err }

// NewStream wraps an established connection (for tests and custom
// transports). The caller still has to let the first Call synchronise: the
// stream starts unsynchronised.
func NewStream(addr string, conn net.Conn, opts ...Option) *Stream {
	return newStream(addr, conn, opts...)
}

// Stream is a Transport over one stream connection (unix, tcp, vsock). It
// keeps one request in flight (or one caller's Batch), tags each request with a fresh "id" (which
// qemu-ga echoes) and resynchronises after any client-side timeout, so a late
// reply is never handed to a later call. It does not redial: after the
// connection drops every call fails with ErrConnLost.
//
// The caller's goroutine reads its own reply, with the connection's
// deadlines taken from its context: no reader goroutine, no hand-over per
// reply, and nothing is read (or buffered here) while no call is waiting.
type Stream struct {
	addr string
	conn net.Conn
	rio  *rawIO // conn's descriptor, read and written raw (rawio_linux.go); nil: conn's own
	opts streamOptions

	sem     chan struct{} // one request in flight
	waiting atomic.Int64  // callers blocked on sem: a file transfer yields to them
	closed  atomic.Bool
	once    sync.Once

	// dlMu guards the connection's deadlines against a context's AfterFunc
	// that fires late: armGen tells the current call's watcher from an old
	// one, and cancelled keeps a cancelled call's deadline in the past.
	dlMu      sync.Mutex
	armGen    uint64
	cancelled bool
	watch     *streamWatch // the context Watch watches; nil: none
	armedBy   *streamWatch // the current call is armed by watch, not an AfterFunc of its own

	// Guarded by sem.
	needSync bool   // the next call must resync first
	echoIDs  bool   // the agent echoes request ids: match on them
	tag      string // per-stream random id prefix
	seq      uint64
	reqBuf   []byte  // the request lines being sent; from smallBufs, back at releaseBuffers
	reqBufp  *[]byte // the box reqBuf came in
	syncBuf  []byte  // the sync request being sent; likewise
	syncBufp *[]byte
	readErr  error // why the connection can no longer be read; sticky

	// The reader's state, guarded by sem. rbuf[rpos:rend] is read but not
	// yet taken; rbuf comes from a pool and goes back once it is drained, so
	// an idle stream holds no buffer.
	rbuf       []byte
	rbufp      *[]byte // what rbuf came in from the pool: it goes back in the same box
	rpos, rend int
	line       []byte // a line that spans reads; never grown past lim
	charged    int64  // bytes of line's capacity charged to opts.budget
	skipping   bool   // discarding the rest of a line, counting it in skipped
	skipped    int64
	lim        int    // the limit on the reply being read
	limCmd     string // the command it answers, for errors
}

// event is one unit from the reader: a reply line, the 0xFF sentinel, or a
// line that could not be taken (err: a *TooLargeError once the oversized
// line has been skipped to its end, a *BudgetError at once). A line is valid
// until the next read.
type event struct {
	line     []byte
	sentinel bool
	err      error
}

// readBufs recycles read buffers between calls: a fleet of thousands of
// mostly idle sessions then holds buffers only for the calls in flight.
var readBufs sync.Pool

// smallBufs recycles the request and sync lines' buffers (at most
// smallBufMax) the same way: kept by each stream, they were about a
// kilobyte of a 10,000-guest fleet's live heap per guest.
var smallBufs sync.Pool

const smallBufMax = 1 << 10

// takeSmall returns *b emptied, taking a buffer from smallBufs into it (and
// its box into *box) when it has none. Holds sem.
func takeSmall(b *[]byte, box **[]byte) []byte {
	if *b == nil {
		if p, ok := smallBufs.Get().(*[]byte); ok {
			*b, *box = (*p)[:0], p
		}
	}
	return (*b)[:0]
}

// keepSmall keeps b (grown from what takeSmall gave) for the rest of the
// call, unless it grew past smallBufMax (a file write's line): that one
// goes to the collector.
func keepSmall(b []byte, dst *[]byte, box **[]byte) {
	if cap(b) <= smallBufMax {
		*dst = b
		return
	}
	*dst, *box = nil, nil
}

// putSmall gives *b back to smallBufs, in its box.
func putSmall(b *[]byte, box **[]byte) {
	if *b == nil {
		return
	}
	p := *box
	if p == nil {
		p = new([]byte)
	}
	*p = (*b)[:0]
	smallBufs.Put(p)
	*b, *box = nil, nil
}

func newStream(addr string, conn net.Conn, opts ...Option) *Stream {
	o := streamOptions{grace: DefaultShutdownGrace, readBuf: 64 << 10}
	for _, opt := range opts {
		opt(&o)
	}
	return &Stream{
		addr:     addr,
		conn:     conn,
		rio:      newRawIO(conn),
		opts:     o,
		sem:      make(chan struct{}, 1),
		needSync: true,
		tag:      "gd" + strconv.FormatUint(rand.Uint64()>>16, 36),
	}
}

var _ Transport = (*Stream)(nil)

// Addr names the peer, e.g. "unix:/run/qga.sock".
func (s *Stream) Addr() string { return s.addr }

// Close closes the connection; a call in flight fails with ErrClosed.
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		s.dlMu.Lock()
		if s.watch != nil {
			s.watch.stop() // off its context's list of children
			s.watch = nil
		}
		s.dlMu.Unlock()
		err = s.conn.Close()
	})
	return err
}

// streamWatch is Watch's watch on one context.
type streamWatch struct {
	done  <-chan struct{} // the context's Done: what the watch is for
	stop  func() bool
	fired bool // the context ended; guarded by dlMu
}

// Watch makes the stream watch ctx's cancellation until Close (or until
// Watch is called with another context while no call armed by the watch
// is in flight). A call or batch under ctx, or
// under any context sharing its Done channel, then needs no watch of its
// own: each otherwise registers a context.AfterFunc (three allocations and
// a place among the context's children), which a fleet's polls made
// thousands of times a second under the same long-lived context. Calls
// under other contexts are watched as before.
func (s *Stream) Watch(ctx context.Context) {
	done := ctx.Done()
	if done == nil {
		return // never cancelled: nothing to watch
	}
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	if s.closed.Load() || s.watch != nil && s.watch.done == done {
		return
	}
	if s.watch != nil {
		if s.armedBy == s.watch {
			// Another caller's call in flight is armed by it: stopped,
			// that call's cancellation would go unseen. Kept; a later
			// Watch replaces it.
			return
		}
		s.watch.stop()
	}
	w := &streamWatch{done: done}
	s.watch = w
	w.stop = context.AfterFunc(ctx, func() {
		s.dlMu.Lock()
		defer s.dlMu.Unlock()
		w.fired = true
		if s.armedBy == w {
			s.cancelled = true
			s.conn.SetDeadline(time.Unix(1, 0))
		}
	})
}

// Call sends one command and returns its "return" value. See Transport.
func (s *Stream) Call(ctx context.Context, name string, args any) (json.RawMessage, error) {
	return s.roundTrip(ctx, name, args, nil)
}

// callInto is Call decoding the return value straight into out (when
// non-nil) from the read buffer, without copying it first. Client uses it.
func (s *Stream) callInto(ctx context.Context, name string, args, out any) error {
	_, err := s.roundTrip(ctx, name, args, out)
	return err
}

func (s *Stream) roundTrip(ctx context.Context, name string, args, out any) (json.RawMessage, error) {
	start := time.Now()
	if s.closed.Load() {
		return nil, &OpError{Addr: s.addr, Command: name, Err: ErrClosed}
	}
	if ctx.Err() != nil {
		return nil, &OpError{Addr: s.addr, Command: name, Err: ctxError(ctx)}
	}
	if err := s.acquire(ctx); err != nil {
		return nil, &OpError{Addr: s.addr, Command: name, Err: err}
	}
	defer func() { <-s.sem }()
	var rec LogRecord
	ret, err := s.call(ctx, name, args, out, &rec)
	if err != nil {
		err = &OpError{Addr: s.addr, Command: name, Err: err}
	}
	if s.opts.log != nil {
		rec.Addr, rec.Command, rec.Err, rec.Start, rec.Duration = s.addr, name, err, start, time.Since(start)
		s.opts.log(rec)
	}
	s.releaseBuffers() // after the log: rec.Reply points into them
	if err != nil {
		return nil, err
	}
	return ret, nil
}

// acquire takes sem, counting the wait in waiting so that a file transfer
// holding it (see pipe) lets this caller in between two chunks.
func (s *Stream) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

// call runs one command. Holds sem.
func (s *Stream) call(ctx context.Context, name string, args, out any, rec *LogRecord) (json.RawMessage, error) {
	if err := s.deadErr(); err != nil {
		return nil, err
	}
	s.seq++
	req, id, limit, err := s.encodeRequest(name, args)
	if err != nil {
		return nil, err
	}
	limit = callReplyLimit(ctx, limit)
	rec.Request = req[:len(req)-1]
	armed := s.arm(ctx, time.Time{})
	defer armed.disarm()
	quiet := !SuccessResponse(name)
	// A command that answers nothing when it works is preceded by a sync
	// even on a stream in step: its silence is read as acceptance, and
	// only an agent that answered just now is taken to have heard it (a
	// kept connection's agent may have hung since its last poll).
	if s.needSync || quiet {
		var restore time.Time
		if quiet {
			restore = s.boundQuietSync(ctx)
		}
		err := s.syncLocked(ctx)
		if !restore.IsZero() {
			s.setDeadline(restore)
		}
		if err != nil {
			if quiet {
				return nil, fmt.Errorf("%w: the agent did not answer right before it (%w)", ErrNotSent, err)
			}
			return nil, fmt.Errorf("resync: %w", err)
		}
	}
	if err := s.write(ctx, req); err != nil {
		return nil, err
	}
	s.expect(name, limit)
	if quiet {
		return nil, s.awaitAccepted(ctx, id, rec)
	}
	var ip inPlace
	var p *inPlace
	if decodesInPlace(out) {
		ip.out, p = out, &ip
	}
	ret, err := s.awaitReplyInPlace(ctx, id, rec, p)
	if err != nil {
		return nil, err
	}
	if p != nil && p.ok {
		p.commit()
		return nil, nil
	}
	p.discard()
	if out != nil {
		if err := decodeReturn(ret, out); err != nil {
			return nil, &returnError{err}
		}
		return nil, nil
	}
	if !json.Valid(ret) {
		return nil, &returnError{fmt.Errorf("invalid return value %s", sample(ret))}
	}
	return bytes.Clone(ret), nil // ret points into the read buffer
}

// boundQuietSync makes the sync before a command that answers nothing on
// success end its grace period before ctx's deadline, and returns that
// deadline for the command (zero: nothing moved). An agent that answered
// the sync later than that and then took the command would be silent for
// less than the grace period before the deadline, and its acceptance came
// back as a timeout (a suspend's ledger entry forgotten): it is not sent
// the command at all (ErrNotSent). With less than the grace period left
// to begin with, the sync keeps the whole deadline, as the command does.
// Holds sem; the stream is armed by ctx.
func (s *Stream) boundQuietSync(ctx context.Context) time.Time {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Time{}
	}
	by := dl.Add(-s.opts.grace)
	if !time.Now().Before(by) {
		return time.Time{}
	}
	s.setDeadline(by)
	return dl
}

// expect sets the limit for the reply about to be read: the command's,
// under the stream's cap. Holds sem.
func (s *Stream) expect(name string, limit int) {
	if s.opts.maxReply > 0 {
		limit = min(limit, s.opts.maxReply)
	}
	s.lim, s.limCmd = limit, name
}

// encodeRequest writes the request line for name (newline included) into
// the stream's request buffer, tagged with the id of s.seq, and returns it,
// the id and the limit on its reply. Both slices stay valid until the next
// call. Holds sem.
func (s *Stream) encodeRequest(name string, args any) (req, id []byte, limit int, err error) {
	b, i, j, limit, err := s.appendRequest(takeSmall(&s.reqBuf, &s.reqBufp), name, args)
	if err != nil {
		return nil, nil, 0, err
	}
	s.keepReqBuf(b)
	return b, b[i:j], limit, nil
}

// appendRequest appends the request line for name, tagged with the id of
// s.seq, says where the id is, and sizes the limit on its reply from the
// command table and the arguments. Holds sem.
func (s *Stream) appendRequest(b []byte, name string, args any) (out []byte, idStart, idEnd, limit int, err error) {
	var a []byte
	if args != nil {
		if a, err = json.Marshal(args); err != nil {
			return b, 0, 0, 0, fmt.Errorf("encode arguments: %w", err)
		}
	}
	limit = lookupOrRaw(name).ReplyLimit(a)
	b = append(b, `{"execute":`...)
	b = appendJSONString(b, name)
	if a != nil {
		b = append(append(b, `,"arguments":`...), a...)
	}
	b = append(b, `,"id":"`...)
	idStart = len(b)
	b = strconv.AppendUint(append(append(b, s.tag...), '-'), s.seq, 10)
	idEnd = len(b)
	return append(b, "\"}\n"...), idStart, idEnd, limit, nil
}

// keepReqBuf keeps the request buffer until releaseBuffers; a big one (a
// file write) goes.
func (s *Stream) keepReqBuf(b []byte) { keepSmall(b, &s.reqBuf, &s.reqBufp) }

// appendJSONString appends v as a JSON string; command names need no
// escaping, anything else goes through encoding/json.
func appendJSONString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			q, _ := json.Marshal(v)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), v...), '"')
}

// reply is a parsed reply line; ret and id are slices of the line.
type reply struct {
	ret []byte // nil if the reply is an error
	err *Error
	id  []byte
}

// deadErr reports why the stream can no longer carry calls, or nil. Holds
// sem.
func (s *Stream) deadErr() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.readErr != nil {
		return fmt.Errorf("%w: %v", ErrConnLost, s.readErr)
	}
	return nil
}

func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ctx.Err()
}

// arm bounds the connection's reads and writes by ctx for one call: its
// deadline (or by, when that is earlier; zero: none) becomes the
// connection's, and a cancellation moves that into the past. The returned
// value disarms. Holds sem.
func (s *Stream) arm(ctx context.Context, by time.Time) armed {
	dl, ok := ctx.Deadline()
	if !by.IsZero() && (!ok || by.Before(dl)) {
		dl = by
	}
	done := ctx.Done()
	s.dlMu.Lock()
	s.armGen++
	gen := s.armGen
	s.cancelled = false
	s.armedBy = nil
	if w := s.watch; done == nil || w != nil && w.done == done {
		// Never cancelled, or watched already (Watch): no watch of its
		// own.
		if w != nil && w.done == done {
			s.armedBy = w
			s.cancelled = w.fired
		}
		if s.cancelled {
			dl = time.Unix(1, 0)
		}
		s.conn.SetDeadline(dl)
		s.dlMu.Unlock()
		return armed{s: s}
	}
	s.conn.SetDeadline(dl)
	s.dlMu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		s.dlMu.Lock()
		if s.armGen == gen {
			s.cancelled = true
			s.conn.SetDeadline(time.Unix(1, 0))
		}
		s.dlMu.Unlock()
	})
	return armed{s, stop}
}

// armed is one arm's watch on its context (a value, not a closure: one
// allocation less for every call and batch). stop is nil when the call
// needed no watch of its own.
type armed struct {
	s    *Stream
	stop func() bool
}

// disarm ends the watch: a cancellation after it moves no deadline.
func (a armed) disarm() {
	if a.stop != nil {
		a.stop()
	}
	a.s.dlMu.Lock()
	a.s.armGen++
	a.s.armedBy = nil
	a.s.dlMu.Unlock()
}

// setDeadline moves the read and write deadline, unless the call was
// cancelled.
func (s *Stream) setDeadline(t time.Time) {
	s.dlMu.Lock()
	if !s.cancelled {
		s.conn.SetDeadline(t)
	}
	s.dlMu.Unlock()
}

// setReadDeadline moves the read deadline, unless the call was cancelled.
func (s *Stream) setReadDeadline(t time.Time) {
	s.dlMu.Lock()
	if !s.cancelled {
		s.conn.SetReadDeadline(t)
	}
	s.dlMu.Unlock()
}

// write sends b within the armed deadline. A write cut short leaves a
// partial request on the wire, so the next call resyncs (0xFF resets the
// agent's parser).
func (s *Stream) write(ctx context.Context, b []byte) error {
	var err error
	if s.rio != nil {
		_, err = s.rio.Write(b)
	} else {
		_, err = s.conn.Write(b)
	}
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

// next returns the next event from the connection, reading as needed
// within the armed deadline. Holds sem.
func (s *Stream) next(ctx context.Context) (event, error) {
	for {
		if ev, ok := s.scan(); ok {
			return ev, nil
		}
		if err := s.fill(ctx); err != nil {
			return event{}, err
		}
	}
}

// fill reads more bytes; scan has taken everything buffered before.
func (s *Stream) fill(ctx context.Context) error {
	if s.readErr != nil {
		return s.deadErr()
	}
	if s.rbuf == nil {
		// Only a buffer of this stream's size: a larger one (from a stream
		// with another WithReadBuffer) would take whole replies the budget
		// is meant to charge for, as bytes beyond the read buffer's size.
		if b, ok := readBufs.Get().(*[]byte); ok && cap(*b) == s.opts.readBuf {
			s.rbuf, s.rbufp = (*b)[:cap(*b)], b
		} else {
			s.rbuf, s.rbufp = make([]byte, s.opts.readBuf), nil
		}
	}
	var n int
	var err error
	if s.rio != nil {
		n, err = s.rio.Read(s.rbuf)
	} else {
		n, err = s.conn.Read(s.rbuf)
	}
	s.rpos, s.rend = 0, n
	if err == nil || n > 0 {
		return nil // take the bytes first: a lasting error comes back
	}
	switch {
	case s.closed.Load():
		return ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.needSync = true
		if ctx.Err() != nil {
			return ctxError(ctx)
		}
		return errDeadline
	}
	s.readErr = err
	return s.deadErr()
}

// errDeadline is a read deadline that passed before ctx ended: ctx's own
// deadline a hair early (a timeout), or awaitAccepted's grace period.
var errDeadline = ErrTimeout

// scan takes the next event from the buffered bytes if one is complete,
// splitting lines at '\n' and at the 0xFF sentinel. A line over the limit
// is skipped, not buffered, and counted to its end; the line buffer never
// grows past the limit, and what it holds beyond the read buffer's size is
// charged to the budget. Holds sem.
func (s *Stream) scan() (event, bool) {
	for s.rpos < s.rend {
		chunk := s.rbuf[s.rpos:s.rend]
		if chunk[0] == 0xFF && len(s.line) == 0 && !s.skipping {
			s.rpos++
			return event{sentinel: true}, true
		}
		end := bytes.IndexByte(chunk, '\n')
		lim := chunk
		if end >= 0 {
			lim = chunk[:end]
		}
		if j := bytes.IndexByte(lim, 0xFF); j >= 0 {
			end = j
		}
		part := chunk
		if end >= 0 {
			part = chunk[:end]
		}
		if s.skipping {
			s.skipped += int64(len(part))
			if end < 0 {
				s.rpos = s.rend
				return event{}, false
			}
			s.takeEnd(chunk, end)
			s.skipping = false
			return event{err: &TooLargeError{Command: s.limCmd, Bytes: s.skipped, Limit: s.lim}}, true
		}
		if len(s.line)+len(part) > s.lim {
			s.skipFrom(int64(len(s.line)))
			continue // the skip above counts part
		}
		if end < 0 {
			if err := s.grow(len(s.line) + len(part)); err != nil {
				s.skipFrom(int64(len(s.line) + len(part)))
				s.rpos = s.rend
				return event{err: err}, true
			}
			s.line = append(s.line, part...)
			s.rpos = s.rend
			return event{}, false
		}
		// Take the line and a '\n'; a 0xFF stays for the sentinel above.
		s.takeEnd(chunk, end)
		ln := part
		if len(s.line) > 0 {
			if err := s.grow(len(s.line) + len(part)); err != nil {
				s.dropLine()
				return event{err: err}, true
			}
			s.line = append(s.line, part...)
			ln = s.line
			s.line = s.line[:0] // ln stays valid until the next read
		}
		if len(bytes.TrimSpace(ln)) == 0 {
			continue
		}
		return event{line: ln}, true
	}
	return event{}, false
}

// takeEnd consumes chunk up to end, and the '\n' there if it is one.
func (s *Stream) takeEnd(chunk []byte, end int) {
	s.rpos += end
	if chunk[end] == '\n' {
		s.rpos++
	}
}

// skipFrom starts discarding the current line, n bytes of which have come.
func (s *Stream) skipFrom(n int64) {
	s.dropLine()
	s.skipping, s.skipped = true, n
}

// grow makes room for a line of need bytes (need <= lim): doubling, but
// never past the limit, and charging the budget for what exceeds the read
// buffer's size. Over budget, nothing changes and the call fails.
func (s *Stream) grow(need int) error {
	if need <= cap(s.line) {
		return nil
	}
	n := min(max(need, 2*cap(s.line), 512), max(s.lim, need))
	if err := s.charge(n); err != nil {
		if n == need {
			return err
		}
		// The doubling does not fit: the exact need might.
		if s.charge(need) != nil {
			return err
		}
		n = need
	}
	nl := make([]byte, len(s.line), n)
	copy(nl, s.line)
	s.line = nl
	return nil
}

// charge makes the budget hold what a line buffer of n bytes needs beyond
// the read buffer's size.
func (s *Stream) charge(n int) error {
	b := s.opts.budget
	if b == nil {
		return nil
	}
	want := max(int64(n-s.opts.readBuf), 0)
	d := want - s.charged
	if d <= 0 {
		return nil
	}
	if !b.tryAcquire(d) {
		return &BudgetError{Command: s.limCmd, Need: d, InUse: b.InUse(), Limit: b.Limit()}
	}
	s.charged = want
	return nil
}

// dropLine lets the line buffer go and gives its charge back.
func (s *Stream) dropLine() {
	s.line = nil
	if s.charged > 0 {
		s.opts.budget.release(s.charged)
		s.charged = 0
	}
}

// releaseBuffers gives the read buffer back once drained, and the line
// buffer (with its charge) always: the next call starts small. A line cut
// short by the call's end is skipped to its end by whoever reads next (a
// resync). Holds sem.
func (s *Stream) releaseBuffers() {
	if s.rbuf != nil && s.rpos == s.rend {
		// Back in the box it came in, if any: a new one per call was an
		// allocation per poll.
		b := s.rbufp
		if b == nil {
			b = new([]byte)
		}
		*b = s.rbuf[:0]
		readBufs.Put(b)
		s.rbuf, s.rbufp, s.rpos, s.rend = nil, nil, 0, 0
	}
	if len(s.line) > 0 {
		s.skipFrom(int64(len(s.line)))
	}
	s.dropLine()
	// Sent and logged by now: the request lines go back too.
	putSmall(&s.reqBuf, &s.reqBufp)
	putSmall(&s.syncBuf, &s.syncBufp)
}

// cutShort is the error for a read that failed while a line was being
// skipped for its size: the line is larger than the bytes counted so far.
func (s *Stream) cutShort(err error) error {
	if s.skipping {
		return &TooLargeError{Command: s.limCmd, Bytes: s.skipped, Limit: s.lim, Cause: err}
	}
	return err
}

// parseReply splits one line into a reply. Noise before the first '{' (a
// serial channel's junk) is tolerated; anything else is malformed. The
// return value is delimited, not validated: its decoder validates it.
func parseReply(line []byte) (reply, error) { return parseReplyInPlace(line, nil) }

// parseReplyInPlace is parseReply decoding the return value into p (nil:
// none) in the same scan (scanEnvelopeInPlace): p.ok then says it was. A
// line that does not parse is parsed again without p, for parseReply's
// error: the in-place decoder may end a value where delimiting would not
// ("12x" as a number), and what is wrong with the line is the two passes'
// to say.
func parseReplyInPlace(line []byte, p *inPlace) (reply, error) {
	orig := line
	line = bytes.TrimSpace(line)
	if i := bytes.IndexByte(line, '{'); i > 0 {
		line = line[i:]
	}
	env, err := scanEnvelopeInPlace(line, p)
	if err != nil {
		if p != nil {
			p.ok = false
			return parseReplyInPlace(orig, nil)
		}
		return reply{}, fmt.Errorf("%w: %v in %s", ErrMalformed, err, sample(line))
	}
	r := reply{ret: env.ret, id: env.id}
	if env.errRaw != nil {
		e, err := decodeError(env.errRaw)
		if err != nil {
			return reply{}, fmt.Errorf("%w: %v in %s", ErrMalformed, err, sample(line))
		}
		r.err = &e
	}
	if r.err == nil && r.ret == nil {
		return reply{}, fmt.Errorf("%w: neither \"return\" nor \"error\" in %s", ErrMalformed, sample(line))
	}
	return r, nil
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
func (s *Stream) matches(r *reply, id []byte) bool {
	return !s.echoIDs || idIs(r.id, id)
}

// awaitReply reads until the reply to request id. With an agent that echoes
// ids, a line that does not parse cannot be the reply (its id is unreadable),
// so it is skipped as channel noise; the call then still gets its answer, or
// fails at its deadline with ErrMalformed (and ErrTimeout). Without ids the
// noise might be the reply itself, so it fails the call at once. The return
// value points into the read buffer.
func (s *Stream) awaitReply(ctx context.Context, id []byte, rec *LogRecord) ([]byte, error) {
	return s.awaitReplyInPlace(ctx, id, rec, nil)
}

// awaitReplyInPlace is awaitReply decoding the return value into p (nil:
// none) as the reply is read (parseReplyInPlace): p.ok then says it was,
// and p holds nothing of a line that was not the reply.
func (s *Stream) awaitReplyInPlace(ctx context.Context, id []byte, rec *LogRecord, p *inPlace) ([]byte, error) {
	var noise error
	for {
		ev, err := s.next(ctx)
		if err != nil {
			err = s.cutShort(err)
			if noise != nil {
				return nil, fmt.Errorf("%w after unparseable data: %w", err, noise)
			}
			return nil, err
		}
		switch {
		case ev.sentinel:
			continue
		case ev.err != nil:
			// Without buffering the line its id is unknown: fail the
			// call, and make sure nobody later takes a reply for theirs
			// that was meant for this one.
			s.needSync = true
			return nil, ev.err
		}
		r, err := parseReplyInPlace(ev.line, p)
		if err != nil {
			p.discard()
			s.needSync = true
			if s.echoIDs {
				if noise == nil {
					noise = err
				}
				continue
			}
			return nil, err
		}
		if !s.matches(&r, id) {
			p.discard()
			continue // stale: the answer to a request that timed out
		}
		rec.Reply = ev.line
		if r.err != nil {
			p.discard()
			return nil, r.err
		}
		return r.ret, nil
	}
}

// awaitAccepted waits for the verdict on a command that replies nothing on
// success: EOF (the guest is going away) or silence for the grace period mean
// accepted; an error reply is returned.
func (s *Stream) awaitAccepted(ctx context.Context, id []byte, rec *LogRecord) error {
	grace := time.Now().Add(s.opts.grace)
	graceSet := false
	if dl, ok := ctx.Deadline(); !ok || grace.Before(dl) {
		s.setReadDeadline(grace)
		graceSet = true
	}
	for {
		ev, err := s.next(ctx)
		switch {
		case err == nil:
		case errors.Is(err, ErrClosed):
			return ErrClosed
		case IsConnLost(err):
			return nil // EOF: the guest is going away
		case err == errDeadline && graceSet && ctx.Err() == nil:
			// The grace period passed. An error could still come later;
			// the resync (next's deadline set needSync) makes sure nobody
			// mistakes it for their reply.
			return nil
		default:
			return s.cutShort(err)
		}
		if ev.sentinel {
			continue
		}
		if ev.err != nil {
			s.needSync = true
			return ev.err
		}
		r, err := parseReply(ev.line)
		if err != nil {
			s.needSync = true
			if s.echoIDs {
				continue // noise: see awaitReply
			}
			return err
		}
		if !s.matches(&r, id) {
			continue
		}
		rec.Reply = ev.line
		if r.err != nil {
			return r.err
		}
		return nil
	}
}

// syncLocked sends 0xFF and guest-sync-delimited with a fresh id and drops
// everything until the matching reply. The caller holds sem and has armed
// ctx (or owns the stream exclusively, as DialStream does).
func (s *Stream) syncLocked(ctx context.Context) error {
	n := rand.Int64N(1<<53) + 1
	s.seq++
	// Encoded by hand into its own buffer (a call's request may be waiting
	// in reqBuf): the tag and the number need no escaping, and a sync goes
	// with every shared-channel poll.
	msg := append(takeSmall(&s.syncBuf, &s.syncBufp), 0xFF)
	msg = append(msg, `{"execute":"guest-sync-delimited","arguments":{"id":`...)
	msg = strconv.AppendInt(msg, n, 10)
	msg = append(msg, `},"id":"`...)
	tagAt := len(msg)
	msg = strconv.AppendUint(append(append(msg, s.tag...), '-'), s.seq, 10)
	tagEnd := len(msg)
	msg = append(msg, "\"}\n"...)
	keepSmall(msg, &s.syncBuf, &s.syncBufp)
	// Stale replies come before the sync's: skipped at the sync's small
	// limit, not buffered at theirs.
	s.expect("guest-sync-delimited", lookupOrRaw("guest-sync-delimited").MaxReply)
	writeErr := s.write(ctx, msg)
	if errors.Is(writeErr, ErrTimeout) {
		return &silentError{why: "the channel does not take the sync request in time"}
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
				// The call's OpError names guest-sync-delimited.
				return &silentError{why: "no answer in time (no agent running, guest paused or booting, or another client holds the channel)"}
			}
			return err
		}
		if ev.sentinel {
			continue
		}
		if ev.err != nil {
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
		if r.err != nil || !sameNumber(r.ret, n) {
			continue // stale, or the agent's parse error for the 0xFF byte
		}
		s.echoIDs = idIs(r.id, msg[tagAt:tagEnd])
		s.needSync = false
		return nil
	}
}

func sameNumber(raw []byte, n int64) bool {
	v, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	return err == nil && v == n
}
