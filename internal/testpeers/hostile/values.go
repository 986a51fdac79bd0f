package hostile

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"time"
)

// The return values of the read-only commands, per mode. Shapes and member
// order follow the replies recorded from qemu-ga 7.2.

// command is one entry of the peer's guest-info.
type command struct {
	name    string
	enabled bool
}

// commands is what the peer's guest-info lists, in qemu-ga 7.2's order.
// Only read-only commands and file reads are enabled (guest-exec only for
// the escapes peer's directory listing): guestdeck then never sends a
// mutating command, and the peer never needs to pretend one worked.
func (p *Peer) commands() []command {
	on := map[string]bool{
		"guest-get-osinfo": true, "guest-get-timezone": true, "guest-get-users": true, "guest-get-host-name": true,
		"guest-get-fsinfo": true, "guest-get-vcpus": true, "guest-network-get-interfaces": true,
		"guest-fsfreeze-status": true, "guest-file-seek": true, "guest-file-read": true, "guest-file-close": true,
		"guest-file-open": true, "guest-info": true, "guest-get-time": true, "guest-ping": true,
		"guest-sync": true, "guest-sync-delimited": true,
		"guest-exec": p.mode == Escapes || p.mode == Lies, "guest-exec-status": p.mode == Escapes || p.mode == Lies,
		"guest-ssh-get-authorized-keys": p.mode == Lies,
	}
	var out []command
	for _, n := range []string{
		"guest-get-osinfo", "guest-get-timezone", "guest-get-users", "guest-get-host-name",
		"guest-exec", "guest-exec-status", "guest-get-fsinfo", "guest-set-vcpus", "guest-get-vcpus",
		"guest-network-get-interfaces", "guest-suspend-hybrid", "guest-suspend-ram", "guest-suspend-disk",
		"guest-fstrim", "guest-fsfreeze-thaw", "guest-fsfreeze-freeze-list", "guest-fsfreeze-freeze",
		"guest-fsfreeze-status", "guest-file-flush", "guest-file-seek", "guest-file-write", "guest-file-read",
		"guest-file-close", "guest-file-open", "guest-shutdown", "guest-info", "guest-set-time",
		"guest-get-time", "guest-ping", "guest-sync", "guest-sync-delimited",
	} {
		out = append(out, command{n, on[n]})
	}
	if p.mode == Lies {
		out = append(out, command{"guest-ssh-get-authorized-keys", true})
	}
	return out
}

func successResponse(name string) bool {
	switch name {
	case "guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid":
		return false
	}
	return true
}

// text is a string field's value: hostile in the escapes mode, else plain.
func (p *Peer) text(field, plain string) any {
	if p.mode == Escapes {
		return wireText(field)
	}
	return plain
}

func (p *Peer) infoValue() any {
	var cmds []any
	for _, c := range p.commands() {
		cmds = append(cmds, object{{"enabled", c.enabled}, {"name", c.name}, {"success-response", successResponse(c.name)}})
	}
	if p.mode == Escapes {
		cmds = append(cmds,
			object{{"enabled", true}, {"name", wireText(FieldCommand)}, {"success-response", true}},
			object{{"enabled", false}, {"name", wireText(FieldCommandOff)}, {"success-response", true}})
	}
	return object{{"version", p.text(FieldAgentVersion, "7.2.22")}, {"supported_commands", cmds}}
}

func (p *Peer) osinfoValue() any {
	return object{
		{"name", p.text(FieldOSName, "Debian GNU/Linux")},
		{"kernel-release", p.text(FieldOSKernelRelease, "6.1.0-hostile")},
		{"version", p.text(FieldOSVersion, "12 (bookworm)")},
		{"variant", p.text(FieldOSVariant, "Server")},
		{"pretty-name", p.text(FieldOSPrettyName, "Debian GNU/Linux 12 (bookworm)")},
		{"version-id", p.text(FieldOSVersionID, "12")},
		{"variant-id", p.text(FieldOSVariantID, "server")},
		{"kernel-version", p.text(FieldOSKernelVersion, "#1 SMP PREEMPT_DYNAMIC")},
		{"machine", p.text(FieldOSMachine, "x86_64")},
		{"id", p.text(FieldOSID, "debian")},
	}
}

// set replaces the value of o's member k.
func (o object) set(k string, v any) object {
	for i := range o {
		if o[i].k == k {
			o[i].v = v
		}
	}
	return o
}

func (p *Peer) hostnameValue() any {
	return object{{"host-name", p.text(FieldHostname, p.cfg.name)}}
}

func (p *Peer) timezoneValue() any {
	if p.mode == Numbers {
		// An offset of 2^63 seconds fits no int64.
		return object{{"zone", "UTC"}, {"offset", raw("9223372036854775808")}}
	}
	return object{{"zone", p.text(FieldZone, "UTC")}, {"offset", 0}}
}

func (p *Peer) usersValue() any {
	switch p.mode {
	case Escapes:
		return []any{object{{"login-time", 1700000000.5}, {"domain", wireText(FieldUserDomain)}, {"user", wireText(FieldUser)}}}
	case Numbers:
		// 1e400 is valid JSON and no float64.
		return []any{object{{"login-time", raw("1e400")}, {"user", "root"}}}
	}
	return []any{object{{"login-time", 1700000000.5}, {"user", "root"}}}
}

func stats(rxBytes, txBytes any) object {
	return object{{"tx-packets", 29}, {"tx-errs", 0}, {"rx-bytes", rxBytes}, {"rx-dropped", 0},
		{"rx-packets", 29}, {"rx-errs", 0}, {"tx-bytes", txBytes}, {"tx-dropped", 0}}
}

func ip(typ string, addr, prefix any) object {
	return object{{"ip-address-type", typ}, {"ip-address", addr}, {"prefix", prefix}}
}

// NumbersMAC is the numbers peer's eth0 hardware address: its strings are
// sound, so a client that drops only the bad numbers still shows it.
const NumbersMAC = "02:00:00:00:00:07"

func (p *Peer) interfacesValue() any {
	lo := object{{"name", "lo"}, {"ip-addresses", []any{ip("ipv4", "127.0.0.1", 8), ip("ipv6", "::1", 128)}},
		{"statistics", stats(3193, 3193)}, {"hardware-address", "00:00:00:00:00:00"}}
	switch p.mode {
	case Escapes:
		evil := object{{"name", wireText(FieldIfaceName)},
			{"ip-addresses", []any{ip("ipv4", wireText(FieldIfaceIP), 24)}},
			{"statistics", stats(128454488, 256177)}, {"hardware-address", wireText(FieldIfaceMAC)}}
		return []any{lo, evil}
	case Numbers:
		// rx-bytes -1, a tx-bytes past 2^64, prefixes 999 and -1.
		eth := object{{"name", "eth0"},
			{"ip-addresses", []any{ip("ipv4", "192.0.2.7", 999), ip("ipv6", "fd00::7", -1)}},
			{"statistics", stats(-1, raw("18446744073709551616"))}, {"hardware-address", NumbersMAC}}
		return []any{lo, eth}
	}
	eth := object{{"name", "eth0"},
		{"ip-addresses", []any{ip("ipv4", "192.0.2.2", 24), ip("ipv6", "fd00::2", 64), ip("ipv6", "fe80::fc:ff:fe00:1", 64)}},
		{"statistics", stats(128454488, 256177)}, {"hardware-address", "02:fc:00:00:00:01"}}
	return []any{lo, eth}
}

func (p *Peer) vcpusValue() any {
	second := any(1)
	if p.mode == Numbers {
		second = raw("9223372036854775808") // 2^63: past int64
	}
	return []any{
		object{{"online", true}, {"can-offline", false}, {"logical-id", 0}},
		object{{"online", true}, {"can-offline", true}, {"logical-id", second}},
	}
}

func (p *Peer) fsinfoValue() any {
	total, used, bus, slot := any(10737418240), any(1073741824), any(0), any(4)
	if p.mode == Numbers {
		total, used, bus, slot = -1, raw("18446744073709551616"), -1, raw("9223372036854775808")
	}
	disk := object{
		{"serial", p.text(FieldDiskSerial, "hostile-disk-0")},
		{"bus-type", p.text(FieldDiskBusType, "virtio")}, {"bus", bus}, {"unit", 0},
		{"pci-controller", object{{"bus", 0}, {"slot", slot}, {"domain", 0}, {"function", 0}}},
		{"dev", p.text(FieldDiskDev, "/dev/vda1")}, {"target", 0},
	}
	return []any{object{
		{"name", p.text(FieldFSName, "vda1")}, {"total-bytes", total}, {"mountpoint", p.text(FieldFSMountpoint, "/")},
		{"disk", []any{disk}}, {"used-bytes", used}, {"type", p.text(FieldFSType, "ext4")},
	}}
}

// listing is agentclient.ListDirScript's output for the escapes peer's "/":
// per entry stat's "%f %s %Y", a newline, the raw name, a NUL.
func listing() []byte {
	var b []byte
	for _, e := range DirEntries() {
		b = fmt.Appendf(b, "%x %d %d\n%s\x00", e.Mode, e.Size, 1700000000, e.Name)
	}
	return b
}

// execStatus is guest-exec-status's value for a finished process (member
// order as recorded: exitcode, out-data, out-truncated, err-data,
// err-truncated, exited).
func execStatus(code int, out, errOut []byte) any {
	o := object{{"exitcode", code}}
	if len(out) > 0 {
		o = append(o, member{"out-data", base64.StdEncoding.EncodeToString(out)}, member{"out-truncated", false})
	}
	if len(errOut) > 0 {
		o = append(o, member{"err-data", base64.StdEncoding.EncodeToString(errOut)}, member{"err-truncated", false})
	}
	return append(o, member{"exited", true})
}

// value is the return value of a read-only command, or ok false when the
// command is not one of them.
func (p *Peer) value(name string) (v any, ok bool) {
	switch name {
	case "guest-ping":
		return object{}, true
	case "guest-info":
		return p.infoValue(), true
	case "guest-get-time":
		return time.Now().UnixNano(), true
	case "guest-fsfreeze-status":
		return "thawed", true
	case "guest-get-osinfo":
		return p.osinfoValue(), true
	case "guest-get-host-name":
		return p.hostnameValue(), true
	case "guest-get-timezone":
		return p.timezoneValue(), true
	case "guest-get-users":
		return p.usersValue(), true
	case "guest-network-get-interfaces":
		return p.interfacesValue(), true
	case "guest-get-vcpus":
		return p.vcpusValue(), true
	case "guest-get-fsinfo":
		return p.fsinfoValue(), true
	}
	return nil, false
}

// hugeSentinel marks, in a value built for the huge mode, the string the
// padding replaces.
const hugeSentinel = "\x00hostile-huge\x00"

// hugeValue is name's value with hugeSentinel in the string member of each poll command's value that the huge
// mode inflates: one the client keeps (shown, stored per guest), not one it
// could skip.
func (p *Peer) hugeValue(name string) (any, bool) {
	switch name {
	case "guest-get-osinfo":
		return p.osinfoValue().(object).set("pretty-name", hugeSentinel), true
	case "guest-get-host-name":
		return object{{"host-name", hugeSentinel}}, true
	case "guest-get-timezone":
		return object{{"zone", hugeSentinel}, {"offset", 0}}, true
	case "guest-info":
		return p.infoValue().(object).set("version", hugeSentinel), true
	case "guest-get-users":
		return []any{object{{"login-time", 1700000000.5}, {"user", hugeSentinel}}}, true
	case "guest-network-get-interfaces":
		v := p.interfacesValue().([]any)
		v[1].(object).set("name", hugeSentinel) // eth0's
		return v, true
	case "guest-get-fsinfo":
		v := p.fsinfoValue().([]any)
		v[0].(object).set("mountpoint", hugeSentinel)
		return v, true
	case "guest-get-vcpus":
		v := p.vcpusValue().([]any)
		return append([]any{object{{"online", true}, {"logical-id", 7}, {"hostile-padding", hugeSentinel}}}, v...), true
	case "guest-get-time", "guest-fsfreeze-status", "guest-ping":
		return hugeSentinel, true
	}
	return nil, false
}

// hugeParts splits the huge reply line for name around its padding: the
// line is head, then n padding bytes, then tail (newline included), n
// chosen so that the whole line is size bytes.
func (p *Peer) hugeParts(name string, id []byte, size int64) (head, tail []byte, n int64, ok bool) {
	v, ok := p.hugeValue(name)
	if !ok {
		return nil, nil, 0, false
	}
	line := replyLine(appendJSON(nil, v), id)
	mark := appendString(nil, hugeSentinel)
	mark = mark[1 : len(mark)-1]
	i := bytes.Index(line, mark)
	head, tail = line[:i], line[i+len(mark):]
	n = max(size-int64(len(head)+len(tail)), 0)
	return head, tail, n, true
}
