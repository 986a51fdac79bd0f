package fleet

import (
	"context"

	"github.com/guestdeck/guestdeck/agentclient"
)

// defaultDialer reaches unix, tcp and vsock addresses with the stream
// transport.
func defaultDialer(ctx context.Context, t Target) (agentclient.Agent, error) {
	c, err := agentclient.Dial(ctx, t.Address)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}
