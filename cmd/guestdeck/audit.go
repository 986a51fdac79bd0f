package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/tui/present"
)

// auditLog is the log every mutating action of this invocation is written to.
func (c *cli) auditLog() *audit.Log { return audit.Open(config.StateDir()) }

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
	sels := fs.Args()
	for _, s := range sels {
		if _, err := path.Match(s, ""); err != nil {
			c.errorf("audit: selector %q: %v", s, err)
			return exitUsage
		}
	}
	log := c.auditLog()
	var out []audit.Entry
	bad, err := audit.Read(log.Path(), func(e audit.Entry) error {
		if e.Time.Before(from) {
			return nil
		}
		if len(sels) > 0 {
			e.Guests = matchGuests(e.Guests, sels)
			if len(e.Guests) == 0 {
				return nil
			}
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		c.errorf("audit: %v", err)
		return exitFail
	}
	if bad > 0 {
		c.errorf("audit: %s: skipped %d damaged line(s) (a writer killed mid-write?)", log.Path(), bad)
	}
	if *asJSON {
		if out == nil {
			out = []audit.Entry{}
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			c.errorf("audit: %v", err)
			return exitFail
		}
		fmt.Fprintf(c.stdout, "%s\n", b)
		return exitOK
	}
	if len(out) == 0 {
		fmt.Fprintf(c.stderr, "audit: no entries in %s\n", log.Path())
		return exitOK
	}
	writeAuditTable(c, out)
	return exitOK
}

// writeAuditTable prints one row per guest of each entry.
func writeAuditTable(c *cli, es []audit.Entry) {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tPHASE\tWHO\tSOURCE\tACTION\tGUEST\tRESULT\tDETAIL")
	for _, e := range es {
		who := fmt.Sprintf("%s(%d)", e.User, e.PID)
		head := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", e.Time.Local().Format("2006-01-02 15:04:05"),
			e.ID, e.Phase, present.Text(who, 24), e.Source, present.Text(e.Action, 40))
		if len(e.Guests) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t\n", head)
		}
		for _, g := range e.Guests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", head, present.Text(g.Name, 40), g.Result, present.Text(g.Detail, 100))
		}
	}
	tw.Flush()
}

// matchGuests keeps the guests whose name matches a selector.
func matchGuests(gs []audit.Guest, sels []string) []audit.Guest {
	var keep []audit.Guest
	for _, g := range gs {
		for _, s := range sels {
			if ok, _ := path.Match(s, g.Name); ok || s == "all" {
				keep = append(keep, g)
				break
			}
		}
	}
	return keep
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
