// Package wait is the one helper tests use to wait for an event they do not
// drive: a real process or peer (qemu-ga, libvirtd, a simulator serving a
// socket, a subprocess's output), where testing/synctest cannot stand in for
// the clock. Code that runs on channels and timers alone is tested in a
// synctest bubble instead, without waiting at all.
package wait

import (
	"testing"
	"time"
)

// every is how often For looks: often enough that a test waits a few
// milliseconds past the event, seldom enough to cost nothing.
const every = 10 * time.Millisecond

// For checks cond until it holds and returns how long that took. Once d
// has passed without it, tb fails with what cond last said about the state
// it found. d is a bound for a hung peer, not a timing the test asserts.
func For(tb testing.TB, d time.Duration, cond func() (ok bool, state string)) time.Duration {
	tb.Helper()
	t0 := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return time.Since(t0)
		}
		if time.Since(t0) >= d {
			tb.Fatalf("still waiting after %v: %s", d, state)
		}
		<-tick.C
	}
}
