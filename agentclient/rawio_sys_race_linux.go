//go:build !386 && (race || msan || asan)

package agentclient

import "syscall"

// sysIO, under the race detector (or msan, asan), is net.Conn's own
// syscall.Read and syscall.Write: they tell the detector that the kernel
// wrote into buf or read it, and that the bytes order what their sender
// did before them with what their reader does after (net.Conn's peers in
// the tests, the simulator's sessions, rely on that). A raw call tells it
// nothing, and tests sharing state with their peer reported races that are
// not there. These enter the kernel as net.Conn does, so a blocking
// descriptor hands its P off.
func sysIO(trap, fd uintptr, buf []byte) (int, syscall.Errno) {
	var n int
	var err error
	if trap == syscall.SYS_RECVFROM {
		n, err = syscall.Read(int(fd), buf)
	} else {
		n, err = syscall.Write(int(fd), buf)
	}
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}
