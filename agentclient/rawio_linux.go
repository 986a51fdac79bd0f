//go:build !386

package agentclient

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawIO reads and writes a unix or tcp socket with raw system calls inside
// the runtime's poller (syscall.RawConn): the descriptor is non-blocking,
// so a read or write returns at once, with EAGAIN when it would block,
// and the poller then waits for the descriptor as net.Conn does, under the
// same deadlines. What it spares is the runtime's entry to and exit from a
// blocking system call around each one, which wakes the runtime's monitor
// thread whenever the process was idle: at 10,000 guests, between polls it
// nearly always is, and those wake-ups were some 6 % of the dashboard's
// CPU (README, Performance).
type rawIO struct {
	rc syscall.RawConn

	// For errors in net.Conn's words ("read unix @->/run/qga.sock: read:
	// connection reset by peer"), which reach the operator.
	network      string
	laddr, raddr net.Addr

	// One call's arguments and results, for the closures below, which are
	// made once per stream: a closure made per call would be allocated
	// per call. Only the stream's one call at a time uses them (sem).
	buf    []byte
	n      int
	errno  syscall.Errno
	readFn func(fd uintptr) bool
	wrFn   func(fd uintptr) bool

	// SendRead's request and how much of it went, for sendRdFn (sendRead).
	req       []byte
	sent      int
	sendErrno syscall.Errno
	sendRdFn  func(fd uintptr) bool
}

// newRawIO returns a rawIO for conn, or nil when conn is not a socket it
// knows (an ssh channel, a test's pipe): those keep net.Conn's Read and
// Write.
func newRawIO(conn net.Conn) *rawIO {
	var sc syscall.Conn
	var network string // what net.Conn's errors say (the dialled network: DialStream's)
	switch c := conn.(type) {
	case *net.UnixConn:
		sc, network = c, "unix"
	case *net.TCPConn:
		sc, network = c, "tcp"
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc, network: network, laddr: conn.LocalAddr(), raddr: conn.RemoteAddr()}
	r.readFn = func(fd uintptr) bool { return r.do(syscall.SYS_RECVFROM, fd) }
	r.wrFn = func(fd uintptr) bool { return r.do(syscall.SYS_SENDTO, fd) }
	r.sendRdFn = r.sendRead
	return r
}

// do makes one read or write of r.buf (sysIO); false (EAGAIN) has the
// poller wait for the descriptor and call again.
func (r *rawIO) do(trap, fd uintptr) bool {
	for {
		n, e := sysIO(trap, fd, r.buf)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.n, r.errno = n, e
		return true
	}
}

// opError is err (from the poller: the deadline, a closed connection) or
// errno in net.Conn's words, Op "read" or "write" (the poller's say
// "raw-read").
func (r *rawIO) opError(op string, err error, errno syscall.Errno) error {
	if err != nil {
		if oe, ok := err.(*net.OpError); ok {
			e := *oe
			e.Op = op
			return &e
		}
		return err
	}
	return &net.OpError{Op: op, Net: r.network, Source: r.laddr, Addr: r.raddr, Err: os.NewSyscallError(op, errno)}
}

// Read is net.Conn's Read: io.EOF at the peer's end, any other error as a
// *net.OpError in the same words.
func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.buf, r.n, r.errno = b, 0, 0
	err := r.rc.Read(r.readFn)
	r.buf = nil
	switch {
	case err != nil, r.errno != 0:
		return 0, r.opError("read", err, r.errno)
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// SendRead sends req and then reads its reply's first bytes into b, in
// one wait of the poller: the read that would follow a write at once
// nearly always finds nothing yet (the peer has not run), and it costs a
// system call and a pass through the poller a request (at 10,000 guests,
// a third of the reads). It cannot simply be left out: the poller forgets
// a readiness it saw before the wait began (internal/poll's prepareRead),
// so a reply that came between the write and the wait would be waited
// for until the deadline. Sent from inside the read's own wait, the
// request goes after the poller's reset, so its reply's arrival is seen.
//
// sent is how much of req went: less than all (the socket's buffer full,
// or an error, in werr) and nothing was read; the caller writes the rest
// with Write and reads as usual. With all of req sent, n and err are
// Read's for b.
func (r *rawIO) SendRead(req, b []byte) (sent int, werr error, n int, err error) {
	r.req, r.sent, r.sendErrno = req, 0, 0
	r.buf, r.n, r.errno = b, 0, 0
	err = r.rc.Read(r.sendRdFn)
	r.req, r.buf = nil, nil
	sent = r.sent
	if sent < len(req) {
		if r.sendErrno != 0 {
			werr = r.opError("write", nil, r.sendErrno)
		}
		return sent, werr, 0, nil // the caller's Write meets err again, in its own words
	}
	switch {
	case err != nil, r.errno != 0:
		return sent, nil, 0, r.opError("read", err, r.errno)
	case r.n == 0:
		return sent, nil, 0, io.EOF
	}
	return sent, nil, r.n, nil
}

// sendRead is SendRead's step in the poller's wait: at the first call the
// request, and a wait for the reply (false) if all of it went; after it,
// a read.
func (r *rawIO) sendRead(fd uintptr) bool {
	if r.req == nil {
		return r.do(syscall.SYS_RECVFROM, fd)
	}
	req := r.req
	r.req = nil
	for {
		n, e := sysIO(syscall.SYS_SENDTO, fd, req)
		switch e {
		case syscall.EINTR:
			continue
		case 0:
			r.sent = n
			if n < len(req) {
				return true // the rest by Write, which waits for room
			}
			if testHookSent != nil {
				testHookSent()
			}
			return false
		case syscall.EAGAIN:
			return true
		}
		r.sendErrno = e
		return true
	}
}

// testHookSent, when set by a test, runs after SendRead's request went
// and before the wait for its reply.
var testHookSent func()

// Write writes all of b, waiting for room as net.Conn's Write does.
func (r *rawIO) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		r.buf, r.n, r.errno = b[done:], 0, 0
		err := r.rc.Write(r.wrFn)
		r.buf = nil
		switch {
		case err != nil, r.errno != 0:
			return done, r.opError("write", err, r.errno)
		case r.n <= 0:
			return done, io.ErrShortWrite // write(2) of a non-empty buffer does not return 0
		}
		done += r.n
	}
	return done, nil
}
