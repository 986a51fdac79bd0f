package fleet

import "time"

// Kind names a bulk action. Each is declared once, with its words,
// arguments, modes and flags, in actionTable (actions.go).
type Kind string

const (
	ActPing     Kind = "ping"
	ActFreeze   Kind = "freeze"
	ActThaw     Kind = "thaw"
	ActShutdown Kind = "shutdown"
	ActSuspend  Kind = "suspend"
	ActSetTime  Kind = "settime" // from the host clock
	ActFstrim   Kind = "fstrim"
	ActVCPUs    Kind = "vcpus"
	ActRead     Kind = "read"  // Path; result holds the content
	ActWrite    Kind = "write" // Path, Data
	ActInfo     Kind = "info"  // refresh everything now (read-only)
	ActWake     Kind = "wake"  // libvirt: wake a domain suspended to RAM
	ActStart    Kind = "start" // libvirt: boot a stopped domain
	ActClock    Kind = "clock" // read the guest clock, or set it (virsh domtime)
)

// Action is one bulk action with its arguments (which ones, see the
// action's Spec.Args).
type Action struct {
	Kind Kind
	Mode string
	IDs  []int  // vcpus
	Path string // read, write
	Data []byte // write

	Users UserArgs // password, ssh-key (users.go)

	// Options (Spec.Options, options.go).
	Mountpoints []string // freeze --mountpoint: only these filesystems
	Minimum     int64    // fstrim --minimum: the smallest free range to discard, bytes (0: every one)
	Seconds     int64    // clock --time: the time to set, seconds since the epoch
}

// Result is one guest's outcome of an action. Besides the summary for a
// person (Result), an action fills the structured fields its Spec names
// (ResultFields): callers read those, never the text.
type Result struct {
	Guest    string
	OK       bool
	Skipped  bool   // the agent lacks or disabled the command; nothing was sent
	Err      string // error text when !OK and !Skipped; the skip reason when Skipped
	Result   string // the agent's answer, summarised ("froze 1 filesystem")
	Data     []byte // read: the file's content
	Duration time.Duration
	// NotStarted: its turn never came (the action was stopped or
	// cancelled first) and nothing was sent; Err says so (NotStartedText).
	NotStarted bool
	// ThawAt is, for a freeze this process made, when its watchdog thaws
	// the guest (zero otherwise). Result does not repeat it, so that a
	// caller that thaws at another time (run --hold) can say that instead.
	ThawAt time.Time

	RTT          time.Duration // ping: the round trip
	Filesystems  int           // freeze: frozen; thaw: thawed; fstrim: trimmed
	TrimmedBytes int64         // fstrim: bytes discarded, over all filesystems
	VCPUs        int           // vcpus: how many the agent changed
	Bytes        int64         // read: bytes kept in Data; write: bytes written
	Clock        time.Time     // settime, clock: the time sent, or the guest's as read
	Skew         time.Duration // clock (reading): the guest clock minus the host's, the round trip halved
}
