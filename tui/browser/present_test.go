package browser

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// ownSGR is the styling the browser writes itself (bold, reverse). sim.Hostile
// holds no SGR sequence, so removing these cannot hide what a guest sent.
var ownSGR = regexp.MustCompile("\x1b\\[[0-9;]*m")

// screenSafe fails when a frame holds anything beyond the browser's own SGR
// that could drive or deceive a terminal.
func screenSafe(t *testing.T, what, frame string) {
	t.Helper()
	frame = ownSGR.ReplaceAllString(frame, "")
	if !utf8.ValidString(frame) {
		t.Errorf("%s: not UTF-8", what)
	}
	for i, r := range frame {
		bad := (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f ||
			r == 0x061c || r == 0x200b || r == 0x200c || r == 0x200d || r == 0xfeff
		if bad {
			lo, hi := max(i-60, 0), min(i+40, len(frame))
			t.Errorf("%s: %U at byte %d: %q", what, r, i, frame[lo:hi])
			return
		}
	}
}

// A guest whose file names, file contents and error texts carry escapes:
// the listing, the title, the text viewer, the prompts and the message line
// show them escaped, never raw.
func TestHostileGuestBrowser(t *testing.T) {
	const h = sim.Hostile
	esc := `\x1b]0;OWNED\x07`
	bad := sim.HostileConfig("evil2")
	bad.Fail = map[string]string{"guest-file-open": "Permission trouble" + h}
	f, _ := simFleet(t, fleet.Options{}, sim.HostileConfig("evil"), bad)

	hr := newHarness(t, f, "evil", monoOpts())
	hr.m.SetSize(160, 30)
	check := func(what string, want ...string) {
		t.Helper()
		frame := hr.m.View()
		screenSafe(t, what, frame)
		for _, w := range want {
			if !strings.Contains(frame, w) {
				t.Errorf("%s: frame lacks %q:\n%s", what, w, frame)
			}
		}
	}
	hr.press("o")
	hr.prompt("/tmp")
	check("listing", "evil"+esc)
	if hr.cursorName() != ".." {
		t.Fatalf("cursor on %q", hr.cursorName())
	}
	hr.press("down")
	if hr.cursorName() != "evil"+h {
		t.Fatalf("cursor on %q, want the hostile file", hr.cursorName())
	}
	hr.press("enter")
	if hr.m.view == nil {
		t.Fatalf("the hostile file did not open: %q", hr.m.msg)
	}
	check("viewer", "Files · evil · /tmp/evil"+esc, "line one", esc+`\x1b]52;c;cm0gLXJmIH4=\x07`, "line three")
	// Downloading offers no local name made of the guest's invisible characters.
	hr.press("d")
	if hr.m.prompt != promptSaveTo || hr.m.input.Value() != "" {
		t.Errorf("save-to prompt %v prefilled with %q", hr.m.prompt, hr.m.input.Value())
	}
	check("save-to prompt")
	hr.press("esc")

	// An agent's error text, escaped on the message line.
	hr2 := newHarness(t, f, "evil2", monoOpts())
	hr2.m.SetSize(160, 30)
	hr2.press("o")
	hr2.prompt("/etc/os-release")
	frame := hr2.m.View()
	screenSafe(t, "error line", frame)
	if !strings.Contains(frame, "open /etc/os-release: Permission trouble"+esc) {
		t.Errorf("error line lacks the escaped agent text:\n%s", frame)
	}
}

// TestDownloadIntoDirectoryGuestName: a download into a local directory is
// named after the guest's file, and only when that is a plain name. A
// listing's "x\.." (a Linux name, a Windows path's "..") or a name with
// escapes is refused with a message saying to name the file, and the
// directory is left as it was; named explicitly, the file downloads.
func TestDownloadIntoDirectoryGuestName(t *testing.T) {
	c := sim.HostileConfig("evil")
	c.Files[`/tmp/x\..`] = sim.File{Data: "dot dot\n"}
	f, _ := simFleet(t, fleet.Options{}, c)
	local := t.TempDir()
	for _, name := range []string{`x\..`, "evil" + sim.Hostile} {
		hr := newHarness(t, f, "evil", monoOpts())
		hr.m.SetSize(160, 30)
		hr.press("o")
		hr.prompt("/tmp/")
		for hr.cursorName() != name {
			before := hr.m.cursor
			hr.press("down")
			if hr.m.cursor == before {
				t.Fatalf("no entry %q in the listing", name)
			}
		}
		hr.press("d")
		if v := hr.m.input.Value(); hr.m.prompt != promptSaveTo || v != "" {
			t.Errorf("%q: save-to prompt %v prefilled with %q", name, hr.m.prompt, v)
		}
		hr.prompt(local)
		if hr.m.confirm != nil {
			t.Errorf("%q: asked %q instead of refusing", name, hr.m.confirm.question)
			hr.press("n")
		}
		hr.wantMsg("name the local file")
		screenSafe(t, "refusal", hr.m.View())
		if ents, _ := os.ReadDir(local); len(ents) != 0 {
			t.Fatalf("%q: the download wrote %q", name, ents[0].Name())
		}
		hr.press("d")
		hr.prompt(filepath.Join(local, "named"))
		hr.wantMsg("downloaded")
		screenSafe(t, "downloaded", hr.m.View())
		if _, err := os.Stat(filepath.Join(local, "named")); err != nil {
			t.Errorf("%q: named download: %v", name, err)
		}
		os.Remove(filepath.Join(local, "named"))
	}
}
