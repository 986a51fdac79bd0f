package fleet

import (
	"context"

	"github.com/guestdeck/guestdeck/agentclient"
)

// sessionReadBuffer keeps an idle session small: at 10,000 guests the
// transport's default 64 KiB read buffer alone would be 640 MB.
const sessionReadBuffer = 4 << 10

// defaultDialer reaches unix, tcp and vsock addresses with the stream
// transport.
func defaultDialer(ctx context.Context, t Target) (agentclient.Agent, error) {
	c, err := agentclient.Dial(ctx, t.Address, agentclient.WithReadBuffer(sessionReadBuffer))
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}
