package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/tui/present"
)

// rowStatus is a guest's part in the current or last action.
type rowStatus int

const (
	rowRunning rowStatus = iota + 1
	rowOK
	rowFailed
	rowSkipped
	rowNotStarted // the action was stopped before its turn: nothing was sent
)

// confirmation is an open "are you sure" dialog for a destructive action.
type confirmation struct {
	action   fleet.Action
	run      []*fleet.Guest // guests the action will be sent to
	skipped  []fleet.Result // guests whose agent cannot do it
	needType bool           // the user must type len(run) (Action.TypedCount)
	typed    string
	via      *userVia // the user command that started it (usercmd.go), nil when typed
}

// runState is the action in flight.
type runState struct {
	id      int
	action  fleet.Action
	total   int
	done    int
	started time.Time
	skipped []fleet.Result
	cancel  context.CancelFunc // cuts everything, the calls sent too (quitting)
	// stop ends the starting of guests (fleet.RunUntil's stop) with a
	// stopCause; the calls sent finish (stopAction).
	stop       context.CancelCauseFunc
	stopping   bool
	notStarted int // guests reported not started since the stop
}

// stopCause is why a run's stop context ended: the operator's stop key,
// pressed at.
type stopCause struct{ at time.Time }

func (stopCause) Error() string { return "stopped by the operator" }

// event is one finished action in the event log.
type event struct {
	at      time.Time
	action  fleet.Action
	results []fleet.Result
	took    time.Duration
	lines   int  // lines in the event log
	nameW   int  // cells its guest names are padded to (eventNameCells)
	timed   bool // some result has a time of its own to show (resultTook)
	dry     bool // a dry run: nothing was sent
	stopped bool // the operator stopped it part-way (stopAction)
	// note, when set, makes this event a fleet notice (a thaw attempt, an
	// orphaned freeze thawed) rather than an action.
	note *fleet.Notice
}

const maxEvents = 200

// startAction checks read-only and capabilities, then confirms or runs a on
// the target guests.
func (m *Model) startAction(a fleet.Action) tea.Cmd { return m.startActionVia(a, nil, false) }

// startActionVia is startAction for a user command (via, nil when typed);
// confirm asks first even where the action table would not.
func (m *Model) startActionVia(a fleet.Action, via *userVia, confirm bool) tea.Cmd {
	desc := actionString(a)
	if m.opts.Readonly && actionMutating(a) {
		m.setStatus("read-only: "+desc+" refused", true)
		return nil
	}
	switch {
	case m.run != nil && m.run.stopping:
		m.setStatus("not started: "+m.stoppingText(), true)
		return nil
	case m.run != nil:
		m.setStatus(fmt.Sprintf("%s is still running (%d/%d; %s stops it)", actionString(m.run.action), m.run.done, m.run.total,
			m.keys.Stop.Help().Key), true)
		return nil
	}
	m.commitVisual()
	targets := m.targets()
	if len(targets) == 0 {
		msg := "no guest selected"
		if m.tbl.groupAt(m.tbl.cursor) >= 0 {
			msg += fmt.Sprintf(" (the cursor is on a group's header: %s marks the group)", m.keys.Mark.Help().Key)
		}
		m.setStatus(msg, true)
		return nil
	}
	var run []*fleet.Guest
	var skipped []fleet.Result
	for _, g := range targets {
		if why := actionCheck(a, g); why != "" {
			skipped = append(skipped, fleet.Result{Guest: g.Name, Skipped: true, Err: why})
			continue
		}
		run = append(run, g)
	}
	if len(run) == 0 {
		m.setStatus(fmt.Sprintf("%s: nothing to do, %d skipped (%s)", desc, len(skipped), skipped[0].Err), true)
		m.addEvent(event{at: m.now(), action: a, results: skipped})
		m.markSkipped(skipped)
		return nil
	}
	if actionDestructive(a) || confirm {
		m.open(layer{kind: layerConfirm, confirm: &confirmation{
			action: a, run: run, skipped: skipped,
			needType: a.TypedCount(len(run)), via: via,
		}})
		return nil
	}
	return m.launch(a, run, skipped, via)
}

// Result marks (✓ ✗ - beside the rows an action touched) say how the last
// action went. They go when the next action starts, at esc (with the
// guest marks, clear), or resultMarkTTL after the action ended: by then the
// status line and the event log say it, and a ✓ left for minutes reads as
// the state of the guest now.
const resultMarkTTL = 30 * time.Second

// expireResultMarks drops the result marks once their time is up.
func (m *Model) expireResultMarks() {
	if !m.marksUntil.IsZero() && !m.now().Before(m.marksUntil) {
		m.clearResultMarks()
	}
}

// clearResultMarks drops the marks of a finished action; a running one's
// stay (its spinners are its progress).
func (m *Model) clearResultMarks() bool {
	if m.run != nil || len(m.rowStatus) == 0 {
		return false
	}
	m.rowStatus = map[string]rowStatus{}
	m.marksUntil = time.Time{}
	return true
}

func (m *Model) markSkipped(skipped []fleet.Result) {
	m.marksUntil = m.now().Add(resultMarkTTL) // launch clears it while the action runs
	m.rowStatus = map[string]rowStatus{}
	for _, r := range skipped {
		m.rowStatus[r.Guest] = rowSkipped
	}
}

func (m *Model) confirmKey(c *confirmation, k tea.KeyPressMsg) tea.Cmd {
	yes, no := confirmKeys(c.needType)
	switch {
	case key.Matches(k, no):
		clear(c.action.Users.Secret)
		m.closeLayer(layerConfirm)
		m.setStatus(actionString(c.action)+" cancelled", false)
		return nil
	case key.Matches(k, yes):
		if c.needType && c.typed != strconv.Itoa(len(c.run)) {
			m.setStatus(fmt.Sprintf("type %d to confirm", len(c.run)), true)
			return nil
		}
		m.closeLayer(layerConfirm)
		return m.launch(c.action, c.run, c.skipped, c.via)
	case c.needType && k.String() == "backspace":
		if c.typed != "" {
			c.typed = c.typed[:len(c.typed)-1]
		}
	case c.needType && len(k.Text) == 1 && k.Text[0] >= '0' && k.Text[0] <= '9':
		if len(c.typed) < 9 {
			c.typed += k.Text
		}
	}
	return nil
}

// launch runs a in the background. Results come back through a channel read
// by a Cmd that is re-armed after each message, so the fleet never calls
// into the program.
func (m *Model) launch(a fleet.Action, run []*fleet.Guest, skipped []fleet.Result, via *userVia) tea.Cmd {
	m.runSeq++
	id := m.runSeq
	names := make([]string, len(run))
	m.markSkipped(skipped)
	m.marksUntil = time.Time{} // until it ends
	for i, g := range run {
		names[i] = g.Name
		m.rowStatus[g.Name] = rowRunning
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop, stopWith := context.WithCancelCause(ctx)
	m.run = &runState{id: id, action: a, total: len(run), started: m.now(), skipped: skipped, cancel: cancel, stop: stopWith}
	m.setStatus(fmt.Sprintf("%s on %s… (%s stops it: no more are started, the calls sent finish)",
		actionString(a), present.Plural(len(run), "guest"), m.keys.Stop.Help().Key), false)

	// Room for a progress call per guest plus the final result, so the
	// fleet's workers never wait on the screen.
	ch := make(chan tea.Msg, len(run)+1)
	src := m.src
	rec := m.auditAction(a, run, skipped)
	if via != nil && rec.log != nil {
		rec.entry.Command = via.auditCommand()
	}
	go func() {
		defer cancel()
		// The intent is on record before anything is sent, or nothing is.
		if err := rec.intent(); err != nil {
			ch <- actionDoneMsg{id: id, results: refusedResults(names, err), refused: err}
			return
		}
		results := src.RunUntil(ctx, stop, a, names, func(r fleet.Result) {
			select {
			case ch <- actionMsg{id: id, res: r}:
			default: // more progress calls than guests: the final result still carries it
			}
		})
		ch <- actionDoneMsg{id: id, results: results,
			auditErr: rec.outcome(append(slices.Clone(skipped), results...), operatorStop(stop, countNotStarted(results)))}
	}()
	return tea.Batch(waitAction(ch), m.spin.Tick)
}

// waitAction delivers the next message of an action; actionDone ends the chain.
func waitAction(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg := <-ch
		if am, ok := msg.(actionMsg); ok {
			am.next = waitAction(ch)
			return am
		}
		return msg
	}
}

// operatorStop is the audit record of the operator's stop, nil when the
// run was not stopped by the stop key (it ran to its end, or quitting cut
// it).
func operatorStop(stop context.Context, notStarted int) *audit.Stop {
	var c stopCause
	if !errors.As(context.Cause(stop), &c) {
		return nil
	}
	return &audit.Stop{At: c.at, By: audit.StoppedByOperator, NotStarted: notStarted}
}

func (m *Model) actionProgress(msg actionMsg) {
	r := m.run
	if r == nil || msg.id != r.id {
		return
	}
	if st, ok := m.rowStatus[msg.res.Guest]; ok && st == rowRunning {
		r.done++
		if msg.res.NotStarted {
			r.notStarted++
		}
	}
	m.rowStatus[msg.res.Guest] = resultStatus(msg.res)
	if r.stopping {
		m.setStatus(m.stoppingText(), false)
	}
}

// stopAction stops the running action (the stop key): the guests not yet
// started are not started, and the calls already sent finish and report
// their real results. Cutting those (what quitting does) would leave a
// freeze's or a shutdown's outcome unknown, so a second press only says
// that it is stopping already.
func (m *Model) stopAction() tea.Cmd {
	r := m.run
	switch {
	case r == nil && m.ex.pane != nil && m.ex.pane.running:
		m.setStatus("no action is running; "+m.keys.Stop.Help().Key+" in the program's pane stops its run (! shows it)", false)
	case r == nil:
		m.setStatus("no action is running: nothing to stop", false)
	case r.stopping:
		m.setStatus("already "+m.stoppingText()+"; the calls sent are not cut", false)
	default:
		r.stopping = true
		r.stop(stopCause{at: m.now()})
		m.setStatus(m.stoppingText(), false)
	}
	return nil
}

// stopReaches reports whether the stop key acts on layer l: the table and
// the screens an operator watches a run from, which take no typed text, so
// a stop key rebound to a letter is never a letter of a filter or command;
// not a dialog, whose keys are its answers, nor the file browser or the
// exec pane, which have keys of their own.
func stopReaches(l layerKind) bool {
	switch l {
	case layerTable, layerHelp, layerEvents, layerEntry, layerDetail, layerHosts, layerPulse, layerAudit:
		return true
	}
	return false
}

// stoppingText is the status of a run being stopped. The fleet reports the
// guests it will not start at once, as the stop reaches it; until then the
// count of those still answering is not known yet.
func (m *Model) stoppingText() string {
	r := m.run
	desc := actionString(r.action)
	if r.notStarted == 0 {
		return fmt.Sprintf("stopping %s: no more guests are started; waiting for the calls sent…", desc)
	}
	return fmt.Sprintf("stopping %s: %s still answering… (%d not started: nothing is sent to them)",
		desc, present.Plural(r.total-r.done, "guest"), r.notStarted)
}

func resultStatus(r fleet.Result) rowStatus {
	switch {
	case r.NotStarted:
		return rowNotStarted
	case r.Skipped:
		return rowSkipped
	case r.OK:
		return rowOK
	}
	return rowFailed
}

func (m *Model) actionDone(msg actionDoneMsg) tea.Cmd {
	if m.run == nil || msg.id != m.run.id {
		return nil
	}
	r := m.run
	m.run = nil
	// The fleet published every guest's new state before it reported the
	// guest: pulled now, the rows agree with the final status instead of
	// catching up at the next paced pull (refreshGap). Once an action.
	m.refresh()
	all := append(append([]fleet.Result{}, r.skipped...), msg.results...)
	for _, res := range msg.results {
		m.rowStatus[res.Guest] = resultStatus(res)
	}
	m.marksUntil = m.now().Add(resultMarkTTL)
	m.addEvent(event{at: r.started, action: r.action, results: all, took: m.now().Sub(r.started), stopped: r.stopping})
	where := "(e: event log)"
	clear(r.action.Users.Secret) // a password is needed no longer than the run
	if r.action.ListsData() {
		// What was read is the point: show it, but never over a prompt or
		// dialog the operator is answering (see layer).
		m.resetEventLog()
		if !m.queue(layer{kind: layerEvents}) {
			where = "(in the event log, shown when you close this)"
		}
	}
	ok, failed, skipped := tally(all)
	switch {
	case msg.refused != nil:
		m.setStatus(fmt.Sprintf("%s refused: %v; nothing was sent", actionString(r.action), msg.refused), true)
	case r.stopping:
		s := m.stoppedText(r.action, all)
		if msg.auditErr != nil {
			s += fmt.Sprintf("; the outcome is not in the audit log: %v", msg.auditErr)
		}
		m.setStatus(s+" "+where, failed > 0 || msg.auditErr != nil)
	case msg.auditErr != nil:
		m.setStatus(fmt.Sprintf("%s: %d ok, %d failed, %d skipped; the outcome is not in the audit log: %v",
			actionString(r.action), ok, failed, skipped, msg.auditErr), true)
	case r.action.Kind == fleet.ActInfo && failed == 0 && skipped == 0:
		// r (and :info) re-reads what the table shows: say so, not "info: 1 ok".
		m.setStatus("refreshed "+present.Plural(ok, "guest"), false)
	case r.action.Kind == fleet.ActInfo:
		m.setStatus(fmt.Sprintf("refreshed %s; %d failed, %d skipped %s", present.Plural(ok, "guest"), failed, skipped, where), failed > 0)
	default:
		m.setStatus(fmt.Sprintf("%s: %d ok, %d failed, %d skipped %s", actionString(r.action), ok, failed, skipped, where), failed > 0)
	}
	return nil
}

// stoppedText is the final status of a run the operator stopped: what was
// done, what was not started, and for a freeze how many of its guests are
// frozen now (they stay so, under the watchdog's thaw, as after any
// freeze: an operator who stopped a freeze must not be surprised by them).
func (m *Model) stoppedText(a fleet.Action, all []fleet.Result) string {
	s := actionString(a) + " stopped: "
	if a.Kind == fleet.ActFreeze {
		s += m.frozenNow(all) + "; "
	}
	s += outcomeText(all)
	if countNotStarted(all) == 0 {
		s += " (every guest had started before the stop)"
	} else {
		s += " (nothing was sent to those not started)"
	}
	return s
}

// frozenNow says how many of the results' guests guestdeck holds frozen
// now, and when the first of its watchdogs thaws them.
func (m *Model) frozenNow(all []fleet.Result) string {
	in := make(map[string]bool, len(all))
	var first time.Time
	for _, r := range all {
		in[r.Guest] = true
		if !r.ThawAt.IsZero() && (first.IsZero() || r.ThawAt.Before(first)) {
			first = r.ThawAt
		}
	}
	n := 0
	for _, g := range m.src.FrozenByUs() {
		if in[g] {
			n++
		}
	}
	s := present.Plural(n, "guest") + " frozen now"
	switch {
	case n == 0:
	case first.IsZero():
		s += fmt.Sprintf(" (%s thaws them)", m.keys.Thaw.Help().Key)
	default:
		s += fmt.Sprintf(" (automatic thaw from %s; %s thaws them now)", first.Format("15:04:05"), m.keys.Thaw.Help().Key)
	}
	return s
}

// outcomeText counts results in words: "3 ok, 1 failed, 0 skipped", and
// ", 36 not started" when some were not.
func outcomeText(rs []fleet.Result) string {
	ok, failed, skipped := tally(rs)
	s := fmt.Sprintf("%d ok, %d failed, %d skipped", ok, failed, skipped)
	if n := countNotStarted(rs); n > 0 {
		s += fmt.Sprintf(", %d not started", n)
	}
	return s
}

func countNotStarted(rs []fleet.Result) int {
	n := 0
	for _, r := range rs {
		if r.NotStarted {
			n++
		}
	}
	return n
}

// tally counts the results that ran; one not started (countNotStarted)
// is none of ok, failed or skipped.
func tally(rs []fleet.Result) (ok, failed, skipped int) {
	for _, r := range rs {
		switch {
		case r.NotStarted:
		case r.Skipped:
			skipped++
		case r.OK:
			ok++
		default:
			failed++
		}
	}
	return
}

func (m *Model) addEvent(e event) {
	e.lines = eventLineCount(e)
	e.nameW = eventNameCells(e.results)
	for _, r := range e.results {
		e.timed = e.timed || resultTook(r) != ""
	}
	if m.isOpen(layerEvents) && m.eventSel > 0 {
		// Newest first: keep the selection on the line it was on.
		m.eventSel += e.lines
		m.eventScroll += e.lines
	}
	m.events = append([]event{e}, m.events...)
	if len(m.events) > maxEvents {
		m.events = m.events[:maxEvents]
	}
}

// nameCells cuts a guest's name in dialogs and lists.
const nameCells = 48

// guestList names the first n of total guests: "a, b, c and 7 more".
// names needs only the first n+1, escaped (present.Text).
func guestList(names []string, total, n int) string {
	if total <= n && len(names) >= total {
		return strings.Join(names[:total], ", ")
	}
	n = min(n, len(names))
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", total-n)
}

// takeNotices moves the snapshot's notices not seen yet into the event log.
func (m *Model) takeNotices() {
	for _, n := range m.snap.Notices {
		if n.Seq <= m.noticeSeq {
			continue
		}
		m.noticeSeq = n.Seq
		m.addEvent(event{at: n.At, note: &n})
	}
}
