package agentclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// BenchmarkDialClose is what one-shot status pays per guest around its
// poll: dial the simulator's unix socket (connect and resync, under a
// deadline as a session's dial is) and close the stream.
func BenchmarkDialClose(b *testing.B) {
	_, addr := startSim(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := agentclient.Dial(ctx, addr, agentclient.WithReadBuffer(4<<10))
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
