package sim

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
)

// TestDispatchCoversTable: every command the simulator serves is in
// agentclient's table, and every table entry is either served or listed as
// unserved (not both): a command added to the table without a decision for
// the simulator fails here.
func TestDispatchCoversTable(t *testing.T) {
	for name := range commands {
		if _, ok := agentclient.Lookup(name); !ok {
			t.Errorf("%s: served, but not in agentclient's table", name)
		}
	}
	seen := map[string]bool{}
	for _, name := range unserved {
		if _, ok := agentclient.Lookup(name); !ok {
			t.Errorf("%s: listed as unserved, but not in agentclient's table", name)
		}
		if seen[name] {
			t.Errorf("%s: listed as unserved twice", name)
		}
		seen[name] = true
	}
	for _, c := range agentclient.Commands() {
		_, served := commands[c.Name]
		if listed := slices.Contains(unserved, c.Name); served == listed {
			t.Errorf("%s: served %v, listed as unserved %v: want exactly one", c.Name, served, listed)
		}
	}
}

// TestGuestInfoFromTable: a guest lists the commands its version offers
// (the table's since-versions) that the simulator serves, in the real
// qemu-ga 7.2's order with its success-response flags, and answers one newer
// than its version as a command it does not know.
func TestGuestInfoFromTable(t *testing.T) {
	// The real agent's list (testdata), less what the simulator does not serve.
	var real []agentclient.CommandInfo
	f, err := os.Open("testdata/real-qga-7.2.22.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && real == nil {
		var r realRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Request, `"guest-info"`) {
			continue
		}
		var reply struct {
			Return *agentclient.Info `json:"return"`
		}
		if json.Unmarshal(latin1(r.Reply), &reply) == nil && reply.Return != nil {
			for _, ci := range reply.Return.SupportedCommands {
				if !slices.Contains(unserved, ci.Name) {
					ci.Enabled = true // the real agent blocks its mutating ones
					real = append(real, ci)
				}
			}
		}
	}
	if len(real) == 0 {
		t.Fatal("no guest-info reply in the recording")
	}
	_, sock := startGuest(t, DefaultConfig("deb1"))
	var info agentclient.Info
	newRaw(t, sock).call(`{"execute":"guest-info"}`, &info)
	if !slices.Equal(info.SupportedCommands, real) {
		t.Errorf("guest-info lists\n%v\nthe real qemu-ga 7.2.22 (served commands)\n%v", info.SupportedCommands, real)
	}

	// qemu-ga 2.5 had guest-exec but not guest-get-osinfo (2.10).
	cfg := DefaultConfig("old")
	cfg.AgentVersion = "2.5.0"
	_, sock = startGuest(t, cfg)
	rc := newRaw(t, sock)
	rc.call(`{"execute":"guest-info"}`, &info)
	names := make([]string, len(info.SupportedCommands))
	for i, ci := range info.SupportedCommands {
		names[i] = ci.Name
	}
	if !slices.Contains(names, "guest-exec") || slices.Contains(names, "guest-get-osinfo") || slices.Contains(names, "guest-get-host-name") {
		t.Errorf("qemu-ga 2.5.0 lists %v", names)
	}
	if class, desc := rc.callErr(`{"execute":"guest-get-osinfo"}`); class != "CommandNotFound" || desc != "The command guest-get-osinfo has not been found" {
		t.Errorf("guest-get-osinfo on 2.5.0: %s %q", class, desc)
	}
}
