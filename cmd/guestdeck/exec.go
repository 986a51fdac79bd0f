package main

import (
	"bufio"
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

// execArgs is a parsed exec command line.
type execArgs struct {
	spec       fleet.ExecSpec
	selectors  []string
	stdinFrom  string
	asJSON     bool
	yes, dry   bool
	concurrent int
	words      []string // the arguments after the flags, for the audit log
}

func (c *cli) exec(ctx context.Context, args []string) int {
	x, code, ok := c.parseExec(args)
	if !ok {
		return code
	}
	spec := &x.spec
	what := "exec " + present.Text(spec.String(), 200)
	// Refuse before any file is read, fleet file included, or agent dialled.
	if c.readonly {
		c.errorf("%s: refused: --readonly forbids running programs in guests; nothing was sent", what)
		return exitUsage
	}
	if x.stdinFrom != "" {
		b, err := c.readExecInput(x.stdinFrom)
		if err != nil {
			c.errorf("exec: --stdin: %v; nothing was sent", err)
			return exitUsage
		}
		spec.Stdin = b
	}

	o, code := c.openFleet(ctx, false, func(opts *fleet.Options) {
		opts.Audit = c.auditLog()
		if x.concurrent > 0 {
			opts.Concurrency = x.concurrent
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
	gs, err := selectPolled(ctx, f, x.selectors)
	if err != nil {
		c.errorf("exec: %v", err)
		return exitUsage
	}
	if len(gs) == 0 {
		c.errorf("%s: the selectors %s match no guest", what, present.Text(strings.Join(x.selectors, " "), 200))
		return exitUsage
	}
	command := c.recordedCommand(x.words, nil)
	if x.dry {
		return c.execDryRun(*spec, gs, command, x.selectors, x.asJSON)
	}
	if len(gs) > 1 && !x.yes && !c.confirm(fmt.Sprintf("run %s on %d guests (%s): %s?", present.Text(spec.String(), 200), len(gs),
		present.Text(strings.Join(x.selectors, " "), 200), summariseNames(gs))) {
		return exitUsage
	}
	aud, err := c.auditIntent(audit.SourceCLI, "exec "+spec.String(), command, x.selectors, fleet.ExecAuditPlan(*spec, gs, audit.Intent))
	if err != nil {
		c.errorf("%s: refused: %v; nothing was sent", what, err)
		return exitUsage
	}
	results, stopped := c.streamExec(ctx, f, *spec, gs, x.asJSON, what)
	aud.outcome(c, fleet.ExecAuditResults(results, guestAddress(f)), stopped)
	for _, r := range results {
		if !r.OK() {
			return exitFail
		}
	}
	return exitOK
}

// parseExec reads exec's flags and words; ok is false when the command
// line is refused (code says how).
func (c *cli) parseExec(args []string) (x execArgs, code int, ok bool) {
	fs := c.flags("exec")
	fs.BoolVar(&x.asJSON, "json", false, "print a JSON array of per-guest results (exact output)")
	fs.BoolVar(&x.yes, "yes", false, "do not ask for confirmation (needed without a terminal when more than one guest is selected)")
	fs.BoolVar(&x.dry, "dry-run", false, "print what would be sent to each guest, or why it would be skipped; send nothing")
	timeout := fs.Duration("timeout", fleet.DefaultExecTimeout, "wait at most `D` per guest for the program to exit (it is then reported still running; nothing is killed)")
	fs.StringVar(&x.stdinFrom, "stdin", "", "send `FILE` (or - for standard input) to the program's stdin, at most "+agentclient.FormatBytes(fleet.MaxExecInput))
	fs.IntVar(&x.concurrent, "concurrency", 0, "run on at most `N` guests at once (default: the fleet file's concurrency, 64)")
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
		return x, code, false
	}
	x.words = fs.Args()
	dash := slices.Index(x.words, "--")
	if dash < 0 || dash+1 >= len(x.words) {
		c.errorf("exec: usage: guestdeck exec [FLAGS] SELECTOR... -- PROGRAM [ARGS...] (the -- and a program are needed)")
		return x, exitUsage, false
	}
	var argv []string
	x.selectors, argv = x.words[:dash], x.words[dash+1:]
	switch {
	case len(x.selectors) == 0:
		c.errorf("exec: no guests selected: name them before --, or use a selector such as all, tag:X, host:Y, state:Z")
	case *timeout <= 0 || *timeout > fleet.MaxExecTimeout:
		c.errorf("exec: --timeout must be more than 0 and at most %s", fleet.MaxExecTimeout)
	case x.concurrent < 0 || x.concurrent > 1024:
		c.errorf("exec: --concurrency must be between 1 and 1024")
	default:
		x.spec = fleet.ExecSpec{Path: argv[0], Args: argv[1:], Timeout: *timeout, MaxOutput: limit}
		return x, exitOK, true
	}
	return x, exitUsage, false
}

// streamExec runs spec and writes each guest's output as the guest
// finishes (JSON objects and text blocks alike, in the order they finish),
// then lets it go: a run holds the output of the guests in flight only.
// The text form ends with a table of outcomes in selection order.
//
// An interrupt stops it in two steps, as run's does (twoStage): the first
// starts no program on a further guest and still waits for the ones
// running; the second stops waiting (the programs go on in the guests,
// reported still running).
func (c *cli) streamExec(ctx context.Context, f *fleet.Fleet, spec fleet.ExecSpec, gs []*fleet.Guest, asJSON bool, what string) (results []fleet.ExecResult, stopped *audit.Stop) {
	var mu sync.Mutex
	done := 0
	tty := isTerminal(c.stderr)
	out := bufio.NewWriterSize(c.stdout, 64<<10)
	if asJSON {
		out.WriteString("[")
	}
	say := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if tty {
			fmt.Fprint(c.stderr, "\r\033[K")
		}
		fmt.Fprintf(c.stderr, "%s: %s\n", what, msg)
	}
	waits, end, stoppedAt := twoStage(ctx, say,
		"stopping: no program is started on a further guest; the ones running are waited for (interrupt again to stop waiting)",
		"no longer waiting: the programs still running go on in their guests")
	defer end()
	results = f.ExecStreamUntil(waits, ctx, spec, names(gs), func(r fleet.ExecResult) {
		mu.Lock()
		defer mu.Unlock()
		if r.State == fleet.ExecRunning {
			return
		}
		if tty {
			fmt.Fprint(c.stderr, "\r\033[K")
		}
		if asJSON {
			if done > 0 {
				out.WriteString(",")
			}
			out.WriteString("\n  ")
			writeExecRow(out, r, execChunk)
		} else {
			printExecOutput(out, r, spec.MaxOutput)
		}
		out.Flush()
		done++
		if tty {
			fmt.Fprintf(c.stderr, "\r%s: %d/%d done", what, done, len(gs))
		}
	})
	end()
	if tty {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
	if asJSON {
		out.WriteString("\n]\n")
	} else {
		printExecTable(out, results)
	}
	out.Flush()
	notStarted := 0
	for _, r := range results {
		if r.NotStarted {
			notStarted++
		}
	}
	return results, interruptStop(stoppedAt(), notStarted)
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

// execChunk is how much output is escaped at a time: 16 MiB of NULs is
// 96 MiB of \u0000 in JSON, and 64 MiB of \x00 as text, never held whole.
const execChunk = 32 << 10

// writeExecRow writes one guest's result as an execJSON object, indented
// as an element of the top-level array, exactly as encoding/json (made
// terminal-safe by present.SafeJSON) writes it, but with the output escaped
// and written chunk bytes at a time.
func writeExecRow(w *bufio.Writer, r fleet.ExecResult, chunk int) {
	field := func(first bool, key string) {
		if !first {
			w.WriteString(",")
		}
		w.WriteString("\n    \"" + key + "\": ")
	}
	value := func(key string, v any) {
		field(key == "name", key)
		b, _ := json.Marshal(v)
		w.Write(present.SafeJSON(b))
	}
	var pid *int64
	if r.PID != 0 {
		pid = &r.PID
	}
	var errText *string
	if r.Err != "" {
		errText = &r.Err
	}
	w.WriteString("{")
	value("name", r.Guest)
	value("state", string(r.State))
	value("pid", pid)
	value("exitcode", r.ExitCode)
	value("signal", r.Signal)
	field(false, "stdout")
	writeJSONString(w, r.Stdout, chunk)
	field(false, "stderr")
	writeJSONString(w, r.Stderr, chunk)
	if !utf8.Valid(r.Stdout) {
		field(false, "stdout_base64")
		writeBase64String(w, r.Stdout)
	}
	if !utf8.Valid(r.Stderr) {
		field(false, "stderr_base64")
		writeBase64String(w, r.Stderr)
	}
	value("truncated", r.Truncated)
	value("error", errText)
	value("duration_ms", ms(r.Duration))
	w.WriteString("\n  }")
}

// writeJSONString writes b as the JSON string encoding/json writes for
// string(b) (invalid UTF-8 as \ufffd), made terminal-safe, about chunk
// bytes of b at a time (cutRune).
func writeJSONString(w *bufio.Writer, b []byte, chunk int) {
	var q bytes.Buffer
	enc := json.NewEncoder(&q)
	w.WriteString(`"`)
	for len(b) > 0 {
		n := cutRune(b, min(len(b), chunk))
		q.Reset()
		enc.Encode(string(b[:n]))
		w.Write(present.SafeJSON(q.Bytes()[1 : q.Len()-2])) // "...",\n
		b = b[n:]
	}
	w.WriteString(`"`)
}

// cutRune moves a cut of b at n forward to where no rune is split: to a
// rune's start, or past UTFMax-1 bytes that start none (those are invalid
// alone whatever follows).
func cutRune(b []byte, n int) int {
	for k := 0; n < len(b) && !utf8.RuneStart(b[n]) && k < utf8.UTFMax-1; k++ {
		n++
	}
	return n
}

// writeBase64String writes b in base64 as a JSON string.
func writeBase64String(w *bufio.Writer, b []byte) {
	w.WriteString(`"`)
	enc := base64.NewEncoder(base64.StdEncoding, w)
	enc.Write(b)
	enc.Close()
	w.WriteString(`"`)
}

// printExecOutput prints one guest's output under a header, escaped (the
// exact bytes are what --json gives).
func printExecOutput(w io.Writer, r fleet.ExecResult, limit int) {
	if r.State != fleet.ExecExited && len(r.Stdout)+len(r.Stderr) == 0 {
		return
	}
	fmt.Fprintf(w, "==> %s <== %s\n", present.Text(r.Guest, nameCells), present.Text(r.Summary(), errCells))
	writeBlock(w, r.Stdout)
	if len(r.Stderr) > 0 {
		fmt.Fprintf(w, "--- %s stderr ---\n", present.Text(r.Guest, nameCells))
		writeBlock(w, r.Stderr)
	}
	if r.Truncated {
		fmt.Fprintf(w, "--- %s: output truncated (kept at most %s of stdout and of stderr) ---\n", present.Text(r.Guest, nameCells), agentclient.FormatBytes(int64(limit)))
	}
}

// printExecTable prints the table of outcomes.
func printExecTable(w io.Writer, rs []fleet.ExecResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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

// writeBlock writes guest output escaped, ending in a newline, about
// execChunk bytes at a time, each piece cut after a newline where there is
// one (tabs expand by column), else where no rune or CRLF is split.
func writeBlock(w io.Writer, b []byte) {
	if len(b) == 0 {
		return
	}
	last := ""
	for len(b) > 0 {
		n := len(b)
		if n > execChunk {
			n = bytes.LastIndexByte(b[:execChunk], '\n') + 1
			if n == 0 {
				n = cutRune(b, execChunk)
				if n < len(b) && b[n-1] == '\r' && b[n] == '\n' {
					n++
				}
			}
		}
		last = present.Block(string(b[:n]), 8)
		io.WriteString(w, last)
		b = b[n:]
	}
	if !strings.HasSuffix(last, "\n") {
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
