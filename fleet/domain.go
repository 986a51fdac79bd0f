package fleet

import (
	"context"
	"fmt"

	"github.com/guestdeck/guestdeck/fleet/discovery"
)

// Actions on a guest's machine rather than its agent: libvirt can start a
// stopped domain and wake one suspended to RAM, where no agent runs to ask.
// They go through the guest's discovery source (discovery.DomainController).

// controller is the source that can start and wake the guest's machine.
func (s *session) controller() (discovery.DomainController, error) {
	src := s.f.sources.Source(s.target().Host)
	if c, ok := src.(discovery.DomainController); ok && s.target().Host != "" {
		return c, nil
	}
	return nil, fmt.Errorf("guest %s is not on a libvirt host: only libvirt can start or wake its machine", s.target().Name)
}

// wakeCheck says why g cannot be woken ("" when it can): only a machine
// suspended to RAM wakes.
func wakeCheck(g *Guest) string {
	if g.Host == "" {
		return "not on a libvirt host (nothing can wake it but its hypervisor)"
	}
	if g.DomainState != DomainPMSuspended && g.State != Suspended {
		return fmt.Sprintf("not suspended (%s)", g.State)
	}
	return ""
}

// startCheck says why g cannot be started ("" when it can).
func startCheck(g *Guest) string {
	if g.Host == "" {
		return "not on a libvirt host"
	}
	if g.DomainState != DomainStopped && g.DomainState != DomainCrashed {
		return fmt.Sprintf("not stopped (%s)", g.State)
	}
	return ""
}

// actWake wakes the machine (virDomainPMWakeup): libvirt's STARTED
// (wakeup) event follows, then the agent answers again.
func (s *session) actWake(ctx context.Context, _ Action, r *Result) error {
	c, err := s.controller()
	if err != nil {
		return err
	}
	if err := c.Wake(ctx, s.target().Address); err != nil {
		return err
	}
	r.Result = "woken up (the agent answers once the guest has resumed)"
	s.poke()
	return nil
}

// actStart boots the stopped machine (virDomainCreate): it shows booting
// (connecting) until its agent connects.
func (s *session) actStart(ctx context.Context, _ Action, r *Result) error {
	c, err := s.controller()
	if err != nil {
		return err
	}
	if err := c.Start(ctx, s.target().Address); err != nil {
		return err
	}
	r.Result = "started (booting: ready once its agent connects)"
	return nil
}
