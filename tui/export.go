package tui

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/localfile"
	"github.com/guestdeck/guestdeck/tui/present"
)

// :export csv PATH and :export json PATH write the table's rows as shown:
// after the filter, in the view's order. The path is the operator's, and
// follows the one rule for local files (internal/localfile, as get and the
// browser's download): a socket or irregular file is refused, a directory
// is an error, anything that exists (a file, a device, a FIFO) is written
// only after a yes; a new file is 0644 less the umask, and a file that
// appears meanwhile is not replaced.
//
// CSV cells are the table's texts escaped as on screen (present.Text: a
// guest's control characters cannot reach whoever cats the file), and a
// cell that starts with = + - @ is prefixed with ' so that a spreadsheet
// shows it instead of evaluating it (a guest named =cmd|' /C calc'!A0;
// the table's "-43µs" and "-" stay as they are). JSON
// is `status --json`'s shape (Options.ExportJSON), exact and terminal-safe.

// exportCells caps one CSV cell: a guest may send megabytes of error text.
const exportCells = 4096

// exportTimeout bounds a write: a FIFO waits for a reader that may never come.
const exportTimeout = 30 * time.Second

const exportUsage = "export: usage: export csv PATH or export json PATH"

// askDialog is a yes/no question whose yes runs a command.
type askDialog struct {
	question string
	yes      func() tea.Cmd
	no       string // the status line after no
}

func askHelp() []key.Binding {
	yes, no := confirmKeys(false)
	return []key.Binding{yes, no, bind("quit", "ctrl+c")}
}

func (m *Model) askKey(a *askDialog, k tea.KeyPressMsg) tea.Cmd {
	yes, no := confirmKeys(false)
	switch {
	case key.Matches(k, yes):
		m.closeLayer(layerAsk)
		return a.yes()
	case key.Matches(k, no):
		m.closeLayer(layerAsk)
		m.setStatus(a.no, false)
	}
	return nil
}

func (m *Model) renderAsk(a *askDialog) string {
	yes, no := confirmKeys(false)
	return m.dialogBox([]string{m.st.Warn.Bold(true).Render(present.Text(a.question, m.width)), "",
		yes.Help().Key + " confirms · " + no.Help().Key + " cancels"})
}

// exportDoneMsg is the end of an export's write.
type exportDoneMsg struct {
	format, path string
	rows         int
	bytes        int
	err          error
}

func (msg exportDoneMsg) apply(m *Model) tea.Cmd {
	if msg.err != nil {
		m.setStatus(fmt.Sprintf("export %s: %v", msg.format, msg.err), true)
		return nil
	}
	m.setStatus(fmt.Sprintf("exported %s (%s, %s) to %s", present.Plural(msg.rows, "guest"), msg.format,
		present.Size(int64(msg.bytes)), msg.path), false)
	return nil
}

// export runs ":export FORMAT PATH" (rest is the line after "export").
func (m *Model) export(rest string) tea.Cmd {
	format, path, _ := strings.Cut(strings.TrimSpace(rest), " ")
	path = strings.TrimSpace(path)
	if path == "" || (format != "csv" && format != "json") {
		m.setStatus(exportUsage, true)
		return nil
	}
	if format == "json" && m.opts.ExportJSON == nil {
		m.setStatus("export json: not available in this dashboard", true)
		return nil
	}
	if p, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, p)
		}
	}
	kind, _, err := localfile.Inspect(path)
	if err != nil {
		m.setStatus(fmt.Sprintf("export %s: cannot write to %s: %v", format, path, err), true)
		return nil
	}
	if err := localfile.Refused(path, kind); err != nil {
		m.setStatus(fmt.Sprintf("export %s: refused: %v", format, err), true)
		return nil
	}
	if kind == localfile.Directory {
		m.setStatus(fmt.Sprintf("export %s: %s is a directory; name the file", format, path), true)
		return nil
	}
	rows := append([]*fleet.Guest(nil), m.tbl.rows...)
	write := m.exportWriter(format, rows, path, kind != localfile.Missing)
	if kind == localfile.Missing {
		return write
	}
	q := path + " exists: overwrite it?"
	if kind.InPlace() {
		q = fmt.Sprintf("%s is a %s: write the export into it?", path, kind)
	}
	m.open(layer{kind: layerAsk, ask: &askDialog{question: q, yes: func() tea.Cmd { return write },
		no: "export cancelled: " + path + " left as it was"}})
	return nil
}

// exportWriter is the command that encodes rows and writes them to path;
// replace says the operator agreed to write over what is there.
func (m *Model) exportWriter(format string, rows []*fleet.Guest, path string, replace bool) tea.Cmd {
	now := m.now()
	toJSON := m.opts.ExportJSON
	return func() tea.Msg {
		done := exportDoneMsg{format: format, path: path, rows: len(rows)}
		var b bytes.Buffer
		if format == "csv" {
			done.err = writeCSV(&b, rows, now)
		} else {
			done.err = toJSON(&b, rows)
		}
		if done.err != nil {
			return done
		}
		done.bytes = b.Len()
		ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
		defer cancel()
		var f *localfile.File
		if replace {
			f, done.err = localfile.Create(ctx, path)
		} else {
			f, done.err = localfile.CreateNew(path)
		}
		if done.err != nil {
			return done
		}
		if _, err := f.Write(b.Bytes()); err != nil {
			f.Abort()
			done.err = fmt.Errorf("write %s: %w", path, err)
			return done
		}
		done.err = f.Commit()
		return done
	}
}

// writeCSV writes a header of every column's title, then one record per guest.
func writeCSV(b *bytes.Buffer, rows []*fleet.Guest, now time.Time) error {
	w := csv.NewWriter(b)
	rec := make([]string, numCols)
	for i, c := range columns {
		rec[i] = c.title
	}
	if err := w.Write(rec); err != nil {
		return err
	}
	for _, g := range rows {
		for i, c := range columns {
			v := cellText(g, c.id, now)
			if c.id == colAddr {
				v = strings.ReplaceAll(present.AddrList(g), ",", " ") // every address, not the cell's first two
			}
			rec[i] = csvCell(v)
		}
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// csvCell is one cell: escaped and capped as on screen, and kept from
// being read as a formula (OWASP's CSV injection advice: a leading = + - @,
// or tab or carriage return, which present.Text has already escaped). The
// table's own negative figures ("-43µs") and its "-" for none are left as
// they are: a minus, digits and a unit hold no formula.
func csvCell(s string) string {
	s = present.Text(s, exportCells)
	if s == "" || !strings.ContainsRune("=+-@", rune(s[0])) || s == "-" || plainNegative.MatchString(s) {
		return s
	}
	return "'" + s
}

// plainNegative is a negative figure with a unit: "-43µs", "-1.5ms", "-2%".
var plainNegative = regexp.MustCompile(`^-[0-9][0-9.]*(µs|ms|s|m|h|%)?$`)
