package fleet

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The due heap hands sessions out in due order, never one that was dropped
// or pushed again since (only its latest entry counts), and sweeps stale
// entries so that they do not pile up. Checked against a plain model over
// random pushes, drops and pops.
func TestDueHeapOrderAndDrops(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now()
	var h dueHeap
	ss := make([]*session, 500)
	for i := range ss {
		ss[i] = &session{}
	}
	want := map[*session]time.Time{} // waiting sessions and their due times
	push := func(s *session) {
		s.loop.at = t0.Add(time.Duration(rng.IntN(10_000)) * time.Millisecond)
		s.loop.phase = loopWaiting
		h.push(s)
		want[s] = s.loop.at
	}
	for _, s := range ss {
		push(s)
	}
	clock := t0
	for step := range 20_000 {
		s := ss[rng.IntN(len(ss))]
		switch op := rng.IntN(4); {
		case op == 0 && s.loop.phase == loopWaiting:
			h.drop(s)
			s.loop.phase = loopRunning
			delete(want, s)
		case op == 1 && s.loop.phase != loopWaiting:
			push(s)
		default:
			clock = clock.Add(time.Duration(rng.IntN(300)) * time.Millisecond)
			got := h.popBy(clock)
			// The model: the earliest waiting session, if due.
			var first *session
			for w, at := range want {
				if first == nil || at.Before(want[first]) {
					first = w
				}
			}
			if first == nil || want[first].After(clock) {
				if got != nil {
					t.Fatalf("step %d: popped a session due %v with nothing due by %v", step, got.loop.at.Sub(t0), clock.Sub(t0))
				}
				continue
			}
			if got == nil || !got.loop.at.Equal(want[first]) {
				t.Fatalf("step %d: popped %v, want the one due at %v", step, got, want[first].Sub(t0))
			}
			if _, ok := want[got]; !ok {
				t.Fatalf("step %d: popped a session that is not waiting", step)
			}
			got.loop.phase = loopRunning
			delete(want, got)
		}
		if len(h.e) > 2*len(want)+65 {
			t.Fatalf("step %d: %d entries for %d waiting sessions: stale entries pile up", step, len(h.e), len(want))
		}
	}
	// What is left comes out in order, each waiting session once.
	var left []time.Time
	for {
		s := h.popBy(clock.Add(time.Hour))
		if s == nil {
			break
		}
		left = append(left, s.loop.at)
		s.loop.phase = loopRunning
		delete(want, s)
	}
	if len(want) != 0 {
		t.Errorf("%d waiting sessions never came out", len(want))
	}
	if !slices.IsSortedFunc(left, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Error("the last pops came out of order")
	}
}

// A session prepared again (a new loop) while an entry of its old loop is
// still in the heap is not handed out for that old entry.
func TestDueHeapOldLoopEntry(t *testing.T) {
	f := New(Options{Interval: time.Second})
	defer f.Close()
	sc := f.sched
	s := &session{f: f}
	t0 := time.Now()
	s.loop.at, s.loop.phase = t0, loopWaiting
	sc.due.push(s)
	sc.prepare(s, t.Context()) // loopLaunching: the old entry is stale
	if got := sc.due.popBy(t0.Add(time.Hour)); got != nil {
		t.Fatal("the old loop's entry was handed out")
	}
	s.loop.at, s.loop.phase = t0.Add(time.Second), loopWaiting
	sc.due.push(s)
	if got := sc.due.popBy(t0.Add(time.Hour)); got != s {
		t.Fatalf("the new loop's entry: got %v", got)
	}
}
