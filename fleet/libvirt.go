package fleet

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/backoff"
	"github.com/guestdeck/guestdeck/internal/blocking"
)

// HostConfig is one libvirt host. Its running domains that have a guest-agent
// channel (org.qemu.guest_agent.0) become targets named "HOST/DOMAIN" and
// addressed "libvirt:HOST/DOMAIN".
type HostConfig struct {
	Name string // short name shown in the Host column and used in addresses
	// URI is a libvirt URI: qemu:///system, qemu:///session,
	// qemu+unix:///session?socket=/path, qemu+tcp://host/system,
	// qemu+tls://host/system (?pkipath=DIR, ?no_verify=1), qemu+ssh://user@host/system
	// (?socket= for the remote socket path). Any driver works (test+unix://...).
	URI string
	// Include and Exclude are globs (path.Match) on domain names; an empty
	// Include takes every domain, Exclude wins over Include.
	Include, Exclude []string
	Tags             []string // added to every target of this host
	// ssh only: KnownHosts is the known_hosts file (default
	// ~/.ssh/known_hosts); host keys are verified against it unless
	// InsecureIgnoreHostKey. Identity is the private key (default ~/.ssh/id_rsa).
	KnownHosts, Identity  string
	InsecureIgnoreHostKey bool
}

// AgentChannel is the virtio-serial channel name of the QEMU guest agent.
const AgentChannel = "org.qemu.guest_agent.0"

// Reconnect backoff for a lost host connection.
const (
	hostBackoffMin = 500 * time.Millisecond
	hostBackoffMax = 30 * time.Second
	// hostConnectTimeout bounds one background reconnect attempt.
	hostConnectTimeout = 20 * time.Second
	// hostRPCTimeout bounds one discovery call (domain XML, lookup).
	hostRPCTimeout = 10 * time.Second
)

// AddHost connects to a libvirt host, adds its running domains that have a
// guest-agent channel as targets, and follows the host until the fleet is
// closed:
//
//   - a domain that starts is added; AGENT_LIFECYCLE "connected" pokes the
//     guest, so it turns ready without waiting for a poll, and an agent
//     disconnecting from a running guest pokes it too, so the loss shows at
//     once; pause and resume poke it as well;
//   - a domain that stops is marked Gone and kept while it is defined
//     (persistent), so the list shows it went down; an undefined or
//     transient domain is removed;
//   - a lost connection makes this host's guests unreachable with an error
//     naming the host, and is redialed with backoff and jitter; on
//     reconnect the domains are rediscovered. Other hosts are unaffected.
//
// Target names: always "HOST/DOMAIN" (see QualifiedName), whatever else is
// in the fleet and whichever host answers first.
//
// ctx bounds the first connection and discovery only. Configuration errors
// are returned and nothing is started. A failed first connection is returned
// too, but the host stays registered and keeps retrying in the background:
// its guests appear once it answers.
func (f *Fleet) AddHost(ctx context.Context, h HostConfig) error {
	if h.Name == "" || strings.ContainsAny(h.Name, "/ ") {
		return fmt.Errorf("libvirt host %q: name must be non-empty without '/' or spaces", h.Name)
	}
	for _, g := range append(append([]string(nil), h.Include...), h.Exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("libvirt host %s: bad glob %q: %w", h.Name, g, err)
		}
	}
	dialer, remote, err := libvirtDialer(h)
	if err != nil {
		return fmt.Errorf("libvirt host %s: %w", h.Name, err)
	}
	host := &libvirtHost{
		f: f, cfg: h, dialer: dialer, remote: remote,
		guests: make(map[string]string),
		kick:   make(chan struct{}, 1),
		up:     make(chan struct{}),
		rng:    rand.New(rand.NewPCG(nameHash(h.Name), uint64(time.Now().UnixNano()))),
	}

	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return fmt.Errorf("libvirt host %s: fleet is closed", h.Name)
	}
	if f.libvirt == nil {
		f.libvirt = &libvirtHosts{f: f, hosts: make(map[string]*libvirtHost)}
		f.dialers["libvirt"] = f.libvirt.dial
	}
	reg := f.libvirt
	f.wg.Add(1) // under f.mu: Close cannot be waiting yet
	f.mu.Unlock()
	host.reg = reg
	reg.mu.Lock()
	_, dup := reg.hosts[h.Name]
	if !dup {
		reg.hosts[h.Name] = host
	}
	reg.mu.Unlock()
	if dup {
		f.wg.Done()
		return fmt.Errorf("libvirt host %s: already added", h.Name)
	}

	conn, firstErr := host.connect(ctx)
	if firstErr != nil {
		host.setDown(firstErr)
	}
	go func() {
		defer f.wg.Done()
		host.run(conn)
	}()
	if firstErr != nil {
		return fmt.Errorf("libvirt host %s (%s): %w (retrying in the background)", h.Name, h.URI, firstErr)
	}
	return nil
}

// libvirtHosts is a fleet's set of libvirt hosts. Its dial method is the
// fleet's "libvirt" dialer; its mutex serialises choosing target names and
// adding them, so hosts discovering at the same time never take each other's
// names.
type libvirtHosts struct {
	f     *Fleet
	mu    sync.Mutex
	hosts map[string]*libvirtHost
}

// dial returns a LibvirtAgent over the current connection of the target's host.
func (r *libvirtHosts) dial(ctx context.Context, t Target) (agentclient.Agent, error) {
	hostName, dom, err := parseLibvirtAddress(t.Address)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	h := r.hosts[hostName]
	r.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("address %s: no libvirt host named %q", t.Address, hostName)
	}
	if dom == "" {
		return nil, fmt.Errorf("address %s names no domain", t.Address)
	}
	return h.dial(ctx, t, dom)
}

// libvirtHost follows one host's connection, domains and events.
type libvirtHost struct {
	f      *Fleet
	reg    *libvirtHosts
	cfg    HostConfig
	dialer socket.Dialer
	remote libvirt.ConnectURI
	rng    *rand.Rand // reconnect jitter; used by the run goroutine only

	mu     sync.Mutex
	conn   *libvirt.Libvirt // nil while down
	down   error            // why it is down
	guests map[string]string
	// events of the current connection; set by connect, read by run.
	lifecycle, agent <-chan any
	// up is closed while connected (replaced by setDown); kick makes run
	// redial now instead of at its next backoff (a thaw is owed).
	up   chan struct{}
	kick chan struct{}
}

// libvirtDialer builds the socket dialer for h.URI and the URI to open on the
// daemon once connected.
func libvirtDialer(h HostConfig) (socket.Dialer, libvirt.ConnectURI, error) {
	u, err := url.Parse(h.URI)
	if err != nil {
		return nil, "", fmt.Errorf("bad URI %q: %w", h.URI, err)
	}
	if u.Scheme == "" {
		return nil, "", fmt.Errorf("URI %q has no scheme (want e.g. qemu:///system)", h.URI)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if transport == "" {
		transport = "unix"
		if u.Host != "" {
			transport = "tls" // libvirt's default for a remote URI
		}
	}
	remote := libvirt.ConnectURI((&url.URL{Scheme: driver, Path: u.Path}).String())
	if u.Path == "" {
		remote = libvirt.ConnectURI(driver + ":///system")
	}
	q := u.Query()
	if name := q.Get("name"); name != "" {
		remote = libvirt.ConnectURI(name)
	}
	switch transport {
	case "unix":
		sock := q.Get("socket")
		if sock == "" {
			sock = defaultLocalSocket(u.Path)
		}
		return dialers.NewLocal(dialers.WithSocket(sock)), remote, nil
	case "tcp":
		var opts []dialers.RemoteOption
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UsePort(p))
		}
		return dialers.NewRemote(u.Hostname(), opts...), remote, nil
	case "tls":
		var opts []dialers.TLSOption
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UseTLSPort(p))
		}
		if pki := q.Get("pkipath"); pki != "" {
			opts = append(opts, dialers.UsePKIPath(pki))
		}
		if q.Get("no_verify") == "1" {
			opts = append(opts, dialers.WithInsecureNoVerify())
		}
		return dialers.NewTLS(u.Hostname(), opts...), remote, nil
	case "ssh", "libssh", "libssh2":
		opts, err := sshOptions(h, u)
		if err != nil {
			return nil, "", err
		}
		return dialers.NewSSH(u.Hostname(), opts...), remote, nil
	}
	return nil, "", fmt.Errorf("URI %q: unsupported transport %q (want unix, tcp, tls or ssh)", h.URI, transport)
}

// sshOptions configures go-libvirt's ssh dialer. Host keys are checked
// against known_hosts (golang.org/x/crypto/ssh/knownhosts inside the dialer):
// an unknown or changed key fails the connection unless the config says
// InsecureIgnoreHostKey. Unknown keys are never added to the file.
func sshOptions(h HostConfig, u *url.URL) ([]dialers.SSHOption, error) {
	home, _ := os.UserHomeDir()
	known := h.KnownHosts
	if known == "" {
		if home == "" {
			return nil, errors.New("ssh: no known_hosts file configured and no home directory")
		}
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	opts := []dialers.SSHOption{dialers.UseKnownHostsFile(known)}
	if u.User != nil {
		opts = append(opts, dialers.UseSSHUsername(u.User.Username()))
	}
	if p := u.Port(); p != "" {
		opts = append(opts, dialers.UseSSHPort(p))
	}
	if h.Identity != "" {
		opts = append(opts, dialers.UseKeyFile(h.Identity))
	}
	if h.InsecureIgnoreHostKey {
		opts = append(opts, dialers.WithInsecureIgnoreHostKey())
	}
	if s := u.Query().Get("socket"); s != "" {
		opts = append(opts, dialers.WithRemoteSocket(s))
	}
	return opts, nil
}

// defaultLocalSocket is where a local libvirtd listens for path ("/system"
// or "/session"), as libvirt's own client computes it.
func defaultLocalSocket(p string) string {
	if p == "/session" {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
			return filepath.Join(rt, "libvirt", "libvirt-sock")
		}
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, ".cache", "libvirt", "libvirt-sock")
		}
	}
	return "/var/run/libvirt/libvirt-sock"
}

// parseLibvirtAddress splits "libvirt:HOST/DOMAIN".
func parseLibvirtAddress(addr string) (host, domain string, err error) {
	rest, ok := strings.CutPrefix(addr, "libvirt:")
	if !ok {
		return "", "", fmt.Errorf("address %q is not libvirt:HOST/DOMAIN", addr)
	}
	host, domain, _ = strings.Cut(rest, "/")
	if host == "" {
		return "", "", fmt.Errorf("address %q names no libvirt host", addr)
	}
	return host, domain, nil
}

// dial opens a LibvirtAgent for domain dom over the host's connection.
func (h *libvirtHost) dial(ctx context.Context, t Target, dom string) (agentclient.Agent, error) {
	h.mu.Lock()
	conn, down, up := h.conn, h.down, h.up
	h.mu.Unlock()
	if (conn == nil || !conn.IsConnected()) && urgentDial(ctx) {
		// A thaw is owed: redial the host now and wait for it (bounded by
		// the dial's deadline) rather than fail until its next backoff.
		select {
		case h.kick <- struct{}{}:
		default:
		}
		select {
		case <-up:
		case <-ctx.Done():
		}
		h.mu.Lock()
		conn, down = h.conn, h.down
		h.mu.Unlock()
	}
	if conn == nil || !conn.IsConnected() {
		if down == nil {
			down = errors.New("connection lost")
		}
		// Not ErrConnLost: the guest is unreachable until the host is back.
		return nil, &agentclient.OpError{Addr: t.Address,
			Err: fmt.Errorf("libvirt host %s (%s) is not connected: %v", h.cfg.Name, h.cfg.URI, down)}
	}
	d, err := blocking.Call(ctx, func() (libvirt.Domain, error) { return conn.DomainLookupByName(dom) })
	if err != nil {
		return nil, &agentclient.OpError{Addr: t.Address, Err: fmt.Errorf("libvirt host %s: domain %s: %w", h.cfg.Name, dom, err)}
	}
	return agentclient.NewLibvirt(conn, d, t.Address), nil
}

// connect dials the host, subscribes to domain and agent lifecycle events,
// and then discovers the running domains (subscribing first means no start
// or stop between the two is missed). On success the host is up.
func (h *libvirtHost) connect(ctx context.Context) (*libvirt.Libvirt, error) {
	l := libvirt.NewWithDialer(h.dialer)
	// An abandoned attempt may still succeed: hang up then.
	_, err := blocking.CallUndo(ctx, func() (struct{}, error) { return struct{}{}, l.ConnectToURI(h.remote) },
		func(struct{}) { _ = l.Disconnect() })
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	fail := func(err error) (*libvirt.Libvirt, error) {
		_ = l.Disconnect()
		return nil, err
	}
	// Streams end when the connection drops (run disconnects when the fleet
	// closes). Not when a context ends: go-libvirt then sends a deregister
	// that races with the disconnect, and libvirtd 9.0 segfaults in that
	// race (3 daemons crashed in 810 short CLI runs, none in 1,890 without).
	lc, err := l.SubscribeEvents(context.Background(), libvirt.DomainEventIDLifecycle, nil)
	if err != nil {
		return fail(fmt.Errorf("subscribe to lifecycle events: %w", err))
	}
	ag, err := l.SubscribeEvents(context.Background(), libvirt.DomainEventIDAgentLifecycle, nil)
	if err != nil {
		// Drivers without agent events still work; guests are polled.
		ag = nil
	}
	if err := h.discover(ctx, l); err != nil {
		return fail(fmt.Errorf("discover domains: %w", err))
	}
	h.mu.Lock()
	h.conn, h.down = l, nil
	h.lifecycle, h.agent = lc, ag
	select {
	case <-h.up:
	default:
		close(h.up)
	}
	h.mu.Unlock()
	return l, nil
}

// discover lists running domains and brings this host's targets in line:
// new agent-capable domains are added (and poked when their agent is already
// connected), known ones no longer running are marked gone or removed.
func (h *libvirtHost) discover(ctx context.Context, l *libvirt.Libvirt) error {
	doms, err := blocking.Call(ctx, func() ([]libvirt.Domain, error) {
		d, _, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive)
		return d, err
	})
	if err != nil {
		return err
	}
	type found struct {
		dom              libvirt.Domain
		agent, connected bool
		err              error
	}
	res := make([]found, len(doms))
	// XML fetches are independent RPCs: pipeline them over the connection.
	forEach(ctx, len(doms), 16, func(i int) {
		res[i].dom = doms[i]
		if !h.wanted(doms[i].Name) {
			return
		}
		res[i].agent, res[i].connected, res[i].err = h.agentChannel(ctx, l, doms[i])
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range res {
		// A domain that stopped since the listing is simply not running.
		if r.err != nil && !libvirt.IsNotFound(r.err) {
			return fmt.Errorf("domain %s: %w", r.dom.Name, r.err)
		}
	}
	running := make(map[string]bool, len(doms))
	var add []string
	var poke []string // domains whose agent is connected already
	for _, r := range res {
		if !r.agent {
			continue
		}
		running[r.dom.Name] = true
		add = append(add, r.dom.Name)
		if r.connected {
			poke = append(poke, r.dom.Name)
		}
	}
	h.mu.Lock()
	var gone []string
	for dom := range h.guests {
		if !running[dom] {
			gone = append(gone, dom)
		}
	}
	h.mu.Unlock()
	h.addTargets(add)
	for _, dom := range gone {
		h.stopped(ctx, l, libvirt.Domain{Name: dom}, "domain not running (seen on reconnect)", true)
	}
	for _, dom := range poke {
		if name, ok := h.name(dom); ok {
			h.f.Poke(name)
		}
	}
	h.markPMSuspended(ctx, l)
	return nil
}

// markPMSuspended marks the guests whose domain libvirt reports
// pmsuspended (suspended by their agent, by anyone) as suspended.
func (h *libvirtHost) markPMSuspended(ctx context.Context, l *libvirt.Libvirt) {
	// pmsuspended has no list filter of its own: it is one of "other"
	// (neither running, paused nor shut off), which are rare.
	doms, err := blocking.Call(ctx, func() ([]libvirt.Domain, error) {
		d, _, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive|libvirt.ConnectListDomainsOther)
		return d, err
	})
	if err != nil {
		return // then the guests go silent instead
	}
	for _, d := range doms {
		st, err := blocking.Call(ctx, func() (int32, error) {
			st, _, err := l.DomainGetState(d, 0)
			return st, err
		})
		if err != nil || libvirt.DomainState(st) != libvirt.DomainPmsuspended {
			continue
		}
		if name, ok := h.name(d.Name); ok {
			h.f.markSuspended(name, "libvirt host "+h.cfg.Name+" reports the domain pmsuspended")
		}
	}
}

// addTargets adds the domains not yet known as targets, each named
// QualifiedName(host, domain). The hosts' shared lock makes the check and
// the Add one step.
func (h *libvirtHost) addTargets(doms []string) {
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	var ts []Target
	for _, dom := range doms {
		h.mu.Lock()
		_, known := h.guests[dom]
		h.mu.Unlock()
		if known {
			continue
		}
		name := QualifiedName(h.cfg.Name, dom)
		if s := h.f.session(name); s != nil && s.target.Address != h.address(dom) {
			// Only a caller of Add can have put another target under this
			// name ('/' is in no configured guest's name): replacing it
			// would change which guest the name means.
			continue
		}
		h.mu.Lock()
		h.guests[dom] = name
		h.mu.Unlock()
		ts = append(ts, Target{Name: name, Host: h.cfg.Name, Address: h.address(dom), Tags: slices.Clone(h.cfg.Tags), hostURI: h.cfg.URI})
	}
	h.f.Add(ts...)
}

// QualifiedName is the name of the guest discovered as domain dom on the
// libvirt host named host: "HOST/DOMAIN". It depends on nothing else — not on
// other hosts, the [[guest]]s, or the order hosts answer in — so a guest's
// name is the same in every run, and a host that connects later adds names
// without changing one. A bare domain name selects nothing (Select says which
// guests it might mean).
func QualifiedName(host, dom string) string { return host + "/" + dom }

// Domain is the libvirt domain of a guest reached through a libvirt host,
// "" for a guest reached directly.
func (t Target) Domain() string {
	if _, dom, err := parseLibvirtAddress(t.Address); err == nil {
		return dom
	}
	return ""
}

func (h *libvirtHost) address(dom string) string { return "libvirt:" + h.cfg.Name + "/" + dom }

// wanted applies Include and Exclude.
func (h *libvirtHost) wanted(dom string) bool {
	for _, g := range h.cfg.Exclude {
		if ok, _ := path.Match(g, dom); ok {
			return false
		}
	}
	if len(h.cfg.Include) == 0 {
		return true
	}
	for _, g := range h.cfg.Include {
		if ok, _ := path.Match(g, dom); ok {
			return true
		}
	}
	return false
}

// domainXML is the part of a domain's XML that discovery reads.
type domainXML struct {
	Channels []struct {
		Target struct {
			Name  string `xml:"name,attr"`
			State string `xml:"state,attr"`
		} `xml:"target"`
	} `xml:"devices>channel"`
}

// agentChannel reports whether dom has a guest-agent channel and whether
// libvirt sees the agent connected on it.
func (h *libvirtHost) agentChannel(ctx context.Context, l *libvirt.Libvirt, dom libvirt.Domain) (has, connected bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, hostRPCTimeout)
	defer cancel()
	x, err := blocking.Call(ctx, func() (string, error) { return l.DomainGetXMLDesc(dom, 0) })
	if err != nil {
		return false, false, err
	}
	var d domainXML
	if err := xml.Unmarshal([]byte(x), &d); err != nil {
		return false, false, fmt.Errorf("domain %s XML: %w", dom.Name, err)
	}
	for _, c := range d.Channels {
		if c.Target.Name == AgentChannel {
			return true, c.Target.State == "connected", nil
		}
	}
	return false, false, nil
}

// setDown records that the host is unreachable and why.
func (h *libvirtHost) setDown(err error) {
	h.mu.Lock()
	h.conn, h.down = nil, err
	h.lifecycle, h.agent = nil, nil
	select {
	case <-h.up:
		h.up = make(chan struct{})
	default:
	}
	h.mu.Unlock()
}

// pokeAll makes every guest of this host poll now (the host went down).
func (h *libvirtHost) pokeAll() {
	h.mu.Lock()
	names := make([]string, 0, len(h.guests))
	for _, n := range h.guests {
		names = append(names, n)
	}
	h.mu.Unlock()
	for _, n := range names {
		h.f.Poke(n)
	}
}

// run follows the host until the fleet closes, reconnecting when the
// connection drops. conn is the connection AddHost made, or nil.
func (h *libvirtHost) run(conn *libvirt.Libvirt) {
	life := h.f.life
	// The jitter keeps hosts that dropped together from redialing in step.
	retry := backoff.Backoff{Min: hostBackoffMin, Max: hostBackoffMax, Rand: h.rng}
	for {
		if conn != nil {
			retry.Reset()
			h.follow(conn)
			if life.Err() != nil {
				_ = conn.Disconnect()
				return
			}
			h.setDown(errors.New("connection lost"))
			h.pokeAll()
			conn = nil
		}
		select {
		case <-life.Done():
			return
		case <-time.After(retry.Next()):
		case <-h.kick:
			// A thaw waits for this host: try now. The backoff still
			// grows, so a host that stays down is not hammered.
		}
		ctx, cancel := context.WithTimeout(life, hostConnectTimeout)
		c, err := h.connect(ctx)
		cancel()
		if err != nil {
			h.mu.Lock()
			h.down = err
			h.mu.Unlock()
			continue
		}
		conn = c
		h.pokeAll() // guests that were unreachable try again at once
	}
}

// follow handles the connection's events until it drops or the fleet closes.
func (h *libvirtHost) follow(l *libvirt.Libvirt) {
	h.mu.Lock()
	lc, ag := h.lifecycle, h.agent
	h.mu.Unlock()
	ctx := h.f.life
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.Disconnected():
			return
		case ev, ok := <-lc:
			if !ok {
				lc = nil
				if !l.IsConnected() {
					return
				}
				continue
			}
			if m, ok := ev.(*libvirt.DomainEventCallbackLifecycleMsg); ok {
				h.lifecycleEvent(ctx, l, m.Msg)
			}
		case ev, ok := <-ag:
			if !ok {
				ag = nil
				continue
			}
			if m, ok := ev.(*libvirt.DomainEventCallbackAgentLifecycleMsg); ok {
				h.agentEvent(ctx, l, m)
			}
		}
	}
}

// lifecycleEvent reacts to a domain starting, stopping or going away.
// go-libvirt delivers events of every domain: filtering is ours.
func (h *libvirtHost) lifecycleEvent(ctx context.Context, l *libvirt.Libvirt, m libvirt.DomainEventLifecycleMsg) {
	switch libvirt.DomainEventType(m.Event) {
	case libvirt.DomainEventStarted:
		h.consider(ctx, l, m.Dom, false)
	case libvirt.DomainEventStopped:
		h.stopped(ctx, l, m.Dom, "domain stopped ("+stoppedReason(m.Detail)+")", true)
	case libvirt.DomainEventShutdown:
		// The guest finished shutting down; STOPPED follows when QEMU exits.
		if libvirt.DomainEventShutdownDetailType(m.Detail) == libvirt.DomainEventShutdownFinished {
			h.stopped(ctx, l, m.Dom, "guest shut down", false)
		}
	case libvirt.DomainEventCrashed:
		h.stopped(ctx, l, m.Dom, "domain crashed", false)
	case libvirt.DomainEventUndefined:
		h.mu.Lock()
		name, ok := h.guests[m.Dom.Name]
		delete(h.guests, m.Dom.Name)
		h.mu.Unlock()
		if ok {
			h.f.Remove(name)
		}
	case libvirt.DomainEventPmsuspended:
		// The host says so itself: no need to wait for the agent to go quiet.
		if name, ok := h.name(m.Dom.Name); ok {
			h.f.markSuspended(name, "libvirt host "+h.cfg.Name+" reports the domain pmsuspended")
		}
	case libvirt.DomainEventResumed, libvirt.DomainEventSuspended:
		if name, ok := h.name(m.Dom.Name); ok {
			h.f.Poke(name)
		}
	}
}

// agentEvent: libvirt saw the guest agent connect or disconnect.
func (h *libvirtHost) agentEvent(ctx context.Context, l *libvirt.Libvirt, m *libvirt.DomainEventCallbackAgentLifecycleMsg) {
	switch libvirt.ConnectDomainEventAgentLifecycleState(m.State) {
	case libvirt.ConnectDomainEventAgentLifecycleStateConnected:
		// Also covers a connect event that overtook the domain's STARTED.
		h.consider(ctx, l, m.Dom, true)
	case libvirt.ConnectDomainEventAgentLifecycleStateDisconnected:
		// At domain start libvirt reports the (never connected) agent as
		// disconnected: nothing to learn from a poll then.
		if libvirt.ConnectDomainEventAgentLifecycleReason(m.Reason) == libvirt.ConnectDomainEventAgentLifecycleReasonDomainStarted {
			return
		}
		if name, ok := h.name(m.Dom.Name); ok {
			h.f.Poke(name)
		}
	}
}

func (h *libvirtHost) name(dom string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.guests[dom]
	return n, ok
}

// consider adds dom if it is wanted and has an agent channel; poke polls it
// now (its agent just connected).
func (h *libvirtHost) consider(ctx context.Context, l *libvirt.Libvirt, dom libvirt.Domain, poke bool) {
	name, known := h.name(dom.Name)
	if !known {
		if !h.wanted(dom.Name) {
			return
		}
		has, _, err := h.agentChannel(ctx, l, dom)
		if err != nil || !has {
			return
		}
		h.addTargets([]string{dom.Name})
		name, _ = h.name(dom.Name)
	}
	if poke {
		h.f.Poke(name)
	}
}

// stopped marks dom's guest gone; when final, a domain that no longer
// exists or is transient is removed instead.
func (h *libvirtHost) stopped(ctx context.Context, l *libvirt.Libvirt, dom libvirt.Domain, reason string, final bool) {
	name, ok := h.name(dom.Name)
	if !ok {
		return
	}
	if final {
		rctx, cancel := context.WithTimeout(ctx, hostRPCTimeout)
		persistent, err := blocking.Call(rctx, func() (int32, error) {
			d, err := l.DomainLookupByName(dom.Name)
			if err != nil {
				return 0, err
			}
			return l.DomainIsPersistent(d)
		})
		cancel()
		if (err != nil && libvirt.IsNotFound(err)) || (err == nil && persistent == 0) {
			h.mu.Lock()
			delete(h.guests, dom.Name)
			h.mu.Unlock()
			h.f.Remove(name)
			return
		}
	}
	h.f.MarkGone(name, reason)
}

func stoppedReason(detail int32) string {
	switch libvirt.DomainEventStoppedDetailType(detail) {
	case libvirt.DomainEventStoppedShutdown:
		return "shut down"
	case libvirt.DomainEventStoppedDestroyed:
		return "destroyed"
	case libvirt.DomainEventStoppedCrashed:
		return "crashed"
	case libvirt.DomainEventStoppedMigrated:
		return "migrated"
	case libvirt.DomainEventStoppedSaved:
		return "saved"
	case libvirt.DomainEventStoppedFailed:
		return "failed"
	case libvirt.DomainEventStoppedFromSnapshot:
		return "restored from snapshot"
	}
	return "unknown reason"
}
