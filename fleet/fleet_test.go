package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Every guest is polled at once when the fleet starts; from the second poll
// on, each keeps its own deterministic offset inside the interval (at least
// half an interval after the first) and polls every interval.
func TestStartOffsets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 10 * time.Second, SlowInterval: time.Minute, Timeout: time.Second}
		f, guests := fakeFleet(opts, 20)
		defer f.Close()
		t0 := time.Now()
		f.Start(t.Context())
		time.Sleep(35 * time.Second)
		synctest.Wait()
		distinct := map[time.Duration]bool{}
		for name, g := range guests {
			want := time.Duration(nameHash(name) % uint64(opts.Interval))
			ts := g.callTimes("guest-get-time")
			if len(ts) < 3 {
				t.Fatalf("%s: %d live polls in 35s, want >= 3", name, len(ts))
			}
			if ts[0] != t0 {
				t.Errorf("%s first poll at +%v, want at once", name, ts[0].Sub(t0))
			}
			second := want
			if second <= opts.Interval/2 {
				second += opts.Interval
			}
			for i, at := range ts[1:] {
				if got, w := at.Sub(t0), second+time.Duration(i)*opts.Interval; !inSlot(f, got, w) {
					t.Errorf("%s poll %d at +%v, want +%v", name, i+1, got, w)
				}
			}
			distinct[ts[1].Sub(t0)] = true
			if g := f.Guest(name); g.State != Ready || g.LastSlow.IsZero() || g.Hostname != name {
				t.Errorf("%s: state %s, LastSlow %v, hostname %q", name, g.State, g.LastSlow, g.Hostname)
			}
		}
		if len(distinct) < 15 {
			t.Errorf("only %d distinct start offsets for 20 guests", len(distinct))
		}
	})
}

// A hung guest times out after Timeout and turns silent; the others keep
// their schedule; the hung one recovers when the hang clears.
func TestTimeoutAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: 2 * time.Second}
		f, guests := fakeFleet(opts, 5)
		defer f.Close()
		f.Start(t.Context())
		time.Sleep(6 * time.Second)
		synctest.Wait()
		guests["g001"].set(func(g *fakeGuest) { g.hang = true })
		before := map[string]int{}
		for n, g := range guests {
			before[n] = g.count("guest-get-time")
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		g := f.Guest("g001")
		if g.State != Silent || !strings.Contains(g.Err, "in time") {
			t.Fatalf("hung guest: state %s err %q", g.State, g.Err)
		}
		for n, fg := range guests {
			if n == "g001" {
				continue
			}
			if got := fg.count("guest-get-time") - before[n]; got != 4 {
				t.Errorf("%s: %d polls in 20s, want 4", n, got)
			}
			if st := f.Guest(n).State; st != Ready {
				t.Errorf("%s: %s", n, st)
			}
		}
		// Every hung call ended at its timeout: none lasted longer.
		for _, e := range g.Log.All() {
			if e.Duration > opts.Timeout {
				t.Errorf("call %s took %v > timeout", e.Command, e.Duration)
			}
		}
		guests["g001"].set(func(g *fakeGuest) { g.hang = false })
		time.Sleep(opts.MaxBackoff + 6*time.Second + opts.Interval*6)
		synctest.Wait()
		if g := f.Guest("g001"); g.State != Ready || g.Err != "" {
			t.Fatalf("after the hang cleared: %s %q", g.State, g.Err)
		}
	})
}

// A guest that refuses connections is retried with growing, jittered
// delays, capped, and stays unreachable with the dial error.
func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: time.Second, MaxBackoff: 20 * time.Second}
		f, guests := fakeFleet(opts, 1)
		defer f.Close()
		fg := guests["g000"]
		fg.set(func(g *fakeGuest) { g.refuse = errors.New("connection refused") })
		f.Start(t.Context())
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		g := f.Guest("g000")
		if g.State != Unreachable || !strings.Contains(g.Err, "connection refused") {
			t.Fatalf("state %s err %q", g.State, g.Err)
		}
		ds := fg.dialTimes()
		if len(ds) < 8 || len(ds) > 16 {
			t.Fatalf("%d dials in 3 minutes", len(ds))
		}
		for i := 1; i < len(ds); i++ {
			gap := ds[i].Sub(ds[i-1])
			ideal := min(time.Second<<(i-1), opts.MaxBackoff)
			if gap < ideal*8/10 || gap > ideal*12/10 {
				t.Errorf("gap %d = %v, want %v ±20%%", i, gap, ideal)
			}
		}
		if int(g.Missed) != len(ds) {
			t.Errorf("Missed %d, want %d", g.Missed, len(ds))
		}
		// Poke retries at once (libvirt says the agent is back).
		fg.set(func(g *fakeGuest) { g.refuse = nil })
		f.Poke("g000")
		synctest.Wait()
		if g := f.Guest("g000"); g.State != Ready {
			t.Fatalf("after poke: %s %q", g.State, g.Err)
		}
	})
}

// A freeze of some filesystems (freeze --mountpoint, guest-fsfreeze-
// freeze-list) is guarded as a whole freeze is: the watchdog thaws it at its
// deadline, and a thaw by hand disarms it.
func TestFreezeMountpointsWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: time.Second, FreezeTimeout: 30 * time.Second}
		f, guests := fakeFleet(opts, 2)
		defer f.Close()
		f.Start(t.Context())
		f.RefreshOnce(t.Context(), nil)
		a, err := ParseAction([]string{"freeze", "--mountpoint", "/var"})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		for _, r := range f.Run(t.Context(), a, []string{"g000", "g001"}, nil) {
			if !r.OK || r.Result != "froze 1 filesystem (/var)" || r.Filesystems != 1 || !r.ThawAt.Equal(t0.Add(opts.FreezeTimeout)) {
				t.Fatalf("freeze --mountpoint: %+v", r)
			}
		}
		for _, g := range guests {
			if g.count("guest-fsfreeze-freeze-list") != 1 || g.count("guest-fsfreeze-freeze") != 0 {
				t.Fatalf("%s: freeze-list %d, freeze %d", g.name, g.count("guest-fsfreeze-freeze-list"), g.count("guest-fsfreeze-freeze"))
			}
		}
		if got := f.FrozenByUs(); strings.Join(got, ",") != "g000,g001" {
			t.Fatalf("FrozenByUs = %v", got)
		}
		thaw, _ := ParseAction([]string{"thaw"})
		if r := f.Run(t.Context(), thaw, []string{"g001"}, nil)[0]; !r.OK || r.Result != "thawed 1 filesystem" {
			t.Fatalf("thaw: %+v", r)
		}
		time.Sleep(opts.FreezeTimeout - time.Since(t0) - time.Millisecond)
		synctest.Wait()
		if guests["g000"].count("guest-fsfreeze-thaw") != 0 {
			t.Fatal("thawed before the deadline")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if ts := guests["g000"].callTimes("guest-fsfreeze-thaw"); len(ts) != 1 || !ts[0].Equal(t0.Add(opts.FreezeTimeout)) {
			t.Fatalf("watchdog thaws at %v, want exactly %v", ts, t0.Add(opts.FreezeTimeout))
		}
		if n := guests["g001"].count("guest-fsfreeze-thaw"); n != 1 {
			t.Errorf("g001 thawed %d times, want the 1 asked (its guard disarmed)", n)
		}
		if len(f.FrozenByUs()) != 0 {
			t.Errorf("FrozenByUs after the watchdog: %v", f.FrozenByUs())
		}
	})
}

// The watchdog thaws a guest this process froze exactly at its deadline.
func TestFreezeWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: time.Second, FreezeTimeout: 30 * time.Second}
		f, guests := fakeFleet(opts, 3)
		defer f.Close()
		f.Start(t.Context())
		f.RefreshOnce(t.Context(), nil)
		a, _ := ParseAction([]string{"freeze"})
		t0 := time.Now()
		rs := f.Run(t.Context(), a, []string{"g000", "g001"}, nil)
		for _, r := range rs {
			if !r.OK || !strings.Contains(r.Result, "froze 1 filesystem") {
				t.Fatalf("freeze: %+v", r)
			}
		}
		if got := f.FrozenByUs(); strings.Join(got, ",") != "g000,g001" {
			t.Fatalf("FrozenByUs = %v", got)
		}
		g := f.Guest("g000")
		if g.State != Frozen || !g.ThawAt.Equal(t0.Add(opts.FreezeTimeout)) {
			t.Fatalf("after freeze: %s ThawAt %v", g.State, g.ThawAt)
		}
		// A second freeze is "already frozen", not an error.
		if r := f.Run(t.Context(), a, []string{"g000"}, nil)[0]; !r.OK || r.Result != "already frozen" {
			t.Fatalf("second freeze: %+v", r)
		}
		// Thawing g001 by hand disarms its guard.
		thaw, _ := ParseAction([]string{"thaw"})
		if r := f.Run(t.Context(), thaw, []string{"g001"}, nil)[0]; !r.OK || r.Result != "thawed 1 filesystem" {
			t.Fatalf("thaw: %+v", r)
		}
		if r := f.Run(t.Context(), thaw, []string{"g001"}, nil)[0]; !r.OK || !strings.Contains(r.Result, "already thawed") {
			t.Fatalf("second thaw: %+v", r)
		}
		// While frozen only the allowed commands are sent by the poller.
		callsBefore := len(guests["g000"].callTimes("guest-get-time"))
		time.Sleep(opts.FreezeTimeout - time.Since(t0) - time.Millisecond)
		synctest.Wait()
		if guests["g000"].count("guest-fsfreeze-thaw") != 0 {
			t.Fatal("thawed before the deadline")
		}
		if n := len(guests["g000"].callTimes("guest-get-time")); n != callsBefore {
			t.Errorf("poller sent guest-get-time %d times while frozen", n-callsBefore)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		ts := guests["g000"].callTimes("guest-fsfreeze-thaw")
		if len(ts) != 1 || !ts[0].Equal(t0.Add(opts.FreezeTimeout)) {
			t.Fatalf("watchdog thaws at %v, want exactly %v", ts, t0.Add(opts.FreezeTimeout))
		}
		if g := f.Guest("g000"); g.State != Ready || g.FrozenByUs || g.Freeze != agentclient.Thawed {
			t.Fatalf("after watchdog: %s FrozenByUs=%v %s", g.State, g.FrozenByUs, g.Freeze)
		}
		if n := guests["g001"].count("guest-fsfreeze-thaw"); n != 2 {
			t.Errorf("g001 thawed %d times, want the 2 asked", n)
		}
		if len(f.FrozenByUs()) != 0 {
			t.Errorf("FrozenByUs = %v", f.FrozenByUs())
		}
	})
}

func TestThawOurs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, guests := fakeFleet(Options{Timeout: time.Second}, 4)
		defer f.Close()
		f.Run(t.Context(), Action{Kind: ActFreeze}, []string{"g001", "g003"}, nil)
		guests["g002"].set(func(g *fakeGuest) { g.frozen = true }) // frozen by someone else
		rs := f.ThawOurs(t.Context())
		if len(rs) != 2 || rs[0].Guest != "g001" || rs[1].Guest != "g003" || !rs[0].OK || !rs[1].OK {
			t.Fatalf("ThawOurs = %+v", rs)
		}
		if !guests["g002"].frozen || guests["g001"].frozen {
			t.Fatal("ThawOurs thawed the wrong guests")
		}
	})
}

func TestReadonlyRefusesMutating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, guests := fakeFleet(Options{Readonly: true, Timeout: time.Second}, 2)
		defer f.Close()
		for _, words := range [][]string{{"freeze"}, {"shutdown"}, {"write", "/tmp/x", "y"}, {"settime"}} {
			a, err := ParseAction(words)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range f.Run(t.Context(), a, []string{"g000", "g001"}, nil) {
				if r.OK || !strings.Contains(r.Err, "read-only") {
					t.Errorf("%s: %+v", a, r)
				}
			}
		}
		for _, g := range guests {
			if len(g.dialTimes()) != 0 {
				t.Errorf("%s was dialed", g.name)
			}
		}
		r := f.Run(t.Context(), Action{Kind: ActPing}, []string{"g000"}, nil)[0]
		if !r.OK {
			t.Errorf("ping in read-only mode: %+v", r)
		}
		if _, err := f.WriteFile(t.Context(), "g000", "/x", strings.NewReader("x"), 1, nil); err == nil {
			t.Error("WriteFile allowed in read-only mode")
		}
	})
}

// Commands the agent lacks or the admin disabled are never sent: not by the
// poller, not by actions (which report them skipped).
func TestSkipLackingAndDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: time.Second}
		f, guests := fakeFleet(opts, 2)
		defer f.Close()
		fg := guests["g000"]
		fg.set(func(g *fakeGuest) {
			g.disabled = []string{"guest-get-users", "guest-fstrim"}
			g.lacking = []string{"guest-get-vcpus"}
		})
		f.Start(t.Context())
		time.Sleep(time.Minute)
		synctest.Wait()
		for _, c := range []string{"guest-get-users", "guest-get-vcpus"} {
			if n := fg.count(c); n != 0 {
				t.Errorf("poller sent %s %d times", c, n)
			}
		}
		var got []Result
		rs := f.Run(t.Context(), Action{Kind: ActFstrim}, []string{"g000", "g001", "nope"}, func(r Result) { got = append(got, r) })
		if !rs[0].Skipped || !strings.Contains(rs[0].Err, "disabled") || fg.count("guest-fstrim") != 0 {
			t.Errorf("g000 fstrim: %+v", rs[0])
		}
		if !rs[1].OK || rs[1].Result != "trimmed 4096 bytes on 1 filesystem" {
			t.Errorf("g001 fstrim: %+v", rs[1])
		}
		if rs[2].OK || rs[2].Err != "no such guest" {
			t.Errorf("nope: %+v", rs[2])
		}
		if len(got) != 3 {
			t.Errorf("progress called %d times", len(got))
		}
	})
}

// Shutdown is accepted, then confirmed by the guest going away.
func TestShutdownConfirmedByGoing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: 5 * time.Second, Timeout: time.Second}
		f, guests := fakeFleet(opts, 2)
		defer f.Close()
		f.Start(t.Context())
		time.Sleep(6 * time.Second)
		a, _ := ParseAction([]string{"shutdown", "reboot"})
		r := f.Run(t.Context(), a, []string{"g000"}, nil)[0]
		if !r.OK || !strings.Contains(r.Result, "accepted") {
			t.Fatalf("shutdown: %+v", r)
		}
		// The fake hangs up as it goes, as qemu-ga does right after
		// guest-shutdown; the poll the action started sees the EOF and
		// confirms the guest went. (A guest whose channel stays up and
		// silent stays shutting-down: TestSimActionsAndFiles, suspend ram.)
		synctest.Wait()
		if g := f.Guest("g000"); g.State != Gone || !strings.Contains(g.Err, "went away") {
			t.Fatalf("after shutdown and hang-up: %s %q", g.State, g.Err)
		}
		guests["g000"].set(func(g *fakeGuest) { g.refuse = errors.New("no such file or directory") })
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if g := f.Guest("g000"); g.State != Gone {
			t.Fatalf("after the socket went: %s %q", g.State, g.Err)
		}
		if st := f.Guest("g001").State; st != Ready {
			t.Errorf("bystander: %s", st)
		}
		// MarkGone from libvirt, then it comes back.
		f.MarkGone("g001", "domain stopped")
		if g := f.Guest("g001"); g.State != Gone || g.Err != "domain stopped" {
			t.Fatalf("MarkGone: %s %q", g.State, g.Err)
		}
		guests["g000"].set(func(g *fakeGuest) { g.refuse = nil })
		f.Poke("g000")
		f.Poke("g001")
		synctest.Wait()
		for _, n := range []string{"g000", "g001"} {
			if g := f.Guest(n); g.State != Ready {
				t.Errorf("%s back: %s %q", n, g.State, g.Err)
			}
		}
	})
}

// Skew is guest minus host, corrected by half the round trip.
func TestSkewAndRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, guests := fakeFleet(Options{Timeout: time.Second}, 1)
		defer f.Close()
		guests["g000"].set(func(g *fakeGuest) { g.clockSkew = 3 * time.Second; g.latency = 20 * time.Millisecond })
		f.RefreshOnce(t.Context(), []string{"g000"})
		g := f.Guest("g000")
		// The fake reads its clock after the latency, i.e. at the end of the
		// round trip: the midpoint correction leaves half the RTT.
		if !g.SkewKnown || g.Skew != 3*time.Second+10*time.Millisecond {
			t.Errorf("skew %v known=%v", g.Skew, g.SkewKnown)
		}
		if g.RTT != 20*time.Millisecond || g.RTTHistory.Len() != 1 {
			t.Errorf("rtt %v history %v", g.RTT, g.RTTHistory)
		}
		if g.Log.Len() == 0 || g.Log.At(0).At.Before(g.Log.At(g.Log.Len()-1).At) {
			t.Errorf("log not newest first: %+v", g.Log.Entries())
		}
	})
}

func TestSnapshotCachedByVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, _ := fakeFleet(Options{Timeout: time.Second}, 3)
		defer f.Close()
		s1 := f.Snapshot()
		if s2 := f.Snapshot(); s1 != s2 {
			t.Fatal("unchanged fleet rebuilt its snapshot")
		}
		<-f.Changed()
		f.RefreshOnce(t.Context(), nil)
		select {
		case <-f.Changed():
		default:
			t.Fatal("no change signalled")
		}
		s3 := f.Snapshot()
		if s3 == s1 || s3.Counts[Ready] != 3 || len(s3.Guests) != 3 || s3.Guests[0].Name != "g000" {
			t.Fatalf("snapshot after refresh: %+v", s3)
		}
		f.Remove("g001")
		if s4 := f.Snapshot(); len(s4.Guests) != 2 || s4.Guests[1].Name != "g002" {
			t.Fatalf("after Remove: %d guests", len(s4.Guests))
		}
	})
}

func TestReadAction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, guests := fakeFleet(Options{Timeout: time.Second}, 1)
		defer f.Close()
		r := f.Run(t.Context(), Action{Kind: ActRead, Path: "/etc/hostname"}, []string{"g000"}, nil)[0]
		if !r.OK || string(r.Data) != "hello" {
			t.Fatalf("read: %+v", r)
		}
		guests["g000"].set(func(g *fakeGuest) { g.frozen = true })
		r = f.Run(t.Context(), Action{Kind: ActRead, Path: "/etc/hostname"}, []string{"g000"}, nil)[0]
		if r.OK || !strings.Contains(r.Err, "frozen") {
			t.Fatalf("read while frozen: %+v", r)
		}
	})
}

func TestRunCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, guests := fakeFleet(Options{Timeout: 10 * time.Second, Concurrency: 1}, 3)
		defer f.Close()
		for _, g := range guests {
			g.set(func(g *fakeGuest) { g.latency = time.Second })
		}
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		rs := f.Run(ctx, Action{Kind: ActPing}, []string{"g000", "g001", "g002"}, nil)
		if !rs[0].OK || rs[1].OK || rs[2].OK || !strings.Contains(rs[2].Err, "cancelled") {
			t.Fatalf("%+v", rs)
		}
		if guests["g002"].count("guest-ping") != 0 {
			t.Fatal("a cancelled run still sent to g002")
		}
	})
}

// Remove ends the guest's loop and closes its connection at once; Close
// does the same for all.
func TestRemoveStopsLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, guests := fakeFleet(Options{Interval: 5 * time.Second, Timeout: time.Second}, 2)
		f.Start(t.Context())
		time.Sleep(11 * time.Second)
		f.Remove("g000")
		synctest.Wait()
		n := len(guests["g000"].callTimes("guest-get-time"))
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := len(guests["g000"].callTimes("guest-get-time")); got != n || guests["g000"].conns != 0 {
			t.Fatalf("removed guest: %d more calls, %d connections open", got-n, guests["g000"].conns)
		}
		if f.Guest("g000") != nil || len(f.Snapshot().Guests) != 1 {
			t.Fatal("removed guest still listed")
		}
		f.Close()
		synctest.Wait() // every fleet goroutine has ended: synctest would report them
		if guests["g001"].conns != 0 {
			t.Fatal("Close left a connection open")
		}
	})
}
