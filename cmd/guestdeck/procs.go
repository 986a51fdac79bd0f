package main

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
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
// stays low, on the runtime's default while it is high. And while someone
// is at the keyboard: on one processor a keystroke waits behind the polls
// in the one run queue, and reached the screen in 31–36 ms (median, 5,000
// guests, scripts/measure-hostile.sh) against 23–25 ms; so a key, a mouse
// event or a paste gives the default back at once, and counts as a busy
// sample. With that, 23–25 ms against 21–25 ms: only a first key after two
// quiet seconds is handled on one processor.
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

// procGovernor decides, one sample (or one input) at a time, whether the
// dashboard runs on one processor. It starts on the default (a launch is
// busy).
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

// input is what an operator's key, mouse event or paste does: the default
// at once, if it was one processor, and the quiet samples start again.
func (g *procGovernor) input() (change bool) {
	g.quiet = 0
	if g.one {
		g.one = false
		return true
	}
	return false
}

// procGov is a running governor: its input channel and how to stop it.
type procGov struct {
	in   chan struct{} // one pending input is enough
	stop func()
}

// governProcs runs the governor until ctx ends or the returned stop is
// called; stop waits for it and puts the runtime's default back. An
// operator who set GOMAXPROCS keeps it: no governor runs.
func governProcs(ctx context.Context) *procGov {
	p := &procGov{in: make(chan struct{}, 1), stop: func() {}}
	if os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) == 1 {
		return p
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(procSample)
		defer t.Stop()
		govern(ctx, t.C, p.in, processCPU, func(one bool) {
			if one {
				runtime.GOMAXPROCS(1)
			} else {
				runtime.SetDefaultGOMAXPROCS()
			}
		})
	}()
	p.stop = func() {
		cancel()
		<-done
		runtime.SetDefaultGOMAXPROCS()
	}
	return p
}

// filter is a tea.WithFilter for the dashboard's program: it tells the
// governor of each input message and passes every message on unchanged.
// It never blocks the program: an input already pending covers this one.
func (p *procGov) filter(_ tea.Model, msg tea.Msg) tea.Msg {
	switch msg.(type) {
	case tea.KeyMsg, tea.MouseMsg, tea.PasteMsg:
		select {
		case p.in <- struct{}{}:
		default:
		}
	}
	return msg
}

// govern reads cpu at each tick, hears each input, and calls set when the
// governor changes its mind, until ctx ends. A reading of -1 (none) keeps
// the setting.
func govern(ctx context.Context, ticks <-chan time.Time, input <-chan struct{}, cpu func() time.Duration, set func(one bool)) {
	var g procGovernor
	prevCPU, prevAt := cpu(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-input:
			if g.input() {
				set(false)
			}
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
