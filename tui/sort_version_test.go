package tui

import (
	"slices"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// The agent column sorts versions as numbers: 4.2.1 < 7.2.22 < 107.0.1
// (as text, "107.0.1" came first and "4.2.1" after it).
func TestSortAgentVersion(t *testing.T) {
	var rows []*fleet.Guest
	for _, v := range []string{"107.0.1", "7.2.22", "", "4.2.1", "7.10.0", "7.2.3"} {
		rows = append(rows, &fleet.Guest{Target: fleet.Target{Name: "g" + v}, AgentVersion: v})
	}
	sortRows(rows, colAgent, false, time.Now())
	var got []string
	for _, g := range rows {
		got = append(got, g.AgentVersion)
	}
	if want := []string{"", "4.2.1", "7.2.3", "7.2.22", "7.10.0", "107.0.1"}; !slices.Equal(got, want) {
		t.Errorf("agent sort = %q, want %q", got, want)
	}
}
