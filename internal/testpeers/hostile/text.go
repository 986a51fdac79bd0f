package hostile

import "strings"

// What the escapes peer says. Every string it sends is its field's name
// followed by Payload (the host name has raw bytes before its name), so that
// a leak on a screen names the field it came from; tests compare what a
// client decoded with Text.

// Markers inside Payload, for tests that look for their effect.
const (
	// TitleMarker is the window title OSC 0 and OSC 2 try to set.
	TitleMarker = "HOSTILE-TITLE"
	// WindowMarker is the window name the screen/tmux "ESC k" sequence tries to set.
	WindowMarker = "HOSTILE-WINDOW"
	// ClipboardText is what OSC 52 tries to put on the clipboard.
	ClipboardText = "rm -rf ~"
	// clipboardB64 is ClipboardText in base64, as OSC 52 carries it.
	clipboardB64 = "cm0gLXJmIH4="
)

// Payload is the hostile tail of every string the escapes peer sends: the
// terminal sequences a guest's root would try (title, clipboard, window name,
// screen clear, colours), their 8-bit C1 forms, a bidi override, invisible
// formatting characters, and C0 controls that move the cursor or end a line
// (a newline in a field forges a table row).
const Payload = "\x1b]0;" + TitleMarker + "\x07" + // OSC 0: window and icon title, BEL-terminated
	"\x1b]2;" + TitleMarker + "\x1b\\" + // OSC 2: window title, ST-terminated
	"\x1b]52;c;" + clipboardB64 + "\x07" + // OSC 52: set the clipboard
	"\x1bk" + WindowMarker + "\x1b\\" + // screen/tmux: rename the window
	"\x1b[2J\x1b[H\x1b[31m" + // CSI: clear the screen, cursor home, red
	"\u009b7m\u009d0;" + TitleMarker + "\u009c" + // 8-bit CSI (reverse video) and OSC ... ST
	"\u202egnp.exe\u202c" + // right-to-left override ... pop: shows "exe.png"
	"\u200b\u200d\u2066\ufeff\u00ad" + // zero-width space and joiner, isolate, BOM, soft hyphen
	"\r\b\x7f\x00" + // carriage return, backspace, DEL, NUL
	"\nforged-row ready\t" // a newline forging a line of its own

// The string fields the escapes peer fills, named by command member.
const (
	FieldHostname        = "host-name"
	FieldOSName          = "os.name"
	FieldOSPrettyName    = "os.pretty-name"
	FieldOSVersion       = "os.version"
	FieldOSVersionID     = "os.version-id"
	FieldOSKernelRelease = "os.kernel-release"
	FieldOSKernelVersion = "os.kernel-version"
	FieldOSMachine       = "os.machine"
	FieldOSID            = "os.id"
	FieldOSVariant       = "os.variant"
	FieldOSVariantID     = "os.variant-id"
	FieldIfaceName       = "iface.name"
	FieldIfaceMAC        = "iface.hardware-address"
	FieldIfaceIP         = "iface.ip-address"
	FieldUser            = "user.user"
	FieldUserDomain      = "user.domain"
	FieldZone            = "timezone.zone"
	FieldFSName          = "fs.name"
	FieldFSMountpoint    = "fs.mountpoint"
	FieldFSType          = "fs.type"
	FieldDiskSerial      = "disk.serial"
	FieldDiskDev         = "disk.dev"
	FieldDiskBusType     = "disk.bus-type"
	FieldAgentVersion    = "agent.version"
	FieldCommand         = "command.name"     // an extra, enabled command in guest-info
	FieldCommandOff      = "command.disabled" // an extra, disabled command in guest-info
	FieldErrorClass      = "error.class"      // of every error the peer answers with
	FieldErrorDesc       = "error.desc"
	FieldExecOut         = "exec.out-data" // output of a guest-exec that is not a listing
	FieldExecErr         = "exec.err-data" // stderr of a failed listing and of other guest-exec runs
)

// Fields lists every field the escapes peer fills.
func Fields() []string {
	return []string{FieldHostname, FieldOSName, FieldOSPrettyName, FieldOSVersion, FieldOSVersionID,
		FieldOSKernelRelease, FieldOSKernelVersion, FieldOSMachine, FieldOSID, FieldOSVariant, FieldOSVariantID,
		FieldIfaceName, FieldIfaceMAC, FieldIfaceIP, FieldUser, FieldUserDomain, FieldZone,
		FieldFSName, FieldFSMountpoint, FieldFSType, FieldDiskSerial, FieldDiskDev, FieldDiskBusType,
		FieldAgentVersion, FieldCommand, FieldCommandOff, FieldErrorClass, FieldErrorDesc, FieldExecOut, FieldExecErr}
}

// The host name starts with what JSON escaping cannot carry: the 8-bit CSI
// and OSC bytes raw (rawC1: not UTF-8, so a JSON decoder turns each into
// U+FFFD), then hostRaw as raw UTF-8 (C1 CSI, a bidi override); its label
// follows. A client that shows reply lines as received (a command log, even
// one that keeps or shows only a line's first bytes) passes them on.
const (
	rawC1   = "\x9b\x9d"
	hostRaw = "\u009b7m\u202egnp.exe\u202c"
)

// Text is field's string as a JSON decoder reads it from the escapes peer
// (encoding/json: bytes that are not UTF-8 become U+FFFD).
func Text(field string) string {
	if field == FieldHostname {
		return strings.Repeat("\uFFFD", len(rawC1)) + hostRaw + field + Payload
	}
	return field + Payload
}

// wireText is field's string as the escapes peer writes it: QEMU's escaping
// for most fields; the OS fields with every non-ASCII rune as raw UTF-8 (the
// agent escapes them, a hostile one need not); the host name with raw bytes
// before its label.
func wireText(field string) any {
	s := field + Payload
	switch {
	case field == FieldHostname:
		q := appendString(nil, Payload)
		return raw(`"` + rawC1 + hostRaw + field + string(q[1:]))
	case strings.HasPrefix(field, "os."):
		return raw(rawUTF8String(s))
	}
	return s
}

// rawUTF8String quotes s for JSON escaping only what JSON requires: '"',
// '\' and C0 controls; everything else, C1 and bidi included, goes raw.
func rawUTF8String(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			q := appendString(nil, string(r))
			b.Write(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// DirEntry is one entry the escapes peer lists for "/" through guest-exec.
type DirEntry struct {
	Name string // raw bytes: a listing is stat's output, not JSON
	Mode uint32 // st_mode
	Size int64
}

// FileName is the one file in the escapes peer's listing that opens; its
// content is FileContent. Every other path fails with Text(FieldErrorDesc).
const FileName = "hostile.txt"

// FileContent is what the escapes peer's FileName holds: the same sequences
// as Payload, raw, one per line.
const FileContent = "a hostile guest's file\n" +
	"title \x1b]0;" + TitleMarker + "\x07\n" +
	"clipboard \x1b]52;c;" + clipboardB64 + "\x07\n" +
	"clear \x1b[2J\x1b[H\n" +
	"c1 \u009b7m \x9b7m\n" +
	"bidi \u202egnp.exe\u202c\n" +
	"end\n"

// DirEntries is the escapes peer's listing of "/": names a guest chooses,
// controls and bytes that are not UTF-8 included (anything but '/' and
// NUL, and a listing may even lie about those). Any other directory fails
// to list with Text(FieldExecErr) on its stderr.
func DirEntries() []DirEntry {
	const file, dir = 0o100644, 0o040755
	return []DirEntry{
		{"..", dir, 4096},
		{FileName, file, int64(len(FileContent))},
		{"title-\x1b]0;" + TitleMarker + "\x07", file, 11},
		{"clip-\x1b]52;c;" + clipboardB64 + "\x07", file, 12},
		{"window-\x1bk" + WindowMarker + "\x1b\\", file, 13},
		{"clear-\x1b[2J\x1b[H", file, 14},
		{"c1raw-\x9b7m-\x9d0;" + TitleMarker + "\x9c", file, 15},
		{"c1utf8-\u009b7m", file, 16},
		{"bidi-\u202egnp.exe", file, 17},
		{"zw-\u200b\u200d\ufeff-end", file, 18},
		{"bs-\b\b\b\r\x7f", file, 19},
		{"nl-\n81a4 1 1\nforged-row", file, 20},
		{"../../gd-traversal", file, 20},
		{"dir-\x1b]0;" + TitleMarker + "\x07", dir, 4096},
	}
}
