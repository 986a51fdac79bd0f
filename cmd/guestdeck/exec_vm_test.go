package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// TestExecVM runs guestdeck exec on the real agent in a real VM (one VM
// for every subtest: it is slow under TCG), and checks the simulator's
// guest-exec-status replies against the VM's.
func TestExecVM(t *testing.T) {
	vm := testpeers.BootVM(t, "gd-exec")
	cfg := fleetFile(t, "", [2]string{"vm1", "unix:" + vm.Socket})
	const script = "echo to-out; echo to-err >&2; exit 3"

	t.Run("text", func(t *testing.T) {
		r := gd(t, 120*time.Second, "-c", cfg, "exec", "vm1", "--", "/bin/sh", "-c", script)
		if r.code != 1 || !strings.HasPrefix(r.stdout, "==> vm1 <== exit 3\nto-out\n--- vm1 stderr ---\nto-err\n") {
			t.Errorf("exit %d\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		r := gd(t, 120*time.Second, "-c", cfg, "exec", "--json", "vm1", "--", "/bin/sh", "-c", script)
		rows := execRows(t, r.stdout)
		if r.code != 1 || len(rows) != 1 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		x := rows[0]
		if x.State != "exited" || x.ExitCode == nil || *x.ExitCode != 3 || x.Signal != nil || x.Stdout != "to-out\n" || x.Stderr != "to-err\n" || x.PID == nil || x.Truncated {
			t.Errorf("%s", mustJSON(x))
		}
	})
	t.Run("stdin", func(t *testing.T) {
		in := filepath.Join(t.TempDir(), "in")
		os.WriteFile(in, []byte("through stdin\n"), 0o600)
		r := gd(t, 120*time.Second, "-c", cfg, "exec", "--json", "--stdin", in, "vm1", "--", "cat")
		rows := execRows(t, r.stdout)
		if r.code != 0 || len(rows) != 1 || rows[0].Stdout != "through stdin\n" {
			t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		r := gd(t, 120*time.Second, "-c", cfg, "exec", "--json", "--timeout", "2s", "vm1", "--", "sleep", "30")
		rows := execRows(t, r.stdout)
		if r.code != 1 || len(rows) != 1 || rows[0].State != "still-running" || rows[0].PID == nil {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// Nothing was killed: the guest still runs it.
		pid := *rows[0].PID
		r = gd(t, 60*time.Second, "-c", cfg, "agent", "vm1", fmt.Sprintf(`{"execute":"guest-exec-status","arguments":{"pid":%d}}`, pid))
		if r.code != 0 || !strings.Contains(r.stdout, `"exited": false`) {
			t.Errorf("status of pid %d after the timeout: exit %d %s %s", pid, r.code, r.stdout, r.stderr)
		}
	})
	t.Run("sim matches the VM", func(t *testing.T) {
		vmKeys := statusKeysOf(t, "unix:"+vm.Socket, 60*time.Second)
		farm, _ := simFarmWith(t, 1, func(int) sim.Config { return sim.DefaultConfig("s") })
		simKeys := statusKeysOf(t, "unix:"+farm.Sockets()[0], 10*time.Second)
		for name, want := range vmKeys {
			if got := simKeys[name]; !slices.Equal(got, want) {
				t.Errorf("%s: the sim's guest-exec-status members %v, the VM's %v", name, got, want)
			}
		}
	})
}

// execShapes are programs whose final guest-exec-status shapes differ.
var execShapes = map[string]agentclient.ExecRequest{
	"both streams":   {Path: "/bin/sh", Arg: []string{"-c", "echo o; echo e >&2; exit 3"}, CaptureOutput: true},
	"no output":      {Path: "/bin/sh", Arg: []string{"-c", "exit 0"}, CaptureOutput: true},
	"signal":         {Path: "/bin/sh", Arg: []string{"-c", "echo o; kill -9 $$"}, CaptureOutput: true},
	"not captured":   {Path: "/bin/sh", Arg: []string{"-c", "echo o"}},
	"stdin captured": {Path: "cat", InputData: "aGk=", CaptureOutput: true},
}

// statusKeysOf runs execShapes at addr and returns, per program, the
// members of its final guest-exec-status reply, in the order sent.
func statusKeysOf(t *testing.T, addr string, d time.Duration) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	c, err := agentclient.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := map[string][]string{}
	for name, req := range execShapes {
		pid, err := c.Exec(ctx, req)
		if err != nil {
			t.Fatalf("%s at %s: %v", name, addr, err)
		}
		for {
			raw, err := c.Raw(ctx, fmt.Appendf(nil, `{"execute":"guest-exec-status","arguments":{"pid":%d}}`, pid))
			if err != nil {
				t.Fatalf("%s at %s: %v", name, addr, err)
			}
			var reply struct {
				Return json.RawMessage `json:"return"`
			}
			json.Unmarshal(raw, &reply)
			keys := jsonKeys(reply.Return)
			if slices.Contains(keys, "exited") && strings.Contains(string(reply.Return), `"exited":true`) {
				slices.Sort(keys)
				out[name] = keys
				break
			}
			time.Sleep(20 * time.Millisecond) // the agent's process, not ours: polled
		}
	}
	return out
}

func jsonKeys(obj json.RawMessage) []string {
	var m map[string]json.RawMessage
	json.Unmarshal(obj, &m)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
