package tui

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/themes"
)

// prioritySource is a fakeSource that records what the dashboard says is
// on screen.
type prioritySource struct {
	*fakeSource
	mu   sync.Mutex
	told [][]string
}

func (p *prioritySource) Prioritize(names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.told = append(p.told, slices.Clone(names))
}

func (p *prioritySource) last() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.told) == 0 {
		return nil
	}
	return p.told[len(p.told)-1]
}

// The dashboard tells the fleet which guests are on screen: at start, after
// a resize, when scrolling and when filtering; and only when that changed.
func TestTellsVisibleRows(t *testing.T) {
	src := &prioritySource{fakeSource: newFakeSource(testGuests(200))}
	m := New(src, Options{Now: func() time.Time { return testNow }, Styles: themes.Mono()})
	if got, want := len(src.last()), m.layout().tableRows; got != want || want == 0 {
		t.Fatalf("before a size: told %d rows, want %d", got, want)
	}
	m.resize(120, 30)
	rows := func(m Model) []string {
		var names []string
		l := m.layout()
		for i := m.tbl.offset; i < min(m.tbl.offset+l.tableRows, len(m.tbl.rows)); i++ {
			names = append(names, m.tbl.rows[i].Name)
		}
		return names
	}
	tests := []struct {
		name string
		do   func(m Model) Model
	}{
		{"resize", func(m Model) Model { return m }},
		{"cursor to the end", func(m Model) Model { return press(t, m, "G") }},
		{"page back up", func(m Model) Model { return press(t, m, "g") }},
		{"filter", func(m Model) Model { return typeText(t, press(t, m, "/"), "web") }},
	}
	for _, tc := range tests {
		m = tc.do(m)
		want := rows(m)
		if len(want) == 0 {
			t.Fatalf("%s: no rows on screen", tc.name)
		}
		if got := src.last(); !slices.Equal(got, want) {
			t.Errorf("%s: told %v, want the rows on screen %v", tc.name, got, want)
		}
	}
	m = press(t, m, "esc") // clears the filter
	if got := rows(m); !slices.Equal(src.last(), got) {
		t.Errorf("filter cleared: told %v, want %v", src.last(), got)
	}
	before := len(src.told)
	m.refresh()
	m = press(t, m, "k") // at the top already
	if len(src.told) != before {
		t.Errorf("told again with nothing moved: %v", src.told[before:])
	}
}
