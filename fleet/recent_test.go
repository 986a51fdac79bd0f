package fleet

import (
	"slices"
	"testing"
	"time"
)

// pushRecent keeps the last rttHistory values, oldest first, in arrays of
// 1.5 times that at most; a history handed out earlier (a published
// Guest's) never changes.
func TestPushRecent(t *testing.T) {
	var h []time.Duration
	var held [][]time.Duration
	for i := range 100 {
		h = pushRecent(h, time.Duration(i))
		held = append(held, h)
		if cap(h) > rttHistory+rttHistory/2 {
			t.Fatalf("push %d: array of %d", i, cap(h))
		}
	}
	for i, g := range held {
		var want []time.Duration
		for v := max(i-rttHistory+1, 0); v <= i; v++ {
			want = append(want, time.Duration(v))
		}
		if !slices.Equal(g, want) {
			t.Fatalf("history after push %d is %v, want %v", i, g, want)
		}
	}
}
