package tui

// Bridges to the fleet core's filter and action helpers (fleet.Match,
// fleet.ParseAction, Action.Check, Mutating, Destructive). They are written
// against the contract in contracts.md and defer to the fleet package where it
// already provides the function.

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/guestdeck/guestdeck/fleet"
)

// matchGuest is the UI filter: space-separated terms that must all match;
// a term is tag:X, host:X, state:X, a glob (contains * ? [) or a substring of
// the name, host, address or OS name.
func matchGuest(g *fleet.Guest, filter string) bool {
	for _, term := range strings.Fields(filter) {
		if !matchTerm(g, term) {
			return false
		}
	}
	return true
}

func matchTerm(g *fleet.Guest, term string) bool {
	lower := strings.ToLower(term)
	switch {
	case strings.HasPrefix(lower, "tag:"):
		for _, t := range g.Tags {
			if globOrEqual(lower[4:], strings.ToLower(t)) {
				return true
			}
		}
		return false
	case strings.HasPrefix(lower, "host:"):
		return globOrEqual(lower[5:], strings.ToLower(g.Host))
	case strings.HasPrefix(lower, "state:"):
		return globOrEqual(lower[6:], string(g.State))
	case strings.ContainsAny(lower, "*?["):
		ok, _ := path.Match(lower, strings.ToLower(g.Name))
		return ok
	}
	if containsFold(g.Name, lower) || containsFold(g.Host, lower) || containsFold(g.Address, lower) {
		return true
	}
	if g.OS != nil && containsFold(g.OS.PrettyName, lower) {
		return true
	}
	return false
}

func globOrEqual(pattern, s string) bool {
	if strings.ContainsAny(pattern, "*?[") {
		ok, _ := path.Match(pattern, s)
		return ok
	}
	return pattern == s
}

// containsFold is strings.Contains(strings.ToLower(s), lowerSub) without
// allocating for the common ASCII case.
func containsFold(s, lowerSub string) bool {
	if lowerSub == "" {
		return true
	}
	n := len(lowerSub)
	for i := 0; i+n <= len(s); i++ {
		match := true
		for j := 0; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerSub[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// parseAction parses a command line ("freeze", "shutdown reboot",
// "vcpus offline 2,3", "read /etc/x"). "cat" is accepted for read.
func parseAction(args []string) (fleet.Action, error) {
	if len(args) == 0 {
		return fleet.Action{}, fmt.Errorf("no action given")
	}
	verb := strings.ToLower(args[0])
	if verb == "cat" {
		verb = string(fleet.ActRead)
	}
	rest := args[1:]
	a := fleet.Action{Kind: fleet.Kind(verb)}
	oneMode := func(def string, allowed ...string) error {
		if len(rest) == 0 {
			a.Mode = def
			return nil
		}
		if len(rest) > 1 {
			return fmt.Errorf("%s: too many arguments: %s", verb, strings.Join(rest, " "))
		}
		for _, m := range allowed {
			if rest[0] == m {
				a.Mode = m
				return nil
			}
		}
		return fmt.Errorf("%s: mode %q: want one of %s", verb, rest[0], strings.Join(allowed, ", "))
	}
	var err error
	switch a.Kind {
	case fleet.ActPing, fleet.ActFreeze, fleet.ActThaw, fleet.ActSetTime, fleet.ActFstrim, fleet.ActInfo:
		if len(rest) > 0 {
			err = fmt.Errorf("%s takes no arguments", verb)
		}
	case fleet.ActShutdown:
		err = oneMode("powerdown", "powerdown", "reboot", "halt")
	case fleet.ActSuspend:
		if len(rest) == 0 {
			err = fmt.Errorf("suspend: mode required: disk, ram or hybrid")
		} else {
			err = oneMode("", "disk", "ram", "hybrid")
		}
	case fleet.ActVCPUs:
		if len(rest) != 2 || (rest[0] != "online" && rest[0] != "offline") {
			return a, fmt.Errorf("vcpus: want \"vcpus online|offline ID[,ID...]\"")
		}
		a.Mode = rest[0]
		for _, f := range strings.Split(rest[1], ",") {
			id, perr := strconv.Atoi(strings.TrimSpace(f))
			if perr != nil || id < 0 {
				return a, fmt.Errorf("vcpus: bad vCPU id %q", f)
			}
			a.IDs = append(a.IDs, id)
		}
	case fleet.ActRead:
		if len(rest) != 1 {
			err = fmt.Errorf("read: want one path")
		} else {
			a.Path = rest[0]
		}
	case fleet.ActWrite:
		if len(rest) < 2 {
			err = fmt.Errorf("write: want a path and the text to write")
		} else {
			a.Path = rest[0]
			a.Data = []byte(strings.Join(rest[1:], " ") + "\n")
		}
	default:
		err = fmt.Errorf("unknown action %q", args[0])
	}
	return a, err
}

// actionMutating reports whether a changes guest state (refused read-only).
func actionMutating(a fleet.Action) bool {
	switch a.Kind {
	case fleet.ActPing, fleet.ActRead, fleet.ActInfo:
		return false
	}
	return true
}

// actionDestructive reports whether a needs confirmation.
func actionDestructive(a fleet.Action) bool {
	switch a.Kind {
	case fleet.ActFreeze, fleet.ActShutdown, fleet.ActSuspend, fleet.ActWrite:
		return true
	case fleet.ActVCPUs:
		return a.Mode == "offline"
	}
	return false
}

// actionCommands lists the agent commands a needs.
func actionCommands(a fleet.Action) []string {
	switch a.Kind {
	case fleet.ActPing:
		return []string{"guest-ping"}
	case fleet.ActFreeze:
		return []string{"guest-fsfreeze-freeze"}
	case fleet.ActThaw:
		return []string{"guest-fsfreeze-thaw"}
	case fleet.ActShutdown:
		return []string{"guest-shutdown"}
	case fleet.ActSuspend:
		return []string{"guest-suspend-" + a.Mode}
	case fleet.ActSetTime:
		return []string{"guest-set-time"}
	case fleet.ActFstrim:
		return []string{"guest-fstrim"}
	case fleet.ActVCPUs:
		return []string{"guest-set-vcpus"}
	case fleet.ActRead:
		return []string{"guest-file-open", "guest-file-read", "guest-file-close"}
	case fleet.ActWrite:
		return []string{"guest-file-open", "guest-file-write", "guest-file-close"}
	case fleet.ActInfo:
		return []string{"guest-info"}
	}
	return nil
}

// actionCheck returns why a cannot run on g ("" when it can).
func actionCheck(a fleet.Action, g *fleet.Guest) string {
	for _, c := range actionCommands(a) {
		present, enabled := g.Capability(c)
		if !present {
			return "agent lacks " + c
		}
		if !enabled {
			return c + " is disabled"
		}
	}
	return ""
}

// actionString renders a as typed on the command line.
func actionString(a fleet.Action) string {
	parts := []string{string(a.Kind)}
	if a.Mode != "" && !(a.Kind == fleet.ActShutdown && a.Mode == "powerdown") {
		parts = append(parts, a.Mode)
	}
	if len(a.IDs) > 0 {
		ids := make([]string, len(a.IDs))
		for i, id := range a.IDs {
			ids[i] = strconv.Itoa(id)
		}
		parts = append(parts, strings.Join(ids, ","))
	}
	if a.Path != "" {
		parts = append(parts, a.Path)
	}
	return strings.Join(parts, " ")
}
