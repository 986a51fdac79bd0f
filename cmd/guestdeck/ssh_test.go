package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// linkSockets makes dir/NAME.qga hard links to the agents' sockets (a link
// connects to the same agent), so sockets can appear and vanish while the
// agents run.
func linkSockets(t *testing.T, dir string, socks []string, names ...string) {
	t.Helper()
	for i, n := range names {
		if err := os.Link(socks[i], filepath.Join(dir, n+".qga")); err != nil {
			t.Fatal(err)
		}
	}
}

func socketsTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdk") // socket paths stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// A fleet file with an ssh:// guest and a [[sockets]] pattern over the
// same real sshd (keys from [defaults]): `status --json --hosts` has every
// guest ready and both sources up; the same file with a wrong known_hosts
// refuses the host, naming its fingerprint, and exits 1.
func TestStatusSSH(t *testing.T) {
	sd := testpeers.StartSSHD(t)
	ag := testpeers.StartAgents(t, 3)
	dir := socketsTempDir(t)
	linkSockets(t, dir, ag.Sockets[1:], "web", "db")
	body := func(known string) string {
		return fmt.Sprintf("[defaults]\nknown_hosts = %q\nidentity = %q\n\n[[guest]]\nname = \"solo\"\naddress = %q\n\n"+
			"[[sockets]]\nname = \"far\"\npattern = %q\ntags = [\"far\"]\n", known, sd.Identity, sd.URL(ag.Sockets[0]), sd.URL(dir+"/*.qga"))
	}
	cfg := fleetFile(t, body(sd.KnownHosts))
	r := gd(t, 60*time.Second, "-c", cfg, "status", "--json", "--hosts")
	var top struct {
		Guests []statusGuest `json:"guests"`
		Hosts  []hostJSON    `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &top); r.code != 0 || err != nil {
		t.Fatalf("status: exit %d, %v\nstdout %s\nstderr %s", r.code, err, r.stdout, r.stderr)
	}
	var got []string
	for _, g := range top.Guests {
		got = append(got, g.Name+"="+g.State)
	}
	if want := []string{"db=ready", "solo=ready", "web=ready"}; !slices.Equal(got, want) {
		t.Errorf("guests %v, want %v", got, want)
	}
	var hosts []string
	for _, h := range top.Hosts {
		hosts = append(hosts, fmt.Sprintf("%s %s %s %d", h.Kind, h.Name, h.State, h.Guests))
	}
	ep := strings.TrimPrefix(sd.URL(""), "ssh://")
	if want := []string{"sockets far up 2", "ssh " + ep + " up 3"}; !slices.Equal(hosts, want) {
		t.Errorf("hosts %v, want %v", hosts, want)
	}

	wrong := fleetFile(t, body(sd.WrongKnownHosts))
	r = gd(t, 60*time.Second, "-c", wrong, "status")
	if r.code != 1 || !strings.Contains(r.stderr, "HOST KEY MISMATCH") || !strings.Contains(r.stderr, "SHA256:") ||
		!strings.Contains(r.stderr, sd.WrongKnownHosts) || !strings.Contains(r.stderr, fmt.Sprintf("[127.0.0.1]:%d", sd.Port)) {
		t.Errorf("wrong known_hosts: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// The dashboard, in a real terminal, follows a [[sockets]] pattern over a
// real sshd: 3 guests ready, then a fourth socket appears and joins, and
// one vanishes and leaves, while the dashboard runs.
func TestDashboardE2ESockets(t *testing.T) {
	sd := testpeers.StartSSHD(t)
	ag := testpeers.StartAgents(t, 4)
	dir := socketsTempDir(t)
	linkSockets(t, dir, ag.Sockets, "vm-a", "vm-b", "vm-c")
	cfg := fleetFile(t, fmt.Sprintf("[[sockets]]\nname = \"pve\"\npattern = %q\nrescan = \"1s\"\nknown_hosts = %q\nidentity = %q\n",
		sd.URL(dir+"/*.qga"), sd.KnownHosts, sd.Identity))
	tt := e2eStart(t, "-c", cfg, "--readonly")
	rowsReady := func(title string, want ...string) func(string) bool {
		return func(s string) bool {
			if !strings.Contains(s, title) {
				return false
			}
			var ready []string
			for _, r := range e2eRows(s) {
				if strings.Contains(r.text, " ready ") {
					ready = append(ready, r.name)
				}
			}
			return slices.Equal(ready, want)
		}
	}
	tt.waitFor("3 guests ready", rowsReady("guestdeck 3 guests", "vm-a", "vm-b", "vm-c"))
	linkSockets(t, dir, ag.Sockets[3:], "vm-d")
	tt.waitFor("vm-d joining, ready", rowsReady("guestdeck 4 guests", "vm-a", "vm-b", "vm-c", "vm-d"))
	if err := os.Remove(filepath.Join(dir, "vm-b.qga")); err != nil {
		t.Fatal(err)
	}
	s := tt.waitFor("vm-b leaving", rowsReady("guestdeck 3 guests", "vm-a", "vm-c", "vm-d"))
	if got := e2eNames(e2eRows(s)); !slices.Equal(got, []string{"vm-a", "vm-c", "vm-d"}) {
		t.Errorf("rows %v after vm-b's socket vanished:\n%s", got, s)
	}
	tt.keys("q")
	tt.waitText("guestdeck-exited")
}
