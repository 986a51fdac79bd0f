package agentclient_test

import (
	"bufio"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// A shutdown is preceded by a sync (silence after it counts as its
// acceptance, so the agent must be seen answering first). An agent that
// answers that sync late, with less than the grace period left before the
// call's deadline, must not get the shutdown: sent then, its silence could
// not be waited out for the grace period, and a shutdown the agent took
// came back as a timeout (for a suspend, its ledger entry forgotten). The
// outcome is always one of two: not sent, and the agent never saw it; or
// sent and accepted. An agent that answers the sync in time and then hangs
// still has its silence taken as acceptance, within the deadline.
func TestQuietCommandSyncLeavesGrace(t *testing.T) {
	const grace = 500 * time.Millisecond
	for _, tc := range []struct {
		name      string
		syncDelay time.Duration // the agent's own pace answering the shutdown's sync
		wantSent  bool
	}{
		{"sync answered late", 700 * time.Millisecond, false},
		{"sync answered at once", 0, true},
	} {
		for _, echo := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/echo-id=%v", tc.name, echo), func(t *testing.T) {
				l, addr := listenUnix(t)
				var mu sync.Mutex
				var seen []string // the commands the agent read, in order
				served := make(chan struct{})
				go func() {
					defer close(served)
					conn, err := l.Accept()
					if err != nil {
						return
					}
					defer conn.Close()
					go func() { <-ctxDone(t); conn.Close() }()
					c := &agentConn{Conn: conn, r: bufio.NewReader(conn), echoID: echo}
					syncs := 0
					for {
						req, err := c.next()
						if err != nil {
							return
						}
						mu.Lock()
						seen = append(seen, req.Execute)
						mu.Unlock()
						switch req.Execute {
						case "guest-sync-delimited":
							if syncs++; syncs > 1 {
								time.Sleep(tc.syncDelay) // the agent's pace, not the test's synchronisation
							}
							c.sync(req)
						case "guest-shutdown":
							// Accepted: it answers nothing, and the guest
							// takes its time going down.
						default:
							c.reply(req, `{"host-name":"h"}`)
						}
					}
				}()
				c, err := agentclient.Dial(ctxFor(t, 30*time.Second), addr, agentclient.WithShutdownGrace(grace))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Hostname(ctxFor(t, 10*time.Second)); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				err = c.Shutdown(ctxFor(t, 2*grace), "")
				took := time.Since(start)
				c.Close()
				<-served // every request the agent read is in seen
				mu.Lock()
				sent := seen[len(seen)-1] == "guest-shutdown"
				mu.Unlock()
				t.Logf("shutdown: %v after %v; the agent read %v", err, took.Round(time.Millisecond), seen)
				switch {
				case sent && err != nil:
					t.Errorf("the agent got the shutdown and answered nothing, yet it failed: %v", err)
				case !sent && !errors.Is(err, agentclient.ErrNotSent):
					t.Errorf("the shutdown was not sent, yet the call says %v (want ErrNotSent)", err)
				case sent != tc.wantSent:
					t.Errorf("sent %v, want %v", sent, tc.wantSent)
				}
				within(t, start, 2*grace)
			})
		}
	}
}
