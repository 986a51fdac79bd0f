package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
)

// record is one dashboard action's place in the audit log, prepared on the
// Update loop and written from the goroutine that runs the action, so a
// slow disk never stalls the screen. The zero record (no log, or an action
// that only looks) writes nothing.
type record struct {
	log   fleet.Auditor
	entry audit.Entry
	addr  map[string]string
}

// auditAction prepares the record of a on run (to be sent) and skipped.
func (m *Model) auditAction(a fleet.Action, run []*fleet.Guest, skipped []fleet.Result) record {
	al := m.opts.Audit
	if al == nil || !actionMutating(a) {
		return record{}
	}
	guests := fleet.AuditPlan(a, run, audit.Intent, m.now())
	addr := make(map[string]string, len(run)+len(skipped))
	for _, g := range run {
		addr[g.Name] = g.Address
	}
	for _, r := range skipped {
		g := audit.Guest{Name: r.Guest, Address: m.address(r.Guest), Result: "skipped", Detail: r.Err}
		addr[r.Guest] = g.Address
		guests = append(guests, g)
	}
	return record{log: al, addr: addr, entry: audit.Entry{ID: al.NewID(), Phase: audit.Intent,
		Source: audit.SourceDashboard, Action: actionString(a), Guests: guests}}
}

// address is a guest's address in the current snapshot.
func (m *Model) address(name string) string {
	for _, g := range m.snap.Guests {
		if g.Name == name {
			return g.Address
		}
	}
	return ""
}

// intent writes the record's intent; an error refuses the action.
func (r record) intent() error {
	if r.log == nil {
		return nil
	}
	if err := r.log.Append(r.entry); err != nil {
		return fleet.AuditError(r.log.Path(), err)
	}
	return nil
}

// outcome writes every guest's result under the intent's ID, and how the
// operator stopped it (nil: it was not).
func (r record) outcome(results []fleet.Result, stopped *audit.Stop) error {
	if r.log == nil {
		return nil
	}
	e := r.entry
	e.Phase, e.Stopped = audit.Outcome, stopped
	e.Guests = fleet.AuditResults(results, func(n string) string { return r.addr[n] })
	if err := r.log.Append(e); err != nil {
		return fleet.AuditError(r.log.Path(), err)
	}
	return nil
}

// refusedResults fails every guest of an action refused before sending.
func refusedResults(names []string, why error) []fleet.Result {
	out := make([]fleet.Result, len(names))
	for i, n := range names {
		out[i] = fleet.Result{Guest: n, Err: fmt.Sprintf("refused: %v; nothing was sent", why)}
	}
	return out
}

// dryRun shows in the event log what a would send to each target guest,
// or why it would be skipped, and sends nothing (":dry-run ACTION").
func (m *Model) dryRun(a fleet.Action) tea.Cmd {
	desc := actionString(a)
	if m.opts.Readonly && actionMutating(a) {
		m.setStatus("read-only: "+desc+" would be refused (dry run: nothing was sent)", true)
		return nil
	}
	m.commitVisual()
	targets := m.targets()
	if len(targets) == 0 {
		m.setStatus("no guest selected", true)
		return nil
	}
	now := m.now()
	results := make([]fleet.Result, len(targets))
	for i, g := range targets {
		sends, skip := a.Plan(g, now)
		if skip != "" {
			results[i] = fleet.Result{Guest: g.Name, Skipped: true, Err: skip}
			continue
		}
		js := make([]string, len(sends))
		for j, s := range sends {
			js[j] = s.JSON()
		}
		results[i] = fleet.Result{Guest: g.Name, OK: true, Result: "would send " + strings.Join(js, " then ")}
	}
	m.addEvent(event{at: now, action: a, results: results, dry: true})
	m.resetEventLog()
	m.open(layer{kind: layerEvents})
	would, _, skipped := tally(results)
	m.setStatus(fmt.Sprintf("dry run of %s: %d would be sent it, %d skipped; nothing was sent", desc, would, skipped), false)

	al := m.opts.Audit
	if al == nil || !actionMutating(a) {
		return nil
	}
	e := audit.Entry{Phase: audit.DryRun, Source: audit.SourceDashboard, Action: desc,
		Guests: fleet.AuditPlan(a, targets, audit.DryRun, now)}
	return func() tea.Msg {
		err := al.Append(e)
		if err != nil {
			err = fmt.Errorf("%w: the action itself would be refused", fleet.AuditError(al.Path(), err))
		}
		return auditedMsg{what: "dry run of " + desc, err: err}
	}
}

// quitThawRecord prepares the record of the thaw the quit dialog makes of
// the guests this process froze.
func (m *Model) quitThawRecord() record {
	al := m.opts.Audit
	if al == nil {
		return record{}
	}
	thaw := fleet.Action{Kind: fleet.ActThaw}
	names := m.src.FrozenByUs()
	addr := make(map[string]string, len(names))
	guests := make([]audit.Guest, len(names))
	for i, n := range names {
		addr[n] = m.address(n)
		guests[i] = audit.Guest{Name: n, Address: addr[n], Result: "pending", Sends: fleet.AuditSends(thaw.Sends(m.now()))}
	}
	return record{log: al, addr: addr, entry: audit.Entry{ID: al.NewID(), Phase: audit.Intent,
		Source: audit.SourceDashboard, Action: "thaw (quitting: the guests guestdeck froze)", Guests: guests}}
}
