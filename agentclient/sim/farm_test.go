package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/guestdeck/guestdeck/agentclient"
)

func startFarm(t testing.TB, n int, cfg func(int) Config) *Farm {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ServeDir(dir, n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		os.RemoveAll(dir)
	})
	return f
}

func TestFarmThousandGuests(t *testing.T) {
	const n = 1000
	f := startFarm(t, n, func(i int) Config {
		if i%10 == 9 {
			c := WindowsConfig(fmt.Sprintf("win-%04d", i))
			c.Tags = []string{"odd"}
			return c
		}
		return DefaultConfig("") // no name: the farm names it sim-NNNN
	})
	if len(f.Guests()) != n || len(f.Sockets()) != n {
		t.Fatalf("%d guests, %d sockets", len(f.Guests()), len(f.Sockets()))
	}
	// Every guest answers on its own socket, with its own name.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, sock := range f.Sockets() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprint(c, `{"execute":"guest-get-host-name"}`)
			l, err := bufio.NewReader(c).ReadString('\n')
			want := fmt.Sprintf("{\"return\": {\"host-name\": %q}}\n", f.Guests()[i].Config().Hostname)
			if err != nil || l != want {
				t.Errorf("guest %d: %q %v, want %q", i, l, err, want)
			}
		}()
	}
	wg.Wait()
	if f.Guests()[0].Config().Name != "sim-0001" || f.Guests()[9].Config().Name != "win-0009" {
		t.Errorf("names %q %q", f.Guests()[0].Config().Name, f.Guests()[9].Config().Name)
	}

	path := filepath.Join(t.TempDir(), "fleet.toml")
	if err := f.WriteFleetFile(path); err != nil {
		t.Fatal(err)
	}
	var fleet struct {
		Guest []struct {
			Name, Address string
			Tags          []string
		}
	}
	if _, err := toml.DecodeFile(path, &fleet); err != nil {
		t.Fatal(err)
	}
	if len(fleet.Guest) != n || fleet.Guest[9].Name != "win-0009" || fleet.Guest[9].Address != "unix:"+f.Sockets()[9] ||
		fmt.Sprint(fleet.Guest[9].Tags) != "[sim windows odd]" || fmt.Sprint(fleet.Guest[0].Tags) != "[sim]" {
		t.Errorf("fleet file: %d guests, #9 %+v, #0 %+v", len(fleet.Guest), fleet.Guest[9], fleet.Guest[0])
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("unix", f.Sockets()[0]); err == nil {
		t.Error("socket still accepts after Close")
	}
}

// TestWithClient drives the simulator through agentclient's own transport
// and helpers: sync on connect, files, directory listing, timeouts, faults.
func TestWithClient(t *testing.T) {
	g, sock := startGuest(t, DefaultConfig("cl"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g.SetStale(true)
	g.SetGarbage(true) // sync must see through both
	c, err := agentclient.Dial(ctx, "unix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g.SetStale(false)
	g.SetGarbage(false)

	ents, err := agentclient.ListDir(ctx, c, "/home/user")
	if err != nil || len(ents) != 3 || ents[2].Name != "notes.txt" {
		t.Fatalf("ListDir: %+v %v", ents, err)
	}
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	n, err := agentclient.WriteFile(ctx, c, "/tmp/blob", bytesReader(data), agentclient.FileOptions{Chunk: 65536})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteFile: %d %v", n, err)
	}
	var got bytesWriter
	n, err = agentclient.ReadFile(ctx, c, "/tmp/blob", &got, agentclient.FileOptions{})
	if err != nil || n != int64(len(data)) || string(got.b) != string(data) {
		t.Fatalf("ReadFile: %d %v (equal %v)", n, err, string(got.b) == string(data))
	}

	// A hung agent times the call out; after the hang the client resyncs
	// past the late reply.
	g.SetHang(true)
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = c.Hostname(short)
	cancel2()
	if !agentclient.IsTimeout(err) {
		t.Errorf("hung: %v, want timeout", err)
	}
	g.SetHang(false)
	if h, err := c.Hostname(ctx); err != nil || h != "cl" {
		t.Errorf("after hang: %q %v", h, err)
	}
	if _, err := c.FileOpen(ctx, "/etc/shadow", "r"); err == nil || agentclient.IsUnknown(err) {
		t.Errorf("shadow: %v", err)
	}
	if n, err := c.Freeze(ctx); err != nil || n != 1 {
		t.Fatalf("freeze: %d %v", n, err)
	}
	if _, err := c.OSInfo(ctx); !agentclient.IsFrozen(err) {
		t.Errorf("osinfo while frozen: %v", err)
	}
	if n, err := c.Thaw(ctx); err != nil || n != 1 {
		t.Errorf("thaw: %d %v", n, err)
	}
	g.DropMidReply(1)
	if _, err := c.Hostname(ctx); !agentclient.IsConnLost(err) {
		t.Errorf("cut reply: %v, want connection lost", err)
	}
}

type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

type sliceReader struct{ b []byte }

func bytesReader(b []byte) *sliceReader { return &sliceReader{b} }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func memNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkFarmMemory reports the memory and goroutines of 1,000 idle guests,
// then of the same guests each with a live, synced connection, and the cost
// of one request round trip. Run: go test -run '^$' -bench FarmMemory ./agentclient/sim
func BenchmarkFarmMemory(b *testing.B) {
	const n = 1000
	base, g0 := memNow(), runtime.NumGoroutine()
	f := startFarm(b, n, nil)
	idle, g1 := memNow(), runtime.NumGoroutine()
	conns := make([]*bufio.ReadWriter, n)
	for i, sock := range f.Sockets() {
		c, err := net.Dial("unix", sock)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		rw := bufio.NewReadWriter(bufio.NewReaderSize(c, 64), bufio.NewWriterSize(c, 64))
		fmt.Fprint(rw, "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1}}")
		rw.Flush()
		rw.ReadString('\n') // the parse error for 0xFF
		rw.ReadString('\n') // the sync
		conns[i] = rw
	}
	conn, g2 := memNow(), runtime.NumGoroutine()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rw := conns[i%n]
		fmt.Fprint(rw, `{"execute":"guest-get-vcpus"}`)
		rw.Flush()
		if _, err := rw.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(idle-base)/n, "B/idle-guest")
	b.ReportMetric(float64(g1-g0)/n, "goroutines/idle-guest")
	// ResetTimer drops reported metrics, so report after the loop.
	// Client-side buffers are tiny, but the client's conn objects live in this
	// process too: the figure is an upper bound for the simulator's share.
	b.ReportMetric(float64(conn-idle)/n, "B/connection")
	b.ReportMetric(float64(g2-g1)/n, "goroutines/connection")
}
