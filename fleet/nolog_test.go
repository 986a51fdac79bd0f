package fleet_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// NoLog (one-shot status) keeps no command log, and nothing else changes:
// against the simulator, a poll with it leaves the guest as one without it
// does (the same facts, prefetched the same way), minus the log.
func TestNoLogKeepsNoLog(t *testing.T) {
	farm := simSockets(t, 1)
	polled := map[bool]*fleet.Guest{}
	for _, noLog := range []bool{false, true} {
		f := fleet.New(fleet.Options{Timeout: 5 * time.Second, Readonly: true, NoKeep: true, NoLog: noLog})
		f.Add(fleet.Target{Name: "g", Address: "unix:" + farm.Sockets()[0]})
		if errs := f.RefreshErrs(t.Context(), []string{"g"}); errs["g"] != nil {
			t.Fatalf("NoLog %v: refresh: %v", noLog, errs["g"])
		}
		polled[noLog] = f.Guest("g")
		f.Close()
	}
	with, without := polled[false], polled[true]
	if with.Log.Len() == 0 {
		t.Fatalf("without NoLog the poll logged nothing: the comparison is empty")
	}
	if without.Log.Len() != 0 {
		t.Errorf("NoLog: %d log entries, first %+v; want none", without.Log.Len(), without.Log.At(0))
	}
	if without.State != fleet.Ready || without.State != with.State {
		t.Errorf("NoLog: state %s (%q), without it %s", without.State, without.Err, with.State)
	}
	for name, pair := range map[string][2]any{
		"hostname":    {with.Hostname, without.Hostname},
		"os":          {with.OS, without.OS},
		"interfaces":  {addresses(with), addresses(without)},
		"vcpus":       {with.VCPUs, without.VCPUs},
		"filesystems": {with.Filesystems, without.Filesystems},
		"users":       {with.Users, without.Users},
		"timezone":    {with.Timezone, without.Timezone},
		"version":     {with.AgentVersion, without.AgentVersion},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("NoLog: %s %+v, without it %+v", name, pair[1], pair[0])
		}
	}
}

// addresses is g's interfaces without their counters, which move between
// polls.
func addresses(g *fleet.Guest) []agentclient.Interface {
	out := slices.Clone(g.Interfaces)
	for i := range out {
		out[i].Statistics = nil
	}
	return out
}
