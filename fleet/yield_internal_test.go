package fleet

import (
	"testing"
	"time"
)

// The watcher's wait keeps a look near a hundredth of the time, within
// its bounds.
func TestYieldWait(t *testing.T) {
	for _, tt := range []struct{ took, want time.Duration }{
		{0, yieldPeriod},
		{time.Millisecond, yieldPeriod},
		{4 * time.Millisecond, 400 * time.Millisecond},
		{10 * time.Millisecond, time.Second},
		{time.Second, maxYieldPeriod},
	} {
		if got := yieldWait(tt.took); got != tt.want {
			t.Errorf("yieldWait(%v) = %v, want %v", tt.took, got, tt.want)
		}
	}
}

// Which addresses the watcher can watch: unix socket paths, not abstract
// names or other transports.
func TestLocalSocket(t *testing.T) {
	for _, tt := range []struct {
		addr string
		path string
		ok   bool
	}{
		{"unix:/run/qga.sock", "/run/qga.sock", true},
		{"/run/qga.sock", "/run/qga.sock", true},
		{"unix:rel.sock", "rel.sock", true},
		{"unix:@abstract", "", false},
		{"tcp:127.0.0.1:4444", "", false},
		{"vsock:3:1234", "", false},
		{"ssh://host/run/qga.sock", "", false},
		{"libvirt:h/dom", "", false},
		{"fake:x", "", false},
	} {
		if path, ok := localSocket(tt.addr); path != tt.path || ok != tt.ok {
			t.Errorf("localSocket(%q) = %q %v, want %q %v", tt.addr, path, ok, tt.path, tt.ok)
		}
	}
}
