package agentclient

import (
	"reflect"
	"strings"
	"testing"
)

func FuzzDecodeStats(f *testing.F) {
	for _, s := range []string{
		`[{"cpu": 0, "guestnice": 0, "idle": 4625610, "steal": 9070, "iowait": 48890, "system": 2269380, "guest": 0, "nice": 38440, "irq": 0, "type": "linux", "user": 4284350, "softirq": 1890}]`,
		`[{"name": "vda", "stats": {"discard-sectors": 0, "write-ios": 225267, "discard-ios": 0, "discard-ticks": 0, "weight-ticks": 28627186, "read-ios": 2448106, "flush-ios": 43275, "write-sectors": 41102856, "write-merges": 371855, "write-ticks": 510628, "ios-pgr": 0, "read-sectors": 1278785386, "read-merges": 552998, "total-ticks": 915632, "discard-merges": 0, "flush-ticks": 18511, "read-ticks": 28071476}, "minor": 0, "major": 254}]`,
		`[]`, `null`, `[null]`, `[{}]`, `{}`, `[{"cpu":-1,"user":1}]`, `[{"cpu":1,"user":-1}]`, `[{"user":1,"user":2}]`,
		`[{"cpu":1,"idle":18446744073709551615,"iowait":18446744073709551616}]`, `[{"cpu":1,"steal":1.5}]`,
		`[{"cpu":1,"type":"windows","extra":[1,{"a":null}]}]`, `[{"cpu":1,"iowait":null}]`, `[{"cpu":"1"}]`,
		`[{"name":"sda","stats":null}]`, `[{"name":"sda","stats":{"read-ios":1,"read-ios":2}}]`, `[{"name":"sda","stats":{"ios-pgr":-3}}]`,
		`[{"name":"sda","major":8,"minor":0,"stats":{}}] x`, `[{"name":"\u0073da","stats":{"read-sectors":01}}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecoder(t, b, decodeCPUStats)
		checkDecoder(t, b, decodeDiskStats)
	})
}

// FuzzDecodeStatsScratch decodes two replies in a row into one Scratch, as
// a fleet's metrics polls do: whatever the first left in its storage, the
// second gives the reference's value, and fails exactly when it fails.
func FuzzDecodeStatsScratch(f *testing.F) {
	cpu := `[{"cpu": 0, "guestnice": 0, "idle": 4625610, "steal": 9070, "iowait": 48890, "system": 2269380, "guest": 0, "nice": 38440, "irq": 0, "type": "linux", "user": 4284350, "softirq": 1890}, {"cpu": 1, "idle": 5, "type": "linux", "user": 7}]`
	disk := `[{"name": "vda", "stats": {"write-ios": 225267, "read-sectors": 1278785386, "read-ios": 2448106, "write-sectors": 41102856}, "minor": 0, "major": 254}, {"name": "vda1", "stats": {"read-ios": 5}}]`
	for _, p := range [][2]string{
		{cpu, cpu}, {disk, disk}, {cpu, `[{"cpu": 0, "idle": 1, "type": "linux"}]`}, {cpu, `[]`}, {`[]`, cpu}, {`null`, cpu}, {cpu, `null`},
		{disk, `[{"name": "vda", "stats": {"read-ios": 1}}, {"name": "vda1", "stats": {}}, {"name": "vdb", "stats": {"flush-ios": 2}}]`},
		{disk, `[{"name": "vda", "stats": {"read-ios": 1, "read-ios": 2}}]`}, {cpu, `[{"cpu": 0, "iowait": null, "type": "linux"}]`},
		{`[{"cpu": 1, "type": "linux", "steal": 3}] x`, cpu}, {disk, `[{"name": "vd\u0061"}]`}, {cpu, `[{"cpu": 0, "type": "linu\u0078"}]`},
	} {
		f.Add([]byte(p[0]), []byte(p[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		checkScratch[CPUStats](t, a, b)
		checkScratch[DiskStatsInfo](t, a, b)
	})
}

func checkScratch[T any](t *testing.T, a, b []byte) {
	t.Helper()
	var sc Scratch[T]
	_ = decodeReturn(a, &sc)
	var ref []T
	rerr := decodeLenient(b, &ref)
	gerr := decodeReturn(b, &sc)
	if (gerr == nil) != (rerr == nil) || rerr == nil && !reflect.DeepEqual(sc.List, ref) {
		t.Fatalf("%q after %q: scratch %+v, %v; reference %+v, %v", b, a, sc.List, gerr, ref, rerr)
	}
	// And once more: the storage now holds b's own values.
	if rerr == nil {
		if err := decodeReturn(b, &sc); err != nil || !reflect.DeepEqual(sc.List, ref) {
			t.Fatalf("%q twice: scratch %+v, %v; reference %+v", b, sc.List, err, ref)
		}
	}
}

// TestScratchFailedReplyKeepsNoStorage: a reply the hand-written decoder
// walks far into before it fails (here a trailing comma after 100,000
// empty objects, 3 bytes each: the 4 MiB limit holds 1.4 million) must not
// leave counter storage for every element it walked in the Scratch. A
// fleet pools its Scratches by the size of their lists (fleet/metrics.go),
// and the reference gives no list for a reply that is not JSON, so the
// storage (72 bytes an element, 24 times the reply) would stay in the
// pool for every guest's polls.
func TestScratchFailedReplyKeepsNoStorage(t *testing.T) {
	const n = 100_000
	b := []byte("[" + strings.Repeat(`{},`, n) + "]")
	disk := []byte("[" + strings.Repeat(`{"stats":{}},`, n) + "]")
	tests := []struct {
		name string
		run  func() (list, vals int, err error)
	}{
		{"cpustats", func() (int, int, error) {
			var sc Scratch[CPUStats]
			err := decodeReturn(b, &sc)
			return cap(sc.List), len(sc.vals), err
		}},
		{"diskstats", func() (int, int, error) {
			var sc Scratch[DiskStatsInfo]
			err := decodeReturn(disk, &sc)
			return cap(sc.List), len(sc.vals), err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, vals, err := tt.run()
			if err == nil {
				t.Fatalf("a trailing comma decoded")
			}
			if vals > list {
				t.Fatalf("after a failed reply the scratch keeps counters for %d elements, its list has room for %d", vals, list)
			}
		})
	}
}
