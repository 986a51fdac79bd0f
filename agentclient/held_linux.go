package agentclient

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// sock_diag for AF_UNIX (linux/sock_diag.h, linux/unix_diag.h); the
// syscall package has the netlink plumbing but not these.
const (
	sockDiagByFamily = 20   // SOCK_DIAG_BY_FAMILY
	netlinkSockDiag  = 4    // NETLINK_SOCK_DIAG
	udiagShowName    = 0x1  // UDIAG_SHOW_NAME
	udiagShowVFS     = 0x2  // UDIAG_SHOW_VFS
	udiagShowPeer    = 0x4  // UDIAG_SHOW_PEER
	udiagShowRQLen   = 0x10 // UDIAG_SHOW_RQLEN
	unixDiagName     = 0    // UNIX_DIAG_NAME attribute
	unixDiagVFS      = 1    // UNIX_DIAG_VFS attribute: struct unix_diag_vfs
	unixDiagPeer     = 2    // UNIX_DIAG_PEER attribute
	unixDiagRQLen    = 4    // UNIX_DIAG_RQLEN attribute: struct unix_diag_rqlen
	tcpEstablished   = 1    // a connected unix socket's state
	tcpListen        = 10   // a listening unix socket's state
	nlmsgHdrLen      = 16   // struct nlmsghdr
	unixDiagReqLen   = 24   // struct unix_diag_req
	unixDiagMsgLen   = 16   // struct unix_diag_msg
	diagMaxReplies   = 1e6  // bound on a dump's sockets
	diagRecvBuf      = 1 << 15
	diagNoCookie     = 0xFFFFFFFF
)

// unixSock is one unix socket as sock_diag reports it, with the
// attributes the dump asked for.
type unixSock struct {
	state     uint8
	ino, peer uint32
	name      []byte // the bound address; an accepted server end has its listener's
	// vfs: the file the socket is bound to (UNIX_DIAG_VFS), if any: the
	// kernel's device number (not stat's encoding) and the inode's low 32
	// bits.
	vfs            bool
	vfsDev, vfsIno uint32
	// rqueue: for a listener, the connections waiting in its queue
	// (UNIX_DIAG_RQLEN).
	rqueue uint32
}

// channelQueue says whether c waits in a listener's queue (not accepted
// yet) and, if so, whether another connection to the same listener has been
// accepted (a client holds the channel) or none has (the agent takes no
// connections at all: hung or stopped).
//
// The kernel creates the server's end of a unix connection at connect(2)
// and gives it an inode (and lists it) only when accept(2) takes it. So one
// sock_diag dump of the connected unix sockets (one netlink exchange,
// unprivileged) says both: c's own entry names its peer's inode, 0 while
// queued; and an accepted server end carries its listener's address, the
// one c is connected to (getpeername), so one with a peer is the holder.
func channelQueue(c *net.UnixConn) (queued, held bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false, err
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil {
		return false, false, err
	}
	if serr != nil {
		return false, false, fmt.Errorf("fstat: %w", serr)
	}
	ra, ok := c.RemoteAddr().(*net.UnixAddr)
	if !ok || ra == nil || ra.Name == "" || ra.Name[0] == '@' {
		return false, false, errors.New("no listener address")
	}
	idx, err := connDumps.since(time.Now())
	if err != nil {
		return false, false, err
	}
	return idx.queueOf(uint32(st.Ino), ra.Name)
}

// connIndex is one dump of the connected unix sockets, indexed for
// channelQueue: each socket's peer, and for each listener address the
// accepted server ends that have a peer (clients being served).
type connIndex struct {
	peer   map[uint32]uint32
	served map[string][]uint32
}

func newConnIndex(socks []unixSock) *connIndex {
	x := &connIndex{peer: make(map[uint32]uint32, len(socks)), served: make(map[string][]uint32)}
	for _, s := range socks {
		x.peer[s.ino] = s.peer
		if s.ino != 0 && s.peer != 0 && len(s.name) > 0 {
			x.served[string(s.name)] = append(x.served[string(s.name)], s.ino)
		}
	}
	return x
}

// queueOf reads channelQueue's answer for the socket ino, connected to the
// listener bound at name.
func (x *connIndex) queueOf(ino uint32, name string) (queued, held bool, err error) {
	peer, found := x.peer[ino]
	if !found {
		return false, false, errors.New("sock_diag: the connection is not listed")
	}
	if peer != 0 {
		return false, false, nil
	}
	for _, o := range x.served[name] {
		if o != ino {
			return true, true, nil
		}
	}
	return true, false, nil
}

// connDumps shares dumps between the connections that ask at once. Each
// silent sync asks, and a dump walks every unix socket on the machine (30,000
// at 10,000 guests: 10-20 ms of CPU): when thousands of syncs ran out of
// time together on a starved machine, a dump each made it starve more. A
// dump answers every question asked before it began, so one in flight, or
// one just done, serves them all. It is process-wide state because what it
// caches is: the kernel's socket table.
var connDumps dumpCache

type dumpCache struct {
	mu    sync.Mutex
	idx   *connIndex
	err   error
	began time.Time // when the dump behind idx and err began
	// running is closed when the dump in flight ends.
	running chan struct{}
	// dump is dumpUnixSockets, or a test's stand-in.
	dump func() ([]unixSock, error)
}

// dumpKept is how long a dump's index stays after it was made, for those
// who asked during it; then it is dropped (it is a few MB at 10,000 guests).
const dumpKept = time.Second

// since returns a dump that began at after or later.
func (c *dumpCache) since(after time.Time) (*connIndex, error) {
	for {
		c.mu.Lock()
		if c.running == nil && (c.idx != nil || c.err != nil) && !c.began.Before(after) {
			idx, err := c.idx, c.err
			c.mu.Unlock()
			return idx, err
		}
		if ch := c.running; ch != nil {
			c.mu.Unlock()
			<-ch
			continue // if it began after the question, it answers (above); else the next
		}
		ch := make(chan struct{})
		c.running = ch
		began := time.Now()
		c.mu.Unlock()

		dump := c.dump
		if dump == nil {
			dump = dumpUnixSockets
		}
		socks, err := dump()
		var idx *connIndex
		if err == nil {
			idx = newConnIndex(socks)
		}
		c.mu.Lock()
		c.idx, c.err, c.began = idx, err, began
		c.running = nil
		close(ch)
		c.mu.Unlock()
		time.AfterFunc(dumpKept, func() {
			c.mu.Lock()
			if c.began.Equal(began) {
				c.idx, c.err = nil, nil
			}
			c.mu.Unlock()
		})
		return idx, err
	}
}

// ListenerQueues calls fn with every listening unix socket of this
// network namespace and its queue: one sock_diag dump, unprivileged. With
// files, each comes with the socket file it is bound to, and those bound to
// none (abstract addresses) are left out; that costs the kernel about three
// times as much (it reads each socket's inode). It fails where sock_diag is
// refused (not Linux, a seccomp filter, a kernel without unix_diag).
func ListenerQueues(files bool, fn func(ListenerQueue)) error {
	show := uint32(udiagShowRQLen)
	if files {
		show |= udiagShowVFS
	}
	return dumpUnix(1<<tcpListen, show, func(s *unixSock) {
		if q, ok := s.listenerQueue(files); ok {
			fn(q)
		}
	})
}

// listenerQueue is s as ListenerQueues reports it; not ok for a socket
// that is not listening, or bound to no file when files are asked.
func (s *unixSock) listenerQueue(files bool) (ListenerQueue, bool) {
	if s.state != tcpListen || files && !s.vfs {
		return ListenerQueue{}, false
	}
	q := ListenerQueue{Ino: s.ino, Queued: int(s.rqueue)}
	if s.vfs {
		q.File = SocketFile{Dev: userDev(s.vfsDev), Ino: s.vfsIno}
	}
	return q, true
}

// UnixStreamSockets is how many unix stream sockets this network namespace
// has (the kernel's count in /proc/net/protocols: "UNIX-STREAM", or
// "UNIX", every unix socket, on a kernel that counts them together);
// false where it cannot be read. A connect(2) to a listener adds one at
// once (the server's end, created then): a count unchanged since a dump
// began means no connection came since, unless as many sockets closed.
// It costs a read of a few lines, against a dump's walk of every socket.
func UnixStreamSockets() (int64, bool) { return unixStreamSocketsAt("/proc/net/protocols") }

// unixStreamSocketsAt is UnixStreamSockets from the protocols file at path
// (a test's thread in a network namespace of its own reads its thread's).
func unixStreamSocketsAt(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	return protocolSockets(b)
}

// protocolSockets reads UnixStreamSockets' count from the text of
// /proc/net/protocols: the third column, "sockets", of its UNIX-STREAM
// line, else of its UNIX line.
func protocolSockets(b []byte) (int64, bool) {
	var n int64
	found := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		f := bytes.Fields(line)
		if len(f) < 3 {
			continue
		}
		name := string(f[0])
		if name != "UNIX-STREAM" && (name != "UNIX" || found) {
			continue
		}
		v, err := strconv.ParseInt(string(f[2]), 10, 64)
		if err != nil || v < 0 {
			return 0, false
		}
		if name == "UNIX-STREAM" {
			return v, true
		}
		n, found = v, true
	}
	return n, found
}

// userDev turns the kernel's device number (sock_diag's, MAJOR<<20|MINOR)
// into stat(2)'s encoding (glibc's makedev).
func userDev(d uint32) uint64 {
	major, minor := uint64(d>>20), uint64(d&0xfffff)
	return minor&0xff | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
}

// StatSocketFile names the socket file at path (following symlinks, as
// connect(2) does); it fails when path is not a unix socket.
func StatSocketFile(path string) (SocketFile, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return SocketFile{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return SocketFile{}, fmt.Errorf("%s: not a unix socket", path)
	}
	return SocketFile{Dev: st.Dev, Ino: uint32(st.Ino)}, nil
}

// dumpUnixSockets lists the connected unix sockets of this network
// namespace with their address and peer.
func dumpUnixSockets() ([]unixSock, error) {
	var out []unixSock
	err := dumpUnix(1<<tcpEstablished, udiagShowName|udiagShowPeer, func(s *unixSock) {
		out = append(out, *s)
	})
	return out, err
}

// dumpUnix runs one sock_diag dump of this network namespace's unix
// sockets in the states given (a mask of 1<<state) with the attributes
// show asks for, and calls fn with each (fn must not keep it: name
// excepted, it is reused).
func dumpUnix(states, show uint32, fn func(*unixSock)) error {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	defer syscall.Close(fd)
	// The kernel fills each read as it is asked: bound the wait anyway.
	tv := syscall.Timeval{Sec: 1}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	ne := binary.NativeEndian
	req := make([]byte, nlmsgHdrLen+unixDiagReqLen)
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1) // sequence
	r := req[nlmsgHdrLen:]
	r[0] = syscall.AF_UNIX
	ne.PutUint32(r[4:], states)
	ne.PutUint32(r[12:], show)
	ne.PutUint32(r[16:], diagNoCookie)
	ne.PutUint32(r[20:], diagNoCookie)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	buf := make([]byte, diagRecvBuf)
	n := 0
	count := func(s *unixSock) { n++; fn(s) }
	for n < diagMaxReplies {
		k, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		done, err := parseUnixDiag(buf[:k], count)
		if err != nil || done {
			return err
		}
	}
	return errors.New("sock_diag: too many sockets")
}

// parseUnixDiag calls fn with each socket in one read of a dump; done at
// the dump's end. The *unixSock is reused from one call to the next.
func parseUnixDiag(b []byte, fn func(*unixSock)) (done bool, err error) {
	ne := binary.NativeEndian
	var s unixSock
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return false, errors.New("sock_diag: bad message length")
		}
		msg := b[:l]
		b = b[min(len(b), (l+3)&^3):]
		switch ne.Uint16(msg[4:]) {
		case syscall.NLMSG_DONE:
			return true, nil
		case syscall.NLMSG_ERROR:
			if len(msg) >= nlmsgHdrLen+4 {
				if e := int32(ne.Uint32(msg[nlmsgHdrLen:])); e < 0 {
					return false, fmt.Errorf("sock_diag: %w", syscall.Errno(-e))
				}
			}
			return false, errors.New("sock_diag: error reply")
		case sockDiagByFamily:
		default:
			continue
		}
		m := msg[nlmsgHdrLen:]
		if len(m) < unixDiagMsgLen {
			return false, errors.New("sock_diag: short message")
		}
		s = unixSock{state: m[2], ino: ne.Uint32(m[4:])}
		for a := m[unixDiagMsgLen:]; len(a) >= 4; {
			al := int(ne.Uint16(a[0:]))
			if al < 4 || al > len(a) {
				break
			}
			v := a[4:al]
			switch ne.Uint16(a[2:]) {
			case unixDiagName:
				s.name = bytes.TrimRight(bytes.Clone(v), "\x00")
			case unixDiagPeer:
				if len(v) >= 4 {
					s.peer = ne.Uint32(v)
				}
			case unixDiagVFS:
				if len(v) >= 8 {
					s.vfs, s.vfsIno, s.vfsDev = true, ne.Uint32(v), ne.Uint32(v[4:])
				}
			case unixDiagRQLen:
				if len(v) >= 8 {
					s.rqueue = ne.Uint32(v)
				}
			}
			a = a[min(len(a), (al+3)&^3):]
		}
		fn(&s)
	}
	return false, nil
}
