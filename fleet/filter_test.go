package fleet

import (
	"strings"
	"testing"
)

// filterGuests is a small fleet with names, states and a tag to filter on.
func filterGuests() []*Guest {
	g := func(name string, st State, tags ...string) *Guest {
		return &Guest{Target: Target{Name: name, Address: "unix:/run/" + name + ".sock", Tags: tags}, State: st}
	}
	return append([]*Guest{
		g("web-01", Ready, "web"), g("web-02", Frozen, "web"), g("web-10", Ready, "web"),
		g("db-01", Ready, "db"), g("cache-web", Silent),
	}, namedGuests(false)...)
}

// TestCompileFilter: regular expressions, inverse words and fuzzy names
// combine with the existing words, every word must match.
func TestCompileFilter(t *testing.T) {
	tests := []struct{ filter, want string }{
		{`re:^web-\d+$`, "web-01,web-02,web-10,a/web-1,web-2"}, // a/web-1 by its domain, as a glob would
		{`re:^web-0`, "web-01,web-02"},
		{`re:^lab/`, "lab/db-1,lab/lv1"},
		{`!web`, "db-01,a/lv1,lab/db-1,lab/lv1"},
		{`!state:ready`, "web-02,cache-web"},
		{`web !state:ready`, "web-02,cache-web"},
		{`tag:web !re:0$`, "web-01,web-02"},
		{`!re:^web`, "db-01,cache-web,a/lv1,lab/db-1,lab/lv1"},
		{`~wb1`, "web-01,web-10,a/web-1"},
		{`~WB02`, "web-02"},
		{`~cw`, "cache-web"},
		{`!~web`, "db-01,a/lv1,lab/db-1,lab/lv1"},
		{`~dbl`, ""},
		// Half-typed words test nothing yet.
		{`re:`, "web-01,web-02,web-10,db-01,cache-web,a/lv1,a/web-1,lab/db-1,lab/lv1,web-2"},
		{`! ~ web-0`, "web-01,web-02"},
		{`tag: web-0`, "web-01,web-02"},
		{`hostname: ip: os: web-0`, "web-01,web-02"},
		{`!!web-1`, "web-10,a/web-1"},
	}
	for _, tt := range tests {
		f, err := CompileFilter(tt.filter)
		if err != nil {
			t.Errorf("CompileFilter(%q): %v", tt.filter, err)
			continue
		}
		var got []string
		for _, g := range filterGuests() {
			if f.Match(g) {
				got = append(got, g.Name)
			}
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("filter %q = %q, want %q", tt.filter, strings.Join(got, ","), tt.want)
		}
	}
}

// TestCompileFilterErrors: a word no guest can ever match is an error naming
// it, for the prompt to show, instead of an empty table.
func TestCompileFilterErrors(t *testing.T) {
	tests := []struct{ filter, want string }{
		{`re:(web`, `"re:(web": bad regular expression: missing closing )`},
		{`web re:a**`, `"re:a**": bad regular expression: invalid nested repetition operator at "**"`},
		{`!re:[z-a]`, `"re:[z-a]": bad regular expression: invalid character class range at "z-a"`},
		{`!state:bogus`, `selector "state:bogus": unknown state "bogus"`},
		{`re:` + strings.Repeat("a", 2000), `regular expression longer than 1024 bytes`},
	}
	for _, tt := range tests {
		_, err := CompileFilter(tt.filter)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CompileFilter(%q) = %v, want an error with %q", tt.filter, err, tt.want)
		}
		if CheckFilter(tt.filter) == nil {
			t.Errorf("CheckFilter(%q) accepts it", tt.filter)
		}
	}
}

func TestFuzzyMatch(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"web-03", "wb3", true},
		{"web-03", "w3b", false},
		{"Ünïcode", "üc", true},
		{"abc", "", true},
		{"", "a", false},
		{"a\xffb", "ab", true}, // a broken byte is one rune, not three
		{"ab", "abc", false},
	}
	for _, tt := range tests {
		if got := FuzzyMatch(tt.s, tt.p); got != tt.want {
			t.Errorf("FuzzyMatch(%q, %q) = %v, want %v", tt.s, tt.p, got, tt.want)
		}
	}
}

// TestSelectRegexp: the CLI selectors take re: as the filter does; a bad
// one is an error naming it.
func TestSelectRegexp(t *testing.T) {
	got, err := Select(filterGuests(), []string{`re:^web-\d+$`})
	if err != nil {
		t.Fatal(err)
	}
	if names(got) != "web-01,web-02,web-10,a/web-1,web-2" {
		t.Errorf("Select re: = %q", names(got))
	}
	if got, err := Select(filterGuests(), []string{`re:^nothing`}); err != nil || len(got) != 0 {
		t.Errorf("a regexp that matches nothing: %v, %v; want no guests and no error (as a glob)", names(got), err)
	}
	if _, err := Select(filterGuests(), []string{`re:(`}); err == nil || !strings.Contains(err.Error(), "bad regular expression") {
		t.Errorf("Select re:( = %v, want a bad regular expression error", err)
	}
}
