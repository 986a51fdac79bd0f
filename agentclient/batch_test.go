package agentclient_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// A batch gets each command its own reply, with or without id echoing; a
// refusal fails only its command; the log hook sees every command.
func TestBatch(t *testing.T) {
	for _, echo := range []bool{true, false} {
		t.Run(fmt.Sprintf("echo-id=%v", echo), func(t *testing.T) {
			addr := serveAgent(t, echo, func(c *agentConn, req *wireRequest) bool {
				switch req.Execute {
				case "guest-get-time":
					c.reply(req, "111")
				case "guest-get-host-name":
					c.reply(req, `{"host-name":"right"}`)
				default:
					c.raw(req, `"error":{"class":"CommandNotFound","desc":"Command `+req.Execute+` has been disabled"}`)
				}
				return true
			})
			var mu sync.Mutex
			var logged []string
			c := dialT(t, addr, agentclient.WithLog(func(r agentclient.LogRecord) {
				mu.Lock()
				logged = append(logged, r.Command)
				mu.Unlock()
			}))
			st := c.Transport().(*agentclient.Stream)
			for round := range 2 {
				var ns int64
				var host struct {
					HostName string `json:"host-name"`
				}
				calls := []agentclient.BatchCall{
					{Name: "guest-get-time", Out: &ns},
					{Name: "guest-get-vcpus"},
					{Name: "guest-get-host-name", Out: &host},
				}
				st.Batch(ctxFor(t, 5*time.Second), calls)
				if calls[0].Err != nil || ns != 111 || calls[0].Duration <= 0 {
					t.Errorf("round %d: time = %d, %v", round, ns, calls[0].Err)
				}
				if !agentclient.IsDisabled(calls[1].Err) {
					t.Errorf("round %d: vcpus: %v, want disabled", round, calls[1].Err)
				}
				if calls[2].Err != nil || host.HostName != "right" {
					t.Errorf("round %d: hostname = %q, %v", round, host.HostName, calls[2].Err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(logged) != 6 {
				t.Errorf("logged %v, want every command of both batches", logged)
			}
		})
	}
}

// A batch that times out part-way fails the rest; the late replies never
// reach a later call. The bound is its context's deadline, or BatchWithin's
// own duration under a context without one (for an agent that echoes no
// ids too, whose batch goes one command at a time).
func TestBatchTimeout(t *testing.T) {
	const bound = 100 * time.Millisecond
	for _, tc := range []struct {
		name string
		echo bool
		run  func(st *agentclient.Stream, calls []agentclient.BatchCall)
	}{
		{"context", true, func(st *agentclient.Stream, calls []agentclient.BatchCall) {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			st.Batch(ctx, calls)
		}},
		{"within", true, func(st *agentclient.Stream, calls []agentclient.BatchCall) {
			st.BatchWithin(context.Background(), bound, calls)
		}},
		{"within/no-echo", false, func(st *agentclient.Stream, calls []agentclient.BatchCall) {
			st.BatchWithin(context.Background(), bound, calls)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Pipelined (echo), the timed-out batch's own host-name went
			// out with it and is answered late, and "stale": a later call
			// handed it would say so. One at a time, it is never sent.
			var hostnames atomic.Int32
			addr := serveAgent(t, tc.echo, func(c *agentConn, req *wireRequest) bool {
				switch req.Execute {
				case "guest-get-vcpus":
					time.Sleep(3 * bound)
					c.reply(req, `[{"logical-id":0,"online":true}]`)
				case "guest-get-host-name":
					if tc.echo && hostnames.Add(1) == 1 {
						c.reply(req, `{"host-name":"stale"}`)
					} else {
						c.reply(req, `{"host-name":"right"}`)
					}
				default:
					c.reply(req, "{}")
				}
				return true
			})
			c := dialT(t, addr)
			st := c.Transport().(*agentclient.Stream)
			calls := []agentclient.BatchCall{{Name: "guest-ping"}, {Name: "guest-get-vcpus"}, {Name: "guest-get-host-name"}}
			start := time.Now()
			tc.run(st, calls)
			within(t, start, bound)
			if calls[0].Err != nil || !agentclient.IsTimeout(calls[1].Err) || !agentclient.IsTimeout(calls[2].Err) {
				t.Fatalf("errors %v / %v / %v, want ok, timeout, timeout", calls[0].Err, calls[1].Err, calls[2].Err)
			}
			for i := range 3 {
				h, err := c.Hostname(ctxFor(t, 5*time.Second))
				if err != nil || h != "right" {
					t.Fatalf("call %d after the timed-out batch = %q, %v", i, h, err)
				}
			}
		})
	}
}

// A stream that watches a context (Watch) cuts a batch under it, or under
// a context sharing its Done, as soon as the context ends; a context it no
// longer watches ends nothing; and a watched batch registers no watch of
// its own.
func TestWatch(t *testing.T) {
	hung := make(chan struct{}, 4) // a guest-get-vcpus arrived and hangs
	addr := serveAgent(t, true, func(c *agentConn, req *wireRequest) bool {
		if req.Execute == "guest-get-vcpus" {
			hung <- struct{}{}
			<-ctxDone(t)
			return false
		}
		c.reply(req, "{}")
		return true
	})
	dial := func() *agentclient.Stream {
		return dialT(t, addr).Transport().(*agentclient.Stream)
	}
	const long = 20 * time.Second

	t.Run("cancel", func(t *testing.T) {
		type key struct{}
		for _, name := range []string{"same", "child-value"} {
			t.Run(name, func(t *testing.T) {
				st := dial()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				st.Watch(ctx)
				under := ctx
				if name == "child-value" {
					under = context.WithValue(ctx, key{}, 1) // the same Done
				}
				ok := []agentclient.BatchCall{{Name: "guest-ping"}, {Name: "guest-info"}}
				st.BatchWithin(under, long, ok)
				if ok[0].Err != nil || ok[1].Err != nil {
					t.Fatalf("watched batch: %v / %v", ok[0].Err, ok[1].Err)
				}
				go func() { <-hung; cancel() }()
				calls := []agentclient.BatchCall{{Name: "guest-get-vcpus"}, {Name: "guest-ping"}}
				start := time.Now()
				st.BatchWithin(under, long, calls)
				within(t, start, 0)
				for _, c := range calls {
					if !errors.Is(c.Err, context.Canceled) || agentclient.IsTimeout(c.Err) {
						t.Fatalf("%s: %v, want context.Canceled", c.Name, c.Err)
					}
				}
				// Ended already: the next batch fails at once.
				again := []agentclient.BatchCall{{Name: "guest-ping"}, {Name: "guest-info"}}
				st.BatchWithin(under, long, again)
				if !errors.Is(again[0].Err, context.Canceled) {
					t.Errorf("after the cancellation: %v, want context.Canceled", again[0].Err)
				}
			})
		}
	})

	t.Run("replaced", func(t *testing.T) {
		st := dial()
		old, cancelOld := context.WithCancel(context.Background())
		defer cancelOld()
		st.Watch(old)
		cur, cancelCur := context.WithCancel(context.Background())
		defer cancelCur()
		st.Watch(cur)
		go func() { <-hung; cancelOld() }()
		const bound = 300 * time.Millisecond
		calls := []agentclient.BatchCall{{Name: "guest-ping"}, {Name: "guest-get-vcpus"}}
		st.BatchWithin(cur, bound, calls)
		if !agentclient.IsTimeout(calls[1].Err) {
			t.Fatalf("under the watched context, the old one cancelled: %v, want a timeout", calls[1].Err)
		}
	})

	// Watch with another context while a batch armed by the watch is in
	// flight (another caller's): the batch still ends when its own
	// context does, not at its deadline.
	t.Run("replaced-mid-call", func(t *testing.T) {
		st := dial()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st.Watch(ctx)
		other, cancelOther := context.WithCancel(context.Background())
		defer cancelOther()
		go func() { <-hung; st.Watch(other); cancel() }()
		calls := []agentclient.BatchCall{{Name: "guest-ping"}, {Name: "guest-get-vcpus"}}
		start := time.Now()
		st.BatchWithin(ctx, long, calls)
		within(t, start, 0)
		if !errors.Is(calls[1].Err, context.Canceled) {
			t.Fatalf("%s: %v, want context.Canceled", calls[1].Name, calls[1].Err)
		}
	})

	t.Run("allocations", func(t *testing.T) {
		st := dial()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := make([]agentclient.BatchCall, 2)
		run := func() {
			calls[0], calls[1] = agentclient.BatchCall{Name: "guest-ping"}, agentclient.BatchCall{Name: "guest-info"}
			st.BatchWithin(ctx, long, calls)
			if calls[0].Err != nil || calls[1].Err != nil {
				t.Fatalf("batch: %v / %v", calls[0].Err, calls[1].Err)
			}
		}
		// The fewest of three counts each: AllocsPerRun counts the whole
		// process, the in-process simulator too, and a stray allocation
		// there (under -race on a loaded machine) moved one count by one.
		fewest := func() float64 {
			return min(testing.AllocsPerRun(50, run), testing.AllocsPerRun(50, run), testing.AllocsPerRun(50, run))
		}
		unwatched := fewest()
		st.Watch(ctx)
		watched := fewest()
		if watched > unwatched-2 {
			t.Errorf("a batch allocates %.0f times watched, %.0f unwatched: want its own watch (an AfterFunc) gone", watched, unwatched)
		}
	})
}
