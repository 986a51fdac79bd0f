package agentclient_test

import (
	"context"
	"crypto/rand"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

const bigFile = 64 << 20

// benchPeers gives each benchmark the simulator and the real agent on this
// machine, both holding a 64 MiB file at the returned path.
func benchPeers(b *testing.B, withBigFile bool) map[string][2]string {
	peers := map[string][2]string{}

	var data []byte
	if withBigFile {
		data = make([]byte, bigFile)
		rand.Read(data)
	}
	_, simAddr := startSim(b, func(cfg *sim.Config) {
		if withBigFile {
			cfg.Files = maps.Clone(cfg.Files) // DefaultConfig's tree is shared
			cfg.Files["/tmp/big.bin"] = sim.File{Data: string(data), Mode: 0o644, ModTime: time.Now()}
		}
	})
	peers["sim"] = [2]string{simAddr, "/tmp/big.bin"}

	ag := testpeers.StartAgents(b, 1)
	path := filepath.Join(ag.Writable, "big.bin")
	if withBigFile {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	peers["qemu-ga"] = [2]string{ag.Addrs()[0], path}
	return peers
}

func BenchmarkRoundTrip(b *testing.B) {
	for name, p := range benchPeers(b, false) {
		b.Run(name, func(b *testing.B) {
			c, err := agentclient.Dial(context.Background(), p[0])
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Ping(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadFile64MiB(b *testing.B) {
	for name, p := range benchPeers(b, true) {
		b.Run(name, func(b *testing.B) {
			c, err := agentclient.Dial(context.Background(), p[0])
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			b.SetBytes(bigFile)
			b.ReportAllocs()
			for b.Loop() {
				n, err := agentclient.ReadFile(ctx, c, p[1], io.Discard, agentclient.FileOptions{})
				if err != nil || n != bigFile {
					b.Fatalf("ReadFile = %d, %v", n, err)
				}
			}
		})
	}
}
