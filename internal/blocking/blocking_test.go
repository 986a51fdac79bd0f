package blocking

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Answers in time: its result.
		v, err := Call(t.Context(), func() (int, error) { time.Sleep(time.Second); return 7, nil })
		if v != 7 || err != nil {
			t.Fatalf("in time: %v %v", v, err)
		}
		boom := errors.New("boom")
		if _, err := Call(t.Context(), func() (int, error) { return 0, boom }); err != boom {
			t.Fatalf("its error: %v", err)
		}

		// Too slow: the context's error at the deadline, and the late
		// success is undone.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		undone := make(chan int, 1)
		t0 := time.Now()
		v, err = CallUndo(ctx, func() (int, error) { time.Sleep(time.Minute); return 9, nil }, func(v int) { undone <- v })
		if !errors.Is(err, context.DeadlineExceeded) || v != 0 || time.Since(t0) != time.Second {
			t.Fatalf("abandoned: %v %v after %v", v, err, time.Since(t0))
		}
		if got := <-undone; got != 9 {
			t.Fatalf("undo got %d", got)
		}

		// A late failure has nothing to undo.
		ctx2, cancel2 := context.WithTimeout(t.Context(), time.Second)
		defer cancel2()
		_, _ = CallUndo(ctx2, func() (int, error) { time.Sleep(time.Minute); return 0, boom }, func(int) { t.Error("undo after a failure") })
		time.Sleep(2 * time.Minute)
		synctest.Wait()
	})
}
