package fleet

import (
	"testing"
	"unsafe"
)

// What a fleet holds per guest is mostly a few allocations whose sizes sit
// just under a size class of the runtime's allocator (objects with
// pointers past 512 bytes carry an 8-byte header besides): a field more
// can cost a whole class step per guest (128 bytes on the Guest, copied at
// every change, 64 on the session). A change here is fine when it is
// meant: measure it (BenchmarkHeapPerGuest) and move the bound.
func TestAllocationSizes(t *testing.T) {
	for _, tc := range []struct {
		what       string
		size, most uintptr
	}{
		{"Guest (896-byte class with its header)", unsafe.Sizeof(Guest{}), 888},
		{"session (480-byte class; no header below 512)", unsafe.Sizeof(session{}), 480},
		{"a history page (288-byte class, no pointers)", unsafe.Sizeof(recentPage{}), 288},
		{"a log page's record (32 in a 1,152-byte class with the header)", unsafe.Sizeof(logRec{}), 32},
		{"the history's values (2 KiB class, no pointers)", unsafe.Sizeof(histValues{}), 2048},
		{"the history's times (320-byte class)", unsafe.Sizeof(histTimes{}), 320},
		{"a Recent's buffer (64-byte class, no pointers)", unsafe.Sizeof(recentBuf{}), 64},
	} {
		if tc.size > tc.most {
			t.Errorf("%s: %d bytes, more than %d", tc.what, tc.size, tc.most)
		}
	}
}
