package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/testpeers"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// testNodeFile writes a test-driver node file with agent-capable domains
// doms, for a test:///PATH URI: mustURI(t, every connection to it sees those domains),
// and a restarted daemon has them again.
func testNodeFile(t *testing.T, doms ...string) string {
	t.Helper()
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
	for _, d := range doms {
		b.WriteString(testDomainXML(d, true))
	}
	b.WriteString("</node>")
	p := filepath.Join(dir, "node.xml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// guestAddrs maps every guest's name to its address.
func guestAddrs(s *Snapshot) map[string]string {
	m := make(map[string]string, len(s.Guests))
	for _, g := range s.Guests {
		m[g.Name] = g.Address
	}
	return m
}

// TestLibvirtSameDomainTwoHosts: two libvirtds each run a domain lv1. Each
// is named HOST/DOMAIN in every fresh fleet, whichever host answers first;
// bare lv1 selects neither; and a host that connects late adds its guests
// without changing what any name means (the dashboard's case: lv1 on a was
// shown as a/lv1 and stays exactly that guest).
func TestLibvirtSameDomainTwoHosts(t *testing.T) {
	da, dl := testpeers.StartLibvirtTest(t), testpeers.StartLibvirtTest(t)
	hosts := []HostConfig{
		{Name: "a", URI: mustURI(t, "test+unix://"+testNodeFile(t, "lv1", "only-a")+"?socket="+da.Socket)},
		{Name: "lab", URI: mustURI(t, "test+unix://"+testNodeFile(t, "lv1", "db-1")+"?socket="+dl.Socket)},
	}
	want := map[string]string{
		"a/lv1": "libvirt:a/lv1", "a/only-a": "libvirt:a/only-a",
		"lab/lv1": "libvirt:lab/lv1", "lab/db-1": "libvirt:lab/db-1",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Ten fresh fleets, both hosts discovering at once.
	for round := range 10 {
		f := New(Options{Interval: time.Hour})
		errs := make(chan error, len(hosts))
		for _, h := range hosts {
			go func() { errs <- f.AddHost(ctx, h) }()
		}
		for range hosts {
			if err := <-errs; err != nil {
				// A first attempt can be cut off (the daemon dropped the
				// call: "procedure interrupted"); the host retries in the
				// background, and names are this test's subject.
				t.Logf("round %d: %v", round, err)
			}
		}
		// A host whose first attempt was cut off retries with backoff
		// (0.5 s, doubling): on a loaded machine the test daemon can drop
		// a few attempts in a row, so give the retries a minute.
		wait.For(t, time.Minute, func() (bool, string) {
			got := guestAddrs(f.Snapshot())
			return maps.Equal(got, want), fmt.Sprintf("round %d: guests %v, want %v", round, got, want)
		})
		gs := f.Snapshot().Guests
		var ne *NameError
		if sel, err := Select(gs, []string{"lv1"}); !errors.As(err, &ne) || !slices.Equal(ne.Candidates, []string{"a/lv1", "lab/lv1"}) {
			t.Fatalf("round %d: Select lv1 = %v, %v; want refused, naming a/lv1 and lab/lv1", round, sel, err)
		}
		sel, err := Select(gs, []string{"lab/lv1"})
		if err != nil || len(sel) != 1 || sel[0].Address != "libvirt:lab/lv1" {
			t.Fatalf("round %d: Select lab/lv1 = %v, %v", round, sel, err)
		}
		f.Close()
	}

	// A [[guest]] named like the domain keeps its name; the domains keep theirs.
	f := New(Options{Interval: time.Hour})
	f.Add(Target{Name: "lv1", Address: "unix:/nonexistent"})
	for _, h := range hosts {
		if err := f.AddHost(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	withDirect := maps.Clone(want)
	withDirect["lv1"] = "unix:/nonexistent"
	if got := guestAddrs(f.Snapshot()); !maps.Equal(got, withDirect) {
		t.Fatalf("with a [[guest]] lv1: guests %v, want %v", got, withDirect)
	}
	if sel, err := Select(f.Snapshot().Guests, []string{"lv1"}); err != nil || len(sel) != 1 || sel[0].Address != "unix:/nonexistent" {
		t.Fatalf("with a [[guest]] lv1: Select lv1 = %v, %v; want the [[guest]]", sel, err)
	}
	f.Close()

	// lab is down when the fleet starts, and answers later.
	dl.Kill()
	f = New(Options{Interval: 500 * time.Millisecond, Timeout: 2 * time.Second})
	defer f.Close()
	if err := f.AddHost(ctx, hosts[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.AddHost(ctx, hosts[1]); err == nil {
		t.Fatal("AddHost succeeded on a stopped libvirtd")
	}
	f.Start(ctx)
	waitFor(t, f, 30*time.Second, "a's guests ready", func(s *Snapshot) bool {
		return len(s.Guests) == 2 && s.Counts[Ready] == 2
	})
	before := f.session("a/lv1")
	var ne *NameError
	if sel, err := Select(f.Snapshot().Guests, []string{"lv1"}); !errors.As(err, &ne) || !slices.Equal(ne.Candidates, []string{"a/lv1"}) {
		t.Fatalf("one host up: Select lv1 = %v, %v; want refused, naming a/lv1 only", sel, err)
	}
	dl.Restart(t)
	t0 := time.Now()
	waitFor(t, f, 60*time.Second, "lab's guests ready", func(s *Snapshot) bool {
		return len(s.Guests) == 4 && s.Counts[Ready] == 4
	})
	t.Logf("lab answered late: its guests ready %v after its restart", time.Since(t0).Round(time.Millisecond))
	if got := guestAddrs(f.Snapshot()); !maps.Equal(got, want) {
		t.Fatalf("after lab answered: guests %v, want %v", got, want)
	}
	if f.session("a/lv1") != before {
		t.Fatal("a/lv1's session was replaced when lab answered")
	}
	if sel, err := Select(f.Snapshot().Guests, []string{"lv1"}); !errors.As(err, &ne) || !slices.Equal(ne.Candidates, []string{"a/lv1", "lab/lv1"}) {
		t.Fatalf("both hosts up: Select lv1 = %v, %v; want refused, naming a/lv1 and lab/lv1", sel, err)
	}
	for _, n := range []string{"a/lv1", "lab/lv1"} {
		if g := f.Guest(n); g.State != Ready || g.Address != "libvirt:"+n {
			t.Errorf("%s: %s %q at %s", n, g.State, g.Err, g.Address)
		}
	}
}
