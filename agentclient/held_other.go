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
