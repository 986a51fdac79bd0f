package agentclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// shapeKinds are the Outs a Shape serves, each with a fresh Out holding
// the Shape (sh nil: the full decoder alone) and the decoded value.
var shapeKinds = []struct {
	cmd string
	out func(sh *Shape, prev any) any
	val func(out any, p *inPlace) any
}{
	{"guest-network-get-interfaces",
		func(sh *Shape, prev any) any {
			l := &InterfaceList{Shape: sh}
			if prev != nil {
				l.Prev = prev.([]Interface)
			}
			return l
		},
		func(_ any, p *inPlace) any { return p.ifaces }},
	{"guest-get-cpustats",
		func(sh *Shape, _ any) any { return &Scratch[CPUStats]{Shape: sh} },
		func(_ any, p *inPlace) any { return p.cpu }},
	{"guest-get-diskstats",
		func(sh *Shape, _ any) any { return &Scratch[DiskStatsInfo]{Shape: sh} },
		func(_ any, p *inPlace) any { return p.disk }},
}

// decodeIn decodes value v as a reply's return value in place, its
// envelope's tail after it, into out.
func decodeIn(v []byte, out any) (*inPlace, int, bool) {
	line := append(append([]byte(nil), v...), `, "id": "gd-7"}`...)
	p := &inPlace{out: out}
	end, ok := p.decodeAt(line, 0)
	return p, end, ok
}

// renumber gives every number token of v (valid JSON) the text num(k).
func renumber(t testing.TB, v []byte, num func(k int, old []byte) string) []byte {
	t.Helper()
	spans, ok := numberSpans(v, 0, len(v), nil)
	if !ok {
		t.Fatal("numberSpans refused the reply")
	}
	var out []byte
	at := 0
	for k, sp := range spans {
		out = append(out, v[at:sp.start]...)
		out = append(out, num(k, v[sp.start:sp.end])...)
		at = sp.end
	}
	return append(out, v[at:]...)
}

func shapeReply(t testing.TB, cmd string) []byte { return bytes.TrimSpace(pollReply(t, cmd)) }

// TestShapeDecodesAsTheFullDecoder: a reply decoded by the Shape of the
// one before is exactly what the full decoder makes of it, whether the
// Shape serves it (only numbers changed) or not (anything else), and a
// number its place does not take (negative, a fraction, past uint64 or
// int) is refused as the full decoder refuses it.
func TestShapeDecodesAsTheFullDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range shapeKinds {
		base := shapeReply(t, kind.cmd)
		variants := []struct {
			name string
			v    []byte
			hit  bool // the Shape serves it
			ok   bool // it decodes at all
		}{
			{"same", base, true, true},
			{"new counters", renumber(t, base, func(_ int, old []byte) string {
				if string(old) == "0" {
					return "0"
				}
				return strconv.FormatUint(rng.Uint64N(1<<30), 10)
			}), true, true},
			{"longest counters", renumber(t, base, func(_ int, old []byte) string {
				if len(old) > 6 {
					return "18446744073709551615"
				}
				return string(old)
			}), true, true},
			{"past uint64", renumber(t, base, func(k int, old []byte) string {
				if len(old) > 6 {
					return "18446744073709551616"
				}
				return string(old)
			}), false, false},
			{"negative", renumber(t, base, func(k int, old []byte) string {
				if len(old) > 6 {
					return "-" + string(old)
				}
				return string(old)
			}), false, false},
			{"fraction", renumber(t, base, func(k int, old []byte) string {
				if len(old) > 6 {
					return string(old) + ".5"
				}
				return string(old)
			}), false, false},
			{"exponent", renumber(t, base, func(k int, old []byte) string {
				if len(old) > 6 {
					return "1e3"
				}
				return string(old)
			}), false, false},
			{"leading zero", renumber(t, base, func(k int, old []byte) string {
				if len(old) > 6 {
					return "0" + string(old)
				}
				return string(old)
			}), false, false},
			{"spacing", bytes.ReplaceAll(base, []byte(","), []byte(", ")), false, true},
			{"a string", bytes.Replace(base, []byte(`":"`), []byte(`":"x`), 1), false, true},
			{"one element fewer", dropLast(t, base), false, true},
		}
		for _, v := range variants {
			t.Run(kind.cmd+"/"+v.name, func(t *testing.T) {
				sh := new(Shape)
				p0, _, ok := decodeIn(base, kind.out(sh, nil))
				if !ok || sh.kind == shapeNone {
					t.Fatal("the first reply built no Shape")
				}
				first := kind.val(nil, p0)
				firstCopy := deepCopyJSON(t, first)

				got, gotEnd, gotOK := decodeIn(v.v, kind.out(sh, first))
				want, wantEnd, wantOK := decodeIn(v.v, kind.out(nil, first))
				if gotOK != wantOK || gotOK != v.ok || gotEnd != wantEnd {
					t.Fatalf("ok %v (full decoder %v, want %v), end %d (full decoder %d)", gotOK, wantOK, v.ok, gotEnd, wantEnd)
				}
				if hit := sh.hits == 1; hit != v.hit {
					t.Errorf("served by the Shape: %v, want %v", hit, v.hit)
				}
				if gotOK && !reflect.DeepEqual(kind.val(nil, got), kind.val(nil, want)) {
					t.Errorf("decoded\n%s\nthe full decoder\n%s", mustJSON(t, kind.val(nil, got)), mustJSON(t, kind.val(nil, want)))
				}
				if kind.cmd == "guest-network-get-interfaces" && !reflect.DeepEqual(first, firstCopy) {
					t.Error("the list before changed: it may be in a snapshot")
				}
			})
		}
	}
}

// TestShapePrefixCopiesTheAddresses: a prefix that changes gives the
// interface addresses of its own, and the list before keeps its own.
func TestShapePrefixCopiesTheAddresses(t *testing.T) {
	base := []byte(`[{"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "192.0.2.10", "prefix": 24}], "statistics": {"rx-bytes": 10}}]`)
	next := bytes.Replace(bytes.Replace(base, []byte("24"), []byte("16"), 1), []byte("10}"), []byte("11}"), 1)
	sh := new(Shape)
	p0, _, _ := decodeIn(base, &InterfaceList{Shape: sh})
	p1, _, ok := decodeIn(next, &InterfaceList{Shape: sh, Prev: p0.ifaces})
	if !ok || sh.hits != 1 {
		t.Fatalf("ok %v, hits %d", ok, sh.hits)
	}
	if p0.ifaces[0].IPAddresses[0].Prefix != 24 || p1.ifaces[0].IPAddresses[0].Prefix != 16 {
		t.Errorf("prefixes %d then %d, want 24 then 16", p0.ifaces[0].IPAddresses[0].Prefix, p1.ifaces[0].IPAddresses[0].Prefix)
	}
	if p0.ifaces[0].Statistics.RxBytes != 10 || p1.ifaces[0].Statistics.RxBytes != 11 {
		t.Error("the counters were shared")
	}
	// An unchanged prefix shares the addresses, as the full decoder does.
	p2, _, _ := decodeIn(bytes.Replace(next, []byte("11}"), []byte("12}"), 1), &InterfaceList{Shape: sh, Prev: p1.ifaces})
	if &p2.ifaces[0].IPAddresses[0] != &p1.ifaces[0].IPAddresses[0] {
		t.Error("unchanged addresses were copied")
	}
}

// TestShapeSkipsUnknownNumbers: a number in a member no decoder reads is
// checked as JSON, as lexer.other does, and otherwise ignored.
func TestShapeSkipsUnknownNumbers(t *testing.T) {
	base := []byte(`[{"name": "vda", "major": 253, "minor": 0, "extra": [1, {"x": 2}], "stats": {"read-ios": 5}}]`)
	sh := new(Shape)
	decodeIn(base, &Scratch[DiskStatsInfo]{Shape: sh})
	for _, tc := range []struct {
		extra string
		hit   bool
	}{{"[1.5e3, {\"x\": -2}]", true}, {"[1.5.3, {\"x\": 2}]", false}} {
		v := bytes.Replace(base, []byte(`[1, {"x": 2}]`), []byte(tc.extra), 1)
		hits := sh.hits
		got, _, gotOK := decodeIn(v, &Scratch[DiskStatsInfo]{Shape: sh})
		want, _, wantOK := decodeIn(v, &Scratch[DiskStatsInfo]{})
		if gotOK != wantOK || (sh.hits > hits) != tc.hit || gotOK && !reflect.DeepEqual(got.disk, want.disk) {
			t.Errorf("%s: ok %v (full %v), hit %v", tc.extra, gotOK, wantOK, sh.hits > hits)
		}
	}
}

// FuzzShape: any second reply decoded by the first one's Shape is what the
// full decoder makes of it, for each kind.
func FuzzShape(f *testing.F) {
	for _, kind := range shapeKinds {
		base := shapeReply(f, kind.cmd)
		f.Add(base, renumber(f, base, func(k int, old []byte) string { return strconv.Itoa(k*7 + len(old)) }))
	}
	f.Add([]byte(`[{"name":"a","statistics":{}}]`), []byte(`[{"name":"a","statistics":{"rx-bytes":1}}]`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, kind := range shapeKinds {
			sh := new(Shape)
			p0, _, ok := decodeIn(a, kind.out(sh, nil))
			var first any
			if ok {
				first = kind.val(nil, p0)
			}
			got, gotEnd, gotOK := decodeIn(b, kind.out(sh, first))
			want, wantEnd, wantOK := decodeIn(b, kind.out(nil, first))
			if gotOK != wantOK || gotOK && gotEnd != wantEnd {
				t.Fatalf("%s: ok %v end %d, the full decoder %v %d", kind.cmd, gotOK, gotEnd, wantOK, wantEnd)
			}
			if gotOK && !reflect.DeepEqual(kind.val(nil, got), kind.val(nil, want)) {
				t.Fatalf("%s: decoded %s, the full decoder %s", kind.cmd, mustJSON(t, kind.val(nil, got)), mustJSON(t, kind.val(nil, want)))
			}
		}
	})
}

// dropLast is the list v without its last element.
func dropLast(t *testing.T, v []byte) []byte {
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil || len(elems) < 2 {
		t.Fatalf("the reply is not a list of two or more: %v", err)
	}
	return mustJSON(t, elems[:len(elems)-1])
}

func deepCopyJSON(t *testing.T, v any) any {
	l, ok := v.([]Interface)
	if !ok {
		return nil
	}
	out := make([]Interface, len(l))
	for i, it := range l {
		out[i] = it
		if it.IPAddresses != nil {
			out[i].IPAddresses = append([]IPAddress{}, it.IPAddresses...)
		}
		if it.Statistics != nil {
			st := *it.Statistics
			out[i].Statistics = &st
		}
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShapeCodesShared: guests whose replies are laid out alike share one
// layout code, and a Shape with a shared code still decodes its own
// guest's strings.
func TestShapeCodesShared(t *testing.T) {
	base := shapeReply(t, "guest-network-get-interfaces")
	other := bytes.Replace(base, []byte(`"lo"`), []byte(`"l0"`), 1)
	if bytes.Equal(base, other) {
		t.Fatal("the reply has no interface lo")
	}
	a, b := new(Shape), new(Shape)
	decodeIn(base, &InterfaceList{Shape: a})
	decodeIn(other, &InterfaceList{Shape: b})
	if len(a.code) == 0 || &a.code[0] != &b.code[0] {
		t.Fatal("the same layout's code is not shared")
	}
	p, _, ok := decodeIn(other, &InterfaceList{Shape: b})
	if !ok || b.hits != 1 || p.ifaces[0].Name != "l0" {
		t.Fatalf("ok %v, hits %d, first interface %q", ok, b.hits, p.ifaces[0].Name)
	}
	if p, _, _ := decodeIn(base, &InterfaceList{Shape: b}); b.hits != 1 || p.ifaces[0].Name != "lo" {
		t.Fatalf("another guest's reply was decoded by this one's Shape: %q", p.ifaces[0].Name)
	}
}

// scratchInBound fails unless sc's counters' storage is within its List's
// room, the bound a pool keeps a Scratch by (Scratch, fleet's
// maxPooledItems).
func scratchInBound[T any](t *testing.T, sc *Scratch[T]) {
	t.Helper()
	if len(sc.vals) > cap(sc.List) {
		t.Errorf("storage for %d elements, a list of room %d", len(sc.vals), cap(sc.List))
	}
}

// TestShapeMissKeepsScratchInBound: a reply the Shape of a long list
// walks to its end before it misses (a string holding digits where the
// list's numbers stood) leaves no counters' storage past the room of the
// list the full decoder then gives, which a pool would keep for everyone.
func TestShapeMissKeepsScratchInBound(t *testing.T) {
	const n = 300 // past fleet's maxPooledItems
	for _, tc := range []struct {
		name, elem string
		out        func(sh *Shape) (any, func(*testing.T))
	}{
		{"cpustats", `{"iowait": 1}`, func(sh *Shape) (any, func(*testing.T)) {
			sc := &Scratch[CPUStats]{Shape: sh}
			return sc, func(t *testing.T) { scratchInBound(t, sc) }
		}},
		{"diskstats", `{"stats": {"read-ios": 1}}`, func(sh *Shape) (any, func(*testing.T)) {
			sc := &Scratch[DiskStatsInfo]{Shape: sh}
			return sc, func(t *testing.T) { scratchInBound(t, sc) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			long := []byte("[" + tc.elem + strings.Repeat(", "+tc.elem, n-1) + "]")
			sh := new(Shape)
			out, _ := tc.out(sh)
			if _, _, ok := decodeIn(long, out); !ok || sh.kind == shapeNone {
				t.Fatal("the long list built no Shape")
			}
			// One element, one string: a digit wherever the long list had
			// one, so that every cut lands on a number.
			spans, _ := numberSpans(long, 0, len(long), nil)
			short := bytes.Repeat([]byte(" "), len(long))
			copy(short, `[{"x": "`)
			for _, sp := range spans {
				short[sp.start] = '1'
			}
			short = append(short, `"}]`...)
			out, check := tc.out(sh)
			line := append(append([]byte(`{"return": `), short...), `, "id": "gd-1"}`...)
			if _, taken, inPlace, perr, derr := onePass(line, []byte("gd-1"), out); !taken || !inPlace || perr != nil || derr != nil {
				t.Fatalf("taken %v, in place %v, errors %v %v", taken, inPlace, perr, derr)
			}
			if sh.hits != 0 {
				t.Fatal("the Shape served the short list")
			}
			check(t)
		})
	}
}

// TestShapeKeepsOnlyTheLastValue: after a long list, a Shape keeps nothing
// of it, whether the short reply after builds a Shape of its own (room
// for the long list's names stayed) or not, or is refused by the fast
// decoder (the long list stayed whole, behind a Shape that serves
// nothing): a guest sending a long list once held the dashboard to it for
// as long as the session lasted.
func TestShapeKeepsOnlyTheLastValue(t *testing.T) {
	const n = 5000
	// Past maxShapeNumbers, which no Shape is built for.
	unshaped := `"x": [0` + strings.Repeat(", 0", maxShapeNumbers) + `]`
	for _, kind := range shapeKinds {
		elem := map[string]string{
			"guest-network-get-interfaces": `{"name": "if%d"}`,
			"guest-get-cpustats":           `{"type": "cpu%d"}`,
			"guest-get-diskstats":          `{"name": "dev%d"}`,
		}[kind.cmd]
		long := []byte("[")
		for i := range n {
			if i > 0 {
				long = append(long, ", "...)
			}
			long = fmt.Appendf(long, elem, i)
		}
		long = append(long, ']')
		for _, short := range []struct {
			name      string
			v         string
			ok, shape bool
		}{
			{"shaped", "[" + strings.Replace(elem, "%d", "", 1) + "]", true, true},
			{"unshaped", "[" + strings.Replace(strings.Replace(elem, "%d", "", 1), "}", ", "+unshaped+"}", 1) + "]", true, false},
			// An escape: the reference decoder's, and the list shown.
			{"refused", "[" + strings.Replace(elem, "%d", `\u0061`, 1) + "]", false, false},
		} {
			t.Run(kind.cmd+"/"+short.name, func(t *testing.T) {
				sh := new(Shape)
				if _, _, ok := decodeIn(long, kind.out(sh, nil)); !ok || sh.kind == shapeNone {
					t.Fatal("the long list built no Shape")
				}
				if _, _, ok := decodeIn([]byte(short.v), kind.out(sh, nil)); ok != short.ok || (sh.kind != shapeNone) != short.shape {
					t.Errorf("ok %v, a Shape %v, want %v, %v", ok, sh.kind != shapeNone, short.ok, short.shape)
				}
				if len(sh.ifaces) > 1 || cap(sh.names) > 1 {
					t.Errorf("the Shape of a list of one keeps %d interfaces, room for %d names", len(sh.ifaces), cap(sh.names))
				}
			})
		}
	}
}

// TestShapeOnAnotherGuestsScratch: a Scratch lent from a pool holds
// another guest's list and counters; a Shape serving a reply into it
// gives what the full decoder gives into a fresh one, nothing of the
// other guest's left (its optional counters, its devices past ours).
func TestShapeOnAnotherGuestsScratch(t *testing.T) {
	cpuX := []byte(`[{"cpu": 0, "user": 9, "iowait": 9, "irq": 9, "softirq": 9, "steal": 9, "guest": 9, "guestnice": 9}, {"cpu": 1, "user": 9, "steal": 9}, {"cpu": 2, "idle": 9}]`)
	cpuY := []byte(`[{"cpu": 0, "user": 1, "steal": 2}, {"cpu": 1, "nice": 3}]`)
	diskX := []byte(`[{"name": "vda", "major": 9, "minor": 9, "stats": {"read-ios": 9, "write-ios": 9, "flush-ios": 9}}, {"name": "vdb", "stats": {"read-ios": 9}}]`)
	diskY := []byte(`[{"name": "sda", "major": 8, "minor": 0, "stats": {"write-ios": 4}}]`)
	for _, tc := range []struct {
		name string
		x, y []byte
		sc   func(*Shape) any
		val  func(*inPlace) any
	}{
		{"cpustats", cpuX, cpuY, func(sh *Shape) any { return &Scratch[CPUStats]{Shape: sh} }, func(p *inPlace) any { return p.cpu }},
		{"diskstats", diskX, diskY, func(sh *Shape) any { return &Scratch[DiskStatsInfo]{Shape: sh} }, func(p *inPlace) any { return p.disk }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shY := new(Shape)
			decodeIn(tc.y, tc.sc(shY)) // guest Y's last poll, on a scratch of its own
			lent := tc.sc(new(Shape))
			if p, _, ok := decodeIn(tc.x, lent); !ok {
				t.Fatal("guest X's reply does not decode")
			} else {
				p.commit()
			}
			switch sc := lent.(type) { // now Y's, as fleet's metricsCalls lends it
			case *Scratch[CPUStats]:
				sc.Shape = shY
			case *Scratch[DiskStatsInfo]:
				sc.Shape = shY
			}
			got, _, ok := decodeIn(tc.y, lent)
			want, _, wantOK := decodeIn(tc.y, tc.sc(nil))
			if !ok || !wantOK || shY.hits != 1 {
				t.Fatalf("ok %v (full decoder %v), hits %d", ok, wantOK, shY.hits)
			}
			if !reflect.DeepEqual(tc.val(got), tc.val(want)) {
				t.Errorf("decoded\n%s\nthe full decoder\n%s", mustJSON(t, tc.val(got)), mustJSON(t, tc.val(want)))
			}
		})
	}
}

// TestShapeCodeQuota: one guest sending a new layout at every poll adds at
// most shapeCodeQuota codes to the shared table (before, it filled it, and
// every guest after it kept a code of its own); the codes it does not add
// are its own and decode as ever, and an honest guest's layout is still
// shared after it.
func TestShapeCodeQuota(t *testing.T) {
	base := shapeReply(t, "guest-network-get-interfaces")
	layout := func(i int) []byte { // a piece of another length each
		return bytes.Replace(base, []byte(`"lo"`), fmt.Appendf(nil, `"quota%s"`, strings.Repeat("o", i)), 1)
	}
	size := func() int {
		shapeCodes.mu.Lock()
		defer shapeCodes.mu.Unlock()
		return len(shapeCodes.m)
	}
	before := size()
	hostile := new(Shape)
	for i := range 3 * shapeCodeQuota {
		b := layout(i)
		decodeIn(b, &InterfaceList{Shape: hostile}) // builds the Shape
		p, _, ok := decodeIn(b, &InterfaceList{Shape: hostile})
		if want := "quota" + strings.Repeat("o", i); !ok || p.ifaces[0].Name != want {
			t.Fatalf("layout %d: ok %v, first interface %q, want %q", i, ok, p.ifaces[0].Name, want)
		}
	}
	if added := size() - before; added > shapeCodeQuota || hostile.added != shapeCodeQuota {
		t.Errorf("one Shape's %d layouts added %d codes (its count %d), want at most %d",
			3*shapeCodeQuota, added, hostile.added, shapeCodeQuota)
	}
	honest := layout(100)
	a, b := new(Shape), new(Shape)
	decodeIn(honest, &InterfaceList{Shape: a})
	decodeIn(honest, &InterfaceList{Shape: b})
	if len(a.code) == 0 || &a.code[0] != &b.code[0] {
		t.Error("after the hostile guest, an honest layout's code is not shared")
	}
}
