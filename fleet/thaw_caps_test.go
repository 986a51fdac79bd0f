package fleet_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// TestCapabilitiesAfterThaw: guest-info read while a guest is frozen lists
// nearly every command disabled. Once the guest is thawed, the next poll must
// read the capabilities (and the slow items refused while frozen) again,
// rather than leave files and exec "disabled" until the slow interval.
func TestCapabilitiesAfterThaw(t *testing.T) {
	opts := fastOptions()
	opts.SlowInterval = time.Hour // only the thaw can explain a re-read
	_, f := simFleet(t, 1, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.RefreshOnce(ctx, nil)
	read := fleet.Action{Kind: fleet.ActRead, Path: "/etc/os-release"}

	if r := f.Run(ctx, fleet.Action{Kind: fleet.ActFreeze}, []string{"s00"}, nil); !r[0].OK {
		t.Fatalf("freeze: %+v", r[0])
	}
	f.RefreshOnce(ctx, nil) // a slow refresh while frozen: capabilities as the frozen agent lists them
	g := f.Guest("s00")
	if _, enabled := g.Capability("guest-file-open"); enabled || g.State != fleet.Frozen {
		t.Fatalf("while frozen: state %s, guest-file-open enabled %v; want frozen, disabled", g.State, enabled)
	}
	if why := read.Check(g); why == "" {
		t.Fatal("read on a frozen guest is not skipped")
	}

	f.Start(ctx)
	if r := f.Run(ctx, fleet.Action{Kind: fleet.ActThaw}, []string{"s00"}, nil); !r[0].OK {
		t.Fatalf("thaw: %+v", r[0])
	}
	wait.For(t, 5*time.Second, func() (bool, string) {
		g = f.Guest("s00")
		_, enabled := g.Capability("guest-file-open")
		return enabled && read.Check(g) == "" && g.OS != nil && g.State == fleet.Ready,
			fmt.Sprintf("after thaw: state %s, guest-file-open enabled %v, read check %q, OS %v", g.State, enabled, read.Check(g), g.OS)
	})
	if r := f.Run(ctx, read, []string{"s00"}, nil); !r[0].OK || len(r[0].Data) == 0 {
		t.Fatalf("read after thaw: %+v", r[0])
	}
}
