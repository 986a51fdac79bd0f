package fleet

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
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

// Workers between polls wait on their own channels, the latest to wait
// getting the next job; when the fleet stops, the waiting ones end and the
// busy ones end after their poll: none is left behind (synctest fails a
// test whose bubble still has blocked goroutines), and none runs a poll
// after it.
func TestSchedulerWorkersEndOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: time.Second, SlowInterval: time.Hour, Timeout: 10 * time.Second, Concurrency: 2}
		f, guests := fakeFleet(opts, 60)
		ctx, cancel := context.WithCancel(t.Context())
		f.Start(ctx)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		f.sched.mu.Lock()
		idle, keep := len(f.sched.idle), f.sched.keep
		f.sched.mu.Unlock()
		if idle == 0 || idle > max(opts.Concurrency, keep) {
			t.Errorf("%d workers waiting, want between 1 and %d", idle, max(opts.Concurrency, keep))
		}
		for name, g := range guests {
			if n := len(g.callTimes("guest-get-time")); n < 4 {
				t.Errorf("%s: %d live polls in 5 s", name, n)
			}
		}
		cancel()
		synctest.Wait()
		f.sched.mu.Lock()
		idle = len(f.sched.idle)
		f.sched.mu.Unlock()
		if idle != 0 {
			t.Errorf("%d workers still waiting after the fleet stopped", idle)
		}
		counts := map[string]int{}
		for name, g := range guests {
			counts[name] = len(g.callTimes("guest-get-time"))
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		for name, g := range guests {
			if n := len(g.callTimes("guest-get-time")); n != counts[name] {
				t.Errorf("%s polled %d times after the fleet stopped", name, n-counts[name])
			}
		}
		f.Close()
	})
}
