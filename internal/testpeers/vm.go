package testpeers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// VM is a tiny QEMU guest (boot-guest.sh) running the real qemu-ga. Its agent
// channel is the unix socket Socket; the disk holds HelloPath, and disk writes
// are discarded when qemu exits.
type VM struct {
	Name     string        // guest hostname and qemu -name
	Socket   string        // agent channel (Dir/qga.sock)
	PID      int           // qemu process
	Dir      string        // short directory under /tmp; Console and the qemu log live here
	Console  string        // guest serial console log
	BootTime time.Duration // how long the agent took to answer

	closeOnce sync.Once
	stopGuard func()
}

// VMOptions tune a boot; zero fields take the GUESTDECK_VM_* environment or defaults.
type VMOptions struct {
	SMP     int           // vCPUs (default 2)
	MemMiB  int           // memory (default 256)
	Timeout time.Duration // wait for the agent (default 240 s)
}

// Addr returns the agent's address in agentclient form ("unix:/path").
func (vm *VM) Addr() string { return "unix:" + vm.Socket }

// Alive reports whether the qemu process is still running.
func (vm *VM) Alive() bool { return alive(vm.PID) && comm(vm.PID) == commQEMU }

// WaitExit waits until the qemu process has exited (after guest-shutdown, for
// example) and fails if it is still running after timeout.
func (vm *VM) WaitExit(timeout time.Duration) error {
	if waitGone(vm.PID, timeout) {
		return nil
	}
	return fmt.Errorf("vm %s: qemu pid %d still running after %v", vm.Name, vm.PID, timeout)
}

// Kill stops the qemu process (SIGTERM, then SIGKILL) and waits for it to go.
func (vm *VM) Kill() {
	_ = stopPID(vm.PID, commQEMU, 5*time.Second)
}

// Close kills the VM and removes its directory. BootVM's cleanup calls it;
// Pool.Close calls it for pooled VMs.
func (vm *VM) Close() error {
	var err error
	vm.closeOnce.Do(func() {
		err = stopPID(vm.PID, commQEMU, 5*time.Second)
		if vm.stopGuard != nil {
			vm.stopGuard()
		}
		_ = os.RemoveAll(vm.Dir)
	})
	return err
}

// ConsoleTail returns the end of the guest's serial console, for failure messages.
func (vm *VM) ConsoleTail() string { return fileTail(vm.Console, 3000) }

// BootVM boots a private VM and kills it when the test ends. Prefer a Pool
// when the tests of a package can share one.
func BootVM(t testing.TB, name string) *VM {
	t.Helper()
	return BootVMWith(t, name, VMOptions{})
}

// BootVMWith is BootVM with options.
func BootVMWith(t testing.TB, name string, o VMOptions) *VM {
	t.Helper()
	requireVM(t)
	vm, err := Boot(context.Background(), name, o)
	if vm != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("testpeers: console of vm %s:\n%s", vm.Name, vm.ConsoleTail())
			}
			if err := vm.Close(); err != nil {
				t.Errorf("testpeers: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	t.Logf("testpeers: vm %s ready in %.1fs (pid %d, %s)", vm.Name, vm.BootTime.Seconds(), vm.PID, vm.Socket)
	return vm
}

func requireVM(t testing.TB) {
	t.Helper()
	Require(t, NeedShared, NeedQEMU, NeedPython, NeedGuestImage)
}

var vmName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Boot boots a VM without tying it to a test: the caller must Close it (a
// watchdog still kills it if this process dies). On error the returned VM, if
// not nil, has a running or dead qemu that the caller must Close.
func Boot(ctx context.Context, name string, o VMOptions) (*VM, error) {
	if !vmName.MatchString(name) {
		return nil, fmt.Errorf("vm name %q: want 1-32 of [A-Za-z0-9_-]", name)
	}
	if o.SMP <= 0 {
		o.SMP = envInt(EnvVMSMP, 2)
	}
	if o.MemMiB <= 0 {
		o.MemMiB = envInt(EnvVMMem, 256)
	}
	if o.Timeout <= 0 {
		o.Timeout = vmTimeout()
	}
	accel := os.Getenv(EnvVMAccel)
	if accel == "" {
		accel = "auto"
	}
	guestDir, err := EnsureGuest(ctx)
	if err != nil {
		return nil, fmt.Errorf("vm %s: %w", name, err)
	}
	script, err := tool("guest-vm/boot-guest.sh")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("/tmp", "gdv")
	if err != nil {
		return nil, fmt.Errorf("vm %s: %w", name, err)
	}
	vm := &VM{Name: name, Dir: dir, Socket: filepath.Join(dir, "qga.sock")}
	vm.Console = vm.Socket + ".console.log"

	ctx, cancel := context.WithTimeout(ctx, o.Timeout+30*time.Second)
	defer cancel()
	// boot-guest.sh prints the qemu PID first, then waits for the agent. Its
	// stdout goes to a file rather than a pipe so the watchdog can read the
	// PID even if this process dies before the script returns.
	outPath := filepath.Join(dir, "boot.out")
	out, err := os.Create(outPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("vm %s: %w", name, err)
	}
	defer out.Close()
	vm.stopGuard = guard(`sleep 2; q=$(head -n 1 ` + shellQuote(outPath) + ` 2>/dev/null); ` +
		`[ -n "$q" ] && [ "$(cat /proc/$q/comm 2>/dev/null)" = ` + commQEMU + ` ] && kill "$q"; sleep 1; rm -rf ` + shellQuote(dir))
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script, guestDir, vm.Socket, name,
		strconv.Itoa(int(o.Timeout.Seconds())))
	cmd.Env = append(os.Environ(), "SMP="+strconv.Itoa(o.SMP), "MEM="+strconv.Itoa(o.MemMiB), "ACCEL="+accel)
	cmd.Stdout, cmd.Stderr = out, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	waitErr := cmd.Run()
	vm.BootTime = time.Since(start)
	b, _ := os.ReadFile(outPath)
	line, _, _ := strings.Cut(string(b), "\n")
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if perr != nil {
		vm.stopGuard()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("vm %s: boot-guest.sh printed no pid (%v): %s", name, waitErr, tail(stderr.String(), 2000))
	}
	vm.PID = pid
	if waitErr != nil {
		why := "agent did not answer within " + o.Timeout.String()
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) && ee.ExitCode() == 2 {
			why = "qemu exited during boot"
		}
		return vm, fmt.Errorf("vm %s: %s (%v): %s\nqemu log: %s\nconsole: %s", name, why, waitErr,
			tail(stderr.String(), 1000), fileTail(vm.Socket+".qemu.log", 1000), vm.ConsoleTail())
	}
	return vm, nil
}

// Pool boots VMs on first use and shares them among the tests of a package,
// because a boot under TCG is expensive. Close it from TestMain after m.Run.
type Pool struct {
	mu     sync.Mutex
	vms    map[string]*poolEntry
	closed bool
}

type poolEntry struct {
	ready chan struct{} // closed when vm/err are set
	vm    *VM
	err   error
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{vms: map[string]*poolEntry{}} }

// VM returns the pooled VM called name, booting it (again, if a test shut it
// down) when needed. Concurrent callers for the same name share one boot.
func (p *Pool) VM(t testing.TB, name string) *VM {
	t.Helper()
	requireVM(t)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		t.Fatalf("testpeers: pool used after Close")
	}
	e := p.vms[name]
	if e != nil {
		select {
		case <-e.ready:
			// A VM that died (a test shut it down) is booted again; a boot
			// that failed is not retried, so every test fails fast.
			if e.err == nil && !e.vm.Alive() {
				_ = e.vm.Close()
				e = nil
			}
		default: // another test is booting it
		}
	}
	boot := e == nil
	if boot {
		e = &poolEntry{ready: make(chan struct{})}
		p.vms[name] = e
	}
	p.mu.Unlock()
	if boot {
		e.vm, e.err = Boot(context.Background(), name, VMOptions{})
		close(e.ready)
		if e.err == nil {
			t.Logf("testpeers: pooled vm %s ready in %.1fs (pid %d, %s)", name, e.vm.BootTime.Seconds(), e.vm.PID, e.vm.Socket)
		}
	}
	<-e.ready
	if e.err != nil {
		t.Fatalf("testpeers: pooled %v", e.err)
	}
	return e.vm
}

// Close kills every pooled VM.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	entries := p.vms
	p.vms = map[string]*poolEntry{}
	p.mu.Unlock()
	for _, e := range entries {
		<-e.ready
		if e.vm != nil {
			_ = e.vm.Close()
		}
	}
}
