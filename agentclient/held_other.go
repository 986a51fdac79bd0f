//go:build !linux

package agentclient

import (
	"errors"
	"net"
)

// channelQueue cannot be told without Linux's sock_diag: a queued
// connection then stays reported as silent (its text names the
// possibility).
func channelQueue(*net.UnixConn) (queued, held bool, err error) {
	return false, false, errors.New("not supported on this system")
}

// ListenerQueues needs Linux's sock_diag.
func ListenerQueues(bool, func(ListenerQueue)) error {
	return errors.New("listener queues: not supported on this system")
}

// StatSocketFile is of no use without ListenerQueues.
func StatSocketFile(string) (SocketFile, error) {
	return SocketFile{}, errors.New("socket files: not supported on this system")
}

// UnixStreamSockets is Linux's count; unknown elsewhere.
func UnixStreamSockets() (int64, bool) { return 0, false }
