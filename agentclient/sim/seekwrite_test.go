package sim

import (
	"fmt"
	"strings"
	"testing"
)

// A write after a seek to near the largest offset must be refused, not
// overflow the end position and panic (taking the test process down).
func TestWriteAfterHugeSeekRefused(t *testing.T) {
	_, sock := startGuest(t, DefaultConfig("g"))
	rc := newRaw(t, sock)
	var h int64
	rc.call(`{"execute":"guest-file-open","arguments":{"path":"/tmp/huge","mode":"w"}}`+"\n", &h)
	rc.call(fmt.Sprintf(`{"execute":"guest-file-seek","arguments":{"handle":%d,"offset":9223372036854775806,"whence":0}}`+"\n", h), nil)
	_, desc := rc.callErr(fmt.Sprintf(`{"execute":"guest-file-write","arguments":{"handle":%d,"buf-b64":"aGVsbG8="}}`+"\n", h))
	if !strings.Contains(desc, "failed to write") {
		t.Fatalf("write at a huge offset: %q", desc)
	}
}
