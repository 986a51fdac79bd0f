package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/config/tomllimit"
)

// nestedArrays is the file of issue 7: 200 KB of "x = [[[[...]]]]", which
// took 24 GB before it was refused.
func nestedArrays() string {
	return "x = " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n"
}

// nestedTables is the same made of inline tables, quadratic in
// BurntSushi/toml itself.
func nestedTables() string {
	return "x = " + strings.Repeat("{a = ", 40_000) + "1" + strings.Repeat("}", 40_000) + "\n"
}

// simFleet is a fleet file of n guests as guestdeck sim writes it, with the
// longest socket paths a unix socket allows (107 bytes) and every tag sim
// gives.
func simFleet(n int) string {
	dir := "/" + strings.Repeat("d", 107-len("/sim-00001.sock")-1)
	var b strings.Builder
	fmt.Fprintf(&b, "# written by guestdeck sim: %d simulated guests, gone when it stops\n", n)
	for i := range n {
		name := fmt.Sprintf("sim-%05d", i+1)
		fmt.Fprintf(&b, "\n[[guest]]\nname = %q\naddress = %q\ntags = [\"sim\", \"frozen\", \"noexec\"]\n", name, "unix:"+dir+"/"+name+".sock")
	}
	return b.String()
}

func TestParseLimits(t *testing.T) {
	const (
		deep   = "tables and arrays nested more than 8 deep, the limit for a fleet file"
		large  = "fleet file is larger than 4 MiB, the limit; it goes on past here"
		tables = "more than 100,000 tables, the limit for a fleet file"
	)
	tests := []struct {
		name, src, want string
		limit           error
	}{
		{"nested arrays, 200 KB", nestedArrays(), "f.toml:1:13: " + deep, tomllimit.ErrTooDeep},
		{"nested inline tables", nestedTables(), "f.toml:1:45: " + deep, tomllimit.ErrTooDeep},
		{"nested in a guest", "[[guest]]\nname = \"g\"\naddress = \"unix:/g\"\ntags = [[[[[[[\"a\"]]]]]]]\n",
			"f.toml:4:14: " + deep, tomllimit.ErrTooDeep},
		{"dotted key", "[[guest]]\nname.a.b.c.d.e.f.g = 1\n", "f.toml:2:1: " + deep, tomllimit.ErrTooDeep},
		{"header", "[a.b.c.d.e.f.g.h.i]\n", "f.toml:1:1: " + deep, tomllimit.ErrTooDeep},
		{"too large", strings.Repeat("# 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc\n", 1<<16) + "x",
			"f.toml:65537:1: " + large, tomllimit.ErrTooLarge},
		{"too many tables", strings.Repeat("[[guest]]\n", MaxTables+1), "f.toml:100001:1: " + tables, tomllimit.ErrTooManyTables},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tt.src))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error %T %v is not *config.Error", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
			if !errors.Is(err, tt.limit) {
				t.Errorf("error does not unwrap to %v", tt.limit)
			}
		})
	}
}

// Brackets, braces and dots in strings and comments are text, not nesting:
// a fleet file full of them is read as usual.
func TestParseBracketsInStrings(t *testing.T) {
	deep := strings.Repeat("[", 50) + strings.Repeat("{", 50)
	src := "# " + deep + "\n" +
		"[[host]] # " + deep + "\n" +
		"name = \"h\"\n" +
		"uri = \"qemu:///system\"\n" +
		"identity = \"/k/" + deep + "\\\"" + deep + "\" # " + deep + "\n" +
		"known_hosts = '/k/" + deep + "'\n" +
		"tags = [ # " + deep + "\n  \"a\", # '\n]\n" +
		"[[host]]\n" +
		"name = \"h2\"\n" +
		"uri = \"qemu:///system\"\n" +
		"identity = \"\"\"/k/\n" + deep + "\\\"\"\"" + deep + "\"\"\"\n" +
		"known_hosts = '''/k/" + deep + "\n''" + deep + "'''\n" +
		"\"a.b.c.d.e.f.g.h.i\" = 1\n"
	_, err := Parse("f.toml", []byte(src))
	// The only problem is the quoted key on the last line; reaching it
	// means nothing before was refused.
	want := `f.toml:17:1: unknown key "a.b.c.d.e.f.g.h.i" in [[host]] "h2"; known keys: name, uri, include, exclude, tags, known_hosts, identity, insecure_ignore_host_key`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse = %v\nwant %s", err, want)
	}
	f, err := Parse("f.toml", []byte(strings.TrimSuffix(src, "\"a.b.c.d.e.f.g.h.i\" = 1\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Hosts[0].Identity, "/k/"+deep+"\""+deep; got != want {
		t.Errorf("identity = %q, want %q", got, want)
	}
	if got, want := f.Hosts[1].KnownHosts, "/k/"+deep+"\n''"+deep; got != want {
		t.Errorf("known_hosts = %q, want %q", got, want)
	}
}

// A big real fleet fits with room: 10,000 guests as guestdeck sim writes
// them, and as inline tables.
func TestParseLargeFleet(t *testing.T) {
	inline := func(n int) string {
		var b strings.Builder
		b.WriteString("guest = [\n")
		for i := range n {
			fmt.Fprintf(&b, "  {name = \"g%05d\", address = \"tcp:10.0.%d.%d:4444\", tags = [\"prod\", \"web\"]},\n", i, i/256, i%256)
		}
		b.WriteString("]\n")
		return b.String()
	}
	for name, src := range map[string]string{"sim": simFleet(10_000), "inline": inline(10_000)} {
		t.Run(name, func(t *testing.T) {
			if len(src) > MaxFileBytes/2 {
				t.Errorf("a 10,000-guest fleet file is %d bytes, more than half of MaxFileBytes (%d): too little room", len(src), MaxFileBytes)
			}
			f, err := Parse("f.toml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Guests) != 10_000 || f.Guests[9_999].Name == "" || len(f.Guests[9_999].Tags) == 0 {
				t.Fatalf("got %d guests, last %+v", len(f.Guests), f.Guests[len(f.Guests)-1])
			}
		})
	}
}

// Load reads no more than the limit and a byte of a file, however big.
func TestLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(path, []byte(strings.Repeat("\n", 5<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + ":4194305:1: fleet file is larger than 4 MiB, the limit; it goes on past here"
	if err == nil || err.Error() != want {
		t.Fatalf("Load = %v\nwant %s", err, want)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err := Load("/dev/zero")
		if !errors.Is(err, tomllimit.ErrTooLarge) {
			t.Errorf("Load(/dev/zero) = %v, want too large", err)
		}
	}
}

// locate records nothing deeper than maxTracked, so its cost per value is
// bounded however deep the file nests (before, every level of a nested
// array stored its whole path: quadratic).
func TestLocateBounded(t *testing.T) {
	for _, src := range []string{nestedArrays(), nestedTables(), "[" + strings.Repeat("a.", 50_000) + "a]\nx = 1\n"} {
		p := locate(src)
		if len(p.keys) > maxTracked || len(p.elems) > maxTracked {
			t.Errorf("locate(%.12q...) recorded %d keys and %d arrays, want at most %d each", src, len(p.keys), len(p.elems), maxTracked)
		}
		for k := range p.keys {
			if n := strings.Count(k, "\x00") + 1; n > maxTracked {
				t.Errorf("locate(%.12q...) recorded a path of %d segments", src, n)
			}
		}
	}
}

// Figures for README's Performance table: a refused file costs a scan of
// its first bytes; an accepted one what BurntSushi/toml and the decoder take.
func BenchmarkParseNestedArrays(b *testing.B)  { benchParse(b, nestedArrays(), refused) }
func BenchmarkParseNestedTables(b *testing.B)  { benchParse(b, nestedTables(), refused) }
func BenchmarkParseSimFleet10000(b *testing.B) { benchParse(b, simFleet(10_000), valid) }

// BenchmarkParseWorstUnderLimits is the costliest file found that passes
// the limits: as many 8-deep inline tables as MaxTables allows, then keys
// under an 8-deep header up to MaxFileBytes. (It is not a valid fleet file;
// the decoder says so after parsing it all.)
func BenchmarkParseWorstUnderLimits(b *testing.B) {
	var s strings.Builder
	s.WriteString("x = [\n")
	chain := strings.Repeat("{a=", 7) + "1" + strings.Repeat("}", 7) + ",\n"
	for range (MaxTables - 10) / 7 {
		s.WriteString(chain)
	}
	s.WriteString("]\n[" + strings.Repeat("a.", 7) + "a]\n")
	for i := 0; s.Len() < MaxFileBytes-16; i++ {
		fmt.Fprintf(&s, "k%d=1\n", i)
	}
	benchParse(b, s.String(), parsed)
}

// What a benchmark's file must do.
const (
	refused = iota // stopped by a limit
	parsed         // past the limits; invalid for the decoder
	valid          // a good fleet file
)

func benchParse(b *testing.B, src string, want int) {
	data := []byte(src)
	_, err := Parse("f.toml", data)
	var le *tomllimit.Error
	limited := errors.As(err, &le)
	if got := map[bool]int{true: refused, false: parsed}[limited]; err == nil && want != valid || err != nil && got != want {
		b.Fatalf("Parse = %v, not what the benchmark is about", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Parse("f.toml", data)
	}
}
