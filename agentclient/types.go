package agentclient

// Wire types of the guest-agent protocol. Field names follow the schema's JSON
// names; optional fields are pointers or omitempty so that "absent" and "zero"
// stay distinguishable where the agent makes the difference.

// CommandInfo is one entry of guest-info's supported_commands.
type CommandInfo struct {
	Name            string `json:"name"`
	Enabled         bool   `json:"enabled"`
	SuccessResponse bool   `json:"success-response"`
}

// Info is guest-info's reply.
type Info struct {
	Version           string        `json:"version"`
	SupportedCommands []CommandInfo `json:"supported_commands"`
}

// FileRead is guest-file-read's reply; Buf is decoded from buf-b64.
type FileRead struct {
	Count  int    `json:"count"`
	BufB64 string `json:"buf-b64"`
	EOF    bool   `json:"eof"`
}

// FileWrite is guest-file-write's reply.
type FileWrite struct {
	Count int  `json:"count"`
	EOF   bool `json:"eof"`
}

// FileSeek is guest-file-seek's reply.
type FileSeek struct {
	Position int64 `json:"position"`
	EOF      bool  `json:"eof"`
}

// Whence values for guest-file-seek (the integer form every agent accepts).
const (
	SeekSet = 0
	SeekCur = 1
	SeekEnd = 2
)

// FreezeStatus is guest-fsfreeze-status's reply.
type FreezeStatus string

const (
	Thawed FreezeStatus = "thawed"
	Frozen FreezeStatus = "frozen"
)

// IPAddress is one address of an interface.
type IPAddress struct {
	Address string `json:"ip-address"`
	Type    string `json:"ip-address-type"` // "ipv4" or "ipv6"
	Prefix  int    `json:"prefix"`
}

// InterfaceStats are the counters newer agents add to each interface.
type InterfaceStats struct {
	RxBytes   uint64 `json:"rx-bytes"`
	RxPackets uint64 `json:"rx-packets"`
	RxErrs    uint64 `json:"rx-errs"`
	RxDropped uint64 `json:"rx-dropped"`
	TxBytes   uint64 `json:"tx-bytes"`
	TxPackets uint64 `json:"tx-packets"`
	TxErrs    uint64 `json:"tx-errs"`
	TxDropped uint64 `json:"tx-dropped"`
}

// Interface is one entry of guest-network-get-interfaces.
type Interface struct {
	Name            string          `json:"name"`
	HardwareAddress string          `json:"hardware-address,omitempty"`
	IPAddresses     []IPAddress     `json:"ip-addresses,omitempty"`
	Statistics      *InterfaceStats `json:"statistics,omitempty"`
}

// VCPU is one logical processor (guest-get-vcpus, guest-set-vcpus).
type VCPU struct {
	LogicalID  int   `json:"logical-id"`
	Online     bool  `json:"online"`
	CanOffline *bool `json:"can-offline,omitempty"`
}

// OSInfo is guest-get-osinfo's reply (every field optional).
type OSInfo struct {
	KernelRelease string `json:"kernel-release,omitempty"`
	KernelVersion string `json:"kernel-version,omitempty"`
	Machine       string `json:"machine,omitempty"`
	ID            string `json:"id,omitempty"`
	Name          string `json:"name,omitempty"`
	PrettyName    string `json:"pretty-name,omitempty"`
	Version       string `json:"version,omitempty"`
	VersionID     string `json:"version-id,omitempty"`
	Variant       string `json:"variant,omitempty"`
	VariantID     string `json:"variant-id,omitempty"`
}

// Timezone is guest-get-timezone's reply; Offset is seconds east of UTC.
type Timezone struct {
	Zone   string `json:"zone,omitempty"`
	Offset int    `json:"offset"`
}

// User is one logged-in user (guest-get-users); LoginTime is seconds since the epoch.
type User struct {
	User      string  `json:"user"`
	Domain    string  `json:"domain,omitempty"`
	LoginTime float64 `json:"login-time"`
}

// PCIAddress locates a disk controller.
type PCIAddress struct {
	Domain   int `json:"domain"`
	Bus      int `json:"bus"`
	Slot     int `json:"slot"`
	Function int `json:"function"`
}

// DiskAddress is one disk behind a filesystem (guest-get-fsinfo).
type DiskAddress struct {
	PCIController PCIAddress `json:"pci-controller"`
	BusType       string     `json:"bus-type"`
	Bus           int        `json:"bus"`
	Target        int        `json:"target"`
	Unit          int        `json:"unit"`
	Serial        string     `json:"serial,omitempty"`
	Dev           string     `json:"dev,omitempty"`
}

// Filesystem is one entry of guest-get-fsinfo.
type Filesystem struct {
	Name       string        `json:"name"`
	Mountpoint string        `json:"mountpoint"`
	Type       string        `json:"type"`
	UsedBytes  *uint64       `json:"used-bytes,omitempty"`
	TotalBytes *uint64       `json:"total-bytes,omitempty"`
	Disk       []DiskAddress `json:"disk"`
}

// TrimResult is one path of guest-fstrim's reply (newer agents).
type TrimResult struct {
	Path    string `json:"path"`
	Trimmed *int64 `json:"trimmed,omitempty"`
	Minimum *int64 `json:"minimum,omitempty"`
	Error   string `json:"error,omitempty"`
}

// TrimResponse is guest-fstrim's reply on agents that return one.
type TrimResponse struct {
	Paths []TrimResult `json:"paths"`
}

// ExecRequest is guest-exec's argument (encoded by its MarshalJSON).
type ExecRequest struct {
	Path      string
	Arg       []string
	Env       []string
	InputData string // base64, sent as input-data: the process's stdin
	// CaptureOutput captures stdout and stderr apart (capture-output
	// true); Capture, when set, sends that mode instead.
	CaptureOutput bool
	Capture       CaptureMode
}

// ExecStatus is guest-exec-status's reply. OutData and ErrData are the
// output itself: the agent's base64 is decoded straight from the reply
// (one copy of the output, not the base64 string as well). Data that is
// not base64 loses that field only, like any field that does not fit.
type ExecStatus struct {
	Exited       bool   `json:"exited"`
	ExitCode     *int   `json:"exitcode,omitempty"`
	Signal       *int   `json:"signal,omitempty"`
	OutData      []byte `json:"out-data,omitempty"`
	ErrData      []byte `json:"err-data,omitempty"`
	OutTruncated bool   `json:"out-truncated,omitempty"`
	ErrTruncated bool   `json:"err-truncated,omitempty"`
}

// Shutdown modes for guest-shutdown.
const (
	ShutdownPowerdown = "powerdown"
	ShutdownReboot    = "reboot"
	ShutdownHalt      = "halt"
)

// Suspend modes, named as the commands' suffixes.
const (
	SuspendDisk   = "disk"
	SuspendRAM    = "ram"
	SuspendHybrid = "hybrid"
)
