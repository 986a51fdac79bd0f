package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/internal/localfile"
	"github.com/guestdeck/guestdeck/tui/present"
)

// guestFleet opens the fleet for a one-guest command and checks the guest exists.
func (c *cli) guestFleet(ctx context.Context, guest string) (*opened, int) {
	return c.guestFleetWith(ctx, guest, nil)
}

// guestFleetWith is guestFleet with the fleet's options changed by tweak
// (agent --timeout).
func (c *cli) guestFleetWith(ctx context.Context, guest string, tweak func(*fleet.Options)) (*opened, int) {
	o, code := c.openFleet(ctx, false, tweak)
	if o == nil {
		return nil, code
	}
	if !c.knownGuest(o, guest) {
		o.close()
		return nil, exitUsage
	}
	return o, exitOK
}

// reason turns an agent error into the words a person needs, escaped for
// the terminal (present.Reason), with the command that helps when the guest
// is frozen.
func (c *cli) reason(guest string, err error) string {
	if agentclient.IsFrozen(err) {
		return fmt.Sprintf("guest %s is frozen: its agent refuses file access until thawed (%s)", present.Text(guest, nameCells), c.thawCommand(guest))
	}
	return present.Reason(err, errCells)
}

func (c *cli) cat(ctx context.Context, args []string) int {
	fs := c.flags("cat")
	from := fs.String("from", "", "many guests: print guest `PATH` of every selected guest, each under a ==> GUEST <== header")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *from != "" {
		return c.catMany(ctx, *from, fs.Args())
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitUsage
	}
	guest, p := fs.Arg(0), fs.Arg(1)
	o, code := c.guestFleet(ctx, guest)
	if o == nil {
		return code
	}
	defer o.close()
	bar := c.progress(guest + ":" + p)
	// A bar drawn between the lines of the file itself would garble both.
	bar.tty = bar.tty && !isTerminal(c.stdout)
	w := c.fileOut()
	_, err := o.fleet.ReadFile(ctx, guest, p, w, bar.update)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	bar.finish(err)
	if err != nil {
		c.errorf("cat %s:%s: %s", guest, p, c.reason(guest, err))
		return exitFail
	}
	return exitOK
}

func (c *cli) get(ctx context.Context, args []string) int {
	fs := c.flags("get")
	force := fs.Bool("force", false, "replace an existing local file, or write into an existing device or FIFO (without it, get never touches what is there)")
	from := fs.String("from", "", "many guests: the guest `PATH` to copy from every selected guest (with --to)")
	to := fs.String("to", "", "many guests: the local `DIR` that gets one file per guest, named after the guest (with --from)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *from != "" || *to != "" {
		return c.getMany(ctx, *from, *to, *force, fs.Args())
	}
	if fs.NArg() != 3 {
		fs.Usage()
		return exitUsage
	}
	guest, p, dest := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	if dest != "-" {
		kind, _, err := localfile.Inspect(dest)
		if err == nil && kind == localfile.Directory {
			// The file in DEST is named after the guest's, which must be
			// a plain name (present.LocalName).
			name, ok := present.LocalName(p)
			if !ok {
				c.errorf("get %s:%s: refused: %s is a directory, and the guest file's name is no local file name "+
					"(empty, . or .., or it holds control or invisible characters); name the local file: get GUEST PATH DIR/NAME; nothing was read",
					guest, p, dest)
				return exitUsage
			}
			dest = filepath.Join(dest, name)
			kind, _, err = localfile.Inspect(dest)
		}
		// A destination a download is never written into is refused
		// before the guest is asked for anything; one that exists is
		// written only with --force.
		if err == nil {
			if err := c.destinationOK(dest, kind, *force); err != nil {
				c.errorf("get %s:%s: refused: %v; nothing was read", guest, p, err)
				return exitUsage
			}
		}
	}
	o, code := c.guestFleet(ctx, guest)
	if o == nil {
		return code
	}
	defer o.close()

	var w io.Writer
	var lf *localfile.File
	out := c.fileOut()
	if dest == "-" {
		w = out
	} else {
		// A regular file is written beside the destination and renamed,
		// so a failed copy leaves no half file; a device or FIFO is
		// written in place, never replaced.
		var err error
		if lf, err = createLocal(ctx, dest, *force); err != nil {
			c.errorf("get %s:%s: %v", guest, p, err)
			return exitFail
		}
		w = lf
	}
	bar := c.progress(guest + ":" + p)
	bar.tty = bar.tty && (lf != nil || !isTerminal(c.stdout))
	n, err := o.fleet.ReadFile(ctx, guest, p, w, bar.update)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	bar.finish(err)
	if err != nil {
		if lf != nil {
			lf.Abort()
		}
		c.errorf("get %s:%s: %s", guest, p, c.reason(guest, err))
		return exitFail
	}
	if lf != nil {
		if err := lf.Commit(); err != nil {
			c.errorf("get %s:%s: %v", guest, p, err)
			return exitFail
		}
		fmt.Fprintf(c.stderr, "%s:%s -> %s (%d bytes)\n", present.Text(guest, nameCells), present.Text(p, maxLineCells), present.Text(dest, maxLineCells), n)
	}
	return exitOK
}

// destinationOK is the one rule for a download's destination (get, and the
// dashboard's download, which asks where get needs --force): a socket or
// irregular file is refused; anything else that exists — a file, a device,
// a FIFO — is written only with --force.
func (c *cli) destinationOK(dest string, kind localfile.Kind, force bool) error {
	if err := localfile.Refused(dest, kind); err != nil {
		return err
	}
	if kind != localfile.Missing && !force {
		return fmt.Errorf("%s exists (a %s): pass --force to replace it (or write into it)", dest, kind)
	}
	return nil
}

// createLocal opens a download's destination: without force, one that must
// not exist, and is not replaced if it appears meanwhile.
func createLocal(ctx context.Context, dest string, force bool) (*localfile.File, error) {
	if force {
		return localfile.Create(ctx, dest)
	}
	return localfile.CreateNew(dest)
}

func (c *cli) put(ctx context.Context, args []string) int {
	fs := c.flags("put")
	from := fs.String("from", "", "many guests: the local `FILE` to copy to every selected guest (with --to)")
	to := fs.String("to", "", "many guests: the guest `PATH` to write on every selected guest; ending in / (or \\) a directory, the file keeps its name (with --from)")
	yes := fs.Bool("yes", false, "many guests: do not ask for confirmation (needed without a terminal)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *from != "" || *to != "" {
		return c.putMany(ctx, *from, *to, *yes, fs.Args(), args)
	}
	if fs.NArg() != 3 {
		fs.Usage()
		return exitUsage
	}
	src, guest, p := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	if c.readonly {
		c.errorf("put: refused: --readonly forbids writing to guests; nothing was sent")
		return exitUsage
	}
	p, err := intoDirectory(p, src)
	if err != nil {
		c.errorf("put: %v; nothing was sent", err)
		return exitUsage
	}
	var r io.Reader = c.stdin
	var size int64
	if src != "-" {
		f, st, code := openSource(c, src)
		if f == nil {
			return code
		}
		defer f.Close()
		size = st.Size()
		r = f
	}
	o, code := c.guestFleet(ctx, guest)
	if o == nil {
		return code
	}
	defer o.close()
	if c.readonly {
		c.errorf("put: refused: the fleet file says readonly = true (like --readonly); nothing was sent")
		return exitUsage
	}
	aud, code := c.auditPut(o.fleet, fs.Args(), guest, p, src, size)
	if aud == nil {
		return code
	}
	bar := c.progress(guest + ":" + p)
	n, err := o.fleet.WriteFile(ctx, guest, p, r, size, bar.update)
	bar.finish(err)
	aud.outcome(c, auditOne(guest, o.fleet, fmt.Sprintf("wrote %d bytes", n), err), nil)
	if err != nil {
		c.errorf("put %s:%s: %s", guest, p, c.putReason(guest, p, err))
		return exitFail
	}
	fmt.Fprintf(c.stderr, "%s -> %s:%s (%d bytes)\n", present.Text(src, maxLineCells), present.Text(guest, nameCells), present.Text(p, maxLineCells), n)
	return exitOK
}

// putReason is a failed put in words: what the guest's file holds now is
// what the operator needs next.
func (c *cli) putReason(guest, p string, err error) string {
	msg := c.reason(guest, err)
	var we *agentclient.WriteError
	if errors.As(err, &we) {
		msg += fmt.Sprintf("; %s on %s %s", present.Text(p, maxLineCells), present.Text(guest, nameCells), we.Outcome())
	}
	return msg
}

// openSource opens a local file to put. Opening the guest's file for
// writing truncates it: a source that cannot be read must be refused
// before that. nil: exit with code.
func openSource(c *cli, src string) (*os.File, os.FileInfo, int) {
	f, err := os.Open(src)
	if err != nil {
		c.errorf("put: %v", err)
		return nil, nil, exitFail
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		c.errorf("put: %v", err)
		return nil, nil, exitFail
	}
	if st.IsDir() {
		f.Close()
		c.errorf("put: %s is a directory; nothing was sent", src)
		return nil, nil, exitUsage
	}
	return f, st, exitOK
}

// intoDirectory is where put writes: a guest path ending in a separator
// names a directory, and the file keeps its local name there
// (`put f g /tmp/` writes /tmp/f; `C:\Temp\` likewise with a backslash).
func intoDirectory(p, src string) (string, error) {
	if !strings.HasSuffix(p, "/") && !strings.HasSuffix(p, `\`) {
		return p, nil
	}
	if src == "-" {
		return "", fmt.Errorf("%s is a directory and standard input has no name: name the guest file", p)
	}
	name := filepath.Base(src)
	if name == "." || name == "/" || name == ".." {
		return "", fmt.Errorf("%s is a directory and %s has no file name: name the guest file", p, src)
	}
	return p + name, nil
}

// fileOut is where cat and get - write a guest's file: stdout, exact when
// it is a file or a pipe; on a terminal escaped as run read shows it
// (present.Block), since the bytes are the guest's and a terminal acts on
// them (title, clipboard, screen).
func (c *cli) fileOut() flushWriter {
	if isTerminal(c.stdout) {
		return &blockStream{w: c.stdout}
	}
	return nopFlush{c.stdout}
}

type flushWriter interface {
	io.Writer
	Flush() error
}

type nopFlush struct{ io.Writer }

func (nopFlush) Flush() error { return nil }

// blockStream writes what it is given through present.Block, whole lines at
// a time, so that neither a rune nor a CRLF is split between two writes and
// tabs line up. A line longer than blockHold is written in pieces.
type blockStream struct {
	w    io.Writer
	held []byte
}

const blockHold = 64 << 10

func (s *blockStream) Write(p []byte) (int, error) {
	s.held = append(s.held, p...)
	cut := bytes.LastIndexByte(s.held, '\n') + 1
	if cut == 0 && len(s.held) >= blockHold {
		cut = len(s.held) - openTail(s.held)
	}
	if cut > 0 {
		if _, err := io.WriteString(s.w, present.Block(string(s.held[:cut]), 8)); err != nil {
			return 0, err
		}
		s.held = append(s.held[:0], s.held[cut:]...)
	}
	return len(p), nil
}

// Flush writes what is held: the end of a file without a final newline.
func (s *blockStream) Flush() error {
	if len(s.held) == 0 {
		return nil
	}
	_, err := io.WriteString(s.w, present.Block(string(s.held), 8))
	s.held = s.held[:0]
	return err
}

// openTail is how many bytes at the end of b may continue in the next
// write: the start of a rune, or a CR that a LF may follow.
func openTail(b []byte) int {
	n := 0
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return 1
	}
	for k := 1; k <= utf8.UTFMax-1 && k <= len(b); k++ {
		if c := b[len(b)-k]; utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-k:]) {
				n = k
			}
			break
		}
	}
	return n
}

func (c *cli) agent(ctx context.Context, args []string) int {
	fs := c.flags("agent")
	timeout := fs.Duration("timeout", 0, "wait at most `D` for each reply, dial included (more than 0, at most 1h; default: the fleet file's timeout, 3s)")
	asJSON := fs.Bool("json", false, "print a JSON array, one object per guest: name, ok, skipped, error, reply (the reply object, numbers exact)")
	yes := fs.Bool("yes", false, "several guests: send a command that changes them without asking (needed without a terminal)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return exitUsage
	}
	timeoutSet := false
	fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	if timeoutSet && (*timeout <= 0 || *timeout > maxAgentTimeout) {
		c.errorf("agent: --timeout must be more than 0 and at most 1h")
		return exitUsage
	}
	var tweak func(*fleet.Options)
	if *timeout > 0 {
		tweak = func(o *fleet.Options) { o.Timeout = *timeout }
	}
	selectors, req := fs.Args()[:fs.NArg()-1], fs.Arg(fs.NArg()-1)
	var probe struct {
		Execute string `json:"execute"`
	}
	if err := json.Unmarshal([]byte(req), &probe); err != nil {
		c.errorf(`agent: %q is not JSON (%v); want one command such as '{"execute":"guest-info"}' after the guests`, req, err)
		return exitUsage
	}
	if probe.Execute == "" {
		c.errorf(`agent: %q has no "execute" member; want one command such as '{"execute":"guest-info"}'`, req)
		return exitUsage
	}
	// The command table decides, for the CLI as for the fleet: checked
	// before the fleet is opened for --readonly, and again once the fleet
	// file (readonly = true) is read.
	refused := func() bool {
		err := agentclient.ReadOnlyRefusal(probe.Execute)
		if c.readonly && err != nil {
			c.errorf("agent: refused under --readonly (or readonly = true in the fleet file): %v; nothing was sent", err)
			return true
		}
		return false
	}
	if refused() {
		return exitUsage
	}
	raw := &rawRequest{rest: fs.Args(), selectors: selectors, req: []byte(req), execute: probe.Execute, tweak: tweak}
	if len(selectors) == 1 && fleet.IsPlainName(selectors[0]) && !fleet.IsUUID(selectors[0]) && !*asJSON {
		// One guest by name: its reply object alone, as before selectors.
		return c.agentOne(ctx, raw, refused)
	}
	return c.agentMany(ctx, raw, refused, *asJSON, *yes)
}

// byName reports whether the guests were named as one plain name (the raw
// command's one-guest escape hatch), not picked by a pattern.
func (r *rawRequest) byName() bool {
	return len(r.selectors) == 1 && fleet.IsPlainName(r.selectors[0]) && !fleet.IsUUID(r.selectors[0])
}

// rawRequest is one agent command line, parsed.
type rawRequest struct {
	rest, selectors []string // the words after the flags; the guests' selectors
	req             []byte
	execute         string
	tweak           func(*fleet.Options)
}

// agentOne sends the request to the one guest named and prints the reply
// object as it came.
func (c *cli) agentOne(ctx context.Context, raw *rawRequest, refused func() bool) int {
	guest := raw.selectors[0]
	o, code := c.guestFleetWith(ctx, guest, raw.tweak)
	if o == nil {
		return code
	}
	defer o.close()
	if refused() {
		return exitUsage
	}
	var aud *audited
	if agentclient.Mutates(raw.execute) {
		if aud, code = c.auditRaw(o.fleet, raw.rest, raw.selectors, raw.selectors, raw.req); aud == nil {
			return code
		}
	}
	reply, err := o.fleet.Raw(ctx, guest, raw.req)
	aud.outcome(c, auditOne(guest, o.fleet, "the agent replied "+truncateText(string(reply), 200), err), nil)
	var ae *agentclient.Error
	if errors.As(err, &ae) {
		// The agent answered with an error: that is its reply object.
		out, _ := json.MarshalIndent(map[string]*agentclient.Error{"error": ae}, "", "  ")
		fmt.Fprintf(c.stdout, "%s\n", present.SafeJSON(out))
		return exitFail
	}
	if err != nil {
		c.errorf("agent %s: %s", guest, c.reason(guest, err))
		return exitFail
	}
	// Indented as the agent wrote it: decoding would round 64-bit counts
	// through float64 and sort the members.
	var pretty bytes.Buffer
	if json.Indent(&pretty, reply, "", "  ") == nil {
		reply = pretty.Bytes()
	} else {
		// Not JSON: no longer a reply a script could use, and nothing
		// about it is safe for a terminal.
		reply = []byte(present.Block(string(reply), 0))
	}
	// The exact strings, written so a terminal cannot act on them.
	fmt.Fprintf(c.stdout, "%s\n", present.SafeJSON(reply))
	return exitOK
}

// agentReply is one guest's outcome of a raw command sent to several, as
// agent --json prints it.
type agentReply struct {
	Name string `json:"name"`
	// OK: the agent returned ({"return": ...}).
	OK bool `json:"ok"`
	// Skipped: the agent does not know the command, its admin disabled it,
	// or it refuses it while frozen (exit 3, as run's skips).
	Skipped bool `json:"skipped"`
	// Error is why not OK: the agent's error or why no reply came.
	Error string `json:"error"`
	// Reply is the reply object as the agent sent it ({"return": ...} or
	// {"error": ...}), numbers exact; null when none came.
	Reply json.RawMessage `json:"reply"`
}

// agentMany sends the request to every selected guest at once (at most the
// fleet file's concurrency in flight) and prints one result per guest, in
// the fleet's order: a line "GUEST: REPLY" each (the reply object on one
// line), the guests that did not reply on stderr, or with --json an array
// of agentReply. Exit codes are run's.
func (c *cli) agentMany(ctx context.Context, raw *rawRequest, refused func() bool, asJSON, yes bool) int {
	o, gs, code := c.manyFleetWith(ctx, "agent", raw.selectors, raw.tweak)
	if o == nil {
		return code
	}
	defer o.close()
	if refused() {
		return exitUsage
	}
	if ask, typed := fleet.RawConfirmation(raw.execute, len(gs), raw.byName()); ask && !yes {
		count := 0
		if typed {
			count = len(gs)
		}
		what := fmt.Sprintf("agent %s on %s", raw.execute, present.Plural(len(gs), "guest"))
		q := fmt.Sprintf("Send %s to %s? %s", present.Text(raw.execute, 64), present.Plural(len(gs), "guest"), summariseNames(gs))
		if !c.ask(what, q, count) {
			return exitUsage
		}
	}
	var aud *audited
	if agentclient.Mutates(raw.execute) {
		if aud, code = c.auditRaw(o.fleet, raw.rest, raw.selectors, names(gs), raw.req); aud == nil {
			return code
		}
	}
	replies := make([]agentReply, len(gs))
	limit := config.DefaultConcurrency
	if o.cfg != nil {
		limit = o.cfg.Defaults.Concurrency
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, g := range gs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			replies[i] = rawReply(ctx, o.fleet, g.Name, raw.req)
		}()
	}
	wg.Wait()
	outcomes := make([]audit.Guest, len(replies))
	code = exitOK
	for i, r := range replies {
		outcomes[i] = audit.Guest{Name: r.Name, Address: gs[i].Address, Result: "ok", Detail: "the agent replied " + truncateText(string(r.Reply), 200)}
		switch {
		case r.Skipped:
			outcomes[i].Result, outcomes[i].Detail = "skipped", r.Error
			code = max(code, exitSkipped)
		case !r.OK:
			outcomes[i].Result, outcomes[i].Detail = "failed", r.Error
		}
	}
	aud.outcome(c, outcomes, nil)
	if slices.ContainsFunc(replies, func(r agentReply) bool { return !r.OK && !r.Skipped }) {
		code = exitFail
	}
	if asJSON {
		writeJSON(c.stdout, replies)
		return code
	}
	for _, r := range replies {
		name := present.Text(r.Name, nameCells)
		if r.Reply == nil {
			c.errorf("agent %s: %s", name, present.Text(r.Error, errCells))
			continue
		}
		fmt.Fprintf(c.stdout, "%s: %s\n", name, present.SafeJSON(r.Reply))
	}
	return code
}

// rawReply sends req to guest and sorts out what came back: the reply
// object on one line, exact (json.Compact keeps every number's text).
func rawReply(ctx context.Context, f *fleet.Fleet, guest string, req []byte) agentReply {
	r := agentReply{Name: guest}
	reply, err := f.Raw(ctx, guest, req)
	var ae *agentclient.Error
	switch {
	case errors.As(err, &ae):
		r.Reply, _ = json.Marshal(map[string]*agentclient.Error{"error": ae})
		r.Error = ae.Error()
		r.Skipped = agentclient.IsUnknown(err) || agentclient.IsDisabled(err) || agentclient.IsFrozen(err)
		return r
	case err != nil:
		r.Error = present.Reason(err, maxLineCells)
		return r
	}
	var line bytes.Buffer
	if json.Compact(&line, reply) != nil {
		r.Error = "the reply is not JSON: " + truncateText(string(reply), 200)
		return r
	}
	r.OK, r.Reply = true, line.Bytes()
	return r
}

// maxAgentTimeout bounds agent --timeout (the usage and error say 1h): a command that has not answered
// in an hour (a long fstrim, say) is better run with exec or run.
const maxAgentTimeout = time.Hour

// bar draws transfer progress on a terminal's stderr; without a terminal it
// stays quiet. get and put end with one summary line either way.
type bar struct {
	w     io.Writer
	label string
	tty   bool
	last  time.Time
	drawn bool
}

func (c *cli) progress(label string) *bar {
	return &bar{w: c.stderr, label: present.Text(label, 60), tty: isTerminal(c.stderr)}
}

func (b *bar) update(done, total int64) {
	if !b.tty {
		return
	}
	now := time.Now()
	if now.Sub(b.last) < 50*time.Millisecond && (total == 0 || done < total) {
		return
	}
	b.last = now
	b.drawn = true
	const width = 30
	if total > 0 {
		fill := int(int64(width) * min(done, total) / total)
		fmt.Fprintf(b.w, "\r\033[K%s [%s%s] %3d%% %s/%s", b.label,
			strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*min(done, total)/total, present.Size(done), present.Size(total))
		return
	}
	fmt.Fprintf(b.w, "\r\033[K%s %s", b.label, present.Size(done))
}

func (b *bar) finish(error) {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}

// Files to many guests: `cat --from PATH SELECTOR...`, `get --from PATH
// --to DIR SELECTOR...`, `put --from FILE --to PATH SELECTOR...`. The
// paths are flags, so every operand is a selector: no guest name can be
// read as a path, or a path as a guest.

// manyTransfers is how many guests a bulk get or put moves at once.
const manyTransfers = 8

// manyFleet opens the fleet and resolves selectors for a bulk file
// command; nil: exit with code.
func (c *cli) manyFleet(ctx context.Context, what string, selectors []string) (*opened, []*fleet.Guest, int) {
	return c.manyFleetWith(ctx, what, selectors, nil)
}

// manyFleetWith is manyFleet with the fleet's options tweaked.
func (c *cli) manyFleetWith(ctx context.Context, what string, selectors []string, tweak func(*fleet.Options)) (*opened, []*fleet.Guest, int) {
	if len(selectors) == 0 {
		c.errorf("%s: no guests selected: name them, or use a selector such as all, tag:X, host:Y, state:Z", what)
		return nil, nil, exitUsage
	}
	o, code := c.openFleet(ctx, false, tweak)
	if o == nil {
		return nil, nil, code
	}
	gs, err := selectPolled(ctx, o.fleet, selectors)
	if err != nil {
		o.close()
		c.errorf("%s: %v", what, err)
		return nil, nil, exitUsage
	}
	if len(gs) == 0 {
		o.close()
		c.errorf("%s: the selectors %s match no guest", what, strings.Join(selectors, " "))
		return nil, nil, exitUsage
	}
	return o, gs, exitOK
}

// catMany prints path from every selected guest in turn, each under a
// header; a guest that fails is reported on stderr and the others go on.
func (c *cli) catMany(ctx context.Context, path string, selectors []string) int {
	o, gs, code := c.manyFleet(ctx, "cat", selectors)
	if o == nil {
		return code
	}
	defer o.close()
	code = exitOK
	for i, g := range gs {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		fmt.Fprintf(c.stdout, "==> %s <==\n", present.Text(g.Name, nameCells))
		w := c.fileOut()
		tail := &lastByte{w: w}
		_, err := o.fleet.ReadFile(ctx, g.Name, path, tail, nil)
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		if tail.n > 0 && tail.last != '\n' {
			fmt.Fprintln(c.stdout)
		}
		if err != nil {
			c.errorf("cat %s:%s: %s", g.Name, path, c.reason(g.Name, err))
			code = exitFail
		}
	}
	return code
}

// lastByte remembers the last byte written, so the next header starts on
// a line of its own.
type lastByte struct {
	w    io.Writer
	n    int64
	last byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.n += int64(len(p))
		l.last = p[len(p)-1]
	}
	return l.w.Write(p)
}

// guestFileName is the local file a bulk get writes a guest's copy to:
// the guest's name with its / (HOST/DOMAIN) and \ written as _, when that
// is a plain file name (present.LocalName); ok false otherwise.
func guestFileName(guest string) (string, bool) {
	return present.LocalName(strings.NewReplacer("/", "_", `\`, "_").Replace(guest))
}

// transferResult is one guest's outcome of a bulk get or put.
type transferResult struct {
	guest, where string // where: the local file (get) or guest path (put)
	n            int64
	err          error
	refused      string // refused before anything was sent or read
}

// manyProgress draws one bar for all of a bulk transfer's guests.
type manyProgress struct {
	mu          sync.Mutex
	b           *bar
	done, total []int64
	finished    int
}

func (c *cli) manyProgress(label string, n int) *manyProgress {
	return &manyProgress{b: c.progress(label), done: make([]int64, n), total: make([]int64, n)}
}

func (m *manyProgress) update(i int) func(done, total int64) {
	return func(done, total int64) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.done[i], m.total[i] = done, total
		m.draw(false)
	}
}

func (m *manyProgress) finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.finished++
	m.draw(true)
}

// draw: bytes across every guest, and guests finished. Holds mu.
func (m *manyProgress) draw(force bool) {
	var done, total int64
	for i := range m.done {
		done += m.done[i]
		total += max(m.total[i], m.done[i])
	}
	if force {
		m.b.last = time.Time{}
	}
	label := m.b.label
	m.b.label = fmt.Sprintf("%s %d/%d guests", label, m.finished, len(m.done))
	m.b.update(done, total)
	m.b.label = label
}

// runTransfers runs fn for every guest, manyTransfers at a time.
func runTransfers(n int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, manyTransfers)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// printTransfers prints one row per guest and returns the exit code.
func (c *cli) printTransfers(rs []transferResult) int {
	code := exitOK
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tOUTCOME\tBYTES\tDETAIL")
	for _, r := range rs {
		outcome, detail := "ok", r.where
		switch {
		case r.refused != "":
			outcome, detail, code = "FAILED", r.refused, exitFail
		case r.err != nil:
			outcome, detail, code = "FAILED", r.err.Error(), exitFail
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", present.Text(r.guest, nameCells), outcome, r.n, present.Text(detail, errCells))
	}
	tw.Flush()
	return code
}

// getMany copies path from every selected guest into dir, one file per
// guest named after it. Every destination is checked before any guest is
// read: a name that is no plain file name, two guests that would share a
// file, or an existing file without --force refuse the whole command.
func (c *cli) getMany(ctx context.Context, path, dir string, force bool, selectors []string) int {
	if path == "" || dir == "" {
		c.errorf("get: --from PATH and --to DIR go together (get --from /etc/hostname --to ./out all)")
		return exitUsage
	}
	if kind, _, err := localfile.Inspect(dir); err != nil || kind != localfile.Directory {
		c.errorf("get: --to %s: not a directory (make it first); nothing was read", dir)
		return exitUsage
	}
	o, gs, code := c.manyFleet(ctx, "get", selectors)
	if o == nil {
		return code
	}
	defer o.close()
	dests := make([]string, len(gs))
	seen := map[string]string{}
	var problems []string
	for i, g := range gs {
		name, ok := guestFileName(g.Name)
		if !ok {
			problems = append(problems, fmt.Sprintf("guest %s: its name is no local file name", present.Text(g.Name, nameCells)))
			continue
		}
		// Compared without case: on a case-insensitive file system
		// (macOS, Windows) Web and web are one file, and with --force
		// the second guest's copy would silently replace the first's.
		if other, dup := seen[strings.ToLower(name)]; dup {
			problems = append(problems, fmt.Sprintf("guests %s and %s would both be written to %s (names are compared without case)", present.Text(other, nameCells), present.Text(g.Name, nameCells), present.Text(name, nameCells)))
			continue
		}
		seen[strings.ToLower(name)] = g.Name
		dests[i] = filepath.Join(dir, name)
		kind, _, err := localfile.Inspect(dests[i])
		if err == nil {
			err = c.destinationOK(dests[i], kind, force)
		}
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		c.errorf("get: refused; nothing was read:\n  %s", strings.Join(problems, "\n  "))
		return exitUsage
	}
	rs := make([]transferResult, len(gs))
	prog := c.manyProgress("get "+path, len(gs))
	runTransfers(len(gs), func(i int) {
		defer prog.finish()
		g := gs[i]
		r := transferResult{guest: g.Name, where: dests[i]}
		lf, err := createLocal(ctx, dests[i], force)
		if err == nil {
			r.n, err = o.fleet.ReadFile(ctx, g.Name, path, lf, prog.update(i))
			if err != nil {
				lf.Abort()
				err = errors.New(c.reason(g.Name, err))
			} else {
				err = lf.Commit()
			}
		}
		r.err = err
		rs[i] = r
	})
	prog.b.finish(nil)
	return c.printTransfers(rs)
}

// putMany copies one local file to path on every selected guest. It is a
// change to many guests: refused under read-only mode, confirmed (or
// --yes), and audited like run's actions.
func (c *cli) putMany(ctx context.Context, src, path string, yes bool, selectors, args []string) int {
	if src == "" || path == "" {
		c.errorf("put: --from FILE and --to PATH go together (put --from ./motd --to /etc/motd tag:web)")
		return exitUsage
	}
	if c.readonly {
		c.errorf("put: refused: --readonly forbids writing to guests; nothing was sent")
		return exitUsage
	}
	if src == "-" {
		c.errorf("put: --from -: standard input can be read only once; put a file to many guests; nothing was sent")
		return exitUsage
	}
	path, err := intoDirectory(path, src)
	if err != nil {
		c.errorf("put: %v; nothing was sent", err)
		return exitUsage
	}
	f, st, code := openSource(c, src)
	if f == nil {
		return code
	}
	defer f.Close()
	o, gs, code := c.manyFleet(ctx, "put", selectors)
	if o == nil {
		return code
	}
	defer o.close()
	if c.readonly {
		c.errorf("put: refused: the fleet file says readonly = true (like --readonly); nothing was sent")
		return exitUsage
	}
	size := st.Size()
	what := fmt.Sprintf("put %s (%d bytes) to %s on", present.Text(src, maxLineCells), size, present.Text(path, maxLineCells))
	if len(gs) > 1 && !yes && !c.confirm(fmt.Sprintf("%s %d guest(s): %s?", what, len(gs), summariseNames(gs))) {
		return exitUsage
	}
	plan := make([]audit.Guest, len(gs))
	for i, g := range gs {
		plan[i] = audit.Guest{Name: g.Name, Address: g.Address, Result: "pending", Sends: fleet.AuditSends(fleet.WriteSends(path, size)),
			Detail: "written in place, or where the agent allows guest-exec to a temporary file beside it moved into place (mv by guest-exec)"}
	}
	aud, err := c.auditIntent(audit.SourceCLI, "put "+path, c.recordedCommand(args, nil), selectors, plan)
	if err != nil {
		c.errorf("put: refused: %v; nothing was sent", err)
		return exitUsage
	}
	rs := make([]transferResult, len(gs))
	prog := c.manyProgress("put "+path, len(gs))
	runTransfers(len(gs), func(i int) {
		defer prog.finish()
		g := gs[i]
		// Each guest reads the file from the start; ReadAt is safe to
		// share between them.
		r := transferResult{guest: g.Name, where: path}
		r.n, r.err = o.fleet.WriteFile(ctx, g.Name, path, io.NewSectionReader(f, 0, size), size, prog.update(i))
		if r.err != nil {
			r.err = errors.New(c.putReason(g.Name, path, r.err))
		}
		rs[i] = r
	})
	prog.b.finish(nil)
	outcome := make([]audit.Guest, len(rs))
	for i, r := range rs {
		outcome[i] = audit.Guest{Name: r.guest, Address: gs[i].Address, Result: "ok", Detail: fmt.Sprintf("wrote %d bytes", r.n)}
		if r.err != nil {
			outcome[i].Result, outcome[i].Detail = "failed", r.err.Error()
		}
	}
	aud.outcome(c, outcome, nil)
	return c.printTransfers(rs)
}
