package fleet

import (
	"strings"
	"testing"
)

func TestParseAction(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() of the result
		mut     bool
		destr   bool
		cmds    string
		wantErr string
	}{
		{in: "ping", want: "ping", cmds: "guest-ping"},
		{in: "freeze", want: "freeze", mut: true, destr: true, cmds: "guest-fsfreeze-freeze"},
		{in: "thaw", want: "thaw", mut: true, cmds: "guest-fsfreeze-thaw"},
		{in: "shutdown", want: "shutdown powerdown", mut: true, destr: true, cmds: "guest-shutdown"},
		{in: "shutdown reboot", want: "shutdown reboot", mut: true, destr: true, cmds: "guest-shutdown"},
		{in: "suspend ram", want: "suspend ram", mut: true, destr: true, cmds: "guest-suspend-ram"},
		{in: "settime", want: "settime", mut: true, cmds: "guest-set-time"},
		{in: "fstrim", want: "fstrim", mut: true, cmds: "guest-fstrim"},
		{in: "vcpus offline 2,3", want: "vcpus offline 2,3", mut: true, destr: true, cmds: "guest-set-vcpus"},
		{in: "vcpus online 1-3 5", want: "vcpus online 1,2,3,5", mut: true, cmds: "guest-set-vcpus"},
		{in: "read /etc/x", want: "read /etc/x", cmds: "guest-file-open,guest-file-read,guest-file-close"},
		{in: "write /tmp/x hello world", want: "write /tmp/x (11 bytes)", mut: true, destr: true, cmds: "guest-file-open,guest-file-write,guest-file-close"},
		{in: "info", want: "info", cmds: "guest-info"},
		{in: "", wantErr: "no action"},
		{in: "explode", wantErr: `unknown action "explode"`},
		{in: "shutdown sideways", wantErr: `shutdown mode "sideways"`},
		{in: "suspend", wantErr: "suspend needs a mode"},
		{in: "vcpus offline", wantErr: "vcpus needs"},
		{in: "vcpus offline x", wantErr: `vcpu id "x"`},
		{in: "vcpus sideways 1", wantErr: `vcpus mode "sideways"`},
		{in: "freeze now", wantErr: "takes no arguments"},
		{in: "read", wantErr: "read needs"},
	}
	for _, tt := range tests {
		a, err := ParseAction(strings.Fields(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if a.String() != tt.want || a.Mutating() != tt.mut || a.Destructive() != tt.destr || strings.Join(a.Commands(), ",") != tt.cmds {
			t.Errorf("%q: %q mut=%v destr=%v cmds=%v", tt.in, a, a.Mutating(), a.Destructive(), a.Commands())
		}
	}
}

func testGuests() []*Guest {
	return []*Guest{
		{Target: Target{Name: "db-1", Host: "hv1", Tags: []string{"prod", "db"}}, State: Ready, Hostname: "db1.example"},
		{Target: Target{Name: "db-2", Host: "hv2", Tags: []string{"prod", "db"}}, State: Frozen, Hostname: "web-prod"}, // a guest naming itself like others
		{Target: Target{Name: "web-1", Host: "hv1", Tags: []string{"prod"}, UUID: "dbc0ffee-1234-4321-8888-0123456789ab"}, State: Silent},
		{Target: Target{Name: "web-2", Address: "unix:/run/web2.sock"}, State: Unreachable},
	}
}

func names(gs []*Guest) string {
	var n []string
	for _, g := range gs {
		n = append(n, g.Name)
	}
	return strings.Join(n, ",")
}

func TestSelect(t *testing.T) {
	tests := []struct {
		sel     string
		want    string
		wantErr string
	}{
		{sel: "all", want: "db-1,db-2,web-1,web-2"},
		{sel: "web-2 db-1", want: "db-1,web-2"},
		{sel: "web-* db-1 web-1", want: "db-1,web-1,web-2"},
		{sel: "tag:db", want: "db-1,db-2"},
		{sel: "host:hv1", want: "db-1,web-1"},
		{sel: "state:frozen", want: "db-2"},
		{sel: "state:gone", want: ""},
		{sel: "mail-*", want: ""},
		{sel: "nosuch", wantErr: `"nosuch": no guest`},
		{sel: "state:melted", wantErr: `unknown state "melted"`},
		{sel: "color:red", wantErr: `unknown prefix "color"`},
		{sel: "web-[", wantErr: "bad glob"},
	}
	for _, tt := range tests {
		got, err := Select(testGuests(), strings.Fields(tt.sel))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.sel, err, tt.wantErr)
			}
			continue
		}
		if err != nil || names(got) != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.sel, names(got), err, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct{ filter, want string }{
		{"", "db-1,db-2,web-1,web-2"},
		{"web", "web-1,web-2"},
		{"WEB", "web-1,web-2"},
		// What a guest reports of itself matches only by name: a guest
		// calling itself "web-9" joins no "web" filter.
		{"db1.example", ""},
		{"hostname:db1.example", "db-1"},
		{"hostname:DB1", "db-1"},
		{"hostname:db1*", "db-1"},
		{"hostname:web", "db-2"},
		// A UUID by its start, eight characters at least: "db" is no UUID.
		{"db", "db-1,db-2"},
		{"dbc0ffee", "web-1"},
		{"c0ffee12", ""},
		{"tag:prod state:fro", "db-2"},
		{"host:hv2", "db-2"},
		{"web2.sock", "web-2"},
		{"*-1", "db-1,web-1"},
		{"silent", "web-1"},
		{"zzz", ""},
	}
	for _, tt := range tests {
		var got []*Guest
		for _, g := range testGuests() {
			if Match(g, tt.filter) {
				got = append(got, g)
			}
		}
		if names(got) != tt.want {
			t.Errorf("Match %q = %q, want %q", tt.filter, names(got), tt.want)
		}
	}
}

func TestLogRing(t *testing.T) {
	r := logRing{size: 3}
	var held []Log
	for i := range 10 {
		r.add(LogEntry{Command: string(rune('a' + i))})
		held = append(held, r.entries())
	}
	cmds := func(l Log) string {
		var s []string
		for _, e := range l.All() {
			s = append(s, e.Command)
		}
		return strings.Join(s, "")
	}
	if got := cmds(r.entries()); got != "jih" {
		t.Fatalf("entries %q", got)
	}
	// Slices handed out earlier never change.
	for i, h := range held {
		want := []rune{}
		for j := i; j >= 0 && j > i-3; j-- {
			want = append(want, rune('a'+j))
		}
		if cmds(h) != string(want) {
			t.Errorf("held %d = %q, want %q", i, cmds(h), string(want))
		}
	}
}
