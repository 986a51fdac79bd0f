package tui

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/guestdeck/guestdeck/fleet"
)

// exportJSON stands in for cmd/guestdeck's status --json writer: the
// names, in the order given.
func exportJSON(w io.Writer, gs []*fleet.Guest) error {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return json.NewEncoder(w).Encode(names)
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s is not CSV: %v", path, err)
	}
	return recs
}

// :export csv writes the rows the filter leaves, in the view's order,
// every column; a cell a spreadsheet would evaluate is defused, a guest's
// control characters are escaped, quoting survives commas and quotes.
func TestExportCSV(t *testing.T) {
	m, src := newTestModel(9, 120, 30, Options{})
	gs := testGuests(9)
	gs[3].Name = `=cmd|' /C calc'!A0`
	gs[4].Err = "bad, \"quoted\"\nline\x1b[31m"
	gs[5].Name = "@SUM(1+1)"
	src.set(gs)
	m, _ = send(t, m, changedMsg{})
	m = press(t, m, "/")
	m = typeText(t, m, "tag:web")
	m = press(t, m, "enter", "S") // name descending
	var shown []string
	for _, g := range m.tbl.rows {
		shown = append(shown, g.Name)
	}

	path := filepath.Join(t.TempDir(), "fleet.csv")
	m = enterLine(t, m, "export csv "+path)
	if !strings.HasPrefix(m.status, fmt.Sprintf("exported %d guests (csv, ", len(shown))) || m.statusErr {
		t.Fatalf("status %q", m.status)
	}
	recs := readCSV(t, path)
	if len(recs) != len(shown)+1 || recs[0][0] != "NAME" || recs[0][len(recs[0])-1] != "ERROR" || len(recs[0]) != int(numCols) {
		t.Fatalf("header/rows: %q", recs)
	}
	var names []string
	for _, r := range recs[1:] {
		names = append(names, strings.TrimPrefix(r[0], "'"))
	}
	eq(t, "rows in view order", strings.Join(names, ","), strings.Join(shown, ","))
	byName := map[string][]string{}
	for _, r := range recs[1:] {
		byName[r[0]] = r
	}
	if _, ok := byName[`'=cmd|' /C calc'!A0`]; !ok {
		t.Errorf("the formula name is not defused: %q", names)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&^0o022 != 0o644&^0o022 || st.Mode().Perm()&0o100 != 0 {
		t.Errorf("mode %v %v, want 0644 less the umask", st.Mode(), err)
	}
	// Every guest (not just the filter's): the escaping and the quoting.
	m = press(t, m, "esc")
	m = enterLine(t, m, "export csv "+path) // exists now: asks
	eq(t, "an existing file is asked about", m.top().kind, layerAsk)
	m = press(t, m, "y")
	recs = readCSV(t, path)
	byName = map[string][]string{}
	for _, r := range recs[1:] {
		byName[r[0]] = r
	}
	if r := byName["vm-00004"]; r == nil || r[len(r)-1] != `bad, "quoted"\nline\x1b[31m` {
		t.Errorf("vm-00004's error cell: %q", r)
	}
	if byName["'@SUM(1+1)"] == nil {
		t.Errorf("@SUM not defused: %q", recs)
	}
	if r := byName["vm-00001"]; r == nil || r[5] != "10.0.0.2 fd00::2" {
		t.Errorf("addresses cell: %q", r)
	}
}

func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		"web-1": "web-1", "=1+1": "'=1+1", "+1": "'+1", "@x": "'@x", "\t=1": `\t=1`, "a=b": "a=b", "": "",
		// The table's own figures hold no formula; a minus followed by more does.
		"-": "-", "-150ms": "-150ms", "-4.3ms": "-4.3ms", "-2": "-2",
		"-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0", "-cmd": "'-cmd", "-1ms+1": "'-1ms+1", "--": "'--",
	} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// An existing file is replaced only after a yes; no leaves it; a socket
// is refused and a directory is named as one; JSON goes through the
// status --json writer, in view order.
func TestExportOverwriteRule(t *testing.T) {
	dir := t.TempDir()
	m, _ := newTestModel(4, 120, 30, Options{ExportJSON: exportJSON})
	path := filepath.Join(dir, "out.json")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	m = enterLine(t, m, "export json "+path)
	eq(t, "asked", m.top().kind, layerAsk)
	if v := view(m); !strings.Contains(v, path+" exists: overwrite it?") {
		t.Errorf("question not shown:\n%s", v)
	}
	m = press(t, m, "n")
	if b, _ := os.ReadFile(path); string(b) != "keep me" || !strings.Contains(m.status, "left as it was") {
		t.Errorf("after no: %q, status %q", b, m.status)
	}
	m = enterLine(t, m, "export json "+path)
	m = press(t, m, "y")
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != `["vm-00000","vm-00001","vm-00002","vm-00003"]` {
		t.Errorf("after yes: %q (status %q)", b, m.status)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("a replaced file keeps its mode: %v", st.Mode())
	}

	sock := filepath.Join(dir, "s.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ line, status string }{
		{"export csv " + sock, "export csv: refused: " + sock + " is a socket"},
		{"export csv " + dir, "export csv: " + dir + " is a directory; name the file"},
		{"export xml " + path, exportUsage},
		{"export csv", exportUsage},
	} {
		m = enterLine(t, m, c.line)
		if !strings.HasPrefix(m.status, c.status) || !m.statusErr || m.top().kind != layerTable {
			t.Errorf("%s: status %q, want %q", c.line, m.status, c.status)
		}
	}
	// No JSON writer, no JSON export (said, not a crash).
	m2, _ := newTestModel(2, 120, 30, Options{})
	m2 = enterLine(t, m2, "export json "+filepath.Join(dir, "x.json"))
	if m2.status != "export json: not available in this dashboard" {
		t.Errorf("status %q", m2.status)
	}
}

// A FIFO is written into, after a yes, as get writes into one.
func TestExportIntoFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	m, _ := newTestModel(2, 120, 30, Options{})
	m = enterLine(t, m, "export csv "+fifo)
	if v := view(m); !strings.Contains(v, fifo+" is a FIFO: write the export into it?") {
		t.Fatalf("question:\n%s", v)
	}
	m = press(t, m, "enter")
	if s := <-got; !strings.HasPrefix(s, "NAME,HOST,STATE") || !strings.Contains(s, "vm-00001") {
		t.Errorf("the FIFO read %q", s)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi.Mode(), err)
	}
	if !strings.HasPrefix(m.status, "exported 2 guests") {
		t.Errorf("status %q", m.status)
	}
}

// BenchmarkExportCSV: the CSV of a 10,000-guest table, as :export builds it.
func BenchmarkExportCSV(b *testing.B) {
	gs := testGuests(10000)
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := writeCSV(&out, gs, testNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len()), "bytes")
}
