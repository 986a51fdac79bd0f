package tui

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

// TestProgram runs the model in a real Bubble Tea program: fleet changes
// arrive only through the Cmd waiting on Source.Changed, and action results
// only through the action's channel-fed Cmd.
func TestProgram(t *testing.T) {
	m, src := newTestModel(10, 120, 30, Options{})
	seen := make(chan string, 64)
	filter := func(_ tea.Model, msg tea.Msg) tea.Msg {
		switch msg.(type) {
		case changedMsg:
			seen <- "changed"
		case actionDoneMsg:
			seen <- "done"
		}
		return msg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(strings.NewReader("")), tea.WithOutput(io.Discard),
		tea.WithWindowSize(120, 30), tea.WithoutSignals(), tea.WithFilter(filter), tea.WithEnvironment([]string{"TERM=dumb"}))
	type result struct {
		m   tea.Model
		err error
	}
	done := make(chan result, 1)
	go func() {
		fm, err := p.Run()
		done <- result{fm, err}
	}()
	wait := func(what string) {
		t.Helper()
		for {
			select {
			case s := <-seen:
				if s == what {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s message", what)
			}
		}
	}
	// The initial Changed signal from newFakeSource, then a real update.
	wait("changed")
	src.set(testGuests(40))
	wait("changed")
	p.Send(keyMsg(t, "ctrl+a"))
	p.Send(keyMsg(t, "p"))
	wait("done")
	p.Send(keyMsg(t, "q"))
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	fm := r.m.(Model)
	eq(t, "rows after update", len(fm.tbl.rows), 40)
	if len(src.runs) != 1 || len(src.runs[0].names) != 40 {
		t.Fatalf("runs = %+v", src.runs)
	}
	eq(t, "event", len(fm.events), 1)
}

// TestProgramPacesRefreshes streams fleet changes far faster than anyone can
// read them: the dashboard pulls a snapshot at most once per refreshGap, so
// at 10,000 guests it does not spend a core re-sorting frames, and the last
// change is still shown.
func TestProgramPacesRefreshes(t *testing.T) {
	m, src := newTestModel(10, 120, 30, Options{})
	var pulls atomic.Int64
	var lastSet atomic.Bool
	pulledAfter := make(chan struct{}, 1) // a pull that began after the last change
	filter := func(_ tea.Model, msg tea.Msg) tea.Msg {
		if _, ok := msg.(changedMsg); ok {
			pulls.Add(1)
			if lastSet.Load() {
				select {
				case pulledAfter <- struct{}{}:
				default:
				}
			}
		}
		return msg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(strings.NewReader("")), tea.WithOutput(io.Discard),
		tea.WithWindowSize(120, 30), tea.WithoutSignals(), tea.WithFilter(filter), tea.WithEnvironment([]string{"TERM=dumb"}))
	done := make(chan tea.Model, 1)
	go func() {
		fm, _ := p.Run()
		done <- fm
	}()
	const window = 500 * time.Millisecond
	start := time.Now()
	n := 0
	for time.Since(start) < window {
		n++
		src.set(testGuests(10 + n%20))
		time.Sleep(time.Millisecond) // the pace of the changes, not a wait
	}
	src.set(testGuests(33))
	lastSet.Store(true)
	// The model pulls the snapshot after the filter sees the message: that
	// pull has the last change.
	select {
	case <-pulledAfter:
	case <-ctx.Done():
		t.Fatal("no snapshot pulled after the last change")
	}
	p.Send(keyMsg(t, "q"))
	fm := (<-done).(Model)
	// One pull per gap, plus the initial signal and the final one; allow
	// slack for a slow machine, but far fewer than the changes sent.
	if got, most := pulls.Load(), int64(window/refreshGap)+3; got > most {
		t.Errorf("%d snapshot pulls for %d changes in %v; want at most %d", got, n, window, most)
	}
	eq(t, "last change shown", len(fm.tbl.rows), 33)
}
