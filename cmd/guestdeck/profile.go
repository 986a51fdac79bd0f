package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// startProfile is a developer's knob for the performance work (README,
// Performance; scripts/scale.sh PROFILE=1). With GUESTDECK_CPUPROFILE=FILE
// set, SIGUSR1 starts a CPU profile into FILE and SIGUSR2 ends it and
// writes a heap profile into FILE.heap (and one into FILE.heap0 as it
// starts: `go tool pprof -sample_index=alloc_space -base FILE.heap0
// FILE.heap` is what the window allocated), so one window of a long-running
// dashboard (its steady state, not its launch) can be profiled. The
// returned function ends a profile still running, at exit. With
// GUESTDECK_CPUPROFILE_START=1 too, the profile starts at once, for a
// launch (scripts/scale.sh LAUNCH_PROFILE): a signal sent before the
// handler is in place would end the process.
func startProfile() (stop func()) {
	path := os.Getenv("GUESTDECK_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	if os.Getenv("GUESTDECK_CPUPROFILE_START") != "" {
		sig <- syscall.SIGUSR1
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var f *os.File
		end := func() {
			if f == nil {
				return
			}
			pprof.StopCPUProfile()
			_ = f.Close()
			f = nil
			if h, err := os.Create(path + ".heap"); err == nil {
				_ = pprof.WriteHeapProfile(h)
				_ = h.Close()
			}
		}
		for {
			select {
			case s := <-sig:
				if s == syscall.SIGUSR2 {
					end()
					continue
				}
				if f != nil {
					continue
				}
				if h, err := os.Create(path + ".heap0"); err == nil {
					_ = pprof.WriteHeapProfile(h)
					_ = h.Close()
				}
				var err error
				if f, err = os.Create(path); err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "guestdeck: GUESTDECK_CPUPROFILE: %v\n", err)
					if f != nil {
						_ = f.Close()
					}
					f = nil
				}
			case <-done:
				signal.Stop(sig)
				end()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
