package tui

import (
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/fleet"
)

// The rows agree with an action's final status: the fleet publishes a
// guest's new state (shutting-down) before it reports the guest's result,
// and the end of the action pulls the fleet, whatever the table's paced
// pulls (refreshGap) are waiting for. A guest showed "ready" beside
// "shutdown stopped: 3 ok" for one refreshGap (TestTmuxStopAction).
func TestActionEndPullsFleet(t *testing.T) {
	m, src := newTestModel(3, 160, 30, Options{})
	src.onRun = func() {
		gs := testGuests(3)
		gs[0].State = fleet.ShuttingDown
		src.set(gs) // published; the model has not pulled it
	}
	m = press(t, m, "p") // ping vm-00000, the guest under the cursor, to the end
	if !strings.Contains(m.status, "ping: 1 ok") {
		t.Fatalf("status %q after the ping, want its result", m.status)
	}
	for _, line := range strings.Split(view(m), "\n") {
		if strings.Contains(line, "vm-00000") { // its row, above the detail pane
			if !strings.Contains(line, " shutting-down ") {
				t.Errorf("the action is over and vm-00000's row still shows the state before it:\n%s", view(m))
			}
			break
		}
	}
}
