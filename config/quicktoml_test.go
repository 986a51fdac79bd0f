package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// quickTOMLCases are files quickTOML reads (true) or leaves to
// BurntSushi/toml (false): the subset's every form and its edges.
var quickTOMLCases = []struct {
	src   string
	quick bool
}{
	{"", true},
	{"# only a comment\n\n", true},
	{"[[guest]]\nname = \"g1\"\naddress = \"unix:/run/g1.sock\"\ntags = [\"a\", 'b',]\n\n[[guest]]\nname='g2'\n", true},
	{"[defaults]\r\nmetrics_interval = \"0\"\r\nexclusive = true # kept\r\nreadonly=false\r\nconcurrency = 64\r\n", true},
	{"a = -0\nb = 0\nc = 9223372036854775807\nd = -9223372036854775808\ne = []\nf = [ ]\ng = [\"\"]\n", true},
	{"x = \"tab\there\"\n\t[t]\n  k = 'a\\b'\n[[u]]\n[[u]]\n", true},
	{"x = 1\n[x]\n", false},        // a redefinition
	{"[t]\n[t]\n", false},          // a table twice
	{"[[t]]\n[t]\n", false},        // an array, then a table
	{"[t]\n[[t]]\n", false},        // a table, then an array
	{"a = 1\na = 2\n", false},      // a key twice
	{"a = \"x\\ty\"\n", false},     // an escape
	{"a = \"\"\"x\"\"\"\n", false}, // a multi-line string
	{"a = '''x'''\n", false},       // a multi-line literal
	{"a = [\n\"x\",\n]\n", false},  // a multi-line array
	{"a = [1, 2]\n", false},        // not strings
	{"a = 1.5\n", false},           // a float
	{"a = 1_000\n", false},         // an underscore
	{"a = 01\n", false},            // a leading zero
	{"a = +1\n", false},            // a sign toml allows, left to it
	{"a = 9223372036854775808\n", false},
	{"a = 1979-05-27\n", false}, // a date
	{"a = truex\n", false},      // not a boolean
	{"a = \"x\" y\n", false},    // trailing words
	{"a.b = 1\n", false},        // a dotted key
	{"\"a\" = 1\n", false},      // a quoted key
	{"[a.b]\n", false},          // a dotted table
	{"[ a ]\n", false},          // blanks in a header
	{"a = {b = 1}\n", false},    // an inline table
	{"a = \"é\"\n", false},      // beyond ASCII
	{"\ufeffa = 1\n", false},    // a byte order mark
	{"a = \"x\r\"\n", false},    // a lone carriage return
	{"a = \"x\x00\"\n", false},  // a control character
	{"a = \"x\x7f\"\n", false},  // DEL
	{"a = \"x\n", false},        // unterminated
	{"a =\n", false},            // no value
	{"= 1\n", false},            // no key
	{"a 1\n", false},            // no =
	{"[[guest]\n", false},       // a broken header
	{"[guest]] \n", false},      // a broken header
	{"[x] # c\n[[y]] # c\nk = 1 # c\n", true},
}

func TestQuickTOML(t *testing.T) {
	for _, tc := range quickTOMLCases {
		got, ok := quickTOML(tc.src)
		if ok != tc.quick {
			t.Errorf("quickTOML(%q) ok = %v, want %v", tc.src, ok, tc.quick)
		}
		if ok {
			checkQuickTOML(t, tc.src, got)
		}
	}
	// The simulator's fleet file is the case it is for.
	if got, ok := quickTOML(simFleet(20)); !ok {
		t.Errorf("quickTOML refused a fleet file as guestdeck sim writes it")
	} else {
		checkQuickTOML(t, simFleet(20), got)
	}
}

// checkQuickTOML fails unless toml.Decode decodes src to got.
func checkQuickTOML(t *testing.T, src string, got map[string]any) {
	t.Helper()
	var want map[string]any
	if _, err := toml.Decode(src, &want); err != nil {
		t.Fatalf("quickTOML read %q, which toml.Decode refuses: %v", src, err)
	}
	if want == nil {
		want = map[string]any{} // toml.Decode of nothing leaves the map unmade
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("quickTOML(%q) = %#v\ntoml.Decode: %#v", src, got, want)
	}
}

// FuzzQuickTOML: whatever quickTOML reads, toml.Decode reads to the same
// values; what toml.Decode refuses, quickTOML never reads.
func FuzzQuickTOML(f *testing.F) {
	for _, tc := range quickTOMLCases {
		f.Add(tc.src)
	}
	f.Add(simFleet(3))
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 1<<12 || strings.Count(src, "[") > 64 {
			return // toml's own cost, not the question
		}
		if got, ok := quickTOML(src); ok {
			checkQuickTOML(t, src, got)
		}
	})
}
