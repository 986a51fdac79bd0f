package tui

// Thin bridges to the fleet core's filter and action helpers, so the UI
// spells them one way.

import "github.com/guestdeck/guestdeck/fleet"

// parseAction parses a command line with fleet.ParseAction (aliases such
// as "cat" for read are the action table's).
func parseAction(args []string) (fleet.Action, error) { return fleet.ParseAction(args) }

func actionMutating(a fleet.Action) bool                { return a.Mutating() }
func actionDestructive(a fleet.Action) bool             { return a.Destructive() }
func actionCheck(a fleet.Action, g *fleet.Guest) string { return a.Check(g) }
func actionString(a fleet.Action) string                { return a.String() }
