package present

import (
	"runtime"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// hostileWidths are guest strings whose display width is disputed:
// grapheme clustering (how the dashboard measures, ansi.StringWidth) and
// wcwidth (how Bubble Tea's renderer and tmux, xterm or VTE count unless
// the terminal reports grapheme support, mode 2027) disagree on them.
var hostileWidths = map[string]string{
	"emoji modifiers":  strings.Repeat("a\U0001F3FB", 20),  // 1 cell per pair by clusters, 3 by wcwidth
	"variation sel 16": strings.Repeat("\u263a\ufe0f", 20), // 2 by clusters, 1 by wcwidth
	"lone flags":       strings.Repeat("\U0001F1FAx", 20),  // a regional indicator alone
	"spacing marks":    strings.Repeat("\u65e5\u0903", 20),
	"keycap":           strings.Repeat("1\ufe0f\u20e3", 20),
	"musical marks":    strings.Repeat("\U0001D165", 20),
	"after an escape":  strings.Repeat("\x1b\U0001F3FB", 20), // the escape's last digit takes the modifier
	"mixed to cancel":  "a\U0001F3FB\u263a\ufe0f\u263a\ufe0f" + strings.Repeat("x", 30),
}

// widthsAgree fails unless s is as wide under both width methods.
func widthsAgree(t *testing.T, what, s string) {
	t.Helper()
	if g, w := ansi.StringWidth(s), ansi.StringWidthWc(s); g != w {
		t.Errorf("%s: %q is %d cells by grapheme clusters, %d by wcwidth", what, s, g, w)
	}
}

// A guest string is drawn as wide as the dashboard measured it whichever
// way the terminal counts: what the two methods dispute is escaped, so a
// guest cannot shift the columns of its row (or, cut by the renderer at
// the screen's edge, hide them). Text people write is kept as it is.
func TestTextWidthMethodsAgree(t *testing.T) {
	for name, s := range hostileWidths {
		for _, w := range []int{0, 7, 18, 40} {
			got := Text(s, w)
			widthsAgree(t, name, got)
			if w > 0 && Width(got) > w {
				t.Errorf("%s: Text(_, %d) is %d cells: %q", name, w, Width(got), got)
			}
			if Clean(s) {
				t.Errorf("%s: Clean says Text shows it unchanged", name)
			}
			// Each line of a block and of a wrap too.
			for _, l := range strings.Split(Block(s+"\n"+s, 4), "\n") {
				widthsAgree(t, name+" (block)", l)
			}
			if w > 0 {
				for _, l := range Wrap(s, w, 4) {
					widthsAgree(t, name+" (wrap)", l)
				}
			}
		}
	}
	for _, s := range []string{"Fédora 日本語", "e\u0301t\u00e9", "\U0001F1FA\U0001F1F8 flag", "한국어", "Ελληνικά"} {
		if got := Text(s, 40); got != s {
			t.Errorf("Text(%q) = %q, want it unchanged", s, got)
		}
		if !Clean(s) {
			t.Errorf("Clean(%q) is false", s)
		}
		if got := Block(s, 4); got != s {
			t.Errorf("Block(%q) = %q, want it unchanged", s, got)
		}
	}
	if got, want := Text("\u263a\ufe0f ok", 0), `☺\ufe0f ok`; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
}

// Wrap keeps every line within the width for any guest text: hyphens,
// wide characters, spaces of every kind, escapes, combining marks. The
// text is all there when it fits.
func TestWrapHostileStaysInWidth(t *testing.T) {
	ins := map[string]string{
		"hyphen run":          strings.Repeat("-", 300),
		"hyphenated words":    strings.Repeat("a-", 150),
		"hyphen after a word": "error: " + strings.Repeat("x", 30) + strings.Repeat("-", 100),
		"wide":                strings.Repeat("日", 100),
		"wide, odd start":     "a" + strings.Repeat("日", 100),
		"ideographic spaces":  "a" + strings.Repeat("\u3000", 200) + "b",
		"ascii spaces":        "a" + strings.Repeat(" ", 200) + "b",
		"combining":           strings.Repeat("e\u0301", 100),
		"escapes":             strings.Repeat("\x1b[31m\n\t\u202e", 40),
		"newlines":            strings.Repeat("line\n", 40),
	}
	for name, s := range hostileWidths {
		ins[name] = s
	}
	for name, s := range ins {
		for _, w := range []int{20, 33, 80} {
			lines := Wrap(s, w, 8)
			if len(lines) > 8 {
				t.Errorf("%s at %d: %d lines", name, w, len(lines))
			}
			for _, l := range lines {
				if Width(l) > w {
					t.Errorf("%s at %d: line %q is %d cells", name, w, l, Width(l))
				}
				if !Clean(l) {
					t.Errorf("%s at %d: line %q is not clean", name, w, l)
				}
			}
			all := Text(s, 0)
			if Width(all) <= w*8/2 {
				noSpace := func(s string) string { return strings.Join(strings.Fields(s), "") }
				if got, want := noSpace(strings.Join(lines, "")), noSpace(all); got != want {
					t.Errorf("%s at %d: wrapped text lost some:\n got %q\nwant %q", name, w, got, want)
				}
			}
		}
	}
}

// A 16 MiB word (an agent error's desc is bounded only by its reply's
// limit) costs what the lines show: the lines stay in width and count,
// and what Wrap allocates does not grow with the input.
func TestWrapHugeWordBounded(t *testing.T) {
	const n = 16 << 20
	for name, s := range map[string]string{
		"letters":   strings.Repeat("x", n),
		"escapes":   strings.Repeat("\x1b", n),
		"wide":      strings.Repeat("日", n/3),
		"hyphens":   strings.Repeat("-", n),
		"modifiers": strings.Repeat("a\U0001F3FB", n/5),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		lines := Wrap(s, 80, 6)
		runtime.ReadMemStats(&after)
		if len(lines) != 6 || !strings.HasSuffix(lines[5], Ellipsis) {
			t.Errorf("%s: %d lines, the last %q", name, len(lines), lines[len(lines)-1])
		}
		for _, l := range lines {
			if Width(l) > 80 {
				t.Errorf("%s: line of %d cells", name, Width(l))
			}
		}
		// 6 lines of 80 cells read at most 16 bytes a cell: a few
		// copies of 8 KiB, nowhere near the 16 MiB given.
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("%s: Wrap allocated %d bytes for 6 lines of 80 cells", name, got)
		}
	}
}

// The event log's entry view wraps a guest's error and read data into up
// to 2000 lines: a megabyte of escape bytes (each escaped to 4 cells)
// costs at most what 16 bytes a cell of those lines do, not 16 bytes a
// cell of escaped text that is then cut away (it was 20 MiB a frame).
func TestWrapEscapesCostWhatIsShown(t *testing.T) {
	const w, lines = 187, 2000
	for name, s := range map[string]string{
		"escapes":       strings.Repeat("\x1b", 1<<20),
		"escapes, dash": strings.Repeat("\x1b-", 700<<10),
		"C1 controls":   strings.Repeat("\u009b", 1<<19),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got := Wrap(s, w, lines)
		runtime.ReadMemStats(&after)
		if len(got) != lines || !strings.HasSuffix(got[lines-1], Ellipsis) {
			t.Errorf("%s: %d lines", name, len(got))
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 16*w*lines {
			t.Errorf("%s: Wrap allocated %d bytes for %d lines of %d cells", name, n, lines, w)
		}
	}
}

func TestColumns(t *testing.T) {
	var b strings.Builder
	rows := [][]string{
		{"NAME", "OS", "ERROR"},
		{"a", "e" + strings.Repeat("\u0301", 9), ""},
		{"bb", "日本語", "boom"},
		{"c"},
	}
	if err := Columns(&b, rows, 2); err != nil {
		t.Fatal(err)
	}
	want := "NAME  OS      ERROR\n" +
		"a     e" + strings.Repeat("\u0301", 9) + "       \n" +
		"bb    日本語  boom\n" +
		"c\n"
	if b.String() != want {
		t.Errorf("Columns:\n%s\nwant:\n%s", b.String(), want)
	}
}
