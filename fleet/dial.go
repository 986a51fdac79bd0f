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
	opts := []agentclient.Option{agentclient.WithReadBuffer(sessionReadBuffer)}
	if h, ok := ctx.Value(logHookKey{}).(*logHook); ok {
		opts = append(opts, agentclient.WithLog(h.fn))
		h.used = true
	}
	c, err := agentclient.Dial(ctx, t.Address, opts...)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}

// logHook hands a session's log function to the dialer through the dial
// context; a dialer that feeds it the transport's records sets used, and
// the session then leaves logging to the transport (which sees the real
// request and reply lines) instead of logging around each call itself.
type logHook struct {
	fn   func(agentclient.LogRecord)
	used bool
}

type logHookKey struct{}
