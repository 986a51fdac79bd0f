package testpeers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// guestReady reports whether dir holds a complete built guest.
func guestReady(dir string) bool {
	for _, f := range []string{"vmlinuz", "initramfs.gz", "disk.img"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			return false
		}
	}
	return true
}

// EnsureGuest returns GuestDir, building the guest image there first if it is
// incomplete. The build holds an exclusive lock on $GUESTDECK_CACHE/guest.lock
// (the lock scripts/test.sh takes too), so test binaries of parallel packages
// build it once and the others wait.
func EnsureGuest(ctx context.Context) (string, error) {
	dir := GuestDir()
	if guestReady(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return "", fmt.Errorf("guest image cache: %w (set %s)", err, EnvCache)
	}
	lockPath := filepath.Join(CacheDir(), "guest.lock")
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return "", fmt.Errorf("guest image lock: %w", err)
	}
	defer f.Close()
	// Poll instead of blocking so a context deadline still ends the wait.
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			return "", fmt.Errorf("guest image lock %s: %w", lockPath, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for another build of %s: %w", dir, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if guestReady(dir) { // built by whoever held the lock
		return dir, nil
	}
	if _, err := runTool(ctx, "guest-vm/build-guest.sh", nil, dir); err != nil {
		return "", fmt.Errorf("building guest image: %w", err)
	}
	if !guestReady(dir) {
		return "", fmt.Errorf("build-guest.sh %s succeeded but the image is incomplete", dir)
	}
	return dir, nil
}
