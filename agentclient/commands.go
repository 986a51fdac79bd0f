package agentclient

//go:generate go test -run ^TestCommandsDocCurrent$ -update .

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Command is what the client knows about one agent command: the one home of
// these facts. The transports size their reply limits from it, the stream
// decides from it whether to wait for a reply, the simulator serves what it
// lists, and callers ask it whether a command may change the guest or run
// while the guest is frozen. docs/commands.md is generated from it.
type Command struct {
	Name string
	// Mutates: the command may change the guest (power, clock, vCPUs,
	// memory, users, files, processes) or state the agent keeps for all its
	// clients (file handles and their positions, the exit status of a
	// process guest-exec started, which guest-exec-status reaps). Commands
	// that only report do not. A read-only mode allows only commands with
	// Mutates false (see ReadOnlyRefusal).
	Mutates bool
	// WhileFrozen: qemu-ga still runs the command while the guest's
	// filesystems are frozen (its freeze allowlist); it refuses every other
	// command then.
	WhileFrozen bool
	// SuccessResponse: the agent replies when the command succeeds.
	// Shutdown and suspend do not: the guest goes away instead.
	SuccessResponse bool
	// Since is the qemu-ga version that introduced the command (the
	// schema's "Since:").
	Since string
	// Libvirt names the libvirt calls that run the command as a typed API
	// (libvirt's agent mode of it); nil where libvirt has none and the
	// command goes through virDomainQemuAgentCommand as raw JSON.
	Libvirt []string
	// OS is the guest systems qemu-ga offers the command on (the schema's
	// 'if' conditions; POSIX means Linux where the schema says CONFIG_LINUX).
	OS OS
	// MaxReply bounds one reply line (envelope and id included), sized to
	// the largest reply the command can legitimately give, an agent error
	// naming a path included. Commands whose reply size follows their
	// arguments size it in ReplyLimit.
	MaxReply int

	// replyFor sizes the limit from the JSON arguments, when they decide
	// it (guest-file-read's count). nil: MaxReply.
	replyFor func(args []byte) int
}

// OS is a set of guest operating systems qemu-ga runs on.
type OS uint8

const (
	POSIX   OS = 1 << iota // Linux, and the BSDs where the schema allows
	Windows                // qemu-ga for Windows (the virtio-win package)

	anyOS = POSIX | Windows
)

func (o OS) String() string {
	switch o {
	case POSIX:
		return "posix"
	case Windows:
		return "windows"
	case anyOS:
		return "posix, windows"
	}
	return "none"
}

// Offered reports whether qemu-ga of version (as guest-info reports it,
// "7.2.22") on os has the command: the command exists there and is not newer.
func (c Command) Offered(version string, os OS) bool {
	return c.OS&os != 0 && compareVersions(version, c.Since) >= 0
}

// compareVersions compares dotted version numbers part by part ("2.10" is
// newer than "2.2"); a part that is not a number, and what follows it,
// counts as 0.
func compareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return 0
}

func versionParts(v string) []int {
	var out []int
	for p := range strings.SplitSeq(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			break
		}
		out = append(out, n)
	}
	return out
}

// Reply limits by the shape of what comes back. A limit is a ceiling, not an
// allocation: a stream buffers only what actually arrives (see Budget).
const (
	// tinyReply: a number, {} or a status word, or an agent error that
	// names one path (PATH_MAX is 4 KiB, and JSON escapes can triple it).
	tinyReply = 16 << 10
	// smallReply: a handful of strings or a short list (guest-info's
	// command list, os-release fields, a hostname, a timezone).
	smallReply = 64 << 10
	// usersReply: the distinct users logged in, with their domains: a
	// shared login server has hundreds (about 80 bytes each).
	usersReply = 256 << 10
	// vcpuReply: about 60 bytes per vCPU; 1 MiB holds 16,000, past QEMU's
	// 4,096 vCPU maximum for a guest.
	vcpuReply = 1 << 20
	// interfaceReply: about 500 bytes per interface with two addresses
	// and statistics; 2 MiB holds 4,000 (a container host's veth pairs).
	interfaceReply = 2 << 20
	// deviceListReply: per-filesystem, per-disk and per-device entries of
	// about 400 bytes to 1 KiB; 4 MiB holds thousands (a Kubernetes node's
	// bind mounts, NVMe SMART data).
	deviceListReply = 4 << 20
	// RawReplyLimit bounds a reply to a command the table does not know,
	// and lists that grow with the guest without a useful bound (memory
	// blocks of a multi-terabyte guest, a router's routing table): libvirt's
	// own cap on one agent reply (QEMU_AGENT_MAX_RESPONSE_LEN, 10 MiB).
	RawReplyLimit = 10 << 20
)

// Reply envelope slack for replies sized from their data: {"return": {...},
// "id": "..."} around the payload, and room for an agent that escapes '/' as
// "\/" in base64 (1/64 of base64 characters are '/', each then 2 bytes).
const envelopeSlack = 4 << 10

// File read and exec output caps, from qemu-ga: one guest-file-read returns
// at most 48 MiB (the schema says so), and guest-exec captures at most
// 16 MiB of stdout and 16 MiB of stderr (GUEST_EXEC_MAX_OUTPUT).
const (
	fileReadDefaultCount = 4096
	fileReadMaxCount     = 48 << 20
	execMaxOutput        = 16 << 20
)

// base64Reply is the reply limit for n bytes of data in base64.
func base64Reply(n int) int {
	b := base64.StdEncoding.EncodedLen(n)
	return b + b/64 + envelopeSlack
}

// fileReadLimit sizes a guest-file-read reply from its count argument
// (default 4096, as the agent's).
func fileReadLimit(args []byte) int {
	var a struct {
		Count *int64 `json:"count"`
	}
	count := int64(fileReadDefaultCount)
	if json.Unmarshal(args, &a) == nil && a.Count != nil && *a.Count > 0 {
		count = *a.Count
	}
	// An agent refuses a count over its cap; a different agent honouring
	// it would still be held to the cap.
	return max(base64Reply(int(min(count, fileReadMaxCount))), tinyReply)
}

// commandTable lists every command of qemu-ga's schema (qga/qapi-schema.json,
// QEMU 10), in the schema's order: qemu-ga registers them in this order and
// its guest-info lists them in reverse. It is read, never written.
var commandTable = func() []Command {
	look := func(name, since string, os OS, maxReply int, libvirt ...string) Command {
		return Command{Name: name, SuccessResponse: true, Since: since, OS: os, MaxReply: maxReply, Libvirt: libvirt}
	}
	change := func(name, since string, os OS, maxReply int, libvirt ...string) Command {
		c := look(name, since, os, maxReply, libvirt...)
		c.Mutates = true
		return c
	}
	frozenOK := func(c Command) Command { c.WhileFrozen = true; return c }
	noReply := func(c Command) Command { c.SuccessResponse = false; return c }

	fileRead := change("guest-file-read", "0.15.0", anyOS, base64Reply(fileReadMaxCount))
	fileRead.replyFor = fileReadLimit

	const guestInfo = "virDomainGetGuestInfo"
	// The freeze allowlist is sync, ping, info, status and thaw.
	cmds := []Command{
		frozenOK(look("guest-sync-delimited", "1.1", anyOS, tinyReply)),
		frozenOK(look("guest-sync", "0.15.0", anyOS, tinyReply)),
		frozenOK(look("guest-ping", "0.15.0", anyOS, tinyReply)),
		look("guest-get-time", "1.5", anyOS, tinyReply, "virDomainGetTime"),
		change("guest-set-time", "1.5", anyOS, tinyReply, "virDomainSetTime"),
		frozenOK(look("guest-info", "0.15.0", anyOS, smallReply)),
		noReply(change("guest-shutdown", "0.15.0", anyOS, tinyReply, "virDomainShutdownFlags", "virDomainReboot")),

		// File commands act on handles the agent keeps for every client,
		// and open may create or truncate: all count as changing the guest.
		change("guest-file-open", "0.15.0", anyOS, tinyReply),
		change("guest-file-close", "0.15.0", anyOS, tinyReply),
		fileRead,
		change("guest-file-write", "0.15.0", anyOS, tinyReply),
		change("guest-file-seek", "0.15.0", anyOS, tinyReply),
		change("guest-file-flush", "0.15.0", anyOS, tinyReply),

		frozenOK(look("guest-fsfreeze-status", "0.15.0", anyOS, tinyReply)),
		change("guest-fsfreeze-freeze", "0.15.0", anyOS, tinyReply, "virDomainFSFreeze"),
		change("guest-fsfreeze-freeze-list", "2.2", anyOS, tinyReply, "virDomainFSFreeze"),
		frozenOK(change("guest-fsfreeze-thaw", "0.15.0", anyOS, tinyReply, "virDomainFSThaw")),
		// Newer agents return a result per path.
		change("guest-fstrim", "1.2", anyOS, deviceListReply, "virDomainFSTrim"),
		noReply(change("guest-suspend-disk", "1.1", anyOS, tinyReply, "virDomainPMSuspendForDuration")),
		noReply(change("guest-suspend-ram", "1.1", anyOS, tinyReply, "virDomainPMSuspendForDuration")),
		noReply(change("guest-suspend-hybrid", "1.1", POSIX, tinyReply, "virDomainPMSuspendForDuration")),
		look("guest-network-get-interfaces", "1.1", anyOS, interfaceReply, "virDomainInterfaceAddresses", guestInfo),
		look("guest-get-vcpus", "1.5", anyOS, vcpuReply, "virDomainGetGuestVcpus", "virDomainGetVcpusFlags"),
		change("guest-set-vcpus", "1.5", POSIX, tinyReply, "virDomainSetGuestVcpus", "virDomainSetVcpusFlags"),
		look("guest-get-disks", "5.2", anyOS, deviceListReply, guestInfo),
		look("guest-get-fsinfo", "2.2", anyOS, deviceListReply, "virDomainGetFSInfo", guestInfo),
		change("guest-set-user-password", "2.3", anyOS, tinyReply, "virDomainSetUserPassword"),
		look("guest-get-memory-blocks", "2.3", POSIX, RawReplyLimit),
		change("guest-set-memory-blocks", "2.3", POSIX, RawReplyLimit),
		look("guest-get-memory-block-info", "2.3", POSIX, tinyReply),
		// Reports, and reaps a process once it reports it exited (so a
		// second client asking after the same pid is told it is unknown);
		// its output is stdout and stderr in base64.
		change("guest-exec-status", "2.5", anyOS, 2*base64Reply(execMaxOutput)),
		// Runs a program; with input-data it feeds it stdin, with
		// capture-output (a flag, or since 8.0 a mode) the agent keeps
		// its output for guest-exec-status.
		change("guest-exec", "2.5", anyOS, tinyReply),
		look("guest-get-host-name", "2.10", anyOS, smallReply, "virDomainGetHostname", guestInfo),
		look("guest-get-users", "2.10", anyOS, usersReply, guestInfo),
		look("guest-get-timezone", "2.10", anyOS, smallReply, guestInfo),
		look("guest-get-osinfo", "2.10", anyOS, smallReply, guestInfo),
		look("guest-get-devices", "5.2", Windows, deviceListReply),
		look("guest-ssh-get-authorized-keys", "5.2", anyOS, vcpuReply, "virDomainAuthorizedSSHKeysGet"),
		change("guest-ssh-add-authorized-keys", "5.2", anyOS, tinyReply, "virDomainAuthorizedSSHKeysSet"),
		change("guest-ssh-remove-authorized-keys", "5.2", anyOS, tinyReply, "virDomainAuthorizedSSHKeysSet"),
		look("guest-get-diskstats", "7.1", POSIX, deviceListReply),
		look("guest-get-cpustats", "7.1", POSIX, deviceListReply),
		look("guest-get-load", "10.0", anyOS, tinyReply, guestInfo),
		look("guest-network-get-route", "9.1", anyOS, RawReplyLimit),
	}
	seen := make(map[string]bool, len(cmds))
	for _, c := range cmds {
		if seen[c.Name] {
			panic("agentclient: command " + c.Name + " listed twice")
		}
		seen[c.Name] = true
	}
	return cmds
}()

// commandIndex finds a command's entry in commandTable.
var commandIndex = func() map[string]int {
	m := make(map[string]int, len(commandTable))
	for i, c := range commandTable {
		m[c.Name] = i
	}
	return m
}()

// Lookup returns what the client knows about command name.
func Lookup(name string) (Command, bool) {
	i, ok := commandIndex[name]
	if !ok {
		return Command{}, false
	}
	return commandTable[i], true
}

// Commands lists every command the client knows, in the schema's order.
func Commands() []Command { return slices.Clone(commandTable) }

// lookupOrRaw returns name's entry, or for a command the table does not know
// what the client assumes of it: it may change the guest, it replies, it is
// refused while frozen, and its reply is held to RawReplyLimit.
func lookupOrRaw(name string) Command {
	if c, ok := Lookup(name); ok {
		return c
	}
	return Command{Name: name, Mutates: true, SuccessResponse: true, MaxReply: RawReplyLimit}
}

// ReplyLimit is the limit on one reply to the command sent with args (its
// JSON arguments, nil for none).
func (c Command) ReplyLimit(args []byte) int {
	if c.replyFor != nil {
		return c.replyFor(args)
	}
	return c.MaxReply
}

// requestReplyLimit is the limit on the reply to a whole request line
// ({"execute": name, "arguments": ...}).
func requestReplyLimit(name string, request []byte) int {
	c := lookupOrRaw(name)
	if c.replyFor == nil {
		return c.MaxReply
	}
	var req struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	_ = json.Unmarshal(request, &req) // unreadable arguments size as none
	return c.ReplyLimit(req.Arguments)
}

// Mutates reports whether command name may change the guest; a command the
// client does not know is assumed to. It is the one read-only rule: the CLI
// and the fleet both ask it (through ReadOnlyRefusal).
func Mutates(name string) bool { return lookupOrRaw(name).Mutates }

// ReadOnlyRefusal says why a read-only mode refuses command name, or returns
// nil when the command only reports. Every read-only check of a raw command
// gives this one message.
func ReadOnlyRefusal(name string) error {
	if !Mutates(name) {
		return nil
	}
	if _, known := Lookup(name); !known {
		return fmt.Errorf("read-only mode allows only commands that report, and %q is not a command guestdeck knows", name)
	}
	return fmt.Errorf("read-only mode allows only commands that report, and %s may change the guest", name)
}

// SuccessResponse reports whether the agent answers name when it succeeds.
// Shutdown and suspend do not: the guest goes away instead. A command the
// client does not know is assumed to answer.
func SuccessResponse(name string) bool { return lookupOrRaw(name).SuccessResponse }

// AllowedWhileFrozen reports whether a frozen agent still runs command name.
// qemu-ga refuses every other command while the guest's filesystems are
// frozen ("has been disabled: the agent is in frozen state"), and its
// guest-info then lists those commands with enabled=false.
func AllowedWhileFrozen(name string) bool { return lookupOrRaw(name).WhileFrozen }

// sizeText writes a byte count for a message: "64 KiB", "10 MiB", "1500 bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
