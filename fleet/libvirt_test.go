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
	// Defined but not running: listed as stopped.
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
	if len(gs) != n+1 {
		t.Fatalf("discovered %d guests, want %d: %s", len(gs), n+1, describeGuests(f.Snapshot()))
	}
	if g := f.Guest("tst/idle"); g == nil || g.State != Stopped || g.DomainState != DomainStopped || !strings.Contains(g.Err, "shut off") {
		t.Fatalf("defined domain: %+v", g)
	}
	if g := f.Guest("tst/vm001"); g.DomainState != DomainRunning || g.State != Connecting {
		t.Fatalf("running domain before a poll: %s, domain %q", g.State, g.DomainState)
	}
	for _, g := range gs {
		if g.Name == "tst/idle" {
			continue
		}
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

	// Stop 100 (persistent: kept as stopped), undefine 50 of them (removed),
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
	waitFor(t, f, 30*time.Second, "100 guests stopped", func(s *Snapshot) bool {
		return countState(hostGuests(s, "tst"), Stopped) == 101
	})
	t.Logf("100 stop events -> 100 stopped in %v", time.Since(t0))
	if g := f.Guest("tst/vm007"); g == nil || g.DomainState != DomainStopped || !strings.Contains(g.Err, "destroyed") {
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
		return len(gs) == n+1-50+50 && tr == 50 && countState(gs, Stopped) == 51
	})
	t.Logf("50 undefines + 50 starts reflected in %v", time.Since(t0))
	for i := range 50 {
		d, _ := lv.DomainLookupByName(fmt.Sprintf("tr%03d", i))
		if err := lv.DomainDestroy(d); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, f, 30*time.Second, "transient guests removed", func(s *Snapshot) bool {
		return len(hostGuests(s, "tst")) == n+1-50
	})
	// A domain defined while the host is followed is listed stopped.
	if _, err := lv.DomainDefineXML(testDomainXML("later", true)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, 30*time.Second, "a defined domain listed stopped", func(s *Snapshot) bool {
		g := f.Guest("tst/later")
		return g != nil && g.State == Stopped
	})

	// A restarted persistent domain comes back under the same target.
	d, _ := lv.DomainLookupByName("vm060")
	if err := lv.DomainCreate(d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, 30*time.Second, "vm060 booting", func(s *Snapshot) bool {
		return f.Guest("tst/vm060").DomainState == DomainBooting
	})
	if g := f.Guest("tst/vm060"); g.State != Connecting {
		t.Fatalf("vm060 booting: %s %q", g.State, g.Err)
	}
	f.RefreshOnce(ctx, []string{"tst/vm060"})
	if g := f.Guest("tst/vm060"); g.State != Ready || g.DomainState != DomainRunning {
		t.Fatalf("vm060 restarted: %s %q, domain %q", g.State, g.Err, g.DomainState)
	}
	// Paused and resumed: libvirt's word decides, a poll does not undo it
	// (the test driver answers its typed calls even while paused).
	if err := lv.DomainSuspend(d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, 30*time.Second, "vm060 paused", func(s *Snapshot) bool { return f.Guest("tst/vm060").State == Paused })
	f.RefreshOnce(ctx, []string{"tst/vm060"})
	if g := f.Guest("tst/vm060"); g.State != Paused || !g.Stale() || !strings.Contains(g.Err, "paused") {
		t.Fatalf("vm060 paused after a poll: %s %q stale %v", g.State, g.Err, g.Stale())
	}
	if err := lv.DomainResume(d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, 30*time.Second, "vm060 resumed", func(s *Snapshot) bool {
		g := f.Guest("tst/vm060")
		return g.DomainState == DomainRunning && g.State != Paused
	})
	f.RefreshOnce(ctx, []string{"tst/vm060"})
	if g := f.Guest("tst/vm060"); g.State != Ready || g.Stale() {
		t.Fatalf("vm060 resumed: %s %q", g.State, g.Err)
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
	// Kept, not dropped: their domain state unknown, their values stale.
	for _, g := range hostGuests(f.Snapshot(), "ha") {
		if g.DomainState != DomainUnknown || !strings.Contains(g.DomainReason, "libvirt host ha is unreachable") || !g.Stale() || !g.SkewKnown {
			t.Fatalf("guest %s of the host that died: domain %q %q, stale %v", g.Name, g.DomainState, g.DomainReason, g.Stale())
		}
	}
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
	for _, g := range hostGuests(f.Snapshot(), "ha") {
		if g.DomainState != DomainRunning || g.Stale() {
			t.Fatalf("guest %s after the restart: domain %q, stale %v", g.Name, g.DomainState, g.Stale())
		}
	}
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
	// The snapshot the dashboard draws carries the same states.
	if ss := f.Snapshot().Sources; len(ss) != 1 || ss[0].Name != "gone" || ss[0].Phase != discovery.Unreachable || !ss[0].Retry.After(first) {
		t.Fatalf("snapshot sources %+v", ss)
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
			var log strings.Builder
			for _, e := range g.Log.All() {
				fmt.Fprintf(&log, "\n  %s %s %q", e.At.Format("15:04:05.000"), e.Command, e.Reply)
			}
			t.Fatalf("g1 ready %v after the agent connected (%d failed polls before): not the event; log:%s", tr.Sub(tc), g.Missed, log.String())
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
		// Traffic on lo, so that its statistics have something to count.
		guestRun(ctx, t, lv, "ping -c 3 -i 0.2 127.0.0.1 >/dev/null")
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
		// Read with guest-network-get-interfaces through libvirt's agent
		// passthrough: the typed call dropped these.
		for _, it := range g.Interfaces {
			if it.Name == "lo" && (it.Statistics == nil || it.Statistics.RxBytes == 0 || it.Statistics.TxPackets == 0) {
				t.Errorf("lo statistics %+v", it.Statistics)
			} else if it.Name == "lo" {
				t.Logf("lo statistics: %+v", *it.Statistics)
			}
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
		d := waitFor(t, f, 30*time.Second, "paused g1 paused", func(s *Snapshot) bool { return f.Guest("lq/g1").State == Paused })
		t.Logf("paused -> paused in %v: %q", d, f.Guest("lq/g1").Err)
		// A poll now fails (libvirt: domain is not running), and changes
		// nothing: libvirt's word stands, the agent's values are stale.
		f.RefreshOnce(ctx, []string{"lq/g1"})
		if g := f.Guest("lq/g1"); g.State != Paused || g.DomainState != DomainPaused || !g.Stale() || !strings.Contains(g.Err, "paused (by a user)") {
			t.Fatalf("paused after a poll: %s domain %q stale %v %q", g.State, g.DomainState, g.Stale(), g.Err)
		}
		if err := lv.DomainResume(dom); err != nil {
			t.Fatal(err)
		}
		d = waitFor(t, f, 20*time.Second, "resumed g1 ready", func(s *Snapshot) bool { return f.Guest("lq/g1").State == Ready })
		t.Logf("resumed -> ready in %v", d)
		if g := f.Guest("lq/g1"); g.DomainState != DomainRunning || g.Stale() {
			t.Fatalf("resumed: domain %q stale %v", g.DomainState, g.Stale())
		}
	})

	t.Run("suspended to RAM by guestdeck, woken by guestdeck", func(t *testing.T) {
		// The guest kernel (Debian's) has CONFIG_SUSPEND; "deep" makes
		// "mem" an ACPI S3 sleep, which QEMU reports (suspend-to-idle would
		// leave the vCPUs running and nothing for libvirt to see).
		guestRun(ctx, t, lv, "grep -qw mem /sys/power/state && echo deep > /sys/power/mem_sleep")
		if rs := f.Run(ctx, Action{Kind: ActSuspend, Mode: agentclient.SuspendRAM}, []string{"lq/g1"}, nil); !rs[0].OK {
			t.Fatalf("suspend: %+v", rs[0])
		}
		d := waitFor(t, f, 60*time.Second, "g1 pmsuspended", func(s *Snapshot) bool {
			return f.Guest("lq/g1").DomainState == DomainPMSuspended
		})
		g := f.Guest("lq/g1")
		t.Logf("suspend -> libvirt pmsuspended in %v: %s %q", d, g.State, g.Err)
		if g.State != Suspended {
			t.Fatalf("pmsuspended: %s %q", g.State, g.Err)
		}
		if st, _, err := lv.DomainGetState(mustDomain(t, lv, "g1"), 0); err != nil || libvirt.DomainState(st) != libvirt.DomainPmsuspended {
			t.Fatalf("libvirt's state %d %v", st, err)
		}
		f.RefreshOnce(ctx, []string{"lq/g1"})
		if g := f.Guest("lq/g1"); g.State != Suspended || !g.Stale() {
			t.Fatalf("suspended after a poll: %s stale %v %q", g.State, g.Stale(), g.Err)
		}
		rs := f.Run(ctx, Action{Kind: ActWake}, []string{"lq/g1"}, nil)
		if !rs[0].OK {
			t.Fatalf("wake: %+v", rs[0])
		}
		r := rs[0]
		d = waitFor(t, f, 60*time.Second, "woken g1 ready", func(s *Snapshot) bool {
			g := f.Guest("lq/g1")
			return g.State == Ready && g.DomainState == DomainRunning
		})
		t.Logf("wake -> ready in %v (%s)", d, r.Result)
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

	t.Run("shutdown through the agent marks the guest stopped", func(t *testing.T) {
		time.Sleep(200 * time.Millisecond) // let the abandoned call above finish
		rs := f.Run(ctx, Action{Kind: ActShutdown}, []string{"lq/g1"}, nil)
		if !rs[0].OK {
			t.Fatalf("shutdown: %+v", rs[0])
		}
		for _, fl := range []*Fleet{f, f2} {
			d := waitFor(t, fl, 90*time.Second, "g1 stopped", func(s *Snapshot) bool {
				g := fl.Guest("lq/g1")
				return g != nil && g.State == Stopped && g.DomainState == DomainStopped && strings.Contains(g.Err, "shut down")
			})
			t.Logf("shutdown -> stopped in %v: %q", d, fl.Guest("lq/g1").Err)
		}
		st, _, err := lv.DomainGetState(libvirt.Domain{Name: "g1"}, 0)
		if dom, lerr := lv.DomainLookupByName("g1"); lerr == nil {
			st, _, err = lv.DomainGetState(dom, 0)
		}
		if err != nil || libvirt.DomainState(st) != libvirt.DomainShutoff {
			t.Fatalf("domain state %d %v", st, err)
		}
	})

	t.Run("a stopped domain is listed stopped", func(t *testing.T) {
		f4 := New(Options{Interval: time.Hour, SlowInterval: time.Hour, Timeout: 5 * time.Second})
		defer f4.Close()
		if err := f4.AddHost(ctx, host); err != nil {
			t.Fatal(err)
		}
		g := f4.Guest("lq/g1")
		if g == nil || g.State != Stopped || g.DomainState != DomainStopped || !strings.Contains(g.Err, "shut off") {
			t.Fatalf("stopped domain: %s", describeGuests(f4.Snapshot()))
		}
		if rs := f4.Run(ctx, Action{Kind: ActPing}, []string{"lq/g1"}, nil); rs[0].OK || !strings.Contains(rs[0].Err, "stopped") {
			t.Fatalf("ping a stopped domain: %+v", rs[0])
		}
	})

	t.Run("started from guestdeck: booting shows connecting, then ready", func(t *testing.T) {
		rec := recordStates(f, "lq/g1")
		if rs := f.Run(ctx, Action{Kind: ActStart}, []string{"lq/g1"}, nil); !rs[0].OK {
			t.Fatalf("start: %+v", rs[0])
		}
		st, reason, err := lv.DomainGetState(mustDomain(t, lv, "g1"), 0)
		t.Logf("after start: libvirt state %d reason %d %v", st, reason, err)
		t0 := time.Now()
		for f.Guest("lq/g1").State != Ready {
			if time.Since(t0) > 3*time.Minute {
				st, reason, err := lv.DomainGetState(mustDomain(t, lv, "g1"), 0)
				t.Fatalf("not ready after 3m: %s; libvirt state %d reason %d %v; states seen %v", describeGuests(f.Snapshot()), st, reason, err, rec.stop())
			}
			select {
			case <-f.Changed():
			case <-time.After(50 * time.Millisecond):
			}
		}
		d := time.Since(t0)
		seen := rec.stop()
		t.Logf("start -> ready in %v; states seen: %v", d, seen)
		booting := false
		for _, st := range seen {
			if st.State == Gone || st.State == Silent || st.State == Unreachable {
				t.Errorf("a booting domain showed %s: %v", st.State, seen)
			}
			booting = booting || (st.State == Connecting && st.Domain == DomainBooting)
		}
		if !booting {
			t.Errorf("never seen connecting (booting): %v", seen)
		}
	})

	t.Run("a shutdown from virsh shows shutting-down, not silent", func(t *testing.T) {
		rec := recordStates(f, "lq/g1")
		// virsh shutdown --mode agent: libvirt asks the agent, not us (the
		// test guest's busybox init ignores the ACPI power button).
		if err := lv.DomainShutdownFlags(mustDomain(t, lv, "g1"), libvirt.DomainShutdownGuestAgent); err != nil {
			t.Fatal(err)
		}
		d := waitFor(t, f, 2*time.Minute, "g1 stopped", func(s *Snapshot) bool { return f.Guest("lq/g1").State == Stopped })
		seen := rec.stop()
		t.Logf("virsh shutdown -> stopped in %v; states seen: %v", d, seen)
		for _, st := range seen {
			if st.State == Silent || st.State == Gone || st.State == Unreachable {
				t.Errorf("shutting down showed %s: %v", st.State, seen)
			}
		}
	})
}

// TestLibvirtMachineActions: start and wake, the actions that go to a
// guest's libvirt host rather than its agent, from the action table: start
// boots a stopped domain (booting, then running), a guest that is not
// stopped or not suspended is skipped saying so, a guest not on libvirt is
// skipped, and read-only refuses both before anything is asked.
func TestLibvirtMachineActions(t *testing.T) {
	lt := testpeers.StartLibvirtTest(t)
	lv := lt.Connect(t)
	if _, err := lv.DomainDefineXML(testDomainXML("off", true)); err != nil {
		t.Fatal(err)
	}
	if _, err := lv.DomainCreateXML(testDomainXML("on", true), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, ro := range []bool{true, false} {
		f := New(Options{Interval: time.Hour, Readonly: ro})
		defer f.Close()
		if err := f.AddHost(ctx, HostConfig{Name: "tst", URI: mustURI(t, testURI(lt.Socket))}); err != nil {
			t.Fatal(err)
		}
		f.Add(Target{Name: "direct", Address: "unix:/nonexistent/qga.sock"})
		if ro {
			for _, k := range []Kind{ActStart, ActWake} {
				if rs := f.Run(ctx, Action{Kind: k}, []string{"tst/off"}, nil); rs[0].OK || !strings.Contains(rs[0].Err, "read-only") {
					t.Errorf("read-only %s: %+v", k, rs[0])
				}
			}
			if g := f.Guest("tst/off"); g.State != Stopped {
				t.Fatalf("read-only start started it: %s", g.State)
			}
			continue
		}
		tests := []struct {
			kind  Kind
			guest string
			skip  string // "" : runs
		}{
			{ActWake, "tst/on", "not suspended"},
			{ActWake, "tst/off", "not suspended"},
			{ActWake, "direct", "not on a libvirt host"},
			{ActStart, "tst/on", "not stopped"},
			{ActStart, "direct", "not on a libvirt host"},
			{ActStart, "tst/off", ""},
		}
		for _, tc := range tests {
			r := f.Run(ctx, Action{Kind: tc.kind}, []string{tc.guest}, nil)[0]
			switch {
			case tc.skip == "" && !r.OK:
				t.Errorf("%s %s: %+v", tc.kind, tc.guest, r)
			case tc.skip != "" && (!r.Skipped || !strings.Contains(r.Err, tc.skip)):
				t.Errorf("%s %s: %+v, want skipped %q", tc.kind, tc.guest, r, tc.skip)
			}
		}
		waitFor(t, f, 30*time.Second, "tst/off booting", func(*Snapshot) bool {
			g := f.Guest("tst/off")
			return g.DomainState == DomainBooting && g.State == Connecting
		})
		if st, _, err := lv.DomainGetState(mustDomain(t, lv, "off"), 0); err != nil || libvirt.DomainState(st) != libvirt.DomainRunning {
			t.Fatalf("libvirt's state of the started domain: %d %v", st, err)
		}
	}
}

// guestRun runs a shell command in g1 through libvirt's agent passthrough
// (the test VM, never this machine) and waits for it to exit 0.
func guestRun(ctx context.Context, t *testing.T, lv *libvirt.Libvirt, script string) {
	t.Helper()
	a := agentclient.NewLibvirt(lv, mustDomain(t, lv, "g1"), "libvirt:lq/g1")
	pid, err := a.Exec(ctx, agentclient.ExecRequest{Path: "/bin/sh", Arg: []string{"-c", script}})
	if err != nil {
		t.Fatalf("guest exec %q: %v", script, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := a.ExecStatus(ctx, pid)
		if err != nil {
			t.Fatalf("guest exec %q status: %v", script, err)
		}
		if st.Exited {
			if st.ExitCode == nil || *st.ExitCode != 0 {
				t.Fatalf("guest exec %q: exit %v", script, st.ExitCode)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest exec %q did not exit", script)
		}
		time.Sleep(100 * time.Millisecond) // the agent has no wait-for-exit call
	}
}

func mustDomain(t *testing.T, lv *libvirt.Libvirt, name string) libvirt.Domain {
	t.Helper()
	d, err := lv.DomainLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// seenState is one guest state and domain state observed together.
type seenState struct {
	State  State
	Domain DomainState
}

func (s seenState) String() string { return string(s.State) + "/" + string(s.Domain) }

// stateRecorder collects the distinct states a guest passes through,
// sampled every 5 ms (a state shorter than that can be missed; the ones
// these tests look for last seconds).
type stateRecorder struct {
	done chan struct{}
	out  chan []seenState
}

func recordStates(f *Fleet, name string) *stateRecorder {
	r := &stateRecorder{done: make(chan struct{}), out: make(chan []seenState, 1)}
	go func() {
		var seen []seenState
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if g := f.Guest(name); g != nil {
				st := seenState{g.State, g.DomainState}
				if len(seen) == 0 || seen[len(seen)-1] != st {
					seen = append(seen, st)
				}
			}
			select {
			case <-r.done:
				r.out <- seen
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *stateRecorder) stop() []seenState {
	close(r.done)
	return <-r.out
}
