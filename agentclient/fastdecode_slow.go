package agentclient

import (
	"slices"
	"strconv"
)

// Hand-written decoders for the replies of a slow refresh and a metrics
// sample that used to take the reflective fallback (decodeLenient): at
// 10,000 guests that fallback was a fifth of a one-shot status's CPU. Like
// the others they accept only plain, well-typed JSON and report false on
// anything else, which then goes to the fallback; FuzzDecodeSlowReplies
// holds them to it.

func decodeFilesystems(b []byte) ([]Filesystem, bool) {
	return fitted(decodeObjects(b, 4, func(l *lexer, fs *Filesystem, key []byte) (ok bool) {
		switch string(key) {
		case "name":
			fs.Name, ok = l.str()
		case "mountpoint":
			fs.Mountpoint, ok = l.str()
		case "type":
			fs.Type, ok = l.str()
		case "used-bytes":
			fs.UsedBytes, ok = l.uint64p()
		case "total-bytes":
			fs.TotalBytes, ok = l.uint64p()
		case "total-bytes-privileged":
			fs.TotalBytesPrivileged, ok = l.uint64p()
		case "disk":
			fs.Disk, ok = l.diskAddresses()
		default:
			ok = l.other()
		}
		return ok
	}))
}

func (l *lexer) diskAddresses() ([]DiskAddress, bool) {
	out := make([]DiskAddress, 0, 1)
	ok := l.elements(func() bool {
		a, ok := l.diskAddress()
		out = append(out, a)
		return ok
	})
	return out, ok
}

func (l *lexer) diskAddress() (DiskAddress, bool) {
	var a DiskAddress
	ok := l.members(func(key []byte) (ok bool) {
		switch string(key) {
		case "pci-controller":
			ok = l.members(func(key []byte) (ok bool) {
				switch string(key) {
				case "domain":
					a.PCIController.Domain, ok = l.int()
				case "bus":
					a.PCIController.Bus, ok = l.int()
				case "slot":
					a.PCIController.Slot, ok = l.int()
				case "function":
					a.PCIController.Function, ok = l.int()
				default:
					ok = l.other()
				}
				return ok
			})
		case "bus-type":
			a.BusType, ok = l.str()
		case "bus":
			a.Bus, ok = l.int()
		case "target":
			a.Target, ok = l.int()
		case "unit":
			a.Unit, ok = l.int()
		case "serial":
			a.Serial, ok = l.str()
		case "dev":
			a.Dev, ok = l.str()
		default:
			ok = l.other()
		}
		return ok
	})
	return a, ok
}

func decodeUsers(b []byte) ([]User, bool) {
	return fitted(decodeObjects(b, 2, func(l *lexer, u *User, key []byte) (ok bool) {
		switch string(key) {
		case "user":
			u.User, ok = l.str()
		case "domain":
			u.Domain, ok = l.str()
		case "login-time":
			u.LoginTime, ok = l.float64()
		default:
			ok = l.other()
		}
		return ok
	}))
}

func decodeTimezone(b []byte) (Timezone, bool) {
	return decodeObject(b, func(l *lexer, v *Timezone, key []byte) (ok bool) {
		switch string(key) {
		case "zone":
			v.Zone, ok = l.str()
		case "offset":
			v.Offset, ok = l.int()
		default:
			ok = l.other()
		}
		return ok
	})
}

func decodeLoad(b []byte) (Load, bool) {
	l := &lexer{b: b}
	if v, ok := l.load(); ok && l.done() {
		return v, true
	}
	return Load{}, false
}

// load is decodeLoad at l, which it leaves just past the object.
func (l *lexer) load() (Load, bool) {
	return objectAt(l, func(l *lexer, v *Load, key []byte) (ok bool) {
		switch string(key) {
		case "load1m":
			v.Load1, ok = l.float64()
		case "load5m":
			v.Load5, ok = l.float64()
		case "load15m":
			v.Load15, ok = l.float64()
		default:
			ok = l.other()
		}
		return ok
	})
}

func decodeRoutes(b []byte) ([]Route, bool) {
	return fitted(decodeObjects(b, 4, func(l *lexer, r *Route, key []byte) (ok bool) {
		switch string(key) {
		case "iface":
			r.Iface, ok = l.str()
		case "destination":
			r.Destination, ok = l.str()
		case "metric":
			r.Metric, ok = l.int()
		case "gateway":
			r.Gateway, ok = l.str()
		case "mask":
			r.Mask, ok = l.str()
		case "irtt":
			r.IRTT, ok = l.intp()
		case "flags":
			r.Flags, ok = l.uint64p()
		case "refcnt":
			r.RefCnt, ok = l.intp()
		case "use":
			r.Use, ok = l.intp()
		case "window":
			r.Window, ok = l.intp()
		case "mtu":
			r.MTU, ok = l.intp()
		case "desprefixlen":
			r.DesPrefixLen, ok = l.str()
		case "source":
			r.Source, ok = l.str()
		case "srcprefixlen":
			r.SrcPrefixLen, ok = l.str()
		case "nexthop":
			r.NextHop, ok = l.str()
		case "version":
			r.Version, ok = l.int()
		default:
			ok = l.other()
		}
		return ok
	}))
}

// uint64p reads a number into a new *uint64.
func (l *lexer) uint64p() (*uint64, bool) {
	v, ok := l.uint64()
	if !ok {
		return nil, false
	}
	return &v, true
}

// intp reads a number into a new *int.
func (l *lexer) intp() (*int, bool) {
	v, ok := l.int()
	if !ok {
		return nil, false
	}
	return &v, true
}

// float64 reads a JSON number (the grammar exactly: no '+', no leading
// zeros, digits on both sides of a '.'), in range.
func (l *lexer) float64() (float64, bool) {
	l.i = skipSpace(l.b, l.i)
	b, i := l.b, l.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	if n := digits(); n == 0 || n > 1 && b[start] == '0' {
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(b[l.i:i]), 64)
	if err != nil {
		return 0, false
	}
	l.i = i
	return f, true
}

// decodeDisks leaves a disk with SMART data (NVMe) to the fallback.
func decodeDisks(b []byte) ([]DiskInfo, bool) {
	return fitted(decodeObjects(b, 4, func(l *lexer, d *DiskInfo, key []byte) (ok bool) {
		switch string(key) {
		case "name":
			d.Name, ok = l.str()
		case "partition":
			d.Partition, ok = l.bool()
		case "dependencies":
			d.Dependencies, ok = l.strings()
		case "address":
			var a DiskAddress
			a, ok = l.diskAddress()
			d.Address = &a
		case "alias":
			d.Alias, ok = l.str()
		case "smart":
			return false
		default:
			ok = l.other()
		}
		return ok
	}))
}

// hostName is guest-get-host-name's reply, as Client.Hostname and the
// fleet's slow batch decode it.
type hostName = struct {
	HostName string `json:"host-name"`
}

func decodeHostName(b []byte) (hostName, bool) {
	return decodeObject(b, func(l *lexer, v *hostName, key []byte) (ok bool) {
		switch string(key) {
		case "host-name":
			v.HostName, ok = l.str()
		default:
			ok = l.other()
		}
		return ok
	})
}

// strings reads an array of strings.
func (l *lexer) strings() ([]string, bool) {
	out := make([]string, 0, 1)
	ok := l.elements(func() bool {
		s, ok := l.str()
		out = append(out, s)
		return ok
	})
	return out, ok
}

// fitted is a decoded list without room to spare: a slow refresh's lists
// are kept (in a fleet, one per guest until the next refresh), and the
// decoder's first guess of four elements for a guest's one filesystem
// held three empty ones (about 600 bytes a guest over filesystems and
// disks). One allocation more per slow refresh, only when it saves room.
func fitted[T any](v []T, ok bool) ([]T, bool) {
	if !ok || len(v) == cap(v) {
		return v, ok
	}
	if len(v) == 0 {
		return []T{}, true // not nil: the agent listed none
	}
	return slices.Clone(v), true
}
