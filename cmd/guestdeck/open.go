package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim/demo"
	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/discovery"
	"github.com/guestdeck/guestdeck/fleet/ledger"
	"github.com/guestdeck/guestdeck/themes"
	"github.com/guestdeck/guestdeck/tui/present"
)

// opened is a fleet built from the fleet file (or the demo), ready to poll.
type opened struct {
	fleet  *fleet.Fleet
	cfg    *config.File // nil for the demo
	banner string       // demo only: where the missing fleet file goes, for the dashboard's banner
	close  func()
}

func defaultPathText() string {
	if p := config.DefaultPath(); p != "" {
		return p
	}
	return "none"
}

// errNoFleetFile: the default fleet file does not exist and -c was not given.
var errNoFleetFile = errors.New("no fleet file")

// loadConfig loads the fleet file named by -c, or the default one. It
// returns errNoFleetFile (wrapped, with the path) when -c was not given and
// the default file does not exist.
func (c *cli) loadConfig() (*config.File, error) {
	path := c.configPath
	if path == "" {
		path = config.DefaultPath()
		if path == "" {
			return nil, fmt.Errorf("%w: no default location (HOME unset?)", errNoFleetFile)
		}
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s", errNoFleetFile, path)
		}
	}
	return config.Load(path)
}

// openFleet builds the fleet every command works on. With --demo it is the
// built-in demo; without a fleet file the dashboard (allowDemo) falls back to
// the demo and the other commands fail. Errors are printed here; ok false
// means exit with code.
func (c *cli) openFleet(ctx context.Context, allowDemo bool, tweak func(*fleet.Options)) (o *opened, code int) {
	// The theme is checked by every command, not only the dashboard that
	// draws with it: a fleet file that status accepts must start the
	// dashboard too.
	if c.theme != "" {
		if err := themes.Check(c.theme); err != nil {
			c.errorf("--theme: %v", err)
			return nil, exitUsage
		}
	}
	if c.demo {
		return c.openDemo(ctx, "", tweak)
	}
	cfg, err := c.loadConfig()
	if errors.Is(err, errNoFleetFile) {
		if allowDemo {
			// The demo from here on, as with --demo: its actions are
			// audited in its own log (auditDir), not the operator's.
			c.demo = true
			// The dashboard's banner points at where the fleet file goes.
			return c.openDemo(ctx, config.DefaultPath(), tweak)
		}
		c.errorf("%v; write one (see docs/fleet-file.md), pass -c FILE, or try --demo", err)
		return nil, exitUsage
	}
	if err != nil {
		c.errorf("%v", err)
		return nil, exitUsage
	}
	if err := themes.Check(cfg.Defaults.Theme); err != nil {
		c.errorf("%s: theme in [defaults]: %v", cfg.Path, err)
		return nil, exitUsage
	}
	if _, _, err := dashboardParts(cfg); err != nil {
		c.errorf("%v", err) // names the file and line
		return nil, exitUsage
	}
	// readonly = true in the fleet file is as good as --readonly.
	c.readonly = c.readonly || cfg.Defaults.Readonly
	opts := fleet.Options{
		Interval:      cfg.Defaults.Interval.Duration,
		SlowInterval:  cfg.Defaults.SlowInterval.Duration,
		Timeout:       cfg.Defaults.Timeout.Duration,
		FreezeTimeout: cfg.Defaults.FreezeTimeout.Duration,
		Concurrency:   cfg.Defaults.Concurrency,
		Readonly:      c.readonly,
		// metrics_interval = 0 in the file: none (the fleet's negative).
		MetricsInterval: cmp.Or(cfg.Defaults.MetricsInterval.Duration, -1),
		// Freezes and suspends outlive this process in the ledger. Not for
		// the demo: its guests die with the process that serves them.
		Ledger:   ledger.Open(config.StateDir()),
		Who:      "guestdeck",
		Config:   c.configPath,
		OnNotice: c.printNotice,
	}
	if tweak != nil {
		tweak(&opts)
	}
	f := fleet.New(opts)
	targets := make([]fleet.Target, len(cfg.Guests))
	for i, g := range cfg.Guests {
		targets[i] = fleet.Target{Name: g.Name, Address: g.Address, Tags: g.Tags, Exclusive: g.Exclusive}
	}
	f.Add(targets...)
	srcs, err := sshSources(cfg)
	if err != nil {
		f.Close()
		c.errorf("%s: %v", cfg.Path, err)
		return nil, exitUsage
	}
	c.addHosts(ctx, f, cfg)
	c.addSockets(ctx, f, cfg, srcs)
	return &opened{fleet: f, cfg: cfg, close: func() { f.Close() }}, exitOK
}

func (c *cli) openDemo(ctx context.Context, banner string, tweak func(*fleet.Options)) (*opened, int) {
	d, err := demo.Start(ctx, "")
	if err != nil {
		c.errorf("demo fleet: %v", err)
		return nil, exitFail
	}
	opts := fleet.Options{Readonly: c.readonly, Timeout: 2 * time.Second, OnNotice: c.printNotice}
	if tweak != nil {
		tweak(&opts)
	}
	f := fleet.New(opts)
	targets := make([]fleet.Target, len(d.Guests))
	for i, g := range d.Guests {
		targets[i] = fleet.Target{Name: g.Name, Host: g.Host, Address: g.Address, Tags: g.Tags}
	}
	f.Add(targets...)
	return &opened{fleet: f, banner: banner, close: func() { f.Close(); d.Close() }}, exitOK
}

// addHosts connects to every libvirt host at once, each bounded by
// hostTimeout. A host that does not answer is reported and keeps retrying in
// the background (its guests join when it answers): one bad host must not
// stop the others from being shown.
func (c *cli) addHosts(ctx context.Context, f *fleet.Fleet, cfg *config.File) {
	const hostTimeout = 10 * time.Second
	errs := make([]error, len(cfg.Hosts))
	var wg sync.WaitGroup
	for i, h := range cfg.Hosts {
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, hostTimeout)
			defer cancel()
			uri, err := h.Endpoint() // parsed once, by config: fleet takes the parts
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = f.AddHost(hctx, fleet.HostConfig{
				Name: h.Name, URI: uri, Include: h.Include, Exclude: h.Exclude, Tags: h.Tags,
				KnownHosts: h.KnownHosts, Identity: h.Identity, InsecureIgnoreHostKey: h.InsecureIgnoreHostKey,
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.errorf("warning: %s: %v", cfg.Path, err)
		}
	}
}

// sshSources builds one ssh host source per ssh connection the fleet file
// needs ([[guest]] ssh:// addresses and [[sockets]] ssh:// patterns on the
// same user@host:port share it), in file order. Entries that share a
// connection must agree on its keys.
func sshSources(cfg *config.File) ([]*discovery.SSH, error) {
	type use struct {
		keys  config.SSHKeys
		what  string
		url   config.SSHURL
		names []string
	}
	var order []string
	uses := map[string]*use{}
	add := func(u config.SSHURL, keys config.SSHKeys, what, guest string) error {
		ep := discovery.SSHEndpoint(u)
		if prev, ok := uses[ep]; ok {
			if prev.keys != keys {
				return fmt.Errorf("%s and %s reach ssh host %s with different known_hosts, identity or insecure_ignore_host_key; "+
					"they share one connection, so give them the same keys", prev.what, what, ep)
			}
			if guest != "" {
				prev.names = append(prev.names, guest)
			}
			return nil
		}
		uses[ep] = &use{keys: keys, what: what, url: u}
		if guest != "" {
			uses[ep].names = []string{guest}
		}
		order = append(order, ep)
		return nil
	}
	for _, g := range cfg.Guests {
		if u, err := config.ParseSSHURL(g.Address); err == nil {
			if err := add(u, g.SSH, fmt.Sprintf("[[guest]] %q", g.Name), g.Name); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range cfg.Sockets {
		if p, err := config.ParseSocketPattern(s.Pattern); err == nil && p.Remote != nil {
			if err := add(*p.Remote, s.SSH, fmt.Sprintf("[[sockets]] %q", s.Name), ""); err != nil {
				return nil, err
			}
		}
	}
	out := make([]*discovery.SSH, 0, len(order))
	for _, ep := range order {
		u := uses[ep]
		src, err := discovery.NewSSH(discovery.SSHConfig{URL: u.url, KnownHosts: u.keys.KnownHosts,
			InsecureIgnoreHostKey: u.keys.InsecureIgnoreHostKey, Identity: u.keys.Identity, Guests: u.names})
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}

// addSockets starts the ssh hosts (at once, each bounded like a libvirt
// host), then the [[sockets]] patterns, which list over them, one after
// the other in file order: a name two patterns find is the first one's in
// every run. A source that fails is reported and keeps retrying in the
// background.
func (c *cli) addSockets(ctx context.Context, f *fleet.Fleet, cfg *config.File, hosts []*discovery.SSH) {
	const sourceTimeout = 10 * time.Second
	warn := func(err error) {
		if err != nil {
			c.errorf("warning: %s: %v", cfg.Path, err)
		}
	}
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, sourceTimeout)
			defer cancel()
			errs[i] = f.AddSource(hctx, h)
		})
	}
	wg.Wait()
	for _, err := range errs {
		warn(err)
	}
	byEndpoint := map[string]*discovery.SSH{}
	for _, h := range hosts {
		byEndpoint[h.Name()] = h
	}
	for _, s := range cfg.Sockets {
		p, err := config.ParseSocketPattern(s.Pattern) // checked by config already
		if err != nil {
			warn(err)
			continue
		}
		sc := discovery.SocketsConfig{Name: s.Name, Pattern: s.Pattern, Dir: p.Dir, Glob: p.Glob,
			Tags: s.Tags, Naming: s.Naming, Rescan: s.Rescan.Duration}
		if p.Remote != nil {
			sc.SSH = byEndpoint[discovery.SSHEndpoint(*p.Remote)]
		}
		src, err := discovery.NewSockets(sc)
		if err != nil {
			warn(err)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, sourceTimeout)
		warn(f.AddSource(sctx, src))
		cancel()
	}
}

// knownGuest reports whether guest is the whole name of one of o's guests,
// for the commands that work on one guest (cat, get, put, agent), and says
// why not: a bare domain name is refused with the HOST/DOMAIN guests it
// might mean (fleet.Lookup), before anything is sent to any guest.
func (c *cli) knownGuest(o *opened, guest string) bool {
	_, err := fleet.Lookup(o.fleet.Snapshot().Guests, guest)
	if err == nil {
		return true
	}
	where := "the demo fleet"
	if o.cfg != nil {
		where = o.cfg.Path
	}
	c.errorf("%v (in %s)", err, where)
	return false
}

// noticeCells caps one notice line: an attempt's reason is an agent error.
const noticeCells = 400

// printNotice prints a fleet notice (a thaw attempt, a guest left frozen)
// as one line on stderr.
func (c *cli) printNotice(n fleet.Notice) {
	// The text carries agent error text: escaped and cut like any.
	text := present.Text(n.Text, noticeCells)
	if n.Guest == "" {
		c.errorf("%s", text)
		return
	}
	c.errorf("%s: %s", present.Text(n.Guest, nameCells), text)
}
