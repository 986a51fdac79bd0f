package present

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// A guest's error comes in two forms: a few words for a cell, from the
// class of the error behind it (fleet.Guest.Cause), and the whole text,
// which says each thing once. The errors are the fleet's own, from
// simulated guests that fail for real: a silent agent (channel up, nothing
// answers the sync), a socket that refuses, a socket that is gone.
func TestErrBriefFromRealFaults(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("s%02d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	farm.Guests()[0].SetSilent(true)
	farm.Guests()[0].Restart()

	// A socket file nobody listens on: connect is refused.
	refused := filepath.Join(dir, "refused.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: refused, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()

	f := fleet.New(fleet.Options{Interval: 200 * time.Millisecond, SlowInterval: time.Second, Timeout: 300 * time.Millisecond, MaxBackoff: 400 * time.Millisecond})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "silent", Address: "unix:" + farm.Sockets()[0]})
	f.Add(fleet.Target{Name: "refused", Address: "unix:" + refused})
	f.Add(fleet.Target{Name: "gone", Address: "unix:" + filepath.Join(dir, "nothing-here.sock")})
	f.Start(t.Context())

	for _, tt := range []struct {
		guest string
		state fleet.State
		brief string
		once  []string // each said exactly once in the whole text
	}{
		{"silent", fleet.Silent, "agent silent", []string{"guest-sync-delimited", "in time", "silent", "no agent running"}},
		{"refused", fleet.Unreachable, "connection refused", []string{"connection refused"}},
		{"gone", fleet.Unreachable, "no such socket", nil},
	} {
		t.Run(tt.guest, func(t *testing.T) {
			var g *fleet.Guest
			wait.For(t, 10*time.Second, func() (bool, string) {
				g = f.Guest(tt.guest)
				return g.State == tt.state, fmt.Sprintf("%s %q", g.State, g.Err)
			})
			if got := ErrBrief(g); got != tt.brief {
				t.Errorf("ErrBrief = %q, want %q (Err %q)", got, tt.brief, g.Err)
			}
			for _, s := range tt.once {
				if n := strings.Count(g.Err, s); n != 1 {
					t.Errorf("%q said %d times in %q", s, n, g.Err)
				}
			}
			if strings.Contains(g.Err, "did not answer in time") {
				t.Errorf("the timeout repeats the silence: %q", g.Err)
			}
		})
	}
}

func TestErrBrief(t *testing.T) {
	tests := []struct {
		name string
		g    fleet.Guest
		want string
	}{
		{"healthy", fleet.Guest{}, ""},
		{"words only (libvirt's reason) stay as they are", fleet.Guest{Err: "domain paused"}, "domain paused"},
		{"the agent's own words", fleet.Guest{Err: "x", Cause: fmt.Errorf("a: %w", &agentclient.Error{Class: "GenericError", Desc: "Permission denied"})}, "Permission denied"},
		{"reply too large", fleet.Guest{Err: "x", Cause: &agentclient.TooLargeError{Command: "guest-get-osinfo", Bytes: 1 << 20, Limit: 64 << 10}}, "reply too large"},
		{"budget before all else", fleet.Guest{Err: "x", Cause: fmt.Errorf("%w: big", agentclient.ErrBudget)}, "reply budget full"},
		{"connection lost", fleet.Guest{Err: "x", Cause: fmt.Errorf("read: %w", agentclient.ErrConnLost)}, "connection lost"},
		{"timeout", fleet.Guest{Err: "x", Cause: fmt.Errorf("read: %w", agentclient.ErrTimeout)}, "no answer in time"},
		{"gone after a shutdown", fleet.Guest{State: fleet.Gone, Err: "guest went away: x", Cause: fmt.Errorf("x: %w", agentclient.ErrSilent)}, "went away"},
		{"unclassified: the text", fleet.Guest{Err: "ssh: handshake failed", Cause: fmt.Errorf("ssh: handshake failed")}, "ssh: handshake failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrBrief(&tt.g); got != tt.want {
				t.Errorf("ErrBrief = %q, want %q", got, tt.want)
			}
		})
	}
}

// A guest without /etc/os-release reports only its kernel: the screens
// name the kernel release rather than nothing (or the machine, "x86_64",
// where the name would be); OSName, which JSON uses, stays empty.
func TestOSLabel(t *testing.T) {
	tests := []struct {
		name      string
		os        *agentclient.OSInfo
		label, js string
	}{
		{"no osinfo", nil, "", ""},
		{"os-release", &agentclient.OSInfo{PrettyName: "Debian GNU/Linux 12 (bookworm)", KernelRelease: "6.1.0-28-amd64"}, "Debian GNU/Linux 12 (bookworm)", "Debian GNU/Linux 12 (bookworm)"},
		{"kernel only", &agentclient.OSInfo{KernelRelease: "6.1.0-28-amd64", KernelVersion: "#1 SMP", Machine: "x86_64"}, "kernel 6.1.0-28-amd64", ""},
		{"kernel version only", &agentclient.OSInfo{KernelVersion: "#1 SMP", Machine: "x86_64"}, "kernel #1 SMP", ""},
		{"machine only", &agentclient.OSInfo{Machine: "x86_64"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fleet.Guest{OS: tt.os}
			if got := OSLabel(g); got != tt.label {
				t.Errorf("OSLabel = %q, want %q", got, tt.label)
			}
			if got := OSName(g); got != tt.js {
				t.Errorf("OSName = %q, want %q", got, tt.js)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	long := "connect: agent unix:/run/qga/ci-01.sock: guest-sync-delimited: channel up but the agent is silent: no answer in time (no agent running, guest paused or booting, or another client holds the channel)"
	lines := Wrap(long, 40, 10)
	if strings.Join(lines, " ") != long {
		t.Errorf("wrapped text lost words:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if Width(l) > 40 {
			t.Errorf("line %q is wider than 40", l)
		}
	}
	cut := Wrap(long, 40, 2)
	if len(cut) != 2 || !strings.HasSuffix(cut[1], Ellipsis) {
		t.Errorf("cut to 2 lines: %q", cut)
	}
	esc := Wrap("boom\x1b]52;c;eA==\x07 done", 40, 3)
	if strings.ContainsAny(strings.Join(esc, ""), "\x1b\x07") {
		t.Errorf("escape sequence reached the lines: %q", esc)
	}
}
