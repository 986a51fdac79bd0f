package agentclient

import (
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"
)

// Shape remembers the layout of the last reply a guest sent to one steady
// poll command (guest-network-get-interfaces, guest-get-cpustats,
// guest-get-diskstats), so that the next reply, which nearly always
// repeats it with other counters, is decoded without lexing it again.
//
// A reply is split into its number tokens and the text between them, its
// skeleton: the names, addresses, keys, punctuation and spacing. The
// decoded value is a function of the two, so a reply whose skeleton is the
// last one's decodes to the last value with each number written where the
// last decode put the number at the same place. Shape keeps the lengths of
// the skeleton's pieces, a seeded hash of them, where each number went, and
// the last value's strings. The next reply is cut at the same lengths; when
// its pieces hash the same and a number stands between each two, only the
// numbers are parsed, each by the rule the full decoder applied to it at
// that place (a counter is a uint64, a prefix an int...): anything else,
// or any number its rule refuses, and the reply goes to the full decoder,
// which builds the Shape again. At 10,000 guests decoding was a quarter of
// the dashboard's steady CPU, most of it lexing text that had not changed
// since the last poll (README, Performance).
//
// The hash is maphash's, under a seed made at start: a guest does not
// know it, and could not gain by a collision anyway: the value would be
// the text it sent before with the numbers it sends now, both its own.
//
// A Shape belongs to one guest and one command; the zero Shape is empty.
// It is used by one poll at a time, like the Out it is given with.
type Shape struct {
	hash uint64
	// code: per number, the length of the skeleton's piece before it
	// (<<32) and its target; tail: the last piece's length. Shared by the
	// guests whose replies are laid out alike (shapeCodes): never written.
	code []uint64
	tail uint32
	kind shapeKind
	// added: codes this Shape put in shapeCodes (at most shapeCodeQuota),
	// kept across resets: one guest cannot fill the table.
	added uint8

	// The last value, for what the numbers do not give: the interfaces'
	// strings (shared: the list is immutable once given out), or each
	// CPU's type or device's name (the Scratch kinds: their storage is
	// the next decode's).
	ifaces []Interface
	names  []string

	hits uint32 // replies decoded by the Shape (tests)
}

type shapeKind uint8

const (
	shapeNone shapeKind = iota
	shapeIfaces
	shapeCPU
	shapeDisk
)

// numTarget says where a number of the reply goes: kind<<24 | a<<12 | b.
type numTarget uint32

const (
	tgtNone      = iota // not set by a decoder: no Shape is built
	tgtSkip             // in a member no decoder reads: any JSON number
	tgtIfStat           // interface a, InterfaceStats field b
	tgtIfPrefix         // interface a, address b's prefix
	tgtCPUNum           // CPU a's cpu
	tgtCPUCtr           // CPU a, counter b (User, Nice, System, Idle, then the optional six)
	tgtDiskMajor        // device a's major
	tgtDiskMinor        // device a's minor
	tgtDiskCtr          // device a, counter b (diskStatField's index)
)

// maxShapeIndex bounds a and b; maxShapeNumbers the numbers of a reply
// with a Shape. Past them the reply is decoded in full every time: a
// Shape's size stays below the value's own.
const (
	maxShapeIndex   = 1 << 12
	maxShapeNumbers = 1024
)

func target(kind, a, b int) numTarget {
	if a >= maxShapeIndex || b >= maxShapeIndex {
		return tgtNone
	}
	return numTarget(kind<<24 | a<<12 | b)
}

func (t numTarget) kind() int { return int(t >> 24) }
func (t numTarget) a() int    { return int(t>>12) & (maxShapeIndex - 1) }
func (t numTarget) b() int    { return int(t) & (maxShapeIndex - 1) }

// numRec is a number a recording lexer read: where it began and where it
// went (lexer.rec).
type numRec struct {
	off int
	tgt numTarget
}

var shapeSeed = maphash.MakeSeed()

// mixPiece is the skeleton's hash h with one more piece: each piece's
// maphash (the runtime's hash, quick on the short pieces between numbers,
// where a streaming maphash.Hash copied each into its buffer) folded in
// order.
func mixPiece(h uint64, piece []byte) uint64 {
	return (bits.RotateLeft64(h, 29) ^ maphash.Bytes(shapeSeed, piece)) * 0x9e3779b97f4a7c15
}

// numberEnd is the end of the number token at b[i] ('-' or a digit): the
// longest run of the bytes a JSON number is made of. In valid JSON,
// outside a string, what follows a number (space, ',', ']', '}') is none
// of them, so the run is the token.
func numberEnd(b []byte, i int) int {
	for i < len(b) {
		switch c := b[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// span is one number token of a reply.
type span struct{ start, end int }

// numberSpans lists the number tokens of the JSON value b[start:end],
// which a decoder accepted (valid JSON: its strings end), in order; false
// past maxShapeNumbers.
func numberSpans(b []byte, start, end int, out []span) ([]span, bool) {
	v := b[:end]
	for i := start; i < end; {
		switch c := v[i]; {
		case c == '"':
			i++
			for i < end {
				n, _ := plainPrefix(v[i:])
				i += n
				if i >= end {
					return out, false
				}
				if v[i] == '\\' {
					i += 2
					continue
				}
				i++
				if v[i-1] == '"' {
					break
				}
			}
		case c == '-' || c >= '0' && c <= '9':
			if len(out) == maxShapeNumbers {
				return out, false
			}
			e := numberEnd(v, i)
			out = append(out, span{i, e})
			i = e
		default:
			i++
		}
	}
	return out, true
}

// build makes s the Shape of the value b[start:end], which a recording
// lexer decoded with rec, for kind; on anything it cannot account for it
// leaves s empty.
func (s *Shape) build(kind shapeKind, b []byte, start, end int, rec []numRec) bool {
	s.reset()
	var buf [64]span
	spans, ok := numberSpans(b, start, end, buf[:0])
	if !ok {
		return false
	}
	code := make([]uint64, 0, len(spans))
	var h uint64
	r, at := 0, start
	for _, sp := range spans {
		t := numTarget(tgtSkip << 24)
		if r < len(rec) && rec[r].off == sp.start {
			t = rec[r].tgt
			r++
		}
		if t.kind() == tgtNone {
			return false
		}
		code = append(code, uint64(sp.start-at)<<32|uint64(t))
		h = mixPiece(h, b[at:sp.start])
		at = sp.end
	}
	if r != len(rec) {
		return false // a number read where the scan saw none: not ours to guess
	}
	s.kind, s.hash, s.code, s.tail = kind, mixPiece(h, b[at:end]), s.intern(code), uint32(end-at)
	return true
}

// reset empties s. A reply s does not serve is decoded in full, which
// builds s again or leaves it empty, keeping nothing of the last value:
// held behind a Shape that serves nothing, or as room under a shorter
// list's names, it was a long list the guest no longer sends. s.code may
// be shared: never reused.
func (s *Shape) reset() { s.kind, s.code, s.ifaces, s.names = shapeNone, nil, nil, nil }

// shapeCodes holds one copy of each layout code (Shape.code) up to
// maxShapeCodes of them, each of at most maxSharedNumbers numbers: a
// fleet's guests mostly lay out their replies alike (the same agent, the
// same devices, addresses of a few lengths), and a code of its own per
// guest and command was some 1 KB a guest. Past the bound a code is the
// Shape's own. A Shape adds at most shapeCodeQuota codes, whatever its
// guest sends: a guest sending a new layout at every poll filled the
// table alone, and every guest after it kept a code of its own; now it
// takes some 85 guests doing so (three Shapes each), and costs the others
// only the sharing.
var shapeCodes struct {
	mu sync.Mutex
	m  map[uint64][]uint64
}

const (
	maxShapeCodes    = 1024
	maxSharedNumbers = 256
	// shapeCodeQuota: an honest guest's layout changes when an address,
	// a device or a name's length does, a few times in its life.
	shapeCodeQuota = 4
)

var codeSeed = maphash.MakeSeed()

// intern is code, or the copy of it shapeCodes holds; code is added to
// the table while s is within its quota.
func (s *Shape) intern(code []uint64) []uint64 {
	if len(code) > maxSharedNumbers {
		return code
	}
	var h maphash.Hash
	h.SetSeed(codeSeed)
	var w [8]byte
	for _, c := range code {
		binary.LittleEndian.PutUint64(w[:], c)
		h.Write(w[:])
	}
	key := h.Sum64()
	shapeCodes.mu.Lock()
	defer shapeCodes.mu.Unlock()
	if have, ok := shapeCodes.m[key]; ok {
		if slices.Equal(have, code) {
			return have
		}
		return code
	}
	if len(shapeCodes.m) >= maxShapeCodes || s.added >= shapeCodeQuota {
		return code
	}
	if shapeCodes.m == nil {
		shapeCodes.m = make(map[uint64][]uint64)
	}
	shapeCodes.m[key] = code
	s.added++
	return code
}

// cut walks a reply along a Shape's skeleton: each piece is hashed and
// stepped over, and the caller reads the number after it and steps over
// that (to); end checks the last piece and the hash. One pass, nothing
// kept: what a caller wrote before end fails is dropped or overwritten by
// the full decoder that follows.
type cut struct {
	b  []byte
	at int
	h  uint64
}

func (s *Shape) cut(kind shapeKind, b []byte, start int) (*cut, bool) {
	if s.kind != kind {
		return nil, false
	}
	return &cut{b: b, at: start}, true
}

// piece steps over the piece before a number (its length in code's high
// half) and reports whether a number starts there.
func (c *cut) piece(code uint64) bool {
	e := c.at + int(code>>32)
	if e >= len(c.b) {
		return false
	}
	c.h = mixPiece(c.h, c.b[c.at:e])
	c.at = e
	d := c.b[e]
	return d == '-' || d >= '0' && d <= '9'
}

// uint64 and int read the number at c.at by the full decoder's rules
// (lexer.uint64, lexer.int), which must take the whole token.
func (c *cut) uint64() (uint64, bool) {
	l := lexer{b: c.b, i: c.at}
	v, ok := l.uint64()
	return v, c.to(l.i, ok)
}

func (c *cut) int() (int, bool) {
	l := lexer{b: c.b, i: c.at}
	v, ok := l.int()
	return v, c.to(l.i, ok)
}

// skip steps over a number no decoder reads, checked as lexer.other does.
func (c *cut) skip() bool {
	e := numberEnd(c.b, c.at)
	return c.to(e, json.Valid(c.b[c.at:e]))
}

// to ends the number at e, if ok and e ends its token.
func (c *cut) to(e int, ok bool) bool {
	if !ok || numberEnd(c.b, e) != e {
		return false
	}
	c.at = e
	return true
}

// end checks the last piece and the hash, and reports where the value ends.
func (c *cut) end(s *Shape) (int, bool) {
	e := c.at + int(s.tail)
	if e > len(c.b) {
		return 0, false
	}
	return e, mixPiece(c.h, c.b[c.at:e]) == s.hash
}

// interfaces decodes the interface list at b[start:] by s, if it has s's
// skeleton: a new list, sharing the last one's strings and addresses.
func (s *Shape) interfaces(b []byte, start int) ([]Interface, int, bool) {
	c, ok := s.cut(shapeIfaces, b, start)
	if !ok {
		return nil, 0, false
	}
	tmpl := s.ifaces
	out := make([]Interface, len(tmpl))
	copy(out, tmpl)
	n := 0
	for i := range tmpl {
		if tmpl[i].Statistics != nil {
			n++
		}
	}
	if n > 0 {
		stats := make([]InterfaceStats, n)
		for i := range out {
			if out[i].Statistics != nil {
				out[i].Statistics = &stats[0]
				stats = stats[1:]
			}
		}
	}
	for _, code := range s.code {
		if !c.piece(code) {
			return nil, 0, false
		}
		t := numTarget(uint32(code))
		i := t.a()
		switch t.kind() {
		case tgtSkip:
			ok = c.skip()
		case tgtIfStat:
			var v uint64
			v, ok = c.uint64()
			var p *uint64
			if ok && i < len(out) && out[i].Statistics != nil {
				p = ifStatField(out[i].Statistics, t.b())
			}
			if p == nil {
				return nil, 0, false
			}
			*p = v
		case tgtIfPrefix:
			var v int
			v, ok = c.int()
			j := t.b()
			if !ok || i >= len(out) || j >= len(out[i].IPAddresses) {
				return nil, 0, false
			}
			if out[i].IPAddresses[j].Prefix != v {
				// Shared with the last list, which stays as it is.
				if &out[i].IPAddresses[0] == &tmpl[i].IPAddresses[0] {
					out[i].IPAddresses = append([]IPAddress(nil), tmpl[i].IPAddresses...)
				}
				out[i].IPAddresses[j].Prefix = v
			}
		default:
			ok = false
		}
		if !ok {
			return nil, 0, false
		}
	}
	end, ok := c.end(s)
	if !ok {
		return nil, 0, false
	}
	s.ifaces = out
	s.hits++
	return out, end, true
}

// ifStatField is InterfaceStats' field i, in its declared order.
func ifStatField(st *InterfaceStats, i int) *uint64 {
	switch i {
	case 0:
		return &st.RxBytes
	case 1:
		return &st.RxPackets
	case 2:
		return &st.RxErrs
	case 3:
		return &st.RxDropped
	case 4:
		return &st.TxBytes
	case 5:
		return &st.TxPackets
	case 6:
		return &st.TxErrs
	case 7:
		return &st.TxDropped
	}
	return nil
}

// keepIfaces keeps the list a full decode built the Shape from.
func (s *Shape) keepIfaces(v []Interface) { s.ifaces = v }

// keepCPUs keeps the CPUs' types of the list a full decode built the
// Shape from: the rest of a CPUStats is numbers.
func (s *Shape) keepCPUs(v []CPUStats) {
	s.names = s.names[:0]
	for _, c := range v {
		s.names = append(s.names, c.Type)
	}
}

// keepDisks keeps the devices' names, as keepCPUs the types.
func (s *Shape) keepDisks(v []DiskStatsInfo) {
	s.names = s.names[:0]
	for _, d := range v {
		s.names = append(s.names, d.Name)
	}
}

// cpuStats decodes guest-get-cpustats at b[start:] by s into sc, as
// cpuStatsInto does, if it has s's skeleton.
func (s *Shape) cpuStats(b []byte, start int, sc *Scratch[CPUStats]) ([]CPUStats, int, bool) {
	c, ok := s.cut(shapeCPU, b, start)
	if !ok {
		return nil, 0, false
	}
	out, _ := scratchList(sc, len(s.names))
	for _, n := range s.names {
		out = append(out, CPUStats{Type: n})
	}
	for _, code := range s.code {
		if !c.piece(code) {
			return nil, 0, false
		}
		t := numTarget(uint32(code))
		i, j := t.a(), t.b()
		switch k := t.kind(); {
		case k == tgtSkip:
			ok = c.skip()
		case i >= len(out):
			ok = false
		case k == tgtCPUNum:
			out[i].CPU, ok = c.int()
		case k == tgtCPUCtr && j < 4:
			var p *uint64
			switch j {
			case 0:
				p = &out[i].User
			case 1:
				p = &out[i].Nice
			case 2:
				p = &out[i].System
			default:
				p = &out[i].Idle
			}
			*p, ok = c.uint64()
		case k == tgtCPUCtr && j < 10:
			opt := sc.counters(i, 6)
			p := &opt[j-4]
			*cpuOptField(&out[i], j-4) = p
			*p, ok = c.uint64()
		default:
			ok = false
		}
		if !ok {
			return nil, 0, false
		}
	}
	end, ok := c.end(s)
	if !ok {
		return nil, 0, false
	}
	s.hits++
	return out, end, true
}

// cpuOptField is CPUStats' optional counter i, in its declared order.
func cpuOptField(c *CPUStats, i int) **uint64 {
	switch i {
	case 0:
		return &c.IOWait
	case 1:
		return &c.IRQ
	case 2:
		return &c.SoftIRQ
	case 3:
		return &c.Steal
	case 4:
		return &c.Guest
	}
	return &c.GuestNice
}

// diskStats decodes guest-get-diskstats at b[start:] by s into sc, as
// diskStatsInto does, if it has s's skeleton.
func (s *Shape) diskStats(b []byte, start int, sc *Scratch[DiskStatsInfo]) ([]DiskStatsInfo, int, bool) {
	c, ok := s.cut(shapeDisk, b, start)
	if !ok {
		return nil, 0, false
	}
	out, _ := scratchList(sc, len(s.names))
	for _, n := range s.names {
		out = append(out, DiskStatsInfo{Name: n})
	}
	for _, code := range s.code {
		if !c.piece(code) {
			return nil, 0, false
		}
		t := numTarget(uint32(code))
		i, j := t.a(), t.b()
		switch k := t.kind(); {
		case k == tgtSkip:
			ok = c.skip()
		case i >= len(out):
			ok = false
		case k == tgtDiskMajor:
			out[i].Major, ok = c.uint64()
		case k == tgtDiskMinor:
			out[i].Minor, ok = c.uint64()
		case k == tgtDiskCtr:
			p := diskStatPtr(&out[i].Stats, j)
			if p == nil {
				return nil, 0, false
			}
			vals := sc.counters(i, 17)
			vals[j], ok = c.uint64()
			*p = &vals[j]
		default:
			ok = false
		}
		if !ok {
			return nil, 0, false
		}
	}
	end, ok := c.end(s)
	if !ok {
		return nil, 0, false
	}
	s.hits++
	return out, end, true
}

// diskStatPtr is DiskStats' counter i, in diskStatField's order.
func diskStatPtr(s *DiskStats, i int) **uint64 {
	switch i {
	case 0:
		return &s.ReadSectors
	case 1:
		return &s.ReadIOs
	case 2:
		return &s.ReadMerges
	case 3:
		return &s.WriteSectors
	case 4:
		return &s.WriteIOs
	case 5:
		return &s.WriteMerges
	case 6:
		return &s.DiscardSectors
	case 7:
		return &s.DiscardIOs
	case 8:
		return &s.DiscardMerges
	case 9:
		return &s.FlushIOs
	case 10:
		return &s.ReadTicks
	case 11:
		return &s.WriteTicks
	case 12:
		return &s.DiscardTicks
	case 13:
		return &s.FlushTicks
	case 14:
		return &s.IOsPgr
	case 15:
		return &s.TotalTicks
	case 16:
		return &s.WeightTicks
	}
	return nil
}
