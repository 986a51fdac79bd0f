// Package hostile is a guest-agent test peer for what a real agent will
// not do on demand: lie. It speaks the qemu-ga wire protocol where a client
// depends on it — the 0xFF resync byte answered with the agent's parse
// error, guest-sync-delimited answered with 0xFF and its id, request ids
// echoed as qemu-ga echoes them, one reply line per request in order, the
// agent's JSON style and member order (agentclient/sim has the recorded
// exchanges) — and is hostile in one chosen way, its Mode:
//
//   - Escapes: every string it sends (host name, every OS field, interface
//     names, hardware and IP addresses, user names and domains, the time
//     zone, filesystem names, mountpoints, types, disk serials and devices,
//     the agent version, command names in guest-info, error classes and
//     descriptions, guest-exec output, file names in its directory listing)
//     is the field's name followed by Payload: terminal title, clipboard and
//     window-name sequences, CSI, 8-bit C1, a bidi override, zero-width
//     characters and C0 controls. The host name also carries raw bytes
//     that are not UTF-8. Text says what a JSON decoder makes of each field.
//   - Huge: the reply to one poll command (guest-get-osinfo unless
//     WithHugeCommand) is a single line of 85 MiB (WithHugeSize), written as
//     fast as the socket takes it.
//   - Slow: each slow-poll item (guest-info, OS, host name, time zone,
//     users, filesystems) is answered after WithSlowDelay, just inside the
//     caller's per-call timeout; everything else at once.
//   - NoEOF: any file opens; guest-file-read returns data and never eof.
//   - Numbers: numbers no field can hold or no guest would say: rx-bytes -1,
//     a tx-bytes past 2^64, a vCPU logical-id of 2^63, prefixes 999 and -1,
//     negative and oversized filesystem sizes, a time-zone offset of 2^63,
//     a login time of 1e400. Its strings are sound.
//   - Garbage: random bytes in answer to everything, the sync included.
//   - Lies: guest-exec and guest-exec-status answer with what qemu-ga never
//     says, the lie chosen by the program's base name (LieExitHuge and the
//     other Lie* names; any other program exits 0 printing "ok"), and
//     guest-ssh-get-authorized-keys returns LiedKeys: a key holding a line
//     break and a second, fake key after it, escapes, a 900 KiB key, and
//     values that are no strings.
//   - Healthy: none of the above; the reference the others deviate from.
//
// Only read-only commands and file reads are enabled in its guest-info
// (guest-exec too for Escapes, which lists "/" through it); mutating
// commands are refused as disabled, so a client that honours guest-info
// never sends one and the peer never pretends to have obeyed. Unlike
// qemu-ga it serves several connections at once, each on its own.
package hostile

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is the way a peer is hostile.
type Mode string

// The modes; see the package documentation.
const (
	Healthy Mode = "healthy"
	Escapes Mode = "escapes"
	Huge    Mode = "huge"
	Slow    Mode = "slow"
	NoEOF   Mode = "noeof"
	Numbers Mode = "numbers"
	Garbage Mode = "garbage"
	Lies    Mode = "lies"
)

// Modes lists every mode.
func Modes() []Mode { return []Mode{Healthy, Escapes, Huge, Slow, NoEOF, Numbers, Garbage, Lies} }

// ParseMode reads a mode's name.
func ParseMode(s string) (Mode, error) {
	if m := Mode(s); slices.Contains(Modes(), m) {
		return m, nil
	}
	var names []string
	for _, m := range Modes() {
		names = append(names, string(m))
	}
	return "", fmt.Errorf("unknown mode %q (want %s)", s, strings.Join(names, ", "))
}

// Defaults of the options.
const (
	DefaultName        = "hostile-peer"
	DefaultHugeSize    = 85 << 20 // a 64 MiB file read in base64 is 85.4 MiB: agentclient's generic limit lets this through
	DefaultHugeCommand = "guest-get-osinfo"
	// DefaultSlowDelay is just inside guestdeck's default per-call timeout (3 s).
	DefaultSlowDelay  = 2700 * time.Millisecond
	DefaultNoEOFChunk = 64 << 10
	// DefaultNoEOFPace spaces the reads so that a client that never stops
	// fills a disk at most at about 6 MB/s.
	DefaultNoEOFPace = 10 * time.Millisecond
	// DefaultNoEOFSize is the file size guest-file-seek reports: the reads
	// go on past it.
	DefaultNoEOFSize = 1 << 20
)

type config struct {
	name        string
	hugeSize    int64
	hugeCommand string
	slowDelay   time.Duration
	noEOFChunk  int
	noEOFPace   time.Duration
	noEOFSize   int64
	seed        uint64
}

// Option configures Serve.
type Option func(*config)

// WithName sets the host name a non-escapes peer reports (default DefaultName).
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithHugeSize sets the length in bytes of the huge reply line, newline
// included (default DefaultHugeSize).
func WithHugeSize(n int64) Option { return func(c *config) { c.hugeSize = n } }

// WithHugeCommand names the command the huge peer answers hugely (default
// DefaultHugeCommand). Any read-only poll command works.
func WithHugeCommand(name string) Option { return func(c *config) { c.hugeCommand = name } }

// WithSlowDelay sets how long the slow peer holds each slow-poll answer
// (default DefaultSlowDelay): set it just under the caller's timeout.
func WithSlowDelay(d time.Duration) Option { return func(c *config) { c.slowDelay = d } }

// WithNoEOF sets the noeof peer's bytes per read (at most what was asked),
// the pause before each read's answer, and the size guest-file-seek reports.
func WithNoEOF(chunk int, pace time.Duration, size int64) Option {
	return func(c *config) { c.noEOFChunk, c.noEOFPace, c.noEOFSize = chunk, pace, size }
}

// WithSeed seeds the garbage peer's random bytes (default 1): runs repeat.
func WithSeed(seed uint64) Option { return func(c *config) { c.seed = seed } }

// Peer is one hostile agent on a unix socket.
type Peer struct {
	mode Mode
	cfg  config
	path string
	ln   net.Listener

	ctx    context.Context // ends when the peer closes: wakes delayed answers
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup
	sent   atomic.Int64

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]struct{}
	nconn   uint64
	calls   map[string]int
	handles map[int64]*handle
	nextH   int64
	procs   map[int64]proc
	nextPID int64
	lies    map[int64]string // the lies peer's programs, by pid
}

type handle struct {
	data  []byte
	pos   int64
	noEOF bool
}

type proc struct {
	code        int
	out, errOut []byte
}

// Serve listens on the unix socket path and serves mode until ctx ends or
// Close. The socket must not exist yet; keep path short (108 bytes).
func Serve(ctx context.Context, path string, mode Mode, opts ...Option) (*Peer, error) {
	if _, err := ParseMode(string(mode)); err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	cfg := config{
		name: DefaultName, hugeSize: DefaultHugeSize, hugeCommand: DefaultHugeCommand,
		slowDelay: DefaultSlowDelay, noEOFChunk: DefaultNoEOFChunk, noEOFPace: DefaultNoEOFPace,
		noEOFSize: DefaultNoEOFSize, seed: 1,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.noEOFChunk <= 0 {
		cfg.noEOFChunk = DefaultNoEOFChunk
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &Peer{
		mode: mode, cfg: cfg, path: path, ln: ln, ctx: pctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, calls: map[string]int{},
		handles: map[int64]*handle{}, nextH: 1000, procs: map[int64]proc{}, nextPID: 4000,
	}
	stop := context.AfterFunc(ctx, func() { p.Close() })
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer stop()
		p.accept()
	}()
	return p, nil
}

// Addr is the peer's address in guestdeck's form, "unix:PATH".
func (p *Peer) Addr() string { return "unix:" + p.path }

// Path is the peer's socket.
func (p *Peer) Path() string { return p.path }

// Mode is how the peer is hostile.
func (p *Peer) Mode() Mode { return p.mode }

// Calls counts the requests for command name the peer received.
func (p *Peer) Calls(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[name]
}

// BytesSent counts the bytes the peer has written to its clients.
func (p *Peer) BytesSent() int64 { return p.sent.Load() }

// Close stops the peer: the listener and every connection close, delayed
// answers are abandoned, and Close returns once its goroutines are gone.
func (p *Peer) Close() error {
	var err error
	p.once.Do(func() {
		p.cancel()
		err = p.ln.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	p.wg.Wait()
	return err
}

func (p *Peer) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.nconn++
		rng := rand.New(rand.NewPCG(p.cfg.seed, p.nconn))
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.serveConn(c, rng)
		}()
	}
}

// serveConn reads requests and answers each in order, on this goroutine:
// a delayed or huge answer holds up the ones after it, as in the agent.
func (p *Peer) serveConn(c net.Conn, rng *rand.Rand) {
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	var sp splitter
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		var werr error
		sp.feed(buf[:n],
			func(m []byte) {
				if werr == nil {
					werr = p.handle(c, m, rng)
				}
			},
			func(desc string) {
				if werr == nil {
					werr = p.answer(c, rng, false, errorLine("GenericError", desc, nil))
				}
			})
		if err != nil || werr != nil {
			return
		}
	}
}

// answer writes one reply line (the garbage peer writes noise instead).
func (p *Peer) answer(c net.Conn, rng *rand.Rand, delimited bool, line []byte) error {
	if p.mode == Garbage {
		line = make([]byte, 16+rng.IntN(4080))
		for i := range line {
			line[i] = byte(rng.Uint32())
		}
		line[len(line)-1] = '\n'
		delimited = false
	}
	if delimited {
		line = append([]byte{0xFF}, line...)
	}
	return p.write(c, line)
}

func (p *Peer) write(c net.Conn, b []byte) error {
	n, err := c.Write(b)
	p.sent.Add(int64(n))
	return err
}

// sleep waits d, or less if the peer closes; it reports whether d passed.
func (p *Peer) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

type request struct {
	Execute   *string         `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        json.RawMessage `json:"id"`
}

// agentError is an error reply.
type agentError struct{ class, desc string }

func notFound(name string) *agentError {
	return &agentError{"CommandNotFound", "The command " + name + " has not been found"}
}

// hostileError is the escapes peer's failure: class and description are
// both the guest's words.
func hostileError() *agentError { return &agentError{Text(FieldErrorClass), Text(FieldErrorDesc)} }

// handle answers one request message.
func (p *Peer) handle(c net.Conn, msg []byte, rng *rand.Rand) error {
	var req request
	if msg[0] != '{' {
		return p.answer(c, rng, false, errorLine("GenericError", "QMP input must be a JSON object", nil))
	}
	if err := json.Unmarshal(msg, &req); err != nil {
		return p.answer(c, rng, false, errorLine("GenericError", "JSON parse error, "+err.Error(), nil))
	}
	id := echoID(req.ID)
	if req.Execute == nil {
		return p.answer(c, rng, false, errorLine("GenericError", "QMP input lacks member 'execute'", id))
	}
	name := *req.Execute
	p.mu.Lock()
	p.calls[name]++
	p.mu.Unlock()

	if name == "guest-sync" || name == "guest-sync-delimited" {
		var a struct {
			ID json.Number `json:"id"`
		}
		if json.Unmarshal(req.Arguments, &a) != nil || a.ID == "" {
			return p.answer(c, rng, false, errorLine("GenericError", "Parameter 'id' is missing", id))
		}
		return p.answer(c, rng, name == "guest-sync-delimited", replyLine([]byte(a.ID), id))
	}
	known, enabled := false, false
	for _, cmd := range p.commands() {
		if cmd.name == name {
			known, enabled = true, cmd.enabled
		}
	}
	switch {
	case !known:
		e := notFound(name)
		return p.answer(c, rng, false, errorLine(e.class, e.desc, id))
	case !enabled:
		return p.answer(c, rng, false, errorLine("CommandNotFound", "Command "+name+" has been disabled", id))
	}

	if p.mode == Huge && name == p.cfg.hugeCommand {
		if head, tail, n, ok := p.hugeParts(name, id, p.cfg.hugeSize); ok {
			return p.writeHuge(c, head, n, tail)
		}
	}
	if p.mode == Slow && slowItem(name) && !p.sleep(p.cfg.slowDelay) {
		return errClosing
	}
	if p.mode == Lies && name == "guest-exec-status" && p.lateStatus(req.Arguments) && !p.sleep(p.cfg.slowDelay) {
		return errClosing
	}
	ret, aerr := p.run(name, req.Arguments)
	if aerr != nil {
		return p.answer(c, rng, false, errorLine(aerr.class, aerr.desc, id))
	}
	return p.answer(c, rng, false, replyLine(appendJSON(nil, ret), id))
}

var errClosing = errors.New("hostile: peer closing")

// slowItem reports whether guestdeck polls name only now and then (the
// slow interval), which the slow peer delays.
func slowItem(name string) bool {
	switch name {
	case "guest-info", "guest-get-osinfo", "guest-get-host-name", "guest-get-timezone", "guest-get-users", "guest-get-fsinfo":
		return true
	}
	return false
}

// writeHuge writes head, n padding bytes and tail as fast as the socket
// takes them, from one small buffer.
func (p *Peer) writeHuge(c net.Conn, head []byte, n int64, tail []byte) error {
	if err := p.write(c, head); err != nil {
		return err
	}
	pad := []byte(strings.Repeat("A", 256<<10)) // valid in a string and in base64
	for n > 0 {
		k := min(n, int64(len(pad)))
		if err := p.write(c, pad[:k]); err != nil {
			return err
		}
		n -= k
	}
	return p.write(c, tail)
}

// run executes a command the peer enabled and returns its value or error.
func (p *Peer) run(name string, args json.RawMessage) (any, *agentError) {
	if p.mode == Escapes && name == "guest-ping" {
		return nil, hostileError()
	}
	if v, ok := p.value(name); ok {
		return v, nil
	}
	switch name {
	case "guest-ssh-get-authorized-keys":
		return p.authorizedKeys(), nil
	case "guest-file-open":
		return p.fileOpen(args)
	case "guest-file-read":
		return p.fileRead(args)
	case "guest-file-seek":
		return p.fileSeek(args)
	case "guest-file-close":
		var a struct {
			Handle int64 `json:"handle"`
		}
		json.Unmarshal(args, &a)
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, ok := p.handles[a.Handle]; !ok {
			return nil, badHandle(a.Handle)
		}
		delete(p.handles, a.Handle)
		return object{}, nil
	case "guest-exec":
		if p.mode == Lies {
			return p.lieExec(args)
		}
		return p.exec(args)
	case "guest-exec-status":
		if p.mode == Lies {
			return p.lieExecStatus(args)
		}
		var a struct {
			PID int64 `json:"pid"`
		}
		json.Unmarshal(args, &a)
		p.mu.Lock()
		pr, ok := p.procs[a.PID]
		delete(p.procs, a.PID)
		p.mu.Unlock()
		if !ok {
			return nil, hostileError()
		}
		return execStatus(pr.code, pr.out, pr.errOut), nil
	}
	return nil, notFound(name)
}

func badHandle(h int64) *agentError {
	return &agentError{"GenericError", fmt.Sprintf("handle '%d' has not been found", h)}
}

func (p *Peer) fileOpen(args json.RawMessage) (any, *agentError) {
	var a struct {
		Path string `json:"path"`
		Mode string `json:"mode"`
	}
	if json.Unmarshal(args, &a) != nil || a.Path == "" {
		return nil, &agentError{"GenericError", "Parameter 'path' is missing"}
	}
	if a.Mode == "" {
		a.Mode = "r"
	}
	h := &handle{}
	switch {
	case p.mode == NoEOF:
		h.noEOF = true
	case p.mode == Escapes && path.Base(a.Path) == FileName:
		h.data = []byte(FileContent)
	case p.mode == Escapes:
		return nil, hostileError()
	default:
		return nil, &agentError{"GenericError", fmt.Sprintf("failed to open file '%s' (mode: '%s'): No such file or directory", a.Path, a.Mode)}
	}
	if !strings.HasPrefix(a.Mode, "r") || strings.Contains(a.Mode, "+") {
		return nil, &agentError{"GenericError", fmt.Sprintf("failed to open file '%s' (mode: '%s'): Permission denied", a.Path, a.Mode)}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.nextH
	p.nextH++
	p.handles[n] = h
	return int64(n), nil
}

// noEOFData is what the noeof peer's files hold, over and over.
const noEOFData = "the noeof peer's file never ends\n"

func (p *Peer) fileRead(args json.RawMessage) (any, *agentError) {
	a := struct {
		Handle int64 `json:"handle"`
		Count  int64 `json:"count"`
	}{Count: 4096} // the schema's default
	if json.Unmarshal(args, &a) != nil {
		return nil, &agentError{"GenericError", "Invalid parameter type for 'handle', expected: integer"}
	}
	if a.Count < 0 {
		return nil, &agentError{"GenericError", fmt.Sprintf("value '%d' is invalid for argument count", a.Count)}
	}
	p.mu.Lock()
	h, ok := p.handles[a.Handle]
	p.mu.Unlock()
	if !ok {
		return nil, badHandle(a.Handle)
	}
	if h.noEOF {
		if !p.sleep(p.cfg.noEOFPace) {
			return nil, &agentError{"GenericError", "peer closing"}
		}
		n := min(a.Count, int64(p.cfg.noEOFChunk))
		b := make([]byte, n)
		for i := range b {
			b[i] = noEOFData[(h.pos+int64(i))%int64(len(noEOFData))]
		}
		p.mu.Lock()
		h.pos += n
		p.mu.Unlock()
		return object{{"count", n}, {"buf-b64", base64.StdEncoding.EncodeToString(b)}, {"eof", false}}, nil
	}
	p.mu.Lock()
	start := min(h.pos, int64(len(h.data)))
	end := min(start+a.Count, int64(len(h.data)))
	h.pos = end
	p.mu.Unlock()
	b := h.data[start:end]
	return object{{"count", len(b)}, {"buf-b64", base64.StdEncoding.EncodeToString(b)}, {"eof", end >= int64(len(h.data))}}, nil
}

func (p *Peer) fileSeek(args json.RawMessage) (any, *agentError) {
	var a struct {
		Handle int64           `json:"handle"`
		Offset int64           `json:"offset"`
		Whence json.RawMessage `json:"whence"`
	}
	if json.Unmarshal(args, &a) != nil {
		return nil, &agentError{"GenericError", "Invalid parameter type for 'offset', expected: integer"}
	}
	whence := strings.Trim(string(a.Whence), `" `)
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.handles[a.Handle]
	if !ok {
		return nil, badHandle(a.Handle)
	}
	size := int64(len(h.data))
	if h.noEOF {
		size = p.cfg.noEOFSize
	}
	var pos int64
	switch whence {
	case "0", "set":
		pos = a.Offset
	case "1", "cur":
		pos = h.pos + a.Offset
	case "2", "end":
		pos = size + a.Offset
	default:
		return nil, &agentError{"GenericError", "Invalid parameter 'whence'"}
	}
	if pos < 0 {
		return nil, &agentError{"GenericError", "failed to seek file: Invalid argument"}
	}
	h.pos = pos
	return object{{"eof", false}, {"position", pos}}, nil
}

// exec runs the escapes peer's "programs": the directory listing script
// lists "/" (DirEntries) and fails on anything else; any other program
// prints hostile text and exits 3.
func (p *Peer) exec(args json.RawMessage) (any, *agentError) {
	var a struct {
		Path string   `json:"path"`
		Arg  []string `json:"arg"`
	}
	if json.Unmarshal(args, &a) != nil || a.Path == "" {
		return nil, &agentError{"GenericError", "Parameter 'path' is missing"}
	}
	pr := proc{code: 3, out: []byte(Text(FieldExecOut)), errOut: []byte(Text(FieldExecErr))}
	if len(a.Arg) >= 4 && a.Arg[0] == "-c" && strings.Contains(a.Arg[1], "stat -c") {
		if dir := a.Arg[3]; dir == "/" {
			pr = proc{code: 0, out: listing()}
		} else {
			pr = proc{code: 1, errOut: []byte(Text(FieldExecErr))}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pid := p.nextPID
	p.nextPID++
	p.procs[pid] = pr
	return object{{"pid", pid}}, nil
}
