package tui

import "testing"

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
