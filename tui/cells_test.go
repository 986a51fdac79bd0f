package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
	"github.com/guestdeck/guestdeck/tui/present"
)

func TestCells(t *testing.T) {
	g := testGuest(3) // frozen by us, thaw at testNow+4m30s
	tests := []struct {
		col  colID
		now  time.Time
		want string
	}{
		{colFreeze, testNow, "frozen 4:30"},
		{colFreeze, testNow.Add(4 * time.Minute), "frozen 0:30"},
		{colFreeze, testNow.Add(time.Hour), "frozen 0:00"},
		{colAddr, testNow, "10.0.0.4 fd00::4"},
		{colVCPU, testNow, "2/2"},
		{colSkew, testNow, "-150ms"},
		{colRTT, testNow, "4.0ms"},
		{colOS, testNow, "Debian GNU/Linux 12 (bookworm)"},
	}
	for _, tt := range tests {
		if got := cellText(g, tt.col, tt.now); got != tt.want {
			t.Errorf("%s at %s = %q, want %q", columns[tt.col].title, tt.now.Sub(testNow), got, tt.want)
		}
	}
	// Loopback only: no address; IPv6 only: shown.
	lo := &fleet.Guest{Interfaces: []agentclient.Interface{{Name: "lo", IPAddresses: []agentclient.IPAddress{{Address: "127.0.0.1"}, {Address: "::1"}}},
		{Name: "eth0", IPAddresses: []agentclient.IPAddress{{Address: "fe80::1"}}}}}
	if got := present.FirstAddrs(lo); got != "fe80::1" {
		t.Errorf("FirstAddrs = %q", got)
	}
	lo.Interfaces = append(lo.Interfaces, agentclient.Interface{Name: "eth1", IPAddresses: []agentclient.IPAddress{{Address: "2001:db8::5"}}})
	if got := present.FirstAddrs(lo); got != "2001:db8::5" {
		t.Errorf("FirstAddrs prefers global IPv6: %q", got)
	}
	for d, want := range map[time.Duration]string{0: "0s", 850 * time.Microsecond: "850µs", 12 * time.Millisecond: "12ms",
		1200 * time.Millisecond: "1.2s", 185 * time.Second: "3m05s"} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
	// A skew below a microsecond reads +0µs whatever its sign: never "-0µs",
	// nor "+0s" beside a "+0µs".
	for d, want := range map[time.Duration]string{0: "+0µs", -400 * time.Nanosecond: "+0µs", 999 * time.Nanosecond: "+0µs",
		-time.Microsecond: "-1µs", 1500 * time.Nanosecond: "+1µs", -600 * time.Millisecond: "-600ms"} {
		if got := fmtSkew(d); got != want {
			t.Errorf("fmtSkew(%v) = %q, want %q", d, got, want)
		}
	}
	if got := fit("héllo世界", 6, false); got != "héllo…" {
		t.Errorf("fit wide = %q", got)
	}
	if got := fit("ab", 4, true); got != "  ab" {
		t.Errorf("fit right = %q", got)
	}
}

func TestColouredByState(t *testing.T) {
	p, _ := themes.Builtin("dark")
	m, _ := newTestModel(8, 120, 30, Options{Styles: themes.Compile(p)})
	m = m.withCursor(7)
	out := m.View().Content
	// #ff5f5f (unreachable) and #5fd75f (ready) as truecolor SGR.
	for name, sgr := range map[string]string{"vm-00005": "38;2;255;95;95", "vm-00001": "38;2;95;215;95"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, name) && strings.Contains(line, sgr) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s row not drawn in %s", name, sgr)
		}
	}
}

func (m Model) withCursor(i int) Model { m.moveTo(i); return m }

// TestFilesystemUse: USE% is what the guest's two counts say, and only when
// they make sense: a count near 2^64 does not wrap (used*100 overflowed, so
// a full filesystem read 0%), and used above the size shows no percentage.
func TestFilesystemUse(t *testing.T) {
	tests := []struct {
		used, total uint64
		want        string // the USE% cell, "" for none
	}{
		{3 << 30, 20 << 30, "15%"},
		{29, 100, "29%"},
		{1 << 63, 1 << 63, "100%"},
		{1<<64 - 1, 1<<64 - 1, "100%"},
		{1 << 62, 1 << 63, "50%"},
		{5, 4, ""},
		{0, 0, ""},
	}
	for _, tt := range tests {
		g := testGuest(1)
		g.Filesystems = []agentclient.Filesystem{{Mountpoint: "/", Type: "ext4", Name: "vda1", UsedBytes: u64(tt.used), TotalBytes: u64(tt.total)}}
		m := New(newFakeSource([]*fleet.Guest{g}), Options{Styles: themes.Mono(), Now: func() time.Time { return testNow }})
		lines := m.filesystemLines(g)
		row := strings.Fields(lines[len(lines)-1])
		got := ""
		if last := row[len(row)-1]; strings.HasSuffix(last, "%") {
			got = last
		}
		if got != tt.want {
			t.Errorf("used %d of %d: USE%% %q, want %q (%q)", tt.used, tt.total, got, tt.want, lines[len(lines)-1])
		}
	}
}
