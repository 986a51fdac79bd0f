package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// actionArity says how many words after the action's name belong to it.
// Optional words (shutdown's mode) are taken only when they are one of the
// listed values, so `run shutdown web-1` and `run shutdown reboot web-1` both
// read as expected. `--` ends the action explicitly.
func actionArity(name string, rest []string) int {
	switch name {
	case "shutdown":
		if len(rest) > 0 && slices.Contains([]string{"powerdown", "reboot", "halt"}, rest[0]) {
			return 1
		}
		return 0
	case "suspend", "read":
		return 1
	case "vcpus", "write":
		return 2
	}
	return 0
}

// splitAction splits `ACTION [ARGS] [--] SELECTOR...`.
func splitAction(args []string) (action, selectors []string) {
	if i := slices.Index(args, "--"); i >= 0 {
		return args[:i], args[i+1:]
	}
	if len(args) == 0 {
		return nil, nil
	}
	n := 1 + actionArity(args[0], args[1:])
	n = min(n, len(args))
	return args[:n], args[n:]
}

// runJSON is one guest in `run --json`.
type runJSON struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped"`
	Error   string `json:"error"`
	Result  string `json:"result"`
}

func (c *cli) runAction(ctx context.Context, args []string) int {
	fs := c.flags("run")
	asJSON := fs.Bool("json", false, "print a JSON array of per-guest results")
	yes := fs.Bool("yes", false, "do not ask for confirmation (needed without a terminal, and for freeze without --hold)")
	hold := fs.Duration("hold", 0, "freeze only: keep guestdeck running this long (or until ctrl-c), then thaw")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	words, selectors := splitAction(fs.Args())
	if len(words) == 0 {
		c.errorf("run: no action (ping, info, freeze, thaw, shutdown [MODE], suspend MODE, settime, fstrim, vcpus online|offline IDS, read PATH, write PATH DATA)")
		return exitUsage
	}
	act, err := fleet.ParseAction(words)
	if err != nil {
		c.errorf("run: %v", err)
		return exitUsage
	}
	if len(selectors) == 0 {
		c.errorf("run %s: no guests selected: name them, or use a selector such as all, tag:X, host:Y, state:Z", act)
		return exitUsage
	}
	// Refuse before any fleet file is read or any agent dialled.
	if c.readonly && act.Mutating() {
		c.errorf("run %s: refused: --readonly forbids actions that change guests; nothing was sent", act)
		return exitUsage
	}
	if *hold != 0 && act.Kind != fleet.ActFreeze {
		c.errorf("run: --hold only applies to freeze")
		return exitUsage
	}
	if act.Kind == fleet.ActFreeze && *hold == 0 && !*yes {
		c.errorf("run freeze: guests stay frozen after guestdeck exits (their writes block until thawed);\n" +
			"  pass --yes to freeze and leave them frozen, or --hold DURATION to thaw automatically")
		return exitUsage
	}

	o, code := c.openFleet(ctx, false, func(opts *fleet.Options) {
		// The watchdog must not thaw before the hold ends.
		if *hold > 0 && opts.FreezeTimeout < *hold+time.Minute {
			opts.FreezeTimeout = *hold + time.Minute
		}
		opts.Who, opts.Promise = ledgerWho(act, *hold)
	})
	if o == nil {
		return code
	}
	defer o.close()
	f := o.fleet
	if c.readonly && act.Mutating() {
		c.errorf("run %s: refused: the fleet file says readonly = true (like --readonly); nothing was sent", act)
		return exitUsage
	}

	gs, err := selectPolled(ctx, f, selectors)
	if err != nil {
		c.errorf("run: %v", err)
		return exitUsage
	}
	if len(gs) == 0 {
		c.errorf("run %s: the selectors %s match no guest", act, strings.Join(selectors, " "))
		return exitUsage
	}
	if act.Destructive() && !*yes && !c.confirm(fmt.Sprintf("%s %d guest(s): %s?", act, len(gs), summariseNames(gs))) {
		return exitUsage
	}

	// progress runs on the fleet's goroutines.
	var mu sync.Mutex
	done := 0
	tty := isTerminal(c.stderr)
	results := f.Run(ctx, act, names(gs), func(fleet.Result) {
		mu.Lock()
		defer mu.Unlock()
		done++
		if tty {
			fmt.Fprintf(c.stderr, "\r%s: %d/%d", act, done, len(gs))
		}
	})
	if tty {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
	if act.Kind == fleet.ActFreeze && *hold == 0 {
		// The fleet's watchdog dies with this process: no automatic thaw.
		for i := range results {
			if j := strings.Index(results[i].Result, "; automatic thaw"); j >= 0 {
				results[i].Result = results[i].Result[:j] + "; stays frozen after guestdeck exits"
			}
		}
	}
	code = exitOK
	for _, r := range results {
		if !r.OK && !r.Skipped {
			code = exitFail
		}
	}
	c.printResults(act, results, *asJSON)

	if act.Kind == fleet.ActFreeze {
		frozen := f.FrozenByUs()
		if len(frozen) > 0 && *hold > 0 {
			if c.holdAndThaw(ctx, f, *hold, frozen) != exitOK {
				code = exitFail
			}
		} else if len(frozen) > 0 {
			fmt.Fprintf(c.stderr, "\n!!! %d guest(s) are FROZEN and stay frozen after guestdeck exits: their disk writes block.\n"+
				"!!! thaw them with:  guestdeck%s run thaw %s\n\n", len(frozen), c.globalFlagsText(), strings.Join(texts(frozen, nameCells), " "))
		}
	}
	return code
}

// ledgerWho is what the ledger records as having frozen or suspended a
// guest, and the thaw promised: the hold's end, or none for a freeze left
// frozen on purpose.
func ledgerWho(act fleet.Action, hold time.Duration) (string, time.Duration) {
	switch {
	case act.Kind == fleet.ActFreeze && hold > 0:
		return "run --hold", hold
	case act.Kind == fleet.ActFreeze:
		return "run --yes freeze", -1
	}
	return "run " + string(act.Kind), 0
}

// holdAndThaw waits for the hold to end (or an interrupt) and thaws the
// guests this process froze.
func (c *cli) holdAndThaw(ctx context.Context, f *fleet.Fleet, hold time.Duration, frozen []string) int {
	fmt.Fprintf(c.stderr, "holding %d guest(s) frozen until %s (ctrl-c thaws now)\n",
		len(frozen), time.Now().Add(hold).Format("15:04:05"))
	t := time.NewTimer(hold)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	return c.thawOurs(ctx, f)
}

// globalFlagsText repeats the fleet-file flag for commands we suggest.
func (c *cli) globalFlagsText() string {
	switch {
	case c.configPath != "":
		return " -c " + c.configPath
	case c.demo:
		return " --demo"
	}
	return ""
}

func (c *cli) printResults(act fleet.Action, results []fleet.Result, asJSON bool) {
	if asJSON {
		out := make([]runJSON, 0, len(results))
		for _, r := range results {
			out = append(out, runJSON{Name: r.Guest, OK: r.OK, Skipped: r.Skipped, Error: r.Err, Result: resultText(r)})
		}
		writeJSON(c.stdout, out)
		return
	}
	if act.Kind == fleet.ActRead {
		// File contents do not fit a table: print each guest's under a header.
		for _, r := range results {
			if r.OK {
				// Shown to a person, so escaped like any guest text: the exact
				// bytes are what cat, get and --json are for.
				fmt.Fprintf(c.stdout, "==> %s <==\n%s", present.Text(r.Guest, nameCells), present.Block(string(r.Data), 8))
				if len(r.Data) > 0 && r.Data[len(r.Data)-1] != '\n' {
					fmt.Fprintln(c.stdout)
				}
			}
		}
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tOUTCOME\tTIME\tDETAIL")
	for _, r := range results {
		outcome, detail := "ok", r.Result
		switch {
		case r.Skipped:
			outcome, detail = "skipped", r.Err
		case !r.OK:
			outcome, detail = "FAILED", r.Err
		}
		if act.Kind == fleet.ActRead && r.OK {
			detail = fmt.Sprintf("%d bytes", len(r.Data))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", present.Text(r.Guest, nameCells), outcome, roundDur(r.Duration), present.Text(detail, errCells))
	}
	tw.Flush()
}

// resultText is the JSON "result": the summary, or a read's content when it is text.
func resultText(r fleet.Result) string {
	if r.Data != nil && utf8.Valid(r.Data) {
		return string(r.Data)
	}
	return r.Result
}

func summariseNames(gs []*fleet.Guest) string {
	const show = 8
	ns := texts(names(gs), nameCells)
	if len(ns) <= show {
		return strings.Join(ns, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ns[:show], ", "), len(ns)-show)
}

// texts escapes and caps each of ss for the terminal (present.Text).
func texts(ss []string, max int) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = present.Text(s, max)
	}
	return out
}

// confirm asks on the terminal; without a terminal it refuses and says why.
func (c *cli) confirm(question string) bool {
	if !isTerminal(c.stdin) {
		c.errorf("refusing: %s needs confirmation and stdin is not a terminal; pass --yes", strings.TrimSuffix(question, "?"))
		return false
	}
	fmt.Fprintf(c.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	fmt.Fprintln(c.stderr, "cancelled")
	return false
}
