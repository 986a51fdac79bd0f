package discovery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/config"
)

// Limits on what a socket directory, local or on an ssh host, may tell us:
// file names and Proxmox configs are the host's data.
const (
	// maxListing bounds a remote listing's output (find -print0).
	maxListing = 1 << 20
	// maxSockets bounds the sockets one pattern holds.
	maxSockets = 10_000
	// maxVMConfig bounds a Proxmox VM config read (they are a few KB).
	maxVMConfig = 256 << 10
	// maxNameLen bounds a discovered guest name.
	maxNameLen = 64
	// maxSocketPath is what a unix socket address holds (sun_path).
	maxSocketPath = 107
	// socketsScanTimeout bounds one scan as a whole.
	socketsScanTimeout = 30 * time.Second
	// DefaultProxmoxDir is where a Proxmox node keeps its VMs' configs.
	DefaultProxmoxDir = "/etc/pve/qemu-server"
)

// SocketsConfig is one [[sockets]] pattern.
type SocketsConfig struct {
	Name    string // the source's name: Host of its guests, qualifier of a colliding name
	Pattern string // as the fleet file wrote it
	// Dir and Glob split the pattern: every unix socket in Dir (not below)
	// whose name matches Glob (path.Match) is a guest.
	Dir, Glob string
	// SSH is the host the directory is on, nil for this machine. Listing
	// and agent sessions share its connection.
	SSH    *SSH
	Tags   []string
	Naming string        // config.NamingFile (default) or config.NamingProxmox
	Rescan time.Duration // default config.DefaultRescan
	// ProxmoxDir is where VMID.conf files are read for NamingProxmox;
	// default DefaultProxmoxDir (on the same host as the sockets).
	ProxmoxDir string
}

// Sockets is the Source of one socket pattern. It lists the directory at
// start and every Rescan (and at once when its ssh host comes back), adds
// the sockets that appeared and removes those that vanished. Names are
// the file name without its extension, or with NamingProxmox the VM's
// name; a name the fleet already holds (a [[guest]], another source's
// guest, another socket here) is qualified: "SOURCE/NAME", then
// "SOURCE/FILE". A guest keeps its name while its socket exists, so names
// do not move while the fleet runs; sockets are taken in path order, so
// the same directory names its guests the same in every run.
type Sockets struct {
	cfg  SocketsConfig
	sink Sink

	mu    sync.Mutex
	known map[string]string // socket path -> target name
	names map[string]string // VMID socket path -> Proxmox name (read once)
	state State
	kick  chan struct{}
}

// NewSockets checks c and returns its Source. Nothing is listed before Run.
func NewSockets(c SocketsConfig) (*Sockets, error) {
	if c.Name == "" || strings.ContainsAny(c.Name, "/ ") {
		return nil, fmt.Errorf("sockets %q: name must be non-empty without '/' or spaces", c.Name)
	}
	if !path.IsAbs(c.Dir) || c.Glob == "" || strings.Contains(c.Glob, "/") {
		return nil, fmt.Errorf("sockets %s: pattern %q: want /dir/GLOB", c.Name, c.Pattern)
	}
	if _, err := path.Match(c.Glob, ""); err != nil {
		return nil, fmt.Errorf("sockets %s: bad glob %q: %w", c.Name, c.Glob, err)
	}
	switch c.Naming {
	case "":
		c.Naming = config.NamingFile
	case config.NamingFile, config.NamingProxmox:
	default:
		return nil, fmt.Errorf("sockets %s: unknown naming %q", c.Name, c.Naming)
	}
	if c.Rescan <= 0 {
		c.Rescan = config.DefaultRescan
	}
	if c.ProxmoxDir == "" {
		c.ProxmoxDir = DefaultProxmoxDir
	}
	return &Sockets{cfg: c, known: make(map[string]string), names: make(map[string]string),
		kick:  make(chan struct{}, 1),
		state: State{Name: c.Name, Kind: "sockets", Endpoint: c.Pattern, Phase: Connecting, Since: time.Now()}}, nil
}

// Name is the source's name.
func (x *Sockets) Name() string { return x.cfg.Name }

// State is the last scan's outcome and the guest count.
func (x *Sockets) State() State {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.state
	st.Guests = len(x.known)
	return st
}

func (x *Sockets) count() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.known)
}

// sshUp: the ssh host is (back) up: rescan now and poll every guest.
func (x *Sockets) sshUp() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
	x.mu.Lock()
	names := make([]string, 0, len(x.known))
	for _, n := range x.known {
		names = append(names, n)
	}
	x.mu.Unlock()
	if x.sink != nil {
		for _, n := range names {
			x.sink.Poke(n)
		}
	}
}

// Run scans, then rescans every Rescan until ctx ends.
func (x *Sockets) Run(ctx context.Context, sink Sink, first func(error)) {
	x.sink = sink
	if x.cfg.SSH != nil {
		x.cfg.SSH.watch(sshWatcher{up: x.sshUp, guests: x.count})
	}
	first(x.scan(ctx))
	t := time.NewTicker(x.cfg.Rescan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-x.kick:
		}
		x.mu.Lock()
		if x.state.Phase == Unreachable {
			x.setPhaseLocked(Reconnecting, x.state.Err, time.Time{})
		}
		x.mu.Unlock()
		x.changed()
		_ = x.scan(ctx)
	}
}

func (x *Sockets) changed() {
	if x.sink != nil {
		x.sink.SourceChanged()
	}
}

func (x *Sockets) setPhaseLocked(p Phase, err error, retry time.Time) {
	if x.state.Phase != p {
		x.state.Since = time.Now()
	}
	x.state.Phase, x.state.Err, x.state.Retry = p, err, retry
}

// scan lists the pattern and brings the targets in line with it. A failed
// listing keeps the guests (their own dials say what is wrong) and makes
// the source unreachable until the next scan.
func (x *Sockets) scan(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, socketsScanTimeout)
	defer cancel()
	paths, err := x.list(ctx)
	if err == nil {
		err = x.apply(ctx, paths)
	}
	x.mu.Lock()
	if err != nil {
		err = fmt.Errorf("sockets %s (%s): %w", x.cfg.Name, x.cfg.Pattern, err)
		x.setPhaseLocked(Unreachable, err, time.Now().Add(x.cfg.Rescan))
	} else {
		x.setPhaseLocked(Up, nil, time.Time{})
	}
	x.mu.Unlock()
	x.changed()
	return err
}

// list returns the sockets matching the pattern, sorted.
func (x *Sockets) list(ctx context.Context) ([]string, error) {
	var found []string
	if x.cfg.SSH == nil {
		ents, err := os.ReadDir(x.cfg.Dir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if ok, _ := path.Match(x.cfg.Glob, e.Name()); ok && e.Type()&fs.ModeSocket != 0 {
				found = append(found, filepath.Join(x.cfg.Dir, e.Name()))
			}
		}
	} else {
		// A fixed command, its two arguments quoted (config refuses what a
		// shell would read inside single quotes): no shell syntax, no
		// sftp subsystem needed. find names sockets only (-type s).
		cmd := "find " + shellQuote(x.cfg.Dir) + " -maxdepth 1 -name " + shellQuote(x.cfg.Glob) + " -type s -print0"
		out, err := x.cfg.SSH.Command(ctx, cmd, maxListing)
		if err != nil {
			return nil, err
		}
		found = parseListing(out, x.cfg.Dir, x.cfg.Glob)
	}
	found = slices.DeleteFunc(found, func(p string) bool { return len(p) > maxSocketPath })
	slices.Sort(found)
	found = slices.Compact(found)
	if len(found) > maxSockets {
		return nil, fmt.Errorf("%d sockets match, more than %d", len(found), maxSockets)
	}
	return found, nil
}

// parseListing reads find -print0 output: the paths directly in dir whose
// name matches glob. The host's data: a name out of the directory, not
// valid UTF-8, with control characters, or not matching the glob is not a
// socket of ours.
func parseListing(out []byte, dir, glob string) []string {
	var found []string
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for e := range bytes.SplitSeq(out, []byte{0}) {
		p := string(e)
		base, ok := strings.CutPrefix(p, prefix)
		if !ok || base == "" || base == "." || base == ".." || strings.Contains(base, "/") || !utf8.ValidString(base) ||
			strings.ContainsFunc(base, func(r rune) bool { return r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
			continue
		}
		if m, _ := path.Match(glob, base); !m {
			continue
		}
		found = append(found, p)
	}
	return found
}

// apply adds the new sockets (in path order) and removes vanished ones.
func (x *Sockets) apply(ctx context.Context, paths []string) error {
	present := make(map[string]bool, len(paths))
	for _, p := range paths {
		present[p] = true
	}
	x.mu.Lock()
	var gone []string
	for p, n := range x.known {
		if !present[p] {
			gone = append(gone, n)
			delete(x.known, p)
			delete(x.names, p)
		}
	}
	var fresh []string
	for _, p := range paths {
		if _, ok := x.known[p]; !ok {
			fresh = append(fresh, p)
		}
	}
	x.mu.Unlock()
	if len(gone) > 0 {
		x.sink.Remove(gone...)
	}
	var firstErr error
	for _, p := range fresh {
		name, err := x.guestName(ctx, p)
		if err != nil {
			// Not named yet (a config read failed): tried again next scan.
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if name == "" {
			continue // a name that cannot be a guest's
		}
		x.claim(p, name)
	}
	if len(gone) > 0 || len(fresh) > 0 {
		x.changed()
	}
	return firstErr
}

// claim adds the socket at p under the first of its candidate names the
// fleet lets it have.
func (x *Sockets) claim(p, name string) {
	t := Target{Host: x.cfg.Name, Address: x.address(p), Tags: slices.Clone(x.cfg.Tags), Endpoint: x.cfg.Pattern}
	cands := []string{name, QualifiedName(x.cfg.Name, name)}
	if base := path.Base(p); validGuestName(base) && base != name {
		cands = append(cands, QualifiedName(x.cfg.Name, base))
	}
	for _, n := range cands {
		t.Name = n
		if got := x.sink.Claim([]Target{t}); len(got) == 1 {
			x.mu.Lock()
			x.known[p] = n
			x.mu.Unlock()
			return
		}
	}
}

// address is how the fleet dials the socket at p.
func (x *Sockets) address(p string) string {
	if x.cfg.SSH == nil {
		return "unix:" + p
	}
	u := url.URL{Scheme: SSHScheme, User: url.User(x.cfg.SSH.user), Host: x.cfg.SSH.addr, Path: p}
	return u.String()
}

// guestName names the socket at p: "" when it cannot be named (skipped).
func (x *Sockets) guestName(ctx context.Context, p string) (string, error) {
	base := path.Base(p)
	stem := strings.TrimSuffix(base, path.Ext(base))
	if stem == "" {
		stem = base
	}
	if x.cfg.Naming != config.NamingProxmox || !isVMID(stem) {
		if !validGuestName(stem) {
			return "", nil
		}
		return stem, nil
	}
	conf := path.Join(x.cfg.ProxmoxDir, stem+".conf")
	var data []byte
	var err error
	if x.cfg.SSH == nil {
		data, err = readBounded(conf, maxVMConfig)
		if errors.Is(err, fs.ErrNotExist) {
			return stem, nil
		}
	} else {
		data, err = x.cfg.SSH.Command(ctx, "cat "+shellQuote(conf), maxVMConfig)
		var ee interface{ ExitStatus() int }
		if errors.As(err, &ee) {
			return stem, nil // no such config (cat failed): named by its VMID
		}
	}
	if err != nil {
		return "", fmt.Errorf("VM %s: %w", stem, err)
	}
	if n := proxmoxName(data); validGuestName(n) {
		return n, nil
	}
	return stem, nil // no name, or one that cannot be a guest's: its VMID
}

// proxmoxName is the "name:" of a Proxmox VM config's current section
// (snapshot sections, "[name]", follow it).
func proxmoxName(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxVMConfig)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			break
		}
		if v, ok := strings.CutPrefix(line, "name:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func isVMID(s string) bool {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validGuestName keeps discovered names (the host's data) to what the
// fleet file allows, in ASCII: letters, digits, '.', '_' and '-'.
func validGuestName(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] == '-' || s[0] == '.' {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
