package fleet

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// A steady poll's batch runs under its loop's context and its deadline,
// the poll's context never built (pollCtx), watched once by the stream
// (Stream.Watch): it still ends the moment the loop does (Remove, Close,
// the context Start was given ending), not at its deadline, against an
// agent that stopped answering in the middle of it.
func TestSteadyPollEndsWithItsLoop(t *testing.T) {
	for _, how := range []string{"remove", "close", "start-context"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hang atomic.Bool
				stop := make(chan struct{})
				defer close(stop)
				asked := make(chan struct{}, 1)
				agent := &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
					if cmd == "guest-get-time" && hang.Load() {
						asked <- struct{}{}
						<-stop
						return io.EOF
					}
					return healthyAgent("g").reply(w, cmd, id)
				}}
				opts := Options{Interval: 5 * time.Second, Timeout: 3 * time.Second}
				f := New(opts)
				f.SetDialer("wire", func(ctx context.Context, _ Target) (agentclient.Agent, error) {
					cc, sc := net.Pipe()
					go agent.serve(sc)
					return agentclient.New(agentclient.NewStream("pipe:g", cc, f.streamOptions(ctx)...)), nil
				})
				f.Add(Target{Name: "g", Address: "wire:g", Exclusive: true}) // the connection is kept
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				f.Start(ctx)
				synctest.Wait()
				if g := f.Guest("g"); g.State != Ready {
					t.Fatalf("after the first poll: %s %q", g.State, g.Err)
				}
				s := f.session("g")
				hang.Store(true)
				time.Sleep(opts.Interval)
				<-asked // a steady poll waits for its time
				synctest.Wait()
				hungAt := time.Now()
				switch how {
				case "remove":
					f.Remove("g")
				case "close":
					f.Close()
				case "start-context":
					cancel()
				}
				synctest.Wait()
				if len(s.sem) != 0 {
					t.Errorf("the poll still holds the guest once its loop ended (%s)", how)
				}
				if d := time.Since(hungAt); d != 0 {
					t.Errorf("the poll ended %v after its loop (%s), want at once", d, how)
				}
				f.Close()
			})
		})
	}
}
