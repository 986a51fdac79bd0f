package fleet

import (
	"hash/maphash"
	"unsafe"

	"github.com/guestdeck/guestdeck/agentclient"
)

// A slow refresh's replies mostly repeat the last one byte for byte: the
// OS, the timezone, the users, the filesystems (their sizes move in a real
// guest, not every minute), the disks, the routes. Each was decoded again,
// made into new lists and shared again (Fleet.shares) at every refresh. With
// the in-place decoding of the kept live items and metrics beside it
// (agentclient's decodeRawInPlace), a slow refresh took 90-138 us of CPU
// and 17 allocations, against 145-161 us and 60 (BenchmarkPoll/slow), and
// at 10,000 guests its share of the dashboard's samples went from 18 % to
// 14 %. A session remembers, per such command, the hash of
// the reply text that the value shown was decoded from; a kept reply
// (prefetch.take) with the same text gives the value shown, undecoded.
//
// The memo names the value by identity (its pointer, or its list's first
// element and length), and is used only while the Guest shown still holds
// that very value: whatever else set it since (another path's decode, a
// reply that failed and left the old value) makes the memo miss, and the
// reply is decoded as before. Equal text decodes to an equal value, so the
// value shown is what the decode would have made. The hash is keyed by the
// process's own seed: a guest cannot pick a text that collides with
// another of its own (and a collision would only show it its old value).
type replyMemo struct {
	sum uint64
	of  unsafe.Pointer // the value shown; nil: no memo
	n   int            // its length, for a list
}

// memoed are the commands a session memoises, in replyMemos' order.
var memoed = [...]string{"guest-get-osinfo", "guest-get-timezone", "guest-get-users", "guest-get-fsinfo", cmdDisks, cmdRoutes}

// replyMemos is a session's memo per memoed command (session.memos).
type replyMemos [len(memoed)]replyMemo

var memoSeed = maphash.MakeSeed()

// memoIndex is name's place in memoed, or -1.
func memoIndex(name string) int {
	for i, m := range memoed {
		if m == name {
			return i
		}
	}
	return -1
}

// memoBit is name's bit in prefetch.summed; 0 when it is not memoised.
func memoBit(name string) uint8 {
	if k := memoIndex(name); k >= 0 {
		return 1 << k
	}
	return 0
}

// shownValue is the identity of command k's value in g, and its length.
func shownValue(g *Guest, k int) (unsafe.Pointer, int) {
	switch memoed[k] {
	case "guest-get-osinfo":
		return unsafe.Pointer(g.OS), 0
	case "guest-get-timezone":
		return unsafe.Pointer(g.Timezone), 0
	case "guest-get-users":
		return unsafe.Pointer(unsafe.SliceData(g.Users)), len(g.Users)
	case "guest-get-fsinfo":
		return unsafe.Pointer(unsafe.SliceData(g.Filesystems)), len(g.Filesystems)
	case cmdDisks:
		return unsafe.Pointer(unsafe.SliceData(g.Metrics.Disks)), len(g.Metrics.Disks)
	case cmdRoutes:
		return unsafe.Pointer(unsafe.SliceData(g.Metrics.Routes)), len(g.Metrics.Routes)
	}
	return nil, 0
}

// giveShown sets out, the Out a poll's step decodes command k into, to
// g's value, as the decode would have; false when out is not of the kind
// the step uses (then it is decoded).
func giveShown(g *Guest, k int, out any) bool {
	switch o := out.(type) {
	case *agentclient.OSInfo:
		if memoed[k] == "guest-get-osinfo" {
			*o = *g.OS
			return true
		}
	case *agentclient.Timezone:
		if memoed[k] == "guest-get-timezone" {
			*o = *g.Timezone
			return true
		}
	case *[]agentclient.User:
		if memoed[k] == "guest-get-users" {
			*o = g.Users
			return true
		}
	case *[]agentclient.Filesystem:
		if memoed[k] == "guest-get-fsinfo" {
			*o = g.Filesystems
			return true
		}
	case *[]agentclient.DiskInfo:
		if memoed[k] == cmdDisks {
			*o = g.Metrics.Disks
			return true
		}
	case *[]agentclient.Route:
		if memoed[k] == cmdRoutes {
			*o = g.Metrics.Routes
			return true
		}
	}
	return false
}

// memoTake answers a kept reply to name from the memo when its text is
// the one the value shown in g came from: out is then that value, and it
// reports true. Otherwise it notes the text's hash in p, for remember
// once the poll has published what the reply decodes to. Holds sem.
func (s *session) memoTake(p *prefetch, name string, ret []byte, out any) bool {
	k := memoIndex(name)
	if k < 0 || p.g == nil {
		return false
	}
	sum := maphash.Bytes(memoSeed, ret)
	if m := s.memos; m != nil {
		of, n := shownValue(p.g, k)
		if mk := &m[k]; mk.of != nil && mk.of == of && mk.n == n && mk.sum == sum && giveShown(p.g, k, out) {
			return true
		}
	}
	p.sums[k], p.summed = sum, p.summed|1<<k
	return false
}

// remember makes the memo of each command whose kept reply this poll
// decoded name the value now shown: called once the poll is published, so
// that the memo names what the Guest holds (the fleet's shared copy, not
// the poll's own). A reply that failed to decode left the value before,
// which its text did not make: only those decoded are remembered
// (prefetch.take). Holds sem.
func (s *session) remember(p *prefetch) {
	if p == nil || p.summed == 0 {
		return
	}
	if s.memos == nil {
		s.memos = new(replyMemos)
	}
	g := s.cur.Load()
	for k := range memoed {
		if p.summed&(1<<k) == 0 {
			continue
		}
		of, n := shownValue(g, k)
		s.memos[k] = replyMemo{sum: p.sums[k], of: of, n: n}
	}
}
