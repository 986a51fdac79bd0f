#!/bin/bash
# scripts/test.sh [go test args...]
#
# The project test command. Installs what the tests' real peers need when it
# is missing (Debian 12, as root: qemu-guest-agent, qemu-system-x86, libvirt,
# busybox-static, ...), builds the test guest image once into a cache, then
# runs go vet, staticcheck and go test -race on the repository.
#
#   ./scripts/test.sh                         # everything
#   ./scripts/test.sh -run Foo ./agentclient/  # extra args go to go test
#
# With arguments, the package patterns among them (./x, ./x/..., the module
# path) are vetted and tested; with none, ./... is. Exit status is non-zero on
# any failure. Idempotent: when everything is present it only checks, then tests.
#
# Env: GUESTDECK_SHARED (directory holding tools/; default: shared/ beside the
#      repository), GUESTDECK_CACHE (default /var/tmp/guestdeck-cache),
#      GUESTDECK_GUEST_DIR (default $GUESTDECK_CACHE/guest), CI=true (tests fail
#      instead of skipping when a peer is missing), GUESTDECK_TEST_TIMEOUT
#      (go test -timeout, default 60m). These are exported to the tests.
set -euo pipefail
say() { echo "test.sh: $*" >&2; }
die() { say "$*"; exit 1; }
t_start=$(date +%s)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# ---- shared tools (real peers), beside the repository by default
SHARED=${GUESTDECK_SHARED:-}
if [ -z "$SHARED" ]; then
  for c in "$(git rev-parse --show-toplevel 2>/dev/null || echo "$ROOT")/../shared" "$ROOT/../shared"; do
    if [ -f "$c/tools/qga-host.sh" ]; then SHARED=$(cd "$c" && pwd); break; fi
  done
fi
[ -n "$SHARED" ] && [ -f "$SHARED/tools/qga-host.sh" ] ||
  die "shared tools not found (looked for ../shared/tools beside $ROOT); set GUESTDECK_SHARED"
export GUESTDECK_SHARED=$SHARED
export GUESTDECK_CACHE=${GUESTDECK_CACHE:-/var/tmp/guestdeck-cache}
export GUESTDECK_GUEST_DIR=${GUESTDECK_GUEST_DIR:-$GUESTDECK_CACHE/guest}

# ---- Go toolchain (not from apt: Debian 12's Go is far older than go.mod asks)
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH=/usr/local/go/bin:$PATH; fi
command -v go >/dev/null 2>&1 || die "go not found: install Go (see go.mod for the version) and put it in PATH"

# ---- system packages: command or file -> Debian package
need=()
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
[ -x /usr/sbin/qemu-ga ]          || need+=(qemu-guest-agent)
has qemu-system-x86_64            || need+=(qemu-system-x86)
has qemu-img                      || need+=(qemu-utils)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
has cpio                          || need+=(cpio)
has mkfs.ext4                     || need+=(e2fsprogs)
has libvirtd                      || need+=(libvirt-daemon)
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] || need+=(libvirt-daemon-driver-qemu)
has virsh                         || need+=(libvirt-clients)
has tmux                          || need+=(tmux)
has python3                       || need+=(python3)
has openssl                       || need+=(openssl)
[ -x /usr/sbin/sshd ]            || need+=(openssh-server)
has ssh-agent                     || need+=(openssh-client)
{ has setpriv && has flock; }     || need+=(util-linux)
# -race needs cgo: a C compiler and the C library headers
has gcc                           || need+=(gcc)
[ -e /usr/include/stdio.h ]       || need+=(libc6-dev)
# build-guest.sh fetches the kernel with apt-get download and unpacks it with dpkg-deb
has dpkg-deb                      || need+=(dpkg)

if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing packages; run as root, or: apt-get install -y --no-install-recommends ${need[*]}"
  say "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  t0=$(date +%s)
  # Update the package lists once, and only when installing from them fails
  # (or they were never fetched, as on a fresh image).
  if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -q >&2; updated=1; else updated=0; fi
  if ! apt-get install -y -q --no-install-recommends "${need[@]}" >&2; then
    [ "$updated" = 1 ] && die "apt-get install ${need[*]} failed"
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2 || die "apt-get install ${need[*]} failed"
  fi
  say "installed ${need[*]} in $(( $(date +%s) - t0 ))s"
fi

# ---- test guest image, built once into the cache; the lock is the one
# internal/testpeers takes, so a concurrent test binary does not build it twice.
GD=$GUESTDECK_GUEST_DIR
BUILD=$SHARED/tools/guest-vm/build-guest.sh
if ! { [ -s "$GD/vmlinuz" ] && [ -s "$GD/initramfs.gz" ] && [ -s "$GD/disk.img" ] && ! [ "$BUILD" -nt "$GD/initramfs.gz" ]; }; then
  say "building the test guest image into $GD"
  t0=$(date +%s)
  mkdir -p "$GUESTDECK_CACHE"
  flock "$GUESTDECK_CACHE/guest.lock" bash "$BUILD" "$GD" >&2 || die "building the guest image failed"
  say "guest image built in $(( $(date +%s) - t0 ))s"
fi
# libvirtd runs as nobody and boots domains straight from the image directory.
chmod a+rx "$GUESTDECK_CACHE" "$GD" 2>/dev/null || true
chmod a+r "$GD/vmlinuz" "$GD/initramfs.gz" "$GD/disk.img" 2>/dev/null || true

# ---- packages to vet and test: the patterns among the arguments, else ./...
pkgs=()
for a in "$@"; do
  case "$a" in
    .|./*|../*|github.com/guestdeck/guestdeck*) pkgs+=("$a") ;;
  esac
done
args=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then pkgs=(./...); args+=(./...); fi

say "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"

# staticcheck, pinned, from the Go module proxy (installed once into GOBIN).
SC_VERSION=v0.8.2
GOBIN_DIR=$(go env GOBIN); [ -n "$GOBIN_DIR" ] || GOBIN_DIR=$(go env GOPATH)/bin
if ! { [ -x "$GOBIN_DIR/staticcheck" ] && go version -m "$GOBIN_DIR/staticcheck" 2>/dev/null | grep -q "honnef.co/go/tools[[:space:]]*$SC_VERSION"; }; then
  say "installing staticcheck $SC_VERSION"
  GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$SC_VERSION" || die "go install staticcheck failed"
fi
say "staticcheck ${pkgs[*]}"
"$GOBIN_DIR/staticcheck" "${pkgs[@]}"
say "go test -race -count=1 -timeout ${GUESTDECK_TEST_TIMEOUT:-60m} ${args[*]}"
rc=0
go test -race -count=1 -timeout "${GUESTDECK_TEST_TIMEOUT:-60m}" "${args[@]}" || rc=$?
if [ ${#args[@]} -eq 1 ] && [ "${args[0]}" = ./... ]; then
  # Under the race detector a stream reads and writes its socket with
  # syscall.Read and Write (agentclient/rawio_sys_race_linux.go); the raw
  # recv and send that ship run only without it: the stream's own package
  # once more, so that CI tests the path users get.
  say "go test -count=1 ./agentclient/ (the raw socket calls, which -race replaces)"
  go test -count=1 -timeout "${GUESTDECK_TEST_TIMEOUT:-60m}" ./agentclient/ || rc=$?
fi
say "done in $(( $(date +%s) - t_start ))s (exit $rc)"
exit $rc
