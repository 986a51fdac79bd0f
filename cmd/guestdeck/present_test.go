package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

// terminalSafe fails when out holds anything that could drive or deceive a
// terminal: a byte below 0x20 other than a newline, DEL, a C1 control,
// bytes that are not UTF-8, bidi controls or invisible format characters.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: not UTF-8", what)
	}
	for i, r := range out {
		bad := (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f ||
			r == 0x061c || r == 0x200b || r == 0x200c || r == 0x200d || r == 0xfeff
		if bad {
			lo, hi := max(i-40, 0), min(i+40, len(out))
			t.Errorf("%s: %U at byte %d: %q", what, r, i, out[lo:hi])
			return
		}
	}
}

// hostileFarm serves two guests whose agents put sim.Hostile into every
// string they report; the second also fails every file open with it.
func hostileFarm(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	farm, err := sim.ServeDir(dir, 2, func(i int) sim.Config {
		if i == 0 {
			return sim.HostileConfig("evil")
		}
		c := sim.HostileConfig("evil2")
		c.Fail = map[string]string{"guest-file-open": "Permission denied" + sim.Hostile}
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close(); os.RemoveAll(dir) })
	s := farm.Sockets()
	return fleetFile(t, "", [2]string{"evil", "unix:" + s[0]}, [2]string{"evil2", "unix:" + s[1]})
}

// A guest with escapes in every string it reports: the status table, run's
// table and every error line show them escaped and cut to width; JSON output
// carries the exact strings, written so that it is safe on a terminal too;
// cat stays byte-exact.
func TestHostileGuestCLI(t *testing.T) {
	cfg := hostileFarm(t)
	const h = sim.Hostile
	esc := `\x1b]0;OWNED\x07` // how the start of sim.Hostile reads once escaped

	r := gd(t, 30*time.Second, "-c", cfg, "status")
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s", r.code, r.stderr)
	}
	terminalSafe(t, "status table", r.stdout)
	terminalSafe(t, "status stderr", r.stderr)
	for _, want := range []string{"evil ", "7.2.22" + esc, "EvilOS 1" + esc, "192.0.2.77"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status table lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "192.0.2.66") {
		t.Errorf("status table shows an address that does not parse:\n%s", r.stdout)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if n := utf8.RuneCountInString(l); n > 400 {
			t.Errorf("status row is %d wide: one guest's strings widen the table", n)
		}
	}

	r = gd(t, 30*time.Second, "-c", cfg, "status", "--json", "evil")
	terminalSafe(t, "status --json", r.stdout)
	var gs []statusGuest
	if err := json.Unmarshal([]byte(r.stdout), &gs); err != nil || len(gs) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	g := gs[0]
	var eth0 *struct {
		Name      string   `json:"name"`
		MAC       string   `json:"mac"`
		Addresses []string `json:"addresses"`
	}
	for i := range g.Interfaces {
		if strings.HasPrefix(g.Interfaces[i].Name, "eth0") {
			eth0 = &g.Interfaces[i]
		}
	}
	if g.Hostname != "host"+h || g.OS != "EvilOS 1"+h || g.AgentVersion != "7.2.22"+h || eth0 == nil ||
		eth0.Name != "eth0"+h || eth0.MAC != "52:54:00:12:34:56"+h || len(eth0.Addresses) != 2 || eth0.Addresses[0] != "192.0.2.66"+h+"/24" {
		t.Errorf("status --json does not carry the exact strings: %+v", g)
	}

	// run info's result quotes the guest (OS, hostname); fstrim fails with its words.
	for _, args := range [][]string{{"run", "info", "evil"}, {"run", "--yes", "fstrim", "evil"}} {
		r = gd(t, 30*time.Second, append([]string{"-c", cfg}, args...)...)
		terminalSafe(t, strings.Join(args, " "), r.stdout)
		terminalSafe(t, strings.Join(args, " ")+" stderr", r.stderr)
		if !strings.Contains(r.stdout, esc) {
			t.Errorf("%v: the guest's text is not shown escaped:\n%s", args, r.stdout)
		}
	}
	if r.code != 1 || !strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stdout, "trim failed"+esc) {
		t.Errorf("run fstrim: exit %d, want 1 and the escaped error:\n%s", r.code, r.stdout)
	}
	r = gd(t, 30*time.Second, "-c", cfg, "run", "--json", "--yes", "fstrim", "evil")
	terminalSafe(t, "run --json", r.stdout)
	var res []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 || !strings.Contains(res[0].Error, "trim failed"+h) {
		t.Errorf("run --json does not carry the exact error: %v %+v", err, res)
	}

	// A file: cat is byte-exact, run read shows it escaped.
	evilFile := "/tmp/evil" + h
	wantData := "line one\n" + h + "\nline three\n"
	r = gd(t, 30*time.Second, "-c", cfg, "cat", "evil", evilFile)
	if r.code != 0 || r.stdout != wantData {
		t.Errorf("cat: exit %d, stdout %q, want the exact %q (stderr %q)", r.code, r.stdout, wantData, r.stderr)
	}
	r = gd(t, 30*time.Second, "-c", cfg, "run", "read", evilFile, "evil")
	terminalSafe(t, "run read", r.stdout)
	if r.code != 0 || !strings.Contains(r.stdout, "line one\n"+esc) || !strings.Contains(r.stdout, "\nline three\n") {
		t.Errorf("run read: exit %d:\n%s", r.code, r.stdout)
	}

	// Error lines on stderr: the agent's own words, escaped.
	dest := t.TempDir()
	for _, args := range [][]string{
		{"cat", "evil2", "/etc/hostname"},
		{"get", "evil2", "/etc/hostname", dest},
		{"put", "/dev/null", "evil2", "/tmp/x"},
		{"agent", "evil2", `{"execute":"guest-file-open","arguments":{"path":"/etc/hostname"}}`},
	} {
		r = gd(t, 30*time.Second, append([]string{"-c", cfg}, args...)...)
		terminalSafe(t, args[0]+" stdout", r.stdout)
		terminalSafe(t, args[0]+" stderr", r.stderr)
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1", args[0], r.code)
		}
		if args[0] != "agent" && !strings.Contains(r.stderr, "Permission denied"+esc) {
			t.Errorf("%s: stderr %q lacks the agent's escaped words", args[0], r.stderr)
		}
	}
	// agent prints the agent's error object, exact once decoded.
	var reply struct{ Error struct{ Desc string } }
	if err := json.Unmarshal([]byte(r.stdout), &reply); err != nil || reply.Error.Desc != "Permission denied"+h {
		t.Errorf("agent error reply: %v %q", err, r.stdout)
	}
	r = gd(t, 30*time.Second, "-c", cfg, "agent", "evil", `{"execute":"guest-get-host-name"}`)
	terminalSafe(t, "agent reply", r.stdout)
	var host struct {
		Return struct {
			HostName string `json:"host-name"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &host); err != nil || host.Return.HostName != "host"+h {
		t.Errorf("agent reply: %v %q", err, r.stdout)
	}
}

// TestHostileAuditLog: the audit log holds what guests said (their error
// texts) and what libvirt hosts named them. `audit` shows it escaped,
// `audit --json` exact but safe on a terminal, and a guest's whole name
// selects its entries even when it looks like a glob.
func TestHostileAuditLog(t *testing.T) {
	const h = sim.Hostile
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	log := audit.Open(filepath.Join(state, "guestdeck"))
	for _, e := range []audit.Entry{
		{Phase: audit.Outcome, Source: audit.SourceCLI, Action: "fstrim",
			Guests: []audit.Guest{{Name: "a/evil" + h, Result: "failed", Detail: "trim failed" + h}}},
		{Phase: audit.Outcome, Source: audit.SourceCLI, Action: "thaw",
			Guests: []audit.Guest{{Name: "a/db1", Result: "ok"}, {Name: "a/db[1]", Result: "ok", Detail: "thawed"}}},
	} {
		if err := log.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	esc := `\x1b]0;OWNED\x07`

	r := gd(t, 30*time.Second, "audit")
	terminalSafe(t, "audit", r.stdout+r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, "trim failed"+esc) || !strings.Contains(r.stdout, "a/evil"+esc) {
		t.Errorf("audit: exit %d, the guest's text not shown escaped:\n%s", r.code, r.stdout)
	}

	r = gd(t, 30*time.Second, "audit", "--json")
	terminalSafe(t, "audit --json", r.stdout+r.stderr)
	var es []audit.Entry
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || len(es) != 2 || len(es[0].Guests) != 1 ||
		es[0].Guests[0].Detail != "trim failed"+h || es[0].Guests[0].Name != "a/evil"+h {
		t.Errorf("audit --json does not carry the exact strings: %v %+v", err, es)
	}

	r = gd(t, 30*time.Second, "audit", "--json", "a/db[1]")
	es = nil
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || len(es) != 1 || len(es[0].Guests) != 1 || es[0].Guests[0].Name != "a/db[1]" {
		t.Errorf("audit a/db[1]: %v %+v, want the one entry of guest a/db[1] alone", err, es)
	}
}

// TestFlagErrorsEscaped: a bad flag is echoed in the error, and a script
// may pass words it got from a guest: the flag package's messages and
// usage are escaped like every other line.
func TestFlagErrorsEscaped(t *testing.T) {
	for _, args := range [][]string{
		{"-" + sim.Hostile, "status"},
		{"status", "-" + sim.Hostile},
		{"run", "--json=" + sim.Hostile, "ping", "x"},
		{"get", "-x\x1b]0;t\x07", "g", "/p", "d"},
		{"audit", "--since", "1h", "-" + sim.Hostile},
	} {
		r := gd(t, 30*time.Second, args...)
		terminalSafe(t, args[0]+" "+args[1], r.stderr)
		usage := "usage: guestdeck " + args[0]
		if strings.HasPrefix(args[0], "-") {
			usage = "usage: guestdeck [GLOBAL FLAGS]"
		}
		if r.code != 2 || !strings.Contains(r.stderr, `\x1b]0;`) || !strings.Contains(r.stderr, usage) {
			t.Errorf("%q: exit %d, want 2 with the flag shown escaped and the usage\nstderr: %s", args, r.code, r.stderr)
		}
	}
}
