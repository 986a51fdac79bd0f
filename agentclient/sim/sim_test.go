package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/wait"
)

func TestReadOnlyCommands(t *testing.T) {
	cfg := DefaultConfig("deb1")
	cfg.Disabled = []string{"guest-set-time"}
	_, sock := startGuest(t, cfg)
	rc := newRaw(t, sock)

	var info agentclient.Info
	rc.call(`{"execute":"guest-info"}`, &info)
	if info.Version != "7.2.22" || len(info.SupportedCommands) != len(commandNames) {
		t.Fatalf("info: %+v", info)
	}
	for _, c := range info.SupportedCommands {
		if c.Enabled != (c.Name != "guest-set-time") {
			t.Errorf("%s enabled=%v", c.Name, c.Enabled)
		}
		if c.SuccessResponse != !(c.Name == "guest-shutdown" || strings.HasPrefix(c.Name, "guest-suspend-")) {
			t.Errorf("%s success-response=%v", c.Name, c.SuccessResponse)
		}
	}
	var host struct {
		Name string `json:"host-name"`
	}
	rc.call(`{"execute":"guest-get-host-name"}`, &host)
	var osi agentclient.OSInfo
	rc.call(`{"execute":"guest-get-osinfo"}`, &osi)
	var tz agentclient.Timezone
	rc.call(`{"execute":"guest-get-timezone"}`, &tz)
	var users []agentclient.User
	rc.call(`{"execute":"guest-get-users"}`, &users)
	var fsi []agentclient.Filesystem
	rc.call(`{"execute":"guest-get-fsinfo"}`, &fsi)
	var ifs []agentclient.Interface
	rc.call(`{"execute":"guest-network-get-interfaces"}`, &ifs)
	var vcpus []agentclient.VCPU
	rc.call(`{"execute":"guest-get-vcpus"}`, &vcpus)
	if host.Name != "deb1" || osi.ID != "debian" || tz.Zone != "UTC" || len(users) != 1 || len(fsi) != 1 ||
		fsi[0].Mountpoint != "/" || len(ifs) != 2 || ifs[1].Statistics == nil || len(vcpus) != 2 {
		t.Errorf("host %v os %+v tz %+v users %+v fs %+v ifs %+v vcpus %+v", host, osi, tz, users, fsi, ifs, vcpus)
	}
	if *vcpus[0].CanOffline || !*vcpus[1].CanOffline {
		t.Errorf("vcpu 0 must not be offlinable, vcpu 1 must: %+v", vcpus)
	}
	var tr agentclient.TrimResponse
	rc.call(`{"execute":"guest-fstrim","arguments":{"minimum":4096}}`, &tr)
	if len(tr.Paths) != 1 || tr.Paths[0].Path != "/" || *tr.Paths[0].Minimum != 4096 {
		t.Errorf("fstrim: %+v", tr)
	}

	// The id member comes back after the return value.
	rc.send(`{"execute":"guest-ping","id":{"n":[1, "x"]}}`)
	if l := rc.mustLine(); l != `{"return": {}, "id": {"n": [1, "x"]}}`+"\n" {
		t.Errorf("id echo: %q", l)
	}
	errCases := []struct{ req, class, desc string }{
		{`{"execute":"guest-x"}`, "CommandNotFound", "The command guest-x has not been found"},
		{`{"execute":"guest-set-time"}`, "CommandNotFound", "Command guest-set-time has been disabled"},
		{`{"execute":"guest-ping","arguments":{"foo":1}}`, "GenericError", "Parameter 'foo' is unexpected"},
		{`{"execute":"guest-sync"}`, "GenericError", "Parameter 'id' is missing"},
		{`{"execute":"guest-sync","arguments":{"id":"x"}}`, "GenericError", "Invalid parameter type for 'id', expected: integer"},
		{`{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"online":true}]}}`, "GenericError", "Parameter 'vcpus[0].logical-id' is missing"},
		{`{"execute":"guest-shutdown","arguments":{"mode":"nap"}}`, "GenericError", "mode is invalid (valid values are: halt|powerdown|reboot"},
		{`[1]`, "GenericError", "QMP input must be a JSON object"},
		{`{"execute":"guest-ping",}`, "GenericError", "JSON parse error, expecting value"},
		{"\x01", "GenericError", "JSON parse error, stray '\x01'"},
	}
	for _, c := range errCases {
		class, desc := rc.callErr(c.req)
		if class != c.class || desc != c.desc {
			t.Errorf("%s: got %s %q, want %s %q", c.req, class, desc, c.class, c.desc)
		}
	}
}

func TestSyncDelimitedAndPipelining(t *testing.T) {
	_, sock := startGuest(t, DefaultConfig("s"))
	c := dial(t, sock)
	// Half a request, then 0xFF flushes it; then a pipelined burst split
	// across writes and whitespace.
	c.Write([]byte(`{"execute":"guest-pi`))
	c.Write([]byte("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":77}}\n {\"execute\":"))
	c.Write([]byte(`"guest-sync","arguments":{"id":5}}{"execute":"guest-ping"}`))
	want := "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"guest-pi\\uFFFD'\"}}\n" +
		"\xff{\"return\": 77}\n{\"return\": 5}\n{\"return\": {}}\n"
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("got %q (%v)\nwant %q", got, err, want)
	}
}

func TestClock(t *testing.T) {
	cfg := DefaultConfig("clk")
	cfg.ClockOffset = time.Hour
	cfg.RTCOffset = -time.Minute
	cfg.ClockDrift = 1 // runs at twice the host's speed
	g, sock := startGuest(t, cfg)
	rc := newRaw(t, sock)
	var ns int64
	rc.call(`{"execute":"guest-get-time"}`, &ns)
	if d := time.Until(time.Unix(0, ns)); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("offset: guest is %v ahead, want ~1h", d)
	}
	a := g.Clock()
	time.Sleep(50 * time.Millisecond)
	if el := g.Clock().Sub(a); el < 95*time.Millisecond {
		t.Errorf("drift: guest advanced %v in 50ms, want ~100ms", el)
	}
	rc.call(`{"execute":"guest-set-time"}`, nil) // from the RTC
	if d := time.Until(g.Clock()); d > -59*time.Second || d < -61*time.Second {
		t.Errorf("set-time from RTC: %v, want ~-1m", d)
	}
	want := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	rc.call(fmt.Sprintf(`{"execute":"guest-set-time","arguments":{"time":%d}}`, want.UnixNano()), nil)
	if d := g.Clock().Sub(want); d < 0 || d > time.Second {
		t.Errorf("set-time: clock %v, want %v", g.Clock(), want)
	}
	if class, desc := rc.callErr(`{"execute":"guest-set-time","arguments":{"time":5000000000000000000}}`); class != "GenericError" || desc != "Invalid time" {
		t.Errorf("bad time: %s %s", class, desc)
	}
}

func TestSetVCPUs(t *testing.T) {
	cfg := DefaultConfig("cpu")
	cfg.VCPUs = []agentclient.VCPU{{LogicalID: 0, Online: true}, {LogicalID: 1, Online: true}, {LogicalID: 2, Online: true}}
	_, sock := startGuest(t, cfg)
	rc := newRaw(t, sock)
	var n int
	rc.call(`{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":2,"online":false},{"logical-id":0,"online":false},{"logical-id":1,"online":false}]}}`, &n)
	if n != 1 {
		t.Errorf("processed %d, want 1 (stops at vCPU 0)", n)
	}
	if _, desc := rc.callErr(`{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":0,"online":false}]}}`); desc != "logical processor #0 can't be offlined" {
		t.Errorf("offline 0: %q", desc)
	}
	if _, desc := rc.callErr(`{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":9,"online":true}]}}`); desc != `open("/sys/devices/system/cpu/cpu9/"): No such file or directory` {
		t.Errorf("unknown vcpu: %q", desc)
	}
	rc.call(`{"execute":"guest-set-vcpus","arguments":{"vcpus":[]}}`, &n)
	if n != 0 {
		t.Errorf("empty list: %d", n)
	}
	var vs []agentclient.VCPU
	rc.call(`{"execute":"guest-get-vcpus"}`, &vs)
	if !vs[0].Online || !vs[1].Online || vs[2].Online {
		t.Errorf("after set: %+v", vs)
	}
}

func TestFrozenRules(t *testing.T) {
	g, sock := startGuest(t, DefaultConfig("fz"))
	rc := newRaw(t, sock)
	var n int
	rc.call(`{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":["/nope"]}}`, &n)
	if n != 0 || g.Frozen() {
		t.Fatalf("freezing nothing: %d, frozen %v", n, g.Frozen())
	}
	rc.call(`{"execute":"guest-fsfreeze-freeze"}`, &n)
	if n != 1 || !g.Frozen() {
		t.Fatalf("freeze: %d frozen %v", n, g.Frozen())
	}
	for _, cmd := range []string{"guest-file-open", "guest-fsfreeze-freeze", "guest-get-osinfo", "guest-shutdown"} {
		class, desc := rc.callErr(`{"execute":"` + cmd + `","arguments":{"path":"/x"}}`)
		if want := "Command " + cmd + " has been disabled: the agent is in frozen state"; class != "CommandNotFound" || desc != want {
			t.Errorf("%s while frozen: %s %q", cmd, class, desc)
		}
	}
	var st string
	rc.call(`{"execute":"guest-fsfreeze-status"}`, &st)
	rc.call(`{"execute":"guest-ping"}`, nil)
	rc.call(`{"execute":"guest-sync","arguments":{"id":1}}`, nil)
	var info agentclient.Info
	rc.call(`{"execute":"guest-info"}`, &info)
	for _, c := range info.SupportedCommands {
		if c.Enabled != agentclient.AllowedWhileFrozen(c.Name) {
			t.Errorf("frozen guest-info: %s enabled=%v", c.Name, c.Enabled)
		}
	}
	// The freeze belongs to the kernel: an agent restart keeps it.
	g.Restart()
	rc = newRaw(t, sock)
	rc.call(`{"execute":"guest-fsfreeze-status"}`, &st)
	if st != "frozen" {
		t.Fatalf("status after restart: %s", st)
	}
	rc.call(`{"execute":"guest-fsfreeze-thaw"}`, &n)
	if n != 1 || g.Frozen() {
		t.Errorf("thaw: %d", n)
	}
	rc.call(`{"execute":"guest-fsfreeze-thaw"}`, &n)
	rc.call(`{"execute":"guest-fsfreeze-status"}`, &st)
	if n != 0 || st != "thawed" {
		t.Errorf("second thaw: %d %s", n, st)
	}
	if g.Calls("guest-fsfreeze-thaw") != 2 || g.Calls("guest-file-open") != 0 {
		t.Errorf("calls: thaw %d, file-open %d", g.Calls("guest-fsfreeze-thaw"), g.Calls("guest-file-open"))
	}
}

func TestFiles(t *testing.T) {
	g, sock := startGuest(t, DefaultConfig("files"))
	rc := newRaw(t, sock)
	var h int64
	rc.call(`{"execute":"guest-file-open","arguments":{"path":"/etc/os-release"}}`, &h)
	if h != 1000 {
		t.Errorf("first handle %d, want 1000", h)
	}
	var rd agentclient.FileRead
	rc.call(`{"execute":"guest-file-read","arguments":{"handle":1000}}`, &rd)
	data, _ := base64.StdEncoding.DecodeString(rd.BufB64)
	if !rd.EOF || rd.Count != len(data) || !strings.HasPrefix(string(data), "PRETTY_NAME=") {
		t.Errorf("read: %+v", rd)
	}
	rc.call(`{"execute":"guest-file-close","arguments":{"handle":1000}}`, nil)

	rc.call(`{"execute":"guest-file-open","arguments":{"path":"/tmp/new","mode":"w+"}}`, &h)
	hs := fmt.Sprint(h)
	var wr agentclient.FileWrite
	rc.call(`{"execute":"guest-file-write","arguments":{"handle":`+hs+`,"buf-b64":"`+b64([]byte("hello world"))+`","count":5}}`, &wr)
	if wr.Count != 5 {
		t.Errorf("write: %+v", wr)
	}
	var sk agentclient.FileSeek
	rc.call(`{"execute":"guest-file-seek","arguments":{"handle":`+hs+`,"offset":1,"whence":"set"}}`, &sk)
	rc.call(`{"execute":"guest-file-read","arguments":{"handle":`+hs+`,"count":2}}`, &rd)
	if sk.Position != 1 || rd.BufB64 != b64([]byte("el")) || rd.EOF {
		t.Errorf("seek %+v read %+v", sk, rd)
	}
	rc.call(`{"execute":"guest-file-flush","arguments":{"handle":`+hs+`}}`, nil)
	rc.call(`{"execute":"guest-file-close","arguments":{"handle":`+hs+`}}`, nil)
	rc.call(`{"execute":"guest-file-open","arguments":{"path":"/tmp/new","mode":"a"}}`, &h)
	rc.call(fmt.Sprintf(`{"execute":"guest-file-write","arguments":{"handle":%d,"buf-b64":"IQ=="}}`, h), nil)
	if _, desc := rc.callErr(fmt.Sprintf(`{"execute":"guest-file-read","arguments":{"handle":%d}}`, h)); desc != "failed to read file: Bad file descriptor" {
		t.Errorf("read of append handle: %q", desc)
	}
	if g.tree.nodes["/tmp/new"] == nil || string(g.tree.nodes["/tmp/new"].data) != "hello!" {
		t.Errorf("file content %q", g.tree.nodes["/tmp/new"].data)
	}
	errCases := []struct{ req, desc string }{
		{`{"execute":"guest-file-open","arguments":{"path":"/nope/x","mode":"w"}}`, "failed to open file '/nope/x' (mode: 'w'): No such file or directory"},
		{`{"execute":"guest-file-open","arguments":{"path":"/etc/shadow"}}`, "failed to open file '/etc/shadow' (mode: 'r'): Permission denied"},
		{`{"execute":"guest-file-open","arguments":{"path":"/etc","mode":"w"}}`, "failed to open file '/etc' (mode: 'w'): Is a directory"},
		{`{"execute":"guest-file-open","arguments":{"path":"/etc/os-release/x","mode":"w"}}`, "failed to open file '/etc/os-release/x' (mode: 'w'): Not a directory"},
		{`{"execute":"guest-file-open","arguments":{"path":"/etc/hosts","mode":"q"}}`, "invalid file open mode 'q'"},
		{`{"execute":"guest-file-read","arguments":{"handle":5}}`, "handle '5' has not been found"},
		{fmt.Sprintf(`{"execute":"guest-file-read","arguments":{"handle":%d,"count":%d}}`, h, 48<<20+1), fmt.Sprintf("value '%d' is invalid for argument count", 48<<20+1)},
		{fmt.Sprintf(`{"execute":"guest-file-write","arguments":{"handle":%d,"buf-b64":"***"}}`, h), "Base64 data contains invalid characters"},
		{fmt.Sprintf(`{"execute":"guest-file-seek","arguments":{"handle":%d,"offset":-1,"whence":0}}`, h), "failed to seek file: Invalid argument"},
		{fmt.Sprintf(`{"execute":"guest-file-seek","arguments":{"handle":%d,"offset":0,"whence":7}}`, h), "invalid whence code 7"},
	}
	for _, c := range errCases {
		if _, desc := rc.callErr(c.req); desc != c.desc {
			t.Errorf("%s: got %q, want %q", c.req, desc, c.desc)
		}
	}
	// An agent restart loses open handles; the counter carries on.
	g.Restart()
	rc = newRaw(t, sock)
	if _, desc := rc.callErr(fmt.Sprintf(`{"execute":"guest-file-close","arguments":{"handle":%d}}`, h)); desc != fmt.Sprintf("handle '%d' has not been found", h) {
		t.Errorf("handle after restart: %q", desc)
	}
	var h2 int64
	rc.call(`{"execute":"guest-file-open","arguments":{"path":"/tmp/new"}}`, &h2)
	if h2 != h+1 {
		t.Errorf("handle after restart %d, want %d", h2, h+1)
	}
}

// execRun runs one guest-exec and returns its final status.
func execRun(t *testing.T, rc *rawConn, req agentclient.ExecRequest) agentclient.ExecStatus {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"execute": "guest-exec", "arguments": req})
	var pid struct{ PID int64 }
	rc.call(string(b), &pid)
	var st agentclient.ExecStatus
	wait.For(t, 10*time.Second, func() (bool, string) {
		st = agentclient.ExecStatus{}
		rc.call(fmt.Sprintf(`{"execute":"guest-exec-status","arguments":{"pid":%d}}`, pid.PID), &st)
		return st.Exited, fmt.Sprintf("process %d has not exited", pid.PID)
	})
	return st
}

func decode(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	return string(b)
}

func TestExecAndListDir(t *testing.T) {
	cfg := DefaultConfig("ex")
	cfg.ExecDuration = 20 * time.Millisecond
	_, sock := startGuest(t, cfg)
	rc := newRaw(t, sock)

	st := execRun(t, rc, agentclient.ListDirRequest("/home/user"))
	if *st.ExitCode != 0 || len(st.ErrData) != 0 {
		t.Fatalf("listdir: %+v", st)
	}
	out := string(st.OutData)
	ents, err := agentclient.ParseListDir([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"..", ".profile", "notes.txt"}) {
		t.Errorf("names %q\n%s", names, out)
	}
	if !strings.HasPrefix(out, "41c0 4096 ") || !ents[0].IsDir() || ents[2].Size != int64(len("remember to patch the fleet\n")) ||
		ents[2].Mode != 0o644 || !ents[2].ModTime.Equal(simEpoch) {
		t.Errorf("entries %+v\n%s", ents, out)
	}
	st = execRun(t, rc, agentclient.ListDirRequest("/nope"))
	if *st.ExitCode != 2 || string(st.ErrData) != "sh: 1: cd: can't cd to /nope\n" {
		t.Errorf("missing dir: %+v", st)
	}
	st = execRun(t, rc, agentclient.ListDirRequest("/"))
	root, _ := agentclient.ParseListDir([]byte(string(st.OutData)))
	if len(root) < 5 || root[0].Name != ".." || root[1].Name != "bin" {
		t.Errorf("root listing %+v", root)
	}

	cases := []struct {
		req       agentclient.ExecRequest
		code      int
		out, errS string
	}{
		{agentclient.ExecRequest{Path: "cat", Arg: []string{"/home/user/notes.txt"}, CaptureOutput: true}, 0, "remember to patch the fleet\n", ""},
		{agentclient.ExecRequest{Path: "/bin/cat", Arg: []string{"/x"}, CaptureOutput: true}, 1, "", "cat: /x: No such file or directory\n"},
		{agentclient.ExecRequest{Path: "cat", InputData: b64([]byte("in")), CaptureOutput: true}, 0, "in", ""},
		{agentclient.ExecRequest{Path: "ls", Arg: []string{"/home/user"}, CaptureOutput: true}, 0, "notes.txt\n", ""},
		{agentclient.ExecRequest{Path: "uname", Arg: []string{"-a"}, CaptureOutput: true}, 0, "Linux ex 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22) x86_64 GNU/Linux\n", ""},
		{agentclient.ExecRequest{Path: "/bin/sh", Arg: []string{"-c", "echo hi there"}, CaptureOutput: true}, 0, "hi there\n", ""},
		{agentclient.ExecRequest{Path: "true"}, 0, "", ""},
		{agentclient.ExecRequest{Path: "/usr/bin/false", CaptureOutput: true}, 1, "", ""},
	}
	for _, c := range cases {
		st := execRun(t, rc, c.req)
		if *st.ExitCode != c.code || string(st.OutData) != c.out || string(st.ErrData) != c.errS {
			t.Errorf("%+v: exit %d out %q err %q", c.req, *st.ExitCode, string(st.OutData), string(st.ErrData))
		}
	}
	// Exact bytes of a status as qemu-ga 7.2 in a VM wrote it for the same
	// exec (cat with input "hello").
	var pid struct{ PID int64 }
	rc.call(`{"execute":"guest-exec","arguments":{"path":"/bin/cat","input-data":"aGVsbG8=","capture-output":true}}`, &pid)
	var l string
	wait.For(t, 10*time.Second, func() (bool, string) {
		rc.send(fmt.Sprintf(`{"execute":"guest-exec-status","arguments":{"pid":%d}}`, pid.PID))
		l = rc.mustLine()
		return strings.Contains(l, `"exited": true`), "cat still running: " + l
	})
	if l != `{"return": {"exitcode": 0, "out-data": "aGVsbG8=", "out-truncated": false, "exited": true}}`+"\n" {
		t.Errorf("exec-status bytes: %q", l)
	}
	rc.call(`{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","true"]}}`, &pid)
	rc.send(fmt.Sprintf(`{"execute":"guest-exec-status","arguments":{"pid":%d}}`, pid.PID))
	if l := rc.mustLine(); l != `{"return": {"exited": false}}`+"\n" {
		t.Errorf("running exec-status bytes: %q", l)
	}
	if _, desc := rc.callErr(`{"execute":"guest-exec","arguments":{"path":"/bin/nope"}}`); desc != "Guest agent command failed, error was 'Failed to execute child process “/bin/nope” (No such file or directory)'" {
		t.Errorf("spawn failure: %q", desc)
	}
	if _, desc := rc.callErr(`{"execute":"guest-exec-status","arguments":{"pid":1}}`); desc != "Invalid parameter 'pid'" {
		t.Errorf("unknown pid: %q", desc)
	}

	cfg.NoExec = true
	_, sock2 := startGuest(t, cfg)
	if _, desc := newRaw(t, sock2).callErr(`{"execute":"guest-exec","arguments":{"path":"true"}}`); desc != "Command guest-exec has been disabled" {
		t.Errorf("NoExec: %q", desc)
	}
}

func TestWindowsGuest(t *testing.T) {
	_, sock := startGuest(t, WindowsConfig("win1"))
	rc := newRaw(t, sock)
	var osi agentclient.OSInfo
	rc.call(`{"execute":"guest-get-osinfo"}`, &osi)
	var users []agentclient.User
	rc.call(`{"execute":"guest-get-users"}`, &users)
	if osi.ID != "mswindows" || users[0].Domain == "" {
		t.Errorf("os %+v users %+v", osi, users)
	}
	var h int64
	rc.call(`{"execute":"guest-file-open","arguments":{"path":"C:\\Windows\\win.ini"}}`, &h)
	if _, desc := rc.callErr(`{"execute":"guest-exec","arguments":{"path":"/bin/sh"}}`); !strings.Contains(desc, "Failed to execute child process") {
		t.Errorf("sh on windows: %q", desc)
	}
	if _, desc := rc.callErr(`{"execute":"guest-suspend-hybrid"}`); desc != "Command guest-suspend-hybrid has been disabled" {
		t.Errorf("hybrid: %q", desc)
	}
}

// noReply checks that nothing arrives on rc within d.
func noReply(t *testing.T, rc *rawConn, d time.Duration) {
	t.Helper()
	if l, err := rc.line(d); err == nil || l != "" {
		t.Fatalf("unexpected reply %q (%v)", l, err)
	}
}

func TestFaultLatencyHangSilent(t *testing.T) {
	g, sock := startGuest(t, DefaultConfig("f"))
	rc := newRaw(t, sock)

	g.SetLatency(80 * time.Millisecond)
	t0 := time.Now()
	rc.call(`{"execute":"guest-ping"}`, nil)
	if d := time.Since(t0); d < 80*time.Millisecond {
		t.Errorf("latency: reply after %v", d)
	}
	g.SetLatency(0)

	g.SetHang(true)
	rc.send(`{"execute":"guest-sync","arguments":{"id":1}}`)
	noReply(t, rc, 100*time.Millisecond)
	g.SetHang(false) // held requests are answered, in order
	if l := rc.mustLine(); l != "{\"return\": 1}\n" {
		t.Errorf("after hang: %q", l)
	}

	g.SetSilent(true)
	rc.send("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":2}}")
	noReply(t, rc, 100*time.Millisecond)
	rc2 := newRaw(t, sock) // waits for the channel; still silent
	g.SetSilent(false)
	rc.send(`{"execute":"guest-sync","arguments":{"id":3}}`)
	if l := rc.mustLine(); l != "{\"return\": 3}\n" {
		t.Errorf("after silence: %q", l)
	}
	_ = rc2
}

func TestFaultDropGarbageStale(t *testing.T) {
	g, sock := startGuest(t, DefaultConfig("f"))
	rc := newRaw(t, sock)

	g.DropMidReply(1)
	rc.send(`{"execute":"guest-sync","arguments":{"id":123456}}`)
	got, err := io.ReadAll(rc.r)
	if err != nil || !strings.HasPrefix("{\"return\": 123456}\n", string(got)) || len(got) == 0 || strings.HasSuffix(string(got), "\n") {
		t.Errorf("cut reply %q (%v)", got, err)
	}
	rc = newRaw(t, sock)
	rc.call(`{"execute":"guest-ping"}`, nil) // the next connection is whole

	g.SetGarbage(true)
	rc.send(`{"execute":"guest-ping"}`)
	if junk := rc.mustLine(); strings.Contains(junk, "return") || !strings.Contains(junk, "garbage") {
		t.Errorf("junk line %q", junk)
	}
	if l := rc.mustLine(); l != "{\"return\": {}}\n" {
		t.Errorf("after junk: %q", l)
	}
	g.SetGarbage(false)

	g.SetStale(true)
	rc.send("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":9}}")
	rest := ""
	for !strings.HasSuffix(rest, "\xff{\"return\": 9}\n") {
		l := rc.mustLine()
		rest += l
	}
	if strings.Count(rest, "\xff") != 2 || !strings.Contains(rest, "JSON parse error") {
		t.Errorf("stale + delimited: %q", rest)
	}
	rc.send(`{"execute":"guest-ping"}`)
	if stale, real := rc.mustLine(), rc.mustLine(); !strings.HasPrefix(stale, `{"return": `) || stale == real || real != "{\"return\": {}}\n" {
		t.Errorf("stale %q real %q", stale, real)
	}
}

func TestRestartDropsConnections(t *testing.T) {
	g, sock := startGuest(t, DefaultConfig("r"))
	rc := newRaw(t, sock)
	rc.call(`{"execute":"guest-ping"}`, nil)
	g.Restart()
	if _, err := rc.line(time.Second); err != io.EOF {
		t.Errorf("after restart: %v, want EOF", err)
	}
	newRaw(t, sock).call(`{"execute":"guest-ping"}`, nil)
}

func TestOneClientAtATime(t *testing.T) {
	_, sock := startGuest(t, DefaultConfig("one"))
	a := newRaw(t, sock)
	a.call(`{"execute":"guest-ping"}`, nil)
	b := newRaw(t, sock)
	b.send(`{"execute":"guest-sync","arguments":{"id":5}}`)
	noReply(t, b, 100*time.Millisecond)
	a.c.Close()
	if l := b.mustLine(); l != "{\"return\": 5}\n" {
		t.Errorf("second client after first left: %q", l)
	}
}

// Waiting clients queue in the kernel, as with the real agent: two wait
// (backlog 1), the next is refused with EAGAIN; ones that hang up while
// waiting are taken in turn and let go, and one that stays keeps what it
// sent (in several writes) for when it is served. Waiting costs the guest
// no goroutine.
func TestWaitingClientsQueue(t *testing.T) {
	_, sock := startGuest(t, DefaultConfig("w"))
	a := newRaw(t, sock)
	a.call(`{"execute":"guest-ping"}`, nil)
	g0 := runtime.NumGoroutine()
	gone, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gone.Write([]byte(`{"execute":"guest-ping"}`))
	gone.Close()
	b := newRaw(t, sock)
	if c, err := net.Dial("unix", sock); !errors.Is(err, syscall.EAGAIN) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("third waiting client: %v, want EAGAIN", err)
	}
	if g1 := runtime.NumGoroutine(); g1 > g0 {
		t.Errorf("goroutines %d -> %d with two clients waiting", g0, g1)
	}
	b.send(`{"execute":"guest-sync","arguments":{"id":7}}`)
	time.Sleep(20 * time.Millisecond) // two separate writes while waiting
	b.send(`{"execute":"guest-sync",`)
	time.Sleep(20 * time.Millisecond)
	b.send(`"arguments":{"id":8}}`)
	noReply(t, b, 100*time.Millisecond)
	a.call(`{"execute":"guest-ping"}`, nil) // the served client is unaffected
	a.c.Close()
	if l := b.mustLine(); l != "{\"return\": 7}\n" {
		t.Errorf("first queued request: %q", l)
	}
	if l := b.mustLine(); l != "{\"return\": 8}\n" {
		t.Errorf("second queued request: %q", l)
	}
	b.call(`{"execute":"guest-ping"}`, nil)
}

func TestShutdownModes(t *testing.T) {
	t.Run("powerdown", func(t *testing.T) {
		g, sock := startGuest(t, DefaultConfig("p"))
		rc := newRaw(t, sock)
		rc.send(`{"execute":"guest-shutdown"}`)
		if l, err := rc.line(time.Second); err != io.EOF || l != "" {
			t.Errorf("want EOF and no reply, got %q %v", l, err)
		}
		if m, ok := g.ShutdownMode(); !ok || m != "powerdown" {
			t.Errorf("mode %q %v", m, ok)
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			t.Error("guest still accepts connections after powering off")
		}
	})
	t.Run("reboot", func(t *testing.T) {
		cfg := DefaultConfig("rb")
		cfg.RebootDelay = 150 * time.Millisecond
		g, sock := startGuest(t, cfg)
		rc := newRaw(t, sock)
		rc.send(`{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}{"execute":"guest-ping"}`)
		noReply(t, rc, 100*time.Millisecond)
		time.Sleep(60 * time.Millisecond)
		rc.call(`{"execute":"guest-ping"}`, nil)
		if m, _ := g.ShutdownMode(); m != "reboot" {
			t.Errorf("mode %q", m)
		}
	})
	t.Run("halt and suspend-ram stay silent", func(t *testing.T) {
		for _, req := range []string{`{"execute":"guest-shutdown","arguments":{"mode":"halt"}}`, `{"execute":"guest-suspend-ram"}`} {
			g, sock := startGuest(t, DefaultConfig("h"))
			rc := newRaw(t, sock)
			rc.send(req + `{"execute":"guest-ping"}`)
			noReply(t, rc, 100*time.Millisecond)
			g.Restart() // wakes the guest
			newRaw(t, sock).call(`{"execute":"guest-ping"}`, nil)
		}
	})
	t.Run("suspend-ram wakes on the same connection", func(t *testing.T) {
		for _, mode := range []string{"ram", "hybrid"} {
			g, sock := startGuest(t, DefaultConfig("w"))
			if g.Wake() {
				t.Errorf("%s: Wake woke a guest that was not asleep", mode)
			}
			rc := newRaw(t, sock)
			rc.send(`{"execute":"guest-suspend-` + mode + `"}{"execute":"guest-get-host-name"}`)
			noReply(t, rc, 100*time.Millisecond)
			if !g.Wake() {
				t.Fatalf("%s: Wake found the guest not asleep", mode)
			}
			// What it was sent while asleep is answered, in order, on the
			// connection it had: then it answers as before.
			if l := rc.mustLine(); !strings.Contains(l, `"host-name"`) {
				t.Errorf("%s: after the wake-up got %q, want the host name asked while asleep", mode, l)
			}
			rc.call(`{"execute":"guest-ping"}`, nil)
			if m, down := g.ShutdownMode(); down {
				t.Errorf("%s: still down (%q) after the wake-up", mode, m)
			}
		}
	})
	t.Run("a halted guest does not wake", func(t *testing.T) {
		g, sock := startGuest(t, DefaultConfig("hw"))
		rc := newRaw(t, sock)
		rc.send(`{"execute":"guest-shutdown","arguments":{"mode":"halt"}}`)
		noReply(t, rc, 100*time.Millisecond)
		if g.Wake() {
			t.Error("Wake woke a halted guest")
		}
		rc.send(`{"execute":"guest-ping"}`)
		noReply(t, rc, 100*time.Millisecond)
	})
	t.Run("unsupported suspend", func(t *testing.T) {
		cfg := DefaultConfig("ns")
		cfg.NoSuspend = true
		g, sock := startGuest(t, cfg)
		if _, desc := newRaw(t, sock).callErr(`{"execute":"guest-suspend-disk"}`); desc != "the requested suspend mode is not supported by the guest" {
			t.Errorf("got %q", desc)
		}
		if _, ok := g.ShutdownMode(); ok {
			t.Error("guest went down")
		}
	})
}

func TestConcurrentKnobsAndClients(t *testing.T) {
	g, sock := startGuest(t, DefaultConfig("cc"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // toggle knobs while clients run
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			g.SetLatency(time.Duration(i%3) * time.Millisecond)
			g.SetStale(i%2 == 0)
			g.SetGarbage(i%5 == 0)
			_ = g.Frozen()
			_ = g.Calls("guest-ping")
			_ = g.Clock()
			time.Sleep(time.Millisecond)
		}
	}()
	// Three: one served and two waiting is all the socket's queue takes
	// (a fourth is refused with EAGAIN, as by the real agent). The first is
	// dialled and answered before the others dial, so that it has left the
	// queue: three dialling at once could find all three places taken.
	conns := make([]net.Conn, 3)
	for w := range conns {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("client %d: %v", w, err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		conns[w] = c
		if w == 0 {
			fmt.Fprintf(c, "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":7}}")
			want, got := []byte("\xff{\"return\": 7}\n"), []byte{}
			tmp := make([]byte, 512)
			for !bytes.Contains(got, want) {
				n, err := c.Read(tmp)
				if err != nil {
					t.Fatalf("client 0's first sync: %v after %q", err, got)
				}
				got = append(got, tmp[:n]...)
			}
		}
	}
	for w, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close() // the next one in the queue is served then
			for i := range 20 {
				id := w*1000 + i
				fmt.Fprintf(c, "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%d}}{\"execute\":\"guest-get-vcpus\"}", id)
				want := []byte(fmt.Sprintf("\xff{\"return\": %d}\n", id))
				var buf []byte
				tmp := make([]byte, 512)
				for !bytes.Contains(buf, want) || !bytes.Contains(buf[bytes.Index(buf, want):], []byte("logical-id")) {
					n, err := c.Read(tmp)
					if err != nil {
						t.Errorf("client %d: %v after %q", w, err, buf)
						return
					}
					buf = append(buf, tmp[:n]...)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
}

func TestTreeModes(t *testing.T) {
	cfg := DefaultConfig("t")
	cfg.Files = map[string]File{"/a/b/c.txt": {Data: "x"}, "/a/link": {Mode: fs.ModeSymlink | 0o777}}
	g := New(cfg)
	tr := g.files()
	if n := tr.nodes["/a/b"]; n == nil || !n.mode.IsDir() {
		t.Fatal("implied parent directory missing")
	}
	var out, errOut bytes.Buffer
	listDir(g, "/a", &out, &errOut)
	ents, err := agentclient.ParseListDir(out.Bytes())
	if err != nil || len(ents) != 3 || ents[2].Mode&fs.ModeSymlink == 0 {
		t.Errorf("%+v %v\n%s", ents, err, out.String())
	}
}

func TestLargeRead(t *testing.T) {
	cfg := DefaultConfig("big")
	big := strings.Repeat("0123456789abcdef", 1<<20) // 16 MiB
	cfg.Files = map[string]File{"/big": {Data: big}}
	_, sock := startGuest(t, cfg)
	rc := newRaw(t, sock)
	var h int64
	rc.call(`{"execute":"guest-file-open","arguments":{"path":"/big"}}`, &h)
	t0 := time.Now()
	rc.send(fmt.Sprintf(`{"execute":"guest-file-read","arguments":{"handle":%d,"count":%d}}`, h, 48<<20))
	line := rc.mustLine()
	t.Logf("16 MiB read on the wire in %v", time.Since(t0))
	var rep struct{ Return agentclient.FileRead }
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatal(err)
	}
	rd := rep.Return
	if rd.Count != len(big) || !rd.EOF || decode(rd.BufB64) != big {
		t.Errorf("read %d bytes eof %v", rd.Count, rd.EOF)
	}
}

// A guest's own error texts and extra command names come through exactly,
// escapes and all: the presentation layer above is what makes them safe.
func TestFailAndExtraCommands(t *testing.T) {
	cfg := DefaultConfig("bad1")
	const desc = "disk on fire\x1b]52;c;cm0gLXJmIH4=\x07\u202e"
	cfg.Fail = map[string]string{"guest-get-fsinfo": desc}
	cfg.ExtraCommands = []string{"guest-\x1b[2Jevil"}
	_, sock := startGuest(t, cfg)
	rc := newRaw(t, sock)
	if class, got := rc.callErr(`{"execute":"guest-get-fsinfo"}`); class != "GenericError" || got != desc {
		t.Errorf("guest-get-fsinfo: %s %q, want GenericError %q", class, got, desc)
	}
	var info agentclient.Info
	rc.call(`{"execute":"guest-info"}`, &info)
	last := info.SupportedCommands[len(info.SupportedCommands)-1]
	if len(info.SupportedCommands) != len(commandNames)+1 || last.Name != cfg.ExtraCommands[0] || !last.Enabled {
		t.Errorf("guest-info lists %d commands, last %+v", len(info.SupportedCommands), last)
	}
}
