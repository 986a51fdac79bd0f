package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// With the dashboard open (in tmux) on three real agents, a second guestdeck
// (status --json, run ping) finds every guest ready, every time: the
// dashboard gives a channel up as soon as another client waits for it. A
// test client that holds one channel makes that guest "held" in the
// dashboard and in status, the others staying ready, and it comes back when
// the holder lets go.
// Only read-only commands reach the agents: they run on this machine.
func TestSecondClientWhileDashboardOpen(t *testing.T) {
	ag := testpeers.StartAgents(t, 3)
	names := []string{"alpha-1", "alpha-2", "beta-1"}
	var b strings.Builder
	b.WriteString("[defaults]\ninterval = \"1s\"\ntimeout = \"1s\"\n\n")
	for i, n := range names {
		fmt.Fprintf(&b, "[[guest]]\nname = %q\naddress = %q\n\n", n, ag.Addrs()[i])
	}
	cfg := filepath.Join(t.TempDir(), "fleet.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tt := e2eStart(t, "-c", cfg)
	rowsIn := func(want map[string]string) func(string) bool {
		return func(s string) bool {
			rows := e2eRows(s)
			if len(rows) != len(want) {
				return false
			}
			for _, r := range rows {
				if !strings.Contains(r.text, " "+want[r.name]+" ") {
					return false
				}
			}
			return true
		}
	}
	allReady := map[string]string{"alpha-1": "ready", "alpha-2": "ready", "beta-1": "ready"}
	tt.waitFor("every guest ready", rowsIn(allReady))

	for round := range 3 {
		for name, g := range status(t, cfg, "all") {
			if g.State != "ready" {
				t.Errorf("round %d: second guestdeck status: %s %s (%s)", round, name, g.State, g.Error)
			}
		}
		if r := gd(t, 60*time.Second, "-c", cfg, "run", "ping", "all"); r.code != 0 {
			t.Errorf("round %d: run ping beside the dashboard: exit %d\n%s%s", round, r.code, r.stdout, r.stderr)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	holder, err := agentclient.Dial(ctx, ag.Addrs()[2])
	cancel()
	if err != nil {
		t.Fatalf("holder: %v", err)
	}
	defer holder.Close()
	tt.waitFor("beta-1 held, the others ready", rowsIn(map[string]string{"alpha-1": "ready", "alpha-2": "ready", "beta-1": "held"}))
	r := gd(t, 60*time.Second, "-c", cfg, "status", "all")
	var heldLine string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "beta-1") {
			heldLine = l
		}
	}
	if !strings.Contains(heldLine, "held") || !strings.Contains(r.stdout+r.stderr, "another client holds the channel") ||
		strings.Count(r.stdout, " ready ") != 2 {
		t.Errorf("status with beta-1's channel held: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	holder.Close()
	tt.waitFor("beta-1 back after the holder left", rowsIn(allReady))
	tt.keys("q")
}
