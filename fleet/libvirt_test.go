package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/fleet/discovery"
	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// testDomainXML is a test-driver domain; withAgent adds the guest-agent channel.
func testDomainXML(name string, withAgent bool) string {
	ch := ""
	if withAgent {
		ch = `<channel type='unix'><target type='virtio' name='` + AgentChannel + `'/></channel>`
	}
	return `<domain type='test'><name>` + name + `</name><memory unit='MiB'>64</memory>` +
		`<os><type arch='x86_64'>hvm</type></os><devices>` + ch + `</devices></domain>`
}

// waitFor polls the fleet's snapshot until cond holds or d passes.
func waitFor(t *testing.T, f *Fleet, d time.Duration, what string, cond func(s *Snapshot) bool) time.Duration {
	t.Helper()
	return wait.For(t, d, func() (bool, string) {
		s := f.Snapshot()
		return cond(s), fmt.Sprintf("waiting for %s; guests: %s", what, describeGuests(s))
	})
}

func describeGuests(s *Snapshot) string {
	var b strings.Builder
	for i, g := range s.Guests {
		if i == 12 {
			fmt.Fprintf(&b, " ... (%d guests)", len(s.Guests))
			break
		}
		fmt.Fprintf(&b, "\n  %s [%s] %s %q", g.Name, g.Address, g.State, g.Err)
	}
	return b.String()
}

func hostGuests(s *Snapshot, host string) []*Guest {
	var out []*Guest
	for _, g := range s.Guests {
		if g.Host == host {
			out = append(out, g)
		}
	}
	return out
}

func countState(gs []*Guest, st State) int {
	n := 0
	for _, g := range gs {
		if g.State == st {
			n++
		}
	}
	return n
}

func testURI(sock string) string { return "test+unix:///default?socket=" + sock }

// mustURI parses a libvirt URI with config.ParseURI, the parser a fleet
// file's hosts go through.
func mustURI(t testing.TB, s string) config.HostURI {
	t.Helper()
	u, err := config.ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestLibvirtTestDriverScale: hundreds of domains on libvirt's test driver are
// discovered (with filters and tags), and start/stop/undefine events add,
// mark gone and remove targets.
func TestLibvirtTestDriverScale(t *testing.T) {
	lt := testpeers.StartLibvirtTest(t)
	lv := lt.Connect(t)
	n := 300 // GUESTDECK_LIBVIRT_DOMAINS overrides, for measuring
	if v, err := strconv.Atoi(os.Getenv("GUESTDECK_LIBVIRT_DOMAINS")); err == nil && v >= 200 {
		n = v
	}
	for i := range n {
		d, err := lv.DomainDefineXML(testDomainXML(fmt.Sprintf("vm%03d", i), true))
		if err != nil {
			t.Fatal(err)
		}
		if err := lv.DomainCreate(d); err != nil {
			t.Fatal(err)
		}
	}
	// Running but not ours: no agent channel, or excluded by the glob.
	for _, name := range []string{"noagent1", "noagent2"} {
		if _, err := lv.DomainCreateXML(testDomainXML(name, false), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lv.DomainCreateXML(testDomainXML("skip-me", true), 0); err != nil {
		t.Fatal(err)
	}
	// Defined but not running: not discovered.
	if _, err := lv.DomainDefineXML(testDomainXML("idle", true)); err != nil {
		t.Fatal(err)
	}

	f := New(Options{Interval: time.Hour})
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	err := f.AddHost(ctx, HostConfig{Name: "tst", URI: mustURI(t, testURI(lt.Socket)), Exclude: []string{"skip-*"}, Tags: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("discovery: %d domains (+4 ignored) in %v (%.2f ms/domain)", n, took, float64(took.Microseconds())/1000/float64(n))
	gs := hostGuests(f.Snapshot(), "tst")
	if len(gs) != n {
		t.Fatalf("discovered %d guests, want %d: %s", len(gs), n, describeGuests(f.Snapshot()))
	}
	for _, g := range gs {
		if !strings.HasPrefix(g.Name, "tst/vm") || g.Address != "libvirt:"+g.Name || len(g.Tags) != 1 || g.Tags[0] != "lab" {
			t.Fatalf("bad target %+v", g.Target)
		}
	}

	// The typed API works on the test driver: a poll through libvirt makes a
	// guest ready (commands the driver lacks are skipped, not fatal).
	f.RefreshOnce(ctx, []string{"tst/vm000"})
	if g := f.Guest("tst/vm000"); g.State != Ready || !g.SkewKnown {
		t.Fatalf("vm000 after a poll: state %s err %q skewKnown %v interfaces %v", g.State, g.Err, g.SkewKnown, g.Interfaces)
	}

	// Stop 100 (persistent: kept as gone), undefine 50 of them (removed),
	// start 50 transient ones (added), then destroy those (removed).
	t0 = time.Now()
	for i := range 100 {
		d, err := lv.DomainLookupByName(fmt.Sprintf("vm%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := lv.DomainDestroy(d); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, f, 30*time.Second, "100 guests gone", func(s *Snapshot) bool {
		return countState(hostGuests(s, "tst"), Gone) == 100
	})
	t.Logf("100 stop events -> 100 gone in %v", time.Since(t0))
	if g := f.Guest("tst/vm007"); g == nil || !strings.Contains(g.Err, "destroyed") {
		t.Fatalf("vm007: %+v", g)
	}
	for i := range 50 {
		d, _ := lv.DomainLookupByName(fmt.Sprintf("vm%03d", i))
		if err := lv.DomainUndefine(d); err != nil {
			t.Fatal(err)
		}
	}
	t0 = time.Now()
	for i := range 50 {
		if _, err := lv.DomainCreateXML(testDomainXML(fmt.Sprintf("tr%03d", i), true), 0); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, f, 30*time.Second, "undefined removed, transient added", func(s *Snapshot) bool {
		gs := hostGuests(s, "tst")
		tr := 0
		for _, g := range gs {
			if strings.HasPrefix(g.Name, "tst/tr") {
				tr++
			}
		}
		return len(gs) == n-50+50 && tr == 50 && countState(gs, Gone) == 50
	})
	t.Logf("50 undefines + 50 starts reflected in %v", time.Since(t0))
	for i := range 50 {
		d, _ := lv.DomainLookupByName(fmt.Sprintf("tr%03d", i))
		if err := lv.DomainDestroy(d); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, f, 30*time.Second, "transient guests removed", func(s *Snapshot) bool {
		return len(hostGuests(s, "tst")) == n-50
	})

	// A restarted persistent domain comes back under the same target.
	d, _ := lv.DomainLookupByName("vm060")
	if err := lv.DomainCreate(d); err != nil {
		t.Fatal(err)
	}
	f.RefreshOnce(ctx, []string{"tst/vm060"})
	if g := f.Guest("tst/vm060"); g.State != Ready {
		t.Fatalf("vm060 restarted: %s %q", g.State, g.Err)
	}
}

// TestLibvirtHostNames: name clashes across hosts, duplicate hosts, bad configs.
func TestLibvirtHostNames(t *testing.T) {
	lt := testpeers.StartLibvirtTest(t)
	lv := lt.Connect(t)
	for _, name := range []string{"web", "db"} {
		if _, err := lv.DomainCreateXML(testDomainXML(name, true), 0); err != nil {
			t.Fatal(err)
		}
	}
	f := New(Options{Interval: time.Hour})
	defer f.Close()
	f.Add(Target{Name: "db", Address: "unix:/nonexistent"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.AddHost(ctx, HostConfig{Name: "a", URI: mustURI(t, testURI(lt.Socket))}); err != nil {
		t.Fatal(err)
	}
	// The same daemon under a second name: every domain name clashes.
	if err := f.AddHost(ctx, HostConfig{Name: "b", URI: mustURI(t, testURI(lt.Socket)), Include: []string{"w*"}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a/web": "libvirt:a/web", "a/db": "libvirt:a/db", "b/web": "libvirt:b/web", "db": "unix:/nonexistent"}
	got := map[string]string{}
	for _, g := range f.Snapshot().Guests {
		got[g.Name] = g.Address
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("targets %v, want %v", got, want)
	}
	for _, g := range []string{"a/web", "b/web"} {
		f.RefreshOnce(ctx, []string{g})
		if st := f.Guest(g).State; st != Ready {
			t.Fatalf("%s: %s %q", g, st, f.Guest(g).Err)
		}
	}

	// Hosts added concurrently: every guest is HOST/DOMAIN whichever answers first.
	for i := range 30 {
		if _, err := lv.DomainCreateXML(testDomainXML(fmt.Sprintf("race%02d", i), true), 0); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 5 {
		fr := New(Options{Interval: time.Hour})
		errs := make(chan error, 2)
		for _, name := range []string{"p", "q"} {
			go func() {
				errs <- fr.AddHost(ctx, HostConfig{Name: name, URI: mustURI(t, testURI(lt.Socket)), Include: []string{"race*"}})
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		byAddr := map[string]string{}
		for _, g := range fr.Snapshot().Guests {
			byAddr[g.Address] = g.Name
		}
		for i := range 30 {
			dom := fmt.Sprintf("race%02d", i)
			p, q := byAddr["libvirt:p/"+dom], byAddr["libvirt:q/"+dom]
			if p != "p/"+dom || q != "q/"+dom {
				t.Fatalf("round %d: %s named %q (p) and %q (q)", round, dom, p, q)
			}
		}
		fr.Close()
	}

	bad := []HostConfig{
		{Name: "a", URI: mustURI(t, testURI(lt.Socket))}, // already added
		{Name: "", URI: mustURI(t, "qemu:///system")},    // no name
		{Name: "x/y", URI: mustURI(t, "qemu:///system")}, // '/' in name
		{Name: "c"}, // no URI (a bad one is refused by config.ParseURI, the one parser)
		{Name: "d", URI: mustURI(t, "qemu:///system"), Include: []string{"["}},
	}
	for _, h := range bad {
		if err := f.AddHost(ctx, h); err == nil {
			t.Errorf("AddHost(%+v) succeeded", h)
		} else {
			t.Logf("AddHost(%q, %q): %v", h.Name, h.URI.Raw, err)
		}
	}
}

// TestLibvirtReconnect: killing one host's libvirtd makes its guests
// unreachable with an error naming the host while another host's guests stay
// ready; restarting it brings them back.
func TestLibvirtReconnect(t *testing.T) {
	// Domains come from a node file, so a restarted daemon has them again.
	node := func(prefix string) string {
		// The daemon runs as nobody: the file must be readable by it.
		dir, err := os.MkdirTemp("/tmp", "gdn")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString("<node>")
		for i := range 5 {
			b.WriteString(testDomainXML(fmt.Sprintf("%s%d", prefix, i), true))
		}
		b.WriteString("</node>")
		p := filepath.Join(dir, "node.xml")
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := testpeers.StartLibvirtTest(t), testpeers.StartLibvirtTest(t)
	f := New(Options{Interval: 500 * time.Millisecond, Timeout: 2 * time.Second})
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, h := range []HostConfig{
		{Name: "ha", URI: mustURI(t, "test+unix://"+node("a")+"?socket="+a.Socket)},
		{Name: "hb", URI: mustURI(t, "test+unix://"+node("b")+"?socket="+b.Socket)},
	} {
		if err := f.AddHost(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	f.Start(ctx)
	waitFor(t, f, 30*time.Second, "10 guests ready", func(s *Snapshot) bool {
		return len(s.Guests) == 10 && s.Counts[Ready] == 10
	})
	for _, h := range []string{"ha", "hb"} {
		if st := sourceState(t, f, h); st.Phase != discovery.Up || st.Guests != 5 || st.Err != nil {
			t.Fatalf("host %s: %+v", h, st)
		}
	}

	if err := syscall.Kill(a.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	waitFor(t, f, 20*time.Second, "host ha's guests unreachable", func(s *Snapshot) bool {
		ga := hostGuests(s, "ha")
		for _, g := range ga {
			if g.State != Unreachable || !strings.Contains(g.Err, "libvirt host ha") {
				return false
			}
		}
		return len(ga) == 5
	})
	t.Logf("host down -> its 5 guests unreachable in %v: %q", time.Since(t0), f.Guest("ha/a0").Err)
	// The host itself is shown down, keeping its guests; the other is up.
	if st := sourceState(t, f, "ha"); st.Reachable() || st.Err == nil || st.Guests != 5 {
		t.Fatalf("host ha after its daemon died: %+v", st)
	}
	if st := sourceState(t, f, "hb"); st.Phase != discovery.Up {
		t.Fatalf("host hb while ha is down: %+v", st)
	}
	// hb's guests poll on, twice over, while ha is down.
	for range 2 {
		mark := time.Now()
		waitFor(t, f, 20*time.Second, "host hb's guests polled", func(s *Snapshot) bool {
			for _, g := range hostGuests(s, "hb") {
				if !g.LastLive.After(mark) {
					return false
				}
			}
			return true
		})
	}
	for _, g := range hostGuests(f.Snapshot(), "hb") {
		if g.State != Ready || g.Err != "" {
			t.Fatalf("other host's guest %s: %s %q", g.Name, g.State, g.Err)
		}
	}

	a.Restart(t) // same node file: the same domains come back
	t0 = time.Now()
	waitFor(t, f, 60*time.Second, "host ha's guests back", func(s *Snapshot) bool {
		return len(s.Guests) == 10 && s.Counts[Ready] == 10
	})
	t.Logf("host restarted -> its guests ready again in %v", time.Since(t0))
	if st := sourceState(t, f, "ha"); st.Phase != discovery.Up || st.Err != nil || st.Guests != 5 {
		t.Fatalf("host ha after restart: %+v", st)
	}
}

// sourceState is the state of f's source named name.
func sourceState(t *testing.T, f *Fleet, name string) SourceState {
	t.Helper()
	for _, st := range f.Sources() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no source %q in %+v", name, f.Sources())
	return SourceState{}
}

// TestLibvirtUnreachableSource: a host whose socket does not exist (written
// as a bare path) is reported by AddHost, shown unreachable with the error
// and the next retry, and retried in the background with growing backoff.
func TestLibvirtUnreachableSource(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no-such-libvirt-sock")
	f := New(Options{Interval: time.Hour})
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := f.AddHost(ctx, HostConfig{Name: "gone", URI: mustURI(t, sock)})
	if err == nil || !strings.Contains(err.Error(), "libvirt host gone ("+sock+")") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("AddHost: %v", err)
	}
	st := sourceState(t, f, "gone")
	if st.Phase != discovery.Unreachable || st.Reachable() || st.Kind != "libvirt" || st.Endpoint != sock ||
		st.Err == nil || !strings.Contains(st.Err.Error(), "no such file") || !st.Retry.After(st.Since) {
		t.Fatalf("state after the first attempt: %+v", st)
	}
	// The next attempt fails too, and the one after it is due later.
	first := st.Retry
	waitFor(t, f, 20*time.Second, "a second failed attempt", func(*Snapshot) bool {
		st = sourceState(t, f, "gone")
		return st.Phase == discovery.Unreachable && st.Retry.After(first)
	})
	if st.Err == nil || st.Guests != 0 {
		t.Fatalf("state after the second attempt: %+v", st)
	}
}

// TestLibvirtQEMU runs against a real libvirtd (QEMU driver) managing one
// real TCG guest with the real agent; the subtests share it, in order.
func TestLibvirtQEMU(t *testing.T) {
	outer := t
	lq := testpeers.StartLibvirtQEMU(t)
	lv := lq.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	host := HostConfig{Name: "lq", URI: mustURI(t, "qemu+unix:///session?socket="+lq.Socket), Tags: []string{"vm"}}

	// A poll interval of an hour: only the AGENT_LIFECYCLE event can make
	// the guest ready within the test.
	f := New(Options{Interval: time.Hour, SlowInterval: time.Hour, Timeout: 5 * time.Second})
	defer f.Close()
	if err := f.AddHost(ctx, host); err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)

	// Phase 1 (not a subtest: the domain must outlive it): the guest starts
	// while the host is followed.
	{
		evs, err := lv.SubscribeEvents(ctx, libvirt.DomainEventIDAgentLifecycle, nil)
		if err != nil {
			t.Fatal(err)
		}
		connected := make(chan time.Time, 1)
		go func() {
			for ev := range evs {
				m, ok := ev.(*libvirt.DomainEventCallbackAgentLifecycleMsg)
				if ok && m.Dom.Name == "g1" && m.State == int32(libvirt.ConnectDomainEventAgentLifecycleStateConnected) {
					select {
					case connected <- time.Now():
					default:
					}
				}
			}
		}()
		ready := make(chan time.Time, 1)
		go func() {
			for {
				if g := f.Guest("lq/g1"); g != nil && g.State == Ready {
					ready <- time.Now()
					return
				}
				select {
				case <-f.Changed():
				case <-ctx.Done():
					return
				}
			}
		}()
		lq.DefineGuest(t, "g1")
		var tc, tr time.Time
		select {
		case tc = <-connected:
		case <-time.After(60 * time.Second):
			t.Fatal("no AGENT_LIFECYCLE connected event for g1")
		}
		select {
		case tr = <-ready:
		case <-time.After(60 * time.Second):
			t.Fatalf("g1 not ready: %s", describeGuests(f.Snapshot()))
		}
		g := f.Guest("lq/g1")
		t.Logf("agent connected -> guest ready in %v (poll interval 1h)", tr.Sub(tc))
		// The first poll went out when the domain appeared, before its
		// agent answered, and failed polls back off for up to MaxBackoff:
		// ready within seconds of the event is the event's doing.
		if tr.Sub(tc) > 10*time.Second {
			t.Fatalf("g1 ready %v after the agent connected (%d failed polls before): not the event", tr.Sub(tc), g.Missed)
		}
		if g.Host != "lq" || g.Address != "libvirt:lq/g1" || len(g.Tags) != 1 {
			t.Fatalf("target %+v", g.Target)
		}
	}

	f2 := New(Options{Interval: time.Hour, SlowInterval: time.Hour, Timeout: 15 * time.Second})
	defer f2.Close()
	t.Run("a host added later discovers the running guest", func(t *testing.T) {
		t0 := time.Now()
		if err := f2.AddHost(ctx, host); err != nil {
			t.Fatal(err)
		}
		took := time.Since(t0)
		if g := f2.Guest("lq/g1"); g == nil || g.Address != "libvirt:lq/g1" {
			t.Fatalf("not discovered: %s", describeGuests(f2.Snapshot()))
		}
		f2.Start(ctx)
		// Its agent is connected already: discovery pokes it.
		d := waitFor(t, f2, 30*time.Second, "g1 ready", func(s *Snapshot) bool { return f2.Guest("lq/g1").State == Ready })
		t.Logf("discovery %v, then ready %v later", took, d)
	})

	t.Run("a host written as its bare socket path", func(t *testing.T) {
		// As a fleet file writes it, through the one URI parser: the path
		// alone, no driver. The daemon is a per-user one (qemu:///session):
		// the bare path must reach it all the same.
		cfg, err := config.Parse("fleet.toml", []byte("[[host]]\nname = \"bare\"\nuri = \""+lq.Socket+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		uri, err := cfg.Hosts[0].Endpoint()
		if err != nil {
			t.Fatal(err)
		}
		f3 := New(Options{Interval: time.Hour, SlowInterval: time.Hour, Timeout: 15 * time.Second})
		defer f3.Close()
		if err := f3.AddHost(ctx, HostConfig{Name: cfg.Hosts[0].Name, URI: uri}); err != nil {
			t.Fatal(err)
		}
		f3.Start(ctx)
		waitFor(t, f3, 30*time.Second, "bare/g1 ready", func(s *Snapshot) bool {
			g := f3.Guest("bare/g1")
			return g != nil && g.State == Ready
		})
		src := f3.Sources()
		if len(src) != 1 || src[0].Name != "bare" || src[0].Phase != discovery.Up || src[0].Guests != 1 || src[0].Endpoint != lq.Socket || src[0].Err != nil {
			t.Fatalf("sources %+v", src)
		}
	})

	t.Run("libvirt's typed API values", func(t *testing.T) {
		f.RefreshOnce(ctx, []string{"lq/g1"})
		g := f.Guest("lq/g1")
		if g.State != Ready {
			t.Fatalf("%s %q", g.State, g.Err)
		}
		if len(g.VCPUs) != 2 || !g.VCPUs[0].Online || !g.VCPUs[1].Online || *g.VCPUs[0].CanOffline || !*g.VCPUs[1].CanOffline {
			t.Errorf("vcpus %+v", g.VCPUs)
		}
		var data *agentclient.Filesystem
		for i, fs := range g.Filesystems {
			if fs.Mountpoint == "/data" {
				data = &g.Filesystems[i]
			}
		}
		if data == nil || data.Type != "ext4" || data.TotalBytes == nil || *data.TotalBytes < 16<<20 || len(data.Disk) == 0 || data.Disk[0].Dev != "/dev/vda" {
			t.Errorf("fsinfo %+v", g.Filesystems)
		}
		lo := false
		for _, it := range g.Interfaces {
			for _, ad := range it.IPAddresses {
				lo = lo || (it.Name == "lo" && ad.Address == "127.0.0.1" && ad.Type == "ipv4" && ad.Prefix == 8)
			}
		}
		if !lo {
			t.Errorf("interfaces %+v", g.Interfaces)
		}
		if g.Hostname != "g1" || g.Timezone == nil || g.Timezone.Zone != "UTC" || g.OS == nil || g.OS.KernelRelease == "" || g.Users == nil {
			t.Errorf("hostname %q tz %+v os %+v users %v", g.Hostname, g.Timezone, g.OS, g.Users)
		}
		if !g.SkewKnown || g.Skew > time.Minute || g.Skew < -time.Minute || g.AgentVersion == "" {
			t.Errorf("skew %v known %v agent %q", g.Skew, g.SkewKnown, g.AgentVersion)
		}
	})

	t.Run("actions through Run", func(t *testing.T) {
		one := func(a Action) Result {
			t.Helper()
			rs := f.Run(ctx, a, []string{"lq/g1"}, nil)
			if len(rs) != 1 || !rs[0].OK {
				t.Fatalf("%v: %+v", a.Kind, rs)
			}
			return rs[0]
		}
		one(Action{Kind: ActFreeze})
		f.RefreshOnce(ctx, []string{"lq/g1"})
		if g := f.Guest("lq/g1"); g.State != Frozen || !g.FrozenByUs {
			t.Fatalf("after freeze: %s frozenByUs %v %q", g.State, g.FrozenByUs, g.Err)
		}
		one(Action{Kind: ActThaw})
		f.RefreshOnce(ctx, []string{"lq/g1"})
		if g := f.Guest("lq/g1"); g.State != Ready {
			t.Fatalf("after thaw: %s %q", g.State, g.Err)
		}
		one(Action{Kind: ActSetTime})
		one(Action{Kind: ActVCPUs, Mode: "offline", IDs: []int{1}})
		f.RefreshOnce(ctx, []string{"lq/g1"})
		if g := f.Guest("lq/g1"); len(g.VCPUs) != 2 || g.VCPUs[1].Online {
			t.Fatalf("after offline: %+v", g.VCPUs)
		}
		one(Action{Kind: ActVCPUs, Mode: "online", IDs: []int{1}})
		// A file read goes through QemuAgentCommand (no typed API for it).
		if r := one(Action{Kind: ActRead, Path: testpeers.HelloPath}); string(r.Data) != testpeers.HelloContent {
			t.Fatalf("read %q", r.Data)
		}
	})

	t.Run("agent errors through libvirt", func(t *testing.T) {
		dom, err := lv.DomainLookupByName("g1")
		if err != nil {
			t.Fatal(err)
		}
		a := agentclient.NewLibvirt(lv, dom, "libvirt:lq/g1")
		if n, err := a.Freeze(ctx); err != nil || n != 1 {
			t.Fatalf("freeze: %d %v", n, err)
		}
		_, terr := a.Time(ctx)
		_, uerr := a.Users(ctx) // GetGuestInfo answers an empty list while frozen
		_, ferr := a.FSInfo(ctx)
		_, rerr := a.Raw(ctx, []byte(`{"execute":"guest-file-open","arguments":{"path":"/data/hello.txt"}}`))
		n, err := a.Thaw(ctx)
		if err != nil || n != 1 {
			t.Fatalf("thaw: %d %v", n, err)
		}
		for _, e := range []error{terr, uerr, ferr, rerr} {
			if !agentclient.IsFrozen(e) || !strings.Contains(e.Error(), "libvirt:lq/g1") {
				t.Errorf("while frozen: %v (IsFrozen %v)", e, agentclient.IsFrozen(e))
			}
		}
		_, err = a.Raw(ctx, []byte(`{"execute":"guest-no-such-command"}`))
		if !agentclient.IsUnknown(err) {
			t.Errorf("unknown command: %v", err)
		}
		if _, err := a.SetVCPUs(ctx, []agentclient.VCPU{{LogicalID: 0}}); err == nil || !strings.Contains(err.Error(), "offlinable") {
			t.Errorf("offline vCPU 0: %v", err)
		}
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		t0 := time.Now()
		if _, err := a.FSInfo(short); !agentclient.IsTimeout(err) || time.Since(t0) > 100*time.Millisecond {
			t.Errorf("1ms deadline: %v after %v", err, time.Since(t0))
		}
	})

	t.Run("pause and resume events", func(t *testing.T) {
		dom, err := lv.DomainLookupByName("g1")
		if err != nil {
			t.Fatal(err)
		}
		if err := lv.DomainSuspend(dom); err != nil {
			t.Fatal(err)
		}
		d := waitFor(t, f, 30*time.Second, "paused g1 silent", func(s *Snapshot) bool { return f.Guest("lq/g1").State == Silent })
		t.Logf("paused -> silent in %v: %q", d, f.Guest("lq/g1").Err)
		if err := lv.DomainResume(dom); err != nil {
			t.Fatal(err)
		}
		d = waitFor(t, f, 20*time.Second, "resumed g1 ready", func(s *Snapshot) bool { return f.Guest("lq/g1").State == Ready })
		t.Logf("resumed -> ready in %v", d)
	})

	t.Run("hung agent: calls end at their deadline", func(t *testing.T) {
		dom, err := lv.DomainLookupByName("g1")
		if err != nil {
			t.Fatal(err)
		}
		a := agentclient.NewLibvirt(lv, dom, "libvirt:lq/g1")
		// Stop the agent inside the guest for a few seconds.
		_, err = a.Exec(ctx, agentclient.ExecRequest{Path: "/bin/sh",
			Arg: []string{"-c", "p=$(pidof qemu-ga); kill -STOP $p; sleep 8; kill -CONT $p"}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		t0 := time.Now()
		_, err = a.Time(short)
		if took := time.Since(t0); !agentclient.IsTimeout(err) || took > 1500*time.Millisecond {
			t.Fatalf("hung agent: %v after %v", err, took)
		}
		t.Logf("hung agent: Time returned %v after %v", err, time.Since(t0))
		// A raw command gets the deadline as libvirt's timeout too.
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		defer rcancel()
		t0 = time.Now()
		if err := a.Ping(rctx); !agentclient.IsTimeout(err) || time.Since(t0) > 2500*time.Millisecond {
			t.Fatalf("hung agent, ping: %v after %v", err, time.Since(t0))
		}
		// The agent answers again once resumed.
		wait.For(t, 60*time.Second, func() (bool, string) {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := a.Ping(pctx)
			return err == nil, fmt.Sprintf("agent not back: %v", err)
		})
		f.RefreshOnce(ctx, []string{"lq/g1"})
		if g := f.Guest("lq/g1"); g.State != Ready {
			t.Fatalf("after the hang: %s %q", g.State, g.Err)
		}
	})

	t.Run("a hold's thaw survives a libvirtd restart", func(t *testing.T) {
		var mu sync.Mutex
		var notes []string
		attempt2 := make(chan struct{}, 1)
		fh := New(Options{Interval: time.Hour, SlowInterval: time.Hour, Timeout: 5 * time.Second, ThawBudget: 2 * time.Minute,
			OnNotice: func(n Notice) {
				mu.Lock()
				notes = append(notes, n.Guest+": "+n.Text)
				mu.Unlock()
				if strings.Contains(n.Text, "thaw attempt 2 failed") {
					select {
					case attempt2 <- struct{}{}:
					default:
					}
				}
			}})
		defer fh.Close()
		if err := fh.AddHost(ctx, host); err != nil {
			t.Fatal(err)
		}
		if rs := fh.Run(ctx, Action{Kind: ActFreeze}, []string{"lq/g1"}, nil); !rs[0].OK {
			t.Fatalf("freeze: %+v", rs[0])
		}
		lq.KillDaemon(t) // mid-hold
		done := make(chan []Result, 1)
		go func() { done <- fh.ThawOurs(ctx) }() // the hold ends while it is down
		select {
		case <-attempt2:
		case <-time.After(90 * time.Second):
			t.Fatalf("no second failed attempt: %v", notes)
		}
		lq.StartDaemon(t) // and it comes back while the thaw is retried
		var rs []Result
		select {
		case rs = <-done:
		case <-time.After(3 * time.Minute):
			t.Fatal("ThawOurs did not return")
		}
		mu.Lock()
		t.Logf("notices:\n%s", strings.Join(notes, "\n"))
		mu.Unlock()
		if len(rs) != 1 || !rs[0].OK || !strings.Contains(rs[0].Result, "guest-fsfreeze-status says thawed") {
			t.Fatalf("thaw across the restart: %+v", rs)
		}
		// Every connection to the old daemon is dead: the later subtests
		// (and this check) use a new one.
		lv = lq.Connect(outer)
		dom, err := lv.DomainLookupByName("g1")
		if err != nil {
			t.Fatal(err)
		}
		if st, err := agentclient.NewLibvirt(lv, dom, "libvirt:lq/g1").FreezeStatus(ctx); err != nil || st != agentclient.Thawed {
			t.Fatalf("the guest's own freeze state: %q %v", st, err)
		}
		// The fleets following the host from before the restart are back too.
		waitFor(t, f, 60*time.Second, "f's g1 ready again", func(s *Snapshot) bool {
			f.Poke("lq/g1")
			return f.Guest("lq/g1").State == Ready
		})
	})

	t.Run("shutdown through the agent marks the guest gone", func(t *testing.T) {
		time.Sleep(200 * time.Millisecond) // let the abandoned call above finish
		rs := f.Run(ctx, Action{Kind: ActShutdown}, []string{"lq/g1"}, nil)
		if !rs[0].OK {
			t.Fatalf("shutdown: %+v", rs[0])
		}
		for _, fl := range []*Fleet{f, f2} {
			d := waitFor(t, fl, 90*time.Second, "g1 gone", func(s *Snapshot) bool {
				g := fl.Guest("lq/g1")
				return g != nil && g.State == Gone && strings.Contains(g.Err, "shut down")
			})
			t.Logf("shutdown -> gone in %v: %q", d, fl.Guest("lq/g1").Err)
		}
		st, _, err := lv.DomainGetState(libvirt.Domain{Name: "g1"}, 0)
		if dom, lerr := lv.DomainLookupByName("g1"); lerr == nil {
			st, _, err = lv.DomainGetState(dom, 0)
		}
		if err != nil || libvirt.DomainState(st) != libvirt.DomainShutoff {
			t.Fatalf("domain state %d %v", st, err)
		}
	})
}
