package sim

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// result is the agent's answer to one message.
type result struct {
	line      []byte // the reply line, newline included
	delimited bool   // prefix 0xFF (guest-sync-delimited)
	none      bool   // no reply (shutdown and suspend succeed silently)
	after     func() // runs after the (absent) reply, without the lock
}

// argType is a QAPI argument type, named as the agent's error texts name it.
type argType uint8

const (
	tInt argType = iota
	tStr
	tBool
	tStrList
	tStructList // list of objects described by field.sub
	tWhence     // integer or "set"/"cur"/"end"
)

type field struct {
	name string
	typ  argType
	opt  bool
	sub  []field
}

type args map[string]any

func (a args) int(k string, def int64) int64 {
	if v, ok := a[k].(int64); ok {
		return v
	}
	return def
}

func (a args) str(k, def string) string {
	if v, ok := a[k].(string); ok {
		return v
	}
	return def
}

func (a args) has(k string) bool { _, ok := a[k]; return ok }

// handler runs a command with the guest locked.
type handler func(g *Guest, a args) (any, *agentclient.Error)

type command struct {
	fields []field
	run    handler
}

// commands maps every command the simulator serves to its arguments and
// handler: the dispatch table, filled once by init (guest-info's handler
// reads the table itself) and only read after. Which of them a guest offers,
// and lists in guest-info, agentclient's command table decides (see
// offered); whether a command replies on success it decides too.
var commands map[string]command

// commandNames is what a default guest (qemu-ga 7.2.22) lists.
var commandNames []string

func init() {
	commands = dispatchTable()
	for name, c := range userCommands() { // users.go
		commands[name] = c
	}
	for name, c := range statsCommands() { // stats.go
		commands[name] = c
	}
	commandNames = offered("7.2.22")
}

func dispatchTable() map[string]command {
	syncCmd := command{fields: []field{{name: "id", typ: tInt}}, run: func(g *Guest, a args) (any, *agentclient.Error) { return a.int("id", 0), nil }}
	suspend := func(mode string) command {
		return command{run: func(g *Guest, _ args) (any, *agentclient.Error) { return g.cmdSuspend(mode) }}
	}
	return map[string]command{
		"guest-sync":           syncCmd,
		"guest-sync-delimited": syncCmd,
		"guest-ping":           {run: func(*Guest, args) (any, *agentclient.Error) { return struct{}{}, nil }},
		"guest-info":           {run: (*Guest).cmdInfo},
		"guest-get-time":       {run: func(g *Guest, _ args) (any, *agentclient.Error) { return g.clockNowLocked(), nil }},
		"guest-set-time":       {fields: []field{{name: "time", typ: tInt, opt: true}}, run: (*Guest).cmdSetTime},
		"guest-shutdown":       {fields: []field{{name: "mode", typ: tStr, opt: true}}, run: (*Guest).cmdShutdown},
		"guest-suspend-disk":   suspend("suspend-disk"),
		"guest-suspend-ram":    suspend("suspend-ram"),
		"guest-suspend-hybrid": suspend("suspend-hybrid"),
		"guest-file-open":      {fields: []field{{name: "path", typ: tStr}, {name: "mode", typ: tStr, opt: true}}, run: (*Guest).cmdFileOpen},
		"guest-file-close":     {fields: handleField, run: (*Guest).cmdFileClose},
		"guest-file-flush":     {fields: handleField, run: (*Guest).cmdFileFlush},
		"guest-file-read":      {fields: []field{{name: "handle", typ: tInt}, {name: "count", typ: tInt, opt: true}}, run: (*Guest).cmdFileRead},
		"guest-file-write":     {fields: []field{{name: "handle", typ: tInt}, {name: "buf-b64", typ: tStr}, {name: "count", typ: tInt, opt: true}}, run: (*Guest).cmdFileWrite},
		"guest-file-seek":      {fields: []field{{name: "handle", typ: tInt}, {name: "offset", typ: tInt}, {name: "whence", typ: tWhence}}, run: (*Guest).cmdFileSeek},
		"guest-fsfreeze-status": {run: func(g *Guest, _ args) (any, *agentclient.Error) {
			if g.frozen {
				return agentclient.Frozen, nil
			}
			return agentclient.Thawed, nil
		}},
		"guest-fsfreeze-freeze": {run: func(g *Guest, _ args) (any, *agentclient.Error) { return g.freeze(nil), nil }},
		"guest-fsfreeze-freeze-list": {fields: []field{{name: "mountpoints", typ: tStrList, opt: true}}, run: func(g *Guest, a args) (any, *agentclient.Error) {
			mps, ok := a["mountpoints"].([]string)
			if !ok {
				return g.freeze(nil), nil
			}
			return g.freeze(mps), nil
		}},
		"guest-fsfreeze-thaw": {run: func(g *Guest, _ args) (any, *agentclient.Error) {
			n := 0
			if g.frozen {
				n = g.frozenN
			}
			g.frozen, g.frozenN = false, 0
			return n, nil
		}},
		"guest-fstrim":                 {fields: []field{{name: "minimum", typ: tInt, opt: true}}, run: (*Guest).cmdFstrim},
		"guest-network-get-interfaces": {run: (*Guest).cmdInterfaces},
		"guest-get-vcpus":              {run: func(g *Guest, _ args) (any, *agentclient.Error) { return g.vcpuList(), nil }},
		"guest-set-vcpus": {fields: []field{{name: "vcpus", typ: tStructList, sub: []field{
			{name: "logical-id", typ: tInt}, {name: "online", typ: tBool}, {name: "can-offline", typ: tBool, opt: true},
		}}}, run: (*Guest).cmdSetVCPUs},
		"guest-get-osinfo": {run: func(g *Guest, _ args) (any, *agentclient.Error) { return g.cfg.OS, nil }},
		"guest-get-host-name": {run: func(g *Guest, _ args) (any, *agentclient.Error) {
			return struct {
				HostName string `json:"host-name"`
			}{g.cfg.Hostname}, nil
		}},
		"guest-get-timezone": {run: func(g *Guest, _ args) (any, *agentclient.Error) { return g.cfg.Timezone, nil }},
		"guest-get-users": {run: func(g *Guest, _ args) (any, *agentclient.Error) {
			if g.cfg.Users == nil {
				return []agentclient.User{}, nil
			}
			return g.cfg.Users, nil
		}},
		"guest-get-fsinfo": {run: func(g *Guest, _ args) (any, *agentclient.Error) {
			if g.cfg.Filesystems == nil {
				return []agentclient.Filesystem{}, nil
			}
			return g.cfg.Filesystems, nil
		}},
		"guest-exec": {fields: []field{
			{name: "path", typ: tStr}, {name: "arg", typ: tStrList, opt: true}, {name: "env", typ: tStrList, opt: true},
			{name: "input-data", typ: tStr, opt: true}, {name: "capture-output", typ: tBool, opt: true},
		}, run: (*Guest).cmdExec},
		"guest-exec-status": {fields: []field{{name: "pid", typ: tInt}}, run: (*Guest).cmdExecStatus},
	}
}

// unserved are the commands of agentclient's table the simulator does not
// serve yet. A guest leaves them out of guest-info and answers them as a
// command it has never heard of, as a qemu-ga built without them would.
// Serving one means a handler in commands and its name off this list
// (TestDispatchCoversTable checks the two add up to the table).
var unserved = []string{"guest-get-devices"}

var handleField = []field{{name: "handle", typ: tInt}}

// offered lists the commands qemu-ga of version offers and the simulator
// serves, in the order qemu-ga's guest-info lists them: the reverse of the
// schema's (it registers them in schema order and lists newest first).
func offered(version string) []string {
	table := agentclient.Commands()
	var out []string
	for i := len(table) - 1; i >= 0; i-- {
		c := table[i]
		if _, ok := commands[c.Name]; ok && c.Offered(version, agentclient.POSIX|agentclient.Windows) {
			out = append(out, c.Name)
		}
	}
	return out
}

// lookup returns the dispatch entry for name, if g's agent version offers it.
func (g *Guest) lookup(name string) (command, bool) {
	cmd, ok := commands[name]
	if !ok {
		return command{}, false
	}
	if c, known := agentclient.Lookup(name); !known || !c.Offered(g.cfg.AgentVersion, agentclient.POSIX|agentclient.Windows) || !g.builds(name) {
		return command{}, false
	}
	return cmd, true
}

func genericf(format string, a ...any) *agentclient.Error {
	return &agentclient.Error{Class: "GenericError", Desc: fmt.Sprintf(format, a...)}
}

// disabledReason says why name is disabled, or "" if it is enabled.
func (g *Guest) disabledReason(name string) (string, bool) {
	if g.frozen && !agentclient.AllowedWhileFrozen(name) {
		return "the agent is in frozen state", true
	}
	if slices.Contains(g.cfg.Disabled, name) {
		return "", true
	}
	if g.cfg.NoExec && (name == "guest-exec" || name == "guest-exec-status") {
		return "", true
	}
	return "", false
}

// dispatch executes one message with g.mu held, following qmp_dispatch: the
// request's shape, then the command's existence, then whether it is enabled,
// then its arguments.
func (g *Guest) dispatch(m message) result {
	if m.err != "" {
		return g.errReply(nil, genericf("%s", m.err))
	}
	req, ok := m.val.(*object)
	if !ok {
		return g.errReply(nil, genericf("QMP input must be a JSON object"))
	}
	id, _ := req.get("id")
	var name string
	var argObj *object
	for _, i := range qdictOrder(req.keys) {
		k, v := req.keys[i], req.vals[i]
		switch k {
		case "execute":
			s, ok := v.(string)
			if !ok {
				return g.errReply(id, genericf("QMP input member 'execute' must be a string"))
			}
			name = s
		case "arguments":
			o, ok := v.(*object)
			if !ok {
				return g.errReply(id, genericf("QMP input member 'arguments' must be an object"))
			}
			argObj = o
		case "id":
		default:
			return g.errReply(id, genericf("QMP input member '%s' is unexpected", k))
		}
	}
	if _, ok := req.get("execute"); !ok {
		return g.errReply(id, genericf("QMP input lacks member 'execute'"))
	}
	cmd, ok := g.lookup(name)
	if !ok {
		return g.errReply(id, &agentclient.Error{Class: "CommandNotFound", Desc: "The command " + name + " has not been found"})
	}
	if reason, off := g.disabledReason(name); off {
		desc := "Command " + name + " has been disabled"
		if reason != "" {
			desc += ": " + reason
		}
		return g.errReply(id, &agentclient.Error{Class: "CommandNotFound", Desc: desc})
	}
	if g.dropHere(name) {
		return g.errReply(id, genericf("never sent: the connection drops"))
	}
	if g.calls == nil {
		g.calls = make(map[string]int)
	}
	g.calls[name]++
	a, aerr := checkArgs("", cmd.fields, argObj)
	if aerr != nil {
		return g.errReply(id, aerr)
	}
	if desc, ok := g.cfg.Fail[name]; ok {
		return g.errReply(id, genericf("%s", desc))
	}
	ret, err := cmd.run(g, a)
	if err != nil {
		return g.errReply(id, err)
	}
	if !agentclient.SuccessResponse(name) {
		r := result{none: true}
		if f, ok := ret.(func()); ok {
			r.after = f
		}
		return r
	}
	return result{line: g.reply("return", ret, id), delimited: name == "guest-sync-delimited"}
}

func (g *Guest) errReply(id any, e *agentclient.Error) result {
	obj := &object{keys: []string{"class", "desc"}, vals: []any{e.Class, e.Desc}}
	return result{line: g.reply("error", obj, id)}
}

var typeNames = map[argType]string{tInt: "integer", tStr: "string", tBool: "boolean", tStrList: "array", tStructList: "array", tWhence: "GuestFileWhence"}

// checkArgs validates obj against fields like the QAPI input visitor: fields
// in schema order (missing, then type), then leftover members as unexpected.
func checkArgs(prefix string, fields []field, obj *object) (args, *agentclient.Error) {
	a := args{}
	for _, f := range fields {
		full := prefix + f.name
		var v any
		ok := false
		if obj != nil {
			v, ok = obj.get(f.name)
		}
		if !ok {
			if f.opt {
				continue
			}
			return nil, genericf("Parameter '%s' is missing", full)
		}
		bad := genericf("Invalid parameter type for '%s', expected: %s", full, typeNames[f.typ])
		switch f.typ {
		case tInt:
			n, ok := v.(int64)
			if !ok {
				return nil, bad
			}
			a[f.name] = n
		case tStr:
			s, ok := v.(string)
			if !ok {
				return nil, bad
			}
			a[f.name] = s
		case tBool:
			b, ok := v.(bool)
			if !ok {
				return nil, bad
			}
			a[f.name] = b
		case tWhence:
			switch w := v.(type) {
			case int64:
				a[f.name] = w
			case string:
				n := slices.Index([]string{"set", "cur", "end"}, w)
				if n < 0 {
					return nil, genericf("Parameter '%s' does not accept value '%s'", full, w)
				}
				a[f.name] = int64(n)
			default:
				return nil, bad
			}
		case tStrList:
			l, ok := v.([]any)
			if !ok {
				return nil, bad
			}
			ss := make([]string, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, genericf("Invalid parameter type for '%s[%d]', expected: string", full, i)
				}
				ss[i] = s
			}
			a[f.name] = ss
		case tStructList:
			l, ok := v.([]any)
			if !ok {
				return nil, bad
			}
			items := make([]args, len(l))
			for i, e := range l {
				o, ok := e.(*object)
				if !ok {
					return nil, genericf("Invalid parameter type for '%s[%d]', expected: object", full, i)
				}
				sub, err := checkArgs(fmt.Sprintf("%s[%d].", full, i), f.sub, o)
				if err != nil {
					return nil, err
				}
				items[i] = sub
			}
			a[f.name] = items
		}
	}
	if obj != nil {
		known := func(k string) bool { return slices.ContainsFunc(fields, func(f field) bool { return f.name == k }) }
		if k, ok := firstLeftover(obj.keys, known); ok {
			return nil, genericf("Parameter '%s' is unexpected", prefix+k)
		}
	}
	return a, nil
}

func (g *Guest) cmdInfo(args) (any, *agentclient.Error) {
	names := offered(g.cfg.AgentVersion)
	cmds := make([]agentclient.CommandInfo, 0, len(names)+len(g.cfg.ExtraCommands))
	for _, n := range names {
		if !g.builds(n) {
			continue
		}
		_, off := g.disabledReason(n)
		cmds = append(cmds, agentclient.CommandInfo{Name: n, Enabled: !off, SuccessResponse: agentclient.SuccessResponse(n)})
	}
	for _, n := range g.cfg.ExtraCommands {
		cmds = append(cmds, agentclient.CommandInfo{Name: n, Enabled: true, SuccessResponse: true})
	}
	return agentclient.Info{Version: g.cfg.AgentVersion, SupportedCommands: cmds}, nil
}

func (g *Guest) cmdSetTime(a args) (any, *agentclient.Error) {
	now := time.Now()
	if !a.has("time") {
		// hwclock -s: the system clock takes the RTC's time.
		g.clockBase, g.clockAt = now, now.Add(g.rtcOffset).UnixNano()
		return struct{}{}, nil
	}
	ns := a.int("time", 0)
	if ns < 0 {
		return nil, genericf("Failed to set time to guest: Invalid argument") // settimeofday's EINVAL
	}
	if time.Unix(0, ns).UTC().Year() >= 2070 {
		return nil, genericf("Invalid time")
	}
	g.clockBase, g.clockAt = now, ns
	g.rtcOffset = time.Duration(ns - now.UnixNano()) // hwclock -w
	return struct{}{}, nil
}

func (g *Guest) cmdShutdown(a args) (any, *agentclient.Error) {
	mode := a.str("mode", agentclient.ShutdownPowerdown)
	switch mode {
	case agentclient.ShutdownPowerdown, agentclient.ShutdownHalt, agentclient.ShutdownReboot:
	default:
		return nil, genericf("mode is invalid (valid values are: halt|powerdown|reboot") // sic: qemu-ga 7.2's text
	}
	return g.goDown(mode), nil
}

func (g *Guest) cmdSuspend(mode string) (any, *agentclient.Error) {
	if g.cfg.NoSuspend {
		return nil, genericf("the requested suspend mode is not supported by the guest")
	}
	return g.goDown(mode), nil
}

// goDown records how the guest goes down and returns what happens after the
// (absent) reply. powerdown and suspend-disk end QEMU: connections read EOF
// and the socket goes away. halt and suspend to RAM keep QEMU, so the channel
// stays up with no agent; a guest suspended to RAM answers again once woken
// (Wake). reboot: silent until the agent is back. With
// Config.ShutdownDelay the agent answers as before until the delay passes.
// Holds g.mu.
func (g *Guest) goDown(mode string) func() {
	if d := g.cfg.ShutdownDelay; d > 0 {
		return func() {
			time.AfterFunc(d, func() {
				g.mu.Lock()
				if g.closed {
					g.mu.Unlock()
					return
				}
				after := g.goDownNow(mode)
				g.mu.Unlock()
				if after != nil {
					after()
				}
			})
		}
	}
	return g.goDownNow(mode)
}

// goDownNow is goDown without the delay. Holds g.mu.
func (g *Guest) goDownNow(mode string) func() {
	g.downMode = mode
	g.handles, g.procs = nil, nil
	g.frozen, g.frozenN = false, 0
	switch mode {
	case agentclient.ShutdownReboot:
		g.silentUntil = time.Now().Add(g.cfg.RebootDelay)
		g.stats.rebootAt(g.silentUntil) // stats.go: the counters start again
		return nil
	case agentclient.ShutdownHalt:
		g.downSilent = true
		return nil
	case "suspend-ram", "suspend-hybrid":
		g.downSilent, g.asleep = true, true // until Wake
		return nil
	}
	return func() {
		// The socket goes first: a client that reads the EOF and dials at
		// once must find it gone (TestShutdownModes raced here on a loaded
		// machine), as shutdown --wait expects of QEMU.
		g.mu.Lock()
		ls := g.listeners
		g.listeners = nil
		g.mu.Unlock()
		for _, l := range ls {
			l.Close()
		}
		g.mu.Lock()
		g.dropConnsLocked()
		g.mu.Unlock()
	}
}

// freeze freezes the filesystems named by mountpoints (nil: all). Freezing
// none leaves the guest thawed.
func (g *Guest) freeze(mountpoints []string) int {
	n := 0
	for _, fs := range g.cfg.Filesystems {
		if mountpoints == nil || slices.Contains(mountpoints, fs.Mountpoint) {
			n++
		}
	}
	if n > 0 {
		g.frozen, g.frozenN = true, n
	}
	return n
}

func (g *Guest) cmdFstrim(a args) (any, *agentclient.Error) {
	min := a.int("minimum", 0)
	res := agentclient.TrimResponse{Paths: []agentclient.TrimResult{}}
	for _, fs := range g.cfg.Filesystems {
		r := agentclient.TrimResult{Path: fs.Mountpoint, Minimum: &min}
		if fs.TotalBytes != nil && fs.UsedBytes != nil {
			t := int64(*fs.TotalBytes-*fs.UsedBytes) / 2
			r.Trimmed = &t
		}
		res.Paths = append(res.Paths, r)
	}
	return res, nil
}

// cmdInterfaces reports the configured interfaces with counters that grow
// with uptime, so pollers see traffic.
func (g *Guest) cmdInterfaces(args) (any, *agentclient.Error) {
	out := make([]agentclient.Interface, len(g.cfg.Interfaces))
	for i, ifc := range g.cfg.Interfaces {
		out[i] = ifc
		if ifc.Statistics != nil {
			s := *ifc.Statistics
			g.addTraffic(&s, i) // stats.go
			out[i].Statistics = &s
		}
	}
	return out, nil
}

func (g *Guest) vcpuList() []agentclient.VCPU {
	src := g.vcpus
	if src == nil {
		src = g.cfg.VCPUs
	}
	out := make([]agentclient.VCPU, len(src))
	for i, v := range src {
		out[i] = v
		if v.CanOffline == nil {
			out[i].CanOffline = boolp(v.LogicalID != 0)
		}
	}
	return out
}

// cmdSetVCPUs processes the list in order and stops at the first failure:
// the count processed, or the error if the first one failed.
func (g *Guest) cmdSetVCPUs(a args) (any, *agentclient.Error) {
	if g.vcpus == nil {
		g.vcpus = g.vcpuList()
	}
	items, _ := a["vcpus"].([]args)
	n := 0
	for _, it := range items {
		id := it.int("logical-id", -1)
		online, _ := it["online"].(bool)
		i := slices.IndexFunc(g.vcpus, func(v agentclient.VCPU) bool { return int64(v.LogicalID) == id })
		var err *agentclient.Error
		switch {
		case i < 0:
			err = genericf("open(\"/sys/devices/system/cpu/cpu%d/\"): No such file or directory", id)
		case !online && g.vcpus[i].Online && !*g.vcpus[i].CanOffline:
			err = genericf("logical processor #%d can't be offlined", id)
		}
		if err != nil {
			if n == 0 {
				return nil, err
			}
			break
		}
		g.vcpus[i].Online = online
		n++
	}
	return n, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// b64 encodes data for the wire.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
