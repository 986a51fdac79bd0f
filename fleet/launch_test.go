package fleet

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// The first poll of every guest goes out at once, Concurrency at a time,
// the prioritized guests first and the rest in name order; a guest added
// later is launched at once too, and a Poke while waiting jumps the queue.
func TestLaunch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: time.Minute, SlowInterval: time.Hour, Timeout: 10 * time.Second, Concurrency: 4}
		f, guests := fakeFleet(opts, 40)
		defer f.Close()
		for _, g := range guests {
			g.set(func(g *fakeGuest) { g.latency = 10 * time.Millisecond })
		}
		visible := []string{"g030", "g031", "g032", "g033", "g034", "g035"}
		f.Prioritize(append(visible, "nosuch"))
		t0 := time.Now()
		f.Start(t.Context())

		// Every first poll is a first look: guest-info, the live items and
		// the OS, 5 calls of 10 ms; 40 guests 4 at a time take 10 rounds
		// of 50 ms.
		time.Sleep(time.Second)
		synctest.Wait()
		type first struct {
			name string
			at   time.Time
		}
		var firsts []first
		for name, g := range guests {
			ts := g.callTimes("guest-info")
			if len(ts) != 1 {
				t.Fatalf("%s: %d guest-info calls in the first second, want 1", name, len(ts))
			}
			firsts = append(firsts, first{name, ts[0]})
			if st := f.Guest(name).State; st != Ready {
				t.Errorf("%s: %s after the launch", name, st)
			}
		}
		slices.SortFunc(firsts, func(a, b first) int { return a.at.Compare(b.at) })
		// Round k starts at k times the first poll's length, with 4 guests.
		round := firsts[4].at.Sub(t0)
		for i, fs := range firsts {
			if got, want := fs.at.Sub(t0), time.Duration(i/4)*round; got != want {
				t.Errorf("%s (%d) launched at +%v, want +%v (4 at a time)", fs.name, i, got, want)
			}
		}
		// The prioritized ones first, the rest in name order.
		var lastVisible time.Time
		for _, n := range visible {
			if at := guests[n].callTimes("guest-info")[0]; at.After(lastVisible) {
				lastVisible = at
			}
		}
		var prev time.Time
		for i := range 30 {
			at := guests[fmt.Sprintf("g%03d", i)].callTimes("guest-info")[0]
			if at.Before(lastVisible) {
				t.Errorf("g%03d launched at +%v, with the prioritized ones (last at +%v)", i, at.Sub(t0), lastVisible.Sub(t0))
			}
			if at.Before(prev) {
				t.Errorf("g%03d launched at +%v, before g%03d (+%v)", i, at.Sub(t0), i-1, prev.Sub(t0))
			}
			prev = at
		}
		if lastVisible.Sub(t0) != round {
			t.Errorf("the 6 prioritized guests launched by +%v, want in the first two rounds (+%v)", lastVisible.Sub(t0), round)
		}

		// A guest added to a started fleet is polled at once, and one poked
		// while waiting for its turn jumps the queue. 12 late guests take
		// three rounds; the Poke comes once the first round is out (the
		// workers Add starts may take it before any Poke right after Add
		// could arrive), so h011, due in the third, goes out in the second.
		var late []Target
		for i := range 12 {
			name := fmt.Sprintf("h%03d", i)
			guests[name] = &fakeGuest{name: name, latency: 10 * time.Millisecond}
			late = append(late, Target{Name: name, Address: "fake:" + name})
		}
		t1 := time.Now()
		f.Add(late...)
		synctest.Wait()
		f.Poke("h011")
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if ts := guests["h011"].callTimes("guest-info"); len(ts) != 1 || ts[0].Sub(t1) != round {
			t.Errorf("poked while waiting: guest-info at %v, want one in the second round (+%v)", ts, round)
		}
		for _, tg := range late {
			if ts := guests[tg.Name].callTimes("guest-info"); len(ts) != 1 || ts[0].Sub(t1) >= 3*round {
				t.Errorf("%s added late: guest-info at %v, want one within three rounds", tg.Name, ts)
			}
		}
		for i := range 4 {
			if ts := guests[fmt.Sprintf("h%03d", i)].callTimes("guest-info"); len(ts) != 1 || !ts[0].Equal(t1) {
				t.Errorf("h%03d added late: guest-info at %v, want one at once", i, ts)
			}
		}
	})
}

// While first polls wait for their turn, the guests already launched skip
// their slots (on a busy machine their polls would take the launch's CPU);
// after the launch they poll at their own offsets again, not all at once.
func TestLaunchSkipsSlotsOfLaunchedGuests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 40 guests 4 at a time, first looks of 5 calls of 20 ms each:
		// the launch takes 1 s, longer than half the 1 s interval.
		opts := Options{Interval: time.Second, SlowInterval: time.Hour, Timeout: 10 * time.Second, Concurrency: 4}
		f, guests := fakeFleet(opts, 40)
		defer f.Close()
		for _, g := range guests {
			g.set(func(g *fakeGuest) { g.latency = 20 * time.Millisecond })
		}
		t0 := time.Now()
		f.Start(t.Context())
		time.Sleep(5 * time.Second)
		synctest.Wait()
		// The queue is empty once the last first poll has started.
		var lastFirst time.Time
		for _, g := range guests {
			if at := g.callTimes("guest-info")[0]; at.After(lastFirst) {
				lastFirst = at
			}
		}
		skipped := 0
		for name, g := range guests {
			ts := g.callTimes("guest-get-time")
			if len(ts) < 4 {
				t.Fatalf("%s: %d live polls in 5 s, want >= 4", name, len(ts))
			}
			if ts[1].Before(lastFirst) {
				t.Errorf("%s polled again at +%v, while first polls still waited (until +%v)", name, ts[1].Sub(t0), lastFirst.Sub(t0))
			}
			// Unskipped, the second poll comes half an interval to one and a
			// half after the first, at the guest's offset; skipped, an
			// interval later, still at its offset.
			offset := time.Duration(nameHash(name) % uint64(opts.Interval))
			at := ts[1].Sub(t0)
			if slot := offset + (at-offset+opts.Interval-1)/opts.Interval*opts.Interval; !inSlot(f, at, slot) {
				t.Errorf("%s second poll at +%v, off its offset %v", name, at, offset)
			}
			if ts[1].Sub(ts[0]) > opts.Interval*3/2+f.sched.coalesce {
				skipped++
			}
			for i := 2; i < len(ts); i++ {
				if d := ts[i].Sub(ts[i-1]); d < opts.Interval-f.sched.coalesce || d > opts.Interval+f.sched.coalesce {
					t.Errorf("%s polls %d and %d %v apart, want the interval", name, i-1, i, d)
				}
			}
		}
		if skipped == 0 {
			t.Error("no guest skipped a slot during the launch")
		}
	})
}

// inSlot reports whether a poll at got (since the start) went out for the
// slot at want: at it, or up to the scheduler's coalescing before it.
func inSlot(f *Fleet, got, want time.Duration) bool {
	return got <= want && want-got <= f.sched.coalesce
}

// Polls due close together go out together (sched.go): the scheduler
// wakes at most once per coalescing window, every poll goes out at its
// slot or up to that window early, never late, and never twice in one
// slot.
func TestSchedulerCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: time.Second, SlowInterval: time.Hour, Timeout: 10 * time.Second}
		f, guests := fakeFleet(opts, 300)
		defer f.Close()
		c := f.sched.coalesce
		if c <= 0 || c > opts.Interval/100 {
			t.Fatalf("coalescing window %v, want up to a hundredth of the interval", c)
		}
		t0 := time.Now()
		f.Start(t.Context())
		time.Sleep(10 * time.Second)
		synctest.Wait()
		instants := map[time.Duration]bool{}
		for name, g := range guests {
			ts := g.callTimes("guest-get-time")
			if len(ts) < 9 {
				t.Fatalf("%s: %d live polls in 10 s, want >= 9", name, len(ts))
			}
			offset := time.Duration(nameHash(name) % uint64(opts.Interval))
			for i, at := range ts[1:] {
				d := at.Sub(t0)
				slot := offset + (d-offset+opts.Interval-1)/opts.Interval*opts.Interval
				if !inSlot(f, d, slot) {
					t.Errorf("%s poll %d at +%v, not within %v before its slot +%v", name, i+1, d, c, slot)
				}
				if i > 0 && at.Sub(ts[i]) < opts.Interval-c {
					t.Errorf("%s polls %d and %d %v apart: twice in one slot", name, i, i+1, at.Sub(ts[i]))
				}
				if d > 2*opts.Interval {
					instants[d] = true
				}
			}
		}
		// 300 guests at spread offsets, polled from the third second on:
		// 8 seconds, each at most one wake-up per window (and its edges).
		if max := int(8*opts.Interval/c) + 8; len(instants) > max {
			t.Errorf("polls went out at %d distinct instants in 8 s, want at most %d (one per %v)", len(instants), max, c)
		}
		if len(instants) < 8 {
			t.Errorf("polls went out at only %d distinct instants in 8 s", len(instants))
		}
	})
}

// A guest's first poll at launch is a first look: guest-info, the live
// items and the OS, what the table shows first (and what scripts/rawbound
// asks). The rest of the slow items come at its next poll, at the guest's
// own offset, without guest-info again; then nothing slow until the slow
// interval. A forced poll (RefreshOnce, as status does) asks everything.
func TestLaunchFirstLook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: time.Second, SlowInterval: time.Hour, Timeout: 10 * time.Second, Concurrency: 4}
		f, guests := fakeFleet(opts, 8)
		defer f.Close()
		look := []string{"guest-info", "guest-get-time", "guest-network-get-interfaces", "guest-get-vcpus", "guest-get-osinfo"}
		rest := []string{"guest-get-host-name", "guest-get-timezone", "guest-get-users", "guest-get-fsinfo"}
		calls := func(g *fakeGuest) []string {
			g.mu.Lock()
			defer g.mu.Unlock()
			var out []string
			for _, c := range g.calls {
				out = append(out, c.Cmd)
			}
			return out
		}
		f.Start(t.Context())
		synctest.Wait()
		for name, g := range guests {
			if got := calls(g); !slices.Equal(got, look) {
				t.Errorf("%s first poll asked %v, want %v", name, got, look)
			}
			if gs := f.Guest(name); gs.State != Ready || gs.OS == nil || gs.Hostname != "" {
				t.Errorf("%s after its first look: %s, OS %v, hostname %q; want ready with the OS only", name, gs.State, gs.OS, gs.Hostname)
			}
		}
		// The second poll of every guest comes within 1.5 intervals.
		time.Sleep(opts.Interval * 3 / 2)
		synctest.Wait()
		for name, g := range guests {
			got := calls(g)[len(look):]
			want := append([]string{"guest-get-time", "guest-network-get-interfaces", "guest-get-vcpus"}, rest...)
			if !slices.Equal(got, want) {
				t.Errorf("%s second poll asked %v, want %v (the rest of the slow items)", name, got, want)
			}
			if gs := f.Guest(name); gs.Hostname != name {
				t.Errorf("%s hostname %q after its second poll", name, gs.Hostname)
			}
		}
		// From then on only live polls, until the slow interval.
		time.Sleep(5 * opts.Interval)
		synctest.Wait()
		for name, g := range guests {
			for _, c := range append([]string{"guest-info", "guest-get-osinfo"}, rest...) {
				if n := g.count(c); n != 1 {
					t.Errorf("%s: %s asked %d times in the first 7.5 s, want once", name, c, n)
				}
			}
		}
		// A forced poll asks everything.
		f.RefreshOnce(t.Context(), []string{"g000"})
		for _, c := range append(look, rest...) {
			if n := guests["g000"].count(c); n < 2 {
				t.Errorf("g000 after RefreshOnce: %s asked %d times, want a second", c, n)
			}
		}
	})
}
