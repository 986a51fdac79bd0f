package testpeers

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// rawAgent speaks the agent protocol directly, so these tests do not depend
// on agentclient (which is tested against these peers, not the other way round).
type rawAgent struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, sock string) *rawAgent {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	t.Cleanup(func() { c.Close() })
	a := &rawAgent{t: t, c: c, r: bufio.NewReader(c)}
	a.sync()
	return a
}

// sync sends 0xFF + guest-sync-delimited and discards everything up to the
// matching delimited reply.
func (a *rawAgent) sync() {
	a.t.Helper()
	id := rand.Int64N(1 << 53)
	a.c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(a.c, "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%d}}\n", id)
	if _, err := a.r.ReadBytes(0xff); err != nil {
		a.t.Fatalf("sync: waiting for 0xFF: %v", err)
	}
	for {
		line, err := a.r.ReadBytes('\n')
		if err != nil {
			a.t.Fatalf("sync: %v", err)
		}
		var rep struct{ Return int64 }
		if json.Unmarshal(bytes.TrimLeft(line, "\xff"), &rep) == nil && rep.Return == id {
			return
		}
	}
}

// call runs one command and decodes its return value into out (may be nil).
func (a *rawAgent) call(name string, args any, out any) {
	a.t.Helper()
	req := map[string]any{"execute": name}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	a.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := a.c.Write(append(b, '\n')); err != nil {
		a.t.Fatalf("%s: %v", name, err)
	}
	line, err := a.r.ReadBytes('\n')
	if err != nil {
		a.t.Fatalf("%s: %v", name, err)
	}
	var rep struct {
		Return json.RawMessage
		Error  *struct{ Class, Desc string }
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		a.t.Fatalf("%s: reply %q: %v", name, line, err)
	}
	if rep.Error != nil {
		a.t.Fatalf("%s: %s: %s", name, rep.Error.Class, rep.Error.Desc)
	}
	if out != nil {
		if err := json.Unmarshal(rep.Return, out); err != nil {
			a.t.Fatalf("%s: return %s: %v", name, rep.Return, err)
		}
	}
}

func (a *rawAgent) ping() {
	a.t.Helper()
	var r map[string]any
	a.call("guest-ping", nil, &r)
	if len(r) != 0 {
		a.t.Fatalf("guest-ping returned %v, want {}", r)
	}
}

// readFile reads a whole (small) file through guest-file-open/read/close.
func (a *rawAgent) readFile(path string) string {
	a.t.Helper()
	var h int64
	a.call("guest-file-open", map[string]any{"path": path, "mode": "r"}, &h)
	defer a.call("guest-file-close", map[string]any{"handle": h}, nil)
	var r struct {
		Count  int
		BufB64 string `json:"buf-b64"`
	}
	a.call("guest-file-read", map[string]any{"handle": h, "count": 4096}, &r)
	b, err := base64.StdEncoding.DecodeString(r.BufB64)
	if err != nil {
		a.t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func TestStartAgents(t *testing.T) {
	ag := StartAgents(t, 2)
	if len(ag.Sockets) != 2 || len(ag.PIDs) != 2 {
		t.Fatalf("got %d sockets, %d pids, want 2", len(ag.Sockets), len(ag.PIDs))
	}
	for _, s := range ag.Sockets {
		if len(s) >= 108 {
			t.Errorf("socket path %q too long for sun_path", s)
		}
		a := dialRaw(t, s)
		a.ping()
		a.c.Close() // the agent serves one client at a time
	}
	// The agents run as another user; Writable must be writable by them.
	a := dialRaw(t, ag.Sockets[0])
	path := filepath.Join(ag.Writable, "note.txt")
	var h int64
	a.call("guest-file-open", map[string]any{"path": path, "mode": "w"}, &h)
	a.call("guest-file-write", map[string]any{"handle": h, "buf-b64": base64.StdEncoding.EncodeToString([]byte("hi\n"))}, nil)
	a.call("guest-file-close", map[string]any{"handle": h}, nil)
	if got, err := os.ReadFile(path); err != nil || string(got) != "hi\n" {
		t.Fatalf("file written by the agent: %q, %v", got, err)
	}
	if got := a.readFile(path); got != "hi\n" {
		t.Fatalf("read back through the agent: %q", got)
	}
}

func TestBootVM(t *testing.T) {
	vm := BootVM(t, "gd-tp-boot")
	if !vm.Alive() {
		t.Fatal("qemu not running after boot")
	}
	a := dialRaw(t, vm.Socket)
	a.ping()
	var host struct {
		HostName string `json:"host-name"`
	}
	a.call("guest-get-host-name", nil, &host)
	if host.HostName != vm.Name {
		t.Errorf("guest host name %q, want %q", host.HostName, vm.Name)
	}
	if got := a.readFile(HelloPath); got != HelloContent {
		t.Errorf("%s = %q, want %q", HelloPath, got, HelloContent)
	}
	// guest-shutdown has no reply; the qemu process must then exit by itself.
	fmt.Fprintf(a.c, `{"execute":"guest-shutdown"}`+"\n")
	if err := vm.WaitExit(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestPool(t *testing.T) {
	p := NewPool()
	defer p.Close()
	vm := p.VM(t, "gd-tp-pool")
	if again := p.VM(t, "gd-tp-pool"); again != vm {
		t.Fatal("second Pool.VM call booted another VM")
	}
	dialRaw(t, vm.Socket).ping()
	vm.Kill()
	if vm.Alive() {
		t.Fatal("Kill left qemu running")
	}
	re := p.VM(t, "gd-tp-pool")
	if re == vm || !re.Alive() {
		t.Fatal("a dead pooled VM was not booted again")
	}
	dialRaw(t, re.Socket).ping()
	p.Close()
	if re.Alive() {
		t.Fatal("Pool.Close left qemu running")
	}
	if _, err := os.Stat(re.Dir); !os.IsNotExist(err) {
		t.Errorf("Pool.Close left %s: %v", re.Dir, err)
	}
}

func TestStartLibvirtTest(t *testing.T) {
	lt := StartLibvirtTest(t)
	lv := lt.Connect(t)
	doms, _, err := lv.ConnectListAllDomains(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range doms {
		names = append(names, d.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "test") {
		t.Fatalf("test:///default domains %v, want the built-in \"test\"", names)
	}

	// Kill drops the connection; Restart serves the same socket again.
	old := lt.PID
	lt.Kill()
	select {
	case <-lv.Disconnected():
	case <-time.After(10 * time.Second):
		t.Fatal("connection still up after Kill")
	}
	lt.Restart(t)
	if lt.PID == old || !alive(lt.PID) {
		t.Fatalf("after Restart pid %d (was %d), alive %v", lt.PID, old, alive(lt.PID))
	}
	if _, _, err := lt.Connect(t).ConnectListAllDomains(1, 0); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}

func TestStartLibvirtQEMU(t *testing.T) {
	l := StartLibvirtQEMU(t)
	pid := l.DefineGuest(t, "gd-tp-lv")
	if !alive(pid) {
		t.Fatalf("qemu pid %d not running", pid)
	}
	if s := l.AgentSocket("gd-tp-lv"); s == "" {
		t.Error("no agent channel socket under", l.Dir)
	}
	lv := l.Connect(t)
	dom, err := lv.DomainLookupByName("gd-tp-lv")
	if err != nil {
		t.Fatal(err)
	}
	state, _, err := lv.DomainGetState(dom, 0)
	if err != nil || libvirt.DomainState(state) != libvirt.DomainRunning {
		t.Fatalf("domain state %d, %v; want running", state, err)
	}
	res, err := lv.QEMUDomainAgentCommand(dom, `{"execute":"guest-ping"}`, 30, 0)
	if err != nil || len(res) == 0 || !strings.Contains(res[0], `"return"`) {
		t.Fatalf("guest-ping through libvirt: %v, %v", res, err)
	}
}

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		what []string
		want string // substring of the message; "" = nothing missing
	}{
		{[]string{"sh"}, ""},
		{[]string{"gd-no-such-tool"}, "apt-get install gd-no-such-tool, or run ./scripts/test.sh"},
		{[]string{"sh", "gd-no-such-tool", "gd-nor-this"}, "gd-no-such-tool missing; gd-nor-this missing"},
	} {
		got := missing(tc.what...)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("missing(%q) = %q, want %q", tc.what, got, tc.want)
		}
	}
	// In CI, scripts/test.sh must have installed every peer.
	if inCI() {
		if msg := missing(NeedShared, NeedQemuGA, NeedQEMU, NeedLibvirtd, NeedVirsh, NeedLibvirtQEMU,
			NeedPython, NeedTmux, NeedBusyboxStatic, NeedGuestImage); msg != "" {
			t.Errorf("CI: %s", msg)
		}
	}
}
