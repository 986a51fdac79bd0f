package fleet

import "testing"

// BenchmarkSnapshot measures Snapshot at 10,000 guests when one guest
// changed since the last call (an O(n) rebuild, no sort) and when nothing
// changed (the cached snapshot).
func BenchmarkSnapshot(b *testing.B) {
	f, _ := fakeFleet(Options{}, 10000)
	defer f.Close()
	s := f.session("g000")
	b.Run("changed", func(b *testing.B) {
		for b.Loop() {
			s.update(func(g *Guest) { g.Late++ })
			_ = f.Snapshot()
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		f.Snapshot()
		for b.Loop() {
			_ = f.Snapshot()
		}
	})
}
