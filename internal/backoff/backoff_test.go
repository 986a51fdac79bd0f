package backoff

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
		want     []time.Duration // before jitter
	}{
		{"doubles to the cap", time.Second, 5 * time.Second, []time.Duration{1, 2, 4, 5, 5}},
		{"cap below min", 2 * time.Second, time.Second, []time.Duration{1, 1}},
		{"exact powers", time.Second, 8 * time.Second, []time.Duration{1, 2, 4, 8, 8}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Min: tc.min, Max: tc.max, Rand: rand.New(rand.NewPCG(1, 2))}
			for round := range 2 {
				for i, w := range tc.want {
					w *= time.Second
					if got := b.Next(); got < w*8/10 || got > w*12/10 {
						t.Errorf("round %d delay %d = %v, want %v ±20%%", round, i, got, w)
					}
				}
				b.Reset()
			}
		})
	}
}

// Jitter spreads: delays from one rng are not all the same.
func TestJitterSpreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[time.Duration]bool{}
	for range 20 {
		d := Jitter(time.Second, rng)
		if d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("%v outside ±20%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 15 {
		t.Errorf("only %d distinct delays of 20", len(seen))
	}
}
