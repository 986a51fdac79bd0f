package wait

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTB records a failure instead of ending the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f)
}

func TestFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The condition turns true after 55 ms: For sees it at its next look.
		t0 := time.Now()
		took := For(t, time.Second, func() (bool, string) { return time.Since(t0) >= 55*time.Millisecond, "" })
		if took != 60*time.Millisecond {
			t.Errorf("took %v, want 60ms (the first look after 55ms)", took)
		}

		// Never true: fails at the bound with the last state in words.
		ft := &fakeTB{TB: t}
		n := 0
		func() {
			defer func() {
				if r := recover(); r != nil && r != ft {
					panic(r)
				}
			}()
			For(ft, 100*time.Millisecond, func() (bool, string) { n++; return false, fmt.Sprintf("look %d", n) })
		}()
		if !strings.Contains(ft.failed, "after 100ms") || !strings.Contains(ft.failed, fmt.Sprintf("look %d", n)) {
			t.Errorf("failure %q, want the bound and the last state (look %d)", ft.failed, n)
		}
	})
}
