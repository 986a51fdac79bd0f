// Command hostile-agent serves hostile guest agents (internal/testpeers/hostile)
// on unix sockets, for measurements by hand:
//
//	hostile-agent -mode huge -n 4 -dir /tmp/gdh
//	guestdeck -c /tmp/gdh/fleet.toml status --json
//
// It writes DIR/fleet.toml with one [[guest]] per socket (tagged "hostile"
// and the mode) and serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/guestdeck/guestdeck/internal/testpeers/hostile"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hostile-agent:", err)
		os.Exit(1)
	}
}

func run() error {
	var names []string
	for _, m := range hostile.Modes() {
		names = append(names, string(m))
	}
	modeName := flag.String("mode", "escapes", "how the agents are hostile: "+strings.Join(names, ", "))
	n := flag.Int("n", 1, "how many agents")
	dir := flag.String("dir", "", "directory for the sockets and fleet.toml (keep it short: socket paths must stay under 108 bytes)")
	prefix := flag.String("prefix", "", "guest name prefix (default: the mode)")
	size := flag.Int64("size", hostile.DefaultHugeSize, "huge: bytes in the huge reply line")
	cmd := flag.String("command", hostile.DefaultHugeCommand, "huge: the command answered hugely")
	delay := flag.Duration("slow-delay", hostile.DefaultSlowDelay, "slow: how long each slow-poll answer waits")
	chunk := flag.Int("noeof-chunk", hostile.DefaultNoEOFChunk, "noeof: bytes per read")
	pace := flag.Duration("noeof-pace", hostile.DefaultNoEOFPace, "noeof: pause before each read's answer")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		return fmt.Errorf("want -dir DIR and no arguments")
	}
	mode, err := hostile.ParseMode(*modeName)
	if err != nil {
		return err
	}
	if *prefix == "" {
		*prefix = string(mode)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var fleet strings.Builder
	fmt.Fprintf(&fleet, "# %d %s agents served by hostile-agent\n", *n, mode)
	var peers []*hostile.Peer
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()
	for i := range *n {
		name := fmt.Sprintf("%s-%02d", *prefix, i)
		p, err := hostile.Serve(ctx, filepath.Join(*dir, name+".sock"), mode,
			hostile.WithName(name), hostile.WithHugeSize(*size), hostile.WithHugeCommand(*cmd),
			hostile.WithSlowDelay(*delay), hostile.WithNoEOF(*chunk, *pace, hostile.DefaultNoEOFSize))
		if err != nil {
			return err
		}
		peers = append(peers, p)
		fmt.Fprintf(&fleet, "\n[[guest]]\nname = %q\naddress = %q\ntags = [\"hostile\", %q]\n", name, p.Addr(), string(mode))
	}
	cfg := filepath.Join(*dir, "fleet.toml")
	if err := os.WriteFile(cfg, []byte(fleet.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("serving %d %s agents in %s; fleet file %s\n", *n, mode, *dir, cfg)
	<-ctx.Done()
	var sent int64
	for _, p := range peers {
		sent += p.BytesSent()
	}
	fmt.Printf("stopped after sending %d bytes (%s)\n", sent, time.Now().Format(time.TimeOnly))
	return nil
}
