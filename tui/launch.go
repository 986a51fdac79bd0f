package tui

import "github.com/guestdeck/guestdeck/fleet"

// prioritizer is the optional part of a Source that lets the fleet send the
// first polls of the guests on screen before all others: an operator
// opening the dashboard (or scrolling, or filtering, while the fleet is
// still launching) sees those rows ready first.
type prioritizer interface {
	Prioritize(names []string)
}

var _ prioritizer = (*fleet.Fleet)(nil)

// tellVisible tells the source which guests are on screen, when that
// changed. clampScroll calls it: the rows or the scroll position may have
// moved.
func (m *Model) tellVisible() {
	p, ok := m.src.(prioritizer)
	if !ok {
		return
	}
	t := &m.tbl
	// Before the first window size, the default size's rows.
	h := m.layout().tableRows
	var shown []*fleet.Guest
	if t.lined {
		for i := t.offset; i < min(t.offset+max(h, 1), len(t.lines)); i++ {
			if g := t.guestAt(i); g != nil {
				shown = append(shown, g)
			}
		}
	} else {
		start := min(t.offset, len(t.rows))
		shown = t.rows[start:min(start+max(h, 1), len(t.rows))]
	}
	same := len(shown) == len(t.told)
	for i := 0; same && i < len(shown); i++ {
		same = shown[i].Name == t.told[i]
	}
	if same {
		return
	}
	names := make([]string, len(shown))
	for i, g := range shown {
		names[i] = g.Name
	}
	t.told = names
	p.Prioritize(names)
}
