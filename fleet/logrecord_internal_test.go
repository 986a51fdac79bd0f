package fleet

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// recordSlow is logRecord's path before logRing.record: the command's last
// entry spelled out (last), each line cut and compared with it as a
// string (slowText), and the entry added as a LogEntry (add).
func recordSlow(r *logRing, name string, at time.Time, d time.Duration, req, rep []byte, isErr bool, errText string) {
	prev := r.last(name)
	e := LogEntry{At: at, Command: name, Request: slowText(r, prev.Request, req, logRequestMax), Duration: d}
	if isErr {
		e.Err, e.Reply = true, errText
	} else {
		e.Reply = slowText(r, prev.Reply, rep, logReplyMax)
	}
	r.add(e)
}

// slowText is logRing.text as it was: b cut to n, the shared prev when
// that is what it is.
func slowText(r *logRing, prev string, b []byte, n int) string {
	if len(b) <= n {
		if string(b) == prev {
			return r.shared(prev)
		}
		return string(b)
	}
	if len(prev) == n && prev[n-3:] == "..." && string(b[:n-3]) == prev[:n-3] {
		return r.shared(prev)
	}
	return string(b[:n-3]) + "..."
}

// logRing.record makes the same entries as the slow path, call after call,
// whatever the lines: a command's own request or another, none, one cut
// (and cut lines equal up to the cut but not after), replies repeated,
// cut, changed or replaced by an error, the command's last entry gone
// from the ring, unnamed commands (past maxLogNames). Both rings are
// compared entry by entry after every call.
func TestRecordAsAdd(t *testing.T) {
	long := strings.Repeat("n", 85) // a name whose own request is cut
	cmds := []string{"guest-get-time", "guest-get-vcpus", "guest-exec", long, "late-1", "late-2"}
	lines := func(cmd string) (reqs, reps []string) {
		own := `{"execute":"` + cmd + `"}`
		pad := func(s string, n int, c byte) string { return s + strings.Repeat(string(c), max(n-len(s), 0)) }
		reqs = []string{
			own, own, own, "",
			`{"execute":"guest-get-vcpus"}`,
			`{"execute":"` + cmd + `","arguments":{"a":1}}`,
			pad(own, logRequestMax, 'a'),   // kept whole
			pad(own, logRequestMax+1, 'a'), // cut (withoutID keeps one byte more)
			pad(own, logRequestMax+1, 'b'), // the same once cut
			pad(own[:len(own)-1], logRequestMax+1, 'c'),
		}
		reps = []string{
			`{"return": [{"online": true, "logical-id": 0}]}`,
			`{"return": [{"online": true, "logical-id": 0}]}`,
			`{"return": 1796189728326224640}`,
			`{"return": 1796189728326224641}`,
			"", `{"return": {}}`,
			pad(`{"return": "`, logReplyMax, 'x'),
			pad(`{"return": "`, logReplyMax+1, 'x'),
			pad(`{"return": "`, logReplyMax+1, 'y'), // the same once cut
			pad(`{"return": "z`, logReplyMax+1, 'x'),
		}
		return reqs, reps
	}
	errs := []string{"timed out", "timed out", "guest-exec: Command not found", ""}
	for _, tc := range []struct {
		name     string
		size     int
		fillFrom int // numbered names before the calls (past maxLogNames: the late ones are unnamed)
	}{
		{"default size", 16, 0},
		{"small ring", 3, 0},
		{"names full", 16, maxLogNames - 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fastT, slowT logTables
			for i := range tc.fillFrom {
				fastT.number(fmt.Sprintf("filler-%d", i))
				slowT.number(fmt.Sprintf("filler-%d", i))
			}
			fast := logRing{size: tc.size, tables: &fastT}
			slow := logRing{size: tc.size, tables: &slowT}
			rng := rand.New(rand.NewPCG(1, uint64(tc.size)))
			at := time.Unix(1_800_000_000, 0)
			for step := range 20000 {
				cmd := cmds[rng.IntN(len(cmds))]
				reqs, reps := lines(cmd)
				req, rep := []byte(reqs[rng.IntN(len(reqs))]), []byte(reps[rng.IntN(len(reps))])
				isErr := rng.IntN(5) == 0
				var errText string
				if isErr {
					errText = errs[rng.IntN(len(errs))]
				}
				at = at.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
				d := time.Duration(rng.IntN(3_000_000_000))
				fast.record(cmd, at, d, req, rep, isErr, errText)
				recordSlow(&slow, cmd, at, d, req, rep, isErr, errText)
				got, want := fast.entries(), slow.entries()
				if got.Len() != want.Len() {
					t.Fatalf("step %d: %d entries, want %d", step, got.Len(), want.Len())
				}
				for i := range got.Len() {
					g, w := got.At(i), want.At(i)
					if !g.At.Equal(w.At) || g.Command != w.Command || g.Request != w.Request || g.Reply != w.Reply || g.Err != w.Err || g.Duration != w.Duration {
						t.Fatalf("step %d (%s %q %q err %v %q), entry %d:\n got %+v\nwant %+v", step, cmd, req, rep, isErr, errText, i, g, w)
					}
				}
			}
		})
	}
}

// A steady poll's repeated reply is the one string of the fleet's table
// without looking it up each time: the first repeat shares it (marked
// logShared), the ones after reuse it; and two guests still share one.
func TestRecordSharedOnce(t *testing.T) {
	var tables logTables
	rep := []byte(`{"return": [{"online": true, "logical-id": 0}]}`)
	req := []byte(`{"execute":"guest-get-vcpus"}`)
	var rings [2]logRing
	for gi := range rings {
		rings[gi] = logRing{size: 16, tables: &tables}
		for range 5 {
			rings[gi].record("guest-get-vcpus", time.Now(), time.Millisecond, req, append([]byte(nil), rep...), false, "")
		}
	}
	for gi := range rings {
		l := rings[gi].entries()
		for i := range l.Len() - 1 { // the first entry, the oldest, is its own copy
			rec := l.page.recs[int(l.head)+i]
			if rec.flags&logShared == 0 || rec.flags&logCanon == 0 || unsafeData(rec.text) != unsafeData(rings[0].entries().At(0).Reply) {
				t.Errorf("guest %d entry %d: flags %b, not the fleet's one string", gi, i, rec.flags)
			}
		}
	}
}
