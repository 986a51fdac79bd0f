package browser

import (
	"fmt"
	"io/fs"
	"strings"
	"time"

	"charm.land/lipgloss/v2"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/tui/present"
)

type entry = agentclient.DirEntry

// Minimum usable area; below it the browser says so instead.
const (
	minWidth  = 30
	minHeight = 6
)

// bodyHeight is the rows between the title and the two bottom lines.
func (m *Model) bodyHeight() int { return max(m.height-3, 1) }

// listHeight is the listing rows below the column header.
func (m *Model) listHeight() int { return max(m.height-4, 1) }

// View renders the browser at its size.
func (m *Model) View() string {
	if m.width < minWidth || m.height < minHeight {
		return fit("window too small for the file browser", m.width)
	}
	lines := make([]string, 0, m.height)
	lines = append(lines, m.titleLine())
	switch {
	case m.view != nil:
		lines = append(lines, m.view.vp.View())
	case m.canExec && m.listed:
		lines = append(lines, m.listView()...)
	default:
		lines = append(lines, m.emptyBody()...)
	}
	body := strings.Join(lines, "\n")
	// Pad or cut the body so the two bottom lines stay at the bottom.
	bl := strings.Split(body, "\n")
	for len(bl) < m.height-2 {
		bl = append(bl, "")
	}
	bl = bl[:m.height-2]
	bl = append(bl, m.messageLine(), m.bottomLine())
	return strings.Join(bl, "\n")
}

func (m *Model) titleLine() string {
	where := m.dir
	if m.view != nil {
		where = m.view.path
	}
	t := "Files · " + present.Text(m.guest, m.width) + " · " + present.Text(where, m.width)
	if m.opts.Readonly {
		t += " · read-only"
	}
	return m.st.Title.Render(fit(t, m.width))
}

// columns returns the name column's width and whether the modified column fits.
func (m *Model) columns() (name int, modified bool) {
	name = m.width - 2 - 1 - 9 - 1 - 4
	if name-17 >= 12 {
		return name - 17, true
	}
	return max(name, 1), false
}

func (m *Model) listView() []string {
	nw, withMod := m.columns()
	hdr := fmt.Sprintf("  %-*s %9s %-4s", nw, "NAME", "SIZE", "TYPE")
	if withMod {
		hdr += fmt.Sprintf(" %-16s", "MODIFIED")
	}
	out := []string{m.st.Header.Render(fit(hdr, m.width))}
	if len(m.ents) == 0 {
		return append(out, m.st.Dim.Render("  (empty directory)"))
	}
	end := min(m.top+m.listHeight(), len(m.ents))
	for i := m.top; i < end; i++ {
		e := m.ents[i]
		name := present.Text(e.Name, nw) // the guest names its files
		if e.IsDir() && e.Name != ".." {
			name = present.Fit(name+dirMark(m.dir), nw)
		}
		size := formatSize(e.Size)
		if e.IsDir() {
			size = ""
		}
		marker := "  "
		if i == m.cursor {
			marker = "> "
		}
		row := marker + fitPad(name, nw) + fmt.Sprintf(" %9s %-4s", size, typeName(e.Mode))
		if withMod && !e.ModTime.IsZero() { // a Windows listing's ".." has no time
			row += " " + e.ModTime.In(m.opts.Location).Format("2006-01-02 15:04")
		}
		row = fitPad(row, m.width)
		st := m.st.File
		if e.IsDir() {
			st = m.st.Dir
		}
		if i == m.cursor {
			st = m.st.Selected.Inherit(st)
		}
		out = append(out, st.Render(row))
	}
	return out
}

func typeName(mode fs.FileMode) string {
	switch {
	case mode.IsDir():
		return "dir"
	case mode&fs.ModeSymlink != 0:
		return "link"
	case mode&fs.ModeNamedPipe != 0:
		return "pipe"
	case mode&fs.ModeSocket != 0:
		return "sock"
	case mode&fs.ModeDevice != 0:
		return "dev"
	}
	return "file"
}

// emptyBody is shown without a listing: why there is none, and recent paths.
func (m *Model) emptyBody() []string {
	var out []string
	if !m.canExec {
		out = append(out, "",
			m.st.Dim.Render(fit("  Directory listings need guest-exec: "+present.Text(m.noExec, m.width)+".", m.width)),
			m.st.Dim.Render(fit("  Open a file by its absolute path (o), e.g. /etc/os-release.", m.width)))
		if h := m.history[promptPath]; len(h) > 0 {
			out = append(out, "", m.st.Header.Render("  Recent (↑/↓ in the prompt)"))
			for i := len(h) - 1; i >= 0 && len(out) < m.bodyHeight(); i-- {
				out = append(out, fit("  "+present.Text(h[i], m.width), m.width))
			}
		}
	}
	return out
}

// messageLine: questions, loads and messages quote guest paths and the
// agent's words, so all of it goes through present.Text.
func (m *Model) messageLine() string {
	switch {
	case m.job != nil:
		return m.progressLine()
	case m.confirm != nil:
		return m.st.Header.Render(present.Text(m.confirm.question, m.width))
	case m.loading != "":
		return m.st.Dim.Render(present.Text(m.loading+" (esc cancels)", m.width))
	case m.msg != "":
		st := m.st.Dim
		switch m.msgKind {
		case msgErr:
			st = m.st.Error
		case msgOK:
			st = m.st.OK
		}
		return st.Render(present.Text(m.msg, m.width))
	case m.view == nil && m.listed && m.canExec:
		n := 0 // what the directory holds: ".." is the way out, not an entry
		for _, e := range m.ents {
			if e.Name != ".." {
				n++
			}
		}
		return m.st.Dim.Render(fit(present.Plural(n, "entry"), m.width))
	}
	return ""
}

// progressLine: what (cut to fit), a bar when the total is known, bytes
// and rate.
func (m *Model) progressLine() string {
	j := m.job
	el := m.opts.Now().Sub(j.started)
	nums := formatSize(j.doneBytes)
	if j.total > 0 {
		nums += " / " + formatSize(j.total)
	}
	if el >= 100*time.Millisecond && j.doneBytes > 0 {
		nums += "  " + formatSize(int64(float64(j.doneBytes)/el.Seconds())) + "/s"
	}
	tail := "  " + nums
	if j.total > 0 {
		bar := "  " + m.bar.ViewAs(min(float64(j.doneBytes)/float64(j.total), 1))
		if m.width-lipgloss.Width(bar+tail) >= 20 {
			tail = bar + tail
		}
	}
	room := m.width - lipgloss.Width(tail)
	if room < 10 {
		return fit(nums, m.width)
	}
	return present.Text(j.title, room) + tail
}

func (m *Model) bottomLine() string {
	if m.prompt != promptNone {
		return m.input.View()
	}
	var h string
	switch {
	case m.confirm != nil:
		h = "y yes · n no"
	case m.job != nil && m.job.cancelled:
		h = "cancelling …"
	case m.job != nil && m.job.kind == jobUpload:
		h = "upload running · esc cancels it"
	case m.job != nil:
		h = "download running · esc cancels it"
	case m.view != nil:
		h = "↑↓←→ pgup pgdn scroll · / search · n/N match · d download · o path · esc back"
	case !m.canExec:
		h = "o open by path · " + m.uploadHint() + "q close"
	default:
		h = "enter open · - up · o path · r reload · d download · " + m.uploadHint() + "q close"
	}
	return m.st.Dim.Render(fit(h, m.width))
}

func (m *Model) uploadHint() string {
	if m.opts.Readonly {
		return ""
	}
	return "u upload · "
}

// fit cuts composed (escaped, possibly styled) text to w cells with an
// ellipsis: present.Fit.
func fit(s string, w int) string { return present.Fit(s, w) }

// fitPad cuts or pads composed text to exactly w cells: present.Pad.
func fitPad(s string, w int) string { return present.Pad(s, w, false) }
