// Package blocking bounds calls that take no context (go-libvirt's RPCs,
// vsock.Dial) by one: the caller returns when its context ends, and the
// abandoned call finishes in the background.
package blocking

import "context"

// Call runs fn on its own goroutine and returns its result, or ctx's error
// as soon as ctx ends. An abandoned fn runs to its end and its result is
// dropped: fn must end by itself (its RPC fails when the connection drops).
func Call[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	return CallUndo(ctx, fn, nil)
}

// CallUndo is Call for a call that opens something: when fn succeeds after
// the caller gave up, undo (if not nil) gets its value to close it.
func CallUndo[T any](ctx context.Context, fn func() (T, error), undo func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1) // buffered: an abandoned call must not block
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		if undo != nil {
			go func() {
				if r := <-ch; r.err == nil {
					undo(r.v)
				}
			}()
		}
		var zero T
		return zero, ctx.Err()
	}
}
