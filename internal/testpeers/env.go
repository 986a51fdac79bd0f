package testpeers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Environment variables read by this package (and exported by scripts/test.sh).
const (
	EnvShared    = "GUESTDECK_SHARED"     // directory holding tools/ (default: ../shared beside the repository)
	EnvCache     = "GUESTDECK_CACHE"      // cache directory (default /var/tmp/guestdeck-cache)
	EnvGuestDir  = "GUESTDECK_GUEST_DIR"  // built guest image (default $GUESTDECK_CACHE/guest)
	EnvVMSMP     = "GUESTDECK_VM_SMP"     // vCPUs per VM (default 2)
	EnvVMMem     = "GUESTDECK_VM_MEM"     // MiB per VM (default 256)
	EnvVMTimeout = "GUESTDECK_VM_TIMEOUT" // seconds to wait for a booting VM's agent (default 240)
	EnvVMAccel   = "GUESTDECK_VM_ACCEL"   // tcg, kvm or auto (default auto: kvm when usable)
)

// The guest image's data disk (built by build-guest.sh) is mounted on /data
// and holds one file with known content.
const (
	HelloPath    = "/data/hello.txt"
	HelloContent = "hello from the guest ext4 disk\n"
)

// DefaultCacheDir is used when $GUESTDECK_CACHE is unset.
const DefaultCacheDir = "/var/tmp/guestdeck-cache"

// inCI reports whether missing peers must fail tests instead of skipping them.
func inCI() bool { return os.Getenv("CI") == "true" }

// SharedDir returns the shared/ directory holding tools/: $GUESTDECK_SHARED,
// else the nearest "shared" directory with tools/qga-host.sh found by walking
// up from the working directory (go test runs in the package directory, and
// shared/ sits beside the repository).
func SharedDir() (string, error) {
	if d := os.Getenv(EnvShared); d != "" {
		if !isFile(filepath.Join(d, "tools", "qga-host.sh")) {
			return "", fmt.Errorf("$%s=%s has no tools/qga-host.sh", EnvShared, d)
		}
		return filepath.Abs(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("shared tools: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "shared")
		if isFile(filepath.Join(cand, "tools", "qga-host.sh")) {
			return cand, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", errors.New("shared tools not found: set " + EnvShared + " to the directory holding tools/ (it normally sits beside the repository)")
}

// tool returns the path of a script under shared/tools.
func tool(rel string) (string, error) {
	d, err := SharedDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "tools", rel), nil
}

// CacheDir is where built guest images and the libvirt capability cache live
// between runs.
func CacheDir() string {
	if d := os.Getenv(EnvCache); d != "" {
		return d
	}
	return DefaultCacheDir
}

// GuestDir is the directory holding the built guest (vmlinuz, initramfs.gz, disk.img).
func GuestDir() string {
	if d := os.Getenv(EnvGuestDir); d != "" {
		return d
	}
	return filepath.Join(CacheDir(), "guest")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// envInt reads a positive integer knob, falling back to def when unset or invalid.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// vmTimeout is how long to wait for a booting guest's agent. Generous because
// TCG on a machine shared by parallel test packages can be very slow.
func vmTimeout() time.Duration {
	return time.Duration(envInt(EnvVMTimeout, 240)) * time.Second
}
