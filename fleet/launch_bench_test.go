package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// BenchmarkLaunch starts a fleet of 10,000 simulated guests (simfarm
// processes) the way the dashboard does, and reports how long until the
// rows on screen are ready (20 guests from the middle of the fleet, which
// the dashboard names with Prioritize, as after a sort or a scroll) and
// until every guest is, each beside a raw lower bound measured in the same
// run: connect, resync and ask the first poll's commands of every guest
// (the first look: guest-info, the live items, the OS; what
// scripts/rawbound asks), 64 at a time, with nothing else.
//
//	go test ./fleet -run '^$' -bench Launch -benchtime 3x -timeout 10m
func BenchmarkLaunch(b *testing.B) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	targets := startSimfarms(b, n)
	var visible []string
	for _, t := range targets[n/2 : n/2+20] {
		visible = append(visible, t.Name)
	}
	var raw, vis, all time.Duration
	for b.Loop() {
		r := rawLaunch(b, targets)
		v, a := launch(b, targets, visible)
		b.Logf("raw %.2fs, visible ready %.2fs (%.2fx), all ready %.2fs (%.2fx)",
			r.Seconds(), v.Seconds(), v.Seconds()/r.Seconds(), a.Seconds(), a.Seconds()/r.Seconds())
		raw, vis, all = raw+r, vis+v, all+a
	}
	runs := float64(b.N)
	b.ReportMetric(raw.Seconds()/runs, "raw-s")
	b.ReportMetric(vis.Seconds()/runs, "visible-s")
	b.ReportMetric(all.Seconds()/runs, "all-s")
	b.ReportMetric(vis.Seconds()/raw.Seconds(), "visible/raw")
	b.ReportMetric(all.Seconds()/raw.Seconds(), "all/raw")
	b.ReportMetric(0, "ns/op") // the figures above are what counts
}

// rawLaunch is the lower bound: what the first poll of every guest asks,
// with no fleet around it.
func rawLaunch(tb testing.TB, targets []fleet.Target) time.Duration {
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(targets) {
					return
				}
				if err := rawPoll(ctx, targets[i].Address); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(t0)
	if f := failed.Load(); f > 0 {
		tb.Fatalf("raw: %d of %d guests failed", f, len(targets))
	}
	return d
}

func rawPoll(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := agentclient.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	calls := []func() error{
		func() error { _, err := c.Info(ctx); return err },
		func() error { _, err := c.Time(ctx); return err },
		func() error { _, err := c.Interfaces(ctx); return err },
		func() error { _, err := c.VCPUs(ctx); return err },
		func() error { _, err := c.OSInfo(ctx); return err },
	}
	for _, call := range calls {
		if err := call(); err != nil {
			return err
		}
	}
	return nil
}

// launch starts a fleet as the dashboard does and returns when the visible
// guests and when all guests were first ready.
func launch(tb testing.TB, targets []fleet.Target, visible []string) (vis, all time.Duration) {
	// The dashboard's defaults (config): metrics too, from the second poll.
	f := fleet.New(fleet.Options{Interval: 5 * time.Second, SlowInterval: 60 * time.Second, Timeout: 3 * time.Second})
	defer f.Close()
	f.Add(targets...)
	f.Prioritize(visible)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	f.Start(ctx)
	// The visible rows are looked at every 10 ms (20 lookups); the whole
	// fleet every 100 ms, as often as the dashboard pulls a snapshot (one
	// costs O(guests): taken every 10 ms, they were an eighth of the
	// process's CPU).
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(2 * time.Minute)
	var timeline []string   // ready and failed polls each second, for -v
	var tail map[string]int // the last 1% not ready, by state and error
	looks := 0
	defer func() {
		tb.Logf("launch timeline: %s; the last 1%%: %v", strings.Join(timeline, " "), tail)
	}()
	for all == 0 {
		select {
		case <-giveUp:
			tb.Fatalf("launch: %d of %d ready after 2 minutes", f.Snapshot().Counts[fleet.Ready], len(targets))
		case <-tick.C:
		}
		if vis == 0 && namesReady(f, visible) {
			vis = time.Since(t0)
		}
		if looks++; looks%10 != 0 {
			continue
		}
		snap := f.Snapshot()
		if el := time.Since(t0); int(el/time.Second) >= len(timeline) {
			timeline = append(timeline, fmt.Sprintf("%ds:%d/missed%d", int(el/time.Second), snap.Counts[fleet.Ready], snap.Health.Missed))
		}
		if tail == nil && snap.Counts[fleet.Ready] >= len(targets)*99/100 {
			tail = map[string]int{}
			for _, g := range snap.Guests {
				if g.State != fleet.Ready {
					tail[string(g.State)+" "+g.Err]++
				}
			}
		}
		if snap.Counts[fleet.Ready] == len(targets) {
			all = time.Since(t0)
			if vis == 0 {
				vis = all
			}
		}
	}
	return vis, all
}

func namesReady(f *fleet.Fleet, names []string) bool {
	for _, n := range names {
		if g := f.Guest(n); g == nil || g.State != fleet.Ready {
			return false
		}
	}
	return true
}
