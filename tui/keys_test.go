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

// At 80 columns the `?` screen must still show quit and every action key:
// bubbles/help alone cut the right-hand groups off with an ellipsis.
func TestHelpFitsEightyColumns(t *testing.T) {
	m, _ := newTestModel(5, 80, 24, Options{})
	m = press(t, m, "?")
	v := ansi.Strip(m.View().Content)
	for _, want := range []string{"quit", "shutdown", "set time", "ctrl+u", "reverse sort", "Targets",
		"Q/! leave them frozen · n/esc cancel"} {
		if !strings.Contains(v, want) {
			t.Errorf("help at 80x24 lacks %q:\n%s", want, v)
		}
	}
	for i, l := range strings.Split(v, "\n") {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line %d is %d wide: %q", i, w, l)
		}
	}
}

func TestPartitions(t *testing.T) {
	got := fmt.Sprint(partitions(4, 3))
	if want := "[[0 1 2 4] [0 1 3 4] [0 2 3 4]]"; got != want {
		t.Errorf("partitions(4, 3) = %s, want %s", got, want)
	}
}

// At 60 columns two columns of key groups fit side by side: none is cut.
func TestHelpSixtyColumnsNotCut(t *testing.T) {
	m, _ := newTestModel(5, 60, 15, Options{})
	m = press(t, m, "?")
	v := ansi.Strip(m.View().Content)
	if !strings.Contains(v, "filter") {
		t.Errorf("help at 60x15 lacks the filter group:\n%s", v)
	}
	for _, l := range strings.Split(v, "\n")[3:8] {
		if strings.Contains(l, "…") {
			t.Errorf("key line cut: %q\n%s", l, v)
		}
	}
}
