package browser

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui"
)

// g and G are first and last in the browser as in the dashboard's table,
// in a listing and in the viewer; o opens a path in both (and / in a
// listing).
func TestFirstLastAndOpenPathKeys(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, f, "g", monoOpts())
	m := h.m
	h.press("down", "enter") // /data
	h.press("G")
	if h.cursorName() != "long.log" {
		t.Fatalf("G: cursor on %q, want the last entry", h.cursorName())
	}
	h.press("g")
	if h.cursorName() != ".." || m.prompt != promptNone {
		t.Fatalf("g: cursor on %q, prompt %v; want the first entry, no prompt", h.cursorName(), m.prompt)
	}
	h.press("o")
	if m.prompt != promptPath || m.input.Value() != "/data/" {
		t.Fatalf("o: prompt %v %q", m.prompt, m.input.Value())
	}
	h.press("esc", "/")
	if m.prompt != promptPath {
		t.Fatalf("/ in a listing: prompt %v", m.prompt)
	}
	h.prompt("/data/long.log")
	if m.view == nil {
		t.Fatalf("long.log not open; msg %q", m.msg)
	}
	h.press("G")
	if m.view.vp.YOffset() == 0 {
		t.Fatal("G in the viewer did not go to the bottom")
	}
	h.press("g")
	if m.view.vp.YOffset() != 0 || m.prompt != promptNone {
		t.Fatalf("g in the viewer: offset %d prompt %v", m.view.vp.YOffset(), m.prompt)
	}
	if s := h.screen(); !strings.Contains(s, "o path") {
		t.Errorf("the help line does not name o:\n%s", s)
	}
	h.press("o")
	if m.prompt != promptPath || m.input.Value() != "/data/long.log" {
		t.Fatalf("o in the viewer: prompt %v %q", m.prompt, m.input.Value())
	}
}

// A 4-byte "\x7fELF" is valid UTF-8 and no text: it is shown as hex, and no
// byte of it reaches the screen raw.
func TestTinyBinaryIsHex(t *testing.T) {
	cfg := guestConfig("g")
	cfg.Files["/data/elf4"] = sim.File{Data: "\x7fELF", ModTime: epoch}
	cfg.Files["/data/colours.log"] = sim.File{Data: "ok \x1b[32mgreen\x1b[0m line one\nline two, plain text that goes on\n", ModTime: epoch}
	f, _ := simFleet(t, fleet.Options{}, cfg)
	h := newHarness(t, f, "g", monoOpts())
	m := h.m
	h.press("o")
	h.prompt("/data/elf4")
	if m.view == nil || !m.view.binary {
		t.Fatalf("elf4 not shown as binary; msg %q", m.msg)
	}
	s := h.m.View()
	if strings.ContainsRune(s, 0x7f) || !strings.Contains(ansi.Strip(s), "7f 45 4c 46") {
		t.Errorf("hex view of elf4:\n%s", ansi.Strip(s))
	}
	h.wantMsg("binary, hex, 4 B")
	h.press("esc", "o")
	// A log with a few colour escapes stays text, escaped.
	h.prompt("/data/colours.log")
	if m.view == nil || m.view.binary {
		t.Fatalf("colours.log shown as binary; msg %q", m.msg)
	}
	if s := h.m.View(); strings.Contains(ansi.Strip(s), "\x1b") || !strings.Contains(s, `\x1b[32mgreen`) {
		t.Errorf("colours.log not escaped:\n%q", s)
	}
}

// An upload over a file that exists asks the download's question ("PATH
// exists: overwrite it?"); one to a new path asks plainly; a directory is
// refused with the prompt open again. Without guest-exec the guest is asked
// by opening the file for reading.
func TestUploadAsksBeforeOverwriting(t *testing.T) {
	for _, noExec := range []bool{false, true} {
		name := "listing"
		if noExec {
			name = "no-exec"
		}
		t.Run(name, func(t *testing.T) {
			cfg := guestConfig("g")
			cfg.NoExec = noExec
			f, guests := simFleet(t, fleet.Options{}, cfg)
			h := newHarness(t, f, "g", monoOpts())
			m := h.m
			src := filepath.Join(t.TempDir(), "up.txt")
			if err := os.WriteFile(src, []byte("new content\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if noExec {
				h.press("esc") // the path prompt it opens with
			}
			upload := func(to string) {
				t.Helper()
				h.press("u")
				h.prompt(src)
				h.prompt(to)
			}
			opens := guests["g"].Calls("guest-file-open")
			upload("/data/hello.txt")
			if m.confirm == nil {
				t.Fatalf("no question; msg %q", m.msg)
			}
			want := "/data/hello.txt exists: overwrite it? (upload " + src + " (12 B) to guest g)"
			if m.confirm.question != want {
				t.Errorf("question %q\nwant     %q", m.confirm.question, want)
			}
			if got := guests["g"].Calls("guest-file-open") - opens; noExec != (got > 0) {
				t.Errorf("%d guest-file-open calls to check (no-exec %v)", got, noExec)
			}
			h.press("n")
			h.wantMsg("cancelled")
			if n := guests["g"].Calls("guest-file-write"); n != 0 {
				t.Fatalf("%d writes after no", n)
			}
			var buf strings.Builder
			if _, err := f.ReadFile(context.Background(), "g", "/data/hello.txt", &buf, nil); err != nil || !strings.HasPrefix(buf.String(), "line a") {
				t.Fatalf("hello.txt changed: %q %v", buf.String(), err)
			}

			upload("/data/new.txt")
			if m.confirm == nil || m.confirm.question != "upload "+src+" (12 B) to guest g at /data/new.txt?" {
				t.Fatalf("new file: question %+v; msg %q", m.confirm, m.msg)
			}
			h.press("y")
			h.wantMsg("uploaded " + src)

			upload("/data/sub")
			h.wantMsg("/data/sub is a directory on g")
			if m.prompt != promptUploadTo || m.input.Value() != "/data/sub/up.txt" {
				t.Fatalf("directory: prompt %v %q", m.prompt, m.input.Value())
			}
		})
	}
}

// q in the browser closes the browser and nothing else: the dashboard is
// back, and a quit from it then still asks while guests are frozen.
func TestQuitFromBrowserClosesItOnly(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	if r := f.Run(context.Background(), fleet.Action{Kind: fleet.ActFreeze}, []string{"g"}, nil); !r[0].OK {
		t.Fatalf("freeze: %+v", r[0])
	}
	t.Cleanup(func() { f.ThawOurs(context.Background()) })
	var d dash
	d.t = t
	d.m = tui.New(f, tui.Options{Files: func(g string) (tui.FilesPane, error) { return New(f, g, monoOpts()), nil }})
	d.send(tea.WindowSizeMsg{Width: 100, Height: 30})
	d.send(keyMsg("f"))
	if s := d.screen(); !strings.Contains(s, "Files · g") {
		t.Fatalf("browser not open:\n%s", s)
	}
	if d.send(keyMsg("q")) {
		t.Fatal("q in the browser quit the program")
	}
	if s := d.screen(); strings.Contains(s, "Files · g") || !strings.Contains(s, "NAME") {
		t.Fatalf("q did not bring the table back:\n%s", s)
	}
	if d.send(keyMsg("q")) {
		t.Fatal("q quit with a guest frozen by guestdeck")
	}
	if s := d.screen(); !strings.Contains(s, "1 guest frozen by guestdeck") {
		t.Fatalf("no quit question:\n%s", s)
	}
}

// dash drives a dashboard hosting the browser, running each Cmd and
// feeding its messages back (timers excepted).
type dash struct {
	t *testing.T
	m tea.Model
}

func (d *dash) screen() string { return ansi.Strip(d.m.View().Content) }

// send reports whether the program quit.
func (d *dash) send(msg tea.Msg) bool {
	d.t.Helper()
	var cmd tea.Cmd
	d.m, cmd = d.m.Update(msg)
	return d.run(cmd, 0)
}

func (d *dash) run(cmd tea.Cmd, depth int) bool {
	if cmd == nil || depth > 100 {
		return false
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-time.After(200 * time.Millisecond):
		return false // a timer or the fleet's change signal: not part of this exchange
	}
	switch msg := msg.(type) {
	case nil:
		return false
	case tea.QuitMsg:
		return true
	case tea.BatchMsg:
		quit := false
		for _, c := range msg {
			quit = d.run(c, depth+1) || quit
		}
		return quit
	}
	var next tea.Cmd
	d.m, next = d.m.Update(msg)
	return d.run(next, depth+1)
}

// TestOpenOnFrozenGuest: the browser opened on a frozen guest says so (the
// agent disables guest-exec then, and "guest-exec is disabled" sent the
// operator the wrong way), sends nothing, and opens no path prompt that
// could only fail; after a thaw, r lists.
func TestOpenOnFrozenGuest(t *testing.T) {
	f, guests := simFleet(t, fleet.Options{}, guestConfig("fz"))
	ctx := context.Background()
	freeze, err := fleet.ParseAction([]string{"freeze"})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.Run(ctx, freeze, []string{"fz"}, nil); !r[0].OK {
		t.Fatalf("freeze: %+v", r[0])
	}
	t.Cleanup(func() { f.ThawOurs(ctx) })
	h := newHarness(t, f, "fz", monoOpts())
	h.wantMsg("no directory listing and no file reads: the guest is frozen: thaw it first, then r")
	if h.m.prompt == promptPath {
		t.Error("a path prompt opened on a frozen guest")
	}
	if n := guests["fz"].Calls("guest-exec"); n != 0 {
		t.Errorf("%d guest-exec calls to a frozen guest", n)
	}
	f.ThawOurs(ctx)
	f.RefreshOnce(ctx, []string{"fz"})
	h.press("r")
	if !h.m.listed {
		t.Errorf("no listing after the thaw: %q (loading %q, state %s)", h.m.msg, h.m.loading, f.Guest("fz").State)
	}
}
