package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// The remote transports (tcp, tls, ssh) are exercised end to end against a
// real libvirtd (test driver) through in-process front ends on loopback that
// forward to its unix socket: a plain TCP relay, a TLS server that checks
// client certificates (as libvirtd's TLS listener does), and an SSH server
// that serves direct-streamlocal channels (what go-libvirt's ssh dialer asks
// for, like "ssh host nc -U socket").

// relay copies between a and b until either side closes.
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// serve accepts on l until it is closed and hands each connection to fn.
func serve(t *testing.T, l net.Listener, fn func(net.Conn)) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go fn(c)
		}
	}()
}

// startTestDomains starts a test-driver libvirtd with domains vm0..vm2 that
// have an agent channel.
func startTestDomains(t *testing.T) *testpeers.LibvirtTest {
	lt := testpeers.StartLibvirtTest(t)
	lv := lt.Connect(t)
	for _, n := range []string{"vm0", "vm1", "vm2"} {
		if _, err := lv.DomainCreateXML(testDomainXML(n, true), 0); err != nil {
			t.Fatal(err)
		}
	}
	return lt
}

// addHostResult adds h to a fresh fleet and returns AddHost's error and how
// many guests it discovered.
func addHostResult(t *testing.T, h HostConfig) (int, error) {
	t.Helper()
	f := New(Options{Interval: time.Hour})
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := f.AddHost(ctx, h)
	return len(f.Snapshot().Guests), err
}

func TestLibvirtTCP(t *testing.T) {
	lt := startTestDomains(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, func(c net.Conn) {
		u, err := net.Dial("unix", lt.Socket)
		if err != nil {
			c.Close()
			return
		}
		relay(c, u)
	})
	n, err := addHostResult(t, HostConfig{Name: "tcp", URI: mustURI(t, "test+tcp://"+l.Addr().String()+"/default")})
	if err != nil || n != 3 {
		t.Fatalf("tcp: %d guests, %v", n, err)
	}
}

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate; returns the CA pool, the server certificate, and a pkipath
// directory laid out as libvirt expects (cacert.pem, clientcert.pem, clientkey.pem).
func pki(t *testing.T) (*x509.CertPool, tls.Certificate, string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("EC PRIVATE KEY", b)
	}
	srvDER, srvKey := issue(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	srv, err := tls.X509KeyPair(pemOf("CERTIFICATE", srvDER), keyPEM(srvKey))
	if err != nil {
		t.Fatal(err)
	}
	cliDER, cliKey := issue(3, "client", x509.ExtKeyUsageClientAuth, nil)
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"cacert.pem": pemOf("CERTIFICATE", caDER), "clientcert.pem": pemOf("CERTIFICATE", cliDER), "clientkey.pem": keyPEM(cliKey),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, srv, dir
}

func TestLibvirtTLS(t *testing.T) {
	lt := startTestDomains(t)
	pool, srvCert, pkiDir := pki(t)
	_, otherCert, _ := pki(t) // a server certificate from a CA the client does not trust
	front := func(cert tls.Certificate) string {
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
			Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
		})
		if err != nil {
			t.Fatal(err)
		}
		serve(t, l, func(c net.Conn) {
			defer c.Close()
			if err := c.(*tls.Conn).Handshake(); err != nil {
				return
			}
			// libvirtd tells the client its certificate passed with one byte.
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
			u, err := net.Dial("unix", lt.Socket)
			if err != nil {
				return
			}
			relay(c, u)
		})
		return l.Addr().String()
	}
	good, bad := front(srvCert), front(otherCert)

	n, err := addHostResult(t, HostConfig{Name: "tls", URI: mustURI(t, "test+tls://"+good+"/default?pkipath="+pkiDir)})
	if err != nil || n != 3 {
		t.Fatalf("tls: %d guests, %v", n, err)
	}
	n, err = addHostResult(t, HostConfig{Name: "tls", URI: mustURI(t, "test+tls://"+bad+"/default?pkipath="+pkiDir)})
	if err == nil || n != 0 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server certificate: %d guests, %v", n, err)
	}
	t.Logf("untrusted server: %v", err)
}

// sshFront is an SSH server on loopback that accepts one client key and
// forwards direct-streamlocal channels to unix sockets.
type sshFront struct {
	addr     string
	hostKey  ssh.PublicKey
	identity string // the accepted client's private key file
}

func startSSHFront(t *testing.T) *sshFront {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cliPub, cliPriv, _ := ed25519.GenerateKey(rand.Reader)
	sshCliPub, _ := ssh.NewPublicKey(cliPub)
	blk, err := ssh.MarshalPrivateKey(cliPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	identity := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(identity, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(sshCliPub.Marshal()) {
			return nil, nil
		}
		return nil, io.EOF
	}}
	cfg.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, func(c net.Conn) {
		sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			c.Close()
			return
		}
		defer sc.Close()
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			if nc.ChannelType() != "direct-streamlocal@openssh.com" {
				_ = nc.Reject(ssh.UnknownChannelType, "only streamlocal")
				continue
			}
			var req struct {
				Path      string
				Reserved0 string
				Reserved1 uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &req); err != nil {
				_ = nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			u, err := net.Dial("unix", req.Path)
			if err != nil {
				_ = nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				u.Close()
				continue
			}
			go ssh.DiscardRequests(creqs)
			go func() {
				defer ch.Close()
				defer u.Close()
				go func() { _, _ = io.Copy(ch, u); _ = ch.CloseWrite() }()
				_, _ = io.Copy(u, ch)
			}()
		}
	})
	return &sshFront{addr: l.Addr().String(), hostKey: hostSigner.PublicKey(), identity: identity}
}

func TestLibvirtSSH(t *testing.T) {
	lt := startTestDomains(t)
	front := startSSHFront(t)
	dir := t.TempDir()
	knownFile := func(name string, key ssh.PublicKey) string {
		p := filepath.Join(dir, name)
		line := ""
		if key != nil {
			line = knownhosts.Line([]string{knownhosts.Normalize(front.addr)}, key) + "\n"
		}
		if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(otherPriv)
	uri := "test+ssh://tester@" + front.addr + "/default?socket=" + lt.Socket

	cases := []struct {
		name     string
		known    string
		insecure bool
		identity string
		want     string // "" = connects; else a substring of the error
	}{
		{"known host key", knownFile("good", front.hostKey), false, front.identity, ""},
		{"unknown host", knownFile("empty", nil), false, front.identity, "knownhosts: key is unknown"},
		{"changed host key", knownFile("other", otherSigner.PublicKey()), false, front.identity, "knownhosts: key mismatch"},
		{"no known_hosts file", filepath.Join(dir, "missing"), false, front.identity, "no such file"},
		{"insecure ignores the host key", filepath.Join(dir, "missing"), true, front.identity, ""},
		{"wrong identity", knownFile("good2", front.hostKey), false, filepath.Join(dir, "nokey"), "unable to authenticate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := addHostResult(t, HostConfig{Name: "ssh", URI: mustURI(t, uri), KnownHosts: c.known, Identity: c.identity, InsecureIgnoreHostKey: c.insecure})
			if c.want == "" {
				if err != nil || n != 3 {
					t.Fatalf("%d guests, %v", n, err)
				}
				return
			}
			if err == nil || n != 0 || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %d guests, %v", c.want, n, err)
			}
		})
	}
	// known_hosts was not touched by the refused connections.
	if b, _ := os.ReadFile(filepath.Join(dir, "empty")); len(b) != 0 {
		t.Fatalf("known_hosts was modified: %q", b)
	}
}
