// Package themes turns colour palettes into the lipgloss styles the dashboard
// draws with. A Palette is plain data (built in, or loaded from a TOML file);
// Compile turns it once into a Styles value that the UI passes down, so there
// is no global style state and tests can render with colour switched off.
package themes

import (
	"errors"
	"fmt"
	"image/color"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/BurntSushi/toml"
	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/config/tomllimit"
)

// Palette names one colour per role. Colours are "#rrggbb", "#rgb" or an ANSI
// index "0".."255"; "" means the terminal's default.
type Palette struct {
	Name string `toml:"name"`

	// Guest states.
	Ready        string `toml:"ready"`
	Frozen       string `toml:"frozen"`
	Silent       string `toml:"silent"`
	Unreachable  string `toml:"unreachable"`
	Connecting   string `toml:"connecting"`
	ShuttingDown string `toml:"shutting-down"`
	Gone         string `toml:"gone"`

	// Chrome.
	Accent      string `toml:"accent"`
	Muted       string `toml:"muted"`
	Border      string `toml:"border"`
	Selection   string `toml:"selection"`    // background of the row under the cursor
	SelectionFg string `toml:"selection-fg"` // its foreground; "" keeps the row colour
	Mark        string `toml:"mark"`
	Error       string `toml:"error"`
	OK          string `toml:"ok"`
	Warn        string `toml:"warn"`
	Header      string `toml:"header"`
}

// Builtins lists the names Builtin accepts.
func Builtins() []string { return []string{"dark", "light", "high-contrast"} }

// Builtin returns a built-in palette by name.
func Builtin(name string) (Palette, error) {
	switch name {
	case "", "dark":
		return Palette{
			Name: "dark", Ready: "#5fd75f", Frozen: "#5fafff", Silent: "#d7af5f", Unreachable: "#ff5f5f",
			Connecting: "#8a8a8a", ShuttingDown: "#d787ff", Gone: "#626262",
			Accent: "#87afff", Muted: "#767676", Border: "#4e4e4e", Selection: "#303a4a", Mark: "#ffd75f",
			Error: "#ff5f5f", OK: "#5fd75f", Warn: "#ffaf5f", Header: "#d0d0d0",
		}, nil
	case "light":
		return Palette{
			Name: "light", Ready: "#007a00", Frozen: "#0055cc", Silent: "#8a6d00", Unreachable: "#c00000",
			Connecting: "#6c6c6c", ShuttingDown: "#8700af", Gone: "#9e9e9e",
			Accent: "#005fd7", Muted: "#808080", Border: "#bcbcbc", Selection: "#dde6f5", Mark: "#af5f00",
			Error: "#c00000", OK: "#007a00", Warn: "#af5f00", Header: "#262626",
		}, nil
	case "high-contrast":
		// Basic ANSI colours only: they survive every terminal and colour profile.
		return Palette{
			Name: "high-contrast", Ready: "10", Frozen: "14", Silent: "11", Unreachable: "9",
			Connecting: "15", ShuttingDown: "13", Gone: "7",
			Accent: "14", Muted: "7", Border: "15", Selection: "15", SelectionFg: "0", Mark: "11",
			Error: "9", OK: "10", Warn: "11", Header: "15",
		}, nil
	}
	return Palette{}, fmt.Errorf("theme %q: unknown (built-in themes: %s)", name, strings.Join(Builtins(), ", "))
}

// NameHelp says what a theme name may be, for errors and usage lines.
func NameHelp() string {
	return "built-in themes: " + strings.Join(Builtins(), ", ") + "; auto: dark or light after the terminal's background; or a theme file ending in .toml"
}

// Check reports whether name is a theme Resolve accepts: a built-in, auto,
// or a theme file that loads. Unlike Resolve it asks the terminal nothing,
// so a command without a screen (guestdeck status) checks the fleet file's
// theme as the dashboard does.
func Check(name string) error {
	_, err := palette(name, func() bool { return true })
	return err
}

// palette is the palette name stands for; isDark decides auto.
func palette(name string, isDark func() bool) (Palette, error) {
	if name == "auto" {
		name = "light"
		if isDark() {
			name = "dark"
		}
	}
	if strings.HasSuffix(name, ".toml") {
		return Load(name)
	}
	p, err := Builtin(name)
	if err != nil {
		return Palette{}, fmt.Errorf("theme %q: unknown (%s)", name, NameHelp())
	}
	return p, nil
}

// themeFile is the TOML layout of a user theme: an optional base palette and
// colours overriding it.
type themeFile struct {
	Name   string  `toml:"name"`
	Base   string  `toml:"base"`
	Colors Palette `toml:"colors"`
}

// Limits on a theme file, checked before it is parsed (see tomllimit): a
// theme is a few dozen lines, and a file that is not must not be able to
// take the machine's memory.
const (
	MaxFileBytes = 64 << 10
	MaxTables    = 1_000
)

var fileLimits = tomllimit.Limits{What: "theme file", MaxBytes: MaxFileBytes, MaxDepth: tomllimit.MaxDepth, MaxTables: MaxTables}

// Load reads a user theme from a TOML file:
//
//	name = "mine"
//	base = "dark"          # built-in palette supplying every colour not given
//	[colors]
//	ready = "#00ff00"
//	frozen = "39"
func Load(path string) (Palette, error) {
	data, err := tomllimit.ReadFile(path, MaxFileBytes)
	if err != nil {
		return Palette{}, fmt.Errorf("theme %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse is Load on data already read; path only names the source in errors.
// Data larger than MaxFileBytes, nested deeper than tomllimit.MaxDepth or
// with more than MaxTables tables is refused before it is parsed, with
// "theme PATH:LINE:COL: ..." naming the limit.
func Parse(path string, data []byte) (Palette, error) {
	if err := tomllimit.Check(data, fileLimits); err != nil {
		// The error reads "LINE:COL: message": path:LINE:COL, like a compiler's.
		return Palette{}, fmt.Errorf("theme %s:%w", path, err)
	}
	var f themeFile
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return Palette{}, themeError(config.SyntaxError(path, data, err))
	}
	at := config.Locate(string(data))
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		line, col := at.Key(und[0]...)
		return Palette{}, themeError(&config.Error{Path: path, Line: line, Col: col,
			Msg: fmt.Sprintf("unknown keys: %s (a theme file has name, base and a [colors] table of %s)",
				strings.Join(keys, ", "), strings.Join(Roles(), ", "))})
	}
	base, err := Builtin(f.Base)
	if err != nil {
		line, col := at.Value("base")
		return Palette{}, themeError(&config.Error{Path: path, Line: line, Col: col, Msg: "base: " + err.Error()})
	}
	// The file's own colours, each checked where it is written: the base's
	// are valid (TestBuiltinsValid).
	if err := f.Colors.validate(func(role string) (int, int) { return at.Value("colors", role) }, path); err != nil {
		return Palette{}, err
	}
	p := overlay(base, f.Colors)
	p.Name = f.Name
	if p.Name == "" {
		p.Name = path
	}
	return p, nil
}

// themeError prefixes a theme file's error with "theme ": the file is named
// by the error itself, with the line and column when known.
func themeError(e *config.Error) error { return fmt.Errorf("theme %w", e) }

// overlay returns base with every non-empty colour of over applied.
func overlay(base, over Palette) Palette {
	bv := reflect.ValueOf(&base).Elem()
	ov := reflect.ValueOf(over)
	for i := 0; i < bv.NumField(); i++ {
		if s := ov.Field(i).String(); s != "" {
			bv.Field(i).SetString(s)
		}
	}
	return base
}

// Validate reports every colour that is neither a hex colour nor an ANSI index.
func (p Palette) Validate() error { return p.validate(nil, "") }

// validate is Validate; with at, each error is placed in the theme file
// path at the line and column at gives for its role (0, 0: unknown).
func (p Palette) validate(at func(role string) (line, col int), path string) error {
	var errs []error
	var placed []*config.Error
	v := reflect.ValueOf(p)
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		name := t.Field(i).Tag.Get("toml")
		if name == "name" {
			continue
		}
		s := v.Field(i).String()
		if s == "" || validColor(s) {
			continue
		}
		msg := fmt.Sprintf("colour %s = %q: want #rrggbb, #rgb or 0..255", name, s)
		if at == nil {
			errs = append(errs, errors.New(msg))
			continue
		}
		line, col := at(name)
		placed = append(placed, &config.Error{Path: path, Line: line, Col: col, Msg: msg})
	}
	// In the file's order, as a reader fixes them.
	sort.SliceStable(placed, func(i, j int) bool {
		a, b := placed[i], placed[j]
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	for _, e := range placed {
		errs = append(errs, themeError(e))
	}
	return errors.Join(errs...)
}

func validColor(s string) bool {
	if strings.HasPrefix(s, "#") {
		h := s[1:]
		if len(h) != 3 && len(h) != 6 {
			return false
		}
		_, err := strconv.ParseUint(h, 16, 32)
		return err == nil
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 255
}

// Styles are the compiled styles the UI renders with.
type Styles struct {
	Name    string
	NoColor bool

	// States, indexed by the fleet's state names ("ready", "frozen", ...).
	States map[string]lipgloss.Style

	Accent, Muted, Border, Mark, Error, OK, Warn lipgloss.Style
	Header                                       lipgloss.Style // table header row
	Selection                                    lipgloss.Style // applied over the row under the cursor
	Title                                        lipgloss.Style // app title and pane titles
	TabActive                                    lipgloss.Style
	TabIdle                                      lipgloss.Style
	Status                                       lipgloss.Style // the status bar
	Dialog                                       lipgloss.Style // confirmation boxes
	Banner                                       lipgloss.Style // the "no fleet file" banner
	Disabled                                     lipgloss.Style // greyed-out guests and actions

	// Raw colours for components that take colours rather than styles
	// (the progress bar); nil when NoColor.
	AccentColor, OKColor color.Color
}

// State returns the style for a state name; unknown names render plain.
func (s Styles) State(name string) lipgloss.Style {
	if st, ok := s.States[name]; ok {
		return st
	}
	return lipgloss.NewStyle()
}

var stateNames = []string{"ready", "frozen", "silent", "held", "unreachable", "connecting", "shutting-down", "gone"}

func col(s string) color.Color {
	if s == "" {
		return nil
	}
	return lipgloss.Color(s)
}

func fg(s string) lipgloss.Style {
	st := lipgloss.NewStyle()
	if c := col(s); c != nil {
		st = st.Foreground(c)
	}
	return st
}

// Compile turns a palette into styles. Invalid colours render as the
// terminal default (Load and Validate report them).
func Compile(p Palette) Styles {
	s := Styles{Name: p.Name, States: map[string]lipgloss.Style{}}
	for _, n := range stateNames {
		var c string
		switch n {
		case "ready":
			c = p.Ready
		case "frozen":
			c = p.Frozen
		case "silent", "held":
			c = p.Silent
		case "unreachable":
			c = p.Unreachable
		case "connecting":
			c = p.Connecting
		case "shutting-down":
			c = p.ShuttingDown
		case "gone":
			c = p.Gone
		}
		s.States[n] = fg(c)
	}
	s.Accent = fg(p.Accent)
	s.Muted = fg(p.Muted)
	s.Border = fg(p.Border)
	s.Mark = fg(p.Mark).Bold(true)
	s.Error = fg(p.Error)
	s.OK = fg(p.OK)
	s.Warn = fg(p.Warn)
	s.Header = fg(p.Header).Bold(true)
	s.Selection = lipgloss.NewStyle()
	if c := col(p.Selection); c != nil {
		s.Selection = s.Selection.Background(c)
	}
	if c := col(p.SelectionFg); c != nil {
		s.Selection = s.Selection.Foreground(c)
	}
	s.Title = fg(p.Accent).Bold(true)
	s.TabActive = fg(p.Accent).Bold(true).Underline(true)
	s.TabIdle = fg(p.Muted)
	s.Status = fg(p.Muted)
	s.Dialog = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).Padding(0, 1)
	if c := col(p.Warn); c != nil {
		s.Dialog = s.Dialog.BorderForeground(c)
	}
	s.Banner = fg(p.Warn).Bold(true)
	s.Disabled = fg(p.Muted).Faint(true)
	s.AccentColor = col(p.Accent)
	s.OKColor = col(p.OK)
	return s
}

// Mono returns styles without colour for NO_COLOR: emphasis survives as bold,
// underline and reverse video so the cursor row and marks stay visible.
func Mono() Styles {
	plain := lipgloss.NewStyle()
	s := Styles{Name: "mono", NoColor: true, States: map[string]lipgloss.Style{}}
	for _, n := range stateNames {
		s.States[n] = plain
	}
	s.States["unreachable"] = plain.Bold(true)
	s.Accent, s.Muted, s.Border, s.OK, s.Warn = plain, plain, plain, plain, plain
	s.Error = plain.Bold(true)
	s.Mark = plain.Bold(true)
	s.Header = plain.Bold(true)
	s.Selection = plain.Reverse(true)
	s.Title = plain.Bold(true)
	s.TabActive = plain.Bold(true).Underline(true)
	s.TabIdle = plain
	s.Status = plain
	s.Dialog = plain.Border(lipgloss.RoundedBorder()).Padding(0, 1)
	s.Banner = plain.Bold(true)
	s.Disabled = plain.Faint(true)
	return s
}

// NoColor reports whether the environment asks for no colour (NO_COLOR set
// to anything non-empty, https://no-color.org).
func NoColor(getenv func(string) string) bool { return getenv("NO_COLOR") != "" }

// Resolve picks the styles to start with: NO_COLOR wins; otherwise name is a
// built-in theme, "auto" (dark or light after the terminal's background,
// asked on stdin/stdout before the dashboard starts), or, when it ends in
// ".toml", a theme file.
func Resolve(name string, getenv func(string) string) (Styles, error) {
	return resolve(name, getenv, func() bool { return lipgloss.HasDarkBackground(os.Stdin, os.Stdout) })
}

func resolve(name string, getenv func(string) string, isDark func() bool) (Styles, error) {
	if NoColor(getenv) {
		return Mono(), nil
	}
	p, err := palette(name, isDark)
	if err != nil {
		return Styles{}, err
	}
	return Compile(p), nil
}

// Roles lists the palette's colour keys as written in theme files, sorted.
func Roles() []string {
	t := reflect.TypeOf(Palette{})
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if n := t.Field(i).Tag.Get("toml"); n != "name" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
