package themes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/guestdeck/guestdeck/config/tomllimit"
)

func TestBuiltinsValid(t *testing.T) {
	for _, name := range Builtins() {
		p, err := Builtin(name)
		if err != nil {
			t.Fatalf("Builtin(%q): %v", name, err)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("Builtin(%q) invalid: %v", name, err)
		}
		if p.Ready == "" || p.Unreachable == "" || p.Accent == "" {
			t.Errorf("Builtin(%q) leaves roles empty: %+v", name, p)
		}
		s := Compile(p)
		for _, st := range []string{"ready", "frozen", "silent", "unreachable", "connecting", "shutting-down", "gone"} {
			if _, ok := s.States[st]; !ok {
				t.Errorf("%s: no style for state %s", name, st)
			}
		}
		if out := s.State("ready").Render("x"); !strings.Contains(out, "\x1b[") {
			t.Errorf("%s: ready renders without colour: %q", name, out)
		}
	}
	if _, err := Builtin("neon"); err == nil {
		t.Error("Builtin(neon) succeeded")
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name, data string
		wantErr    string
		check      func(t *testing.T, p Palette)
	}{
		{name: "override", data: "name = \"mine\"\nbase = \"light\"\n[colors]\nready = \"#00ff00\"\nfrozen = \"39\"\n",
			check: func(t *testing.T, p Palette) {
				light, _ := Builtin("light")
				if p.Name != "mine" || p.Ready != "#00ff00" || p.Frozen != "39" || p.Gone != light.Gone {
					t.Errorf("got %+v", p)
				}
			}},
		{name: "default base", data: "[colors]\nmark = \"#abc\"\n",
			check: func(t *testing.T, p Palette) {
				dark, _ := Builtin("dark")
				if p.Mark != "#abc" || p.Ready != dark.Ready {
					t.Errorf("got %+v", p)
				}
			}},
		{name: "bad colour", data: "[colors]\nready = \"green\"\n", wantErr: "colour ready"},
		{name: "bad index", data: "[colors]\nwarn = \"300\"\n", wantErr: "colour warn"},
		{name: "unknown key", data: "[colors]\nreddy = \"#fff\"\n", wantErr: "unknown keys: colors.reddy (a theme file has name, base and a [colors] table of accent, border, connecting, "},
		{name: "bad base", data: "base = \"neon\"\n", wantErr: "unknown"},
		{name: "syntax", data: "[colors\n", wantErr: "theme"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".toml")
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Error("Load(missing) succeeded")
	}
}

func TestNoColor(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	s, err := Resolve("dark", env(map[string]string{"NO_COLOR": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if !s.NoColor {
		t.Fatal("NO_COLOR ignored")
	}
	for name, st := range s.States {
		out := st.Render("x")
		if strings.Contains(out, "38;") || strings.Contains(out, "48;") {
			t.Errorf("state %s has colour under NO_COLOR: %q", name, out)
		}
	}
	sel := s.Selection.Render("row")
	if !strings.Contains(sel, "\x1b[7m") || ansi.Strip(sel) != "row" {
		t.Errorf("selection under NO_COLOR is not reverse video: %q", sel)
	}
	s, err = Resolve("light", env(nil))
	if err != nil || s.NoColor || s.Name != "light" {
		t.Errorf("Resolve(light) = %v, %v", s.Name, err)
	}
	for _, dark := range []bool{true, false} {
		s, err := resolve("auto", env(nil), func() bool { return dark })
		if want := map[bool]string{true: "dark", false: "light"}[dark]; err != nil || s.Name != want {
			t.Errorf("auto with dark=%v = %q, %v", dark, s.Name, err)
		}
	}
	if _, err := Resolve("nope", env(nil)); err == nil {
		t.Error("Resolve(nope) succeeded")
	}
}

func TestRoles(t *testing.T) {
	r := Roles()
	if len(r) != 17 || r[0] != "accent" {
		t.Errorf("Roles() = %v", r)
	}
}

// nestedTheme is a theme file of nested arrays as deep as fits under the
// size limit: without the limits, nesting is quadratic in the parser.
func nestedTheme() string {
	n := (MaxFileBytes - 64) / 2
	return "name = \"x\"\nx = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"
}

func TestLoadLimits(t *testing.T) {
	const deep = "tables and arrays nested more than 8 deep, the limit for a theme file"
	tests := []struct {
		name, data, want string // want follows "theme PATH:"
	}{
		{"nested arrays", nestedTheme(), "2:13: " + deep},
		{"nested inline tables", "[colors]\nready = " + strings.Repeat("{a = ", 10_000) + "1" + strings.Repeat("}", 10_000) + "\n", "2:44: " + deep},
		{"too large", "[colors]\n" + strings.Repeat("# padding\n", MaxFileBytes/10) + "ready = \"#fff\"\n",
			"6554:8: theme file is larger than 64 KiB, the limit; it goes on past here"},
		{"too many tables", "x = [" + strings.Repeat("{},", MaxTables+1) + "]\n", "1:3006: more than 1,000 tables, the limit for a theme file"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".toml")
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if want := "theme " + path + ":" + tt.want; err == nil || err.Error() != want {
				t.Fatalf("Load = %v\nwant %s", err, want)
			}
			var le *tomllimit.Error
			if !errors.As(err, &le) {
				t.Errorf("error %v does not unwrap to *tomllimit.Error", err)
			}
		})
	}
}

// Brackets in strings and comments are not nesting: this theme loads.
func TestLoadBracketsInStrings(t *testing.T) {
	deep := strings.Repeat("[", 20) + strings.Repeat("{", 20)
	data := "# " + deep + "\nname = \"" + deep + "\" # " + deep + "\nbase = 'light'\n[colors] # " + deep + "\nready = \"#00ff00\"\n"
	p, err := Parse("t.toml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != deep || p.Ready != "#00ff00" {
		t.Errorf("got name %q ready %q", p.Name, p.Ready)
	}
}

func BenchmarkLoadNestedTheme(b *testing.B) {
	path := filepath.Join(b.TempDir(), "t.toml")
	if err := os.WriteFile(path, []byte(nestedTheme()), 0o600); err != nil {
		b.Fatal(err)
	}
	if _, err := Load(path); !errors.Is(err, tomllimit.ErrTooDeep) {
		b.Fatalf("Load = %v, want refused as too deep", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Load(path)
	}
}

// TestCheck: every name Resolve takes passes, auto included, without asking
// a terminal; anything else fails naming the choices.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("base = \"light\"\n"), 0o600)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("colours = 1\n"), 0o600)
	tests := []struct{ name, want string }{
		{"dark", ""}, {"light", ""}, {"high-contrast", ""}, {"auto", ""}, {good, ""},
		{"solarized", `theme "solarized": unknown (built-in themes: dark, light, high-contrast; auto: dark or light after the terminal's background; or a theme file ending in .toml)`},
		{bad, "unknown keys: colours"},
		{filepath.Join(dir, "missing.toml"), "missing.toml"},
	}
	for _, tt := range tests {
		err := Check(tt.name)
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%q) = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// A theme file's errors name the line and column, as the fleet file's do:
// an unknown key where the key is, a bad colour or base where its value
// is, a syntax error where the decoder stopped; several bad colours each
// at its own place, in the file's order.
func TestLoadErrorPositions(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		want       []string
	}{
		{"unknown key", "name = \"x\"\n[colors]\nready = \"#fff\"\n  reddy = \"#fff\"\n", []string{":4:3: unknown keys: colors.reddy"}},
		{"bad colours", "[colors]\nwarn = \"300\"\nborder = \"#12345g\"\n", []string{":2:8: colour warn = \"300\"", ":3:10: colour border = \"#12345g\""}},
		{"bad base", "name = \"x\"\nbase = \"neon\"\n", []string{":2:8: base: theme \"neon\": unknown"}},
		{"syntax", "name = \"x\n", []string{":1:10: syntax error: "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("error %q: %d lines, want %d", err, len(lines), len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], "theme t.toml"+w) {
					t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], "theme t.toml"+w)
				}
			}
		})
	}
}
