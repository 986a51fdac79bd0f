package discovery

import (
	"github.com/digitalocean/go-libvirt"
)

// DomainState is a libvirt domain's state as guestdeck names it: libvirt's
// own view of the machine, beside what its agent says.
type DomainState string

const (
	// DomainUnknown: not known (the host is not connected, or the guest is
	// not reached through libvirt).
	DomainUnknown DomainState = ""
	// DomainRunning: running (libvirt's running or blocked).
	DomainRunning DomainState = "running"
	// DomainBooting: started, and its agent has not connected since.
	DomainBooting DomainState = "booting"
	// DomainPaused: the vCPUs are stopped (virsh suspend, a migration, an
	// I/O error); nothing in the guest runs, its agent included.
	DomainPaused DomainState = "paused"
	// DomainPMSuspended: the guest suspended itself to RAM (S3); Wake
	// resumes it.
	DomainPMSuspended DomainState = "pmsuspended"
	// DomainShuttingDown: the guest is going down (libvirt's "in shutdown",
	// or the guest closed its agent channel while running).
	DomainShuttingDown DomainState = "shutting-down"
	// DomainStopped: defined but not running (shut off); Start boots it.
	DomainStopped DomainState = "stopped"
	// DomainCrashed: the guest crashed (kept for inspection).
	DomainCrashed DomainState = "crashed"
)

// domainState maps virDomainGetState's state and reason.
func domainState(state, reason int32) (DomainState, string) {
	switch libvirt.DomainState(state) {
	case libvirt.DomainRunning, libvirt.DomainBlocked:
		return DomainRunning, ""
	case libvirt.DomainPaused:
		if libvirt.DomainPausedReason(reason) == libvirt.DomainPausedStartingUp {
			return DomainBooting, "domain starting up"
		}
		return DomainPaused, "domain paused (" + pausedReason(reason) + ")"
	case libvirt.DomainShutdown:
		return DomainShuttingDown, "domain shutting down"
	case libvirt.DomainShutoff:
		return DomainStopped, "domain shut off (" + shutoffReason(reason) + ")"
	case libvirt.DomainCrashed:
		return DomainCrashed, "domain crashed"
	case libvirt.DomainPmsuspended:
		return DomainPMSuspended, "domain pmsuspended (suspended to RAM by the guest)"
	}
	return DomainUnknown, "libvirt reports no state"
}

func pausedReason(r int32) string {
	switch libvirt.DomainPausedReason(r) {
	case libvirt.DomainPausedUser:
		return "by a user"
	case libvirt.DomainPausedMigration:
		return "migrating"
	case libvirt.DomainPausedSave:
		return "saving"
	case libvirt.DomainPausedDump:
		return "dumping"
	case libvirt.DomainPausedIoerror:
		return "I/O error"
	case libvirt.DomainPausedWatchdog:
		return "watchdog"
	case libvirt.DomainPausedFromSnapshot:
		return "from a snapshot"
	case libvirt.DomainPausedShuttingDown:
		return "shutting down"
	case libvirt.DomainPausedSnapshot:
		return "snapshot"
	case libvirt.DomainPausedCrashed:
		return "crashed"
	case libvirt.DomainPausedPostcopy, libvirt.DomainPausedPostcopyFailed:
		return "post-copy migration"
	}
	return "unknown reason"
}

// pausedDetail maps a SUSPENDED event's detail to the same words.
func pausedDetail(d int32) string {
	switch libvirt.DomainEventSuspendedDetailType(d) {
	case libvirt.DomainEventSuspendedPaused:
		return "by a user"
	case libvirt.DomainEventSuspendedMigrated, libvirt.DomainEventSuspendedPostcopy, libvirt.DomainEventSuspendedPostcopyFailed:
		return "migrating"
	case libvirt.DomainEventSuspendedIoerror:
		return "I/O error"
	case libvirt.DomainEventSuspendedWatchdog:
		return "watchdog"
	case libvirt.DomainEventSuspendedRestored, libvirt.DomainEventSuspendedFromSnapshot:
		return "restored"
	case libvirt.DomainEventSuspendedAPIError:
		return "API error"
	}
	return "unknown reason"
}

func shutoffReason(r int32) string {
	switch libvirt.DomainShutoffReason(r) {
	case libvirt.DomainShutoffShutdown:
		return "shut down"
	case libvirt.DomainShutoffDestroyed:
		return "destroyed"
	case libvirt.DomainShutoffCrashed:
		return "crashed"
	case libvirt.DomainShutoffMigrated:
		return "migrated"
	case libvirt.DomainShutoffSaved:
		return "saved"
	case libvirt.DomainShutoffFailed:
		return "failed to start"
	case libvirt.DomainShutoffFromSnapshot:
		return "restored from snapshot"
	case libvirt.DomainShutoffDaemon:
		return "daemon"
	}
	return "never started or unknown reason"
}
