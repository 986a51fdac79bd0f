package tui

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
)

// plainStyles draws without colour, so the only escape sequences of the
// dashboard's own are the few SGR (bold) a view adds itself.
func plainStyles() themes.Styles {
	p := lipgloss.NewStyle()
	s := themes.Styles{Name: "plain", NoColor: true, States: map[string]lipgloss.Style{}}
	for _, st := range fleet.States {
		s.States[string(st)] = p
	}
	s.Accent, s.Muted, s.Border, s.Mark, s.Error, s.OK, s.Warn = p, p, p, p, p, p, p
	s.Header, s.Selection, s.Title, s.TabActive, s.TabIdle, s.Status, s.Banner, s.Disabled = p, p, p, p, p, p, p, p
	s.Dialog = p.Border(lipgloss.RoundedBorder()).Padding(0, 1)
	return s
}

// ownSGR is the styling the dashboard writes itself. sim.Hostile holds no
// SGR sequence, so removing these cannot hide what a guest sent.
var ownSGR = regexp.MustCompile("\x1b\\[[0-9;]*m")

// screenSafe fails when a frame holds anything that could drive or deceive
// the terminal: beyond the dashboard's own SGR, any byte below 0x20 but a
// newline, DEL, C1 controls, bidi controls, invisible format characters.
func screenSafe(t *testing.T, what, frame string) {
	t.Helper()
	frame = ownSGR.ReplaceAllString(frame, "")
	if !utf8.ValidString(frame) {
		t.Errorf("%s: not UTF-8", what)
	}
	for i, r := range frame {
		bad := (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f ||
			r == 0x061c || r == 0x200b || r == 0x200c || r == 0x200d || r == 0xfeff || r == 0x2028 || r == 0x2029
		if bad {
			lo, hi := max(i-60, 0), min(i+40, len(frame))
			t.Errorf("%s: %U at byte %d: %q", what, r, i, frame[lo:hi])
			return
		}
	}
}

// runAction starts a through the model and runs it to the end (runCmd).
func runAction(t *testing.T, m Model, a fleet.Action) Model {
	t.Helper()
	cmd := m.startAction(a)
	return runCmd(t, m, cmd)
}

// runCmd runs the commands an action launch returned, feeding their
// messages back until the action is done. The fleet bounds every call with
// its timeout, so the action ends; the deadline only turns a hang into a
// failure.
func runCmd(t *testing.T, m Model, cmd tea.Cmd) Model {
	t.Helper()
	if cmd == nil {
		t.Fatal("no action started")
	}
	msgs := make(chan tea.Msg, 16)
	start := func(c tea.Cmd) {
		if c == nil {
			return
		}
		go func() { msgs <- c() }()
	}
	start(cmd)
	deadline := time.After(30 * time.Second)
	for {
		var msg tea.Msg
		select {
		case msg = <-msgs:
		case <-deadline:
			t.Fatal("the action did not finish")
		}
		switch msg := msg.(type) {
		case tea.BatchMsg:
			for _, c := range msg {
				start(c)
			}
			continue
		case actionMsg, actionDoneMsg:
		default:
			continue // spinner ticks
		}
		next, c := m.Update(msg)
		m = next.(Model)
		if _, done := msg.(actionDoneMsg); done {
			return m
		}
		start(c)
	}
}

// A guest with escapes in every string it reports, and a name, host and tag
// with them too (a libvirt host names its guests): no frame of the
// dashboard lets any of it through raw, and each view shows it escaped.
func TestHostileGuestDashboard(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		c := sim.HostileConfig("evil")
		c.Files["/tmp/evil.txt"] = sim.File{Data: "first\n" + sim.Hostile + "\nlast\n"}
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 5 * time.Second})
	t.Cleanup(func() {
		f.ThawOurs(context.Background())
		f.Close()
	})
	const h = sim.Hostile
	f.Add(fleet.Target{Name: "evil" + h, Host: "hv" + h, Address: "unix:" + farm.Sockets()[0], Tags: []string{"tag" + h}})
	f.RefreshOnce(context.Background(), nil)
	if g := f.Snapshot().Guests[0]; g.State != fleet.Ready || g.OS == nil || len(g.Filesystems) == 0 {
		t.Fatalf("the hostile guest was not polled: %+v", g)
	}

	m := New(f, Options{Styles: plainStyles(), Now: func() time.Time { return testNow },
		Files: func(guest string) (FilesPane, error) { return nil, fmt.Errorf("no browser for %s", guest) }})
	m.resize(200, 50)
	esc := `\x1b]0;OWNED\x07` // how the start of sim.Hostile reads once escaped

	check := func(what string, m Model, want ...string) {
		t.Helper()
		frame := m.View().Content
		screenSafe(t, what, frame)
		for _, w := range want {
			if !strings.Contains(frame, w) {
				t.Errorf("%s: frame lacks %q:\n%s", what, w, frame)
			}
		}
		if m.View().WindowTitle != "guestdeck" {
			t.Errorf("%s: window title %q", what, m.View().WindowTitle)
		}
	}
	check("table and overview", m, "evil"+esc, "EvilOS 1"+esc, "192.0.2.77", "host"+esc, "UTC"+esc, "root"+esc,
		`DOM\x1b]0;OWNED\x07`, "guest-evil"+esc[:6], "6.1"+esc, "tag"+esc)
	if strings.Contains(m.View().Content, "192.0.2.66") {
		t.Error("the table shows an address that does not parse")
	}
	check("interfaces", press(t, m, "2"), `eth0\x1b`, `52:54:00:12:34:56\x1b]0;OWNED`, "invalid: 192.0.2.66"+esc, "192.0.2.77/24")
	check("vcpus", press(t, m, "3"))
	check("filesystems", press(t, m, "4"), `/\x1b]0;OWNED`, `ext4\x1b]0;OWNE…`, `vda1\x1b]0;`)
	check("log", press(t, m, "5"), "guest-get-host-name", `"host\u001B]0;OWNED`)

	// Actions: info quotes the guest, fstrim fails in its words, read shows
	// its file; the event log shows them all escaped.
	m = runAction(t, m, fleet.Action{Kind: fleet.ActInfo})
	m = runAction(t, m, fleet.Action{Kind: fleet.ActFstrim})
	m = runAction(t, m, fleet.Action{Kind: fleet.ActRead, Path: "/tmp/evil.txt"})
	check("event log", m, "trim failed"+esc, "agent 7.2.22"+esc, "      first", "      "+esc, "      last")
	m = press(t, m, "e")
	check("status bar", m, "1 ok, 0 failed")

	// Confirmations and the status line name the guest.
	check("shutdown confirmation", press(t, m, "X"), "Shut down 1 guest (powerdown)?", "evil"+esc)
	check("status line", press(t, m, "f"), "files evil"+esc)

	// Frozen by us: the quit dialog names it.
	m = press(t, m, "F")
	next, cmd := m.Update(keyMsg(t, "y"))
	m = runCmd(t, next.(Model), cmd)
	if !farm.Guests()[0].Frozen() {
		t.Fatal("freeze did not reach the guest")
	}
	check("quit dialog", press(t, m, "q"), "frozen by guestdeck", "evil"+esc)
}

// A frame with one guest whose OS name, hostname and error are 85 MB each:
// what it costs is what the cells show, not what the guest sent.
func BenchmarkViewHugeGuestStrings(b *testing.B) {
	huge := strings.Repeat("x", 85<<20)
	gs := testGuests(50)
	for _, g := range gs[:3] {
		os := *g.OS
		os.PrettyName = huge
		g.OS, g.Hostname, g.Err = &os, huge, huge
	}
	m := New(newFakeSource(gs), Options{Styles: themes.Mono(), Now: func() time.Time { return testNow }})
	m.resize(200, 50)
	m.moveTo(1)
	b.ResetTimer()
	for b.Loop() {
		_ = m.View()
	}
}
