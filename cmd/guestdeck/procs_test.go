package main

import (
	"context"
	"runtime"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
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
	p := governProcs(context.Background())
	runtime.GOMAXPROCS(1) // as the governor does when quiet
	p.stop()
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Fatalf("after stop: %d processors, want the default %d", got, def)
	}

	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	p = governProcs(context.Background())
	p.filter(nil, tea.KeyPressMsg{Code: 'j'}) // no governor: nobody reads it, nothing blocks
	p.filter(nil, tea.KeyPressMsg{Code: 'k'})
	p.stop()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("with GOMAXPROCS=1 set by the operator: %d processors after stop, want 1", got)
	}
	runtime.SetDefaultGOMAXPROCS()
}

// The loop turns CPU readings and inputs into settings: quiet samples go
// to one processor, a busy one or an input back, an input starts the quiet
// count again, a missing reading makes no sample and the reading after it
// is only the base the next one is measured from.
func TestGovernLoop(t *testing.T) {
	const key = -2 // an input instead of a tick
	type step struct {
		share float64 // of a core over a procSample; -1: no reading; key
		set   int     // the setting it must cause: 1 one, -1 default, 0 none
	}
	steps := []step{
		{0.05, 0}, {0.05, 0}, {0.05, 0}, {0.05, 1}, // four quiet: one
		{0.9, -1},         // busy: default
		{-1, 0}, {0.1, 0}, // no sample, then only a base
		{0.1, 0}, {0.1, 0}, {0.1, 0}, {0.1, 1},
		{0.4, 0}, {0.45, 0}, // between: held
		{key, -1},                              // an input: default at once
		{0.1, 0}, {0.1, 0}, {key, 0}, {0.1, 0}, // it started the count again
		{0.1, 0}, {0.1, 0}, {0.1, 1},
		{key, -1}, {key, 0},
		{0.4, 0}, // and one more, which catches a stray setting of the last
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ticks := make(chan time.Time)
	input := make(chan struct{})
	readings := make(chan time.Duration, 1)
	sets := make(chan bool) // unbuffered: a stray setting blocks govern, and the next send sees it
	readings <- 0           // the reading govern starts from
	go govern(ctx, ticks, input, func() time.Duration { return <-readings }, func(one bool) { sets <- one })

	at := time.Now()
	var used time.Duration
	for i, st := range steps {
		// One of the two sends, the other channel nil (never ready).
		var tick chan time.Time
		var in chan struct{}
		if st.share == key {
			in = input
		} else {
			if st.share < 0 {
				readings <- -1
			} else {
				used += time.Duration(st.share * float64(procSample))
				readings <- used
			}
			at = at.Add(procSample)
			tick = ticks
		}
		select {
		case in <- struct{}{}:
		case tick <- at:
		case one := <-sets:
			t.Fatalf("before step %d: a stray set(one=%v)", i, one)
		}
		if st.set == 0 {
			continue
		}
		select {
		case one := <-sets:
			if one != (st.set == 1) {
				t.Fatalf("step %d (%v): set(one=%v), want one=%v", i, st.share, one, st.set == 1)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("step %d (%v): no setting, want one=%v", i, st.share, st.set == 1)
		}
	}
}

// The program's filter passes every message on unchanged and tells the
// governor of keys, mouse events and pastes only, without blocking when
// one is already pending.
func TestProcFilter(t *testing.T) {
	p := &procGov{in: make(chan struct{}, 1)}
	for _, tt := range []struct {
		msg   tea.Msg
		input bool
	}{
		{tea.KeyPressMsg{Code: 'j'}, true},
		{tea.KeyReleaseMsg{Code: 'j'}, true},
		{tea.MouseClickMsg{X: 3, Y: 4}, true},
		{tea.MouseWheelMsg{}, true},
		{tea.PasteMsg{Content: "x"}, true},
		{tea.WindowSizeMsg{Width: 80, Height: 24}, false},
		{struct{ snapshot int }{7}, false},
	} {
		if got := p.filter(nil, tt.msg); got != tt.msg {
			t.Errorf("%T: filter gave %v, want the message itself", tt.msg, got)
		}
		select {
		case <-p.in:
			if !tt.input {
				t.Errorf("%T: counted as input", tt.msg)
			}
		default:
			if tt.input {
				t.Errorf("%T: not counted as input", tt.msg)
			}
		}
	}
	p.filter(nil, tea.KeyPressMsg{Code: 'a'})
	p.filter(nil, tea.KeyPressMsg{Code: 'b'}) // pending already: must not block
	if len(p.in) != 1 {
		t.Fatalf("%d inputs pending, want 1", len(p.in))
	}
}
