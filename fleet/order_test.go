package fleet

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestOrderStaysSorted: however guests are added (one at a time, in batches,
// replaced with a new address, added twice in one call) and removed, the
// snapshot lists exactly the live guests, sorted by name, once each.
func TestOrderStaysSorted(t *testing.T) {
	f := New(Options{})
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{} // name -> address
	for step := range 400 {
		switch op := rng.IntN(4); op {
		case 0, 1: // add a batch, possibly with repeats and replacements
			var ts []Target
			for range rng.IntN(5) + 1 {
				name := fmt.Sprintf("g%03d", rng.IntN(150))
				addr := fmt.Sprintf("unix:/tmp/%s-%d.sock", name, step)
				ts = append(ts, Target{Name: name, Address: addr})
				want[name] = addr
			}
			f.Add(ts...)
		case 2: // one at a time
			name := fmt.Sprintf("g%03d", rng.IntN(150))
			addr := "unix:/tmp/" + name + ".sock"
			f.Add(Target{Name: name, Address: addr})
			want[name] = addr
		case 3:
			var names []string
			for range rng.IntN(4) + 1 {
				n := fmt.Sprintf("g%03d", rng.IntN(150))
				names = append(names, n)
				delete(want, n)
			}
			f.Remove(names...)
		}
		gs := f.Snapshot().Guests
		var got []string
		for _, g := range gs {
			got = append(got, g.Name)
			if g.Address != want[g.Name] {
				t.Fatalf("step %d: %s has address %q, want %q", step, g.Name, g.Address, want[g.Name])
			}
		}
		var names []string
		for n := range want {
			names = append(names, n)
		}
		slices.Sort(names)
		if !slices.Equal(got, names) {
			t.Fatalf("step %d: guests %v\nwant %v", step, got, names)
		}
	}
}

// Adding 10,000 guests one call at a time, as libvirt discovery events do.
func BenchmarkAddOneByOne10000(b *testing.B) {
	ts := make([]Target, 10000)
	for i := range ts {
		ts[i] = Target{Name: fmt.Sprintf("g%05d", (i*7919)%10000), Address: "unix:/x"}
	}
	for b.Loop() {
		f := New(Options{})
		for _, t := range ts {
			f.Add(t)
		}
		f.Close()
	}
}
