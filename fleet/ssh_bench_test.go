package fleet_test

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet/discovery"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// BenchmarkAgentDial: one agent session (dial, sync, guest-ping, close) to
// a real qemu-ga, directly on its unix socket and forwarded over an
// established ssh connection to the loopback sshd (ssh: a session each
// time; ssh-held: pings on one session). The difference is what an ssh://
// guest costs per connection and per call.
func BenchmarkAgentDial(b *testing.B) {
	sd := testpeers.StartSSHD(b)
	ag := testpeers.StartAgents(b, 1)
	ctx := context.Background()
	b.Run("unix", func(b *testing.B) {
		for b.Loop() {
			c, err := agentclient.Dial(ctx, ag.Addrs()[0])
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Ping(ctx); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("ssh", func(b *testing.B) {
		h := sshHost(b, sd, "", nil, nil)
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		up := make(chan error, 1)
		go h.Run(runCtx, nopSink{}, func(err error) { up <- err })
		if err := <-up; err != nil {
			b.Fatal(err)
		}
		addr := sd.URL(ag.Sockets[0])
		for b.Loop() {
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			a, err := h.Dial(dctx, addr, false)
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Ping(dctx); err != nil {
				b.Fatal(err)
			}
			a.Close()
			dcancel()
		}
	})
	// An established session: what one poll's call costs over ssh.
	b.Run("ssh-held", func(b *testing.B) {
		h := sshHost(b, sd, "", nil, nil)
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		up := make(chan error, 1)
		go h.Run(runCtx, nopSink{}, func(err error) { up <- err })
		if err := <-up; err != nil {
			b.Fatal(err)
		}
		a, err := h.Dial(ctx, sd.URL(ag.Sockets[0]), false)
		if err != nil {
			b.Fatal(err)
		}
		defer a.Close()
		for b.Loop() {
			if err := a.Ping(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// nopSink: a source run on its own, outside a fleet.
type nopSink struct{}

func (nopSink) Claim(ts []discovery.Target) []discovery.Target  { return ts }
func (nopSink) Remove(...string)                                {}
func (nopSink) MarkGone(string, string)                         {}
func (nopSink) SetDomain(string, discovery.DomainState, string) {}
func (nopSink) Poke(string)                                     {}
func (nopSink) SourceChanged()                                  {}

// BenchmarkSSHIdleSessions reports the client memory an idle ssh:// agent
// session holds (heap per session: the channel, the pipe bridge and its
// buffers, the stream), with 200 sessions open to a unix listener that
// accepts and waits.
func BenchmarkSSHIdleSessions(b *testing.B) {
	sd := testpeers.StartSSHD(b)
	dir := b.TempDir()
	sock := filepath.Join(dir, "idle.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	h := sshHost(b, sd, "", nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up := make(chan error, 1)
	go h.Run(ctx, nopSink{}, func(err error) { up <- err })
	if err := <-up; err != nil {
		b.Fatal(err)
	}
	const n = 200
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		var open []agentclient.Agent
		for range n {
			a, err := h.Dial(ctx, sd.URL(sock), false)
			if err != nil {
				b.Fatal(err)
			}
			open = append(open, a)
		}
		// The bridges' pumps allocate their buffers once they run.
		for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() < g0+2*n && time.Now().Before(deadline); {
			runtime.Gosched()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/session")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/session")
		for _, a := range open {
			a.Close()
		}
	}
}
