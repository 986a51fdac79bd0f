package tui

import (
	"slices"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// rowCache keeps the table rows of the last frame, by screen line, with
// what each was drawn from. In the steady state at 10,000 guests a frame
// follows every pull, and of the 50 rows on screen one or two have a new
// Guest: drawing every row again (escaping, cutting and styling each
// cell) was half of a frame. A row is drawn again when anything it is
// drawn from differs: its Guest (published Guests are never modified),
// the columns, whether it is under the cursor, marked or greyed, its
// action status, or the one cell that moves with the clock (FREEZE's
// countdown). The styles are the model's from New on.
type rowCache struct {
	cols  []column
	lines []cachedRow
}

type cachedRow struct {
	key rowInputs
	out string
}

// rowInputs is everything renderRow reads, but the styles and the clock;
// freeze stands for the clock.
type rowInputs struct {
	g                      *fleet.Guest
	cursor, marked, greyed bool
	status                 string
	freeze                 string // the FREEZE cell, when it is shown
}

// begin starts a frame of n rows in cols: other columns or another height
// draw every row again.
func (c *rowCache) begin(cols []column, n int) {
	if !slices.Equal(c.cols, cols) || len(c.lines) != n {
		c.cols = slices.Clone(cols)
		c.lines = make([]cachedRow, n)
	}
}

// drawRow is screen line line's row: table line i, guest g.
func (m *Model) drawRow(line, i int, g *fleet.Guest, cols []column, now time.Time, greyed, freezeShown bool) string {
	in := rowInputs{g: g, cursor: i == m.tbl.cursor, marked: m.isMarked(i, g.Name), greyed: greyed,
		status: m.rowStatusText(g.Name)}
	if freezeShown {
		in.freeze = freezeText(g, now)
	}
	c := m.rowCache
	if c == nil || line >= len(c.lines) {
		return m.renderRow(in, cols, now)
	}
	if r := &c.lines[line]; r.key == in && r.out != "" {
		return r.out
	}
	out := m.renderRow(in, cols, now)
	c.lines[line] = cachedRow{in, out}
	return out
}
