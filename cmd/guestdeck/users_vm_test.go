package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// TestVMUsersKeysAndPut runs the users-and-keys actions against the real
// qemu-ga 7.2 in the test VM (never the agent on this machine): ssh keys
// added, listed, read back from /root/.ssh/authorized_keys and removed; a
// password set from standard input, then checked against the guest's own
// record of it with openssl; a crypted one stored as given; and one file
// put to two guests, the VM and a simulated guest (two TCG VMs would
// double the boot).
func TestVMUsersKeysAndPut(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl checks the guest's password hash: install openssl")
		}
		t.Skip("openssl checks the guest's password hash: install openssl")
	}
	vm := testpeers.BootVM(t, "gdusers")
	farm, _ := simFarm(t, 1)
	cfg := fleetFile(t, "", [2]string{"vm1", "unix:" + vm.Socket}, [2]string{"s0", "unix:" + farm.Sockets()[0]})
	const k1, k2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd1ZXN0ZGVjayB0ZXN0IGtleSBvbmUx one@guestdeck", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd1ZXN0ZGVjayB0ZXN0IGtleSB0d28y two@guestdeck"
	dir := t.TempDir()
	both, one := filepath.Join(dir, "both.pub"), filepath.Join(dir, "one.pub")
	os.WriteFile(both, []byte(k1+"\n"+k2+"\n"), 0o644)
	os.WriteFile(one, []byte(k1+"\n"), 0o644)

	r := gd(t, 60*time.Second, "-c", cfg, "run", "--yes", "ssh-key", "add", "root", both, "vm1")
	if r.code != 0 {
		t.Fatalf("ssh-key add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = gd(t, 60*time.Second, "-c", cfg, "run", "ssh-key", "list", "root", "vm1")
	if r.code != 0 || !strings.Contains(r.stdout, "==> vm1 <==\n"+k2+"\n"+k1+"\n") { // qemu-ga 7.2: last line first
		t.Errorf("ssh-key list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := gd(t, 60*time.Second, "-c", cfg, "cat", "vm1", "/root/.ssh/authorized_keys"); r.stdout != k1+"\n"+k2 { // joined by newlines, none at the end
		t.Errorf("authorized_keys in the VM: %q %s", r.stdout, r.stderr)
	}
	if r := gd(t, 60*time.Second, "-c", cfg, "run", "--yes", "ssh-key", "remove", "root", one, "vm1"); r.code != 0 {
		t.Errorf("ssh-key remove: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := gd(t, 60*time.Second, "-c", cfg, "cat", "vm1", "/root/.ssh/authorized_keys"); r.stdout != k2 {
		t.Errorf("authorized_keys after remove: %q %s", r.stdout, r.stderr)
	}

	// The image's busybox has no chpasswd applet (Debian's busybox-static
	// is built without it), and qemu-ga 7.2 runs chpasswd for
	// guest-set-user-password ("cannot find 'passwd' program in PATH"
	// otherwise). A stand-in made of busybox's mkpasswd and awk goes into
	// the VM's (throwaway) root: it reads the "user:password" line the
	// agent writes to it, as chpasswd does.
	shim := filepath.Join(dir, "chpasswd")
	os.WriteFile(shim, []byte(chpasswdShim), 0o644)
	if r := gd(t, 60*time.Second, "-c", cfg, "put", shim, "vm1", "/usr/sbin/chpasswd"); r.code != 0 {
		t.Fatalf("put the chpasswd stand-in: %d %s", r.code, r.stderr)
	}
	if r := gd(t, 60*time.Second, "-c", cfg, "agent", "vm1", `{"execute":"guest-exec","arguments":{"path":"/bin/chmod","arg":["755","/usr/sbin/chpasswd"]}}`); r.code != 0 {
		t.Fatalf("chmod the chpasswd stand-in: %d %s", r.code, r.stderr)
	}

	const pw = "vm Pa55word"
	r, _ = gdStdin(t, nil, pw+"\n", "-c", cfg, "run", "--yes", "password", "root", "vm1")
	if r.code != 0 {
		t.Fatalf("password: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	hash := rootHash(t, cfg)
	parts := strings.Split(hash, "$") // "", id, salt, digest
	if len(parts) != 4 {
		t.Fatalf("root's password field after the change: %q", hash)
	}
	alg := map[string]string{"1": "-1", "5": "-5", "6": "-6"}[parts[1]]
	out, err := exec.Command("openssl", "passwd", alg, "-salt", parts[2], pw).Output()
	if err != nil || strings.TrimSpace(string(out)) != hash {
		t.Errorf("the guest's hash %q is not of the password (openssl: %q, %v)", hash, out, err)
	}
	crypted, err := exec.Command("openssl", "passwd", "-6", "-salt", "gdsalt42", "another one").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(crypted))
	if r, _ := gdStdin(t, nil, want+"\n", "-c", cfg, "run", "--yes", "password", "--crypted", "root", "vm1"); r.code != 0 {
		t.Fatalf("password --crypted: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := rootHash(t, cfg); got != want {
		t.Errorf("after --crypted root's field is %q, want %q", got, want)
	}

	src := filepath.Join(dir, "fleet-notice.txt")
	os.WriteFile(src, []byte("maintenance at 22:00\n"), 0o644)
	r = gd(t, 120*time.Second, "-c", cfg, "put", "--yes", "--from", src, "--to", "/tmp/", "vm1", "s0")
	if r.code != 0 || strings.Count(r.stdout, "  ok  ") != 2 {
		t.Fatalf("put to two guests: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, g := range []string{"vm1", "s0"} {
		if r := gd(t, 60*time.Second, "-c", cfg, "cat", g, "/tmp/fleet-notice.txt"); r.stdout != "maintenance at 22:00\n" {
			t.Errorf("%s: /tmp/fleet-notice.txt holds %q %s", g, r.stdout, r.stderr)
		}
	}
}

// rootHash is root's password field in the VM: /etc/shadow where the
// guest keeps one, else /etc/passwd (busybox chpasswd writes there when
// there is no shadow file).
func rootHash(t *testing.T, cfg string) string {
	t.Helper()
	for _, f := range []string{"/etc/shadow", "/etc/passwd"} {
		r := gd(t, 60*time.Second, "-c", cfg, "cat", "vm1", f)
		if r.code != 0 {
			continue
		}
		for line := range strings.SplitSeq(r.stdout, "\n") {
			if fs := strings.Split(line, ":"); len(fs) > 1 && fs[0] == "root" && fs[1] != "x" {
				return fs[1]
			}
		}
	}
	t.Fatal("no password field for root in /etc/shadow or /etc/passwd")
	return ""
}

// chpasswdShim stands in for chpasswd in the test VM: one "user:password"
// line per user on stdin; -e: the password is a crypt(3) hash already.
const chpasswdShim = `#!/bin/sh
enc=0; [ "$1" = "-e" ] && enc=1
while IFS= read -r line; do
  u=${line%%:*}; p=${line#*:}
  [ $enc = 1 ] || p=$(mkpasswd -m sha512 "$p") || exit 1
  grep -q "^$u:" /etc/passwd || exit 1
  awk -F: -v OFS=: -v u="$u" -v p="$p" '$1==u{$2=p}1' /etc/passwd > /etc/passwd.new && mv /etc/passwd.new /etc/passwd || exit 1
done
`
