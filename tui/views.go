package tui

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// View is a saved view of the table (the fleet file's [[views]]): which
// guests (a filter), in which order (a sort), with which columns. Views
// switch by their key or by :view NAME. The view named "default" is the
// one the dashboard opens with; without one, the default view is every
// guest by name with the columns chosen by width (layoutColumns).
type View struct {
	Name string
	// Key switches to the view from the table; "" for none. It may not be
	// a key the dashboard binds (KeyOwners).
	Key string
	// Filter is a filter as typed after / ("" shows every guest).
	Filter string
	// Sort is a column name (ColumnNames), optionally with ":asc" or
	// ":desc"; "" sorts by name. A metrics column sorts busiest first
	// unless it says ":asc", as picking it with :sort does.
	Sort string
	// Columns are column names in display order; empty chooses by width.
	// NAME is always shown, first.
	Columns []string
	// Group is a grouping's name (GroupNames); "" for none.
	Group string
}

// DefaultView names the view the dashboard opens with.
const DefaultView = "default"

// ColumnNames are the names views, :columns and :sort use for the table's
// columns, in the table's automatic order.
func ColumnNames() []string {
	out := make([]string, 0, len(autoOrder))
	for _, id := range autoOrder {
		out = append(out, colWord(id))
	}
	return out
}

// colWord is a column's name in views and commands: its title in lower
// case without "%" ("cpu", "dsk-r").
func colWord(id colID) string { return strings.TrimSuffix(strings.ToLower(columns[id].title), "%") }

// KeyOwners maps every key the dashboard's table answers to (after
// rebinding by overrides, which must pass CheckKeys) to what it does: a
// view's key must be none of them.
func KeyOwners(overrides map[string][]string) map[string]string {
	k := DefaultKeyMap()
	_ = k.Apply(overrides) // CheckKeys reports a bad table; the defaults stand then
	owners := map[string]string{"ctrl+c": "quit"}
	for name, b := range k.byName() {
		for _, s := range b.Keys() {
			if prev, ok := owners[s]; !ok || name < prev {
				owners[s] = name // one name, the same every run
			}
		}
	}
	// The table's digits pick the detail pane's tabs (tableKey).
	for i := range min(len(tabNames), 9) {
		owners[fmt.Sprint(i+1)] = fmt.Sprintf("detail tab %d (%s)", i+1, tabNames[i])
	}
	return owners
}

// parsedView is a View checked and turned into the table's terms.
type parsedView struct {
	View
	sortCol colID
	desc    bool
	cols    []colID // nil: by width
	group   groupBy
}

// parseSort reads a view's sort: "", "NAME", "NAME:asc" or "NAME:desc".
func parseSort(s string) (colID, bool, error) {
	if s == "" {
		return colName, false, nil
	}
	name, dir, hasDir := strings.Cut(s, ":")
	c, ok := sortColumnNamed(name)
	if !ok {
		return 0, false, fmt.Errorf("sort %q: unknown column %q; columns: %s", s, name, strings.Join(ColumnNames(), ", "))
	}
	desc := isMetricCol(c)
	switch {
	case !hasDir:
	case dir == "asc":
		desc = false
	case dir == "desc":
		desc = true
	default:
		return 0, false, fmt.Errorf("sort %q: direction %q; write %s:asc or %s:desc", s, dir, name, name)
	}
	return c, desc, nil
}

// parseColumns reads column names (ColumnNames, or anything :sort
// accepts), refusing unknown ones and repeats.
func parseColumns(names []string) ([]colID, error) {
	var out []colID
	for _, n := range names {
		c, ok := sortColumnNamed(n)
		if !ok {
			return nil, fmt.Errorf("unknown column %q; columns: %s", n, strings.Join(ColumnNames(), ", "))
		}
		if slices.Contains(out, c) {
			return nil, fmt.Errorf("column %q is listed twice", n)
		}
		out = append(out, c)
	}
	return out, nil
}

// CheckViews reports the first problem with views under the key bindings
// overrides: a name missing or used twice, a key the dashboard binds or
// another view took, an unknown column or sort, a filter the CLI would
// refuse. config checks the same with file positions; this is the check
// New relies on.
func CheckViews(overrides map[string][]string, views []View) error {
	_, err := parseViews(overrides, views)
	return err
}

func parseViews(overrides map[string][]string, views []View) ([]parsedView, error) {
	owners := KeyOwners(overrides)
	names, keys := map[string]bool{}, map[string]string{}
	out := make([]parsedView, 0, len(views))
	for _, v := range views {
		where := fmt.Sprintf("view %q", v.Name)
		switch {
		case v.Name == "":
			return nil, errors.New("views: a view has no name")
		case names[v.Name]:
			return nil, fmt.Errorf("views: %s is defined twice", where)
		}
		names[v.Name] = true
		if v.Key != "" {
			if by, ok := owners[v.Key]; ok {
				return nil, fmt.Errorf("views: %s: key %q already does %s; pick a free key (f1…f12 and alt+1…alt+9 are)", where, v.Key, by)
			}
			if other, ok := keys[v.Key]; ok {
				return nil, fmt.Errorf("views: %s: key %q is view %q's key too", where, v.Key, other)
			}
			keys[v.Key] = v.Name
		}
		if err := fleet.CheckFilter(v.Filter); err != nil {
			return nil, fmt.Errorf("views: %s: filter: %w", where, err)
		}
		p := parsedView{View: v}
		var err error
		if p.sortCol, p.desc, err = parseSort(v.Sort); err != nil {
			return nil, fmt.Errorf("views: %s: %w", where, err)
		}
		if len(v.Columns) > 0 {
			if p.cols, err = parseColumns(v.Columns); err != nil {
				return nil, fmt.Errorf("views: %s: columns: %w", where, err)
			}
		}
		if p.group, err = parseGroup(v.Group); err != nil {
			return nil, fmt.Errorf("views: %s: %w", where, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// viewState is the dashboard's views: those from the options, the one
// shown, and the columns chosen for a view in this session (:columns).
type viewState struct {
	list    []parsedView
	current string // the view shown; DefaultView at start
	// cols holds a view's columns as :columns set them, by view name;
	// nil in it means by width.
	cols map[string][]colID
}

// setupViews checks the options' views and opens the default one. Views
// that do not pass CheckViews are left out, the problem in the status line
// (cmd checks them first and refuses to start).
func (m *Model) setupViews() {
	list, err := parseViews(m.opts.Keys, m.opts.Views)
	if err != nil {
		m.setStatus(err.Error(), true)
		list = nil
	}
	m.views = viewState{list: list, cols: map[string][]colID{}}
	m.views.current = DefaultView
	m.cmdInput.SetSuggestions(m.completions()) // now with "view NAME"
	if v, ok := m.findView(DefaultView); ok {
		m.applyView(v)
	}
}

// findView is the view named name; the built-in default when no view of
// that name is configured and name is DefaultView.
func (m *Model) findView(name string) (parsedView, bool) {
	for _, v := range m.views.list {
		if v.Name == name {
			return v, true
		}
	}
	if name == DefaultView {
		return parsedView{View: View{Name: DefaultView}, sortCol: colName}, true
	}
	return parsedView{}, false
}

// applyView shows view v: its filter (replacing what was typed), its sort,
// its grouping, and its columns, or the columns :columns gave it in this
// session.
func (m *Model) applyView(v parsedView) {
	m.views.current = v.Name
	t := &m.tbl
	t.filter = v.Filter
	m.filterInput.SetValue(v.Filter)
	t.sortCol, t.sortDesc = v.sortCol, v.desc
	t.cols = v.cols
	if cols, ok := m.views.cols[v.Name]; ok {
		t.cols = cols
	}
	m.setGroup(v.group) // group.go; reindexes
	m.checkFilter()
}

// savedViewKey switches to the view bound to k.
func (m *Model) savedViewKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	for _, v := range m.views.list {
		if v.Key != "" && v.Key == k.String() {
			m.applyView(v)
			m.setStatus(m.viewSummary(v), false)
			return nil, true
		}
	}
	return nil, false
}

// viewSummary says what a view shows, for the status line.
func (m *Model) viewSummary(v parsedView) string {
	s := "view " + v.Name
	if v.Filter != "" {
		s += fmt.Sprintf(": filter %q", v.Filter)
	}
	return s + fmt.Sprintf(", %d shown", len(m.tbl.rows))
}

// viewCommand runs :view NAME and :columns.
func (m *Model) viewCommand(fields []string) {
	if fields[0] == "columns" {
		m.columnsCommand(strings.Join(fields[1:], " "))
		return
	}
	if len(fields) != 2 {
		m.setStatus("view: name a view: "+strings.Join(m.viewNames(), ", "), true)
		return
	}
	v, ok := m.findView(fields[1])
	if !ok {
		m.setStatus(fmt.Sprintf("view: no view %q; views: %s", fields[1], strings.Join(m.viewNames(), ", ")), true)
		return
	}
	m.applyView(v)
	m.setStatus(m.viewSummary(v), false)
}

// viewNames are the views :view knows, the default first.
func (m *Model) viewNames() []string {
	out := []string{DefaultView}
	for _, v := range m.views.list {
		if v.Name != DefaultView {
			out = append(out, v.Name)
		}
	}
	return out
}

// columnsCommand sets the current view's columns for the session:
// "name,state,os" (commas or blanks) lists them in order, "+host" adds
// and "-os" drops one, "auto" chooses by width, "reset" goes back to the
// view's own columns, and nothing at all opens the picker (picker.go).
func (m *Model) columnsCommand(arg string) {
	words := strings.FieldsFunc(arg, func(r rune) bool { return r == ',' || r == ' ' })
	cur := m.views.current
	switch {
	case len(words) == 0:
		m.openColumnPicker()
		return
	case len(words) == 1 && words[0] == "reset":
		delete(m.views.cols, cur)
		v, _ := m.findView(cur)
		m.tbl.cols = v.cols
		m.setStatus(fmt.Sprintf("columns: view %s's own (%s)", cur, m.columnList()), false)
		return
	case len(words) == 1 && words[0] == "auto":
		m.views.cols[cur] = nil
		m.tbl.cols = nil
		m.setStatus("columns: chosen by width", false)
		return
	}
	edits := 0
	for _, w := range words {
		if w[0] == '+' || w[0] == '-' {
			edits++
		}
	}
	var cols []colID
	switch edits {
	case 0:
		var err error
		if cols, err = parseColumns(words); err != nil {
			m.setStatus("columns: "+err.Error(), true)
			return
		}
	case len(words):
		// Edit what is shown now, which is the set by width when there is none.
		for _, c := range m.visibleColumns() {
			cols = append(cols, c.id)
		}
		for _, w := range words {
			c, ok := sortColumnNamed(w[1:])
			if !ok {
				m.setStatus(fmt.Sprintf("columns: unknown column %q; columns: %s", w[1:], strings.Join(ColumnNames(), ", ")), true)
				return
			}
			cols = slices.DeleteFunc(cols, func(x colID) bool { return x == c })
			if w[0] == '+' {
				cols = append(cols, c)
			}
		}
	default:
		m.setStatus("columns: either list the columns or +add/-drop them, not both", true)
		return
	}
	m.views.cols[cur] = cols
	m.tbl.cols = cols
	m.columnsStatus(cur, cols)
}

// columnsStatus says which columns view cur now shows, and which of those
// chosen (cols) the width leaves out: a choice dropped without a word
// looked like one not taken.
func (m *Model) columnsStatus(cur string, cols []colID) {
	shown := map[colID]bool{}
	for _, c := range m.visibleColumns() {
		shown[c.id] = true
	}
	var left []string
	for _, c := range cols {
		if !shown[c] {
			left = append(left, colWord(c))
		}
	}
	msg := fmt.Sprintf("columns of view %s: %s", cur, m.columnList())
	if len(left) > 0 {
		msg += fmt.Sprintf("; no room at %d columns for %s (widen the terminal or drop others)", m.width, strings.Join(left, ","))
	}
	m.setStatus(msg, false)
}

// columnList names the columns shown now.
func (m *Model) columnList() string {
	var names []string
	for _, c := range m.visibleColumns() {
		names = append(names, colWord(c.id))
	}
	return strings.Join(names, ",")
}

// viewCompletions are the :view and :columns completions.
func (m *Model) viewCompletions() []string {
	var out []string
	for _, n := range m.viewNames() {
		out = append(out, "view "+n)
	}
	return append(out, "columns", "columns auto", "columns reset")
}

// viewsHelp is the help screen's Views section.
func (m *Model) viewsHelp() string {
	var parts []string
	// The fleet file's names and keys, escaped like any text from outside.
	for _, v := range m.views.list {
		s := present.Text(v.Name, nameCells)
		if v.Key != "" {
			s = present.Text(v.Key, nameCells) + " " + s
		}
		parts = append(parts, s)
	}
	names := m.viewNames()
	for i, n := range names {
		names[i] = present.Text(n, nameCells)
	}
	parts = append(parts, ":view NAME switches ("+strings.Join(names, ", ")+")")
	return strings.Join(parts, " · ")
}
