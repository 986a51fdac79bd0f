package fleet

import (
	"strings"
	"time"
)

// An agent channel serves one client at a time (agentclient's channel.go):
// while guestdeck holds a guest's socket, a second guestdeck, virsh-less
// scripts and a backup's freeze (Proxmox connects to the same socket) queue
// behind it. Dialling and resynchronising for every poll frees the channel
// between polls, but it was a quarter of the dashboard's CPU at 10,000
// guests. So a session keeps its connection between uses for as long as
// nobody else wants the channel, and lets go when someone does.
//
// Keep, and yield on demand (yield.go): for a guest whose address is a
// local unix socket (a path, on Linux, where sock_diag answers), a client
// waiting for the channel is visible in the kernel's queue of the agent's
// listening socket, and the fleet's watcher looks at those queues. The
// guarantee: another client waiting for the channel gets it within the
// watcher's period (yield.go: 250 ms, up to 1 s where a look costs more:
// tens of thousands of sockets, a loaded machine) plus whatever call the
// session has in flight (an idle session lets go at once, a busy one when
// its call releases the token), instead of "the channel is free between
// polls". The session's next use dials again, and may wait its turn behind
// that client. A dial of ours waiting behind another client does not make
// the fleet let go of anything else: the watcher acts only on the
// listeners of the connections it keeps, each named by its socket file
// (stat(2) of the path against the dump's), and a session whose dial
// waits keeps no connection.
//
// Everything else lets go whenever the session is done with the connection
// (after each poll, action or transfer) and dials again, resynchronising,
// for the next: the channel is free between polls. That is every address
// the watcher cannot see the queue of (tcp, vsock, a socket reached through
// ssh, an abstract unix name, a listener in another network namespace),
// and every guest once the watcher's dump failed (not Linux, sock_diag
// refused). A session whose listener was not found tries again after a
// backoff (yield.go's yieldRetry), in case it is findable by then.
//
// Some things keep it regardless of waiters:
//   - Target.Exclusive (exclusive = true in the fleet file): guestdeck is the
//     only client, and saves the dial and sync per poll.
//   - A libvirt guest: libvirt owns the channel and multiplexes it; the
//     session's connection is to libvirt, not the socket.
//   - A freeze this process made and has not seen thawed: its thaw (the
//     watchdog's, ThawOurs, run --hold's) must not queue behind another
//     client. thaw.go still redials and retries if the connection is lost.
//   - A guest shutting down after guestdeck's shutdown: the agent's hang-up
//     on the open connection confirms it went.
//   - Anything running under the session's token: an action, or a file
//     transfer (qemu-ga's file handles belong to the agent, not the
//     connection, and any client could use them: the transfer keeps the
//     channel until its handles are closed). The token is held for the
//     whole of each, so letting go at release covers them.
//
// A connection let go this way is "parked": the next dial resumes the same
// session (capabilities and refused commands are kept, no slow refresh is
// forced, the dial is not logged), unlike a dial after a failure.

// keepsChannelLocked reports whether the connection stays open once the
// token is released. Holds sem and mu.
func (s *session) keepsChannelLocked() bool {
	if s.target().Exclusive || strings.HasPrefix(s.target().Address, "libvirt:") {
		return true
	}
	// Not s.pending: a bulk freeze's entry written ahead (book.go) is a
	// freeze not sent yet, and recordFreeze moves it to freezeIDs, under
	// the token, before the freeze goes out. Kept for it, a guest waiting
	// its turn held its channel, unwatched, for the whole bulk freeze.
	if len(s.freezeIDs) > 0 || s.thawing != nil {
		return true
	}
	g := s.cur.Load()
	// Shutting down: the agent hangs up as the guest goes, and that EOF on
	// the open connection is the quickest proof it went; nobody else has
	// use for the agent of a guest on its way down. Not past the shutdown's
	// limit (goingAway): a guest that did not go is any other's.
	return g.FrozenByUs || g.State == ShuttingDown && s.goingAway(g, time.Now())
}

// letGoLocked closes a healthy connection the session need not keep, and
// marks it parked; a connection kept until another client waits is
// watched (yield.go). Holds sem and mu (release).
func (s *session) letGoLocked() {
	if s.agent == nil {
		return
	}
	if s.keepsChannelLocked() {
		s.unwatch() // kept for its own reason: no waiter takes it
		return
	}
	if s.keepsUntilAsked() {
		return
	}
	s.dropAgent()
	s.parked = true
}

// resumeParked reports whether the dial about to be made resumes a parked
// connection, and clears the mark: a failed dial ends the resumption.
// Holds sem.
func (s *session) resumeParked() bool {
	p := s.parked
	s.parked = false
	return p
}
