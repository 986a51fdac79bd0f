package tui

import (
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
)

func benchModel(b *testing.B, n int) Model {
	m, _ := newTestModel(n, 160, 50, Options{})
	return m
}

// View costs the same at 50 and 10,000 guests: only visible rows render.
// Every row is drawn (no row cache): a frame after the rows all changed.
func BenchmarkView(b *testing.B) {
	for _, n := range []struct {
		name string
		n    int
	}{{"50", 50}, {"10000", 10000}} {
		b.Run(n.name, func(b *testing.B) {
			m := benchModel(b, n.n)
			m.rowCache = nil
			m.moveTo(n.n / 2)
			b.ResetTimer()
			for b.Loop() {
				_ = m.View()
			}
		})
	}
}

// A cursor move (Update) and the frame after it, at 10,000 guests.
func BenchmarkCursorMove10000(b *testing.B) {
	m := benchModel(b, 10000)
	down := tea.KeyPressMsg{Code: tea.KeyDown}
	up := tea.KeyPressMsg{Code: tea.KeyUp}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := down
		if i%2000 >= 1000 {
			k = up
		}
		i++
		next, _ := m.Update(k)
		m = next.(Model)
		_ = m.View()
	}
}

// A filter keystroke re-filters and re-sorts 10,000 guests, then renders.
func BenchmarkFilterKeystroke10000(b *testing.B) {
	m := benchModel(b, 10000)
	next, _ := m.Update(tea.KeyPressMsg{Code: '/', Text: "/"})
	m = next.(Model)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		var k tea.KeyPressMsg
		if i%2 == 0 {
			k = tea.KeyPressMsg{Code: '7', Text: "7"}
		} else {
			k = tea.KeyPressMsg{Code: tea.KeyBackspace}
		}
		i++
		next, _ := m.Update(k)
		m = next.(Model)
		_ = m.View()
	}
}

// A new snapshot (poll results) at 10,000 guests sorted by state, the
// full re-index (the same Guests would take the fast path, swap.go).
func BenchmarkSnapshot10000(b *testing.B) {
	m, src := newTestModel(10000, 160, 50, Options{})
	m.tbl.fullOnly = true
	m.tbl.sortCol = colState
	m.reindex()
	gs := src.snap.Guests
	b.ResetTimer()
	for b.Loop() {
		src.set(gs)
		next, _ := m.Update(changedMsg{})
		m = next.(Model)
		_ = m.View()
	}
}

// The event log after an action on 10,000 guests formats only visible lines.
func BenchmarkEventLog10000(b *testing.B) {
	m := benchModel(b, 10000)
	next, _ := m.Update(tea.KeyPressMsg{Code: 'a', Mod: tea.ModCtrl})
	m = next.(Model)
	m, _ = send(b, m, tea.KeyPressMsg{Code: 'p', Text: "p"})
	m.open(layer{kind: layerEvents})
	m.eventScroll = 5000
	b.ResetTimer()
	for b.Loop() {
		_ = m.View()
	}
}

// The worst case for a keystroke while snapshots stream in at 10,000 guests:
// a new snapshot (sorted by state) lands just before every key, so the key
// waits behind a full re-index, then its own Update and frame. One frame at
// 60 Hz is 16.7 ms; this must stay well under it. Snapshots arrive at most
// every refreshGap, so most keys see far less than this.
func BenchmarkKeystrokeWhileStreaming10000(b *testing.B) {
	m, src := newTestModel(10000, 160, 50, Options{})
	m.tbl.fullOnly = true // the worst case: not the fast path (swap.go)
	m.tbl.sortCol = colState
	m.reindex()
	gs := src.snap.Guests
	down := tea.KeyPressMsg{Code: tea.KeyDown}
	b.ResetTimer()
	for b.Loop() {
		src.set(gs)
		next, _ := m.Update(changedMsg{})
		next, _ = next.(Model).Update(down)
		m = next.(Model)
		_ = m.View()
	}
}

// The event log's entry view of a read whose guest answered a megabyte of
// escape bytes as its file and an error of 1.4 MB (what a read's reply
// limit lets through): a frame and a scroll after the entry opened.
func BenchmarkEntryViewHostileRead(b *testing.B) {
	m, _ := newTestModel(3, 200, 50, Options{})
	m.addEvent(event{at: testNow, action: fleet.Action{Kind: fleet.ActRead, Path: "/x"}, results: []fleet.Result{{
		Guest: "vm-00000", Err: strings.Repeat("\x1b-", 700<<10), Data: []byte(strings.Repeat("\x1b", 1<<20))}}})
	m.entry = &entryView{ev: m.events[0], res: 0}
	m.open(layer{kind: layerEntry})
	down := tea.KeyPressMsg{Code: tea.KeyDown}
	b.ResetTimer()
	for b.Loop() {
		next, _ := m.Update(down)
		m = next.(Model)
		_ = m.View()
	}
}

// A new snapshot at 10,000 guests grouped by OS (every guest its own OS
// name, the worst case for the groups: 10,000 headers) or by host (three
// groups of 3,333), sorted by state, then a frame with all of one group
// marked (a header counts its marks as it is drawn).
func BenchmarkSnapshotGrouped10000(b *testing.B) {
	for _, tt := range []struct {
		name   string
		by     groupBy
		eachOS bool
	}{{"host", groupHost, false}, {"os-distinct", groupOS, true}} {
		b.Run(tt.name, func(b *testing.B) {
			m, src := newTestModel(10000, 160, 50, Options{})
			m.tbl.fullOnly = true // the full re-index, not the fast path (swap.go)
			gs := src.snap.Guests
			if tt.eachOS {
				for i, g := range gs {
					os := *g.OS
					os.PrettyName = fmt.Sprintf("Debian %d", i)
					g.OS = &os
				}
			}
			m.tbl.sortCol = colState
			m.setGroup(tt.by)
			for _, g := range gs {
				if g.Host == "hv1" {
					m.marks[g.Name] = true
				}
			}
			b.ResetTimer()
			for b.Loop() {
				src.set(gs)
				next, _ := m.Update(changedMsg{})
				m = next.(Model)
				_ = m.View()
			}
		})
	}
}

// A frame of the table grouped by host at 10,000 guests, a third of them
// marked: each header on screen counts its group's marks.
func BenchmarkViewGrouped10000(b *testing.B) {
	m := benchModel(b, 10000)
	m.setGroup(groupHost)
	for _, g := range m.snap.Guests {
		if g.Host == "hv1" {
			m.marks[g.Name] = true
		}
	}
	m.moveTo(m.tbl.headerLine("hv2")) // the hv1 header is off screen, hv2's on it
	b.ResetTimer()
	for b.Loop() {
		_ = m.View()
	}
}
