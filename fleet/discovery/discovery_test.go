package discovery

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/guestdeck/guestdeck/agentclient"
)

// stubSource is a Source whose first attempt ends when the test says so.
type stubSource struct {
	name    string
	first   chan error // the outcome of the first attempt
	stopped chan struct{}
}

func newStub(name string) *stubSource {
	return &stubSource{name: name, first: make(chan error, 1), stopped: make(chan struct{})}
}

func (s *stubSource) Name() string   { return s.name }
func (s *stubSource) State() State   { return State{Name: s.name, Kind: "stub"} }
func (s *stubSource) Scheme() string { return "stub" }
func (s *stubSource) Owns(addr string) bool {
	return strings.HasPrefix(addr, "stub:"+s.name+"/")
}
func (s *stubSource) Dial(ctx context.Context, addr string, urgent bool) (agentclient.Agent, error) {
	return nil, errors.New("dialled " + s.name)
}
func (s *stubSource) Run(ctx context.Context, sink Sink, first func(error)) {
	defer close(s.stopped)
	select {
	case err := <-s.first:
		first(err)
	case <-ctx.Done():
		return
	}
	<-ctx.Done()
}

// nopSink counts SourceChanged calls; the stub never claims.
type nopSink struct {
	mu      sync.Mutex
	changed int
}

func (k *nopSink) Claim(ts []Target) []Target            { return ts }
func (k *nopSink) Remove(...string)                      {}
func (k *nopSink) MarkGone(string, string)               {}
func (k *nopSink) SetDomain(string, DomainState, string) {}
func (k *nopSink) Poke(string)                           {}
func (k *nopSink) SourceChanged()                        { k.mu.Lock(); k.changed++; k.mu.Unlock() }

// TestManager: Add waits for the first attempt and returns its error (the
// source stays), refuses a duplicate name, gives up waiting when ctx ends;
// Dial reaches the source that owns the address; Close stops every source.
func TestManager(t *testing.T) {
	sink := &nopSink{}
	m := NewManager(sink)
	a, b, c := newStub("a"), newStub("b"), newStub("c")

	a.first <- nil
	if err := m.Add(context.Background(), a); err != nil {
		t.Fatalf("Add(a): %v", err)
	}
	b.first <- errors.New("refused")
	if err := m.Add(context.Background(), b); err == nil || !strings.Contains(err.Error(), "refused (retrying in the background)") {
		t.Fatalf("Add(b): %v", err)
	}
	if err := m.Add(context.Background(), newStub("a")); err == nil || !strings.Contains(err.Error(), "already added") {
		t.Fatalf("Add(a again): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Add(ctx, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add(c) with ctx done: %v", err)
	}
	var names []string
	for _, st := range m.States() {
		names = append(names, st.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("States names %v, want a,b,c (a failed or slow source stays)", names)
	}

	for _, tt := range []struct{ addr, want string }{
		{"stub:b/x", "dialled b"},
		{"stub:a/y", "dialled a"},
		{"stub:z/y", `no stub host named "z"`},
	} {
		if _, err := m.Dial(context.Background(), "stub", tt.addr, false); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Dial(%s): %v, want %q", tt.addr, err, tt.want)
		}
	}

	m.Close()
	for _, s := range []*stubSource{a, b, c} {
		select {
		case <-s.stopped:
		default:
			t.Errorf("source %s still running after Close", s.name)
		}
	}
	if err := m.Add(context.Background(), newStub("d")); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.changed != 3 {
		t.Errorf("SourceChanged %d times, want 3 (one per source added)", sink.changed)
	}
}
