package fleet_test

import (
	"context"
	"os"
	"os/exec"
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
func sshHost(t testing.TB, sd *testpeers.SSHD, known string, guests []string, tweak func(*discovery.SSHConfig)) *discovery.SSH {
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
		{"unknown", empty, false, []string{"unknown: the server offers", host, "ssh-ed25519", fp, empty, "insecure_ignore_host_key = true"}},
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

// socketDir makes a directory of agent sockets named like Proxmox's
// (VMID.qga): hard links to the real agents' sockets (socks[0..2]; socks[3]
// is linked as 104 later), which connect to the same agent, so sockets can
// appear and vanish while the agents run. conf holds the VMs' configs;
// 103's name is hostile and is not used. An agent takes one client at a
// time: each directory needs agents of its own.
func socketDir(t *testing.T, socks []string) (dir, conf string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf = filepath.Join(dir, "conf")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	for id, body := range map[string]string{
		"101": "boot: order=scsi0\nname: web\nmemory: 2048\n\n[snap1]\nname: old-web\n",
		"102": "name: db\n",
		"103": "name: x\x1b[31mred\n",
		"104": "name: cache\n",
	} {
		if err := os.WriteFile(filepath.Join(conf, id+".conf"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{"101", "102", "103"} {
		if err := os.Link(socks[i], filepath.Join(dir, id+".qga")); err != nil {
			t.Fatal(err)
		}
	}
	// Not sockets, or not matching: never guests.
	if err := os.WriteFile(filepath.Join(dir, "105.qga"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(socks[0], filepath.Join(dir, "101.qmp")); err != nil {
		t.Fatal(err)
	}
	return dir, conf
}

// [[sockets]] patterns, over ssh and on this machine, each discover the 3
// sockets of one directory, named from their Proxmox configs (103's
// hostile name falls back to its VMID); the local pattern, added second,
// finds the names held and qualifies its own ("here/web"). While the fleet
// runs, a fourth socket appears and one vanishes, and both follow.
func TestSocketsDiscovery(t *testing.T) {
	sd := testpeers.StartSSHD(t)
	ag := testpeers.StartAgents(t, 8)
	dir, conf := socketDir(t, ag.Sockets[:4])
	hereDir, _ := socketDir(t, ag.Sockets[4:])
	f := fleet.New(fleet.Options{Interval: time.Second, Timeout: 10 * time.Second, Readonly: true})
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	h := sshHost(t, sd, "", nil, nil)
	if err := f.AddSource(ctx, h); err != nil {
		t.Fatalf("ssh host: %v", err)
	}
	pat, err := config.ParseSocketPattern(sd.URL(dir + "/*.qga"))
	if err != nil {
		t.Fatal(err)
	}
	far, err := discovery.NewSockets(discovery.SocketsConfig{Name: "far", Pattern: sd.URL(dir + "/*.qga"), Dir: pat.Dir, Glob: pat.Glob,
		SSH: h, Tags: []string{"pve"}, Naming: config.NamingProxmox, Rescan: 200 * time.Millisecond, ProxmoxDir: conf})
	if err != nil {
		t.Fatal(err)
	}
	here, err := discovery.NewSockets(discovery.SocketsConfig{Name: "here", Pattern: hereDir + "/*.qga", Dir: hereDir, Glob: "*.qga",
		Naming: config.NamingProxmox, Rescan: 200 * time.Millisecond, ProxmoxDir: conf})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []discovery.Source{far, here} {
		if err := f.AddSource(ctx, src); err != nil {
			t.Fatalf("%s: %v", src.Name(), err)
		}
	}
	want := []string{"103", "db", "here/103", "here/db", "here/web", "web"}
	if got := names(f.Snapshot()); !slices.Equal(got, want) {
		t.Fatalf("guests %v, want %v", got, want)
	}
	for _, g := range f.Snapshot().Guests {
		wantHost, wantAddr := "here", "unix:"+hereDir+"/"
		if !strings.HasPrefix(g.Name, "here/") {
			wantHost, wantAddr = "far", sd.URL(dir+"/")
		}
		if g.Host != wantHost || !strings.HasPrefix(g.Address, wantAddr) {
			t.Errorf("%s: host %q address %q, want %s at %s...", g.Name, g.Host, g.Address, wantHost, wantAddr)
		}
	}
	if st := source(f, "far"); st.Phase != fleet.SourceUp || st.Guests != 3 || st.Kind != "sockets" {
		t.Errorf("far: %+v, want sockets up with 3 guests", st)
	}
	if st := source(f, h.Name()); st.Guests != 3 {
		t.Errorf("ssh host counts %d guests, want the 3 of its pattern", st.Guests)
	}

	f.Start(t.Context())
	waitSnap(t, f, 60*time.Second, "every guest ready", allReady(want...))
	// One directory, then the other: two sources that see a new name at
	// the same moment claim it in the order their rescans run.
	if err := os.Link(ag.Sockets[3], filepath.Join(dir, "104.qga")); err != nil {
		t.Fatal(err)
	}
	waitSnap(t, f, 30*time.Second, "cache ready", allReady("cache"))
	if err := os.Link(ag.Sockets[7], filepath.Join(hereDir, "104.qga")); err != nil {
		t.Fatal(err)
	}
	waitSnap(t, f, 30*time.Second, "here/cache ready", allReady("here/cache"))
	for _, d := range []string{dir, hereDir} {
		if err := os.Remove(filepath.Join(d, "102.qga")); err != nil {
			t.Fatal(err)
		}
	}
	waitSnap(t, f, 30*time.Second, "db gone from both", func(s *fleet.Snapshot) bool {
		return !slices.Contains(names(s), "db") && !slices.Contains(names(s), "here/db")
	})
	want = []string{"103", "cache", "here/103", "here/cache", "here/web", "web"}
	if got := names(f.Snapshot()); !slices.Equal(got, want) {
		t.Fatalf("guests %v, want %v", got, want)
	}
	if g := f.Guest("cache"); !slices.Contains(g.Tags, "pve") {
		t.Errorf("cache tags %v, want the pattern's pve", g.Tags)
	}
}

// The sshd killed by its PID: the ssh host goes unreachable (with the
// error and a retry time), its guests unreachable, naming it; restarted on
// the same port and key, it reconnects and the guests are ready again. A
// hung server (its connection stopped) is found dead by the keepalive
// deadline, not waited on forever.
func TestSSHDRestart(t *testing.T) {
	sd := testpeers.StartSSHD(t)
	ag := testpeers.StartAgents(t, 2)
	f := fleet.New(fleet.Options{Interval: 500 * time.Millisecond, Timeout: 3 * time.Second, Readonly: true})
	defer f.Close()
	f.Add(fleet.Target{Name: "a", Address: sd.URL(ag.Sockets[0])}, fleet.Target{Name: "b", Address: sd.URL(ag.Sockets[1])})
	h := sshHost(t, sd, "", []string{"a", "b"}, func(c *discovery.SSHConfig) {
		c.Keepalive, c.KeepaliveTimeout = 200*time.Millisecond, time.Second
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := f.AddSource(ctx, h); err != nil {
		t.Fatal(err)
	}
	f.Start(t.Context())
	waitSnap(t, f, 30*time.Second, "a and b ready", allReady("a", "b"))

	sd.Kill()
	waitSnap(t, f, 30*time.Second, "the host and its guests unreachable", func(s *fleet.Snapshot) bool {
		st := source(f, h.Name())
		return st.Phase == fleet.SourceUnreachable && st.Err != nil && !st.Retry.IsZero() &&
			f.Guest("a").State == fleet.Unreachable && strings.Contains(f.Guest("a").Err, h.Name())
	})
	sd.Restart(t)
	waitSnap(t, f, 60*time.Second, "the host up and a, b ready again", func(s *fleet.Snapshot) bool {
		return source(f, h.Name()).Phase == fleet.SourceUp && allReady("a", "b")(s)
	})

	resume := sd.Hang(t)
	waitSnap(t, f, 30*time.Second, "the hung connection given up", func(s *fleet.Snapshot) bool {
		st := source(f, h.Name())
		return st.Phase != fleet.SourceUp && st.Err != nil && strings.Contains(st.Err.Error(), "keepalive")
	})
	resume()
	waitSnap(t, f, 60*time.Second, "a and b ready after the hang", func(s *fleet.Snapshot) bool {
		return source(f, h.Name()).Phase == fleet.SourceUp && allReady("a", "b")(s)
	})
}

// With no identity configured, the login uses the ssh agent at
// $SSH_AUTH_SOCK: a real ssh-agent holding the client key.
func TestSSHAgentLogin(t *testing.T) {
	sd := testpeers.StartSSHD(t) // ssh-agent and ssh-add come with it (openssh-client)
	ag := testpeers.StartAgents(t, 1)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	t.Setenv("SSH_AUTH_SOCK", sock)
	var out []byte
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// The agent's socket appears once it listens.
		if out, err = exec.Command("ssh-add", sd.Identity).CombinedOutput(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	f := fleet.New(fleet.Options{Timeout: 10 * time.Second, Readonly: true})
	defer f.Close()
	f.Add(fleet.Target{Name: "a", Address: sd.URL(ag.Sockets[0])})
	h := sshHost(t, sd, "", []string{"a"}, func(c *discovery.SSHConfig) { c.Identity = "" })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := f.AddSource(ctx, h); err != nil {
		t.Fatalf("AddSource through the agent: %v", err)
	}
	f.RefreshOnce(ctx, nil)
	if g := f.Guest("a"); g.State != fleet.Ready {
		t.Errorf("a: %s (%q), want ready", g.State, g.Err)
	}

	t.Setenv("SSH_AUTH_SOCK", "")
	h2 := sshHost(t, sd, "", nil, func(c *discovery.SSHConfig) { c.Identity = "" })
	f2 := fleet.New(fleet.Options{})
	defer f2.Close()
	if err := f2.AddSource(ctx, h2); err == nil || !strings.Contains(err.Error(), "no identity configured and no ssh agent ($SSH_AUTH_SOCK is not set)") {
		t.Errorf("no identity, no agent: %v", err)
	}
}
