package agentclient

// VCPUList is an Out (Stream.Batch) for guest-get-vcpus that hands back
// Prev itself when the reply lists the same vCPUs, as a guest's list nearly
// always does from one poll to the next: the reply is read into scratch on
// the stack and compared, and a list of its own is made only when it
// differs. A fleet polls every guest's vCPUs every few seconds; decoding
// each into a fresh list was three allocations a poll.
type VCPUList struct {
	Prev []VCPU // the list shown now; read, never written
	List []VCPU // the reply: Prev, or a list of its own
}

// maxScratchVCPUs bounds the stack scratch; longer lists are decoded as
// before (decodeVCPUs) and then compared.
const maxScratchVCPUs = 32

// decodeVCPUsSince decodes a guest-get-vcpus reply, returning prev when it
// says the same.
func decodeVCPUsSince(b []byte, prev []VCPU) ([]VCPU, bool) {
	l := &lexer{b: b}
	if v, ok := l.vcpusSince(prev); ok && l.done() {
		return v, true
	}
	return nil, false
}

// vcpusSince is decodeVCPUsSince at l, which it leaves just past the list.
func (l *lexer) vcpusSince(prev []VCPU) ([]VCPU, bool) {
	var buf [maxScratchVCPUs]VCPU
	var flag [maxScratchVCPUs]int8 // can-offline: -1 absent, 0 false, 1 true
	n := 0
	start := l.i
	ok := l.elements(func() bool {
		if n == maxScratchVCPUs {
			n++ // too many for the scratch: decoded the long way below
			return false
		}
		v, f := &buf[n], &flag[n]
		*f = -1
		n++
		return l.members(func(key []byte) (ok bool) {
			switch string(key) {
			case "logical-id":
				v.LogicalID, ok = l.int()
			case "online":
				v.Online, ok = l.bool()
			case "can-offline":
				var c bool
				c, ok = l.bool()
				*f = 0
				if c {
					*f = 1
				}
			default:
				ok = l.other()
			}
			return ok
		})
	})
	if n > maxScratchVCPUs || n == 0 {
		// Long, or empty (null and [] differ): as before, then compared.
		// (A lexer of its own: objectsAt's field function would make l
		// escape, and the short path allocate it.)
		long := &lexer{b: l.b, i: start}
		out, ok := long.vcpus()
		l.i = long.i
		if ok && len(out) > 0 && sameVCPUs(out, prev) {
			return prev, true
		}
		return out, ok
	}
	if !ok {
		return nil, false
	}
	if len(prev) == n {
		same := true
		for i := range n {
			if !sameVCPU(buf[i], flag[i], prev[i]) {
				same = false
				break
			}
		}
		if same {
			return prev, true
		}
	}
	out := make([]VCPU, n)
	var bools []bool // the can-offline values, one array for the list
	for i := range n {
		out[i] = buf[i]
		if flag[i] >= 0 {
			if bools == nil {
				bools = make([]bool, n)
			}
			bools[i] = flag[i] == 1
			out[i].CanOffline = &bools[i]
		}
	}
	return out, true
}

// sameVCPU reports whether v with can-offline flag (-1 absent) is p.
func sameVCPU(v VCPU, flag int8, p VCPU) bool {
	if v.LogicalID != p.LogicalID || v.Online != p.Online {
		return false
	}
	if p.CanOffline == nil {
		return flag < 0
	}
	return flag >= 0 && (flag == 1) == *p.CanOffline
}

// sameVCPUs reports whether a and b list the same vCPUs.
func sameVCPUs(a, b []VCPU) bool {
	if len(a) != len(b) {
		return false
	}
	for i, v := range a {
		flag := int8(-1)
		if v.CanOffline != nil {
			flag = 0
			if *v.CanOffline {
				flag = 1
			}
		}
		if !sameVCPU(v, flag, b[i]) {
			return false
		}
	}
	return true
}
