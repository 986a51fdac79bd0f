package fleet

import "time"

// Kind names a bulk action.
type Kind string

const (
	ActPing     Kind = "ping"
	ActFreeze   Kind = "freeze"
	ActThaw     Kind = "thaw"
	ActShutdown Kind = "shutdown" // Mode: powerdown (default), reboot, halt
	ActSuspend  Kind = "suspend"  // Mode: disk, ram, hybrid
	ActSetTime  Kind = "settime"  // from the host clock
	ActFstrim   Kind = "fstrim"
	ActVCPUs    Kind = "vcpus" // Mode: online, offline; IDs
	ActRead     Kind = "read"  // Path; result holds the content
	ActWrite    Kind = "write" // Path, Data
	ActInfo     Kind = "info"  // refresh everything now (read-only)
)

// Action is one bulk action with its arguments.
type Action struct {
	Kind Kind
	Mode string
	IDs  []int  // vcpus
	Path string // read, write
	Data []byte // write

	Users UserArgs // password, ssh-key (users.go)
}

// Result is one guest's outcome of an action.
type Result struct {
	Guest    string
	OK       bool
	Skipped  bool   // the agent lacks or disabled the command; nothing was sent
	Err      string // error text when !OK and !Skipped; the skip reason when Skipped
	Result   string // the agent's answer, summarised ("froze 1 filesystem")
	Data     []byte // read: the file's content
	Duration time.Duration
	// ThawAt is, for a freeze this process made, when its watchdog thaws
	// the guest (zero otherwise). Result does not repeat it, so that a
	// caller that thaws at another time (run --hold) can say that instead.
	ThawAt time.Time
}
