package agentclient_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// The one-client rule, run the same against the real qemu-ga on this machine
// (-m unix-listen, as qga-host.sh runs it), the real QEMU virtio-serial
// chardev of the test VM, and the simulator on a sim.Listen socket: the
// simulator must show clients exactly what the real ends show them.
func TestOneClientRule(t *testing.T) {
	peers := []struct {
		name  string
		start func(t *testing.T) (sock string, stop func(bool))
	}{
		{"sim", func(t *testing.T) (string, func(bool)) {
			dir, err := os.MkdirTemp("/tmp", "gdch")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			sock := filepath.Join(dir, "g.sock")
			l, err := sim.Listen(sock)
			if err != nil {
				t.Fatal(err)
			}
			g := sim.New(sim.DefaultConfig("one"))
			go g.Serve(l)
			t.Cleanup(func() { g.Close() })
			return sock, nil
		}},
		{"qemu-ga", func(t *testing.T) (string, func(bool)) {
			ag := testpeers.StartAgents(t, 1)
			return ag.Sockets[0], signaller(ag.PIDs[0])
		}},
		{"qemu-chardev", func(t *testing.T) (string, func(bool)) {
			vm := testpeers.BootVM(t, "gd-chan")
			return vm.Socket, signaller(vm.PID)
		}},
	}
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			sock, stop := p.start(t)
			checkOneClient(t, sock)
			if stop != nil {
				checkNotAccepting(t, sock, stop)
			}
		})
	}
}

// signaller stops (SIGSTOP) and resumes (SIGCONT) a process this test
// started.
func signaller(pid int) func(bool) {
	return func(on bool) {
		sig := syscall.SIGCONT
		if on {
			sig = syscall.SIGSTOP
		}
		_ = syscall.Kill(pid, sig)
	}
}

func checkOneClient(t *testing.T, sock string) {
	addr := "unix:" + sock
	holder := dialT(t, addr)
	if err := holder.Ping(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("holder: %v", err)
	}

	// Queued behind the holder: connect succeeds, the sync is never
	// answered, and the kernel says the connection was never accepted.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := agentclient.DialStream(ctx, addr)
	cancel()
	if !agentclient.IsChannelHeld(err) || agentclient.IsSilent(err) || agentclient.IsTimeout(err) {
		t.Fatalf("dial behind a holder: %v; want ErrChannelHeld, not silent nor a timeout", err)
	}
	if !strings.Contains(err.Error(), "another client holds the channel") || !strings.Contains(err.Error(), "waited") {
		t.Errorf("dial behind a holder says %q", err)
	}

	// The closed connection above still takes a place in the queue until
	// the agent gets to it: with one more waiting, the queue (backlog 1:
	// two places) is full.
	q, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("second waiting client: %v", err)
	}
	defer q.Close()
	if _, err := q.Write([]byte(`{"execute":"guest-sync","arguments":{"id":11}}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("unix", sock); !errors.Is(err, syscall.EAGAIN) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("third waiting client: %v, want EAGAIN", err)
	}
	_, err = agentclient.DialStream(ctxFor(t, 5*time.Second), addr)
	if !agentclient.IsChannelHeld(err) || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("dial with the queue full: %v; want ErrChannelHeld (EAGAIN)", err)
	}

	// The holder lets go: the waiting client is served, with what it sent.
	// Through QEMU's chardev the guest's agent reads one byte stream for
	// every host client in turn, so replies to the closed connection ahead
	// in the queue (the parse error for its 0xFF, its sync) may arrive
	// here first: what guest-sync-delimited on connect is for.
	holder.Close()
	q.SetReadDeadline(time.Now().Add(30 * time.Second))
	rd := bufio.NewReader(q)
	var got []string
	for len(got) < 4 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting client after the holder left: %v after %q", err, got)
		}
		got = append(got, line)
		if strings.Contains(line, `"return": 11`) {
			break
		}
	}
	if !strings.Contains(got[len(got)-1], `"return": 11`) {
		t.Fatalf("waiting client after the holder left: %q, no reply to its own request", got)
	}
	q.Close()
	c := dialT(t, addr)
	if err := c.Ping(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("after everyone left: %v", err)
	}
	c.Close()
}

// An agent that takes no connections at all (stopped) queues the client
// too: that is silence, not another client.
func checkNotAccepting(t *testing.T, sock string, stop func(bool)) {
	stop(true)
	defer stop(false)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := agentclient.DialStream(ctx, "unix:"+sock)
	if !agentclient.IsSilent(err) || agentclient.IsChannelHeld(err) || !strings.Contains(err.Error(), "takes no connections") {
		t.Fatalf("dial to a stopped agent: %v; want silent (takes no connections)", err)
	}
}
