package fleet

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet/discovery"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// libvirt's remote protocol (remote_protocol.x): the program of every
// call discovery makes, and the procedures counted here.
const (
	remoteProgram                = 0x20008086
	procConnectGetAllDomainStats = 344
)

// perDomainStatsProcs are the calls a poller that asked each domain in turn
// would make: none may be sent.
var perDomainStatsProcs = map[uint32]string{
	16:  "DomainGetInfo",
	64:  "DomainBlockStats",
	65:  "DomainInterfaceStats",
	159: "DomainMemoryStats",
	262: "DomainGetCPUStats",
	249: "DomainBlockStatsFlags",
}

// rpcCounter counts the remote-protocol calls that cross a proxy.
type rpcCounter struct {
	mu    sync.Mutex
	calls map[uint32]int
}

func (c *rpcCounter) count(proc uint32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[proc]
}

// countingProxy listens on a unix socket and forwards every connection to
// target, counting the calls (not replies, events or stream data) the
// client sends: libvirt's framing is a 4-byte length, then program,
// version, procedure and type (0 = call), big-endian.
func countingProxy(t *testing.T, target string) (string, *rpcCounter) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &rpcCounter{calls: map[uint32]int{}}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("unix", target)
			if err != nil {
				client.Close()
				continue
			}
			go func() {
				defer client.Close()
				defer server.Close()
				io.Copy(client, server)
			}()
			go func() {
				defer client.Close()
				defer server.Close()
				c.forward(server, client)
			}()
		}
	}()
	return sock, c
}

func (c *rpcCounter) forward(dst io.Writer, src io.Reader) {
	var hdr [20]byte
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		prog, proc, typ := binary.BigEndian.Uint32(hdr[4:8]), binary.BigEndian.Uint32(hdr[12:16]), binary.BigEndian.Uint32(hdr[16:20])
		if prog == remoteProgram && typ == 0 {
			c.mu.Lock()
			c.calls[proc]++
			c.mu.Unlock()
		}
		if _, err := dst.Write(hdr[:]); err != nil {
			return
		}
		if n < 20 {
			return
		}
		if _, err := io.CopyN(dst, src, int64(n-20)); err != nil {
			return
		}
	}
}

// The hypervisor's side of a real TCG guest on a real libvirtd: every
// interval the host takes all its domains' counters with one
// ConnectGetAllDomainStats call (counted on the wire) for both its domains,
// never a stats call per domain, and the guests' HostStats carry rates from
// two samples.
func TestLibvirtHostStats(t *testing.T) {
	lq := testpeers.StartLibvirtQEMU(t)
	lq.DefineGuest(t, "st1")
	lq.DefineGuest(t, "st2")
	sock, calls := countingProxy(t, lq.Socket)

	const interval = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := New(Options{Interval: interval, SlowInterval: time.Hour, Timeout: 5 * time.Second, Readonly: true})
	defer f.Close()
	if err := f.AddHost(ctx, HostConfig{Name: "lq", URI: mustURI(t, "qemu+unix:///session?socket="+sock)}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	f.Start(ctx)

	// Wait for three samples after the first rate (an external event: the
	// host's ticker). Both domains' counters come from the same call: each
	// sample has the same time for both.
	var g, g2 *Guest
	var seen []time.Time
	for len(seen) < 4 {
		g, g2 = f.Guest("lq/st1"), f.Guest("lq/st2")
		if g != nil && g2 != nil && g.HostStats != nil && g2.HostStats != nil && g.HostStats.CPUPct.OK && g2.HostStats.CPUPct.OK && g.HostStats.At.Equal(g2.HostStats.At) &&
			(len(seen) == 0 || g.HostStats.At.After(seen[len(seen)-1])) {
			seen = append(seen, g.HostStats.At)
		}
		select {
		case <-f.Changed():
		case <-ctx.Done():
			t.Fatalf("no host stats with rates from one call for lq/st1 and lq/st2: %+v\n%+v", f.Guest("lq/st1"), f.Guest("lq/st2"))
		}
	}
	elapsed := time.Since(t0)
	hs := g.HostStats
	t.Logf("host view of st1: cpu %.1f%% balloon %d MiB block rd %.0f B/s wr %.0f B/s; %d stats calls in %v",
		hs.CPUPct.V, hs.BalloonBytes>>20, hs.BlockRdBps.V, hs.BlockWrBps.V, calls.count(procConnectGetAllDomainStats), elapsed)

	if v := hs.CPUPct.V; math.IsNaN(v) || v < 0 || v > 1000 {
		t.Errorf("cpu %v%%", v)
	}
	if !hs.BalloonOK || hs.BalloonBytes < 64<<20 || hs.BalloonBytes > 16<<30 {
		t.Errorf("balloon %v %d bytes (the domain has 256 MiB)", hs.BalloonOK, hs.BalloonBytes)
	}
	if !hs.BlockRdBps.OK || !hs.BlockWrBps.OK || hs.BlockRdBps.V < 0 || hs.BlockWrBps.V < 0 {
		t.Errorf("block rates %+v %+v", hs.BlockRdBps, hs.BlockWrBps)
	}
	// The test domain has no network device: no rate, not a false 0.
	if hs.NetRxBps.OK || hs.NetTxBps.OK {
		t.Errorf("net rates %+v %+v for a domain without interfaces", hs.NetRxBps, hs.NetTxBps)
	}

	// One call per interval for the whole host; at least one per sample seen.
	n := calls.count(procConnectGetAllDomainStats)
	if most := int(elapsed/interval) + 2; n < len(seen) || n > most {
		t.Errorf("%d ConnectGetAllDomainStats calls for %d samples in %v (interval %v): want one per interval", n, len(seen), elapsed, interval)
	}
	for proc, name := range perDomainStatsProcs {
		if k := calls.count(proc); k > 0 {
			t.Errorf("%d %s calls: stats must come from the bulk call only", k, name)
		}
	}
}

// Counters that go backwards (the domain restarted, a disk detached) give
// no rate, never a negative or absurd one; rates are per second of the
// samples' own times.
func TestNextHostStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	all := discovery.HasCPU | discovery.HasBalloon | discovery.HasBlock
	first := discovery.DomainCounters{At: t0, Has: all, CPUTimeNs: 10e9, VCPUs: 2, BalloonKiB: 1024, BlockRdBytes: 1000, BlockWrBytes: 5000}
	for _, tc := range []struct {
		name        string
		next        discovery.DomainCounters
		cpu, rd, wr Rate
	}{
		{"steady", discovery.DomainCounters{At: t0.Add(2 * time.Second), Has: all, CPUTimeNs: 12e9, VCPUs: 2, BlockRdBytes: 3000, BlockWrBytes: 5000},
			Rate{50, true}, Rate{1000, true}, Rate{0, true}},
		{"restarted", discovery.DomainCounters{At: t0.Add(2 * time.Second), Has: all, CPUTimeNs: 1e9, VCPUs: 2, BlockRdBytes: 10, BlockWrBytes: 10},
			Rate{}, Rate{}, Rate{}},
		{"same instant", discovery.DomainCounters{At: t0, Has: all, CPUTimeNs: 12e9, VCPUs: 2, BlockRdBytes: 3000},
			Rate{}, Rate{}, Rate{}},
		{"block gone", discovery.DomainCounters{At: t0.Add(time.Second), Has: discovery.HasCPU, CPUTimeNs: 11e9, VCPUs: 1},
			Rate{100, true}, Rate{}, Rate{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := nextHostStats(nextHostStats(nil, first), tc.next)
			if hs.CPUPct != tc.cpu || hs.BlockRdBps != tc.rd || hs.BlockWrBps != tc.wr {
				t.Errorf("cpu %+v rd %+v wr %+v, want %+v %+v %+v", hs.CPUPct, hs.BlockRdBps, hs.BlockWrBps, tc.cpu, tc.rd, tc.wr)
			}
		})
	}
	if hs := nextHostStats(nil, first); hs.CPUPct.OK || hs.BalloonBytes != 1<<20 || !hs.BalloonOK {
		t.Errorf("first sample: %+v", hs)
	}
}
