package fleet

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/discovery"
)

// HostConfig is one libvirt host: see discovery.LibvirtConfig.
type HostConfig = discovery.LibvirtConfig

// AgentChannel is the virtio-serial channel name of the QEMU guest agent.
const AgentChannel = discovery.AgentChannel

// SourceState is a discovery source's state: see discovery.State.
type SourceState = discovery.State

// SourcePhase is where a source is in its life: see discovery.Phase.
type SourcePhase = discovery.Phase

// The phases of a SourceState.
const (
	SourceConnecting   = discovery.Connecting
	SourceUp           = discovery.Up
	SourceUnreachable  = discovery.Unreachable
	SourceReconnecting = discovery.Reconnecting
)

// DomainState is libvirt's view of a guest's machine: see
// discovery.DomainState.
type DomainState = discovery.DomainState

// The domain states.
const (
	DomainUnknown      = discovery.DomainUnknown
	DomainRunning      = discovery.DomainRunning
	DomainBooting      = discovery.DomainBooting
	DomainPaused       = discovery.DomainPaused
	DomainPMSuspended  = discovery.DomainPMSuspended
	DomainShuttingDown = discovery.DomainShuttingDown
	DomainStopped      = discovery.DomainStopped
	DomainCrashed      = discovery.DomainCrashed
)

// domainHolds is the guest State a domain state decides: while the
// machine is not running, its agent cannot answer, and libvirt's word is
// the truth (a failed poll does not turn a paused guest "silent").
var domainHolds = map[DomainState]State{
	DomainBooting:      Connecting,
	DomainPaused:       Paused,
	DomainPMSuspended:  Suspended,
	DomainShuttingDown: ShuttingDown,
	DomainStopped:      Stopped,
	DomainCrashed:      Crashed,
}

// heldByDomain reports whether g's state is its domain's, not its agent's.
func heldByDomain(g *Guest) bool {
	_, ok := domainHolds[g.DomainState]
	return ok
}

// setDomain records libvirt's view of the guest's domain. A domain that is
// not running decides the state; one that runs again after that hands the
// state back to the agent (connecting until a poll answers). A stopped or
// crashed domain's connection is dropped.
func (s *session) setDomain(d DomainState, reason string) {
	if d == DomainStopped || d == DomainCrashed {
		select {
		case s.sem <- struct{}{}:
			s.dropAgent()
			<-s.sem
		default:
		}
	}
	now := time.Now()
	woken := false
	s.update(func(g *Guest) {
		if g.DomainState == d && g.DomainReason == reason {
			return
		}
		wasHeld := heldByDomain(g)
		g.DomainState, g.DomainReason = d, reason
		if st, ok := domainHolds[d]; ok {
			setState(g, st, reason, now)
			return
		}
		if wasHeld {
			woken = g.State == Suspended && d == DomainRunning
			why := "domain running; waiting for its agent"
			if reason != "" {
				why = reason + "; waiting for its agent"
			}
			setState(g, Connecting, why, now)
		}
	})
	if woken {
		// Whoever woke it (wake, virsh dompmwakeup): the suspension the
		// ledger may hold for it is over.
		s.f.notice(s.target().Name, false, "woken up: libvirt reports the domain running again")
		s.f.goTracked(func(context.Context) { s.clearSuspend() })
	}
}

// AddHost adds the libvirt host h as a discovery source (AddSource).
// Configuration errors are returned and nothing is started.
func (f *Fleet) AddHost(ctx context.Context, h HostConfig) error {
	src, err := discovery.NewLibvirt(h)
	if err != nil {
		return err
	}
	return f.AddSource(ctx, src)
}

// AddSource starts discovering guests from src until the fleet is closed.
// ctx bounds the wait for its first attempt only: a failed first attempt is
// returned, but the source stays added and keeps retrying in the background;
// its guests appear once it answers.
func (f *Fleet) AddSource(ctx context.Context, src discovery.Source) error {
	// A source that carries agent streams (ssh) makes them with the
	// fleet's read buffer, reply budget and log hook, like dialStream.
	if so, ok := src.(interface {
		SetStreamOptions(func(context.Context) []agentclient.Option)
	}); ok {
		so.SetStreamOptions(f.streamOptions)
	}
	if d, ok := src.(discovery.Dialer); ok {
		scheme := d.Scheme()
		f.SetDialer(scheme, func(ctx context.Context, t Target) (agentclient.Agent, error) {
			return f.sources.Dial(ctx, scheme, t.Address, urgentDial(ctx))
		})
	}
	if err := f.sources.Add(ctx, src); err != nil {
		st := src.State()
		return fmt.Errorf("%s host %s (%s): %w", st.Kind, src.Name(), st.Endpoint, err)
	}
	return nil
}

// Sources returns the state of every discovery source (libvirt host), by
// name. Changed fires when one changes.
func (f *Fleet) Sources() []SourceState { return f.sources.States() }

// QualifiedName is the name of the guest discovered as domain dom on the
// libvirt host named host: see discovery.QualifiedName.
func QualifiedName(host, dom string) string { return discovery.QualifiedName(host, dom) }

// Domain is the libvirt domain of a guest reached through a libvirt host,
// "" for a guest reached directly.
func (t Target) Domain() string {
	if _, dom, err := discovery.ParseLibvirtAddress(t.Address); err == nil {
		return dom
	}
	return ""
}

// sourceSink is what the fleet offers its discovery sources.
type sourceSink struct{ f *Fleet }

// Claim adds the targets whose names are free or already theirs; claimMu
// makes the check and the Add one step for every source at once, so hosts
// discovering at the same time never take each other's names.
func (k sourceSink) Claim(ts []discovery.Target) []discovery.Target {
	f := k.f
	f.claimMu.Lock()
	defer f.claimMu.Unlock()
	var add []Target
	var claimed []discovery.Target
	for _, t := range ts {
		if s := f.session(t.Name); s != nil && s.target().Address != t.Address {
			// Only a caller of Add can have put another target under this
			// name ('/' is in no configured guest's name): replacing it
			// would change which guest the name means.
			continue
		}
		claimed = append(claimed, t)
		add = append(add, Target{Name: t.Name, Host: t.Host, Address: t.Address, Tags: slices.Clone(t.Tags), UUID: t.UUID, hostURI: t.Endpoint})
	}
	f.Add(add...)
	return claimed
}

func (k sourceSink) Remove(names ...string)       { k.f.Remove(names...) }
func (k sourceSink) MarkGone(name, reason string) { k.f.MarkGone(name, reason) }
func (k sourceSink) SetDomain(name string, d DomainState, reason string) {
	if s := k.f.session(name); s != nil {
		s.setDomain(d, reason)
	}
}
func (k sourceSink) Poke(name string) { k.f.Poke(name) }
func (k sourceSink) SourceChanged()   { k.f.bump() }
