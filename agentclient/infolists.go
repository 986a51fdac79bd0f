package agentclient

import "sync"

// InfoLists shares decoded guest-info replies between the agents that send
// the same text. A fleet's guests mostly run a few agent builds, and an
// agent's guest-info is the same text every time (qemu-ga lists its
// commands in a fixed order), so of 10,000 first looks (status --json, a
// dashboard's launch) all but the first of each build take the value
// decoded before: a map lookup of the reply instead of some 45 objects
// lexed, and one list in memory instead of one per guest. The zero value
// is ready; it is safe for concurrent use.
//
// What it hands out is shared: the Info's SupportedCommands belongs to
// every reply of that text and must never be modified (as every list a
// fleet publishes). A reply is shared only by its exact text, and what is
// stored is decoded from that text, so no agent's reply can change what
// another's decodes to; the guests choose the texts, so their number and
// size, and the lists' length, are bounded (past them, replies are decoded
// as ever).
type InfoLists struct {
	mu sync.Mutex
	m  map[string]Info // by the reply's exact text
}

const (
	// maxInfoLists bounds the texts shared: a hostile guest could send a
	// new list at every slow poll.
	maxInfoLists = 32
	// maxInfoText bounds a text shared: qemu-ga 10's list is some 4 KB.
	// 32 of them at the bound hold half a MiB.
	maxInfoText = 16 << 10
	// maxInfoCommands bounds the commands of a list shared (qemu-ga 10
	// lists some 60): a text of empty objects ({}, three bytes each) is
	// a list eight times its size, and 32 of them held 4.5 MiB.
	maxInfoCommands = 256
)

// SharedInfo is an Out (Stream.Batch, Stream.DecodeRaw) for guest-info that
// decodes the reply into Info as *Info would, taking the value from Lists
// when an earlier reply had the same text (see InfoLists).
type SharedInfo struct {
	Lists *InfoLists
	Info  Info
}

// decode decodes b, a guest-info reply, on the hand-written path (ok false:
// it is left to the reference), sharing by b's text.
func (c *InfoLists) decode(b []byte) (Info, bool) {
	if c == nil || len(b) > maxInfoText {
		return decodeInfo(b)
	}
	c.mu.Lock()
	v, hit := c.m[string(b)]
	c.mu.Unlock()
	if hit {
		return v, true
	}
	v, ok := decodeInfo(b)
	if !ok {
		return v, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, hit := c.m[string(b)]; hit {
		return w, true // decoded meanwhile for another agent: one copy
	}
	if c.m == nil {
		c.m = make(map[string]Info)
	}
	if len(c.m) < maxInfoLists && len(v.SupportedCommands) <= maxInfoCommands {
		c.m[string(b)] = v
	}
	return v, true
}

// Holds reports whether v is a list c hands out (the same array, not an
// equal one): a caller that shares lists itself has nothing to do for it.
func (c *InfoLists) Holds(v []CommandInfo) bool {
	if c == nil || len(v) == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.m {
		if len(w.SupportedCommands) == len(v) && &w.SupportedCommands[0] == &v[0] {
			return true
		}
	}
	return false
}
