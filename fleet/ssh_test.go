package fleet_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/discovery"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// Real qemu-ga agents on this machine, reached "on another host" through a
// real OpenSSH server on loopback (sshd-loopback.sh): the agents' sockets
// are forwarded over one ssh connection (direct-streamlocal). Only queries
// are sent: these agents run on the host.

// sshHost returns the ssh host source for the server, with known_hosts
// (the right one unless given) and the client key.
func sshHost(t *testing.T, sd *testpeers.SSHD, known string, guests []string, tweak func(*discovery.SSHConfig)) *discovery.SSH {
	t.Helper()
	u, err := config.ParseSSHURL(sd.URL("/x"))
	if err != nil {
		t.Fatal(err)
	}
	if known == "" {
		known = sd.KnownHosts
	}
	c := discovery.SSHConfig{URL: u, KnownHosts: known, Identity: sd.Identity, Guests: guests}
	if tweak != nil {
		tweak(&c)
	}
	h, err := discovery.NewSSH(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// waitSnap polls the fleet until cond holds or d passes; the deadline is
// for events outside the test (a daemon restarting, a rescan).
func waitSnap(t *testing.T, f *fleet.Fleet, d time.Duration, what string, cond func(*fleet.Snapshot) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond(f.Snapshot()) {
		select {
		case <-deadline.C:
			var b strings.Builder
			for _, g := range f.Snapshot().Guests {
				b.WriteString(" " + g.Name + "=" + string(g.State) + "(" + g.Err + ")")
			}
			for _, s := range f.Sources() {
				b.WriteString(" source " + s.Name + "=" + string(s.Phase))
				if s.Err != nil {
					b.WriteString("(" + s.Err.Error() + ")")
				}
			}
			t.Fatalf("timed out after %v waiting for %s;%s", d, what, b.String())
		case <-f.Changed():
		case <-tick.C:
		}
	}
}

func source(f *fleet.Fleet, name string) fleet.SourceState {
	for _, s := range f.Sources() {
		if s.Name == name {
			return s
		}
	}
	return fleet.SourceState{}
}

func names(s *fleet.Snapshot) []string {
	var out []string
	for _, g := range s.Guests {
		out = append(out, g.Name)
	}
	slices.Sort(out)
	return out
}

func allReady(want ...string) func(*fleet.Snapshot) bool {
	return func(s *fleet.Snapshot) bool {
		got := map[string]fleet.State{}
		for _, g := range s.Guests {
			got[g.Name] = g.State
		}
		for _, n := range want {
			if got[n] != fleet.Ready {
				return false
			}
		}
		return true
	}
}

// Guests at ssh:// addresses are ready through one ssh connection, and the
// ssh host is a source whose state is up with its guest count.
func TestSSHGuestsReady(t *testing.T) {
	sd := testpeers.StartSSHD(t)
	ag := testpeers.StartAgents(t, 2)
	f := fleet.New(fleet.Options{Timeout: 10 * time.Second, Readonly: true})
	defer f.Close()
	f.Add(fleet.Target{Name: "a", Address: sd.URL(ag.Sockets[0])}, fleet.Target{Name: "b", Address: sd.URL(ag.Sockets[1])})
	h := sshHost(t, sd, "", []string{"a", "b"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := f.AddSource(ctx, h); err != nil {
		t.Fatalf("AddSource: %v", err)
	}
	f.RefreshOnce(ctx, nil)
	for _, n := range []string{"a", "b"} {
		g := f.Guest(n)
		if g.State != fleet.Ready || g.Hostname == "" {
			t.Errorf("%s: %s (%q), hostname %q; want ready with a hostname", n, g.State, g.Err, g.Hostname)
		}
	}
	st := source(f, h.Name())
	if st.Kind != "ssh" || st.Phase != fleet.SourceUp || st.Guests != 2 || st.Err != nil {
		t.Errorf("source %+v, want ssh up with 2 guests", st)
	}
	// One connection for both guests (and the refresh): sshd logs one
	// accepted login per connection.
	logb, _ := os.ReadFile(filepath.Join(sd.Dir, "sshd.log"))
	if n := strings.Count(string(logb), "Accepted publickey"); n != 1 {
		t.Errorf("sshd accepted %d logins, want 1 shared connection:\n%s", n, logb)
	}
}

// A host key known_hosts does not vouch for is refused, naming the host,
// the key type and SHA256 fingerprint the server offered, and the file:
// a different key (a man in the middle) and an unknown host alike. The
// guest is unreachable with the same words; only insecure_ignore_host_key
// gets through.
func TestSSHHostKeyRefused(t *testing.T) {
	sd := testpeers.StartSSHD(t)
	ag := testpeers.StartAgents(t, 1)
	pub, err := os.ReadFile(filepath.Join(sd.Dir, "hostkey.pub"))
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	fp := ssh.FingerprintSHA256(key)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	host := "[127.0.0.1]:" + strconv.Itoa(sd.Port)
	for _, tt := range []struct {
		name, known string
		insecure    bool
		want        []string // in the error; nil: connects
	}{
		{"mismatch", sd.WrongKnownHosts, false, []string{"HOST KEY MISMATCH", host, "ssh-ed25519", fp, sd.WrongKnownHosts, "connection refused"}},
		{"unknown", empty, false, []string{"host key unknown", host, "ssh-ed25519", fp, empty, "insecure_ignore_host_key = true"}},
		{"insecure", sd.WrongKnownHosts, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet.New(fleet.Options{Timeout: 10 * time.Second, Readonly: true})
			defer f.Close()
			f.Add(fleet.Target{Name: "a", Address: sd.URL(ag.Sockets[0])})
			h := sshHost(t, sd, tt.known, []string{"a"}, func(c *discovery.SSHConfig) { c.InsecureIgnoreHostKey = tt.insecure })
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := f.AddSource(ctx, h)
			f.RefreshOnce(ctx, nil)
			g := f.Guest("a")
			if tt.want == nil {
				if err != nil || g.State != fleet.Ready {
					t.Fatalf("insecure: AddSource %v, guest %s (%q)", err, g.State, g.Err)
				}
				return
			}
			if err == nil {
				t.Fatal("AddSource: connected despite the host key")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
				if !strings.Contains(g.Err, w) && w != "connection refused" {
					t.Errorf("guest error %q lacks %q", g.Err, w)
				}
			}
			if g.State == fleet.Ready {
				t.Errorf("guest ready through a refused host")
			}
			if st := source(f, h.Name()); st.Phase != fleet.SourceUnreachable || st.Retry.IsZero() {
				t.Errorf("source %s %v, want unreachable with a retry time", st.Phase, st.Retry)
			}
		})
	}
}
