package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The steady-state lower bound (-steady): what any poller must at least
// spend to ask every guest, every interval, what the dashboard's poll asks
// with its defaults (5 s interval, metrics every 10 s, slow items every
// 60 s): one connection per guest held open, one goroutine per guest
// sleeping until its slot, the requests of a round written at once and the
// replies read as lines. No decoding, no state, no limits, no TUI.
var (
	tick time.Duration // -tick: slots rounded up to it

	liveCommands    = []string{"guest-get-time", "guest-network-get-interfaces", "guest-get-vcpus"}
	metricsCommands = []string{"guest-get-cpustats", "guest-get-diskstats", "guest-get-load"}
	slowCommands    = []string{"guest-info", "guest-get-osinfo", "guest-get-host-name", "guest-get-timezone",
		"guest-get-users", "guest-get-fsinfo", "guest-get-disks", "guest-get-routes"}
)

// steady polls socks every interval for warmup and then window, and prints
// its own CPU over the window as a share of one core, and its RSS.
func steady(socks []string, interval, warmup, window time.Duration) error {
	var failed atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	start := time.Now().Add(time.Second) // every connection made first
	for i, sock := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pollForever(sock, start.Add(interval*time.Duration(i)/time.Duration(len(socks))), interval, stop); err != nil {
				failed.Add(1)
				fmt.Fprintf(os.Stderr, "rawbound: %s: %v\n", sock, err)
			}
		}()
	}
	time.Sleep(time.Until(start) + warmup)
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(window)
	c1, t1 := cpuTime(), time.Now()
	rss := rssMiB()
	close(stop)
	wg.Wait()
	fmt.Printf("%d guests, %d failed, steady state over %.0f s: %.1f %% of one core, RSS %d MiB\n",
		len(socks), failed.Load(), t1.Sub(t0).Seconds(), 100*float64(c1-c0)/float64(t1.Sub(t0)), rss)
	return nil
}

// pollForever holds one guest's connection and asks its round at first,
// then every interval.
func pollForever(sock string, first time.Time, interval time.Duration, stop <-chan struct{}) error {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 4<<10)
	if err := rawSync(c, br); err != nil {
		return err
	}
	var req []byte
	t := time.NewTimer(time.Until(first))
	defer t.Stop()
	for round := 0; ; round++ {
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
		n := 0
		req = req[:0]
		add := func(cmds []string) {
			for _, cmd := range cmds {
				req = append(append(append(req, `{"execute":"`...), cmd...), "\"}\n"...)
				n++
			}
		}
		add(liveCommands)
		if round%2 == 0 {
			add(metricsCommands)
		}
		if round%12 == 0 {
			add(slowCommands)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			return err
		}
		for range n {
			if err := skipLine(br); err != nil {
				return err
			}
		}
		next := first.Add(interval * time.Duration(round+1))
		if tick > 0 {
			// Rounded up to a tick, as the dashboard's scheduler
			// coalesces: the polls of a tick wake together.
			next = next.Truncate(tick).Add(tick)
		}
		t.Reset(time.Until(next))
	}
}

func rawSync(c net.Conn, br *bufio.Reader) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":4242}}\n")); err != nil {
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
		if bytes.Contains(line, []byte("4242")) {
			return nil
		}
	}
}

// skipLine reads one reply line, however long.
func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if err == nil {
			return nil
		}
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssMiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if kb, ok := bytes.CutPrefix(l, []byte("VmRSS:")); ok {
			var n int64
			fmt.Sscan(string(kb), &n)
			return n / 1024
		}
	}
	return 0
}
