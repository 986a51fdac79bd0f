package config

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func defaults() Defaults {
	return Defaults{
		Interval:      Duration{5 * time.Second},
		SlowInterval:  Duration{time.Minute},
		Timeout:       Duration{3 * time.Second},
		FreezeTimeout: Duration{5 * time.Minute},
		Concurrency:   64,
		Theme:         "dark",

		MetricsInterval: Duration{10 * time.Second},
	}
}

func TestParseGood(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	tests := []struct {
		name, src string
		want      File
	}{
		{"empty file gets defaults", "", File{Defaults: defaults()}},
		{"comments only", "# nothing yet\n\n", File{Defaults: defaults()}},
		{"defaults overridden", `
[defaults]
interval = "1s"
slow_interval = "1m30s"
metrics_interval = "20s"
timeout = "500ms"
concurrency = 8
freeze_timeout = "30s"
theme = "~/themes/mine.toml"
readonly = true
`, File{Defaults: Defaults{
			Interval: Duration{time.Second}, SlowInterval: Duration{90 * time.Second},
			Timeout: Duration{500 * time.Millisecond}, Concurrency: 8, FreezeTimeout: Duration{30 * time.Second},
			Theme: "/home/u/themes/mine.toml", Readonly: true, MetricsInterval: Duration{20 * time.Second},
		}}},
		{"unknown theme name is passed on", "[defaults]\ntheme = \"solarized\"\n",
			File{Defaults: func() Defaults { d := defaults(); d.Theme = "solarized"; return d }()}},
		{"hosts and guests", `
[[host]]
name = "hv1"
uri = "qemu+ssh://root@hv1/system"
include = ["web-*"]
exclude = []
tags = ["prod"]
identity = "~/.ssh/id_ed25519"

[[host]]
name = "local"
uri = "qemu:///system"

[[guest]]
name = "dev-1"
address = "unix:/run/qga/dev-1.sock"
tags = ["dev"]

[[guest]]
name = "v6"
address = "tcp:[::1]:4444"
`, File{
			Defaults: defaults(),
			Hosts: []Host{
				{Name: "hv1", URI: "qemu+ssh://root@hv1/system", Include: []string{"web-*"}, Exclude: []string{},
					Tags: []string{"prod"}, KnownHosts: "/home/u/.ssh/known_hosts", Identity: "/home/u/.ssh/id_ed25519"},
				{Name: "local", URI: "qemu:///system"},
			},
			Guests: []Guest{
				{Name: "dev-1", Address: "unix:/run/qga/dev-1.sock", Tags: []string{"dev"}},
				{Name: "v6", Address: "tcp:[::1]:4444"},
			},
		}},
		{"inline tables and dotted keys", `
defaults.timeout = "1s"
guest = [{ name = "a", address = "vsock:3:1234" }]
host = [{ name = "h", uri = "/run/libvirt/libvirt-sock", insecure_ignore_host_key = true }]
`, File{
			Defaults: func() Defaults { d := defaults(); d.Timeout = Duration{time.Second}; return d }(),
			Hosts:    []Host{{Name: "h", URI: "/run/libvirt/libvirt-sock", InsecureIgnoreHostKey: true}},
			Guests:   []Guest{{Name: "a", Address: "vsock:3:1234"}},
		}},
		{"ssh guests and sockets", `
[defaults]
identity = "~/.ssh/fleet"

[[guest]]
name = "far"
address = "ssh://root@pve1:2222/var/run/qemu-server/101.qga"
known_hosts = "~/kh"

[[guest]]
name = "near"
address = "ssh://pve2/run/a.sock"
insecure_ignore_host_key = true
identity = "/k"

[[sockets]]
pattern = "ssh://root@pve1/var/run/qemu-server/*.qga"
naming = "proxmox"
tags = ["pve"]
rescan = "30s"

[[sockets]]
name = "lab"
pattern = "/run/qga/*.sock"
`, File{
			Defaults: func() Defaults { d := defaults(); d.SSH.Identity = "/home/u/.ssh/fleet"; return d }(),
			Guests: []Guest{
				{Name: "far", Address: "ssh://root@pve1:2222/var/run/qemu-server/101.qga",
					SSH: SSHKeys{KnownHosts: "/home/u/kh", Identity: "/home/u/.ssh/fleet"}},
				{Name: "near", Address: "ssh://pve2/run/a.sock",
					SSH: SSHKeys{KnownHosts: "/home/u/.ssh/known_hosts", Identity: "/k", InsecureIgnoreHostKey: true}},
			},
			Sockets: []Sockets{
				{Name: "pve1", Pattern: "ssh://root@pve1/var/run/qemu-server/*.qga", Naming: NamingProxmox, Tags: []string{"pve"},
					Rescan: Duration{30 * time.Second}, SSH: SSHKeys{KnownHosts: "/home/u/.ssh/known_hosts", Identity: "/home/u/.ssh/fleet"}},
				{Name: "lab", Pattern: "/run/qga/*.sock", Naming: NamingFile, Rescan: Duration{DefaultRescan}},
			},
		}},
		{"keys", `
[keys]
freeze = ["F"]
thaw = "T"
up = ["k", "up", "ctrl+p", "shift+up"]
help = ["?", "f1"]
clear = ["esc"]
back = ["esc"]
`, File{Defaults: defaults(), Keys: map[string][]string{
			"freeze": {"F"}, "thaw": {"T"}, "up": {"k", "up", "ctrl+p", "shift+up"}, "help": {"?", "f1"},
			"clear": {"esc"}, "back": {"esc"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("f.toml", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Path = "f.toml"
			if tt.want.Keys == nil {
				tt.want.Keys = got.Keys // [keys] absent: nil or empty are both fine
			}
			tt.want.keysAt = got.keysAt // positions: TestKeyErrorAt
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestExampleFile(t *testing.T) {
	f, err := Load(filepath.Join("..", "examples", "fleet.toml"))
	if err != nil {
		t.Fatalf("examples/fleet.toml: %v", err)
	}
	if len(f.Hosts) == 0 || len(f.Guests) == 0 {
		t.Errorf("example has %d hosts and %d guests; it should show both", len(f.Hosts), len(f.Guests))
	}
	if f.Defaults != defaults() {
		t.Errorf("example [defaults] = %+v, want the documented defaults %+v", f.Defaults, defaults())
	}
	for _, h := range f.Hosts {
		if _, err := h.Endpoint(); err != nil {
			t.Errorf("host %s: %v", h.Name, err)
		}
	}
	// Every key the example uses must be documented.
	doc, err := os.ReadFile(filepath.Join("..", "docs", "fleet-file.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, keys := range [][]string{defaultsKeys, hostKeys, guestKeys, KeyActions, viewKeys, ViewColumns, commandKeys} {
		for _, k := range keys {
			if !strings.Contains(string(doc), "`"+k+"`") {
				t.Errorf("docs/fleet-file.md does not mention `%s`", k)
			}
		}
	}
}

func TestLoadMissing(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	p := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(p)
	want := p + ": no such fleet file; write one like examples/fleet.toml there (default location /xdg/guestdeck/fleet.toml), or pass -c FILE"
	if err == nil || err.Error() != want {
		t.Fatalf("Load = %v, want %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false")
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir) // a directory
	want := dir + ": cannot read fleet file: is a directory"
	if err == nil || err.Error() != want {
		t.Fatalf("Load = %v, want %s", err, want)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	if got := DefaultPath(); got != "/xdg/guestdeck/fleet.toml" {
		t.Errorf("with XDG_CONFIG_HOME: %s", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := DefaultPath(); got != "/home/u/.config/guestdeck/fleet.toml" {
		t.Errorf("without XDG_CONFIG_HOME: %s", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "relative") // the XDG spec says ignore it
	if got := DefaultPath(); got != "/home/u/.config/guestdeck/fleet.toml" {
		t.Errorf("relative XDG_CONFIG_HOME: %s", got)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Path: "f", Line: 3, Col: 7, Msg: "m"}, "f:3:7: m"},
		{Error{Path: "f", Line: 3, Msg: "m"}, "f:3: m"},
		{Error{Path: "f", Msg: "m"}, "f: m"},
		{Error{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: got %q want %q", tt.e, got, tt.want)
		}
	}
}

func TestParseURI(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		in   string
		want HostURI
	}{
		{"qemu:///system", HostURI{Transport: "unix", Socket: "/var/run/libvirt/libvirt-sock", Driver: "qemu:///system", Query: q()}},
		{"qemu:///session", HostURI{Transport: "unix", Socket: "/run/user/1000/libvirt/libvirt-sock", Driver: "qemu:///session", Query: q()}},
		{"qemu+unix:///system?socket=/tmp/l.sock", HostURI{Transport: "unix", Socket: "/tmp/l.sock", Driver: "qemu:///system", Query: q("socket", "/tmp/l.sock")}},
		{"/tmp/gd1/libvirt-sock", HostURI{Transport: "unix", Socket: "/tmp/gd1/libvirt-sock", Query: q()}},
		{"qemu+unix:///session?socket=/tmp/s&name=qemu:///embed", HostURI{Transport: "unix", Socket: "/tmp/s", Driver: "qemu:///embed", Query: q("socket", "/tmp/s", "name", "qemu:///embed")}},
		{"qemu+tcp://hv1/system", HostURI{Transport: "tcp", Host: "hv1", Port: "16509", Driver: "qemu:///system", Query: q()}},
		{"qemu+tls://hv1:1234/system?pkipath=/etc/pki/x", HostURI{Transport: "tls", Host: "hv1", Port: "1234", Driver: "qemu:///system", Query: q("pkipath", "/etc/pki/x")}},
		{"qemu://hv1/system", HostURI{Transport: "tls", Host: "hv1", Port: "16514", Driver: "qemu:///system", Query: q()}},
		{"qemu+ssh://root@hv1/system", HostURI{Transport: "ssh", Host: "hv1", Port: "22", User: "root", Socket: "/var/run/libvirt/libvirt-sock", Driver: "qemu:///system", Query: q()}},
		{"qemu+ssh://ops@[fd00::1]:2222/system?keyfile=/k&socket=/run/libvirt/virtqemud-sock&foo=bar",
			HostURI{Transport: "ssh", Host: "fd00::1", Port: "2222", User: "ops", Socket: "/run/libvirt/virtqemud-sock", Driver: "qemu:///system?foo=bar",
				Query: q("keyfile", "/k", "socket", "/run/libvirt/virtqemud-sock", "foo", "bar")}},
		{"qemu+libssh2://hv1/session", HostURI{Transport: "ssh", Host: "hv1", Port: "22", Socket: "/var/run/libvirt/libvirt-sock", Driver: "qemu:///session", Query: q()}},
		{"test:///default", HostURI{Transport: "unix", Socket: "/var/run/libvirt/libvirt-sock", Driver: "test:///default", Query: q()}},
		{"test+unix:///default?socket=/tmp/t.sock", HostURI{Transport: "unix", Socket: "/tmp/t.sock", Driver: "test:///default", Query: q("socket", "/tmp/t.sock")}},
	}
	for _, tt := range tests {
		got, err := ParseURI(tt.in)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tt.in, err)
			continue
		}
		tt.want.Raw = tt.in
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseURI(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}

	bad := []struct{ in, want string }{
		{"", `empty uri`},
		{"hv1", `uri "hv1" has no scheme; want e.g. qemu:///system, qemu+ssh://user@host/system or a socket path`},
		{"xen:///system", `uri "xen:///system": unsupported driver "xen"; guestdeck speaks to qemu (qemu:///system, qemu+ssh://host/system, ...)`},
		{"qemu+ext:///system", `uri "qemu+ext:///system": unsupported transport "ext"; want unix, tcp, tls or ssh`},
		{"qemu+ssh:///system", `uri "qemu+ssh:///system": ssh transport needs a host, e.g. qemu+ssh://host/system`},
		{"qemu+unix://hv1/system", `uri "qemu+unix://hv1/system": a unix socket uri names no host; use qemu+ssh://hv1/... to reach another machine`},
		{"qemu:///embed", `uri "qemu:///embed": path must be /system or /session, not "/embed"`},
		{"qemu+tcp://hv1/session", `uri "qemu+tcp://hv1/session": a session daemon is only reachable locally or over ssh`},
		{"qemu+tcp://hv1:0/system", `uri "qemu+tcp://hv1:0/system": bad port "0"`},
		{"qemu+unix:///system?socket=rel", `uri "qemu+unix:///system?socket=rel": socket "rel" must be an absolute path`},
		{"qemu+ssh://h:x/system", `cannot parse uri "qemu+ssh://h:x/system": invalid port ":x" after host`},
	}
	for _, tt := range bad {
		_, err := ParseURI(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseURI(%q) = %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestCheckAddress(t *testing.T) {
	for _, a := range []string{"unix:/run/qga.sock", "tcp:localhost:4444", "tcp:127.0.0.1:1", "tcp:[::1]:65535", "vsock:3:1234", "vsock:4294967295:1",
		"ssh://pve1/var/run/qemu-server/101.qga", "ssh://root@[::1]:2222/run/a%20b.sock"} {
		if err := CheckAddress(a); err != nil {
			t.Errorf("CheckAddress(%q): %v", a, err)
		}
	}
	bad := []struct{ in, want string }{
		{"", `address "" has no scheme; want unix:/path, tcp:host:port, vsock:cid:port or ssh://[user@]host[:port]/path`},
		{"tcp::44", `address "tcp::44": want tcp:host:port`},
		{"tcp:h:70000", `address "tcp:h:70000": port "70000" must be a number from 1 to 65535`},
		{"vsock:3", `address "vsock:3": want vsock:cid:port`},
		{"vsock:3:x", `address "vsock:3:x": vsock port "x" must be a number`},
		{"serial:/dev/ttyS0", `address "serial:/dev/ttyS0": unknown scheme "serial"; want unix:/path, tcp:host:port, vsock:cid:port or ssh://[user@]host[:port]/path`},
		{"ssh://pve1", `address "ssh://pve1": the socket path on the host must be absolute, e.g. ssh://root@pve1/var/run/qemu-server/101.qga`},
		{"ssh://root:pw@pve1/x.qga", `address "ssh://root:pw@pve1/x.qga": no passwords in addresses; use identity = "..." or your ssh agent`},
		{"ssh:///x.qga", `address "ssh:///x.qga" names no host; want ssh://[user@]host[:port]/abs/path`},
		{"ssh://h:0/x.qga", `address "ssh://h:0/x.qga": port "0" must be a number from 1 to 65535`},
		{"ssh://h/x.qga?y", `address "ssh://h/x.qga?y": an ssh address takes no ?query or #fragment (escape them as %3F, %23)`},
	}
	for _, tt := range bad {
		if err := CheckAddress(tt.in); err == nil || err.Error() != tt.want {
			t.Errorf("CheckAddress(%q) = %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestKeyNames(t *testing.T) {
	for _, k := range []string{"f", "F", "?", "/", "é", "space", "ctrl+a", "shift+down", "alt+shift+tab", "ctrl++", "+", "f12", "pgdown"} {
		if p, h := checkKeyName(k); p != "" {
			t.Errorf("checkKeyName(%q) = %s; %s", k, p, h)
		}
	}
	for _, k := range []string{"", " ", "ctrl+", "ctrl+space bar", "hyperspace+a", "f13", "ab"} {
		if p, _ := checkKeyName(k); p == "" {
			t.Errorf("checkKeyName(%q) accepted", k)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"intervall", "interval"}, {"Interval", "interval"}, {"slowinterval", "slow_interval"},
		{"freeze-timeout", "freeze_timeout"}, {"concurency", "concurrency"}, {"x", ""}, {"zzzzzz", ""},
		{"tmeout", "timeout"}, {"thme", "theme"}, {"intreval", "interval"}, {"nope", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, defaultsKeys); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParse: no input panics or hangs, and every failure is a *Error.
func FuzzParse(f *testing.F) {
	if ex, err := os.ReadFile(filepath.Join("..", "examples", "fleet.toml")); err == nil {
		f.Add(string(ex))
	}
	for _, s := range []string{"", "[defaults]\ninterval = 5\n", "a = \"\"\"x\"\"\"\"\n[[host]]\n", "x = [[1], {a = [\n]}]\n", "'k' . \"q\\\"\" = 1\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Parse("f.toml", []byte(src))
		var ce *Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error %T %v is not *config.Error", err, err)
		}
	})
}

// TestSessionSocket: qemu:///session reaches the per-user daemon where
// libvirt's own client does. It is the one computation of that default
// (fleet once had its own, which took a relative XDG_RUNTIME_DIR as it was).
func TestSessionSocket(t *testing.T) {
	tests := []struct{ runtime, home, want string }{
		{"/run/user/1000", "/home/u", "/run/user/1000/libvirt/libvirt-sock"},
		{"", "/home/u", "/home/u/.cache/libvirt/libvirt-sock"},
		{"run/user/1000", "/home/u", "/home/u/.cache/libvirt/libvirt-sock"}, // relative: ignored
	}
	for _, tt := range tests {
		t.Setenv("XDG_RUNTIME_DIR", tt.runtime)
		t.Setenv("HOME", tt.home)
		got, err := ParseURI("qemu:///session")
		if err != nil || got.Socket != tt.want {
			t.Errorf("XDG_RUNTIME_DIR=%q HOME=%q: socket %q, %v; want %q", tt.runtime, tt.home, got.Socket, err, tt.want)
		}
	}
}

// TestKeyErrorAt: a [keys] problem found after parsing (by the dashboard,
// which alone knows the built-in keys) is reported at the action's value,
// for a single key and for a list; an action the file does not rebind has
// no position.
func TestKeyErrorAt(t *testing.T) {
	f, err := Parse("f.toml", []byte("[keys]\nping = \"F\"\n  thaw = [\"t\", \"T\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]string{
		"ping":   "f.toml:2:8: boom",
		"thaw":   "f.toml:3:10: boom",
		"freeze": "f.toml: boom",
	} {
		if got := f.KeyError(action, "boom").Error(); got != want {
			t.Errorf("KeyError(%s) = %q, want %q", action, got, want)
		}
	}
}
