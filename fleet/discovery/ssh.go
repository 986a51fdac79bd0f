package discovery

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/user"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/internal/blocking"
)

// SSHScheme is the address scheme of agent sockets reached through ssh:
// ssh://[user@]host[:port]/abs/path.sock.
const SSHScheme = "ssh"

// Timing of an ssh host's connection.
const (
	// DefaultSSHKeepalive is how often an idle connection is checked with
	// a keepalive@openssh.com request (OpenSSH's ServerAliveInterval).
	DefaultSSHKeepalive = 15 * time.Second
	// DefaultSSHKeepaliveTimeout is how long a keepalive may go unanswered
	// before the connection is given up as dead (a hung sshd, a cable).
	DefaultSSHKeepaliveTimeout = 10 * time.Second
	// sshCommandTimeout bounds one remote command (a socket listing, a
	// Proxmox VM config), the session's opening included.
	sshCommandTimeout = 10 * time.Second
	// maxIdentityBytes bounds the private key file read.
	maxIdentityBytes = 64 << 10
	// bridgeBuffer is each direction's copy buffer of a forwarded agent
	// socket: small, like the fleet's stream read buffers.
	bridgeBuffer = 4 << 10
)

// SSHConfig is one ssh host: every guest whose agent socket is on it is
// reached over one ssh connection, and [[sockets]] patterns on it are
// listed over the same connection.
type SSHConfig struct {
	// URL names the host (its Path is not used): user, host, port.
	URL config.SSHURL
	// KnownHosts is the known_hosts file the host key is checked against,
	// always, unless InsecureIgnoreHostKey. Unknown keys are never added.
	KnownHosts            string
	InsecureIgnoreHostKey bool
	// Identity is the private key to log in with; "" uses the ssh agent
	// at $SSH_AUTH_SOCK.
	Identity string
	// Keepalive and KeepaliveTimeout; zero takes the defaults.
	Keepalive, KeepaliveTimeout time.Duration
	// Guests names the fleet's own guests ([[guest]] entries) at ssh://
	// addresses on this host: counted in its State and polled at once when
	// the connection comes back.
	Guests []string
}

// SSHEndpoint is the key of the ssh connection u needs:
// "user@host:port", the user defaulting to the current one. Addresses
// with the same endpoint share one connection.
func SSHEndpoint(u config.SSHURL) string {
	usr := u.User
	if usr == "" {
		usr = currentUser()
	}
	return usr + "@" + net.JoinHostPort(u.Host, u.Port)
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// SSH is the Source of one ssh host. It keeps one connection, checked with
// keepalives and redialled with backoff and jitter when it is lost; its
// guests' agent sockets are forwarded over it (direct-streamlocal, what
// `ssh -L local.sock:remote.sock` uses), one channel per agent session.
// It discovers no guests itself: [[guest]] entries and Sockets sources
// name them.
type SSH struct {
	cfg     SSHConfig
	user    string
	addr    string // host:port
	name    string // SSHEndpoint
	rng     *rand.Rand
	sink    Sink
	options func(context.Context) []agentclient.Option

	mu       sync.Mutex
	client   *ssh.Client // nil while down
	down     error
	state    State
	up       chan struct{} // closed while connected
	kick     chan struct{}
	watchers []sshWatcher
}

// sshWatcher is a source that lists guests over this host (Sockets).
type sshWatcher struct {
	up     func()     // the connection came (back) up
	guests func() int // how many guests it holds now
}

// NewSSH checks c and returns its host's Source. Nothing is dialled
// before Run.
func NewSSH(c SSHConfig) (*SSH, error) {
	if c.URL.Host == "" || c.URL.Port == "" {
		return nil, fmt.Errorf("ssh host %q: no host or port", c.URL.Raw)
	}
	if c.KnownHosts == "" && !c.InsecureIgnoreHostKey {
		return nil, fmt.Errorf("ssh host %s: no known_hosts file (host keys are always checked unless insecure_ignore_host_key = true)", c.URL.Host)
	}
	if c.Keepalive <= 0 {
		c.Keepalive = DefaultSSHKeepalive
	}
	if c.KeepaliveTimeout <= 0 {
		c.KeepaliveTimeout = DefaultSSHKeepaliveTimeout
	}
	s := &SSH{cfg: c, addr: net.JoinHostPort(c.URL.Host, c.URL.Port), name: SSHEndpoint(c.URL),
		up: make(chan struct{}), kick: make(chan struct{}, 1)}
	s.user = strings.TrimSuffix(s.name, "@"+s.addr)
	seed := fnv.New64a()
	seed.Write([]byte(s.name))
	s.rng = rand.New(rand.NewPCG(seed.Sum64(), uint64(time.Now().UnixNano())))
	s.state = State{Name: s.name, Kind: "ssh", Endpoint: "ssh://" + s.name, Phase: Connecting, Since: time.Now()}
	return s, nil
}

// Name is "user@host:port".
func (s *SSH) Name() string { return s.name }

// Scheme is "ssh".
func (s *SSH) Scheme() string { return SSHScheme }

// Owns reports whether address is an ssh:// socket on this host (with
// the same user and port).
func (s *SSH) Owns(address string) bool {
	u, err := config.ParseSSHURL(address)
	return err == nil && SSHEndpoint(u) == s.name
}

// SetStreamOptions sets the options every agent stream over this host is
// made with (the fleet's read buffer, reply budget and log hook).
func (s *SSH) SetStreamOptions(fn func(context.Context) []agentclient.Option) {
	s.mu.Lock()
	s.options = fn
	s.mu.Unlock()
}

// State is the connection's state; Guests counts the [[guest]] entries
// on it and the guests its socket patterns hold.
func (s *SSH) State() State {
	s.mu.Lock()
	st := s.state
	ws := slices.Clone(s.watchers)
	s.mu.Unlock()
	st.Guests = len(s.cfg.Guests)
	for _, w := range ws {
		st.Guests += w.guests()
	}
	return st
}

// watch registers a source that lists guests over this host. up must not
// block.
func (s *SSH) watch(w sshWatcher) {
	s.mu.Lock()
	s.watchers = append(s.watchers, w)
	s.mu.Unlock()
}

func (s *SSH) changed() {
	if s.sink != nil {
		s.sink.SourceChanged()
	}
}

func (s *SSH) setPhaseLocked(p Phase, err error, retry time.Time) {
	if s.state.Phase != p {
		s.state.Since = time.Now()
	}
	s.state.Phase, s.state.Err, s.state.Retry = p, err, retry
}

// Run connects, then keeps the connection until ctx ends: a keepalive
// that goes unanswered, or a connection that drops, makes the host
// unreachable (its guests' dials fail at once, naming it) and it is
// redialled with backoff; when it is back its guests are polled at once.
func (s *SSH) Run(ctx context.Context, sink Sink, first func(error)) {
	s.sink = sink
	delay := hostBackoffMin
	var wait time.Duration
	cctx, cancel := context.WithTimeout(ctx, hostConnectTimeout)
	c, err := s.connect(cctx)
	cancel()
	if err != nil {
		wait = s.lost(err, delay)
	}
	first(err)
	for {
		if c != nil {
			delay = hostBackoffMin
			s.pokeAll()
			err := s.follow(ctx, c)
			_ = c.Close()
			if ctx.Err() != nil {
				return
			}
			wait = s.lost(err, delay)
			s.pokeAll()
			c = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-s.kick:
			// A thaw waits for this host: try now. The backoff still grows.
		}
		delay = min(2*delay, hostBackoffMax)
		s.mu.Lock()
		s.setPhaseLocked(Reconnecting, s.state.Err, time.Time{})
		s.mu.Unlock()
		s.changed()
		cctx, cancel := context.WithTimeout(ctx, hostConnectTimeout)
		c, err = s.connect(cctx)
		cancel()
		if err != nil {
			c = nil
			wait = s.lost(err, delay)
		}
	}
}

// lost records the host unreachable until the next attempt, after delay
// with ±20% jitter (hosts that dropped together do not redial in step).
func (s *SSH) lost(err error, delay time.Duration) time.Duration {
	wait := time.Duration(float64(delay) * (0.8 + 0.4*s.rng.Float64()))
	s.mu.Lock()
	s.client, s.down = nil, err
	select {
	case <-s.up:
		s.up = make(chan struct{})
	default:
	}
	s.setPhaseLocked(Unreachable, err, time.Now().Add(wait))
	s.mu.Unlock()
	s.changed()
	return wait
}

// pokeAll polls the host's own guests now and tells its socket patterns.
func (s *SSH) pokeAll() {
	for _, n := range s.cfg.Guests {
		s.sink.Poke(n)
	}
	s.mu.Lock()
	ws := slices.Clone(s.watchers)
	s.mu.Unlock()
	for _, w := range ws {
		w.up()
	}
}

// follow sends keepalives until one goes unanswered, the connection
// drops or ctx ends, and says why it stopped.
func (s *SSH) follow(ctx context.Context, c *ssh.Client) error {
	closed := make(chan error, 1)
	go func() { closed <- c.Wait() }()
	tick := time.NewTicker(s.cfg.Keepalive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-closed:
			if err == nil {
				err = errors.New("closed by the server")
			}
			return fmt.Errorf("connection lost: %w", err)
		case <-tick.C:
			if err := s.keepalive(ctx, c); err != nil {
				return err
			}
		}
	}
}

// keepalive sends one keepalive@openssh.com request and waits for its
// reply, at most KeepaliveTimeout: OpenSSH answers it (with a failure,
// which still proves the server alive).
func (s *SSH) keepalive(ctx context.Context, c *ssh.Client) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.KeepaliveTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("connection lost: keepalive: %w", err)
		}
		return nil
	case <-ctx.Done():
		// Closing the connection ends the request (it fails) and every
		// channel on it.
		return fmt.Errorf("no answer to a keepalive within %v", s.cfg.KeepaliveTimeout)
	}
}

// connect dials, checks the host key, logs in, and marks the host up.
func (s *SSH) connect(ctx context.Context) (*ssh.Client, error) {
	hostKey, algos, err := s.hostKeyCheck()
	if err != nil {
		return nil, err
	}
	auth, done, err := s.auth(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var keyErr *HostKeyError
	cfg := &ssh.ClientConfig{
		User: s.user, Auth: []ssh.AuthMethod{auth}, HostKeyAlgorithms: algos,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := hostKey(host, remote, key)
			errors.As(err, &keyErr)
			return err
		},
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	// The handshake and login are bounded by ctx: a server that accepts
	// and then says nothing must not hold this attempt forever.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, s.addr, cfg)
	if !stop() {
		if err == nil {
			_ = cc.Close()
		}
		return nil, fmt.Errorf("ssh handshake: %w", ctx.Err())
	}
	if err != nil {
		_ = conn.Close()
		if keyErr != nil {
			return nil, keyErr // said in full, without the library's prefix
		}
		return nil, fmt.Errorf("ssh handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	c := ssh.NewClient(cc, chans, reqs)
	s.mu.Lock()
	s.client, s.down = c, nil
	select {
	case <-s.up:
	default:
		close(s.up)
	}
	s.setPhaseLocked(Up, nil, time.Time{})
	s.mu.Unlock()
	s.changed()
	return c, nil
}

// HostKeyError is a host key that known_hosts does not vouch for: unknown
// (Known is empty) or different from the one recorded, which is what a
// man in the middle looks like. The connection is refused either way.
type HostKeyError struct {
	Host        string // as known_hosts writes it: "host" or "[host]:port"
	KeyType     string // the key the server offered: "ssh-ed25519"
	Fingerprint string // its SHA256 fingerprint, "SHA256:..."
	File        string // the known_hosts file
	Known       []knownhosts.KnownKey
	Revoked     bool // the key is marked @revoked
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Revoked:
		return fmt.Sprintf("the %s host key %s of %s is marked @revoked in %s; connection refused",
			e.KeyType, e.Fingerprint, e.Host, e.File)
	case len(e.Known) == 0:
		return fmt.Sprintf("host key of %s unknown: the server offers %s key %s, which %s does not list; "+
			"check the fingerprint out of band and add the key (ssh-keyscan), or set insecure_ignore_host_key = true; connection refused",
			e.Host, e.KeyType, e.Fingerprint, e.File)
	}
	var known []string
	for _, k := range e.Known {
		known = append(known, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
	}
	return fmt.Sprintf("HOST KEY MISMATCH for %s (someone may be intercepting the connection): the server offers %s key %s, "+
		"but %s has %s; connection refused", e.Host, e.KeyType, e.Fingerprint, e.File, strings.Join(known, ", "))
}

// hostKeyCheck returns the host key callback and the key algorithms to ask
// for: those of the keys known_hosts has for this host, as OpenSSH does,
// so a server with several keys shows the one the file knows.
func (s *SSH) hostKeyCheck() (ssh.HostKeyCallback, []string, error) {
	if s.cfg.InsecureIgnoreHostKey {
		return ssh.InsecureIgnoreHostKey(), nil, nil
	}
	cb, err := knownhosts.New(s.cfg.KnownHosts)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	file := s.cfg.KnownHosts
	check := func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(host, remote, key)
		if err == nil {
			return nil
		}
		he := &HostKeyError{Host: knownhosts.Normalize(host), KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), File: file}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke):
			he.Known = ke.Want
		case errors.As(err, &re):
			he.Revoked = true
		default:
			return fmt.Errorf("host key check of %s: %w", he.Host, err)
		}
		return he
	}
	// Ask the file which keys it has for the host, with a key it cannot have.
	probe, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	var algos []string
	var ke *knownhosts.KeyError
	if err := cb(s.addr, &net.TCPAddr{IP: net.IPv4zero}, probe); errors.As(err, &ke) {
		for _, k := range ke.Want {
			for _, a := range keyAlgorithms(k.Key.Type()) {
				if !slices.Contains(algos, a) {
					algos = append(algos, a)
				}
			}
		}
	}
	return check, algos, nil
}

// keyAlgorithms are the signature algorithms a key type is used with.
func keyAlgorithms(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// auth is the identity file, or the ssh agent when none is configured.
// done releases the agent connection once the login is over.
func (s *SSH) auth(ctx context.Context) (ssh.AuthMethod, func(), error) {
	if s.cfg.Identity != "" {
		key, err := readBounded(s.cfg.Identity, maxIdentityBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("identity: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			return nil, nil, fmt.Errorf("identity %s is protected by a passphrase: load it into your ssh agent (ssh-add) and leave identity out",
				s.cfg.Identity)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("identity %s: %w", s.cfg.Identity, err)
		}
		return ssh.PublicKeys(signer), func() {}, nil
	}
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, errors.New("no identity configured and no ssh agent ($SSH_AUTH_SOCK is not set)")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh agent: %w", err)
	}
	// The agent is asked during the login, which ctx bounds; so is it.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	ag := agent.NewClient(conn)
	return ssh.PublicKeysCallback(ag.Signers), func() { stop(); _ = conn.Close() }, nil
}

// readBounded reads a small file, refusing one larger than limit.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// current returns the connection, waiting for it (bounded by ctx) while the
// host is making an attempt, or, when wake, after kicking a redial.
func (s *SSH) current(ctx context.Context, wake bool) (*ssh.Client, error) {
	s.mu.Lock()
	c, down, up, phase := s.client, s.down, s.up, s.state.Phase
	s.mu.Unlock()
	if c == nil && (wake || phase == Connecting || phase == Reconnecting) {
		if wake {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		select {
		case <-up:
		case <-ctx.Done():
		}
		s.mu.Lock()
		c, down = s.client, s.down
		s.mu.Unlock()
	}
	if c == nil {
		if down == nil {
			down = errors.New("not connected yet")
		}
		return nil, fmt.Errorf("ssh host %s is not connected: %v", s.name, down)
	}
	return c, nil
}

// Dial opens an agent session to the socket at address: a fresh channel
// forwarded over the host's connection, so every Dial is its own agent
// connection. urgent (a thaw is owed) redials a host that is down now.
func (s *SSH) Dial(ctx context.Context, address string, urgent bool) (agentclient.Agent, error) {
	conn, err := s.DialConn(ctx, address, urgent)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	fn := s.options
	s.mu.Unlock()
	var opts []agentclient.Option
	if fn != nil {
		opts = fn(ctx)
	}
	// The stream synchronises (guest-sync-delimited) on its first call.
	return agentclient.New(agentclient.NewStream(address, conn, opts...)), nil
}

// DialConn forwards the unix socket at address over the host's connection
// and returns it as a net.Conn whose deadlines work (ssh channels have
// none): the agent stream's timeouts rest on them.
func (s *SSH) DialConn(ctx context.Context, address string, urgent bool) (net.Conn, error) {
	u, err := config.ParseSSHURL(address)
	if err != nil {
		return nil, &agentclient.OpError{Addr: address, Err: err}
	}
	if SSHEndpoint(u) != s.name {
		return nil, &agentclient.OpError{Addr: address, Err: fmt.Errorf("not on ssh host %s", s.name)}
	}
	c, err := s.current(ctx, urgent)
	if err != nil {
		return nil, &agentclient.OpError{Addr: address, Err: err}
	}
	ch, err := blocking.CallUndo(ctx, func() (net.Conn, error) { return c.Dial("unix", u.Path) }, func(c net.Conn) { _ = c.Close() })
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: ssh host %s did not open the socket in time", agentclient.ErrTimeout, s.name)
		} else {
			err = fmt.Errorf("ssh host %s: %w", s.name, err)
		}
		return nil, &agentclient.OpError{Addr: address, Err: err}
	}
	return bridge(ch), nil
}

// bridge joins an ssh channel to one end of a synchronous pipe, whose
// deadlines work, and returns the other end. Nothing is buffered beyond
// one small copy buffer per direction: the channel's own flow control
// holds the rest back until the stream reads.
func bridge(ch net.Conn) net.Conn {
	near, far := net.Pipe()
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = ch.Close(); _ = far.Close() }) }
	pump := func(dst io.Writer, src io.Reader) {
		defer closeBoth()
		buf := make([]byte, bridgeBuffer)
		_, _ = io.CopyBuffer(dst, src, buf)
	}
	go pump(far, ch)
	go pump(ch, far)
	return near
}

// Command runs cmd on the host in a session of its own, bounded by ctx
// and sshCommandTimeout, and returns its standard output, which must not
// exceed limit bytes. A non-zero exit is an error carrying the start of
// its standard error.
func (s *SSH) Command(ctx context.Context, cmd string, limit int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, sshCommandTimeout)
	defer cancel()
	c, err := s.current(ctx, false)
	if err != nil {
		return nil, err
	}
	sess, err := blocking.CallUndo(ctx, c.NewSession, func(x *ssh.Session) { _ = x.Close() })
	if err != nil {
		return nil, fmt.Errorf("ssh host %s: open a session: %w", s.name, err)
	}
	defer sess.Close()
	out := &capped{limit: limit}
	errOut := &capped{limit: 512, truncate: true}
	sess.Stdout, sess.Stderr = out, errOut
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Close() // Run returns; its goroutine ends
		return nil, fmt.Errorf("ssh host %s: %q: no answer within %v", s.name, cmd, sshCommandTimeout)
	}
	if out.over {
		return nil, fmt.Errorf("ssh host %s: %q: more than %d bytes of output", s.name, cmd, limit)
	}
	if err != nil {
		msg := strings.TrimSpace(errOut.buf.String())
		if msg != "" {
			return nil, fmt.Errorf("ssh host %s: %q: %w: %s", s.name, cmd, err, msg)
		}
		return nil, fmt.Errorf("ssh host %s: %q: %w", s.name, cmd, err)
	}
	return out.buf.Bytes(), nil
}

// capped keeps at most limit bytes. Past it, it fails the write (which
// ends the copy from the session) or, when truncate, drops the rest.
type capped struct {
	buf      bytes.Buffer
	limit    int
	over     bool
	truncate bool
}

func (w *capped) Write(p []byte) (int, error) {
	room := w.limit - w.buf.Len()
	if len(p) > room {
		w.buf.Write(p[:max(room, 0)])
		w.over = true
		if w.truncate {
			return len(p), nil
		}
		return 0, errors.New("output limit reached")
	}
	return w.buf.Write(p)
}

// shellQuote quotes s for a POSIX shell (and csh and fish, given that s
// holds no single quote, backslash or '!': config refuses those).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
