package agentclient

import (
	"errors"
	"net"
	"syscall"
)

// The one-client rule. An agent channel serves one client at a time, and
// both ends a host-side client meets enforce it the same way (checked on
// this machine against qemu-ga -m unix-listen and QEMU's virtio-serial
// chardev, -chardev socket,server=on): while a client is connected they do
// not accept(2) another one. The kernel queues further connections on the
// listening socket (both listen with a backlog of 1, which Linux takes as
// two waiting connections): connect succeeds, writes are buffered, nothing
// answers. They are served in turn once the current client hangs up, with
// what they sent meanwhile. Once two wait, connect fails at once with
// EAGAIN ("resource temporarily unavailable").
//
// So a client cannot tell "queued behind another client" from "no agent"
// by what comes back: nothing does either way. On Linux a unix socket can
// ask the kernel (sock_diag) whether its peer has been accepted yet; that
// is what tells the two apart here (held_linux.go), and whether the
// queue is behind a client at all or behind an agent that stopped taking
// connections.

// ErrChannelHeld: another client holds the agent's channel, so this
// connection was queued and never served, or refused because the queue is
// full. It is not ErrSilent and does not match ErrTimeout: the agent may be
// fine, and trying again later (not harder) is the remedy.
var ErrChannelHeld = errors.New("another client holds the channel")

// IsChannelHeld reports whether err says another client holds the channel.
func IsChannelHeld(err error) bool { return errors.Is(err, ErrChannelHeld) }

// heldError is ErrChannelHeld with how it was seen; it unwraps to the
// sentinel and to the system error beneath, if any (EAGAIN), never to the
// sync's timeout (it is not silence).
type heldError struct {
	how   string
	cause error // nil, or the errno
}

func (e *heldError) Error() string { return ErrChannelHeld.Error() + " (" + e.how + ")" }
func (e *heldError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrChannelHeld}
	}
	return []error{ErrChannelHeld, e.cause}
}

// heldDialError says whether a failed connect was refused because the
// channel's queue is full: EAGAIN from connect(2) on a unix stream socket
// means exactly that (the listener's backlog is full).
func heldDialError(network string, err error) (error, bool) {
	if network == "unix" && errors.Is(err, syscall.EAGAIN) {
		return &heldError{how: "the agent's socket is busy and its queue of waiting clients is full", cause: err}, true
	}
	return nil, false
}

// heldSyncError turns a sync that timed out into ErrChannelHeld when the
// kernel says the connection was never accepted while another one was: it
// waited in the queue behind another client the whole time. A connection
// queued with no client served is an agent that takes no connections (hung
// or stopped), and stays silent, with that said. err is returned unchanged
// when the connection was served (the agent is silent) or when this cannot
// be told (not a local unix socket, or not Linux).
func heldSyncError(conn net.Conn, err error) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok || !IsSilent(err) {
		return err
	}
	queued, held, qerr := channelQueue(uc)
	switch {
	case qerr != nil || !queued:
		return err
	case held:
		return &heldError{how: "this connection waited unanswered behind it in the agent's queue"}
	}
	return &silentError{why: "the agent takes no connections: none is being served, and this one waited in its queue until the sync ran out of time (agent hung or stopped?)"}
}
