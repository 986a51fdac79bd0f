package tui

import (
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// steadyChurn is how many guests a pull sees changed in the steady state
// at 10,000 guests: polled every 5 s (2,000 a second), pulled every
// 200 ms.
const steadyChurn = 400

// steadySnapshots is a sequence of k snapshots of gs as the fleet publishes
// them in the steady state: each replaces churn guests (spread over the
// fleet, a different set each time) by a new Guest of the same name, polled
// again (LastLive, RTT; every other one a new metrics sample), their state
// and everything else the same. Counts are the fleet's, carried over.
func steadySnapshots(gs []*fleet.Guest, k, churn int) []*fleet.Snapshot {
	counts := map[fleet.State]int{}
	for _, g := range gs {
		counts[g.State]++
	}
	out := make([]*fleet.Snapshot, k)
	cur := gs
	for s := range k {
		next := append([]*fleet.Guest(nil), cur...)
		for j := range churn {
			i := (s*churn + j*(len(gs)/churn)) % len(gs)
			g := *next[i]
			g.LastLive = g.LastLive.Add(5 * time.Second)
			g.RTT += time.Microsecond
			g.Version++
			if j%2 == 0 {
				g.Metrics.CPUBusy.V = float64((int(g.Metrics.CPUBusy.V) + 7*s + j) % 100)
			}
			next[i] = &g
		}
		out[s] = &fleet.Snapshot{Guests: next, Counts: counts, At: testNow, Health: fleet.Health{Polling: len(gs)}}
		cur = next
	}
	return out
}

// BenchmarkSteadyRefresh10000 is the dashboard's steady state at 10,000
// guests: every pull sees a new snapshot version with steadyChurn guests
// re-polled, then the frame after it. Per op: one pull (Update of a
// changedMsg) and the frame after it. "before" is the same as it was:
// the full reindex, every row drawn, and a second message (the re-arm
// after the refresh gap) and frame per pull.
func BenchmarkSteadyRefresh10000(b *testing.B) {
	for _, tt := range []struct {
		name string
		set  func(m *Model)
	}{
		{"name", func(m *Model) {}},
		{"state", func(m *Model) { m.tbl.sortCol = colState }},
		{"cpu", func(m *Model) { m.sortBy(colCPUBusy) }},
		{"filter", func(m *Model) { m.tbl.filter = "host:hv1" }},
		{"group-host", func(m *Model) { m.setGroup(groupHost) }},
	} {
		for _, path := range []string{"after", "before"} {
			before := path == "before"
			b.Run(tt.name+"/"+path, func(b *testing.B) {
				m, src := newTestModel(10000, 160, 50, Options{})
				if before {
					m.tbl.fullOnly = true // the reindex before swapGuests
					m.rowCache = nil      // every row drawn
				}
				snaps := steadySnapshots(src.snap.Guests, 64, steadyChurn)
				tt.set(&m)
				m.moveTo(20)
				m.reindex()
				v := src.snap.Version
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					s := *snaps[i%len(snaps)]
					v++
					s.Version = v
					src.mu.Lock()
					src.snap = &s
					src.mu.Unlock()
					i++
					next, _ := m.Update(changedMsg{})
					m = next.(Model)
					_ = m.View()
					if before {
						// The rearm message that followed every pull, and
						// its frame (it changed nothing).
						next, _ = m.Update(struct{}{})
						m = next.(Model)
						_ = m.View()
					}
				}
			})
		}
	}
}
