package fleet

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Select picks guests by selectors, keeping the guests' order and dropping
// duplicates: a name, a glob (path.Match: "web-*"), tag:X, host:Y, state:Z,
// re:REGEXP (on the name or domain, as a glob) or all. A plain name that matches no guest, an unknown state, a bad glob or an
// unknown prefix is an error naming the selector; a glob, tag or host that
// matches nothing is not.
//
// A name is a guest's whole name: "web-1" for a guest reached directly,
// "HOST/DOMAIN" for one discovered on a libvirt host. A bare domain name is
// never taken to mean HOST/DOMAIN, not even when one host has that domain:
// which hosts answered, and which domains run, change from one moment to the
// next, and what a name selects must not. It is refused with a *NameError
// listing every guest it might mean. A glob without '/' is matched against
// domain names too, so "web-*" still takes hv-a/web-1: a glob selects a set
// and says so.
//
// A selector that is exactly a guest's whole name (other than all) selects
// that guest alone, before it is read as a glob or a prefix: a libvirt host
// names its domains as it likes, and "hv-a/db[1]" typed as shown must not
// select hv-a/db1, nor "hv-a/*" every guest on hv-a (host:hv-a does that).
func Select(guests []*Guest, selectors []string) ([]*Guest, error) {
	picked := make([]bool, len(guests))
	for _, sel := range selectors {
		m, err := selector(sel)
		if sel != "all" && slices.ContainsFunc(guests, func(g *Guest) bool { return g.Name == sel }) {
			m, err = func(g *Guest) bool { return g.Name == sel }, nil
		}
		if err != nil {
			return nil, err
		}
		found := false
		var hits []string
		for i, g := range guests {
			if m(g) {
				picked[i], found = true, true
				hits = append(hits, g.Name)
			}
		}
		if !found && isPlainName(sel) {
			return nil, nameError(guests, sel)
		}
		if len(hits) > 1 && IsUUID(sel) {
			// A UUID names one domain, as a name does: the same
			// definition on two hosts is not a set to act on.
			return nil, &NameError{Name: sel, Candidates: hits, UUID: true}
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

// Lookup finds the one guest a command such as cat or agent names: the
// guest whose whole name is name. Anything else, a bare domain name
// included, is a *NameError.
func Lookup(guests []*Guest, name string) (*Guest, error) {
	for _, g := range guests {
		if g.Name == name {
			return g, nil
		}
	}
	return nil, nameError(guests, name)
}

// uuidSelector reads sel as a libvirt domain's UUID: "uuid:U" or U alone,
// 8-4-4-4-12 hex digits in either case (virsh takes a UUID wherever it
// takes a domain's name). u is the UUID as Guest.UUID holds it.
func uuidSelector(sel string) (u string, ok bool) {
	s := strings.TrimPrefix(sel, "uuid:")
	if len(s) != 36 {
		return "", false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return "", false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", r):
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// NameError is a name that is no guest's. Candidates are the guests it might
// have meant: when it is a bare domain name, every guest discovered with that
// domain, by name (HOST/DOMAIN), in the fleet's order.
type NameError struct {
	Name       string
	Candidates []string
	// UUID: Name is a UUID that several hosts' domains share.
	UUID bool
}

func (e *NameError) Error() string {
	if e.UUID {
		return fmt.Sprintf("%q is ambiguous: domains on %d hosts have that UUID; name one: %s", e.Name, len(e.Candidates), strings.Join(e.Candidates, ", "))
	}
	switch len(e.Candidates) {
	case 0:
		return fmt.Sprintf("%q: no guest has that name", e.Name)
	case 1:
		return fmt.Sprintf("%q: no guest has that name; guests on libvirt hosts are named HOST/DOMAIN: %s", e.Name, e.Candidates[0])
	}
	return fmt.Sprintf("%q is ambiguous: domain %s is on %d hosts; name one: %s",
		e.Name, e.Name, len(e.Candidates), strings.Join(e.Candidates, ", "))
}

func nameError(guests []*Guest, name string) *NameError {
	e := &NameError{Name: name}
	if name != "" && !strings.Contains(name, "/") {
		for _, g := range guests {
			if g.Domain() == name {
				e.Candidates = append(e.Candidates, g.Name)
			}
		}
	}
	return e
}

// IsPlainName reports whether selector sel can only name one guest: it is
// no glob, no tag:, host: or state: selector, and not all.
func IsPlainName(sel string) bool { return isPlainName(sel) }

func isPlainName(sel string) bool {
	return sel != "all" && !strings.Contains(sel, ":") && !strings.ContainsAny(sel, "*?[")
}

// IsUUID reports whether selector sel names a guest by its libvirt
// domain's UUID (uuid:U or U alone). Commands that take one guest's name
// (cat GUEST PATH) take names only; a UUID is a selector.
func IsUUID(sel string) bool { _, ok := uuidSelector(sel); return ok }

// selector compiles one selector into a predicate.
func selector(sel string) (func(*Guest) bool, error) {
	if sel == "" {
		return nil, fmt.Errorf("empty selector")
	}
	if sel == "all" {
		return func(*Guest) bool { return true }, nil
	}
	if u, ok := uuidSelector(sel); ok {
		return func(g *Guest) bool { return g.UUID != "" && g.UUID == u }, nil
	}
	if prefix, val, ok := strings.Cut(sel, ":"); ok {
		switch prefix {
		case "tag":
			return func(g *Guest) bool { return slices.Contains(g.Tags, val) }, nil
		case "host":
			return func(g *Guest) bool { return globOrEqual(val, g.Host) }, nil
		case "re":
			re, err := compileNameRegexp(sel, val)
			if err != nil {
				return nil, err
			}
			return func(g *Guest) bool { return re.matchName(g) }, nil
		case "state":
			st := State(val)
			if !slices.Contains(States, st) {
				return nil, unknownState(sel, val)
			}
			return func(g *Guest) bool { return g.State == st }, nil
		}
		if !strings.ContainsAny(sel, "*?[") {
			if prefix == "uuid" {
				return nil, fmt.Errorf("selector %q: not a UUID (want uuid:8-4-4-4-12 hex digits, as virsh domuuid prints it)", sel)
			}
			return nil, fmt.Errorf("selector %q: unknown prefix %q (want tag:, host:, state:, re:, uuid:, a name, a glob or all)", sel, prefix)
		}
	}
	if strings.ContainsAny(sel, "*?[") {
		if _, err := path.Match(sel, ""); err != nil {
			return nil, fmt.Errorf("selector %q: bad glob: %v", sel, err)
		}
		return func(g *Guest) bool { return globName(sel, g) }, nil
	}
	return func(g *Guest) bool { return g.Name == sel }, nil
}

// globName matches a glob against g's name and, when the glob has no '/'
// (which no '*' matches), against its domain.
func globName(pattern string, g *Guest) bool {
	if ok, _ := path.Match(pattern, g.Name); ok {
		return true
	}
	if strings.Contains(pattern, "/") {
		return false
	}
	dom := g.Domain()
	ok, _ := path.Match(pattern, dom)
	return ok && dom != ""
}

func globOrEqual(pattern, s string) bool {
	if strings.ContainsAny(pattern, "*?[") {
		ok, _ := path.Match(pattern, s)
		return ok
	}
	return pattern == s
}

// unknownState is the error for a state: selector or filter word that
// names no state, one text for the CLI and the dashboard.
func unknownState(sel, val string) error {
	return fmt.Errorf("selector %q: unknown state %q (want one of %s)", sel, val, stateList())
}

// CheckFilter returns the error Select gives for the first word of a
// dashboard filter that no guest can ever match: a state: word that is not
// a prefix of any state ("state:fro" is fine as you type, "state:bogus" is
// not), or a re: word that is no regular expression. Other words stay free
// text (an address has colons too).
func CheckFilter(filter string) error {
	_, err := CompileFilter(filter)
	return err
}

func stateList() string {
	names := make([]string, len(States))
	for i, s := range States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Match reports whether g passes the dashboard filter (see CompileFilter).
// A filter that does not compile matches no guest. To match many guests,
// compile the filter once.
func Match(g *Guest, filter string) bool {
	f, err := CompileFilter(filter)
	return err == nil && f.Match(g)
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
		case "uuid":
			return g.UUID != "" && strings.HasPrefix(g.UUID, strings.ToLower(val))
		// What the guest itself reports is matched only when the word asks
		// for it by name: a plain word matching hostnames would let a guest
		// that calls itself "web-prod" join a "web" filter, and so the bulk
		// action sent to the rows it leaves.
		case "hostname":
			return globOrEqual(val, g.Hostname) || (!strings.ContainsAny(val, "*?[") && containsFold(g.Hostname, val))
		case "os":
			return g.OS != nil && (containsFold(g.OS.PrettyName, val) || containsFold(g.OS.Name, val) ||
				containsFold(g.OS.KernelRelease, val))
		case "ip":
			for _, in := range g.Interfaces {
				for _, ip := range in.IPAddresses {
					if strings.HasPrefix(ip.Address, val) {
						return true
					}
				}
			}
			return false
		}
	}
	if strings.ContainsAny(w, "*?[") {
		if _, err := path.Match(w, ""); err == nil {
			return globName(w, g)
		}
	}
	// A plain word: only what the operator or the hypervisor named (the
	// guest's name, host, address, UUID and tags) and its state.
	// A UUID only by its start, and eight characters of it at least: as
	// a substring, two hex letters ("db") match one UUID in eight.
	if containsFold(g.Name, w) || containsFold(g.Host, w) || containsFold(g.Address, w) ||
		len(w) >= 8 && g.UUID != "" && strings.HasPrefix(g.UUID, strings.ToLower(w)) ||
		containsFold(string(g.State), w) {
		return true
	}
	for _, t := range g.Tags {
		if containsFold(t, w) {
			return true
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
