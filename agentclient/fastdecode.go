package agentclient

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// decodeReturn decodes a return value into out, leniently: a field that does
// not fit is lost, not the reply (see decodeLenient, which defines the
// result). The replies every poll of every guest brings (the time, the
// interface list with statistics, the vCPUs) and file-read chunks have
// hand-written decoders: reflection made them the costliest part of a poll,
// the interface list above all; guest-info's list of some 45 commands is
// the costliest reply of a slow poll. Anything a hand-written decoder does not
// fully recognise (escapes, nulls, duplicate keys, a value that does not fit)
// goes to decodeLenient instead, so the result and the errors are always
// its.
func decodeReturn(ret []byte, out any) error {
	switch o := out.(type) {
	case *RawReply:
		// Kept as it came: DecodeRaw checks it, if it is ever used.
		o.Over = o.Max > 0 && len(ret) > o.Max
		if o.Over {
			o.Ret = o.Ret[:0]
			return nil
		}
		o.Ret = append(o.Ret[:0], ret...)
		return nil
	case *[]Interface:
		if v, ok := decodeInterfaces(ret); ok {
			*o = v
			return nil
		}
	case *InterfaceList:
		if v, ok := decodeInterfacesSince(ret, o.Prev); ok {
			o.List = v
			return nil
		}
		o.List = nil
		return decodeLenient(ret, &o.List)
	case *[]VCPU:
		if v, ok := decodeVCPUs(ret); ok {
			*o = v
			return nil
		}
	case *VCPUList: // vcpulist.go
		if v, ok := decodeVCPUsSince(ret, o.Prev); ok {
			o.List = v
			return nil
		}
		o.List = nil
		return decodeLenient(ret, &o.List)
	case *FileRead:
		if v, ok := decodeFileRead(ret); ok {
			*o = v
			return nil
		}
	case *FileWrite:
		if v, ok := decodeFileWrite(ret); ok {
			*o = v
			return nil
		}
	case *ExecStatus:
		if v, ok := decodeExecStatus(ret); ok {
			*o = v
			return nil
		}
	case *Info:
		if v, ok := decodeInfo(ret); ok {
			*o = v
			return nil
		}
	case *SharedInfo: // infolists.go
		if v, ok := o.Lists.decode(ret); ok {
			o.Info = v
			return nil
		}
		o.Info = Info{}
		return decodeLenient(ret, &o.Info)
	case *OSInfo:
		if v, ok := decodeOSInfo(ret); ok {
			*o = v
			return nil
		}
	case *[]CPUStats:
		if v, ok := decodeCPUStats(ret); ok { // stats.go
			*o = v
			return nil
		}
	case *[]DiskStatsInfo:
		if v, ok := decodeDiskStats(ret); ok {
			*o = v
			return nil
		}
	case *Scratch[CPUStats]: // stats.go
		if v, ok := decodeCPUStatsInto(ret, o); ok {
			o.List = v
			return nil
		}
		// The reference's value, in fresh storage. The counters the walk
		// made go too: it may have gone through far more elements than
		// the reference's list has (none, for a reply that is not JSON),
		// and a fleet pools Scratches by their lists' size.
		o.List, o.vals = nil, nil
		return decodeLenient(ret, &o.List)
	case *Scratch[DiskStatsInfo]:
		if v, ok := decodeDiskStatsInto(ret, o); ok {
			o.List = v
			return nil
		}
		o.List, o.vals = nil, nil
		return decodeLenient(ret, &o.List)
	case *[]Filesystem:
		if v, ok := decodeFilesystems(ret); ok { // fastdecode_slow.go
			*o = v
			return nil
		}
	case *[]User:
		if v, ok := decodeUsers(ret); ok {
			*o = v
			return nil
		}
	case *Timezone:
		if v, ok := decodeTimezone(ret); ok {
			*o = v
			return nil
		}
	case *Load:
		if v, ok := decodeLoad(ret); ok {
			*o = v
			return nil
		}
	case **Load: // a metrics sample's: nil unless the reply was read
		if v, ok := decodeLoad(ret); ok {
			*o = &v
			return nil
		}
	case *[]DiskInfo:
		if v, ok := decodeDisks(ret); ok {
			*o = v
			return nil
		}
	case *hostName:
		if v, ok := decodeHostName(ret); ok {
			*o = v
			return nil
		}
	case *[]Route:
		if v, ok := decodeRoutes(ret); ok {
			*o = v
			return nil
		}
	case *int64:
		l := &lexer{b: ret}
		if v, ok := l.int64(); ok && skipSpace(ret, l.i) == len(ret) {
			*o = v
			return nil
		}
	}
	return decodeLenient(ret, out)
}

// lexer walks one JSON value strictly; every method reports false on
// anything it does not recognise.
type lexer struct {
	b []byte
	i int
	// rec, when set, records every number digits reads, with tgt, which
	// the decoder sets right before (Shape): what it does not set is
	// tgtNone, and no Shape is built.
	rec *[]numRec
	tgt numTarget
}

// record has l record the numbers it reads from now on.
func (l *lexer) record() *[]numRec {
	rec := make([]numRec, 0, 32)
	l.rec = &rec
	return l.rec
}

// to says where the next number read goes (a Shape's target).
func (l *lexer) to(kind, a, b int) { l.tgt = target(kind, a, b) }

func (l *lexer) consume(c byte) bool {
	l.i = skipSpace(l.b, l.i)
	if l.i < len(l.b) && l.b[l.i] == c {
		l.i++
		return true
	}
	return false
}

// raw returns the contents of a string without escapes, as bytes of b.
func (l *lexer) raw() ([]byte, bool) {
	l.i = skipSpace(l.b, l.i)
	if l.i >= len(l.b) || l.b[l.i] != '"' {
		return nil, false
	}
	start := l.i + 1
	n, ascii := plainPrefix(l.b[start:])
	j := start + n
	if j >= len(l.b) || l.b[j] != '"' {
		return nil, false // an escape, a control character, or no end
	}
	l.i = j + 1
	s := l.b[start:j]
	return s, ascii || utf8.Valid(s)
}

// plainPrefix returns the length of b's prefix free of '"', '\\' and
// control characters (what ends or complicates a JSON string), and whether
// that prefix is ASCII. It tests eight bytes at a time: a file chunk's
// base64 is a string of 1.4 MB, walked once to delimit the reply and once
// to decode it.
func plainPrefix(b []byte) (n int, ascii bool) {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	ascii = true
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (ones * '"')
		bs := x ^ (ones * '\\')
		// A byte below 0x20, or equal to '"' or '\\' (zero after the xor),
		// sets its high bit here; none is missed (the first such byte
		// always shows), and the byte loop below finds which.
		if ((x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs)&highs != 0 {
			break
		}
		if x&highs != 0 {
			ascii = false
		}
	}
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"' || c == '\\' || c < 0x20:
			return i, ascii
		case c >= 0x80:
			ascii = false
		}
	}
	return i, ascii
}

func (l *lexer) str() (string, bool) {
	s, ok := l.raw()
	return string(s), ok
}

// strAs is str giving back was, not a copy, when the string is the same:
// a poll's reply mostly repeats the names of the last one's.
func (l *lexer) strAs(was string) (string, bool) {
	s, ok := l.raw()
	if ok && string(s) == was {
		return was, true
	}
	return string(s), ok
}

// commandName is str for a command name: one the command table knows is
// the table's own string, not a copy. Every guest lists some 45 of them in
// guest-info, and a fleet keeps every guest's list.
func (l *lexer) commandName() (string, bool) {
	s, ok := l.raw()
	if !ok {
		return "", false
	}
	if i, known := commandIndex[string(s)]; known {
		return commandTable[i].Name, true
	}
	return string(s), true
}

// digits reads an integer literal: -?(0|[1-9][0-9]*), nothing after it that
// would make it a fraction or an exponent.
func (l *lexer) digits() (neg bool, v uint64, ok bool) {
	l.i = skipSpace(l.b, l.i)
	b, i := l.b, l.i
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := uint64(b[i] - '0')
		if i-start < 19 {
			// 19 digits never overflow (10^19 < 2^64): the check for
			// every digit was a third of a counter's cost, and a poll
			// reads dozens of counters.
			v = v*10 + d
		} else {
			hi, lo := bits.Mul64(v, 10)
			lo, carry := bits.Add64(lo, d, 0)
			if hi != 0 || carry != 0 {
				return false, 0, false // overflows
			}
			v = lo
		}
		i++
	}
	n := i - start
	if n == 0 || n > 1 && b[start] == '0' {
		return false, 0, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return false, 0, false
	}
	if l.rec != nil {
		*l.rec = append(*l.rec, numRec{off: l.i, tgt: l.tgt})
	}
	l.tgt = tgtNone
	l.i = i
	return neg, v, true
}

func (l *lexer) uint64() (uint64, bool) {
	neg, v, ok := l.digits()
	return v, ok && !neg
}

func (l *lexer) int64() (int64, bool) {
	neg, v, ok := l.digits()
	if !ok || v > 1<<63-1 { // -1<<63 itself is left to encoding/json
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// bool reads true or false.
func (l *lexer) bool() (bool, bool) {
	l.i = skipSpace(l.b, l.i)
	for _, lit := range [...]string{"true", "false"} {
		if bytes.HasPrefix(l.b[l.i:], []byte(lit)) {
			end := l.i + len(lit)
			if end < len(l.b) && (l.b[end] >= 'a' && l.b[end] <= 'z' || l.b[end] >= '0' && l.b[end] <= '9') {
				return false, false
			}
			l.i = end
			return lit == "true", true
		}
	}
	return false, false
}

func (l *lexer) int() (int, bool) {
	neg, v, ok := l.digits()
	if !ok || v > 1<<31-1 { // json would range-check against int; stay well inside
		return 0, false
	}
	if neg {
		return -int(v), true
	}
	return int(v), true
}

// other skips the value of a member the decoder does not know.
func (l *lexer) other() bool {
	l.i = skipSpace(l.b, l.i)
	end, ok := skipValue(l.b, l.i)
	if !ok || !json.Valid(l.b[l.i:end]) {
		return false
	}
	l.i = end
	return true
}

// members walks an object's members, calling fn with each key, the lexer
// positioned at the value; a key seen twice is not recognised.
func (l *lexer) members(fn func(key []byte) bool) bool {
	if !l.consume('{') {
		return false
	}
	if l.consume('}') {
		return true
	}
	// Room for every member of the largest object decoded here (DiskSmart's
	// 26) on the stack: past it, the list grew on the heap for every CPU of
	// guest-get-cpustats (12 members) and disk of guest-get-diskstats (17).
	var seenBuf [32][]byte
	seen := seenBuf[:0]
	for {
		key, ok := l.raw()
		if !ok || !l.consume(':') {
			return false
		}
		// Past the list's room the object is not one of ours, and the
		// reference decodes it: the check is quadratic, and a guest's
		// 4 MiB object of distinct keys took minutes of a core here.
		if len(seen) == len(seenBuf) {
			return false
		}
		for _, k := range seen {
			if bytes.Equal(k, key) {
				return false
			}
		}
		seen = append(seen, key)
		if !fn(key) {
			return false
		}
		if l.consume(',') {
			continue
		}
		return l.consume('}')
	}
}

// elements walks an array, calling fn at each element.
func (l *lexer) elements(fn func() bool) bool {
	if !l.consume('[') {
		return false
	}
	if l.consume(']') {
		return true
	}
	for {
		if !fn() {
			return false
		}
		if l.consume(',') {
			continue
		}
		return l.consume(']')
	}
}

func decodeInterfaces(b []byte) ([]Interface, bool) { return decodeInterfacesSince(b, nil) }

// InterfaceList is an Out (Stream.Batch) for guest-network-get-interfaces
// that decodes the reply into List, a fresh list as *[]Interface gets, but
// shares with Prev (the list read last time, left as it is) the strings the
// reply repeats: names, hardware and IP addresses. A poll's list mostly
// repeats the last one's; the strings are immutable, so a snapshot holding
// Prev can hold List beside it.
type InterfaceList struct {
	Prev []Interface
	List []Interface
	// Shape, when set, is the guest's memo of its last reply's layout:
	// a reply that repeats it is decoded by it (Shape).
	Shape *Shape
}

// decodeInterfacesSince decodes the list, taking repeated strings from
// prev's element at the same place.
func decodeInterfacesSince(b []byte, prev []Interface) ([]Interface, bool) {
	l := &lexer{b: b}
	if v, ok := l.interfacesSince(prev); ok && l.done() {
		return v, true
	}
	return nil, false
}

// done reports whether nothing but space is left.
func (l *lexer) done() bool { return skipSpace(l.b, l.i) == len(l.b) }

// interfacesSince is decodeInterfacesSince at l, which it leaves just past
// the list.
func (l *lexer) interfacesSince(prev []Interface) ([]Interface, bool) {
	// The list and the interfaces' statistics are carved from one array
	// each rather than allocated one by one, sized as the last list (a
	// fleet keeps the newest list of each guest, so room to spare stays as
	// long), or for four when there was none. An interface whose addresses
	// are prev's (as they mostly are, poll after poll) shares prev's: they
	// are read into scratch on the stack first.
	out := make([]Interface, 0, atLeast(len(prev), 4))
	var scratch [8]IPAddress
	nstats := max(len(prev), 2)
	var stats chunk[InterfaceStats]
	ok := l.elements(func() bool {
		var it, was Interface
		idx := len(out)
		if len(out) < len(prev) {
			was = prev[len(out)]
		}
		ok := l.members(func(key []byte) (ok bool) {
			switch string(key) {
			case "name":
				it.Name, ok = l.strAs(was.Name)
			case "hardware-address":
				it.HardwareAddress, ok = l.strAs(was.HardwareAddress)
			case "ip-addresses":
				var got []IPAddress
				got, ok = l.ipAddresses(scratch[:0], was.IPAddresses, idx)
				switch {
				case len(got) == 0:
					it.IPAddresses = []IPAddress{} // listed, none: not nil
				case slices.Equal(got, was.IPAddresses):
					it.IPAddresses = was.IPAddresses
				default:
					// Of their exact size: a first list's (and a
					// changed one's) stays for the polls after.
					it.IPAddresses = make([]IPAddress, len(got))
					copy(it.IPAddresses, got)
				}
			case "statistics":
				it.Statistics, ok = l.interfaceStats(stats.next(nstats), idx)
			default:
				ok = l.other()
			}
			return ok
		})
		out = append(out, it)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// atLeast is n, or guess when n is 0.
func atLeast(n, guess int) int {
	if n == 0 {
		return guess
	}
	return n
}

// ipAddresses appends an interface's addresses to out, taking repeated
// strings from prev's at the same place.
func (l *lexer) ipAddresses(out, prev []IPAddress, iface int) ([]IPAddress, bool) {
	start := len(out)
	ok := l.elements(func() bool {
		var a, was IPAddress
		if i := len(out) - start; i < len(prev) {
			was = prev[i]
		}
		ok := l.members(func(key []byte) (ok bool) {
			switch string(key) {
			case "ip-address":
				a.Address, ok = l.strAs(was.Address)
			case "ip-address-type":
				a.Type, ok = l.strAs(was.Type)
			case "prefix":
				l.to(tgtIfPrefix, iface, len(out)-start)
				a.Prefix, ok = l.int()
			default:
				ok = l.other()
			}
			return ok
		})
		out = append(out, a)
		return ok
	})
	return out, ok
}

// chunk hands out pointers to distinct elements of arrays allocated n at a
// time: one allocation for the statistics of several interfaces, or the
// flags of several vCPUs. An element lives as long as any in its array.
type chunk[T any] struct{ free []T }

// next is a pointer to a zero T.
func (c *chunk[T]) next(n int) *T {
	if len(c.free) == 0 {
		c.free = make([]T, n)
	}
	p := &c.free[0]
	c.free = c.free[1:]
	return p
}

func (l *lexer) interfaceStats(st *InterfaceStats, iface int) (*InterfaceStats, bool) {
	ok := l.members(func(key []byte) (ok bool) {
		f := -1
		switch string(key) {
		case "rx-bytes":
			f = 0
		case "rx-packets":
			f = 1
		case "rx-errs":
			f = 2
		case "rx-dropped":
			f = 3
		case "tx-bytes":
			f = 4
		case "tx-packets":
			f = 5
		case "tx-errs":
			f = 6
		case "tx-dropped":
			f = 7
		default:
			return l.other()
		}
		l.to(tgtIfStat, iface, f)
		*ifStatField(st, f), ok = l.uint64()
		return ok
	})
	return st, ok
}

func decodeVCPUs(b []byte) ([]VCPU, bool) {
	l := &lexer{b: b}
	if v, ok := l.vcpus(); ok && l.done() {
		return v, true
	}
	return nil, false
}

// vcpus is decodeVCPUs at l, which it leaves just past the list.
func (l *lexer) vcpus() ([]VCPU, bool) {
	var flags chunk[bool]
	return objectsAt(l, 4, func(l *lexer, v *VCPU, key []byte) (ok bool) {
		switch string(key) {
		case "logical-id":
			v.LogicalID, ok = l.int()
		case "online":
			v.Online, ok = l.bool()
		case "can-offline":
			c := flags.next(8)
			*c, ok = l.bool()
			v.CanOffline = c
		default:
			ok = l.other()
		}
		return ok
	})
}

func decodeFileRead(b []byte) (FileRead, bool) {
	r, ok := decodeFileReadRaw(b)
	if !ok {
		return FileRead{}, false
	}
	return FileRead{Count: r.count, BufB64: string(r.b64), EOF: r.eof}, true
}

// rawFileRead is a guest-file-read reply whose base64 is still a slice of
// the reply: a transfer decodes it from there into its buffer, copying the
// text no further.
type rawFileRead struct {
	count int
	b64   []byte
	eof   bool
}

func decodeFileReadRaw(b []byte) (rawFileRead, bool) {
	return decodeObject(b, func(l *lexer, v *rawFileRead, key []byte) (ok bool) {
		switch string(key) {
		case "count":
			v.count, ok = l.int()
		case "buf-b64":
			v.b64, ok = l.raw()
		case "eof":
			v.eof, ok = l.bool()
		default:
			ok = l.other()
		}
		return ok
	})
}

func decodeFileWrite(b []byte) (FileWrite, bool) {
	return decodeObject(b, func(l *lexer, v *FileWrite, key []byte) (ok bool) {
		switch string(key) {
		case "count":
			v.Count, ok = l.int()
		case "eof":
			v.EOF, ok = l.bool()
		default:
			ok = l.other()
		}
		return ok
	})
}

// decodeExecStatus decodes guest-exec-status's reply with the output's
// base64 decoded from the reply's own bytes: up to two 16 MiB streams, so
// neither a base64 string nor a validated copy of the reply is made.
func decodeExecStatus(b []byte) (ExecStatus, bool) {
	l := &lexer{b: b}
	var v ExecStatus
	data := func() ([]byte, bool) {
		s, ok := l.raw()
		if !ok {
			return nil, false
		}
		d := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(d, s)
		return d[:n], err == nil
	}
	ok := l.members(func(key []byte) (ok bool) {
		switch string(key) {
		case "exited":
			v.Exited, ok = l.bool()
		case "exitcode":
			var n int
			n, ok = l.int()
			v.ExitCode = &n
		case "signal":
			var n int
			n, ok = l.int()
			v.Signal = &n
		case "out-data":
			v.OutData, ok = data()
		case "err-data":
			v.ErrData, ok = data()
		case "out-truncated":
			v.OutTruncated, ok = l.bool()
		case "err-truncated":
			v.ErrTruncated, ok = l.bool()
		default:
			ok = l.other()
		}
		return ok
	})
	if !ok || skipSpace(b, l.i) != len(b) {
		return ExecStatus{}, false
	}
	return v, true
}

func decodeInfo(b []byte) (Info, bool) {
	return decodeObject(b, func(l *lexer, v *Info, key []byte) (ok bool) {
		switch string(key) {
		case "version":
			v.Version, ok = l.str()
		case "supported_commands":
			v.SupportedCommands = make([]CommandInfo, 0, 64)
			ok = l.elements(func() bool {
				var c CommandInfo
				ok := l.members(func(key []byte) (ok bool) {
					switch string(key) {
					case "name":
						c.Name, ok = l.commandName()
					case "enabled":
						c.Enabled, ok = l.bool()
					case "success-response":
						c.SuccessResponse, ok = l.bool()
					default:
						ok = l.other()
					}
					return ok
				})
				v.SupportedCommands = append(v.SupportedCommands, c)
				return ok
			})
			// Kept for the session's life: exactly as long as it is.
			v.SupportedCommands = slices.Clone(v.SupportedCommands)
		default:
			ok = l.other()
		}
		return ok
	})
}

func decodeOSInfo(b []byte) (OSInfo, bool) {
	return decodeObject(b, func(l *lexer, v *OSInfo, key []byte) (ok bool) {
		var p *string
		switch string(key) {
		case "kernel-release":
			p = &v.KernelRelease
		case "kernel-version":
			p = &v.KernelVersion
		case "machine":
			p = &v.Machine
		case "id":
			p = &v.ID
		case "name":
			p = &v.Name
		case "pretty-name":
			p = &v.PrettyName
		case "version":
			p = &v.Version
		case "version-id":
			p = &v.VersionID
		case "variant":
			p = &v.Variant
		case "variant-id":
			p = &v.VariantID
		default:
			return l.other()
		}
		*p, ok = l.str()
		return ok
	})
}

// decodeObject decodes a reply that is one object: field reads the member
// key into v (the lexer then at its value). Nothing may follow the object.
func decodeObject[T any](b []byte, field func(l *lexer, v *T, key []byte) bool) (T, bool) {
	l := &lexer{b: b}
	v, ok := objectAt(l, field)
	if !ok || skipSpace(b, l.i) != len(b) {
		var zero T
		return zero, false
	}
	return v, true
}

// objectAt is decodeObject's value at l, which it leaves just past it.
func objectAt[T any](l *lexer, field func(l *lexer, v *T, key []byte) bool) (T, bool) {
	var v T
	ok := l.members(func(key []byte) bool { return field(l, &v, key) })
	return v, ok
}

// decodeObjects decodes a reply that is an array of objects, as
// decodeObject does each; n is the usual length, to size the slice once.
func decodeObjects[T any](b []byte, n int, field func(l *lexer, v *T, key []byte) bool) ([]T, bool) {
	l := &lexer{b: b}
	out, ok := objectsAt(l, n, field)
	if !ok || skipSpace(b, l.i) != len(b) {
		return nil, false
	}
	return out, true
}

// objectsAt is decodeObjects' value at l, which it leaves just past it.
func objectsAt[T any](l *lexer, n int, field func(l *lexer, v *T, key []byte) bool) ([]T, bool) {
	out := make([]T, 0, n)
	ok := l.elements(func() bool {
		var v T
		ok := l.members(func(key []byte) bool { return field(l, &v, key) })
		out = append(out, v)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// decodeError decodes a reply's "error" value as json.Unmarshal into an
// Error does, with the same result and the same error. A first look asks
// every guest for commands its agent may lack (the prefetch), so at 10,000
// guests of qemu-ga 7.2 there are 20,000 refusals to decode, and
// encoding/json's reflection made them a fifteenth of status's CPU.
func decodeError(b []byte) (Error, error) {
	if e, ok := decodeErrorFast(b); ok {
		return e, nil
	}
	var e Error
	err := json.Unmarshal(b, &e)
	return e, err
}

// decodeErrorFast is decodeError for the plain case: an object whose
// strings have no escapes. encoding/json matches member names to fields
// regardless of case (and of Unicode folding: "claſſ" is "class"), and a
// name seen twice is the last one's, so any member whose name could be
// either field's, other than the exact name once, goes to encoding/json.
func decodeErrorFast(b []byte) (Error, bool) {
	return decodeObject(b, func(l *lexer, v *Error, key []byte) (ok bool) {
		switch string(key) {
		case "class":
			v.Class, ok = l.str()
		case "desc":
			v.Desc, ok = l.str()
		default:
			if !asciiOnly(key) || bytes.EqualFold(key, []byte("class")) || bytes.EqualFold(key, []byte("desc")) {
				return false
			}
			ok = l.other()
		}
		return ok
	})
}

func asciiOnly(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// inPlace decodes a reply's return value during the envelope's one scan
// (scanEnvelopeInPlace) for the Outs of the steady poll, where the second
// pass over the value (delimiting it, then decoding it) was a sixth of a
// poll's decoding. The id comes after the value (qemu-ga's order), so the
// value is held here and given to out only once the reply is known to be
// the one awaited (commit); a reply for another request, an error reply
// or a malformed one leaves out as the two passes would have (discard).
// The decoders are decodeReturn's, at the same bytes: where ok, the value
// is exactly what decodeReturn would have made of the delimited value.
type inPlace struct {
	out  any
	ok   bool // the last "return" member decoded
	used bool // a decode ran into out's Scratch storage

	n      int64
	ifaces []Interface
	vcpus  []VCPU
	cpu    []CPUStats
	disk   []DiskStatsInfo
	load   Load
}

// decodesInPlace reports whether out has an in-place decoder.
func decodesInPlace(out any) bool {
	switch out.(type) {
	case *int64, *InterfaceList, *VCPUList, *Scratch[CPUStats], *Scratch[DiskStatsInfo], **Load:
		return true
	}
	return false
}

// decodeAt decodes the value at b[i:] and reports where it ends, or false
// (nothing of p.out changed but a Scratch's storage, see discard).
func (p *inPlace) decodeAt(b []byte, i int) (int, bool) {
	p.ok = false
	l := &lexer{b: b, i: i}
	var ok bool
	switch o := p.out.(type) {
	case *int64:
		p.n, ok = l.int64()
	case *InterfaceList:
		if o.Shape == nil {
			p.ifaces, ok = l.interfacesSince(o.Prev)
			break
		}
		if v, end, hit := o.Shape.interfaces(b, i); hit {
			p.ifaces, p.ok = v, true
			return end, true
		}
		o.Shape.reset()
		rec := l.record()
		p.ifaces, ok = l.interfacesSince(o.Prev)
		if ok && o.Shape.build(shapeIfaces, b, i, l.i, *rec) {
			o.Shape.keepIfaces(p.ifaces)
		}
	case *VCPUList:
		r := o.Repeat
		if r == nil {
			p.vcpus, ok = l.vcpusSince(o.Prev)
			break
		}
		if end, hit := r.same(b, i, o.Prev); hit {
			p.vcpus, p.ok = o.Prev, true
			return end, true
		}
		p.vcpus, ok = l.vcpusSince(o.Prev)
		if ok {
			r.keep(b, i, l.i, p.vcpus)
		} else {
			*r = Repeat{hits: r.hits}
		}
	case *Scratch[CPUStats]:
		p.used = true
		if o.Shape == nil {
			p.cpu, ok = l.cpuStatsInto(o)
			break
		}
		if v, end, hit := o.Shape.cpuStats(b, i, o); hit {
			p.cpu, p.ok = v, true
			return end, true
		}
		o.Shape.reset()
		rec := l.record()
		p.cpu, ok = l.cpuStatsInto(o)
		if ok && o.Shape.build(shapeCPU, b, i, l.i, *rec) {
			o.Shape.keepCPUs(p.cpu)
		}
	case *Scratch[DiskStatsInfo]:
		p.used = true
		if o.Shape == nil {
			p.disk, ok = l.diskStatsInto(o)
			break
		}
		if v, end, hit := o.Shape.diskStats(b, i, o); hit {
			p.disk, p.ok = v, true
			return end, true
		}
		o.Shape.reset()
		rec := l.record()
		p.disk, ok = l.diskStatsInto(o)
		if ok && o.Shape.build(shapeDisk, b, i, l.i, *rec) {
			o.Shape.keepDisks(p.disk)
		}
	case **Load:
		// A lexer of its own: objectAt's field function makes it escape.
		ll := &lexer{b: b, i: i}
		p.load, ok = ll.load()
		l.i = ll.i
	}
	p.ok = ok
	return l.i, ok
}

// commit gives the decoded value to out, as decodeReturn would have.
func (p *inPlace) commit() {
	switch o := p.out.(type) {
	case *int64:
		*o = p.n
	case *InterfaceList:
		o.List = p.ifaces
	case *VCPUList:
		o.List = p.vcpus
	case *Scratch[CPUStats]:
		o.List = p.cpu
		o.fit()
	case *Scratch[DiskStatsInfo]:
		o.List = p.disk
		o.fit()
	case **Load:
		v := p.load
		*o = &v
	}
	p.ok, p.used = false, false
}

// discard drops what was decoded. A Scratch decoded into lets its storage
// go, as a failed decode does: what the decode wrote may be more than its
// List holds room for (see Scratch). p may be nil.
func (p *inPlace) discard() {
	if p == nil {
		return
	}
	if p.used {
		switch o := p.out.(type) {
		case *Scratch[CPUStats]:
			o.List, o.vals = nil, nil
		case *Scratch[DiskStatsInfo]:
			o.List, o.vals = nil, nil
		}
	}
	p.ok, p.used = false, false
	p.ifaces, p.vcpus, p.cpu, p.disk = nil, nil, nil, nil
}
