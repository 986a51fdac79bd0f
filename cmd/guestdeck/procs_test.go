package main

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// The governor goes to one processor only after procQuietSamples quiet
// samples in a row, back at the first busy one, and holds between the two
// thresholds (no flapping).
func TestProcGovernor(t *testing.T) {
	type step struct {
		cores  float64
		change bool
		one    bool
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"quiet goes to one after four samples", []step{
			{0.1, false, false}, {0.1, false, false}, {0.1, false, false}, {0.1, true, true}, {0.1, false, true},
		}},
		{"a sample in between starts the count again", []step{
			{0.1, false, false}, {0.1, false, false}, {0.1, false, false}, {0.4, false, false},
			{0.1, false, false}, {0.1, false, false}, {0.1, false, false}, {0.1, true, true},
		}},
		{"busy goes back at once and holds between", []step{
			{0, false, false}, {0, false, false}, {0, false, false}, {0, true, true},
			{0.4, false, true}, {0.49, false, true}, {0.5, true, false}, {0.4, false, false}, {1.7, false, false},
		}},
		{"busy from the start stays on the default", []step{
			{1.2, false, false}, {0.9, false, false}, {0.6, false, false},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var g procGovernor
			for i, s := range tt.steps {
				change, one := g.next(s.cores)
				if change != s.change || one != s.one {
					t.Fatalf("sample %d (%.2f cores): change %v one %v, want %v %v", i, s.cores, change, one, s.change, s.one)
				}
			}
		})
	}
}

// Stopping the governor puts the runtime's default back, whatever it had
// set; an operator's GOMAXPROCS is left alone (no governor runs).
func TestGovernProcsStopRestoresDefault(t *testing.T) {
	def := runtime.GOMAXPROCS(0) // on one core the governor never runs, and stop leaves 1
	stop := governProcs(context.Background())
	runtime.GOMAXPROCS(1) // as the governor does when quiet
	stop()
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Fatalf("after stop: %d processors, want the default %d", got, def)
	}

	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	stop = governProcs(context.Background())
	stop()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("with GOMAXPROCS=1 set by the operator: %d processors after stop, want 1", got)
	}
	runtime.SetDefaultGOMAXPROCS()
}

// The loop turns CPU readings into settings: quiet samples go to one
// processor, a busy one back, a missing reading makes no sample and the
// reading after it is only the base the next one is measured from.
func TestGovernLoop(t *testing.T) {
	shares := []float64{ // per procSample; -1: no reading
		0.05, 0.05, 0.05, 0.05, // 4: one
		0.9,     // 5: default
		-1, 0.1, // no sample, then only a base
		0.1, 0.1, 0.1, 0.1, // 11: one
		0.4, 0.45, // between: held
	}
	type set struct {
		tick int // the reading it followed, 1 for the first tick's
		one  bool
	}
	want := []set{{4, true}, {5, false}, {11, true}}

	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time)
	done := make(chan struct{})
	var (
		got   []set // written by govern's goroutine, read after done
		reads int
		used  time.Duration
	)
	cpu := func() time.Duration {
		if reads == 0 { // the reading govern starts from
			reads++
			return 0
		}
		share := shares[reads-1]
		reads++
		if share < 0 {
			return -1
		}
		used += time.Duration(share * float64(procSample))
		return used
	}
	go func() {
		defer close(done)
		govern(ctx, ticks, cpu, func(one bool) { got = append(got, set{reads - 1, one}) })
	}()
	at := time.Now()
	for range shares {
		at = at.Add(procSample)
		ticks <- at
	}
	cancel()
	<-done
	if len(got) != len(want) {
		t.Fatalf("settings %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("settings %v, want %v", got, want)
		}
	}
}
