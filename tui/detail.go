package tui

import (
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/tui/present"
)

var tabNames = []string{"Overview", "Interfaces", "vCPUs", "Filesystems", "Log", "CPU", "Disk", "Net", "Latency", "Disks", "Routes"}

const (
	tabOverview = iota
	tabInterfaces
	tabVCPUs
	tabFilesystems
	tabLog
	// The metrics tabs (detail_metrics.go): series over the last minutes.
	tabCPU
	tabDisk
	tabNet
	tabLatency
	tabDisks
	tabRoutes
)

func tabLabel(i int, name string) string { return strconv.Itoa(i+1) + " " + name }

// tabBarGuestCells is what the tab bar keeps for the guest's name.
const tabBarGuestCells = 24

// tabLabels are the tab bar's labels, drawn and clicked alike. When all of
// them would leave too little room for the guest's name, the tabs other
// than the current one show only their number.
func (m *Model) tabLabels() []string {
	out := make([]string, len(tabNames))
	w := 0
	for i, name := range tabNames {
		out[i] = tabLabel(i, name)
		w += present.Width(out[i]) + 1
	}
	if w+tabBarGuestCells <= m.width {
		return out
	}
	for i := range out {
		if i != m.tab {
			out[i] = strconv.Itoa(i + 1)
		}
	}
	return out
}

// detailLines is the current tab's content for g.
func (m *Model) detailLines(g *fleet.Guest) []string {
	if g == nil {
		if gi := m.tbl.groupAt(m.tbl.cursor); gi >= 0 {
			return m.groupDetail(gi) // group.go: the cursor is on a header
		}
		return []string{m.st.Muted.Render("no guest under the cursor")}
	}
	switch m.tab {
	case tabOverview:
		return m.overviewLines(g)
	case tabInterfaces:
		return interfaceLines(g)
	case tabVCPUs:
		return vcpuLines(g)
	case tabFilesystems:
		return m.filesystemLines(g)
	case tabLog:
		return m.logLines(g)
	case tabCPU, tabDisk, tabNet, tabLatency:
		return m.metricsLines(g)
	case tabDisks:
		return m.disksLines(g)
	case tabRoutes:
		return m.routesLines(g)
	}
	return nil
}

// scrollDetail moves the detail pane by delta lines within its content.
func (m *Model) scrollDetail(delta int) {
	n := len(m.detailLines(m.cursorGuest()))
	m.detailScroll = max(min(m.detailScroll+delta, n-m.detailViewRows()), 0)
}

// renderDetail draws the tab bar and n lines of the current tab for the guest
// under the cursor.
func (m *Model) renderDetail(n int) string {
	var bar strings.Builder
	for i, label := range m.tabLabels() {
		if i > 0 {
			bar.WriteByte(' ')
		}
		st := m.st.TabIdle
		if i == m.tab {
			st = m.st.TabActive
		}
		bar.WriteString(st.Render(label))
	}
	g := m.cursorGuest()
	if g != nil {
		bar.WriteString(m.st.Muted.Render("  ─ ") + m.st.State(string(g.State)).Render(present.Text(g.Name, m.width)))
	}
	lines := m.detailLines(g)
	scroll := m.detailScroll
	if scroll > len(lines)-n {
		scroll = max(len(lines)-n, 0)
	}
	var b strings.Builder
	b.WriteString(fit(bar.String(), m.width, false))
	for i := 0; i < n; i++ {
		b.WriteByte('\n')
		if j := scroll + i; j < len(lines) {
			b.WriteString(fit(lines[j], m.width, false))
		} else {
			b.WriteString(strings.Repeat(" ", m.width))
		}
	}
	return b.String()
}

func kv(k, v string) string { return fmt.Sprintf("%-12s %s", k, v) }

// maxUsers bounds the users the overview names: a guest may report thousands.
const maxUsers = 8

// overviewLines: every string from the guest, its host or the fleet file
// goes through present.Text (w cells at most) before it is styled.
func (m *Model) overviewLines(g *fleet.Guest) []string {
	now := m.now()
	w := max(m.width, 1)
	txt := func(s string) string { return present.Text(s, w) }
	state := string(g.State)
	if !g.Since.IsZero() {
		state += " for " + fmtDur(now.Sub(g.Since).Round(time.Second))
	}
	lines := []string{kv("State", m.st.State(string(g.State)).Render(state))}
	lines = append(lines, m.errorLines(g)...)
	lines = append(lines, domainLines(m, g, now)...)
	host := g.Host
	if host == "" {
		host = "-"
	}
	if g.Address != "" {
		lines = append(lines, kv("Address", txt(g.Address)+"  (host "+txt(host)+")"))
	}
	if len(g.Tags) > 0 {
		lines = append(lines, kv("Tags", txt(strings.Join(g.Tags, ", "))))
	}
	if g.OS != nil {
		// The machine follows the name; alone (a guest that reports only
		// its kernel) it would read as the OS: the kernel release names it.
		lines = append(lines, kv("OS", strings.TrimSpace(txt(present.OSLabel(g))+"  "+txt(g.OS.Machine))))
		if k := strings.TrimSpace(g.OS.KernelRelease + " " + g.OS.KernelVersion); k != "" {
			lines = append(lines, kv("Kernel", txt(k)))
		}
	}
	if g.Hostname != "" {
		lines = append(lines, kv("Hostname", txt(g.Hostname)))
	}
	if g.Timezone != nil {
		off := g.Timezone.Offset
		sign := "+"
		if off < 0 {
			sign, off = "-", -off
		}
		lines = append(lines, kv("Timezone", fmt.Sprintf("%s (UTC%s%02d:%02d)", txt(g.Timezone.Zone), sign, off/3600, off%3600/60)))
	}
	if len(g.Users) > 0 {
		us := make([]string, 0, min(len(g.Users), maxUsers)+1)
		for _, u := range g.Users[:min(len(g.Users), maxUsers)] {
			name := txt(u.User)
			if u.Domain != "" {
				name = txt(u.Domain) + `\` + name
			}
			us = append(us, name+" since "+time.Unix(int64(u.LoginTime), 0).UTC().Format("2006-01-02 15:04"))
		}
		if n := len(g.Users) - maxUsers; n > 0 {
			us = append(us, fmt.Sprintf("and %d more", n))
		}
		lines = append(lines, kv("Users", strings.Join(us, ", ")))
	}
	agent := g.AgentVersion
	if agent == "" {
		agent = "?"
	}
	rtt := "–" // a silent guest has answered no round trip: not "0s"
	if g.RTT != 0 {
		rtt = fmtDur(g.RTT)
	}
	poll := fmt.Sprintf("%s  rtt %s", txt(agent), rtt)
	if g.SkewKnown {
		poll += "  clock skew " + fmtSkew(g.Skew)
	}
	poll += fmt.Sprintf("  late %d  missed %d", g.Late, g.Missed)
	lines = append(lines, kv("Agent", poll))
	if hv := present.HostView(g, now); hv != "" {
		lines = append(lines, kv("Host view", hv)) // what its libvirt host sees, beside the agent's account
	}
	if len(g.Commands) > 0 {
		lines = append(lines, "")
		lines = append(lines, m.capabilityLines(g)...)
	}
	return lines
}

// errorLines is the guest's whole error, wrapped under its label (the
// table's cell has only present.ErrBrief): at most maxErrLines lines.
func (m *Model) errorLines(g *fleet.Guest) []string {
	if g.Err == "" {
		return nil
	}
	indent := strings.Repeat(" ", present.Width(kv("", "")))
	var out []string
	for i, l := range present.Wrap(g.Err, max(m.width-len(indent), 20), maxErrLines) {
		if i == 0 {
			out = append(out, kv("Error", m.st.Error.Render(l)))
		} else {
			out = append(out, indent+m.st.Error.Render(l))
		}
	}
	return out
}

// maxErrLines bounds an error in the detail pane: a guest's agent error
// (its own words) may be long.
const maxErrLines = 6

// maxCapName bounds a command name in the capabilities list.
const maxCapName = 40

// capabilityLines lays out the agent's commands in columns; disabled ones
// are greyed and flagged.
func (m *Model) capabilityLines(g *fleet.Guest) []string {
	cmds := make([]string, 0, len(g.Commands))
	disabled := map[string]bool{}
	for _, c := range g.Commands {
		cmds = append(cmds, c.Name)
		if !c.Enabled {
			disabled[c.Name] = true
		}
	}
	sort.Strings(cmds)
	head := fmt.Sprintf("Capabilities (%d, %d disabled: ✗)", len(cmds), len(disabled))
	lines := []string{m.st.Header.Render(head)}
	// Columns as wide as the longest name (the agent names its commands:
	// guest text, so at most maxCapName cells), so that no name is cut: a
	// "(disabled)" after each once cut guest-get-memory-block-info.
	names := make([]string, len(cmds))
	longest := 0
	for i, c := range cmds {
		names[i] = present.Text(c, maxCapName)
		longest = max(longest, present.Width(names[i]))
	}
	cw := min(longest+4, max(m.width-2, 8)) // "✓ ", the name, two blanks
	per := max((m.width-2)/cw, 1)
	var row strings.Builder
	for i, c := range cmds {
		label := "✓ " + names[i]
		st := m.st.OK
		if disabled[c] {
			label = "✗ " + names[i]
			st = m.st.Disabled
		}
		// One cell kept blank, so a cut label does not run into the next column.
		row.WriteString(st.Render(fit(label, cw-1, false)) + " ")
		if (i+1)%per == 0 || i == len(cmds)-1 {
			lines = append(lines, "  "+row.String())
			row.Reset()
		}
	}
	return lines
}

// interfaceLines: names and MACs are guest text, escaped and cut to their
// column; addresses are shown as parsed (present.Addr marks what is not one).
func interfaceLines(g *fleet.Guest) []string {
	if len(g.Interfaces) == 0 {
		return []string{"no interfaces reported"}
	}
	lines := []string{fmt.Sprintf("%-10s %-17s %-36s %14s %14s %s", "NAME", "MAC", "ADDRESSES", "RX", "TX", "ERR/DROP")}
	for _, in := range g.Interfaces {
		var addrs []string
		for _, a := range in.IPAddresses {
			addrs = append(addrs, present.Addr(a, 40))
		}
		rx, tx, errs := "", "", ""
		if s := in.Statistics; s != nil {
			rx = size(s.RxBytes) + "/" + strconv.FormatUint(s.RxPackets, 10) + "p"
			tx = size(s.TxBytes) + "/" + strconv.FormatUint(s.TxPackets, 10) + "p"
			errs = fmt.Sprintf("%d/%d", s.RxErrs+s.TxErrs, s.RxDropped+s.TxDropped)
		}
		first := ""
		if len(addrs) > 0 {
			first = addrs[0]
		}
		// Padded like the header but cut only when absurd: a long name
		// ("Loopback Pseudo-Interface 1") pushes the columns, as before.
		lines = append(lines, fmt.Sprintf("%s %s %-36s %14s %14s %s", padText(in.Name, 10, 32), padText(in.HardwareAddress, 17, 32), first, rx, tx, errs))
		for _, a := range addrs[min(1, len(addrs)):] {
			lines = append(lines, fmt.Sprintf("%-10s %-17s %s", "", "", a))
		}
	}
	return lines
}

func vcpuLines(g *fleet.Guest) []string {
	if len(g.VCPUs) == 0 {
		return []string{"no vCPUs reported"}
	}
	on, total := present.VCPUCounts(g)
	lines := []string{fmt.Sprintf("%d of %d online", on, total), fmt.Sprintf("%-6s %-8s %s", "CPU", "STATE", "CAN OFFLINE")}
	for _, c := range g.VCPUs {
		st := "offline"
		if c.Online {
			st = "online"
		}
		can := "?"
		if c.CanOffline != nil {
			can = "no"
			if *c.CanOffline {
				can = "yes"
			}
		}
		lines = append(lines, fmt.Sprintf("%-6d %-8s %s", c.LogicalID, st, can))
	}
	return lines
}

func (m *Model) filesystemLines(g *fleet.Guest) []string {
	fr := present.Text(string(g.Freeze), 16)
	if fr == "" {
		fr = "unknown"
	}
	if g.FrozenByUs {
		fr += " by guestdeck"
		if !g.ThawAt.IsZero() {
			fr += ", automatic thaw in " + present.Countdown(g.ThawAt.Sub(m.now()))
			if m.keys.Thaw.Enabled() {
				fr += " (" + m.keys.Thaw.Help().Key + " thaws now)"
			}
		}
		fr = m.st.State(string(fleet.Frozen)).Render(fr)
	}
	lines := []string{kv("Freeze", fr)}
	if r := g.FrozenBy; r != nil {
		for _, l := range m.frozenByText(r) {
			lines = append(lines, kv("", l))
		}
	}
	if len(g.Filesystems) == 0 {
		return append(lines, "no filesystems reported")
	}
	lines = append(lines, fmt.Sprintf("%-20s %-8s %-12s %10s %10s %5s", "MOUNT", "TYPE", "DEVICE", "USED", "SIZE", "USE%"))
	for _, f := range g.Filesystems {
		used, total, pct := "", "", ""
		if f.UsedBytes != nil {
			used = size(*f.UsedBytes)
		}
		if f.TotalBytes != nil {
			total = size(*f.TotalBytes)
			// The guest's counts: used*100 would wrap near 2^64, and
			// used above the size is no percentage.
			if u, s := f.UsedBytes, *f.TotalBytes; u != nil && s > 0 && *u <= s {
				hi, lo := bits.Mul64(*u, 100)
				q, _ := bits.Div64(hi, lo, s) // hi < s: u <= s
				pct = strconv.FormatUint(q, 10) + "%"
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %10s %10s %5s", padText(f.Mountpoint, 20, 64), padText(f.Type, 8, 16),
			padText(f.Name, 12, 64), used, total, pct))
	}
	return lines
}

func (m *Model) logLines(g *fleet.Guest) []string {
	if g.Log.Len() == 0 {
		return []string{"no commands logged yet"}
	}
	var lines []string
	for _, e := range g.Log.All() {
		// The reply is the guest's; the request can hold an operator's path.
		line := fmt.Sprintf("%s %-26s %7s %s → %s", e.At.Format("15:04:05.000"), present.Text(e.Command, 40), fmtDur(e.Duration),
			present.Text(e.Request, m.width), present.Text(e.Reply, m.width))
		if e.Err {
			line = m.st.Error.Render(line)
		}
		lines = append(lines, line)
	}
	return lines
}

// padText is guest text escaped and cut at most cells, padded to at least
// w: a column that a long value pushes rather than hides.
func padText(s string, w, most int) string {
	t := present.Text(s, most)
	return present.Pad(t, max(w, present.Width(t)), false)
}

// size is a byte count as present.Size writes it.
func size(n uint64) string { return present.Size(int64(min(n, math.MaxInt64))) }

// dataLines is what a read returned, as shown under its guest: at most 8
// lines, each escaped and cut (present.Text), and an ellipsis. Only those
// lines are looked at, however much was read.
func dataLines(r fleet.Result) []string {
	if len(r.Data) == 0 {
		return nil
	}
	var out []string
	rest := strings.TrimRight(string(r.Data), "\n")
	for i := 0; ; i++ {
		if i == 8 {
			out = append(out, "      …")
			break
		}
		line, more, found := strings.Cut(rest, "\n")
		out = append(out, "      "+present.Text(line, maxDataCells))
		if !found {
			break
		}
		rest = more
	}
	return out
}

// maxDataCells cuts a line of read data in the event log.
const maxDataCells = 512

// eventLineCount is how many lines e takes in the event log.
func eventLineCount(e event) int {
	n := 1 + len(e.results)
	for _, r := range e.results {
		n += len(dataLines(r))
	}
	return n
}

func (m *Model) eventLinesTotal() int {
	n := 0
	for _, e := range m.events {
		n += e.lines
	}
	return n
}

// renderEvents is the event log: finished actions, newest first, with each
// guest's result, the selected line reversed. Only the lines on screen are
// formatted, however many guests an action touched.
func (m *Model) renderEvents(w, h int) string {
	lines := []string{m.st.Title.Render("Event log") + m.st.Muted.Render("  (↑/↓ select, enter opens an entry whole, e or esc closes)")}
	if len(m.events) == 0 {
		lines = append(lines, m.st.Muted.Render("no actions yet"))
	}
	skip := min(m.eventScroll, max(m.eventLinesTotal()-(h-1), 0))
	idx := skip
	add := func(f func() string) bool {
		if skip > 0 {
			skip--
			return true
		}
		if len(lines) >= h {
			return false
		}
		line := f()
		if idx == m.eventSel {
			line = m.selectLine(line, w)
		}
		idx++
		lines = append(lines, line)
		return true
	}
	for _, e := range m.events {
		if skip >= e.lines {
			skip -= e.lines
			continue
		}
		if !add(func() string { return m.eventHead(e) }) {
			break
		}
		for _, r := range e.results {
			if !add(func() string { return m.eventResult(r, e) }) {
				break
			}
			for _, dl := range dataLines(r) {
				if !add(func() string { return dl }) {
					break
				}
			}
		}
	}
	return place(w, h, strings.Join(lines, "\n"))
}

func (m *Model) eventHead(e event) string {
	if n := e.note; n != nil {
		w := max(m.width, 1)
		line := e.at.Format("15:04:05") + "  " + present.Text(n.Guest, nameCells) + "  " + present.Text(n.Text, w)
		if n.Err {
			return m.st.Error.Render(line)
		}
		return line
	}
	ok, _, skipped := tally(e.results)
	act := present.Text(actionString(e.action), m.width)
	head := fmt.Sprintf("%s  %s  %s", e.at.Format("15:04:05"), act, outcomeText(e.results))
	if e.stopped {
		head += "  (stopped)"
	}
	if e.dry {
		head = fmt.Sprintf("%s  dry run: %s  %d would be sent it, %d skipped; nothing was sent", e.at.Format("15:04:05"), act, ok, skipped)
	}
	if e.took > 0 {
		head += "  in " + fmtDur(e.took)
	}
	return m.st.Header.Render(head)
}

// eventResult is one guest's line: its mark, its name padded to the
// event's longest, how long it took (a column of its own where any result
// of the event has a time, blank where the result says its own timing: a
// ping's "pong in 3.6ms"), then the result or the error. Name, result and
// error are escaped; the line is cut at the screen's edge (enter opens it
// whole).
func (m *Model) eventResult(r fleet.Result, e event) string {
	w := max(m.width, 1)
	name := padText(r.Guest, e.nameW, maxEventName)
	if e.timed {
		name += fmt.Sprintf(" %7s", resultTook(r))
	}
	switch {
	case r.Skipped:
		return m.st.Disabled.Render("  - " + name + "  skipped: " + present.Text(r.Err, w))
	case r.OK:
		line := m.st.OK.Render("  ✓ "+name) + "  " + present.Text(r.Result, w)
		if !r.ThawAt.IsZero() {
			line += "; automatic thaw at " + r.ThawAt.Format("15:04:05")
		}
		return line
	}
	return m.st.Error.Render("  ✗ " + name + "  " + present.Text(r.Err, w))
}

// resultTook is the time column of a result's line: "" for a skip (nothing
// was sent) and for a ping, whose result names its round trip.
func resultTook(r fleet.Result) string {
	if r.Duration <= 0 || r.RTT != 0 || r.Skipped {
		return ""
	}
	return fmtDur(r.Duration)
}

// frozenByText describes another guestdeck's freeze of the guest, in
// lines short enough for the detail pane.
func (m *Model) frozenByText(r *fleet.FreezeRecord) []string {
	who := fmt.Sprintf("guestdeck pid %d (%s)", r.PID, present.Text(r.Who, nameCells))
	if !r.Orphan {
		s := "frozen by " + who + " since " + r.Since.Format("15:04:05")
		if !r.Until.IsZero() {
			s += ", thaw promised by " + r.Until.Format("15:04:05")
		}
		return []string{s}
	}
	first := "left FROZEN by " + who + ", which is no longer running, since " + r.Since.Format("15:04:05")
	var then string
	switch {
	case r.Until.IsZero():
		then = "it promised no thaw: thaw it yourself"
	case r.Until.After(m.now()):
		then = "its promised thaw is in " + present.Countdown(r.Until.Sub(m.now())) + ", then this dashboard thaws it"
	default:
		then = "its promised thaw has passed: this dashboard thaws it"
	}
	return []string{m.st.Error.Render(first), m.st.Error.Render(then)}
}
