package tui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/guestdeck/guestdeck/fleet"
)

// In read-only mode the dashboard refuses, in words, every action the
// fleet's table says mutates, from the `:` line (every completion, aliases
// included) and from its key (whose binding is disabled and so hidden from
// help, but still says why it does nothing); the others run.
func TestReadonlyByTable(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one@host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range fleet.Suggestions() {
		text := s.Text
		switch {
		case s.Complete:
		case strings.HasPrefix(text, "ssh-key list"), strings.HasPrefix(text, "password"):
			text += "root"
		case strings.HasPrefix(text, "ssh-key"):
			text += "root " + keys
		default:
			text += "1"
		}
		t.Run(text, func(t *testing.T) {
			m, src := newTestModel(4, 120, 30, Options{Readonly: true})
			m = press(t, m, ":")
			m = typeText(t, m, text)
			m = press(t, m, "enter")
			a, err := fleet.ParseAction(strings.Fields(text))
			if err != nil {
				t.Fatal(err)
			}
			refused := strings.Contains(m.status, "read-only: "+a.String()+" refused")
			if refused != s.Mutating || (s.Mutating && (len(src.runs) != 0 || m.openConfirmation() != nil)) {
				t.Errorf("mutating %v: status %q, %d runs, confirmation %v", s.Mutating, m.status, len(src.runs), m.openConfirmation() != nil)
			}
		})
	}
	m, src := newTestModel(4, 120, 30, Options{Readonly: true})
	for _, ak := range m.keys.actionKeys() {
		a := fleet.QuickAction(ak.kind)
		if ak.b.Enabled() == a.Mutating() {
			t.Errorf("%s key enabled %v in read-only mode, mutating %v", a, ak.b.Enabled(), a.Mutating())
		}
		before := len(src.runs)
		m = press(t, m, ak.b.Keys()[0])
		if a.Mutating() && (len(src.runs) != before || !strings.Contains(m.status, "read-only: "+a.String()+" refused")) {
			t.Errorf("%s key in read-only mode: status %q, ran %v", a, m.status, len(src.runs) != before)
		}
		if !a.Mutating() && len(src.runs) == before {
			t.Errorf("%s key did not run in read-only mode", a)
		}
	}
}

// Completions come from the table: every action word and mode is offered
// (read-only: only those that change nothing), with a dry run of each
// mutating one.
func TestCompletionsFromTable(t *testing.T) {
	for _, ro := range []bool{false, true} {
		m, _ := newTestModel(2, 120, 30, Options{Readonly: ro})
		got := m.completions()
		for _, s := range fleet.Suggestions() {
			want := !ro || !s.Mutating
			if has := contains(got, s.Text); has != want {
				t.Errorf("readonly %v: %q offered %v, want %v", ro, s.Text, has, want)
			}
			if has := contains(got, dryRunVerb+" "+s.Text); has != (s.Mutating && !ro) {
				t.Errorf("readonly %v: dry run of %q offered %v", ro, s.Text, has)
			}
		}
		for w, mutating := range map[string]bool{"reboot": true, "suspend mem": true, "cat /etc/os-release": false} {
			if contains(got, w) != (!ro || !mutating) {
				t.Errorf("readonly %v: alias %q offered %v", ro, w, contains(got, w))
			}
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// The confirmation is the table's sentence, and the count is typed by the
// table's rule: shutdown (and its alias reboot) on several guests.
func TestConfirmByTable(t *testing.T) {
	tests := []struct {
		line  string
		marks int
		want  string
		typed bool
	}{
		{"reboot", 2, "Reboot 2 guests?", true},
		{"shutdown", 1, "Shut down 1 guest (powerdown)?", false},
		{"vcpus offline 3", 1, "Take vCPU 3 offline on 1 guest?", false},
		{"suspend mem", 2, "Suspend 2 guests to RAM?", false},
		// vm-00000 lacks the freeze: 2 of the 3 marked.
		{"freeze", 3, "Freeze 2 guests? Writes block until thawed; guestdeck thaws them after 5m.", false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			m, src := newTestModel(4, 140, 30, Options{FreezeTimeout: 5 * time.Minute})
			for range tt.marks {
				m = press(t, m, "space")
			}
			m = press(t, m, ":")
			m = typeText(t, m, tt.line)
			m = press(t, m, "enter")
			c := m.openConfirmation()
			if c == nil || c.needType != tt.typed {
				t.Fatalf("confirmation %+v, want typed %v", c, tt.typed)
			}
			if v := ansi.Strip(m.View().Content); !strings.Contains(v, tt.want) {
				t.Errorf("dialog lacks %q:\n%s", tt.want, v)
			}
			yes, _ := confirmKeys(c.needType)
			if tt.typed {
				m = press(t, m, "y")
				if len(src.runs) != 0 || m.openConfirmation() == nil {
					t.Fatal("y confirmed where the count is asked")
				}
				m = typeText(t, m, "2")
			}
			m = press(t, m, yes.Keys()[0])
			if len(src.runs) != 1 {
				t.Fatalf("%d runs after confirming", len(src.runs))
			}
		})
	}
}
