package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestViewsParse(t *testing.T) {
	src := `[keys]
freeze = "F"

[[views]]
name = "frozen"
key = "alt+1"            # optional
filter = "state:frozen"
sort = "name"
columns = ["name", "state", "freeze", "host", "error"]

[[views]]
name = "default"
sort = "cpu:desc"
`
	f, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Views) != 2 {
		t.Fatalf("views = %+v", f.Views)
	}
	v := f.Views[0]
	if v.Name != "frozen" || v.Key != "alt+1" || v.Filter != "state:frozen" || v.Sort != "name" ||
		!reflect.DeepEqual(v.Columns, []string{"name", "state", "freeze", "host", "error"}) {
		t.Errorf("first view = %+v", v)
	}
	if d := f.Views[1]; d.Name != DefaultView || d.Sort != "cpu:desc" || d.Columns != nil || d.Key != "" {
		t.Errorf("default view = %+v", d)
	}
}

func TestViewsErrors(t *testing.T) {
	cols := strings.Join(ViewColumns, ", ")
	tests := []struct{ name, src, want string }{
		{"unknown column near", "[[views]]\nname = \"v\"\ncolumns = [\"name\", \"adresses\"]\n",
			`f.toml:3:20: unknown column "adresses" in columns of [[views]] "v"; did you mean "addresses"?`},
		{"unknown column far", "[[views]]\nname = \"v\"\ncolumns = [\"bogus-column\"]\n",
			`f.toml:3:12: unknown column "bogus-column" in columns of [[views]] "v"; columns: ` + cols},
		{"column twice", "[[views]]\nname = \"v\"\ncolumns = [\"os\", \"os\"]\n",
			`f.toml:3:18: column "os" is listed twice in columns of [[views]] "v"`},
		{"no columns", "[[views]]\nname = \"v\"\ncolumns = []\n",
			`f.toml:3:11: columns in [[views]] "v" is empty; list some (` + cols + `) or leave columns out to choose them by width`},
		{"unknown sort", "[[views]]\nname = \"v\"\nsort = \"cpuu\"\n",
			`f.toml:3:8: sort in [[views]] "v": unknown column "cpuu"; did you mean "cpu"?`},
		{"sort direction", "[[views]]\nname = \"v\"\nsort = \"rtt:up\"\n",
			`f.toml:3:8: sort in [[views]] "v": direction "up"; write "rtt:asc" or "rtt:desc"`},
		{"unknown key in view", "[[views]]\nname = \"v\"\nfliter = \"x\"\n",
			`f.toml:3:1: unknown key "fliter" in [[views]] "v"; did you mean "filter"?`},
		{"no name", "[[views]]\nfilter = \"web\"\n",
			`f.toml:1:1: [[views]] has no name; add name = "..." (the view named "default" is the one the dashboard opens with)`},
		{"bad key name", "[[views]]\nname = \"v\"\nkey = \"shift+f\"\n",
			`f.toml:3:7: key name "shift+f" never matches (a shifted key arrives as the character it types) for [[views]] "v"; write "F"`},
		{"key clashes with [keys]", "[[views]]\nname = \"v\"\nkey = \"x\"\n\n[keys]\nfreeze = \"x\"\n",
			`f.toml:3:7: key "x" of [[views]] "v" is bound to freeze in [keys]; give the view another key`},
		{"key clashes with a view", "[[views]]\nname = \"a\"\nkey = \"alt+1\"\n[[views]]\nname = \"b\"\nkey = \"alt+1\"\n",
			`f.toml:6:7: key "alt+1" of [[views]] "b" is the key of [[views]] "a" too; give each view its own key`},
		{"name twice", "[[views]]\nname = \"a\"\n[[views]]\nname = \"a\"\n",
			`f.toml:4:8: [[views]] "a" is defined twice (first at line 2)`},
		{"single bracket", "[views]\nname = \"a\"\n",
			`f.toml:1:1: [views] must be written [[views]]: there is one [[views]] table per views`},
		{"wrong type", "[[views]]\nname = \"a\"\ncolumns = \"name\"\n",
			`f.toml:3:11: columns in [[views]] "a" must be an array of strings, got string "name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f.toml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", f, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || err.Error() != tt.want {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// CheckViews names the line of a key the dashboard binds and of a filter
// it refuses.
func TestCheckViews(t *testing.T) {
	src := "[[views]]\nname = \"a\"\nkey = \"alt+1\"\n\n[[views]]\nname = \"b\"\nkey = \"1\"\nfilter = \"state:bogus\"\n"
	f, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{"1": "detail tab 1 (Overview)", "F": "freeze"}
	okFilter := func(string) error { return nil }
	err = f.CheckViews(owners, okFilter)
	want := `f.toml:7:7: key "1" of [[views]] "b" already does detail tab 1 (Overview) in the dashboard; pick a free key (f1 to f12 and alt+1 to alt+9 are free)`
	if err == nil || err.Error() != want {
		t.Errorf("CheckViews = %v\nwant %s", err, want)
	}
	delete(owners, "1")
	bad := errors.New(`unknown state "bogus"`)
	err = f.CheckViews(owners, func(s string) error {
		if s == "state:bogus" {
			return bad
		}
		return nil
	})
	want = `f.toml:8:10: filter of [[views]] "b": unknown state "bogus"`
	if err == nil || err.Error() != want || !errors.Is(err, bad) {
		t.Errorf("CheckViews = %v\nwant %s", err, want)
	}
	if err := f.CheckViews(owners, okFilter); err != nil {
		t.Errorf("CheckViews with free keys and good filters = %v", err)
	}
}
