package agentclient

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// inPlaceOuts are the Outs with an in-place decoder, each made fresh with
// the state a fleet's poll gives it: a list before for the Prev-based ones
// (prev decoded), storage of a decode before for a Scratch.
var inPlaceOuts = []struct {
	name string
	new  func(prev []byte) any
	val  func(out any) any // what a caller reads of out
}{
	{"time", func([]byte) any { return new(int64) }, func(o any) any { return *o.(*int64) }},
	{"interfaces", func(prev []byte) any {
		var p []Interface
		_ = decodeReturn(prev, &p)
		return &InterfaceList{Prev: p}
	}, func(o any) any { return o.(*InterfaceList).List }},
	{"vcpus", func(prev []byte) any {
		var p []VCPU
		_ = decodeReturn(prev, &p)
		return &VCPUList{Prev: p}
	}, func(o any) any { return o.(*VCPUList).List }},
	{"cpustats", func(prev []byte) any {
		sc := new(Scratch[CPUStats])
		_ = decodeReturn(prev, sc)
		return sc
	}, func(o any) any { return o.(*Scratch[CPUStats]).List }},
	{"diskstats", func(prev []byte) any {
		sc := new(Scratch[DiskStatsInfo])
		_ = decodeReturn(prev, sc)
		return sc
	}, func(o any) any { return o.(*Scratch[DiskStatsInfo]).List }},
	{"load", func([]byte) any { return new(*Load) }, func(o any) any { return *o.(**Load) }},
	// With the Shape of the list before (shape.go), as a fleet polls.
	{"interfaces/shape", func(prev []byte) any {
		sh := new(Shape)
		p, _, _ := decodeIn(prev, &InterfaceList{Shape: sh})
		return &InterfaceList{Prev: p.ifaces, Shape: sh}
	}, func(o any) any { return o.(*InterfaceList).List }},
	{"cpustats/shape", func(prev []byte) any {
		sc := &Scratch[CPUStats]{Shape: new(Shape)}
		decodeIn(prev, sc)
		return sc
	}, func(o any) any { return o.(*Scratch[CPUStats]).List }},
	{"diskstats/shape", func(prev []byte) any {
		sc := &Scratch[DiskStatsInfo]{Shape: new(Shape)}
		decodeIn(prev, sc)
		return sc
	}, func(o any) any { return o.(*Scratch[DiskStatsInfo]).List }},
	// With the memo of the text the list before came from (Repeat).
	{"vcpus/repeat", func(prev []byte) any {
		r := new(Repeat)
		p, _, _ := decodeIn(prev, &VCPUList{Repeat: r})
		return &VCPUList{Prev: p.vcpus, Repeat: r}
	}, func(o any) any { return o.(*VCPUList).List }},
}

// twoPass is what awaitReply and the batch did before the one-pass decode:
// parse the line, and decode the return value of the awaited reply into
// out. taken says whether the line was the reply (its id is want's).
func twoPass(line, want []byte, out any) (r reply, taken bool, perr, derr error) {
	r, perr = parseReply(line)
	if perr != nil || !idIs(r.id, want) || r.err != nil {
		return r, false, perr, nil
	}
	return r, true, nil, decodeReturn(r.ret, out)
}

// onePass is the same with the return value decoded as the line is
// scanned, as awaitReplyInPlace and its callers do.
func onePass(line, want []byte, out any) (r reply, taken, inPlaceUsed bool, perr, derr error) {
	p := &inPlace{out: out}
	r, perr = parseReplyInPlace(line, p)
	if perr != nil || !idIs(r.id, want) || r.err != nil {
		p.discard()
		return r, false, false, perr, nil
	}
	if p.ok {
		p.commit()
		return r, true, true, nil, nil
	}
	p.discard()
	return r, true, false, nil, decodeReturn(r.ret, out)
}

// checkOnePass decodes line both ways into outs of kind k made after prev,
// and fails unless the results are the same: the parse error, the reply's
// parts, whether it was taken, the decode's error and the value decoded.
// It reports whether the one-pass decode was used.
func checkOnePass(t *testing.T, k int, prev, line []byte) bool {
	t.Helper()
	kind := inPlaceOuts[k]
	want := []byte("gd-1")
	o1, o2 := kind.new(prev), kind.new(prev)
	r1, t1, p1, d1 := twoPass(line, want, o1)
	r2, t2, used, p2, d2 := onePass(line, want, o2)
	if errString(p1) != errString(p2) || errors.Is(p1, ErrMalformed) != errors.Is(p2, ErrMalformed) {
		t.Fatalf("%s %q: parse error %v, one pass %v", kind.name, line, p1, p2)
	}
	if string(r1.ret) != string(r2.ret) || string(r1.id) != string(r2.id) || (r1.ret == nil) != (r2.ret == nil) ||
		!reflect.DeepEqual(r1.err, r2.err) {
		t.Fatalf("%s %q: reply %+v, one pass %+v", kind.name, line, r1, r2)
	}
	if t1 != t2 || errString(d1) != errString(d2) {
		t.Fatalf("%s %q: taken %v, decode error %v; one pass %v, %v", kind.name, line, t1, d1, t2, d2)
	}
	// A Scratch's value is only read after a decode that succeeded: one a
	// line not taken (or failed) left behind is not compared.
	_, scratch := o1.(*Scratch[CPUStats])
	if _, d := o1.(*Scratch[DiskStatsInfo]); d {
		scratch = true
	}
	if t1 && d1 == nil || !scratch {
		if v1, v2 := kind.val(o1), kind.val(o2); !reflect.DeepEqual(v1, v2) {
			t.Fatalf("%s %q: decoded %+v, one pass %+v", kind.name, line, v1, v2)
		}
	}
	return used
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func pollReply(t testing.TB, cmd string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "pollreplies", cmd+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onePassKinds maps each inPlaceOuts entry to its poll reply's file.
var onePassKinds = []string{"guest-get-time", "guest-network-get-interfaces", "guest-get-vcpus", "guest-get-cpustats", "guest-get-diskstats", "",
	"guest-network-get-interfaces", "guest-get-cpustats", "guest-get-diskstats", "guest-get-vcpus"}

const loadReply = `{"load1m": 0.25, "load5m": 1.5, "load15m": 2e-3}`

func kindReply(t testing.TB, k int) []byte {
	if onePassKinds[k] == "" {
		return []byte(loadReply)
	}
	return pollReply(t, onePassKinds[k])
}

// TestOnePassLikeTwoPasses: replies as agents send them and as hostile
// ones might, each decoded both ways into each kind of Out.
func TestOnePassLikeTwoPasses(t *testing.T) {
	for k := range inPlaceOuts {
		ret := string(kindReply(t, k))
		lines := []string{
			`{"return": ` + ret + `, "id": "gd-1"}`,
			`{"id": "gd-1", "return": ` + ret + `}`,
			"junk\x00\xff  " + `{"return":` + ret + `,"id":"gd-1"}` + " \r",
			`{"return": ` + ret + `, "id": "gd-2"}`,                                                  // another request's
			`{"return": ` + ret + `, "id": "gd-1", "error": {"class": "GenericError", "desc": "x"}}`, // an error wins
			`{"return": ` + ret + `, "return": 12, "id": "gd-1"}`,                                    // the last one is the value
			`{"return": 12, "return": ` + ret + `, "id": "gd-1"}`,
			`{"return": ` + ret + `, "id": "gd-1"} x`, // data after the object
			`{"return": ` + ret + `, "id": "gd-1"`,    // cut short
			`{"return": ` + ret + `x, "id": "gd-1"}`,  // the value does not end where it should
			`{"return": 12x, "id": "gd-1"}`,           // a number decoded up to x, delimited past it
			`{"return": 12 , "id": "gd-1"}`,
			`{"return": ` + ret + `, "id": "gd-1", "other": [1, {"a": nul}]}`,
			`{"return": ` + ret + `, "id": "gd\u002d1"}`, // the id escaped
			`{"return": [` + ret + `], "id": "gd-1"}`,    // not the type
			`{"return": null, "id": "gd-1"}`,
			`{"id": "gd-1"}`,
		}
		for _, l := range lines {
			checkOnePass(t, k, []byte(ret), []byte(l))
		}
		// The plain reply does take the one pass.
		if !checkOnePass(t, k, []byte(ret), []byte(lines[0])) {
			t.Errorf("%s: the poll's reply was not decoded in one pass", inPlaceOuts[k].name)
		}
	}
}

// TestOnePassChangedByte: a changed byte in the value changes what the one
// pass decodes (as it does the two passes'), and a value as before gives
// the list before itself.
func TestOnePassChangedByte(t *testing.T) {
	ifaces := pollReply(t, "guest-network-get-interfaces")
	line := func(ret []byte) []byte { return []byte(`{"return": ` + string(ret) + `, "id": "gd-1"}`) }
	var prev []Interface
	if err := decodeReturn(ifaces, &prev); err != nil {
		t.Fatal(err)
	}
	out := &InterfaceList{Prev: prev}
	if _, taken, used, _, _ := onePass(line(ifaces), []byte("gd-1"), out); !taken || !used || !reflect.DeepEqual(out.List, prev) {
		t.Fatalf("as before: taken %v, one pass %v, %+v", taken, used, out.List)
	}
	for i, c := range ifaces {
		if c < '0' || c > '8' {
			continue
		}
		changed := append([]byte(nil), ifaces...)
		changed[i]++
		out := &InterfaceList{Prev: prev}
		if _, taken, _, _, _ := onePass(line(changed), []byte("gd-1"), out); !taken || reflect.DeepEqual(out.List, prev) {
			t.Fatalf("digit %d changed: taken %v, the list before", i, taken)
		}
		checkOnePass(t, 1, ifaces, line(changed))
	}
}

// FuzzOnePass decodes random and mutated lines both ways (checkOnePass)
// into every kind of Out, after a list before that is the poll's reply or
// the line's own value.
func FuzzOnePass(f *testing.F) {
	for k := range inPlaceOuts {
		ret := string(kindReply(f, k))
		for _, l := range []string{
			`{"return": ` + ret + `, "id": "gd-1"}`, `{"id": "gd-1", "return": ` + ret + `}`,
			`{"return": ` + ret + `, "id": "gd-2"}`, `{"return": 12x, "id": "gd-1"}`, `x{"return": ` + ret + `,"id":"gd-1"}`,
		} {
			f.Add(uint8(k), false, []byte(l))
			f.Add(uint8(k), true, []byte(l))
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, prevIsLine bool, line []byte) {
		k %= uint8(len(inPlaceOuts))
		prev := kindReply(t, int(k))
		if prevIsLine {
			if r, err := parseReply(line); err == nil {
				prev = r.ret
			}
		}
		checkOnePass(t, int(k), prev, line)
		checkRaw(t, int(k), prev, line)
	})
}

// BenchmarkReplyPath reads a steady poll's replies as a batch does, line
// to value: parsed and then decoded (two-pass: the code before the one
// pass, kept as the fallback), and decoded as the line is scanned
// (one-pass), each into an Out as the fleet keeps it.
//
//	go test ./agentclient -run '^$' -bench ReplyPath -benchmem
func BenchmarkReplyPath(b *testing.B) {
	want := []byte("gd-1")
	for k, kind := range inPlaceOuts {
		ret := kindReply(b, k)
		line := []byte(`{"return": ` + string(ret) + `, "id": "gd-1"}`)
		for _, mode := range []string{"two-pass", "one-pass"} {
			b.Run(kind.name+"/"+mode, func(b *testing.B) {
				out := kind.new(ret)
				b.ReportAllocs()
				for b.Loop() {
					var derr, perr error
					var taken bool
					if mode == "two-pass" {
						_, taken, perr, derr = twoPass(line, want, out)
					} else {
						_, taken, _, perr, derr = onePass(line, want, out)
					}
					if perr != nil || derr != nil || !taken {
						b.Fatal(perr, derr, taken)
					}
				}
			})
		}
	}
}

// TestOnePassScratchInBoundTwoReturns: a reply with two "return" members
// is decoded into a Scratch twice, the last one given: a long list before
// a short one leaves no counters' storage past the short list's room.
func TestOnePassScratchInBoundTwoReturns(t *testing.T) {
	const elem = `{"stats": {}}` // a disk's counters are stored for "stats", a CPU's for any element
	long := "[" + elem + strings.Repeat(", "+elem, 299) + "]"
	line := []byte(`{"return": ` + long + `, "return": [], "id": "gd-1"}`)
	cpu, disk := new(Scratch[CPUStats]), new(Scratch[DiskStatsInfo])
	for _, out := range []any{cpu, disk} {
		if _, taken, inPlace, perr, derr := onePass(line, []byte("gd-1"), out); !taken || !inPlace || perr != nil || derr != nil {
			t.Fatalf("taken %v, in place %v, errors %v %v", taken, inPlace, perr, derr)
		}
	}
	scratchInBound(t, cpu)
	scratchInBound(t, disk)
}

// checkRaw decodes the return value of line (when it has one) into outs of
// kind k made after prev both ways: by decodeReturn, and as DecodeRaw does
// a value kept by a prefetch (decodeRawInPlace first), and fails unless the
// errors and the values are the same. It reports whether the in-place
// decode was used.
func checkRaw(t *testing.T, k int, prev, line []byte) bool {
	t.Helper()
	r, err := parseReply(line)
	if err != nil || r.ret == nil {
		return false
	}
	kind := inPlaceOuts[k]
	o1, o2 := kind.new(prev), kind.new(prev)
	d1 := decodeReturn(r.ret, o1)
	used := decodeRawInPlace(r.ret, o2)
	var d2 error
	if !used {
		d2 = decodeReturn(r.ret, o2)
	}
	if errString(d1) != errString(d2) {
		t.Fatalf("%s %q: decode error %v, in place %v", kind.name, r.ret, d1, d2)
	}
	_, scratch := o1.(*Scratch[CPUStats])
	if _, d := o1.(*Scratch[DiskStatsInfo]); d {
		scratch = true
	}
	if d1 == nil || !scratch {
		if v1, v2 := kind.val(o1), kind.val(o2); !reflect.DeepEqual(v1, v2) {
			t.Fatalf("%s %q: decoded %+v, in place %+v", kind.name, r.ret, v1, v2)
		}
	}
	return used
}

// TestDecodeRawLikeDecodeReturn: a kept reply (a prefetch's RawReply) is
// decoded by DecodeRaw as decodeReturn decodes it, for every Out with an
// in-place decoder and the lines of TestOnePassLikeTwoPasses; the poll's
// own reply takes the in-place decoders, and a Shape built by a kept reply
// serves the steady poll's next one.
func TestDecodeRawLikeDecodeReturn(t *testing.T) {
	for k := range inPlaceOuts {
		ret := string(kindReply(t, k))
		for _, l := range []string{
			`{"return": ` + ret + `, "id": "gd-1"}`,
			`{"return": ` + ret + ` , "id": "gd-1"}`,
			`{"return": [` + ret + `], "id": "gd-1"}`,
			`{"return": null, "id": "gd-1"}`,
			`{"return": 12, "id": "gd-1"}`,
			`{"return": "12", "id": "gd-1"}`,
			`{"return": {}, "id": "gd-1"}`,
			`{"return": [], "id": "gd-1"}`,
		} {
			checkRaw(t, k, []byte(ret), []byte(l))
		}
		if !checkRaw(t, k, []byte(ret), []byte(`{"return": `+ret+`, "id": "gd-1"}`)) {
			t.Errorf("%s: the poll's reply, kept, was not decoded in place", inPlaceOuts[k].name)
		}
	}
	// Kept, then as the next poll reads it: the Shape serves.
	var st Stream
	sc := &Scratch[DiskStatsInfo]{Shape: new(Shape)}
	ret := pollReply(t, "guest-get-diskstats")
	if err := st.DecodeRaw("guest-get-diskstats", &RawReply{Ret: ret}, sc); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(sc.List)
	if _, taken, used, _, derr := onePass([]byte(`{"return": `+string(ret)+`, "id": "gd-1"}`), []byte("gd-1"), sc); !taken || !used || derr != nil {
		t.Fatalf("the next poll's reply: taken %v, in place %v, %v", taken, used, derr)
	}
	if sc.Shape.hits != 1 || !reflect.DeepEqual(sc.List, want) {
		t.Errorf("after a kept reply the Shape served %d replies (want 1), decoded %+v, want %+v", sc.Shape.hits, sc.List, want)
	}
}
