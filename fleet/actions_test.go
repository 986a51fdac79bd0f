package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// testKeyFile writes an authorized_keys file for the ssh-key actions.
func testKeyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one@host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fill completes a suggestion that wants more words with ones that parse.
func fill(s Suggestion, keyFile string) string {
	switch {
	case s.Complete:
		return s.Text
	case strings.HasPrefix(s.Text, string(ActSSHKey)+" "+KeyList):
		return s.Text + "root"
	case strings.HasPrefix(s.Text, string(ActSSHKey)):
		return s.Text + "root " + keyFile
	case strings.HasPrefix(s.Text, string(ActPassword)):
		return s.Text + "root"
	}
	return s.Text + "1"
}

// Every word the table declares parses to its action, and the action's
// String parses back to the same action: names, aliases, modes and mode
// aliases alike.
func TestParseEveryTableWord(t *testing.T) {
	tests := []struct {
		in   string
		want string // String()
	}{
		{"ping", "ping"},
		{"PING", "ping"},
		{"info", "info"},
		{"freeze", "freeze"},
		{"thaw", "thaw"},
		{"shutdown", "shutdown powerdown"},
		{"shutdown powerdown", "shutdown powerdown"},
		{"shutdown reboot", "shutdown reboot"},
		{"shutdown halt", "shutdown halt"},
		{"reboot", "shutdown reboot"},
		// The short forms (k9s-style).
		{"refresh", "info"},
		{"fz", "freeze"},
		{"th", "thaw"},
		{"sd", "shutdown powerdown"},
		{"sd halt", "shutdown halt"},
		{"sus ram", "suspend ram"},
		{"trim", "fstrim"},
		{"passwd root", "password root"},
		{"suspend disk", "suspend disk"},
		{"suspend ram", "suspend ram"},
		{"suspend mem", "suspend ram"},
		{"suspend hybrid", "suspend hybrid"},
		{"wake", "wake"},
		{"start", "start"},
		{"settime", "settime"},
		{"fstrim", "fstrim"},
		{"freeze --mountpoint / --mountpoint=/var", "freeze --mountpoint / --mountpoint /var"},
		{"fstrim --minimum 4096", "fstrim --minimum 4096"},
		{"fstrim --minimum=0", "fstrim"},
		{"clock", "clock"},
		{"domtime", "clock"},
		{"domtime --now", "clock --now"},
		{"clock --sync", "clock --sync"},
		{"clock --time 1700000000", "clock --time 1700000000"},
		{"vcpus online 1", "vcpus online 1"},
		{"vcpus offline 2,3 5-6", "vcpus offline 2,3,5,6"},
		{"read /etc/hostname", "read /etc/hostname"},
		{"cat /etc/hostname", "read /etc/hostname"},
		{"write /tmp/x a b", "write /tmp/x (3 bytes)"},
		{"password root", "password root"},
		{"password --crypted root", "password --crypted root"},
		{"ssh-key list root", "ssh-key list root"},
		{"ssh-key add root KEYS", "ssh-key add root KEYS (1 key)"},
		{"ssh-key set root KEYS", "ssh-key set root KEYS (1 key)"},
		{"ssh-key remove root KEYS", "ssh-key remove root KEYS (1 key)"},
	}
	kf := testKeyFile(t)
	for i := range tests {
		tests[i].in = strings.ReplaceAll(tests[i].in, "KEYS", kf)
		tests[i].want = strings.ReplaceAll(tests[i].want, "KEYS", kf)
	}
	seen := map[Kind]bool{}
	for _, tt := range tests {
		a, err := ParseAction(strings.Fields(tt.in))
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		seen[a.Kind] = true
		if a.String() != tt.want {
			t.Errorf("%q: String %q, want %q", tt.in, a, tt.want)
		}
		if err := a.validate(); err != nil {
			t.Errorf("%q: validate: %v", tt.in, err)
		}
		if a.Kind == ActWrite || (a.Kind == ActSSHKey && a.Mode != KeyList) {
			continue // String elides the data, or counts the keys
		}
		back, err := ParseAction(strings.Fields(a.String()))
		if err != nil || back.String() != a.String() {
			t.Errorf("%q: String %q parses back as %q, %v", tt.in, a, back, err)
		}
	}
	// The cases above cover the table: every kind, alias and mode word.
	for _, s := range Specs() {
		if !seen[s.Kind] {
			t.Errorf("no case parses %s", s.Kind)
		}
		for _, w := range s.Words() {
			if !slices.ContainsFunc(tests, func(c struct{ in, want string }) bool { return strings.Fields(c.in)[0] == w }) {
				t.Errorf("no case uses the word %q", w)
			}
		}
		for _, o := range s.Options {
			if w := "--" + o.Name; o.Refused == "" && !slices.ContainsFunc(tests, func(c struct{ in, want string }) bool {
				return strings.Contains(c.in, " "+w)
			}) {
				t.Errorf("no case uses %s's option %s", s.Kind, w)
			}
		}
		for _, m := range s.Modes {
			if s.Args == NoArgs {
				continue // chosen by the options (clock)
			}
			for _, w := range append([]string{m.Name}, m.Aliases...) {
				if !slices.ContainsFunc(tests, func(c struct{ in, want string }) bool { return slices.Contains(strings.Fields(c.in), w) }) {
					t.Errorf("no case uses %s's mode word %q", s.Kind, w)
				}
			}
		}
	}
}

// Errors name what is valid.
func TestParseErrorsNameTheChoices(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "no action given (want one of ping, info, freeze, thaw, shutdown, suspend, wake, start, settime, fstrim, clock, vcpus, read, write, password, ssh-key)"},
		{"explode", `unknown action "explode" (want one of ping, info, freeze, thaw, shutdown, suspend, wake, start, settime, fstrim, clock, vcpus, read, write, password, ssh-key)`},
		{"thaw --mountpoint /", "thaw --mountpoint: thaw thaws every frozen filesystem: guest-fsfreeze-thaw takes no mountpoints (libvirt refuses them too)"},
		{"fstrim --mountpoint /", "fstrim --mountpoint: fstrim trims every mounted filesystem: guest-fstrim takes no mountpoints (libvirt refuses them too)"},
		{"fstrim --minimum x", `fstrim: --minimum "x": want a number of bytes, 0 or more`},
		{"fstrim --minimum 1 --minimum 2", "fstrim: --minimum given twice"},
		{"freeze --mountpoint", "freeze: --mountpoint needs PATH"},
		{"freeze --bogus", `freeze: unknown option "--bogus" (want [--mountpoint PATH]...)`},
		{"freeze --mountpoint / now", `freeze takes no arguments, got "now"`},
		{"clock --now --sync", "clock: --now, --sync and --time exclude each other"},
		{"clock --time -1", `clock: --time "-1": want seconds since 1970-01-01 UTC, from 0 to 9223372036`},
		{"clock --now=1", "clock: --now takes no value"},
		{"shutdown sideways", `shutdown mode "sideways": want powerdown, reboot or halt`},
		{"suspend", "suspend needs a mode: disk, ram or hybrid"},
		{"suspend sideways", `suspend mode "sideways": want disk, ram or hybrid`},
		{"suspend ram now", `suspend takes no arguments, got "now"`},
		{"vcpus offline", `vcpus needs online|offline and ids, e.g. "vcpus offline 2,3"`},
		{"vcpus sideways 1", `vcpus mode "sideways": want online or offline`},
		{"vcpus offline x", `vcpu id "x": not a number`},
		{"vcpus offline 5-2", `vcpu range "5-2": want LOW-HIGH`},
		{"freeze now", `freeze takes no arguments, got "now"`},
		{"reboot now", `reboot takes no arguments, got "now"`},
		{"read", "read needs exactly one guest path"},
		{"cat a b", "cat needs exactly one guest path"},
		{"write", "write needs a guest path (and the content)"},
		{"ssh-key sideways root", `ssh-key mode "sideways": want add, set, remove or list`},
	}
	for _, tt := range tests {
		_, err := ParseAction(strings.Fields(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: err %v, want %q", tt.in, err, tt.want)
		}
	}
}

// validate refuses actions built by hand that the table does not allow,
// naming the choices; a mode left empty where there is a default is the
// agent's default.
func TestValidateByTable(t *testing.T) {
	tests := []struct {
		a    Action
		want string // "" valid
	}{
		{Action{Kind: ActShutdown}, ""},
		{Action{Kind: ActShutdown, Mode: "mem"}, `shutdown mode "mem": want powerdown, reboot or halt`},
		{Action{Kind: ActSuspend}, `suspend mode "": want disk, ram or hybrid`},
		{Action{Kind: ActSuspend, Mode: "mem"}, `suspend mode "mem": want disk, ram or hybrid`}, // aliases are words, not modes
		{Action{Kind: ActVCPUs, Mode: "online"}, "vcpus needs online|offline and at least one id"},
		{Action{Kind: ActRead}, "read needs a path"},
		{Action{Kind: "explode"}, `unknown action "explode"`},
	}
	for _, tt := range tests {
		err := tt.a.validate()
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("%+v: %v, want %q", tt.a, err, tt.want)
		}
	}
}

// Arity is how the CLI tells an action's words from the guests after it.
func TestArity(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"ping web-1", 0},
		{"shutdown web-1", 0},
		{"shutdown reboot web-1", 1},
		{"shutdown REBOOT web-1", 1},
		{"reboot web-1", 0},
		{"suspend ram web-1", 1},
		{"suspend mem web-1", 1},
		{"vcpus offline 1,2 web-1", 2},
		{"read /etc/x web-1", 1},
		{"cat /etc/x web-1", 1},
		{"write /tmp/x data web-1", 2},
		{"password root web-1", 1},
		{"password --crypted root web-1", 2},
		{"ssh-key list root web-1", 2},
		{"ssh-key add root keys web-1", 3},
		{"explode web-1", 0},
	}
	for _, tt := range tests {
		w := strings.Fields(tt.in)
		if got := Arity(w[0], w[1:]); got != tt.want {
			t.Errorf("Arity(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// Confirmations are sentences from the table (issue 14: not "Vcpus offline
// 3 1 guest?" or "Shutdown powerdown 1 guest?"), and a freeze says when it
// thaws.
func TestQuestions(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		thaw time.Duration
		want string
	}{
		{"shutdown", 1, 0, "Shut down 1 guest (powerdown)?"},
		{"shutdown", 3, 0, "Shut down 3 guests (powerdown)?"},
		{"reboot", 2, 0, "Reboot 2 guests?"},
		{"shutdown halt", 1, 0, "Halt 1 guest?"},
		{"suspend mem", 1, 0, "Suspend 1 guest to RAM?"},
		{"suspend disk", 2, 0, "Suspend 2 guests to disk?"},
		{"vcpus offline 3", 1, 0, "Take vCPU 3 offline on 1 guest?"},
		{"vcpus offline 2,3", 4, 0, "Take vCPUs 2 and 3 offline on 4 guests?"},
		{"vcpus online 1-3", 1, 0, "Bring vCPUs 1, 2 and 3 online on 1 guest?"},
		{"freeze", 2, 5 * time.Minute, "Freeze 2 guests? Writes block until thawed; guestdeck thaws them after 5m."},
		{"freeze", 1, 90 * time.Second, "Freeze 1 guest? Writes block until thawed; guestdeck thaws them after 1m30s."},
		{"freeze", 1, 0, "Freeze 1 guest? Writes block until thawed; guestdeck will not thaw them."},
		{"write /tmp/x hello", 1, 0, "Replace /tmp/x with 5 bytes on 1 guest?"},
		{"settime", 2, 0, "Set the guest clock from the host clock on 2 guests?"},
		{"password root", 2, 0, "Set the password of root on 2 guests?"},
	}
	for _, tt := range tests {
		a, err := ParseAction(strings.Fields(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Question(tt.n, tt.thaw); got != tt.want {
			t.Errorf("%q on %d: %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
	// Actions built by hand never make Question panic.
	for _, a := range []Action{{Kind: "explode"}, {Kind: ActVCPUs, Mode: VCPUsOffline}} {
		if q := a.Question(1, 0); !strings.HasSuffix(q, "?") {
			t.Errorf("%+v: %q", a, q)
		}
	}
}

// One rule for confirmations: Destructive asks, TypedCount (shutdown on
// several guests) asks for the count, for the CLI and the dashboard alike.
func TestDangerByTable(t *testing.T) {
	tests := []struct {
		in          string
		destructive bool
		typedOn2    bool
	}{
		{"ping", false, false},
		{"info", false, false},
		{"thaw", false, false},
		{"settime", false, false},
		{"fstrim", false, false},
		{"read /x", false, false},
		{"vcpus online 1", false, false},
		{"vcpus offline 1", true, false},
		{"freeze", true, false},
		{"suspend ram", true, false},
		{"write /x y", true, false},
		{"shutdown", true, true},
		{"reboot", true, true},
		{"password root", true, false},
		{"ssh-key list root", false, false},
	}
	for _, tt := range tests {
		a, err := ParseAction(strings.Fields(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if a.Destructive() != tt.destructive || a.TypedCount(2) != tt.typedOn2 || a.TypedCount(1) {
			t.Errorf("%q: destructive %v typed(2) %v typed(1) %v", tt.in, a.Destructive(), a.TypedCount(2), a.TypedCount(1))
		}
	}
}

// A raw command (guestdeck agent) on several guests follows the same rule:
// as dangerous as the most dangerous action that sends it, any other
// mutating command asks, one that only reports does not, and one guest is
// never asked.
func TestRawConfirmation(t *testing.T) {
	tests := []struct {
		execute    string
		n          int
		byName     bool
		ask, typed bool
	}{
		{"guest-shutdown", 2, false, true, true},
		{"guest-shutdown", 1, true, false, false},
		{"guest-shutdown", 1, false, true, false}, // 'web-*' matched one: asked, as run asks
		{"guest-ping", 1, false, false, false},
		{"guest-suspend-ram", 3, false, true, false},
		{"guest-fsfreeze-freeze", 2, false, true, false},
		{"guest-set-time", 2, false, true, false},
		{"guest-exec", 2, false, true, false},
		{"guest-made-up", 2, false, true, false},
		{"guest-get-time", 2, false, false, false},
		{"guest-ping", 100, false, false, false},
	}
	for _, tt := range tests {
		if ask, typed := RawConfirmation(tt.execute, tt.n, tt.byName); ask != tt.ask || typed != tt.typed {
			t.Errorf("RawConfirmation(%s, %d) = %v %v, want %v %v", tt.execute, tt.n, ask, typed, tt.ask, tt.typed)
		}
	}
}

// The action table agrees with the agent-command table: every command an
// action sends is known; an action that mutates sends a command that does;
// an action that does not mutate sends none that does, but for the file
// handle commands a read opens and closes (the agent's handles, not the
// guest).
func TestTableAgreesWithCommands(t *testing.T) {
	kf := testKeyFile(t)
	for _, sug := range Suggestions() {
		a, err := ParseAction(strings.Fields(fill(sug, kf)))
		if err != nil {
			t.Fatalf("%q: %v", sug.Text, err)
		}
		s, _ := SpecOf(a.Kind)
		mutates := false
		for _, send := range a.Sends(time.Now()) {
			if send.host {
				// A libvirt call on the guest's machine (wake, start).
				if s.machine == nil || !strings.HasPrefix(send.Execute, "virDomain") {
					t.Errorf("%s calls %s on the host without a machine check", a, send.Execute)
				}
				mutates = true
				continue
			}
			c, ok := agentclient.Lookup(send.Execute)
			if !ok {
				t.Errorf("%s sends %s, which the command table does not know", a, send.Execute)
			}
			if c.Mutates && !strings.HasPrefix(send.Execute, "guest-file-") {
				mutates = true
			}
			if c.Mutates && !a.Mutating() && !strings.HasPrefix(send.Execute, "guest-file-") {
				t.Errorf("%s is not Mutating but sends %s", a, send.Execute)
			}
		}
		if a.Mutating() && !mutates && a.Kind != ActWrite {
			t.Errorf("%s is Mutating but sends nothing that mutates", a)
		}
		if a.Destructive() && !a.Mutating() {
			t.Errorf("%s is dangerous but not mutating: read-only mode would allow it", a)
		}
		if s.Summary == "" || s.sends == nil || s.run == nil {
			t.Errorf("%s: summary, sends and run are required", s.Kind)
		}
		if s.Args == CustomArgs && (s.parse == nil || s.arity == nil || s.usage == "" || s.str == nil || s.check == nil) {
			t.Errorf("%s: an action with its own words needs parse, arity, usage, str and check", s.Kind)
		}
	}
}

// Every suggestion parses (those wanting more words once given one), to an
// action whose Mutating is the suggestion's.
func TestSuggestionsParse(t *testing.T) {
	if len(Suggestions()) < len(Specs()) {
		t.Fatalf("%d suggestions for %d actions", len(Suggestions()), len(Specs()))
	}
	kf := testKeyFile(t)
	for _, s := range Suggestions() {
		a, err := ParseAction(strings.Fields(fill(s, kf)))
		if err != nil {
			t.Errorf("suggestion %q: %v", s.Text, err)
			continue
		}
		if a.Mutating() != s.Mutating {
			t.Errorf("suggestion %q: Mutating %v, action says %v", s.Text, s.Mutating, a.Mutating())
		}
	}
}

// Read-only mode refuses, in Fleet.Run itself, every action the table says
// mutates (every suggestion of it, aliases included) before dialling, and
// allows the others.
func TestReadonlyRefusesByTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, guests := fakeFleet(Options{Readonly: true, Timeout: time.Second}, 1)
		defer f.Close()
		sugs := Suggestions()
		// The mutating ones first: nothing may have dialled before them.
		slices.SortStableFunc(sugs, func(a, b Suggestion) int {
			switch {
			case a.Mutating == b.Mutating:
				return 0
			case a.Mutating:
				return -1
			}
			return 1
		})
		kf := testKeyFile(t)
		for _, s := range sugs {
			text := fill(s, kf)
			a, err := ParseAction(strings.Fields(text))
			if err != nil {
				t.Fatal(err)
			}
			r := f.Run(t.Context(), a, []string{"g000"}, nil)[0]
			refused := !r.OK && strings.Contains(r.Err, "refused: read-only mode does not allow "+string(a.Kind))
			if refused != s.Mutating {
				t.Errorf("%q (mutating %v) in read-only mode: %+v", text, s.Mutating, r)
			}
			if s.Mutating && len(guests["g000"].dialTimes()) != 0 {
				t.Fatalf("%q: dialled in read-only mode", text)
			}
		}
	})
}
