package tui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// Every rebindable action must appear on the `?` screen, or an operator
// cannot learn the key exists (ctrl+u was missing).
func TestFullHelpListsEveryAction(t *testing.T) {
	km := DefaultKeyMap()
	shown := map[string]bool{}
	for _, col := range km.FullHelp() {
		for _, b := range col {
			shown[b.Help().Desc] = true
		}
	}
	for name, b := range km.byName() {
		if !shown[b.Help().Desc] {
			t.Errorf("action %q (%s %s) is not on the help screen", name, b.Help().Key, b.Help().Desc)
		}
	}
}

// At 80x24 the `?` screen shows the filter and command syntax whole on
// its first page (it was cut at "host:…" and "shutdown …"), says how much
// is below, and scrolls to every key: quit and every action key included
// (bubbles/help alone cut the right-hand groups off with an ellipsis).
func TestHelpFitsEightyColumns(t *testing.T) {
	m, _ := newTestModel(5, 80, 24, Options{})
	m = press(t, m, "?")
	first := ansi.Strip(m.View().Content)
	for _, want := range []string{"host:X, state:frozen", "shutdown [powerdown|reboot|halt]", "ssh-key list",
		":view NAME", ":columns a,b,c", "Targets", "Q/! leave them frozen · n/esc cancel", "more lines (↓/j"} {
		if !strings.Contains(first, want) {
			t.Errorf("help's first page at 80x24 lacks %q:\n%s", want, first)
		}
	}
	m = press(t, m, "G")
	last := ansi.Strip(m.View().Content)
	for _, want := range []string{"quit", "shutdown", "set time", "ctrl+u", "reverse sort", "fleet pulse"} {
		if !strings.Contains(last, want) {
			t.Errorf("help's last page at 80x24 lacks %q:\n%s", want, last)
		}
	}
	if strings.Contains(last, "more lines") {
		t.Errorf("the last page still says there is more:\n%s", last)
	}
	for _, v := range []string{first, last} {
		for i, l := range strings.Split(v, "\n") {
			if w := ansi.StringWidth(l); w > 80 {
				t.Errorf("line %d is %d wide: %q", i, w, l)
			}
		}
	}
	// Scrolling down past the end and back up one line leaves the last page.
	m = press(t, m, "down", "down", "up")
	if v := ansi.Strip(m.View().Content); v == last || !strings.Contains(v, "more lines") {
		t.Errorf("up from the end did not scroll back a line:\n%s", v)
	}
}

func TestPartitions(t *testing.T) {
	got := fmt.Sprint(partitions(4, 3))
	if want := "[[0 1 2 4] [0 1 3 4] [0 2 3 4]]"; got != want {
		t.Errorf("partitions(4, 3) = %s, want %s", got, want)
	}
}

// At 60 columns two columns of key groups fit side by side: none is cut,
// and paging down reaches every group.
func TestHelpSixtyColumnsNotCut(t *testing.T) {
	m, _ := newTestModel(5, 60, 15, Options{})
	m = press(t, m, "?")
	var seen strings.Builder
	last := ""
	for range 50 { // until paging no longer moves it
		v := ansi.Strip(m.View().Content)
		if v == last {
			break
		}
		last = v
		seen.WriteString(v)
		for _, l := range strings.Split(v, "\n") {
			if strings.Contains(l, "…") && !strings.Contains(l, "thaw in") && !strings.Contains(l, "page up …") {
				t.Errorf("help line cut: %q\n%s", l, v)
			}
		}
		m = press(t, m, "pgdown")
	}
	for _, want := range []string{"reverse sort", "fleet pulse", "set time", "state:frozen"} {
		if !strings.Contains(seen.String(), want) {
			t.Errorf("paging through the help at 60x15 never shows %q", want)
		}
	}
}
