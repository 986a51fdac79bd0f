package fleet

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// ParseAction reads an action from words: "freeze", "shutdown reboot",
// "suspend ram", "vcpus offline 2,3" (ranges like 2-5 too), "read /etc/x",
// "write /tmp/x some text".
func ParseAction(args []string) (Action, error) {
	if len(args) == 0 {
		return Action{}, fmt.Errorf("no action given (want one of %s)", kindList())
	}
	a := Action{Kind: Kind(strings.ToLower(args[0]))}
	rest := args[1:]
	noArgs := func() error {
		if len(rest) > 0 {
			return fmt.Errorf("%s takes no arguments, got %q", a.Kind, strings.Join(rest, " "))
		}
		return nil
	}
	var err error
	switch a.Kind {
	case ActPing, ActFreeze, ActThaw, ActSetTime, ActFstrim, ActInfo:
		err = noArgs()
	case ActShutdown:
		a.Mode = agentclient.ShutdownPowerdown
		if len(rest) > 0 {
			a.Mode = rest[0]
			rest = rest[1:]
		}
		if !slices.Contains([]string{agentclient.ShutdownPowerdown, agentclient.ShutdownReboot, agentclient.ShutdownHalt}, a.Mode) {
			return Action{}, fmt.Errorf("shutdown mode %q: want powerdown, reboot or halt", a.Mode)
		}
		err = noArgs()
	case ActSuspend:
		if len(rest) == 0 {
			return Action{}, fmt.Errorf("suspend needs a mode: disk, ram or hybrid")
		}
		a.Mode, rest = rest[0], rest[1:]
		if !slices.Contains([]string{agentclient.SuspendDisk, agentclient.SuspendRAM, agentclient.SuspendHybrid}, a.Mode) {
			return Action{}, fmt.Errorf("suspend mode %q: want disk, ram or hybrid", a.Mode)
		}
		err = noArgs()
	case ActVCPUs:
		if len(rest) < 2 {
			return Action{}, fmt.Errorf("vcpus needs online|offline and ids, e.g. \"vcpus offline 2,3\"")
		}
		a.Mode = rest[0]
		if a.Mode != "online" && a.Mode != "offline" {
			return Action{}, fmt.Errorf("vcpus mode %q: want online or offline", a.Mode)
		}
		a.IDs, err = parseIDs(strings.Join(rest[1:], ","))
	case ActPassword, ActSSHKey:
		err = a.parseUsers(rest)
	case ActRead:
		if len(rest) != 1 || rest[0] == "" {
			return Action{}, fmt.Errorf("read needs exactly one guest path")
		}
		a.Path = rest[0]
	case ActWrite:
		if len(rest) == 0 || rest[0] == "" {
			return Action{}, fmt.Errorf("write needs a guest path (and the content)")
		}
		a.Path = rest[0]
		if len(rest) > 1 {
			a.Data = []byte(strings.Join(rest[1:], " "))
		}
	default:
		return Action{}, fmt.Errorf("unknown action %q (want one of %s)", args[0], kindList())
	}
	if err != nil {
		return Action{}, err
	}
	return a, nil
}

func kindList() string {
	return "ping, info, freeze, thaw, shutdown, suspend, settime, fstrim, vcpus, read, write, password, ssh-key"
}

// parseIDs reads "2,3,5-7" (spaces and empty items ignored).
func parseIDs(s string) ([]int, error) {
	var ids []int
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("vcpu id %q: not a number", item)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 4096 {
				return nil, fmt.Errorf("vcpu range %q: want LOW-HIGH", item)
			}
		}
		for i := a; i <= b; i++ {
			if !slices.Contains(ids, i) {
				ids = append(ids, i)
			}
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("vcpus needs at least one id")
	}
	return ids, nil
}

// Mutating reports whether the action changes the guest; Readonly refuses it.
func (a Action) Mutating() bool {
	switch a.Kind {
	case ActPing, ActRead, ActInfo:
		return false
	case ActPassword, ActSSHKey:
		return a.usersMutating()
	}
	return true
}

// Destructive reports whether the action interrupts the guest or loses data
// and so deserves a confirmation: shutdown, suspend, freeze (writers block),
// file writes and taking vCPUs offline.
func (a Action) Destructive() bool {
	switch a.Kind {
	case ActShutdown, ActSuspend, ActFreeze, ActWrite:
		return true
	case ActPassword, ActSSHKey:
		return a.usersMutating()
	case ActVCPUs:
		return a.Mode == "offline"
	}
	return false
}

// Commands lists the agent commands the action needs: the names in Sends
// (but the optional ones).
func (a Action) Commands() []string {
	var names []string
	for _, s := range a.Sends(time.Time{}) {
		if !s.optional && !slices.Contains(names, s.Execute) {
			names = append(names, s.Execute)
		}
	}
	return names
}

// String is the action as ParseAction reads it back (write data elided).
func (a Action) String() string {
	switch a.Kind {
	case ActShutdown:
		if a.Mode == "" {
			return string(a.Kind)
		}
		return string(a.Kind) + " " + a.Mode
	case ActSuspend:
		return string(a.Kind) + " " + a.Mode
	case ActVCPUs:
		ids := make([]string, len(a.IDs))
		for i, id := range a.IDs {
			ids[i] = strconv.Itoa(id)
		}
		return fmt.Sprintf("vcpus %s %s", a.Mode, strings.Join(ids, ","))
	case ActRead:
		return "read " + a.Path
	case ActWrite:
		return fmt.Sprintf("write %s (%d bytes)", a.Path, len(a.Data))
	case ActPassword, ActSSHKey:
		return a.usersString()
	}
	return string(a.Kind)
}

// Check returns "" when g can run the action, else why it is skipped: the
// agent lacks one of its commands, the guest is frozen (the agent refuses
// the command until thawed), or the guest admin disabled it.
func (a Action) Check(g *Guest) (skip string) {
	if g == nil {
		return "unknown guest"
	}
	return checkCommands(g, a.Commands()...)
}

// validate catches actions built by hand rather than by ParseAction.
func (a Action) validate() error {
	switch a.Kind {
	case ActPing, ActFreeze, ActThaw, ActSetTime, ActFstrim, ActInfo, ActShutdown:
		return nil
	case ActSuspend:
		if !slices.Contains([]string{agentclient.SuspendDisk, agentclient.SuspendRAM, agentclient.SuspendHybrid}, a.Mode) {
			return fmt.Errorf("suspend mode %q: want disk, ram or hybrid", a.Mode)
		}
	case ActVCPUs:
		if (a.Mode != "online" && a.Mode != "offline") || len(a.IDs) == 0 {
			return fmt.Errorf("vcpus needs online|offline and at least one id")
		}
	case ActRead, ActWrite:
		if a.Path == "" {
			return fmt.Errorf("%s needs a path", a.Kind)
		}
	case ActPassword, ActSSHKey:
		return a.validateUsers()
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	return nil
}
