//go:build !386 && !race && !msan && !asan

package agentclient

import (
	"syscall"
	"unsafe"
)

// sysIO receives into (SYS_RECVFROM) or sends (SYS_SENDTO) buf on the
// socket fd with a raw system call and MSG_DONTWAIT. MSG_DONTWAIT, not
// read or write on a descriptor taken to be non-blocking: O_NONBLOCK lives
// in the open file description, which another holder of it can clear (a
// dup made by File and put in blocking mode by its Fd, a descriptor shared
// with another process), and a raw read of a blocking socket would hold
// its thread and the runtime's P in the kernel, with no entersyscall to
// hand the P off (a stop of the world would wait on it), restarted after
// every preemption signal. With MSG_DONTWAIT the call never waits,
// whatever the description says.
func sysIO(trap, fd uintptr, buf []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)), syscall.MSG_DONTWAIT, 0, 0)
	return int(n), e
}
