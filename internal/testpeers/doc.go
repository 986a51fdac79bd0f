// Package testpeers gives tests real peers to talk to: qemu-ga agents on this
// machine, tiny QEMU virtual machines running the real agent, a session-mode
// libvirtd with the QEMU driver, and a libvirtd serving the test driver. It
// wraps the scripts in shared/tools (found through $GUESTDECK_SHARED, or a
// "shared" directory beside the repository) and ties every process it starts
// to the test: t.Cleanup stops exactly the PIDs it started, and a small
// detached watchdog stops them too if the test binary dies without running
// its cleanups (go test -timeout, a crash).
//
// Typical use:
//
//	ag := testpeers.StartAgents(t, 2) // read-only agents on this machine
//	c, err := agentclient.Dial(ctx, "unix:"+ag.Sockets[0])
//
//	vm := testpeers.BootVM(t, "gd-shut") // a private VM: safe for shutdown, freeze, exec
//	... guest-shutdown ...
//	if err := vm.WaitExit(30 * time.Second); err != nil { t.Fatal(err) }
//
// Agents started by StartAgents run on this machine: never send them a
// mutating command (they block the dangerous ones anyway). File writes go
// under Agents.Writable only. Mutating commands go to VMs.
//
// VMs are slow: without KVM they run under TCG emulation on a loaded machine.
// A boot takes about 5 s on an idle machine and can take a minute under load,
// so a package should share its VMs rather than boot one per test. Use a Pool,
// closed from TestMain:
//
//	var vms = testpeers.NewPool()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		vms.Close()
//		os.Exit(code)
//	}
//
//	func TestInfo(t *testing.T) {
//		vm := vms.VM(t, "gd-info") // boots on first use, shared afterwards
//		...
//	}
//
// A pooled VM is shared state: tests that change the guest (freeze, set-vcpus,
// shutdown) must put it back, or use their own BootVM. Its agent channel takes
// one connection at a time (a second connect waits until the first closes), so
// tests sharing a VM must not hold connections across t.Parallel tests, and
// must close their client before they end. A pooled VM that died is
// booted again on the next Pool.VM call. The guest's disk is mounted on /data
// and holds HelloPath with HelloContent; disk writes are discarded when the VM
// stops (qemu snapshot mode), so tests may write under /data freely.
//
// Missing tools: outside CI (CI != "true") a test whose peers cannot run is
// skipped with a message naming the package to install (or run
// ./scripts/test.sh, which installs everything). In CI it fails instead.
//
// Environment knobs: GUESTDECK_SHARED (shared/ directory), GUESTDECK_CACHE
// (default /var/tmp/guestdeck-cache), GUESTDECK_GUEST_DIR (built guest image,
// default $GUESTDECK_CACHE/guest), GUESTDECK_VM_SMP (default 2),
// GUESTDECK_VM_MEM (MiB, default 256), GUESTDECK_VM_TIMEOUT (seconds to wait
// for a booting agent, default 240), GUESTDECK_VM_ACCEL (tcg|kvm|auto, default auto).
package testpeers
