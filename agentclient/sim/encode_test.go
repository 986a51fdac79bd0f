package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
)

// The one-pass encoder (encode.go) must write exactly what the encoder it
// replaced wrote (refEncode, encode_ref_test.go): that one is proven against
// the real agent by the conformance tests, this one is proven against it.

func encodeNew(v any) []byte {
	var p sync.Pool
	e := getEncoder(&p)
	e.value(v)
	return bytes.Clone(e.out)
}

func encodeRef(v any) []byte {
	var b bytes.Buffer
	refEncode(&b, v)
	return b.Bytes()
}

// runDirect does what dispatch does with req up to the reply, and returns
// the reply's key ("return" or "error"), value and id: so both encoders can
// be given the very value the guest would encode. ok is false for commands
// that reply nothing.
func runDirect(t *testing.T, g *Guest, req string) (key string, val, id any, ok bool) {
	t.Helper()
	var msgs []message
	var st streamer
	st.feed([]byte(req+"\n"), func(m message) { msgs = append(msgs, m) })
	if len(msgs) == 0 {
		t.Fatalf("%s: no message", req)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	fail := func(e *agentclient.Error) (string, any, any, bool) {
		return "error", &object{keys: []string{"class", "desc"}, vals: []any{e.Class, e.Desc}}, id, true
	}
	if msgs[0].err != "" {
		return fail(genericf("%s", msgs[0].err))
	}
	obj, isObj := msgs[0].val.(*object)
	if !isObj {
		return fail(genericf("QMP input must be a JSON object"))
	}
	id, _ = obj.get("id")
	nv, _ := obj.get("execute")
	name, _ := nv.(string)
	argv, _ := obj.get("arguments")
	argObj, _ := argv.(*object)
	cmd, found := g.lookup(name)
	if !found {
		return fail(&agentclient.Error{Class: "CommandNotFound", Desc: "The command " + name + " has not been found"})
	}
	if _, off := g.disabledReason(name); off {
		return fail(&agentclient.Error{Class: "CommandNotFound", Desc: "Command " + name + " has been disabled"})
	}
	a, aerr := checkArgs("", cmd.fields, argObj)
	if aerr != nil {
		return fail(aerr)
	}
	if desc, bad := g.cfg.Fail[name]; bad {
		return fail(genericf("%s", desc))
	}
	ret, err := cmd.run(g, a)
	if err != nil {
		return fail(err)
	}
	if !agentclient.SuccessResponse(name) {
		return "", nil, nil, false
	}
	return "return", ret, id, true
}

// hostileText is a set of strings every escape path of both encoders meets.
var hostileText = []string{
	"", "plain", `quote " and backslash \ and slash /`, "\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f",
	Hostile, "caf\u00e9 \u00ff \u0100 \u20ac \U0001F600 \U0010FFFF", "\u2028\u2029",
	"<script>&amp;</script>", "bad \xff\xfe utf8 \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 end\xe2\x82",
	"\ufffd\ufeff\u200d", strings.Repeat("long\u00e9\x01", 20000),
}

// hostileConfigs are guests whose every reported string is each hostile text.
func hostileConfigs() []Config {
	cfgs := []Config{DefaultConfig("default"), HostileConfig("hostile"), WindowsConfig("windows")}
	for i, h := range hostileText {
		c := HostileConfig("h")
		c.Hostname = h
		c.AgentVersion = "7.2.22"
		c.OS = agentclient.OSInfo{KernelRelease: h, KernelVersion: h, Machine: h, ID: h, Name: h, PrettyName: h, Version: h, VersionID: h, Variant: h, VariantID: h}
		c.Timezone = agentclient.Timezone{Zone: h, Offset: []int{math.MinInt32, -1, 0, 3600, math.MaxInt32}[i%5]}
		c.Users = []agentclient.User{{User: h, Domain: h, LoginTime: []float64{0, 0.1, 1e20, 1e21, 5e-324, math.MaxFloat64, -1.5, 1767322245.5, math.Copysign(0, -1)}[i%9]}}
		c.Interfaces = append(c.Interfaces, agentclient.Interface{Name: h, HardwareAddress: h, IPAddresses: []agentclient.IPAddress{{Address: h, Type: h, Prefix: i}}},
			agentclient.Interface{Name: h + "2", IPAddresses: []agentclient.IPAddress{}, Statistics: &agentclient.InterfaceStats{RxBytes: math.MaxUint64, TxBytes: math.MaxInt64, RxErrs: 1 << 63}})
		c.Filesystems = append(c.Filesystems, agentclient.Filesystem{Name: h, Mountpoint: h, Type: h, UsedBytes: u64p(math.MaxUint64), TotalBytes: u64p(0),
			Disk: []agentclient.DiskAddress{{BusType: h, Dev: h, Serial: h}}}, agentclient.Filesystem{Name: h, Disk: []agentclient.DiskAddress{}})
		c.ExtraCommands = []string{h}
		c.Fail = map[string]string{"guest-fstrim": h, "guest-get-disks": h}
		cfgs = append(cfgs, c)
	}
	c := DefaultConfig("empty")
	c.Users, c.Filesystems, c.Interfaces, c.OS, c.Timezone = nil, []agentclient.Filesystem{}, []agentclient.Interface{}, agentclient.OSInfo{}, agentclient.Timezone{}
	return append(cfgs, c)
}

// replyRequests is every command the simulator serves, called the way a
// client calls it, with a few ids; handles and pids are the ones the
// guest hands out in this order (1000..., 4000...).
func replyRequests() []string {
	reqs := []string{
		`{"execute":"guest-sync","arguments":{"id":123456789}}`,
		`{"execute":"guest-sync-delimited","arguments":{"id":-9223372036854775808}}`,
		`{"execute":"guest-file-open","arguments":{"path":"/etc/os-release"}}`,
		`{"execute":"guest-file-read","arguments":{"handle":1000,"count":7}}`,
		`{"execute":"guest-file-read","arguments":{"handle":1000}}`,
		`{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":3,"whence":"set"}}`,
		`{"execute":"guest-file-close","arguments":{"handle":1000}}`,
		`{"execute":"guest-file-open","arguments":{"path":"/tmp/enc","mode":"w+"}}`,
		`{"execute":"guest-file-write","arguments":{"handle":1001,"buf-b64":"aGVsbG8gd29ybGQ="}}`,
		`{"execute":"guest-file-flush","arguments":{"handle":1001}}`,
		`{"execute":"guest-file-seek","arguments":{"handle":1001,"offset":0,"whence":0}}`,
		`{"execute":"guest-file-read","arguments":{"handle":1001}}`,
		`{"execute":"guest-file-read","arguments":{"handle":99}}`,
		`{"execute":"guest-file-open","arguments":{"path":"/etc/shadow"}}`,
		`{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","echo hi; echo err >&2"],"capture-output":true}}`,
		`{"execute":"guest-exec-status","arguments":{"pid":4000}}`,
		`{"execute":"guest-exec","arguments":{"path":"/bin/ls","arg":["-la","/"],"capture-output":true}}`,
		`{"execute":"guest-exec-status","arguments":{"pid":4001}}`,
		`{"execute":"guest-exec","arguments":{"path":"/bin/cat","input-data":"AAEC/w==","capture-output":true}}`,
		`{"execute":"guest-exec-status","arguments":{"pid":4002}}`,
		`{"execute":"guest-exec","arguments":{"path":"/nonexistent"}}`,
		`{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":1,"online":false}]}}`,
		`{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"user"}}`,
		`{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":["/"]}}`,
		`{"execute":"guest-fsfreeze-status"}`,
		`{"execute":"guest-fsfreeze-thaw"}`,
		`{"execute":"guest-fstrim","arguments":{"minimum":0}}`,
		`{"execute":"guest-nonexistent","id":"x"}`,
		`{"execute":"guest-info","arguments":{"bogus":1}}`,
		`{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[{"phys-index":1,"online":false}]}}`,
		`{"execute":"guest-get-memory-blocks"}`,
		`["not","an","object"]`,
		"{\"execute\":\"guest-ping\x01\"}", // a lexer error first
		`{"execute":1}`,
	}
	fixed := len(reqs)
	for name := range commands {
		if len(commands[name].fields) == 0 || !slices.ContainsFunc(commands[name].fields, func(f field) bool { return !f.opt }) {
			if name == "guest-shutdown" || strings.HasPrefix(name, "guest-suspend") {
				continue // the guest would go down
			}
			reqs = append(reqs, `{"execute":"`+name+`"}`)
		}
	}
	slices.Sort(reqs[fixed:]) // map order: the ids go to the same requests each run
	ids := []string{``, `,"id":1`, `,"id":"abc\u0000\"\\\u00e9\ud83d\ude00"`, `,"id":-0`, `,"id":1.5e300`, `,"id":18446744073709551615`,
		`,"id":{"b":[1,2.5,null,true,false,{}],"a":{"nested":[[]]},"z":"\u2028"}`, `,"id":[]`, `,"id":'single \' "quoted"'`}
	var out []string
	for i, r := range reqs {
		if id := ids[i%len(ids)]; id != "" && strings.HasSuffix(r, "}") && strings.HasPrefix(r, "{") {
			r = r[:len(r)-1] + id + "}"
		}
		out = append(out, r)
	}
	return out
}

// TestReplyEncodeMatchesReference encodes every reply of every command for
// default, Windows and hostile guests with both encoders.
func TestReplyEncodeMatchesReference(t *testing.T) {
	compared := 0
	for _, cfg := range hostileConfigs() {
		g := New(cfg)
		for _, req := range replyRequests() {
			key, val, id, ok := runDirect(t, g, req)
			if !ok {
				continue
			}
			g.mu.Lock()
			got := g.reply(key, val, id)
			g.mu.Unlock()
			if want := refReply(key, val, id); !bytes.Equal(got, want) {
				t.Errorf("%s: %s\n got %.300q\nwant %.300q", cfg.Name, req, got, want)
			}
			compared++
		}
	}
	if compared < 400 {
		t.Errorf("only %d replies compared", compared)
	}
}

// rawJSON is a custom MarshalJSON: whatever it returns (if valid) goes
// through encoding/json's compaction into the encoder.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

type floats struct {
	F32 float32 `json:"f32"`
	F64 float64 `json:"f64"`
	I   int     `json:"i"`
	U   uint64  `json:"u"`
	I8  int8    `json:"i8"`
}

// TestEncodeValuesMatchReference covers the values no command returns
// today but a Go value may hold: numbers at the edges of float64 and
// int64, custom JSON with what the one-pass rewrite hands to the general
// path (duplicate keys, surrogate escapes, invalid UTF-8, deep nesting).
func TestEncodeValuesMatchReference(t *testing.T) {
	// Beyond the agent's nesting limit the reference respaces the text as it
	// is: the number then keeps encoding/json's spelling.
	deep := strings.Repeat("[", 1100) + "0.1" + strings.Repeat("]", 1100)
	deepObj := strings.Repeat(`{"a":`, 1030) + "1" + strings.Repeat("}", 1030)
	vals := []any{
		nil, true, false, 0, -1, int64(math.MinInt64), int64(math.MaxInt64), uint64(math.MaxUint64), uint64(1 << 63),
		0.1, math.Copysign(0, -1), 1e20, 1e21, 1e-7, 5e-324, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1),
		float32(0.1), float32(3.4e38), floats{0.1, 1e-300, -7, math.MaxUint64, -128}, []floats{{}, {1, 2, 3, 4, 5}},
		struct{}{}, []int{}, []string(nil), map[string]any{}, map[string]any{"": "", "a": map[string]any{"b": []any{}}},
		map[string]int{"zeta": 1, "alpha": 2, "id": 3, "return": 4, "error": 5, "count": 6, "buf-b64": 7, "eof": 8},
		agentclient.FileRead{Count: 3, BufB64: "YWJj", EOF: true}, agentclient.FileRead{},
		[]any{agentclient.FileRead{Count: 1}, &object{keys: []string{"x", "y"}, vals: []any{int64(1), "two"}}},
		&object{keys: []string{"x", "x"}, vals: []any{int64(1), int64(2)}},
		json.RawMessage(`{"a":1,"a":2}`), json.RawMessage(`{"a":1,"b":{"c":1,"c":2}}`), json.RawMessage(`"\ud83d\ude00 \ud800 \udc00x"`),
		json.RawMessage("\"invalid \xff\xfe utf8\""), json.RawMessage("\"\xc3\x28\""), json.RawMessage(`"\/ \u00e9 \u001B \u007f"`),
		json.RawMessage(`-0`), json.RawMessage(`-0.0`), json.RawMessage(`1E400`), json.RawMessage(`-1e-400`), json.RawMessage(`123456789012345678901234567890`),
		json.RawMessage(`[0,-0,1,10,999999999999999999,1000000000000000000,9223372036854775807,9223372036854775808,-9223372036854775808,-9223372036854775809]`),
		json.RawMessage(` { "spaced" : [ 1 , 2 ] } `), json.RawMessage(deep), json.RawMessage(deepObj),
		rawJSON(`{"b":1,"a":2}`), rawJSON("\"\xed\xa0\x80\""), rawJSON(`{"k\u0000ey":1,"k\"":2,"\u00e9":3}`),
		map[string]string{"\x00": "nul", "\xff": "bad", "\u2028": "ls", "<>&": "html", `"\`: "qb"},
	}
	for _, h := range hostileText {
		vals = append(vals, h, []string{h, h}, map[string]string{h: h}, struct {
			S string  `json:"s"`
			P *string `json:"p,omitempty"`
		}{h, &h})
	}
	for i, v := range vals {
		if got, want := encodeNew(v), encodeRef(v); !bytes.Equal(got, want) {
			t.Errorf("value %d (%T): got %.300q\nwant %.300q", i, v, got, want)
		}
	}
}

// TestQdictOrderMatchesReference: dispatch's key order, hashed once.
func TestQdictOrderMatchesReference(t *testing.T) {
	sets := [][]string{nil, {"a"}, {"execute", "arguments", "id"}, {"id", "return"}, {"return", "id"}, {"error", "id"}}
	var many []string
	for i := range 600 {
		many = append(many, strings.Repeat("k", i%7)+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		sets = append(sets, slices.Clone(many[:min(len(many), 3+i%40)]))
	}
	sets = append(sets, many, append(slices.Clone(many), many...))
	for _, keys := range sets {
		if got, want := qdictOrder(keys), refQdictOrder(keys); !slices.Equal(got, want) {
			t.Errorf("%d keys: got %v, want %v", len(keys), got, want)
		}
	}
}

// fuzzValue builds a Go value from fuzz input: the value types replies are
// made of, nested.
type fuzzValue struct {
	b     []byte
	long  int // long strings made so far: two at most, so one input stays quick
	nodes int // values made so far: past 500, only scalars
}

func (f *fuzzValue) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *fuzzValue) u64() uint64 {
	var x [8]byte
	n := copy(x[:], f.b)
	f.b = f.b[n:]
	return binary.LittleEndian.Uint64(x[:])
}

func (f *fuzzValue) str() string {
	n := int(f.byte())
	if n == 255 && f.long < 2 { // a long one, up to 128 KiB
		f.long++
		n = int(f.byte())*300 + 1
		s := f.str()
		return strings.Repeat(s, min(n, (1<<17)/max(len(s), 1)))
	}
	n = min(n%64, len(f.b))
	s := string(f.b[:n])
	f.b = f.b[n:]
	return s
}

func (f *fuzzValue) value(depth int) any {
	op := f.byte()
	if f.nodes++; depth > 8 || f.nodes > 500 {
		op %= 3
	}
	switch op % 16 {
	case 0:
		return f.str()
	case 1:
		return int64(f.u64())
	case 2:
		return math.Float64frombits(f.u64())
	case 3:
		m := map[string]any{}
		for n := f.byte() % 8; n > 0; n-- {
			m[f.str()] = f.value(depth + 1)
		}
		return m
	case 4:
		var a []any
		for n := f.byte() % 8; n > 0; n-- {
			a = append(a, f.value(depth+1))
		}
		return a
	case 5:
		return f.u64()
	case 6:
		return f.byte()%2 == 0
	case 7:
		return nil
	case 8:
		if s := f.str(); json.Valid([]byte(s)) {
			return json.RawMessage(s)
		}
		return nullValue{}
	case 9:
		return agentclient.Interface{Name: f.str(), HardwareAddress: f.str(), IPAddresses: []agentclient.IPAddress{{Address: f.str(), Type: f.str(), Prefix: int(int8(f.byte()))}},
			Statistics: &agentclient.InterfaceStats{RxBytes: f.u64(), TxDropped: f.u64()}}
	case 10:
		o := &object{}
		for n := f.byte() % 8; n > 0; n-- {
			o.keys = append(o.keys, f.str())
			o.vals = append(o.vals, f.value(depth+1))
		}
		return o
	case 11:
		return agentclient.User{User: f.str(), Domain: f.str(), LoginTime: math.Float64frombits(f.u64()) / 1e300}
	case 12:
		return floats{float32(math.Float64frombits(f.u64())), float64(int64(f.u64())) / 1024, int(int64(f.u64())), f.u64(), int8(f.byte())}
	case 13:
		return agentclient.FileRead{Count: int(int32(f.u64())), BufB64: f.str(), EOF: f.byte()%2 == 0}
	case 14:
		return []agentclient.Filesystem{{Name: f.str(), Mountpoint: f.str(), UsedBytes: u64p(f.u64()), Disk: []agentclient.DiskAddress{{Serial: f.str()}}}}
	default:
		return struct {
			A any    `json:"a"`
			B string `json:"b,omitempty"`
			C any    `json:"c,omitempty"`
		}{f.value(depth + 1), f.str(), f.value(depth + 1)}
	}
}

// FuzzEncodeMatchesReference compares the encoders on Go values built from
// the input and on whatever the agent's parser makes of the input itself
// (a request's id is echoed as parsed), and unquote with the old one on the
// input as a literal.
func FuzzEncodeMatchesReference(f *testing.F) {
	for _, s := range []string{
		"", "\x00", "\x03\x05\x00abcde\x01\x02\x03\x04\x05\x06\x07\x08",
		"\x03\x03\x02id\x07\x06return\x00\x01x\x05error\x01\x01\x02\x03\x04\x05\x06\x07\x08",
		"\x09\x04eth0\x1152:54:00:12:34:56\x09192.0.2.1\x04ipv4\x18",
		"\x0b\x04root\x03\xff\xfe\x01\x00\x00\x00\x00\x00\xd0\x41",
		"\x00\xff\x03\x05\xe2\x80\xa8\"\\\x1b",
		"\x08\x0d{\"a\":1,\"a\":2}", "\x08\x07\"\\ud800\"", "\x0f\x00\x03a\"\\\x02\x3f\xf0\x00\x00\x00\x00\x00\x00",
		`{"execute":"guest-info","id":{"b":[1,2.5,null],"a":"\u00e9\ud83d\ude00"}}`, `[1e400,-0,18446744073709551616,'x\'y']`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fv := &fuzzValue{b: data}
		v := fv.value(0)
		if got, want := encodeNew(v), encodeRef(v); !bytes.Equal(got, want) {
			t.Fatalf("value %#v:\n got %.400q\nwant %.400q", v, got, want)
		}
		var st streamer
		check := func(m message) {
			if m.val == nil {
				return
			}
			if got, want := encodeNew(m.val), encodeRef(m.val); !bytes.Equal(got, want) {
				t.Fatalf("parsed %q:\n got %.400q\nwant %.400q", data, got, want)
			}
		}
		st.feed(data, check)
		st.feed([]byte{'\n'}, check)
		// The agent's parser, unquote's fast path and all, against the old one.
		var got, want []string
		show := func(out *[]string) func(message) {
			return func(m message) {
				if m.val == nil {
					*out = append(*out, "error: "+m.err)
					return
				}
				*out = append(*out, string(encodeRef(m.val)))
			}
		}
		var ns streamer
		var rs refStreamer
		ns.feed(data, show(&got))
		rs.feed(data, show(&want))
		if !slices.Equal(got, want) {
			t.Fatalf("parsing %q:\n got %.400q\nwant %.400q", data, got, want)
		}
		// unquote on its own, on what the lexer would not hand it too.
		for _, lit := range []string{`"` + string(data) + `"`, `'` + string(data) + `'`, string(data)} {
			if len(lit) < 2 {
				continue // the lexer never makes one: both would panic
			}
			got, gok := unquote(lit)
			want, wok := refUnquote(lit)
			if got != want || gok != wok {
				t.Fatalf("unquote(%q) = %q, %v; was %q, %v", lit, got, gok, want, wok)
			}
		}
	})
}

// BenchmarkReplyEncode is each representative reply encoded by the
// reference encoder and by the one-pass encoder, on a default guest.
func BenchmarkReplyEncode(b *testing.B) {
	g := New(DefaultConfig("bench"))
	for _, name := range []string{"guest-info", "guest-network-get-interfaces", "guest-get-fsinfo", "guest-get-osinfo", "guest-get-cpustats", "guest-get-time"} {
		g.mu.Lock()
		val, err := commands[name].run(g, args{})
		g.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		id := int64(42)
		b.Run(name+"/ref", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				refReply("return", val, id)
			}
		})
		b.Run(name+"/new", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.mu.Lock()
				g.reply("return", val, id)
				g.mu.Unlock()
			}
		})
	}
}
