package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/wait"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// startExport runs `guestdeck -c cfg export ARGS` and returns the URL it
// serves, read from the line it prints once listening.
func startExport(t *testing.T, cfg string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"-c", cfg, "export"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME=", "NO_COLOR=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	r := bufio.NewReader(stderr)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("export printed %q: %v", line, err)
	}
	go io.Copy(io.Discard, r) // it must never block writing its errors
	m := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+/metrics)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("export printed %q", line)
	}
	return cmd, m[1]
}

func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return mfs
}

// export against simulated guests: Prometheus's own parser reads the
// exposition, every guest turns up once it has been polled, with its
// labels and values; SIGTERM ends it with exit 0.
func TestExportScrape(t *testing.T) {
	_, cfg := simFarm(t, 3)
	cmd, url := startExport(t, cfg, "--listen", "127.0.0.1:0")

	// The guests are polled at their offsets inside the 5 s interval: the
	// first scrapes may see them connecting (an external event: poll).
	var mfs map[string]*dto.MetricFamily
	wait.For(t, 30*time.Second, func() (bool, string) {
		mfs = scrapeURL(t, url)
		up := 0
		for _, m := range mfs["guestdeck_guest_up"].GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				up++
			}
		}
		return up == 3, fmt.Sprintf("%d of 3 guests up", up)
	})
	for _, family := range []string{"guestdeck_guest_info", "guestdeck_guest_up", "guestdeck_guest_vcpus_online",
		"guestdeck_guest_rtt_seconds", "guestdeck_guest_polls_failed_total"} {
		got := map[string]float64{}
		for _, m := range mfs[family].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["host"] != "" {
				t.Errorf("%s: host %q for a [[guest]]", family, labels["host"])
			}
			if family == "guestdeck_guest_info" && labels["tags"] != "test" {
				t.Errorf("info tags %q", labels["tags"])
			}
			got[labels["guest"]] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		for _, g := range []string{"s0", "s1", "s2"} {
			v, ok := got[g]
			switch {
			case !ok:
				t.Errorf("%s: no series for %s: %v", family, g, got)
			case family == "guestdeck_guest_vcpus_online" && v != 2,
				family == "guestdeck_guest_up" && v != 1,
				family == "guestdeck_guest_info" && v != 1,
				family == "guestdeck_guest_rtt_seconds" && (v <= 0 || v > 3):
				t.Errorf("%s{guest=%q} = %v", family, g, v)
			}
		}
	}
	if mfs["go_goroutines"] == nil || mfs["process_resident_memory_bytes"] == nil {
		t.Error("no Go or process metrics")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("export after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("export still running 20 s after SIGTERM")
	}
}

// A --listen beyond loopback is refused before anything is bound or any
// guest polled, unless --listen-any.
func TestExportListenLoopbackOnly(t *testing.T) {
	_, cfg := simFarm(t, 1)
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:0", "nonsense"} {
		r := gd(t, 20*time.Second, "-c", cfg, "export", "--listen", addr)
		if r.code != exitUsage {
			t.Errorf("--listen %s: exit %d, want %d; stderr %s", addr, r.code, exitUsage, r.stderr)
		}
		if addr != "nonsense" && !strings.Contains(r.stderr, "--listen-any") {
			t.Errorf("--listen %s: stderr does not say how: %s", addr, r.stderr)
		}
	}
	// What --listen-any and loopback accept (not bound here: the tests
	// listen on loopback only).
	for _, tc := range []struct {
		addr    string
		any, ok bool
	}{
		{"127.0.0.1:9731", false, true},
		{"[::1]:9731", false, true},
		{"localhost:9731", false, true},
		{"127.0.0.2:0", false, true},
		{":9731", false, false},
		{":9731", true, true},
		{"192.0.2.1:9731", true, true},
		{"192.0.2.1", true, false}, // no port
	} {
		if err := checkListen(tc.addr, tc.any); (err == nil) != tc.ok {
			t.Errorf("checkListen(%q, %v) = %v", tc.addr, tc.any, err)
		}
	}
}

// export opens the fleet read-only: nothing it serves can be made to change
// a guest, and a fleet file's guests are never sent a mutating command.
func TestExportReadonly(t *testing.T) {
	var c cli
	c.stderr = io.Discard
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // ends at once: only what openFleet was given matters
	_, cfg := simFarm(t, 1)
	c.configPath = cfg
	if code := c.export(ctx, []string{"--listen", "127.0.0.1:0"}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !c.readonly {
		t.Error("export did not open the fleet read-only")
	}
}
