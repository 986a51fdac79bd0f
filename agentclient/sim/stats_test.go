package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// shape is a JSON value's type, with an object's members and an array's
// element shape; the elements of an array merge (a disk and a partition
// together have every member either has).
type shape struct {
	kind    string // "object", "array", "string", "number", "bool", "null"
	members map[string]*shape
	elem    *shape
}

func shapeOf(v any) *shape {
	switch x := v.(type) {
	case map[string]any:
		s := &shape{kind: "object", members: map[string]*shape{}}
		for k, m := range x {
			s.members[k] = shapeOf(m)
		}
		return s
	case []any:
		s := &shape{kind: "array"}
		for _, e := range x {
			s.elem = merge(s.elem, shapeOf(e))
		}
		return s
	case string:
		return &shape{kind: "string"}
	case json.Number, float64:
		return &shape{kind: "number"}
	case bool:
		return &shape{kind: "bool"}
	}
	return &shape{kind: "null"}
}

func merge(a, b *shape) *shape {
	if a == nil {
		return b
	}
	if b == nil || a.kind != b.kind {
		return a // a kind clash shows in diff against the other side
	}
	out := &shape{kind: a.kind, elem: merge(a.elem, b.elem)}
	if a.members != nil {
		out.members = map[string]*shape{}
		for k, m := range a.members {
			out.members[k] = merge(m, b.members[k])
		}
		for k, m := range b.members {
			if _, ok := out.members[k]; !ok {
				out.members[k] = m
			}
		}
	}
	return out
}

// diff lists where got's shape differs from want's.
func diff(path string, want, got *shape) []string {
	switch {
	case want == nil && got == nil:
		return nil
	case want == nil:
		return []string{path + ": an empty list on one side only"}
	case got == nil:
		return []string{path + ": an empty list on one side only"}
	case want.kind != got.kind:
		return []string{fmt.Sprintf("%s: %s, want %s", path, got.kind, want.kind)}
	}
	var out []string
	keys := map[string]bool{}
	for k := range want.members {
		keys[k] = true
	}
	for k := range got.members {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		w, g := want.members[k], got.members[k]
		switch {
		case w == nil:
			out = append(out, fmt.Sprintf("%s.%s: extra member", path, k))
		case g == nil:
			out = append(out, fmt.Sprintf("%s.%s: missing member", path, k))
		default:
			out = append(out, diff(path+"."+k, w, g)...)
		}
	}
	if want.kind == "array" && want.elem != nil && got.elem != nil {
		out = append(out, diff(path+"[]", want.elem, got.elem)...)
	}
	return out
}

func replyShape(t *testing.T, line string) *shape {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	var rep struct {
		Return any `json:"return"`
		Error  *struct{ Class, Desc string }
	}
	if err := d.Decode(&rep); err != nil {
		t.Fatalf("bad reply %q: %v", line, err)
	}
	if rep.Error != nil {
		t.Fatalf("error reply %s: %s", rep.Error.Class, rep.Error.Desc)
	}
	return shapeOf(rep.Return)
}

// The simulator's replies to the statistics commands have the members, and
// member types, of the real qemu-ga 7.2 on this machine (read-only
// commands, sent to an agent whose mutating commands are blocked).
func TestStatsMatchRealAgent(t *testing.T) {
	ag := testpeers.StartAgents(t, 1)
	real := newRaw(t, ag.Sockets[0])
	_, sock := startGuest(t, DefaultConfig("conf"))
	simc := newRaw(t, sock)
	for _, cmd := range []string{"guest-get-cpustats", "guest-get-diskstats", "guest-get-disks", "guest-get-fsinfo",
		"guest-get-memory-blocks", "guest-get-memory-block-info"} {
		req := `{"execute":"` + cmd + `"}` + "\n"
		real.send(req)
		want := replyShape(t, real.mustLine())
		simc.send(req)
		got := replyShape(t, simc.mustLine())
		if want.kind == "array" && want.elem == nil {
			t.Errorf("%s: the real agent returned an empty list: nothing to compare", cmd)
		}
		for _, d := range diff(cmd, want, got) {
			t.Errorf("simulator differs from qemu-ga 7.2: %s", d)
		}
	}
	// fsinfo with sizes: the real agent reports them for its root.
	var fs []agentclient.Filesystem
	real.call(`{"execute":"guest-get-fsinfo"}`+"\n", &fs)
	if i := slices.IndexFunc(fs, func(f agentclient.Filesystem) bool { return f.Mountpoint == "/" }); i < 0 || fs[i].UsedBytes == nil || fs[i].TotalBytes == nil {
		t.Errorf("real fsinfo without sizes for /: %+v", fs)
	}
}

// The typed client decodes the real agent's and the simulator's replies
// alike: every CPU with its optional counters, whole disks with their
// address, filesystem sizes.
func TestStatsDecodeRealAndSim(t *testing.T) {
	ag := testpeers.StartAgents(t, 1)
	_, sock := startGuest(t, DefaultConfig("dec"))
	for _, addr := range []string{ag.Addrs()[0], "unix:" + sock} {
		t.Run(addr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			c, err := agentclient.Dial(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cpus, err := c.CPUStats(ctx)
			if err != nil || len(cpus) == 0 {
				t.Fatalf("CPUStats: %v %v", cpus, err)
			}
			for _, cp := range cpus {
				if cp.Type != "linux" || cp.IOWait == nil || cp.Steal == nil || cp.SoftIRQ == nil || cp.Idle == 0 || cp.User%10 != 0 {
					t.Errorf("cpu %+v", cp)
				}
			}
			ds, err := c.DiskStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(ds, func(d agentclient.DiskStatsInfo) bool { return d.Stats.ReadSectors != nil && *d.Stats.ReadSectors > 0 }); i < 0 {
				t.Errorf("no disk with sectors read: %+v", ds)
			} else if s := ds[i].Stats; s.WriteIOs == nil || s.WeightTicks == nil || ds[i].Major == 0 {
				t.Errorf("disk %s: %+v", ds[i].Name, s)
			}
			disks, err := c.Disks(ctx)
			if err != nil || len(disks) == 0 || disks[0].Partition || disks[0].Address == nil || !strings.HasPrefix(disks[0].Name, "/dev/") {
				t.Errorf("Disks: %+v %v", disks, err)
			}
			info, err := c.MemoryBlockInfo(ctx)
			if err != nil || info.Size == 0 || info.Size%(1<<20) != 0 {
				t.Errorf("MemoryBlockInfo: %+v %v", info, err)
			}
			blocks, err := c.MemoryBlocks(ctx)
			if err != nil || len(blocks) == 0 || blocks[0].CanOffline == nil {
				t.Errorf("MemoryBlocks: %d blocks, %v", len(blocks), err)
			}
			// Not in qemu-ga 7.2: both answer as a command never heard of.
			for _, call := range []func() error{
				func() error { _, err := c.Load(ctx); return err },
				func() error { _, err := c.Routes(ctx); return err },
			} {
				var ae *agentclient.Error
				if err := call(); !asAgentError(err, &ae) || ae.Class != "CommandNotFound" {
					t.Errorf("newer command on 7.2: %v", err)
				}
			}
		})
	}
}

func asAgentError(err error, out **agentclient.Error) bool {
	for err != nil {
		if e, ok := err.(*agentclient.Error); ok {
			*out = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// The commands newer than the real agent here (guest-get-load 10.0,
// guest-network-get-route 9.1) have the schema's members and types
// (qga/qapi-schema.json, QEMU 10): required ones always, optional ones
// only from the schema.
func TestStatsMatchSchema(t *testing.T) {
	cfg := DefaultConfig("new")
	cfg.AgentVersion = "10.0.2"
	_, sock := startGuest(t, cfg)
	rc := newRaw(t, sock)
	type member struct {
		kind     string
		required bool
	}
	schemas := map[string]map[string]member{
		"guest-get-load": {"load1m": {"number", true}, "load5m": {"number", true}, "load15m": {"number", true}},
		"guest-network-get-route": {
			"iface": {"string", true}, "destination": {"string", true}, "metric": {"number", true}, "version": {"number", true},
			"gateway": {"string", false}, "mask": {"string", false}, "irtt": {"number", false}, "flags": {"number", false},
			"refcnt": {"number", false}, "use": {"number", false}, "window": {"number", false}, "mtu": {"number", false},
			"desprefixlen": {"string", false}, "source": {"string", false}, "srcprefixlen": {"string", false}, "nexthop": {"string", false},
		},
	}
	for cmd, schema := range schemas {
		rc.send(`{"execute":"` + cmd + `"}` + "\n")
		s := replyShape(t, rc.mustLine())
		var objs []*shape
		switch s.kind {
		case "object":
			objs = []*shape{s}
		case "array":
			if s.elem == nil {
				t.Fatalf("%s: empty list", cmd)
			}
			// Each element separately: an IPv4 and an IPv6 route differ.
			var list []any
			rc.send(`{"execute":"` + cmd + `"}` + "\n")
			var rep struct{ Return []any }
			if err := json.Unmarshal([]byte(rc.mustLine()), &rep); err != nil {
				t.Fatal(err)
			}
			list = rep.Return
			for _, e := range list {
				objs = append(objs, shapeOf(e))
			}
		}
		for i, o := range objs {
			for k, m := range schema {
				got, ok := o.members[k]
				switch {
				case !ok && m.required:
					t.Errorf("%s[%d]: required member %s missing", cmd, i, k)
				case ok && got.kind != m.kind:
					t.Errorf("%s[%d].%s: %s, schema says %s", cmd, i, k, got.kind, m.kind)
				}
			}
			for k := range o.members {
				if _, ok := schema[k]; !ok {
					t.Errorf("%s[%d]: member %s is not in the schema", cmd, i, k)
				}
			}
		}
	}
}

// Counters only grow while the guest runs and carry on across an agent
// restart (a reboot starts them again: fleet's TestMetricsAcrossReboot);
// busy guests count more than idle ones.
func TestStatsCounters(t *testing.T) {
	busyCfg := DefaultConfig("busy")
	busyCfg.Workload = WorkloadBusy
	idleCfg := DefaultConfig("idle")
	idleCfg.Workload = WorkloadIdle
	busy, bsock := startGuest(t, busyCfg)
	_, isock := startGuest(t, idleCfg)
	read := func(sock string) (cpu []linuxCPU, disk []diskStatsInfo) {
		rc := newRaw(t, sock)
		defer rc.c.Close()
		rc.call(`{"execute":"guest-get-cpustats"}`, &cpu)
		rc.call(`{"execute":"guest-get-diskstats"}`, &disk)
		return cpu, disk
	}
	busyMS := func(c []linuxCPU) uint64 { return c[0].User + c[0].System + c[0].Nice + c[0].SoftIRQ }
	c1, d1 := read(bsock)
	ic, _ := read(isock)
	if busyMS(c1) <= 10*busyMS(ic) {
		t.Errorf("busy guest %d busy ms, idle guest %d: not much busier", busyMS(c1), busyMS(ic))
	}
	if d1[1].Name != "vda" || d1[2].Name != "vda1" || d1[1].Stats.WriteSectors < d1[2].Stats.WriteSectors {
		t.Errorf("diskstats %+v: want loop0, vda, then its partition", d1)
	}
	busy.Restart() // the agent, not the kernel
	c2, d2 := read(bsock)
	if c2[0].Idle+busyMS(c2) < c1[0].Idle+busyMS(c1) || d2[1].Stats.WriteSectors < d1[1].Stats.WriteSectors {
		t.Errorf("counters went down across an agent restart: %+v then %+v", c1[0], c2[0])
	}
}
