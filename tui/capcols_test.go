package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// A long disabled command filled its whole column, so the next column's
// entry ran straight into its ellipsis ("(d…✓ guest-ping").
func TestCapabilityColumnsKeepAGap(t *testing.T) {
	m, _ := newTestModel(1, 120, 30, Options{})
	g := &fleet.Guest{Commands: []agentclient.CommandInfo{
		{Name: "guest-network-get-interfaces", Enabled: false},
		{Name: "guest-ping", Enabled: true},
	}}
	for _, l := range m.capabilityLines(g)[1:] {
		l = ansi.Strip(l)
		if strings.Contains(l, "…✓") || strings.Contains(l, "…✗") {
			t.Errorf("columns run together: %q", l)
		}
	}
}
