// Command simfarm serves simulated guests on unix sockets for the fleet
// benchmarks, in its own process so that the fleet's CPU and memory can be
// measured without the simulator's share, and so that each process stays
// under the open-file limit (a guest costs a listener and a connection).
//
// It prints one line "ready" once every socket listens, then serves until
// its stdin closes (so it dies with the benchmark that started it).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

func main() {
	dir := flag.String("dir", "", "socket directory (short: socket paths must be < 108 bytes)")
	n := flag.Int("n", 100, "number of guests")
	prefix := flag.String("prefix", "s", "guest name prefix")
	flag.Parse()
	if *dir == "" || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	farm, err := sim.ServeDir(*dir, *n, func(i int) sim.Config {
		return sim.DefaultConfig(fmt.Sprintf("%s%05d", *prefix, i))
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "simfarm:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	farm.Close()
}
