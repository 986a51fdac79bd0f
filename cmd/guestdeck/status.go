package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

// selectPolled picks the guests the selectors name and polls them once. A
// state: selector is about live state, so then the whole fleet is polled
// first and the selection made afterwards.
func selectPolled(ctx context.Context, f *fleet.Fleet, selectors []string) ([]*fleet.Guest, error) {
	byState := false
	for _, s := range selectors {
		if strings.HasPrefix(s, "state:") {
			byState = true
		}
	}
	if byState {
		// Names are checked before any guest is polled: a bad or ambiguous
		// one sends nothing.
		if _, err := fleet.Select(f.Snapshot().Guests, selectors); err != nil {
			return nil, err
		}
		f.RefreshOnce(ctx, names(f.Snapshot().Guests))
		return fleet.Select(f.Snapshot().Guests, selectors)
	}
	sel, err := fleet.Select(f.Snapshot().Guests, selectors)
	if err != nil {
		return nil, err
	}
	want := names(sel)
	f.RefreshOnce(ctx, want)
	return pick(f.Snapshot().Guests, want), nil
}

func names(gs []*fleet.Guest) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Name
	}
	return out
}

// pick returns the guests named in want, in the snapshot's order.
func pick(gs []*fleet.Guest, want []string) []*fleet.Guest {
	set := make(map[string]bool, len(want))
	for _, n := range want {
		set[n] = true
	}
	var out []*fleet.Guest
	for _, g := range gs {
		if set[g.Name] {
			out = append(out, g)
		}
	}
	return out
}

func (c *cli) status(ctx context.Context, args []string) int {
	fs := c.flags("status")
	asJSON := fs.Bool("json", false, "print a JSON array, one object per guest")
	withHosts := fs.Bool("hosts", false, `with --json: print {"guests": [...], "hosts": [...]}, the libvirt hosts' states beside the guests`)
	sample := fs.Duration("sample", 0, "poll twice, `D` apart, and add the CPU, disk and network rates over D")
	var watch watchFlag
	fs.Var(&watch, "watch", "print a fresh table (with --json: a JSON line) every D (--watch=D, default 2s) until interrupted")
	ifaces := fs.Bool("interfaces", false, "print one row per interface address, as virsh domifaddr does (guestdeck domifaddr)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	mode, selectors, err := checkStatusMode(*sample, watch, fs.Args())
	if err != nil {
		c.errorf("status: %v", err)
		return exitUsage
	}
	if *ifaces && (*asJSON || mode.sample > 0 || mode.watch > 0) {
		c.errorf("status: --interfaces is a table; --json already lists each guest's interfaces, and --sample and --watch show rates")
		return exitUsage
	}
	if len(selectors) == 0 {
		selectors = []string{"all"}
	}
	if mode.watch == 0 {
		gcPercent(statusGCPercent) // a heap that only grows (dashboard.go)
	}
	var sampled *fleet.Fleet // set when the rates are to be shown
	// One poll gives no rate: without --sample or --watch the counters
	// are not asked (at 10,000 guests they tripled status's time).
	// Nor are the routes, which only the dashboard shows.
	// Nor is a connection kept once its poll is done: none is used twice.
	// Nor a command log kept, which nothing here shows.
	tweak := func(o *fleet.Options) { o.NoCounters, o.NoRoutes, o.NoKeep, o.NoLog = true, true, true, true }
	if mode.sample > 0 || mode.watch > 0 {
		tweak = keepMetrics
	}
	o, code := c.openFleet(ctx, false, tweak)
	if o == nil {
		return code
	}
	defer o.close()
	gs, err := selectPolled(ctx, o.fleet, selectors)
	if err != nil {
		c.errorf("%v", err)
		return exitUsage
	}
	if mode.watch > 0 {
		return c.watchStatus(ctx, o.fleet, gs, mode, *asJSON)
	}
	if mode.sample > 0 {
		if !sleepCtx(ctx, mode.sample) {
			return exitFail
		}
		o.fleet.RefreshOnce(ctx, names(gs))
		gs, sampled = pick(o.fleet.Snapshot().Guests, names(gs)), o.fleet
	}
	sources := o.fleet.Sources()
	if len(gs) == 0 {
		// Still exit 0 with an empty table or []: the fleet was polled, and
		// a script asking for state:frozen wants "none", not a failure
		// (a host that is not up still makes it exit 1, below).
		if why := hostSelectorsWhy(selectors, sources, time.Now()); why != "" {
			c.errorf("status: %s", why)
		} else {
			c.errorf("status: the selectors %s match no guest", strings.Join(selectors, " "))
		}
	}
	if err := o.fleet.LedgerErr(); err != nil {
		c.errorf("warning: %v", err)
	}
	code = exitOK
	for _, st := range sources {
		if st.Phase != fleet.SourceUp {
			// Its guests are missing or stale: not a picture to trust.
			c.errorf("status: %s host %s is %s", st.Kind, present.Text(st.Name, hostCells), st.Phase)
			code = exitFail
		}
	}
	if *asJSON {
		var err error
		if *withHosts {
			err = c.writeStatusHostsJSON(c.stdout, gs, sources, sampled)
		} else {
			err = c.writeStatusJSON(c.stdout, gs, sampled)
		}
		if err != nil {
			c.errorf("%v", err)
			return exitFail
		}
		return code
	}
	if *ifaces {
		writeInterfaceTable(c.stdout, gs)
		return code
	}
	writeStatusTable(c.stdout, gs)
	if sampled != nil {
		fmt.Fprintln(c.stdout)
		writeMetricsTable(c.stdout, gs)
	}
	writeSourceLines(c.stdout, sources, time.Now())
	c.writeLedgerLines(c.stdout, gs)
	return code
}

// hostSelectorsWhy says why host:NAME selectors matched no guest: the host
// is not up (so its guests are not known yet), it is up with no guest that
// has an agent channel, or there is no such host. "" when no selector is
// host:NAME.
func hostSelectorsWhy(selectors []string, sources []fleet.SourceState, now time.Time) string {
	var why []string
	for _, sel := range selectors {
		name, ok := strings.CutPrefix(sel, "host:")
		if !ok {
			continue
		}
		i := slices.IndexFunc(sources, func(st fleet.SourceState) bool { return st.Name == name })
		if i < 0 {
			names := make([]string, len(sources))
			for j, st := range sources {
				names[j] = present.Text(st.Name, hostCells)
			}
			list := "the fleet file has none"
			if len(names) > 0 {
				list = "hosts: " + strings.Join(names, ", ")
			}
			why = append(why, fmt.Sprintf("%s: no host named %s (%s)", present.Text(sel, nameCells), present.Text(name, hostCells), list))
			continue
		}
		st := sources[i]
		line := fmt.Sprintf("%s: %s host %s is %s", present.Text(sel, nameCells), st.Kind, present.Text(st.Name, hostCells), st.Phase)
		switch {
		case st.Phase == fleet.SourceUp:
			line += " and has no domain with a guest-agent channel"
		default:
			if st.Err != nil {
				line += " (" + present.Text(st.Err.Error(), errCells) + ")"
			}
			if !st.Retry.IsZero() {
				line += fmt.Sprintf("; next attempt in %s", roundDur(max(st.Retry.Sub(now), 0)))
			}
			line += ": its guests are not known until it answers"
		}
		why = append(why, line)
	}
	return strings.Join(why, "; ")
}

// hostJSON is one libvirt host (a discovery source) in `status --json
// --hosts`. The keys are a contract with scripts, as statusJSON's are.
type hostJSON struct {
	Name     string     `json:"name"`
	Kind     string     `json:"kind"`     // "libvirt"
	Endpoint string     `json:"endpoint"` // the URI as the fleet file wrote it
	State    string     `json:"state"`    // "connecting", "up", "unreachable", "reconnecting"
	Since    time.Time  `json:"since"`
	Guests   int        `json:"guests"`
	Error    string     `json:"error"`    // the last failure; "" when up
	RetryAt  *time.Time `json:"retry_at"` // unreachable: the next attempt; else null
}

func toHostJSON(st fleet.SourceState) hostJSON {
	h := hostJSON{Name: st.Name, Kind: st.Kind, Endpoint: st.Endpoint, State: string(st.Phase), Since: st.Since, Guests: st.Guests}
	if st.Err != nil {
		h.Error = st.Err.Error()
	}
	if !st.Retry.IsZero() {
		r := st.Retry
		h.RetryAt = &r
	}
	return h
}

// writeStatusHostsJSON is `status --json --hosts`: the guests array
// `--json` prints, and the hosts beside it.
func (c *cli) writeStatusHostsJSON(w io.Writer, gs []*fleet.Guest, sources []fleet.SourceState, sampled *fleet.Fleet) error {
	out := struct {
		Guests []statusJSON `json:"guests"`
		Hosts  []hostJSON   `json:"hosts"`
	}{Guests: make([]statusJSON, 0, len(gs)), Hosts: make([]hostJSON, 0, len(sources))}
	for _, g := range gs {
		sj := toStatusJSON(g)
		sj.OrphanFreeze = c.orphanOf(g)
		addSample(&sj, sampled, g)
		out.Guests = append(out.Guests, sj)
	}
	for _, st := range sources {
		out.Hosts = append(out.Hosts, toHostJSON(st))
	}
	return writeJSON(w, out)
}

// writeSourceLines follows the status table: one line per libvirt host,
// its state and guest count, and for one that is down the error and the
// next attempt. A remote daemon writes the error: escaped like guest text.
func writeSourceLines(w io.Writer, sources []fleet.SourceState, now time.Time) {
	if len(sources) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, st := range sources {
		line := fmt.Sprintf("%s host %s (%s): %s, %s", st.Kind, present.Text(st.Name, hostCells),
			present.Text(st.Endpoint, addrCells), st.Phase, present.Plural(st.Guests, "guest"))
		if st.Phase != fleet.SourceUp && st.Err != nil {
			line += ": " + present.Text(st.Err.Error(), errCells)
		}
		if !st.Retry.IsZero() {
			line += fmt.Sprintf("; next attempt in %s", roundDur(max(st.Retry.Sub(now), 0)))
		}
		fmt.Fprintln(w, line)
	}
}

// statusJSON is one guest in `status --json`. The keys are a contract with
// scripts: add, never rename.
type statusJSON struct {
	Name         string     `json:"name"`
	Host         string     `json:"host"`
	Address      string     `json:"address"`
	UUID         string     `json:"uuid"` // a libvirt domain's; "" for other guests
	State        string     `json:"state"`
	Error        string     `json:"error"`
	AgentVersion string     `json:"agent_version"`
	OS           string     `json:"os"`
	Hostname     string     `json:"hostname"`
	VCPUs        *vcpusJSON `json:"vcpus"` // null until the agent has said
	// Interfaces is null until the agent has answered a live poll: an
	// empty list would read as "no interfaces".
	Interfaces []ifaceJSON `json:"interfaces"`
	TimeSkewMS *float64    `json:"time_skew_ms"` // null when not measured
	Freeze     string      `json:"freeze"`       // "thawed", "frozen", "" when unknown
	RTTMS      float64     `json:"rtt_ms"`
	Tags       []string    `json:"tags"`
	// DomainState is libvirt's view of the guest's domain: "running",
	// "booting", "paused", "pmsuspended", "shutting-down", "stopped",
	// "crashed"; "" when unknown (host unreachable) or not a libvirt guest.
	DomainState string `json:"domain_state"`
	// Stale: the agent does not answer now, and the values above are from
	// its last answer.
	Stale bool `json:"stale"`
	// OrphanFreeze: a guestdeck that is no longer running froze the guest
	// and never thawed it (from the ledger); null otherwise.
	OrphanFreeze *orphanJSON `json:"orphan_freeze"`
	// The guest's own view: kernel, timezone, users, filesystems, disks,
	// load and, with --sample, rates (status_metrics.go).
	guestViewJSON
}

type vcpusJSON struct {
	Online int `json:"online"`
	Total  int `json:"total"`
}

type ifaceJSON struct {
	Name      string   `json:"name"`
	MAC       string   `json:"mac"`
	Addresses []string `json:"addresses"`
}

func toStatusJSON(g *fleet.Guest) statusJSON {
	s := statusJSON{
		Name: g.Name, Host: g.Host, Address: g.Address, UUID: g.UUID, State: string(g.State), Error: g.Err,
		AgentVersion: g.AgentVersion, Hostname: g.Hostname,
		Interfaces: make([]ifaceJSON, 0, len(g.Interfaces)), Freeze: present.FreezeState(g), RTTMS: ms(g.RTT), Tags: g.Tags,
		DomainState: string(g.DomainState), Stale: g.Stale(),
		guestViewJSON: toGuestViewJSON(g),
	}
	if s.Tags == nil {
		s.Tags = []string{}
	}
	if g.OS != nil {
		s.OS = present.OSName(g)
	}
	if on, total := present.VCPUCounts(g); total > 0 {
		s.VCPUs = &vcpusJSON{Online: on, Total: total}
	}
	if g.LastLive.IsZero() && len(g.Interfaces) == 0 {
		s.Interfaces = nil
	}
	for _, ifc := range g.Interfaces {
		j := ifaceJSON{Name: ifc.Name, MAC: ifc.HardwareAddress, Addresses: make([]string, 0, len(ifc.IPAddresses))}
		for _, a := range ifc.IPAddresses {
			j.Addresses = append(j.Addresses, jsonAddr(a))
		}
		s.Interfaces = append(s.Interfaces, j)
	}
	if g.SkewKnown {
		v := ms(g.Skew)
		s.TimeSkewMS = &v
	}
	return s
}

// orphanJSON is "orphan_freeze" in `status --json`.
type orphanJSON struct {
	Since       time.Time  `json:"since"`
	Until       *time.Time `json:"until"` // the thaw it promised; null when none (run --yes freeze)
	PID         int        `json:"pid"`
	Who         string     `json:"who"` // "run --hold", "run --yes freeze", "dashboard"
	ThawCommand string     `json:"thaw_command"`
}

func (c *cli) orphanOf(g *fleet.Guest) *orphanJSON {
	r := g.FrozenBy
	if r == nil || !r.Orphan {
		return nil
	}
	o := &orphanJSON{Since: r.Since, PID: r.PID, Who: r.Who, ThawCommand: c.thawCommand(g.Name)}
	if !r.Until.IsZero() {
		u := r.Until
		o.Until = &u
	}
	return o
}

// thawCommand is the command that thaws the guests with this fleet file,
// ready to paste into a shell: each name is one word (present.ShellArg),
// whatever a libvirt host called the domain, and not cut to a width.
func (c *cli) thawCommand(guests ...string) string {
	words := make([]string, len(guests))
	for i, g := range guests {
		words[i] = present.ShellArg(g)
	}
	return "guestdeck" + c.globalFlagsText() + " run thaw " + strings.Join(words, " ")
}

// writeLedgerLines follows the status table: each guest another guestdeck
// froze, loudest for those it left frozen when it went away.
func (c *cli) writeLedgerLines(w io.Writer, gs []*fleet.Guest) {
	first := true
	for _, g := range gs {
		r := g.FrozenBy
		if r == nil {
			continue
		}
		if first {
			fmt.Fprintln(w)
			first = false
		}
		promised := "no thaw was promised"
		if !r.Until.IsZero() {
			promised = "thaw promised by " + r.Until.Local().Format("2006-01-02 15:04:05")
			if late := time.Since(r.Until); late > 0 {
				promised += fmt.Sprintf(" (%s overdue)", late.Round(time.Second))
			}
		}
		since := r.Since.Local().Format("2006-01-02 15:04:05")
		name := present.Text(g.Name, nameCells)
		if r.Orphan {
			fmt.Fprintf(w, "!!! %s: left FROZEN by guestdeck pid %d (%s), which is no longer running; frozen since %s, %s\n",
				name, r.PID, present.Text(r.Who, agentCells), since, promised)
			fmt.Fprintf(w, "!!!   thaw it with: %s\n", present.Text(c.thawCommand(g.Name), maxLineCells))
			continue
		}
		fmt.Fprintf(w, "%s: frozen by guestdeck pid %d (%s), still running; frozen since %s, %s\n",
			name, r.PID, present.Text(r.Who, agentCells), since, promised)
	}
}

func (c *cli) writeStatusJSON(w io.Writer, gs []*fleet.Guest, sampled *fleet.Fleet) error {
	return writeJSONArray(w, len(gs), func(i int) any {
		sj := toStatusJSON(gs[i])
		sj.OrphanFreeze = c.orphanOf(gs[i])
		addSample(&sj, sampled, gs[i])
		return sj
	})
}

// jsonChunk is how many elements writeJSONArray encodes at a time.
const jsonChunk = 256

// writeJSONArray writes the n values elem(0..n-1) exactly as writeJSON
// writes a slice of them, but encodes them a chunk at a time on every core
// and writes the chunks in order as they are done, a few ahead at most.
// At 10,000 guests the whole array, encoded on one core after the polls
// and held in memory twice (encoded and made safe), was a tenth of
// status's CPU, all of it after the last reply. elem must be safe to call
// from several goroutines.
func writeJSONArray(w io.Writer, n int, elem func(i int) any) error {
	if n == 0 {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	chunks := (n + jsonChunk - 1) / jsonChunk
	workers := min(runtime.GOMAXPROCS(0), chunks)
	type part struct {
		b   []byte
		err error
	}
	parts := make([]chan part, chunks)
	for k := range parts {
		parts[k] = make(chan part, 1)
	}
	// ahead bounds the chunks taken and not yet written. Chunks are taken
	// in order, so the one the writer waits for is always taken or free
	// to take.
	ahead := make(chan struct{}, 2*workers)
	stop := make(chan struct{})
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case ahead <- struct{}{}:
				case <-stop:
					return
				}
				k := int(next.Add(1) - 1)
				if k >= chunks {
					return
				}
				b, err := encodeChunk(k*jsonChunk, min(n, (k+1)*jsonChunk), n, elem)
				parts[k] <- part{b, err}
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	for k := range chunks {
		p := <-parts[k]
		<-ahead
		if p.err != nil {
			return p.err
		}
		if _, err := w.Write(p.b); err != nil {
			return err
		}
	}
	return nil
}

// maxChunkGuess bounds the room encodeChunk makes ahead for a chunk: twice
// a chunk of simulator guests (some 440 KB), so that a chunk of ordinary
// guests grows once.
const maxChunkGuess = 1 << 20

// encodeChunk is elements from..to-1 of an n-element array as writeJSON
// would lay them out (two-space indent), the brackets with the first and
// the last, made safe for a terminal (present.SafeJSON).
func encodeChunk(from, to, n int, elem func(i int) any) ([]byte, error) {
	var b []byte
	if from == 0 {
		b = append(b, "[\n"...)
	}
	// One encoder for the chunk: its buffer is reused element to element,
	// where json.Marshal handed each a copy. It writes what Marshal writes
	// (HTML escaped), and a newline.
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	for i := from; i < to; i++ {
		raw.Reset()
		if err := enc.Encode(elem(i)); err != nil {
			return nil, err
		}
		b = append(b, "  "...)
		b = appendIndented(b, bytes.TrimSuffix(raw.Bytes(), []byte("\n")), "  ", "  ")
		if i < n-1 {
			b = append(b, ",\n"...)
		} else {
			b = append(b, "\n]\n"...)
		}
		if i == from {
			// Room for the rest, at the first one's size and a bit, up to
			// maxChunkGuess: the first is a guest's element, as large as
			// its agent's replies make it (a 2 MiB interface list of
			// '<'s is 12 MB here), and the chunk's length times that was
			// gigabytes.
			b = slices.Grow(b, min((to-from-1)*len(b)*9/8, maxChunkGuess))
		}
	}
	return present.SafeJSON(b), nil
}

// appendIndented appends src, JSON as encoding/json writes it (compact:
// no space outside strings), indented byte for byte as json.Indent indents
// it. json.Indent runs its validating scanner over every byte, a function
// call each: at 10,000 guests that was a twelfth of status's CPU, for
// input Marshal has just written and checked. Here what lies between the
// punctuation is copied as it is, strings and numbers whole.
func appendIndented(dst, src []byte, prefix, indent string) []byte {
	// The newlines of the usual depths, as slices of one: "\n", prefix and
	// indents.
	var nlBuf [128]byte
	nl := append(append(append(nlBuf[:0], '\n'), prefix...), indent...)
	for len(nl)+len(indent) <= cap(nl) {
		nl = append(nl, indent...)
	}
	newline := func(dst []byte, depth int) []byte {
		depth = max(depth, 0) // only unbalanced input, which Marshal never writes
		if n := 1 + len(prefix) + depth*len(indent); n <= len(nl) {
			return append(dst, nl[:n]...)
		}
		return appendNewline(dst, prefix, indent, depth)
	}
	depth, run := 0, 0 // run: where the bytes not yet copied start
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '"':
			i = stringEnd(src, i) - 1
		case '{', '[':
			dst = append(dst, src[run:i+1]...)
			run = i + 1
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				// Empty: "{}" and "[]" stay on their line.
				dst = append(dst, src[i+1])
				i++
				run = i + 1
				continue
			}
			depth++
			dst = newline(dst, depth)
		case ',':
			dst = append(dst, src[run:i+1]...)
			run = i + 1
			dst = newline(dst, depth)
		case ':':
			dst = append(dst, src[run:i+1]...)
			dst = append(dst, ' ')
			run = i + 1
		case '}', ']':
			dst = append(dst, src[run:i]...)
			depth--
			dst = newline(dst, depth)
			dst = append(dst, c)
			run = i + 1
		}
	}
	return append(dst, src[run:]...)
}

// stringEnd is the index just past the JSON string that starts at src[i]
// (its opening quote); len(src) if it has no end. In valid JSON a
// backslash starts an escape whose next byte is never the closing quote,
// so skipping that byte is enough (the strings here are mostly short
// names: a loop beats bytes.IndexByte's call).
func stringEnd(src []byte, i int) int {
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(src)
}

func appendNewline(dst []byte, prefix, indent string, depth int) []byte {
	dst = append(dst, '\n')
	dst = append(dst, prefix...)
	for range depth {
		dst = append(dst, indent...)
	}
	return dst
}

// writeJSON writes v as indented JSON that decodes to the exact strings and
// is still safe to read on a terminal (present.SafeJSON).
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(present.SafeJSON(b.Bytes()))
	return err
}

// Widths (cells) at which the status table cuts what a guest says, so one
// guest with an 85 MB OS name cannot widen every row.
const (
	nameCells   = 48
	hostCells   = 32
	agentCells  = 24
	osCells     = 48
	addrCells   = 80
	freezeCells = 16
	errCells    = 200
)

func writeStatusTable(w io.Writer, gs []*fleet.Guest) {
	rows := make([][]string, 0, len(gs)+1)
	rows = append(rows, []string{"NAME", "HOST", "STATE", "AGENT", "OS", "ADDRESSES", "VCPUS", "SKEW", "FREEZE", "RTT", "ERROR"})
	for _, g := range gs {
		on, total := present.VCPUCounts(g)
		vc := "-"
		if total > 0 {
			vc = fmt.Sprintf("%d/%d", on, total)
		}
		skew := "-"
		if g.SkewKnown {
			skew = roundDur(g.Skew).String()
			if g.Skew >= 0 {
				skew = "+" + skew
			}
		}
		rtt := "-"
		if g.RTT > 0 {
			rtt = roundDur(g.RTT).String()
		}
		// Every string a guest (or a libvirt host) controls goes through
		// present.Text: escaped, one line, capped; present.Columns lines
		// them up by display cells.
		rows = append(rows, []string{
			present.Text(g.Name, nameCells), dash(present.Text(g.Host, hostCells)), present.Text(string(g.State), freezeCells),
			dash(present.Text(g.AgentVersion, agentCells)), dash(present.Text(present.OSLabel(g), osCells)),
			dash(present.Text(present.AddrList(g), addrCells)),
			vc, skew, dash(present.Text(present.FreezeState(g), freezeCells)), rtt, present.Text(g.Err, errCells)})
	}
	present.Columns(w, rows, 2)
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

func roundDur(d time.Duration) time.Duration {
	a := d
	if a < 0 {
		a = -a
	}
	switch {
	case a >= time.Second:
		return d.Round(100 * time.Millisecond)
	case a >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// jsonAddr is one address as status --json reports it: "ip/prefix", the
// address exactly as the guest said it (JSON keeps data). A prefix that
// cannot be one (the guest said 999, or -1) is left off rather than shown
// as a false one.
func jsonAddr(a agentclient.IPAddress) string {
	bits := 128
	if ip, err := netip.ParseAddr(a.Address); err == nil {
		bits = ip.BitLen()
	}
	if a.Prefix < 0 || a.Prefix > bits {
		return a.Address
	}
	return a.Address + "/" + strconv.Itoa(a.Prefix)
}

// writeInterfaceTable prints one row per interface address, as virsh
// domifaddr --source agent does: the guest and interface name and MAC on
// an interface's first row, "-" on the others; an interface without
// addresses gets a row of its own, and a guest whose interfaces are not
// known says why.
func writeInterfaceTable(w io.Writer, gs []*fleet.Guest) {
	// The guest names its interfaces and MACs: present.Columns lines
	// them up by display cells, as writeStatusTable does.
	rows := [][]string{{"GUEST", "INTERFACE", "MAC", "PROTOCOL", "ADDRESS"}}
	for _, g := range gs {
		name := present.Text(g.Name, nameCells)
		if len(g.Interfaces) == 0 {
			why := "no interfaces reported"
			if g.State != fleet.Ready {
				why = "not known: the guest is " + string(g.State)
			}
			rows = append(rows, []string{name, "-", "-", "-", why})
			continue
		}
		for _, ifc := range g.Interfaces {
			iname, mac := present.Text(ifc.Name, ifaceCells), present.Text(ifc.HardwareAddress, ifaceCells)
			if mac == "" {
				mac = "-"
			}
			if len(ifc.IPAddresses) == 0 {
				rows = append(rows, []string{name, iname, mac, "-", "-"})
				name = "-"
				continue
			}
			for _, ip := range ifc.IPAddresses {
				rows = append(rows, []string{name, iname, mac, present.Text(ip.Type, 8), present.Addr(ip, ifaceCells)})
				name, iname, mac = "-", "-", "-"
			}
			name = "-"
		}
	}
	present.Columns(w, rows, 2)
}

// ifaceCells caps an interface's name, MAC or unparsable address.
const ifaceCells = 40
