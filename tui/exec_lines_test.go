package tui

import (
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/tui/present"
)

// TestDisplayPrefix: a long line (megabytes in the pane; less here, as the
// reference measures all of it) of a guest's output is measured only
// as far as the pane shows it, and shows exactly as the whole line would.
func TestDisplayPrefix(t *testing.T) {
	for name, line := range map[string]string{
		"NULs":       present.Block(strings.Repeat("\x00", 1<<17), 8),
		"accents":    strings.Repeat("é", 1<<17),
		"wide":       strings.Repeat("界", 1<<16),
		"bidi":       present.Block(strings.Repeat("a\u202e", 1<<16), 8),
		"mixed":      strings.Repeat("x界é\\u202e", 1<<14),
		"short":      "hello",
		"at the cut": strings.Repeat("a", 4*80+16),
	} {
		for _, w := range []int{1, 2, 40, 80, 301} {
			got := displayPrefix(line, w)
			if len(got) > 4*w+16+len(present.Ellipsis) {
				t.Errorf("%s at %d cells: %d bytes kept", name, w, len(got))
			}
			if a, b := fit(got, w, false), fit(line, w, false); a != b {
				t.Errorf("%s at %d cells: shows %q, the whole line %q", name, w, a, b)
			}
		}
	}
}
