package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/tui/present"
)

// auditLog is the log every mutating action of this invocation is written
// to: the operator's, in the state directory, except for the demo's.
func (c *cli) auditLog() *audit.Log { return audit.Open(c.auditDir()) }

// auditDir is where auditLog is. The demo's guests are simulated by this
// process and die with it, so what is done to them is no record of the
// operator's fleet: it goes to a directory of the demo's own, made on first
// use and removed when guestdeck exits (dropDemoState), where the
// dashboard's audit pane still shows it while the demo runs. (The demo
// opens no freeze ledger either: openDemo. The filter history stays the
// operator's: it is what they typed, not what was done to a guest.)
func (c *cli) auditDir() string {
	if !c.demo {
		return config.StateDir()
	}
	if c.demoState == "" {
		mkdirTemp := c.mkdirTemp
		if mkdirTemp == nil {
			mkdirTemp = os.MkdirTemp
		}
		d, err := mkdirTemp("", "guestdeck-demo-")
		if err != nil {
			// Never the operator's log, nor a fixed name in the shared
			// temporary directory: anyone could have made that one, with
			// audit.jsonl a symlink to a file of the operator's (the
			// demo appended its lines there). A path under a device,
			// which nobody can make, refuses the demo's actions with its
			// error (auditError).
			return filepath.Join(os.DevNull, "guestdeck-demo-no-temporary-directory")
		}
		c.demoState = d
	}
	return c.demoState
}

// dropDemoState removes the demo's own state directory, if one was made.
func (c *cli) dropDemoState() {
	if c.demoState != "" {
		os.RemoveAll(c.demoState)
		c.demoState = ""
	}
}

// audited is one mutating action on record: its intent is written, its
// outcome is due.
type audited struct {
	log   *audit.Log
	entry audit.Entry
}

// auditIntent writes the intent of a mutating action (source: audit.SourceCLI,
// or the dashboard's own thaw on a signal), before anything is sent. A log that cannot be written refuses the action
// (the caller exits exitUsage, nothing sent); the error names the file.
func (c *cli) auditIntent(source, action string, command, selector []string, guests []audit.Guest) (*audited, error) {
	l := c.auditLog()
	e := audit.Entry{ID: l.NewID(), Phase: audit.Intent, Source: source,
		Command: command, Action: action, Selector: selector, Guests: guests}
	if err := l.Append(e); err != nil {
		return nil, auditError(l, err)
	}
	return &audited{log: l, entry: e}, nil
}

// auditError says that the log at l cannot be written, naming it.
func auditError(l *audit.Log, err error) error { return fleet.AuditError(l.Path(), err) }

// outcome writes the action's outcome under the intent's ID. The action has
// happened by now, so a log that fails here is reported, not fatal.
// stopped is how an interrupt stopped it part-way (nil: it ran to its end).
func (a *audited) outcome(c *cli, guests []audit.Guest, stopped *audit.Stop) {
	if a == nil {
		return
	}
	e := a.entry
	e.Phase, e.Time, e.Guests, e.Stopped = audit.Outcome, time.Time{}, guests, stopped
	if err := a.log.Append(e); err != nil {
		c.errorf("warning: %s ran, but its outcome is not in the audit log: %v", e.Action, auditError(a.log, err))
	}
}

// recordedCommand is the command line as the audit log keeps it: argv, with
// the words of rest (a tail of argv, as flag parsing leaves it) at the
// indexes in hide replaced by what stands for them (file contents, a raw
// request's secrets); a word replaced by "" is dropped. If rest is not argv's tail, the whole tail after the
// subcommand would be a guess: rest alone is kept, hidden words replaced.
func (c *cli) recordedCommand(rest []string, hide map[int]string) []string {
	argv := c.argv
	if argv == nil {
		argv = os.Args
	}
	out := slices.Clone(argv)
	off := len(argv) - len(rest)
	if off < 0 || !slices.Equal(argv[off:], rest) {
		out, off = slices.Clone(rest), 0
	}
	drop := map[int]bool{}
	for i, w := range hide {
		if i < 0 || off+i >= len(out) {
			continue
		}
		out[off+i] = w
		drop[off+i] = w == ""
	}
	kept := out[:0]
	for i, w := range out {
		if !drop[i] {
			kept = append(kept, w)
		}
	}
	return kept
}

// auditPut writes put's intent: what opening and writing the guest's file
// sends (sizes, never contents). nil means refused: exit with code.
func (c *cli) auditPut(f *fleet.Fleet, rest []string, guest, path, src string, size int64) (*audited, int) {
	if src == "-" {
		size = -1
	}
	// Where the agent allows guest-exec, WriteFile writes a temporary file
	// beside path and moves it into place: the in-place sends below, plus
	// what it runs through guest-exec, which the detail names.
	g := audit.Guest{Name: guest, Address: guestAddress(f)(guest), Result: "pending",
		Sends:  fleet.AuditSends(fleet.WriteSends(path, size)),
		Detail: "written in place, or where the agent allows guest-exec to a temporary file beside it (stat, chown, chmod by guest-exec) moved into place (mv by guest-exec)"}
	aud, err := c.auditIntent(audit.SourceCLI, "put "+path, c.recordedCommand(rest, nil), []string{guest}, []audit.Guest{g})
	if err != nil {
		c.errorf("put: refused: %v; nothing was sent", err)
		return nil, exitUsage
	}
	return aud, exitOK
}

// auditRaw writes the intent of a raw request that may change the guests
// (agent SELECTOR... JSON), its secrets replaced (fleet.RawSend) also in the
// recorded command line. nil means refused: exit with code.
func (c *cli) auditRaw(f *fleet.Fleet, rest, selectors, guests []string, req []byte) (*audited, int) {
	send, hid, err := fleet.RawSend(req)
	if err != nil {
		c.errorf("agent: %v", err)
		return nil, exitUsage
	}
	var hide map[int]string
	if hid {
		hide = map[int]string{len(rest) - 1: send.JSON()}
	}
	gs := make([]audit.Guest, len(guests))
	for i, name := range guests {
		gs[i] = audit.Guest{Name: name, Address: guestAddress(f)(name), Result: "pending", Sends: fleet.AuditSends([]fleet.Send{send})}
	}
	aud, err := c.auditIntent(audit.SourceCLI, "agent "+send.Execute, c.recordedCommand(rest, hide), selectors, gs)
	if err != nil {
		c.errorf("agent: refused: %v; nothing was sent", err)
		return nil, exitUsage
	}
	return aud, exitOK
}

// auditOne is a one-guest outcome: ok with detail, or failed with err.
func auditOne(guest string, f *fleet.Fleet, detail string, err error) []audit.Guest {
	g := audit.Guest{Name: guest, Address: guestAddress(f)(guest), Result: "ok", Detail: detail}
	if err != nil {
		g.Result, g.Detail = "failed", err.Error()
	}
	return []audit.Guest{g}
}

// truncateText cuts s to max bytes at a rune boundary, marking the cut.
func truncateText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max] + "…"
}

// guestAddress is the address the audit log records for a guest.
func guestAddress(f *fleet.Fleet) func(string) string {
	return func(name string) string {
		if g := f.Guest(name); g != nil {
			return g.Address
		}
		return ""
	}
}

// audit prints the audit log, oldest first: every entry, or those naming a
// guest that matches one of the selectors (names or globs; the log holds
// names, not tags or states), since a time.
func (c *cli) audit(_ context.Context, args []string) int {
	fs := c.flags("audit")
	asJSON := fs.Bool("json", false, "print a JSON array of the entries, as they are in the log")
	since := fs.String("since", "", "only entries since `D` ago (90m, 24h) or since a time (2026-12-01, 2026-12-01T10:00:00Z)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	var from time.Time
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			c.errorf("audit: --since %q: %v", *since, err)
			return exitUsage
		}
		from = t
	}
	log := c.auditLog()
	var out []audit.Entry
	bad, err := audit.Read(log.Path(), func(e audit.Entry) error {
		if !e.Time.Before(from) {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		c.errorf("audit: %v", err)
		return exitFail
	}
	if bad > 0 {
		c.errorf("audit: %s: skipped %d damaged line(s) (a writer killed mid-write?)", log.Path(), bad)
	}
	if sels := fs.Args(); len(sels) > 0 {
		if out, err = selectEntries(out, sels); err != nil {
			c.errorf("audit: %v", err)
			return exitUsage
		}
	}
	if *asJSON {
		if out == nil {
			out = []audit.Entry{}
		}
		// Details are guests' words: exact, but safe on a terminal.
		if err := writeJSON(c.stdout, out); err != nil {
			c.errorf("audit: %v", err)
			return exitFail
		}
		return exitOK
	}
	if len(out) == 0 {
		fmt.Fprintf(c.stderr, "audit: no entries in %s\n", log.Path())
		return exitOK
	}
	writeAuditTable(c, out)
	return exitOK
}

// writeAuditTable prints one row per guest of each entry. Every field is
// read back from a file, and details and names are guests' words: all of
// it goes through present.Text.
func writeAuditTable(c *cli, es []audit.Entry) {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tPHASE\tWHO\tSOURCE\tACTION\tGUEST\tRESULT\tDETAIL")
	for _, e := range es {
		who := fmt.Sprintf("%s(%d)", e.User, e.PID)
		head := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", e.Time.Local().Format("2006-01-02 15:04:05"),
			present.Text(e.ID, 32), present.Text(e.Phase, 16), present.Text(who, 24), present.Text(e.Source, 16), present.Text(e.Action, 40))
		if len(e.Guests) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t\n", head)
		}
		if e.Stopped != nil {
			fmt.Fprintf(tw, "%s\t-\tstopped\t%s\n", head, present.Text(e.Stopped.Words(), 100))
		}
		for _, g := range e.Guests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", head, present.Text(g.Name, 40), present.Text(g.Shown(), 16), present.Text(g.Detail, 100))
		}
	}
	tw.Flush()
}

// selectEntries keeps the entries naming a guest a selector matches, with
// only those guests. A selector that is a guest's name in the log takes that
// guest alone, before it is read as a glob (as fleet.Select does): a libvirt
// host may name a domain db[1], and its entries are not db1's.
func selectEntries(es []audit.Entry, sels []string) ([]audit.Entry, error) {
	named := map[string]bool{}
	for _, e := range es {
		for _, g := range e.Guests {
			named[g.Name] = true
		}
	}
	for _, s := range sels {
		if _, err := path.Match(s, ""); err != nil && !named[s] {
			return nil, fmt.Errorf("selector %q: %v", s, err)
		}
	}
	match := func(name string) bool {
		for _, s := range sels {
			if s == name || s == "all" {
				return true
			}
			if ok, _ := path.Match(s, name); ok && !named[s] {
				return true
			}
		}
		return false
	}
	var keep []audit.Entry
	for _, e := range es {
		var gs []audit.Guest
		for _, g := range e.Guests {
			if match(g.Name) {
				gs = append(gs, g)
			}
		}
		if len(gs) > 0 {
			e.Guests = gs
			keep = append(keep, e)
		}
	}
	return keep, nil
}

// parseSince reads a duration back from now, or a date or time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("a duration back from now must not be negative")
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want a duration (90m, 24h) or a time (2026-12-01, 2026-12-01T10:00:00Z)")
}

// auditPathText is where the log lives, for help texts.
func auditPathText() string { return filepath.Join(config.StateDir(), audit.FileName) }
