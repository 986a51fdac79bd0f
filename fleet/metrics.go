package fleet

import "time"

// Rate is one derived per-second (or percent) figure. OK is false when it is
// unknown: the first sample, an agent that lacks the data, a counter reset or
// a value the guest reported that cannot be true.
type Rate struct {
	V  float64
	OK bool
}

// FSUsage is one mounted filesystem's size as the agent reports it.
type FSUsage struct {
	Mountpoint, Type      string
	UsedBytes, TotalBytes uint64
}

// Metrics is one metrics sample of one guest, with the rates computed from
// it and the sample before.
type Metrics struct {
	At time.Time

	CPUBusy, IOWait, Steal Rate // percent of all vCPUs, 0..100

	DiskReadBps, DiskWriteBps, DiskReadIOPS, DiskWriteIOPS Rate

	NetRxBps, NetTxBps, NetErrsPerSec Rate

	Load1, Load5, Load15 Rate
	LoadDerived          bool // derived from cpustats, not from guest-get-load

	Filesystems []FSUsage

	// Note says why something is absent ("agent 5.2 lacks guest-get-cpustats").
	Note string
}

// History returns the guest's metrics samples, oldest first: a copy of a
// fixed ring. nil for an unknown guest or one not sampled yet.
func (f *Fleet) History(name string) []Metrics {
	return nil
}
