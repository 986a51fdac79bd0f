package present

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"clean ascii", "Debian GNU/Linux 12 (bookworm)", 40, "Debian GNU/Linux 12 (bookworm)"},
		{"empty", "", 10, ""},
		{"clean accents and CJK", "Fédora 日本", 20, "Fédora 日本"},
		{"backslash kept", `WIN-SIM\Administrator`, 40, `WIN-SIM\Administrator`},
		{"literal U+FFFD kept", "a\ufffdb", 10, "a\ufffdb"},
		{"ESC alone", "a\x1bb", 20, `a\x1bb`},
		{"OSC 52 clipboard", "web\x1b]52;c;cm0gLXJmIH4=\x07", 60, `web\x1b]52;c;cm0gLXJmIH4=\x07`},
		{"OSC 52 with ST", "\x1b]52;c;cm0gLXJmIH4=\x1b\\", 60, `\x1b]52;c;cm0gLXJmIH4=\x1b\`},
		{"OSC 0 title", "\x1b]0;pwned\x07host", 60, `\x1b]0;pwned\x07host`},
		{"CSI clear screen", "\x1b[2J\x1b[H", 60, `\x1b[2J\x1b[H`},
		{"CSI SGR", "\x1b[31mred", 60, `\x1b[31mred`},
		{"8-bit C1 CSI byte (not UTF-8)", "a\x9b2Jb", 60, `a\x9b2Jb`},
		{"C1 CSI as UTF-8 U+009B", "a\u009b2Jb", 60, `a\u009b2Jb`},
		{"C1 OSC U+009D", "\u009d0;t\u009c", 60, `\u009d0;t\u009c`},
		{"NEL U+0085", "a\u0085b", 60, `a\u0085b`},
		{"newline tab CR", "a\nb\tc\rd", 60, `a\nb\tc\rd`},
		{"other C0", "\x00\x07\x08\x0b\x0c\x1f", 60, `\x00\x07\x08\x0b\x0c\x1f`},
		{"DEL", "a\x7fb", 60, `a\x7fb`},
		{"bidi RLO", "evil\u202etxt.exe", 60, `evil\u202etxt.exe`},
		{"bidi embeddings and PDF", "\u202a\u202b\u202c\u202d", 60, `\u202a\u202b\u202c\u202d`},
		{"bidi isolates", "\u2066\u2067\u2068\u2069", 60, `\u2066\u2067\u2068\u2069`},
		{"bidi marks LRM RLM ALM", "\u200e\u200f\u061c", 60, `\u200e\u200f\u061c`},
		{"zero-width joiner in a name", "adm\u200din", 60, `adm\u200din`},
		{"zero-width space and non-joiner", "a\u200bb\u200cc", 60, `a\u200bb\u200cc`},
		{"word joiner", "a\u2060b", 60, `a\u2060b`},
		{"BOM", "\ufeffname", 60, `\ufeffname`},
		{"soft hyphen", "ad\u00admin", 60, `ad\u00admin`},
		{"tag characters (ASCII smuggling)", "ok\U000e0072\U000e006d", 60, `ok\U000e0072\U000e006d`},
		{"line and paragraph separators", "a\u2028b\u2029c", 60, `a\u2028b\u2029c`},
		{"non-characters", "a\ufffeb\uffffc\ufdd0d\U0001fffe", 60, `a\ufffeb\uffffc\ufdd0d\U0001fffe`},
		{"Hangul filler", "a\u3164b", 60, `a\u3164b`},
		{"combining grapheme joiner", "a\u034fb", 60, `a\u034fb`},
		{"invalid UTF-8", "ok\xff\xfe\xc3", 60, `ok\xff\xfe\xc3`},
		{"truncated rune", "日\xe6\x97", 60, `日\xe6\x97`},
		{"no cap", strings.Repeat("a", 300), 0, strings.Repeat("a", 300)},
		{"no cap escaped", strings.Repeat("\x1b", 100), 0, strings.Repeat(`\x1b`, 100)},
		{"ascii at cap", "abcde", 5, "abcde"},
		{"ascii one over cap", "abcdef", 5, "abcd…"},
		{"ascii cap 1", "abc", 1, "…"},
		{"escape cut by cap", "\x1b]0;title", 8, `\x1b]0;…`},
		{"wide CJK cut by cells", "日本語テキスト", 5, "日本…"},
		{"wide CJK exact", "日本語", 6, "日本語"},
		{"wide CJK one short", "日本語", 5, "日本…"},
		{"wide char does not straddle the cap", "a日本", 4, "a日…"},
		{"emoji counts two", "😀😀😀", 4, "😀…"},
		{"combining mark is one cell", "e\u0301e\u0301e\u0301", 3, "e\u0301e\u0301e\u0301"},
		{"ascii then escape then cap", "abc\x1bdef", 6, `abc\x…`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Text(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Text(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if tt.max > 0 {
				if w := ansi.StringWidth(got); w > tt.max {
					t.Errorf("Text(%q, %d) is %d cells wide", tt.in, tt.max, w)
				}
			}
			assertSafe(t, got, false)
			// Escaping is idempotent: escaped text is clean.
			if again := Text(got, 0); again != got {
				t.Errorf("Text(Text(s)) = %q, want %q", again, got)
			}
		})
	}
}

// assertSafe fails when s holds anything a terminal acts on or hides;
// newlines are allowed when multiline.
func assertSafe(t *testing.T, s string, multiline bool) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("not UTF-8: %q", s)
	}
	for _, r := range s {
		if r == '\n' && multiline {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) ||
			(r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c || r == 0x200d || r == 0xfeff {
			t.Errorf("unsafe rune %U in %q", r, s)
		}
	}
}

// A huge string costs what the width asks for: the cut happens after
// reading about 16 bytes per cell, whatever follows.
func TestTextHugeInput(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("x", 85<<20),
		"Fedora " + strings.Repeat("日", 30<<20),
		strings.Repeat("\x1b]0;t\x07", 14<<20),
		"a" + strings.Repeat("\u0301", 40<<20), // one cell of combining marks
	} {
		got := Text(s, 40)
		if w := ansi.StringWidth(got); w > 40 || len(got) > 40*bytesPerCell+bytesPerCell+8 {
			t.Errorf("Text(%d bytes, 40) is %d cells, %d bytes", len(s), w, len(got))
		}
		if !strings.HasSuffix(got, Ellipsis) {
			t.Errorf("Text(%d bytes, 40) = %q, want it to end in an ellipsis", len(s), got)
		}
		assertSafe(t, got, false)
	}
}

func TestTextCleanDoesNotAllocate(t *testing.T) {
	for _, s := range []string{"Debian GNU/Linux 12 (bookworm)", "Fédora 日本", ""} {
		if n := testing.AllocsPerRun(100, func() { _ = Text(s, 40) }); n != 0 {
			t.Errorf("Text(%q) allocates %v times", s, n)
		}
	}
}

func TestBlock(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"clean", "line one\nline two\n", "line one\nline two\n"},
		{"tabs expand", "a\tb\n\tc", "a       b\n        c"},
		{"CRLF", "a\r\nb\r\n", "a\nb\n"},
		{"lone CR", "a\rb", `a\rb`},
		{"escapes inside lines", "ok\n\x1b]52;c;eA==\x07\n\u202eevil", "ok\n" + `\x1b]52;c;eA==\x07` + "\n" + `\u202eevil`},
		{"C1 and invalid", "\u009b31m\xff", `\u009b31m\xff`},
		{"clean non-ASCII", "héllo\n日本\n", "héllo\n日本\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Block(tt.in, 8)
			if got != tt.want {
				t.Errorf("Block(%q) = %q, want %q", tt.in, got, tt.want)
			}
			assertSafe(t, got, true)
		})
	}
	if got := Block("a\tb", 0); got != `a\tb` {
		t.Errorf("Block without tab stops = %q", got)
	}
}

func TestClean(t *testing.T) {
	for s, want := range map[string]bool{"/etc/hostname": true, "日本": true, "a\x1b": false, "a\u202e": false, "\xff": false} {
		if got := Clean(s); got != want {
			t.Errorf("Clean(%q) = %v", s, got)
		}
	}
}

func TestSafeJSON(t *testing.T) {
	in := map[string]string{
		"os":   "Evil\u202eOS\u009b2J\u200d\x7f\U000e0041",
		"host": "\x1b]52;c;cm0gLXJmIH4=\x07",
		"ok":   "Fédora 日本 \"quoted\" \\",
	}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	safe := SafeJSON(raw)
	assertSafe(t, string(safe), false)
	var back map[string]string
	if err := json.Unmarshal(safe, &back); err != nil {
		t.Fatalf("SafeJSON output is not JSON: %v\n%s", err, safe)
	}
	for k, v := range in {
		if back[k] != v {
			t.Errorf("%s decodes to %q, want the exact %q", k, back[k], v)
		}
	}
	clean := []byte(`{"a":"b"}`)
	if got := SafeJSON(clean); &got[0] != &clean[0] {
		t.Error("clean JSON was copied")
	}
}

func TestCellAndPad(t *testing.T) {
	tests := []struct {
		in    string
		w     int
		right bool
		want  string
	}{
		{"abc", 5, false, "abc  "},
		{"abc", 5, true, "  abc"},
		{"abcdef", 4, false, "abc…"},
		{"a\x1bb", 8, false, `a\x1bb  `},
		{"日本語", 5, false, "日本…"},
		{"x", 0, false, ""},
	}
	for _, tt := range tests {
		if got := Cell(tt.in, tt.w, tt.right); got != tt.want {
			t.Errorf("Cell(%q, %d, %v) = %q, want %q", tt.in, tt.w, tt.right, got, tt.want)
		}
	}
}

func TestSizeAndPlural(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 12 << 10: "12 KiB", 2 << 30: "2.0 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	if Plural(1, "guest") != "1 guest" || Plural(3, "guest") != "3 guests" || Plural(0, "guest") != "0 guests" ||
		Plural(1, "entry") != "1 entry" || Plural(2, "entry") != "2 entries" || Plural(2, "key") != "2 keys" {
		t.Error("Plural")
	}
}

func BenchmarkText(b *testing.B) {
	for _, bc := range []struct {
		name string
		s    string
	}{
		{"clean-ascii", "Debian GNU/Linux 12 (bookworm)"},
		{"clean-utf8", "Fédora Linux 41 (Édition Serveur) 日本"},
		{"escapes", "web\x1b]52;c;cm0gLXJmIH4=\x07\u202eevil"},
		{"ascii-85MB", strings.Repeat("x", 85<<20)},
		{"escapes-85MB", strings.Repeat("\x1b[2J", 21<<20)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Text(bc.s, 40)
			}
		})
	}
}
