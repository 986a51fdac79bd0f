package browser

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/themes"
	"github.com/guestdeck/guestdeck/tui"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The dashboard hosts the browser through this interface; the fleet is its source.
var (
	_ tui.FilesPane = (*Model)(nil)
	_ Source        = (*fleet.Fleet)(nil)
)

var epoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testTree is the default guest tree plus files the tests open.
func testTree() map[string]sim.File {
	files := maps.Clone(sim.DefaultConfig("x").Files)
	big := make([]byte, 3<<20+12345)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	var text strings.Builder
	for i := range 40 {
		text.WriteString("line ")
		text.WriteString(string(rune('a' + i%26)))
		if i%9 == 4 {
			text.WriteString(" the fleet sails on")
		}
		text.WriteString("\n")
	}
	var long strings.Builder
	for long.Len() < 300<<10 {
		long.WriteString("a line of a long log file, fleet status nominal\n")
	}
	files["/data"] = sim.File{Mode: fs.ModeDir | 0o755, ModTime: epoch}
	files["/data/sub"] = sim.File{Mode: fs.ModeDir | 0o755, ModTime: epoch}
	files["/data/sub/deep.txt"] = sim.File{Data: "deep\n", ModTime: epoch}
	files["/data/hello.txt"] = sim.File{Data: text.String(), ModTime: epoch}
	files["/data/blob.bin"] = sim.File{Data: "\x7fELF\x02\x01\x01\x00\x00\x00hello\x00world\xff\xfe" + strings.Repeat("\x00\x01", 20), ModTime: epoch}
	files["/data/big.bin"] = sim.File{Data: string(big), ModTime: epoch}
	files["/data/long.log"] = sim.File{Data: long.String(), ModTime: epoch}
	files["/data/ctl.txt"] = sim.File{Data: "bell\a esc\x1b[31m red\ttab\r\n", ModTime: epoch}
	return files
}

func guestConfig(name string) sim.Config {
	c := sim.DefaultConfig(name)
	c.Files = testTree()
	return c
}

// simFleet serves the simulated guests on unix sockets and returns a fleet
// that has polled them once (so it knows their capabilities).
func simFleet(t *testing.T, opts fleet.Options, cfgs ...sim.Config) (*fleet.Fleet, map[string]*sim.Guest) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Second
	}
	f := fleet.New(opts)
	t.Cleanup(func() { f.Close() })
	guests := map[string]*sim.Guest{}
	for _, c := range cfgs {
		sock := filepath.Join(dir, c.Name+".sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		g := sim.New(c)
		go g.Serve(l)
		t.Cleanup(func() { g.Close() })
		guests[c.Name] = g
		f.Add(fleet.Target{Name: c.Name, Address: "unix:" + sock})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.RefreshOnce(ctx, nil)
	for _, g := range f.Snapshot().Guests {
		if g.State != fleet.Ready {
			t.Fatalf("guest %s: %s %s", g.Name, g.State, g.Err)
		}
	}
	return f, guests
}

// harness drives a Model the way Bubble Tea does, but synchronously: every
// Cmd is called and its message fed back until nothing is left to run.
type harness struct {
	t    *testing.T
	m    *Model
	msgs []tea.Msg
}

func newHarness(t *testing.T, src Source, guest string, opts Options) *harness {
	t.Helper()
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	h := &harness{t: t, m: New(src, guest, opts)}
	t.Cleanup(func() { h.m.close() })
	h.m.SetSize(80, 20)
	h.run(h.m.Init())
	return h
}

func (h *harness) run(cmd tea.Cmd) {
	h.t.Helper()
	if cmd == nil {
		return
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-time.After(30 * time.Second):
		h.t.Fatal("a Cmd did not return within 30s")
	}
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			h.run(c)
		}
	default:
		h.msgs = append(h.msgs, msg)
		h.run(h.m.Update(msg))
	}
}

func keyMsg(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "home":
		return tea.KeyPressMsg{Code: tea.KeyHome}
	case "end":
		return tea.KeyPressMsg{Code: tea.KeyEnd}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	k := tea.KeyPressMsg{Code: unicode.ToLower(r), Text: s}
	if unicode.IsUpper(r) {
		k.Mod, k.ShiftedCode = tea.ModShift, r
	}
	return k
}

// press sends keys, each either a named key or one character.
func (h *harness) press(keys ...string) {
	h.t.Helper()
	for _, k := range keys {
		h.run(h.m.Update(keyMsg(k)))
	}
}

// typeText types s into the focused prompt.
func (h *harness) typeText(s string) {
	h.t.Helper()
	for _, r := range s {
		h.run(h.m.Update(tea.KeyPressMsg{Code: r, Text: string(r)}))
	}
}

// prompt replaces the prompt's text with s and submits it.
func (h *harness) prompt(s string) {
	h.t.Helper()
	if h.m.prompt == promptNone {
		h.t.Fatalf("no prompt open; message %q", h.m.msg)
	}
	h.press("ctrl+u")
	h.typeText(s)
	h.press("enter")
}

func (h *harness) screen() string { return ansi.Strip(h.m.View()) }

func (h *harness) wantMsg(sub string) {
	h.t.Helper()
	if !strings.Contains(h.m.msg, sub) {
		h.t.Fatalf("message = %q, want it to contain %q\nscreen:\n%s", h.m.msg, sub, h.screen())
	}
}

func (h *harness) cursorName() string {
	e, ok := h.m.current()
	if !ok {
		return ""
	}
	return e.Name
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

func monoOpts() Options {
	return Options{Styles: StylesFrom(themes.Mono()), Location: time.UTC}
}

func TestNavigation(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, f, "g", monoOpts())
	m := h.m
	if !m.canExec || !m.listed || m.dir != "/" {
		t.Fatalf("start: canExec=%v listed=%v dir=%q msg=%q", m.canExec, m.listed, m.dir, m.msg)
	}
	var names []string
	for _, e := range m.ents {
		names = append(names, e.Name)
	}
	if got, want := strings.Join(names, " "), "bin data etc home tmp var"; got != want {
		t.Fatalf("root entries = %q, want %q", got, want)
	}
	h.press("down")
	if h.cursorName() != "data" {
		t.Fatalf("cursor on %q, want data", h.cursorName())
	}
	h.press("enter")
	if m.dir != "/data" || h.cursorName() != ".." {
		t.Fatalf("after enter: dir %q cursor %q", m.dir, h.cursorName())
	}
	h.press("down")
	if h.cursorName() != "sub" {
		t.Fatalf("dirs first: cursor on %q, want sub", h.cursorName())
	}
	h.press("end")
	if h.cursorName() != "long.log" {
		t.Fatalf("end: cursor on %q", h.cursorName())
	}
	h.press("home")
	if h.cursorName() != ".." {
		t.Fatalf("home: cursor on %q", h.cursorName())
	}
	h.press("pgdown")
	if m.cursor != len(m.ents)-1 {
		t.Fatalf("pgdown in a short list: cursor %d of %d", m.cursor, len(m.ents))
	}
	h.press("pgup", "down", "enter") // into sub
	if m.dir != "/data/sub" {
		t.Fatalf("dir %q, want /data/sub", m.dir)
	}
	// One file beside "..": the count is singular, not "1 entries".
	if v := h.screen(); !strings.Contains(v, "\n1 entry") {
		t.Errorf("/data/sub (%d entries listed):\n%s", len(m.ents), v)
	}
	h.press("-")
	if m.dir != "/data" || h.cursorName() != "sub" {
		t.Fatalf("up: dir %q cursor %q, want /data on sub", m.dir, h.cursorName())
	}
	h.press("enter", "home", "enter") // ".." goes up too
	if m.dir != "/data" || h.cursorName() != "sub" {
		t.Fatalf("..: dir %q cursor %q", m.dir, h.cursorName())
	}
	h.press("backspace")
	if m.dir != "/" || h.cursorName() != "data" {
		t.Fatalf("backspace: dir %q cursor %q", m.dir, h.cursorName())
	}
	h.press("r")
	if m.dir != "/" || h.cursorName() != "data" {
		t.Fatalf("reload keeps the cursor: dir %q cursor %q", m.dir, h.cursorName())
	}
	h.press("enter")
	golden(t, "listing", h.screen())

	// The path prompt jumps anywhere; history comes back with up.
	h.press("o")
	h.prompt("/home/user/")
	if m.dir != "/home/user" {
		t.Fatalf("prompt: dir %q", m.dir)
	}
	h.press("o")
	h.prompt("/etc")
	if m.dir != "/etc" || m.listed == false {
		t.Fatalf("prompt /etc: dir %q", m.dir)
	}
	h.press("/", "up")
	if v := m.input.Value(); v != "/etc" {
		t.Fatalf("history up = %q, want /etc", v)
	}
	h.press("up")
	if v := m.input.Value(); v != "/home/user/" {
		t.Fatalf("history up twice = %q", v)
	}
	h.press("down", "down")
	if v := m.input.Value(); v != "/etc/" {
		t.Fatalf("history back to the draft = %q, want /etc/", v)
	}
	h.press("esc")
	if m.prompt != promptNone || m.done {
		t.Fatal("esc closes only the prompt")
	}
	h.press("q")
	if !m.Done() {
		t.Fatal("q at the top did not close")
	}
	if m.life.Err() == nil {
		t.Fatal("closing did not cancel the browser's context")
	}
}

func TestOpenTextAndSearch(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, f, "g", monoOpts())
	m := h.m
	h.press("o")
	h.prompt("/data/hello.txt")
	if m.view == nil || m.view.binary {
		t.Fatalf("hello.txt not open as text; msg %q", m.msg)
	}
	if m.dir != "/data" || h.cursorName() != "hello.txt" {
		t.Fatalf("opening by path puts the listing there: dir %q cursor %q", m.dir, h.cursorName())
	}
	h.press("/")
	h.typeText("FLEET")
	h.press("enter")
	h.wantMsg(`"FLEET": no match`) // an upper-case letter makes it case-sensitive
	h.press("/")
	h.typeText("fleet")
	h.press("enter")
	h.wantMsg(`"fleet": match 1 of 4`)
	h.press("n")
	h.wantMsg("match 2 of 4")
	h.press("n", "n", "n")
	h.wantMsg("match 1 of 4") // wraps
	h.press("N")
	h.wantMsg("match 4 of 4")
	if off := m.view.vp.YOffset(); off == 0 {
		t.Fatalf("the last match (line 32) is not scrolled into view: offset %d", off)
	}
	h.press("N", "N")
	h.wantMsg("match 2 of 4")
	h.press("home") // the viewport makes the first match below the top current
	h.wantMsg("match 1 of 4")
	h.press("n")
	// Kept with its escapes: the highlight is the point (Mono styles: no
	// colour, reverse video).
	golden(t, "text-search", h.m.View())
	if !strings.Contains(h.m.View(), "\x1b[7m") {
		t.Fatal("no reverse-video highlight on the matches")
	}

	h.press("esc")
	if m.view != nil || m.dir != "/data" {
		t.Fatal("esc in the viewer goes back to the listing")
	}

	// Control characters cannot reach the terminal.
	h.press("o")
	h.prompt("/data/ctl.txt")
	if strings.ContainsAny(m.view.content, "\x1b\a\r") || !strings.Contains(m.view.content, `\x1b[31m`) {
		t.Fatalf("control characters not made visible: %q", m.view.content)
	}
}

func TestOpenBinaryAndLarge(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	opts := monoOpts()
	opts.ViewLimit = 64 << 10
	h := newHarness(t, f, "g", opts)
	m := h.m
	h.press("o")
	h.prompt("/data/blob.bin")
	if m.view == nil || !m.view.binary {
		t.Fatalf("blob.bin not shown as binary; msg %q", m.msg)
	}
	golden(t, "hex", h.screen())
	h.press("esc")

	h.press("o")
	h.prompt("/data/long.log")
	if m.view == nil || m.view.binary {
		t.Fatalf("long.log not open; msg %q", m.msg)
	}
	h.wantMsg("showing first 64 KiB of 300 KiB; use d to download the whole file")
	if m.view.shown != 64<<10 {
		t.Fatalf("read %d bytes, want the 64 KiB limit", m.view.shown)
	}
	h.press("esc")

	// Without a listing the size is unknown, but the limit still holds.
	h.press("o")
	h.prompt("/data/big.bin")
	h.wantMsg("showing first 16 KiB of 3.0 MiB")
	h.m.view = nil
	h.m.canExec = false
	h.run(h.m.openFile("/data/long.log", -1))
	h.wantMsg("showing first 64 KiB of a larger file")
}

func TestDownload(t *testing.T) {
	f, guests := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, f, "g", monoOpts())
	m := h.m
	local := t.TempDir()
	dst := filepath.Join(local, "copy.bin")

	h.press("o")
	h.prompt("/data/big.bin")
	h.press("esc") // back to the listing, cursor on big.bin
	h.press("d")
	if m.prompt != promptSaveTo || m.input.Value() != "./big.bin" {
		t.Fatalf("download prompt %v %q", m.prompt, m.input.Value())
	}
	h.msgs = nil
	h.prompt(dst)
	var progress int
	var last jobProgressMsg
	for _, msg := range h.msgs {
		if p, ok := msg.(jobProgressMsg); ok {
			progress++
			if p.done < last.done {
				t.Fatalf("progress went backwards: %d after %d", p.done, last.done)
			}
			last = p
		}
	}
	if progress == 0 {
		t.Fatal("no progress messages before the download ended")
	}
	if _, ok := h.msgs[len(h.msgs)-1].(jobDoneMsg); !ok {
		t.Fatalf("last message %T, want jobDoneMsg", h.msgs[len(h.msgs)-1])
	}
	h.wantMsg("downloaded /data/big.bin (3.0 MiB) to " + dst)
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := guests["g"].Config().Files["/data/big.bin"].Data; string(got) != want {
		t.Fatalf("downloaded %d bytes differ from the guest's %d", len(got), len(want))
	}

	// A second download asks before replacing the file.
	h.press("d")
	h.prompt(dst)
	if m.confirm == nil || !strings.Contains(m.confirm.question, "exists: overwrite") {
		t.Fatalf("no overwrite question; msg %q", m.msg)
	}
	h.press("n")
	h.wantMsg("cancelled")
	h.press("d")
	h.prompt(local) // a directory: the file keeps its name there
	h.wantMsg("downloaded /data/big.bin (3.0 MiB) to " + filepath.Join(local, "big.bin"))

	// A local path that cannot be written is a message.
	h.press("d")
	h.prompt(filepath.Join(local, "no-such-dir", "x"))
	h.wantMsg("download /data/big.bin: cannot write into " + filepath.Join(local, "no-such-dir") + ": no such file or directory")

	// Cancel: esc stops the transfer and leaves no partial file.
	guests["g"].SetLatency(30 * time.Millisecond)
	h.press("d")
	h.press("ctrl+u")
	h.typeText(filepath.Join(local, "cancelled.bin"))
	cmd := m.Update(keyMsg("enter"))
	first := cmd() // the first progress, once a chunk has arrived
	if _, ok := first.(jobProgressMsg); !ok {
		t.Fatalf("first message %T, want progress", first)
	}
	next := m.Update(first)
	h.press("esc")
	h.run(next)
	h.wantMsg("download /data/big.bin: cancelled")
	ents, _ := os.ReadDir(local)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "big.bin copy.bin" {
		t.Fatalf("local dir holds %v, want only the two finished downloads", left)
	}
}

func TestUpload(t *testing.T) {
	f, guests := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, f, "g", monoOpts())
	m := h.m
	src := filepath.Join(t.TempDir(), "up.txt")
	content := strings.Repeat("uploaded through the browser\n", 5000)
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	h.press("o")
	h.prompt("/tmp/")
	h.press("u")
	h.prompt(filepath.Join(filepath.Dir(src), "missing.txt"))
	h.wantMsg("missing.txt: no such file or directory")
	h.press("u")
	h.prompt(src)
	if m.prompt != promptUploadTo || m.input.Value() != "/tmp/up.txt" {
		t.Fatalf("destination prompt %v %q", m.prompt, m.input.Value())
	}
	h.prompt("relative.txt")
	h.wantMsg(`"relative.txt" is relative`)
	h.prompt("/tmp/up.txt")
	if m.confirm == nil {
		t.Fatalf("no confirmation; msg %q", m.msg)
	}
	if q := m.confirm.question; q != "upload "+src+" (142 KiB) to guest g at /tmp/up.txt?" {
		t.Fatalf("question %q", q)
	}
	if guests["g"].Calls("guest-file-write") != 0 {
		t.Fatal("wrote before confirmation")
	}
	h.msgs = nil
	h.press("y")
	h.wantMsg("uploaded " + src + " (142 KiB) to g:/tmp/up.txt")
	var progress int
	for _, msg := range h.msgs {
		if _, ok := msg.(jobProgressMsg); ok {
			progress++
		}
	}
	if progress == 0 {
		t.Fatal("no upload progress")
	}
	if h.cursorName() != "up.txt" {
		t.Fatalf("listing not reloaded onto the upload: cursor %q", h.cursorName())
	}
	var buf bytes.Buffer
	if _, err := f.ReadFile(context.Background(), "g", "/tmp/up.txt", &buf, nil); err != nil {
		t.Fatal(err)
	}
	if buf.String() != content {
		t.Fatalf("guest has %d bytes, want %d", buf.Len(), len(content))
	}
}

func TestReadonly(t *testing.T) {
	f, guests := simFleet(t, fleet.Options{}, guestConfig("g"))
	opts := monoOpts()
	opts.Readonly = true
	h := newHarness(t, f, "g", opts)
	if s := h.screen(); strings.Contains(s, "upload") || !strings.Contains(s, "read-only") {
		t.Fatalf("read-only screen shows upload or lacks the mark:\n%s", s)
	}
	h.press("u")
	h.wantMsg("read-only mode: upload refused")
	if h.m.prompt != promptNone {
		t.Fatal("upload prompt opened in read-only mode")
	}
	// Even a plan that got through is refused before the guest is asked.
	h.run(h.m.startUpload(uploadPlan{local: "/etc/hostname", remote: "/tmp/x", size: 1}))
	h.wantMsg("read-only mode: upload refused")
	if n := guests["g"].Calls("guest-file-open"); n != 0 {
		t.Fatalf("%d guest-file-open calls in read-only mode", n)
	}
}

func TestErrors(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, f, "g", monoOpts())
	m := h.m

	h.press("o")
	h.prompt("etc/hostname")
	h.wantMsg(`"etc/hostname" is relative: type an absolute path`)
	if m.prompt != promptPath {
		t.Fatal("a bad path closed the prompt")
	}
	h.prompt("   ")
	h.wantMsg("type a path")
	h.prompt("/etc/nope")
	h.wantMsg("no such file or directory: /etc/nope")
	h.press("o")
	h.prompt("/no/such/dir/")
	h.wantMsg("list /no/such/dir")
	h.press("o")
	h.prompt("/etc/shadow")
	h.wantMsg("open /etc/shadow: permission denied")
	golden(t, "error", h.screen())

	// A frozen guest refuses file access: say what to do.
	ctx := context.Background()
	freeze, err := fleet.ParseAction([]string{"freeze"})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.Run(ctx, freeze, []string{"g"}, nil); !r[0].OK {
		t.Fatalf("freeze: %+v", r[0])
	}
	t.Cleanup(func() { f.ThawOurs(ctx) })
	h.press("o")
	h.prompt("/etc/hostname")
	h.wantMsg("guest is frozen: thaw it first")
	h.press("r")
	h.wantMsg("list /etc: guest is frozen: thaw it first")
	f.ThawOurs(ctx)
	h.press("r")
	if !m.listed || m.dir != "/etc" || m.msg == "" && false {
		t.Fatal("no listing after thaw")
	}
}

func TestNoExec(t *testing.T) {
	cfg := guestConfig("ne")
	cfg.NoExec = true
	f, guests := simFleet(t, fleet.Options{}, cfg)
	h := newHarness(t, f, "ne", monoOpts())
	m := h.m
	if m.canExec || m.prompt != promptPath {
		t.Fatalf("no-exec guest: canExec %v prompt %v", m.canExec, m.prompt)
	}
	h.wantMsg("no directory listing: guest-exec is disabled on this guest; open a file by path")
	if n := guests["ne"].Calls("guest-exec"); n != 0 {
		t.Fatalf("%d guest-exec calls on a guest that disables it", n)
	}
	h.prompt("/etc")
	h.wantMsg("/etc is a directory: listing it needs guest-exec (guest-exec is disabled on this guest)")
	h.prompt("/etc/os-release")
	if m.view == nil || !strings.Contains(m.view.content, "bookworm") {
		t.Fatalf("os-release not shown; msg %q", m.msg)
	}
	h.press("esc") // back to the prompt, holding the last path
	if m.prompt != promptPath || m.input.Value() != "/etc/os-release" {
		t.Fatalf("after the viewer: prompt %v %q", m.prompt, m.input.Value())
	}
	h.press("esc")
	if s := h.screen(); !strings.Contains(s, "Directory listings need guest-exec") || !strings.Contains(s, "/etc/os-release") {
		t.Fatalf("no-exec screen lacks the reason or the recent path:\n%s", s)
	}
	h.press("q")
	if !m.Done() {
		t.Fatal("q did not close")
	}
}

// absentSource reports a guest whose agent lacks guest-exec altogether.
type absentSource struct{ *fleet.Fleet }

func (a absentSource) Guest(name string) *fleet.Guest {
	g := *a.Fleet.Guest(name)
	g.Commands = nil
	for _, c := range a.Fleet.Guest(name).Commands {
		if c.Name != "guest-exec" {
			g.Commands = append(g.Commands, c)
		}
	}
	return &g
}

func TestNoExecAbsent(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, absentSource{f}, "g", monoOpts())
	h.wantMsg("guest-exec is absent from this agent")
}

func TestCloseCancelsTransfer(t *testing.T) {
	f, guests := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, f, "g", monoOpts())
	m := h.m
	local := t.TempDir()
	guests["g"].SetLatency(30 * time.Millisecond)
	cmd := m.startDownload(downloadPlan{remote: "/data/big.bin", size: -1}, filepath.Join(local, "x"), false)
	first := cmd()
	if _, ok := first.(jobProgressMsg); !ok {
		t.Fatalf("first message %T", first)
	}
	next := m.Update(first)
	h.press("q")
	if !m.Done() {
		t.Fatal("not done after q")
	}
	start := time.Now()
	if msg, ok := next().(jobDoneMsg); !ok || msg.res.err == nil {
		t.Fatalf("after close: %#v, want a cancelled result", msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if ents, _ := os.ReadDir(local); len(ents) != 0 {
		t.Fatalf("partial files left: %v", ents)
	}
	if m.Update(keyMsg("o")) != nil || m.prompt != promptNone {
		t.Fatal("a closed browser still acts on keys")
	}
}

func TestDownloadProgressView(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	now := epoch
	opts := monoOpts()
	opts.Now = func() time.Time { return now }
	h := newHarness(t, f, "g", opts)
	h.press("down", "enter") // /data
	_ = h.m.startDownload(downloadPlan{remote: "/data/big.bin", size: 3<<20 + 12345}, "./big.bin", false)
	now = now.Add(2 * time.Second)
	h.m.Update(jobProgressMsg{id: h.m.job.id, done: 2 << 20, total: 0})
	golden(t, "download-progress", h.screen())
}
