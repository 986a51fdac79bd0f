package fleet

import (
	"bytes"
	"testing"
)

// A released prefetch keeps nothing of its replies but their room, and no
// more of it than maxPooledRaw a reply: the next poll's, another guest's,
// can only read what its own batch wrote. (reset, not release: a prefetch
// put back in the pool and still used here would be the next poll's.)
func TestPrefetchReleaseEmpties(t *testing.T) {
	p := new(prefetch)
	for _, name := range []string{"guest-info", "guest-get-fsinfo", "guest-get-users"} {
		p.add(name)
	}
	p.raws[0].Ret = append(p.raws[0].Ret, `{"version": "hostile"}`...)
	p.raws[1].Ret = append(p.raws[1].Ret, bytes.Repeat([]byte("x"), 2*maxPooledRaw)...)
	p.raws[2].Over = true
	p.taken[0] = true
	p.reset()
	p.add("guest-info") // as the next poll would, on the same arrays
	for i := range p.raws {
		r := p.raws[i]
		if len(r.Ret) != 0 || cap(r.Ret) > maxPooledRaw || r.Over || p.taken[i] {
			t.Errorf("reply %d after release: %d bytes kept, room %d, over %v, taken %v", i, len(r.Ret), cap(r.Ret), r.Over, p.taken[i])
		}
	}
	if p.n != 1 || p.calls[1].Name != "" || p.st != nil {
		t.Errorf("after release: %d calls, the second %q", p.n, p.calls[1].Name)
	}
	if c := p.calls[0]; c.Name != "guest-info" || c.Out != &p.raws[0] {
		t.Errorf("the call added after release is %q into %p, want guest-info into its reply", c.Name, c.Out)
	}
}
