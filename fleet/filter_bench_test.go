package fleet

import (
	"fmt"
	"testing"
)

// One pass of the dashboard's filter over 10,000 guests: compiled once (as
// the table does) against compiling per guest (Match), for a regexp and
// fuzzy, inverse and plain words.
func BenchmarkFilter10000(b *testing.B) {
	guests := make([]*Guest, 10000)
	for i := range guests {
		guests[i] = &Guest{Target: Target{Name: fmt.Sprintf("web-%05d", i), Address: "unix:/run/x.sock", Tags: []string{"web"}}, State: Ready}
	}
	for _, filter := range []string{`re:^web-0012\d$`, `~w12`, `!state:ready web`, `web-000`} {
		b.Run("compiled/"+filter, func(b *testing.B) {
			for b.Loop() {
				f, err := CompileFilter(filter)
				if err != nil {
					b.Fatal(err)
				}
				for _, g := range guests {
					f.Match(g)
				}
			}
		})
		b.Run("per-guest/"+filter, func(b *testing.B) {
			for b.Loop() {
				for _, g := range guests {
					Match(g, filter)
				}
			}
		})
	}
}
