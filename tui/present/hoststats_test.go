package present

import (
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

func TestHostView(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name string
		hs   fleet.HostStats
		want string
	}{
		{"not a libvirt guest", fleet.HostStats{}, ""},
		{"first sample: no rates yet", fleet.HostStats{At: now, BalloonBytes: 2 << 30, BalloonOK: true}, "balloon 2.0 GiB · 0s ago"},
		{"everything", fleet.HostStats{At: now.Add(-2 * time.Second), CPUPct: fleet.Rate{V: 5.4, OK: true},
			BalloonBytes: 256 << 20, BalloonOK: true, BlockRdBps: fleet.Rate{V: 1536, OK: true}, BlockWrBps: fleet.Rate{V: 0, OK: true},
			NetRxBps: fleet.Rate{V: 3 << 10, OK: true}, NetTxBps: fleet.Rate{V: 812, OK: true}},
			"cpu 5% · balloon 256 MiB · disk r 1.5 KiB/s w 0 B/s · net rx 3.0 KiB/s tx 812 B/s · 2s ago"},
		{"one rate of a pair unknown", fleet.HostStats{At: now, BlockRdBps: fleet.Rate{V: 10, OK: true}}, "disk r 10 B/s w ? · 0s ago"},
		{"absurd values stay numbers", fleet.HostStats{At: now.Add(time.Hour), NetRxBps: fleet.Rate{V: 1e300, OK: true}, NetTxBps: fleet.Rate{V: -5, OK: true}},
			"net rx 4.0 EiB/s tx 0 B/s · 0s ago"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HostView(&fleet.Guest{HostStats: &tc.hs}, now); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
