package agentclient

import (
	"encoding/json"
	"fmt"
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
