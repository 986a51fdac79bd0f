package fleet

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestSnapshotIncremental: a snapshot built from the guests that changed
// since the last one is the snapshot a walk over every guest gives, through
// random publishes, guests added and removed, and polls going late.
func TestSnapshotIncremental(t *testing.T) {
	f, _ := fakeFleet(Options{Interval: time.Second, Timeout: time.Second}, 200)
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	states := []State{Connecting, Ready, Frozen, Silent, Unreachable, ShuttingDown, Gone}
	names := func() []string {
		f.mu.Lock()
		defer f.mu.Unlock()
		var ns []string
		for _, s := range f.order {
			ns = append(ns, s.target().Name)
		}
		return ns
	}
	next := 1000
	for round := range 300 {
		switch rng.IntN(20) {
		case 0:
			f.Add(Target{Name: fmt.Sprintf("g%d", next), Address: "fake:x"})
			next++
		case 1:
			if ns := names(); len(ns) > 0 {
				f.Remove(ns[rng.IntN(len(ns))])
			}
		}
		ns := names()
		for range rng.IntN(30) {
			s := f.session(ns[rng.IntN(len(ns))])
			if s == nil {
				continue
			}
			st := states[rng.IntN(len(states))]
			ago := time.Duration(rng.IntN(6)) * time.Second
			s.update(func(g *Guest) {
				g.State = st
				g.Missed += rng.Int32N(2)
				g.LastLive = time.Now().Add(-ago)
			})
		}
		if rng.IntN(3) == 0 {
			continue // several rounds of changes between two snapshots
		}
		got := f.Snapshot()
		want := walkSnapshot(f, got.At)
		if len(got.Guests) != len(want.Guests) {
			t.Fatalf("round %d: %d guests, want %d", round, len(got.Guests), len(want.Guests))
		}
		for i := range want.Guests {
			if got.Guests[i] != want.Guests[i] {
				t.Fatalf("round %d: guest %d is %s (version %d), want %s (version %d)", round, i,
					got.Guests[i].Name, got.Guests[i].Version, want.Guests[i].Name, want.Guests[i].Version)
			}
		}
		if fmt.Sprint(got.Counts) != fmt.Sprint(want.Counts) {
			t.Fatalf("round %d: counts %v, want %v", round, got.Counts, want.Counts)
		}
		if got.Health != want.Health {
			t.Fatalf("round %d: health %+v, want %+v", round, got.Health, want.Health)
		}
	}
}

// walkSnapshot is what Snapshot gives by walking every guest, at now.
func walkSnapshot(f *Fleet, now time.Time) *Snapshot {
	f.mu.Lock()
	order := f.order
	f.mu.Unlock()
	snap := &Snapshot{Counts: map[State]int{}}
	overdue := 2*f.opts.Interval + f.opts.Timeout
	for _, s := range order {
		g := s.cur.Load()
		snap.Guests = append(snap.Guests, g)
		snap.Counts[g.State]++
		snap.Health.Missed += int(g.Missed)
		switch g.State {
		case Ready, Frozen, ShuttingDown:
			snap.Health.Polling++
			if !g.LastLive.IsZero() && now.Sub(g.LastLive) > overdue {
				snap.Health.Late++
			}
		}
	}
	return snap
}

// TestSnapshotDirtyListBounded: with nobody taking snapshots, the list of
// changed guests stays bounded however often they publish, and the next
// snapshot is still right.
func TestSnapshotDirtyListBounded(t *testing.T) {
	f, _ := fakeFleet(Options{}, 10)
	defer f.Close()
	f.Snapshot()
	for i := range 1000 {
		name := fmt.Sprintf("x%04d", i)
		f.Add(Target{Name: name, Address: "fake:x"})
		f.session(name).update(func(g *Guest) { g.Missed = 1 })
		f.Remove(name)
		f.dirtyMu.Lock()
		n := len(f.dirty)
		f.dirtyMu.Unlock()
		if n > 2*11+64+1 { // 11 guests while one is in
			t.Fatalf("after %d guests came and went, %d listed", i+1, n)
		}
	}
	f.session("g001").update(func(g *Guest) { g.Missed = 7 })
	snap := f.Snapshot()
	if len(snap.Guests) != 10 || snap.Health.Missed != 7 {
		t.Fatalf("%d guests, %d missed; want 10 and 7", len(snap.Guests), snap.Health.Missed)
	}
}

// TestSnapshotPublishAfterVersion: a snapshot taken between a publish's
// version and its Guest (update takes the version, then stores the Guest,
// then lists the session) must not be handed out again once the Guest is
// stored: the dashboard, told of the change, would get the old Guest until
// some other guest published. The steps are update's, one at a time.
func TestSnapshotPublishAfterVersion(t *testing.T) {
	f, _ := fakeFleet(Options{Interval: time.Second, Timeout: time.Second}, 3)
	defer f.Close()
	f.Snapshot()
	s := f.session("g001")
	ng := *s.cur.Load()
	ng.State = Frozen
	ng.Version = f.version.Add(1) // update: the version first
	f.Snapshot()                  // a snapshot in between: it cannot see ng yet
	s.cur.Store(&ng)              // then the Guest
	if s.dirty.CompareAndSwap(false, true) {
		f.markDirty(s) // then the list
	}
	got := f.Snapshot()
	if g := got.Guests[1]; g != &ng {
		t.Fatalf("snapshot after the publish has %s in state %v (version %d), want the published one (state %v, version %d)",
			g.Name, g.State, g.Version, ng.State, ng.Version)
	}
	if got.Counts[Frozen] != 1 {
		t.Fatalf("counts %v, want one frozen", got.Counts)
	}
}
