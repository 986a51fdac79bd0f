package present

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// The views of a guest below return the guest's own strings, unescaped:
// JSON output needs them exact. Pass them through Text before they reach a
// terminal. Addresses are the exception: only parsed addresses come out, so
// they are safe as they are.

// OSName is the guest's OS as people name it: the pretty name, else name
// and version, else the ID; "" when the guest has not said.
func OSName(g *fleet.Guest) string {
	if g.OS == nil {
		return ""
	}
	switch {
	case g.OS.PrettyName != "":
		return g.OS.PrettyName
	case g.OS.Name != "":
		return strings.TrimSpace(g.OS.Name + " " + g.OS.Version)
	}
	return g.OS.ID
}

// OSLabel is OSName for a screen: a guest without /etc/os-release (its
// agent then reports only the kernel) shows its kernel release, "kernel
// 6.1.0-28-amd64", rather than nothing. JSON keeps OSName: "" there says
// the guest named no OS.
func OSLabel(g *fleet.Guest) string {
	if s := OSName(g); s != "" || g.OS == nil {
		return s
	}
	if k := strings.TrimSpace(g.OS.KernelRelease); k != "" {
		return "kernel " + k
	}
	if k := strings.TrimSpace(g.OS.KernelVersion); k != "" {
		return "kernel " + k
	}
	return ""
}

// VCPUCounts counts the guest's online and reported vCPUs.
func VCPUCounts(g *fleet.Guest) (online, total int) {
	for _, v := range g.VCPUs {
		if v.Online {
			online++
		}
	}
	return online, len(g.VCPUs)
}

// FreezeState is what the guest's filesystems are: its agent's answer
// ("thawed", "frozen"), "frozen" for a guest in the frozen state that has not
// said, "" when not known.
func FreezeState(g *fleet.Guest) string {
	if g.Freeze != "" {
		return string(g.Freeze)
	}
	if g.State == fleet.Frozen {
		return string(agentclient.Frozen)
	}
	return ""
}

// FreezeText is FreezeState for a screen: a guest frozen by this process
// with an automatic thaw shows its countdown ("frozen 4:59").
func FreezeText(g *fleet.Guest, now time.Time) string {
	if g.FrozenByUs && !g.ThawAt.IsZero() {
		return "frozen " + Countdown(g.ThawAt.Sub(now))
	}
	return FreezeState(g)
}

// Countdown is m:ss, clamped at zero.
func Countdown(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// loopbackIface reports the interfaces qemu-ga names for loopback (Linux,
// Windows).
func loopbackIface(name string) bool {
	return name == "lo" || strings.HasPrefix(name, "Loopback")
}

// parseAddr parses an address a guest reported. What does not parse is not
// an address and is never shown as one. The zone of a scoped address is
// dropped: it is guest text, and the interface name says the same.
func parseAddr(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.WithZone(""), true
}

// linkLocal6 reports an IPv6 link-local address (fe80::/10): every interface
// has one, so lists leave them out.
func linkLocal6(ip netip.Addr) bool { return ip.Is6() && !ip.Is4In6() && ip.IsLinkLocalUnicast() }

// Addrs is every address of the guest worth listing: on interfaces other
// than loopback, not loopback, not IPv6 link-local. Reported addresses that
// do not parse as IP addresses are dropped.
func Addrs(g *fleet.Guest) []netip.Addr {
	var out []netip.Addr
	for _, ifc := range g.Interfaces {
		if loopbackIface(ifc.Name) {
			continue
		}
		for _, a := range ifc.IPAddresses {
			ip, ok := parseAddr(a.Address)
			if !ok || ip.Unmap().IsLoopback() || linkLocal6(ip) {
				continue
			}
			out = append(out, ip)
		}
	}
	return out
}

// AddrList is Addrs joined with commas, for the status table.
func AddrList(g *fleet.Guest) string {
	as := Addrs(g)
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

// FirstAddrs is the guest's first IPv4 and first IPv6 address (a link-local
// one only when it has no other), for a narrow column. Loopback and what does
// not parse are skipped.
func FirstAddrs(g *fleet.Guest) string {
	var v4, v6, v6link netip.Addr
	for _, in := range g.Interfaces {
		for _, a := range in.IPAddresses {
			ip, ok := parseAddr(a.Address)
			if !ok || ip.Unmap().IsLoopback() {
				continue
			}
			switch {
			case ip.Is4():
				if !v4.IsValid() {
					v4 = ip
				}
			case linkLocal6(ip):
				if !v6link.IsValid() {
					v6link = ip
				}
			case !v6.IsValid():
				v6 = ip
			}
		}
	}
	if !v6.IsValid() {
		v6 = v6link
	}
	var parts []string
	for _, ip := range []netip.Addr{v4, v6} {
		if ip.IsValid() {
			parts = append(parts, ip.String())
		}
	}
	return strings.Join(parts, " ")
}

// Addr is one reported address with its prefix for the detail pane: "ip/24".
// An address that does not parse is shown escaped and marked, so a guest
// reporting garbage is visible as such: `invalid: \x1b]52;…`. A prefix out
// of range for the address is marked too.
func Addr(a agentclient.IPAddress, max int) string {
	ip, ok := parseAddr(a.Address)
	if !ok {
		return "invalid: " + Text(a.Address, max)
	}
	if a.Prefix < 0 || a.Prefix > ip.BitLen() {
		return ip.String() + "/? (bad prefix " + strconv.Itoa(a.Prefix) + ")"
	}
	return ip.String() + "/" + strconv.Itoa(a.Prefix)
}

// ErrBrief is the guest's error in a few words for a cell ("agent silent",
// "connection refused"), from the class of the error behind it
// (fleet.Guest.Cause); the whole text, Guest.Err, is for where one reads
// it (the detail pane wraps it). An error known only in words is those
// words, which the cell cuts. Unescaped, like the views above.
func ErrBrief(g *fleet.Guest) string {
	if g.Err == "" {
		return ""
	}
	if g.Cause == nil {
		return g.Err
	}
	if g.State == fleet.Gone {
		// It was shutting down: that it stopped answering is the news,
		// not how (the detail pane says).
		return "went away"
	}
	if s := Brief(g.Cause); s != "" {
		return s
	}
	return g.Err
}

// Brief names err's class in a few words, "" when it has none of the
// classes below. The first that matches wins: a silent agent also timed
// out, a poll that ran out also timed out.
func Brief(err error) string {
	var ae *agentclient.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, agentclient.ErrBudget):
		return "reply budget full"
	case agentclient.IsChannelHeld(err):
		return "channel held by another client"
	case agentclient.IsSilent(err):
		return "agent silent"
	case fleet.IsPollTimeout(err):
		return "poll ran out of time"
	case errors.Is(err, agentclient.ErrTooLarge):
		return "reply too large"
	case errors.Is(err, agentclient.ErrMalformed):
		return "not a guest-agent reply"
	case agentclient.IsConnLost(err):
		return "connection lost"
	case errors.Is(err, agentclient.ErrClosed):
		return "connection closed"
	case agentclient.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, fs.ErrNotExist):
		return "no such socket"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case agentclient.IsFrozen(err):
		return "guest is frozen"
	case errors.As(err, &ae):
		return ae.Desc // the agent's own words
	}
	return ""
}

// Reason is an error in the words a person needs, escaped and cut to max
// cells: the agent's own description ("Permission denied") rather than the
// protocol's class names, and plain words for the failures every command
// shares. Callers add what only they know (which file, what to do next).
func Reason(err error, max int) string {
	var ae *agentclient.Error
	var s string
	switch {
	case err == nil:
		return ""
	case agentclient.IsFrozen(err):
		s = "guest is frozen: thaw it first"
	case agentclient.IsDisabled(err):
		s = "the guest's agent has this command disabled"
		if errors.As(err, &ae) && ae.Desc != "" {
			s += ": " + ae.Desc
		}
	case agentclient.IsSilent(err):
		s = "the agent is silent (channel up, nothing answers)"
	case errors.Is(err, context.Canceled):
		s = "cancelled"
	case agentclient.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		s = "the agent did not answer in time"
	case errors.As(err, &ae):
		s = ae.Desc // the agent's own words
	case errors.Is(err, fs.ErrPermission):
		s = "permission denied"
	case errors.Is(err, fs.ErrNotExist):
		s = "no such file or directory"
	default:
		s = err.Error()
	}
	return Text(s, max)
}
