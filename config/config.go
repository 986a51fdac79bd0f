// Package config reads the guestdeck fleet file: a TOML file naming libvirt
// hosts and directly reachable guest agents, polling defaults, the theme and
// key bindings. Load decodes it, fills defaults and validates everything, so
// a bad file ends the program with one message naming file:line:column
// before the screen takes over.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/config/tomllimit"
)

// Defaults used when the fleet file leaves a setting out.
const (
	DefaultInterval      = 5 * time.Second
	DefaultSlowInterval  = 60 * time.Second
	DefaultTimeout       = 3 * time.Second
	DefaultConcurrency   = 64
	DefaultFreezeTimeout = 5 * time.Minute
	DefaultTheme         = "dark"
	// DefaultRescan is how often a [[sockets]] pattern is listed again.
	DefaultRescan = 10 * time.Second
	// MinRescan keeps a rescan from hammering a host.
	MinRescan = time.Second
)

// DefaultMetricsInterval is how often CPU, disk and load counters are
// polled (fleet's DefaultMetricsInterval; chosen by measurement, see
// README's Performance).
const DefaultMetricsInterval = 10 * time.Second

// Naming rules of a [[sockets]] table.
const (
	NamingFile    = "file"    // the socket's file name without its extension
	NamingProxmox = "proxmox" // the VM's name: from /etc/pve/qemu-server/VMID.conf
)

// Limits on a fleet file, checked before it is parsed: BurntSushi/toml
// takes time and memory quadratic in nesting depth and about a kilobyte per
// table, so a small hostile file could otherwise take all the machine's
// memory. A 10,000-guest file as guestdeck sim writes it is 0.9 MB (1.8 MB
// with the longest socket paths and three tags each) and has 10,000 tables.
const (
	MaxFileBytes = 4 << 20
	MaxDepth     = tomllimit.MaxDepth
	MaxTables    = 100_000
)

var fileLimits = tomllimit.Limits{What: "fleet file", MaxBytes: MaxFileBytes, MaxDepth: MaxDepth, MaxTables: MaxTables}

// KeyActions are the dashboard actions [keys] may rebind. The tui binds keys
// by these same names.
var KeyActions = []string{
	"up", "down", "page_up", "page_down", "top", "bottom",
	"open", "back",
	"mark", "mark_range", "extend_up", "extend_down", "mark_all", "invert_marks", "clear", "jump",
	"filter", "command", "help", "quit", "sort", "sort_reverse", "hold_order", "pulse", "fold", "fold_all",
	"detail_next_tab", "detail_prev_tab", "detail_down", "detail_up", "detail_pane", "events",
	"ping", "freeze", "thaw", "shutdown", "suspend", "settime", "files", "refresh", "exec", "hosts",
	"yank", "audit", "stop",
}

// Duration is a time.Duration written in the fleet file as a string such as
// "5s" or "1m30s".
type Duration struct{ time.Duration }

// File is a decoded, defaulted and validated fleet file.
type File struct {
	Path     string    `toml:"-"`
	Defaults Defaults  `toml:"defaults"`
	Hosts    []Host    `toml:"host,omitempty"`
	Guests   []Guest   `toml:"guest,omitempty"`
	Sockets  []Sockets `toml:"sockets,omitempty"`
	// Keys maps an action from KeyActions to the keys bound to it (at
	// least one); an action absent here keeps its built-in keys.
	Keys map[string][]string `toml:"keys,omitempty"`
	// Views are the dashboard's saved views, in file order (views.go).
	Views []View `toml:"views,omitempty"`
	// Commands are the user-defined dashboard commands, in file order.
	Commands []Command `toml:"commands,omitempty"`
	// keysAt is where each [keys] action's value is, for the problems only
	// the dashboard can find (KeyError).
	keysAt map[string]pos
}

// KeyError is msg about [keys] action, located at its value in the file.
func (f *File) KeyError(action, msg string) *Error {
	p := f.keysAt[action]
	return &Error{Path: f.Path, Line: p.Line, Col: p.Col, Msg: msg}
}

// Defaults are the fleet-wide settings from [defaults].
type Defaults struct {
	Interval      Duration `toml:"interval"`       // live items: time, freeze state, interfaces, vCPUs
	SlowInterval  Duration `toml:"slow_interval"`  // info, OS, hostname, timezone, users, filesystems
	Timeout       Duration `toml:"timeout"`        // per agent call
	FreezeTimeout Duration `toml:"freeze_timeout"` // automatic thaw deadline
	Concurrency   int      `toml:"concurrency"`    // bulk actions in parallel
	// Theme is a builtin theme name or a path to a theme file; themes
	// resolves it.
	Theme string `toml:"theme"`
	// Readonly refuses every mutating action (freeze, shutdown, writes...).
	Readonly bool `toml:"readonly,omitempty"`
	// MetricsInterval: CPU, disk and network counters and load; zero (the
	// file said 0) turns them off.
	MetricsInterval Duration `toml:"metrics_interval"`
	// Exclusive keeps every guest's agent socket open between polls (a
	// guest's own exclusive overrides it). By default guestdeck connects
	// per poll and lets go, because a channel serves one client at a time.
	Exclusive bool `toml:"exclusive,omitempty"`
	// SSH is the default for guests at ssh:// addresses and [[sockets]]
	// over ssh that leave a key out.
	SSH SSHKeys `toml:"-"`
}

// SSHKeys are how an ssh:// guest or [[sockets]] pattern logs in and checks
// the host, "~/" expanded. After Parse, KnownHosts is always set for
// whatever uses ssh (its own, [defaults]' or ~/.ssh/known_hosts); an empty
// Identity means the ssh agent ($SSH_AUTH_SOCK). InsecureIgnoreHostKey is
// true when the entry or [defaults] says so.
type SSHKeys struct {
	KnownHosts            string `toml:"known_hosts,omitempty"`
	Identity              string `toml:"identity,omitempty"`
	InsecureIgnoreHostKey bool   `toml:"insecure_ignore_host_key,omitempty"`
}

// Host is a libvirt host from [[host]]: its running domains with a guest
// agent channel join the fleet.
type Host struct {
	Name string `toml:"name"`
	URI  string `toml:"uri"`
	// Include and Exclude are domain name globs (path.Match); no Include
	// means all domains.
	Include []string `toml:"include,omitempty"`
	Exclude []string `toml:"exclude,omitempty"`
	Tags    []string `toml:"tags,omitempty"`
	// KnownHosts and Identity are for qemu+ssh, with "~/" expanded.
	// KnownHosts defaults to ~/.ssh/known_hosts for ssh hosts.
	KnownHosts            string `toml:"known_hosts,omitempty"`
	Identity              string `toml:"identity,omitempty"`
	InsecureIgnoreHostKey bool   `toml:"insecure_ignore_host_key,omitempty"`
}

// Endpoint parses the host's URI; Parse has already checked it, so this
// only fails on a Host built by hand.
func (h Host) Endpoint() (HostURI, error) { return ParseURI(h.URI) }

// Guest is a guest agent reached directly, from [[guest]].
type Guest struct {
	Name    string   `toml:"name"`
	Address string   `toml:"address"` // unix:/abs/path, tcp:host:port, vsock:cid:port or ssh://[user@]host[:port]/abs/path
	Tags    []string `toml:"tags,omitempty"`
	SSH     SSHKeys  `toml:"-"` // ssh:// addresses only
	// Exclusive: see Defaults.Exclusive. Parse fills it from [defaults]
	// when the guest does not say.
	Exclusive bool `toml:"exclusive,omitempty"`

	exclusiveSet bool // the guest's table has exclusive
}

// Sockets is a [[sockets]] table: every unix socket matching Pattern, on
// this machine or on an ssh host, is a guest.
type Sockets struct {
	// Name names the source: the Host column of its guests and the
	// qualifier of a name that collides ("NAME/GUEST"). Default: the ssh
	// host, or the local directory's last element.
	Name string `toml:"name"`
	// Pattern is /dir/GLOB or ssh://[user@]host[:port]/dir/GLOB; only the
	// last element may hold glob characters (path.Match).
	Pattern string   `toml:"pattern"`
	Tags    []string `toml:"tags,omitempty"`
	Naming  string   `toml:"naming,omitempty"` // NamingFile (default) or NamingProxmox
	Rescan  Duration `toml:"rescan,omitempty"` // default DefaultRescan
	SSH     SSHKeys  `toml:"-"`
}

// SocketPattern is a [[sockets]] pattern taken apart: Remote is nil for a
// local pattern.
type SocketPattern struct {
	Remote    *SSHURL
	Dir, Glob string
}

// ParseSocketPattern takes a [[sockets]] pattern apart; see Sockets.Pattern.
func ParseSocketPattern(s string) (SocketPattern, error) {
	var p SocketPattern
	full := s
	if strings.HasPrefix(s, "ssh:") {
		u, err := ParseSSHURL(s)
		if err != nil {
			return p, err
		}
		// The directory and the glob go to find(1) in the remote user's
		// shell, single-quoted: refuse what a shell (sh, csh, fish) reads
		// inside single quotes, and find's own negation.
		if i := strings.IndexAny(u.Path, "'\\!^$`\""); i >= 0 {
			return p, fmt.Errorf("pattern %q: %q is not allowed in an ssh pattern", s, string(u.Path[i]))
		}
		p.Remote, full = &u, u.Path
	}
	if !strings.HasPrefix(full, "/") {
		return p, fmt.Errorf("pattern %q must be an absolute path (/dir/*.qga) or ssh://[user@]host[:port]/dir/*.qga", s)
	}
	p.Dir, p.Glob = path.Split(full)
	p.Dir = path.Clean(p.Dir)
	switch {
	case p.Glob == "":
		return p, fmt.Errorf("pattern %q ends in '/'; add the file pattern, e.g. %s*.qga", s, full)
	case strings.ContainsAny(p.Dir, "*?[\\"):
		return p, fmt.Errorf("pattern %q: only the last element may hold glob characters", s)
	}
	if _, err := path.Match(p.Glob, ""); err != nil {
		return p, fmt.Errorf("pattern %q: bad glob %q", s, p.Glob)
	}
	return p, nil
}

// Error is a problem with the fleet file, located where known.
type Error struct {
	Path      string
	Line, Col int // 1-based; 0 when unknown
	Msg       string
	// Err is the underlying cause when there is one (e.g. fs.ErrNotExist).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Col > 0 {
				fmt.Fprintf(&b, ":%d", e.Col)
			}
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// DefaultPath is where the fleet file lives when -c is not given:
// $XDG_CONFIG_HOME/guestdeck/fleet.toml, else ~/.config/guestdeck/fleet.toml.
func DefaultPath() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "guestdeck", "fleet.toml")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".config", "guestdeck", "fleet.toml")
	}
	return filepath.Join(home, ".config", "guestdeck", "fleet.toml")
}

// StateDir is where state that must outlive a process lives (the freeze and
// suspend ledger, the audit log): $XDG_STATE_HOME/guestdeck, else
// ~/.local/state/guestdeck. It is not created here; writers create it (0700).
func StateDir() string {
	if dir := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "guestdeck")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".local", "state", "guestdeck")
	}
	return filepath.Join(home, ".local", "state", "guestdeck")
}

// Load reads and parses the fleet file at path. It reads no more of it
// than MaxFileBytes and one byte beyond.
func Load(path string) (*File, error) {
	data, err := tomllimit.ReadFile(path, MaxFileBytes)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Path: path, Err: err, Msg: fmt.Sprintf(
				"no such fleet file; write one like examples/fleet.toml there (default location %s), or pass -c FILE",
				DefaultPath())}
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in front of the message
		}
		return nil, &Error{Path: path, Err: err, Msg: "cannot read fleet file: " + err.Error()}
	}
	return Parse(path, data)
}

// Parse decodes, defaults and validates a fleet file's contents; path is
// only used in messages and File.Path. Any error is an *Error: the first
// problem in the file. Contents larger than MaxFileBytes, nested deeper
// than MaxDepth or with more than MaxTables tables are refused before they
// are parsed.
func Parse(path string, data []byte) (*File, error) {
	if err := tomllimit.Check(data, fileLimits); err != nil {
		e := &Error{Path: path, Msg: err.Error(), Err: err}
		var le *tomllimit.Error
		if errors.As(err, &le) {
			e.Line, e.Col, e.Msg = le.Line, le.Col, le.Msg
		}
		return nil, e
	}
	f, err := decode(path, data)
	if err != nil {
		return nil, err
	}
	f.Path = path
	for i := range f.Guests {
		if !f.Guests[i].exclusiveSet {
			f.Guests[i].Exclusive = f.Defaults.Exclusive
		}
	}
	return f, nil
}

// expandHome turns a leading "~/" into the user's home directory.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~"))
}
