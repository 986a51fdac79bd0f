package fleet

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// namedGuests is a fleet where domain lv1 runs on hosts a and lab, db-1 only
// on lab, and web-2 is reached directly; with direct, a [[guest]] is named
// after a domain too.
func namedGuests(direct bool) []*Guest {
	d := func(host, dom string) *Guest {
		return &Guest{Target: Target{Name: QualifiedName(host, dom), Host: host, Address: "libvirt:" + host + "/" + dom}, State: Ready}
	}
	gs := []*Guest{d("a", "lv1"), d("a", "web-1"), d("lab", "db-1"), d("lab", "lv1"),
		{Target: Target{Name: "web-2", Address: "unix:/run/web2.sock"}, State: Ready}}
	if direct {
		gs = append(gs, &Guest{Target: Target{Name: "lv1", Address: "unix:/run/lv1.sock"}, State: Ready})
	}
	slices.SortFunc(gs, func(x, y *Guest) int { return strings.Compare(x.Name, y.Name) })
	return gs
}

// TestSelectQualifiedNames: a discovered guest is selected by HOST/DOMAIN;
// its bare domain name is refused, listing every guest it might mean; globs
// and host: still reach it.
func TestSelectQualifiedNames(t *testing.T) {
	tests := []struct {
		sel    string
		direct bool   // a [[guest]] named lv1 is in the fleet
		want   string // the guests selected
		// Refused: the candidates the *NameError lists (comma-joined, ""
		// for none) and words its message must contain.
		refused    bool
		candidates string
		msg        string
	}{
		{sel: "a/lv1", want: "a/lv1"},
		{sel: "lab/lv1", want: "lab/lv1"},
		{sel: "lab/lv1 a/lv1", want: "a/lv1,lab/lv1"},
		{sel: "web-2 lab/db-1", want: "lab/db-1,web-2"},
		{sel: "lv1", refused: true, candidates: "a/lv1,lab/lv1", msg: `"lv1" is ambiguous: domain lv1 is on 2 hosts; name one: a/lv1, lab/lv1`},
		// One host has it: still refused (another host may have it too, or
		// answer later), and the message gives the name to use.
		{sel: "db-1", refused: true, candidates: "lab/db-1", msg: "named HOST/DOMAIN: lab/db-1"},
		// One bad word refuses the whole selection.
		{sel: "a/lv1 lv1", refused: true, candidates: "a/lv1,lab/lv1"},
		{sel: "nosuch", refused: true, candidates: "", msg: `"nosuch": no guest has that name`},
		{sel: "lab/web-1", refused: true, candidates: "", msg: "no guest has that name"},
		{sel: "b/lv1", refused: true, candidates: ""},
		// A [[guest]]'s name is its own: bare lv1 is that guest, never a domain.
		{sel: "lv1", direct: true, want: "lv1"},
		{sel: "a/lv1", direct: true, want: "a/lv1"},
		// Globs select sets: without '/' they match domains too.
		{sel: "lv*", want: "a/lv1,lab/lv1"},
		{sel: "lv*", direct: true, want: "a/lv1,lab/lv1,lv1"},
		{sel: "web-*", want: "a/web-1,web-2"},
		{sel: "a/*", want: "a/lv1,a/web-1"},
		{sel: "*/lv1", want: "a/lv1,lab/lv1"},
		{sel: "*", want: "a/lv1,a/web-1,lab/db-1,lab/lv1,web-2"},
		{sel: "c/*", want: ""},
		{sel: "host:lab", want: "lab/db-1,lab/lv1"},
		{sel: "all", want: "a/lv1,a/web-1,lab/db-1,lab/lv1,web-2"},
	}
	for _, tt := range tests {
		got, err := Select(namedGuests(tt.direct), strings.Fields(tt.sel))
		if !tt.refused {
			if err != nil || names(got) != tt.want {
				t.Errorf("Select %q (direct %v) = %q, %v; want %q", tt.sel, tt.direct, names(got), err, tt.want)
			}
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("Select %q = %q, %v; want a *NameError", tt.sel, names(got), err)
			continue
		}
		if c := strings.Join(ne.Candidates, ","); c != tt.candidates || got != nil {
			t.Errorf("Select %q: candidates %q, selected %q; want candidates %q and nothing selected", tt.sel, c, names(got), tt.candidates)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Select %q: error %q, want it to contain %q", tt.sel, err, tt.msg)
		}
	}
}

// TestSelectNameNotReinterpreted: a libvirt host names its domains as it
// likes, so a guest's whole name can look like a glob ("a/db[1]", "a/*") or
// hold a colon ("a/x:y"). Typed as it is shown, such a name selects that
// guest alone: never the guests the glob would match (a/db[1] is not a/db1),
// nor a refusal as an unknown prefix. A glob that is no guest's name still
// selects a set, and host: selects a host's guests whatever they are called.
func TestSelectNameNotReinterpreted(t *testing.T) {
	d := func(dom string) *Guest {
		return &Guest{Target: Target{Name: QualifiedName("a", dom), Host: "a", Address: "libvirt:a/" + dom}, State: Ready}
	}
	gs := []*Guest{d("*"), d("db1"), d("db2"), d("db?"), d("db[1]"), d("tag:db"), d("x:y"),
		{Target: Target{Name: "web-1", Address: "unix:/run/web1.sock", Tags: []string{"db"}}, State: Ready}}
	tests := []struct{ sel, want string }{
		{"a/db[1]", "a/db[1]"},
		{"a/db?", "a/db?"},
		{"a/*", "a/*"},
		{"a/x:y", "a/x:y"},
		{"a/tag:db", "a/tag:db"},
		{"a/db[1] a/db2", "a/db2,a/db[1]"},
		// Not a guest's name: a glob as before.
		{"a/db[12]", "a/db1,a/db2"},
		{"a/db*", "a/db1,a/db2,a/db?,a/db[1]"},
		{"tag:db", "web-1"},
		{"host:a", "a/*,a/db1,a/db2,a/db?,a/db[1],a/tag:db,a/x:y"},
	}
	for _, tt := range tests {
		got, err := Select(gs, strings.Fields(tt.sel))
		if err != nil || names(got) != tt.want {
			t.Errorf("Select %q = %q, %v; want %q", tt.sel, names(got), err, tt.want)
		}
	}
}

// TestLookupQualifiedNames: the one-guest commands (cat, get, put, agent)
// take a whole name only, with the same refusal as Select.
func TestLookupQualifiedNames(t *testing.T) {
	tests := []struct {
		name       string
		direct     bool
		want       string // "" when refused
		candidates string
	}{
		{name: "a/lv1", want: "a/lv1"},
		{name: "lab/lv1", want: "lab/lv1"},
		{name: "web-2", want: "web-2"},
		{name: "lv1", candidates: "a/lv1,lab/lv1"},
		{name: "db-1", candidates: "lab/db-1"},
		{name: "lv1", direct: true, want: "lv1"},
		{name: "lv*", candidates: ""}, // a glob is no name
		{name: "all", candidates: ""},
		{name: "", candidates: ""},
	}
	for _, tt := range tests {
		g, err := Lookup(namedGuests(tt.direct), tt.name)
		if tt.want != "" {
			if err != nil || g == nil || g.Name != tt.want {
				t.Errorf("Lookup %q (direct %v) = %v, %v; want %s", tt.name, tt.direct, g, err, tt.want)
			}
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) || g != nil || strings.Join(ne.Candidates, ",") != tt.candidates {
			t.Errorf("Lookup %q = %v, %v; want a *NameError with candidates %q", tt.name, g, err, tt.candidates)
		}
	}
}

// TestMatchQualifiedNames: the dashboard filter takes the names it shows.
func TestMatchQualifiedNames(t *testing.T) {
	tests := []struct{ filter, want string }{
		{"lab/lv1", "lab/lv1"},
		{"a/lv1", "a/lv1"},
		{"lv1", "a/lv1,lab/lv1"},
		{"lab/", "lab/db-1,lab/lv1"},
		{"a/*", "a/lv1,a/web-1"},
		{"lv?", "a/lv1,lab/lv1"},
		{"*/lv1", "a/lv1,lab/lv1"},
		{"host:lab", "lab/db-1,lab/lv1"},
	}
	for _, tt := range tests {
		var got []*Guest
		for _, g := range namedGuests(false) {
			if Match(g, tt.filter) {
				got = append(got, g)
			}
		}
		if names(got) != tt.want {
			t.Errorf("Match %q = %q, want %q", tt.filter, names(got), tt.want)
		}
	}
}

func TestTargetDomain(t *testing.T) {
	for addr, want := range map[string]string{
		"libvirt:a/lv1":       "lv1",
		"libvirt:a/":          "",
		"libvirt:a":           "",
		"unix:/run/lv1.sock":  "",
		"tcp:127.0.0.1:4444":  "",
		"libvirt:/lv1":        "",
		"libvirt:a/with/more": "with/more",
	} {
		if got := (Target{Address: addr}).Domain(); got != want {
			t.Errorf("Target{Address: %q}.Domain() = %q, want %q", addr, got, want)
		}
	}
}
