package fleet_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// BenchmarkChannel compares the connection lifetimes at 10,000 simulated
// guests (separate simfarm processes, on unix sockets): shared, the
// default, keeps each socket until another client waits for it (yield.go;
// it connected, resynced and let go at every poll before, which is what
// the README's older figures measured); exclusive holds each socket
// regardless. With nobody else connecting the two differ only by the
// watcher's looks. It reports
// the time to refresh every guest once (RefreshOnce, warm: after a first
// refresh) and this process's CPU over it, as a share of one core and as
// CPU time per guest per poll (what a steady 5 s interval costs is that
// times 10,000 / 5 s).
//
//	go test ./fleet -run '^$' -bench 'Channel' -benchtime 5x
func BenchmarkChannel(b *testing.B) {
	const n = 10000
	targets := startSimfarms(b, n)
	for _, mode := range []struct {
		name      string
		exclusive bool
	}{{"shared", false}, {"exclusive", true}} {
		b.Run(fmt.Sprintf("%s/%d", mode.name, n), func(b *testing.B) {
			f := fleet.New(fleet.Options{Timeout: 10 * time.Second})
			defer f.Close()
			ts := make([]fleet.Target, len(targets))
			for i, t := range targets {
				t.Exclusive = mode.exclusive
				ts[i] = t
			}
			f.Add(ts...)
			f.RefreshOnce(context.Background(), nil)
			var cpu, wall time.Duration
			for b.Loop() {
				c0, t0 := cpuTime(), time.Now()
				f.RefreshOnce(context.Background(), nil)
				cpu += cpuTime() - c0
				wall += time.Since(t0)
			}
			if got := f.Snapshot().Counts[fleet.Ready]; got != n {
				b.Fatalf("%d of %d ready", got, n)
			}
			b.ReportMetric(wall.Seconds()*1000/float64(b.N), "ms/refresh")
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%cpu")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/n, "cpu-µs/guest-poll")
		})
	}
}

// BenchmarkChannelSteady is the dashboard's case: 10,000 simulated guests
// polled every 5 s, shared against exclusive, and this process's CPU over a
// window (20 s, or GUESTDECK_WINDOW) as a share of one core, once every
// guest is through its first polls.
//
//	go test ./fleet -run '^$' -bench 'ChannelSteady' -benchtime 1x -timeout 15m
func BenchmarkChannelSteady(b *testing.B) {
	const n = 10000
	window := 20 * time.Second
	if w, err := time.ParseDuration(os.Getenv("GUESTDECK_WINDOW")); err == nil {
		window = w
	}
	targets := startSimfarms(b, n)
	for _, mode := range []struct {
		name      string
		exclusive bool
	}{{"shared", false}, {"exclusive", true}} {
		b.Run(fmt.Sprintf("%s/%d", mode.name, n), func(b *testing.B) {
			for b.Loop() {
				f := fleet.New(fleet.Options{Interval: 5 * time.Second, SlowInterval: 60 * time.Second, Timeout: 5 * time.Second})
				ts := make([]fleet.Target, len(targets))
				for i, t := range targets {
					t.Exclusive = mode.exclusive
					ts[i] = t
				}
				f.Add(ts...)
				ctx, cancel := context.WithCancel(context.Background())
				f.Start(ctx)
				deadline := time.Now().Add(time.Minute)
				for f.Snapshot().Counts[fleet.Ready] < n && time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(6 * time.Second)
				m0 := f.Snapshot().Health.Missed
				c0, t0 := cpuTime(), time.Now()
				time.Sleep(window)
				cpu := float64(cpuTime()-c0) / float64(time.Since(t0))
				snap := f.Snapshot()
				b.ReportMetric(cpu*100, "%cpu")
				b.Logf("%s, %d guests every 5 s: %.1f%% of one core, ready %d, late %d, missed %d before the window and %d in it",
					mode.name, n, cpu*100, snap.Counts[fleet.Ready], snap.Health.Late, m0, snap.Health.Missed-m0)
				if snap.Counts[fleet.Ready] != n {
					b.Errorf("%d of %d ready", snap.Counts[fleet.Ready], n)
				}
				cancel()
				f.Close()
			}
		})
	}
}
