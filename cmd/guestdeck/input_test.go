package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/wait"
)

// TestUserMistakes: what a user gets for a selector that matches nothing and
// for a raw command that is not JSON: one line saying what and why, and the
// exit code scripts rely on.
func TestUserMistakes(t *testing.T) {
	// The socket need not exist: neither case may reach an agent.
	cfg := fleetFile(t, "", [2]string{"x", "unix:/nonexistent/x.sock"})
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring; "" for no check
		stderr string
	}{
		{"status no match", []string{"-c", cfg, "status", "tag:nosuch"}, 0, "", "the selectors tag:nosuch match no guest"},
		{"status json no match", []string{"-c", cfg, "status", "--json", "tag:nosuch"}, 0, "[]", "match no guest"},
		{"agent not json", []string{"-c", cfg, "agent", "x", "{bad"}, 2, "", `"{bad" is not JSON (invalid character`},
		{"agent no execute", []string{"-c", cfg, "agent", "x", `{"arguments":{}}`}, 2, "", `has no "execute" member`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := gd(t, 30*time.Second, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) || !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestSimWarnsOfFileLimit: a sim whose guests cannot all be connected at once
// (each takes a listener and a connection) says so before serving, instead of
// letting the guests past the limit look silent.
func TestSimWarnsOfFileLimit(t *testing.T) {
	for _, tt := range []struct {
		limit, guests int
		warn          bool
	}{
		{100, 60, true},   // 60 guests need about 152 files
		{1024, 60, false}, // plenty
	} {
		dir, err := os.MkdirTemp("/tmp", "gd")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		script := fmt.Sprintf("ulimit -n %d && exec %s sim --guests %d --dir %s", tt.limit, binary, tt.guests, dir)
		cmd := exec.Command("sh", "-c", script)
		var out, errb lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() }) // a no-op once it was waited for
		wait.For(t, 20*time.Second, func() (bool, string) {
			return strings.Contains(out.String(), "fleet file"), fmt.Sprintf("sim wrote no fleet file\nstdout: %s\nstderr: %s", out.String(), errb.String())
		})
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		warned := strings.Contains(errb.String(), fmt.Sprintf("%d guests need about %d open files", tt.guests, 2*tt.guests+32)) &&
			strings.Contains(errb.String(), fmt.Sprintf("may open %d", tt.limit))
		if warned != tt.warn || !strings.Contains(out.String(), "fleet file") {
			t.Errorf("limit %d, %d guests: warned %v, want %v\nstdout: %s\nstderr: %s", tt.limit, tt.guests, warned, tt.warn, out.String(), errb.String())
		}
	}
}
