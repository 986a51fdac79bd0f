package fleet

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// A Log spells out exactly the entries it was given, newest first, through
// every reader (At, All, Entries), and the zero Log is empty.
func TestLogRoundTrip(t *testing.T) {
	at := time.Unix(1_800_000_000, 123456789)
	in := []LogEntry{
		{At: at, Command: "guest-get-time", Request: `{"execute":"guest-get-time"}`, Reply: `{"return": 1}`, Duration: 1500 * time.Microsecond},
		{At: at.Add(-time.Second), Command: "connect", Request: "unix:/x", Reply: "refused", Err: true, Duration: time.Hour},
		{At: at.Add(-2 * time.Second), Command: "guest-get-time"},
	}
	l := LogOf(in...)
	if l.Len() != len(in) {
		t.Fatalf("Len %d, want %d", l.Len(), len(in))
	}
	eq := func(a, b LogEntry) bool {
		return a.At.Equal(b.At) && a.Command == b.Command && a.Request == b.Request && a.Reply == b.Reply && a.Err == b.Err && a.Duration == b.Duration
	}
	for i, e := range l.All() {
		if !eq(e, in[i]) || !eq(l.At(i), in[i]) {
			t.Errorf("entry %d: %+v, want %+v", i, e, in[i])
		}
	}
	if !slices.EqualFunc(l.Entries(), in, eq) {
		t.Errorf("Entries %+v", l.Entries())
	}
	var zero Log
	if zero.Len() != 0 || zero.Entries() != nil {
		t.Errorf("zero Log: %d entries", zero.Len())
	}
	for range zero.All() {
		t.Error("the zero Log yields an entry")
	}
}

// Command names are numbered once per fleet, and past maxLogNames a new
// name is logged as unnamedCommand: an operator sending endless distinct
// raw commands cannot grow the table, and earlier names keep theirs.
func TestLogNamesBounded(t *testing.T) {
	var names logTables
	r := logRing{size: 4, tables: &names}
	for i := range maxLogNames + 10 {
		r.add(LogEntry{Command: fmt.Sprintf("cmd-%d", i)})
	}
	if names.count() != maxLogNames || len(names.names.Load().idx) != maxLogNames {
		t.Fatalf("%d names numbered, want %d", names.count(), maxLogNames)
	}
	if got := r.entries().At(0).Command; got != unnamedCommand {
		t.Errorf("a name past the bound is logged as %q", got)
	}
	r.add(LogEntry{Command: "cmd-7"})
	if got := r.entries().At(0).Command; got != "cmd-7" {
		t.Errorf("a numbered name is logged as %q", got)
	}
	a, _ := names.number("cmd-7")
	if b, canon := names.number("cmd-7"); a != b || a == 0 || canon != `{"execute":"cmd-7"}` {
		t.Errorf("cmd-7 numbered %d then %d (%s)", a, b, canon)
	}
}

// A guest's log holds LogSize entries at most however many calls are
// logged, in a buffer of twice that: its memory is bounded.
func TestLogRingBounded(t *testing.T) {
	r := logRing{size: 16}
	for i := range 1000 {
		r.add(LogEntry{Command: "guest-get-time", Reply: fmt.Sprint(i)})
	}
	l := r.entries()
	if l.Len() != 16 || cap(r.page.recs) != 32 {
		t.Fatalf("%d entries in a buffer of %d", l.Len(), cap(r.page.recs))
	}
	if l.At(0).Reply != "999" || l.At(15).Reply != "984" {
		t.Errorf("newest %q, oldest %q", l.At(0).Reply, l.At(15).Reply)
	}
}

// A text that repeats in one guest's log is held once for the fleet: a
// second guest sending the same reply shares the first one's string. A
// guest sending ever new texts cannot grow the table past maxSharedTexts.
func TestLogTextsSharedBounded(t *testing.T) {
	var tables logTables
	rep := []byte(`{"return": [{"online": true, "logical-id": 0}]}`)
	var got [2]string
	for gi := range got {
		r := logRing{size: 8, tables: &tables}
		for range 3 {
			r.record("guest-get-vcpus", time.Time{}, 0, nil, rep, false, "")
		}
		got[gi] = r.entries().At(0).Reply
	}
	if got[0] != string(rep) || unsafeData(got[0]) != unsafeData(got[1]) {
		t.Errorf("two guests' repeated replies %q and %q are not one string", got[0], got[1])
	}
	hostile := logRing{size: 8, tables: &tables}
	for i := range 3 * maxSharedTexts {
		b := []byte(fmt.Sprintf(`{"return": %d}`, i))
		for range 2 { // each text repeats once, so that it is shared
			hostile.record("guest-get-time", time.Time{}, 0, nil, b, false, "")
		}
		if n := len(tables.texts); n > maxSharedTexts {
			t.Fatalf("%d shared texts, bound %d", n, maxSharedTexts)
		}
	}
	long := strings.Repeat("v", maxSharedLen+1) // a note naming a long version
	if tables.share(long); tables.texts[long] != "" {
		t.Error("a text longer than maxSharedLen was shared")
	}
}

// A logged duration is exact to the nanosecond up to 2.1 s, to the
// millisecond beyond; one past 24 days is kept as the largest, and a
// negative one as zero: never wrapped into a short one.
func TestLogDur(t *testing.T) {
	longest := time.Duration(1<<31-1) * time.Millisecond // 24d20h31m23.647s
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 0},
		{1, 1},
		{1500 * time.Microsecond, 1500 * time.Microsecond},
		{1<<31 - 1, 1<<31 - 1}, // 2.147483647s, the longest exact
		{1 << 31, 2147 * time.Millisecond},
		{3*time.Second + 999999, 3 * time.Second},
		{time.Hour, time.Hour},
		{longest, longest},
		{longest + time.Millisecond, longest},
		{math.MaxInt64, longest},
		{-1, 0},
		{math.MinInt64, 0},
	} {
		if got := toLogDur(tc.in).duration(); got != tc.want {
			t.Errorf("%v (%d ns) comes back as %v, want %v", tc.in, int64(tc.in), got, tc.want)
		}
	}
	l := LogOf(LogEntry{Command: "guest-exec-status", Duration: 100 * 24 * time.Hour})
	if got := l.At(0).Duration; got != longest {
		t.Errorf("a 100-day call is logged as %v, want %v", got, longest)
	}
}

// However a request is kept (the command's own without arguments, none,
// or beside the reply), an entry comes back exactly as it was logged,
// request, reply and error alike; a request that only looks like the
// command's own (another command's, one with arguments, an unnamed
// command's) is kept as it was.
func TestLogRequests(t *testing.T) {
	long := strings.Repeat("x", 200) // a length past one varint byte
	for _, e := range []LogEntry{
		{Command: "guest-get-time", Request: `{"execute":"guest-get-time"}`, Reply: `{"return": 1}`},
		{Command: "guest-get-time", Request: `{"execute":"guest-get-time"}`, Reply: ""},
		{Command: "guest-get-time", Request: `{"execute":"guest-get-vcpus"}`, Reply: "r"},
		{Command: "guest-get-time", Request: `{"execute":"guest-get-time", "arguments": {}}`, Reply: "r"},
		{Command: "guest-get-time", Request: `{"execute":"guest-get-time"} `, Reply: "r"},
		{Command: "connect", Request: "unix:/run/x.sock", Reply: "refused", Err: true},
		{Command: "connect", Request: "", Reply: "refused", Err: true},
		{Command: "watchdog", Request: long, Reply: long + "\x00\xff"},
		{Command: "guest-exec", Request: "\x80\x01", Reply: "\x80"},
		{Command: "guest-exec", Request: "a", Reply: ""},
		{Command: "guest-exec", Request: "", Reply: ""},
	} {
		e.At, e.Duration = time.Unix(1_800_000_000, 5), 3*time.Millisecond
		got := LogOf(e).At(0)
		if !got.At.Equal(e.At) || got.Command != e.Command || got.Request != e.Request || got.Reply != e.Reply || got.Err != e.Err || got.Duration != e.Duration {
			t.Errorf("%+v comes back as %+v", e, got)
		}
	}

	// Past maxLogNames, a name's would-be own request is kept as written.
	var names logTables
	r := logRing{size: 2, tables: &names}
	for i := range maxLogNames {
		r.add(LogEntry{Command: fmt.Sprintf("cmd-%d", i)})
	}
	e := LogEntry{Command: "late", Request: `{"execute":"late"}`, Reply: "r"}
	r.add(e)
	if got := r.entries().At(0); got.Request != e.Request || got.Reply != e.Reply || got.Command != unnamedCommand {
		t.Errorf("an unnamed command's entry: %+v", got)
	}
}

// A steady poll's calls, logged from the wire (a simulated guest's stream), keep
// no request text of their own: each is its command's without arguments,
// which the log spells from the command's number.
func TestLogPollRequestsCanonical(t *testing.T) {
	dir := t.TempDir()
	farm, err := sim.ServeDir(dir, 1, func(i int) sim.Config { return sim.DefaultConfig("canon") })
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	f := New(Options{Timeout: 5 * time.Second, MetricsInterval: time.Nanosecond})
	defer f.Close()
	f.Add(Target{Name: "canon", Address: "unix:" + farm.Sockets()[0]})
	s := f.session("canon")
	for range 6 { // the log then holds steady polls only
		if err := s.poll(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}
	l := f.Guest("canon").Log
	if l.Len() != f.opts.LogSize {
		t.Fatalf("%d entries after six polls", l.Len())
	}
	for i, e := range l.All() {
		rec := l.page.recs[int(l.head)+i]
		if want := `{"execute":"` + e.Command + `"}`; e.Request != want || rec.flags&logCanon == 0 {
			t.Errorf("entry %d: %s %q, flags %b: want the command's own request, spelled by the log", i, e.Command, e.Request, rec.flags)
		}
		if e.Reply == "" || e.Err {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
}

// TestLogPublishedStays: a Log handed out (every Guest published holds
// one) reads the same entries however many are added after it, for any
// size: the ring writes only below what it has handed out, and moves to a
// new page before it would write over it.
func TestLogPublishedStays(t *testing.T) {
	for _, size := range []int{1, 2, 3, 16, 17, 100} {
		r := logRing{size: size}
		type kept struct {
			l    Log
			want []LogEntry
		}
		var all []kept
		for i := range 5 * size * 3 {
			r.add(LogEntry{Command: "guest-get-time", Reply: fmt.Sprint(i)})
			l := r.entries()
			all = append(all, kept{l, l.Entries()})
		}
		for i, k := range all {
			if got := k.l.Entries(); !reflect.DeepEqual(got, k.want) {
				t.Fatalf("size %d: the log published after entry %d changed: %v, was %v", size, i, got, k.want)
			}
		}
		if c := cap(r.page.recs); c != 2*size {
			t.Errorf("size %d: a page of %d records", size, c)
		}
	}
}
