package fleet

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/ledger"
)

func (g *fakeGuest) open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns
}

// The connection's lifetime: a shared guest is dialled per poll and let go
// in between (capabilities kept, no slow refresh forced); an exclusive one
// is dialled once and held; a guest this process froze keeps its
// connection until the thaw.
func TestChannelLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: time.Second}
		f, guests := fakeFleet(opts, 1)
		defer f.Close()
		guests["x"] = &fakeGuest{name: "x"}
		f.Add(Target{Name: "x", Address: "fake:x", Exclusive: true})
		f.Start(t.Context())
		time.Sleep(16 * time.Second)
		synctest.Wait()
		shared, excl := guests["g000"], guests["x"]
		if n := shared.open(); n != 0 {
			t.Errorf("shared guest between polls: %d connections open, want 0", n)
		}
		if d := len(shared.dialTimes()); d < 3 {
			t.Errorf("shared guest: %d dials in 16 s at a 5 s interval, want one per poll", d)
		}
		if n := shared.count("guest-info"); n != 1 {
			t.Errorf("shared guest: guest-info asked %d times in 16 s, want once (a resumed connection is not a new session)", n)
		}
		if n, d := excl.open(), len(excl.dialTimes()); n != 1 || d != 1 {
			t.Errorf("exclusive guest: %d open, %d dials; want 1 and 1", n, d)
		}
		for _, g := range []string{"g000", "x"} {
			if st := f.Guest(g).State; st != Ready {
				t.Errorf("%s: %s", g, st)
			}
		}

		if r := f.Run(t.Context(), Action{Kind: ActFreeze}, []string{"g000"}, nil)[0]; !r.OK {
			t.Fatalf("freeze: %+v", r)
		}
		dials := len(shared.dialTimes())
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if n, d := shared.open(), len(shared.dialTimes()); n != 1 || d != dials {
			t.Errorf("frozen by us: %d open, %d new dials; want the freeze's connection kept", n, d-dials)
		}
		if r := f.Run(t.Context(), Action{Kind: ActThaw}, []string{"g000"}, nil)[0]; !r.OK {
			t.Fatalf("thaw: %+v", r)
		}
		synctest.Wait()
		if n := shared.open(); n != 0 {
			t.Errorf("after the thaw: %d connections open, want 0", n)
		}
	})
}

// A channel another client holds is "held", with those words, and retried
// with a growing, jittered backoff, not at every interval; the guest comes
// back within the backoff's cap once the holder lets go.
func TestHeldBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: time.Second}
		f, guests := fakeFleet(opts, 2)
		defer f.Close()
		held := fmt.Errorf("agent unix:/x: %w (this connection waited unanswered behind it in the agent's queue)", agentclient.ErrChannelHeld)
		guests["g000"].refuse, guests["g001"].refuse = held, held
		f.Start(t.Context())
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		for _, name := range []string{"g000", "g001"} {
			g := f.Guest(name)
			if g.State != Held || !strings.Contains(g.Err, "another client holds the channel") {
				t.Errorf("%s: %s %q, want held", name, g.State, g.Err)
			}
		}
		ds0, ds1 := guests["g000"].dialTimes(), guests["g001"].dialTimes()
		// 24 polls' worth of time: 1, 2, 4, 8, 16 s, then the 30 s cap
		// (6 × interval), each ±20%.
		if len(ds0) > 10 || len(ds0) < 6 {
			t.Errorf("g000: %d dials in 2 minutes, want the backoff's 6 to 10", len(ds0))
		}
		capped := opts.Interval * 6
		if gap := ds0[len(ds0)-1].Sub(ds0[len(ds0)-2]); gap < capped*8/10 {
			t.Errorf("g000: last retry %v after the one before, want about the %v cap", gap, capped)
		}
		same := true
		for i := 1; i < min(len(ds0), len(ds1)); i++ {
			if ds0[i].Sub(ds0[0]) != ds1[i].Sub(ds1[0]) {
				same = false
			}
		}
		if same {
			t.Error("two held guests retry in step: no jitter")
		}
		guests["g000"].set(func(g *fakeGuest) { g.refuse = nil })
		time.Sleep(capped * 12 / 10)
		synctest.Wait()
		if st := f.Guest("g000").State; st != Ready {
			t.Errorf("g000 after the holder let go: %s", st)
		}
		if st := f.Guest("g001").State; st != Held {
			t.Errorf("g001, still held: %s", st)
		}
	})
}

// The retrying thaw (ThawOurs, the watchdog's, run --hold's) lets go of
// the channel once the guest is thawed, as any other use does: its last
// release runs while the thaw is still marked in flight (which keeps the
// channel, and takes it out of the yield watch), so nothing may be left
// holding it until the session's next poll.
func TestThawOursLetsGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: time.Minute, Timeout: time.Second}
		f, guests := fakeFleet(opts, 1)
		defer f.Close()
		f.Start(t.Context())
		synctest.Wait()
		g := guests["g000"]
		if r := f.Run(t.Context(), Action{Kind: ActFreeze}, []string{"g000"}, nil)[0]; !r.OK {
			t.Fatalf("freeze: %+v", r)
		}
		if n := g.open(); n != 1 {
			t.Fatalf("frozen by us: %d connections open, want the freeze's kept", n)
		}
		rs := f.ThawOurs(t.Context())
		if len(rs) != 1 || !rs[0].OK {
			t.Fatalf("ThawOurs: %+v", rs)
		}
		synctest.Wait()
		if n := g.open(); n != 0 {
			t.Errorf("after ThawOurs: %d connections open until the next poll (a minute away), want 0: the channel is free between uses", n)
		}
	})
}

// A bulk freeze writes every guest's ledger entry first (pending), then
// freezes a few at a time: a guest still waiting its turn has nothing
// frozen and no thaw owed, so its channel is let go between polls as any
// other's, not held (and out of the yield watch) for as long as the guests
// before it take.
func TestBulkFreezeWaitingLetsGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: 30 * time.Second, Concurrency: 1,
			Ledger: ledger.Open(t.TempDir()), Who: "test"}
		f, guests := fakeFleet(opts, 2)
		defer f.Close()
		f.Start(t.Context())
		synctest.Wait()
		first, waiting := guests["g000"], guests["g001"]
		first.set(func(g *fakeGuest) { g.latency = 20 * time.Second })
		done := make(chan []Result, 1)
		polled := func() int { waiting.mu.Lock(); defer waiting.mu.Unlock(); return len(waiting.calls) }
		c0 := polled()
		go func() {
			done <- f.Run(t.Context(), Action{Kind: ActFreeze}, []string{"g000", "g001"}, nil)
		}()
		time.Sleep(12 * time.Second) // g001 polls twice while g000's freeze runs
		synctest.Wait()
		if polled() == c0 {
			t.Fatal("g001 not polled while waiting")
		}
		if n := waiting.open(); n != 0 {
			t.Errorf("g001, waiting its turn in the bulk freeze: %d connections open between polls, want 0", n)
		}
		for _, r := range <-done {
			if !r.OK {
				t.Errorf("freeze: %+v", r)
			}
		}
	})
}
