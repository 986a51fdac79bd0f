package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// serve starts a peer in a short directory (unix socket paths are limited)
// and stops it when the test ends.
func serve(t *testing.T, mode Mode, opts ...Option) *Peer {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdh")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Serve(context.Background(), filepath.Join(dir, "a.sock"), mode, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		os.RemoveAll(dir)
	})
	return p
}

func dial(t *testing.T, p *Peer, opts ...agentclient.Option) *agentclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := agentclient.Dial(ctx, p.Addr(), opts...)
	if err != nil {
		t.Fatalf("dial %s peer: %v", p.Mode(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// record is one exchange with the real qemu-ga 7.2.22 (agentclient/sim's
// recording); strings hold raw bytes as runes U+0000..U+00FF.
type record struct {
	Request string `json:"request"`
	Reply   string `json:"reply"`
}

func latin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// TestWireMatchesRealAgent replays requests sent to the real agent whose
// replies do not depend on the machine, and compares the healthy peer's
// answers byte for byte: the sync with 0xFF (the parse error first, then the
// delimited reply), echoed ids, pipelined requests, refusals.
func TestWireMatchesRealAgent(t *testing.T) {
	f, err := os.Open("../../../agentclient/sim/testdata/real-qga-7.2.22.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]bool{
		"\u00ff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":12345}}": true,
		`{"execute":"guest-sync","arguments":{"id":42}}`:                            true,
		`{"execute":"guest-sync-delimited","arguments":{"id":9}}`:                   true,
		`{"execute":"guest-ping"}`:                                                  true,
		`{"execute":"guest-ping","id":"abc"}`:                                       true,
		`{"execute":"guest-ping","id":7}`:                                           true,
		`{"execute":"guest-ping","arguments":{}}`:                                   true,
		`  {"execute":"guest-ping"}  `:                                              true,
		`{"execute":"guest-x"}`:                                                     true,
		`{"execute":"guest-set-time","arguments":{"time":1}}`:                       true,
		`{"execute":"guest-fsfreeze-freeze"}`:                                       true,
		`{"execute":"guest-shutdown"}`:                                              true,
		`{"execute":"guest-exec","arguments":{"path":"/bin/true"}}`:                 true,
		`{"execute":"guest-sync"}`:                                                  true,
		`{"execute":"guest-ping"}{"execute":"guest-sync","arguments":{"id":3}}`:     true,
	}
	p := serve(t, Healthy)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	seen := 0
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if !want[r.Request] {
			continue
		}
		delete(want, r.Request)
		seen++
		got := exchange(t, p, latin1(r.Request), len(latin1(r.Reply)))
		if !bytes.Equal(got, latin1(r.Reply)) {
			t.Errorf("%q:\n got %q\nwant %q", r.Request, got, latin1(r.Reply))
		}
	}
	if len(want) > 0 {
		t.Errorf("requests not in the recording: %v", want)
	}
	if seen == 0 {
		t.Fatal("replayed nothing")
	}
}

// exchange sends req on a fresh connection and reads n bytes of reply.
func exchange(t *testing.T, p *Peer, req []byte, n int) []byte {
	t.Helper()
	c, err := net.Dial("unix", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("%q: read %d bytes: %v (got %q)", req, n, err, got)
	}
	return got
}

// TestIDsEchoed: a request's id comes back in its reply, before "error" and
// after "return" (the agent's member order), also for the delimited sync.
func TestIDsEchoed(t *testing.T) {
	p := serve(t, Escapes)
	for _, tc := range []struct{ req, reply string }{
		{"\xff" + `{"execute":"guest-sync-delimited","arguments":{"id":77},"id":"gdx-1"}` + "\n",
			`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}` + "\n\xff" + `{"return": 77, "id": "gdx-1"}` + "\n"},
		{`{"execute":"guest-get-time","id":"gdx-2"}`, ""},
		{`{"execute":"guest-no-such","id":"gdx-3"}`, `{"id": "gdx-3", "error": {"class": "CommandNotFound", "desc": "The command guest-no-such has not been found"}}` + "\n"},
		{`{"execute":"guest-set-time","id":"gdx-4"}`, `{"id": "gdx-4", "error": {"class": "CommandNotFound", "desc": "Command guest-set-time has been disabled"}}` + "\n"},
	} {
		if tc.reply == "" {
			c, err := net.Dial("unix", p.Path())
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Write([]byte(tc.req))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil || !strings.HasPrefix(line, `{"return": `) || !strings.HasSuffix(line, `, "id": "gdx-2"}`+"\n") {
				t.Errorf("%s: %q %v", tc.req, line, err)
			}
			continue
		}
		if got := exchange(t, p, []byte(tc.req), len(tc.reply)); string(got) != tc.reply {
			t.Errorf("%s:\n got %q\nwant %q", tc.req, got, tc.reply)
		}
	}
}

func TestSplitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string // messages, and "!desc" for parse errors
	}{
		{"pipelined", []string{`{"a":1}{"b":[2]}` + "\n"}, []string{`{"a":1}`, `{"b":[2]}`}},
		{"split across reads", []string{`{"execute":`, `"guest-ping"`, `}`}, []string{`{"execute":"guest-ping"}`}},
		{"braces in strings", []string{`{"a":"}{\"]"}`}, []string{`{"a":"}{\"]"}`}},
		{"0xFF flushes a half message", []string{`{"execute":"gue`, "\xff", `{"x":1}`}, []string{"!" + strayFF, `{"x":1}`}},
		{"0xFF in a string", []string{`{"a":"x` + "\xff" + `"}{"b":1}`}, []string{"!" + strayFF, "!JSON parse error, stray '\"'", `{"b":1}`}},
		{"stray bytes once per run", []string{"junk {\"a\":1}"}, []string{"!JSON parse error, stray 'j'", `{"a":1}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s splitter
			var got []string
			for _, c := range tc.chunks {
				s.feed([]byte(c), func(m []byte) { got = append(got, string(m)) }, func(d string) { got = append(got, "!"+d) })
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestEscapes reads every hostile field through agentclient: what it decodes
// is exactly Text(field).
func TestEscapes(t *testing.T) {
	p := serve(t, Escapes)
	c := dial(t, p)
	ctx := ctx10(t)
	check := func(field, got string) {
		t.Helper()
		if want := Text(field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	hn, err := c.Hostname(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(FieldHostname, hn)
	if !strings.Contains(hn, "\uFFFD\uFFFD") {
		t.Errorf("host name %q lacks the decoded raw bytes", hn)
	}
	// On the wire the raw bytes come early: a log that keeps a reply's
	// first bytes only still has them.
	line := exchange(t, p, []byte(`{"execute":"guest-get-host-name"}`), 80)
	if !bytes.Contains(line, []byte(rawC1)) || !bytes.Contains(line, []byte("\u202e")) {
		t.Errorf("host-name reply starts %q: want the raw bytes in its first 80", line)
	}
	osi, err := c.OSInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{FieldOSName: osi.Name, FieldOSPrettyName: osi.PrettyName, FieldOSVersion: osi.Version,
		FieldOSVersionID: osi.VersionID, FieldOSKernelRelease: osi.KernelRelease, FieldOSKernelVersion: osi.KernelVersion,
		FieldOSMachine: osi.Machine, FieldOSID: osi.ID, FieldOSVariant: osi.Variant, FieldOSVariantID: osi.VariantID} {
		check(f, v)
	}
	ifs, err := c.Interfaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 2 || len(ifs[1].IPAddresses) != 1 {
		t.Fatalf("interfaces %+v", ifs)
	}
	check(FieldIfaceName, ifs[1].Name)
	check(FieldIfaceMAC, ifs[1].HardwareAddress)
	check(FieldIfaceIP, ifs[1].IPAddresses[0].Address)
	us, err := c.Users(ctx)
	if err != nil || len(us) != 1 {
		t.Fatalf("users %+v %v", us, err)
	}
	check(FieldUser, us[0].User)
	check(FieldUserDomain, us[0].Domain)
	tz, err := c.Timezone(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(FieldZone, tz.Zone)
	fs, err := c.FSInfo(ctx)
	if err != nil || len(fs) != 1 || len(fs[0].Disk) != 1 {
		t.Fatalf("fsinfo %+v %v", fs, err)
	}
	check(FieldFSName, fs[0].Name)
	check(FieldFSMountpoint, fs[0].Mountpoint)
	check(FieldFSType, fs[0].Type)
	check(FieldDiskSerial, fs[0].Disk[0].Serial)
	check(FieldDiskDev, fs[0].Disk[0].Dev)
	check(FieldDiskBusType, fs[0].Disk[0].BusType)
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(FieldAgentVersion, info.Version)
	var names []string
	for _, ci := range info.SupportedCommands {
		names = append(names, ci.Name)
	}
	if !slices.Contains(names, Text(FieldCommand)) || !slices.Contains(names, Text(FieldCommandOff)) || !slices.Contains(names, "guest-exec") {
		t.Errorf("guest-info commands %q", names)
	}

	var ae *agentclient.Error
	if err := c.Ping(ctx); !errors.As(err, &ae) || ae.Desc != Text(FieldErrorDesc) || ae.Class != Text(FieldErrorClass) {
		t.Errorf("ping: %v, want the hostile error", err)
	}
	if _, err := c.FileOpen(ctx, "/etc/shadow", "r"); !errors.As(err, &ae) || ae.Desc != Text(FieldErrorDesc) {
		t.Errorf("file-open: %v, want the hostile error", err)
	}

	ents, err := agentclient.ListDir(ctx, c, "/")
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, e := range ents {
		got = append(got, e.Name)
	}
	for _, e := range DirEntries() {
		if !strings.Contains(e.Name, "/") { // a name no file can have is dropped
			want = append(want, e.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("listing:\n got %q\nwant %q", got, want)
	}
	if _, err := agentclient.ListDir(ctx, c, "/etc"); err == nil || !strings.Contains(err.Error(), "exec.err-data") {
		t.Errorf("listing /etc: %v, want the hostile stderr", err)
	}
	var b bytes.Buffer
	if _, err := agentclient.ReadFile(ctx, c, "/"+FileName, &b, agentclient.FileOptions{}); err != nil || b.String() != FileContent {
		t.Errorf("read %s: %v, %q", FileName, err, b.String())
	}
}

// TestHuge: the huge reply is one line of exactly the configured size, and
// a client with a smaller limit refuses it and stays in step.
func TestHuge(t *testing.T) {
	const size = 3 << 20
	p := serve(t, Huge, WithHugeSize(size))
	c, err := net.Dial("unix", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(`{"execute":"guest-get-osinfo","id":"h1"}`))
	line, err := bufio.NewReaderSize(c, 64<<10).ReadBytes('\n')
	if err != nil || len(line) != size || !bytes.HasSuffix(line, []byte(`, "id": "h1"}`+"\n")) {
		t.Fatalf("huge line: %d bytes (want %d), %v, ends %q", len(line), size, err, line[max(len(line)-40, 0):])
	}
	var v struct {
		Return agentclient.OSInfo `json:"return"`
	}
	if err := json.Unmarshal(line, &v); err != nil || len(v.Return.PrettyName) < size-400 || v.Return.Name != "Debian GNU/Linux" {
		t.Errorf("huge osinfo: %v, pretty-name %d bytes", err, len(v.Return.PrettyName))
	}

	for _, cmd := range []string{"guest-get-host-name", "guest-info", "guest-network-get-interfaces", "guest-get-fsinfo", "guest-get-vcpus", "guest-get-users", "guest-get-timezone", "guest-get-time"} {
		q := serve(t, Huge, WithHugeSize(1<<20), WithHugeCommand(cmd))
		cl := dial(t, q, agentclient.WithMaxReply(256<<10))
		_, err := cl.Raw(ctx10(t), []byte(`{"execute":"`+cmd+`"}`))
		if !errors.Is(err, agentclient.ErrTooLarge) {
			t.Errorf("%s with a 256 KiB limit: %v, want ErrTooLarge", cmd, err)
		}
		if err := cl.Ping(ctx10(t)); err != nil {
			t.Errorf("%s: ping after the huge reply: %v", cmd, err)
		}
		if n := q.BytesSent(); n < 1<<20 {
			t.Errorf("%s: peer sent %d bytes, want the whole 1 MiB", cmd, n)
		}
		// Without a caller's limit the command's own holds (agentclient's
		// command table): the reply passes only where 1 MiB fits it.
		big := dial(t, q)
		_, err = big.Raw(ctx10(t), []byte(`{"execute":"`+cmd+`"}`))
		c, _ := agentclient.Lookup(cmd)
		if fits := 1<<20 <= c.MaxReply; fits != (err == nil) || (!fits && !errors.Is(err, agentclient.ErrTooLarge)) {
			t.Errorf("%s with its own %d-byte limit: %v", cmd, c.MaxReply, err)
		}
	}
}

// TestSlow: slow-poll items wait the delay; others answer at once; a caller
// whose timeout is shorter than the delay times out.
func TestSlow(t *testing.T) {
	const delay = 400 * time.Millisecond
	p := serve(t, Slow, WithSlowDelay(delay))
	c := dial(t, p)
	start := time.Now()
	if _, err := c.OSInfo(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < delay {
		t.Errorf("osinfo answered after %v, before the %v delay", d, delay)
	}
	short, cancel := context.WithTimeout(context.Background(), delay/4)
	defer cancel()
	if _, err := c.Hostname(short); !agentclient.IsTimeout(err) {
		t.Errorf("host name within %v: %v, want a timeout", delay/4, err)
	}
	if err := c.Ping(ctx10(t)); err != nil {
		t.Errorf("ping: %v", err)
	}
}

// TestNoEOF: reads return data and never eof, past the size seek reports.
func TestNoEOF(t *testing.T) {
	p := serve(t, NoEOF, WithNoEOF(1000, 0, 4096))
	c := dial(t, p)
	ctx := ctx10(t)
	h, err := c.FileOpen(ctx, "/var/log/endless", "r")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.FileSeek(ctx, h, 0, agentclient.SeekEnd); err != nil || s.Position != 4096 {
		t.Errorf("seek end: %+v %v, want position 4096", s, err)
	}
	c.FileSeek(ctx, h, 0, agentclient.SeekSet)
	total := 0
	for range 10 {
		r, err := c.FileRead(ctx, h, 4096)
		if err != nil || r.EOF || r.Count != 1000 {
			t.Fatalf("read: %+v %v, want 1000 bytes and no eof", r, err)
		}
		total += r.Count
	}
	if total <= 4096 {
		t.Errorf("read %d bytes, not past the reported size", total)
	}
	if err := c.FileClose(ctx, h); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestNumbers: the out-of-range numbers are on the wire as written.
func TestNumbers(t *testing.T) {
	p := serve(t, Numbers)
	c := dial(t, p)
	get := func(cmd string) any {
		t.Helper()
		r, err := c.Raw(ctx10(t), []byte(`{"execute":"`+cmd+`"}`))
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		d := json.NewDecoder(bytes.NewReader(r))
		d.UseNumber()
		var v struct {
			Return any `json:"return"`
		}
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%s: %v in %s", cmd, err, r)
		}
		return v.Return
	}
	ifs := get("guest-network-get-interfaces").([]any)
	eth := ifs[1].(map[string]any)
	st := eth["statistics"].(map[string]any)
	addr := eth["ip-addresses"].([]any)[0].(map[string]any)
	if st["rx-bytes"] != json.Number("-1") || st["tx-bytes"] != json.Number("18446744073709551616") || addr["prefix"] != json.Number("999") || eth["hardware-address"] != NumbersMAC {
		t.Errorf("interfaces: %v", eth)
	}
	vc := get("guest-get-vcpus").([]any)
	if vc[1].(map[string]any)["logical-id"] != json.Number("9223372036854775808") {
		t.Errorf("vcpus: %v", vc)
	}
	if u := get("guest-get-users").([]any); u[0].(map[string]any)["login-time"] != json.Number("1e400") {
		t.Errorf("users: %v", u)
	}
	if hn, err := c.Hostname(ctx10(t)); err != nil || hn != DefaultName {
		t.Errorf("host name %q %v: its strings are sound", hn, err)
	}
}

// TestGarbage: the garbage peer answers even the sync with noise, the same
// noise for the same seed.
func TestGarbage(t *testing.T) {
	p := serve(t, Garbage, WithSeed(7))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if c, err := agentclient.Dial(ctx, p.Addr()); err == nil {
		c.Close()
		t.Fatal("dial of the garbage peer succeeded")
	} else if !errors.Is(err, agentclient.ErrMalformed) {
		t.Errorf("dial: %v, want ErrMalformed", err)
	}
	q := serve(t, Garbage, WithSeed(7))
	read := func(p *Peer) []byte {
		c, err := net.Dial("unix", p.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte(`{"execute":"guest-ping"}`))
		b, _ := bufio.NewReader(c).ReadBytes('\n')
		return b
	}
	// Connection numbers differ (the first peer served the dial): compare
	// each peer's first connection.
	a := read(q)
	r := serve(t, Garbage, WithSeed(7))
	if b := read(r); !bytes.Equal(a, b) || len(a) < 16 {
		t.Errorf("same seed, different noise: %d and %d bytes", len(a), len(b))
	}
}

// TestCloseEndsDelayedAnswers: Close returns while a slow answer and a
// huge one to a client that does not read are pending.
func TestCloseEndsDelayedAnswers(t *testing.T) {
	dir, _ := os.MkdirTemp("/tmp", "gdh")
	defer os.RemoveAll(dir)
	for _, mode := range []Mode{Slow, Huge} {
		p, err := Serve(context.Background(), filepath.Join(dir, string(mode)+".sock"), mode, WithSlowDelay(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("unix", p.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(`{"execute":"guest-get-osinfo"}`))
		// The request is read on the peer's goroutine: wait until it was.
		wait.For(t, 10*time.Second, func() (bool, string) {
			return p.Calls("guest-get-osinfo") > 0, string(mode) + ": the peer has not read the request"
		})
		done := make(chan error, 1)
		go func() { done <- p.Close() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: Close hung", mode)
		}
	}
	// A cancelled context closes the peer too.
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Serve(ctx, filepath.Join(dir, "ctx.sock"), Healthy)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	p.Close()
	if _, err := net.Dial("unix", p.Path()); err == nil {
		t.Error("the peer still accepts after its context ended")
	}
}
