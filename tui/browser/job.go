package browser

import (
	"context"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
)

type jobKind int

const (
	jobDownload jobKind = iota
	jobUpload
)

type jobResult struct {
	n             int64
	local, remote string
	err           error
}

type (
	// jobProgressMsg is the latest progress of job id (older ones coalesced).
	jobProgressMsg struct {
		id          int
		done, total int64
	}
	jobDoneMsg struct {
		id  int
		res jobResult
	}
)

// job is one transfer running in its own goroutine. The worker records the
// latest progress and its result; wait (a tea.Cmd, re-armed after every
// progress message) hands them to the model. Progress is coalesced, so a
// slow screen never slows the transfer, and it is always delivered before
// the result.
type job struct {
	id      int
	kind    jobKind
	title   string
	started time.Time
	cancel  context.CancelFunc
	// cancelled is set when the user cancelled (the result is on its way).
	cancelled bool

	// Model side: what the bar shows.
	doneBytes, total int64

	notify chan struct{} // 1-buffered: something new below
	mu     sync.Mutex
	prog   *jobProgressMsg // undelivered progress
	res    *jobResult      // set once, when the worker ends
}

func (j *job) signal() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

func (j *job) progress(done, total int64) {
	j.mu.Lock()
	j.prog = &jobProgressMsg{id: j.id, done: done, total: total}
	j.mu.Unlock()
	j.signal()
}

func (j *job) finish(r jobResult) {
	j.mu.Lock()
	j.res = &r
	j.mu.Unlock()
	j.signal()
}

// wait blocks until the job has news. The worker always finishes (its
// context has a deadline), so wait always returns.
func (j *job) wait() tea.Msg {
	for range j.notify {
		j.mu.Lock()
		p, r := j.prog, j.res
		j.prog = nil
		j.mu.Unlock()
		switch {
		case p != nil:
			if r != nil {
				j.signal() // the result is next
			}
			return *p
		case r != nil:
			return jobDoneMsg{id: j.id, res: *r}
		}
	}
	return nil
}

// startJob starts work as the model's one job and returns the Cmd that
// launches it and waits for its first message. before runs now (it records
// what a later retry needs).
func (m *Model) startJob(kind jobKind, title string, total int64, work func(ctx context.Context, progress func(done, total int64)) jobResult, before func()) tea.Cmd {
	if before != nil {
		before()
	}
	m.jobSeq++
	ctx, cancel := context.WithTimeout(m.life, m.opts.TransferTimeout)
	j := &job{
		id: m.jobSeq, kind: kind, title: title, started: m.opts.Now(), cancel: cancel,
		total: max(total, 0), notify: make(chan struct{}, 1),
	}
	m.job = j
	m.setMsg("", msgInfo)
	return func() tea.Msg {
		go func() {
			defer cancel()
			j.finish(work(ctx, j.progress))
		}()
		return j.wait()
	}
}

// cancelJob cancels the running transfer; its result (cancelled) still
// arrives and ends it.
func (m *Model) cancelJob() {
	if m.job != nil {
		m.job.cancel()
		m.job.cancelled = true
	}
}
