package agentclient_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// schemaCommand is what the protocol schema says of one command.
type schemaCommand struct {
	name, since string
	noReply     bool // 'success-response': 'no' (or false)
}

// readSchema parses the protocol schema (QAPI: "# Since: X" in the comment
// block before each definition, then "{ 'command': 'NAME', ... }").
func readSchema(t *testing.T) []schemaCommand {
	t.Helper()
	testpeers.Require(t, testpeers.NeedShared)
	dir, err := testpeers.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "protocol", "qga-schema.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sinceRE := regexp.MustCompile(`^#\s*Since:?\s+([0-9][0-9.]*)`)
	commandRE := regexp.MustCompile(`^\{\s*'command':\s*'([^']+)'`)
	noReplyRE := regexp.MustCompile(`'success-response':\s*('no'|false)`)
	var out []schemaCommand
	lines := strings.Split(string(b), "\n")
	since := ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := sinceRE.FindStringSubmatch(l); m != nil {
			since = m[1]
			continue
		}
		if !strings.HasPrefix(l, "{") {
			continue
		}
		// One definition, up to its closing brace.
		def, depth := "", 0
		for ; i < len(lines); i++ {
			def += lines[i] + "\n"
			depth += strings.Count(lines[i], "{") - strings.Count(lines[i], "}")
			if depth <= 0 {
				break
			}
		}
		if m := commandRE.FindStringSubmatch(def); m != nil {
			out = append(out, schemaCommand{name: m[1], since: since, noReply: noReplyRE.MatchString(def)})
		}
		since = ""
	}
	if len(out) == 0 {
		t.Fatal("no commands found in the schema")
	}
	return out
}

// TestCommandTableMatchesSchema: every command of the protocol schema is in
// the table with the schema's since-version and success-response.
func TestCommandTableMatchesSchema(t *testing.T) {
	for _, sc := range readSchema(t) {
		c, ok := agentclient.Lookup(sc.name)
		if !ok {
			t.Errorf("%s: in the schema, not in the table", sc.name)
			continue
		}
		if c.SuccessResponse == sc.noReply {
			t.Errorf("%s: table says success-response %v, the schema no-reply %v", sc.name, c.SuccessResponse, sc.noReply)
		}
		if c.Since != sc.since {
			t.Errorf("%s: table says since %q, the schema %q", sc.name, c.Since, sc.since)
		}
	}
}

// TestCommandTableFacts: the package's lookups read the table, the freeze
// allowlist is qemu-ga's, and a command the table does not know is assumed
// to mutate, answer and be refused while frozen.
func TestCommandTableFacts(t *testing.T) {
	var frozenOK []string
	for _, c := range agentclient.Commands() {
		if agentclient.SuccessResponse(c.Name) != c.SuccessResponse || agentclient.AllowedWhileFrozen(c.Name) != c.WhileFrozen || agentclient.Mutates(c.Name) != c.Mutates {
			t.Errorf("%s: the package's lookups disagree with the table", c.Name)
		}
		if c.WhileFrozen {
			frozenOK = append(frozenOK, c.Name)
		}
		if c.OS == 0 || c.Since == "" {
			t.Errorf("%s: no OS or since-version", c.Name)
		}
		for _, api := range c.Libvirt {
			if !strings.HasPrefix(api, "virDomain") {
				t.Errorf("%s: libvirt API %q", c.Name, api)
			}
		}
	}
	// qemu-ga's ga_freeze_allowlist (qga/main.c).
	want := []string{"guest-sync-delimited", "guest-sync", "guest-ping", "guest-info", "guest-fsfreeze-status", "guest-fsfreeze-thaw"}
	if !slices.Equal(frozenOK, want) {
		t.Errorf("allowed while frozen: %v, want %v", frozenOK, want)
	}
	if _, ok := agentclient.Lookup("guest-x"); ok {
		t.Errorf("guest-x is in the table")
	}
	if !agentclient.Mutates("guest-x") || !agentclient.SuccessResponse("guest-x") || agentclient.AllowedWhileFrozen("guest-x") {
		t.Errorf("an unknown command must count as mutating, answering and refused while frozen")
	}
	if agentclient.ReadOnlyRefusal("guest-get-time") != nil || agentclient.ReadOnlyRefusal("guest-exec-status") == nil || agentclient.ReadOnlyRefusal("guest-x") == nil {
		t.Errorf("ReadOnlyRefusal disagrees with Mutates")
	}
}

// Offered reads the since-version numerically and the OS.
func TestCommandOffered(t *testing.T) {
	for _, tt := range []struct {
		name, version string
		os            agentclient.OS
		want          bool
	}{
		{"guest-get-host-name", "2.10", agentclient.POSIX, true},
		{"guest-get-host-name", "2.9.1", agentclient.POSIX, false},
		{"guest-get-host-name", "2.2", agentclient.POSIX, false}, // 2.2 is older than 2.10
		{"guest-get-cpustats", "7.2.22", agentclient.POSIX, true},
		{"guest-get-cpustats", "7.2.22", agentclient.Windows, false},
		{"guest-get-devices", "7.2.22", agentclient.POSIX, false},
		{"guest-get-devices", "107.0.1", agentclient.Windows, true},
		{"guest-get-load", "9.2.0", agentclient.POSIX, false},
		{"guest-get-load", "10.0", agentclient.POSIX, true},
		{"guest-ping", "7.2.22\x1b[2J", agentclient.POSIX, true}, // junk after the numbers
		{"guest-ping", "", agentclient.POSIX, false},
	} {
		c, ok := agentclient.Lookup(tt.name)
		if !ok {
			t.Fatalf("%s not in the table", tt.name)
		}
		if got := c.Offered(tt.version, tt.os); got != tt.want {
			t.Errorf("%s.Offered(%q, %v) = %v, want %v", tt.name, tt.version, tt.os, got, tt.want)
		}
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
		{"guest-get-users", false}, {"guest-get-fsinfo", false}, {"guest-get-disks", false}, {"guest-exec-status", true},
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

// TestCommandTableMatchesRealAgent: the guest-info of the real qemu-ga on
// this machine (read-only commands only) agrees with the table: every
// command it lists is in the table with the same success-response, every
// command it enables is one the table says its version offers on POSIX, and
// it lists every command the table says it offers.
func TestCommandTableMatchesRealAgent(t *testing.T) {
	ag := testpeers.StartAgents(t, 1)
	c := dialT(t, ag.Addrs()[0])
	info, err := c.Info(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, ci := range info.SupportedCommands {
		listed[ci.Name] = true
		cmd, ok := agentclient.Lookup(ci.Name)
		switch {
		case !ok:
			t.Errorf("%s (listed by qemu-ga %s) is not in the table", ci.Name, info.Version)
		case cmd.SuccessResponse != ci.SuccessResponse:
			t.Errorf("%s: table says success-response %v, qemu-ga %v", ci.Name, cmd.SuccessResponse, ci.SuccessResponse)
		case ci.Enabled && !cmd.Offered(info.Version, agentclient.POSIX):
			t.Errorf("%s: enabled in qemu-ga %s, the table says since %s on %v", ci.Name, info.Version, cmd.Since, cmd.OS)
		}
	}
	for _, cmd := range agentclient.Commands() {
		if cmd.Offered(info.Version, agentclient.POSIX) && !listed[cmd.Name] {
			t.Errorf("%s: the table says qemu-ga %s offers it (since %s), the agent does not list it", cmd.Name, info.Version, cmd.Since)
		}
	}
}
