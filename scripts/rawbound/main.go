// Command rawbound is the lower bound scripts/scale.sh holds `guestdeck
// status --json` to: it only connects to every agent socket in the given
// directories, resyncs (0xFF and guest-sync-delimited), and asks five
// commands one at a time (guest-info, guest-get-time,
// guest-network-get-interfaces, guest-get-vcpus, guest-get-osinfo), with
// -workers connections at once, and prints the wall time. No decoding, no
// limits, no state: what any poller must at least spend.
//
//	go run ./scripts/rawbound -workers 64 /tmp/sa /tmp/sb
//
// With -steady, it is the steady-state bound instead (steady.go): every
// guest polled every -interval over held connections, and its own CPU over
// a window printed.
//
//	go run ./scripts/rawbound -steady -warmup 10s -window 30s /tmp/sa /tmp/sb
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var commands = []string{"guest-info", "guest-get-time", "guest-network-get-interfaces", "guest-get-vcpus", "guest-get-osinfo"}

func main() {
	workers := flag.Int("workers", 64, "connections at once")
	steadyMode := flag.Bool("steady", false, "poll every guest every -interval over held connections and print the CPU over -window")
	interval := flag.Duration("interval", 5*time.Second, "with -steady: the poll interval")
	warmup := flag.Duration("warmup", 10*time.Second, "with -steady: how long to poll before the window")
	window := flag.Duration("window", 30*time.Second, "with -steady: the measured window")
	epoll := flag.Bool("epoll", false, "with -steady: one thread driving every connection through epoll (no goroutine per guest)")
	flag.DurationVar(&tick, "tick", 0, "with -steady: round every slot up to a tick (the polls of a tick go out together, as the dashboard's scheduler coalesces them)")
	ask := flag.String("ask", "", "the commands to ask, comma-separated, instead of the five (e.g. those status asks)")
	flag.Parse()
	if *ask != "" {
		commands = strings.Split(*ask, ",")
	}
	var socks []string
	for _, d := range flag.Args() {
		m, _ := filepath.Glob(filepath.Join(d, "*.sock"))
		socks = append(socks, m...)
	}
	if len(socks) == 0 {
		fmt.Fprintln(os.Stderr, "rawbound: no *.sock in", flag.Args())
		os.Exit(2)
	}
	if *steadyMode {
		run := steady
		if *epoll {
			run = steadyEpoll
		}
		if err := run(socks, *interval, *warmup, *window); err != nil {
			fmt.Fprintln(os.Stderr, "rawbound:", err)
			os.Exit(1)
		}
		return
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 64<<10)
			for {
				i := next.Add(1) - 1
				if i >= int64(len(socks)) {
					return
				}
				if err := probe(socks[i], buf); err != nil {
					failed.Add(1)
					fmt.Fprintf(os.Stderr, "rawbound: %s: %v\n", socks[i], err)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%d guests, %d failed, %.3f s\n", len(socks), failed.Load(), time.Since(t0).Seconds())
}

func probe(sock string, buf []byte) error {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	if err := rawSync(c, br); err != nil { // its deadline bounds the whole probe
		return err
	}
	for _, cmd := range commands {
		buf = append(append(append(buf[:0], `{"execute":"`...), cmd...), "\"}\n"...)
		if _, err := c.Write(buf); err != nil {
			return err
		}
		if err := skipLine(br); err != nil {
			return err
		}
	}
	return nil
}
