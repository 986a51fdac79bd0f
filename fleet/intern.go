package fleet

import (
	"strconv"
	"sync"

	"github.com/guestdeck/guestdeck/agentclient"
)

// maxCommandLists bounds the distinct capability lists a fleet shares.
// The lists come from guests, so a hostile one could send a new list at
// every slow poll: past the bound, lists are simply not shared.
const maxCommandLists = 32

// commandLists shares the capability lists (guest-info) of guests that
// report the same one: a fleet of guests running the same agent build
// holds one copy instead of one per guest (about 1 KB each at 10,000
// guests). A shared list is never modified, like every published slice.
//
// Most lists are shared as they are decoded: a first look's guest-info
// (the prefetch's) is decoded through decoded, which hands every reply of
// the same text the same list without decoding it again. intern shares
// the rest (a reply decoded elsewhere, or one that spells an equal list
// differently) by the list's value.
type commandLists struct {
	decoded agentclient.InfoLists

	mu sync.Mutex
	m  map[string][]agentclient.CommandInfo
}

// intern returns the fleet's copy of a list equal to v, keeping v as that
// copy when there is none yet and room for one.
func (c *commandLists) intern(v []agentclient.CommandInfo) []agentclient.CommandInfo {
	if len(v) == 0 || c.decoded.Holds(v) {
		return v
	}
	key := commandsKey(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.m[key]; ok {
		return w
	}
	if c.m == nil {
		c.m = make(map[string][]agentclient.CommandInfo)
	}
	if len(c.m) < maxCommandLists {
		c.m[key] = v
	}
	return v
}

// commandsKey spells v unambiguously: each name with its length, and the
// two flags.
func commandsKey(v []agentclient.CommandInfo) string {
	n := 0
	for _, ci := range v {
		n += len(ci.Name) + 6
	}
	b := make([]byte, 0, n)
	for _, ci := range v {
		b = strconv.AppendInt(b, int64(len(ci.Name)), 10)
		b = append(b, ':')
		b = append(b, ci.Name...)
		flags := byte('0')
		if ci.Enabled {
			flags |= 1
		}
		if ci.SuccessResponse {
			flags |= 2
		}
		b = append(b, flags)
	}
	return string(b)
}
