package fleet

import (
	"iter"
	"sync"
	"time"
)

// Log is a guest's command log, newest first (Guest.Log). Its entries are
// kept compact (logRec: 56 bytes, not a LogEntry's 88) and shared by every
// Guest published from the session; At, All and Entries spell them out as
// LogEntry values. The zero Log is empty.
type Log struct {
	recs  []logRec
	names *logNames
}

// LogOf is a Log of entries, newest first: for a source of Guests other
// than a Fleet (a test's, a replay's).
func LogOf(entries ...LogEntry) Log {
	r := logRing{size: len(entries)}
	for i := len(entries) - 1; i >= 0; i-- {
		r.add(entries[i])
	}
	return r.entries()
}

// Len is how many entries the log holds.
func (l Log) Len() int { return len(l.recs) }

// At is entry i, newest first (0 is the newest).
func (l Log) At(i int) LogEntry { return l.recs[i].entry(l.names) }

// All yields the entries newest first, with their index.
func (l Log) All() iter.Seq2[int, LogEntry] {
	return func(yield func(int, LogEntry) bool) {
		for i := range l.recs {
			if !yield(i, l.At(i)) {
				return
			}
		}
	}
}

// Entries is a copy of the log, newest first; nil when it is empty.
func (l Log) Entries() []LogEntry {
	if len(l.recs) == 0 {
		return nil
	}
	out := make([]LogEntry, len(l.recs))
	for i := range l.recs {
		out[i] = l.At(i)
	}
	return out
}

// logRec is a LogEntry as a log keeps it: the time in unix nanoseconds and
// the command as its number in the fleet's logNames.
type logRec struct {
	at       int64
	dur      time.Duration
	req, rep string
	cmd      uint16
	err      bool
}

func (r *logRec) entry(names *logNames) LogEntry {
	return LogEntry{At: time.Unix(0, r.at), Command: names.name(r.cmd), Request: r.req, Reply: r.rep, Err: r.err, Duration: r.dur}
}

// maxLogNames bounds the command names a fleet numbers. They are not the
// guests' (guestdeck's own commands, its pseudo-commands such as connect,
// and raw commands the operator sends), but an operator could send any
// number of distinct raw ones: past the bound a new name is logged as
// unnamedCommand (a stream's entry still shows it in its request line).
const maxLogNames = 4096

// unnamedCommand is the name logged for a command past maxLogNames.
const unnamedCommand = "(unrecorded command)"

// logNames numbers the command names of a fleet's logs: an entry holds two
// bytes instead of a 16-byte string. Numbers are never reused or changed.
type logNames struct {
	mu    sync.RWMutex
	idx   map[string]uint16
	names []string // names[i-1] is number i; 0 is unnamedCommand
}

func (t *logNames) number(name string) uint16 {
	t.mu.RLock()
	i, ok := t.idx[name]
	t.mu.RUnlock()
	if ok {
		return i
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.idx[name]; ok {
		return i
	}
	if len(t.names) >= maxLogNames {
		return 0
	}
	if t.idx == nil {
		t.idx = make(map[string]uint16)
	}
	t.names = append(t.names, name)
	i = uint16(len(t.names))
	t.idx[name] = i
	return i
}

func (t *logNames) name(i uint16) string {
	if i == 0 || t == nil {
		return unnamedCommand
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.names[i-1]
}

// logRing keeps a guest's newest log entries, newest first, so that every
// published Guest can share the storage without copying: entries are written
// downwards from the end of buf and never changed afterwards, so a slice
// handed out earlier stays valid. When buf (1.25 times the size) fills up,
// the newest size-1 entries move to a fresh buffer. Appending is amortised
// O(1): about four entry copies per entry (a bigger buffer was a quarter
// of a 10,000-guest fleet's heap).
type logRing struct {
	size  int
	names *logNames // the fleet's
	buf   []logRec
	head  int // buf[head:head+n] is the log, newest first
	n     int
}

func (r *logRing) add(e LogEntry) {
	if r.size <= 0 {
		return
	}
	if r.names == nil {
		r.names = &logNames{} // a ring of its own (tests, LogOf)
	}
	if r.head == 0 {
		keep := min(r.n, r.size-1)
		nb := make([]logRec, r.size+max(r.size/4, 1))
		copy(nb[len(nb)-keep:], r.buf[:keep]) // head is 0: the newest are first
		r.head = len(nb) - keep
		r.buf = nb
		r.n = keep
	}
	r.head--
	r.buf[r.head] = logRec{at: e.At.UnixNano(), dur: e.Duration, req: e.Request, rep: e.Reply, cmd: r.names.number(e.Command), err: e.Err}
	r.n = min(r.n+1, r.size)
}

// entries returns the log, newest first.
func (r *logRing) entries() Log {
	if r.n == 0 {
		return Log{}
	}
	return Log{recs: r.buf[r.head : r.head+r.n : r.head+r.n], names: r.names}
}

// last is the newest entry of command cmd, or a zero entry.
func (r *logRing) last(cmd string) LogEntry {
	if r.n == 0 {
		return LogEntry{}
	}
	i := r.names.number(cmd)
	for _, e := range r.buf[r.head : r.head+r.n] {
		if e.cmd == i && i != 0 {
			return e.entry(r.names)
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
