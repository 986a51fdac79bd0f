package present

import "testing"

// TestLocalName: the local file name a download into a directory gets from
// the guest's path is its last element, and only a plain name: never one
// that leaves the directory or names it (".", ".."), and never one with
// characters a terminal would act on or not show (ls, a shell's completion
// and every later tool would print them raw).
func TestLocalName(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" refused
	}{
		{"/etc/hostname", "hostname"},
		{"/var/log/", "log"},
		{"/home/u/.profile", ".profile"},
		{"/srv/日本語.txt", "日本語.txt"},
		{"/srv/my file", "my file"},
		{`C:\Windows\win.ini`, "win.ini"},
		{`/tmp/a\b`, "b"},
		{"/", ""},
		{"", ""},
		{`C:\`, ""},
		{"C:", ""},
		{"/tmp/note:", "note:"},
		{"/etc/..", ""},
		{"/etc/.", ""},
		{"..", ""},
		{`/tmp/x\..`, ""},
		{`/tmp/..\..`, ""},
		{"/tmp/evil\x1b]0;OWNED\x07", ""},
		{"/tmp/new\nline", ""},
		{"/tmp/gpj\u202eexe.txt", ""},
		{"/tmp/zero\u200bwidth", ""},
		{"/tmp/bad\xffutf8", ""},
	}
	for _, tt := range tests {
		got, ok := LocalName(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("LocalName(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}
