package main

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"sort"
	"syscall"
	"time"
)

// steadyEpoll is the steady-state bound without Go's scheduler (-steady
// -epoll): one goroutine, locked to its thread, drives every connection
// through epoll itself: it writes each guest's round when its slot comes,
// and counts reply lines as the sockets turn readable. The same commands
// and slots as steady; what a poller costs when nothing parks or wakes per
// guest.
func steadyEpoll(socks []string, interval, warmup, window time.Duration) error {
	runtime.LockOSThread()
	type conn struct {
		fd      int
		due     time.Time
		round   int
		pending int // replies still to come
	}
	conns := make([]*conn, 0, len(socks))
	byFD := map[int]*conn{}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	start := time.Now().Add(time.Second)
	for i, sock := range socks {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return err
		}
		// rawSync on the Go conn, then take its descriptor over.
		if err := rawSyncConn(c); err != nil {
			return fmt.Errorf("%s: %w", sock, err)
		}
		f, err := c.(*net.UnixConn).File()
		if err != nil {
			return err
		}
		c.Close()
		fd := int(f.Fd())
		if err := syscall.SetNonblock(fd, true); err != nil {
			return err
		}
		cn := &conn{fd: fd, due: start.Add(interval * time.Duration(i) / time.Duration(len(socks)))}
		conns = append(conns, cn)
		byFD[fd] = cn
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return err
		}
		_ = f // keep the *os.File from closing the descriptor
		defer f.Close()
	}
	// A queue ordered by due time: every slot moves by interval, so the
	// order never changes; a ring over conns is enough.
	sort.Slice(conns, func(a, b int) bool { return conns[a].due.Before(conns[b].due) })
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	var req []byte
	next := 0
	measureAt := start.Add(warmup)
	endAt := measureAt.Add(window)
	var c0 time.Duration
	var t0 time.Time
	measuring := false
	failed := 0
	for {
		now := time.Now()
		if !measuring && !now.Before(measureAt) {
			c0, t0, measuring = cpuTime(), now, true
		}
		if measuring && !now.Before(endAt) {
			c1, t1 := cpuTime(), time.Now()
			fmt.Printf("%d guests, %d failed, steady state over %.0f s: %.1f %% of one core, RSS %d MiB\n",
				len(conns), failed, t1.Sub(t0).Seconds(), 100*float64(c1-c0)/float64(t1.Sub(t0)), rssMiB())
			return nil
		}
		for {
			c := conns[next]
			if c.due.After(now) {
				break
			}
			req = req[:0]
			n := 0
			add := func(cmds []string) {
				for _, cmd := range cmds {
					req = append(append(append(req, `{"execute":"`...), cmd...), "\"}\n"...)
					n++
				}
			}
			add(liveCommands)
			if c.round%2 == 0 {
				add(metricsCommands)
			}
			if c.round%12 == 0 {
				add(slowCommands)
			}
			c.round++
			c.due = c.due.Add(interval)
			if c.pending == 0 {
				if _, err := syscall.Write(c.fd, req); err != nil {
					failed++
				} else {
					c.pending = n
				}
			}
			next = (next + 1) % len(conns)
		}
		// Round up: a slot less than a millisecond away must not spin.
		wait := int((time.Until(conns[next].due) + time.Millisecond - 1) / time.Millisecond)
		wait = max(wait, 0)
		if tick > 0 {
			// Batched: sleep a tick, then write what is due and read what
			// came, without waiting in epoll.
			time.Sleep(tick)
			wait = 0
		}
		n, err := syscall.EpollWait(ep, events, wait)
		if err != nil && err != syscall.EINTR {
			return err
		}
		for _, ev := range events[:max(n, 0)] {
			c := byFD[int(ev.Fd)]
			for {
				k, err := syscall.Read(c.fd, buf)
				if k <= 0 || err != nil {
					break
				}
				c.pending -= bytes.Count(buf[:k], []byte{'\n'})
				if k < len(buf) {
					break
				}
			}
		}
	}
}

func rawSyncConn(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":4242}}\n")); err != nil {
		return err
	}
	var got []byte
	b := make([]byte, 4096)
	for !bytes.Contains(got, []byte("4242")) || !bytes.HasSuffix(got, []byte("\n")) {
		n, err := c.Read(b)
		if err != nil {
			return err
		}
		got = append(got, b[:n]...)
	}
	return nil
}
