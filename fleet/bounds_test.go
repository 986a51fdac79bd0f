package fleet

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// A guest whose replies are hostile loses only what it got wrong: an 85 MB
// OS name fails guest-get-osinfo alone (named in the guest's error), an
// out-of-range counter or vCPU id loses that field, and everything else the
// guest said is kept. Four such guests cost the fleet no memory to speak of,
// and a healthy guest beside them is unaffected.
func TestHostileRepliesCostOnlyTheirField(t *testing.T) {
	const n = 85_000_000
	hostile := func(name string) *wireAgent {
		return &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
			switch cmd {
			case "guest-get-osinfo":
				return writeHuge(w, id, n)
			case "guest-network-get-interfaces":
				return writeReturn(w, id, `[{"name": "eth0", "statistics": {"rx-bytes": -1, "tx-bytes": 18446744073709551616, "rx-packets": 7}}]`)
			case "guest-get-vcpus":
				return writeReturn(w, id, `[{"logical-id": 9223372036854775808, "online": true}, {"logical-id": 1, "online": "yes"}]`)
			}
			return healthyAgent(name).reply(w, cmd, id)
		}}
	}
	agents := map[string]*wireAgent{"ok": healthyAgent("ok")}
	for i := range 4 {
		name := fmt.Sprintf("bad%d", i)
		agents[name] = hostile(name)
	}
	f := wireFleet(Options{Timeout: 30 * time.Second}, agents)
	defer f.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f.RefreshOnce(t.Context(), nil)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("4 guests × 85 MB osinfo: %d bytes allocated by the whole refresh, heap in use %d -> %d", alloc, before.HeapInuse, after.HeapInuse)
	if alloc > 32<<20 {
		t.Errorf("refreshing 4 guests that each send an 85 MB reply allocated %d bytes", alloc)
	}

	if g := f.Guest("ok"); g.State != Ready || g.Err != "" || g.OS == nil || g.OS.ID != "debian" || len(g.Interfaces) != 2 {
		t.Errorf("healthy guest: %s %q %+v", g.State, g.Err, g.OS)
	}
	for i := range 4 {
		g := f.Guest(fmt.Sprintf("bad%d", i))
		if g.State != Ready || !strings.Contains(g.Err, "reply too large (") || !strings.Contains(g.Err, "bytes from guest-get-osinfo, limit 64 KiB)") {
			t.Fatalf("%s: %s %q, want ready with the osinfo reply named too large", g.Name, g.State, g.Err)
		}
		t.Logf("%s: %s", g.Name, g.Err)
		if g.OS != nil {
			t.Errorf("%s: OS %+v from a reply that was skipped", g.Name, g.OS)
		}
		if g.Hostname != g.Name || g.Timezone == nil || len(g.Users) != 1 || len(g.Filesystems) != 1 || !g.SkewKnown {
			t.Errorf("%s: the rest of the poll was lost: hostname %q tz %v users %v fs %v", g.Name, g.Hostname, g.Timezone, g.Users, g.Filesystems)
		}
		if len(g.Interfaces) != 1 || g.Interfaces[0].Statistics == nil || *g.Interfaces[0].Statistics != (agentclient.InterfaceStats{RxPackets: 7}) {
			t.Errorf("%s: interfaces %+v, want eth0 with only rx-packets kept", g.Name, g.Interfaces)
		}
		if len(g.VCPUs) != 2 || g.VCPUs[0].LogicalID != 0 || !g.VCPUs[0].Online || g.VCPUs[1].LogicalID != 1 || g.VCPUs[1].Online {
			t.Errorf("%s: vcpus %+v, want both, the bad fields zero", g.Name, g.VCPUs)
		}
	}
	if n := f.budget.InUse(); n != 0 {
		t.Errorf("reply budget holds %d bytes after the refresh", n)
	}
}

// With the fleet's reply budget exhausted a guest's poll fails at once with
// the budget named, keeps its connection and state, and is retried later;
// small replies (inside the read buffer) are never charged.
func TestPollReplyBudget(t *testing.T) {
	bigFS := `[` + strings.Repeat(`{"name": "vda1", "mountpoint": "/srv/data", "type": "ext4", "disk": []}, `, 2000) + `{"name": "vdb", "mountpoint": "/", "type": "xfs", "disk": []}]`
	agents := map[string]*wireAgent{
		"big": {reply: func(w io.Writer, cmd string, id []byte) error {
			if cmd == "guest-get-fsinfo" {
				return writeReturn(w, id, bigFS)
			}
			return healthyAgent("big").reply(w, cmd, id)
		}},
		"small": healthyAgent("small"),
	}
	// 64 KiB: the big guest's 150 KB fsinfo (within its 4 MiB limit) cannot fit.
	f := wireFleet(Options{Timeout: 10 * time.Second, ReplyBudget: 64 << 10}, agents)
	defer f.Close()
	f.RefreshOnce(t.Context(), nil)
	g := f.Guest("big")
	if !strings.Contains(g.Err, "reply budget exhausted: the reply to guest-get-fsinfo needed") || g.Missed != 1 || g.State == Unreachable {
		t.Fatalf("big guest over the budget: %s %q missed %d", g.State, g.Err, g.Missed)
	}
	if s := f.Guest("small"); s.State != Ready || s.Err != "" || len(s.Filesystems) != 1 {
		t.Errorf("small guest: %s %q", s.State, s.Err)
	}
	if n := f.budget.InUse(); n != 0 {
		t.Errorf("budget holds %d bytes after the refresh", n)
	}

	// With the default budget the same guest is fine.
	f2 := wireFleet(Options{Timeout: 10 * time.Second}, agents)
	defer f2.Close()
	f2.RefreshOnce(t.Context(), nil)
	if g := f2.Guest("big"); g.State != Ready || g.Err != "" || len(g.Filesystems) != 2001 {
		t.Errorf("big guest under the default budget: %s %q, %d filesystems", g.State, g.Err, len(g.Filesystems))
	}
}

// One poll is bounded as a whole: a guest that answers every call just
// inside the call timeout stops at the poll's bound (2 × the timeout), keeps
// what it answered, and names the call it was waiting for; a hung guest
// times out its first call; a healthy one is unaffected. RefreshOnce, as
// `guestdeck status` uses it, returns within the bound.
func TestPollBoundedAsAWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Interval: time.Minute, Timeout: 3 * time.Second}
		f, guests := fakeFleet(opts, 3)
		defer f.Close()
		guests["g000"].set(func(g *fakeGuest) { g.latency = 2900 * time.Millisecond })
		guests["g001"].set(func(g *fakeGuest) { g.hang = true })
		start := time.Now()
		f.RefreshOnce(t.Context(), nil)
		took := time.Since(start)
		if bound := 2 * opts.Timeout; took > bound {
			t.Errorf("RefreshOnce took %v, past the poll bound %v", took, bound)
		}
		slow := f.Guest("g000")
		want := "poll ran out of its 6s (2 × the 3s call timeout) waiting for "
		if slow.State != Ready || !strings.HasPrefix(slow.Err, want) || slow.Missed != 1 {
			t.Fatalf("slow guest: %s %q missed %d, want ready with %q...", slow.State, slow.Err, slow.Missed, want)
		}
		// guest-info (2.9s) then the live batch's time (2.9s) answered; the
		// call after them ran into the bound.
		if slow.AgentVersion == "" || !slow.SkewKnown || slow.OS != nil {
			t.Errorf("slow guest kept: version %q skew %v os %+v", slow.AgentVersion, slow.SkewKnown, slow.OS)
		}
		if hung := f.Guest("g001"); hung.State != Silent || !strings.Contains(hung.Err, "guest-info") {
			t.Errorf("hung guest: %s %q", hung.State, hung.Err)
		}
		if ok := f.Guest("g002"); ok.State != Ready || ok.Err != "" || ok.OS == nil {
			t.Errorf("healthy guest: %s %q", ok.State, ok.Err)
		}
		// The same through real streams, whose read deadline is the
		// context's and may pass a hair before the context ends: every
		// guest still reports the poll running out, never a plain timeout.
		slowItems := func(name string) *wireAgent {
			return &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
				switch cmd {
				case "guest-info", "guest-get-osinfo", "guest-get-host-name", "guest-get-timezone", "guest-get-users", "guest-get-fsinfo":
					time.Sleep(2900 * time.Millisecond)
				}
				return healthyAgent(name).reply(w, cmd, id)
			}}
		}
		agents := map[string]*wireAgent{}
		for i := range 8 {
			agents[fmt.Sprintf("w%d", i)] = slowItems(fmt.Sprintf("w%d", i))
		}
		fw := wireFleet(Options{Timeout: 3 * time.Second}, agents)
		defer fw.Close()
		start = time.Now()
		fw.RefreshOnce(t.Context(), nil)
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("RefreshOnce over streams took %v, past the poll bound", took)
		}
		for name := range agents {
			g := fw.Guest(name)
			if g.State != Ready || g.Err != want+"guest-get-host-name; the items after it were not asked this time" || g.OS == nil || len(g.Interfaces) != 2 {
				t.Errorf("%s over a stream: %s %q", name, g.State, g.Err)
			}
		}

		// An explicit PollTimeout is the bound, and the message says so.
		f2, guests2 := fakeFleet(Options{Interval: time.Minute, Timeout: 3 * time.Second, PollTimeout: 4 * time.Second}, 1)
		defer f2.Close()
		guests2["g000"].set(func(g *fakeGuest) { g.latency = 2900 * time.Millisecond })
		start = time.Now()
		f2.RefreshOnce(t.Context(), nil)
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("RefreshOnce took %v, past PollTimeout 4s", took)
		}
		if g := f2.Guest("g000"); !strings.HasPrefix(g.Err, "poll ran out of its 4s (the poll timeout; each call has 3s) waiting for guest-get-time") {
			t.Errorf("slow guest with PollTimeout 4s: %q", g.Err)
		}
	})
}

// BenchmarkHostileFleet refreshes 8 guests that each answer guest-get-osinfo
// with an 85 MB OS name (the rest plausibly), through real streams: bytes
// allocated per refresh of all 8 (B/op), and the process's peak RSS.
//
//	go test ./fleet -run '^$' -bench HostileFleet -benchtime 3x
func BenchmarkHostileFleet(b *testing.B) {
	agents := map[string]*wireAgent{}
	for i := range 8 {
		name := fmt.Sprintf("bad%d", i)
		agents[name] = &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
			if cmd == "guest-get-osinfo" {
				return writeHuge(w, id, 85_000_000)
			}
			return healthyAgent(name).reply(w, cmd, id)
		}}
	}
	f := wireFleet(Options{Timeout: 30 * time.Second}, agents)
	defer f.Close()
	b.ReportAllocs()
	for b.Loop() {
		f.RefreshOnce(b.Context(), nil)
	}
	for name := range agents {
		if g := f.Guest(name); g.State != Ready || !strings.Contains(g.Err, "reply too large") {
			b.Fatalf("%s: %s %q", name, g.State, g.Err)
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
}
