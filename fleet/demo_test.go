package fleet

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim/demo"
)

// TestDemoFilesMatchAgent checks that a demo guest's /etc/os-release and
// /etc/hostname say what its agent reports, so the file browser and the
// table never contradict each other.
func TestDemoFilesMatchAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := demo.Start(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f := New(Options{Interval: time.Hour, SlowInterval: time.Hour, Timeout: 5 * time.Second})
	defer f.Close()
	for _, g := range d.Guests {
		f.Add(Target{Name: g.Name, Host: g.Host, Address: g.Address, Tags: g.Tags})
	}
	names := []string{"api-01", "cache-02", "db-03"}
	f.RefreshOnce(ctx, names)
	for _, name := range names {
		var g *Guest
		for _, x := range f.Snapshot().Guests {
			if x.Name == name {
				g = x
			}
		}
		if g == nil || g.OS == nil || g.OS.PrettyName == "" {
			t.Fatalf("%s: no OS info after refresh: %+v", name, g)
		}
		var osr, host bytes.Buffer
		if _, err := f.ReadFile(ctx, name, "/etc/os-release", &osr, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := `PRETTY_NAME="` + g.OS.PrettyName + `"`; !strings.Contains(osr.String(), want) {
			t.Errorf("%s: /etc/os-release lacks %s:\n%s", name, want, osr.String())
		}
		if _, err := f.ReadFile(ctx, name, "/etc/hostname", &host, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := strings.TrimSpace(host.String()); got != g.Hostname {
			t.Errorf("%s: /etc/hostname %q, agent says %q", name, got, g.Hostname)
		}
	}
}
