package main

import (
	"encoding/json"
	"flag"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// TestParseWords checks that flags are read anywhere before "--", that
// what follows "--" stays words, and that run's action arguments are taken
// as they are.
func TestParseWords(t *testing.T) {
	actionArgs := func(words, rest []string) int {
		if len(words) == 1 && words[0] == "password" {
			return min(2, len(rest))
		}
		return 0
	}
	tests := []struct {
		args     []string
		verbatim bool
		json     bool
		config   string
		words    []string
		code     int
		ok       bool
	}{
		{args: []string{"ping", "all", "--json"}, json: true, words: []string{"ping", "all"}, ok: true},
		{args: []string{"-c", "F", "--json"}, json: true, config: "F", ok: true},
		{args: []string{"--json", "-c", "F", "all"}, json: true, config: "F", words: []string{"all"}, ok: true},
		{args: []string{"all", "--config=F", "--", "echo", "--json"}, config: "F", words: []string{"all", "--", "echo", "--json"}, ok: true},
		{args: []string{"all", "--json", "--", "echo", "--json"}, json: true, words: []string{"all", "--", "echo", "--json"}, ok: true},
		// A "--" before any word only ends the flags, as in the flag package.
		{args: []string{"--", "--json", "x"}, words: []string{"--json", "x"}, ok: true},
		{args: []string{"-", "g", "p"}, words: []string{"-", "g", "p"}, ok: true},
		{args: []string{"password", "--crypted", "root", "all", "--json"}, verbatim: true, json: true, words: []string{"password", "--crypted", "root", "all"}, ok: true},
		{args: []string{"password", "--crypted", "root", "all", "--json"}, code: exitUsage},
		{args: []string{"all", "--bogus"}, code: exitUsage},
		{args: []string{"all", "-h"}, code: exitOK},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c := &cli{stdout: io.Discard, stderr: io.Discard}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.globalFlags(fs)
			asJSON := fs.Bool("json", false, "")
			var v func(words, rest []string) int
			if tt.verbatim {
				v = actionArgs
			}
			code, ok := parseWords(fs, tt.args, v)
			if code != tt.code || ok != tt.ok {
				t.Fatalf("code %d ok %v, want %d %v", code, ok, tt.code, tt.ok)
			}
			if !ok {
				return
			}
			if *asJSON != tt.json || c.configPath != tt.config || !slices.Equal(fs.Args(), tt.words) {
				t.Errorf("json %v config %q words %q, want %v %q %q", *asJSON, c.configPath, fs.Args(), tt.json, tt.config, tt.words)
			}
		})
	}
}

// TestFlagsAnywhere runs the command lines of issue 14 against a simulated
// guest: flags after the selectors, the global flags after the command, and
// exec's own program flags left to the program.
func TestFlagsAnywhere(t *testing.T) {
	_, cfg := simFarm(t, 1)
	t.Run("run ping all --json", func(t *testing.T) {
		r := gd(t, 30*time.Second, "-c", cfg, "run", "ping", "all", "--json")
		var res []runJSON
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res) != 1 || !res[0].OK || res[0].Name != "s0" {
			t.Fatalf("exit %d (%v)\n%s%s", r.code, err, r.stdout, r.stderr)
		}
	})
	for _, args := range [][]string{
		{"status", "-c", cfg, "--json"},
		{"status", "--json", "-c", cfg, "all"},
		{"status", "--json", "--config", cfg, "s0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := gd(t, 30*time.Second, args...)
			var v any
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || !strings.Contains(r.stdout, `"s0"`) {
				t.Fatalf("exit %d (%v)\n%s%s", r.code, err, r.stdout, r.stderr)
			}
		})
	}
	t.Run("exec all --json -- echo --json", func(t *testing.T) {
		r := gd(t, 60*time.Second, "-c", cfg, "exec", "all", "--json", "--", "echo", "--json")
		rows := execRows(t, r.stdout)
		if r.code != 0 || len(rows) != 1 || rows[0].Stdout != "--json\n" {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		r := gd(t, 30*time.Second, "run", "ping", "all", "--bogus")
		for _, want := range []string{"flag provided but not defined: -bogus", "usage: guestdeck run", "--json", "--dry-run", "-c FILE", "--config FILE"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
			}
		}
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("exit %d stdout %q", r.code, r.stdout)
		}
	})
}

// TestAgentExactAndTimeout checks that agent prints the agent's numbers as
// it sent them (a nanosecond clock does not survive float64) and that
// --timeout replaces the fleet file's call timeout for the one command.
func TestAgentExactAndTimeout(t *testing.T) {
	gs, cfg := simGuests(t, "[defaults]\ntimeout = \"300ms\"\n",
		// A drift of -1 stops the guest's clock: the test knows the exact
		// nanoseconds the agent will say.
		simCfg("g", func(c *sim.Config) { c.ClockDrift = -1 }))
	want := gs["g"].Clock().UnixNano()
	r := gd(t, 30*time.Second, "-c", cfg, "agent", "g", `{"execute":"guest-get-time"}`, "--timeout", "5s")
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.UseNumber()
	var reply struct{ Return json.Number }
	if err := dec.Decode(&reply); err != nil || r.code != 0 {
		t.Fatalf("exit %d (%v)\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if got := reply.Return.String(); got != strconv.FormatInt(want, 10) {
		t.Errorf("guest-get-time: %s, the guest's clock says %d", got, want)
	}

	// Every reply now takes longer than the fleet file's 300ms.
	gs["g"].SetLatency(time.Second)
	for _, tt := range []struct {
		flags []string
		code  int
	}{
		{nil, exitFail},
		{[]string{"--timeout", "20s"}, exitOK},
		{[]string{"--timeout", "100ms"}, exitFail},
		{[]string{"--timeout", "0s"}, exitUsage},
		{[]string{"--timeout", "2h"}, exitUsage},
	} {
		t.Run(strings.Join(tt.flags, " "), func(t *testing.T) {
			args := append([]string{"-c", cfg, "agent"}, tt.flags...)
			r := gd(t, 60*time.Second, append(args, "g", `{"execute":"guest-ping"}`)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.code == exitOK && strings.TrimSpace(r.stdout) != "{\n  \"return\": {}\n}" {
				t.Errorf("reply %q", r.stdout)
			}
		})
	}
}

// TestShutdownSaysItDoesNotWait: run shutdown returns once the agent has
// accepted, and says so instead of claiming to wait; the guest then goes.
func TestShutdownSaysItDoesNotWait(t *testing.T) {
	gs, cfg := simGuests(t, "", simCfg("g", nil))
	r := gd(t, 30*time.Second, "-c", cfg, "run", "shutdown", "g", "--yes", "--json")
	var res []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res) != 1 {
		t.Fatalf("exit %d (%v)\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if want := "shutdown powerdown accepted by the agent; not waited for"; !strings.HasPrefix(res[0].Result, want) || strings.Contains(res[0].Result, "waiting") {
		t.Errorf("result %q, want it to start %q", res[0].Result, want)
	}
	if n := gs["g"].Calls("guest-shutdown"); n != 1 {
		t.Errorf("guest-shutdown sent %d times", n)
	}
}

// TestBadFlagValues: a bad value for a flag is refused naming the flag as
// the help writes it (--wait, -c) and what it takes, followed by the usage;
// the flag package's own words ("invalid boolean value "abc" for -wait:
// parse error") never show. Refused before any fleet file is read.
func TestBadFlagValues(t *testing.T) {
	tests := []struct {
		args  []string
		want  string
		usage string
	}{
		{[]string{"run", "--wait=abc", "shutdown", "x"}, `guestdeck run: bad value "abc" for --wait: want a duration after an = (such as =30s or =2m), or no value`, "usage: guestdeck run"},
		{[]string{"run", "--yes=abc", "ping", "x"}, `guestdeck run: bad value "abc" for --yes: want no value, or =true or =false`, "usage: guestdeck run"},
		{[]string{"run", "--hold=abc", "freeze", "x"}, `guestdeck run: bad value "abc" for --hold: want a duration such as 90s, 5m or 1h`, "usage: guestdeck run"},
		{[]string{"run", "ping", "x", "--hold", "-5m"}, `guestdeck run: bad value "-5m" for --hold: must be more than zero`, "usage: guestdeck run"},
		{[]string{"status", "--watch=soon"}, `guestdeck status: bad value "soon" for --watch: want a duration after an = (such as =30s or =2m), or no value`, "usage: guestdeck status"},
		{[]string{"status", "--sample", "5"}, `guestdeck status: bad value "5" for --sample: want a duration such as 30s, 5m or 1h`, "usage: guestdeck status"},
		{[]string{"exec", "--concurrency=many", "x", "--", "true"}, `guestdeck exec: bad value "many" for --concurrency: want a whole number`, "usage: guestdeck exec"},
		{[]string{"status", "--readonly=maybe"}, `guestdeck status: bad value "maybe" for --readonly: want no value, or =true or =false`, "usage: guestdeck status"},
		{[]string{"--readonly=maybe", "status"}, `guestdeck: bad value "maybe" for --readonly: want no value, or =true or =false`, "usage: guestdeck [GLOBAL FLAGS]"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			c := &cli{stdout: &stdout, stderr: &stderr, configPath: "/nonexistent/fleet.toml"}
			code := c.main(t.Context(), tt.args)
			if code != exitUsage || stdout.String() != "" {
				t.Errorf("exit %d, stdout %q; want %d and nothing", code, stdout.String(), exitUsage)
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if first != tt.want {
				t.Errorf("first line\n  %s\nwant\n  %s", first, tt.want)
			}
			for _, raw := range []string{"invalid boolean value", "invalid value", "parse error"} {
				if strings.Contains(stderr.String(), raw) {
					t.Errorf("the flag package's words %q show:\n%s", raw, stderr.String())
				}
			}
			if !strings.Contains(stderr.String(), tt.usage) {
				t.Errorf("no %q after the error:\n%s", tt.usage, stderr.String())
			}
		})
	}
}
