package main

// End-to-end tests of the real binary against hostile guests
// (internal/testpeers/hostile) beside healthy ones: whatever a guest says,
// nothing reaches the operator's terminal unescaped, memory stays bounded,
// and every command ends.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/testpeers/hostile"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// hostileDir is a short directory for sockets (108-byte limit), removed
// when the test ends.
func hostileDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// hostileGuest serves one hostile peer named name; it stops when the test ends.
func hostileGuest(t *testing.T, dir, name string, mode hostile.Mode, opts ...hostile.Option) [2]string {
	t.Helper()
	p, err := hostile.Serve(context.Background(), filepath.Join(dir, name+".sock"), mode, append([]hostile.Option{hostile.WithName(name)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return [2]string{name, p.Addr()}
}

// healthyGuests are n well-behaved guests named good-1...: real qemu-ga
// where this machine has it, the simulator otherwise.
func healthyGuests(t *testing.T, n int) [][2]string {
	t.Helper()
	var addrs []string
	_, qga := os.Stat("/usr/sbin/qemu-ga")
	_, shared := testpeers.SharedDir()
	if qga == nil && shared == nil {
		addrs = testpeers.StartAgents(t, n).Addrs()
		t.Logf("healthy guests: %d real qemu-ga", n)
	} else {
		dir := hostileDir(t)
		farm, err := sim.ServeDir(dir, n, func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("good-%d", i+1)) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { farm.Close() })
		for _, s := range farm.Sockets() {
			addrs = append(addrs, "unix:"+s)
		}
		t.Logf("healthy guests: %d simulated (no qemu-ga here)", n)
	}
	var out [][2]string
	for i, a := range addrs {
		out = append(out, [2]string{fmt.Sprintf("good-%d", i+1), a})
	}
	return out
}

// unsafeRunes lists what in b could act on a terminal rather than show as
// text: bytes that are not UTF-8 (a lone 0x9B is CSI to an 8-bit
// terminal), C0 controls other than \n and \t, DEL, C1 controls,
// formatting characters (bidi overrides and isolates, zero-width
// characters, BOM, soft hyphen) and the Unicode line separators.
func unsafeRunes(b []byte) []string {
	var bad []string
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		what := ""
		switch {
		case r == utf8.RuneError && n == 1:
			what = fmt.Sprintf("byte %#02x (not UTF-8)", b[i])
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7F:
			what = fmt.Sprintf("control %U", r)
		case r >= 0x80 && r <= 0x9F:
			what = fmt.Sprintf("C1 control %U", r)
		case unicode.Is(unicode.Cf, r):
			what = fmt.Sprintf("format character %U", r)
		case r == '\u2028' || r == '\u2029':
			what = fmt.Sprintf("line separator %U", r)
		}
		if what != "" {
			lo, hi := max(i-24, 0), min(i+n+8, len(b))
			bad = append(bad, fmt.Sprintf("%s at %d in %q", what, i, b[lo:hi]))
		}
		i += n
	}
	return bad
}

// checkSafe fails the test if out carries anything that acts on a terminal.
func checkSafe(t *testing.T, what string, out string) {
	t.Helper()
	bad := unsafeRunes([]byte(out))
	if len(bad) == 0 {
		return
	}
	// A tally by kind says what leaked; the first few say where.
	kinds := map[string]int{}
	for _, b := range bad {
		kinds[b[:strings.Index(b, " at ")]]++
	}
	var tally []string
	for k, n := range kinds {
		tally = append(tally, fmt.Sprintf("%s ×%d", k, n))
	}
	slices.Sort(tally)
	shown := bad[:min(len(bad), 3)]
	t.Errorf("%s: %d raw terminal controls (want only escaped forms such as \\x1b): %s; first %d:\n  %s",
		what, len(bad), strings.Join(tally, ", "), len(shown), strings.Join(shown, "\n  "))
}

func TestUnsafeRunes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"plain text, tabs\tand\nnewlines, ünïcödé, …, ✓ ● ─\n", 0},
		{`escaped: \x1b]0;title\x07 \u202e \x9b`, 0},
		{"\x1b[2J", 1}, {"\x07", 1}, {"\r", 1}, {"\x7f", 1}, {"\x00", 1},
		{"\u009b", 1}, {"\x9b", 1}, {"\u202e", 1}, {"\u200b", 1}, {"\ufeff", 1}, {"\u2066", 1}, {"\u2028", 1},
		{hostile.Payload, 25},
	} {
		if got := unsafeRunes([]byte(tc.in)); len(got) != tc.want {
			t.Errorf("unsafeRunes(%q) = %d findings, want %d: %q", tc.in, len(got), tc.want, got)
		}
	}
}

// nonEmptyLines counts the lines of s that hold something.
func nonEmptyLines(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// TestHostileEscapesCLI: status, run and cat beside a guest whose every
// string is a terminal attack print only escaped text (one line per row,
// no forged rows), while status --json and run --json keep the guest's
// strings exact.
func TestHostileEscapesCLI(t *testing.T) {
	dir := hostileDir(t)
	guests := append(healthyGuests(t, 2), hostileGuest(t, dir, "evil-esc", hostile.Escapes))
	cfg := fleetFile(t, "", guests...)

	r := gd(t, 60*time.Second, "-c", cfg, "status")
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s", r.code, r.stderr)
	}
	checkSafe(t, "status stdout", r.stdout)
	checkSafe(t, "status stderr", r.stderr)
	if n := nonEmptyLines(r.stdout); n != 1+len(guests) {
		t.Errorf("status table has %d lines, want a header and %d rows (a guest's newline forged rows)", n, len(guests))
	}
	for _, g := range guests {
		if !regexp.MustCompile(`(?m)^` + g[0] + ` +\S+ +ready `).MatchString(r.stdout) {
			t.Errorf("status table: no ready row for %s", g[0])
		}
	}

	gs := status(t, cfg)
	e := gs["evil-esc"]
	if e.State != "ready" {
		t.Fatalf("evil-esc: state %q error %q, want ready", e.State, e.Error)
	}
	for _, c := range []struct{ key, got, want string }{
		{"agent_version", e.AgentVersion, hostile.Text(hostile.FieldAgentVersion)},
		{"hostname", e.Hostname, hostile.Text(hostile.FieldHostname)},
		{"os", e.OS, hostile.Text(hostile.FieldOSPrettyName)},
	} {
		if c.got != c.want {
			t.Errorf("status --json %s = %q, want the guest's exact %q", c.key, c.got, c.want)
		}
	}
	found := false
	for _, ifc := range e.Interfaces {
		if ifc.Name == hostile.Text(hostile.FieldIfaceName) {
			found = true
			if ifc.MAC != hostile.Text(hostile.FieldIfaceMAC) || !slices.Equal(ifc.Addresses, []string{hostile.Text(hostile.FieldIfaceIP) + "/24"}) {
				t.Errorf("status --json: hostile interface mac %q addresses %q, want the exact strings", ifc.MAC, ifc.Addresses)
			}
		}
	}
	if !found {
		t.Errorf("status --json: no interface named exactly %q among %+v", hostile.Text(hostile.FieldIfaceName), e.Interfaces)
	}
	for _, g := range guests[:2] {
		if gs[g[0]].State != "ready" {
			t.Errorf("%s: %q %q, want ready", g[0], gs[g[0]].State, gs[g[0]].Error)
		}
	}

	// The hostile guest fails ping with hostile words.
	names := []string{"--", guests[0][0], guests[1][0], "evil-esc"}
	r = gd(t, 60*time.Second, append([]string{"-c", cfg, "run", "ping"}, names...)...)
	if r.code != 1 {
		t.Errorf("run ping: exit %d, want 1 (evil-esc fails)\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkSafe(t, "run ping stdout", r.stdout)
	checkSafe(t, "run ping stderr", r.stderr)
	if n := nonEmptyLines(r.stdout); n != 1+len(guests) {
		t.Errorf("run ping table has %d lines, want a header and %d rows", n, len(guests))
	}
	if !regexp.MustCompile(`(?m)^evil-esc +FAILED `).MatchString(r.stdout) {
		t.Errorf("run ping: no FAILED row for evil-esc:\n%q", r.stdout)
	}
	r = gd(t, 60*time.Second, append([]string{"-c", cfg, "run", "--json", "ping"}, names...)...)
	var res []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("run --json ping: %v\n%s", err, r.stdout)
	}
	for _, x := range res {
		if x.Name == "evil-esc" && !strings.Contains(x.Error, hostile.Text(hostile.FieldErrorDesc)) {
			t.Errorf("run --json: evil-esc's error %q lacks the agent's exact words", x.Error)
		}
	}

	// An agent's error, on stderr.
	r = gd(t, 60*time.Second, "-c", cfg, "cat", "evil-esc", "/etc/shadow")
	if r.code != 1 || r.stdout != "" {
		t.Errorf("cat: exit %d stdout %q, want 1 and nothing", r.code, r.stdout)
	}
	checkSafe(t, "cat stderr", r.stderr)
	if n := nonEmptyLines(r.stderr); n != 1 {
		t.Errorf("cat's error takes %d lines, want 1: %q", n, r.stderr)
	}
}

// TestHostileNumbersAndGarbage: a guest with out-of-range numbers loses
// those fields, not its state; a guest that speaks noise is an error, not a
// stall; neither leaks into the terminal.
func TestHostileNumbersAndGarbage(t *testing.T) {
	dir := hostileDir(t)
	guests := append(healthyGuests(t, 1),
		hostileGuest(t, dir, "evil-num", hostile.Numbers),
		hostileGuest(t, dir, "evil-junk", hostile.Garbage))
	cfg := fleetFile(t, "", guests...)
	r := gd(t, 60*time.Second, "-c", cfg, "status")
	checkSafe(t, "status stdout", r.stdout)
	checkSafe(t, "status stderr", r.stderr)
	if n := nonEmptyLines(r.stdout); n != 1+len(guests) {
		t.Errorf("status table has %d lines, want %d:\n%s", n, 1+len(guests), r.stdout)
	}

	gs := status(t, cfg)
	if g := gs["good-1"]; g.State != "ready" {
		t.Errorf("good-1: %q %q", g.State, g.Error)
	}
	if g := gs["evil-junk"]; g.State == "ready" || g.Error == "" {
		t.Errorf("evil-junk (noise): state %q error %q, want an error", g.State, g.Error)
	}
	n := gs["evil-num"]
	if n.State != "ready" || n.Hostname != "evil-num" {
		t.Errorf("evil-num: state %q hostname %q error %q; want ready: a bad number loses its field, not the guest", n.State, n.Hostname, n.Error)
	}
	eth := false
	for _, ifc := range n.Interfaces {
		eth = eth || ifc.Name == "eth0" && ifc.MAC == hostile.NumbersMAC
		for _, a := range ifc.Addresses {
			if strings.HasSuffix(a, "/999") || strings.HasSuffix(a, "/-1") {
				t.Errorf("evil-num: address %q shows an impossible prefix", a)
			}
		}
	}
	if !eth {
		t.Errorf("evil-num: eth0 (MAC %s) missing from %+v: its sound fields must survive", hostile.NumbersMAC, n.Interfaces)
	}
	if n.VCPUs.Total < 1 {
		t.Errorf("evil-num: vcpus %+v: the vCPU with a sound logical-id must survive", n.VCPUs)
	}
}

// gdMeasured runs the binary like gd and also returns its peak RSS in bytes.
func gdMeasured(t *testing.T, timeout time.Duration, args ...string) (result, int64, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME=", "NO_COLOR=1")
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("guestdeck %s: still running after %v\nstderr: %s", strings.Join(args, " "), timeout, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("guestdeck %s: %v", strings.Join(args, " "), err)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // KiB on Linux
	}
	return result{code, out.String(), errb.String()}, rss, took
}

// TestHostileHuge: four guests each answer guest-get-osinfo with an 85 MiB
// line. The healthy guests are still polled to ready, the huge ones fail
// with "reply too large", and guestdeck's memory stays bounded.
func TestHostileHuge(t *testing.T) {
	dir := hostileDir(t)
	guests := healthyGuests(t, 2)
	for i := range 4 {
		guests = append(guests, hostileGuest(t, dir, fmt.Sprintf("huge-%d", i+1), hostile.Huge))
	}
	cfg := fleetFile(t, "", guests...)
	r, rss, took := gdMeasured(t, 180*time.Second, "-c", cfg, "status", "--json")
	t.Logf("status --json with 4 guests sending %d MiB replies: peak RSS %.0f MiB, %v", hostile.DefaultHugeSize>>20, float64(rss)/(1<<20), took.Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s", r.code, r.stderr)
	}
	var gs []statusGuest
	if err := json.Unmarshal([]byte(r.stdout), &gs); err != nil {
		t.Fatalf("status --json: %v (%d bytes of output)", err, len(r.stdout))
	}
	for _, g := range gs {
		switch {
		case strings.HasPrefix(g.Name, "good-") && g.State != "ready":
			t.Errorf("%s: state %q error %q, want ready beside the huge guests", g.Name, g.State, g.Error)
		case strings.HasPrefix(g.Name, "huge-") && !strings.Contains(strings.ToLower(g.Error), "too large"):
			t.Errorf("%s: state %q error %q (os %d bytes), want a \"reply too large\" error", g.Name, g.State, g.Error, len(g.OS))
		}
	}
	if len(r.stdout) > 1<<20 {
		t.Errorf("status --json printed %d bytes: a guest's huge string reached the output", len(r.stdout))
	}
	// Generous: the goal is under 300 MB; this bound only catches replies
	// held whole.
	if rss > 1<<30 {
		t.Errorf("peak RSS %d MiB, want < 1024 MiB", rss>>20)
	}
}

// TestHostileNoEOF: a file whose reads never say eof (past the size the
// agent itself reports) ends `get` with an error within its deadline, and
// leaves nothing at the destination.
func TestHostileNoEOF(t *testing.T) {
	dir := hostileDir(t)
	guests := [][2]string{hostileGuest(t, dir, "evil-noeof", hostile.NoEOF)}
	cfg := fleetFile(t, "", guests...)
	destDir := t.TempDir()
	dest := filepath.Join(destDir, "endless.log")
	r, _, took := gdMeasured(t, 90*time.Second, "-c", cfg, "get", "evil-noeof", "/var/log/endless.log", dest)
	t.Logf("get from the noeof guest ended after %v with exit %d: %q", took.Round(time.Millisecond), r.code, r.stderr)
	if r.code != 1 || r.stderr == "" {
		t.Errorf("get: exit %d stderr %q, want 1 and an error", r.code, r.stderr)
	}
	checkSafe(t, "get stderr", r.stderr)
	ents, _ := os.ReadDir(destDir)
	for _, e := range ents {
		t.Errorf("get left %s behind in the destination directory", e.Name())
	}
}

// TestHostileSlow: guests that answer each slow-poll item just inside the
// per-call timeout do not make status hang.
func TestHostileSlow(t *testing.T) {
	dir := hostileDir(t)
	guests := append(healthyGuests(t, 1),
		hostileGuest(t, dir, "slow-1", hostile.Slow),
		hostileGuest(t, dir, "slow-2", hostile.Slow))
	cfg := fleetFile(t, "", guests...)
	r, _, took := gdMeasured(t, 120*time.Second, "-c", cfg, "status")
	t.Logf("status with 2 slow guests (each slow item answered after %v, timeout 3s): %v wall", hostile.DefaultSlowDelay, took.Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("\n%s", r.stdout)
	if !regexp.MustCompile(`(?m)^good-1 +\S+ +ready `).MatchString(r.stdout) {
		t.Errorf("good-1 not ready beside the slow guests:\n%s", r.stdout)
	}
	for _, n := range []string{"slow-1", "slow-2"} {
		if !regexp.MustCompile(`(?m)^` + n + ` `).MatchString(r.stdout) {
			t.Errorf("status lists no %s:\n%s", n, r.stdout)
		}
	}
}

// hostileTerm is an e2eTerm whose tmux server would let a program set the
// pane title, rename the window and write tmux's clipboard (OSC 52), and
// whose pane proves each of those works before guestdeck starts.
type hostileTerm struct {
	*e2eTerm
	conf string
}

const (
	titleBefore  = "gd-title-before"
	windowBefore = "gd-window-before"
	clipControl  = "gd-positive-control"
)

func hostileStart(t *testing.T, args ...string) *hostileTerm {
	t.Helper()
	testpeers.Require(t, testpeers.NeedTmux)
	home := t.TempDir()
	tt := &hostileTerm{e2eTerm: &e2eTerm{
		t:        t,
		server:   fmt.Sprintf("gdhostile%d-%s", os.Getpid(), regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")),
		exitFile: filepath.Join(home, "exit"),
	}, conf: filepath.Join(home, "tmux.conf")}
	// set-clipboard on: an application's OSC 52 becomes a tmux buffer (the
	// default, external, would drop it). allow-rename on: ESC k renames the
	// window. The pane title follows OSC 0/2 in tmux 3.3 unconditionally.
	conf := "set -g set-clipboard on\nset -g allow-rename on\nset -g automatic-rename off\n"
	if err := os.WriteFile(tt.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	quoted := []string{e2eQuote(binary)}
	for _, a := range args {
		quoted = append(quoted, e2eQuote(a))
	}
	// The positive controls: the pane sets its title and window name and
	// writes the clipboard itself, then waits for the test's go.
	script := fmt.Sprintf(`printf '\033]2;%s\033\\'; printf '\033k%s\033\\'; printf '\033]52;c;%s\007'; echo controls-done; read go; `+
		`%s; echo EXIT=$? > %s; echo guestdeck-exited; PS1='gd$ ' exec sh -i`,
		titleBefore, windowBefore, base64.StdEncoding.EncodeToString([]byte(clipControl)), strings.Join(quoted, " "), e2eQuote(tt.exitFile))
	tt.tmux("-f", tt.conf, "new-session", "-d", "-s", "gd", "-x", "140", "-y", "40",
		"env", "HOME="+home, "XDG_CONFIG_HOME="+home, "NO_COLOR=1", "sh", "-c", script)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", tt.server, "kill-server").Run() })

	tt.waitText("controls-done")
	if got := tt.display("#{pane_title}"); got != titleBefore {
		t.Fatalf("positive control: pane title %q after OSC 2, want %q: this tmux would not show a title change", got, titleBefore)
	}
	if got := tt.display("#{window_name}"); got != windowBefore {
		t.Fatalf("positive control: window name %q after ESC k, want %q", got, windowBefore)
	}
	if got := tt.tmux("show-buffer"); got != clipControl {
		t.Fatalf("positive control: tmux buffer %q after OSC 52, want %q: this tmux would not capture a clipboard write", got, clipControl)
	}
	tt.tmux("delete-buffer")
	if got := tt.tmux("list-buffers"); got != "" {
		t.Fatalf("buffers left after delete-buffer: %q", got)
	}
	tt.keys("Enter")
	return tt
}

// safe checks what the guests could have done to the terminal so far: the
// pane's title is the one it had or guestdeck's own, the window name is
// unchanged, no clipboard write reached tmux, and the screen's text holds
// no raw controls.
func (tt *hostileTerm) safe(step string) string {
	tt.t.Helper()
	// guestdeck sets its own title, and clears it on exit (with healthy
	// guests too): neither is a guest's doing.
	if got := tt.display("#{pane_title}"); strings.Contains(got, hostile.TitleMarker) || !slices.Contains([]string{titleBefore, "guestdeck", ""}, got) {
		tt.t.Errorf("%s: pane title became %q (a guest set it)", step, got)
	}
	if got := tt.display("#{window_name}"); got != windowBefore {
		tt.t.Errorf("%s: window name became %q (a guest renamed it)", step, got)
	}
	if got := tt.tmux("list-buffers"); got != "" {
		tt.t.Errorf("%s: a guest wrote the clipboard (tmux buffers: %q)", step, strings.TrimSpace(got))
		tt.tmux("delete-buffer")
	}
	s := tt.screen()
	checkSafe(tt.t, step+": screen text", s)
	return s
}

// waitSoft is waitFor that reports a screen that never came as an error and
// lets the test go on: a guest's sequences may have garbled the screen, and
// the later checks still tell what leaked.
func (tt *hostileTerm) waitSoft(what string, ok func(string) bool) (string, bool) {
	tt.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tt.screen()
		if ok(s) {
			return s, true
		}
		if time.Now().After(deadline) {
			tt.t.Errorf("the screen never showed %s in 20s:\n%s", what, s)
			return s, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tt *hostileTerm) waitSoftText(want ...string) (string, bool) {
	tt.t.Helper()
	return tt.waitSoft(fmt.Sprintf("%q", want), func(s string) bool {
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
}

// TestHostileDashboard drives the dashboard in tmux with hostile guests
// beside healthy ones, through every place a guest's words show: the table,
// each detail tab, an action's failure and the event log, the file
// browser's listing, a file view and its errors. The pane title, window
// name and clipboard stay untouched and the screen holds no raw controls.
func TestHostileDashboard(t *testing.T) {
	dir := hostileDir(t)
	guests := append(healthyGuests(t, 2),
		hostileGuest(t, dir, "evil-esc", hostile.Escapes),
		hostileGuest(t, dir, "evil-junk", hostile.Garbage),
		hostileGuest(t, dir, "evil-num", hostile.Numbers))
	// Every poll a full one: the host name's reply, whose raw bytes the
	// command log shows, is always among the newest log lines.
	cfg := fleetFile(t, "[defaults]\ninterval = \"5s\"\nslow_interval = \"5s\"\n", guests...)
	tt := hostileStart(t, "-c", cfg)

	tt.waitFor("the table with the healthy guests and evil-esc ready", func(s string) bool {
		ready := map[string]bool{}
		for _, r := range e2eRows(s) {
			ready[r.name] = strings.Contains(r.text, " ready ")
		}
		return strings.Contains(s, fmt.Sprintf("guestdeck %d guests", len(guests))) && ready["good-1"] && ready["good-2"] && ready["evil-esc"]
	})
	tt.safe("fleet table")

	filter := func(name string) {
		tt.keys("/")
		tt.keys("C-u")
		tt.text(name)
		tt.keys("Enter")
		tt.waitSoftText(fmt.Sprintf("filter %q: 1 shown", name))
		tt.keys("g")
		tt.waitSoftText("─ " + name)
	}
	filter("evil-esc")
	for _, tab := range []struct{ key, name, shows string }{
		{"5", "log", "guest-get-host-name"},
		{"1", "overview", "Hostname"},
		{"2", "interfaces", "MAC"},
		{"3", "vcpus", "online"},
		{"4", "filesystems", "MOUNT"},
	} {
		tt.keys(tab.key)
		tt.waitSoftText(tab.shows)
		s := tt.safe("evil-esc " + tab.name + " tab")
		// The log shows reply lines as received: the host name's raw
		// 8-bit bytes must show escaped (\x9b, \u009b, ^[, ?, U+FFFD) or be
		// cut off (…), not swallow the rest of the line and let other text
		// in (0x9B starts a CSI sequence to a terminal and to a renderer).
		if tab.name == "log" && !regexp.MustCompile(`"host-name": "[\\^?\x{FFFD}…<]`).MatchString(s) {
			t.Errorf("log: the guest-get-host-name reply does not show its raw bytes escaped:\n%s", s)
		}
		// Escaped, a sequence shows as text: an OSC's content stays on
		// screen after the escaped ESC, where a terminal (or a renderer
		// that drops sequences) would swallow it.
		if want := "]0;" + hostile.TitleMarker; tab.name == "overview" && !strings.Contains(s, want) {
			t.Errorf("overview: the host name's OSC 0 is not shown as text (no %q on screen):\n%s", want, s)
		}
	}
	tt.keys("1")

	tt.keys("p")
	tt.waitSoftText("ping: 0 ok, 1 failed, 0 skipped")
	tt.safe("ping failure")
	tt.keys("e")
	tt.waitSoftText("Event log", "error.desc")
	tt.safe("event log")
	tt.keys("Escape")
	tt.waitSoft("the table again", func(s string) bool { return !strings.Contains(s, "Event log") && strings.Contains(s, "NAME") })

	tt.keys("f")
	tt.waitSoftText("Files · evil-esc", hostile.FileName)
	if s, want := tt.safe("file browser listing"), "]0;"+hostile.TitleMarker; !strings.Contains(s, want) {
		t.Errorf("listing: the file named with an OSC 0 does not show it as text (no %q on screen):\n%s", want, s)
	}
	open := func(path string, shows ...string) {
		tt.keys("o")
		tt.waitSoftText("open: ")
		tt.keys("C-u")
		tt.text(path)
		tt.keys("Enter")
		tt.waitSoftText(shows...)
		tt.safe("file browser " + path)
	}
	open("/"+hostile.FileName, "Files · evil-esc · /"+hostile.FileName)
	tt.keys("Escape")
	open("/etc/", "exec.err-data")
	open("/etc/shadow", "error.desc")
	for i := 0; i < 4 && !strings.Contains(tt.screen(), "guestdeck 5 guests"); i++ {
		before := tt.screen()
		tt.keys("Escape")
		tt.waitSoft("the browser stepping back after esc", func(s string) bool { return s != before })
	}

	filter("evil-junk")
	tt.waitSoftText("Error")
	tt.safe("evil-junk overview")
	filter("evil-num")
	tt.keys("2")
	tt.waitSoftText("eth0")
	tt.safe("evil-num interfaces")

	tt.keys("q")
	var exit []byte
	wait.For(t, e2eWait, func() (bool, string) {
		exit, _ = os.ReadFile(tt.exitFile)
		return len(exit) > 0, "guestdeck has not exited after q:\n" + tt.screen()
	})
	if got := strings.TrimSpace(string(exit)); got != "EXIT=0" {
		t.Errorf("guestdeck exited with %s, want EXIT=0", got)
	}
	tt.waitText("guestdeck-exited")
	tt.safe("after exit")
}
