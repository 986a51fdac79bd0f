//go:build !linux || 386

package agentclient

import "net"

// rawIO is Linux's (rawio_linux.go; not 386, whose socket calls go
// through socketcall); elsewhere streams use net.Conn's Read
// and Write.
type rawIO struct{}

func newRawIO(net.Conn) *rawIO { return nil }

func (*rawIO) Read([]byte) (int, error)  { panic("unreachable") }
func (*rawIO) Write([]byte) (int, error) { panic("unreachable") }
