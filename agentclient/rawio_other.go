//go:build !linux

package agentclient

import "net"

// rawIO is Linux's (rawio_linux.go); elsewhere streams use net.Conn's Read
// and Write.
type rawIO struct{}

func newRawIO(net.Conn) *rawIO { return nil }

func (*rawIO) Read([]byte) (int, error)  { panic("unreachable") }
func (*rawIO) Write([]byte) (int, error) { panic("unreachable") }
