package fleet_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// Benchmarks against simulated guests served by separate simfarm processes
// (./internal/simfarm), at most simPerProc guests each: the simulator's CPU
// and memory stay out of this process's figures, and no process needs more
// than the 20,000 open files allowed here.
//
//	go test ./fleet -run '^$' -bench 'RefreshOnce' -benchtime 3x
//	go test ./fleet -run '^$' -bench 'SteadyState' -benchtime 1x -timeout 10m
const simPerProc = 5000

var (
	simBinOnce sync.Once
	simBin     string
	simBinErr  error
)

func buildSimfarm(tb testing.TB) string {
	simBinOnce.Do(func() {
		dir, err := os.MkdirTemp("/tmp", "gdbin")
		if err != nil {
			simBinErr = err
			return
		}
		simBin = filepath.Join(dir, "simfarm")
		out, err := exec.Command("go", "build", "-o", simBin, "./internal/simfarm").CombinedOutput()
		if err != nil {
			simBinErr = fmt.Errorf("building simfarm: %v\n%s", err, out)
		}
	})
	if simBinErr != nil {
		tb.Fatal(simBinErr)
	}
	return simBin
}

// startSimfarms serves n simulated guests and returns their targets.
func startSimfarms(tb testing.TB, n int) []fleet.Target {
	bin := buildSimfarm(tb)
	var targets []fleet.Target
	for p := 0; p*simPerProc < n; p++ {
		k := min(simPerProc, n-p*simPerProc)
		dir, err := os.MkdirTemp("/tmp", "gdb")
		if err != nil {
			tb.Fatal(err)
		}
		prefix := fmt.Sprintf("p%d-", p)
		cmd := exec.Command(bin, "-dir", dir, "-n", fmt.Sprint(k), "-prefix", prefix)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			stdin.Close() // simfarm exits when its stdin closes
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			os.RemoveAll(dir)
		})
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			tb.Fatalf("simfarm: %q %v", line, err)
		}
		for i := range k {
			name := fmt.Sprintf("%s%05d", prefix, i)
			targets = append(targets, fleet.Target{Name: name, Address: "unix:" + filepath.Join(dir, name+".sock")})
		}
	}
	return targets
}

func BenchmarkRefreshOnce(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		targets := startSimfarms(b, n)
		// Cold: a new fleet each time, so every guest is dialed and synced.
		b.Run(fmt.Sprintf("cold/%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				f := fleet.New(fleet.Options{Timeout: 10 * time.Second})
				f.Add(targets...)
				b.StartTimer()
				f.RefreshOnce(context.Background(), nil)
				b.StopTimer()
				if got := f.Snapshot().Counts[fleet.Ready]; got != n {
					b.Fatalf("%d of %d ready", got, n)
				}
				f.Close()
				b.StartTimer()
			}
		})
		// Warm: connections stay open between refreshes.
		b.Run(fmt.Sprintf("warm/%d", n), func(b *testing.B) {
			f := fleet.New(fleet.Options{Timeout: 10 * time.Second})
			defer f.Close()
			f.Add(targets...)
			f.RefreshOnce(context.Background(), nil)
			for b.Loop() {
				f.RefreshOnce(context.Background(), nil)
			}
			if got := f.Snapshot().Counts[fleet.Ready]; got != n {
				b.Fatalf("%d of %d ready", got, n)
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssKB is this process's resident set, from /proc (0 where there is none).
func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(v, &kb)
			return kb
		}
	}
	return 0
}

// metricsInterval is GUESTDECK_METRICS: a duration, or "off" for no
// metrics; unset, the default.
func metricsInterval() time.Duration {
	v := os.Getenv("GUESTDECK_METRICS")
	if v == "off" {
		return -1
	}
	d, _ := time.ParseDuration(v)
	return d
}

// BenchmarkSteadyState polls 10,000 guests every 5 s (slow items every 60 s)
// and reports this process's CPU (rusage over a window of several
// intervals, as a share of one core), its RSS (the most seen in the window,
// sampled every second), and memory per guest (heap in use, and goroutine
// stacks, after GC, against the same process before the fleet).
// GUESTDECK_WINDOW sets the window (default 30s), GUESTDECK_GUESTS the
// fleet's size (default 10,000), GUESTDECK_CPUPROFILE
// writes a CPU profile of the window alone, GUESTDECK_METRICS sets the
// metrics interval ("off": none).
func BenchmarkSteadyState(b *testing.B) {
	n := 10000
	window := 30 * time.Second
	if w, err := time.ParseDuration(os.Getenv("GUESTDECK_WINDOW")); err == nil {
		window = w
	}
	if testing.Short() {
		n, window = 1000, 10*time.Second
	}
	if v, err := strconv.Atoi(os.Getenv("GUESTDECK_GUESTS")); err == nil && v > 0 {
		n = v
	}
	targets := startSimfarms(b, n)
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		f := fleet.New(fleet.Options{Interval: 5 * time.Second, SlowInterval: 60 * time.Second, Timeout: 5 * time.Second,
			MetricsInterval: metricsInterval()})
		f.Add(targets...)
		ctx, cancel := context.WithCancel(context.Background())
		f.Start(ctx)
		// Warm up: every guest connected and through its first slow poll.
		deadline := time.Now().Add(time.Minute)
		for f.Snapshot().Counts[fleet.Ready] < n && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(6 * time.Second)
		if p := os.Getenv("GUESTDECK_CPUPROFILE"); p != "" {
			// The window only: not the connects and first slow polls.
			if w, err := os.Create(p); err == nil {
				_ = pprof.StartCPUProfile(w)
				defer w.Close()
			}
		}
		c0, t0 := cpuTime(), time.Now()
		v0 := f.Snapshot().Version
		var rssMax int64
		for end := t0.Add(window); time.Now().Before(end); {
			time.Sleep(time.Second)
			rssMax = max(rssMax, rssKB())
		}
		c1, t1 := cpuTime(), time.Now()
		pprof.StopCPUProfile()
		snap := f.Snapshot()
		after := memAfterGC()
		cpu := float64(c1-c0) / float64(t1.Sub(t0))
		heap := float64(after.HeapInuse-before.HeapInuse) / float64(n)
		stack := float64(after.StackInuse-before.StackInuse) / float64(n)
		b.ReportMetric(cpu*100, "%cpu")
		b.ReportMetric(heap/1024, "heapKB/guest")
		b.ReportMetric(stack/1024, "stackKB/guest")
		b.ReportMetric(float64(snap.Version-v0)/t1.Sub(t0).Seconds(), "updates/s")
		b.ReportMetric(float64(rssMax)/1024, "rss-MB")
		ready, late, missed := snap.Counts[fleet.Ready], snap.Health.Late, snap.Health.Missed
		b.Logf("%d guests: %.1f%% of one core, heap %.1f KB/guest, stacks %.1f KB/guest, RSS %d MB (the whole test process), ready %d, late %d, missed %d",
			n, cpu*100, heap/1024, stack/1024, rssMax/1024, ready, late, missed)
		if ready != n {
			b.Errorf("%d of %d ready", ready, n)
		}
		cancel()
		f.Close()
	}
}

// BenchmarkHeapPerGuest measures what a fleet keeps per guest once every
// ring is full: GUESTDECK_GUESTS simulated guests (default 2,000) polled
// HistorySize+8 times with a metrics sample each time, so that the
// metrics history, the command log and the RTT and skew histories have all
// wrapped. It reports the live heap (HeapAlloc after a GC, against the
// same process before the fleet) and the heap in use (HeapInuse: the spans
// holding it) per guest. GUESTDECK_HEAPPROFILE writes a heap profile at
// the moment of the measurement.
//
//	go test ./fleet -run '^$' -bench HeapPerGuest -benchtime 1x
func BenchmarkHeapPerGuest(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("GUESTDECK_GUESTS")); err == nil && v > 0 {
		n = v
	}
	polls := fleet.HistorySize + 8
	targets := startSimfarms(b, n)
	ctx := context.Background()
	if os.Getenv("GUESTDECK_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 64 // fine-grained: the figures are a few KB a guest
	}
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		// A metrics interval shorter than any gap between polls: a sample
		// each poll, so that HistorySize polls fill the ring.
		f := fleet.New(fleet.Options{Timeout: 5 * time.Second, MetricsInterval: time.Nanosecond})
		f.Add(targets...)
		for range polls {
			fleet.PollAll(ctx, f)
		}
		snap := f.Snapshot() // the dashboard holds one
		after := memAfterGC()
		live := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
		inuse := float64(after.HeapInuse-before.HeapInuse) / float64(n)
		b.ReportMetric(live, "live-B/guest")
		b.ReportMetric(inuse, "inuse-B/guest")
		ready := snap.Counts[fleet.Ready]
		var hist int
		for _, g := range snap.Guests {
			hist += len(f.History(g.Name))
		}
		b.Logf("%d guests, %d polls: live heap %.0f B/guest, in use %.0f B/guest; ready %d, history %d samples/guest",
			n, polls, live, inuse, ready, hist/n)
		if ready != n || hist != n*fleet.HistorySize {
			b.Errorf("%d of %d ready, %d of %d history samples", ready, n, hist, n*fleet.HistorySize)
		}
		f.Close()
	}
}

// BenchmarkPoll is one steady-state poll of one connected guest (a simfarm
// process, exclusive: the connection stays), what the fleet does 2,000
// times a second at 10,000 guests: live items alone, and live items with a
// metrics sample (every second poll at the default intervals); and a slow
// refresh over the connection, with a metrics sample (each guest's, once a
// minute: some 170 a second at 10,000 guests). cpu-ns/op
// is this process's CPU per poll (rusage), without the simulator's; ns/op
// includes waiting for the simulator's replies.
//
//	go test ./fleet -run '^$' -bench 'BenchmarkPoll$' -benchmem
func BenchmarkPoll(b *testing.B) {
	targets := startSimfarms(b, 1)
	for _, name := range []string{"live", "metrics", "slow"} {
		metrics := name != "live"
		poll := func(ctx context.Context, f *fleet.Fleet, guest string) error {
			if name == "slow" {
				return f.SlowPollForBench(ctx, guest)
			}
			return f.PollForBench(ctx, guest, metrics)
		}
		b.Run(name, func(b *testing.B) {
			f := fleet.New(fleet.Options{Interval: 5 * time.Second, SlowInterval: time.Hour, Timeout: 5 * time.Second})
			defer f.Close()
			t := targets[0]
			t.Exclusive = true
			f.Add(t)
			ctx := context.Background()
			for range 2 { // connect, slow items, first metrics sample
				if err := f.PollForBench(ctx, t.Name, true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			c0 := cpuTime()
			for b.Loop() {
				if err := poll(ctx, f, t.Name); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
			if g := f.Guest(t.Name); g.State != fleet.Ready || g.Err != "" || metrics && g.Metrics.CPUs == 0 {
				b.Fatalf("after the polls: %v %q, metrics %+v", g.State, g.Err, g.Metrics)
			}
		})
	}
}

// memAfterGC collects, reads the memory statistics, and writes a heap
// profile of that moment to GUESTDECK_HEAPPROFILE when it is set.
func memAfterGC() runtime.MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if p := os.Getenv("GUESTDECK_HEAPPROFILE"); p != "" {
		if w, err := os.Create(p); err == nil {
			_ = pprof.WriteHeapProfile(w)
			w.Close()
		}
	}
	return m
}
