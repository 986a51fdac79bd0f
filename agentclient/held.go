package agentclient

// Listener queues. A client waiting for an agent's channel sits in the
// kernel's queue of the agent's listening socket (channel.go), so whoever
// holds the channel can see that someone waits: ListenerQueues (Linux's
// sock_diag, held_linux.go) lists the listeners with their queues, and
// StatSocketFile names the listener a socket path leads to. A holder that
// watches this can let go when asked instead of after every use.

// SocketFile is the file a unix socket is bound to, named the way both
// stat(2) of its path and sock_diag can name it: the device and the low 32
// bits of the inode (all that sock_diag reports). Matching on it, rather
// than on the address the listener bound (relative, or in another mount
// namespace), finds the socket a path leads to now.
type SocketFile struct {
	Dev uint64 // as stat(2)'s st_dev
	Ino uint32
}

// ListenerQueue is one listening unix socket as a dump saw it.
type ListenerQueue struct {
	Ino uint32 // the listening socket's own inode (sockfs), not its file's
	// File is the file it is bound to, when the dump was asked for files.
	File SocketFile
	// Queued is how many connections wait to be accepted. One whose client
	// gave up and closed stays queued until the listener accepts it.
	Queued int
}
