package agentclient

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeVCPUsSince decodes a vCPU list as the fleet does (VCPUList,
// against the list shown): whatever that was, the result is the
// reference's, it fails exactly when the reference fails, the list before
// is left as it was, and a list that says the same is that list itself.
func FuzzDecodeVCPUsSince(f *testing.F) {
	two := `[{"online": true, "can-offline": true, "logical-id": 1}, {"online": true, "can-offline": false, "logical-id": 0}]`
	var many []string
	for i := range maxScratchVCPUs + 3 {
		many = append(many, fmt.Sprintf(`{"logical-id": %d, "online": true}`, i))
	}
	long := "[" + strings.Join(many, ",") + "]"
	for _, p := range [][2]string{
		{two, two}, {two, `[{"online": true, "can-offline": true, "logical-id": 1}]`},
		{two, `[{"online": true, "logical-id": 1}, {"online": true, "can-offline": false, "logical-id": 0}]`},
		{two, `[{"online": false, "can-offline": true, "logical-id": 1}, {"online": true, "can-offline": false, "logical-id": 0}]`},
		{`[{"online": true, "logical-id": 1}]`, `[{"online": true, "can-offline": false, "logical-id": 1}]`},
		{`[]`, `[]`}, {`null`, `[]`}, {two, `null`}, {two, `[{"online":truex}]`}, {two, `[{"logical-id":"1"}]`},
		{long, long}, {two, long}, {long, two}, {two, two + ` x`}, {two, `[1,{"online":true}]`},
	} {
		f.Add([]byte(p[0]), []byte(p[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var prev []VCPU
		_ = decodeReturn(a, &prev)
		before, _ := json.Marshal(prev)
		var ref []VCPU
		rerr := decodeLenient(b, &ref)
		out := VCPUList{Prev: prev}
		gerr := decodeReturn(b, &out)
		if (gerr == nil) != (rerr == nil) || rerr == nil && !reflect.DeepEqual(out.List, ref) {
			t.Fatalf("%q after %q: %+v, %v; reference %+v, %v", b, a, out.List, gerr, ref, rerr)
		}
		if after, _ := json.Marshal(prev); string(after) != string(before) {
			t.Fatalf("%q after %q: the list before changed from %s to %s", b, a, before, after)
		}
		if gerr == nil && len(prev) > 0 && reflect.DeepEqual(ref, prev) && &out.List[0] != &prev[0] {
			t.Fatalf("%q after %q: the same list decoded into a list of its own", b, a)
		}
	})
}

// An unchanged list costs no allocation; a changed one gets its own.
func TestVCPUListUnchangedAllocatesNothing(t *testing.T) {
	reply := []byte(`[{"online": true, "can-offline": true, "logical-id": 0}, {"online": true, "can-offline": false, "logical-id": 1}, {"online": false, "logical-id": 2}]`)
	var prev []VCPU
	if err := decodeReturn(reply, &prev); err != nil {
		t.Fatal(err)
	}
	out := VCPUList{Prev: prev}
	if n := testing.AllocsPerRun(100, func() { _ = decodeReturn(reply, &out) }); n != 0 {
		t.Errorf("an unchanged list: %v allocations, want 0", n)
	}
	changed := []byte(`[{"online": true, "can-offline": true, "logical-id": 0}, {"online": false, "can-offline": false, "logical-id": 1}, {"online": false, "logical-id": 2}]`)
	if err := decodeReturn(changed, &out); err != nil || out.List[1].Online || &out.List[0] == &prev[0] {
		t.Fatalf("a changed list: %+v, %v: want one of its own with vCPU 1 offline", out.List, err)
	}
	if *out.List[0].CanOffline != true || *out.List[1].CanOffline != false || out.List[2].CanOffline != nil {
		t.Errorf("can-offline not carried: %+v", out.List)
	}
}

// TestRepeatVCPUs: a vCPU reply that repeats the text the list shown was
// decoded from is that list, unlexed (a hit); any other text, or a list
// shown that is not the one the memo names, is decoded in full, with the
// full decoder's result.
func TestRepeatVCPUs(t *testing.T) {
	two := `[{"online": true, "can-offline": true, "logical-id": 0}, {"online": true, "can-offline": false, "logical-id": 1}]`
	// decode is a poll: the reply v with the list shown prev; it checks
	// the value against the reference decoder and returns it, or nil when
	// the in-place decoder leaves it to the two-pass one.
	decode := func(t *testing.T, r *Repeat, prev []VCPU, v string) []VCPU {
		t.Helper()
		out := &VCPUList{Prev: prev, Repeat: r}
		p, end, ok := decodeIn([]byte(v), out)
		var ref []VCPU
		rerr := decodeLenient([]byte(v), &ref)
		if ok && rerr != nil {
			t.Fatalf("%s: decoded, the reference's error %v", v, rerr)
		}
		if !ok {
			return nil // the two-pass decoder's (TestOnePassLikeTwoPasses)
		}
		if end != len(v) {
			t.Fatalf("%s: ends at %d, not %d", v, end, len(v))
		}
		p.commit()
		if !reflect.DeepEqual(out.List, ref) {
			t.Fatalf("%s: %+v, the reference %+v", v, out.List, ref)
		}
		return out.List
	}
	same := func(a, b []VCPU) bool { return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0] }

	t.Run("repeat", func(t *testing.T) {
		r := new(Repeat)
		first := decode(t, r, nil, two)
		if r.hits != 0 {
			t.Fatal("the first reply was a hit")
		}
		for i := range 3 {
			got := decode(t, r, first, two)
			if !same(got, first) || r.hits != uint32(i+1) {
				t.Fatalf("poll %d: a repeat gave a list of its own (hits %d)", i, r.hits)
			}
		}
	})
	t.Run("changed text", func(t *testing.T) {
		for _, v := range []string{
			strings.Replace(two, `"online": true`, `"online": fals`, 1)[:len(two)-1] + "]", // same length, refused
			strings.Replace(two, `"logical-id": 1`, `"logical-id": 2`, 1),                  // same length, another vCPU
			strings.Replace(two, `"can-offline": false`, `"can-offline": true `, 1),        // same length, can-offline changed
			strings.Replace(two, `, {`, `,{`, 1),                                           // shorter, same vCPUs
			two[:len(two)-1] + `, {"online": false, "logical-id": 2}]`,                     // longer, the same text first
		} {
			r := new(Repeat)
			first := decode(t, r, nil, two)
			hits := r.hits
			got := decode(t, r, first, v)
			if r.hits != hits {
				t.Fatalf("%s: a hit on the text of %s", v, two)
			}
			if got != nil && !sameVCPUs(got, first) && same(got, first) {
				t.Fatalf("%s: the list before, for other vCPUs", v)
			}
			// The memo is the new text's now (or empty): the old text
			// after it is decoded in full again.
			if got != nil {
				decode(t, r, got, two)
				if r.hits != hits {
					t.Fatalf("%s, then %s: a hit on the old text", v, two)
				}
			}
		}
	})
	t.Run("another list shown", func(t *testing.T) {
		r := new(Repeat)
		first := decode(t, r, nil, two)
		other := append([]VCPU(nil), first...) // equal, not the one the memo names
		got := decode(t, r, other, two)
		if r.hits != 0 || !same(got, other) {
			t.Fatalf("hits %d; the list shown back: %v", r.hits, same(got, other))
		}
		// The memo now names other: the next repeat is a hit.
		if got := decode(t, r, other, two); r.hits != 1 || !same(got, other) {
			t.Fatalf("after the memo moved to the list shown: hits %d", r.hits)
		}
	})
	t.Run("refused", func(t *testing.T) {
		r := new(Repeat)
		first := decode(t, r, nil, two)
		if decode(t, r, first, `[{"online": truex}]`) != nil || r.n != 0 {
			t.Fatalf("a refused reply kept the memo (%d bytes)", r.n)
		}
		decode(t, r, first, two)
		if r.hits != 0 {
			t.Fatal("a hit after a refused reply emptied the memo")
		}
	})
	t.Run("empty", func(t *testing.T) {
		r := new(Repeat)
		for _, v := range []string{`[]`, `[]`, `null`} {
			decode(t, r, nil, v)
		}
		if r.hits != 0 || r.n != 0 {
			t.Fatalf("an empty list kept (%d bytes, %d hits)", r.n, r.hits)
		}
	})
}

// TestRepeatVCPUsSequences drives the memo as a fleet does, poll after
// poll (the list shown is the last one committed), through replies drawn
// from a few texts that differ in a byte, in length, or not at all, some
// refused: every reply decodes to what the reference decoder makes of it.
func TestRepeatVCPUsSequences(t *testing.T) {
	texts := []string{
		`[{"online": true, "can-offline": true, "logical-id": 0}, {"online": true, "can-offline": false, "logical-id": 1}]`,
		`[{"online": true, "can-offline": true, "logical-id": 0}, {"online": true, "can-offline": false, "logical-id": 2}]`,
		`[{"online": true, "can-offline": true, "logical-id": 0}, {"online": true, "can-offline": false, "logical-id": 1}, {"online": false, "logical-id": 2}]`,
		`[{"online": true, "can-offline": true, "logical-id": 0}]`,
		`[{"online": true, "can-offline": true, "logical-id": 0}, {"online": true, "can-offline": fals , "logical-id": 1}]`,
		`[{"online":true,"can-offline":true,"logical-id":0},{"online":true,"can-offline":false,"logical-id":1}]`,
		`[]`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var hits uint32
	for seq := range 200 {
		r := new(Repeat)
		var shown []VCPU
		for poll := range 30 {
			v := texts[rng.IntN(len(texts))]
			// As the batch reads it: the value inside its reply line.
			line := []byte(`{"return": ` + v + `, "id": "gd-1"}`)
			out := &VCPUList{Prev: shown, Repeat: r}
			_, taken, _, perr, derr := onePass(line, []byte("gd-1"), out)
			var ref []VCPU
			rerr := decodeLenient([]byte(v), &ref)
			if perr != nil || !taken || (derr == nil) != (rerr == nil) {
				t.Fatalf("sequence %d, poll %d, %s: parse %v, taken %v, decode %v, the reference's %v", seq, poll, v, perr, taken, derr, rerr)
			}
			if derr != nil {
				continue // nothing committed: the list shown stays
			}
			if !reflect.DeepEqual(out.List, ref) {
				t.Fatalf("sequence %d, poll %d, %s: %+v, the reference %+v", seq, poll, v, out.List, ref)
			}
			shown = out.List
		}
		hits += r.hits
	}
	if hits == 0 {
		t.Error("no reply was served by the memo: the sequences did not test it")
	}
}
