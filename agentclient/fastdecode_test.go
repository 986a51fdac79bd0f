package agentclient

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The hand-written decoders are checked against decodeLenient, the
// reference, on three counts:
//  1. wherever a hand-written decoder accepts the input, it gives the
//     reference's value (and the reference accepts it too);
//  2. decodeReturn, fast path and fallback together, always gives the
//     reference's value and fails exactly when it fails;
//  3. what the reference decodes, encoded again by encoding/json, decodes to
//     the same value by encoding/json itself, by decodeReturn (mostly on its
//     fast path: encoding/json writes plain, well-typed JSON) and by the
//     reference: on well-formed replies all three agree.

// checkDecoder runs the three checks for one target type.
func checkDecoder[T any](t *testing.T, b []byte, fast func([]byte) (T, bool)) {
	t.Helper()
	var ref T
	rerr := decodeLenient(b, &ref)
	if fast != nil {
		if v, ok := fast(b); ok {
			if rerr != nil || !reflect.DeepEqual(v, ref) {
				t.Fatalf("%q: fast decoder %+v, reference %+v, %v", b, v, ref, rerr)
			}
		}
	}
	var got T
	gerr := decodeReturn(b, &got)
	if (gerr == nil) != (rerr == nil) || rerr == nil && !reflect.DeepEqual(got, ref) {
		t.Fatalf("%q: decodeReturn %+v, %v; reference %+v, %v", b, got, gerr, ref, rerr)
	}
	if rerr != nil {
		return
	}
	again, err := json.Marshal(ref)
	if err != nil {
		t.Fatalf("%q: re-encode %+v: %v", b, ref, err)
	}
	// omitempty drops empty lists, so compare the three decodings of the
	// re-encoded reply with one another, and that with ref encoded.
	var viaJSON, viaReturn, viaRef T
	jerr := json.Unmarshal(again, &viaJSON)
	derr := decodeReturn(again, &viaReturn)
	lerr := decodeLenient(again, &viaRef)
	if jerr != nil || derr != nil || lerr != nil || !reflect.DeepEqual(viaJSON, viaRef) || !reflect.DeepEqual(viaReturn, viaRef) {
		t.Fatalf("%s: encoding/json %+v, %v; decodeReturn %+v, %v; reference %+v, %v", again, viaJSON, jerr, viaReturn, derr, viaRef, lerr)
	}
	if twice, _ := json.Marshal(viaRef); string(twice) != string(again) {
		t.Fatalf("%s decoded and encoded again is %s", again, twice)
	}
}

func FuzzDecodeInterfaces(f *testing.F) {
	for _, s := range []string{
		`[{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}, {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}], "statistics": {"tx-packets": 29, "tx-errs": 0, "rx-bytes": 3193, "rx-dropped": 0, "rx-packets": 29, "rx-errs": 0, "tx-bytes": 3193, "tx-dropped": 0}, "hardware-address": "00:00:00:00:00:00"}, {"name": "ifb0", "hardware-address": "1e:db:9e:70:96:b9"}]`,
		`[]`, `null`, `[null]`, `[{}]`, `{}`, `[{"name":"a\u0062"}]`, `[{"Name":"x"}]`, `[{"name":"x","name":"y"}]`,
		`[{"name":"x","statistics":{"rx-bytes":-1}}]`, `[{"name":"x","statistics":{"rx-bytes":18446744073709551615}}]`,
		`[{"name":"x","statistics":{"rx-bytes":18446744073709551616}}]`, `[{"name":"x","ip-addresses":[{"prefix":1.5}]}]`,
		`[{"name":"x","ip-addresses":[{"prefix":-0}],"extra":[1,{"a":null}]}]`, `[{"name":"x"}] x`, `[{"name":"x",}]`,
		`[{"name":"\xff"}]`, `[{"name":"x","statistics":null}]`, `[{"name":"x","ip-addresses":[]}]`, `[{"name":01}]`,
		`[{"name":"x","statistics":"many"}]`, `[{"name":"x","statistics":{"tx-bytes":"1"}}]`, `[1,"eth0",{"name":"y"}]`,
		`[{"name":"x","ip-addresses":[{"ip-address":"10.0.0.1","prefix":9223372036854775808}]}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecoder(t, b, decodeInterfaces) })
}

// FuzzDecodeInterfacesSince decodes a list as the fleet does, sharing
// strings with the list before (InterfaceList): whatever that was, the
// result is the reference's, it fails exactly when the reference fails, and
// the list before is left as it was.
func FuzzDecodeInterfacesSince(f *testing.F) {
	lo := `{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}, {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}], "statistics": {"tx-packets": 29, "rx-bytes": 3193}, "hardware-address": "00:00:00:00:00:00"}`
	eth := `{"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "192.0.2.10", "prefix": 24}], "statistics": {"rx-bytes": 1}, "hardware-address": "52:54:00:12:34:56"}`
	for _, p := range [][2]string{
		{"[" + lo + "," + eth + "]", "[" + lo + "," + eth + "]"}, {"[" + lo + "," + eth + "]", "[" + eth + "," + lo + "]"},
		{"[" + lo + "]", "[" + lo + "," + eth + "]"}, {"[" + lo + "," + eth + "]", "[" + lo + "]"}, {`[]`, "[" + lo + "]"},
		{"[" + lo + "]", `[]`}, {"[" + lo + "]", `null`}, {`null`, "[" + eth + "]"}, {"[" + lo + "]", `[{"name": "l\u006f"}]`},
		{"[" + eth + "]", `[{"name": "eth0", "ip-addresses": [{"ip-address": "192.0.2.10", "ip-address": "x"}]}]`},
		{"[" + eth + "]", `[{"name": "eth0", "hardware-address": "ÿ"}]`}, {`[{"name": "ÿ"}]`, `[{"name": "ÿ"}]`},
	} {
		f.Add([]byte(p[0]), []byte(p[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var prev []Interface
		_ = decodeReturn(a, &prev)
		before, _ := json.Marshal(prev)
		var ref []Interface
		rerr := decodeLenient(b, &ref)
		out := InterfaceList{Prev: prev}
		gerr := decodeReturn(b, &out)
		if (gerr == nil) != (rerr == nil) || rerr == nil && !reflect.DeepEqual(out.List, ref) {
			t.Fatalf("%q after %q: %+v, %v; reference %+v, %v", b, a, out.List, gerr, ref, rerr)
		}
		if after, _ := json.Marshal(prev); string(after) != string(before) {
			t.Fatalf("%q after %q: the list before changed from %s to %s", b, a, before, after)
		}
	})
}

func FuzzDecodeVCPUsAndTime(f *testing.F) {
	for _, s := range []string{
		`[{"online": true, "can-offline": true, "logical-id": 1}, {"online": true, "can-offline": false, "logical-id": 0}]`,
		`[]`, `null`, `[{"online":truex}]`, `[{"online":null}]`, `[{"logical-id":1,"logical-id":2}]`, `[{"Online":true}]`,
		`[{"logical-id":9223372036854775808,"online":true}]`, `[{"logical-id":"3","online":true,"can-offline":"yes"}]`,
		`1700000000123456789`, `-5`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `1e3`, `"1"`, ` 12 `, `012`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecoder(t, b, decodeVCPUs)
		checkDecoder(t, b, func(b []byte) (int64, bool) {
			l := &lexer{b: b}
			v, ok := l.int64()
			return v, ok && skipSpace(b, l.i) == len(b)
		})
	})
}

func FuzzDecodeFileRead(f *testing.F) {
	for _, s := range []string{
		`{"count": 5, "buf-b64": "aGVsbG8=", "eof": true}`, `{"count": 0, "buf-b64": "", "eof": false}`, `{}`, `null`, `[]`,
		`{"count": -1, "buf-b64": "aGVsbG8=", "eof": true}`, `{"count": 5, "buf-b64": 7, "eof": "yes"}`,
		`{"count": 5, "buf-b64": "aGVs\/bG8=", "eof": true}`, `{"count":5,"count":6}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecoder(t, b, decodeFileRead) })
}

func FuzzDecodeExecStatus(f *testing.F) {
	for _, s := range []string{
		`{"exited": true, "exitcode": 0, "out-data": "aGVsbG8=", "err-data": "", "out-truncated": false}`,
		`{"exited": false}`, `{}`, `null`, `[]`, `{"exited": true, "signal": 9}`,
		`{"exited": true, "exitcode": -1, "out-data": "not base64!"}`, `{"exited": true, "exitcode": 99999999999999999999}`,
		`{"exited": true, "out-data": "aGVs\/bG8="}`, `{"exited": true, "out-data": 7, "err-data": ["x"]}`,
		`{"exited": "yes", "exitcode": 1.5, "signal": "9"}`, `{"out-data": "aGVsbG8", "err-truncated": true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecoder(t, b, decodeExecStatus) })
}

// FuzzDecodeSlowReplies checks the slow poll's replies: guest-info's
// and the OS's hand-written decoders, and the reference alone on the rest (it never
// panics and agrees with encoding/json on what it decodes).
func FuzzDecodeSlowReplies(f *testing.F) {
	for _, s := range []string{
		`{"version": "7.2.22", "supported_commands": [{"name": "guest-ping", "enabled": true, "success-response": true}]}`,
		`{"version": "7.2.22", "supported_commands": [{"name": "guest-ping", "enabled": "yes"}, 5, {"name": "guest-info"}]}`,
		`{"version": 7, "supported_commands": []}`, `{"supported_commands": null}`,
		`{"kernel-release": "6.1.0", "pretty-name": "Debian GNU/Linux 12 (bookworm)", "id": 5}`,
		`[{"user": "root", "login-time": 1700000000.25}, {"user": 1, "login-time": 1e400}]`,
		`[{"name": "vda1", "mountpoint": "/", "type": "ext4", "used-bytes": -1, "total-bytes": 10, "disk": [{"pci-controller": {"domain": -1, "bus": 0, "slot": 4, "function": 0}, "bus-type": "virtio", "bus": 0, "target": 0, "unit": 0}]}]`,
		`[{"name": "vda1", "mountpoint": "/", "type": "ext4", "used-bytes": 5, "total-bytes": 10, "total-bytes-privileged": 11, "disk": [{"pci-controller": {"domain": 0, "bus": 0, "slot": 4, "function": 0}, "bus-type": "virtio", "bus": 0, "target": 0, "unit": 0, "serial": "s1", "dev": "/dev/vda1"}]}, {"name": "x", "disk": []}]`,
		`[{"user": "root", "domain": "d", "login-time": 1.7e9}, {"user": "a", "login-time": -0.5E-3}, {"user": "b", "login-time": 01}]`,
		`{"load1m": 0.25, "load5m": 1, "load15m": 2.5e-1}`, `{"load1m": 1e999}`, `{"load1m": "1"}`,
		`[{"iface": "eth0", "destination": "0.0.0.0", "metric": 100, "gateway": "10.0.0.1", "mask": "0.0.0.0", "irtt": 0, "flags": 3, "refcnt": 0, "use": 0, "window": 0, "mtu": 0, "version": 4}, {"iface": "eth0", "destination": "fe80::", "desprefixlen": "40", "source": "::", "srcprefixlen": "00", "nexthop": "::", "metric": 256, "flags": 1, "version": 6}]`,
		`[{"name": "/dev/vda", "dependencies": [], "partition": false, "address": {"bus-type": "virtio", "bus": 0, "unit": 0, "pci-controller": {"bus": 0, "slot": 4, "domain": 0, "function": 0}, "dev": "/dev/vda", "target": 0}}, {"name": "/dev/vda1", "dependencies": ["/dev/vda"], "partition": true, "alias": "root"}]`,
		`[{"name": "/dev/nvme0n1", "partition": false, "smart": {"type": "nvme", "temperature": 300}}]`,
		`{"zone": "UTC", "offset": 3600}`, `{"zone": "CET", "offset": -3600, "zone": "x"}`, `{"host-name": "web-1"}`, `{"exited": true, "exitcode": 0, "out-data": "aGk="}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecoder(t, b, decodeInfo)
		checkDecoder(t, b, decodeOSInfo)
		checkDecoder(t, b, decodeUsers)
		checkDecoder(t, b, decodeFilesystems)
		checkDecoder(t, b, decodeTimezone)
		checkDecoder(t, b, decodeLoad)
		checkDecoder(t, b, func(b []byte) (*Load, bool) { v, ok := decodeLoad(b); return &v, ok })
		checkDecoder(t, b, decodeRoutes)
		checkDecoder(t, b, decodeDisks)
		checkDecoder(t, b, decodeHostName)
		checkDecoder[ExecStatus](t, b, nil)
	})
}

// A value that does not fit costs its field (or its list element), not the
// reply: the cases a hostile or buggy agent sends.
func TestLenientDecoding(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	tr := true
	for _, tt := range []struct {
		name  string
		reply string
		out   any // pointer to a fresh value of the reply's type
		want  any
	}{
		{"rx-bytes -1 loses rx-bytes only", `[{"name":"eth0","statistics":{"rx-bytes":-1,"tx-bytes":7}}]`, new([]Interface),
			&[]Interface{{Name: "eth0", Statistics: &InterfaceStats{TxBytes: 7}}}},
		{"rx-bytes 2^64", `[{"name":"eth0","statistics":{"rx-bytes":18446744073709551616,"rx-packets":3}}]`, new([]Interface),
			&[]Interface{{Name: "eth0", Statistics: &InterfaceStats{RxPackets: 3}}}},
		{"statistics mistyped: absent, not zero", `[{"name":"eth0","statistics":"lots","hardware-address":"52:54:00:12:34:56"}]`, new([]Interface),
			&[]Interface{{Name: "eth0", HardwareAddress: "52:54:00:12:34:56"}}},
		{"prefix a string", `[{"name":"eth0","ip-addresses":[{"ip-address":"10.0.0.7","ip-address-type":"ipv4","prefix":"24"}]}]`, new([]Interface),
			&[]Interface{{Name: "eth0", IPAddresses: []IPAddress{{Address: "10.0.0.7", Type: "ipv4"}}}}},
		{"an element that is not an interface is dropped", `[7,{"name":"lo"},"eth1"]`, new([]Interface), &[]Interface{{Name: "lo"}}},
		{"logical-id 2^63", `[{"logical-id":9223372036854775808,"online":true},{"logical-id":1,"online":true,"can-offline":true}]`, new([]VCPU),
			&[]VCPU{{Online: true}, {LogicalID: 1, Online: true, CanOffline: &tr}}},
		{"can-offline mistyped: absent, not false", `[{"logical-id":2,"online":true,"can-offline":"yes"}]`, new([]VCPU),
			&[]VCPU{{LogicalID: 2, Online: true}}},
		{"os name a number", `{"name":5,"pretty-name":"Debian GNU/Linux 12 (bookworm)","id":"debian"}`, new(OSInfo),
			&OSInfo{PrettyName: "Debian GNU/Linux 12 (bookworm)", ID: "debian"}},
		{"used-bytes negative", `[{"name":"vda1","mountpoint":"/","type":"ext4","used-bytes":-5,"total-bytes":10,"disk":[]}]`, new([]Filesystem),
			&[]Filesystem{{Name: "vda1", Mountpoint: "/", Type: "ext4", TotalBytes: u(10), Disk: []DiskAddress{}}}},
		{"login-time out of range", `[{"user":"root","login-time":1e999},{"user":"ann","login-time":1.5}]`, new([]User),
			&[]User{{User: "root"}, {User: "ann", LoginTime: 1.5}}},
		{"timezone offset a fraction", `{"zone":"CET","offset":3600.5}`, new(Timezone), &Timezone{Zone: "CET"}},
		{"guest-info with one bad entry", `{"version":"7.2.22","supported_commands":[{"name":"guest-ping","enabled":true,"success-response":true},{"name":1},"x"]}`, new(Info),
			&Info{Version: "7.2.22", SupportedCommands: []CommandInfo{{Name: "guest-ping", Enabled: true, SuccessResponse: true}, {}}}},
		{"a time out of range is the reply's error", `9223372036854775808`, new(int64), nil},
		{"an object for a list is the reply's error", `{"name":"eth0"}`, new([]Interface), nil},
		{"a list for an object is the reply's error", `[{"name":"x"}]`, new(OSInfo), nil},
		{"invalid JSON is the reply's error", `[{"name":"eth0",}]`, new([]Interface), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeReturn([]byte(tt.reply), tt.out)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", reflect.ValueOf(tt.out).Elem())
				}
				return
			}
			if err != nil || !reflect.DeepEqual(tt.out, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", reflect.ValueOf(tt.out).Elem(), err, reflect.ValueOf(tt.want).Elem())
			}
		})
	}
}

// The lenient reference really is lenient where encoding/json is not: the
// same replies fail as a whole there.
func TestEncodingJSONIsStrict(t *testing.T) {
	for _, reply := range []string{
		`[{"name":"eth0","statistics":{"rx-bytes":-1}}]`,
		`[{"logical-id":9223372036854775808,"online":true}]`,
	} {
		var v any
		if strings.HasPrefix(reply, `[{"name"`) {
			v = new([]Interface)
		} else {
			v = new([]VCPU)
		}
		if json.Unmarshal([]byte(reply), v) == nil {
			t.Errorf("encoding/json accepted %s", reply)
		}
		if err := decodeReturn([]byte(reply), v); err != nil {
			t.Errorf("decodeReturn(%s): %v", reply, err)
		}
	}
}

// BenchmarkDecodeSlowReplies compares decodeReturn (hand-written for these
// two) with encoding/json on replies the slow poll brings (guest-info of qemu-ga 7.2,
// the OS), once a minute per guest.
func BenchmarkDecodeSlowReplies(b *testing.B) {
	var info strings.Builder
	info.WriteString(`{"version": "7.2.22", "supported_commands": [`)
	for i, c := range Commands() {
		if i > 0 {
			info.WriteString(", ")
		}
		info.WriteString(`{"enabled": true, "name": "` + c.Name + `", "success-response": true}`)
	}
	info.WriteString("]}")
	os := `{"name": "Debian GNU/Linux", "kernel-release": "6.1.0-28-amd64", "version": "12 (bookworm)", "pretty-name": "Debian GNU/Linux 12 (bookworm)", "version-id": "12", "kernel-version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)", "machine": "x86_64", "id": "debian"}`
	for _, r := range []struct {
		name  string
		reply []byte
		out   func() any
	}{
		{"info", []byte(info.String()), func() any { return new(Info) }},
		{"osinfo", []byte(os), func() any { return new(OSInfo) }},
	} {
		b.Run(r.name+"/decodeReturn", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeReturn(r.reply, r.out()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(r.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := json.Unmarshal(r.reply, r.out()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodePollReplies decodes the replies of a steady-state poll as
// the simulator sends them (testdata/pollreplies): the live items and a
// metrics sample, every few seconds from every guest of a fleet.
func BenchmarkDecodePollReplies(b *testing.B) {
	var (
		cpuBuf  Scratch[CPUStats]
		diskBuf Scratch[DiskStatsInfo]
		ifaces  []Interface // the list before, as the fleet shows it
	)
	if raw, err := os.ReadFile(filepath.Join("testdata", "pollreplies", "guest-network-get-interfaces.json")); err != nil || decodeReturn(raw, &ifaces) != nil {
		b.Fatal("the interfaces reply does not decode")
	}
	for _, r := range []struct {
		cmd string
		out func() any
	}{
		{"guest-get-time", func() any { return new(int64) }},
		{"guest-network-get-interfaces", func() any { return new([]Interface) }},
		{"guest-get-vcpus", func() any { return new([]VCPU) }},
		{"guest-get-cpustats", func() any { return new([]CPUStats) }},
		{"guest-get-diskstats", func() any { return new([]DiskStatsInfo) }},
		// As a fleet decodes them, into storage kept between samples.
		{"guest-network-get-interfaces/since", func() any { return &InterfaceList{Prev: ifaces} }},
		{"guest-get-cpustats/scratch", func() any { return &cpuBuf }},
		{"guest-get-diskstats/scratch", func() any { return &diskBuf }},
	} {
		file, _, _ := strings.Cut(r.cmd, "/")
		reply, err := os.ReadFile(filepath.Join("testdata", "pollreplies", file+".json"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(r.cmd, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeReturn(reply, r.out()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMembersPastTheListGoToReference: an object with more members than
// the duplicate-key list holds is left to the reference decoder rather
// than checked key against key (quadratic: a guest's 4 MiB object of
// distinct keys, some 300,000, was minutes of a core in one poll), and the
// value is still the reference's.
func TestMembersPastTheListGoToReference(t *testing.T) {
	obj := func(n int, first string) string {
		var sb strings.Builder
		sb.WriteString("{" + first)
		for i := range n {
			fmt.Fprintf(&sb, `,"k%d":0`, i)
		}
		return sb.String() + "}"
	}
	tests := []struct {
		name string
		fast func([]byte) bool
		ref  func([]byte) (any, error)
		got  func([]byte) (any, error)
		b    string
	}{
		{"cpustats", func(b []byte) bool { _, ok := decodeCPUStats(b); return ok },
			func(b []byte) (any, error) { var v []CPUStats; err := decodeLenient(b, &v); return v, err },
			func(b []byte) (any, error) { var v Scratch[CPUStats]; err := decodeReturn(b, &v); return v.List, err },
			"[" + obj(40, `"cpu":1,"user":5`) + "]"},
		{"interfaces", func(b []byte) bool { _, ok := decodeInterfaces(b); return ok },
			func(b []byte) (any, error) { var v []Interface; err := decodeLenient(b, &v); return v, err },
			func(b []byte) (any, error) { var v InterfaceList; err := decodeReturn(b, &v); return v.List, err },
			"[" + obj(40, `"name":"eth0"`) + "]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.b)
			if tt.fast(b) {
				t.Fatalf("the hand-written decoder took an object of 41 members")
			}
			want, werr := tt.ref(b)
			got, gerr := tt.got(b)
			if werr != nil || gerr != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v, %v; reference %+v, %v", got, gerr, want, werr)
			}
		})
	}
	// Up to the list's room the hand-written decoder still decodes.
	if _, ok := decodeCPUStats([]byte("[" + obj(30, `"cpu":1`) + "]")); !ok {
		t.Fatalf("an object of 31 members went to the reference")
	}
}

// The lists a fleet keeps until the next refresh hold no room to spare:
// a slow refresh's lists, and an interface list decoded after one before.
func TestKeptListsFit(t *testing.T) {
	fs, ok := decodeFilesystems([]byte(`[{"name": "vda1", "mountpoint": "/", "type": "ext4", "disk": []}]`))
	if !ok || len(fs) != 1 || cap(fs) != 1 {
		t.Errorf("filesystems: %v, len %d cap %d", ok, len(fs), cap(fs))
	}
	disks, ok := decodeDisks([]byte(`[{"name": "/dev/vda", "partition": false}, {"name": "/dev/vda1", "partition": true, "dependencies": ["/dev/vda"]}]`))
	if !ok || len(disks) != 2 || cap(disks) != 2 {
		t.Errorf("disks: %v, len %d cap %d", ok, len(disks), cap(disks))
	}
	users, ok := decodeUsers([]byte(`[{"user": "a", "login-time": 1.5}]`))
	if !ok || len(users) != 1 || cap(users) != 1 {
		t.Errorf("users: %v, len %d cap %d", ok, len(users), cap(users))
	}
	routes, ok := decodeRoutes([]byte(`[]`))
	if !ok || routes == nil || len(routes) != 0 {
		t.Errorf("routes: %v, %#v: want an empty list, not nil", ok, routes)
	}
	ifaces := []byte(`[{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]}, {"name": "eth0"}]`)
	first, ok := decodeInterfacesSince(ifaces, nil)
	if !ok || len(first) != 2 {
		t.Fatalf("interfaces: %v, %d", ok, len(first))
	}
	next, ok := decodeInterfacesSince(ifaces, first)
	if !ok || len(next) != 2 || cap(next) != 2 || cap(next[0].IPAddresses) != 1 {
		t.Errorf("interfaces after a list of two: %v, len %d cap %d, addresses cap %d", ok, len(next), cap(next), cap(next[0].IPAddresses))
	}
	if !reflect.DeepEqual(first, next) {
		t.Errorf("the second decode differs: %+v, %+v", first, next)
	}
	// Addresses as before are the list before's; changed ones are new.
	if &next[0].IPAddresses[0] != &first[0].IPAddresses[0] {
		t.Error("unchanged addresses are not shared with the list before")
	}
	moved := []byte(`[{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.2", "prefix": 8}]}, {"name": "eth0", "ip-addresses": []}]`)
	third, ok := decodeInterfacesSince(moved, next)
	if !ok || len(third) != 2 || third[0].IPAddresses[0].Address != "127.0.0.2" || &third[0].IPAddresses[0] == &next[0].IPAddresses[0] ||
		third[1].IPAddresses == nil || len(third[1].IPAddresses) != 0 {
		t.Errorf("changed addresses: %v, %+v", ok, third)
	}
	if next[0].IPAddresses[0].Address != "127.0.0.1" {
		t.Errorf("the list before changed: %+v", next)
	}
}

// FuzzDigits: the lexer's integers are strconv's, overflow included (the
// check is made only past 19 digits), and what follows a number is left.
func FuzzDigits(f *testing.F) {
	for _, s := range []string{"0", "7", "-0", "-12", "012", "1.5", "1e3", "9999999999999999999", "10000000000000000000",
		"18446744073709551615", "18446744073709551616", "18446744073709551625", "99999999999999999999", "184467440737095516150",
		"-18446744073709551615", "123,", "123]", " 42"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := &lexer{b: []byte(s)}
		neg, v, ok := l.digits()
		t0 := strings.TrimLeft(s, " \t\r\n")
		num := strings.TrimPrefix(t0, "-")
		end := strings.IndexFunc(num, func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(num)
		}
		digits, rest := num[:end], num[end:]
		want, err := strconv.ParseUint(digits, 10, 64)
		wantOK := err == nil && (len(digits) == 1 || digits[0] != '0') &&
			!(len(rest) > 0 && (rest[0] == '.' || rest[0] == 'e' || rest[0] == 'E'))
		if ok != wantOK || ok && (v != want || neg != strings.HasPrefix(t0, "-") || l.i != len(s)-len(rest)) {
			t.Fatalf("%q: %v %d %v at %d; strconv %d, %v", s, neg, v, ok, l.i, want, err)
		}
	})
}
