package tomllimit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

var small = Limits{What: "test file", MaxBytes: 1 << 20, MaxDepth: 3, MaxTables: 1 << 20}

func TestCheck(t *testing.T) {
	deep := "tables and arrays nested more than 3 deep, the limit for a test file"
	tests := []struct {
		name, src string
		want      string // "" for accepted; else "line:col: message"
	}{
		{"empty", "", ""},
		{"arrays at the limit", "x = [[[1]]]\n", ""},
		{"arrays past the limit", "x = [[[[1]]]]\n", "1:8: " + deep},
		{"arrays over lines", "x = [\n  [\n    [\n      [1],\n    ],\n  ],\n]\n", "4:7: " + deep},
		{"siblings do not add up", "x = [[[1]], [[2]], [[3]]]\ny = [[[4]]]\n", ""},
		{"inline tables past the limit", "x = {a = {b = {c = {d = 1}}}}\n", "1:20: " + deep},
		{"inline tables at the limit", "x = {a = {b = {c = 1}}}\n", ""},
		{"arrays and inline tables mixed", "x = [{a = [{b = 1}]}]\n", "1:12: " + deep},
		{"dotted key in inline table", "x = {a.b.c.d = 1}\n", "1:6: " + deep},
		{"dotted key past the limit", "a.b.c.d.e = 1\n", "1:1: " + deep},
		{"dotted key at the limit", "a.b.c.d = 1\nd = 1.5\n", ""},
		{"dotted key under a header", "[t]\n  a.b.c.d = 1\n", "2:3: " + deep},
		{"dotted key and array", "a.b = [[[1]]]\n", "1:9: " + deep},
		{"header past the limit", "[a.b.c.d]\n", "1:1: " + deep},
		{"header at the limit", "[a.b.c]\nx = 1\n", ""},
		{"array of tables counts two", "[[a.b]]\nx = 1\n[[a.b.c]]\n", "3:1: " + deep},
		{"header resets depth", "[a.b.c]\n[d]\nx = [[1]]\n", ""},
		{"quoted dots in keys do not count", "\"a.b.c.d\" = 1\n'e.f.g.h' = 1\n[\"i.j.k.l\"]\n", ""},
		{"brackets in basic strings", "x = \"[[[[{{{{\"\ny = [\"]]]]\", \"[[[[\", \"\\\"[[[[\"]\n", ""},
		{"brackets in literal strings", "x = '[[[[{{{{'\ny = ['[[[[', '\\']\n", ""},
		{"brackets in multi-line basic", "x = \"\"\"\n[[[[\n\\\"\"\"[[[[\n\"\"[[[[\"\"\"\"\"\ny = [[[1]]]\n", ""},
		{"brackets in multi-line literal", "x = '''\n[[[[ \" '' [[[['''''\ny = [[[1]]]\n", ""},
		{"brackets in comments", "# [[[[\nx = [ # [[[[ it's\n  1, # \"\n] # {{{{\n", ""},
		{"comment and string hide nothing after them", "x = \"#\" # \"\ny = [[[[1]]]]\n", "2:8: " + deep},
		{"position after multi-line string", "x = \"\"\"\na\nb\"\"\"\ny = [[[[1]]]]\n", "4:8: " + deep},
		{"backslash line end in multi-line basic", "x = \"\"\"a \\\n  b\"\"\"\ny = [[[[1]]]]\n", "3:8: " + deep},
		{"byte order mark is not a column", "\ufeffx = [[[[1]]]]\n", "1:8: " + deep},
		{"CRLF", "x = 1\r\ny = [[[[1]]]]\r\n", "2:8: " + deep},
		{"date with a space", "d = 1979-05-27 07:32:00Z\nx = [[[1]]]\n", ""},
		{"inline table over lines", "x = {\n  a = {\n    b = {c = [1]}\n  }\n}\n", "3:14: " + deep},
		{"unclosed string ends at line end", "x = \"[[[[\ny = [[[[1]]]]\n", "2:8: " + deep},
		{"empty inline table", "x = {a = {}, b = {c = {}}}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.src), small)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Check\n got %s\nwant %s", err, tt.want)
			}
			if !errors.Is(err, ErrTooDeep) {
				t.Errorf("error %v is not ErrTooDeep", err)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	lim := Limits{What: "test file", MaxBytes: 16, MaxDepth: 32, MaxTables: 100}
	tests := []struct {
		name, src, want string
	}{
		{"at the limit", "x = 1\ny = 2\nz=33", ""},
		{"one byte over", "x = 1\ny = 2\nz=333", "3:5: test file is larger than 16 bytes, the limit; it goes on past here"},
		{"over on line 1", "x = \"0123456789abcdef\"", "1:17: test file is larger than 16 bytes, the limit; it goes on past here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.src), lim)
			got := ""
			if err != nil {
				got = err.Error()
				if !errors.Is(err, ErrTooLarge) {
					t.Errorf("error %v is not ErrTooLarge", err)
				}
			}
			if got != tt.want {
				t.Errorf("Check\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	if got := size(4 << 20); got != "4 MiB" {
		t.Errorf("size(4 MiB) = %q", got)
	}
	if got := size(64 << 10); got != "64 KiB" {
		t.Errorf("size(64 KiB) = %q", got)
	}
}

func TestCheckTables(t *testing.T) {
	lim := Limits{What: "test file", MaxBytes: 1 << 20, MaxDepth: 8, MaxTables: 3}
	many := "more than 3 tables, the limit for a test file"
	tests := []struct {
		name, src, want string
	}{
		{"headers at the limit", "[a]\n[b]\n[[c]]\n", ""},
		{"headers past the limit", "[a]\n[b]\n[[c]]\n[[c]]\n", "4:1: " + many},
		{"header parts count", "[a.b.c.d]\n", "1:1: " + many},
		{"inline tables", "x = [{}, {a = 1},\n {}, {}]\n", "2:6: " + many},
		{"dotted keys", "a.b = 1\nc.d = 1\ne.f.g = 1\n", "3:1: " + many},
		{"arrays do not count", "x = [[], [], [], [], []]\n", ""},
		{"braces in strings do not count", "x = [\"{}{}{}{}\", '{{{{']\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.src), lim)
			got := ""
			if err != nil {
				got = err.Error()
				if !errors.Is(err, ErrTooManyTables) {
					t.Errorf("error %v is not ErrTooManyTables", err)
				}
			}
			if got != tt.want {
				t.Errorf("Check\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	if got := count(100_000); got != "100,000" {
		t.Errorf("count(100000) = %q", got)
	}
	if got := count(999); got != "999" {
		t.Errorf("count(999) = %q", got)
	}
}

// The file of issue 7: 200 KB of nested arrays took 24 GB to parse.
func TestCheckNestedBomb(t *testing.T) {
	lim := Limits{What: "fleet file", MaxBytes: 4 << 20, MaxDepth: MaxDepth, MaxTables: 100_000}
	for _, src := range []string{
		"x = " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n",
		"x = " + strings.Repeat("{a=", 70_000) + "1" + strings.Repeat("}", 70_000) + "\n",
		strings.Repeat("a.", 100_000) + "a = 1\n",
		"[" + strings.Repeat("a.", 100_000) + "a]\n",
	} {
		err := Check([]byte(src), lim)
		var le *Error
		if !errors.As(err, &le) || !errors.Is(err, ErrTooDeep) || le.Line != 1 {
			t.Errorf("Check(%.20q...) = %v, want a depth error on line 1", src, err)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.toml")
	if err := os.WriteFile(path, []byte(strings.Repeat("#", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ max, want int }{{100, 100}, {99, 100}, {10, 11}, {1000, 100}} {
		data, err := ReadFile(path, tt.max)
		if err != nil || len(data) != tt.want {
			t.Errorf("ReadFile(max %d) = %d bytes, %v; want %d", tt.max, len(data), err, tt.want)
		}
	}
	// Endless input is cut off, not read into memory.
	if _, err := os.Stat("/dev/zero"); err == nil {
		data, err := ReadFile("/dev/zero", 1<<10)
		if err != nil || len(data) != 1<<10+1 {
			t.Errorf("ReadFile(/dev/zero) = %d bytes, %v", len(data), err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want ErrNotExist", err)
	}
}

// treeDepth is how many tables and arrays nest in a decoded TOML value.
func treeDepth(v any) int {
	best := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			best = max(best, 1+treeDepth(e))
		}
		if len(v) == 0 {
			return 1
		}
		return best
	case []any:
		for _, e := range v {
			best = max(best, 1+treeDepth(e))
		}
		return max(best, 1)
	case []map[string]any:
		for _, e := range v {
			best = max(best, 1+treeDepth(e))
		}
		return max(best, 1)
	}
	return 0
}

// FuzzCheck compares Check with the real parser: a document the parser
// reads with tables and arrays nested at most d deep is never refused, and
// one Check accepts is nested no more than 2d deep (a header may name an
// element of an array of tables, which Check counts as one level, not two).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"x = [[1]]", "x = {a = {b = [1]}}", "a.b.c = 1", "[a.b]\nc = 1", "[[a]]\n[[a.b]]\n[a.b.c]",
		"x = \"[[\"\ny = '[['\nz = \"\"\"[[\"\"\"\nw = '''[['''", "x = [ # [[\n1]", "\"a.b\".c = 1",
		"x = [{a = 1}, {b = [[2]]}]", "x = \"\"\"\\\"\"\"[\"\"\"", "d = 1979-05-27 07:32:00Z",
	} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, src string, depth int) {
		if depth < 1 || depth > 8 || len(src) > 4096 {
			return
		}
		lim := Limits{What: "fuzz", MaxBytes: 1 << 20, MaxDepth: depth, MaxTables: 1 << 20}
		err := Check([]byte(src), lim)
		var doc map[string]any
		if _, perr := toml.Decode(src, &doc); perr != nil {
			return
		}
		got := treeDepth(doc) - 1 // the document itself is not nested in anything
		if len(doc) == 0 {
			got = 0
		}
		if err != nil && got <= depth {
			t.Fatalf("Check refused a document nested %d deep with limit %d: %v", got, depth, err)
		}
		if err == nil && got > 2*depth {
			t.Fatalf("Check accepted a document nested %d deep with limit %d", got, depth)
		}
	})
}
