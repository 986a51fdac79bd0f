package testpeers

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Requirement names understood by Require. Any other name is looked up as a
// command in PATH (and /usr/sbin, /sbin) and suggested as a package of the
// same name.
const (
	NeedShared        = "shared"       // shared/tools scripts
	NeedQemuGA        = "qemu-ga"      // qemu-guest-agent
	NeedQEMU          = "qemu"         // qemu-system-x86
	NeedLibvirtd      = "libvirtd"     // libvirt-daemon
	NeedVirsh         = "virsh"        // libvirt-clients
	NeedLibvirtQEMU   = "libvirt-qemu" // libvirt-daemon-driver-qemu
	NeedPython        = "python3"      // boot-guest.sh waits for the agent with python3
	NeedTmux          = "tmux"
	NeedSSHD          = "sshd" // openssh-server (sshd-loopback.sh installs it when run as root)
	NeedBusyboxStatic = "busybox-static"
	NeedGuestImage    = "guest-image" // the built guest, or what building it needs
)

// Require skips the test (outside CI) or fails it (in CI, CI=true) when any
// of the named tools is missing, naming the packages to install.
func Require(t testing.TB, what ...string) {
	t.Helper()
	if msg := missing(what...); msg != "" {
		report(t, msg)
	}
}

// report skips or fails with msg depending on CI.
func report(t testing.TB, msg string) {
	t.Helper()
	if inCI() {
		t.Fatalf("testpeers: %s (CI=true: peers must be installed)", msg)
	}
	t.Skipf("testpeers: %s", msg)
}

// missing returns "" when everything named is present, else a message
// naming what to install.
func missing(what ...string) string {
	var probs, pkgs []string
	add := func(prob, pkg string) {
		probs = append(probs, prob)
		if pkg != "" {
			pkgs = append(pkgs, pkg)
		}
	}
	for _, w := range what {
		switch w {
		case NeedShared:
			if _, err := SharedDir(); err != nil {
				probs = append(probs, err.Error())
			}
		case NeedQemuGA:
			if !isFile("/usr/sbin/qemu-ga") {
				add("qemu-ga missing", "qemu-guest-agent")
			}
		case NeedQEMU:
			if !hasCommand("qemu-system-x86_64") {
				add("qemu-system-x86_64 missing", "qemu-system-x86")
			}
		case NeedSSHD:
			if !isFile("/usr/sbin/sshd") && os.Getuid() != 0 {
				add("sshd missing", "openssh-server")
			}
		case NeedLibvirtd:
			if !hasCommand("libvirtd") {
				add("libvirtd missing", "libvirt-daemon")
			}
		case NeedVirsh:
			if !hasCommand("virsh") {
				add("virsh missing", "libvirt-clients")
			}
		case NeedLibvirtQEMU:
			if !isFile("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so") {
				add("libvirt QEMU driver missing", "libvirt-daemon-driver-qemu")
			}
		case NeedBusyboxStatic:
			if !staticBusybox() {
				add("static /bin/busybox missing", "busybox-static")
			}
		case NeedGuestImage:
			if guestReady(GuestDir()) {
				continue
			}
			// build-guest.sh can build it if its inputs are here (it downloads the kernel with apt).
			if msg := missing(NeedShared, NeedQEMU, NeedQemuGA, NeedBusyboxStatic, "cpio", "mkfs.ext4"); msg != "" {
				probs = append(probs, "guest image "+GuestDir()+" not built and cannot be: "+msg)
			}
		default:
			if !hasCommand(w) {
				pkg := w
				if w == "mkfs.ext4" {
					pkg = "e2fsprogs"
				}
				add(w+" missing", pkg)
			}
		}
	}
	if len(probs) == 0 {
		return ""
	}
	msg := strings.Join(probs, "; ")
	if len(pkgs) > 0 {
		msg += ": apt-get install " + strings.Join(pkgs, " ") + ", or run ./scripts/test.sh"
	}
	return msg
}

// hasCommand looks in PATH and the sbin directories, which a non-root PATH
// often lacks.
func hasCommand(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// staticBusybox reports whether /bin/busybox is statically linked: the guest
// initramfs copies it without its libraries.
func staticBusybox() bool {
	f, err := elf.Open("/bin/busybox")
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
