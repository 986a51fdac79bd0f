package browser

import (
	"io/fs"
	"maps"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

func windowsConfig(name string, exec bool) sim.Config {
	c := sim.WindowsConfig(name)
	c.Files = maps.Clone(c.Files)
	c.Files[`C:\Users`] = sim.File{Mode: fs.ModeDir | 0o777, ModTime: epoch}
	c.Files[`C:\Users\Administrator\Desktop\todo list.txt`] = sim.File{Data: "patch the fleet\r\nreboot\r\n", ModTime: epoch}
	c.Files[`C:\Windows\win.ini`] = sim.File{Data: "; for 16-bit app support\r\n[fonts]\r\n", Mode: 0o444, ModTime: epoch}
	c.NoExec = !exec
	return c
}

// On a Windows guest the browser starts at C:\, lists with PowerShell
// (the demo's Windows guests used to fail with "list /: no such file or
// directory"), goes down and up with backslashes, and views a file.
func TestWindowsBrowsing(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, windowsConfig("win", true))
	h := newHarness(t, f, "win", monoOpts())
	m := h.m
	if m.dir != `C:\` || !m.listed || m.msgKind == msgErr {
		t.Fatalf("start: dir %q listed %v msg %q\n%s", m.dir, m.listed, m.msg, h.screen())
	}
	if names := entryNames(m); names != "Users Windows" {
		t.Fatalf(`C:\ lists %q`, names)
	}
	h.press("down", "enter") // Windows
	if m.dir != `C:\Windows` || h.cursorName() != ".." {
		t.Fatalf("into Windows: dir %q cursor %q", m.dir, h.cursorName())
	}
	golden(t, "windows-listing", h.screen())
	h.press("down", "enter") // win.ini
	if m.view == nil || !strings.Contains(h.screen(), "[fonts]") {
		t.Fatalf("win.ini not shown:\n%s", h.screen())
	}
	h.press("esc", "-")
	if m.dir != `C:\` || h.cursorName() != "Windows" {
		t.Fatalf("up: dir %q cursor %q", m.dir, h.cursorName())
	}
	h.press("-") // a drive's root has no parent
	if m.dir != `C:\` {
		t.Fatalf("up from the root: %q", m.dir)
	}
	// A typed path, forward slashes and a lower-case drive included.
	h.press("o")
	h.prompt(`c:/users/../Users/Administrator/Desktop/todo list.txt`)
	if m.view == nil || m.view.path != `C:\Users\Administrator\Desktop\todo list.txt` || !strings.Contains(h.screen(), "reboot") {
		t.Fatalf("typed path: view %+v msg %q\n%s", m.view, m.msg, h.screen())
	}
}

// Without guest-exec a Windows guest opens by typed path, starting at C:\.
func TestWindowsOpenByPath(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, windowsConfig("win", false))
	h := newHarness(t, f, "win", monoOpts())
	if h.m.prompt != promptPath || h.m.input.Value() != `C:\` {
		t.Fatalf("prompt %v %q msg %q", h.m.prompt, h.m.input.Value(), h.m.msg)
	}
	h.prompt(`C:\Windows\win.ini`)
	if h.m.view == nil || !strings.Contains(h.screen(), "[fonts]") {
		t.Fatalf("win.ini not shown: msg %q\n%s", h.m.msg, h.screen())
	}
}

func entryNames(m *Model) string {
	var ns []string
	for _, e := range m.ents {
		ns = append(ns, e.Name)
	}
	return strings.Join(ns, " ")
}

func TestGuestPaths(t *testing.T) {
	for _, tc := range []struct{ in, clean, parent, base string }{
		{"/", "/", "/", "/"},
		{"/etc/x/", "/etc/x", "/etc", "x"},
		{`C:\`, `C:\`, `C:\`, ""},
		{`c:/Windows//System32/./`, `C:\Windows\System32`, `C:\Windows`, "System32"},
		{`C:\a\..\..\b`, `C:\b`, `C:\`, "b"},
		{`D:\x y\z.txt`, `D:\x y\z.txt`, `D:\x y`, "z.txt"},
	} {
		c := cleanPath(tc.in)
		if c != tc.clean || parentPath(c) != tc.parent || basePath(c) != tc.base {
			t.Errorf("%q: clean %q parent %q base %q; want %q %q %q", tc.in, c, parentPath(c), basePath(c), tc.clean, tc.parent, tc.base)
		}
	}
	if joinPath(`C:\`, "Windows") != `C:\Windows` || joinPath(`C:\Windows`, "..") != `C:\` || joinPath("/etc", "..") != "/" {
		t.Error("joinPath")
	}
	if !isRoot(`C:\`) || isRoot(`C:\x`) || !isAbs(`c:/x`) || isAbs(`x\y`) {
		t.Error("isRoot/isAbs")
	}
}
