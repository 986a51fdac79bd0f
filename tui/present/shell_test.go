package present

import (
	"os/exec"
	"testing"
)

// TestShellArg: every word comes back exactly from the shell, however it
// is written, and what is written is safe on a terminal. The words are what
// a libvirt host may name a domain, and what a fleet file path may hold.
func TestShellArg(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to check the quoting:", err)
	}
	tests := []struct{ in, want string }{
		{"web-1", "web-1"},
		{"hv-a/db_1.x:y@z%+=,", "hv-a/db_1.x:y@z%+=,"},
		{"", "''"},
		{"a/my vm", "'a/my vm'"},
		{"a/$(touch pwned);x", "'a/$(touch pwned);x'"},
		{"a/`id`|&<>", "'a/`id`|&<>'"},
		{"a/*", "'a/*'"},
		{"a/db[1]", "'a/db[1]'"},
		{"~/fleet.toml", "'~/fleet.toml'"},
		{"it's", `'it'\''s'`},
		{"日本", "'日本'"},
		{"a\x1b]0;t\x07", `$'a\x1b]0;t\x07'`},
		{"a\u202eb", `$'a\xe2\x80\xaeb'`},
		{"a'\\\n\x1b", `$'a\'\\\x0a\x1b'`},
		{"bad\xffutf8", `$'bad\xffutf8'`},
		{"\x1b" + "2", `$'\x1b2'`},
	}
	for _, tt := range tests {
		got := ShellArg(tt.in)
		if got != tt.want {
			t.Errorf("ShellArg(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if !Clean(got) {
			t.Errorf("ShellArg(%q) = %q is not safe on a terminal", tt.in, got)
		}
		out, err := exec.Command(bash, "-c", "printf %s "+got).Output()
		if err != nil || string(out) != tt.in {
			t.Errorf("bash gives back %q (%v) for %s, want %q", out, err, got, tt.in)
		}
	}
}
