package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/discovery"
	"github.com/guestdeck/guestdeck/fleet/ledger"
)

// MaxNotices is how many notices a Snapshot carries.
const MaxNotices = 256

// notices keeps the newest notices. The slice is replaced on every add,
// never changed in place, so snapshots share it without copying.
type notices struct {
	mu   sync.Mutex
	seq  uint64
	ring []Notice
	cb   sync.Mutex // one OnNotice call at a time
}

func (n *notices) list() []Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ring
}

// notice records a notice and tells Options.OnNotice.
func (f *Fleet) notice(guest string, isErr bool, format string, args ...any) {
	nt := Notice{At: time.Now(), Guest: guest, Text: fmt.Sprintf(format, args...), Err: isErr}
	f.notes.mu.Lock()
	f.notes.seq++
	nt.Seq = f.notes.seq
	old := f.notes.ring
	old = old[max(0, len(old)+1-MaxNotices):]
	ring := make([]Notice, 0, len(old)+1)
	f.notes.ring = append(append(ring, old...), nt)
	f.notes.mu.Unlock()
	if cb := f.opts.OnNotice; cb != nil {
		f.notes.cb.Lock()
		cb(nt)
		f.notes.cb.Unlock()
	}
	f.bump()
}

// targetKey identifies a guest in the ledger: its address, and for a
// libvirt guest the host's URI and the domain, so that two fleet files
// naming one libvirt host differently still agree, and a guest renamed in
// the fleet file keeps its entries.
func targetKey(t Target) string {
	if t.hostURI != "" {
		if _, dom, err := discovery.ParseLibvirtAddress(t.Address); err == nil {
			return "libvirt+" + t.hostURI + "/" + dom
		}
	}
	return t.Address
}

// ledgerView is the fleet's copy of the ledger, re-read by a started fleet
// every LedgerInterval and after each change this process makes.
type ledgerView struct {
	l    *ledger.Ledger
	self ledger.Process

	mu    sync.Mutex
	byKey map[string][]viewEntry
	err   error // the last read's error (a corrupt ledger); nil when fine
}

type viewEntry struct {
	ledger.Entry
	alive bool // its process still runs (always true for this process's)
	ours  bool // written by this process
}

func (f *Fleet) openLedger() {
	l := f.opts.Ledger
	if l == nil {
		return
	}
	if l.Warn == nil {
		l.Warn = func(err error) { f.notice("", true, "%v", err) }
	}
	f.book = &ledgerView{l: l, self: ledger.Self()}
	f.book.load()
}

// LedgerErr is why the ledger could not be read the last time (a corrupt
// file, say), or nil.
func (f *Fleet) LedgerErr() error {
	if f.book == nil {
		return nil
	}
	f.book.mu.Lock()
	defer f.book.mu.Unlock()
	return f.book.err
}

// LedgerPath is the ledger file, "" without one.
func (f *Fleet) LedgerPath() string {
	if f.opts.Ledger == nil {
		return ""
	}
	return f.opts.Ledger.Path()
}

func (b *ledgerView) load() {
	if b == nil {
		return
	}
	es, err := b.l.Load()
	m := make(map[string][]viewEntry, len(es))
	for _, e := range es {
		ours := e.Process.Same(b.self)
		m[e.Key] = append(m[e.Key], viewEntry{Entry: e, ours: ours, alive: ours || e.Alive()})
	}
	b.mu.Lock()
	if err == nil {
		b.byKey = m
	}
	b.err = err
	b.mu.Unlock()
}

func (b *ledgerView) entries(key string) []viewEntry {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byKey[key]
}

// record is what the ledger says about g: another process's freeze (a live
// one first), and whether it holds a suspend.
func (b *ledgerView) record(key string, g *Guest) (rec *FreezeRecord, suspend *ledger.Entry) {
	var best *viewEntry
	es := b.entries(key)
	for i := range es {
		e := &es[i]
		switch {
		case e.Kind == ledger.Suspend:
			if suspend == nil || e.Since.After(suspend.Since) {
				suspend = &e.Entry
			}
		case e.ours:
			// FrozenByUs says it better.
		case best == nil || (e.alive && !best.alive) || (e.alive == best.alive && e.Since.After(best.Since)):
			best = e
		}
	}
	if best != nil && g.Freeze != agentclient.Thawed {
		rec = &FreezeRecord{PID: best.PID, Who: best.Who, Since: best.Since, Until: best.Until, Orphan: !best.alive, Config: best.Config}
	}
	return rec, suspend
}

func sameRecord(a, b *FreezeRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// seed sets a new session's ledger-derived fields before it is published.
func (s *session) seedLedger(g *Guest) {
	if s.f.book == nil {
		return
	}
	rec, susp := s.f.book.record(s.key, g)
	g.FrozenBy = rec
	if susp != nil {
		g.State = Suspended
	}
}

// syncLedger brings the published guest in line with the view.
func (s *session) syncLedger() {
	b := s.f.book
	if b == nil {
		return
	}
	g := s.cur.Load()
	rec, suspend, back := s.ledgerSays(b, g)
	if back {
		s.f.goTracked(func(context.Context) { s.clearSuspend() })
	}
	if sameRecord(rec, g.FrozenBy) && !suspend {
		return
	}
	if ledgerSyncLooked != nil {
		ledgerSyncLooked(s)
	}
	s.update(func(g *Guest) {
		// Decided again on the copy written: a poll may have published
		// since the look above (a thaw, an answer), and what it showed must
		// not be written over with what the ledger said of the guest
		// before it (a thawed guest shown frozen by another process, an
		// answering one suspended, until the next reload).
		rec, suspend, _ := s.ledgerSays(b, g)
		g.FrozenBy = rec
		if suspend {
			setState(g, Suspended, g.Err, time.Now())
		}
	})
}

// ledgerSyncLooked, when set (tests), runs in syncLedger between its look
// at the published guest and its update: where a poll can publish.
var ledgerSyncLooked func(*session)

// ledgerSays is what the ledger makes of g: another process's freeze, and
// whether g is to be shown suspended (not heard from since its suspend) or
// is back (it answered well after it).
func (s *session) ledgerSays(b *ledgerView, g *Guest) (rec *FreezeRecord, suspend, back bool) {
	rec, susp := b.record(s.key, g)
	if susp != nil && g.State != Suspended && g.State != Gone {
		switch {
		case g.LastLive.Before(susp.Since):
			suspend = true // not heard from since it was suspended
		case g.LastLive.After(susp.Since.Add(s.f.opts.suspendSettle())):
			back = true // it answered well after the suspend
		}
	}
	return rec, suspend, back
}

// reloadLedger re-reads the ledger and updates every guest from it.
func (f *Fleet) reloadLedger() {
	if f.book == nil {
		return
	}
	f.book.load()
	f.mu.Lock()
	order := f.order
	f.mu.Unlock()
	for _, s := range order {
		s.syncLedger()
	}
}

// ledgerLoop re-reads the ledger every LedgerInterval while the fleet is
// started and, with AdoptOrphans, thaws orphaned freezes that are due.
func (f *Fleet) ledgerLoop(ctx context.Context) {
	t := time.NewTicker(f.opts.LedgerInterval)
	defer t.Stop()
	for {
		f.reloadLedger()
		if f.opts.AdoptOrphans {
			f.adoptOrphans(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adoptOrphans starts a thaw for every guest left frozen by a guestdeck
// that is gone, once the thaw it promised is due. A freeze that promised
// none (`run --yes freeze`) is only shown.
func (f *Fleet) adoptOrphans(ctx context.Context) {
	now := time.Now()
	for _, g := range f.Snapshot().Guests {
		r := g.FrozenBy
		if r == nil || !r.Orphan || r.Until.IsZero() || now.Before(r.Until) || g.FrozenByUs {
			continue
		}
		s := f.session(g.Name)
		if s == nil || s.thawInFlight() {
			continue
		}
		f.notice(g.Name, true, "left frozen by guestdeck pid %d (%s), which is no longer running; frozen since %s, its promised thaw at %s has passed: thawing it",
			r.PID, r.Who, r.Since.Format("15:04:05"), r.Until.Format("15:04:05"))
		f.goTracked(func(context.Context) { s.autoThaw(ctx, "orphaned freeze") })
	}
}

// recordFreeze writes the ledger entry for a freeze about to be sent, or
// takes the one a bulk freeze wrote for it (prerecordFreezes). Holds sem.
func (s *session) recordFreeze() (string, error) {
	l := s.f.opts.Ledger
	if l == nil {
		return "", nil
	}
	s.mu.Lock()
	id := s.pending
	s.pending = ""
	s.mu.Unlock()
	if id == "" {
		e, err := l.Add(s.freezeEntry())
		if err != nil {
			return "", err
		}
		id = e.ID
		s.f.book.load()
	}
	s.mu.Lock()
	s.freezeIDs = append(s.freezeIDs, id)
	s.mu.Unlock()
	return id, nil
}

func (s *session) freezeEntry() ledger.Entry {
	e := s.entry(ledger.Freeze)
	switch p := s.f.opts.Promise; {
	case p < 0:
	case p == 0:
		e.Until = e.Since.Add(s.f.opts.FreezeTimeout)
	default:
		e.Until = e.Since.Add(p)
	}
	return e
}

// prerecordFreezes writes the ledger entries of a bulk freeze in one
// write before any freeze is sent: one fsync instead of one per guest, so
// the guests' freezes are not spread out by the ledger (about 5 ms a write).
// When it fails, each freeze records its own (and is refused if it cannot).
func (f *Fleet) prerecordFreezes(sessions []*session) {
	if f.opts.Ledger == nil || len(sessions) < 2 {
		return
	}
	var es []ledger.Entry
	var who []*session
	for _, s := range sessions {
		if s == nil {
			continue
		}
		s.mu.Lock()
		busy := s.pending != ""
		s.mu.Unlock()
		if !busy {
			es, who = append(es, s.freezeEntry()), append(who, s)
		}
	}
	added, err := f.opts.Ledger.AddAll(es)
	if err != nil {
		return
	}
	for i, s := range who {
		s.mu.Lock()
		s.pending = added[i].ID
		s.mu.Unlock()
	}
	f.book.load()
}

// dropPrerecorded removes the entries of a bulk freeze that no freeze took
// (skipped, cancelled, refused before sending).
func (f *Fleet) dropPrerecorded(sessions []*session) {
	var ids []string
	for _, s := range sessions {
		if s == nil {
			continue
		}
		s.mu.Lock()
		if s.pending != "" {
			ids = append(ids, s.pending)
			s.pending = ""
		}
		s.mu.Unlock()
	}
	if len(ids) == 0 {
		return
	}
	if err := f.opts.Ledger.Remove(ids...); err != nil {
		f.notice("", true, "could not update the freeze ledger: %v", err)
	}
	f.book.load()
}

// recordSuspend writes the ledger entry for a suspend about to be sent.
func (s *session) recordSuspend(mode string) (string, error) {
	l := s.f.opts.Ledger
	if l == nil {
		return "", nil
	}
	e := s.entry(ledger.Suspend)
	e.Mode = mode
	e, err := l.Add(e)
	if err != nil {
		return "", err
	}
	s.f.book.load()
	return e.ID, nil
}

func (s *session) entry(k ledger.Kind) ledger.Entry {
	return ledger.Entry{
		Kind: k, Guest: s.target().Name, Key: s.key, Address: s.target().Address, Host: s.target().Host,
		Who: s.f.opts.Who, Config: s.f.opts.Config, Since: time.Now(),
	}
}

// forget removes this process's entries with these IDs (a freeze that froze
// nothing, a suspend refused).
func (s *session) forget(ids ...string) {
	if s.f.opts.Ledger == nil || len(ids) == 0 || ids[0] == "" {
		return
	}
	if err := s.f.opts.Ledger.Remove(ids...); err != nil {
		s.f.notice(s.target().Name, true, "could not update the freeze ledger: %v", err)
	}
	s.mu.Lock()
	kept := s.freezeIDs[:0]
	for _, id := range s.freezeIDs {
		if !slices.Contains(ids, id) {
			kept = append(kept, id)
		}
	}
	s.freezeIDs = kept
	s.mu.Unlock()
	s.f.book.load()
}

// clearFreeze removes every freeze entry of this guest: its thaw is
// confirmed, so whoever froze it, it is no longer frozen.
func (s *session) clearFreeze() {
	s.mu.Lock()
	s.freezeIDs = nil
	s.mu.Unlock()
	s.clearKind(ledger.Freeze, nil)
}

// clearOrphans removes freeze entries of processes that are gone: the
// guest was seen thawed.
func (s *session) clearOrphans() {
	s.clearKind(ledger.Freeze, func(e ledger.Entry) bool { return !e.Process.Alive() })
}

func (s *session) clearSuspend() { s.clearKind(ledger.Suspend, nil) }

func (s *session) clearKind(k ledger.Kind, also func(ledger.Entry) bool) {
	l := s.f.opts.Ledger
	if l == nil {
		return
	}
	_, err := l.RemoveWhere(func(e ledger.Entry) bool {
		return e.Key == s.key && e.Kind == k && (also == nil || also(e))
	})
	if err != nil {
		s.f.notice(s.target().Name, true, "could not update the freeze ledger %s: %v", l.Path(), err)
		return
	}
	s.f.book.load()
	s.syncLedger()
}

// afterApply keeps the ledger true after a poll: a suspended guest that
// answers is back, and a guest seen thawed is no longer an orphan.
func (s *session) afterApply(prev *Guest) {
	g := s.cur.Load()
	answering := g.State == Ready || g.State == Frozen
	if prev.State == Suspended && answering {
		s.f.notice(s.target().Name, false, "answers again after being suspended")
		s.f.goTracked(func(context.Context) { s.clearSuspend() })
	}
	if g.FrozenBy != nil && g.Freeze == agentclient.Thawed {
		orphan := g.FrozenBy.Orphan
		s.update(func(g *Guest) { g.FrozenBy = nil })
		if orphan {
			s.f.goTracked(func(context.Context) { s.clearOrphans() })
		}
	}
}

// rawFreezeRecord writes the ledger entry for a freeze sent through Raw,
// before it is sent, as freeze does. Holds sem.
func (s *session) rawFreezeRecord(req []byte) (string, error) {
	var head struct {
		Execute string `json:"execute"`
	}
	if json.Unmarshal(req, &head) != nil || (head.Execute != "guest-fsfreeze-freeze" && head.Execute != "guest-fsfreeze-freeze-list") {
		return "", nil
	}
	id, err := s.recordFreeze()
	if err != nil {
		return "", fmt.Errorf("not sent: the freeze could not be recorded (%w)", err)
	}
	return id, nil
}

// rawFreezeSettle drops the entry of a raw freeze that froze nothing (an
// error from the agent, or 0 filesystems); one whose answer was lost stays.
func (s *session) rawFreezeSettle(entry string, out json.RawMessage, err error) {
	if entry == "" || isTransport(err) {
		return
	}
	var reply struct {
		Return int `json:"return"`
	}
	if err != nil || json.Unmarshal(out, &reply) != nil || reply.Return <= 0 {
		s.forget(entry)
	}
}
