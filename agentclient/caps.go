package agentclient

import "sort"

// Caps is what one agent offers, from its guest-info reply.
type Caps struct {
	Version string
	cmds    map[string]CommandInfo
}

// Capabilities indexes info's command list. A nil info gives empty Caps.
func Capabilities(info *Info) Caps {
	c := Caps{cmds: map[string]CommandInfo{}}
	if info == nil {
		return c
	}
	c.Version = info.Version
	for _, ci := range info.SupportedCommands {
		c.cmds[ci.Name] = ci
	}
	return c
}

// Has reports whether the agent knows the command (enabled or not).
func (c Caps) Has(name string) bool {
	_, ok := c.cmds[name]
	return ok
}

// Enabled reports whether the agent knows the command and it is not blocked.
func (c Caps) Enabled(name string) bool {
	ci, ok := c.cmds[name]
	return ok && ci.Enabled
}

// SuccessResponse reports whether the agent answers name on success, as the
// agent says if it lists name, else as the protocol defines it.
func (c Caps) SuccessResponse(name string) bool {
	if ci, ok := c.cmds[name]; ok {
		return ci.SuccessResponse
	}
	return SuccessResponse(name)
}

// Names lists every command the agent knows, sorted.
func (c Caps) Names() []string {
	names := make([]string, 0, len(c.cmds))
	for n := range c.cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
