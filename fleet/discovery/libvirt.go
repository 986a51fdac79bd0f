package discovery

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
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
	"github.com/guestdeck/guestdeck/config"
	"github.com/guestdeck/guestdeck/internal/backoff"
	"github.com/guestdeck/guestdeck/internal/blocking"
)

// LibvirtConfig is one libvirt host. Its running domains that have a
// guest-agent channel (org.qemu.guest_agent.0) become targets named
// "HOST/DOMAIN" and addressed "libvirt:HOST/DOMAIN".
type LibvirtConfig struct {
	Name string // short name shown in the Host column and used in addresses
	// URI is the host's libvirt URI as config.ParseURI took it apart (the
	// one parser): qemu:///system, qemu:///session, a bare socket path,
	// qemu+unix:///session?socket=/path, qemu+tcp://host/system,
	// qemu+tls://host/system (?pkipath=DIR, ?no_verify=1),
	// qemu+ssh://user@host/system (?socket= for the remote socket path),
	// and the test driver (test+unix://...).
	URI config.HostURI
	// Include and Exclude are globs (path.Match) on domain names; an empty
	// Include takes every domain, Exclude wins over Include.
	Include, Exclude []string
	Tags             []string // added to every target of this host
	// ssh only: KnownHosts is the known_hosts file (default
	// ~/.ssh/known_hosts); host keys are verified against it unless
	// InsecureIgnoreHostKey. Identity is the private key (default
	// ~/.ssh/id_rsa).
	KnownHosts, Identity  string
	InsecureIgnoreHostKey bool
}

// AgentChannel is the virtio-serial channel name of the QEMU guest agent.
const AgentChannel = "org.qemu.guest_agent.0"

// LibvirtScheme is the address scheme of guests reached through a libvirt host.
const LibvirtScheme = "libvirt"

// Reconnect backoff for a lost host connection.
const (
	hostBackoffMin = 500 * time.Millisecond
	hostBackoffMax = 30 * time.Second
	// hostConnectTimeout bounds one connection attempt, the first included.
	hostConnectTimeout = 20 * time.Second
	// hostRPCTimeout bounds one discovery call (domain XML, lookup).
	hostRPCTimeout = 10 * time.Second
	// xmlFetches is how many domain XML requests discovery pipelines over
	// one connection.
	xmlFetches = 16
)

// Libvirt is the Source of one libvirt host. It connects, adds every
// domain that has a guest-agent channel — running or not — and follows the
// host until its context ends. Each guest carries its domain's state
// (SetDomain), from one listing (and a state call for the rare paused,
// suspended, crashed ones) at connect and from lifecycle events after:
//
//   - a domain that starts is booting until libvirt sees its agent connect
//     (AGENT_LIFECYCLE), which also pokes the guest, so it turns ready
//     without waiting for a poll; a guest that closes its agent channel
//     while running is shutting down (or restarting its agent);
//   - paused, resumed, pmsuspended, shutting down, crashed: as libvirt says;
//   - a domain that stops is stopped and kept while it is defined
//     (persistent); a defined domain is listed stopped; an undefined or
//     transient one is removed;
//   - a lost connection makes this host's guests unreachable with an error
//     naming the host (kept, their domain state unknown), and is redialed
//     with backoff and jitter; on reconnect the domains are rediscovered.
//     Other hosts are unaffected.
//
// Start and Wake boot a stopped domain and wake a pmsuspended one.
//
// Target names: always "HOST/DOMAIN" (see QualifiedName), whatever else is
// in the fleet and whichever host answers first. Its guests' agent sessions
// run over the host's connection (Dial).
type Libvirt struct {
	cfg    LibvirtConfig
	dialer socket.Dialer
	remote libvirt.ConnectURI
	rng    *rand.Rand // reconnect jitter; used by the Run goroutine only
	sink   Sink       // set by Run before anything is claimed

	mu     sync.Mutex
	conn   *libvirt.Libvirt // nil while down
	down   error            // why it is down
	guests map[string]string
	// doms is each guest domain's state as last reported, and agentUp
	// whether libvirt saw its agent connect since the domain started (the
	// agent and lifecycle events come on separate streams, either first).
	doms    map[string]DomainState
	agentUp map[string]bool
	state   State
	// events of the current connection; set by connect, read by run.
	lifecycle, agent <-chan any
	// up is closed while connected (replaced by lost); kick makes Run
	// redial now instead of at its next backoff (a thaw is owed).
	up   chan struct{}
	kick chan struct{}
}

// NewLibvirt checks c and returns its host's Source. Nothing is dialled
// before Run.
func NewLibvirt(c LibvirtConfig) (*Libvirt, error) {
	if c.Name == "" || strings.ContainsAny(c.Name, "/ ") {
		return nil, fmt.Errorf("libvirt host %q: name must be non-empty without '/' or spaces", c.Name)
	}
	for _, g := range append(append([]string(nil), c.Include...), c.Exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("libvirt host %s: bad glob %q: %w", c.Name, g, err)
		}
	}
	dialer, err := libvirtDialer(c)
	if err != nil {
		return nil, fmt.Errorf("libvirt host %s: %w", c.Name, err)
	}
	seed := fnv.New64a()
	seed.Write([]byte(c.Name))
	return &Libvirt{
		cfg: c, dialer: dialer, remote: libvirt.ConnectURI(c.URI.Driver),
		guests:  make(map[string]string),
		doms:    make(map[string]DomainState),
		agentUp: make(map[string]bool),
		kick:    make(chan struct{}, 1),
		up:      make(chan struct{}),
		rng:     rand.New(rand.NewPCG(seed.Sum64(), uint64(time.Now().UnixNano()))),
		state:   State{Name: c.Name, Kind: "libvirt", Endpoint: c.URI.Raw, Phase: Connecting, Since: time.Now()},
	}, nil
}

// Name is the host's name.
func (h *Libvirt) Name() string { return h.cfg.Name }

// Scheme is "libvirt": the host's guests are "libvirt:HOST/DOMAIN".
func (h *Libvirt) Scheme() string { return LibvirtScheme }

// Owns reports whether address is "libvirt:HOST/..." of this host.
func (h *Libvirt) Owns(address string) bool {
	host, _, err := ParseLibvirtAddress(address)
	return err == nil && host == h.cfg.Name
}

// State is the host's connection state and guest count.
func (h *Libvirt) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state
	st.Guests = len(h.guests)
	return st
}

// setPhase records a new state and tells the sink. Holds h.mu.
func (h *Libvirt) setPhaseLocked(p Phase, err error, retry time.Time) {
	if h.state.Phase != p {
		h.state.Since = time.Now()
	}
	h.state.Phase, h.state.Err, h.state.Retry = p, err, retry
}

func (h *Libvirt) changed() {
	if h.sink != nil {
		h.sink.SourceChanged()
	}
}

// Dial opens a LibvirtAgent for the domain at address over the host's
// current connection.
func (h *Libvirt) Dial(ctx context.Context, address string, urgent bool) (agentclient.Agent, error) {
	_, dom, err := ParseLibvirtAddress(address)
	if err != nil {
		return nil, err
	}
	if dom == "" {
		return nil, fmt.Errorf("address %s names no domain", address)
	}
	return h.dial(ctx, address, dom, urgent)
}

// libvirtDialer builds the socket dialer for the host's parsed URI; the
// URI to open on the daemon once connected is c.URI.Driver.
func libvirtDialer(c LibvirtConfig) (socket.Dialer, error) {
	u := c.URI
	switch u.Transport {
	case config.TransportUnix:
		return dialers.NewLocal(dialers.WithSocket(u.Socket)), nil
	case config.TransportTCP:
		return dialers.NewRemote(u.Host, dialers.UsePort(u.Port)), nil
	case config.TransportTLS:
		opts := []dialers.TLSOption{dialers.UseTLSPort(u.Port)}
		if pki := u.Query.Get("pkipath"); pki != "" {
			opts = append(opts, dialers.UsePKIPath(pki))
		}
		if u.Query.Get("no_verify") == "1" {
			opts = append(opts, dialers.WithInsecureNoVerify())
		}
		return dialers.NewTLS(u.Host, opts...), nil
	case config.TransportSSH:
		opts, err := sshOptions(c)
		if err != nil {
			return nil, err
		}
		return dialers.NewSSH(u.Host, opts...), nil
	case "":
		return nil, errors.New("no URI")
	}
	return nil, fmt.Errorf("URI %q: unsupported transport %q (want unix, tcp, tls or ssh)", u.Raw, u.Transport)
}

// sshOptions configures go-libvirt's ssh dialer. Host keys are checked
// against known_hosts (golang.org/x/crypto/ssh/knownhosts inside the dialer):
// an unknown or changed key fails the connection unless the config says
// InsecureIgnoreHostKey. Unknown keys are never added to the file.
func sshOptions(c LibvirtConfig) ([]dialers.SSHOption, error) {
	u := c.URI
	known := c.KnownHosts
	if known == "" {
		home, _ := os.UserHomeDir()
		if home == "" {
			return nil, errors.New("ssh: no known_hosts file configured and no home directory")
		}
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	opts := []dialers.SSHOption{dialers.UseKnownHostsFile(known), dialers.UseSSHPort(u.Port)}
	if u.User != "" {
		opts = append(opts, dialers.UseSSHUsername(u.User))
	}
	if c.Identity != "" {
		opts = append(opts, dialers.UseKeyFile(c.Identity))
	}
	if c.InsecureIgnoreHostKey {
		opts = append(opts, dialers.WithInsecureIgnoreHostKey())
	}
	if u.Socket != "" {
		opts = append(opts, dialers.WithRemoteSocket(u.Socket))
	}
	return opts, nil
}

// ParseLibvirtAddress splits "libvirt:HOST/DOMAIN".
func ParseLibvirtAddress(addr string) (host, domain string, err error) {
	rest, ok := strings.CutPrefix(addr, LibvirtScheme+":")
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
func (h *Libvirt) dial(ctx context.Context, address, dom string, urgent bool) (agentclient.Agent, error) {
	h.mu.Lock()
	conn, down, up := h.conn, h.down, h.up
	h.mu.Unlock()
	if (conn == nil || !conn.IsConnected()) && urgent {
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
		return nil, &agentclient.OpError{Addr: address,
			Err: fmt.Errorf("libvirt host %s (%s) is not connected: %v", h.cfg.Name, h.cfg.URI.Raw, down)}
	}
	h.mu.Lock()
	ds := h.doms[dom]
	h.mu.Unlock()
	if ds == DomainStopped || ds == DomainCrashed {
		// No agent runs in a machine that does not: no RPC to learn so.
		return nil, &agentclient.OpError{Addr: address, Err: fmt.Errorf("libvirt host %s: domain %s is %s", h.cfg.Name, dom, ds)}
	}
	d, err := blocking.Call(ctx, func() (libvirt.Domain, error) { return conn.DomainLookupByName(dom) })
	if err != nil {
		return nil, &agentclient.OpError{Addr: address, Err: fmt.Errorf("libvirt host %s: domain %s: %w", h.cfg.Name, dom, err)}
	}
	return agentclient.NewLibvirt(conn, d, address), nil
}

// Start boots the stopped domain at address (virDomainCreate). Its
// lifecycle events then show it booting, and ready once its agent connects.
func (h *Libvirt) Start(ctx context.Context, address string) error {
	return h.domainOp(ctx, address, "start", func(l *libvirt.Libvirt, d libvirt.Domain) error { return l.DomainCreate(d) })
}

// Wake resumes the domain at address from a suspend to RAM
// (virDomainPMWakeup); no agent can, since none runs while it sleeps.
func (h *Libvirt) Wake(ctx context.Context, address string) error {
	return h.domainOp(ctx, address, "wake", func(l *libvirt.Libvirt, d libvirt.Domain) error { return l.DomainPmWakeup(d, 0) })
}

// domainOp runs one domain API call on the host's connection, bounded by ctx.
func (h *Libvirt) domainOp(ctx context.Context, address, what string, fn func(*libvirt.Libvirt, libvirt.Domain) error) error {
	_, dom, err := ParseLibvirtAddress(address)
	if err != nil {
		return err
	}
	h.mu.Lock()
	conn, down := h.conn, h.down
	h.mu.Unlock()
	if conn == nil || !conn.IsConnected() {
		if down == nil {
			down = errors.New("connection lost")
		}
		return fmt.Errorf("libvirt host %s (%s) is not connected: %v", h.cfg.Name, h.cfg.URI.Raw, down)
	}
	_, err = blocking.Call(ctx, func() (struct{}, error) {
		d, err := conn.DomainLookupByName(dom)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, fn(conn, d)
	})
	if err != nil {
		return fmt.Errorf("libvirt host %s: %s domain %s: %w", h.cfg.Name, what, dom, err)
	}
	return nil
}

// connect dials the host, subscribes to domain and agent lifecycle events,
// and then discovers the running domains (subscribing first means no start
// or stop between the two is missed). On success the host is up.
func (h *Libvirt) connect(ctx context.Context) (*libvirt.Libvirt, error) {
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
	h.setPhaseLocked(Up, nil, time.Time{})
	h.mu.Unlock()
	h.changed()
	return l, nil
}

// discover lists every domain and brings this host's targets in line: new
// agent-capable domains are added (and poked when their agent is already
// connected), known ones no longer defined are removed, and each gets its
// domain state.
func (h *Libvirt) discover(ctx context.Context, l *libvirt.Libvirt) error {
	// Every domain, stopped (defined) ones too: they are listed as stopped.
	doms, err := blocking.Call(ctx, func() ([]libvirt.Domain, error) {
		d, _, err := l.ConnectListAllDomains(1, 0)
		return d, err
	})
	if err != nil {
		return err
	}
	states, err := h.domainStates(ctx, l)
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
	var wg sync.WaitGroup
	slots := make(chan struct{}, xmlFetches)
	for i := range doms {
		res[i].dom = doms[i]
		if !h.wanted(doms[i].Name) {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			res[i].agent, res[i].connected, res[i].err = h.agentChannel(ctx, l, doms[i])
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range res {
		// A domain that stopped since the listing is simply not running.
		if r.err != nil && !libvirt.IsNotFound(r.err) {
			return fmt.Errorf("domain %s: %w", r.dom.Name, r.err)
		}
	}
	present := make(map[string]bool, len(doms))
	var add []libvirt.Domain
	var poke []string // domains whose agent is connected already
	connected := make(map[string]bool)
	for _, r := range res {
		if !r.agent {
			continue
		}
		present[r.dom.Name] = true
		add = append(add, r.dom)
		if r.connected {
			connected[r.dom.Name] = true
			poke = append(poke, r.dom.Name)
		}
	}
	h.mu.Lock()
	var gone []string
	for dom := range h.guests {
		if !present[dom] {
			gone = append(gone, dom)
		}
	}
	h.agentUp = connected
	h.mu.Unlock()
	h.addTargets(add)
	for _, d := range add {
		st := states[d.Name]
		if st.state == DomainRunning && !connected[d.Name] {
			st.reason = "libvirt sees no agent connected"
		}
		h.setDomain(d.Name, st.state, st.reason)
	}
	for _, dom := range gone {
		// Undefined while the host was out of sight.
		h.removeDomain(dom)
	}
	for _, dom := range poke {
		if name, ok := h.name(dom); ok {
			h.sink.Poke(name)
		}
	}
	return nil
}

// stateOf is one domain's state and its reason in words.
type stateOf struct {
	state  DomainState
	reason string
}

// domainStates is every domain's state. List filters sort the many
// running and stopped domains out in three calls; only the rare others
// (paused, pmsuspended, in shutdown, crashed) need a state call each.
func (h *Libvirt) domainStates(ctx context.Context, l *libvirt.Libvirt) (map[string]stateOf, error) {
	list := func(flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, error) {
		return blocking.Call(ctx, func() ([]libvirt.Domain, error) {
			d, _, err := l.ConnectListAllDomains(1, flags)
			return d, err
		})
	}
	out := make(map[string]stateOf)
	running, err := list(libvirt.ConnectListDomainsRunning)
	if err != nil {
		return nil, err
	}
	for _, d := range running {
		out[d.Name] = stateOf{state: DomainRunning}
	}
	off, err := list(libvirt.ConnectListDomainsShutoff)
	if err != nil {
		return nil, err
	}
	for _, d := range off {
		out[d.Name] = stateOf{DomainStopped, "domain shut off"}
	}
	rest, err := list(libvirt.ConnectListDomainsPaused | libvirt.ConnectListDomainsOther)
	if err != nil {
		return nil, err
	}
	for _, d := range rest {
		if !h.wanted(d.Name) {
			continue
		}
		st, reason, err := h.getState(ctx, l, d)
		if err != nil {
			if libvirt.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("domain %s state: %w", d.Name, err)
		}
		ds, why := domainState(st, reason)
		out[d.Name] = stateOf{ds, why}
	}
	return out, nil
}

// getState is virDomainGetState, bounded.
func (h *Libvirt) getState(ctx context.Context, l *libvirt.Libvirt, d libvirt.Domain) (state, reason int32, err error) {
	ctx, cancel := context.WithTimeout(ctx, hostRPCTimeout)
	defer cancel()
	r, err := blocking.Call(ctx, func() ([2]int32, error) {
		st, why, err := l.DomainGetState(d, 0)
		return [2]int32{st, why}, err
	})
	return r[0], r[1], err
}

// setDomain records dom's state and tells the sink, when dom is a guest.
func (h *Libvirt) setDomain(dom string, d DomainState, reason string) {
	h.mu.Lock()
	name, ok := h.guests[dom]
	if ok {
		h.doms[dom] = d
	}
	h.mu.Unlock()
	if ok {
		h.sink.SetDomain(name, d, reason)
	}
}

// domainOf is dom's last known state.
func (h *Libvirt) domainOf(dom string) DomainState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.doms[dom]
}

// removeDomain forgets dom's guest.
func (h *Libvirt) removeDomain(dom string) {
	h.mu.Lock()
	name, ok := h.guests[dom]
	delete(h.guests, dom)
	delete(h.doms, dom)
	delete(h.agentUp, dom)
	h.mu.Unlock()
	if ok {
		h.sink.Remove(name)
		h.changed()
	}
}

// addTargets adds the domains not yet known as targets, each named
// QualifiedName(host, domain). The sink's Claim checks and adds in one step,
// so a name another guest holds is never taken over.
func (h *Libvirt) addTargets(doms []libvirt.Domain) {
	var ts []Target
	h.mu.Lock()
	for _, d := range doms {
		dom := d.Name
		if _, known := h.guests[dom]; known {
			continue
		}
		ts = append(ts, Target{Name: QualifiedName(h.cfg.Name, dom), Host: h.cfg.Name, Address: h.address(dom),
			Tags: slices.Clone(h.cfg.Tags), Endpoint: h.cfg.URI.Raw, UUID: FormatUUID(d.UUID)})
	}
	h.mu.Unlock()
	if len(ts) == 0 {
		return
	}
	added := h.sink.Claim(ts)
	h.mu.Lock()
	for _, t := range added {
		if _, dom, err := ParseLibvirtAddress(t.Address); err == nil {
			h.guests[dom] = t.Name
		}
	}
	h.mu.Unlock()
	if len(added) > 0 {
		h.changed() // the guest count
	}
}

// QualifiedName is the name of the guest discovered as domain dom on the
// libvirt host named host: "HOST/DOMAIN". It depends on nothing else — not on
// other hosts, the [[guest]]s, or the order hosts answer in — so a guest's
// name is the same in every run, and a host that connects later adds names
// without changing one. A bare domain name selects nothing (Select says which
// guests it might mean).
func QualifiedName(host, dom string) string { return host + "/" + dom }

func (h *Libvirt) address(dom string) string { return LibvirtScheme + ":" + h.cfg.Name + "/" + dom }

// wanted applies Include and Exclude.
func (h *Libvirt) wanted(dom string) bool {
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
func (h *Libvirt) agentChannel(ctx context.Context, l *libvirt.Libvirt, dom libvirt.Domain) (has, connected bool, err error) {
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

// lost records that the host is unreachable and why, and when the next
// attempt is due: retry's next delay, whose jitter keeps hosts that dropped
// together from redialing in step. It returns the wait.
func (h *Libvirt) lost(err error, retry *backoff.Backoff) time.Duration {
	wait := retry.Next()
	h.mu.Lock()
	h.conn, h.down = nil, err
	h.lifecycle, h.agent = nil, nil
	select {
	case <-h.up:
		h.up = make(chan struct{})
	default:
	}
	h.setPhaseLocked(Unreachable, err, time.Now().Add(wait))
	doms := make([]string, 0, len(h.guests))
	for dom := range h.guests {
		doms = append(doms, dom)
	}
	h.mu.Unlock()
	// The guests stay listed, their domains' states unknown until the host
	// answers again; their polls fail naming the host.
	for _, dom := range doms {
		h.setDomain(dom, DomainUnknown, "libvirt host "+h.cfg.Name+" is unreachable")
	}
	h.changed()
	return wait
}

// pokeAll makes every guest of this host poll now (the host went down or
// came back).
func (h *Libvirt) pokeAll() {
	h.mu.Lock()
	names := make([]string, 0, len(h.guests))
	for _, n := range h.guests {
		names = append(names, n)
	}
	h.mu.Unlock()
	for _, n := range names {
		h.sink.Poke(n)
	}
}

// Run connects, then follows the host until ctx ends, reconnecting with
// backoff when the connection drops or an attempt fails.
func (h *Libvirt) Run(ctx context.Context, sink Sink, first func(error)) {
	h.sink = sink
	retry := backoff.Backoff{Min: hostBackoffMin, Max: hostBackoffMax, Rand: h.rng}
	var wait time.Duration
	cctx, cancel := context.WithTimeout(ctx, hostConnectTimeout)
	conn, err := h.connect(cctx)
	cancel()
	if err != nil {
		wait = h.lost(err, &retry)
	}
	first(err)
	for {
		if conn != nil {
			retry.Reset()
			stopStats := h.startStats(ctx, conn) // libvirtstats.go
			h.follow(ctx, conn)
			stopStats()
			if ctx.Err() != nil {
				_ = conn.Disconnect()
				return
			}
			wait = h.lost(errors.New("connection lost"), &retry)
			h.pokeAll()
			conn = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-h.kick:
			// A thaw waits for this host: try now. The backoff still
			// grows, so a host that stays down is not hammered.
		}
		h.mu.Lock()
		h.setPhaseLocked(Reconnecting, h.state.Err, time.Time{})
		h.mu.Unlock()
		h.changed()
		cctx, cancel := context.WithTimeout(ctx, hostConnectTimeout)
		c, err := h.connect(cctx)
		cancel()
		if err != nil {
			wait = h.lost(err, &retry)
			continue
		}
		conn = c
		h.pokeAll() // guests that were unreachable try again at once
	}
}

// follow handles the connection's events until it drops or the fleet closes.
func (h *Libvirt) follow(ctx context.Context, l *libvirt.Libvirt) {
	h.mu.Lock()
	lc, ag := h.lifecycle, h.agent
	h.mu.Unlock()
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

// lifecycleEvent follows a domain's life: defined, started, paused,
// resumed, suspended to RAM, shutting down, stopped, crashed, undefined.
// Each becomes the guest's domain state (SetDomain). go-libvirt delivers
// events of every domain: filtering is ours.
func (h *Libvirt) lifecycleEvent(ctx context.Context, l *libvirt.Libvirt, m libvirt.DomainEventLifecycleMsg) {
	dom := m.Dom.Name
	switch libvirt.DomainEventType(m.Event) {
	case libvirt.DomainEventDefined:
		if h.consider(ctx, l, m.Dom) {
			if h.domainOf(dom) == DomainUnknown {
				h.setDomain(dom, DomainStopped, "domain defined, not started")
			}
		}
	case libvirt.DomainEventStarted:
		if !h.consider(ctx, l, m.Dom) {
			return
		}
		h.mu.Lock()
		agent := h.agentUp[dom]
		h.mu.Unlock()
		// No poll until the agent connects (its event pokes): one now could
		// only fail.
		switch {
		case libvirt.DomainEventStartedDetailType(m.Detail) == libvirt.DomainEventStartedWakeup:
			h.setDomain(dom, DomainRunning, "domain woken up")
			h.poke(dom)
		case agent:
			// Its agent's connect event overtook this one.
			h.setDomain(dom, DomainRunning, "")
			h.poke(dom)
		default:
			h.setDomain(dom, DomainBooting, "domain started; waiting for its agent to connect")
		}
	case libvirt.DomainEventSuspended:
		h.setDomain(dom, DomainPaused, "domain paused ("+pausedDetail(m.Detail)+")")
	case libvirt.DomainEventResumed:
		// A start resumes the vCPUs too (RESUMED comes just before STARTED):
		// only a paused domain that resumes is running again.
		if h.domainOf(dom) == DomainPaused {
			h.setDomain(dom, DomainRunning, "")
			h.poke(dom)
		}
	case libvirt.DomainEventPmsuspended:
		// The host says so itself: no need to wait for the agent to go quiet.
		h.setDomain(dom, DomainPMSuspended, "domain pmsuspended (suspended to RAM; wake resumes it)")
	case libvirt.DomainEventShutdown:
		// The guest finished shutting down; STOPPED follows when QEMU exits.
		h.setDomain(dom, DomainShuttingDown, "guest shut down; the domain is stopping")
	case libvirt.DomainEventStopped:
		h.mu.Lock()
		delete(h.agentUp, dom)
		h.mu.Unlock()
		h.stopped(ctx, l, m.Dom, "domain stopped ("+stoppedReason(m.Detail)+")")
	case libvirt.DomainEventCrashed:
		h.setDomain(dom, DomainCrashed, "domain crashed")
	case libvirt.DomainEventUndefined:
		h.removeDomain(dom)
	}
}

// agentEvent: libvirt saw the guest agent connect or disconnect.
func (h *Libvirt) agentEvent(ctx context.Context, l *libvirt.Libvirt, m *libvirt.DomainEventCallbackAgentLifecycleMsg) {
	dom := m.Dom.Name
	switch libvirt.ConnectDomainEventAgentLifecycleState(m.State) {
	case libvirt.ConnectDomainEventAgentLifecycleStateConnected:
		h.mu.Lock()
		h.agentUp[dom] = true
		h.mu.Unlock()
		// Also covers a connect event that overtook the domain's STARTED.
		if !h.consider(ctx, l, m.Dom) {
			return
		}
		switch h.domainOf(dom) {
		case DomainBooting, DomainShuttingDown, DomainUnknown, DomainStopped, DomainRunning:
			h.setDomain(dom, DomainRunning, "")
		}
		h.poke(dom)
	case libvirt.ConnectDomainEventAgentLifecycleStateDisconnected:
		h.mu.Lock()
		delete(h.agentUp, dom)
		h.mu.Unlock()
		// At domain start libvirt reports the (never connected) agent as
		// disconnected: nothing to learn from a poll then.
		if libvirt.ConnectDomainEventAgentLifecycleReason(m.Reason) == libvirt.ConnectDomainEventAgentLifecycleReasonDomainStarted {
			return
		}
		if h.domainOf(dom) == DomainRunning {
			// The guest closed its end of the channel while running: its
			// agent was stopped, which a guest does as it shuts down (virsh
			// shutdown, poweroff inside) or when its agent restarts. The
			// connect event ends it in the second case, STOPPED in the first.
			h.setDomain(dom, DomainShuttingDown, "the guest closed its agent channel: shutting down, or its agent is restarting")
		}
		h.poke(dom)
	}
}

func (h *Libvirt) name(dom string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.guests[dom]
	return n, ok
}

func (h *Libvirt) poke(dom string) {
	if name, ok := h.name(dom); ok {
		h.sink.Poke(name)
	}
}

// consider adds dom if it is wanted and has an agent channel, and reports
// whether it is a guest now.
func (h *Libvirt) consider(ctx context.Context, l *libvirt.Libvirt, dom libvirt.Domain) bool {
	if _, known := h.name(dom.Name); known {
		return true
	}
	if !h.wanted(dom.Name) {
		return false
	}
	has, _, err := h.agentChannel(ctx, l, dom)
	if err != nil || !has {
		return false
	}
	h.addTargets([]libvirt.Domain{dom})
	_, ok := h.name(dom.Name)
	return ok
}

// stopped marks dom's guest stopped, or removes it when the domain no
// longer exists or is transient (nothing is left to start again).
func (h *Libvirt) stopped(ctx context.Context, l *libvirt.Libvirt, dom libvirt.Domain, reason string) {
	if _, ok := h.name(dom.Name); !ok {
		return
	}
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
		h.removeDomain(dom.Name)
		return
	}
	h.setDomain(dom.Name, DomainStopped, reason)
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
