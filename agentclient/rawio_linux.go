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
