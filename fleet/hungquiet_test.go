package fleet_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// TestHungAgentQuietCommandNotSent: a shutdown or suspend answers nothing
// when it works, so silence after it counts as acceptance. An agent that
// hung after its last poll, on the connection kept since, is silent too:
// the command must not be reported accepted, nor sent, and the guest must
// not be shown going away. The same guest answering shows the contrast:
// accepted, and sent once. On a connection kept, held (exclusive) and
// forwarded over ssh alike.
func TestHungAgentQuietCommandNotSent(t *testing.T) {
	for _, tc := range []struct {
		act     fleet.Action
		command string
		going   fleet.State
	}{
		{fleet.Action{Kind: fleet.ActShutdown, Mode: agentclient.ShutdownPowerdown}, "guest-shutdown", fleet.ShuttingDown},
		{fleet.Action{Kind: fleet.ActSuspend, Mode: agentclient.SuspendRAM}, "guest-suspend-ram", fleet.Suspended},
	} {
		for _, via := range []string{"kept", "exclusive", "ssh"} {
			exclusive := via == "exclusive"
			t.Run(string(tc.act.Kind)+"/"+via, func(t *testing.T) {
				dir, err := os.MkdirTemp("/tmp", "gdq")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
					c := sim.DefaultConfig("hq")
					c.ShutdownDelay = time.Hour // the agent goes on answering after an accepted one
					return c
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { farm.Close() })
				guest := farm.Guests()[0]
				t.Setenv("XDG_STATE_HOME", t.TempDir()) // the suspend ledger
				f := fleet.New(fleet.Options{Timeout: time.Second})
				t.Cleanup(func() { f.Close() })
				ctx := t.Context()
				if via == "ssh" {
					// The simulator's socket through a real OpenSSH server
					// on loopback, as an agent on another host is reached
					// (the real agents on this machine get no shutdown).
					sd := testpeers.StartSSHD(t)
					f.Add(fleet.Target{Name: "hq", Address: sd.URL(farm.Sockets()[0])})
					if err := f.AddSource(ctx, sshHost(t, sd, "", []string{"hq"}, nil)); err != nil {
						t.Fatalf("AddSource: %v", err)
					}
				} else {
					f.Add(fleet.Target{Name: "hq", Address: "unix:" + farm.Sockets()[0], Exclusive: exclusive})
				}
				if err := f.RefreshErrs(ctx, []string{"hq"})["hq"]; err != nil {
					t.Fatalf("first poll: %v", err)
				}

				guest.SetHang(true)
				res := f.Run(ctx, tc.act, []string{"hq"}, nil)
				t.Logf("%s of a hung agent: %s", tc.act.Kind, res[0].Err)
				if res[0].OK || !strings.Contains(res[0].Err, "not sent") {
					t.Errorf("%s of a hung agent: %+v; want it failed, not sent", tc.act.Kind, res[0])
				}
				if g := f.Guest("hq"); g.State == tc.going {
					t.Errorf("after a %s that was not sent the guest shows %s", tc.act.Kind, g.State)
				}
				guest.SetHang(false)
				if err := f.RefreshErrs(ctx, []string{"hq"})["hq"]; err != nil {
					t.Fatalf("poll once the agent answers again: %v", err)
				}
				if n := guest.Calls(tc.command); n != 0 {
					t.Fatalf("the hung agent got %s %d times, want 0", tc.command, n)
				}

				res = f.Run(ctx, tc.act, []string{"hq"}, nil)
				if !res[0].OK || !strings.Contains(res[0].Result, "accepted") {
					t.Fatalf("%s of an answering agent: %+v", tc.act.Kind, res[0])
				}
				if n := guest.Calls(tc.command); n != 1 {
					t.Errorf("the answering agent got %s %d times, want 1", tc.command, n)
				}
				if g := f.Guest("hq"); g.State != tc.going {
					t.Errorf("after an accepted %s the guest shows %s, want %s", tc.act.Kind, g.State, tc.going)
				}
			})
		}
	}
}
