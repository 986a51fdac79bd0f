package testpeers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// Libvirt is a private session-mode libvirtd with the real QEMU driver
// (start-libvirt-qemu.sh), reachable only on Socket. Domains it runs are tiny
// TCG guests (DefineGuest) with the real agent.
type Libvirt struct {
	Dir    string // short directory under /tmp holding all of the daemon's state
	Socket string // Dir/run/libvirt-sock
	URI    string // "qemu:///session", the URI to open over Socket
	PID    int    // libvirtd

	// virshURI addresses the daemon for virsh.
	virshURI string
}

// StartLibvirtQEMU starts a session libvirtd and stops it (destroying its
// domains first) when the test ends.
func StartLibvirtQEMU(t testing.TB) *Libvirt {
	t.Helper()
	Require(t, NeedShared, NeedLibvirtd, NeedVirsh, NeedLibvirtQEMU, NeedQEMU)
	// Agent channel sockets live deep under DIR; start-libvirt-qemu.sh checks
	// they fit in 108 bytes, which leaves room for /tmp/gdlNNNNNNNNNN only.
	dir, err := os.MkdirTemp("/tmp", "gdl")
	if err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	l := &Libvirt{Dir: dir, Socket: filepath.Join(dir, "run", "libvirt-sock"), URI: string(libvirt.QEMUSession)}
	l.virshURI = "qemu+unix:///session?socket=" + l.Socket
	stopScript, err := tool("libvirt-qemu/stop-libvirt-qemu.sh")
	if err != nil {
		report(t, err.Error())
	}
	// Set up the watchdog before the daemon exists: stop-libvirt-qemu.sh finds
	// it through its pid file, and then the qemu processes it left.
	stopGuard := guard("bash " + shellQuote(stopScript) + " " + shellQuote(dir) + " >/dev/null 2>&1; " +
		`for f in ` + shellQuote(dir) + `/xdg-run/libvirt/qemu/run/*.pid; do [ -f "$f" ] && q=$(cat "$f") && ` +
		`[ "$(cat /proc/$q/comm 2>/dev/null)" = ` + commQEMU + ` ] && kill "$q"; done; sleep 1; rm -rf ` + shellQuote(dir))
	t.Cleanup(func() {
		l.stop(t)
		stopGuard()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := runTool(ctx, "libvirt-qemu/start-libvirt-qemu.sh",
		[]string{"CAPS_CACHE_DIR=" + filepath.Join(CacheDir(), "libvirt-caps"), "LIBVIRTD_WAIT=120"}, dir)
	if err != nil {
		t.Fatalf("testpeers: starting libvirtd (qemu:///session): %v", err)
	}
	if l.PID, err = lastInt(out); err != nil {
		t.Fatalf("testpeers: start-libvirt-qemu.sh output %q: %v", out, err)
	}
	t.Logf("testpeers: libvirtd (qemu:///session) pid %d ready in %.1fs on %s", l.PID, time.Since(start).Seconds(), l.Socket)
	return l
}

// KillDaemon kills libvirtd with SIGKILL, as a crash would. Its QEMU guests
// keep running (libvirtd never stops them when it exits); every client
// connection drops. StartDaemon brings it back.
func (l *Libvirt) KillDaemon(t testing.TB) {
	t.Helper()
	if alive(l.PID) && comm(l.PID) == commLibvirtd {
		_ = syscall.Kill(l.PID, syscall.SIGKILL)
	}
	if !waitGone(l.PID, 10*time.Second) {
		t.Fatalf("testpeers: libvirtd pid %d survived SIGKILL", l.PID)
	}
	// A killed daemon may stay a zombie (kill -0 succeeds on it), and the
	// start script would then refuse: "already running".
	_ = os.Remove(filepath.Join(l.Dir, "run", "libvirtd.pid"))
}

// StartDaemon starts libvirtd again on the same Dir and Socket after
// KillDaemon; it reconnects to the guests that kept running.
func (l *Libvirt) StartDaemon(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := runTool(ctx, "libvirt-qemu/start-libvirt-qemu.sh",
		[]string{"CAPS_CACHE_DIR=" + filepath.Join(CacheDir(), "libvirt-caps"), "LIBVIRTD_WAIT=120"}, l.Dir)
	if err != nil {
		t.Fatalf("testpeers: restarting libvirtd (qemu:///session): %v", err)
	}
	if l.PID, err = lastInt(out); err != nil {
		t.Fatalf("testpeers: start-libvirt-qemu.sh output %q: %v", out, err)
	}
}

// stop tears the daemon down: its domains, the daemon, any qemu left over.
func (l *Libvirt) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := runTool(ctx, "libvirt-qemu/stop-libvirt-qemu.sh", nil, l.Dir); err != nil {
		t.Logf("testpeers: %v", err)
	}
	if l.PID > 0 {
		if err := stopPID(l.PID, commLibvirtd, 10*time.Second); err != nil {
			t.Errorf("testpeers: %v", err)
		}
	}
	pids, _ := filepath.Glob(filepath.Join(l.Dir, "xdg-run", "libvirt", "qemu", "run", "*.pid"))
	for _, f := range pids {
		if pid, err := readPID(f); err == nil {
			if err := stopPID(pid, commQEMU, 5*time.Second); err != nil {
				t.Errorf("testpeers: %v", err)
			}
		}
	}
	_ = os.RemoveAll(l.Dir)
}

var domainName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,12}$`)

// DefineGuest defines and starts the persistent domain name (1-12 of
// [A-Za-z0-9_-]) running the test guest, waits until libvirt reports its
// agent connected and answering, and returns the qemu PID. The domain is
// destroyed and undefined when the test ends.
func (l *Libvirt) DefineGuest(t testing.TB, name string) int {
	t.Helper()
	Require(t, NeedGuestImage)
	if !domainName.MatchString(name) {
		t.Fatalf("testpeers: domain name %q: want 1-12 of [A-Za-z0-9_-] (agent socket path limit)", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout()+time.Minute)
	defer cancel()
	guestDir, err := EnsureGuest(ctx)
	if err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// destroy fails harmlessly when the guest already stopped (shutdown tests).
		_ = l.virsh(ctx, "destroy", name)
		if err := l.virsh(ctx, "undefine", name); err != nil && !strings.Contains(err.Error(), "failed to get domain") {
			t.Logf("testpeers: %v", err)
		}
	})
	start := time.Now()
	out, err := runTool(ctx, "libvirt-qemu/define-guest.sh", []string{
		"TIMEOUT=" + strconv.Itoa(int(vmTimeout().Seconds())),
		"VCPUS=" + strconv.Itoa(envInt(EnvVMSMP, 2)),
		"MEM=" + strconv.Itoa(envInt(EnvVMMem, 256)),
	}, l.Dir, name, guestDir)
	pid := 0
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "qemu-pid "); ok {
			pid, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if err != nil {
		t.Fatalf("testpeers: define guest %s: %v\nconsole: %s", name, err,
			fileTail(filepath.Join(l.Dir, "console", name+".log"), 2000))
	}
	if pid <= 0 {
		t.Fatalf("testpeers: define-guest.sh printed no qemu pid: %q", out)
	}
	t.Logf("testpeers: domain %s running (qemu pid %d), agent ready in %.1fs", name, pid, time.Since(start).Seconds())
	return pid
}

// AgentSocket returns the host side of domain name's agent channel. libvirt
// itself holds that connection while the domain runs; it is useful to check
// the file exists, not to talk to the agent.
func (l *Libvirt) AgentSocket(name string) string {
	m, _ := filepath.Glob(filepath.Join(l.Dir, "home", ".config", "libvirt", "qemu", "channel", "target",
		"domain-*-"+name, "org.qemu.guest_agent.0"))
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}

// Connect opens a go-libvirt connection to the daemon (URI over Socket),
// closed when the test ends.
func (l *Libvirt) Connect(t testing.TB) *libvirt.Libvirt {
	t.Helper()
	return connect(t, l.Socket, l.URI)
}

func (l *Libvirt) virsh(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", l.virshURI}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, tail(string(out), 500))
	}
	return nil
}

// LibvirtTest is a private libvirtd serving only the built-in test driver
// (libvirtd-test.sh): fake domains, real libvirt RPC.
type LibvirtTest struct {
	Dir    string
	Socket string // Dir/run/libvirt-sock
	URI    string // "test:///default"; test:///abs/node.xml works too
	PID    int    // current daemon (changes on Restart)
}

// StartLibvirtTest starts the daemon and kills it when the test ends.
func StartLibvirtTest(t testing.TB) *LibvirtTest {
	t.Helper()
	Require(t, NeedShared, NeedLibvirtd, NeedVirsh)
	dir, err := os.MkdirTemp("/tmp", "gdt")
	if err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	// The daemon runs as nobody when we are root and reads its config from dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	l := &LibvirtTest{Dir: dir, Socket: filepath.Join(dir, "run", "libvirt-sock"), URI: string(libvirt.TestDefault)}
	// The watchdog reads the pid file at the end, so it also covers restarts.
	pidFile := shellQuote(filepath.Join(dir, "run", "libvirtd.pid"))
	stopGuard := guard(`p=$(cat ` + pidFile + ` 2>/dev/null) && [ "$(cat /proc/$p/comm 2>/dev/null)" = ` + commLibvirtd +
		` ] && kill "$p"; sleep 1; rm -rf ` + shellQuote(dir))
	t.Cleanup(func() {
		l.Kill()
		stopGuard()
		_ = os.RemoveAll(dir)
	})
	if err := l.start(); err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	return l
}

func (l *LibvirtTest) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := runTool(ctx, "libvirtd-test.sh", []string{"LIBVIRTD_WAIT=60"}, l.Dir)
	if pid, perr := lastInt(out); perr == nil {
		l.PID = pid
	}
	if err != nil {
		return fmt.Errorf("starting libvirtd (test driver): %w", err)
	}
	if l.PID == 0 {
		return fmt.Errorf("libvirtd-test.sh printed no pid: %q", out)
	}
	return nil
}

// Kill stops the daemon (SIGTERM, then SIGKILL) and waits for it to go:
// clients see the connection drop. Restart brings it back.
func (l *LibvirtTest) Kill() {
	_ = stopPID(l.PID, commLibvirtd, 10*time.Second)
	// Also whatever the pid file names, in case the daemon was restarted
	// behind our back.
	pidFile := filepath.Join(l.Dir, "run", "libvirtd.pid")
	if pid, err := readPID(pidFile); err == nil {
		_ = stopPID(pid, commLibvirtd, 10*time.Second)
		// A daemon killed with SIGKILL is a zombie until PID 1 reaps it, and
		// kill -0 still succeeds on a zombie: libvirtd-test.sh would refuse
		// to start, "already running". Dead is dead: drop the stale file.
		if !alive(pid) {
			_ = os.Remove(pidFile)
		}
	}
}

// Restart kills the daemon if it runs and starts it again on the same Dir and
// Socket (for reconnect tests). A test:///abs/node.xml URI gives the new
// daemon the same domains again.
func (l *LibvirtTest) Restart(t testing.TB) {
	t.Helper()
	l.Kill()
	if err := l.start(); err != nil {
		t.Fatalf("testpeers: restart: %v", err)
	}
}

// Connect opens a go-libvirt connection to test:///default over Socket,
// closed when the test ends.
func (l *LibvirtTest) Connect(t testing.TB) *libvirt.Libvirt {
	t.Helper()
	return connect(t, l.Socket, l.URI)
}

func connect(t testing.TB, sock, uri string) *libvirt.Libvirt {
	t.Helper()
	lv := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(10*time.Second)))
	if err := lv.ConnectToURI(libvirt.ConnectURI(uri)); err != nil {
		t.Fatalf("testpeers: connect %s on %s: %v", uri, sock, err)
	}
	t.Cleanup(func() { _ = lv.Disconnect() })
	return lv
}

// lastInt parses the last non-empty line of out as an integer (the scripts
// print the daemon PID last).
func lastInt(out string) (int, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strconv.Atoi(strings.TrimSpace(lines[len(lines)-1]))
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
