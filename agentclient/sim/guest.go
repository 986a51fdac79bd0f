// Package sim is a wire-faithful simulator of one guest's QEMU guest agent
// (qemu-ga 7.2), for tests, fault injection and scale runs.
//
// A Guest serves the agent protocol on any net.Listener: the same streaming
// JSON parser and error texts as the real agent, one client at a time, a guest
// model (clock, vCPUs, filesystems with freeze state, an in-memory file tree,
// guest-exec with a few programs), and fault knobs (latency, hang, silence,
// cut replies, garbage, stale replies, agent restart).
//
// Like the real agent and QEMU's chardev (checked against qemu-ga 7.2 and
// QEMU 7.2 on this machine), a guest serves one client at a time and does
// not accept another while it does: further connections wait unanswered in
// the kernel's queue on the listening socket until the current client
// disconnects; what they sent meanwhile is then processed. On a socket from
// Listen (backlog 1, as theirs) the queue holds two, and later connections
// are refused with EAGAIN. (Through QEMU's chardev the guest's agent reads
// one byte stream for all host clients in turn, so replies to a client that
// left can reach the next one; the simulator, like qemu-ga on its own
// socket, keeps each connection's replies its own. A client resyncs on
// connect either way.) A guest served on several listeners at once
// takes one connection from each, and those wait for its one channel (one
// extra goroutine reads while one waits, to notice a hang-up). A Farm serves
// many guests on unix sockets in one directory; an idle guest costs one
// goroutine and a few hundred bytes.
package sim

import (
	"bytes"
	"net"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Guest is one simulated guest and its agent. All methods are safe for
// concurrent use.
type Guest struct {
	cfg   Config
	start time.Time

	// channel admits the one client the agent serves, across listeners.
	channel chan struct{}
	done    chan struct{} // closed by Close

	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
	conns     map[*conn]struct{}

	// fault knobs
	latency time.Duration
	hang    chan struct{} // non-nil while hung; closed when the hang ends
	silent  bool
	drop    int
	dropAt  map[string]int // DropBefore: calls of a command still let through
	garbage bool
	stale   bool
	staleN  int64

	stats statsState // stats.go

	// encs holds reply encoders (encode.go): the Farm's, shared by its
	// guests, or made on the first reply.
	encs *sync.Pool

	// guest state
	frozen      bool
	frozenN     int
	clockBase   time.Time // host time of the last clock set
	clockAt     int64     // guest ns at clockBase
	rtcOffset   time.Duration
	vcpus       []agentclient.VCPU // nil until first set: then a private copy
	tree        *tree              // nil until a file command needs it
	handles     map[int64]*handle
	nextHandle  int64
	procs       map[int64]*proc
	nextPID     int64
	calls       map[string]int
	downMode    string    // "" while running; shutdown mode or "suspend-ram" etc.
	downSilent  bool      // halted or suspended: channel up, agent gone
	asleep      bool      // suspended to RAM until Wake: requests wait (conn.held)
	silentUntil time.Time // rebooting: the agent is back after this
}

// New returns a guest built from cfg. It serves nothing until Serve.
func New(cfg Config) *Guest {
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "7.2.22"
	}
	if cfg.RebootDelay == 0 {
		cfg.RebootDelay = 2 * time.Second
	}
	now := time.Now()
	return &Guest{
		cfg:        cfg,
		start:      now,
		channel:    make(chan struct{}, 1),
		done:       make(chan struct{}),
		clockBase:  now,
		clockAt:    now.Add(cfg.ClockOffset).UnixNano(),
		rtcOffset:  cfg.RTCOffset,
		nextHandle: 1000,
		nextPID:    4000,
	}
}

// Config returns the configuration the guest was built from.
func (g *Guest) Config() Config { return g.cfg }

// Serve accepts connections on l until Close, until the guest powers off
// (guest-shutdown, guest-suspend-disk: l is closed then, so new connections
// are refused) or until l fails. It returns nil in the first two cases.
// Several listeners may serve one guest; they share its single channel.
func (g *Guest) Serve(l net.Listener) error {
	g.mu.Lock()
	if g.closed || g.poweredOff() {
		g.mu.Unlock()
		l.Close()
		return nil
	}
	g.listeners = append(g.listeners, l)
	g.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			g.mu.Lock()
			stopped := g.closed || g.poweredOff()
			g.mu.Unlock()
			if stopped {
				return nil
			}
			return err
		}
		cn := &conn{c: c, gone: make(chan struct{})}
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			c.Close()
			return nil
		}
		if g.conns == nil {
			g.conns = make(map[*conn]struct{})
		}
		g.conns[cn] = struct{}{}
		g.mu.Unlock()
		// Served here, not on a goroutine of its own: like the real agent,
		// the listener takes no other connection until this client is
		// done, and the kernel queues the next ones (or refuses them once
		// the listener's backlog is full: see Listen).
		g.serveConn(cn)
	}
}

func (g *Guest) poweredOff() bool {
	return g.downMode != "" && !g.downSilent && g.silentUntil.IsZero()
}

// Close stops serving: listeners and connections are closed.
func (g *Guest) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	close(g.done)
	g.dropConnsLocked()
	ls := g.listeners
	g.listeners = nil
	g.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	return nil
}

func (g *Guest) dropConnsLocked() {
	for cn := range g.conns {
		cn.kill()
	}
	g.conns = nil
}

// conn is one client connection.
type conn struct {
	c    net.Conn
	once sync.Once
	gone chan struct{} // closed when the connection is dropped

	// held: requests read while the guest was asleep, answered in order
	// after the wake-up by one flusher at a time (flushing), before any
	// read later. Guarded by the guest's mu.
	held     []message
	flushing bool
}

func (cn *conn) kill() {
	cn.once.Do(func() {
		close(cn.gone)
		cn.c.Close()
	})
}

func (cn *conn) dead() bool {
	select {
	case <-cn.gone:
		return true
	default:
		return false
	}
}

// serveConn waits for the channel (taken by another listener's client),
// then reads requests and answers them in order. It runs on the accept loop
// of the connection's listener.
func (g *Guest) serveConn(cn *conn) {
	defer func() {
		cn.kill()
		g.mu.Lock()
		delete(g.conns, cn)
		g.mu.Unlock()
	}()
	pending, ok := g.waitChannel(cn)
	if !ok {
		return
	}
	defer func() { <-g.channel }()

	var st streamer
	if len(pending) > 0 {
		st.feed(pending, func(m message) { g.handle(cn, m) })
	}
	buf := make([]byte, 1024)
	for {
		n, err := cn.c.Read(buf)
		if n > 0 {
			st.feed(buf[:n], func(m message) { g.handle(cn, m) })
		}
		if err != nil || cn.dead() {
			return
		}
	}
}

// waitChannel waits until cn may use the agent's channel. Meanwhile it keeps
// reading, so that a client that hangs up while it waits is noticed (its
// goroutine and descriptor freed) instead of queueing forever. What the
// client sent while waiting is returned for the session to answer, as the
// real agent does once it serves the connection. ok is false when the
// connection ended while waiting.
func (g *Guest) waitChannel(cn *conn) (pending []byte, ok bool) {
	select {
	case g.channel <- struct{}{}:
		return nil, true // free: no waiting, no reader
	case <-cn.gone:
		return nil, false
	default:
	}
	var buf bytes.Buffer
	readErr := make(chan error, 1)
	go func() {
		b := make([]byte, 1024)
		for {
			n, err := cn.c.Read(b)
			buf.Write(b[:n])
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	select {
	case g.channel <- struct{}{}:
	case <-cn.gone:
		<-readErr
		return nil, false
	case <-readErr:
		return nil, false // hung up (EOF) or failed before being served
	}
	// Served: stop the reader without losing bytes (a read interrupted by
	// the deadline returns none), then let the session read on. If the peer
	// hung up just as the channel freed, the session's next read says so
	// again, after it answered what was sent, as for any served client.
	cn.c.SetReadDeadline(time.Now())
	<-readErr
	cn.c.SetReadDeadline(time.Time{})
	return buf.Bytes(), true
}

// handle answers one message, or holds it while the guest is asleep (or
// while what it held is still being answered): the channel is still read
// (QEMU reads the host side whatever the guest does, and sees a client hang
// up), and the requests wait to be answered in order once the guest wakes,
// as its virtio-serial queue keeps them. A halted guest's vanish.
func (g *Guest) handle(cn *conn, m message) {
	g.mu.Lock()
	if g.asleep || cn.flushing || len(cn.held) > 0 {
		if !cn.dead() {
			cn.held = append(cn.held, m)
		}
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.answer(cn, m)
}

// flushHeld answers what cn was sent while the guest was asleep, in order,
// until none is left or the guest sleeps again. Started by Wake, with
// cn.flushing set.
func (g *Guest) flushHeld(cn *conn) {
	for {
		g.mu.Lock()
		if len(cn.held) == 0 || g.asleep || cn.dead() {
			cn.flushing = false
			if cn.dead() {
				cn.held = nil
			}
			g.mu.Unlock()
			return
		}
		m := cn.held[0]
		cn.held = cn.held[1:]
		g.mu.Unlock()
		g.answer(cn, m)
	}
}

// answer answers one message, applying the fault knobs.
func (g *Guest) answer(cn *conn, m message) {
	if cn.dead() {
		return
	}
	g.mu.Lock()
	if g.silent || g.downSilent || time.Now().Before(g.silentUntil) {
		g.mu.Unlock()
		return // no agent behind the channel: requests vanish
	}
	hang, lat := g.hang, g.latency
	g.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-cn.gone:
			return
		}
	}
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-cn.gone:
			t.Stop()
			return
		}
	}

	g.mu.Lock()
	r := g.dispatch(m)
	if r.none {
		g.mu.Unlock()
		if r.after != nil {
			r.after()
		}
		return
	}
	var out bytes.Buffer
	if g.garbage {
		out.WriteString("\x00\x1bgarbage}{\"ret\n")
	}
	if g.stale {
		g.staleN++
		if r.delimited {
			out.WriteByte(0xFF)
		}
		out.WriteString(`{"return": `)
		out.WriteString(itoa(0x5EED0000 + g.staleN))
		out.WriteString("}\n")
	}
	if r.delimited {
		out.WriteByte(0xFF)
	}
	out.Write(r.line)
	cut := false
	if g.drop > 0 {
		g.drop--
		cut = true
	}
	g.mu.Unlock()

	b := out.Bytes()
	if cut {
		// Cut inside the real reply so that the client holds half a line.
		b = b[:len(b)-len(r.line)/2-1]
	}
	if _, err := cn.c.Write(b); err != nil || cut {
		cn.kill()
	}
}

// SetLatency delays every reply by d.
func (g *Guest) SetLatency(d time.Duration) {
	g.mu.Lock()
	g.latency = d
	g.mu.Unlock()
}

// SetHang makes the agent stop answering (true) as if stuck in a command;
// requests are still read. Clearing it answers what was held back, in order.
func (g *Guest) SetHang(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case on && g.hang == nil:
		g.hang = make(chan struct{})
	case !on && g.hang != nil:
		close(g.hang)
		g.hang = nil
	}
}

// SetSilent models a channel with no agent behind it (guest booting, agent
// stopped, guest paused): connections are accepted and read, and nothing is
// ever answered, not even a sync. Requests read while silent are lost.
func (g *Guest) SetSilent(on bool) {
	g.mu.Lock()
	g.silent = on
	g.mu.Unlock()
}

// DropMidReply makes the next n replies stop halfway through their line,
// after which the connection is closed.
func (g *Guest) DropMidReply(n int) {
	g.mu.Lock()
	g.drop = n
	g.mu.Unlock()
}

// DropBefore lets n more calls of command through, then drops the
// connection at the next one before the agent carries it out: its reply is
// cut mid-line and the connection closed, as when the channel breaks in the
// middle of a transfer. n < 0 clears it.
func (g *Guest) DropBefore(command string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n < 0 {
		delete(g.dropAt, command)
		return
	}
	if g.dropAt == nil {
		g.dropAt = make(map[string]int)
	}
	g.dropAt[command] = n
}

// dropHere counts a call of name against DropBefore; true means cut this
// one. Holds g.mu.
func (g *Guest) dropHere(name string) bool {
	n, ok := g.dropAt[name]
	if !ok {
		return false
	}
	if n > 0 {
		g.dropAt[name] = n - 1
		return false
	}
	delete(g.dropAt, name)
	g.drop++
	return true
}

// SetGarbage writes a line of junk bytes (no 0xFF) before every reply.
func (g *Guest) SetGarbage(on bool) {
	g.mu.Lock()
	g.garbage = on
	g.mu.Unlock()
}

// SetStale writes a stale reply before every real one: `{"return": N}` with
// an N nobody asked for, and before a guest-sync-delimited reply a stale
// delimited one, so only a client that checks the sync id stays in step.
func (g *Guest) SetStale(on bool) {
	g.mu.Lock()
	g.stale = on
	g.mu.Unlock()
}

// Restart models an agent restart: connections are dropped, open file
// handles and exec'd processes are lost, and the freeze state is kept (it
// belongs to the kernel). A halted or suspended guest comes back up. The
// handle counter continues (qemu-ga keeps it in its state directory).
func (g *Guest) Restart() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dropConnsLocked()
	g.handles = nil
	g.procs = nil
	if g.downSilent || !g.silentUntil.IsZero() {
		g.downMode, g.downSilent, g.silentUntil = "", false, time.Time{}
	}
	g.asleep = false // what was held went with the connections
}

// Wake wakes a guest suspended to RAM (guest-suspend-ram or -hybrid), as
// QEMU's system_wakeup (virsh dompmwakeup) does: the agent carries on where
// it stopped, on the connections it had, and answers what it was sent while
// asleep, in order (which is why the schema says to resync after a resume).
// False when the guest was not suspended to RAM.
func (g *Guest) Wake() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.asleep {
		return false
	}
	g.asleep, g.downMode, g.downSilent = false, "", false
	for cn := range g.conns {
		if len(cn.held) > 0 && !cn.flushing {
			cn.flushing = true
			go g.flushHeld(cn)
		}
	}
	return true
}

// Frozen reports whether the guest's filesystems are frozen.
func (g *Guest) Frozen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.frozen
}

// ShutdownMode reports how the guest went down, if it did: "powerdown",
// "halt", "reboot", "suspend-disk", "suspend-ram" or "suspend-hybrid".
func (g *Guest) ShutdownMode() (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.downMode, g.downMode != ""
}

// Calls reports how many times the agent ran command name: requests that got
// past the enabled check, including ones that then failed on their
// arguments; refusals (disabled, frozen, unknown) and requests lost to
// silence are not counted.
func (g *Guest) Calls(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[name]
}

// Clock returns the guest's current system time.
func (g *Guest) Clock() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Unix(0, g.clockNowLocked())
}

func (g *Guest) clockNowLocked() int64 {
	el := time.Since(g.clockBase)
	return g.clockAt + int64(float64(el)*(1+g.cfg.ClockDrift))
}
