package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDashboardE2EKeysClash: in a real terminal, a fleet file whose [keys]
// takes a key another action keeps (ping = "F", freeze's built-in key) or
// names a key that can never arrive (freeze = "shift+f") is refused before
// the dashboard draws anything: the message gives the line and column, the
// key and both actions (or the key to write instead), the status is 2, and
// the terminal is left on the main screen.
func TestDashboardE2EKeysClash(t *testing.T) {
	for _, c := range []struct {
		name, keys string
		want       []string
	}{
		{"steals a built-in key", `ping = "F"`, []string{`fleet.toml:6:8: [keys] ping = "F" takes the key of freeze`}},
		{"never matches", `freeze = "shift+f"`, []string{`fleet.toml:6:10: key name "shift+f" never matches`, `write "F"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "fleet.toml")
			// The socket need not exist: the keys are checked before any
			// guest is dialled.
			body := "[[guest]]\nname = \"a\"\naddress = \"unix:" + filepath.Join(dir, "a.sock") + "\"\n\n[keys]\n" + c.keys + "\n"
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			tt := e2eStart(t, "-c", cfg)
			s := tt.waitText("guestdeck-exited")
			for _, w := range c.want {
				if !strings.Contains(s, w) {
					t.Errorf("the refusal does not name %s:\n%s", w, s)
				}
			}
			if strings.Contains(s, "guestdeck 1 guest") {
				t.Errorf("the dashboard was drawn before the refusal:\n%s", s)
			}
			exit, err := os.ReadFile(tt.exitFile)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(exit)); got != "EXIT=2" {
				t.Errorf("guestdeck exited with %s, want EXIT=2:\n%s", got, s)
			}
			if alt := tt.display("#{alternate_on}"); alt != "0" {
				t.Errorf("the terminal is left on the alternate screen (%s)", alt)
			}
		})
	}
}
