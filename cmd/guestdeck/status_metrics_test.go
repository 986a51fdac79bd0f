package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/testpeers"
)

var (
	sampleKeys = []string{"sample_s", "cpu_busy_pct", "iowait_pct", "steal_pct", "disk_read_bps", "disk_write_bps",
		"disk_read_iops", "disk_write_iops", "net_rx_bps", "net_tx_bps", "net_errs_per_sec"}
)

// sampled decodes `status --json --sample` output, checking every object
// has exactly the keys of status --json plus the rates.
func sampled(t *testing.T, out string) []map[string]json.RawMessage {
	t.Helper()
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("status --json --sample: %v\n%s", err, out)
	}
	want := append(slices.Clone(statusKeys), sampleKeys...)
	slices.Sort(want)
	for _, obj := range raw {
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("keys = %v, want %v", keys, want)
		}
	}
	return raw
}

func num(t *testing.T, obj map[string]json.RawMessage, key string) *float64 {
	t.Helper()
	var v *float64
	if err := json.Unmarshal(obj[key], &v); err != nil {
		t.Fatalf("%s = %s: %v", key, obj[key], err)
	}
	return v
}

// `status --json --sample 1s` on real qemu-ga 7.2 agents (read-only
// commands): every key of the guest's own view, and rates over the second.
func TestStatusSampleRealAgents(t *testing.T) {
	ag := testpeers.StartAgents(t, 2)
	cfg := fleetFile(t, "", [2]string{"real-1", ag.Addrs()[0]}, [2]string{"real-2", ag.Addrs()[1]})
	r := gd(t, 60*time.Second, "-c", cfg, "--readonly", "status", "--json", "--sample", "1s")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("%s", r.stdout)
	for _, g := range sampled(t, r.stdout) {
		var v struct {
			Name        string `json:"name"`
			State       string `json:"state"`
			Kernel      string `json:"kernel"`
			Timezone    *struct{ Zone string }
			Users       *[]struct{ User string }
			Filesystems []struct {
				Mountpoint string `json:"mountpoint"`
				Type       string `json:"type"`
				UsedBytes  uint64 `json:"used_bytes"`
				TotalBytes uint64 `json:"total_bytes"`
			} `json:"filesystems"`
			Disks []struct {
				Name    string `json:"name"`
				BusType string `json:"bus_type"`
			} `json:"disks"`
			Load *struct {
				Load1   float64 `json:"load1"`
				Derived bool    `json:"derived"`
			} `json:"load"`
			Note    string  `json:"metrics_note"`
			SampleS float64 `json:"sample_s"`
		}
		b, _ := json.Marshal(g)
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if v.State != "ready" || v.Kernel == "" || v.Timezone == nil || v.Users == nil {
			t.Errorf("%s: state %q kernel %q timezone %v users %v", v.Name, v.State, v.Kernel, v.Timezone, v.Users)
		}
		if len(v.Filesystems) == 0 || v.Filesystems[0].TotalBytes == 0 || v.Filesystems[0].UsedBytes > v.Filesystems[0].TotalBytes {
			t.Errorf("%s: filesystems %+v", v.Name, v.Filesystems)
		}
		if len(v.Disks) == 0 || !strings.HasPrefix(v.Disks[0].Name, "/dev/") {
			t.Errorf("%s: disks %+v", v.Name, v.Disks)
		}
		// qemu-ga 7.2 has no guest-get-load: derived from cpustats, and said so.
		if v.Load == nil || !v.Load.Derived || !strings.Contains(v.Note, "guest-get-load") {
			t.Errorf("%s: load %+v, note %q", v.Name, v.Load, v.Note)
		}
		if v.SampleS < 0.9 || v.SampleS > 30 {
			t.Errorf("%s: sample_s %v, want about 1", v.Name, v.SampleS)
		}
		if p := num(t, g, "cpu_busy_pct"); p == nil || *p < 0 || *p > 100 {
			t.Errorf("%s: cpu_busy_pct %v", v.Name, p)
		}
		for _, k := range []string{"iowait_pct", "steal_pct", "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps"} {
			if p := num(t, g, k); p == nil || *p < 0 {
				t.Errorf("%s: %s = %s, want a rate", v.Name, k, g[k])
			}
		}
	}
	r = gd(t, 60*time.Second, "-c", cfg, "--readonly", "status", "--sample", "1s", "real-1")
	if r.code != 0 || !strings.Contains(r.stdout, "CPU%") || !strings.Contains(r.stdout, "real-1") {
		t.Errorf("status --sample table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// One status poll asks no counters (a rate needs two samples): its note
// says so, and does not blame the agent for commands it was never sent.
func TestStatusNoteOnePoll(t *testing.T) {
	_, cfg := simFarm(t, 1)
	r := gd(t, 30*time.Second, "-c", cfg, "--readonly", "status", "--json")
	var gs []struct {
		State string `json:"state"`
		Note  string `json:"metrics_note"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &gs); err != nil || r.code != 0 || len(gs) != 1 {
		t.Fatalf("status --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if n := gs[0].Note; gs[0].State != "ready" || !strings.Contains(n, "one poll") || strings.Contains(n, "cpustats") || strings.Contains(n, "did not answer") {
		t.Errorf("one poll's note %q (state %s): want it to say one poll gives no rate, naming no command as failing", n, gs[0].State)
	}
}

func TestStatusModeFlags(t *testing.T) {
	_, cfg := simFarm(t, 1)
	for _, args := range [][]string{{"--sample", "10ms"}, {"--watch=1ms"}, {"--watch=soon"}} {
		r := gd(t, 30*time.Second, append([]string{"-c", cfg, "status"}, args...)...)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("status %v: exit %d, stdout %q, want %d and nothing", args, r.code, r.stdout, exitUsage)
		}
	}
}

// `status --watch D --json` prints one JSON array per line until
// interrupted; from the second line on the rates are known.
func TestStatusWatchJSON(t *testing.T) {
	_, cfg := simFarm(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-c", cfg, "status", "--json", "--watch", "600ms", "s0", "s1")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME=", "NO_COLOR=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for lines < 3 && sc.Scan() {
		lines++
		raw := sampled(t, sc.Text())
		if len(raw) != 2 {
			t.Fatalf("line %d: %d guests, want 2", lines, len(raw))
		}
		if lines >= 2 {
			for _, g := range raw {
				if p := num(t, g, "cpu_busy_pct"); p == nil {
					t.Errorf("line %d: cpu_busy_pct null: %s", lines, g["metrics_note"])
				}
			}
		}
	}
	if lines < 3 {
		t.Fatalf("%d lines before the output ended: %s", lines, stderr.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("status --watch after an interrupt: %v (want exit 0)\n%s", err, stderr.String())
	}
}
