package config

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Known keys per table, in the order the docs list them.
var (
	topKeys      = []string{"defaults", "keys", "host", "guest", "sockets", "views", "commands"}
	defaultsKeys = []string{"interval", "slow_interval", "metrics_interval", "timeout", "concurrency", "freeze_timeout", "theme", "readonly", "exclusive",
		"known_hosts", "identity", "insecure_ignore_host_key"}
	hostKeys    = []string{"name", "uri", "include", "exclude", "tags", "known_hosts", "identity", "insecure_ignore_host_key"}
	guestKeys   = []string{"name", "address", "tags", "exclusive", "known_hosts", "identity", "insecure_ignore_host_key"}
	socketsKeys = []string{"name", "pattern", "tags", "naming", "rescan", "known_hosts", "identity", "insecure_ignore_host_key"}
)

// decoder walks the generically decoded TOML, checking types and values
// itself so that every message can name the key and its position.
type decoder struct {
	file string
	// spots are the file's positions; nil on the quick walk, which
	// knows none (see decode).
	spots *positions
	errs  []*Error
}

// decode walks the file quickly first when it can: without positions,
// which only messages need (and the [keys], [[views]] and [[commands]]
// that keep theirs for later messages: a file with any of those is walked
// with them). Only when that walk finds a problem is the file located and
// walked again, in file order, for the message naming the first problem's
// line: the positions and the ordering by them were two thirds of the
// decoder's time on a 10,000-guest file (README, Performance). Nothing a
// walk decides but its messages depends on positions or on the order of a
// table's keys, so a good file decodes to the same File either way.
func decode(file string, data []byte) (*File, error) {
	raw, ok := quickTOML(string(data))
	if !ok {
		if _, err := toml.Decode(string(data), &raw); err != nil {
			return nil, syntaxError(file, data, err)
		}
	}
	if quickWalk(raw) {
		d := &decoder{file: file}
		if f := d.walk(raw); len(d.errs) == 0 {
			return f, nil
		}
	}
	d := &decoder{file: file, spots: locate(string(data))}
	f := d.walk(raw)
	if len(d.errs) > 0 {
		// One message: the first problem in the file.
		sort.SliceStable(d.errs, func(i, j int) bool { return before(d.errs[i], d.errs[j]) })
		return nil, d.errs[0]
	}
	return f, nil
}

// quickWalk reports whether a file may be walked without positions: it
// has no table whose decoded values keep positions for later messages.
func quickWalk(raw map[string]any) bool {
	for _, k := range []string{"keys", "views", "commands"} {
		if _, ok := raw[k]; ok {
			return false
		}
	}
	return true
}

// walk decodes raw into a File, recording its problems in d.errs.
func (d *decoder) walk(raw map[string]any) *File {
	f := &File{Defaults: Defaults{
		Interval:      Duration{DefaultInterval},
		SlowInterval:  Duration{DefaultSlowInterval},
		Timeout:       Duration{DefaultTimeout},
		FreezeTimeout: Duration{DefaultFreezeTimeout},
		Concurrency:   DefaultConcurrency,
		Theme:         DefaultTheme,
	}}
	f.Defaults.MetricsInterval = Duration{DefaultMetricsInterval}
	for _, k := range d.ordered(raw, nil) {
		v := raw[k]
		switch k {
		case "defaults":
			if t, ok := d.table(v, k); ok {
				d.defaults(t, &f.Defaults)
			}
		case "keys":
			if t, ok := d.table(v, k); ok {
				f.Keys = d.keys(t)
				f.keysAt = map[string]pos{}
				for action := range f.Keys {
					f.keysAt[action] = d.valAt("keys", action)
				}
			}
		case "host":
			for i, t := range d.tables(v, k) {
				f.Hosts = append(f.Hosts, d.host(t, k, d.index(i)))
			}
		case "guest":
			for i, t := range d.tables(v, k) {
				f.Guests = append(f.Guests, d.guest(t, k, d.index(i)))
			}
		case "sockets":
			for i, t := range d.tables(v, k) {
				f.Sockets = append(f.Sockets, d.sockets(t, k, d.index(i)))
			}
		case "views":
			for i, t := range d.tables(v, k) {
				f.Views = append(f.Views, d.view(t, k, strconv.Itoa(i))) // views.go
			}
		case "commands":
			f.Commands = d.commands(v, k) // commands.go
		default:
			if slices.Contains(defaultsKeys, k) {
				// A setting written before any table: say where it goes.
				d.errf(d.keyAt(k), "%s belongs in [defaults]: write it under a [defaults] line (known top-level keys: %s)", k, strings.Join(topKeys, ", "))
				continue
			}
			d.unknown(k, "", topKeys, k)
		}
	}
	d.sshDefaults(f)
	d.duplicates(f)
	d.viewKeyClashes(f)
	d.commandClashes(f)
	return f
}

// before orders errors by position, those without one last.
func before(a, b *Error) bool {
	switch {
	case a.Line == 0 || b.Line == 0:
		return a.Line != 0 && b.Line == 0
	case a.Line != b.Line:
		return a.Line < b.Line
	}
	return a.Col < b.Col
}

// syntaxError turns a toml error into an *Error at the offending position.
func syntaxError(file string, data []byte, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{Path: file, Msg: "cannot decode: " + err.Error(), Err: err}
	}
	line, col := pe.Position.Line, pe.Position.Col
	// Count the line and column from the byte offset: the library's line is
	// the next one when the error is the line break that ends a line (a
	// missing "]" on line 1 read as 2:7).
	if st := pe.Position.Start; st >= 0 && st <= len(data) && (st > 0 || line <= 1) {
		before := data[:st]
		line = 1 + bytes.Count(before, []byte{'\n'})
		col = st - (bytes.LastIndexByte(before, '\n') + 1) + 1
	}
	msg := pe.Message
	if msg == "" {
		msg = pe.Error()
	}
	return &Error{Path: file, Line: line, Col: col, Msg: "syntax error: " + msg, Err: err}
}

// errf records a problem at p (zero when unknown). The quick walk's
// problems only send the file to the located walk, which says them: it
// records that there is one, without its words.
func (d *decoder) errf(p pos, format string, args ...any) {
	if d.spots == nil {
		d.errs = append(d.errs, &Error{Path: d.file, Msg: "a problem (located again for its words)"})
		return
	}
	d.errs = append(d.errs, &Error{Path: d.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

// index, path and entry are a table's index in its array, a key's path
// and how messages name a table: on the quick walk, which has neither
// positions nor messages, nothing.
func (d *decoder) index(i int) string {
	if d.spots == nil {
		return ""
	}
	return strconv.Itoa(i)
}

func (d *decoder) path(base []string, more ...string) []string {
	if d.spots == nil {
		return nil
	}
	return join(base, more...)
}

func (d *decoder) entry(kind string, t map[string]any) string {
	if d.spots == nil {
		return ""
	}
	return entry(kind, t)
}

// keyAt and valAt are where a key and its value are; zero on the quick
// walk.
func (d *decoder) keyAt(segs ...string) pos {
	if d.spots == nil {
		return pos{}
	}
	return d.spots.at(segs...).Key
}

func (d *decoder) valAt(segs ...string) pos {
	if d.spots == nil {
		return pos{}
	}
	return d.spots.at(segs...).Val
}

// ordered returns t's keys in the order they appear in the file, so the
// walk (and the first error) follows the reader; on the quick walk, which
// knows no positions, in the order of their names.
func (d *decoder) ordered(t map[string]any, base []string) []string {
	if d.spots == nil {
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	type keyed struct {
		key string
		at  pos
	}
	// Look each position up once: a comparison that looked them up did so
	// n log n times, seconds for a table of a few hundred thousand keys.
	keys := make([]keyed, 0, len(t))
	for k := range t {
		keys = append(keys, keyed{k, d.keyAt(join(base, k)...)})
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i].at, keys[j].at
		if a != b {
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		}
		return keys[i].key < keys[j].key
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.key
	}
	return out
}

// unknown reports an unknown key with the nearest known one.
func (d *decoder) unknown(key, where string, known []string, segs ...string) {
	msg := fmt.Sprintf("unknown key %q", key)
	if where != "" {
		msg += " in " + where
	}
	if s := suggest(key, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else {
		msg += "; known keys: " + strings.Join(known, ", ")
	}
	d.errf(d.keyAt(segs...), "%s", msg)
}

// table checks that v is a table.
func (d *decoder) table(v any, key string) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		d.errf(d.keyAt(key), "%s must be a table ([%s]), got %s", key, key, describe(v))
	}
	return t, ok
}

// tables checks that v is an array of tables ([[host]]).
func (d *decoder) tables(v any, key string) []map[string]any {
	switch v := v.(type) {
	case []map[string]any:
		return v
	case []any:
		out := make([]map[string]any, 0, len(v))
		for i, e := range v {
			t, ok := e.(map[string]any)
			if !ok {
				d.errf(d.valAt(key, strconv.Itoa(i)), "each %s must be a table, got %s", key, describe(e))
				return nil
			}
			out = append(out, t)
		}
		return out
	case map[string]any:
		d.errf(d.keyAt(key), "[%s] must be written [[%s]]: there is one [[%s]] table per %s", key, key, key, key)
	default:
		d.errf(d.keyAt(key), "%s must be an array of tables ([[%s]]), got %s", key, key, describe(v))
	}
	return nil
}

func (d *decoder) defaults(t map[string]any, out *Defaults) {
	const where = "[defaults]"
	for _, k := range d.ordered(t, []string{"defaults"}) {
		v, at := t[k], []string{"defaults", k}
		switch k {
		case "interval":
			d.duration(v, &out.Interval, k, where, at)
		case "slow_interval":
			d.duration(v, &out.SlowInterval, k, where, at)
		case "metrics_interval":
			if isZero(v) {
				out.MetricsInterval = Duration{} // off: the one duration that may be zero
			} else {
				d.duration(v, &out.MetricsInterval, k, where, at)
			}
		case "timeout":
			d.duration(v, &out.Timeout, k, where, at)
		case "freeze_timeout":
			d.duration(v, &out.FreezeTimeout, k, where, at)
		case "concurrency":
			n, ok := v.(int64)
			switch {
			case !ok:
				d.errf(d.valAt(at...), "concurrency in %s must be a whole number, got %s", where, describe(v))
			case n < 1 || n > 1<<20:
				d.errf(d.valAt(at...), "concurrency in %s must be from 1 to %d, got %d", where, 1<<20, n)
			default:
				out.Concurrency = int(n)
			}
		case "theme":
			s, ok := d.str(v, k, where, at)
			if ok && strings.TrimSpace(s) == "" {
				d.errf(d.valAt(at...), "theme in %s must not be empty; use dark, light, high-contrast or a theme file path", where)
			} else if ok {
				out.Theme = expandHome(s)
			}
		case "readonly":
			if b, ok := v.(bool); ok {
				out.Readonly = b
			} else {
				d.errf(d.valAt(at...), "readonly in %s must be true or false, got %s", where, describe(v))
			}
		case "exclusive":
			if b, ok := v.(bool); ok {
				out.Exclusive = b
			} else {
				d.errf(d.valAt(at...), "exclusive in %s must be true or false, got %s", where, describe(v))
			}
		case "known_hosts", "identity", "insecure_ignore_host_key":
			d.sshKey(k, v, where, at, &out.SSH)
		default:
			d.unknown(k, where, defaultsKeys, at...)
		}
	}
}

// isZero reports whether v is 0 or a duration of zero ("0", "0s").
func isZero(v any) bool {
	switch x := v.(type) {
	case int64:
		return x == 0
	case string:
		dur, err := time.ParseDuration(x)
		return err == nil && dur == 0
	}
	return false
}

func (d *decoder) duration(v any, out *Duration, key, where string, at []string) {
	s, ok := v.(string)
	if !ok {
		hint := ""
		if n, isInt := v.(int64); isInt {
			hint = fmt.Sprintf("; write \"%ds\"", n)
		}
		d.errf(d.valAt(at...), "%s in %s must be a duration string like \"5s\", got %s%s", key, where, describe(v), hint)
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.errf(d.valAt(at...), "%s in %s: bad duration %q; want a form like \"5s\", \"1m30s\" or \"500ms\"", key, where, s)
		return
	}
	if dur <= 0 {
		d.errf(d.valAt(at...), "%s in %s must be positive, got %q", key, where, s)
		return
	}
	out.Duration = dur
}

func (d *decoder) str(v any, key, where string, at []string) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.errf(d.valAt(at...), "%s in %s must be a string, got %s", key, where, describe(v))
	}
	return s, ok
}

func (d *decoder) strs(v any, key, where string, at []string) ([]string, bool) {
	a, ok := v.([]any)
	if !ok {
		d.errf(d.valAt(at...), "%s in %s must be an array of strings, got %s", key, where, describe(v))
		return nil, false
	}
	out := make([]string, 0, len(a))
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			d.errf(d.valAt(join(at, strconv.Itoa(i))...), "%s in %s must be an array of strings, got %s in it", key, where, describe(e))
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// entry names a [[host]] or [[guest]] in messages.
func entry(kind string, t map[string]any) string {
	if name, ok := t["name"].(string); ok && name != "" {
		return fmt.Sprintf("[[%s]] %q", kind, name)
	}
	return "[[" + kind + "]]"
}

func (d *decoder) host(t map[string]any, segs ...string) Host {
	where := d.entry("host", t)
	before := len(d.errs)
	var h Host
	for _, k := range d.ordered(t, segs) {
		v, at := t[k], d.path(segs, k)
		switch k {
		case "name":
			if s, ok := d.str(v, k, where, at); ok && d.name(s, where, at) {
				h.Name = s
			}
		case "uri":
			if s, ok := d.str(v, k, where, at); ok {
				if _, err := ParseURI(s); err != nil {
					d.errf(d.valAt(at...), "%s: %v", where, err)
				}
				h.URI = s
			}
		case "include", "exclude":
			if globs, ok := d.strs(v, k, where, at); ok {
				for i, g := range globs {
					if _, err := path.Match(g, ""); err != nil || g == "" {
						d.errf(d.valAt(join(at, strconv.Itoa(i))...), "bad domain name pattern %q in %s of %s", g, k, where)
					}
				}
				if k == "include" {
					h.Include = globs
				} else {
					h.Exclude = globs
				}
			}
		case "tags":
			h.Tags = d.tags(v, where, at)
		case "known_hosts":
			if s, ok := d.str(v, k, where, at); ok {
				h.KnownHosts = expandHome(s)
			}
		case "identity":
			if s, ok := d.str(v, k, where, at); ok {
				h.Identity = expandHome(s)
			}
		case "insecure_ignore_host_key":
			if b, ok := v.(bool); ok {
				h.InsecureIgnoreHostKey = b
			} else {
				d.errf(d.valAt(at...), "insecure_ignore_host_key in %s must be true or false, got %s", where, describe(v))
			}
		default:
			d.unknown(k, where, hostKeys, at...)
		}
	}
	if len(d.errs) > before {
		// A missing key is most likely the misspelt one already reported.
		return h
	}
	start := d.keyAt(segs...)
	if _, ok := t["name"]; !ok {
		d.errf(start, "%s has no name; add name = \"...\"", where)
	}
	if _, ok := t["uri"]; !ok {
		d.errf(start, "%s has no uri; add e.g. uri = \"qemu:///system\" or \"qemu+ssh://root@host/system\"", where)
	}
	if u, err := ParseURI(h.URI); err == nil && u.Transport == TransportSSH && h.KnownHosts == "" {
		h.KnownHosts = expandHome("~/.ssh/known_hosts")
	}
	return h
}

func (d *decoder) guest(t map[string]any, segs ...string) Guest {
	where := d.entry("guest", t)
	before := len(d.errs)
	var g Guest
	for _, k := range d.ordered(t, segs) {
		v, at := t[k], d.path(segs, k)
		switch k {
		case "name":
			if s, ok := d.str(v, k, where, at); ok && d.name(s, where, at) {
				g.Name = s
			}
		case "address":
			if s, ok := d.str(v, k, where, at); ok {
				if err := CheckAddress(s); err != nil {
					d.errf(d.valAt(at...), "%s: %v", where, err)
				}
				g.Address = s
			}
		case "tags":
			g.Tags = d.tags(v, where, at)
		case "exclusive":
			if b, ok := v.(bool); ok {
				g.Exclusive, g.exclusiveSet = b, true
			} else {
				d.errf(d.valAt(at...), "exclusive in %s must be true or false, got %s", where, describe(v))
			}
		case "known_hosts", "identity", "insecure_ignore_host_key":
			d.sshKey(k, v, where, at, &g.SSH)
		default:
			d.unknown(k, where, guestKeys, at...)
		}
	}
	if g.SSH != (SSHKeys{}) && g.Address != "" && !strings.HasPrefix(g.Address, "ssh:") {
		d.errf(d.keyAt(segs...), "%s: known_hosts, identity and insecure_ignore_host_key are for ssh:// addresses only", where)
	}
	if len(d.errs) > before {
		// A missing key is most likely the misspelt one already reported.
		return g
	}
	start := d.keyAt(segs...)
	if _, ok := t["name"]; !ok {
		d.errf(start, "%s has no name; add name = \"...\"", where)
	}
	if _, ok := t["address"]; !ok {
		d.errf(start, "%s has no address; add e.g. address = \"unix:/run/qga/NAME.sock\" (or tcp:host:port, vsock:cid:port)", where)
	}
	return g
}

// sshKey decodes known_hosts, identity or insecure_ignore_host_key into out.
func (d *decoder) sshKey(k string, v any, where string, at []string, out *SSHKeys) {
	switch k {
	case "known_hosts", "identity":
		s, ok := d.str(v, k, where, at)
		if !ok {
			return
		}
		if strings.TrimSpace(s) == "" {
			d.errf(d.valAt(at...), "%s in %s must not be empty", k, where)
			return
		}
		if k == "known_hosts" {
			out.KnownHosts = expandHome(s)
		} else {
			out.Identity = expandHome(s)
		}
	case "insecure_ignore_host_key":
		if b, ok := v.(bool); ok {
			out.InsecureIgnoreHostKey = b
		} else {
			d.errf(d.valAt(at...), "insecure_ignore_host_key in %s must be true or false, got %s", where, describe(v))
		}
	}
}

// sockets decodes a [[sockets]] table.
func (d *decoder) sockets(t map[string]any, segs ...string) Sockets {
	where := d.entry("sockets", t)
	before := len(d.errs)
	s := Sockets{Rescan: Duration{DefaultRescan}}
	var pat SocketPattern
	for _, k := range d.ordered(t, segs) {
		v, at := t[k], d.path(segs, k)
		switch k {
		case "name":
			if n, ok := d.str(v, k, where, at); ok && d.name(n, where, at) {
				s.Name = n
			}
		case "pattern":
			if p, ok := d.str(v, k, where, at); ok {
				var err error
				if pat, err = ParseSocketPattern(p); err != nil {
					d.errf(d.valAt(at...), "%s: %v", where, err)
				}
				s.Pattern = p
			}
		case "tags":
			s.Tags = d.tags(v, where, at)
		case "naming":
			if n, ok := d.str(v, k, where, at); ok {
				if n != NamingFile && n != NamingProxmox {
					d.errf(d.valAt(at...), "naming in %s must be %q (the file name without its extension) or %q (the VM's name from its Proxmox config), got %q",
						where, NamingFile, NamingProxmox, n)
				}
				s.Naming = n
			}
		case "rescan":
			d.duration(v, &s.Rescan, k, where, at)
			if s.Rescan.Duration < MinRescan {
				d.errf(d.valAt(at...), "rescan in %s must be at least %v", where, MinRescan)
			}
		case "known_hosts", "identity", "insecure_ignore_host_key":
			d.sshKey(k, v, where, at, &s.SSH)
		default:
			d.unknown(k, where, socketsKeys, at...)
		}
	}
	if len(d.errs) > before {
		return s
	}
	start := d.keyAt(segs...)
	if _, ok := t["pattern"]; !ok {
		d.errf(start, "%s has no pattern; add e.g. pattern = \"/var/run/qemu-server/*.qga\" or \"ssh://root@pve1/var/run/qemu-server/*.qga\"", where)
		return s
	}
	if s.Naming == "" {
		s.Naming = NamingFile
	}
	if s.SSH != (SSHKeys{}) && pat.Remote == nil {
		d.errf(start, "%s: known_hosts, identity and insecure_ignore_host_key are for ssh:// patterns only", where)
	}
	if s.Name == "" {
		// The default name must pass the name rule like a written one.
		def := path.Base(pat.Dir)
		if pat.Remote != nil {
			def = pat.Remote.Host
		}
		if !validName(def) {
			d.errf(start, "%s: cannot name it after %q (%s); add name = \"...\"", where, def, nameRule)
		}
		s.Name = def
	}
	return s
}

// sshDefaults fills the ssh keys that ssh:// guests and [[sockets]] left
// out from [defaults], and known_hosts from ~/.ssh/known_hosts.
func (d *decoder) sshDefaults(f *File) {
	fill := func(k *SSHKeys) {
		def := f.Defaults.SSH
		if k.KnownHosts == "" {
			k.KnownHosts = def.KnownHosts
		}
		if k.KnownHosts == "" {
			k.KnownHosts = expandHome("~/.ssh/known_hosts")
		}
		if k.Identity == "" {
			k.Identity = def.Identity
		}
		k.InsecureIgnoreHostKey = k.InsecureIgnoreHostKey || def.InsecureIgnoreHostKey
	}
	for i := range f.Guests {
		if strings.HasPrefix(f.Guests[i].Address, "ssh:") {
			fill(&f.Guests[i].SSH)
		}
	}
	for i := range f.Sockets {
		if strings.HasPrefix(f.Sockets[i].Pattern, "ssh:") {
			fill(&f.Sockets[i].SSH)
		}
	}
}

func (d *decoder) tags(v any, where string, at []string) []string {
	tags, ok := d.strs(v, "tags", where, at)
	if !ok {
		return nil
	}
	for i, s := range tags {
		if !validName(s) {
			d.errf(d.valAt(join(at, strconv.Itoa(i))...), "bad tag %q in %s: %s", s, where, nameRule)
		}
	}
	return tags
}

// nameRule keeps names and tags usable in selectors (tag:X, host:Y, globs,
// comma lists) and in "libvirt:HOST/DOMAIN" targets.
const nameRule = "use letters, digits, \".\", \"_\" and \"-\""

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '.' && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

func (d *decoder) name(s, where string, at []string) bool {
	if !validName(s) {
		d.errf(d.valAt(at...), "bad name %q in %s: %s", s, where, nameRule)
		return false
	}
	return true
}

// duplicates reports a name used twice; guests and hosts share one
// namespace because selectors name either.
func (d *decoder) duplicates(f *File) {
	type use struct {
		kind string
		at   pos
	}
	seen := make(map[string]use, len(f.Hosts)+len(f.Guests)+len(f.Sockets))
	check := func(kind string, name string, at pos) {
		if name == "" {
			return
		}
		if first, ok := seen[name]; ok {
			where := fmt.Sprintf(" at line %d", first.at.Line)
			if first.at.Line == 0 {
				where = ""
			}
			d.errf(at, "duplicate name %q: already used by the [[%s]]%s", name, first.kind, where)
			return
		}
		seen[name] = use{kind, at}
	}
	if d.spots == nil {
		// The quick walk: no positions to order by, and a duplicate is
		// all it needs to know.
		for _, h := range f.Hosts {
			check("host", h.Name, pos{})
		}
		for _, g := range f.Guests {
			check("guest", g.Name, pos{})
		}
		for _, s := range f.Sockets {
			check("sockets", s.Name, pos{})
		}
		return
	}
	// Walk both in file order so "already used" points backwards.
	type named struct {
		kind string
		i    int
		name string
		at   pos // looked up once, not in every comparison
	}
	var all []named
	for i, h := range f.Hosts {
		all = append(all, named{"host", i, h.Name, d.valAt("host", strconv.Itoa(i), "name")})
	}
	for i, g := range f.Guests {
		all = append(all, named{"guest", i, g.Name, d.valAt("guest", strconv.Itoa(i), "name")})
	}
	for i, s := range f.Sockets {
		at := d.valAt("sockets", strconv.Itoa(i), "name")
		if at.Line == 0 {
			at = d.keyAt("sockets", strconv.Itoa(i)) // a default name
		}
		all = append(all, named{"sockets", i, s.Name, at})
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i].at, all[j].at
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	for _, n := range all {
		check(n.kind, n.name, n.at)
	}
}

func (d *decoder) keys(t map[string]any) map[string][]string {
	const where = "[keys]"
	out := map[string][]string{}
	owner := map[string]string{} // key -> the first action in the file bound to it
	for _, action := range d.ordered(t, []string{"keys"}) {
		v, at := t[action], []string{"keys", action}
		if !contains(KeyActions, action) {
			msg := fmt.Sprintf("unknown action %q in %s", action, where)
			if s := suggest(action, KeyActions); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; actions: " + strings.Join(KeyActions, ", ")
			}
			d.errf(d.keyAt(at...), "%s", msg)
			continue
		}
		var keys []string
		if s, ok := v.(string); ok {
			keys = []string{s} // freeze = "F" is what people write first
		} else if ks, ok := d.strs(v, action, where, at); ok {
			keys = ks
		} else {
			continue
		}
		if len(keys) == 0 {
			// The built-in keys stay unless replaced; there is no unbinding.
			d.errf(d.valAt(at...), "%s in %s has no keys; give at least one, e.g. %s = [\"x\"]", action, where, action)
			continue
		}
		for i, k := range keys {
			vat := d.valAt(at...)
			if _, isList := v.([]any); isList {
				vat = d.valAt(join(at, strconv.Itoa(i))...)
			}
			if problem, hint := checkKeyName(k); problem != "" {
				d.errf(vat, "%s for %s in %s; %s", problem, action, where, hint)
				continue
			}
			if prev, taken := owner[k]; taken && prev != action && !mayShareKey(prev, action) {
				d.errf(vat, "key %q is bound to both %s and %s in %s; give each action its own key", k, prev, action, where)
				continue
			}
			owner[k] = action
		}
		out[action] = keys
	}
	return out
}

// mayShareKey reports whether two [keys] actions may be bound to one key:
// clear (marks and filter, on the table) and back (closing an overlay)
// never act on the same screen, and share esc by default.
func mayShareKey(a, b string) bool {
	return a == "clear" && b == "back" || a == "back" && b == "clear"
}

// Key names as Bubble Tea v2 spells them (KeyPressMsg.String()).
var namedKeys = []string{"up", "down", "left", "right", "home", "end", "pgup", "pgdown",
	"enter", "tab", "esc", "space", "backspace", "delete", "insert",
	"f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12"}

var keyModifiers = []string{"ctrl", "alt", "shift", "meta", "super", "hyper"}

// checkKeyName accepts "f", "F", "?", "space", "ctrl+a", "shift+down", ...
// It returns what is wrong and, separately, a hint such as a "did you mean".
func checkKeyName(k string) (problem, hint string) {
	if k == "" {
		return "empty key name", ""
	}
	if r, n := utf8.DecodeRuneInString(k); n == len(k) && unicode.IsPrint(r) && r != ' ' {
		return "", "" // any one character, "+" included
	}
	parts := strings.Split(k, "+")
	base := parts[len(parts)-1]
	if base == "" && len(parts) > 2 && strings.HasSuffix(k, "++") {
		base = "+" // "ctrl++"
		parts = parts[:len(parts)-1]
	}
	for _, m := range parts[:len(parts)-1] {
		if !contains(keyModifiers, m) {
			if s := suggest(m, keyModifiers); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			} else {
				hint = "modifiers: " + strings.Join(keyModifiers, ", ")
			}
			return fmt.Sprintf("unknown modifier %q in key name %q", m, k), hint
		}
	}
	if utf8.RuneCountInString(base) == 1 {
		r, _ := utf8.DecodeRuneInString(base)
		if unicode.IsPrint(r) && r != ' ' {
			if len(parts) == 2 && parts[0] == "shift" {
				// Bubble Tea v2 reports a shifted character as the character
				// it types ("F", "!"), never as "shift+f": the binding would
				// be listed in help and never fire.
				if u := unicode.ToUpper(r); u != r {
					hint = fmt.Sprintf("write %q", string(u))
				} else {
					hint = "write the character shift types"
				}
				return fmt.Sprintf("key name %q never matches (a shifted key arrives as the character it types)", k), hint
			}
			return "", ""
		}
	}
	if contains(namedKeys, base) {
		return "", ""
	}
	if s := suggest(base, namedKeys); s != "" {
		hint = fmt.Sprintf("did you mean %q?", strings.TrimSuffix(k, base)+s)
	} else {
		hint = "use a character or one of " + strings.Join(namedKeys[:15], ", ") + ", f1..f12"
	}
	return fmt.Sprintf("unknown key name %q", k), hint
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// describe names a decoded TOML value's type (and the value, when short)
// for messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("%T", v)
}

// suggest returns the known word nearest to s, or "" when none is close.
func suggest(s string, known []string) string {
	norm := func(x string) string { return strings.ReplaceAll(strings.ToLower(x), "-", "_") }
	limit := 1 // short words are all near each other
	switch n := len(s); {
	case n > 8:
		limit = 3
	case n > 4:
		limit = 2
	}
	runes := utf8.RuneCountInString(s)
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := runes - utf8.RuneCountInString(k); d > limit || d < -limit {
			continue // too far apart; and a long key would cost len(s)*len(k) to compare
		}
		dist := editDistance(norm(s), norm(k))
		if dist < bestD {
			best, bestD = k, dist
		}
	}
	if bestD > limit || bestD >= len(s) {
		return ""
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps of
// neighbours that turn a into b (optimal string alignment): "crtl" is one
// step from "ctrl".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
