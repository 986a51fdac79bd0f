package browser

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/tui/present"
)

// handleKey routes a key to the layer that has focus: prompt, question,
// viewer or listing. esc always steps back one layer; at the top it closes.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	if k.String() == "ctrl+c" {
		return m.close()
	}
	switch {
	case m.prompt != promptNone:
		return m.promptKey(k)
	case m.confirm != nil:
		return m.confirmKey(k)
	case k.String() == "esc" && m.job != nil:
		m.cancelJob()
		return nil
	case k.String() == "esc" && m.loading != "":
		m.loadCxl()
		m.seq++ // drop the cancelled load's result
		m.setMsg(strings.TrimSuffix(m.loading, " …")+": cancelled", msgInfo)
		m.loading = ""
		return nil
	case m.view != nil:
		return m.viewKey(k)
	}
	return m.listKey(k)
}

func (m *Model) listKey(k tea.KeyPressMsg) tea.Cmd {
	km := m.keys
	switch {
	case key.Matches(k, km.Back):
		return m.close()
	case key.Matches(k, km.Path), key.Matches(k, km.Search):
		// / in a listing opens the path prompt (searching is the
		// viewer's).
		return m.openPrompt(promptPath, "open: ", withSlash(m.dir))
	case key.Matches(k, km.Upload):
		return m.beginUpload()
	}
	if m.frozen && key.Matches(k, km.Reload) {
		// Opened on a frozen guest: r looks again, for after a thaw.
		m.checkExec()
		return m.Init()
	}
	if !m.canExec {
		return nil
	}
	switch {
	case key.Matches(k, km.Up):
		m.move(-1)
	case key.Matches(k, km.Down):
		m.move(1)
	case key.Matches(k, km.PageUp):
		m.move(-max(m.listHeight()-1, 1))
	case key.Matches(k, km.PageDown):
		m.move(max(m.listHeight()-1, 1))
	case key.Matches(k, km.Home):
		m.move(-len(m.ents))
	case key.Matches(k, km.End):
		m.move(len(m.ents))
	case key.Matches(k, km.Open):
		return m.openEntry()
	case key.Matches(k, km.Parent):
		return m.up()
	case key.Matches(k, km.Reload):
		pick := ""
		if e, ok := m.current(); ok {
			pick = e.Name
		}
		return m.list(m.dir, pick, false)
	case key.Matches(k, km.Download):
		e, ok := m.current()
		switch {
		case !ok:
			return nil
		case e.IsDir():
			m.setMsg("d downloads files, not directories", msgErr)
			return nil
		}
		return m.beginDownload(downloadPlan{remote: joinPath(m.dir, e.Name), size: e.Size})
	}
	return nil
}

func (m *Model) viewKey(k tea.KeyPressMsg) tea.Cmd {
	km, v := m.keys, m.view
	switch {
	case key.Matches(k, km.Back), k.String() == "backspace":
		m.view = nil
		m.setMsg("", msgInfo)
		if !m.canExec {
			return m.openPrompt(promptPath, "open: ", v.path)
		}
	case key.Matches(k, km.Search):
		return m.openPrompt(promptSearch, "search: ", "")
	case key.Matches(k, km.Next):
		v.next(1)
		m.setMsg(v.matchNote(), msgInfo)
	case key.Matches(k, km.Prev):
		v.next(-1)
		m.setMsg(v.matchNote(), msgInfo)
	case key.Matches(k, km.Home):
		v.vp.GotoTop()
		m.scrolled()
	case key.Matches(k, km.End):
		v.vp.GotoBottom()
		m.scrolled()
	case key.Matches(k, km.Path):
		return m.openPrompt(promptPath, "open: ", v.path)
	case key.Matches(k, km.Download):
		return m.beginDownload(downloadPlan{remote: v.path, size: v.size})
	default:
		v.vp, _ = v.vp.Update(k)
		m.scrolled()
	}
	return nil
}

// scrolled follows the viewport's current match after a scroll.
func (m *Model) scrolled() {
	if v := m.view; v != nil && v.query != "" {
		v.sync()
		m.setMsg(v.matchNote(), msgInfo)
	}
}

func (m *Model) confirmKey(k tea.KeyPressMsg) tea.Cmd {
	c := m.confirm
	switch {
	case key.Matches(k, m.keys.Yes):
		m.confirm = nil
		return c.yes()
	case key.Matches(k, m.keys.No):
		m.confirm = nil
		m.setMsg("cancelled", msgInfo)
	}
	return nil
}

// move moves the listing cursor by d rows.
func (m *Model) move(d int) {
	m.cursor += d
	m.clampCursor()
}

func (m *Model) clampCursor() {
	m.cursor = max(min(m.cursor, len(m.ents)-1), 0)
	h := max(m.listHeight(), 1)
	if m.cursor < m.top {
		m.top = m.cursor
	}
	if m.cursor >= m.top+h {
		m.top = m.cursor - h + 1
	}
	m.top = max(min(m.top, len(m.ents)-h), 0)
}

func (m *Model) current() (e entry, ok bool) {
	if !m.listed || m.cursor >= len(m.ents) {
		return e, false
	}
	return m.ents[m.cursor], true
}

// openEntry opens the entry under the cursor: a directory lists, a file views.
func (m *Model) openEntry() tea.Cmd {
	e, ok := m.current()
	if !ok {
		return nil
	}
	if e.Name == ".." {
		return m.up()
	}
	p := joinPath(m.dir, e.Name)
	if e.IsDir() {
		return m.list(p, "", false)
	}
	m.setMsg("", msgInfo)
	return m.openFile(p, e.Size)
}

// up lists the parent directory with the cursor on the one we left.
func (m *Model) up() tea.Cmd {
	if isRoot(m.dir) {
		return nil
	}
	return m.list(parentPath(m.dir), basePath(m.dir), false)
}

func withSlash(dir string) string {
	if dirSuffix(dir) {
		return dir
	}
	if winPath(dir) {
		return dir + `\`
	}
	return dir + "/"
}

func (m *Model) beginDownload(d downloadPlan) tea.Cmd {
	if m.job != nil {
		m.setMsg("a transfer is running (esc cancels it)", msgErr)
		return nil
	}
	m.pendingDownload = &d
	def := ""
	if name, ok := present.LocalName(d.remote); ok {
		def = "./" + name
	}
	return m.openPrompt(promptSaveTo, "save to: ", def)
}

func (m *Model) beginUpload() tea.Cmd {
	switch {
	case m.opts.Readonly:
		m.setMsg("read-only mode: upload refused", msgErr)
		return nil
	case m.job != nil:
		m.setMsg("a transfer is running (esc cancels it)", msgErr)
		return nil
	}
	return m.openPrompt(promptUploadFrom, "upload local file: ", "")
}

// openPrompt focuses the input line for kind, prefilled with value.
func (m *Model) openPrompt(kind promptKind, label, value string) tea.Cmd {
	if !present.Clean(value) {
		// A guest path with controls or invisible characters cannot be shown
		// in the prompt as it is (the input would drop or draw them raw), and
		// must not silently become a path or a local file name: start empty.
		value = ""
	}
	m.prompt = kind
	m.input.Prompt = label
	m.input.SetValue(value)
	m.input.CursorEnd()
	m.histIdx = len(m.history[kind])
	m.histDraft = value
	return m.input.Focus()
}

func (m *Model) closePrompt() {
	m.prompt = promptNone
	m.input.Blur()
}

func (m *Model) promptKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc":
		kind := m.prompt
		m.closePrompt()
		switch kind {
		case promptSaveTo:
			m.pendingDownload = nil
		case promptUploadFrom, promptUploadTo:
			m.pendingUpload = nil
		}
		return nil
	case "enter":
		return m.submit(m.prompt, m.input.Value())
	case "up":
		m.recall(-1)
		return nil
	case "down":
		m.recall(1)
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return cmd
}

// recall steps through the prompt's history; past the newest entry comes
// back what was being typed.
func (m *Model) recall(d int) {
	h := m.history[m.prompt]
	if len(h) == 0 {
		return
	}
	if m.histIdx == len(h) {
		m.histDraft = m.input.Value()
	}
	m.histIdx = max(min(m.histIdx+d, len(h)), 0)
	if m.histIdx == len(h) {
		m.input.SetValue(m.histDraft)
	} else {
		m.input.SetValue(h[m.histIdx])
	}
	m.input.CursorEnd()
}

func (m *Model) remember(kind promptKind, v string) {
	h := m.history[kind]
	if n := len(h); n > 0 && h[n-1] == v {
		return
	}
	h = append(h, v)
	if len(h) > 50 {
		h = h[len(h)-50:]
	}
	m.history[kind] = h
}

// submit acts on an entered prompt. A bad value keeps the prompt open with
// a message saying what is wrong.
func (m *Model) submit(kind promptKind, raw string) tea.Cmd {
	v := strings.TrimSpace(raw)
	if kind == promptSearch {
		m.closePrompt()
		if v != "" {
			m.remember(kind, v)
		}
		if m.view != nil {
			m.view.search(v)
			m.setMsg(m.view.matchNote(), msgInfo)
		}
		return nil
	}
	if v == "" {
		m.setMsg("type a path (esc cancels)", msgErr)
		return nil
	}
	switch kind {
	case promptPath:
		return m.submitPath(v)
	case promptSaveTo:
		m.remember(kind, v)
		m.closePrompt()
		d := m.pendingDownload
		if d == nil {
			return nil
		}
		return m.startDownload(*d, expandHome(v), false)
	case promptUploadFrom:
		m.remember(kind, v)
		m.closePrompt()
		return statLocal(expandHome(v))
	case promptUploadTo:
		if !isAbs(v) {
			m.setMsg(fmt.Sprintf("%q is relative: type an absolute guest path", v), msgErr)
			return nil
		}
		m.remember(kind, v)
		m.closePrompt()
		u := m.pendingUpload
		if u == nil {
			return nil
		}
		plan := *u
		plan.remote = cleanPath(v)
		m.pendingUpload = nil
		// Ask the guest whether the file is there first: the question
		// says when the upload would replace it, as a download's does.
		return m.probeUpload(plan) // ops.go
	}
	return nil
}

func (m *Model) submitPath(v string) tea.Cmd {
	if !isAbs(v) {
		m.setMsg(fmt.Sprintf("%q is relative: type an absolute path such as /etc/hostname", v), msgErr)
		return nil
	}
	m.remember(promptPath, v)
	m.closePrompt()
	m.view = nil
	m.setMsg("", msgInfo)
	p := cleanPath(v)
	switch {
	case !m.canExec:
		return m.openFile(p, -1)
	case isRoot(p) || dirSuffix(v):
		return m.list(p, "", false)
	}
	// One listing of the parent says whether p is a file or a directory, and
	// gives its size.
	return m.list(parentPath(p), basePath(p), true)
}

// expandHome expands a leading ~/ in a local path.
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}
