package fleet

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// A Recent keeps the last rttHistory durations, oldest first; one handed
// out earlier (a published Guest's) never changes.
func TestRecentPush(t *testing.T) {
	var r Recent
	if r.Len() != 0 || r.Durations() != nil {
		t.Fatal("the zero Recent is not empty")
	}
	var held []Recent
	for i := range 100 {
		r = r.push(time.Duration(i) * time.Millisecond)
		held = append(held, r)
	}
	for i, h := range held {
		var want []time.Duration
		for v := max(i-rttHistory+1, 0); v <= i; v++ {
			want = append(want, time.Duration(v)*time.Millisecond)
		}
		if got := h.Durations(); !slices.Equal(got, want) {
			t.Fatalf("history after push %d is %v, want %v", i, got, want)
		}
		n := 0
		for j, d := range h.All() {
			if j != n || d != want[j] || h.At(j) != d {
				t.Fatalf("after push %d: All yields %d: %v, At %v, want %v", i, j, d, h.At(j), want[j])
			}
			n++
		}
		if n != h.Len() {
			t.Fatalf("after push %d: All yields %d of %d", i, n, h.Len())
		}
	}
	if got := RecentOf(1, 2, 3).Durations(); !slices.Equal(got, []time.Duration{1, 2, 3}) {
		t.Errorf("RecentOf(1, 2, 3) = %v", got)
	}
}

// A duration comes back exact up to 2^24 ns (16.7 ms: round trips and
// the skews of a synchronised clock), within float32's rounding beyond,
// and a guest's absurd clock comes back as absurd, never wrapped into a
// small or opposite skew.
func TestRecentValues(t *testing.T) {
	for _, d := range []time.Duration{0, 1, -1, 29894, -125015, 1 << 24, -(1 << 24), 150 * time.Millisecond, time.Second} {
		if got := RecentOf(d).At(0); got != d {
			t.Errorf("%v (%d ns) comes back as %v", d, int64(d), got)
		}
	}
	for _, d := range []time.Duration{1<<24 + 1, 3*time.Hour + 12345, -40 * 24 * time.Hour, math.MaxInt64 / 3, math.MinInt64 / 7} {
		got := RecentOf(d).At(0)
		if math.Abs(float64(got-d)) > math.Abs(float64(d))/(1<<24) {
			t.Errorf("%v comes back as %v", d, got)
		}
	}
	for _, tc := range []struct{ in, want time.Duration }{
		{math.MaxInt64, math.MaxInt64}, // float32 rounds it up to 2^63
		{math.MaxInt64 - 1000, math.MaxInt64},
		{math.MinInt64, math.MinInt64},
		{math.MinInt64 + 1000, math.MinInt64},
	} {
		if got := RecentOf(tc.in).At(0); got != tc.want {
			t.Errorf("%d comes back as %d, want %d", tc.in, got, tc.want)
		}
	}
}

// A session's histories written in its page (pushBoth) are what pushing
// each value (push) makes of them, poll after poll, when polls have both
// values, one of them, or neither; and every Guest published earlier keeps
// its histories as they were (the page is written only past them).
func TestPushBothAsPush(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var hist *recentPage
	var g Guest
	var wantRTT, wantSkew Recent // the model: push alone
	type held struct {
		g         Guest
		rtt, skew []time.Duration
	}
	var published []held
	pages := map[*recentPage]bool{}
	for step := range 5000 {
		r := pollResult{rtt: time.Duration(rng.Int64N(1 << 40)), skew: time.Duration(rng.Int64N(1<<50) - 1<<49)}
		switch rng.IntN(40) {
		case 0:
			r.rttOK = true
		case 1:
			r.skewOK = true
		case 2:
		default:
			r.rttOK, r.skewOK = true, true
		}
		if step%997 == 0 { // an extreme now and then
			r.skew = math.MinInt64
		}
		r.storeItems(&g, &hist)
		if r.rttOK {
			wantRTT = wantRTT.push(r.rtt)
		}
		if r.skewOK {
			wantSkew = wantSkew.push(r.skew)
		}
		if !slices.Equal(g.RTTHistory.Durations(), wantRTT.Durations()) || !slices.Equal(g.SkewHistory.Durations(), wantSkew.Durations()) {
			t.Fatalf("step %d: histories %v %v, want %v %v", step, g.RTTHistory.Durations(), g.SkewHistory.Durations(), wantRTT.Durations(), wantSkew.Durations())
		}
		published = append(published, held{g, wantRTT.Durations(), wantSkew.Durations()})
		pages[hist] = true
	}
	for i, h := range published {
		if !slices.Equal(h.g.RTTHistory.Durations(), h.rtt) || !slices.Equal(h.g.SkewHistory.Durations(), h.skew) {
			t.Fatalf("the Guest published at step %d changed afterwards", i)
		}
	}
	// Most polls have both: about one page per sixteen of those.
	if n := len(pages); n > 5000/8 {
		t.Errorf("%d history pages for 5,000 polls", n)
	}
}
