package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTmuxJumpAndFilterHistory drives the real binary on the demo fleet in
// a terminal: ' and a name moves the cursor (and the detail pane) to that
// guest, a letter typed there is text and not an action key, enter stays;
// a filter applied with enter is remembered in the state directory (0600)
// and, after a restart, is not applied at start but comes back with ↑ in
// the filter prompt.
func TestTmuxJumpAndFilterHistory(t *testing.T) {
	state := t.TempDir()
	tt := e2eStartEnv(t, []string{"XDG_STATE_HOME=" + state}, "--demo")
	tt.waitText("guestdeck 40 guests", "─ api-01", "db-03")

	tt.keys("'")
	tt.waitText("type a guest's name")
	tt.text("db-0")
	tt.waitText("'db-0▏  → db-01", "─ db-01")
	tt.text("3")
	tt.waitText("'db-03▏  → db-03", "─ db-03")
	tt.text("F") // freeze's key outside the jump
	s := tt.waitText(`no shown guest's name has "db-03F"`)
	if strings.Contains(s, "Freeze") || !strings.Contains(s, "─ db-03") {
		t.Fatalf("F in the jump acted, or moved the cursor:\n%s", s)
	}
	tt.keys("BSpace", "Enter")
	s = tt.waitFor("the jump closed on db-03", func(s string) bool {
		return !strings.Contains(s, "'db-03") && strings.Contains(s, "─ db-03") && strings.Contains(s, "space mark")
	})
	for _, r := range e2eRows(s) {
		if r.status != ' ' && r.status != 0 {
			t.Errorf("row %s has an action status %q after the jump", r.name, r.status)
		}
	}

	// A filter applied with enter goes into the history file.
	const filter = `re:^worker-0[12]$`
	tt.keys("/")
	tt.waitText("enter applies · esc clears")
	tt.text(filter)
	tt.keys("Enter")
	tt.waitText(`filter "re:^worker-0[12]$": 2 shown`, "worker-01", "worker-02")
	tt.keys("q")
	tt.waitText("guestdeck-exited")
	path := filepath.Join(state, "guestdeck", "filters")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != filter+"\n" {
		t.Errorf("history file %q, want %q", b, filter+"\n")
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("history file mode: %v %v", st.Mode(), err)
	}

	// Restarted: the whole fleet, and ↑ in the prompt brings the filter back.
	tt.text(e2eQuote(binary) + " --demo")
	tt.keys("Enter")
	s = tt.waitText("guestdeck 40 guests · sort", "─ api-01")
	if strings.Contains(s, `filter "`) {
		t.Fatalf("the last filter was applied at start:\n%s", s)
	}
	tt.keys("/")
	tt.waitText("↑/↓ history")
	tt.keys("Up")
	tt.waitText(`/`+filter, `filter "re:^worker-0[12]$": 2 shown`)
	tt.keys("Escape") // alone: ESC then q at once reads as alt+q
	tt.waitText("space mark")
	tt.keys("q")
	tt.waitText("guestdeck-exited")
}
