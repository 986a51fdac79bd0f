package fleet

import (
	"strings"
)

// An agent channel serves one client at a time (agentclient's channel.go):
// while guestdeck holds a guest's socket, a second guestdeck, virsh-less
// scripts and a backup's freeze (Proxmox connects to the same socket) queue
// behind it. So by default a session lets go of the connection whenever it
// is done with it (after each poll, action or transfer) and dials again,
// resynchronising, for the next: the channel is free between polls.
//
// Some things keep it:
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
	if s.target.Exclusive || strings.HasPrefix(s.target.Address, "libvirt:") {
		return true
	}
	if len(s.freezeIDs) > 0 || s.pending != "" || s.thawing != nil {
		return true
	}
	g := s.cur.Load()
	// Shutting down: the agent hangs up as the guest goes, and that EOF on
	// the open connection is the quickest proof it went; nobody else has
	// use for the agent of a guest on its way down.
	return g.FrozenByUs || g.State == ShuttingDown
}

// letGoLocked closes a healthy connection the session need not keep, and
// marks it parked. Holds sem and mu (release).
func (s *session) letGoLocked() {
	if s.agent == nil || s.keepsChannelLocked() {
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
