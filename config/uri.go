package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Transports a libvirt host URI maps to.
const (
	TransportUnix = "unix"
	TransportTCP  = "tcp"
	TransportTLS  = "tls"
	TransportSSH  = "ssh"
)

// Default ports and sockets, as libvirt's own client uses them.
const (
	DefaultTCPPort      = "16509"
	DefaultTLSPort      = "16514"
	DefaultSSHPort      = "22"
	DefaultSystemSocket = "/var/run/libvirt/libvirt-sock"
)

// HostURI is a libvirt connection URI taken apart into what a dialer needs:
//
//	qemu:///system                        unix  Socket=/var/run/libvirt/libvirt-sock          Driver=qemu:///system
//	qemu:///session                       unix  Socket=$XDG_RUNTIME_DIR/libvirt/libvirt-sock  Driver=qemu:///session
//	qemu+unix:///system?socket=/p         unix  Socket=/p                                     Driver=qemu:///system
//	/p (a bare socket path)               unix  Socket=/p                                     Driver="" (the daemon's own)
//	qemu+tcp://h[:16509]/system           tcp   Host=h Port=16509                             Driver=qemu:///system
//	qemu+tls://h[:16514]/system           tls   Host=h Port=16514                             Driver=qemu:///system
//	qemu+ssh://u@h[:22]/system            ssh   User=u Host=h Port=22
//	                                            Socket=remote libvirt socket (?socket= or the system one)
//	                                                                                          Driver=qemu:///system
//
// qemu+libssh:// and qemu+libssh2:// are read as qemu+ssh://. The test driver
// (test:///default, test+unix://...) is accepted for demos. Driver is what
// go-libvirt's ConnectToURI wants: the URI with transport, host and the
// client-only query parameters (socket, keyfile, known_hosts, no_verify,
// pkipath, ...) removed; those stay in Query for the dialer. ?name= replaces
// it, as in libvirt. A bare socket path leaves Driver empty: the daemon then
// opens its own default, qemu:///system for a system daemon and
// qemu:///session for a per-user one, so the path alone reaches either.
type HostURI struct {
	Raw       string
	Transport string // TransportUnix, TransportTCP, TransportTLS or TransportSSH
	Host      string // tcp, tls, ssh
	Port      string // tcp, tls, ssh; defaulted
	User      string // ssh; "" means the current user
	Socket    string // unix: the local socket; ssh: the socket on the remote host
	Driver    string // e.g. "qemu:///system"
	Query     url.Values
}

// isClientParam reports whether a libvirt URI parameter is meant for the
// client side of the connection, not the driver on the other end.
func isClientParam(k string) bool {
	switch k {
	case "socket", "keyfile", "known_hosts", "known_hosts_verify", "no_verify", "no_tty",
		"sshauth", "command", "netcat", "proxy", "pkipath", "mode", "name", "tls_priority":
		return true
	}
	return false
}

// ParseURI takes a libvirt URI (or a bare unix socket path) apart; see HostURI.
func ParseURI(s string) (HostURI, error) {
	if s == "" {
		return HostURI{}, fmt.Errorf("empty uri")
	}
	if strings.HasPrefix(s, "/") {
		return HostURI{Raw: s, Transport: TransportUnix, Socket: s, Query: url.Values{}}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // ue repeats the whole uri
		}
		return HostURI{}, fmt.Errorf("cannot parse uri %q: %v", s, err)
	}
	if u.Scheme == "" {
		return HostURI{}, fmt.Errorf("uri %q has no scheme; want e.g. qemu:///system, qemu+ssh://user@host/system or a socket path", s)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if driver != "qemu" && driver != "test" {
		return HostURI{}, fmt.Errorf("uri %q: unsupported driver %q; guestdeck speaks to qemu (qemu:///system, qemu+ssh://host/system, ...)", s, driver)
	}
	h := HostURI{Raw: s, Host: u.Hostname(), Port: u.Port(), Query: u.Query()}
	if u.User != nil {
		h.User = u.User.Username()
	}
	switch transport {
	case "", "unix":
		if transport == "" && u.Host != "" {
			// libvirt reads qemu://host/system as TLS.
			transport = "tls"
			break
		}
		if u.Host != "" {
			return HostURI{}, fmt.Errorf("uri %q: a unix socket uri names no host; use qemu+ssh://%s/... to reach another machine", s, u.Host)
		}
	case "libssh", "libssh2":
		transport = "ssh"
	case "tcp", "tls", "ssh":
	default:
		return HostURI{}, fmt.Errorf("uri %q: unsupported transport %q; want unix, tcp, tls or ssh", s, transport)
	}
	switch transport {
	case "", "unix":
		h.Transport = TransportUnix
	case "tcp":
		h.Transport, h.Port = TransportTCP, orDefault(h.Port, DefaultTCPPort)
	case "tls":
		h.Transport, h.Port = TransportTLS, orDefault(h.Port, DefaultTLSPort)
	case "ssh":
		h.Transport, h.Port = TransportSSH, orDefault(h.Port, DefaultSSHPort)
	}
	if h.Transport != TransportUnix && h.Host == "" {
		return HostURI{}, fmt.Errorf("uri %q: %s transport needs a host, e.g. %s+%s://host/system", s, transport, driver, transport)
	}
	if p, err := strconv.Atoi(h.Port); h.Port != "" && (err != nil || p < 1 || p > 65535) {
		return HostURI{}, fmt.Errorf("uri %q: bad port %q", s, h.Port)
	}
	path := u.Path
	if driver == "qemu" && path != "/system" && path != "/session" {
		return HostURI{}, fmt.Errorf("uri %q: path must be /system or /session, not %q", s, path)
	}
	if driver == "test" && path == "" {
		path = "/default"
	}
	if path == "/session" && (h.Transport == TransportTCP || h.Transport == TransportTLS) {
		// A session daemon listens on a unix socket only.
		return HostURI{}, fmt.Errorf("uri %q: a session daemon is only reachable locally or over ssh", s)
	}
	h.Socket = h.Query.Get("socket")
	if h.Socket == "" && (h.Transport == TransportUnix || h.Transport == TransportSSH) {
		h.Socket = DefaultSystemSocket
		if path == "/session" && h.Transport == TransportUnix {
			h.Socket = sessionSocket()
		}
	}
	if h.Socket != "" && !strings.HasPrefix(h.Socket, "/") {
		return HostURI{}, fmt.Errorf("uri %q: socket %q must be an absolute path", s, h.Socket)
	}
	q := url.Values{}
	for k, v := range h.Query {
		if !isClientParam(k) {
			q[k] = v
		}
	}
	h.Driver = driver + "://" + path
	if len(q) > 0 {
		h.Driver += "?" + q.Encode()
	}
	if name := h.Query.Get("name"); name != "" {
		h.Driver = name
	}
	return h, nil
}

// sessionSocket is where a per-user libvirtd listens:
// $XDG_RUNTIME_DIR/libvirt/libvirt-sock, else libvirt's fallback
// ~/.cache/libvirt/libvirt-sock. A relative XDG_RUNTIME_DIR is ignored, as
// the XDG spec says: it would make the socket depend on the working
// directory.
func sessionSocket() string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(dir) {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".cache")
		}
	}
	return filepath.Join(dir, "libvirt", "libvirt-sock")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// CheckAddress reports what is wrong with a guest agent address, or nil.
// Valid forms: unix:/abs/path, tcp:host:port, vsock:cid:port (numbers),
// ssh://[user@]host[:port]/abs/path (ParseSSHURL).
func CheckAddress(addr string) error {
	const want = "want unix:/path, tcp:host:port, vsock:cid:port or ssh://[user@]host[:port]/path"
	scheme, rest, ok := strings.Cut(addr, ":")
	if !ok || strings.HasPrefix(addr, "/") {
		if strings.HasPrefix(addr, "/") {
			return fmt.Errorf("address %q has no scheme; did you mean \"unix:%s\"?", addr, addr)
		}
		return fmt.Errorf("address %q has no scheme; %s", addr, want)
	}
	switch scheme {
	case "ssh":
		if _, err := ParseSSHURL(addr); err != nil {
			return fmt.Errorf("address %v", err)
		}
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return fmt.Errorf("address %q: unix socket path must be absolute", addr)
		}
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil || host == "" {
			return fmt.Errorf("address %q: want tcp:host:port", addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("address %q: port %q must be a number from 1 to 65535", addr, port)
		}
	case "vsock":
		cid, port, ok := strings.Cut(rest, ":")
		if !ok {
			return fmt.Errorf("address %q: want vsock:cid:port", addr)
		}
		if _, err := strconv.ParseUint(cid, 10, 32); err != nil {
			return fmt.Errorf("address %q: vsock cid %q must be a number", addr, cid)
		}
		if _, err := strconv.ParseUint(port, 10, 32); err != nil {
			return fmt.Errorf("address %q: vsock port %q must be a number", addr, port)
		}
	default:
		return fmt.Errorf("address %q: unknown scheme %q; %s", addr, scheme, want)
	}
	return nil
}

// SSHURL is an agent socket (or a socket pattern) on another machine,
// reached through ssh: ssh://[user@]host[:port]/abs/path.
type SSHURL struct {
	Raw  string
	User string // "" means the current user
	Host string
	Port string // defaulted to DefaultSSHPort
	Path string // absolute, on the remote machine
}

// ParseSSHURL takes ssh://[user@]host[:port]/abs/path apart. It refuses a
// password in the URL, a query, a fragment and a relative or empty path.
func ParseSSHURL(s string) (SSHURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return SSHURL{}, fmt.Errorf("cannot parse %q: %v", s, err)
	}
	if u.Scheme != "ssh" || u.Opaque != "" {
		return SSHURL{}, fmt.Errorf("%q: want ssh://[user@]host[:port]/abs/path", s)
	}
	r := SSHURL{Raw: s, Host: u.Hostname(), Port: orDefault(u.Port(), DefaultSSHPort), Path: u.Path}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return SSHURL{}, fmt.Errorf("%q: no passwords in addresses; use identity = \"...\" or your ssh agent", s)
		}
		r.User = u.User.Username()
		if r.User == "" || strings.ContainsFunc(r.User, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			return SSHURL{}, fmt.Errorf("%q: bad user name", s)
		}
	}
	if r.Host == "" {
		return SSHURL{}, fmt.Errorf("%q names no host; want ssh://[user@]host[:port]/abs/path", s)
	}
	if p, err := strconv.Atoi(r.Port); err != nil || p < 1 || p > 65535 {
		return SSHURL{}, fmt.Errorf("%q: port %q must be a number from 1 to 65535", s, r.Port)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return SSHURL{}, fmt.Errorf("%q: an ssh address takes no ?query or #fragment (escape them as %%3F, %%23)", s)
	}
	if !strings.HasPrefix(r.Path, "/") || r.Path == "/" {
		return SSHURL{}, fmt.Errorf("%q: the socket path on the host must be absolute, e.g. ssh://root@pve1/var/run/qemu-server/101.qga", s)
	}
	if strings.ContainsFunc(r.Path, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return SSHURL{}, fmt.Errorf("%q: control characters in the socket path", s)
	}
	return r, nil
}

// Endpoint is "[user@]host:port", the ssh connection the URL needs.
func (u SSHURL) Endpoint() string {
	hp := net.JoinHostPort(u.Host, u.Port)
	if u.User == "" {
		return hp
	}
	return u.User + "@" + hp
}
