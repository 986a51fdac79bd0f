package fleet

import (
	"context"
	"fmt"
	"slices"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/discovery"
)

// HostConfig is one libvirt host: see discovery.LibvirtConfig.
type HostConfig = discovery.LibvirtConfig

// AgentChannel is the virtio-serial channel name of the QEMU guest agent.
const AgentChannel = discovery.AgentChannel

// SourceState is a discovery source's state: see discovery.State.
type SourceState = discovery.State

// The phases of a SourceState.
const (
	SourceConnecting   = discovery.Connecting
	SourceUp           = discovery.Up
	SourceUnreachable  = discovery.Unreachable
	SourceReconnecting = discovery.Reconnecting
)

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
		if s := f.session(t.Name); s != nil && s.target.Address != t.Address {
			// Only a caller of Add can have put another target under this
			// name ('/' is in no configured guest's name): replacing it
			// would change which guest the name means.
			continue
		}
		claimed = append(claimed, t)
		add = append(add, Target{Name: t.Name, Host: t.Host, Address: t.Address, Tags: slices.Clone(t.Tags), hostURI: t.Endpoint})
	}
	f.Add(add...)
	return claimed
}

func (k sourceSink) Remove(names ...string)            { k.f.Remove(names...) }
func (k sourceSink) MarkGone(name, reason string)      { k.f.MarkGone(name, reason) }
func (k sourceSink) MarkSuspended(name, reason string) { k.f.markSuspended(name, reason) }
func (k sourceSink) Poke(name string)                  { k.f.Poke(name) }
func (k sourceSink) SourceChanged()                    { k.f.bump() }
