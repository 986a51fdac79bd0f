package agentclient

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// sock_diag for AF_UNIX (linux/sock_diag.h, linux/unix_diag.h); the
// syscall package has the netlink plumbing but not these.
const (
	sockDiagByFamily = 20  // SOCK_DIAG_BY_FAMILY
	netlinkSockDiag  = 4   // NETLINK_SOCK_DIAG
	udiagShowName    = 0x1 // UDIAG_SHOW_NAME
	udiagShowPeer    = 0x4 // UDIAG_SHOW_PEER
	unixDiagName     = 0   // UNIX_DIAG_NAME attribute
	unixDiagPeer     = 2   // UNIX_DIAG_PEER attribute
	tcpEstablished   = 1   // a connected unix socket's state
	nlmsgHdrLen      = 16  // struct nlmsghdr
	unixDiagReqLen   = 24  // struct unix_diag_req
	unixDiagMsgLen   = 16  // struct unix_diag_msg
	diagMaxReplies   = 1e6 // bound on a dump's sockets
	diagRecvBuf      = 1 << 15
	diagNoCookie     = 0xFFFFFFFF
)

// unixSock is one connected unix socket as sock_diag reports it.
type unixSock struct {
	ino, peer uint32
	name      []byte // the bound address; an accepted server end has its listener's
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
	socks, err := dumpUnixSockets()
	if err != nil {
		return false, false, err
	}
	return queueOf(socks, uint32(st.Ino), []byte(ra.Name))
}

// queueOf reads channelQueue's answer for the socket ino, connected to the
// listener bound at name, from a dump.
func queueOf(socks []unixSock, ino uint32, name []byte) (queued, held bool, err error) {
	found := false
	for _, s := range socks {
		if s.ino == ino {
			found, queued = true, s.peer == 0
			break
		}
	}
	if !found {
		return false, false, errors.New("sock_diag: the connection is not listed")
	}
	if !queued {
		return false, false, nil
	}
	for _, s := range socks {
		if s.ino != 0 && s.ino != ino && s.peer != 0 && bytes.Equal(s.name, name) {
			return true, true, nil
		}
	}
	return true, false, nil
}

// dumpUnixSockets lists the connected unix sockets of this network
// namespace with their address and peer.
func dumpUnixSockets() ([]unixSock, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
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
	ne.PutUint32(r[4:], 1<<tcpEstablished)
	ne.PutUint32(r[12:], udiagShowName|udiagShowPeer)
	ne.PutUint32(r[16:], diagNoCookie)
	ne.PutUint32(r[20:], diagNoCookie)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	var out []unixSock
	buf := make([]byte, diagRecvBuf)
	for len(out) < diagMaxReplies {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag: %w", err)
		}
		var done bool
		out, done, err = parseUnixDiag(buf[:n], out)
		if err != nil || done {
			return out, err
		}
	}
	return nil, errors.New("sock_diag: too many sockets")
}

// parseUnixDiag appends the sockets in one read of a dump to out; done at
// the dump's end.
func parseUnixDiag(b []byte, out []unixSock) (_ []unixSock, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return out, false, errors.New("sock_diag: bad message length")
		}
		msg := b[:l]
		b = b[min(len(b), (l+3)&^3):]
		switch ne.Uint16(msg[4:]) {
		case syscall.NLMSG_DONE:
			return out, true, nil
		case syscall.NLMSG_ERROR:
			if len(msg) >= nlmsgHdrLen+4 {
				if e := int32(ne.Uint32(msg[nlmsgHdrLen:])); e < 0 {
					return out, false, fmt.Errorf("sock_diag: %w", syscall.Errno(-e))
				}
			}
			return out, false, errors.New("sock_diag: error reply")
		case sockDiagByFamily:
		default:
			continue
		}
		m := msg[nlmsgHdrLen:]
		if len(m) < unixDiagMsgLen {
			return out, false, errors.New("sock_diag: short message")
		}
		s := unixSock{ino: ne.Uint32(m[4:])}
		for a := m[unixDiagMsgLen:]; len(a) >= 4; {
			al := int(ne.Uint16(a[0:]))
			if al < 4 || al > len(a) {
				break
			}
			switch ne.Uint16(a[2:]) {
			case unixDiagName:
				s.name = bytes.TrimRight(bytes.Clone(a[4:al]), "\x00")
			case unixDiagPeer:
				if al >= 8 {
					s.peer = ne.Uint32(a[4:])
				}
			}
			a = a[min(len(a), (al+3)&^3):]
		}
		out = append(out, s)
	}
	return out, false, nil
}
