package fleet

import (
	"encoding/binary"
	"iter"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Log is a guest's command log, newest first (Guest.Log): 16 bytes of the
// Guest. Its entries are kept compact (logRec: 32 bytes, not a LogEntry's
// 88) and shared by every Guest published from the session; At, All and
// Entries spell them out as LogEntry values. The zero Log is empty.
type Log struct {
	page    *logPage
	head, n int32 // page.recs[head:head+n]
}

// logPage is a log ring's buffer, and the tables its records refer to.
type logPage struct {
	recs   []logRec
	tables *logTables
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
func (l Log) Len() int { return int(l.n) }

// At is entry i, newest first (0 is the newest).
func (l Log) At(i int) LogEntry {
	if i < 0 || i >= int(l.n) {
		panic("fleet: Log.At index out of range")
	}
	return l.page.recs[int(l.head)+i].entry(l.page.tables)
}

// All yields the entries newest first, with their index.
func (l Log) All() iter.Seq2[int, LogEntry] {
	return func(yield func(int, LogEntry) bool) {
		for i := range l.Len() {
			if !yield(i, l.At(i)) {
				return
			}
		}
	}
}

// Entries is a copy of the log, newest first; nil when it is empty.
func (l Log) Entries() []LogEntry {
	if l.n == 0 {
		return nil
	}
	out := make([]LogEntry, l.n)
	for i := range out {
		out[i] = l.At(i)
	}
	return out
}

// logRec is a LogEntry as a log keeps it, in 32 bytes (a page of 32 takes
// 1,152, not the 1,792 of 48-byte records with two strings): the time
// in unix nanoseconds, the duration as a logDur, the command as its number
// in the fleet's logNames, and one text. The request is mostly the
// command's own without arguments, `{"execute":"guest-get-time"}` (every
// call of a poll), which the tables spell (logCanon); an empty one is
// nothing; any other goes in the text before the reply (logJoined).
type logRec struct {
	at    int64
	text  string // the reply, or with logJoined the request and the reply (joinLogText)
	dur   logDur
	cmd   uint16
	flags uint8
}

// logRec.flags
const (
	logErr    = 1 << iota // LogEntry.Err
	logCanon              // the request is the command's canonical one (logTables.number)
	logJoined             // text holds the request and the reply
	// logShared: text (a reply alone) is the fleet's shared copy
	// (logTables.share): the next poll's equal reply is it without
	// another look-up in the table (a lock and a hash per call).
	logShared
)

func (r *logRec) entry(t *logTables) LogEntry {
	name, canon := t.command(r.cmd)
	e := LogEntry{At: time.Unix(0, r.at), Command: name, Reply: r.text, Err: r.flags&logErr != 0, Duration: r.dur.duration()}
	switch {
	case r.flags&logCanon != 0:
		e.Request = canon
	case r.flags&logJoined != 0:
		e.Request, e.Reply = splitLogText(r.text)
	}
	return e
}

// joinLogText is req and rep in one string: req's length as a uvarint,
// req, rep.
func joinLogText(req, rep string) string {
	var n [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(n[:], uint64(len(req)))
	return string(n[:k]) + req + rep
}

// splitLogText undoes joinLogText, sharing s's bytes.
func splitLogText(s string) (req, rep string) {
	var n uint64
	i := 0
	for shift := uint(0); i < len(s) && shift < 64; shift += 7 {
		c := s[i]
		i++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	end := i + int(min(n, uint64(len(s)-i))) // never past s: it is ours, but a panic here would take the screen
	return s[i:end], s[end:]
}

// logDur is a call's duration in four bytes: exact to the nanosecond up to
// 2.1 s (nearly every call), to the millisecond beyond (the log shows
// tenths of a second there) up to 24 days. A longer one is kept as 24
// days, a negative one (there is none: time.Since is monotonic) as zero.
type logDur uint32

// logDurMs marks a logDur in milliseconds; without it, nanoseconds.
const logDurMs = 1 << 31

func toLogDur(d time.Duration) logDur {
	switch {
	case d <= 0:
		return 0
	case d < logDurMs:
		return logDur(d)
	}
	return logDur(logDurMs | min(d/time.Millisecond, logDurMs-1))
}

func (v logDur) duration() time.Duration {
	if v&logDurMs == 0 {
		return time.Duration(v)
	}
	return time.Duration(v&^logDurMs) * time.Millisecond
}

// maxLogNames bounds the command names a fleet numbers. They are not the
// guests' (guestdeck's own commands, its pseudo-commands such as connect,
// and raw commands the operator sends), but an operator could send any
// number of distinct raw ones: past the bound a new name is logged as
// unnamedCommand (a stream's entry still shows it in its request line).
const maxLogNames = 4096

// unnamedCommand is the name logged for a command past maxLogNames.
const unnamedCommand = "(unrecorded command)"

// maxSharedTexts bounds the texts a fleet shares (logTables.share), each a
// log line or a metrics note of at most maxSharedLen bytes: 8 MB at most.
// Room for a few per guest of a 10,000-guest fleet, as each guest has a
// stable text of its own (its interface list) beside the common ones. The
// texts are the guests' replies: a guest that keeps sending new ones
// empties the table now and then, which costs the sharing, not memory.
const maxSharedTexts = 1 << 15

// maxSharedLen is the longest text shared: a log line is at most
// logReplyMax; a note that names a guest's long version string is its own.
const maxSharedLen = 256

// logTables are what the logs of a fleet's guests share: the command names,
// numbered (an entry holds two bytes instead of a 16-byte string; numbers
// are never reused or changed), and the texts that repeat (replies that
// stay the same, such as a vCPU list: many guests send the same ones; the
// metrics notes share them too).
type logTables struct {
	// names is read without a lock (every call of every poll looks its
	// command up, from every worker at once: a shared RWMutex's counter
	// went back and forth between the cores); a new name, rare, replaces
	// it under mu.
	names atomic.Pointer[logNames]
	mu    sync.Mutex

	textMu sync.Mutex
	texts  map[string]string
}

// logNames is one version of a fleet's numbered command names; never
// changed once published (a new name makes a new one).
type logNames struct {
	idx   map[string]uint16
	names []string // names[i-1] is number i; 0 is unnamedCommand
	// canon[i-1] is number i's request without arguments, as the log
	// has it: {"execute":"NAME"}.
	canon []string
}

// share is the fleet's copy of s, which becomes that copy when there is
// none yet.
func (t *logTables) share(s string) string {
	if len(s) > maxSharedLen {
		return s
	}
	t.textMu.Lock()
	defer t.textMu.Unlock()
	if v, ok := t.texts[s]; ok {
		return v
	}
	if t.texts == nil {
		t.texts = make(map[string]string)
	}
	if len(t.texts) >= maxSharedTexts {
		clear(t.texts) // entries keep their strings; only the sharing starts over
	}
	t.texts[s] = s
	return s
}

// number is name's number (0 past maxLogNames) and its canonical request.
func (t *logTables) number(name string) (uint16, string) {
	if v := t.names.Load(); v != nil {
		if i, ok := v.idx[name]; ok {
			return i, v.canon[i-1]
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.names.Load()
	if v == nil {
		v = &logNames{}
	}
	if i, ok := v.idx[name]; ok {
		return i, v.canon[i-1]
	}
	if len(v.names) >= maxLogNames {
		return 0, ""
	}
	// A new version: the map copied (at most maxLogNames names, each
	// numbered once), the slices appended to (an earlier version reads
	// only the part it had).
	nv := &logNames{idx: maps.Clone(v.idx), names: append(v.names, name), canon: append(v.canon, `{"execute":"`+name+`"}`)}
	if nv.idx == nil {
		nv.idx = make(map[string]uint16)
	}
	i := uint16(len(nv.names))
	nv.idx[name] = i
	t.names.Store(nv)
	return i, nv.canon[i-1]
}

// command is number i's name and canonical request.
func (t *logTables) command(i uint16) (name, canon string) {
	if i == 0 || t == nil {
		return unnamedCommand, ""
	}
	v := t.names.Load()
	return v.names[i-1], v.canon[i-1]
}

// count is how many names are numbered.
func (t *logTables) count() int {
	if v := t.names.Load(); v != nil {
		return len(v.names)
	}
	return 0
}

// logRing keeps a guest's newest log entries, newest first, so that every
// published Guest can share the storage without copying: entries are written
// downwards from the end of buf and never changed afterwards, so a slice
// handed out earlier stays valid. When buf (twice the size) fills up, the
// newest size-1 entries move to a fresh buffer (push). Appending is
// amortised O(1): under one entry copy per entry. (A buffer of twice the
// size was a quarter of a 10,000-guest fleet's heap when records were 56
// bytes and the fleet's state 46 KB a guest; at 1.25 times it took a new
// page at nearly every poll.)
type logRing struct {
	size    int
	tables  *logTables // the fleet's
	page    *logPage   // page.recs[head:head+n] is the log, newest first
	head, n int32      // as Log's
}

func (r *logRing) add(e LogEntry) {
	if r.size <= 0 {
		return
	}
	r.ensureTables()
	cmd, canon := r.tables.number(e.Command)
	rec := logRec{at: e.At.UnixNano(), dur: toLogDur(e.Duration), cmd: cmd, text: e.Reply}
	if e.Err {
		rec.flags |= logErr
	}
	switch {
	case e.Request == "":
	case cmd != 0 && e.Request == canon:
		rec.flags |= logCanon
	default:
		rec.flags |= logJoined
		rec.text = joinLogText(e.Request, e.Reply)
	}
	r.push(rec)
}

func (r *logRing) ensureTables() {
	if r.tables == nil {
		r.tables = &logTables{} // a ring of its own (tests, LogOf)
	}
}

// push adds rec as the newest entry. size is positive.
//
// Records are written downwards from the page's end, each below the last,
// so a published Log (page.recs[head:head+n]) never sees its records
// change; once the page's start is reached the newest size-1 go to a new
// page. A page of twice the size takes a new one every size+1 records: at
// 1.25 times (20 for 16) it was every fifth record, about every poll, a
// third of the fleet's allocation and a copy of 15 records each time, for
// 450 bytes a guest less.
func (r *logRing) push(rec logRec) {
	if r.head == 0 {
		keep := min(int(r.n), r.size-1)
		np := newLogPage(2*r.size, r.tables)
		if r.page != nil {
			copy(np.recs[len(np.recs)-keep:], r.page.recs[:keep]) // head is 0: the newest are first
		}
		r.head = int32(len(np.recs) - keep)
		r.page = np
		r.n = int32(keep)
	}
	r.head--
	r.page.recs[r.head] = rec
	r.n = int32(min(int(r.n)+1, r.size))
}

// record adds a call's entry from its wire lines: req and rep as the log
// keeps them (withoutID: cut to one byte past logRequestMax and
// logReplyMax), or with isErr the error's text instead of the reply. It
// is what add would make of the LogEntry with those lines cut (cutText)
// as its request and reply, and shares what the slow path shared (text),
// but builds no string for what repeats: a steady poll's request is its
// command's own (logCanon), and a reply the same as the command's last
// one is that one's string, compared as bytes against the record itself
// (TestRecordAsAdd holds the two paths to the same entries).
func (r *logRing) record(name string, at time.Time, d time.Duration, req, rep []byte, isErr bool, errText string) {
	if r.size <= 0 {
		return
	}
	r.ensureTables()
	cmd, canon := r.tables.number(name)
	prev := r.lastRec(cmd)
	var prevReq, prevRep string
	var prevShared bool
	if prev != nil {
		switch {
		case prev.flags&logJoined != 0:
			prevReq, prevRep = splitLogText(prev.text)
		case prev.flags&logCanon != 0:
			prevReq, prevRep = canon, prev.text
		default:
			prevRep = prev.text
		}
		prevShared = prev.flags&logShared != 0
	}
	rec := logRec{at: at.UnixNano(), dur: toLogDur(d), cmd: cmd}
	if isErr {
		rec.flags |= logErr
	}
	canonReq := cmd != 0 && len(req) <= logRequestMax && string(req) == canon
	if len(req) == 0 || canonReq {
		if canonReq {
			rec.flags |= logCanon
		}
		if isErr {
			rec.text = errText
		} else {
			var shared bool
			rec.text, shared = r.text(prevRep, prevShared, rep, logReplyMax)
			if shared {
				rec.flags |= logShared
			}
		}
	} else {
		// Beside the reply (logJoined): the last entry's text again when
		// both lines are what it holds.
		rec.flags |= logJoined
		sameRep := isErr && errText == prevRep || !isErr && sameCut(prevRep, rep, logReplyMax)
		if prev != nil && prev.flags&logJoined != 0 && sameRep && sameCut(prevReq, req, logRequestMax) {
			rec.text = prev.text
		} else {
			repText := errText
			if !isErr {
				repText = cutText(rep, logReplyMax)
			}
			rec.text = joinLogText(cutText(req, logRequestMax), repText)
		}
	}
	r.push(rec)
}

// cutText is b cut to n bytes as the log shows it: n-3 bytes and "..."
// when longer.
func cutText(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n-3]) + "..."
}

// sameCut reports whether s is cutText(b, n), without building it.
func sameCut(s string, b []byte, n int) bool {
	if len(b) <= n {
		return string(b) == s
	}
	return len(s) == n && s[n-3:] == "..." && string(b[:n-3]) == s[:n-3]
}

// logPage32 is a page of the default log size's 32 records (LogSize 16) in
// one allocation with its header: 1,152 bytes, as the records alone take,
// without a second of 32.
type logPage32 struct {
	logPage
	recs [32]logRec
}

func newLogPage(n int, t *logTables) *logPage {
	if n == len(logPage32{}.recs) {
		p := &logPage32{}
		p.logPage = logPage{recs: p.recs[:], tables: t}
		return &p.logPage
	}
	return &logPage{recs: make([]logRec, n), tables: t}
}

// entries returns the log, newest first.
func (r *logRing) entries() Log {
	if r.n == 0 {
		return Log{}
	}
	return Log{page: r.page, head: r.head, n: r.n}
}

// last is the newest entry of command cmd, or a zero entry.
func (r *logRing) last(cmd string) LogEntry {
	if r.n == 0 {
		return LogEntry{}
	}
	i, _ := r.tables.number(cmd)
	if e := r.lastRec(i); e != nil {
		return e.entry(r.tables)
	}
	return LogEntry{}
}

// lastRec is the newest record of command number cmd, or nil (and nil for
// unnamedCommand: those are not the same command).
func (r *logRing) lastRec(cmd uint16) *logRec {
	if cmd == 0 || r.n == 0 {
		return nil
	}
	recs := r.page.recs[r.head : r.head+r.n]
	for i := range recs {
		if recs[i].cmd == cmd {
			return &recs[i]
		}
	}
	return nil
}

// text is b cut to n bytes as a string (cutText). When that is prev (the
// same command's last line, as a poll's usually is) it is the fleet's
// shared copy of it: a text that repeats is held once for the whole
// fleet, not once per entry or per guest. shared says it is that copy;
// prevShared that prev is (then it is not looked up again).
func (r *logRing) text(prev string, prevShared bool, b []byte, n int) (s string, shared bool) {
	if !sameCut(prev, b, n) {
		return cutText(b, n), false
	}
	if prevShared {
		return prev, true
	}
	return r.shared(prev), r.tables != nil
}

func (r *logRing) shared(s string) string {
	if r.tables == nil {
		return s
	}
	return r.tables.share(s)
}
