package present

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

func ifc(name string, addrs ...string) agentclient.Interface {
	in := agentclient.Interface{Name: name}
	for _, a := range addrs {
		in.IPAddresses = append(in.IPAddresses, agentclient.IPAddress{Address: a, Prefix: 24})
	}
	return in
}

func TestAddresses(t *testing.T) {
	tests := []struct {
		name        string
		ifcs        []agentclient.Interface
		list, first string
	}{
		{"usual", []agentclient.Interface{ifc("lo", "127.0.0.1", "::1"), ifc("eth0", "192.0.2.10", "fe80::5054:ff:fe12:3456")},
			"192.0.2.10", "192.0.2.10 fe80::5054:ff:fe12:3456"},
		{"global v6 beats link-local", []agentclient.Interface{ifc("eth0", "fe80::1", "2001:db8::7", "192.0.2.1", "192.0.2.2")},
			"2001:db8::7,192.0.2.1,192.0.2.2", "192.0.2.1 2001:db8::7"},
		{"link-local filter by parse, not prefix text", []agentclient.Interface{ifc("eth0", "FE80::1", "fe8x::1")},
			"", "fe80::1"},
		{"escapes are not addresses", []agentclient.Interface{ifc("eth0", "10.0.0.1\x1b]52;c;eA==\x07", "\u202e10.0.0.2", "10.0.0.3")},
			"10.0.0.3", "10.0.0.3"},
		{"zone with escapes is dropped", []agentclient.Interface{ifc("eth0", "fe80::1%\x1b[2J", "2001:db8::1%eth0")},
			"2001:db8::1", "2001:db8::1"},
		{"loopback interface and addresses", []agentclient.Interface{ifc("Loopback Pseudo-Interface 1", "10.9.9.9"), ifc("eth0", "127.0.0.2", "::ffff:127.0.0.1")},
			"", "10.9.9.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fleet.Guest{Interfaces: tt.ifcs}
			if got := AddrList(g); got != tt.list {
				t.Errorf("AddrList = %q, want %q", got, tt.list)
			}
			if got := FirstAddrs(g); got != tt.first {
				t.Errorf("FirstAddrs = %q, want %q", got, tt.first)
			}
		})
	}
}

func TestAddr(t *testing.T) {
	tests := []struct {
		in   agentclient.IPAddress
		want string
	}{
		{agentclient.IPAddress{Address: "192.0.2.1", Prefix: 24}, "192.0.2.1/24"},
		{agentclient.IPAddress{Address: "2001:db8::1", Prefix: 64}, "2001:db8::1/64"},
		{agentclient.IPAddress{Address: "192.0.2.1", Prefix: 99}, "192.0.2.1/? (bad prefix 99)"},
		{agentclient.IPAddress{Address: "\x1b]0;x\x07", Prefix: 24}, `invalid: \x1b]0;x\x07`},
		{agentclient.IPAddress{Address: strings.Repeat("9", 1000), Prefix: 24}, "invalid: " + strings.Repeat("9", 19) + "…"},
	}
	for _, tt := range tests {
		if got := Addr(tt.in, 20); got != tt.want {
			t.Errorf("Addr(%q/%d) = %q, want %q", tt.in.Address, tt.in.Prefix, got, tt.want)
		}
	}
}

func TestGuestViews(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		g      fleet.Guest
		os     string
		freeze string
		text   string
	}{
		{"pretty", fleet.Guest{OS: &agentclient.OSInfo{PrettyName: "Debian 12", Name: "Debian"}, Freeze: agentclient.Thawed}, "Debian 12", "thawed", "thawed"},
		{"name and version", fleet.Guest{OS: &agentclient.OSInfo{Name: "Fedora", Version: "41"}}, "Fedora 41", "", ""},
		{"id only", fleet.Guest{OS: &agentclient.OSInfo{ID: "alpine"}, State: fleet.Frozen}, "alpine", "frozen", "frozen"},
		{"countdown", fleet.Guest{Freeze: agentclient.Frozen, FrozenByUs: true, ThawAt: now.Add(4*time.Minute + 59*time.Second)}, "", "frozen", "frozen 4:59"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OSName(&tt.g); got != tt.os {
				t.Errorf("OSName = %q, want %q", got, tt.os)
			}
			if got := FreezeState(&tt.g); got != tt.freeze {
				t.Errorf("FreezeState = %q, want %q", got, tt.freeze)
			}
			if got := FreezeText(&tt.g, now); got != tt.text {
				t.Errorf("FreezeText = %q, want %q", got, tt.text)
			}
		})
	}
	g := &fleet.Guest{VCPUs: []agentclient.VCPU{{Online: true}, {Online: false}, {Online: true}}}
	if on, total := VCPUCounts(g); on != 2 || total != 3 {
		t.Errorf("VCPUCounts = %d/%d", on, total)
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"agent's own words, escaped", fmt.Errorf("guest x: %w", &agentclient.Error{Class: "GenericError", Desc: "Permission denied\x1b]52;c;eA==\x07"}),
			`Permission denied\x1b]52;c;eA==\x07`},
		{"frozen", &agentclient.Error{Class: "GenericError", Desc: "Command guest-file-open has been disabled: the agent is in frozen state"},
			"guest is frozen: thaw it first"},
		{"timeout", fmt.Errorf("read: %w", agentclient.ErrTimeout), "the agent did not answer in time"},
		{"deadline", context.DeadlineExceeded, "the agent did not answer in time"},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), "cancelled"},
		{"silent", agentclient.ErrSilent, "the agent is silent (channel up, nothing answers)"},
		{"local permission", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, "permission denied"},
		{"other, escaped and cut", errors.New("boom\u202e" + strings.Repeat("!", 100)), `boom\u202e` + strings.Repeat("!", 49) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reason(tt.err, 60); got != tt.want {
				t.Errorf("Reason = %q, want %q", got, tt.want)
			}
		})
	}
	if Reason(nil, 10) != "" {
		t.Error("Reason(nil) is not empty")
	}
}
