package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/themes"
	"github.com/guestdeck/guestdeck/tui"
	"github.com/guestdeck/guestdeck/tui/browser"
	"github.com/guestdeck/guestdeck/tui/history"
	"github.com/guestdeck/guestdeck/tui/present"
)

// filterHistoryFile, in the state directory, is the dashboard's filter
// history (tui/history bounds and checks it).
const filterHistoryFile = "filters"

// dashboard runs the full-screen dashboard. Every start-up error is printed
// before the screen takes over.
func (c *cli) dashboard(ctx context.Context) int {
	dashboardGC()
	// Every mutating action is audited: the dashboard's own, and the
	// fleet's automatic thaws (watchdog, orphans). The log is opened once
	// openFleet knows whether this is the demo (it is without a fleet
	// file), which has a log of its own (auditDir).
	var al *audit.Log
	// Notices go to the event log while the screen is up, to stderr after.
	var screenDone atomic.Bool
	o, code := c.openFleet(ctx, true, func(opts *fleet.Options) {
		al = c.auditLog()
		opts.Who, opts.AdoptOrphans, opts.Audit = "dashboard", true, al
		opts.OnNotice = func(n fleet.Notice) {
			if screenDone.Load() {
				c.printNotice(n)
			}
		}
	})
	if o == nil {
		return code
	}
	defer o.close()
	// After the fleet file, so its errors come first.
	if !isTerminal(c.stdout) || !isTerminal(c.stdin) {
		c.errorf("the dashboard needs a terminal; for scripts use: guestdeck status, guestdeck run")
		return exitUsage
	}

	theme := c.theme
	var keys map[string][]string
	readonly := c.readonly
	if o.cfg != nil {
		if theme == "" {
			theme = o.cfg.Defaults.Theme
		}
		keys = o.cfg.Keys
		readonly = readonly || o.cfg.Defaults.Readonly
	}
	if theme == "" {
		theme = config.DefaultTheme
	}
	styles, err := themes.Resolve(theme, os.Getenv)
	if err != nil {
		c.errorf("%v", err) // themes names the theme already
		return exitUsage
	}
	views, commands, err := dashboardParts(o.cfg)
	if err != nil {
		c.errorf("%v", err) // names the file and line
		return exitUsage
	}

	o.fleet.Start(ctx)
	if o.cfg == nil {
		// The demo should be complete at once, not as each guest's first
		// slot inside its interval comes round.
		go o.fleet.RefreshOnce(ctx, names(o.fleet.Snapshot().Guests))
	}
	files := func(guest string) (tui.FilesPane, error) {
		return browser.New(o.fleet, guest, browser.Options{Styles: browser.StylesFrom(styles), Readonly: readonly}), nil
	}
	m := tui.New(o.fleet, tui.Options{Styles: styles, Keys: keys, Readonly: readonly, Banner: o.banner, Files: files, Audit: al,
		Exec: o.fleet.ExecUntil, FreezeTimeout: o.fleet.FreezeTimeout(), Views: views, Commands: commands,
		FilterHistory: history.Open(filepath.Join(config.StateDir(), filterHistoryFile)),
		// :export json writes exactly what status --json prints.
		ExportJSON: func(w io.Writer, gs []*fleet.Guest) error { return c.writeStatusJSON(w, gs, nil) }})
	procs := governProcs(ctx) // procs.go: one processor while quiet
	_, err = tea.NewProgram(m, tea.WithContext(ctx), tea.WithFilter(procs.filter)).Run()
	procs.stop() // a thaw at exit gets every processor
	screenDone.Store(true)

	// The dashboard asks before quitting with guests frozen by us; a signal
	// (SIGTERM, a closed terminal) gives it no chance to, so thaw them here.
	code = exitOK
	if ctx.Err() != nil {
		code = c.thawOurs(ctx, o.fleet, audit.SourceDashboard, "thaw (the dashboard was signalled to exit)")
	} else if err != nil && !errors.Is(err, tea.ErrInterrupted) {
		c.errorf("dashboard: %v", err)
		code = exitFail
	}
	if left := o.fleet.FrozenByUs(); len(left) > 0 && ctx.Err() == nil && o.cfg == nil {
		// No thaw to suggest: the demo's guests lived in this process.
		fmt.Fprintf(c.stderr, "left frozen: %s (demo guests, simulated by this process: gone with it)\n",
			strings.Join(texts(left, nameCells), ", "))
	} else if len(left) > 0 && ctx.Err() == nil {
		fmt.Fprintf(c.stderr, "!!! left FROZEN at your request: %s\n!!! thaw with: %s\n",
			strings.Join(texts(left, nameCells), ", "), c.thawCommand(left...))
	}
	return code
}

// dashboardCommands are the fleet file's [[commands]] for the dashboard,
// checked against its action table and keys (tui.CheckCommands); a problem
// is a fleet-file error at the line of the entry's key at fault.
func dashboardCommands(cfg *config.File, keys map[string][]string) ([]tui.Command, error) {
	if cfg == nil {
		return nil, nil
	}
	out := make([]tui.Command, len(cfg.Commands))
	for i, c := range cfg.Commands {
		out[i] = tui.Command{Name: c.Name, Key: c.Key, Run: c.Run, Description: c.Description, Dangerous: c.Dangerous}
	}
	err := tui.CheckCommands(keys, out)
	var ce *tui.CommandError
	if !errors.As(err, &ce) {
		return out, err
	}
	c := cfg.Commands[ce.Index]
	at := map[string]config.Position{"name": c.NameAt, "key": c.KeyAt, "run": c.RunAt, "dangerous": c.DangerousAt}[ce.Field]
	if at.Line == 0 {
		at = c.At
	}
	return nil, cfg.ErrorAt(at, ce.Msg)
}

// thawOurs thaws every guest this process froze, on a fresh clock since the
// caller's context is usually what ended. The thaw is audited (source, and
// action saying why), but never refused for the audit log: a guest left
// frozen is worse than a thaw missing from the record. A thaw that fails
// leaves a guest frozen: exitFrozen.
func (c *cli) thawOurs(ctx context.Context, f *fleet.Fleet, source, action string) int {
	frozen := f.FrozenByUs()
	if len(frozen) == 0 {
		return exitOK
	}
	thaw := fleet.Action{Kind: fleet.ActThaw}
	gs := make([]audit.Guest, len(frozen))
	for i, n := range frozen {
		gs[i] = audit.Guest{Name: n, Address: guestAddress(f)(n), Result: "pending", Sends: fleet.AuditSends(thaw.Sends(time.Now()))}
	}
	aud, err := c.auditIntent(source, action, c.recordedCommand(nil, nil), nil, gs)
	if err != nil {
		c.errorf("warning: thawing anyway: %v", err)
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	code := exitOK
	results := f.ThawOurs(tctx)
	aud.outcome(c, fleet.AuditResults(results, guestAddress(f)), nil)
	// Each attempt is a notice on stderr as it happens; this is the verdict.
	for _, r := range results {
		if r.OK {
			fmt.Fprintf(c.stderr, "thawed %s: %s\n", present.Text(r.Guest, nameCells), present.Text(r.Result, errCells))
			continue
		}
		code = exitFrozen
		fmt.Fprintf(c.stderr, "\n!!! %s IS STILL FROZEN: the thaw failed: %s\n!!! its disk writes block until it is thawed: %s\n\n",
			present.Text(r.Guest, nameCells), present.Text(r.Err, errCells), c.thawCommand(r.Guest))
	}
	return code
}

// dashboardViews checks the fleet file's [[views]] against the dashboard's
// keys (after [keys]) and filters, naming the line of a problem, and hands
// them to the dashboard.
func dashboardViews(cfg *config.File, keys map[string][]string) ([]tui.View, error) {
	if cfg == nil {
		return nil, nil
	}
	if err := cfg.CheckViews(tui.KeyOwners(keys), fleet.CheckFilter); err != nil {
		return nil, err
	}
	views := make([]tui.View, len(cfg.Views))
	for i, v := range cfg.Views {
		views[i] = tui.View{Name: v.Name, Key: v.Key, Filter: v.Filter, Sort: v.Sort, Columns: v.Columns, Group: v.Group}
	}
	if err := tui.CheckViews(keys, views); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Path, err) // a check config lacks: a bug, but never a silent one
	}
	return views, nil
}

// dashboardParts checks what of the fleet file only the dashboard uses and
// only it can check ([keys] against its built-in keys, [[views]] and
// [[commands]] against its own words), and returns the views and commands.
// Every command runs it on the file it opens: the whole file is checked
// first, so that `status` does not pass a file the dashboard refuses.
func dashboardParts(cfg *config.File) ([]tui.View, []tui.Command, error) {
	var keys map[string][]string
	if cfg != nil {
		keys = cfg.Keys
	}
	if err := tui.CheckKeys(keys); err != nil {
		var ke *tui.KeyError
		if errors.As(err, &ke) {
			return nil, nil, cfg.KeyError(ke.Action, "[keys] "+ke.Msg)
		}
		return nil, nil, fmt.Errorf("%s: [keys]: %w", cfg.Path, err)
	}
	views, err := dashboardViews(cfg, keys)
	if err != nil {
		return nil, nil, err
	}
	commands, err := dashboardCommands(cfg, keys)
	if err != nil {
		return nil, nil, err
	}
	return views, commands, nil
}

// dashboardGCPercent is the dashboard's GOGC. Its heap is mostly the
// fleet's state, long-lived (some 10 KB a guest), while what it allocates
// per poll is small and short-lived: at Go's default of 100 the garbage
// grows to the size of the whole fleet's state between two collections.
// When the state was 46 KB a guest, at 10,000 simulated guests
// (scripts/scale.sh, README: Performance) 100 gave 320-344 MiB RSS, 40
// 235-238 MiB, within the noise in CPU; and 40 it was. With the state at a
// fifth of that, the collector at 40 was an eighth of the steady CPU, and
// 70 took 1.3-4.5 points of a core less than 40 and 0.5-2.6 less than 55
// in every alternating pair (scripts/abdash.sh), for 198-205 MiB RSS on
// average and 205-217 at most, against 182-183 and 185-186 at 40 (the
// goal: 250 MB).
const dashboardGCPercent = 70

// statusGCPercent is a one-shot status's GOGC. Its heap only grows, from
// nothing to every guest's replies and output (some 13 KB a guest), and at
// Go's default of 100 it is collected at each doubling, every collection
// marking all of it again. At 10,000 simulated guests (README:
// Performance) 200 took less CPU than 100 in 18 of 22 alternating pairs
// (0.77–1.07×, median 0.91×), for 158–178 against 134–149 MiB peak RSS;
// 400 was no cheaper than 200 and took 213–220 MiB.
const statusGCPercent = 200

// dashboardGC sets the collector for a long-running dashboard, unless the
// operator set GOGC (or GOMEMLIMIT) in the environment: theirs stands.
func dashboardGC() { gcPercent(dashboardGCPercent) }

// gcPercent sets the collector's GOGC to p unless the operator set GOGC or
// GOMEMLIMIT.
func gcPercent(p int) {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(p)
	}
}
