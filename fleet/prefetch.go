package fleet

import (
	"context"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// A fresh connection's first poll, and a slow refresh, in one round trip.
//
// On a fresh connection a poll asks guest-info first, and its answer
// decides the rest (execute): then the live items in one batch, and the
// slow items in another. That is three round trips after the resync, and
// at 10,000 guests (a launch, status --json) each costs both sides a write,
// reads and wake-ups. Every command a first poll may ask only reads, so
// they can go out before guest-info has answered: prefetchPoll sends, in
// one batch, guest-info and what the poll's steps would ask if guest-info
// allowed everything, and keeps the replies undecoded (RawReply). The
// steps then run as ever, deciding each command from the answers before
// it. A command they ask that was prefetched takes its kept reply, decoded
// only then; one they do not ask is dropped; one not prefetched is sent.
// What a poll asks and shows is the steps' alone: the prefetch changes only
// how many round trips they take (and sends, to an agent that has some
// disabled, the commands its guest-info would have ruled out: it refuses
// them, and nothing reads the refusals).
//
// A slow refresh over a kept connection (every SlowInterval, or `r`) is
// the same poll: guest-info, then the live items with the metrics, then
// the slow items, three round trips where a steady poll takes one. It is
// prefetched too, but only what the capabilities shown allow: the agent
// is the one that answered the last poll (a connection kept since), so
// what it refused then it refuses now; a command its new guest-info
// enables is asked by its step, one round trip more. At 10,000 guests the
// three round trips and guest-info's own decoding were a seventh of a
// minute's CPU, in one interval out of twelve.
type prefetch struct {
	st    *agentclient.Stream
	n     int
	calls [maxPrefetch]agentclient.BatchCall
	raws  [maxPrefetch]agentclient.RawReply
	taken [maxPrefetch]bool

	// The memo (memo.go): the session, the Guest shown when the poll
	// began, and the hashes of the memoised replies decoded (summed: a
	// bit per memoed command).
	s      *session
	g      *Guest
	sums   [len(memoed)]uint64
	summed uint8
}

// maxPrefetch bounds a prefetch: three live items, guest-info, five
// metrics commands, five slow items.
const maxPrefetch = 14

// prefetchKeep bounds each reply a prefetch keeps: kept, a reply is held
// outside the fleet's reply budget (which charges it only while it is
// read) until the poll ends, and a guest answering all of them at their
// limits held some 30 MiB so. A longer one is asked again by its step, and
// read under the budget as any other; a plausible guest's fit.
const prefetchKeep = 64 << 10

// prefetches pools the prefetches, with the room their replies were kept
// in: kept, each reply is a copy (RawReply), and a slow refresh of 10,000
// guests over kept connections copied some 150 MB in one interval (a
// garbage collection of its own).
var prefetches = sync.Pool{New: func() any { return new(prefetch) }}

// maxPooledRaw bounds the room a pooled prefetch keeps per reply: qemu-ga's
// guest-info, its longest, is some 4 KB; a longer reply's room is
// dropped, not kept for every guest after it.
const maxPooledRaw = 8 << 10

// getPrefetch is an empty prefetch on st, from the pool.
func getPrefetch(st *agentclient.Stream) *prefetch {
	p := prefetches.Get().(*prefetch)
	p.st = st
	return p
}

// release empties p and gives it back: the poll is over, and what its
// steps decoded holds nothing of the kept replies (the decoders copy).
func (p *prefetch) release() {
	p.reset()
	prefetches.Put(p)
}

// reset empties p, keeping the room of its replies up to maxPooledRaw each.
func (p *prefetch) reset() {
	for i := range p.raws[:p.n] {
		ret := p.raws[i].Ret[:0]
		if cap(ret) > maxPooledRaw {
			ret = nil
		}
		p.raws[i] = agentclient.RawReply{Ret: ret}
		p.calls[i] = agentclient.BatchCall{}
		p.taken[i] = false
	}
	p.st, p.n, p.s, p.g, p.summed = nil, 0, nil, nil, 0
}

func (p *prefetch) add(name string) {
	if p.n < maxPrefetch {
		p.raws[p.n].Max = prefetchKeep
		p.calls[p.n] = agentclient.BatchCall{Name: name, Out: &p.raws[p.n]}
		p.n++
	}
}

// take answers name from the prefetch, decoded into out, once: ok is false
// when it was not prefetched (or taken before, or its reply was too long
// to keep).
func (p *prefetch) take(name string, out any) (bc *agentclient.BatchCall, err error, ok bool) {
	for i := range p.n {
		if p.calls[i].Name != name || p.taken[i] {
			continue
		}
		p.taken[i] = true
		if p.raws[i].Over {
			return nil, nil, false // not kept: the step asks it
		}
		bc = &p.calls[i]
		if bc.Err != nil {
			return bc, bc.Err, true
		}
		if p.s != nil && p.s.memoTake(p, name, p.raws[i].Ret, out) {
			return bc, nil, true // as the value shown came from
		}
		err = p.st.DecodeRaw(name, &p.raws[i], out)
		if err != nil {
			p.summed &^= memoBit(name) // its value is not this text's
		}
		return bc, err, true
	}
	return nil, nil, false
}

// serve answers what it can of a batch of the poll's steps, and returns
// the indexes of the calls it could not (nil: it answered every one).
func (p *prefetch) serve(calls []agentclient.BatchCall) (missing []int) {
	for i := range calls {
		c := &calls[i]
		bc, err, ok := p.take(c.Name, c.Out)
		if !ok {
			missing = append(missing, i)
			continue
		}
		c.Err, c.Sent, c.Duration = err, bc.Sent, bc.Duration
	}
	return missing
}

// prefetchPoll sends a fresh connection's first poll, or (fresh false) a
// slow refresh over a kept connection (see prefetch), and keeps the
// replies in s.pre for the poll's steps. Only for a stream that logs its
// own calls (the command log shows each command as sent) and a guest not
// known frozen (its poll asks the freeze state first). Holds sem; r is set
// up for the poll (gather).
func (s *session) prefetchPoll(ctx context.Context, g *Guest, r *pollResult, fresh bool) {
	a := s.agent
	if a == nil || !a.hooked || r.frozen || s.f.noPrefetch {
		return
	}
	st := a.stream()
	if st == nil {
		return
	}
	p := getPrefetch(st)
	p.s, p.g = s, g
	add := func(name string) {
		// Over a kept connection, what the capabilities shown allow
		// (guest-info itself always: it is the one that re-reads them).
		if !s.skip[name] && (fresh || name == "guest-info" || s.usable(g, r, name)) {
			p.add(name)
		}
	}
	// The time first, as in the live batch: its reply times a round trip
	// and corrects the skew (pollLive), and behind guest-info it counted
	// guest-info's time too.
	add("guest-get-time")
	add("guest-info")
	add("guest-network-get-interfaces")
	add("guest-get-vcpus")
	slow := !r.capsOnly // as readCaps sets r.slow
	if r.look {
		add(lookCommand) // rides with the live batch (pollLive)
	} else {
		if s.metricsDueAt(r, time.Now(), slow) {
			if !s.f.opts.NoCounters {
				add(cmdCPUStats)
				add(cmdDiskStats)
			}
			add(cmdLoad)
			if slow {
				add(cmdDisks)
				if !s.f.opts.NoRoutes {
					add(cmdRoutes)
				}
			}
		}
		if slow {
			for _, name := range slowCommands {
				if r.looks(name) {
					add(name)
				}
			}
		}
	}
	a.batch(ctx, st, p.calls[:p.n], p.n)
	s.pre = p
}
