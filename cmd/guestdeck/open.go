package main

import (
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
	"github.com/guestdeck/guestdeck/fleet/ledger"
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
	if c.demo {
		return c.openDemo(ctx, "", tweak)
	}
	cfg, err := c.loadConfig()
	if errors.Is(err, errNoFleetFile) {
		if allowDemo {
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
	// readonly = true in the fleet file is as good as --readonly.
	c.readonly = c.readonly || cfg.Defaults.Readonly
	opts := fleet.Options{
		Interval:      cfg.Defaults.Interval.Duration,
		SlowInterval:  cfg.Defaults.SlowInterval.Duration,
		Timeout:       cfg.Defaults.Timeout.Duration,
		FreezeTimeout: cfg.Defaults.FreezeTimeout.Duration,
		Concurrency:   cfg.Defaults.Concurrency,
		Readonly:      c.readonly,
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
	c.addHosts(ctx, f, cfg)
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
