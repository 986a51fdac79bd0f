package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Farm is many simulated guests, each on its own unix socket in one directory.
type Farm struct {
	dir     string
	guests  []*Guest
	sockets []string
	wg      sync.WaitGroup
	encs    sync.Pool // reply encoders, shared by the guests
}

// ServeDir starts n guests listening on DIR/<name>.sock. cfg builds guest i's
// configuration; nil, or a Config without a Name, names it "sim-NNNN" (from
// 1) with DefaultConfig, numbered (Config.Number). Each guest costs one
// goroutine while idle.
func ServeDir(dir string, n int, cfg func(i int) Config) (*Farm, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim farm: %w", err)
	}
	f := &Farm{dir: dir, guests: make([]*Guest, 0, n), sockets: make([]string, 0, n)}
	for i := range n {
		def := fmt.Sprintf("sim-%04d", i+1)
		var c Config
		if cfg != nil {
			c = cfg(i)
		} else {
			c = DefaultConfig(def)
			c.Number(i)
		}
		if c.Name == "" {
			c.Name = def
			if c.Hostname == "" {
				c.Hostname = def
			}
		}
		sock := filepath.Join(dir, c.Name+".sock")
		if len(sock) >= 108 {
			f.Close()
			return nil, fmt.Errorf("sim farm: socket path too long (%d bytes): %s", len(sock), sock)
		}
		os.Remove(sock)
		l, err := Listen(sock)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sim farm: guest %s: %w", c.Name, err)
		}
		g := New(c)
		g.encs = &f.encs
		f.guests = append(f.guests, g)
		f.sockets = append(f.sockets, sock)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			g.Serve(l)
		}()
	}
	return f, nil
}

// Guests returns the guests in start order.
func (f *Farm) Guests() []*Guest { return f.guests }

// Sockets returns the socket paths, parallel to Guests.
func (f *Farm) Sockets() []string { return f.sockets }

// Close stops every guest and waits for their accept loops to end.
func (f *Farm) Close() error {
	var errs []error
	for _, g := range f.guests {
		errs = append(errs, g.Close())
	}
	f.wg.Wait()
	return errors.Join(errs...)
}

// WriteFleetFile writes a guestdeck fleet file listing the farm's guests:
// one [[guest]] table each with name, address "unix:SOCKET" and tags (the
// Config's Tags plus "sim", and "windows" for Windows-like guests).
func (f *Farm) WriteFleetFile(path string) error {
	var b strings.Builder
	b.WriteString("# Simulated guests (agentclient/sim farm in " + f.dir + ").\n")
	for i, g := range f.guests {
		tags := []string{"sim"}
		if g.cfg.Windows {
			tags = append(tags, "windows")
		}
		tags = append(tags, g.cfg.Tags...)
		qt := make([]string, len(tags))
		for j, t := range tags {
			qt[j] = tomlQuote(t)
		}
		fmt.Fprintf(&b, "\n[[guest]]\nname = %s\naddress = %s\ntags = [%s]\n",
			tomlQuote(g.cfg.Name), tomlQuote("unix:"+f.sockets[i]), strings.Join(qt, ", "))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("sim farm: fleet file: %w", err)
	}
	return nil
}

// tomlQuote makes a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7F:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Freeze freezes the guest served at addr through its own agent, as a backup
// tool would: the fleet then sees a guest frozen by someone else. The
// simulator has no frozen setting on purpose, so that the state is reached
// the one way a real guest reaches it.
func Freeze(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := agentclient.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := c.Freeze(ctx)
	if err == nil && n == 0 {
		err = errors.New("froze no filesystem")
	}
	return err
}
