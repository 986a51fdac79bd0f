package agentclient

import "hash/maphash"

// VCPUList is an Out (Stream.Batch) for guest-get-vcpus that hands back
// Prev itself when the reply lists the same vCPUs, as a guest's list nearly
// always does from one poll to the next: the reply is read into scratch on
// the stack and compared, and a list of its own is made only when it
// differs. A fleet polls every guest's vCPUs every few seconds; decoding
// each into a fresh list was three allocations a poll.
type VCPUList struct {
	Prev []VCPU // the list shown now; read, never written
	List []VCPU // the reply: Prev, or a list of its own
	// Repeat, when set, is the guest's memo of the reply text Prev was
	// decoded from: a reply that repeats it byte for byte is Prev, and is
	// not lexed at all (Repeat).
	Repeat *Repeat
}

// Repeat remembers the text of a guest's last guest-get-vcpus reply (its
// length and a seeded hash, as Shape hashes a skeleton) and the list it
// decoded to. A guest's vCPUs nearly never change, so its next reply is
// nearly always the same text: the same length at the same place that
// hashes the same is the same value, and the list it decoded to before is
// the answer, without lexing it or reading the list before to compare. At
// 10,000 guests lexing and comparing was a quarter of the in-place
// decoding, mostly waiting for the list before to come from memory.
//
// The list must be the one the caller gives as Prev (the one shown): the
// memo names it by its first element and length, so a Prev that is any
// other list (a decode that was not committed, a list the caller set)
// misses and is decoded in full. The hash's seed is made at start; a
// collision, which a guest cannot aim for without it, would give it the
// list it sent before: its own. A Repeat belongs to one guest, used by
// one poll at a time; the zero Repeat is empty.
type Repeat struct {
	hash uint64
	n    int   // the text's length; 0: empty
	of   *VCPU // the list it decoded to: its first element
	len  int   // and its length
	hits uint32
}

// same reports where the value at b[i:] ends when it is the text the memo
// holds and prev is the list that text decoded to.
func (r *Repeat) same(b []byte, i int, prev []VCPU) (int, bool) {
	if r.n == 0 || len(prev) == 0 || r.len != len(prev) || r.of != &prev[0] || len(b)-i < r.n {
		return 0, false
	}
	if maphash.Bytes(shapeSeed, b[i:i+r.n]) != r.hash {
		return 0, false
	}
	r.hits++
	return i + r.n, true
}

// keep makes the memo the text b[i:end], which decoded to list.
func (r *Repeat) keep(b []byte, i, end int, list []VCPU) {
	if len(list) == 0 || end <= i {
		*r = Repeat{hits: r.hits}
		return
	}
	r.hash, r.n, r.of, r.len = maphash.Bytes(shapeSeed, b[i:end]), end-i, &list[0], len(list)
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
