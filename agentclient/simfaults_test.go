package agentclient_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// The simulator's fault knobs against the transport: what a flaky guest does
// to a session, and that the session either answers correctly or fails with
// the right error, never with someone else's reply.
func TestSimFaults(t *testing.T) {
	const want = "gd-sim"
	hostname := func(c *agentclient.Client, d time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return c.Hostname(ctx)
	}
	tests := []struct {
		name string
		run  func(t *testing.T, g *sim.Guest, addr string)
	}{
		{"stale replies are dropped", func(t *testing.T, g *sim.Guest, addr string) {
			c := dialT(t, addr)
			g.SetStale(true)
			for i := range 5 {
				if h, err := hostname(c, 5*time.Second); err != nil || h != want {
					t.Fatalf("call %d = %q, %v", i, h, err)
				}
			}
		}},
		{"garbage never yields a wrong answer", func(t *testing.T, g *sim.Guest, addr string) {
			c := dialT(t, addr)
			g.SetGarbage(true)
			ok := 0
			for range 10 {
				h, err := hostname(c, 5*time.Second)
				switch {
				case err == nil && h != want:
					t.Fatalf("wrong answer %q", h)
				case err == nil:
					ok++
				case !errors.Is(err, agentclient.ErrMalformed) && !agentclient.IsTimeout(err):
					t.Fatalf("unexpected error %v", err)
				}
			}
			g.SetGarbage(false)
			if h, err := hostname(c, 5*time.Second); err != nil || h != want {
				t.Fatalf("after garbage stopped: %q, %v", h, err)
			}
			t.Logf("%d/10 calls answered through the garbage", ok)
		}},
		{"reply cut mid-line drops the session", func(t *testing.T, g *sim.Guest, addr string) {
			c := dialT(t, addr)
			g.DropMidReply(1)
			start := time.Now()
			if _, err := hostname(c, 10*time.Second); !agentclient.IsConnLost(err) && !errors.Is(err, agentclient.ErrMalformed) {
				t.Fatalf("cut reply: %v, want connection lost", err)
			}
			within(t, start, 0)
			if _, err := hostname(c, 5*time.Second); !agentclient.IsConnLost(err) {
				t.Fatalf("later call: %v, want connection lost", err)
			}
			c2 := dialT(t, addr) // the fleet redials
			if h, err := hostname(c2, 5*time.Second); err != nil || h != want {
				t.Fatalf("after redial: %q, %v", h, err)
			}
		}},
		{"hung agent times out, then recovers", func(t *testing.T, g *sim.Guest, addr string) {
			c := dialT(t, addr)
			g.SetHang(true)
			start := time.Now()
			if _, err := hostname(c, 200*time.Millisecond); !agentclient.IsTimeout(err) {
				t.Fatalf("hung agent: %v, want timeout", err)
			}
			within(t, start, 200*time.Millisecond)
			g.SetHang(false)
			if h, err := hostname(c, 5*time.Second); err != nil || h != want {
				t.Fatalf("after hang: %q, %v", h, err)
			}
		}},
		{"silent channel", func(t *testing.T, g *sim.Guest, addr string) {
			g.SetSilent(true)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := agentclient.Dial(ctx, addr); !agentclient.IsSilent(err) {
				t.Fatalf("Dial: %v, want silent", err)
			}
		}},
		{"agent restart", func(t *testing.T, g *sim.Guest, addr string) {
			c := dialT(t, addr)
			g.Restart()
			if _, err := hostname(c, 5*time.Second); !agentclient.IsConnLost(err) {
				t.Fatalf("after restart: %v, want connection lost", err)
			}
			var c2 *agentclient.Client
			wait.For(t, 10*time.Second, func() (bool, string) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				var err error
				c2, err = agentclient.Dial(ctx, addr)
				return err == nil, fmt.Sprintf("redial after restart: %v", err)
			})
			defer c2.Close()
			if h, err := hostname(c2, 5*time.Second); err != nil || h != want {
				t.Fatalf("after redial: %q, %v", h, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, addr := startSim(t, nil)
			tt.run(t, g, addr)
		})
	}
}
