package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/tui/present"
)

// execJSON is one guest in `exec --json`. stdout and stderr are the exact
// output when it is UTF-8; otherwise they hold it with invalid bytes as
// U+FFFD and stdout_base64 / stderr_base64 the exact bytes.
type execJSON struct {
	Name         string  `json:"name"`
	State        string  `json:"state"`
	PID          *int64  `json:"pid"`
	ExitCode     *int    `json:"exitcode"`
	Signal       *int    `json:"signal"`
	Stdout       string  `json:"stdout"`
	Stderr       string  `json:"stderr"`
	StdoutBase64 *string `json:"stdout_base64,omitempty"`
	StderrBase64 *string `json:"stderr_base64,omitempty"`
	Truncated    bool    `json:"truncated"`
	Error        *string `json:"error"`
	DurationMS   float64 `json:"duration_ms"`
}

// execDryJSON is one guest in `exec --dry-run --json`.
type execDryJSON struct {
	Name      string       `json:"name"`
	WouldSend []fleet.Send `json:"would_send"`
	Skipped   bool         `json:"skipped"`
	Reason    string       `json:"reason"`
}

func (c *cli) exec(ctx context.Context, args []string) int {
	fs := c.flags("exec")
	asJSON := fs.Bool("json", false, "print a JSON array of per-guest results (exact output)")
	yes := fs.Bool("yes", false, "do not ask for confirmation (needed without a terminal when more than one guest is selected)")
	dry := fs.Bool("dry-run", false, "print what would be sent to each guest, or why it would be skipped; send nothing")
	timeout := fs.Duration("timeout", fleet.DefaultExecTimeout, "wait at most `D` per guest for the program to exit (it is then reported still running; nothing is killed)")
	stdinFrom := fs.String("stdin", "", "send `FILE` (or - for standard input) to the program's stdin, at most "+agentclient.FormatBytes(fleet.MaxExecInput))
	conc := fs.Int("concurrency", 0, "run on at most `N` guests at once (default: the fleet file's concurrency, 64)")
	limit := fleet.DefaultExecOutput
	fs.Func("output-limit", "keep at most `N` bytes of stdout and of stderr per guest (K and M suffixes; default 1M, at most 16M, the agent's own cap)", func(v string) error {
		n, err := parseByteSize(v)
		switch {
		case err != nil:
			return err
		case n <= 0 || n > fleet.MaxExecOutput:
			return fmt.Errorf("want more than 0 and at most %s", agentclient.FormatBytes(fleet.MaxExecOutput))
		}
		limit = n
		return nil
	})
	if code, ok := parse(fs, args); !ok {
		return code
	}
	rest := fs.Args()
	dash := slices.Index(rest, "--")
	if dash < 0 || dash+1 >= len(rest) {
		c.errorf("exec: usage: guestdeck exec [FLAGS] SELECTOR... -- PROGRAM [ARGS...] (the -- and a program are needed)")
		return exitUsage
	}
	selectors, argv := rest[:dash], rest[dash+1:]
	if len(selectors) == 0 {
		c.errorf("exec: no guests selected: name them before --, or use a selector such as all, tag:X, host:Y, state:Z")
		return exitUsage
	}
	switch {
	case *timeout <= 0 || *timeout > fleet.MaxExecTimeout:
		c.errorf("exec: --timeout must be more than 0 and at most %s", fleet.MaxExecTimeout)
		return exitUsage
	case *conc < 0 || *conc > 1024:
		c.errorf("exec: --concurrency must be between 1 and 1024")
		return exitUsage
	}
	spec := fleet.ExecSpec{Path: argv[0], Args: argv[1:], Timeout: *timeout, MaxOutput: limit}
	what := "exec " + present.Text(spec.String(), 200)
	// Refuse before any file is read, fleet file included, or agent dialled.
	if c.readonly {
		c.errorf("%s: refused: --readonly forbids running programs in guests; nothing was sent", what)
		return exitUsage
	}
	if *stdinFrom != "" {
		b, err := c.readExecInput(*stdinFrom)
		if err != nil {
			c.errorf("exec: --stdin: %v; nothing was sent", err)
			return exitUsage
		}
		spec.Stdin = b
	}

	o, code := c.openFleet(ctx, false, func(opts *fleet.Options) {
		opts.Audit = c.auditLog()
		if *conc > 0 {
			opts.Concurrency = *conc
		}
	})
	if o == nil {
		return code
	}
	defer o.close()
	f := o.fleet
	if c.readonly {
		c.errorf("%s: refused: the fleet file says readonly = true (like --readonly); nothing was sent", what)
		return exitUsage
	}
	gs, err := selectPolled(ctx, f, selectors)
	if err != nil {
		c.errorf("exec: %v", err)
		return exitUsage
	}
	if len(gs) == 0 {
		c.errorf("%s: the selectors %s match no guest", what, present.Text(strings.Join(selectors, " "), 200))
		return exitUsage
	}
	command := c.recordedCommand(fs.Args(), nil)
	if *dry {
		return c.execDryRun(spec, gs, command, selectors, *asJSON)
	}
	if len(gs) > 1 && !*yes && !c.confirm(fmt.Sprintf("run %s on %d guests (%s): %s?", present.Text(spec.String(), 200), len(gs),
		present.Text(strings.Join(selectors, " "), 200), summariseNames(gs))) {
		return exitUsage
	}
	aud, err := c.auditIntent(audit.SourceCLI, "exec "+spec.String(), command, selectors, fleet.ExecAuditPlan(spec, gs, audit.Intent))
	if err != nil {
		c.errorf("%s: refused: %v; nothing was sent", what, err)
		return exitUsage
	}

	var mu sync.Mutex
	done := 0
	tty := isTerminal(c.stderr)
	results := f.Exec(ctx, spec, names(gs), func(r fleet.ExecResult) {
		mu.Lock()
		defer mu.Unlock()
		if r.State != fleet.ExecRunning {
			done++
		}
		if tty {
			fmt.Fprintf(c.stderr, "\r%s: %d/%d done", what, done, len(gs))
		}
	})
	if tty {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
	aud.outcome(c, fleet.ExecAuditResults(results, guestAddress(f)))
	if *asJSON {
		c.writeExecJSON(results)
	} else {
		c.printExec(results, limit)
	}
	for _, r := range results {
		if !r.OK() {
			return exitFail
		}
	}
	return exitOK
}

// readExecInput reads --stdin's FILE (or standard input for -), refusing
// more than the agent is sent.
func (c *cli) readExecInput(from string) ([]byte, error) {
	var r io.Reader = c.stdin
	if from != "-" {
		fh, err := os.Open(from)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	b, err := io.ReadAll(io.LimitReader(r, fleet.MaxExecInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > fleet.MaxExecInput {
		return nil, fmt.Errorf("more than the %s sent to a program's stdin", agentclient.FormatBytes(fleet.MaxExecInput))
	}
	return b, nil
}

// parseByteSize reads 4096, 64K, 64KiB, 1M, 1MiB.
func parseByteSize(s string) (int, error) {
	mult := 1
	t := strings.TrimSuffix(strings.TrimSuffix(s, "iB"), "B")
	switch {
	case strings.HasSuffix(t, "K"), strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"), strings.HasSuffix(t, "m"):
		mult, t = 1<<20, t[:len(t)-1]
	}
	n, err := strconv.Atoi(t)
	if err != nil || n > (1<<40)/mult {
		return 0, fmt.Errorf("want a size such as 4096, 64K or 1M")
	}
	return n * mult, nil
}

// writeExecJSON writes the results as one JSON array, a guest at a time:
// output a terminal would act on grows sixfold as JSON escapes (16 MiB of
// NULs is 96 MiB of \u0000), so the whole array is never held at once.
func (c *cli) writeExecJSON(rs []fleet.ExecResult) {
	rows := execJSONRows(rs)
	io.WriteString(c.stdout, "[")
	for i, row := range rows {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("  ", "  ")
		enc.Encode(row)
		sep := ","
		if i == len(rows)-1 {
			sep = ""
		}
		c.stdout.Write([]byte("\n  "))
		c.stdout.Write(present.SafeJSON(bytes.TrimSuffix(b.Bytes(), []byte("\n"))))
		io.WriteString(c.stdout, sep)
		rows[i] = execJSON{} // let its output go
	}
	io.WriteString(c.stdout, "\n]\n")
}

func execJSONRows(rs []fleet.ExecResult) []execJSON {
	out := make([]execJSON, len(rs))
	for i, r := range rs {
		j := execJSON{Name: r.Guest, State: string(r.State), ExitCode: r.ExitCode, Signal: r.Signal,
			Stdout: string(r.Stdout), Stderr: string(r.Stderr), Truncated: r.Truncated, DurationMS: ms(r.Duration)}
		if r.PID != 0 {
			pid := r.PID
			j.PID = &pid
		}
		if !utf8.Valid(r.Stdout) {
			s := b64(r.Stdout)
			j.StdoutBase64 = &s
		}
		if !utf8.Valid(r.Stderr) {
			s := b64(r.Stderr)
			j.StderrBase64 = &s
		}
		if r.Err != "" {
			e := r.Err
			j.Error = &e
		}
		out[i] = j
	}
	return out
}

// printExec prints each guest's output under a header, escaped (the exact
// bytes are what --json gives), then a table of outcomes.
func (c *cli) printExec(rs []fleet.ExecResult, limit int) {
	for _, r := range rs {
		if r.State != fleet.ExecExited && len(r.Stdout)+len(r.Stderr) == 0 {
			continue
		}
		fmt.Fprintf(c.stdout, "==> %s <== %s\n", present.Text(r.Guest, nameCells), present.Text(r.Summary(), errCells))
		writeBlock(c.stdout, r.Stdout)
		if len(r.Stderr) > 0 {
			fmt.Fprintf(c.stdout, "--- %s stderr ---\n", present.Text(r.Guest, nameCells))
			writeBlock(c.stdout, r.Stderr)
		}
		if r.Truncated {
			fmt.Fprintf(c.stdout, "--- %s: output truncated (kept at most %s of stdout and of stderr) ---\n", present.Text(r.Guest, nameCells), agentclient.FormatBytes(int64(limit)))
		}
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tOUTCOME\tTIME\tDETAIL")
	for _, r := range rs {
		outcome := "ok"
		switch {
		case r.State == fleet.ExecSkipped:
			outcome = "skipped"
		case r.State == fleet.ExecStillRunning:
			outcome = "RUNNING"
		case !r.OK():
			outcome = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", present.Text(r.Guest, nameCells), outcome, roundDur(r.Duration), present.Text(r.Summary(), errCells))
	}
	tw.Flush()
}

// writeBlock writes guest output escaped, ending in a newline.
func writeBlock(w io.Writer, b []byte) {
	if len(b) == 0 {
		return
	}
	s := present.Block(string(b), 8)
	io.WriteString(w, s)
	if !strings.HasSuffix(s, "\n") {
		io.WriteString(w, "\n")
	}
}

// execDryRun prints what exec would send to each guest, or why a guest
// would be skipped, sends nothing, and records the dry run in the audit
// log. Exit 0 when every guest would be sent it, 1 when some would be
// skipped, 2 when the real run would be refused (the log cannot be
// written).
func (c *cli) execDryRun(spec fleet.ExecSpec, gs []*fleet.Guest, command, selectors []string, asJSON bool) int {
	rows := make([]execDryJSON, len(gs))
	code := exitOK
	for i, g := range gs {
		sends, skip := spec.Plan(g)
		if sends == nil {
			sends = []fleet.Send{}
		}
		rows[i] = execDryJSON{Name: g.Name, WouldSend: sends, Skipped: skip != "", Reason: skip}
		if skip != "" {
			code = exitFail
		}
	}
	if asJSON {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // placeholders read <...>
		enc.Encode(rows)
		c.stdout.Write(present.SafeJSON(b.Bytes()))
	} else {
		fmt.Fprintf(c.stdout, "dry run: exec %s on %d guest(s), waiting up to %s each; nothing is sent\n", present.Text(spec.String(), maxLineCells), len(gs), spec.Timeout)
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GUEST\tWOULD SEND")
		for _, r := range rows {
			name := present.Text(r.Name, nameCells)
			if r.Skipped {
				fmt.Fprintf(tw, "%s\tskipped: %s\n", name, present.Text(r.Reason, errCells))
				continue
			}
			for j, s := range r.WouldSend {
				if j > 0 {
					name = ""
				}
				fmt.Fprintf(tw, "%s\t%s\n", name, present.Text(s.JSON(), 2*errCells))
			}
		}
		tw.Flush()
	}
	l := c.auditLog()
	err := l.Append(audit.Entry{Phase: audit.DryRun, Source: audit.SourceCLI, Command: command,
		Action: "exec " + spec.String(), Selector: selectors, Guests: fleet.ExecAuditPlan(spec, gs, audit.DryRun)})
	if err != nil {
		c.errorf("exec --dry-run: %v: the real run would be refused before sending anything", auditError(l, err))
		return exitUsage
	}
	return code
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
