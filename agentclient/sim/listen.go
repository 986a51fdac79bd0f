package sim

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// Listen opens a unix socket at path the way qemu-ga -m unix-listen and
// QEMU's chardev socket server do: with a listen backlog of 1. With Serve
// taking one client at a time, a guest served on it shows clients what the
// real agent shows them (see agentclient's channel.go): while one client is
// served, the next two connect and wait unanswered, and later ones are
// refused at once with EAGAIN. net.Listen's backlog (the system's maximum)
// would queue thousands instead. The socket file is removed on Close.
func Listen(path string) (*net.UnixListener, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("listen %s: bind: %w", path, err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		syscall.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	l, err := net.FileListener(f) // dups fd
	f.Close()
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	return ul, nil
}
