package agentclient

import (
	"fmt"
	"sync/atomic"
)

// Budget bounds the bytes that replies being read may hold, summed over
// every stream it is given to (WithBudget): a byte semaphore. Each stream
// reads into a small buffer of its own (WithReadBuffer) that costs nothing
// here; a reply line longer than that is assembled in a line buffer, and the
// line buffer's bytes beyond the read buffer's size are charged while the
// line is assembled and until the call has consumed it. A stream that cannot
// charge what its line needs fails the call at once with a *BudgetError
// (ErrBudget) instead of waiting or growing: memory stays bounded whatever
// many guests send at once, and the caller retries later.
//
// The budget must exceed the largest single reply a caller needs (a file
// read's chunk in base64, about 1.4 MB for the default 1 MiB chunk).
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit is the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// InUse is the bytes charged now.
func (b *Budget) InUse() int64 { return b.used.Load() }

// tryAcquire charges n bytes if they fit.
func (b *Budget) tryAcquire(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *Budget) release(n int64) { b.used.Add(-n) }

// BudgetError is a call that failed because the shared reply budget could
// not hold its reply. It matches ErrBudget.
type BudgetError struct {
	Command string
	Need    int64 // bytes the line buffer had to grow by
	InUse   int64 // bytes charged by all streams when it failed
	Limit   int64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("%v: the reply to %s needed %s more while %s of the %s shared by all guests hold replies in flight; try again later",
		ErrBudget, e.Command, sizeText(e.Need), sizeText(e.InUse), sizeText(e.Limit))
}

func (e *BudgetError) Is(target error) bool { return target == ErrBudget }
