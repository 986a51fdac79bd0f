package fleet

import (
	"context"
	"fmt"

	"github.com/guestdeck/guestdeck/agentclient"
)

// defaultDialer reaches unix, tcp and vsock addresses with the stream
// transport.
func defaultDialer(ctx context.Context, t Target) (agentclient.Agent, error) {
	// TODO(fleet): agentclient.Dial once the stream transport lands.
	return nil, fmt.Errorf("dial %s: stream transport not built yet", t.Address)
}
