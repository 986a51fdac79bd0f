package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// What status adds from the guest's own view (fleet.Metrics): the keys of
// every `status --json`, the rates of `--sample D`, and `--watch [D]`.

// minSample is the shortest --sample and --watch interval: the agent's CPU
// counters tick in 10 ms, and a shorter interval gives rates that say
// nothing.
const minSample = 500 * time.Millisecond

// guestViewJSON are the keys every `status --json` object has from the
// guest's own view. null where the agent lacks it (or it was not read).
type guestViewJSON struct {
	Kernel      string     `json:"kernel"` // kernel release ("" when unknown)
	Timezone    *tzJSON    `json:"timezone"`
	Users       []userJSON `json:"users"`
	Filesystems []fsJSON   `json:"filesystems"`
	Disks       []diskJSON `json:"disks"`
	Load        *loadJSON  `json:"load"`
	MetricsNote string     `json:"metrics_note"` // why metrics are missing; "" when none are
	*RatesJSON  `json:",omitempty"`
}

type tzJSON struct {
	Zone    string `json:"zone"`
	OffsetS int    `json:"offset_s"` // seconds east of UTC
}

type userJSON struct {
	User      string    `json:"user"`
	Domain    string    `json:"domain"`
	LoginTime time.Time `json:"login_time"`
}

type fsJSON struct {
	Mountpoint string `json:"mountpoint"`
	Type       string `json:"type"`
	UsedBytes  uint64 `json:"used_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
}

type diskJSON struct {
	Name         string     `json:"name"`
	Partition    bool       `json:"partition"`
	Dependencies []string   `json:"dependencies"`
	Alias        string     `json:"alias"`
	BusType      string     `json:"bus_type"` // "" when the agent gave no address
	Serial       string     `json:"serial"`
	Smart        *smartJSON `json:"smart"` // NVMe SMART data; null when none
}

type smartJSON struct {
	CriticalWarning int     `json:"critical_warning"`
	TemperatureC    float64 `json:"temperature_c"`
	AvailableSpare  int     `json:"available_spare_pct"`
	PercentageUsed  int     `json:"percentage_used"`
	MediaErrors     uint64  `json:"media_errors"`
	PowerOnHours    uint64  `json:"power_on_hours"`
	UnsafeShutdowns uint64  `json:"unsafe_shutdowns"`
}

type loadJSON struct {
	Load1   float64 `json:"load1"`
	Load5   float64 `json:"load5"`
	Load15  float64 `json:"load15"`
	Derived bool    `json:"derived"` // from CPU use: the agent has no guest-get-load
}

// RatesJSON are the rates `status --sample D` adds: null when unknown (the
// agent lacks the counters, or they were reset between the two polls).
type RatesJSON struct {
	SampleS       float64  `json:"sample_s"` // seconds between the two samples
	CPUBusyPct    *float64 `json:"cpu_busy_pct"`
	IOWaitPct     *float64 `json:"iowait_pct"`
	StealPct      *float64 `json:"steal_pct"`
	DiskReadBps   *float64 `json:"disk_read_bps"`
	DiskWriteBps  *float64 `json:"disk_write_bps"`
	DiskReadIOPS  *float64 `json:"disk_read_iops"`
	DiskWriteIOPS *float64 `json:"disk_write_iops"`
	NetRxBps      *float64 `json:"net_rx_bps"`
	NetTxBps      *float64 `json:"net_tx_bps"`
	NetErrsPerSec *float64 `json:"net_errs_per_sec"`
}

func toGuestViewJSON(g *fleet.Guest) guestViewJSON {
	v := guestViewJSON{MetricsNote: g.Metrics.Note}
	if g.OS != nil {
		v.Kernel = g.OS.KernelRelease
	}
	if g.Timezone != nil {
		v.Timezone = &tzJSON{Zone: g.Timezone.Zone, OffsetS: g.Timezone.Offset}
	}
	if g.Users != nil {
		v.Users = make([]userJSON, 0, len(g.Users))
		for _, u := range g.Users {
			v.Users = append(v.Users, userJSON{User: u.User, Domain: u.Domain, LoginTime: loginTime(u.LoginTime)})
		}
	}
	if g.Filesystems != nil {
		v.Filesystems = []fsJSON{}
		for _, f := range g.Filesystems {
			j := fsJSON{Mountpoint: f.Mountpoint, Type: f.Type}
			if f.UsedBytes != nil {
				j.UsedBytes = *f.UsedBytes
			}
			if f.TotalBytes != nil {
				j.TotalBytes = *f.TotalBytes
			}
			v.Filesystems = append(v.Filesystems, j)
		}
	}
	if g.Metrics.Disks != nil {
		v.Disks = make([]diskJSON, 0, len(g.Metrics.Disks))
		for _, d := range g.Metrics.Disks {
			v.Disks = append(v.Disks, toDiskJSON(d))
		}
	}
	m := g.Metrics
	if m.Load1.OK && m.Load5.OK && m.Load15.OK {
		v.Load = &loadJSON{Load1: round3(m.Load1.V), Load5: round3(m.Load5.V), Load15: round3(m.Load15.V), Derived: m.LoadDerived}
	}
	return v
}

// loginTime is a login time in seconds since the epoch; the zero time for
// one that cannot be a time (a guest's invention).
func loginTime(s float64) time.Time {
	if math.IsNaN(s) || s < 0 || s > 1e11 {
		return time.Time{}
	}
	sec, frac := math.Modf(s)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func toDiskJSON(d agentclient.DiskInfo) diskJSON {
	j := diskJSON{Name: d.Name, Partition: d.Partition, Dependencies: d.Dependencies, Alias: d.Alias}
	if j.Dependencies == nil {
		j.Dependencies = []string{}
	}
	if d.Address != nil {
		j.BusType, j.Serial = d.Address.BusType, d.Address.Serial
	}
	if s := d.Smart; s != nil && s.Type == "nvme" {
		j.Smart = &smartJSON{CriticalWarning: s.CriticalWarning, TemperatureC: float64(s.Temperature) - 273.15,
			AvailableSpare: s.AvailableSpare, PercentageUsed: s.PercentageUsed, MediaErrors: s.MediaErrorsLo,
			PowerOnHours: s.PowerOnHoursLo, UnsafeShutdowns: s.UnsafeShutdownsLo}
		j.Smart.TemperatureC = math.Round(j.Smart.TemperatureC*100) / 100
	}
	return j
}

func toSampleJSON(g *fleet.Guest) *RatesJSON {
	m := g.Metrics
	s := &RatesJSON{}
	rate := func(r fleet.Rate) *float64 {
		if !r.OK {
			return nil
		}
		v := round3(r.V)
		return &v
	}
	s.CPUBusyPct, s.IOWaitPct, s.StealPct = rate(m.CPUBusy), rate(m.IOWait), rate(m.Steal)
	s.DiskReadBps, s.DiskWriteBps = rate(m.DiskReadBps), rate(m.DiskWriteBps)
	s.DiskReadIOPS, s.DiskWriteIOPS = rate(m.DiskReadIOPS), rate(m.DiskWriteIOPS)
	s.NetRxBps, s.NetTxBps, s.NetErrsPerSec = rate(m.NetRxBps), rate(m.NetTxBps), rate(m.NetErrsPerSec)
	return s
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// sampleSpan is the time between a guest's last two metrics samples.
func sampleSpan(f *fleet.Fleet, name string) float64 {
	h := f.History(name)
	if len(h) < 2 {
		return 0
	}
	return round3(h[len(h)-1].At.Sub(h[len(h)-2].At).Seconds())
}

// statusMode is what --sample and --watch ask of status.
type statusMode struct {
	sample time.Duration // poll twice this far apart; 0: once
	watch  time.Duration // print every this often until interrupted; 0: once
}

// watchFlag is --watch: a flag that takes an optional duration
// (--watch, --watch=2s; a duration word right after it is taken too).
type watchFlag struct {
	set bool
	d   time.Duration
}

func (w *watchFlag) String() string {
	if w == nil || !w.set {
		return ""
	}
	return w.d.String()
}

func (w *watchFlag) IsBoolFlag() bool { return true }

func (w *watchFlag) Set(s string) error {
	switch s {
	case "true":
		w.set = true
		return nil
	case "false":
		w.set = false
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration after an = (such as =30s or =2m), or no value")
	}
	w.set, w.d = true, d
	return nil
}

// checkStatusMode validates --sample and --watch, taking a duration word
// after --watch off the selectors.
func checkStatusMode(sample time.Duration, w watchFlag, selectors []string) (statusMode, []string, error) {
	var m statusMode
	if sample != 0 && sample < minSample {
		return m, selectors, fmt.Errorf("--sample %v: at least %v (the agent's CPU counters tick in 10 ms)", sample, minSample)
	}
	m.sample = sample
	if !w.set {
		return m, selectors, nil
	}
	d := w.d
	if d == 0 && len(selectors) > 0 {
		if v, err := time.ParseDuration(selectors[0]); err == nil {
			d, selectors = v, selectors[1:]
		}
	}
	if d == 0 {
		d = 2 * time.Second
	}
	if d < minSample {
		return m, selectors, fmt.Errorf("--watch %v: at least %v", d, minSample)
	}
	m.watch = d
	return m, selectors, nil
}

// sleepCtx waits d or until ctx ends, reporting whether it waited it all.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// keepMetrics turns metrics on for a status that samples them even when the
// fleet file turned them off (metrics_interval = 0): --sample asks for them.
func keepMetrics(o *fleet.Options) {
	if o.MetricsInterval < 0 {
		o.MetricsInterval = 0 // the default
	}
}

// watchStatus prints the selected guests every m.watch until ctx ends: a
// table headed by the time, or one JSON array per line with --json. The
// rates are over the interval since the print before.
func (c *cli) watchStatus(ctx context.Context, f *fleet.Fleet, gs []*fleet.Guest, m statusMode, asJSON bool) int {
	want := names(gs)
	for first := true; ; first = false {
		if !first {
			if !sleepCtx(ctx, m.watch) {
				return exitOK // interrupted: the normal end of a watch
			}
			f.RefreshOnce(ctx, want)
			if ctx.Err() != nil {
				return exitOK
			}
		}
		now := pick(f.Snapshot().Guests, want)
		var err error
		if asJSON {
			err = c.writeStatusJSONLine(c.stdout, f, now)
		} else {
			fmt.Fprintf(c.stdout, "--- %s ---\n", time.Now().UTC().Format("2006-01-02 15:04:05Z"))
			writeMetricsTable(c.stdout, now)
			fmt.Fprintln(c.stdout)
		}
		if err != nil {
			c.errorf("%v", err)
			return exitFail
		}
	}
}

// addSample adds the rates of `status --sample` to sj when sampled is the
// fleet that sampled them (nil: status polled once).
func addSample(sj *statusJSON, sampled *fleet.Fleet, g *fleet.Guest) {
	if sampled == nil {
		return
	}
	sj.RatesJSON = toSampleJSON(g)
	sj.SampleS = sampleSpan(sampled, g.Name)
}

// writeStatusJSONLine is one --watch --json line: the array --json
// --sample prints, on one line.
func (c *cli) writeStatusJSONLine(w io.Writer, f *fleet.Fleet, gs []*fleet.Guest) error {
	out := make([]statusJSON, 0, len(gs))
	for _, g := range gs {
		sj := toStatusJSON(g)
		sj.OrphanFreeze = c.orphanOf(g)
		addSample(&sj, f, g)
		out = append(out, sj)
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(out); err != nil {
		return err
	}
	_, err := w.Write(present.SafeJSON(b.Bytes()))
	return err
}

// writeMetricsTable is the table of --sample and --watch: a guest's state,
// its CPU shares, load, disk and network rates, fullest filesystem, and why
// anything is missing.
func writeMetricsTable(w io.Writer, gs []*fleet.Guest) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tCPU%\tIOWAIT%\tSTEAL%\tLOAD\tDISK R/W\tNET RX/TX\tFS USED\tNOTE")
	for _, g := range gs {
		m := g.Metrics
		load := "-"
		if m.Load1.OK {
			load = fmt.Sprintf("%.2f", m.Load1.V)
			if m.LoadDerived {
				load += "~" // derived from CPU use
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s/%s\t%s/%s\t%s\t%s\n",
			present.Text(g.Name, nameCells), present.Text(string(g.State), freezeCells),
			pct(m.CPUBusy), pct(m.IOWait), pct(m.Steal), load,
			bps(m.DiskReadBps), bps(m.DiskWriteBps), bps(m.NetRxBps), bps(m.NetTxBps),
			fullest(m.Filesystems), present.Text(m.Note, errCells))
	}
	tw.Flush()
}

func pct(r fleet.Rate) string {
	if !r.OK {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.V)
}

// bps writes bytes per second in binary units: "0", "12K", "3.4M".
func bps(r fleet.Rate) string {
	if !r.OK {
		return "-"
	}
	v := r.V
	for _, u := range []string{"", "K", "M", "G", "T"} {
		if v < 1024 || u == "T" {
			if v < 10 && u != "" {
				return fmt.Sprintf("%.1f%s", v, u)
			}
			return fmt.Sprintf("%.0f%s", v, u)
		}
		v /= 1024
	}
	return "-"
}

// fullest names the fullest filesystem: "97% /var".
func fullest(fs []fleet.FSUsage) string {
	best, bestPct := "", -1.0
	for _, f := range fs {
		if f.TotalBytes == 0 {
			continue
		}
		if p := 100 * float64(f.UsedBytes) / float64(f.TotalBytes); p > bestPct {
			best, bestPct = f.Mountpoint, p
		}
	}
	if bestPct < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%% %s", bestPct, present.Text(best, 32))
}
