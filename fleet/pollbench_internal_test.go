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
