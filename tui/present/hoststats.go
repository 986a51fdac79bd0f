package present

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// HostView is one line of what a guest's libvirt host sees of it
// (fleet.HostStats), to read beside the guest's own metrics: "cpu 5% ·
// balloon 2.0 GiB · disk r 1.2 MiB/s w 0 B/s · net rx 3.0 KiB/s tx 812 B/s ·
// 2s ago". A figure the host did not give is left out; "" when the host has
// given nothing (not a libvirt guest, or no stats call yet). Every part is
// a number the fleet computed: no guest text.
func HostView(g *fleet.Guest, now time.Time) string {
	hs := g.HostStats
	if hs == nil || hs.At.IsZero() {
		return ""
	}
	var parts []string
	if hs.CPUPct.OK {
		parts = append(parts, fmt.Sprintf("cpu %.0f%%", hs.CPUPct.V))
	}
	if hs.BalloonOK {
		parts = append(parts, "balloon "+Size(int64(min(hs.BalloonBytes, math.MaxInt64))))
	}
	if hs.BlockRdBps.OK || hs.BlockWrBps.OK {
		parts = append(parts, "disk r "+rate(hs.BlockRdBps)+" w "+rate(hs.BlockWrBps))
	}
	if hs.NetRxBps.OK || hs.NetTxBps.OK {
		parts = append(parts, "net rx "+rate(hs.NetRxBps)+" tx "+rate(hs.NetTxBps))
	}
	parts = append(parts, max(now.Sub(hs.At), 0).Round(time.Second).String()+" ago")
	return strings.Join(parts, " · ")
}

// rate is a bytes-per-second Rate, "?" when unknown.
func rate(r fleet.Rate) string {
	if !r.OK {
		return "?"
	}
	return Size(int64(min(math.Max(r.V, 0), math.MaxInt64/2))) + "/s"
}
