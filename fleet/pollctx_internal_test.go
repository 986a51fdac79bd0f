package fleet

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// A pollCtx behaves as context.WithTimeoutCause(parent, limit,
// errPollTimeout) would, whether or not its context is ever built: its
// deadline, its error at and after the deadline, its parent's
// cancellation, values, and children made under it.
func TestPollCtxIsATimeoutContext(t *testing.T) {
	type key struct{}
	const limit = 10 * time.Second
	for _, build := range []bool{false, true} {
		name := map[bool]string{false: "unbuilt", true: "built"}[build]
		t.Run(name+"/deadline", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Under a loop's context (a cancelCtx: context.Cause finds
				// its cause through Value).
				loop, stop := context.WithCancel(context.Background())
				defer stop()
				parent := context.WithValue(loop, key{}, "v")
				pc := newPollCtx(parent, limit)
				defer pc.release()
				if build {
					pc.Done()
				}
				if dl, ok := pc.Deadline(); !ok || !dl.Equal(time.Now().Add(limit)) {
					t.Errorf("Deadline = %v, %v; want %v from now", dl, ok, limit)
				}
				if pc.Value(key{}) != "v" {
					t.Errorf("Value = %v, want the parent's", pc.Value(key{}))
				}
				if pc.Err() != nil || pc.expired() {
					t.Fatalf("before the deadline: Err %v, expired %v", pc.Err(), pc.expired())
				}
				if ctx, d := pc.within(time.Hour); d != limit || (ctx == parent) == build {
					t.Errorf("within(1h) = %v, %v: want the limit, under the %s context", ctx, d, name)
				}
				time.Sleep(limit)
				synctest.Wait()
				if !errors.Is(pc.Err(), context.DeadlineExceeded) || !pc.expired() {
					t.Errorf("at the deadline: Err %v, expired %v; want DeadlineExceeded", pc.Err(), pc.expired())
				}
				if !errors.Is(context.Cause(pc), errPollTimeout) {
					t.Errorf("%s, Cause = %v, want errPollTimeout", name, context.Cause(pc))
				}
				if _, d := pc.within(time.Hour); d != 0 {
					t.Errorf("within after the deadline = %v, want 0", d)
				}
			})
		})
		t.Run(name+"/parent-cancelled", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancel := context.WithCancel(context.Background())
				pc := newPollCtx(parent, limit)
				defer pc.release()
				if build {
					pc.Done()
				}
				// A child made under it ends with it (context.WithTimeout
				// builds it, and registers with the built context).
				child, cancelChild := context.WithTimeout(pc, time.Hour)
				defer cancelChild()
				cancel()
				synctest.Wait()
				if !errors.Is(pc.Err(), context.Canceled) {
					t.Errorf("Err = %v, want Canceled", pc.Err())
				}
				select {
				case <-child.Done():
				default:
					t.Error("a child under the poll did not end with its parent")
				}
				if pc.expired() {
					t.Error("cancelled before its deadline, yet expired")
				}
			})
		})
	}
	t.Run("release", func(t *testing.T) {
		pc := newPollCtx(context.Background(), time.Hour)
		done := pc.Done()
		pc.release()
		select {
		case <-done:
		default:
			t.Error("release left the built context running (its timer and its place among the parent's children)")
		}
	})
	t.Run("earlier-parent-deadline", func(t *testing.T) {
		parent, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pc := newPollCtx(parent, time.Hour)
		pdl, _ := parent.Deadline()
		if dl, _ := pc.Deadline(); !dl.Equal(pdl) {
			t.Errorf("Deadline = %v, want the parent's earlier %v", dl, pdl)
		}
	})
}
