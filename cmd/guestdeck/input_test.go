package main

import (
	"strings"
	"testing"
	"time"
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
