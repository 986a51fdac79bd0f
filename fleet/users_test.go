package fleet_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

const (
	testKey1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one@host"
	testKey2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQTwo two@host"
)

// usersFleet serves three simulated guests: u00 and u01 healthy, u02 with
// the users-and-keys commands disabled by its admin. Requests on the wire
// are recorded.
func usersFleet(t *testing.T, opts fleet.Options) (*sim.Farm, *fleet.Fleet, *wireLog, []string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 3, func(i int) sim.Config {
		c := sim.DefaultConfig(fmt.Sprintf("u%02d", i))
		if i == 2 {
			c.Disabled = []string{"guest-set-user-password", "guest-ssh-add-authorized-keys", "guest-ssh-get-authorized-keys", "guest-ssh-remove-authorized-keys"}
		}
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	w := &wireLog{lines: map[string][][]byte{}}
	opts.Dialers = map[string]fleet.Dialer{"unix": w.dialer}
	f := fleet.New(opts)
	t.Cleanup(func() { f.Close() })
	var names []string
	for _, sock := range farm.Sockets() {
		n := strings.TrimSuffix(filepath.Base(sock), ".sock")
		names = append(names, n)
		f.Add(fleet.Target{Name: n, Address: "unix:" + sock})
	}
	f.RefreshOnce(context.Background(), names)
	return farm, f, w, names
}

func keyFile(t *testing.T, keys ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys.pub")
	if err := os.WriteFile(p, []byte("# a comment\n\n"+strings.Join(keys, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Keys added, listed, set and removed on two guests, the third skipped
// (its admin disabled the commands), each with its own result; the sim's
// ~/.ssh/authorized_keys shows the outcome.
func TestSSHKeyActions(t *testing.T) {
	_, f, _, names := usersFleet(t, fastOptions())
	ctx := context.Background()
	run := func(words ...string) []fleet.Result {
		t.Helper()
		a, err := fleet.ParseAction(words)
		if err != nil {
			t.Fatal(err)
		}
		return f.Run(ctx, a, names, nil)
	}
	check := func(rs []fleet.Result, want string) {
		t.Helper()
		for i, r := range rs {
			switch {
			case i == 2 && (!r.Skipped || !strings.Contains(r.Err, "disabled")):
				t.Errorf("%s: want skipped as disabled, got %+v", r.Guest, r)
			case i < 2 && (!r.OK || !strings.Contains(r.Result, want)):
				t.Errorf("%s: want ok %q, got %+v", r.Guest, want, r)
			}
		}
	}
	check(run("ssh-key", "add", "root", keyFile(t, testKey1, testKey2)), "added 2 keys to root's authorized keys")
	rs := run("ssh-key", "list", "root")
	check(rs, "2 keys of root")
	for _, r := range rs[:2] {
		if string(r.Data) != testKey2+"\n"+testKey1+"\n" { // as the agent reports them: last line first
			t.Errorf("%s lists %q", r.Guest, r.Data)
		}
	}
	check(run("ssh-key", "remove", "root", keyFile(t, testKey1)), "removed 1 key")
	check(run("ssh-key", "set", "user", keyFile(t, testKey2)), "user's authorized keys set to 1 key")
	for _, n := range names[:2] {
		var b strings.Builder
		if _, err := f.ReadFile(ctx, n, "/root/.ssh/authorized_keys", &b, nil); err != nil || b.String() != testKey2 {
			t.Errorf("%s: root's authorized_keys = %q, %v", n, b.String(), err)
		}
	}
	// An unknown user fails on that guest with the agent's words.
	r := run("ssh-key", "list", "nobody")[0]
	if r.OK || !strings.Contains(r.Err, "failed to lookup user 'nobody'") {
		t.Errorf("unknown user: %+v", r)
	}
}

// A password reaches the guest (its /etc/shadow record changes) and
// nothing else: not the action's text or %v, the dry run's sends, the audit
// entries, the wire log's other commands, or the guest's command log.
func TestPasswordNeverShown(t *testing.T) {
	farm, f, w, names := usersFleet(t, fastOptions())
	ctx := context.Background()
	const pw = "correct horse battery staple"
	b64 := base64.StdEncoding.EncodeToString([]byte(pw))
	a, err := fleet.ParseAction([]string{"password", "user"})
	if err != nil {
		t.Fatal(err)
	}
	if !a.NeedsSecret() || !a.Mutating() || !a.Destructive() {
		t.Fatalf("password: needs secret %v, mutating %v, destructive %v", a.NeedsSecret(), a.Mutating(), a.Destructive())
	}
	// Without the secret nothing is sent.
	if r := f.Run(ctx, a, names[:1], nil)[0]; r.OK || !strings.Contains(r.Err, "no password") {
		t.Errorf("no secret: %+v", r)
	}
	a.Users.Secret = fleet.Secret(pw)
	w.reset()
	rs := f.Run(ctx, a, names, nil)
	if !rs[0].OK || !rs[1].OK || !rs[2].Skipped {
		t.Fatalf("results %+v", rs)
	}
	for i, g := range farm.Guests()[:2] {
		if got := g.Shadow("user"); got != sim.SimHash("user", pw) {
			t.Errorf("%s: shadow(user) = %q", names[i], got)
		}
	}
	// The wire carried it, base64-encoded, in guest-set-user-password only.
	var sent bool
	for _, req := range w.sent(t, f.Guest(names[0]).Address) {
		if strings.Contains(string(req.Arguments), b64) {
			sent = sent || req.Execute == "guest-set-user-password"
		}
	}
	if !sent {
		t.Error("the password never reached the wire")
	}

	var shown []string
	shown = append(shown, a.String(), fmt.Sprintf("%v %+v %#v %s", a, a, a, a.Users.Secret))
	js, _ := json.Marshal(a)
	shown = append(shown, string(js))
	now := time.Now()
	for _, g := range []string{names[0], names[1]} {
		sends, skip := a.Plan(f.Guest(g), now)
		if skip != "" {
			t.Fatalf("plan skips %s: %s", g, skip)
		}
		for _, s := range sends {
			shown = append(shown, s.JSON())
			if !strings.Contains(s.JSON(), `"password":"<secret>"`) {
				t.Errorf("dry run of %s shows %s", g, s.JSON())
			}
		}
		for _, e := range f.Guest(g).Log.All() {
			shown = append(shown, e.Command+" "+e.Request+" "+e.Reply)
		}
	}
	var gs []*fleet.Guest
	for _, n := range names {
		gs = append(gs, f.Guest(n))
	}
	for _, phase := range []string{audit.Intent, audit.DryRun} {
		aj, _ := json.Marshal(fleet.AuditPlan(a, gs, phase, now))
		shown = append(shown, string(aj))
	}
	oj, _ := json.Marshal(fleet.AuditResults(rs, nil))
	shown = append(shown, string(oj))
	for _, s := range shown {
		if strings.Contains(s, pw) || strings.Contains(s, b64) || strings.Contains(s, b64[:12]) {
			t.Errorf("the password shows in %q", s)
		}
	}
}

// The guest's command log, as the dashboard's Log tab shows it, has the
// password request with <secret>: both when the fleet logs the call and
// when the transport hands over its wire line (the default dialer).
func TestPasswordNotInCommandLog(t *testing.T) {
	const pw = "tr0ub4dor&3-but-longer"
	b64 := base64.StdEncoding.EncodeToString([]byte(pw))
	a, err := fleet.ParseAction([]string{"password", "root"})
	if err != nil {
		t.Fatal(err)
	}
	a.Users.Secret = fleet.Secret(pw)
	ctx := context.Background()
	_, wired, _, wnames := usersFleet(t, fastOptions())
	_, plain := simFleet(t, 1, fastOptions())
	for _, tc := range []struct {
		f    *fleet.Fleet
		name string
	}{{wired, wnames[0]}, {plain, "s00"}} {
		tc.f.RefreshOnce(ctx, []string{tc.name})
		if r := tc.f.Run(ctx, a, []string{tc.name}, nil)[0]; !r.OK {
			t.Fatalf("%s: %+v", tc.name, r)
		}
		tc.f.RefreshOnce(ctx, []string{tc.name}) // publishes the log
		var logged bool
		for _, e := range tc.f.Guest(tc.name).Log.All() {
			line := e.Command + " " + e.Request + " " + e.Reply
			if strings.Contains(line, pw) || strings.Contains(line, b64[:8]) {
				t.Errorf("%s: the log shows the password: %q", tc.name, line)
			}
			logged = logged || (e.Command == "guest-set-user-password" && strings.Contains(e.Request, "<secret>"))
		}
		if !logged {
			t.Errorf("%s: no guest-set-user-password entry with <secret> in %+v", tc.name, tc.f.Guest(tc.name).Log.Entries())
		}
	}
}

// Read-only mode refuses every users-and-keys action that changes a guest,
// before dialling; listing keys only looks.
func TestUsersReadonly(t *testing.T) {
	opts := fastOptions()
	opts.Readonly = true
	_, f, w, names := usersFleet(t, opts)
	ctx := context.Background()
	kf := keyFile(t, testKey1)
	for _, words := range [][]string{{"password", "root"}, {"password", "--crypted", "root"}, {"ssh-key", "add", "root", kf}, {"ssh-key", "set", "root", kf}, {"ssh-key", "remove", "root", kf}} {
		a, err := fleet.ParseAction(words)
		if err != nil {
			t.Fatal(err)
		}
		a.Users.Secret = fleet.Secret("pw")
		w.reset()
		for _, r := range f.Run(ctx, a, names, nil) {
			if r.OK || !strings.Contains(r.Err, "read-only") {
				t.Errorf("%s on %s: %+v", a, r.Guest, r)
			}
		}
		for _, n := range names {
			if got := w.sent(t, f.Guest(n).Address); len(got) != 0 {
				t.Errorf("%s sent %+v to %s", a, got, n)
			}
		}
	}
	a, _ := fleet.ParseAction([]string{"ssh-key", "list", "root"})
	if a.Mutating() {
		t.Error("ssh-key list counts as mutating")
	}
	if r := f.Run(ctx, a, names[:1], nil)[0]; r.OK || strings.Contains(r.Err, "read-only") {
		t.Errorf("list in read-only mode: %+v (want the agent's no-such-file, not a refusal)", r)
	}
}

func TestParseUserActions(t *testing.T) {
	kf := keyFile(t, testKey1)
	for _, tc := range []struct {
		words []string
		want  string // String(), or the error's start
		bad   bool
	}{
		{[]string{"password", "root"}, "password root", false},
		{[]string{"password", "--crypted", "root"}, "password --crypted root", false},
		{[]string{"password"}, "password needs a user name", true},
		{[]string{"password", "root", "hunter2"}, "password needs a user name", true},
		{[]string{"password", "a:b"}, `password: user name "a:b"`, true},
		{[]string{"ssh-key", "list", "root"}, "ssh-key list root", false},
		{[]string{"ssh-key", "add", "root", kf}, "ssh-key add root " + kf + " (1 key)", false},
		{[]string{"ssh-key", "add", "root"}, "ssh-key add needs a user name and a local key file", true},
		{[]string{"ssh-key", "add", "root", "/nonexistent/k.pub"}, "key file:", true},
		{[]string{"ssh-key", "add", "root", "/dev/null"}, "key file /dev/null: not a regular file", true},
		{[]string{"ssh-key", "frob", "root"}, `ssh-key mode "frob"`, true},
	} {
		a, err := fleet.ParseAction(tc.words)
		switch {
		case tc.bad && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%q: err %v, want %q", tc.words, err, tc.want)
		case !tc.bad && (err != nil || a.String() != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.words, a.String(), err, tc.want)
		}
	}
	for _, tc := range []struct {
		rest []string
		n    int
	}{{[]string{"root", "web-1"}, 1}, {[]string{"--crypted", "root", "web-1"}, 2}} {
		if n, ok := fleet.UserArity("password", tc.rest); !ok || n != tc.n {
			t.Errorf("arity password %q = %d", tc.rest, n)
		}
	}
	if n, _ := fleet.UserArity("ssh-key", []string{"list", "root", "web-1"}); n != 2 {
		t.Errorf("arity ssh-key list = %d", n)
	}
	if n, _ := fleet.UserArity("ssh-key", []string{"add", "root", "k", "web-1"}); n != 3 {
		t.Errorf("arity ssh-key add = %d", n)
	}
}

// The plan is what goes on the wire for the users-and-keys actions too:
// each sends exactly its Sends, the password's placeholder standing for
// the base64 the agent gets.
func TestUserSendsAreWhatIsSent(t *testing.T) {
	_, f, w, names := usersFleet(t, fastOptions())
	ctx := context.Background()
	kf := keyFile(t, testKey1, testKey2)
	for _, words := range [][]string{
		{"ssh-key", "add", "root", kf}, {"ssh-key", "list", "root"}, {"ssh-key", "set", "root", kf},
		{"ssh-key", "remove", "root", kf}, {"password", "user"}, {"password", "--crypted", "root"},
	} {
		a, err := fleet.ParseAction(words)
		if err != nil {
			t.Fatal(err)
		}
		a.Users.Secret = fleet.Secret("$6$x$y")
		plan, skip := a.Plan(f.Guest(names[0]), time.Now())
		if skip != "" {
			t.Fatalf("%s: plan skips: %s", a, skip)
		}
		w.reset()
		if r := f.Run(ctx, a, names[:1], nil)[0]; !r.OK {
			t.Fatalf("%s: %+v", a, r)
		}
		got := w.sent(t, f.Guest(names[0]).Address)
		if len(got) != len(plan) {
			t.Fatalf("%s: sent %+v, plan %+v", a, got, plan)
		}
		for i, p := range plan {
			var pargs, wargs any
			b, _ := json.Marshal(p.Arguments)
			json.Unmarshal(b, &pargs)
			json.Unmarshal(got[i].Arguments, &wargs)
			if got[i].Execute != p.Execute || !sameArgs(pargs, wargs, 0, 0) {
				t.Errorf("%s: sent %s %s, plan %s", a, got[i].Execute, got[i].Arguments, p.JSON())
			}
		}
		if !slices.Equal(a.Commands(), []string{plan[0].Execute}) {
			t.Errorf("%s: Commands() = %v", a, a.Commands())
		}
	}
}
