package fleet_test

import (
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// A freeze sent through Raw is a freeze by this process all the same: the
// guard must hold it (FrozenByUs, the watchdog, ThawOurs), and a raw thaw
// releases it.
func TestRawFreezeArmsGuard(t *testing.T) {
	opts := fastOptions()
	opts.FreezeTimeout = 700 * time.Millisecond
	farm, f := simFleet(t, 1, opts)
	g := farm.Guests()[0]
	ctx := t.Context()
	if _, err := f.Raw(ctx, "s00", []byte(`{"execute":"guest-fsfreeze-freeze"}`)); err != nil {
		t.Fatalf("raw freeze: %v", err)
	}
	if !g.Frozen() {
		t.Fatal("sim guest not frozen after raw freeze")
	}
	if got := f.FrozenByUs(); len(got) != 1 || got[0] != "s00" {
		t.Fatalf("FrozenByUs after raw freeze = %v, want [s00]", got)
	}
	wait.For(t, 5*time.Second, func() (bool, string) {
		return !g.Frozen(), "watchdog did not thaw a guest frozen through Raw"
	})

	opts.FreezeTimeout = time.Hour
	if _, err := f.Raw(ctx, "s00", []byte(`{"execute":"guest-fsfreeze-freeze"}`)); err != nil {
		t.Fatalf("raw freeze again: %v", err)
	}
	if _, err := f.Raw(ctx, "s00", []byte(`{"execute":"guest-fsfreeze-thaw"}`)); err != nil {
		t.Fatalf("raw thaw: %v", err)
	}
	if got := f.FrozenByUs(); len(got) != 0 {
		t.Fatalf("FrozenByUs after raw thaw = %v, want none", got)
	}
}

// Re-adding a guest with new tags (a fleet file reload) replaces its
// session; the freeze guard must come along, or a guest this process froze
// is forgotten: no watchdog, not in FrozenByUs, not thawed by ThawOurs.
func TestReAddKeepsFreezeGuard(t *testing.T) {
	opts := fastOptions()
	opts.FreezeTimeout = 700 * time.Millisecond
	farm, f := simFleet(t, 1, opts)
	g := farm.Guests()[0]
	ctx := t.Context()
	if r := f.Run(ctx, fleet.Action{Kind: fleet.ActFreeze}, []string{"s00"}, nil)[0]; !r.OK || !g.Frozen() {
		t.Fatalf("freeze: %+v", r)
	}
	old := f.Guest("s00")
	f.Add(fleet.Target{Name: "s00", Address: old.Address, Tags: []string{"reloaded"}})
	if got := f.FrozenByUs(); len(got) != 1 || got[0] != "s00" {
		t.Fatalf("FrozenByUs after re-add = %v, want [s00]", got)
	}
	wait.For(t, 5*time.Second, func() (bool, string) {
		return !g.Frozen(), "watchdog did not thaw a guest frozen before it was re-added"
	})
}
