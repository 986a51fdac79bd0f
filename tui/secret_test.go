package tui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/themes"
)

func usersModel(t *testing.T, opts Options) (Model, *fakeSource) {
	t.Helper()
	gs := testGuests(3)
	for _, g := range gs {
		g.Commands = append(g.Commands, agentclient.CommandInfo{Name: "guest-set-user-password", Enabled: true},
			agentclient.CommandInfo{Name: "guest-ssh-get-authorized-keys", Enabled: true})
	}
	src := newFakeSource(gs)
	opts.Now = func() time.Time { return testNow }
	opts.Styles = themes.Mono()
	m := New(src, opts)
	m.resize(120, 30)
	return m, src
}

// :password USER asks for the password masked; it is never on screen (the
// prompt, the greyed-row preview, the confirmation, the event log),
// reaches the fleet's Run, and is wiped once the action is done.
func TestPasswordPromptMasked(t *testing.T) {
	const pw = "hunter2 is my password"
	m, src := usersModel(t, Options{})
	release := src.holdRuns()
	t.Cleanup(release)
	m = press(t, m, ":")
	m = typeText(t, m, "password root")
	m = press(t, m, "enter")
	if v := view(m); !strings.Contains(v, "password for root:") {
		t.Fatalf("no password prompt:\n%s", v)
	}
	m = typeText(t, m, pw)
	if v := view(m); strings.Contains(v, "hunter2") || !strings.Contains(v, "****") {
		t.Fatalf("the password shows while typed:\n%s", v)
	}
	m = press(t, m, "enter")
	if c := m.openConfirmation(); c == nil || !strings.Contains(view(m), "Set the password of root on 1 guest?") {
		t.Fatalf("no confirmation:\n%s", view(m))
	}
	if v := view(m); strings.Contains(v, "hunter2") {
		t.Fatalf("the confirmation shows the password:\n%s", v)
	}
	started := make(chan struct{}, 1)
	src.mu.Lock()
	src.onRun = func() { started <- struct{}{} }
	src.mu.Unlock()
	next, cmd := m.Update(keyMsg(t, "y"))
	m = next.(Model)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the action never reached the fleet")
	}
	src.mu.Lock()
	secret := src.runs[0].action.Users.Secret
	got := string(secret)
	src.mu.Unlock()
	if got != pw {
		t.Fatalf("the fleet got %q", got)
	}
	release()
	m = runCmd(t, m, cmd)
	if !bytes.Equal(secret, make([]byte, len(pw))) {
		t.Errorf("the password is still in memory after the run: %q", secret)
	}
	m = press(t, m, "e")
	if v := view(m); strings.Contains(v, "hunter2") || !strings.Contains(v, "password root") {
		t.Errorf("event log:\n%s", v)
	}
}

// Read-only mode refuses :password before asking for anything.
func TestPasswordReadonly(t *testing.T) {
	m, _ := usersModel(t, Options{Readonly: true})
	m = press(t, m, ":")
	m = typeText(t, m, "password root")
	m = press(t, m, "enter")
	if m.secret != nil || m.isOpen(layerCommand) || !strings.Contains(m.status, "read-only") {
		t.Fatalf("read-only: secret %v, status %q\n%s", m.secret, m.status, view(m))
	}
}
