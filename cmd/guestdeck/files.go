package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/localfile"
	"github.com/guestdeck/guestdeck/tui/present"
)

// guestFleet opens the fleet for a one-guest command and checks the guest exists.
func (c *cli) guestFleet(ctx context.Context, guest string) (*opened, int) {
	o, code := c.openFleet(ctx, false, nil)
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
	if code, ok := parse(fs, args); !ok {
		return code
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
	if code, ok := parse(fs, args); !ok {
		return code
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
		// before the guest is asked for anything.
		if err == nil {
			if err := localfile.Refused(dest, kind); err != nil {
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
		if lf, err = localfile.Create(ctx, dest); err != nil {
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

func (c *cli) put(ctx context.Context, args []string) int {
	fs := c.flags("put")
	if code, ok := parse(fs, args); !ok {
		return code
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
	var r io.Reader = c.stdin
	var size int64
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			c.errorf("put: %v", err)
			return exitFail
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			// Opening the guest's file for writing truncates it: a source
			// that cannot be read must be refused before that.
			if st.IsDir() {
				c.errorf("put: %s is a directory; nothing was sent", src)
				return exitUsage
			}
			size = st.Size()
		}
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
	aud.outcome(c, auditOne(guest, o.fleet, fmt.Sprintf("wrote %d bytes", n), err))
	if err != nil {
		msg := c.reason(guest, err)
		var we *agentclient.WriteError
		if errors.As(err, &we) {
			// What the guest's file holds now is what the operator needs next.
			msg += fmt.Sprintf("; %s on %s %s", p, guest, we.Outcome())
		}
		c.errorf("put %s:%s: %s", guest, p, msg)
		return exitFail
	}
	fmt.Fprintf(c.stderr, "%s -> %s:%s (%d bytes)\n", present.Text(src, maxLineCells), present.Text(guest, nameCells), present.Text(p, maxLineCells), n)
	return exitOK
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
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitUsage
	}
	guest, req := fs.Arg(0), fs.Arg(1)
	var probe struct {
		Execute string `json:"execute"`
	}
	if err := json.Unmarshal([]byte(req), &probe); err != nil {
		c.errorf(`agent: %q is not JSON (%v); want one command such as '{"execute":"guest-info"}'`, req, err)
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
	o, code := c.guestFleet(ctx, guest)
	if o == nil {
		return code
	}
	defer o.close()
	if refused() {
		return exitUsage
	}
	var aud *audited
	if agentclient.Mutates(probe.Execute) {
		if aud, code = c.auditRaw(o.fleet, fs.Args(), guest, []byte(req)); aud == nil {
			return code
		}
	}
	reply, err := o.fleet.Raw(ctx, guest, []byte(req))
	aud.outcome(c, auditOne(guest, o.fleet, "the agent replied "+truncateText(string(reply), 200), err))
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
