package discovery

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/guestdeck/guestdeck/config"
)

// TestParseListing: what a host's find -print0 says is its data; only
// names directly in the directory, printable, valid UTF-8 and matching the
// glob are taken.
func TestParseListing(t *testing.T) {
	out := strings.Join([]string{
		"/run/q/101.qga",
		"/run/q/102.qga",
		"/run/q/sub/103.qga",    // below the directory
		"/etc/104.qga",          // elsewhere
		"/run/q/105.qmp",        // not matching
		"/run/q/1\x1b[31m6.qga", // control characters
		"/run/q/\xff.qga",       // not UTF-8
		"/run/q/\u009b7.qga",    // C1 control
		"/run/q/",               // the directory itself
		"",
	}, "\x00")
	got := parseListing([]byte(out), "/run/q", "*.qga")
	if want := []string{"/run/q/101.qga", "/run/q/102.qga"}; !slices.Equal(got, want) {
		t.Errorf("parseListing = %q, want %q", got, want)
	}
}

func TestProxmoxName(t *testing.T) {
	for _, tt := range []struct{ conf, want string }{
		{"boot: c\nname: web-1\nmemory: 512\n", "web-1"},
		{"name:   db  \n[snap]\nname: old\n", "db"},
		{"memory: 1\n[snap]\nname: old\n", ""}, // a snapshot's name is not the VM's
		{"", ""},
	} {
		if got := proxmoxName([]byte(tt.conf)); got != tt.want {
			t.Errorf("proxmoxName(%q) = %q, want %q", tt.conf, got, tt.want)
		}
	}
}

func TestValidGuestName(t *testing.T) {
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{"web-1", true}, {"a.b_c", true}, {"101", true},
		{"", false}, {"-x", false}, {".hidden", false}, {"a/b", false}, {"a b", false},
		{"x\x1b[31m", false}, {"wéb", false}, {"a\u202eb", false}, {strings.Repeat("a", 65), false},
	} {
		if got := validGuestName(tt.s); got != tt.ok {
			t.Errorf("validGuestName(%q) = %v, want %v", tt.s, got, tt.ok)
		}
	}
}

// claimSink is a Sink that holds names like a fleet: a name held at another
// address is refused.
type claimSink struct {
	mu      sync.Mutex
	held    map[string]string // name -> address
	removed []string
}

func (k *claimSink) Claim(ts []Target) []Target {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Target
	for _, t := range ts {
		if a, ok := k.held[t.Name]; ok && a != t.Address {
			continue
		}
		k.held[t.Name] = t.Address
		out = append(out, t)
	}
	return out
}
func (k *claimSink) Remove(names ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range names {
		delete(k.held, n)
		k.removed = append(k.removed, n)
	}
}
func (k *claimSink) MarkGone(string, string)               {}
func (k *claimSink) SetDomain(string, DomainState, string) {}
func (k *claimSink) Poke(string)                           {}
func (k *claimSink) SourceChanged()                        {}

func (k *claimSink) names() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for n := range k.held {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// listen makes a unix socket at dir/name (no agent behind it: discovery
// only lists).
func listen(t *testing.T, dir, name string) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	t.Cleanup(func() { l.Close() })
}

// TestSocketsScan: a local pattern names its sockets by file (Proxmox
// names when asked); a name the fleet holds elsewhere, or a second socket
// of the same name, is qualified SOURCE/NAME, then SOURCE/FILE; files that
// are not sockets, and names that cannot be a guest's, are skipped; a
// vanished socket is removed; a missing directory makes the source
// unreachable without dropping its guests.
func TestSocketsScan(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	conf := t.TempDir()
	for _, n := range []string{"101.qga", "102.qga", "103.qga", "web.qga", "x y.qga"} {
		listen(t, dir, n)
	}
	if err := os.WriteFile(filepath.Join(dir, "104.qga"), nil, 0o644); err != nil { // not a socket
		t.Fatal(err)
	}
	for id, body := range map[string]string{"101": "name: web\n", "102": "name: db\n", "103": "name: \x1b]0;pwn\a\n"} {
		if err := os.WriteFile(filepath.Join(conf, id+".conf"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sink := &claimSink{held: map[string]string{"db": "unix:/elsewhere"}}
	x, err := NewSockets(SocketsConfig{Name: "pve", Pattern: dir + "/*.qga", Dir: dir, Glob: "*.qga",
		Naming: config.NamingProxmox, ProxmoxDir: conf})
	if err != nil {
		t.Fatal(err)
	}
	x.sink = sink
	ctx := context.Background()
	if err := x.scan(ctx); err != nil {
		t.Fatalf("scan: %v", err)
	}
	// 101 is web; web.qga (named web too) comes after it in path order.
	want := []string{"103", "db", "pve/db", "pve/web", "web"}
	if got := sink.names(); !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	if sink.held["web"] != "unix:"+dir+"/101.qga" || sink.held["pve/web"] != "unix:"+dir+"/web.qga" {
		t.Errorf("web at %s, pve/web at %s", sink.held["web"], sink.held["pve/web"])
	}
	if st := x.State(); st.Phase != Up || st.Guests != 4 {
		t.Errorf("state %+v, want up with 4 guests", st)
	}

	if err := os.Remove(filepath.Join(dir, "102.qga")); err != nil {
		t.Fatal(err)
	}
	if err := x.scan(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sink.removed, []string{"pve/db"}) || x.State().Guests != 3 {
		t.Errorf("removed %v, %d guests; want pve/db removed, 3 left", sink.removed, x.State().Guests)
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := x.scan(ctx); err == nil || !strings.Contains(err.Error(), "sockets pve") {
		t.Errorf("scan of a missing directory: %v", err)
	}
	if st := x.State(); st.Phase != Unreachable || st.Retry.IsZero() || st.Guests != 3 {
		t.Errorf("state %+v, want unreachable with a retry, guests kept", st)
	}
}
