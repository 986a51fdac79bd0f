package fleet

import (
	"context"
	"time"
)

// PollForBench runs one poll of the named guest as the loop would in the
// steady state (slow items only when due), for BenchmarkPoll. With metrics
// a metrics sample is made due first. Only for a fleet that was not
// started: nobody else polls its sessions.
func (f *Fleet) PollForBench(ctx context.Context, name string, metrics bool) error {
	s := f.session(name)
	if metrics {
		s.metrics.last = time.Time{}
	}
	return s.poll(ctx, false)
}

// SlowPollForBench runs one slow refresh of the guest over its connection,
// with a metrics sample, as every guest's comes once a SlowInterval.
func (f *Fleet) SlowPollForBench(ctx context.Context, name string) error {
	s := f.session(name)
	s.metrics.last = time.Time{}
	return s.poll(ctx, true)
}
