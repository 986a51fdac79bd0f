package testpeers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// commSSHD is the OpenSSH server's process name.
const commSSHD = "sshd"

// SSHD is a private OpenSSH server on 127.0.0.1 (sshd-loopback.sh) with a
// fresh host key and a client key that may log in as the user running the
// test. It allows unix-socket forwarding and remote commands, so agent
// sockets on this machine can be reached "on another host" through it.
type SSHD struct {
	Dir  string
	Port int
	PID  int // the current server (changes on Restart)
	User string
	// KnownHosts holds the server's host key for [127.0.0.1]:Port;
	// WrongKnownHosts a different key for the same address.
	KnownHosts, WrongKnownHosts string
	Identity                    string // the client's private key (no passphrase)
	// restarted is the server Restart started, reaped by its goroutine.
	restarted *exec.Cmd
}

// StartSSHD starts the server and stops it when the test ends.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	Require(t, NeedShared, NeedSSHD)
	dir, err := os.MkdirTemp("/tmp", "gds")
	if err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	s := &SSHD{Dir: dir, KnownHosts: filepath.Join(dir, "known_hosts"),
		WrongKnownHosts: filepath.Join(dir, "wrong_known_hosts"), Identity: filepath.Join(dir, "id")}
	if u, err := user.Current(); err == nil {
		s.User = u.Username
	}
	pidFile := shellQuote(filepath.Join(dir, "sshd.pid"))
	stopGuard := guard(`p=$(cat ` + pidFile + ` 2>/dev/null) && [ "$(cat /proc/$p/comm 2>/dev/null)" = ` + commSSHD +
		` ] && kill "$p"; sleep 1; rm -rf ` + shellQuote(dir))
	t.Cleanup(func() {
		s.Kill()
		stopGuard()
		_ = os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := runTool(ctx, "sshd-loopback.sh", nil, dir)
	f := strings.Fields(strings.TrimSpace(out))
	if len(f) == 2 {
		s.PID, _ = strconv.Atoi(f[0])
		s.Port, _ = strconv.Atoi(f[1])
	}
	if err != nil {
		t.Fatalf("testpeers: starting sshd: %v", err)
	}
	if s.PID == 0 || s.Port == 0 {
		t.Fatalf("testpeers: sshd-loopback.sh printed %q, want \"PID PORT\"", out)
	}
	// OpenSSH (9.2 at least) applies AllowTcpForwarding to unix-socket
	// forwarding too ("Received request to connect to path ..., but the
	// request was denied"): the script's "no" refuses every
	// direct-streamlocal channel. "local" is the least that lets them
	// through; the server only listens on loopback and only the test's key
	// logs in.
	cfgPath := filepath.Join(dir, "sshd_config")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	if fixed := strings.Replace(string(cfg), "AllowTcpForwarding no", "AllowTcpForwarding local", 1); fixed != string(cfg) {
		if err := os.WriteFile(cfgPath, []byte(fixed), 0o600); err != nil {
			t.Fatalf("testpeers: %v", err)
		}
		s.Restart(t)
	}
	return s
}

// URL is "ssh://USER@127.0.0.1:PORT" followed by path.
func (s *SSHD) URL(path string) string {
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", s.User, s.Port, path)
}

// Kill stops the server by its PID and the per-connection servers it
// started (its children: an OpenSSH listener that exits leaves them
// running), SIGTERM then SIGKILL, and waits for them to go: clients see
// their connections drop, as when a host goes down.
func (s *SSHD) Kill() {
	for _, c := range children(s.PID) {
		_ = stopPID(c, commSSHD, 5*time.Second)
	}
	_ = stopPID(s.PID, commSSHD, 5*time.Second)
}

// children lists the PIDs whose parent is pid.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		if i := strings.LastIndexByte(st, ')'); i >= 0 {
			if f := strings.Fields(st[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				out = append(out, c)
			}
		}
	}
	return out
}

// Restart starts the server again with the same config, port and host key
// (after Kill, for reconnect tests), and waits until it listens.
func (s *SSHD) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	logPath := filepath.Join(s.Dir, "sshd.log")
	before := strings.Count(readOr(logPath), "Server listening on")
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-f", filepath.Join(s.Dir, "sshd_config"), "-E", logPath)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testpeers: restart sshd: %v", err)
	}
	s.PID, s.restarted = cmd.Process.Pid, cmd
	go func() { _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(readOr(logPath), "Server listening on") <= before {
		if time.Now().After(deadline) || !alive(s.PID) {
			t.Fatalf("testpeers: restarted sshd does not listen: %s", fileTail(logPath, 1000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// Hang stops (SIGSTOP) the per-connection servers, so established
// connections hang as behind a dead link while the listener still
// accepts; the returned resume continues them. Cleanup resumes them too.
func (s *SSHD) Hang(t testing.TB) (resume func()) {
	t.Helper()
	var stopped []int
	for _, c := range children(s.PID) {
		if comm(c) == commSSHD && syscall.Kill(c, syscall.SIGSTOP) == nil {
			stopped = append(stopped, c)
		}
	}
	if len(stopped) == 0 {
		t.Fatalf("testpeers: sshd %d has no connection to hang", s.PID)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			for _, c := range stopped {
				_ = syscall.Kill(c, syscall.SIGCONT)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}
