package fleet_test

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/ledger"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// sockProxy forwards a unix socket to another; the test stops it (the
// channel drops: the listener goes, every connection is cut) and starts it
// again on the same path, as a guest's channel that goes away and comes back.
type sockProxy struct {
	path, target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newSockProxy(t *testing.T, target string) *sockProxy {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdp")
	if err != nil {
		t.Fatal(err)
	}
	p := &sockProxy{path: filepath.Join(dir, "p.sock"), target: target}
	t.Cleanup(func() { p.stop(); os.RemoveAll(dir) })
	p.start(t)
	return p
}

func (p *sockProxy) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.l, p.conns = l, map[net.Conn]struct{}{}
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.l != l {
				// Stopped while this one was being accepted: it goes too.
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close(); c.Close() })
			p.wg.Go(func() { io.Copy(c, up); up.Close(); c.Close() })
		}
	})
}

func (p *sockProxy) stop() {
	p.mu.Lock()
	if p.l != nil {
		p.l.Close() // removes the socket file too
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// noticeLog collects notices and lets a test wait for one.
type noticeLog struct {
	mu  sync.Mutex
	all []fleet.Notice
	ch  chan struct{}
}

func newNoticeLog() *noticeLog { return &noticeLog{ch: make(chan struct{}, 1)} }

func (n *noticeLog) add(nt fleet.Notice) {
	n.mu.Lock()
	n.all = append(n.all, nt)
	n.mu.Unlock()
	select {
	case n.ch <- struct{}{}:
	default:
	}
}

func (n *noticeLog) text() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b strings.Builder
	for _, nt := range n.all {
		b.WriteString(nt.Guest + ": " + nt.Text + "\n")
	}
	return b.String()
}

// wait returns once a notice containing sub arrived.
func (n *noticeLog) wait(t *testing.T, sub string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for !strings.Contains(n.text(), sub) {
		select {
		case <-n.ch:
		case <-deadline:
			t.Fatalf("no notice %q within %v; got:\n%s", sub, d, n.text())
		}
	}
}

func ledgerEntries(t *testing.T, l *ledger.Ledger) []ledger.Entry {
	t.Helper()
	es, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// A thaw owed at the end of a hold goes through a channel that dropped
// during the hold and comes back while the thaw is being retried: it ends
// thawed, confirmed, and every attempt was reported.
func TestThawRetriesAcrossChannelDrop(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	farm, _ := simFleet(t, 1, fastOptions())
	px := newSockProxy(t, farm.Sockets()[0])
	notes := newNoticeLog()
	l := ledger.Open(t.TempDir())
	opts := fastOptions()
	opts.Ledger, opts.Who, opts.OnNotice, opts.ThawBudget = l, "run --hold", notes.add, 30*time.Second
	f := fleet.New(opts)
	defer f.Close()
	f.Add(fleet.Target{Name: "g", Address: "unix:" + px.path})
	ctx := context.Background()
	if r := f.Run(ctx, fleet.Action{Kind: fleet.ActFreeze}, []string{"g"}, nil); !r[0].OK || !farm.Guests()[0].Frozen() {
		t.Fatalf("freeze: %+v", r)
	}
	es := ledgerEntries(t, l)
	if len(es) != 1 || es[0].Kind != ledger.Freeze || es[0].Guest != "g" || es[0].Who != "run --hold" || es[0].Until.IsZero() || !es[0].Process.Same(ledger.Self()) {
		t.Fatalf("ledger after freeze: %+v", es)
	}

	px.stop() // the channel drops mid-hold
	done := make(chan []fleet.Result, 1)
	go func() { done <- f.ThawOurs(ctx) }()
	notes.wait(t, "thaw attempt 2 failed", 20*time.Second)
	if !farm.Guests()[0].Frozen() {
		t.Fatal("thawed while the channel was down?")
	}
	px.start(t) // and comes back
	var rs []fleet.Result
	select {
	case rs = <-done:
	case <-time.After(40 * time.Second):
		t.Fatalf("ThawOurs did not return; notices:\n%s", notes.text())
	}
	if len(rs) != 1 || !rs[0].OK || !strings.Contains(rs[0].Result, "guest-fsfreeze-status says thawed") {
		t.Fatalf("thaw: %+v\n%s", rs, notes.text())
	}
	if farm.Guests()[0].Frozen() {
		t.Fatal("the guest is still frozen")
	}
	if g := f.Guest("g"); g.FrozenByUs || g.State != fleet.Ready {
		t.Errorf("after thaw: %s frozenByUs %v", g.State, g.FrozenByUs)
	}
	if es := ledgerEntries(t, l); len(es) != 0 {
		t.Errorf("ledger after a confirmed thaw: %+v", es)
	}
	if n := farm.Guests()[0].Calls("guest-fsfreeze-status"); n == 0 {
		t.Error("the thaw was not checked with guest-fsfreeze-status")
	}
}

// A channel that never comes back: the thaw gives up at its budget, says
// the guest is still frozen, and the ledger keeps the entry.
func TestThawBudgetSpent(t *testing.T) {
	farm, _ := simFleet(t, 1, fastOptions())
	px := newSockProxy(t, farm.Sockets()[0])
	notes := newNoticeLog()
	l := ledger.Open(t.TempDir())
	opts := fastOptions()
	opts.Ledger, opts.OnNotice, opts.ThawBudget = l, notes.add, 2*time.Second
	f := fleet.New(opts)
	defer f.Close()
	f.Add(fleet.Target{Name: "g", Address: "unix:" + px.path})
	ctx := context.Background()
	if r := f.Run(ctx, fleet.Action{Kind: fleet.ActFreeze}, []string{"g"}, nil); !r[0].OK {
		t.Fatalf("freeze: %+v", r)
	}
	px.stop()
	rs := f.ThawOurs(ctx)
	if len(rs) != 1 || rs[0].OK || !strings.Contains(rs[0].Err, "still FROZEN") || !strings.Contains(rs[0].Err, "thaw attempts") {
		t.Fatalf("thaw with the channel gone: %+v", rs)
	}
	if !strings.Contains(notes.text(), "thaw attempt 1 failed") || !strings.Contains(notes.text(), "still FROZEN") {
		t.Errorf("notices:\n%s", notes.text())
	}
	if es := ledgerEntries(t, l); len(es) != 1 {
		t.Errorf("ledger after a failed thaw: %+v (the freeze must stay recorded)", es)
	}
	if !farm.Guests()[0].Frozen() || !f.Guest("g").FrozenByUs {
		t.Error("the guest should still be frozen, and still ours")
	}
}

// deadProcess is a process that ran and is gone: its PID and start time.
func deadProcess(t *testing.T) ledger.Process {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	p := ledger.Self()
	p.PID, p.Start = cmd.Process.Pid, 1
	return p
}

// A guest left frozen by a guestdeck that died: a later fleet names the
// orphan (pid, who, since, until); a started fleet that adopts orphans
// thaws it once its promised thaw is due, says so, and clears the entry.
func TestOrphanedFreezeAdopted(t *testing.T) {
	farm, _ := simFleet(t, 2, fastOptions())
	ctx := context.Background()
	if err := sim.Freeze(ctx, "unix:"+farm.Sockets()[0]); err != nil {
		t.Fatal(err)
	}
	l := ledger.Open(t.TempDir())
	dead := deadProcess(t)
	since := time.Now().Add(-time.Minute).Round(time.Second)
	until := time.Now().Add(1500 * time.Millisecond)
	sock := "unix:" + farm.Sockets()[0]
	if _, err := l.Add(ledger.Entry{Kind: ledger.Freeze, Guest: "old-name", Key: sock, Address: sock, Who: "run --hold",
		Process: dead, Since: since, Until: until}); err != nil {
		t.Fatal(err)
	}
	notes := newNoticeLog()
	opts := fastOptions()
	opts.Ledger, opts.OnNotice, opts.AdoptOrphans, opts.LedgerInterval = l, notes.add, true, 100*time.Millisecond
	f := fleet.New(opts)
	defer f.Close()
	// Renamed in the fleet file since: the address is what identifies it.
	f.Add(fleet.Target{Name: "db-1", Address: sock}, fleet.Target{Name: "old-name", Address: "unix:" + farm.Sockets()[1]})
	g := f.Guest("db-1")
	if r := g.FrozenBy; r == nil || !r.Orphan || r.PID != dead.PID || r.Who != "run --hold" || !r.Since.Equal(since) || !r.Until.Equal(until.Round(0)) {
		t.Fatalf("orphan record: %+v", g.FrozenBy)
	}
	if f.Guest("old-name").FrozenBy != nil {
		t.Fatal("the guest now called old-name took the orphan by name")
	}
	f.Start(ctx)
	notes.wait(t, "which is no longer running", 10*time.Second)
	if !strings.Contains(notes.text(), "its promised thaw at") {
		t.Errorf("notice: %s", notes.text())
	}
	notes.wait(t, "orphaned freeze: thawed 1 filesystem", 20*time.Second)
	if farm.Guests()[0].Frozen() {
		t.Fatal("still frozen")
	}
	if es := ledgerEntries(t, l); len(es) != 0 {
		t.Errorf("ledger after the orphan's thaw: %+v", es)
	}
	waitUntil(t, 5*time.Second, "FrozenBy cleared", func() bool { return f.Guest("db-1").FrozenBy == nil })
	// Nobody thawed the bystander, or froze it.
	if farm.Guests()[1].Calls("guest-fsfreeze-thaw") != 0 {
		t.Error("the bystander was sent a thaw")
	}
}

// An orphan with no promised thaw (run --yes freeze) is shown, never thawed;
// and an orphaned guest that turns out thawed is cleared from the ledger.
func TestOrphanWithoutPromise(t *testing.T) {
	farm, _ := simFleet(t, 3, fastOptions())
	ctx := context.Background()
	for _, i := range []int{0, 2} {
		if err := sim.Freeze(ctx, "unix:"+farm.Sockets()[i]); err != nil {
			t.Fatal(err)
		}
	}
	l := ledger.Open(t.TempDir())
	dead := deadProcess(t)
	for i, sock := range farm.Sockets() {
		addr := "unix:" + sock
		e := ledger.Entry{Kind: ledger.Freeze, Guest: "x", Key: addr, Address: addr, Who: "run --yes freeze", Process: dead}
		if i == 2 {
			// The witness: its promised thaw has passed, so the round of the
			// ledger loop that thaws it has looked at a and b too.
			e.Who, e.Until = "dashboard", time.Now().Add(-time.Second)
		}
		if _, err := l.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	notes := newNoticeLog()
	opts := fastOptions()
	opts.Ledger, opts.AdoptOrphans, opts.LedgerInterval, opts.OnNotice = l, true, 50*time.Millisecond, notes.add
	f := fleet.New(opts)
	defer f.Close()
	f.Add(fleet.Target{Name: "a", Address: "unix:" + farm.Sockets()[0]}, fleet.Target{Name: "b", Address: "unix:" + farm.Sockets()[1]})
	f.RefreshOnce(ctx, nil)
	// b answers thawed: its entry is stale and goes.
	waitUntil(t, 5*time.Second, "b's stale entry cleared", func() bool { return len(ledgerEntries(t, l)) == 2 })
	if g := f.Guest("b"); g.FrozenBy != nil {
		t.Errorf("b: %+v", g.FrozenBy)
	}
	if g := f.Guest("a"); g.FrozenBy == nil || !g.FrozenBy.Orphan || !g.FrozenBy.Until.IsZero() {
		t.Fatalf("a: %+v", g.FrozenBy)
	}
	f.Add(fleet.Target{Name: "c", Address: "unix:" + farm.Sockets()[2]})
	f.Start(ctx)
	notes.wait(t, "orphaned freeze: thawed 1 filesystem", 20*time.Second)
	if farm.Guests()[2].Frozen() {
		t.Fatal("the witness is still frozen")
	}
	if !farm.Guests()[0].Frozen() || farm.Guests()[0].Calls("guest-fsfreeze-thaw") != 0 {
		t.Error("an orphan with no promised thaw was thawed")
	}
	if g := f.Guest("a"); g.FrozenBy == nil || !g.FrozenBy.Orphan {
		t.Errorf("a after the rounds: %+v", g.FrozenBy)
	}
}

// A freeze that cannot be recorded is not sent.
func TestFreezeRefusedWithoutLedger(t *testing.T) {
	farm, _ := simFleet(t, 1, fastOptions())
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	opts.Ledger = ledger.Open(filepath.Join(notDir, "guestdeck"))
	f := fleet.New(opts)
	defer f.Close()
	f.Add(fleet.Target{Name: "g", Address: "unix:" + farm.Sockets()[0]})
	r := f.Run(context.Background(), fleet.Action{Kind: fleet.ActFreeze}, []string{"g"}, nil)
	if r[0].OK || !strings.Contains(r[0].Err, "nothing was sent") || farm.Guests()[0].Calls("guest-fsfreeze-freeze") != 0 {
		t.Fatalf("freeze with an unwritable ledger: %+v, %d freezes sent", r, farm.Guests()[0].Calls("guest-fsfreeze-freeze"))
	}
}

// A guest guestdeck suspended shows as suspended, to this process and to
// the next one, until it answers again; then the ledger forgets it.
func TestSuspendedUntilItAnswers(t *testing.T) {
	farm, f0 := simFleet(t, 1, fastOptions())
	_ = f0
	l := ledger.Open(t.TempDir())
	opts := fastOptions()
	opts.Ledger, opts.Who = l, "run suspend"
	addr := "unix:" + farm.Sockets()[0]
	f := fleet.New(opts)
	defer f.Close()
	f.Add(fleet.Target{Name: "g", Address: addr})
	ctx := context.Background()
	if r := f.Run(ctx, fleet.Action{Kind: fleet.ActSuspend, Mode: "ram"}, []string{"g"}, nil); !r[0].OK {
		t.Fatalf("suspend: %+v", r)
	}
	if es := ledgerEntries(t, l); len(es) != 1 || es[0].Kind != ledger.Suspend || es[0].Mode != "ram" {
		t.Fatalf("ledger: %+v", es)
	}
	f.RefreshOnce(ctx, nil)
	f.RefreshOnce(ctx, nil)
	if g := f.Guest("g"); g.State != fleet.Suspended {
		t.Fatalf("this process, after two polls: %s %q", g.State, g.Err)
	}
	f.Close()

	// The next guestdeck.
	f2 := fleet.New(opts)
	defer f2.Close()
	f2.Add(fleet.Target{Name: "renamed", Address: addr})
	f2.RefreshOnce(ctx, nil)
	if g := f2.Guest("renamed"); g.State != fleet.Suspended {
		t.Fatalf("the next process: %s %q", g.State, g.Err)
	}
	farm.Guests()[0].Restart() // it wakes up
	f2.RefreshOnce(ctx, nil)
	if g := f2.Guest("renamed"); g.State != fleet.Ready {
		t.Fatalf("after wake-up: %s %q", g.State, g.Err)
	}
	waitUntil(t, 5*time.Second, "suspend entry cleared", func() bool { return len(ledgerEntries(t, l)) == 0 })
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	wait.For(t, d, func() (bool, string) { return cond(), what + ": not yet" })
}

// A bulk freeze writes its entries ahead in one go; a guest that was frozen
// already (by someone else) keeps none of ours, and a guest the freeze never
// reached (not in the fleet) leaves none behind.
func TestBulkFreezeLedger(t *testing.T) {
	farm, _ := simFleet(t, 3, fastOptions())
	ctx := context.Background()
	if err := sim.Freeze(ctx, "unix:"+farm.Sockets()[2]); err != nil {
		t.Fatal(err)
	}
	l := ledger.Open(t.TempDir())
	opts := fastOptions()
	opts.Ledger = l
	f := fleet.New(opts)
	defer f.Close()
	for i, sock := range farm.Sockets() {
		f.Add(fleet.Target{Name: "g" + string(rune('0'+i)), Address: "unix:" + sock})
	}
	rs := f.Run(ctx, fleet.Action{Kind: fleet.ActFreeze}, []string{"g0", "g1", "g2", "nosuch"}, nil)
	if !rs[0].OK || !rs[1].OK || rs[2].Result != "already frozen" || rs[3].OK {
		t.Fatalf("bulk freeze: %+v", rs)
	}
	es := ledgerEntries(t, l)
	got := map[string]bool{}
	for _, e := range es {
		got[e.Guest] = true
	}
	if len(es) != 2 || !got["g0"] || !got["g1"] {
		t.Fatalf("ledger after a bulk freeze: %+v", es)
	}
	for _, r := range f.ThawOurs(ctx) {
		if !r.OK {
			t.Fatalf("thaw: %+v", r)
		}
	}
	if es := ledgerEntries(t, l); len(es) != 0 {
		t.Fatalf("ledger after the thaw: %+v", es)
	}
}

// A freeze of some filesystems (--mountpoint) over the wire: the ledger
// entry is written ahead and kept while frozen, the thaw clears it; a
// mountpoint the guest does not have freezes nothing, which fails and
// leaves no entry behind.
func TestMountpointFreezeLedger(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		c := sim.DefaultConfig("g0")
		c.Filesystems = append(slices.Clone(c.Filesystems), agentclient.Filesystem{Name: "vdb1", Mountpoint: "/var", Type: "xfs"})
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	l := ledger.Open(t.TempDir())
	opts := fastOptions()
	opts.Ledger = l
	f := fleet.New(opts)
	defer f.Close()
	f.Add(fleet.Target{Name: "g0", Address: "unix:" + farm.Sockets()[0]})
	ctx := context.Background()
	f.RefreshOnce(ctx, nil)

	none, _ := fleet.ParseAction([]string{"freeze", "--mountpoint", "/srv"})
	if r := f.Run(ctx, none, []string{"g0"}, nil)[0]; r.OK || farm.Guests()[0].Frozen() {
		t.Fatalf("freeze of a missing mountpoint: %+v", r)
	}
	if es := ledgerEntries(t, l); len(es) != 0 {
		t.Fatalf("ledger after a freeze of nothing: %+v", es)
	}
	a, _ := fleet.ParseAction([]string{"freeze", "--mountpoint", "/var"})
	r := f.Run(ctx, a, []string{"g0"}, nil)[0]
	if !r.OK || r.Filesystems != 1 || !farm.Guests()[0].Frozen() || farm.Guests()[0].Calls("guest-fsfreeze-freeze-list") != 2 {
		t.Fatalf("freeze --mountpoint /var: %+v, frozen %v", r, farm.Guests()[0].Frozen())
	}
	if es := ledgerEntries(t, l); len(es) != 1 || es[0].Guest != "g0" {
		t.Fatalf("ledger while frozen: %+v", es)
	}
	for _, r := range f.ThawOurs(ctx) {
		if !r.OK {
			t.Fatalf("thaw: %+v", r)
		}
	}
	if farm.Guests()[0].Frozen() {
		t.Fatal("still frozen after the thaw")
	}
	if es := ledgerEntries(t, l); len(es) != 0 {
		t.Fatalf("ledger after the thaw: %+v", es)
	}
}
