package fleet

import (
	"context"

	"github.com/guestdeck/guestdeck/agentclient"
)

// sessionReadBuffer keeps an idle session small: at 10,000 guests the
// transport's default 64 KiB read buffer alone would be 640 MB.
const sessionReadBuffer = 4 << 10

// DefaultReplyBudget bounds the reply bytes all of a fleet's streams buffer
// at once, beyond their read buffers (agentclient.Budget). It holds a full
// wave of the largest legitimate poll replies (Concurrency's default of 64
// guests each sending a 4 MiB filesystem list), or a few file transfers in
// 1 MiB chunks beside the polls; yet 10,000 hostile guests sending 85 MB
// each at once cost no more than this (plus 4 KiB read buffers each), where
// each would otherwise have held up to its command's limit.
const DefaultReplyBudget = 256 << 20

// streamOptions are the options every stream of the fleet is dialled with:
// a small read buffer, the fleet's shared reply budget, and the session's
// log hook when the dial context carries one. With Options.NoLog the hook
// is marked used but not given to the stream: the session then logs
// nothing around its calls either, yet still knows the transport is a
// stream of its own (prefetch asks that), and the stream builds no records.
func (f *Fleet) streamOptions(ctx context.Context) []agentclient.Option {
	opts := []agentclient.Option{agentclient.WithReadBuffer(sessionReadBuffer), agentclient.WithBudget(f.budget)}
	if h, ok := ctx.Value(logHookKey{}).(*logHook); ok {
		if !f.opts.NoLog {
			opts = append(opts, agentclient.WithLog(h.fn))
		}
		h.used = true
	}
	return opts
}

// dialStream reaches unix, tcp and vsock addresses with the stream
// transport.
func (f *Fleet) dialStream(ctx context.Context, t Target) (agentclient.Agent, error) {
	c, err := agentclient.Dial(ctx, t.Address, f.streamOptions(ctx)...)
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
