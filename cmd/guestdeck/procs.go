package main

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"time"
)

// The dashboard's processors. Its steady state is thousands of tiny
// events a second (a poll's write, a reply's arrival, a frame), each a few
// tens of microseconds of work. With more than one processor the Go
// scheduler hands a goroutine that wakes to another OS thread, which it
// must wake first (a futex and a context switch, often dearer than the
// work): at 10,000 simulated guests (scripts/abdash.sh, README:
// Performance) one processor took 9.6–9.8 % of a core against 10.8–10.9 %,
// and this governor 14.6–16.3 % against 16.4–18.3 % on a slower machine,
// lower in every pair.
// A launch, a refresh of every guest, a bulk action or a transfer is
// another matter: there the work is real and both cores shorten it. So the
// dashboard measures what it spends, and runs on one processor while that
// stays low, on the runtime's default while it is high.
const (
	// procSample is how often the governor reads the process's CPU time.
	procSample = 500 * time.Millisecond
	// procBusy: a sample at or above this share of one core (all of the
	// process's threads) gives back the runtime's default processors.
	procBusy = 0.5
	// procQuiet: procQuietSamples samples in a row below this share go
	// to one processor. Between the two the setting stays: no flapping.
	procQuiet        = 0.3
	procQuietSamples = 4
)

// procGovernor decides, one sample at a time, whether the dashboard runs
// on one processor. It starts on the default (a launch is busy).
type procGovernor struct {
	one   bool // on one processor now
	quiet int  // samples in a row below procQuiet
}

// next takes the share of one core the process used over the last sample
// and says whether to change: to one processor (one), or back to the
// default (!one).
func (g *procGovernor) next(cores float64) (change, one bool) {
	if cores >= procBusy {
		g.quiet = 0
		if g.one {
			g.one = false
			return true, false
		}
		return false, false
	}
	if cores < procQuiet {
		g.quiet++
	} else {
		g.quiet = 0
	}
	if !g.one && g.quiet >= procQuietSamples {
		g.one = true
		return true, true
	}
	return false, g.one
}

// governProcs runs the governor until ctx ends or the returned stop is
// called; stop waits for it and puts the runtime's default back. An
// operator who set GOMAXPROCS keeps it: no governor runs.
func governProcs(ctx context.Context) (stop func()) {
	if os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) == 1 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(procSample)
		defer t.Stop()
		govern(ctx, t.C, processCPU, func(one bool) {
			if one {
				runtime.GOMAXPROCS(1)
			} else {
				runtime.SetDefaultGOMAXPROCS()
			}
		})
	}()
	return func() {
		cancel()
		<-done
		runtime.SetDefaultGOMAXPROCS()
	}
}

// govern reads cpu at each tick and calls set when the governor changes
// its mind, until ctx ends. A reading of -1 (none) keeps the setting.
func govern(ctx context.Context, ticks <-chan time.Time, cpu func() time.Duration, set func(one bool)) {
	var g procGovernor
	prevCPU, prevAt := cpu(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticks:
			c := cpu()
			wall := now.Sub(prevAt)
			if c < 0 || prevCPU < 0 || wall <= 0 {
				prevCPU, prevAt = c, now
				continue
			}
			change, one := g.next(float64(c-prevCPU) / float64(wall))
			prevCPU, prevAt = c, now
			if change {
				set(one)
			}
		}
	}
}

// processCPU is the CPU time of every thread of this process so far, or
// -1 when the system does not say.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
