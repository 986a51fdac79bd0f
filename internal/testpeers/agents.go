package testpeers

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Agents are real qemu-ga processes on this machine (qga-host.sh), each on
// its own unix socket. They report this machine's interfaces, vCPUs, time and
// filesystems; every mutating command is blocked and they run as user nobody.
type Agents struct {
	Dir      string   // short directory under /tmp holding the sockets
	Sockets  []string // Dir/qga-1.sock ... Dir/qga-N.sock
	PIDs     []int    // qemu-ga processes, in Sockets order
	Writable string   // directory under Dir the agents may write (guest-file-open "w")
}

// Addrs returns the agents' addresses in agentclient form ("unix:/path").
func (a *Agents) Addrs() []string {
	out := make([]string, len(a.Sockets))
	for i, s := range a.Sockets {
		out[i] = "unix:" + s
	}
	return out
}

// StartAgents starts n real agents and stops them when the test ends.
func StartAgents(t testing.TB, n int) *Agents {
	t.Helper()
	Require(t, NeedShared, NeedQemuGA)
	if n < 1 {
		t.Fatalf("testpeers.StartAgents: n = %d, want >= 1", n)
	}
	// Socket paths must stay under 108 bytes: t.TempDir is too long.
	dir, err := os.MkdirTemp("/tmp", "gdq")
	if err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	a := &Agents{Dir: dir}
	// qga-host.sh prints "PID SOCKET" lines once all agents listen. Its
	// stdout goes to a file the watchdog reads after the script is done, so
	// the agents are covered even if this process dies before it parses them.
	outPath := filepath.Join(dir, "agents.out")
	var stopGuard func()
	t.Cleanup(func() {
		for _, pid := range a.PIDs {
			if err := stopPID(pid, commQemuGA, 5*time.Second); err != nil {
				t.Errorf("testpeers: stopping agent: %v", err)
			}
		}
		if stopGuard != nil {
			stopGuard()
		}
		_ = os.RemoveAll(dir)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// QGA_WAIT: a loaded machine can take more than the default 10 s to start many agents.
	out, runErr := runToolTo(ctx, "qga-host.sh", []string{"QGA_WAIT=60"}, outPath, func(scriptPID int) {
		stopGuard = guard(`while kill -0 ` + strconv.Itoa(scriptPID) + ` 2>/dev/null; do sleep 1; done; ` +
			`while read -r p s; do [ "$(cat /proc/$p/comm 2>/dev/null)" = ` + commQemuGA + ` ] && kill "$p"; done < ` +
			shellQuote(outPath) + `; sleep 1; rm -rf ` + shellQuote(dir))
	}, dir, strconv.Itoa(n))
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		a.PIDs = append(a.PIDs, pid)
		a.Sockets = append(a.Sockets, f[1])
	}
	if runErr != nil {
		t.Fatalf("testpeers: starting %d agents: %v", n, runErr)
	}
	if len(a.Sockets) != n {
		t.Fatalf("testpeers: qga-host.sh printed %d agents, want %d: %q", len(a.Sockets), n, out)
	}

	a.Writable = filepath.Join(dir, "files")
	if err := os.Mkdir(a.Writable, 0o777); err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	// Mkdir is subject to the umask; the agents run as another user.
	if err := os.Chmod(a.Writable, 0o777); err != nil {
		t.Fatalf("testpeers: %v", err)
	}
	return a
}
