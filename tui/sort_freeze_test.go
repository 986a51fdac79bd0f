package tui

import (
	"slices"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// TestSortFreeze sorts the freeze column by the real thaw deadline and the
// freeze state, not by the countdown's text ("10:00" < "4:30" as strings).
func TestSortFreeze(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ours := func(name string, in time.Duration) *fleet.Guest {
		return &fleet.Guest{Target: fleet.Target{Name: name}, Freeze: "frozen", FrozenByUs: true, ThawAt: now.Add(in)}
	}
	guests := func() []*fleet.Guest {
		return []*fleet.Guest{
			{Target: fleet.Target{Name: "a-thawed"}, Freeze: "thawed"},
			ours("b-10m", 10*time.Minute),
			{Target: fleet.Target{Name: "c-unknown"}},
			ours("d-4m30", 4*time.Minute+30*time.Second),
			{Target: fleet.Target{Name: "e-frozen-elsewhere"}, Freeze: "frozen"},
			ours("f-45s", 45*time.Second),
			ours("g-1h", time.Hour),
			{Target: fleet.Target{Name: "h-thawed"}, Freeze: "thawed"},
		}
	}
	tests := []struct {
		name string
		desc bool
		want []string
	}{
		{"ascending: soonest thaw first, then frozen, thawed, unknown", false,
			[]string{"f-45s", "d-4m30", "b-10m", "g-1h", "e-frozen-elsewhere", "a-thawed", "h-thawed", "c-unknown"}},
		{"descending: the reverse, ties kept in name order", true,
			[]string{"c-unknown", "a-thawed", "h-thawed", "e-frozen-elsewhere", "g-1h", "b-10m", "d-4m30", "f-45s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := guests()
			sortRows(rows, colFreeze, tt.desc, now)
			var got []string
			for _, g := range rows {
				got = append(got, g.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("sorted by freeze = %v\nwant %v", got, tt.want)
			}
		})
	}
	// The texts that used to decide the order really are out of order.
	if a, b := cellText(ours("x", 10*time.Minute), colFreeze, now), cellText(ours("y", 4*time.Minute+30*time.Second), colFreeze, now); a >= b {
		t.Fatalf("test premise: %q should sort before %q as text", a, b)
	}
}
