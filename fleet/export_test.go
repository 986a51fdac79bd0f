package fleet

import "context"

// PollAll polls every guest once as its loop would (the slow items only when
// due), for the memory benchmark (BenchmarkHeapPerGuest): RefreshOnce forces
// the slow items, which a steady state asks once a minute.
func PollAll(ctx context.Context, f *Fleet) {
	f.mu.Lock()
	ss := f.order
	f.mu.Unlock()
	forEach(ctx, len(ss), f.opts.Concurrency, func(i int) { _ = ss[i].poll(ctx, false) })
}
