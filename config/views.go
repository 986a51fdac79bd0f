package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ViewColumns are the table columns a [[views]] table may list, as the
// dashboard names them (tui.ColumnNames; a test keeps the two the same).
var ViewColumns = []string{"name", "state", "addresses", "os", "freeze", "host", "agent", "vcpus",
	"cpu", "iow", "stl", "load", "dsk-r", "dsk-w", "net-rx", "net-tx", "fs", "skew", "rtt", "error"}

// DefaultView is the name of the view the dashboard opens with.
const DefaultView = "default"

var viewKeys = []string{"name", "key", "filter", "sort", "columns"}

// View is a saved view of the dashboard's table, from [[views]]: a filter, a
// sort and the columns, switched by Key or by :view NAME. The view named
// DefaultView is the one the dashboard opens with.
type View struct {
	Name string `toml:"name"`
	// Key switches to the view; "" for none. Parse refuses a key [keys] or
	// another view binds; CheckViews the dashboard's built-in keys.
	Key string `toml:"key,omitempty"`
	// Filter is a dashboard filter ("state:frozen tag:db"); CheckViews
	// checks it with the function the dashboard uses.
	Filter string `toml:"filter,omitempty"`
	// Sort is a column from ViewColumns, optionally ":asc" or ":desc".
	Sort string `toml:"sort,omitempty"`
	// Columns are names from ViewColumns in display order; none chooses
	// the columns by the terminal's width.
	Columns []string `toml:"columns,omitempty"`

	keyAt, filterAt pos // for CheckViews' messages
}

// views decodes one [[views]] table.
func (d *decoder) view(t map[string]any, segs ...string) View {
	where := entry("views", t)
	before := len(d.errs)
	var v View
	for _, k := range d.ordered(t, segs) {
		val, at := t[k], join(segs, k)
		switch k {
		case "name":
			if s, ok := d.str(val, k, where, at); ok && d.name(s, where, at) {
				v.Name = s
			}
		case "key":
			if s, ok := d.str(val, k, where, at); ok {
				if problem, hint := checkKeyName(s); problem != "" {
					d.errf(d.valAt(at...), "%s for %s; %s", problem, where, hint)
				}
				v.Key, v.keyAt = s, d.valAt(at...)
			}
		case "filter":
			if s, ok := d.str(val, k, where, at); ok {
				v.Filter, v.filterAt = strings.TrimSpace(s), d.valAt(at...)
			}
		case "sort":
			if s, ok := d.str(val, k, where, at); ok {
				name, dir, hasDir := strings.Cut(s, ":")
				switch {
				case !contains(ViewColumns, name):
					d.errf(d.valAt(at...), "sort in %s: unknown column %q%s", where, name, columnHint(name))
				case hasDir && dir != "asc" && dir != "desc":
					d.errf(d.valAt(at...), "sort in %s: direction %q; write %q or %q", where, dir, name+":asc", name+":desc")
				}
				v.Sort = s
			}
		case "columns":
			cols, ok := d.strs(val, k, where, at)
			if !ok {
				break
			}
			if len(cols) == 0 {
				d.errf(d.valAt(at...), "columns in %s is empty; list some (%s) or leave columns out to choose them by width",
					where, strings.Join(ViewColumns, ", "))
			}
			seen := map[string]bool{}
			for i, c := range cols {
				cat := d.valAt(join(at, strconv.Itoa(i))...)
				switch {
				case !contains(ViewColumns, c):
					d.errf(cat, "unknown column %q in columns of %s%s", c, where, columnHint(c))
				case seen[c]:
					d.errf(cat, "column %q is listed twice in columns of %s", c, where)
				}
				seen[c] = true
			}
			v.Columns = cols
		default:
			d.unknown(k, where, viewKeys, at...)
		}
	}
	if len(d.errs) == before {
		if _, ok := t["name"]; !ok {
			d.errf(d.keyAt(segs...), "%s has no name; add name = \"...\" (the view named %q is the one the dashboard opens with)", where, DefaultView)
		}
	}
	return v
}

// columnHint is "; did you mean X?" or the list of the columns.
func columnHint(c string) string {
	if s := suggest(c, ViewColumns); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return "; columns: " + strings.Join(ViewColumns, ", ")
}

// viewKeyClashes refuses a view name used twice and a view key that [keys]
// or another view binds: a key does one thing, or the view's switch would
// silently take an action's key (or lose to it).
func (d *decoder) viewKeyClashes(f *File) {
	names := map[string]int{}
	keyOwner := map[string]string{} // key -> the [keys] action bound to it
	actions := make([]string, 0, len(f.Keys))
	for a := range f.Keys {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	for _, a := range actions {
		for _, k := range f.Keys[a] {
			if _, ok := keyOwner[k]; !ok {
				keyOwner[k] = a
			}
		}
	}
	views := map[string]string{} // key -> view
	for i, v := range f.Views {
		at := d.valAt("views", strconv.Itoa(i), "name")
		if first, ok := names[v.Name]; ok && v.Name != "" {
			d.errf(at, "[[views]] %q is defined twice (first at line %d)", v.Name, d.valAt("views", strconv.Itoa(first), "name").Line)
		} else {
			names[v.Name] = i
		}
		if v.Key == "" {
			continue
		}
		if a, ok := keyOwner[v.Key]; ok {
			d.errf(v.keyAt, "key %q of [[views]] %q is bound to %s in [keys]; give the view another key", v.Key, v.Name, a)
			continue
		}
		if other, ok := views[v.Key]; ok {
			d.errf(v.keyAt, "key %q of [[views]] %q is the key of [[views]] %q too; give each view its own key", v.Key, v.Name, other)
			continue
		}
		views[v.Key] = v.Name
	}
}

// CheckViews checks what only the dashboard knows, naming the view's line:
// that no view's key is one the dashboard already binds (owners maps each
// bound key to what it does, after [keys]; tui.KeyOwners) and that each
// filter passes checkFilter (the dashboard's own filter check).
func (f *File) CheckViews(owners map[string]string, checkFilter func(string) error) error {
	for _, v := range f.Views {
		if by, ok := owners[v.Key]; ok && v.Key != "" {
			return &Error{Path: f.Path, Line: v.keyAt.Line, Col: v.keyAt.Col, Msg: fmt.Sprintf(
				"key %q of [[views]] %q already does %s in the dashboard; pick a free key (f1 to f12 and alt+1 to alt+9 are free)", v.Key, v.Name, by)}
		}
		if err := checkFilter(v.Filter); err != nil {
			return &Error{Path: f.Path, Line: v.filterAt.Line, Col: v.filterAt.Col, Msg: fmt.Sprintf("filter of [[views]] %q: %v", v.Name, err), Err: err}
		}
	}
	return nil
}
