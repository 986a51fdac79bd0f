package browser

import (
	"strings"
	"testing"

	"charm.land/lipgloss/v2"

	"github.com/guestdeck/guestdeck/fleet"
)

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {300 << 10, "300 KiB"},
		{4 << 20, "4.0 MiB"}, {64 << 20, "64 MiB"}, {3 << 30, "3.0 GiB"},
	} {
		if got := formatSize(tc.n); got != tc.want {
			t.Errorf("formatSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestIsBinary(t *testing.T) {
	long := strings.Repeat("x", 64<<10-1) + "é" // é cut in half by the first chunk
	for _, tc := range []struct {
		name string
		data string
		want bool
	}{
		{"empty", "", false},
		{"ascii", "hello\n", false},
		{"utf8", "héllo wörld ✓\n", false},
		{"nul", "hello\x00world", true},
		{"latin1", "caf\xe9 au lait", true},
		{"cut at chunk end", long + "more", false},
		{"cut at file end", "abc\xc3", false},
		{"ELF magic alone: valid UTF-8, no text", "\x7fELF", true},
		{"controls past one in ten", "ab\x01cd\x02ef\x03", true},
		{"a colour escape in a line of text", "ok \x1b[32mgreen\x1b[0m and more words follow\n", false},
		{"tabs, CRLF and form feeds are text", "a\tb\r\n\fc\r\n", false},
	} {
		if got := isBinary([]byte(tc.data)); got != tc.want {
			t.Errorf("%s: isBinary = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHexDump(t *testing.T) {
	got := hexDump([]byte("\x00ABCDEFGHIJKLMNOP\x7f"))
	want := "00000000  00 41 42 43 44 45 46 47  48 49 4a 4b 4c 4d 4e 4f  |.ABCDEFGHIJKLMNO|\n" +
		"00000010  50 7f                                             |P.|"
	if got != want {
		t.Errorf("hexDump:\n%s\nwant:\n%s", got, want)
	}
}

// Whatever the size and state, the browser fills exactly its area.
func TestViewFitsSize(t *testing.T) {
	f, _ := simFleet(t, fleet.Options{}, guestConfig("g"))
	h := newHarness(t, f, "g", monoOpts())
	h.press("down", "enter")
	check := func(state string) {
		t.Helper()
		for _, sz := range [][2]int{{80, 20}, {30, 6}, {45, 9}, {200, 50}, {10, 3}} {
			h.m.SetSize(sz[0], sz[1])
			lines := strings.Split(h.m.View(), "\n")
			if sz[0] >= minWidth && sz[1] >= minHeight && len(lines) != sz[1] {
				t.Errorf("%s at %dx%d: %d lines", state, sz[0], sz[1], len(lines))
			}
			for i, l := range lines {
				if w := lipgloss.Width(l); w > sz[0] {
					t.Errorf("%s at %dx%d: line %d is %d wide: %q", state, sz[0], sz[1], i, w, l)
				}
			}
		}
		h.m.SetSize(80, 20)
	}
	check("listing")
	h.press("o")
	check("prompt")
	h.prompt("/data/long.log")
	check("text")
	h.press("/")
	h.typeText("fleet")
	h.press("enter")
	check("search")
	h.press("esc")
	h.press("o")
	h.prompt("/data/blob.bin")
	check("hex")
	h.press("esc")
	_ = h.m.startDownload(downloadPlan{remote: "/data/big.bin", size: 3 << 20}, "./a-rather-long-local-file-name.bin", false)
	h.m.Update(jobProgressMsg{id: h.m.job.id, done: 1 << 20})
	check("progress")
}
