package tui

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// frameFits fails unless every line of frame is at most w cells and as wide
// by wcwidth (Bubble Tea's renderer and tmux, xterm or VTE without mode
// 2027) as by grapheme clusters (how the dashboard lays out): otherwise
// what follows a guest's cell on its row is drawn off its column.
func frameFits(t *testing.T, what, frame string, w int) {
	t.Helper()
	screenSafe(t, what, frame)
	for i, l := range strings.Split(frame, "\n") {
		l = ownSGR.ReplaceAllString(l, "")
		g, wc := ansi.StringWidth(l), ansi.StringWidthWc(l)
		if g > w || g != wc {
			t.Errorf("%s: line %d is %d cells by grapheme clusters, %d by wcwidth (screen %d): %q", what, i, g, wc, w, l)
		}
	}
}

// A guest's strings of disputed width (skin-tone modifiers after letters,
// VS16, a lone regional indicator, spacing marks) in its kernel release —
// the OS cell of a guest without os-release — and in an agent error made
// of a long run of hyphens (which ansi.Wrap does not break): the table,
// the detail over it, the event log and its entry view keep every line
// within the screen and as wide whichever way the terminal counts.
func TestDisputedWidthsKeepColumns(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	disputed := strings.Repeat("a\U0001F3FB", 8) + strings.Repeat("\u263a\ufe0f", 4) + "\U0001F1FA" + "\u65e5\u0903"
	farm, err := sim.ServeDir(dir, 2, func(i int) sim.Config {
		c := sim.DefaultConfig(fmt.Sprintf("g%d", i))
		if i == 0 {
			c.OS = agentclient.OSInfo{KernelRelease: "6.1-" + disputed + sim.Hostile, Machine: "x86_64"}
			c.Hostname = disputed
			c.Fail = map[string]string{"guest-fstrim": strings.Repeat("-", 2000) + disputed + strings.Repeat("a-", 500) + sim.Hostile}
		}
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "evil", Address: "unix:" + farm.Sockets()[0]})
	f.Add(fleet.Target{Name: "good", Address: "unix:" + farm.Sockets()[1]})
	f.RefreshOnce(context.Background(), nil)
	if g := f.Guest("evil"); g.OS == nil || !strings.Contains(g.OS.KernelRelease, "\U0001F3FB") {
		t.Fatalf("the guest's kernel release did not arrive: %+v", g.OS)
	}

	for _, size := range [][2]int{{80, 24}, {100, 30}, {160, 45}} {
		w, h := size[0], size[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			m := New(f, Options{Styles: plainStyles(), Now: func() time.Time { return testNow }})
			m.resize(w, h)
			frameFits(t, "table", m.View().Content, w)
			if !strings.Contains(m.View().Content, `kernel 6.1-a\U0001f3fb`) {
				t.Errorf("the OS cell does not show the kernel release escaped:\n%s", m.View().Content)
			}
			frameFits(t, "detail", press(t, m, "enter").View().Content, w)

			m = runAction(t, m, fleet.Action{Kind: fleet.ActFstrim})
			m = press(t, m, "e")
			frameFits(t, "event log", m.View().Content, w)
			// Lines: head, evil, good (names in order).
			m = press(t, m, "down", "enter")
			if m.top().kind != layerEntry {
				t.Fatalf("entry not open: %v", kinds(m))
			}
			v := m.View().Content
			frameFits(t, "entry", v, w)
			if !strings.Contains(v, "Outcome      failed") || !strings.Contains(v, "-----") {
				t.Errorf("the entry does not show the failure:\n%s", v)
			}
		})
	}
}

// A guest can make its error come and go at will (its agent silent on
// every other poll): the ERROR column must not come and go with it,
// taking another column (AGENT at 100 cells) off every guest's row each
// poll. ERROR stays for columnHold after the last error; the operator's
// own filter still decides at once (TestColumnsFollowTheRows).
func TestErrorColumnDoesNotFlap(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 3, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("g%d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 300 * time.Millisecond})
	t.Cleanup(func() { f.Close() })
	for i, s := range farm.Sockets() {
		f.Add(fleet.Target{Name: fmt.Sprintf("g%d", i), Address: "unix:" + s})
	}
	now := testNow
	m := New(f, Options{Styles: plainStyles(), Now: func() time.Time { return now }})
	m.resize(100, 30)
	poll := func(silent bool) {
		t.Helper()
		farm.Guests()[0].SetSilent(silent)
		f.RefreshOnce(context.Background(), nil)
		if g := f.Guest("g0"); (g.Err != "") != silent {
			t.Fatalf("g0 after a poll silent %v: %s %q", silent, g.State, g.Err)
		}
		next, _ := m.Update(changedMsg{})
		m = next.(Model)
	}
	hasErr := func() bool { return slices.Contains(colWords(m.visibleColumns()), "error") }
	poll(false)
	if hasErr() {
		t.Fatalf("ERROR shown with no error: %v", colWords(m.visibleColumns()))
	}
	for i := range 6 {
		now = now.Add(2 * time.Second)
		poll(i%2 == 0)
		if !hasErr() {
			t.Fatalf("poll %d: ERROR gone %v after an error", i, now.Sub(testNow))
		}
	}
	now = now.Add(columnHold)
	poll(false)
	if hasErr() {
		t.Errorf("ERROR still shown %v after the last error", columnHold)
	}
}
