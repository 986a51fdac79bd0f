package fleet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// Guests whose agents send the same guest-info share one decoded command
// list from their first poll on; a guest whose agent lists another (a
// command disabled) has its own, which says so, and the shared one is left
// as it was.
func TestFirstLooksShareCommandList(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const n, odd = 5, 3
	farm, err := sim.ServeDir(dir, n, func(i int) sim.Config {
		cfg := sim.DefaultConfig(fmt.Sprintf("s%02d", i))
		if i == odd {
			cfg.Disabled = []string{"guest-exec"}
		}
		return cfg
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fastOptions())
	t.Cleanup(func() { f.Close() })
	var names []string
	for _, sock := range farm.Sockets() {
		name := strings.TrimSuffix(filepath.Base(sock), ".sock")
		names = append(names, name)
		f.Add(fleet.Target{Name: name, Address: "unix:" + sock})
	}
	f.RefreshOnce(context.Background(), names)
	gs := f.Snapshot().Guests
	if len(gs) != n {
		t.Fatalf("%d guests, want %d", len(gs), n)
	}
	enabled := func(g *fleet.Guest, name string) bool {
		i := slices.IndexFunc(g.Commands, func(c agentclient.CommandInfo) bool { return c.Name == name })
		return i >= 0 && g.Commands[i].Enabled
	}
	var first *fleet.Guest
	for i, g := range gs {
		if g.State != fleet.Ready || len(g.Commands) == 0 {
			t.Fatalf("%s: %s, %d commands (%s)", g.Name, g.State, len(g.Commands), g.Err)
		}
		if i == odd {
			if !slices.ContainsFunc(g.Commands, func(c agentclient.CommandInfo) bool { return c.Name == "guest-exec" }) || enabled(g, "guest-exec") {
				t.Errorf("%s: guest-exec not listed as disabled", g.Name)
			}
			continue
		}
		if !enabled(g, "guest-exec") {
			t.Errorf("%s: guest-exec not enabled", g.Name)
		}
		if first == nil {
			first = g
		} else if &g.Commands[0] != &first.Commands[0] {
			t.Errorf("%s and %s report the same list and do not share it", g.Name, first.Name)
		}
	}
	if &gs[odd].Commands[0] == &first.Commands[0] {
		t.Errorf("%s shares another guest's list", gs[odd].Name)
	}
}
