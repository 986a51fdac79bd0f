package fleet

// logRing keeps a guest's newest log entries, newest first, so that every
// published Guest can share the storage without copying: entries are written
// downwards from the end of buf and never changed afterwards, so a slice
// handed out earlier stays valid. When buf (1.25 times the size) fills up,
// the newest size-1 entries move to a fresh buffer. Appending is amortised
// O(1): about four entry copies per entry (a bigger buffer was a quarter
// of a 10,000-guest fleet's heap).
type logRing struct {
	size int
	buf  []LogEntry
	head int // buf[head:head+n] is the log, newest first
	n    int
}

func (r *logRing) add(e LogEntry) {
	if r.size <= 0 {
		return
	}
	if r.head == 0 {
		keep := min(r.n, r.size-1)
		nb := make([]LogEntry, r.size+max(r.size/4, 1))
		copy(nb[len(nb)-keep:], r.buf[:keep]) // head is 0: the newest are first
		r.head = len(nb) - keep
		r.buf = nb
		r.n = keep
	}
	r.head--
	r.buf[r.head] = e
	r.n = min(r.n+1, r.size)
}

// entries returns the log, newest first. The slice must not be modified.
func (r *logRing) entries() []LogEntry {
	if r.n == 0 {
		return nil
	}
	return r.buf[r.head : r.head+r.n : r.head+r.n]
}

// last is the newest entry of command cmd, or a zero entry.
func (r *logRing) last(cmd string) LogEntry {
	for _, e := range r.entries() {
		if e.Command == cmd {
			return e
		}
	}
	return LogEntry{}
}

// text is b cut to n bytes as a string: prev itself when that is what it
// would be (the same command's last line, as a poll's usually is), so that
// entries share it instead of each holding a copy.
func (r *logRing) text(prev string, b []byte, n int) string {
	if len(b) <= n {
		if string(b) == prev { // compared without a copy
			return prev
		}
		return string(b)
	}
	if len(prev) == n && prev[n-3:] == "..." && string(b[:n-3]) == prev[:n-3] {
		return prev
	}
	return string(b[:n-3]) + "..."
}
