package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// enter opens the detail of the guest under the cursor over the whole
// region (layerDetail), where ↑/↓ scroll it and tab or a digit changes the
// tab; esc (or enter again) goes back to the table. The detail pane under
// the table is shown from the start where there is room; i hides or shows
// it (it used to be enter, which then closed the pane its footer offered to
// enter).

// openDetail opens the detail view for the guest under the cursor.
func (m *Model) openDetail() {
	if m.cursorGuest() == nil {
		return
	}
	m.detailScroll = 0
	m.open(layer{kind: layerDetail})
}

// detailViewRows is how many content lines the detail shows: the whole
// region under its tab bar when opened, else the pane's share.
func (m *Model) detailViewRows() int {
	if m.top().kind == layerDetail {
		return max(m.layout().regionHeight-1, 1)
	}
	return m.layout().detailRows
}

// detailCloseKeys go back from the opened detail to the table: back, quit
// and the key that opened it.
func (k KeyMap) detailCloseKeys() key.Binding {
	b := k.closeKeys(k.Detail)
	return key.NewBinding(key.WithKeys(b.Keys()...), key.WithHelp("esc/enter", "back to the table"))
}

func (m *Model) detailKey(k tea.KeyPressMsg) tea.Cmd {
	km := &m.keys
	page := max(m.detailViewRows()-1, 1)
	switch {
	case key.Matches(k, km.detailCloseKeys()):
		m.closeLayer(layerDetail)
		m.detailScroll = 0
	case key.Matches(k, km.Up):
		m.scrollDetail(-1)
	case key.Matches(k, km.Down):
		m.scrollDetail(1)
	case key.Matches(k, km.PageUp), key.Matches(k, km.DetailUp):
		m.scrollDetail(-page)
	case key.Matches(k, km.PageDown), key.Matches(k, km.DetailDown):
		m.scrollDetail(page)
	case key.Matches(k, km.Top):
		m.detailScroll = 0
	case key.Matches(k, km.Bottom):
		m.scrollDetail(len(m.detailLines(m.cursorGuest())))
	case key.Matches(k, km.DetailNextTab):
		m.setTab(m.tab + 1)
	case key.Matches(k, km.DetailPrevTab):
		m.setTab(m.tab - 1)
	case len(k.Text) == 1 && k.Text >= "1" && int(k.Text[0]-'1') < len(tabNames):
		m.setTab(int(k.Text[0] - '1'))
	}
	return nil
}
