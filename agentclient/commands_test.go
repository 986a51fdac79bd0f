package agentclient_test

import (
	"encoding/json"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
)

// schemaCommands are the commands of the protocol schema the project
// implements (qga-schema.txt), with what the schema says of them.
var schemaCommands = []struct {
	name      string
	noReply   bool // 'success-response': 'no'
	since     string
	whileFrzn bool // qemu-ga's freeze allowlist
}{
	{"guest-sync-delimited", false, "1.1", true},
	{"guest-sync", false, "0.15.0", true},
	{"guest-ping", false, "0.15.0", true},
	{"guest-get-time", false, "1.5", false},
	{"guest-set-time", false, "1.5", false},
	{"guest-info", false, "0.15.0", true},
	{"guest-shutdown", true, "0.15.0", false},
	{"guest-file-open", false, "0.15.0", false},
	{"guest-file-close", false, "0.15.0", false},
	{"guest-file-read", false, "0.15.0", false},
	{"guest-file-write", false, "0.15.0", false},
	{"guest-file-seek", false, "0.15.0", false},
	{"guest-file-flush", false, "0.15.0", false},
	{"guest-fsfreeze-status", false, "0.15.0", true},
	{"guest-fsfreeze-freeze", false, "0.15.0", false},
	{"guest-fsfreeze-thaw", false, "0.15.0", true},
	{"guest-fstrim", false, "1.2", false},
	{"guest-suspend-disk", true, "1.1", false},
	{"guest-suspend-ram", true, "1.1", false},
	{"guest-suspend-hybrid", true, "1.1", false},
	{"guest-network-get-interfaces", false, "1.1", false},
	{"guest-get-vcpus", false, "1.5", false},
	{"guest-set-vcpus", false, "1.5", false},
}

func TestCommandTableCoversSchema(t *testing.T) {
	if len(schemaCommands) != 23 {
		t.Fatalf("the schema has 23 commands, the list %d", len(schemaCommands))
	}
	for _, sc := range schemaCommands {
		c, ok := agentclient.Lookup(sc.name)
		if !ok {
			t.Errorf("%s: not in the table", sc.name)
			continue
		}
		if c.SuccessResponse == sc.noReply || c.Since != sc.since || c.WhileFrozen != sc.whileFrzn {
			t.Errorf("%s: table %+v, schema no-reply=%v since %s while-frozen=%v", sc.name, c, sc.noReply, sc.since, sc.whileFrzn)
		}
		if agentclient.SuccessResponse(sc.name) != c.SuccessResponse || agentclient.AllowedWhileFrozen(sc.name) != c.WhileFrozen || agentclient.Mutates(sc.name) != c.Mutates {
			t.Errorf("%s: the package's lookups disagree with the table", sc.name)
		}
	}
	// What the client assumes of a command it does not know.
	if _, ok := agentclient.Lookup("guest-x"); ok {
		t.Errorf("guest-x is in the table")
	}
	if !agentclient.Mutates("guest-x") || !agentclient.SuccessResponse("guest-x") || agentclient.AllowedWhileFrozen("guest-x") {
		t.Errorf("an unknown command must count as mutating, answering and refused while frozen")
	}
}

// Commands that only report do not mutate; everything that acts does.
func TestCommandTableMutates(t *testing.T) {
	for _, tt := range []struct {
		name    string
		mutates bool
	}{
		{"guest-ping", false}, {"guest-info", false}, {"guest-sync-delimited", false}, {"guest-get-time", false},
		{"guest-fsfreeze-status", false}, {"guest-network-get-interfaces", false}, {"guest-get-vcpus", false},
		{"guest-get-osinfo", false}, {"guest-get-host-name", false}, {"guest-get-timezone", false},
		{"guest-get-users", false}, {"guest-get-fsinfo", false}, {"guest-get-disks", false}, {"guest-exec-status", false},
		{"guest-set-time", true}, {"guest-shutdown", true}, {"guest-suspend-ram", true}, {"guest-fsfreeze-freeze", true},
		{"guest-fsfreeze-thaw", true}, {"guest-fstrim", true}, {"guest-set-vcpus", true}, {"guest-exec", true},
		{"guest-file-open", true}, {"guest-file-read", true}, {"guest-file-write", true}, {"guest-file-close", true},
		{"guest-set-user-password", true}, {"guest-ssh-add-authorized-keys", true}, {"guest-set-memory-blocks", true},
	} {
		if got := agentclient.Mutates(tt.name); got != tt.mutates {
			t.Errorf("Mutates(%s) = %v, want %v", tt.name, got, tt.mutates)
		}
	}
	for _, c := range agentclient.Commands() {
		if c.WhileFrozen && c.Mutates && c.Name != "guest-fsfreeze-thaw" {
			t.Errorf("%s: mutating and allowed while frozen", c.Name)
		}
	}
}

func TestReplyLimits(t *testing.T) {
	limit := func(name string, args any) int {
		c, ok := agentclient.Lookup(name)
		if !ok {
			t.Fatalf("%s not in the table", name)
		}
		var a []byte
		if args != nil {
			a, _ = json.Marshal(args)
		}
		return c.ReplyLimit(a)
	}
	const kib, mib = 1 << 10, 1 << 20
	for _, tt := range []struct {
		name     string
		args     any
		min, max int
	}{
		{"guest-ping", nil, 1 * kib, 16 * kib},
		{"guest-get-time", nil, 1 * kib, 16 * kib},
		{"guest-sync-delimited", nil, 1 * kib, 16 * kib},
		{"guest-info", nil, 16 * kib, 64 * kib},
		{"guest-get-osinfo", nil, 16 * kib, 64 * kib},
		{"guest-get-host-name", nil, 16 * kib, 64 * kib},
		{"guest-get-timezone", nil, 16 * kib, 64 * kib},
		{"guest-get-users", nil, 64 * kib, 256 * kib},
		{"guest-network-get-interfaces", nil, 1 * mib, 4 * mib},
		{"guest-get-vcpus", nil, 512 * kib, 4 * mib},
		{"guest-get-fsinfo", nil, 1 * mib, 4 * mib},
		// A file read is sized from its count: base64 (4/3) plus the envelope.
		{"guest-file-read", nil, 4096 * 4 / 3, 16 * kib},
		{"guest-file-read", map[string]int{"handle": 1000, "count": 1 * mib}, 1 * mib * 4 / 3, 1*mib*4/3 + 64*kib},
		{"guest-file-read", map[string]int{"handle": 1000, "count": 48 * mib}, 64 * mib, 66 * mib},
		{"guest-file-read", map[string]int{"handle": 1000, "count": 1 << 40}, 64 * mib, 66 * mib}, // the agent's cap
		{"guest-file-read", map[string]any{"handle": 1000, "count": "x"}, 4096 * 4 / 3, 16 * kib},
	} {
		if got := limit(tt.name, tt.args); got < tt.min || got > tt.max {
			t.Errorf("%s %v: limit %d, want %d..%d", tt.name, tt.args, got, tt.min, tt.max)
		}
	}
	// Nothing but data sized from the request goes past libvirt's cap.
	for _, c := range agentclient.Commands() {
		if c.MaxReply <= 0 || c.MaxReply > agentclient.RawReplyLimit && c.Name != "guest-file-read" && c.Name != "guest-exec-status" {
			t.Errorf("%s: limit %d", c.Name, c.MaxReply)
		}
	}
}
