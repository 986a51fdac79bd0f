package testpeers

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process names (/proc/PID/comm, at most 15 bytes) checked before a kill, so
// a PID reused by an unrelated process is never signalled.
const (
	commQemuGA   = "qemu-ga"
	commQEMU     = "qemu-system-x86"
	commLibvirtd = "libvirtd"
)

// runTool runs a shared/tools script with bash and returns its stdout. The
// error carries the script's stderr, which is where the scripts explain
// themselves.
func runTool(ctx context.Context, rel string, env []string, args ...string) (string, error) {
	return runToolTo(ctx, rel, env, "", nil, args...)
}

// runToolTo is runTool with the script's stdout written to the file outPath
// (when not "") and started called with the script's PID before the wait:
// a watchdog can then find what the script started without this process.
func runToolTo(ctx context.Context, rel string, env []string, outPath string, started func(pid int), args ...string) (string, error) {
	path, err := tool(rel)
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if outPath != "" {
		f, err := os.Create(outPath)
		if err != nil {
			return "", fmt.Errorf("%s: %w", rel, err)
		}
		defer f.Close()
		cmd.Stdout = f
	}
	// The scripts start daemons in the background; should one keep our pipes
	// open, do not wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s: %w", rel, err)
	}
	if started != nil {
		started(cmd.Process.Pid)
	}
	err = cmd.Wait()
	out := stdout.String()
	if outPath != "" {
		b, _ := os.ReadFile(outPath)
		out = string(b)
	}
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", rel, strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return out, nil
}

// tail returns the last n bytes of s, trimmed.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// fileTail returns the last n bytes of a file, for failure messages.
func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return tail(string(b), n)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		return len(f) == 0 || f[0] != "Z"
	}
	return true
}

// comm returns the process name of pid, or "" when it is gone.
func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// waitGone polls until pid has exited or the timeout passes.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// stopPID terminates pid if it is still the process we started (its name is
// name): SIGTERM, then SIGKILL after grace. Error when it survives both.
func stopPID(pid int, name string, grace time.Duration) error {
	if !alive(pid) || comm(pid) != name {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(pid, grace) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if waitGone(pid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("%s pid %d survived SIGKILL", name, pid)
}

// guardScript waits for the test binary ("$1") to exit, then runs its cleanup ("$2").
const guardScript = `while kill -0 "$1" 2>/dev/null; do sleep 1; done; eval "$2"`

// guard starts a detached watchdog that runs the shell command cleanup once
// this process is gone. It covers the case t.Cleanup cannot: a test binary
// killed by go test -timeout or a crash, which would otherwise leave VMs
// burning CPU for every later test. The returned stop ends the watchdog
// without running cleanup; call it from the normal cleanup path.
func guard(cleanup string) (stop func()) {
	cmd := exec.Command("sh", "-c", guardScript, "guard", strconv.Itoa(os.Getpid()), cleanup)
	// Own session: a ^C to the test's process group must not take the watchdog with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = cmd.Process.Kill()
		<-done
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
