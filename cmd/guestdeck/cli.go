// Command guestdeck is a terminal dashboard and command line for fleets of
// QEMU guest agents. This package only wires the parts together: flags,
// subcommands, the fleet file, the fleet, the screen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/guestdeck/guestdeck/fleet"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/x/term"

	"github.com/guestdeck/guestdeck/tui/present"
)

// Exit codes: one table, for scripts (README "Exit codes"). When several
// apply, the highest but 2 wins: 4 over 1 over 3 over 0. 2 is only ever
// returned before anything was sent.
const (
	// exitOK: every selected guest did what was asked (for status: the
	// fleet was polled, whatever it said; for a dry run: every guest would
	// be sent the action).
	exitOK = 0
	// exitFail: the action, transfer or command failed on at least one
	// guest. A freeze that froze nothing failed, and so did --hold on a
	// guest that was already frozen (guestdeck will not hold or thaw a
	// freeze it did not make).
	exitFail = 1
	// exitUsage: bad command line or fleet file, or refused before anything
	// was sent (read-only, no confirmation, unknown or ambiguous guest, the
	// audit log cannot be written).
	exitUsage = 2
	// exitSkipped: nothing failed, but the action was skipped on some
	// selected guest (its agent lacks or disabled the command, or refuses
	// it while frozen), so `run --yes freeze tag:db && snapshot` never
	// snapshots a disk that was not frozen.
	exitSkipped = 3
	// exitFrozen: a thaw guestdeck owed did not succeed: a guest is left
	// frozen.
	exitFrozen = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, argv: os.Args}
	endProfile := startProfile()
	code := c.main(ctx, os.Args[1:])
	endProfile()
	stop()
	os.Exit(code)
}

// cli is one invocation: where it reads and writes, and the global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// argv is the whole command line, for the audit log.
	argv []string

	configPath string
	readonly   bool
	theme      string
	demo       bool
	// demoState is the demo's own state directory (auditDir), "" until
	// one is made.
	demoState string
	// mkdirTemp makes the demo's state directory; nil: os.MkdirTemp (a
	// test makes it fail).
	mkdirTemp func(dir, pattern string) (string, error)
}

// command is one subcommand.
type command struct {
	name    string
	args    string // usage after the name
	summary string
	run     func(c *cli, ctx context.Context, args []string) int
}

func commands() []command {
	return []command{
		{"status", "[--json] [SELECTOR...]", "poll the selected guests once and print what their agents say", (*cli).status},
		{"run", "[--json] [--yes] [--hold D] [--wait[=D]] [--dry-run] ACTION [ARGS] [--] SELECTOR...", "run one action on the selected guests", (*cli).runAction},
		{"cat", "GUEST PATH | --from PATH SELECTOR...", "print a file from a guest, or from each selected guest under a header", (*cli).cat},
		{"get", "[--force] GUEST PATH DEST | [--force] --from PATH --to DIR SELECTOR...", "copy a file from a guest (DEST may be a directory or -), or from each selected guest into DIR", (*cli).get},
		{"put", "SRC GUEST PATH | [--yes] --from SRC --to PATH SELECTOR...", "copy a local file (or - for stdin) to a guest, or to each selected guest (PATH ending in / is a directory)", (*cli).put},
		{"exec", "[--json] [--yes] [--dry-run] [--timeout D] [--stdin FILE|-] [--concurrency N] [--output-limit N] SELECTOR... -- PROGRAM [ARGS...]", "run a program in the selected guests and print what it printed", (*cli).exec},
		{"domifaddr", "[SELECTOR...]", "print each guest's interface addresses, one row each (as virsh domifaddr; status --interfaces)", func(c *cli, ctx context.Context, args []string) int {
			return c.status(ctx, append([]string{"--interfaces"}, args...))
		}},
		{"guestinfo", "[--json] [--user] [--os] [--timezone] [--hostname] [--filesystem] [--disk] [--interface] [SELECTOR...]", "print what the agents report in virsh guestinfo's keys (os.id, fs.0.mountpoint, ...), every section or those asked", (*cli).guestInfo},
		{"agent", "[--json] [--yes] [--timeout D] SELECTOR... JSON", "send one raw command to the selected guests and print each agent's reply object (one guest by name: the object alone)", (*cli).agent},
		{"audit", "[--json] [--since D] [SELECTOR...]", "print the audit log of mutating actions (" + auditPathText() + ")", (*cli).audit},
		{"export", "[--listen ADDR] [--listen-any]", "serve every guest's state and metrics to Prometheus at http://ADDR/metrics (read-only)", (*cli).export},
		{"sim", "--guests N --dir DIR [--frozen K] [--silent K] ...", "serve simulated guests and write DIR/fleet.toml", (*cli).sim},
		{"help", "", "show this help", func(c *cli, _ context.Context, _ []string) int { c.usage(c.stdout); return exitOK }},
	}
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `guestdeck: a dashboard and command line for fleets of QEMU guest agents

usage: guestdeck [GLOBAL FLAGS] [COMMAND [FLAGS] ARGS...]

With no command, guestdeck opens the dashboard.

global flags (before the command or after it):
  -c, --config FILE  fleet file (default `+defaultPathText()+`)
  --readonly         refuse every action that changes a guest
  --theme NAME       colour theme: dark, light, high-contrast, auto, or FILE.toml
  --demo             use the built-in simulated demo fleet

commands:
`)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
selectors: guest names (HOST/DOMAIN for a guest on a libvirt host), globs (web-*),
  tag:X, host:Y, state:Z, a libvirt domain's UUID (or uuid:U), all
run "guestdeck COMMAND -h" for a command's flags.
`)
}

// main parses the global flags and runs the subcommand; it returns the exit code.
func (c *cli) main(ctx context.Context, args []string) int {
	defer c.dropDemoState()
	fs := flag.NewFlagSet("guestdeck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.globalFlags(fs)
	if err := parseValues(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.stdout)
			return exitOK
		}
		c.errorf("%v", err) // it quotes the flag as typed
		c.usage(c.stderr)
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return c.dashboard(ctx)
	}
	for _, cmd := range commands() {
		if cmd.name == rest[0] {
			return cmd.run(c, ctx, rest[1:])
		}
	}
	// An action word typed as a command (virsh habit: "guestdeck domtime
	// web-1"): it is run's.
	if fleet.IsActionWord(rest[0]) {
		c.errorf("unknown command %q; it is an action: guestdeck run %s SELECTOR... (see guestdeck run -h)",
			rest[0], rest[0])
		return exitUsage
	}
	c.errorf("unknown command %q (see guestdeck help)", rest[0])
	return exitUsage
}

// globalFlags defines the global flags on fs: before the command, and
// after it on every subcommand too (guestdeck status -c FILE).
func (c *cli) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.configPath, "c", c.configPath, "fleet `FILE` (default "+defaultPathText()+")")
	fs.StringVar(&c.configPath, "config", c.configPath, "fleet `FILE` (same as -c)")
	fs.BoolVar(&c.readonly, "readonly", c.readonly, "refuse every action that changes a guest")
	fs.StringVar(&c.theme, "theme", c.theme, "colour theme `NAME`: dark, light, high-contrast, auto (after the terminal's background) or a theme file ending in .toml")
	fs.BoolVar(&c.demo, "demo", c.demo, "use the built-in simulated demo fleet")
}

// isGlobal reports whether name is one of globalFlags'.
func isGlobal(name string) bool {
	switch name {
	case "c", "config", "readonly", "theme", "demo":
		return true
	}
	return false
}

// printFlags lists fs's flags as the README writes them: --long names,
// -c for the one-letter ones, the subcommand's own before the global ones.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	for _, global := range []bool{false, true} {
		var lines []string
		fs.VisitAll(func(f *flag.Flag) {
			if isGlobal(f.Name) != global {
				return
			}
			arg, usage := flag.UnquoteUsage(f)
			name := "--" + f.Name
			if len(f.Name) == 1 {
				name = "-" + f.Name
			}
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() && arg != "" {
				name += "[=" + arg + "]" // a value only after an = (--wait=2m)
			} else if arg != "" {
				name += " " + arg
			}
			if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "0s" && !global {
				usage += " (default " + d + ")"
			}
			lines = append(lines, fmt.Sprintf("  %s\n        %s\n", name, usage))
		})
		if len(lines) == 0 {
			continue
		}
		if global {
			fmt.Fprintln(w, "global flags (here or before the command):")
		} else {
			fmt.Fprintln(w, "flags:")
		}
		for _, l := range lines {
			fmt.Fprint(w, l)
		}
	}
}

// flags returns a FlagSet for a subcommand whose -h prints its usage.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("guestdeck "+name, flag.ContinueOnError)
	fs.SetOutput(blockWriter{c.stderr})
	c.globalFlags(fs)
	fs.Usage = func() {
		for _, cmd := range commands() {
			if cmd.name == name {
				fmt.Fprintf(c.stderr, "usage: guestdeck %s %s\n  %s\n", name, cmd.args, cmd.summary)
			}
		}
		if name == "run" {
			fmt.Fprint(c.stderr, actionsHelp())
		}
		// Through the escaping writer: a default or usage may quote words
		// from the command line.
		printFlags(fs.Output(), fs)
	}
	return fs
}

// blockWriter writes what the flag package prints through present.Block:
// its errors quote a bad flag as it was typed, and a script may pass words a
// guest chose.
type blockWriter struct{ w io.Writer }

func (b blockWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(b.w, present.Block(string(p), 8)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// parse parses a subcommand's flags; ok is false when the caller should
// return code (help asked or a bad flag). Flags may come anywhere before a
// "--", between the selectors and other words (the flag package alone stops
// at the first word); what follows "--" is left as it is (exec's program and
// its own flags). fs.Args() is then the words in order, with the "--" kept
// when a word came before it (exec and run split there) and dropped when it
// only ended the flags, as the flag package did.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	return parseWords(fs, args, nil)
}

// parseWords is parse where some words take the following ones verbatim:
// after each word, verbatim(words so far, the rest) says how many of the
// rest are words even if they start with a dash (run's action arguments,
// such as password --crypted).
func parseWords(fs *flag.FlagSet, args []string, verbatim func(words, rest []string) int) (code int, ok bool) {
	var flags, words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if len(words) > 0 {
				words = append(words, a)
			}
			words = append(words, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			words = append(words, a)
			if verbatim != nil {
				n := min(verbatim(words, args[i+1:]), len(args)-i-1)
				words = append(words, args[i+1:i+1+n]...)
				i += n
			}
			continue
		}
		flags = append(flags, a)
		if takesValue(fs, a) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	// The flags first, then the words after a "--" so none is read as a flag.
	if err := parseValues(fs, append(append(flags, "--"), words...)); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			return exitOK, false
		case errors.As(err, new(*badValueError)):
			fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
			fs.Usage()
		}
		return exitUsage, false
	}
	return 0, true
}

// parseValues is fs.Parse(args), but a bad value for a flag is returned as
// a *badValueError (printed by the caller, with the usage) rather than in
// the flag package's words, which name the flag with one dash, are Go's
// ("invalid boolean value "abc" for -wait: parse error") and say nothing
// of what the flag takes. An unknown flag and -h are the flag package's
// (printed by it, as they were).
func parseValues(fs *flag.FlagSet, args []string) error {
	var bad *badValueError
	orig := map[*flag.Flag]flag.Value{}
	restore := func() {
		for f, v := range orig {
			f.Value = v
		}
		clear(orig)
	}
	// Only while parsing: flag.UnquoteUsage names a value by its type, so
	// the usage (-h, an unknown flag) is printed with the values put back.
	fs.VisitAll(func(f *flag.Flag) {
		orig[f] = f.Value
		f.Value = &checkedValue{Value: f.Value, name: f.Name, bad: &bad}
	})
	usage := fs.Usage
	fs.Usage = func() {
		restore()
		if usage == nil {
			fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
			return
		}
		usage()
	}
	err := fs.Parse(args)
	restore()
	fs.Usage = usage
	if err == nil && bad != nil {
		return bad
	}
	return err
}

// checkedValue is a flag's value while parseValues parses: a value its Set
// refuses is recorded (the first) and the parse goes on.
type checkedValue struct {
	flag.Value
	name string
	bad  **badValueError
}

func (v *checkedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (v *checkedValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil && *v.bad == nil {
		*v.bad = &badValueError{flag: v.name, value: s, want: wantValue(v.Value, err)}
	}
	return nil
}

// wantValue says what a flag takes, after its Set refused a value with
// err: the flag package's own types say only "parse error"; ours (flag.Func,
// watchFlag) say it themselves.
func wantValue(v flag.Value, err error) string {
	if g, ok := v.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			return "want no value, or =true or =false"
		case time.Duration:
			return "want a duration such as 30s, 5m or 1h"
		case int, int64, uint, uint64:
			return "want a whole number"
		case float64:
			return "want a number"
		}
	}
	return err.Error()
}

// badValueError is a flag given a value it does not take.
type badValueError struct {
	flag, value, want string
}

func (e *badValueError) Error() string {
	name := "--" + e.flag
	if len(e.flag) == 1 {
		name = "-" + e.flag
	}
	return fmt.Sprintf("bad value %q for %s: %s", e.value, name, e.want)
}

// takesValue reports whether the flag a (-x, --x, never --x=v) is one fs
// knows that reads the next word as its value. An unknown flag does not:
// fs.Parse refuses it.
func takesValue(fs *flag.FlagSet, a string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

// errorf prints an error line on stderr. Callers pass guest text through
// present.Text (or present.Reason) so it is cut to a sensible width; errorf
// escapes every line of the result again as a safety net, keeping only the
// line breaks of the format itself, so nothing a guest said that slipped
// through can drive the terminal. Escaping is idempotent: text already
// escaped reads the same.
func (c *cli) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = present.Text(l, maxLineCells)
	}
	fmt.Fprintf(c.stderr, "guestdeck: %s\n", strings.Join(lines, "\n"))
}

// maxLineCells caps one line of an error message.
const maxLineCells = 4096

// isTerminal reports whether v is an *os.File on a terminal (not merely a
// character device: /dev/null is one too).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}
