package fleet

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Select picks guests by selectors, keeping the guests' order and dropping
// duplicates: a name, a glob (path.Match: "web-*"), tag:X, host:Y, state:Z or
// all. A plain name that matches no guest, an unknown state, a bad glob or an
// unknown prefix is an error naming the selector; a glob, tag or host that
// matches nothing is not.
func Select(guests []*Guest, selectors []string) ([]*Guest, error) {
	picked := make([]bool, len(guests))
	for _, sel := range selectors {
		m, err := selector(sel)
		if err != nil {
			return nil, err
		}
		found := false
		for i, g := range guests {
			if m(g) {
				picked[i], found = true, true
			}
		}
		if !found && isPlainName(sel) {
			return nil, fmt.Errorf("selector %q: no guest has that name", sel)
		}
	}
	var out []*Guest
	for i, g := range guests {
		if picked[i] {
			out = append(out, g)
		}
	}
	return out, nil
}

func isPlainName(sel string) bool {
	return sel != "all" && !strings.Contains(sel, ":") && !strings.ContainsAny(sel, "*?[")
}

// selector compiles one selector into a predicate.
func selector(sel string) (func(*Guest) bool, error) {
	if sel == "" {
		return nil, fmt.Errorf("empty selector")
	}
	if sel == "all" {
		return func(*Guest) bool { return true }, nil
	}
	if prefix, val, ok := strings.Cut(sel, ":"); ok {
		switch prefix {
		case "tag":
			return func(g *Guest) bool { return slices.Contains(g.Tags, val) }, nil
		case "host":
			return func(g *Guest) bool { return globOrEqual(val, g.Host) }, nil
		case "state":
			st := State(val)
			if !slices.Contains(States, st) {
				return nil, fmt.Errorf("selector %q: unknown state %q (want one of %s)", sel, val, stateList())
			}
			return func(g *Guest) bool { return g.State == st }, nil
		}
		if !strings.ContainsAny(sel, "*?[") {
			return nil, fmt.Errorf("selector %q: unknown prefix %q (want tag:, host:, state:, a name, a glob or all)", sel, prefix)
		}
	}
	if strings.ContainsAny(sel, "*?[") {
		if _, err := path.Match(sel, ""); err != nil {
			return nil, fmt.Errorf("selector %q: bad glob: %v", sel, err)
		}
		return func(g *Guest) bool { ok, _ := path.Match(sel, g.Name); return ok }, nil
	}
	return func(g *Guest) bool { return g.Name == sel }, nil
}

func globOrEqual(pattern, s string) bool {
	if strings.ContainsAny(pattern, "*?[") {
		ok, _ := path.Match(pattern, s)
		return ok
	}
	return pattern == s
}

func stateList() string {
	names := make([]string, len(States))
	for i, s := range States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Match reports whether g passes the dashboard filter. Every word must
// match: tag:X, host:Y and state:Z (prefixes of the state name allowed, so
// "state:fro" finds frozen guests), a glob against the name, or otherwise a
// case-insensitive substring of the name, host, address, hostname, OS,
// state, a tag or an IP address.
func Match(g *Guest, filter string) bool {
	for word := range strings.FieldsSeq(filter) {
		if !matchWord(g, word) {
			return false
		}
	}
	return true
}

func matchWord(g *Guest, w string) bool {
	if prefix, val, ok := strings.Cut(w, ":"); ok {
		switch prefix {
		case "tag":
			for _, t := range g.Tags {
				if globOrEqual(val, t) {
					return true
				}
			}
			return false
		case "host":
			return globOrEqual(val, g.Host) || (!strings.ContainsAny(val, "*?[") && containsFold(g.Host, val))
		case "state":
			return strings.HasPrefix(string(g.State), strings.ToLower(val))
		}
	}
	if strings.ContainsAny(w, "*?[") {
		if ok, err := path.Match(w, g.Name); err == nil {
			return ok
		}
	}
	if containsFold(g.Name, w) || containsFold(g.Host, w) || containsFold(g.Address, w) ||
		containsFold(g.Hostname, w) || containsFold(string(g.State), w) {
		return true
	}
	if g.OS != nil && containsFold(g.OS.PrettyName, w) {
		return true
	}
	for _, t := range g.Tags {
		if containsFold(t, w) {
			return true
		}
	}
	for _, in := range g.Interfaces {
		for _, ip := range in.IPAddresses {
			if strings.HasPrefix(ip.Address, w) {
				return true
			}
		}
	}
	return false
}

func containsFold(s, sub string) bool {
	if len(sub) > len(s) {
		return false
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
