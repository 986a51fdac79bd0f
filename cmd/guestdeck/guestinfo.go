package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// guestInfoSections are virsh guestinfo's section flags, in its order, with
// the key prefix each section's keys carry.
var guestInfoSections = []struct{ flag, help string }{
	{"user", "logged-in users (user.*)"},
	{"os", "operating system (os.*)"},
	{"timezone", "timezone (timezone.*)"},
	{"hostname", "host name (hostname)"},
	{"filesystem", "filesystems (fs.*)"},
	{"disk", "disks (disk.*)"},
	{"interface", "network interfaces (if.*)"},
}

// maxLoginSeconds bounds a login time guestinfo shows (the year 5138).
const maxLoginSeconds = 1e11

// infoParam is one key of virsh guestinfo's output: "os.id", "fs.0.name".
// Value is a string or a number, as libvirt types it.
type infoParam struct {
	Key   string
	Value any
}

// guestInfoJSON is one guest of guestinfo --json: the keys as virsh names
// them, numbers as numbers.
type guestInfoJSON struct {
	Name  string         `json:"name"`
	State string         `json:"state"`
	Info  map[string]any `json:"info"`
}

// guestInfo prints what the agents said of the selected guests in virsh
// guestinfo's keys (virDomainGetGuestInfo's typed parameters), section by
// section: every section, or those whose flags are given.
func (c *cli) guestInfo(ctx context.Context, args []string) int {
	fs := c.flags("guestinfo")
	asJSON := fs.Bool("json", false, `print a JSON array: {"name", "state", "info": {KEY: VALUE}}`)
	want := map[string]*bool{}
	for _, s := range guestInfoSections {
		want[s.flag] = fs.Bool(s.flag, false, "only "+s.help+"; several flags combine")
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	all := true
	for _, on := range want {
		all = all && !*on
	}
	selectors := fs.Args()
	if len(selectors) == 0 {
		selectors = []string{"all"}
	}
	// Disks ride with the metrics (guest-get-disks with the slow items).
	o, code := c.openFleet(ctx, false, keepMetrics)
	if o == nil {
		return code
	}
	defer o.close()
	gs, err := selectPolled(ctx, o.fleet, selectors)
	if err != nil {
		c.errorf("guestinfo: %v", err)
		return exitUsage
	}
	if len(gs) == 0 {
		c.errorf("guestinfo: the selectors %s match no guest", strings.Join(selectors, " "))
		return exitUsage
	}
	out := make([]guestInfoJSON, len(gs))
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 1, ' ', 0)
	for i, g := range gs {
		params := guestInfoParams(g, func(s string) bool { return all || *want[s] })
		out[i] = guestInfoJSON{Name: g.Name, State: string(g.State), Info: map[string]any{}}
		for _, p := range params {
			out[i].Info[p.Key] = p.Value
		}
		if *asJSON {
			continue
		}
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "==> %s <==\n", present.Text(g.Name, nameCells))
		if len(params) == 0 {
			fmt.Fprintf(tw, "(nothing known: the guest is %s)\n", g.State)
		}
		for _, p := range params {
			v := fmt.Sprint(p.Value)
			if s, ok := p.Value.(string); ok {
				v = present.Text(s, maxLineCells)
			}
			fmt.Fprintf(tw, "%s\t: %s\n", p.Key, v)
		}
	}
	if *asJSON {
		writeJSON(c.stdout, out)
		return exitOK
	}
	tw.Flush()
	return exitOK
}

// guestInfoParams are g's keys in the sections on says to show, named and
// typed as virDomainGetGuestInfo names them; a section the agent has not
// reported is left out, as libvirt leaves it out.
func guestInfoParams(g *fleet.Guest, on func(section string) bool) []infoParam {
	var ps []infoParam
	add := func(k string, v any) { ps = append(ps, infoParam{k, v}) }
	if on("user") && g.Users != nil {
		add("user.count", len(g.Users))
		for i, u := range g.Users {
			k := "user." + strconv.Itoa(i) + "."
			add(k+"name", u.User)
			if u.Domain != "" {
				add(k+"domain", u.Domain)
			}
			if t := u.LoginTime; t >= 0 && t < maxLoginSeconds { // a guest's number: a bad one loses this key only
				add(k+"login-time", int64(t*1000)) // milliseconds, as libvirt
			}
		}
	}
	if on("os") && g.OS != nil {
		for _, kv := range [][2]string{
			{"id", g.OS.ID}, {"name", g.OS.Name}, {"pretty-name", g.OS.PrettyName}, {"version", g.OS.Version},
			{"version-id", g.OS.VersionID}, {"kernel-release", g.OS.KernelRelease}, {"kernel-version", g.OS.KernelVersion},
			{"machine", g.OS.Machine}, {"variant", g.OS.Variant}, {"variant-id", g.OS.VariantID},
		} {
			if kv[1] != "" {
				add("os."+kv[0], kv[1])
			}
		}
	}
	if on("timezone") && g.Timezone != nil {
		if g.Timezone.Zone != "" {
			add("timezone.name", g.Timezone.Zone)
		}
		add("timezone.offset", g.Timezone.Offset)
	}
	if on("hostname") && g.Hostname != "" {
		add("hostname", g.Hostname)
	}
	if on("filesystem") && g.Filesystems != nil {
		add("fs.count", len(g.Filesystems))
		for i, f := range g.Filesystems {
			k := "fs." + strconv.Itoa(i) + "."
			add(k+"mountpoint", f.Mountpoint)
			add(k+"name", f.Name)
			add(k+"fstype", f.Type)
			if f.TotalBytes != nil {
				add(k+"total-bytes", *f.TotalBytes)
			}
			if f.UsedBytes != nil {
				add(k+"used-bytes", *f.UsedBytes)
			}
			add(k+"disk.count", len(f.Disk))
			for j, d := range f.Disk {
				dk := k + "disk." + strconv.Itoa(j) + "."
				if d.Serial != "" {
					add(dk+"serial", d.Serial)
				}
				if d.Dev != "" {
					add(dk+"device", d.Dev)
				}
			}
		}
	}
	if on("disk") && g.Metrics.Disks != nil {
		add("disk.count", len(g.Metrics.Disks))
		for i, d := range g.Metrics.Disks {
			k := "disk." + strconv.Itoa(i) + "."
			add(k+"name", d.Name)
			add(k+"partition", d.Partition)
			if len(d.Dependencies) > 0 {
				add(k+"dependency.count", len(d.Dependencies))
				for j, dep := range d.Dependencies {
					add(k+"dependency."+strconv.Itoa(j)+".name", dep)
				}
			}
			if d.Address != nil && d.Address.Serial != "" {
				add(k+"serial", d.Address.Serial)
			}
			if d.Alias != "" {
				add(k+"guest_alias", d.Alias)
			}
			if d.Address != nil && d.Address.BusType != "" {
				add(k+"guest_bus", d.Address.BusType)
			}
		}
	}
	if on("interface") && g.Interfaces != nil {
		add("if.count", len(g.Interfaces))
		for i, ifc := range g.Interfaces {
			k := "if." + strconv.Itoa(i) + "."
			add(k+"name", ifc.Name)
			if ifc.HardwareAddress != "" {
				add(k+"hwaddr", ifc.HardwareAddress)
			}
			add(k+"addr.count", len(ifc.IPAddresses))
			for j, ip := range ifc.IPAddresses {
				ak := k + "addr." + strconv.Itoa(j) + "."
				add(ak+"type", ip.Type)
				add(ak+"addr", ip.Address)
				add(ak+"prefix", ip.Prefix)
			}
		}
	}
	return ps
}
