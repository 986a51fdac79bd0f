package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// sim serves simulated guests until interrupted. The first --frozen guests
// start frozen, the next --silent ones silent, and so on, so a fleet file
// reader can tell them apart by name order.
func (c *cli) sim(ctx context.Context, args []string) int {
	fs := c.flags("sim")
	n := fs.Int("guests", 10, "number of simulated guests")
	dir := fs.String("dir", "", "directory for the sockets and fleet.toml (keep it short: socket paths must be < 108 bytes)")
	prefix := fs.String("prefix", "sim", "guest name prefix")
	frozen := fs.Int("frozen", 0, "how many guests start frozen")
	silent := fs.Int("silent", 0, "how many guests accept connections but never answer")
	hung := fs.Int("hung", 0, "how many guests stop answering after connecting")
	noExec := fs.Int("no-exec", 0, "how many guests have guest-exec disabled")
	latency := fs.Duration("latency", 0, "reply latency of every guest")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 || *dir == "" || *n < 1 {
		fs.Usage()
		return exitUsage
	}
	if *frozen+*silent+*hung > *n {
		c.errorf("sim: --frozen + --silent + --hung is more than --guests")
		return exitUsage
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		c.errorf("sim: %v", err)
		return exitFail
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		c.errorf("sim: %v", err)
		return exitFail
	}
	if need, limit := simFDs(*n), openFileLimit(); limit > 0 && need > limit {
		// Past the limit the sim cannot accept: clients wait on the
		// listen backlog forever, which looks exactly like a silent agent.
		c.errorf("sim: warning: %d guests need about %d open files (a listener and a connection each) but this process may open %d; "+
			"guests past the limit will look silent when every guest is connected. Raise it (ulimit -n) or split the guests over several sim processes",
			*n, need, limit)
	}
	width := len(fmt.Sprint(*n))
	name := func(i int) string { return fmt.Sprintf("%s-%0*d", *prefix, width, i+1) }
	farm, err := sim.ServeDir(abs, *n, func(i int) sim.Config {
		cfg := sim.DefaultConfig(name(i))
		cfg.Number(i) // addresses of its own
		cfg.NoExec = i >= *n-*noExec
		return cfg
	})
	if err != nil {
		c.errorf("sim: %v", err)
		return exitFail
	}
	defer farm.Close()
	socks := farm.Sockets()
	for i, g := range farm.Guests() {
		switch {
		case i < *frozen:
			// Frozen through the agent, as a backup tool would.
			if err := sim.Freeze(ctx, "unix:"+socks[i]); err != nil {
				c.errorf("sim: freezing %s: %v", name(i), err)
				return exitFail
			}
		case i < *frozen+*silent:
			g.SetSilent(true)
		case i < *frozen+*silent+*hung:
			g.SetHang(true)
		}
		if *latency > 0 {
			g.SetLatency(*latency)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# written by guestdeck sim: %d simulated guests, gone when it stops\n", *n)
	for i, sock := range farm.Sockets() {
		tags := []string{"sim"}
		switch {
		case i < *frozen:
			tags = append(tags, "frozen")
		case i < *frozen+*silent:
			tags = append(tags, "silent")
		case i < *frozen+*silent+*hung:
			tags = append(tags, "hung")
		}
		if i >= *n-*noExec {
			tags = append(tags, "noexec")
		}
		fmt.Fprintf(&b, "\n[[guest]]\nname = %q\naddress = %q\ntags = [%s]\n", name(i), "unix:"+sock, quoteAll(tags))
	}
	fleetPath := filepath.Join(abs, "fleet.toml")
	if err := os.WriteFile(fleetPath, []byte(b.String()), 0o644); err != nil {
		c.errorf("sim: %v", err)
		return exitFail
	}
	fmt.Fprintf(c.stdout, "serving %d simulated guests on %s/*.sock\n", *n, abs)
	fmt.Fprintf(c.stdout, "fleet file: %s\n\n", fleetPath)
	fmt.Fprintf(c.stdout, "  guestdeck -c %s            # the dashboard\n", fleetPath)
	fmt.Fprintf(c.stdout, "  guestdeck -c %s status     # one poll, as a table\n\n", fleetPath)
	fmt.Fprintln(c.stdout, "ctrl-c stops")
	<-ctx.Done()
	fmt.Fprintln(c.stdout, "stopping")
	return exitOK
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// simFDs is how many files serving n guests takes with every guest connected.
func simFDs(n int) uint64 { return 2*uint64(n) + 32 }

// openFileLimit is this process's RLIMIT_NOFILE (Go raised the soft limit
// to the hard one at start-up); 0 if unknown.
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}
