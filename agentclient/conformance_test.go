package agentclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// peer is one agent the conformance suite runs against, with what it may be
// asked. The table in TestConformance* makes plain which part runs where:
// Mutating is false for the qemu-ga running on this machine, always.
type peer struct {
	Addr     string
	Writable string            // a directory the agent may write (every peer has one)
	Known    map[string]string // files with known content
	Disabled string            // a read-only command the peer blocks ("": none, check not run)
	// Mutating allows freeze, thaw, set-time, set-vcpus, exec and, last of
	// all, shutdown. NEVER true for an agent on this machine.
	Mutating  bool
	Freezable int // filesystems guest-fsfreeze-freeze must report
	// WaitGone confirms that shutdown took the guest away.
	WaitGone func(time.Duration) error
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dialT(t *testing.T, addr string, opts ...agentclient.Option) *agentclient.Client {
	t.Helper()
	c, err := agentclient.Dial(ctxFor(t, 30*time.Second), addr, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConformanceLocalAgent runs the read-only part against the real qemu-ga
// on this machine (mutating commands are blocked there, and never sent).
func TestConformanceLocalAgent(t *testing.T) {
	// Block one harmless command so the "disabled" error is checked without
	// sending anything that could change this machine.
	t.Setenv("QGA_EXTRA_BLOCK", "guest-get-users")
	ag := testpeers.StartAgents(t, 1)
	known := filepath.Join(ag.Writable, "known.txt")
	if err := os.WriteFile(known, []byte("known content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runConformance(t, peer{
		Addr:     ag.Addrs()[0],
		Writable: ag.Writable,
		Known:    map[string]string{known: "known content\n"},
		Disabled: "guest-get-users",
	})
}

// TestConformanceVM runs the whole suite, mutating part included, against a
// real guest; the last step shuts it down.
func TestConformanceVM(t *testing.T) {
	vm := testpeers.BootVM(t, "gd-conf")
	runConformance(t, peer{
		Addr:      vm.Addr(),
		Writable:  "/data",
		Known:     map[string]string{testpeers.HelloPath: testpeers.HelloContent},
		Mutating:  true,
		Freezable: 1, // the ext4 disk on /data; the root is an initramfs
		WaitGone:  vm.WaitExit,
	})
}

// TestConformanceSim runs the whole suite against the simulator: it must
// behave like the real agent in every checked respect.
func TestConformanceSim(t *testing.T) {
	g, addr := startSim(t, func(cfg *sim.Config) { cfg.Disabled = []string{"guest-get-users"} })
	runConformance(t, peer{
		Addr:      addr,
		Writable:  "/tmp",
		Known:     map[string]string{"/home/user/notes.txt": "remember to patch the fleet\n"},
		Disabled:  "guest-get-users",
		Mutating:  true,
		Freezable: 1, // DefaultConfig: one ext4 root
		WaitGone: func(d time.Duration) error {
			if mode, ok := g.ShutdownMode(); !ok || mode != agentclient.ShutdownPowerdown {
				return fmt.Errorf("simulator saw shutdown %q, %v", mode, ok)
			}
			return nil
		},
	})
}

// startSim serves a simulated guest on a fresh socket.
func startSim(t testing.TB, edit func(*sim.Config)) (*sim.Guest, string) {
	t.Helper()
	cfg := sim.DefaultConfig("gd-sim")
	if edit != nil {
		edit(&cfg)
	}
	g := sim.New(cfg)
	l, addr := listenUnix(t)
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(l) }()
	t.Cleanup(func() { g.Close(); <-done })
	return g, addr
}

func runConformance(t *testing.T, p peer) {
	ctx := ctxFor(t, 180*time.Second)
	call := func(d time.Duration) context.Context {
		cctx, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return cctx
	}
	const d = 20 * time.Second // generous: a VM under TCG on a loaded machine

	// The agent serves one session at a time: each of these must sync
	// cleanly after the one before it closed.
	t.Run("sync", func(t *testing.T) {
		for i := range 3 {
			s, err := agentclient.DialStream(call(d), p.Addr)
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			if _, err := s.Call(call(d), "guest-ping", nil); err != nil {
				t.Fatalf("ping on session %d: %v", i, err)
			}
			s.Close()
		}
	})
	c := dialT(t, p.Addr)
	t.Run("ping", func(t *testing.T) {
		if err := c.Ping(call(d)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("info", func(t *testing.T) {
		info, err := c.Info(call(d))
		if err != nil {
			t.Fatal(err)
		}
		offered := map[string]agentclient.CommandInfo{}
		for _, ci := range info.SupportedCommands {
			offered[ci.Name] = ci
		}
		if _, hasOpen := offered["guest-file-open"]; info.Version == "" || !offered["guest-ping"].Enabled || !hasOpen {
			t.Fatalf("guest-info: version %q, commands %v", info.Version, info.SupportedCommands)
		}
		if offered["guest-shutdown"].SuccessResponse || !offered["guest-ping"].SuccessResponse {
			t.Errorf("success-response: shutdown %v, ping %v", offered["guest-shutdown"].SuccessResponse, offered["guest-ping"].SuccessResponse)
		}
		// The command table knows every command the agent offers, and
		// agrees on which reply on success.
		for _, ci := range info.SupportedCommands {
			cmd, ok := agentclient.Lookup(ci.Name)
			switch {
			case !ok:
				t.Errorf("%s (offered by the agent) is not in the command table", ci.Name)
			case cmd.SuccessResponse != ci.SuccessResponse:
				t.Errorf("%s: table says success-response %v, the agent %v", ci.Name, cmd.SuccessResponse, ci.SuccessResponse)
			}
		}
		if ci, has := offered[p.Disabled]; p.Disabled != "" && (!has || ci.Enabled) {
			t.Errorf("%s: has %v enabled %v, want listed and disabled", p.Disabled, has, ci.Enabled)
		}
	})
	t.Run("time", func(t *testing.T) {
		ns, err := c.Time(call(d))
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Unix(0, ns); got.Year() < 2020 {
			t.Errorf("guest time %v", got)
		}
	})
	t.Run("vcpus", func(t *testing.T) {
		v, err := c.VCPUs(call(d))
		if err != nil {
			t.Fatal(err)
		}
		if cpu0, ok := vcpu(v, 0); !ok || !cpu0.Online {
			t.Errorf("vcpus %+v, want vCPU 0 online", v)
		}
	})
	t.Run("interfaces", func(t *testing.T) {
		ifs, err := c.Interfaces(call(d))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ifs, func(i agentclient.Interface) bool { return i.Name == "lo" }) {
			t.Errorf("no lo among %+v", ifs)
		}
	})
	t.Run("osinfo", func(t *testing.T) {
		os, err := c.OSInfo(call(d))
		if err != nil {
			t.Fatal(err)
		}
		if os.KernelRelease == "" {
			t.Errorf("osinfo %+v", os)
		}
	})
	t.Run("hostname", func(t *testing.T) {
		h, err := c.Hostname(call(d))
		if err != nil || h == "" {
			t.Fatalf("hostname %q, %v", h, err)
		}
	})
	t.Run("fsinfo", func(t *testing.T) {
		if _, err := c.FSInfo(call(d)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("known files", func(t *testing.T) {
		for path, want := range p.Known {
			var b bytes.Buffer
			n, err := agentclient.ReadFile(call(d), c, path, &b, agentclient.FileOptions{Chunk: 5})
			if err != nil || b.String() != want || n != int64(len(want)) {
				t.Errorf("ReadFile(%s) = %d, %q, %v; want %q", path, n, b.String(), err, want)
			}
			b.Reset()
			if _, err := agentclient.ReadFileRange(call(d), c, path, 2, 4, &b, agentclient.FileOptions{}); err != nil || b.String() != want[2:6] {
				t.Errorf("ReadFileRange(%s, 2, 4) = %q, %v; want %q", path, b.String(), err, want[2:6])
			}
		}
	})
	t.Run("file handle ops", func(t *testing.T) {
		path := p.Writable + "/gd-handle.txt"
		h, err := c.FileOpen(call(d), path, "w+")
		if err != nil {
			t.Fatal(err)
		}
		defer c.FileClose(call(d), h)
		w, err := c.FileWrite(call(d), h, base64.StdEncoding.EncodeToString([]byte("hello, guest")), 12)
		if err != nil || w.Count != 12 {
			t.Fatalf("write: %+v, %v", w, err)
		}
		if err := c.FileFlush(call(d), h); err != nil {
			t.Fatalf("flush: %v", err)
		}
		s, err := c.FileSeek(call(d), h, 7, agentclient.SeekSet)
		if err != nil || s.Position != 7 {
			t.Fatalf("seek: %+v, %v", s, err)
		}
		r, err := c.FileRead(call(d), h, 100)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got, _ := base64.StdEncoding.DecodeString(r.BufB64)
		if string(got) != "guest" || r.Count != 5 || !r.EOF {
			t.Fatalf("read %+v (%q)", r, got)
		}
		if err := c.FileClose(call(d), h); err != nil {
			t.Fatalf("close: %v", err)
		}
		if _, err := c.FileRead(call(d), h, 1); err == nil {
			t.Errorf("read after close succeeded")
		}
	})
	t.Run("write and read back", func(t *testing.T) {
		data := make([]byte, 300<<10+17)
		rand.Read(data)
		path := p.Writable + "/gd-big.bin"
		var calls int
		n, err := agentclient.WriteFile(call(d), c, path, bytes.NewReader(data), agentclient.FileOptions{
			Size: int64(len(data)), Progress: func(done, total int64) { calls++ },
		})
		if err != nil || n != int64(len(data)) || calls < 2 {
			t.Fatalf("WriteFile = %d, %v (%d progress calls)", n, err, calls)
		}
		var b bytes.Buffer
		n, err = agentclient.ReadFile(call(d), c, path, &b, agentclient.FileOptions{Chunk: 64 << 10})
		if err != nil || n != int64(len(data)) || !bytes.Equal(b.Bytes(), data) {
			t.Fatalf("ReadFile = %d, %v; equal %v", n, err, bytes.Equal(b.Bytes(), data))
		}
		b.Reset()
		if _, err := agentclient.ReadFileRange(call(d), c, path, 100000, 70000, &b, agentclient.FileOptions{Chunk: 32 << 10}); err != nil || !bytes.Equal(b.Bytes(), data[100000:170000]) {
			t.Fatalf("ReadFileRange: %v (%d bytes)", err, b.Len())
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := agentclient.ReadFile(call(d), c, "/nonexistent/gd", io.Discard, agentclient.FileOptions{})
		var ae *agentclient.Error
		if !errors.As(err, &ae) {
			t.Fatalf("ReadFile of a missing file: %v, want an agent error", err)
		}
	})
	// The VM's agent blocks nothing; the local agent and the simulator do.
	if p.Disabled != "" {
		t.Run("disabled", func(t *testing.T) {
			_, err := c.Raw(call(d), []byte(`{"execute":"`+p.Disabled+`"}`))
			if !agentclient.IsDisabled(err) || agentclient.IsUnknown(err) {
				t.Fatalf("%s: %v, want disabled", p.Disabled, err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := c.Raw(call(d), []byte(`{"execute":"guest-no-such-command"}`))
		if !agentclient.IsUnknown(err) || agentclient.IsDisabled(err) {
			t.Fatalf("%v, want unknown", err)
		}
		var op *agentclient.OpError
		if !errors.As(err, &op) || op.Addr != p.Addr || op.Command != "guest-no-such-command" {
			t.Errorf("error %#v does not name address and command", err)
		}
	})
	t.Run("invalid args", func(t *testing.T) {
		_, err := c.Raw(call(d), []byte(`{"execute":"guest-ping","arguments":{"bogus":1}}`))
		if !agentclient.IsInvalidArgs(err) {
			t.Fatalf("%v, want invalid arguments", err)
		}
		if err := c.Ping(call(d)); err != nil {
			t.Fatalf("ping after error: %v", err)
		}
	})
	c.Close() // the proxy below needs the agent's only session
	t.Run("timeout recovery", func(t *testing.T) {
		px := startDelayProxy(t, p.Addr)
		pc := dialT(t, px.Addr())
		px.SetDelay(2 * time.Second)
		tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := pc.Time(tctx)
		cancel()
		if !agentclient.IsTimeout(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("delayed call: %v, want timeout", err)
		}
		px.SetDelay(0)
		// The late guest-get-time reply ({"return": N}) arrives first; it
		// must not be taken for guest-info's.
		info, err := pc.Info(call(d))
		if err != nil {
			t.Fatalf("call after timeout: %v", err)
		}
		if info.Version == "" || len(info.SupportedCommands) == 0 {
			t.Fatalf("call after timeout got a foreign reply: %+v", info)
		}
		if err := pc.Ping(call(d)); err != nil {
			t.Fatal(err)
		}
	})

	if !p.Mutating {
		return
	}
	// From here on only guests that may change: a VM or the simulator.
	c = dialT(t, p.Addr)
	t.Run("freeze", func(t *testing.T) {
		n, err := c.Freeze(call(d))
		if err != nil || n != p.Freezable {
			t.Fatalf("freeze = %d, %v; want %d", n, err, p.Freezable)
		}
		thawed := false
		defer func() {
			if !thawed {
				c.Thaw(context.Background())
			}
		}()
		st, err := c.FreezeStatus(call(d))
		if err != nil || st != agentclient.Frozen {
			t.Errorf("status while frozen: %q, %v", st, err)
		}
		if err := c.Ping(call(d)); err != nil {
			t.Errorf("ping while frozen: %v", err)
		}
		// While frozen the agent lists enabled exactly the commands the
		// table says it runs then.
		if info, err := c.Info(call(d)); err != nil {
			t.Errorf("info while frozen: %v", err)
		} else {
			for _, ci := range info.SupportedCommands {
				if ci.Enabled != agentclient.AllowedWhileFrozen(ci.Name) {
					t.Errorf("%s while frozen: enabled %v, table says allowed %v", ci.Name, ci.Enabled, agentclient.AllowedWhileFrozen(ci.Name))
				}
			}
		}
		_, err = c.FileOpen(call(d), "/etc/hostname", "r")
		if !agentclient.IsFrozen(err) || agentclient.IsDisabled(err) {
			t.Errorf("file-open while frozen: %v, want refused as frozen", err)
		}
		n2, err := c.Thaw(call(d))
		thawed = err == nil
		if err != nil || n2 != n {
			t.Fatalf("thaw = %d, %v; want %d", n2, err, n)
		}
		if st, err := c.FreezeStatus(call(d)); err != nil || st != agentclient.Thawed {
			t.Errorf("status after thaw: %q, %v", st, err)
		}
	})
	t.Run("set time", func(t *testing.T) {
		now := time.Now().UnixNano()
		if err := c.SetTime(call(d), &now); err != nil {
			t.Fatal(err)
		}
		ns, err := c.Time(call(d))
		if err != nil {
			t.Fatal(err)
		}
		if diff := time.Duration(ns - now); diff < -time.Minute || diff > time.Minute {
			t.Errorf("guest clock %v off after set-time", diff)
		}
	})
	t.Run("set vcpus", func(t *testing.T) {
		v, err := c.VCPUs(call(d))
		if err != nil || len(v) < 2 {
			t.Fatalf("vcpus %+v, %v; want 2", v, err)
		}
		if cpu0, _ := vcpu(v, 0); cpu0.CanOffline != nil && *cpu0.CanOffline {
			t.Errorf("vCPU 0 claims to be offlinable")
		}
		n, err := c.SetVCPUs(call(d), []agentclient.VCPU{{LogicalID: 1, Online: false}})
		if err != nil || n != 1 {
			t.Fatalf("offline vCPU 1 = %d, %v", n, err)
		}
		defer c.SetVCPUs(context.Background(), []agentclient.VCPU{{LogicalID: 1, Online: true}})
		if v, err := c.VCPUs(call(d)); err != nil {
			t.Errorf("vcpus after offline: %v", err)
		} else if cpu1, ok := vcpu(v, 1); !ok || cpu1.Online {
			t.Errorf("after offline: %+v", v)
		}
		if n, err := c.SetVCPUs(call(d), []agentclient.VCPU{{LogicalID: 1, Online: true}}); err != nil || n != 1 {
			t.Fatalf("online vCPU 1 = %d, %v", n, err)
		}
		if v, err := c.VCPUs(call(d)); err != nil {
			t.Errorf("vcpus after online: %v", err)
		} else if cpu1, ok := vcpu(v, 1); !ok || !cpu1.Online {
			t.Errorf("after online: %+v", v)
		}
	})
	t.Run("list dir", func(t *testing.T) {
		dir := filepath.Dir(firstKey(p.Known))
		ents, err := agentclient.ListDir(call(d), c, dir)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(firstKey(p.Known))
		if !slices.ContainsFunc(ents, func(e agentclient.DirEntry) bool { return e.Name == base && !e.IsDir() }) {
			t.Errorf("ListDir(%s) = %+v, want %s", dir, ents, base)
		}
		_, err = agentclient.ListDir(call(d), c, "/no/such/dir")
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("/no/such/dir")) {
			t.Errorf("ListDir of a missing dir: %v", err)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		if err := c.Shutdown(call(d), agentclient.ShutdownPowerdown); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if p.WaitGone != nil {
			if err := p.WaitGone(90 * time.Second); err != nil {
				t.Fatalf("guest still running after shutdown: %v", err)
			}
		}
	})
}

func vcpu(v []agentclient.VCPU, id int) (agentclient.VCPU, bool) {
	for _, c := range v {
		if c.LogicalID == id {
			return c, true
		}
	}
	return agentclient.VCPU{}, false
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

// delayProxy forwards a unix socket to an agent, holding every chunk from the
// agent back by a settable delay: a slow guest, without a slow guest.
type delayProxy struct {
	l     net.Listener
	delay atomic.Int64
	wg    sync.WaitGroup
}

func startDelayProxy(t *testing.T, target string) *delayProxy {
	t.Helper()
	network, address, err := agentclient.ParseAddress(target)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := listenUnix(t)
	px := &delayProxy{l: l}
	t.Cleanup(func() { l.Close(); px.wg.Wait() })
	px.wg.Add(1)
	go func() {
		defer px.wg.Done()
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial(network, address)
			if err != nil {
				down.Close()
				continue
			}
			px.wg.Add(2)
			go func() { defer px.wg.Done(); io.Copy(up, down); up.Close() }()
			go func() {
				defer px.wg.Done()
				defer down.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := up.Read(buf)
					if n > 0 {
						time.Sleep(time.Duration(px.delay.Load()))
						if _, werr := down.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return px
}

func (px *delayProxy) Addr() string             { return "unix:" + px.l.Addr().String() }
func (px *delayProxy) SetDelay(d time.Duration) { px.delay.Store(int64(d)) }

// listenUnix listens on a fresh socket under a short /tmp directory.
func listenUnix(t testing.TB) (net.Listener, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, "unix:" + path
}
