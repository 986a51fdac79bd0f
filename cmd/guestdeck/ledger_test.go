package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/fleet/ledger"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// sockProxy forwards a unix socket to another; stop drops the channel (the
// listener goes and every connection is cut), start brings it back on the
// same path.
type sockProxy struct {
	path, target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newSockProxy(t *testing.T, target string) *sockProxy {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdp")
	if err != nil {
		t.Fatal(err)
	}
	p := &sockProxy{path: filepath.Join(dir, "p.sock"), target: target}
	t.Cleanup(func() { p.stop(); os.RemoveAll(dir) })
	p.start(t)
	return p
}

func (p *sockProxy) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.l, p.conns = l, map[net.Conn]struct{}{}
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.l != l {
				// Stopped while this one was being accepted: it goes too.
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close(); c.Close() })
			p.wg.Go(func() { io.Copy(c, up); up.Close(); c.Close() })
		}
	})
}

func (p *sockProxy) stop() {
	p.mu.Lock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// started is a guestdeck running in the background.
type started struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	stdout *lockedBuffer
	done   chan struct{}
	err    error
}

func startGD(t *testing.T, args ...string) *started {
	t.Helper()
	return startGDEnv(t, nil, args...)
}

// startGDEnv is startGD with extra environment variables (XDG_STATE_HOME
// for a test's own audit log), as gdEnv.
func startGDEnv(t *testing.T, env []string, args ...string) *started {
	t.Helper()
	cmd := exec.Command(binary, args...)
	st := &started{cmd: cmd, stderr: &lockedBuffer{}, stdout: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = st.stdout, st.stderr
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME=", "NO_COLOR=1"), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { st.err = cmd.Wait(); close(st.done) }()
	t.Cleanup(func() {
		select {
		case <-st.done:
		default:
			cmd.Process.Kill()
			<-st.done
		}
	})
	return st
}

// waitStderr waits until the process's stderr contains sub.
func (st *started) waitStderr(t *testing.T, sub string, d time.Duration) {
	t.Helper()
	wait.For(t, d, func() (bool, string) {
		if strings.Contains(st.stderr.String(), sub) {
			return true, ""
		}
		select {
		case <-st.done:
			if !strings.Contains(st.stderr.String(), sub) {
				t.Fatalf("exited (%v) before saying %q:\n%s%s", st.err, sub, st.stdout.String(), st.stderr.String())
			}
		default:
		}
		return false, fmt.Sprintf("no %q on stderr:\n%s", sub, st.stderr.String())
	})
}

func (st *started) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-st.done:
	case <-time.After(d):
		t.Fatalf("still running after %v:\n%s", d, st.stderr.String())
	}
	if ee, ok := st.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if st.err != nil {
		t.Fatal(st.err)
	}
	return 0
}

// A hold whose channel drops mid-hold and comes back while the thaw is
// being retried ends thawed, with a line per attempt, and exits 0.
func TestHoldSurvivesChannelDrop(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	farm, _ := simFarm(t, 1)
	px := newSockProxy(t, farm.Sockets()[0])
	cfg := fleetFile(t, "", [2]string{"g", "unix:" + px.path})
	gd := startGD(t, "-c", cfg, "run", "--yes", "--hold", "2s", "freeze", "g")
	gd.waitStderr(t, "holding 1 guest(s) frozen", 20*time.Second)
	if !farm.Guests()[0].Frozen() {
		t.Fatal("not frozen during the hold")
	}
	px.stop() // the channel drops during the hold...
	gd.waitStderr(t, "thaw attempt 2 failed", 30*time.Second)
	if !farm.Guests()[0].Frozen() {
		t.Fatal("thawed with the channel down?")
	}
	px.start(t) // ...and comes back while the thaw is retried
	if code := gd.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, gd.stderr.String())
	}
	if farm.Guests()[0].Frozen() {
		t.Fatalf("the guest is still frozen:\n%s", gd.stderr.String())
	}
	errText := gd.stderr.String()
	t.Logf("stderr of the hold:\n%s", errText)
	if !strings.Contains(errText, "guestdeck: g: thaw attempt 1 failed") || !strings.Contains(errText, "thawed g: thawed 1 filesystem") ||
		!strings.Contains(errText, "guest-fsfreeze-status says thawed") || strings.Contains(errText, "STILL FROZEN") {
		t.Errorf("stderr:\n%s", errText)
	}
	if es, err := ledger.Open(filepath.Join(os.Getenv("XDG_STATE_HOME"), "guestdeck")).Load(); err != nil || len(es) != 0 {
		t.Errorf("ledger after the hold: %+v %v", es, err)
	}
}

// kill -9 during `run --hold`: the guest stays frozen (nothing can help
// that), but the next `status` names the orphaned freeze, who left it, since
// when, the promised thaw and the command; `run thaw` clears it.
func TestKilledHoldLeavesOrphan(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	farm, cfg := simFarm(t, 2)
	t0 := time.Now()
	gd := startGD(t, "-c", cfg, "run", "--yes", "--hold", "10m", "freeze", "s0")
	gd.waitStderr(t, "holding 1 guest(s) frozen", 20*time.Second)
	pid := gd.cmd.Process.Pid
	// While it runs, status says who holds the guest and until when.
	if r := gdRun(t, "-c", cfg, "status", "s0"); r.code != 0 ||
		!strings.Contains(r.stdout, "s0: frozen by guestdeck pid "+strconv.Itoa(pid)+" (run --hold), still running; frozen since ") {
		t.Errorf("status during the hold: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if o := status(t, cfg, "s0")["s0"].Orphan; o != nil {
		t.Errorf("an orphan while its guestdeck runs: %+v", o)
	}
	if err := gd.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gd.wait(t, 10*time.Second)
	if !farm.Guests()[0].Frozen() {
		t.Fatal("not frozen after the kill")
	}

	gs := status(t, cfg)
	o := gs["s0"].Orphan
	if o == nil || o.PID != pid || o.Who != "run --hold" || o.Until == nil || o.Since.Before(t0.Add(-time.Second)) ||
		o.Until.Sub(o.Since) < 10*time.Minute-time.Second || o.Until.Sub(o.Since) > 10*time.Minute+time.Second ||
		o.ThawCommand != "guestdeck -c "+cfg+" run thaw s0" {
		t.Fatalf("orphan_freeze of s0: %+v (pid %d)", o, pid)
	}
	if gs["s0"].State != "frozen" || gs["s1"].Orphan != nil {
		t.Errorf("s0 %s, s1 orphan %+v", gs["s0"].State, gs["s1"].Orphan)
	}
	r := gdRun(t, "-c", cfg, "status")
	want := "!!! s0: left FROZEN by guestdeck pid " + strconv.Itoa(pid) + " (run --hold), which is no longer running; frozen since "
	if r.code != 0 || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "thaw promised by ") ||
		!strings.Contains(r.stdout, "!!!   thaw it with: guestdeck -c "+cfg+" run thaw s0") {
		t.Fatalf("status table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "s1: ") {
		t.Errorf("status names s1:\n%s", r.stdout)
	}

	if r := gdRun(t, "-c", cfg, "run", "thaw", "s0"); r.code != 0 || farm.Guests()[0].Frozen() {
		t.Fatalf("run thaw: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if o := status(t, cfg)["s0"].Orphan; o != nil {
		t.Errorf("after run thaw: %+v", o)
	}
	if es, err := ledger.Open(filepath.Join(state, "guestdeck")).Load(); err != nil || len(es) != 0 {
		t.Errorf("ledger after run thaw: %+v %v", es, err)
	}
}

// A corrupt ledger is reported, by path, and does not stop status or a freeze.
func TestCorruptLedgerReported(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	farm, cfg := simFarm(t, 1)
	p := filepath.Join(state, "guestdeck", "ledger.json")
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.WriteFile(p, []byte(`{"version":1,"entries":[{"id":"a","kind":"fre`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := gdRun(t, "-c", cfg, "status", "--json")
	var out []map[string]json.RawMessage
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || len(out) != 1 || string(out[0]["orphan_freeze"]) != "null" {
		t.Fatalf("status on a corrupt ledger: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "freeze ledger "+p+" is corrupt") {
		t.Errorf("stderr does not name the corrupt ledger: %s", r.stderr)
	}
	r = gdRun(t, "-c", cfg, "run", "--yes", "--hold", "100ms", "freeze", "s0")
	if r.code != 0 || farm.Guests()[0].Frozen() || !strings.Contains(r.stderr, "kept as "+p+".corrupt-") {
		t.Fatalf("freeze on a corrupt ledger: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if m, _ := filepath.Glob(p + ".corrupt-*"); len(m) != 1 {
		t.Errorf("corrupt file kept as %v", m)
	}
}

func gdRun(t *testing.T, args ...string) result {
	t.Helper()
	return gd(t, 60*time.Second, args...)
}

// The whole story in a real terminal: `run --hold` is killed with -9 and
// leaves its guest frozen; the dashboard shows the orphan counting down to
// the thaw that was promised, then thaws it itself and says so in the
// event log.
func TestDashboardThawsOrphanE2E(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	farm, cfg := simFarm(t, 2)
	gd := startGD(t, "-c", cfg, "run", "--yes", "--hold", "6s", "freeze", "s0")
	gd.waitStderr(t, "holding 1 guest(s) frozen", 20*time.Second)
	if err := gd.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gd.wait(t, 10*time.Second)
	if !farm.Guests()[0].Frozen() {
		t.Fatal("not frozen after the kill")
	}
	tt := e2eStart(t, "-c", cfg)
	tt.waitFor("s0 as an orphan", func(s string) bool {
		for _, r := range e2eRows(s) {
			if r.name == "s0" && strings.Contains(r.text, "orphan ") {
				return true
			}
		}
		return false
	})
	// The promised thaw passes; the dashboard thaws it (the ledger is read
	// every 5 s) and logs it.
	wait.For(t, e2eWait, func() (bool, string) {
		return !farm.Guests()[0].Frozen(), "the dashboard has not thawed the orphan:\n" + tt.screen()
	})
	tt.keys("e")
	t.Logf("event log:\n%s", tt.waitText("left frozen by guestdeck pid", "orphaned freeze: thawed 1 filesystem"))
	tt.keys("e")
	tt.waitFor("s0 ready, not an orphan", func(s string) bool {
		for _, r := range e2eRows(s) {
			if r.name == "s0" {
				return strings.Contains(r.text, "ready") && !strings.Contains(r.text, "orphan")
			}
		}
		return false
	})
	if farm.Guests()[1].Calls("guest-fsfreeze-thaw") != 0 {
		t.Error("the bystander was sent a thaw")
	}
	// The dashboard's thaw of another process's freeze is in the audit log.
	var auto []string
	audit.Read(filepath.Join(os.Getenv("XDG_STATE_HOME"), "guestdeck", audit.FileName), func(e audit.Entry) error {
		if e.Source == audit.SourceAuto {
			auto = append(auto, e.Phase+" "+e.Action+" "+e.Guests[0].Name+"="+e.Guests[0].Result)
		}
		return nil
	})
	if want := "intent thaw (orphaned freeze) s0=pending,outcome thaw (orphaned freeze) s0=ok"; strings.Join(auto, ",") != want {
		t.Errorf("automatic thaws in the audit log: %q, want %q", auto, want)
	}
}
