package fleet

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
)

// realInfos returns the guest-info command lists qemu-ga 7.2.22 in a real VM
// answered before and during a freeze (recorded for the simulator): while
// frozen it lists every command it refuses with enabled=false.
func realInfos(t *testing.T) (thawed, frozen []agentclient.CommandInfo) {
	t.Helper()
	f, err := os.Open("../agentclient/sim/testdata/real-qga-7.2.22-vm.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ Request, Reply string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		var req struct{ Execute string }
		if json.Unmarshal([]byte(rec.Request), &req) != nil || req.Execute != "guest-info" {
			continue
		}
		var rep struct{ Return agentclient.Info }
		if err := json.Unmarshal([]byte(rec.Reply), &rep); err != nil {
			t.Fatal(err)
		}
		cmds := rep.Return.SupportedCommands
		i := slices.IndexFunc(cmds, func(c agentclient.CommandInfo) bool { return c.Name == "guest-file-open" })
		switch {
		case i < 0:
		case cmds[i].Enabled && thawed == nil:
			thawed = cmds
		case !cmds[i].Enabled && frozen == nil:
			frozen = cmds
		}
	}
	if thawed == nil || frozen == nil {
		t.Fatal("the recording lacks a guest-info before or during a freeze")
	}
	return thawed, frozen
}

// with returns cmds with name disabled, or removed when drop is set.
func with(cmds []agentclient.CommandInfo, name string, drop bool) []agentclient.CommandInfo {
	out := slices.Clone(cmds)
	i := slices.IndexFunc(out, func(c agentclient.CommandInfo) bool { return c.Name == name })
	if drop {
		return slices.Delete(out, i, i+1)
	}
	out[i].Enabled = false
	return out
}

func TestCheck(t *testing.T) {
	thawedInfo, frozenInfo := realInfos(t)
	ready := func(cmds []agentclient.CommandInfo) *Guest {
		return &Guest{State: Ready, Freeze: agentclient.Thawed, Commands: cmds}
	}
	frozen := func(cmds []agentclient.CommandInfo) *Guest {
		return &Guest{State: Frozen, Freeze: agentclient.Frozen, Commands: cmds}
	}
	// Thawed, the capabilities still those read during the freeze (an
	// action right after a thaw, before the next poll reads them again).
	thawedNow := func(cmds []agentclient.CommandInfo) *Guest {
		return &Guest{State: Ready, Freeze: agentclient.Thawed, Commands: cmds, CapsFrozen: true}
	}
	const isFrozen = "guest is frozen: thaw it first"
	tests := []struct {
		name   string
		action string
		g      *Guest
		want   string
	}{
		{"read thawed", "read /etc/hostname", ready(thawedInfo), ""},
		{"read frozen", "read /etc/hostname", frozen(frozenInfo), isFrozen},
		// Frozen seen before guest-info was asked again.
		{"read frozen, info from before", "read /etc/hostname", frozen(thawedInfo), isFrozen},
		{"read frozen, no info yet", "read /etc/hostname", frozen(nil), isFrozen},
		{"read frozen, freeze state only", "read /etc/hostname", &Guest{State: Ready, Freeze: agentclient.Frozen, Commands: frozenInfo}, isFrozen},
		{"write frozen", "write /tmp/x hi", frozen(frozenInfo), isFrozen},
		{"settime frozen", "settime", frozen(frozenInfo), isFrozen},
		{"vcpus frozen", "vcpus offline 1", frozen(frozenInfo), isFrozen},
		{"shutdown frozen", "shutdown", frozen(frozenInfo), isFrozen},
		{"fstrim frozen", "fstrim", frozen(frozenInfo), isFrozen},
		// What a frozen agent still runs.
		{"ping frozen", "ping", frozen(frozenInfo), ""},
		{"info frozen", "info", frozen(frozenInfo), ""},
		{"thaw frozen", "thaw", frozen(frozenInfo), ""},
		// A second freeze is run: Run reports "already frozen".
		{"freeze frozen", "freeze", frozen(frozenInfo), ""},
		// Absent commands stay absent whatever the freeze state.
		{"read lacking thawed", "read /x", ready(with(thawedInfo, "guest-file-read", true)), "agent lacks guest-file-read"},
		{"read lacking frozen", "read /x", frozen(with(frozenInfo, "guest-file-read", true)), "agent lacks guest-file-read"},
		// Disabled by the guest's admin.
		{"write disabled", "write /tmp/x hi", ready(with(thawedInfo, "guest-file-write", false)), "guest-file-write is disabled on this guest"},
		{"freeze disabled", "freeze", ready(with(thawedInfo, "guest-fsfreeze-freeze", false)), "guest-fsfreeze-freeze is disabled on this guest"},
		{"thaw disabled frozen", "thaw", frozen(with(frozenInfo, "guest-fsfreeze-thaw", false)), "guest-fsfreeze-thaw is disabled on this guest"},
		// Thawed since the capabilities were read frozen: what the freeze
		// disabled is the agent's to refuse, not known disabled; what a
		// frozen agent still lists disabled, its admin disabled.
		{"read thawed, info from the freeze", "read /etc/hostname", thawedNow(frozenInfo), ""},
		{"write thawed, info from the freeze", "write /tmp/x hi", thawedNow(frozenInfo), ""},
		{"thaw disabled, info from the freeze", "thaw", thawedNow(with(frozenInfo, "guest-fsfreeze-thaw", false)), "guest-fsfreeze-thaw is disabled on this guest"},
		{"read lacking, info from the freeze", "read /x", thawedNow(with(frozenInfo, "guest-file-read", true)), "agent lacks guest-file-read"},
		{"nil guest", "ping", nil, "unknown guest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAction(strings.Fields(tt.action))
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Check(tt.g); got != tt.want {
				t.Errorf("Check(%s) = %q, want %q", tt.action, got, tt.want)
			}
		})
	}
	// Listing a directory (guest-exec) gives the same reason.
	if got := checkCommands(frozen(frozenInfo), "guest-exec", "guest-exec-status"); got != isFrozen {
		t.Errorf("list dir while frozen: %q, want %q", got, isFrozen)
	}
}
