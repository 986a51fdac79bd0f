// Package discovery finds guests for a fleet, apart from polling them (as
// Prometheus keeps its discovery apart from scraping). A Source watches one
// place guests live — a libvirt host today; socket directories and ssh hosts
// are meant to fit the same interface — and tells the fleet, through a Sink,
// which targets appeared, went away or should be polled now. Every source has
// a State (connecting, up with its guest count, unreachable with the error
// and the next retry, reconnecting) that the fleet exposes beside its guests.
//
// discovery knows nothing of sessions or polling: it imports agentclient
// (sources such as libvirt also carry their guests' agent traffic) and config
// (the parsed libvirt URI), never fleet.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Target is a guest a source found: what the fleet needs to make it one of
// its targets.
type Target struct {
	Name    string // unique in the fleet; sources qualify it ("HOST/DOMAIN")
	Host    string // the source's name, shown in the Host column
	Address string // how the fleet dials it, e.g. "libvirt:HOST/DOMAIN"
	Tags    []string
	// Endpoint identifies the source across fleet files (the libvirt URI):
	// with the address it keys the guest in the ledger.
	Endpoint string
	// UUID is a libvirt domain's UUID as virsh prints it
	// (8-4-4-4-12 lowercase hex); "" for guests that have none (sockets).
	UUID string
}

// FormatUUID writes a libvirt UUID as virsh prints it.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Sink is what a fleet offers its sources. Every method is safe for
// concurrent use and must not block for long.
type Sink interface {
	// Claim adds the targets whose names are free in the fleet, or already
	// held at the same address, and returns those; a name another guest
	// holds is never taken over (that would change which guest it means).
	Claim(ts []Target) []Target
	// Remove forgets targets (a transient domain went away).
	Remove(names ...string)
	// MarkGone keeps the target but shows it went away, and why.
	MarkGone(name, reason string)
	// SetDomain records the host's own view of the guest's machine (a
	// libvirt domain's state), and why; the fleet shows it beside the
	// agent's and lets it decide the guest's state while the machine is
	// not running (paused, suspended, stopped, ...).
	SetDomain(name string, d DomainState, reason string)
	// Poke polls the target now (its agent just connected, its host came back).
	Poke(name string)
	// SourceChanged says a source's State changed.
	SourceChanged()
}

// Source is one place guests are discovered.
type Source interface {
	// Name is unique among a fleet's sources and is the Host of its targets.
	Name() string
	// Run follows the source until ctx ends, reporting to sink. It calls
	// first exactly once, with the outcome of its first attempt to reach
	// the source; it keeps retrying in the background after a failure.
	Run(ctx context.Context, sink Sink, first func(error))
	// State is the source's state now.
	State() State
}

// Dialer is a Source whose guests are reached through the source itself
// (libvirt: over the host's connection), not by their address alone.
type Dialer interface {
	Source
	// Scheme is the address scheme of its targets ("libvirt").
	Scheme() string
	// Owns reports whether address is one of this source's targets.
	Owns(address string) bool
	// Dial opens an agent session to the target at address. urgent means
	// a thaw is owed: a source that is down reconnects now (bounded by
	// ctx) instead of at its next retry.
	Dial(ctx context.Context, address string, urgent bool) (agentclient.Agent, error)
}

// DomainController is a Source that can start and wake its guests'
// machines (libvirt: virDomainCreate, virDomainPMWakeup), which no agent
// can do for a guest that is not running.
type DomainController interface {
	Source
	// Start boots the stopped machine of the target at address.
	Start(ctx context.Context, address string) error
	// Wake resumes the machine of the target at address from a suspend
	// to RAM.
	Wake(ctx context.Context, address string) error
}

// Phase is where a source is in its life.
type Phase string

const (
	// Connecting: the first attempt is under way.
	Connecting Phase = "connecting"
	// Up: connected; its guests are listed.
	Up Phase = "up"
	// Unreachable: the last attempt failed or the connection was lost;
	// State.Err says why and State.Retry when the next attempt is due.
	Unreachable Phase = "unreachable"
	// Reconnecting: an attempt after a failure or a lost connection is
	// under way; State.Err is the failure it follows.
	Reconnecting Phase = "reconnecting"
)

// State is a source's state as the dashboard and status show it.
type State struct {
	Name     string // the source's name ("hv1")
	Kind     string // "libvirt"
	Endpoint string // where it is, as the fleet file wrote it (the URI)
	Phase    Phase
	Since    time.Time // when Phase was entered
	Guests   int       // targets it holds now (gone ones included)
	Err      error     // Unreachable, Reconnecting: the last failure
	Retry    time.Time // Unreachable: when the next attempt is due
}

// Reachable reports whether the source is not known to be unreachable: up,
// or still making its first attempt.
func (s State) Reachable() bool { return s.Phase == Up || s.Phase == Connecting }

// Manager runs a fleet's sources: each on its own goroutine until Close,
// names unique, and the dials of sources that carry their guests' traffic
// routed to them.
type Manager struct {
	sink Sink
	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	sources []Source
}

// NewManager returns a manager that reports to sink.
func NewManager(sink Sink) *Manager {
	m := &Manager{sink: sink}
	m.life, m.stop = context.WithCancel(context.Background())
	return m
}

// ErrClosed: the manager (its fleet) is closed.
var ErrClosed = errors.New("fleet is closed")

// Add starts src and waits for its first attempt, or for ctx to end. An
// error is returned for a duplicate name, a closed manager, a failed first
// attempt or ctx ending first; in the last two cases src stays added and
// keeps trying in the background, and its guests join when it answers.
func (m *Manager) Add(ctx context.Context, src Source) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if slices.ContainsFunc(m.sources, func(s Source) bool { return s.Name() == src.Name() }) {
		m.mu.Unlock()
		return errors.New("already added")
	}
	m.sources = append(m.sources, src)
	m.wg.Add(1) // under mu: Close cannot be waiting yet
	m.mu.Unlock()
	m.sink.SourceChanged()

	first := make(chan error, 1)
	var once sync.Once
	go func() {
		defer m.wg.Done()
		src.Run(m.life, m.sink, func(err error) { once.Do(func() { first <- err }) })
		once.Do(func() { first <- ErrClosed })
	}()
	select {
	case err := <-first:
		if err != nil {
			return fmt.Errorf("%w (retrying in the background)", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no answer yet: %w (still trying in the background)", ctx.Err())
	}
}

// States returns every source's state, by name: sources added at once
// (a fleet file's hosts connect in parallel) list the same in every run.
func (m *Manager) States() []State {
	m.mu.Lock()
	srcs := slices.Clone(m.sources)
	m.mu.Unlock()
	out := make([]State, len(srcs))
	for i, s := range srcs {
		out[i] = s.State()
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Source returns the source named name, or nil.
func (m *Manager) Source(name string) Source {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sources {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// Dial reaches address through the source of scheme that owns it.
func (m *Manager) Dial(ctx context.Context, scheme, address string, urgent bool) (agentclient.Agent, error) {
	m.mu.Lock()
	var d Dialer
	for _, s := range m.sources {
		if sd, ok := s.(Dialer); ok && sd.Scheme() == scheme && sd.Owns(address) {
			d = sd
			break
		}
	}
	m.mu.Unlock()
	if d == nil {
		host, _, _ := strings.Cut(strings.TrimPrefix(address, scheme+":"), "/")
		return nil, fmt.Errorf("address %s: no %s host named %q", address, scheme, host)
	}
	return d.Dial(ctx, address, urgent)
}

// Close stops every source and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.stop()
	m.wg.Wait()
}
