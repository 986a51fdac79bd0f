package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/internal/wait"
	"github.com/guestdeck/guestdeck/tui"
)

// TestViewColumnsMatchTUI: [[views]] accepts exactly the column names the
// dashboard draws, so a column the fleet file takes is one on screen.
func TestViewColumnsMatchTUI(t *testing.T) {
	if got, want := config.ViewColumns, tui.ColumnNames(); !slices.Equal(got, want) {
		t.Errorf("config.ViewColumns = %v\ntui.ColumnNames()  = %v", got, want)
	}
	if config.DefaultView != tui.DefaultView {
		t.Errorf("config.DefaultView %q, tui.DefaultView %q", config.DefaultView, tui.DefaultView)
	}
	// Every column and sort config accepts, the dashboard takes too.
	views := []tui.View{{Name: "all", Columns: config.ViewColumns}}
	for _, c := range config.ViewColumns {
		views = append(views, tui.View{Name: "by-" + c, Sort: c}, tui.View{Name: "by-" + c + "-asc", Sort: c + ":asc"})
	}
	if err := tui.CheckViews(nil, views); err != nil {
		t.Errorf("tui.CheckViews rejects what config accepts: %v", err)
	}
	// The example fleet file's views pass the dashboard's checks too.
	f, err := config.Load(filepath.Join("..", "..", "examples", "fleet.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := dashboardViews(f, f.Keys); err != nil || len(vs) == 0 {
		t.Errorf("examples/fleet.toml views: %d, %v", len(vs), err)
	}
}

// simFleet serves n simulated guests with `guestdeck sim` (the first frozen
// of them frozen through their agent) and returns its fleet file's text.
func simFleet(t *testing.T, n, frozen int) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdv") // short: socket paths must be < 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cmd := exec.Command(binary, "sim", "--guests", fmt.Sprint(n), "--frozen", fmt.Sprint(frozen), "--dir", dir)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	cfg := filepath.Join(dir, "fleet.toml")
	wait.For(t, 20*time.Second, func() (bool, string) {
		return strings.Contains(out.String(), "ctrl-c stops"),
			fmt.Sprintf("sim wrote no fleet file\nstdout: %s\nstderr: %s", out.String(), errb.String())
	})
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// e2eHeader is the table's header line, split into its titles.
func e2eHeader(screen string) []string {
	for _, line := range strings.Split(screen, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "NAME") {
			return f
		}
	}
	return nil
}

// e2eCell is the word of a row's text (e2eRow.text) under the header
// title: where the columns are depends on the width and the view.
func e2eCell(screen, rowText, title string) string {
	for _, line := range strings.Split(screen, "\n") {
		if f := strings.Fields(line); len(f) == 0 || !strings.HasPrefix(f[0], "NAME") {
			continue
		}
		at := strings.Index(line, " "+title)
		if at < 0 {
			return ""
		}
		at = len([]rune(line[:at+1])) - 3 // rows' text starts after the mark cells
		if row := []rune(rowText); at >= 0 && at < len(row) {
			if f := strings.Fields(string(row[at:])); len(f) > 0 {
				return f[0]
			}
		}
		return ""
	}
	return ""
}

// TestDashboardE2EViews: in a real terminal, a saved view from the fleet
// file, switched by its key, changes both the rows (its filter) and the
// columns (its own, in its order); :view default brings back the rest.
func TestDashboardE2EViews(t *testing.T) {
	fleetText := simFleet(t, 6, 2) // sim-1 and sim-2 frozen
	cfg := filepath.Join(t.TempDir(), "fleet.toml")
	views := `
[[views]]
name = "frozen"
key = "alt+1"
filter = "state:frozen"
sort = "name"
columns = ["name", "state", "freeze", "host", "error"]
`
	if err := os.WriteFile(cfg, []byte(fleetText+views), 0o644); err != nil {
		t.Fatal(err)
	}
	tt := e2eStart(t, "-c", cfg)
	all := []string{"sim-1", "sim-2", "sim-3", "sim-4", "sim-5", "sim-6"}
	s := tt.waitFor("all six guests, two frozen", func(s string) bool {
		rows := e2eRows(s)
		frozen := 0
		for _, r := range rows {
			if strings.Contains(r.text, " frozen ") {
				frozen++
			}
		}
		return slices.Equal(e2eNames(rows), all) && frozen == 2
	})
	if h := e2eHeader(s); slices.Contains(h, "FREEZE") && slices.Index(h, "FREEZE") < slices.Index(h, "ADDRESSES") ||
		!slices.Contains(h, "ADDRESSES") {
		t.Errorf("default view header %v: want the columns by width, ADDRESSES before FREEZE", h)
	}

	tt.keys("M-1") // alt+1: the terminal sends ESC 1
	s = tt.waitText("view frozen", `filter "state:frozen": 2 shown`)
	if got := e2eNames(e2eRows(s)); !slices.Equal(got, []string{"sim-1", "sim-2"}) {
		t.Errorf("frozen view rows %v, want sim-1 and sim-2:\n%s", got, s)
	}
	if got, want := e2eHeader(s), []string{"NAME↑", "STATE", "FREEZE", "HOST", "ERROR"}; !slices.Equal(got, want) {
		t.Errorf("frozen view header %v, want %v:\n%s", got, want, s)
	}

	tt.keys(":")
	tt.text("view default")
	tt.keys("Enter")
	s = tt.waitFor("every guest again", func(s string) bool { return slices.Equal(e2eNames(e2eRows(s)), all) })
	if h := e2eHeader(s); !slices.Contains(h, "ADDRESSES") || strings.Contains(s, "view frozen") {
		t.Errorf("back in the default view, header %v:\n%s", h, s)
	}
	tt.keys("q")
	wait.For(t, e2eWait, func() (bool, string) {
		b, _ := os.ReadFile(tt.exitFile)
		return strings.TrimSpace(string(b)) == "EXIT=0", "guestdeck did not exit 0 after q:\n" + tt.screen()
	})
}

// TestDashboardE2EViewKeyRefused: a view whose key the dashboard already
// binds stops the start, naming the file, the line and both uses of the
// key, before the screen takes over.
func TestDashboardE2EViewKeyRefused(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "fleet.toml")
	src := "[[guest]]\nname = \"g\"\naddress = \"unix:/nonexistent/g.sock\"\n\n[[views]]\nname = \"mine\"\nkey = \"F\"\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	tt := e2eStart(t, "-c", cfg)
	want := cfg + `:7:7: key "F" of [[views]] "mine" already does freeze in the dashboard`
	s := tt.waitText("guestdeck-exited")
	if !strings.Contains(strings.ReplaceAll(s, "\n", ""), want) {
		t.Errorf("screen lacks %q:\n%s", want, s)
	}
	b, _ := os.ReadFile(tt.exitFile)
	if got := strings.TrimSpace(string(b)); got == "EXIT=0" {
		t.Errorf("guestdeck exited 0 with a clashing view key")
	}
}
