package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// TestStatusUnreachableHost: a libvirt host that cannot be reached (a bare
// socket path that does not exist) is shown after the table with its error
// and next attempt, in `status --json --hosts` beside the guests, and makes
// status exit 1; `status --json` keeps its guests array. A host that is up
// is shown up with its guest count.
func TestStatusUnreachableHost(t *testing.T) {
	lv := testpeers.StartLibvirtTest(t)
	conn := lv.Connect(t)
	xml := "<domain type='test'><name>lab-1</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>" +
		"<devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>"
	if _, err := conn.DomainCreateXML(xml, 0); err != nil {
		t.Fatal(err)
	}
	// Defined, not running: listed, stopped.
	if _, err := conn.DomainDefineXML(strings.Replace(xml, "lab-1", "lab-off", 1)); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-libvirt-sock")
	cfg := fleetFile(t, fmt.Sprintf("[[host]]\nname = \"up\"\nuri = \"test+unix:///default?socket=%s\"\n\n[[host]]\nname = \"gone\"\nuri = %q\n", lv.Socket, missing))

	r := gd(t, 60*time.Second, "-c", cfg, "status")
	if r.code != 1 || !strings.Contains(r.stderr, "status: libvirt host gone is unreachable") {
		t.Fatalf("status: exit %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	find := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line %q in\n%s", prefix, r.stdout)
		return ""
	}
	if l := find("up/lab-off "); !strings.Contains(l, " stopped ") || !strings.Contains(l, "domain shut off") {
		t.Errorf("stopped domain: %q", l)
	}
	if l := find("libvirt host up ("); !strings.HasSuffix(l, "): up, 2 guests") {
		t.Errorf("up host: %q", l)
	}
	if l := find("libvirt host gone (" + missing + "): unreachable, 0 guests: "); !strings.Contains(l, "no such file or directory") || !strings.Contains(l, "; next attempt in ") {
		t.Errorf("unreachable host: %q", l)
	}

	// --json is the guests array, unchanged; the exit code says a host is down.
	r = gd(t, 60*time.Second, "-c", cfg, "status", "--json")
	var guests []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &guests); r.code != 1 || err != nil || len(guests) != 2 {
		t.Fatalf("status --json: exit %d, %v, %d guests\n%s", r.code, err, len(guests), r.stdout)
	}
	if keys := slices.Sorted(maps.Keys(guests[0])); !slices.Equal(keys, slices.Sorted(slices.Values(statusKeys))) {
		t.Errorf("guest keys %v", keys)
	}
	for _, g := range guests {
		name, state, dom := string(g["name"]), string(g["state"]), string(g["domain_state"])
		if (name == `"up/lab-1"` && (state != `"ready"` || dom != `"running"`)) ||
			(name == `"up/lab-off"` && (state != `"stopped"` || dom != `"stopped"`)) || string(g["stale"]) != "false" {
			t.Errorf("guest %s: state %s, domain_state %s, stale %s", name, state, dom, g["stale"])
		}
	}

	// A host selector names the host that is down rather than "matches
	// nothing"; one naming no host lists the hosts.
	r = gd(t, 60*time.Second, "-c", cfg, "status", "host:gone")
	if r.code != 1 || !strings.Contains(r.stderr, "status: host:gone: libvirt host gone is unreachable (") ||
		!strings.Contains(r.stderr, "no such file or directory") || !strings.Contains(r.stderr, "next attempt in ") ||
		!strings.Contains(r.stderr, "its guests are not known until it answers") || strings.Contains(r.stderr, "match no guest") {
		t.Errorf("status host:gone: exit %d, stderr %q", r.code, r.stderr)
	}
	r = gd(t, 60*time.Second, "-c", cfg, "status", "host:nope")
	if !strings.Contains(r.stderr, "status: host:nope: no host named nope (hosts: gone, up)") {
		t.Errorf("status host:nope: exit %d, stderr %q", r.code, r.stderr)
	}

	r = gd(t, 60*time.Second, "-c", cfg, "status", "--json", "--hosts")
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &top); r.code != 1 || err != nil {
		t.Fatalf("status --json --hosts: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	if keys := slices.Sorted(maps.Keys(top)); !slices.Equal(keys, []string{"guests", "hosts"}) {
		t.Fatalf("top-level keys %v", keys)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(top["hosts"], &raw); err != nil || len(raw) != 2 {
		t.Fatalf("hosts: %v\n%s", err, top["hosts"])
	}
	wantKeys := []string{"endpoint", "error", "guests", "kind", "name", "retry_at", "since", "state"}
	for _, h := range raw {
		if keys := slices.Sorted(maps.Keys(h)); !slices.Equal(keys, wantKeys) {
			t.Errorf("host keys %v, want %v", keys, wantKeys)
		}
	}
	type host struct {
		Name, Kind, Endpoint, State, Error string
		Guests                             int
		Since                              time.Time
		RetryAt                            *time.Time `json:"retry_at"`
	}
	var hosts []host
	if err := json.Unmarshal(top["hosts"], &hosts); err != nil {
		t.Fatal(err)
	}
	gone, up := hosts[0], hosts[1] // by name
	if up.Name != "up" || up.Kind != "libvirt" || up.State != "up" || up.Guests != 2 || up.Error != "" || up.RetryAt != nil || up.Since.IsZero() {
		t.Errorf("up host %+v", up)
	}
	if gone.Name != "gone" || gone.Endpoint != missing || gone.State != "unreachable" || gone.Guests != 0 ||
		!strings.Contains(gone.Error, "no such file or directory") || gone.RetryAt == nil || !gone.RetryAt.After(gone.Since) {
		t.Errorf("unreachable host %+v", gone)
	}
	if err := json.Unmarshal(top["guests"], &guests); err != nil || len(guests) != 2 {
		t.Errorf("guests beside the hosts: %v\n%s", err, top["guests"])
	}
}
