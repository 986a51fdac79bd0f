package sim

import (
	"io/fs"
	"maps"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// maxFileSize bounds one simulated file, so a runaway writer cannot eat the
// process that hosts thousands of guests.
const maxFileSize = 64 << 20

// maxReadCount is qemu-ga's cap on one guest-file-read (48 MiB).
const maxReadCount = 48 << 20

type node struct {
	data     []byte
	mode     fs.FileMode
	mtime    time.Time
	deny     bool
	uid, gid int
}

// tree is a guest's private copy of its file tree, made on first use.
type tree struct {
	windows bool
	nodes   map[string]*node
}

func (g *Guest) files() *tree {
	if g.tree != nil {
		return g.tree
	}
	t := &tree{windows: g.cfg.Windows, nodes: make(map[string]*node, len(g.cfg.Files)+4)}
	root := "/"
	if t.windows {
		root = `C:\`
	}
	t.nodes[root] = &node{mode: fs.ModeDir | 0o755, mtime: simEpoch}
	for p, f := range g.cfg.Files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		mt := f.ModTime
		if mt.IsZero() {
			mt = g.start
		}
		p = t.clean(p)
		t.mkParents(p, mt)
		t.nodes[p] = &node{data: []byte(f.Data), mode: mode, mtime: mt, deny: f.Deny}
	}
	g.tree = t
	return t
}

// clean makes p absolute the way the agent sees it (its working directory
// is the root).
func (t *tree) clean(p string) string {
	if t.windows {
		p = strings.TrimRight(p, `\`)
		if strings.HasSuffix(p, ":") {
			p += `\`
		}
		return p
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

func (t *tree) parent(p string) string {
	if !t.windows {
		return path.Dir(p)
	}
	i := strings.LastIndexByte(p, '\\')
	if i < 0 {
		return p
	}
	if i > 0 && p[i-1] == ':' {
		return p[:i+1]
	}
	return p[:i]
}

func (t *tree) mkParents(p string, mt time.Time) {
	for d := t.parent(p); d != p; p, d = d, t.parent(d) {
		if _, ok := t.nodes[d]; ok {
			return
		}
		t.nodes[d] = &node{mode: fs.ModeDir | 0o755, mtime: mt}
	}
}

func (t *tree) join(dir, name string) string {
	if t.windows {
		if strings.HasSuffix(dir, `\`) {
			return dir + name
		}
		return dir + `\` + name
	}
	return path.Join(dir, name)
}

// children returns the names directly inside dir, sorted bytewise (the C
// locale's glob order).
func (t *tree) children(dir string) []string {
	sep := "/"
	if t.windows {
		sep = `\`
	}
	prefix := strings.TrimSuffix(dir, sep) + sep
	var names []string
	for p := range t.nodes {
		if p == dir || t.parent(p) != dir {
			continue
		}
		names = append(names, strings.TrimPrefix(p, prefix))
	}
	sort.Strings(names)
	return names
}

// rename moves the node at from (and, for a directory, everything under it)
// to to, replacing what was there; open handles follow the node.
func (t *tree) rename(from, to string) {
	sep := "/"
	if t.windows {
		sep = `\`
	}
	n := t.nodes[from]
	for p := range t.nodes {
		if p == to || strings.HasPrefix(p, strings.TrimSuffix(to, sep)+sep) {
			delete(t.nodes, p)
		}
	}
	if n.mode.IsDir() {
		prefix := strings.TrimSuffix(from, sep) + sep
		moved := map[string]*node{}
		for p, k := range t.nodes {
			if strings.HasPrefix(p, prefix) {
				moved[t.join(to, strings.TrimPrefix(p, prefix))] = k
				delete(t.nodes, p)
			}
		}
		maps.Copy(t.nodes, moved)
	}
	delete(t.nodes, from)
	t.nodes[to] = n
}

// handle is an open guest file.
type handle struct {
	n        *node
	pos      int64
	read     bool
	write    bool
	appendTo bool
}

type openMode struct{ read, write, trunc, create, append bool }

// openModes are the fopen modes qemu-ga accepts.
var openModes = map[string]openMode{
	"r": {read: true}, "rb": {read: true},
	"w": {write: true, trunc: true, create: true}, "wb": {write: true, trunc: true, create: true},
	"a": {write: true, create: true, append: true}, "ab": {write: true, create: true, append: true},
	"r+": {read: true, write: true}, "rb+": {read: true, write: true}, "r+b": {read: true, write: true},
	"w+": {read: true, write: true, trunc: true, create: true}, "wb+": {read: true, write: true, trunc: true, create: true},
	"w+b": {read: true, write: true, trunc: true, create: true},
	"a+":  {read: true, write: true, create: true, append: true}, "ab+": {read: true, write: true, create: true, append: true},
	"a+b": {read: true, write: true, create: true, append: true},
}

func (g *Guest) cmdFileOpen(a args) (any, *agentclient.Error) {
	p, mode := a.str("path", ""), a.str("mode", "r")
	om, ok := openModes[mode]
	if !ok {
		return nil, genericf("invalid file open mode '%s'", mode)
	}
	fail := func(why string) (any, *agentclient.Error) {
		return nil, genericf("failed to open file '%s' (mode: '%s'): %s", p, mode, why)
	}
	t := g.files()
	cp := t.clean(p)
	n, exists := t.nodes[cp]
	switch {
	case exists && n.deny:
		return fail("Permission denied")
	case exists && n.mode.IsDir() && om.write:
		return fail("Is a directory")
	case !exists && !om.create:
		return fail("No such file or directory")
	case !exists:
		dir, ok := t.nodes[t.parent(cp)]
		if !ok {
			return fail("No such file or directory")
		}
		if !dir.mode.IsDir() {
			return fail("Not a directory")
		}
		if dir.deny {
			return fail("Permission denied")
		}
		n = &node{mode: 0o644, mtime: time.Unix(0, g.clockNowLocked())}
		t.nodes[cp] = n
	case om.trunc:
		n.data = nil
		n.mtime = time.Unix(0, g.clockNowLocked())
	}
	if g.handles == nil {
		g.handles = make(map[int64]*handle)
	}
	h := g.nextHandle
	g.nextHandle++
	g.handles[h] = &handle{n: n, read: om.read, write: om.write, appendTo: om.append}
	return h, nil
}

func (g *Guest) handleOf(a args) (*handle, *agentclient.Error) {
	id := a.int("handle", 0)
	h, ok := g.handles[id]
	if !ok {
		return nil, genericf("handle '%d' has not been found", id)
	}
	return h, nil
}

func (g *Guest) cmdFileClose(a args) (any, *agentclient.Error) {
	if _, err := g.handleOf(a); err != nil {
		return nil, err
	}
	delete(g.handles, a.int("handle", 0))
	return struct{}{}, nil
}

func (g *Guest) cmdFileFlush(a args) (any, *agentclient.Error) {
	if _, err := g.handleOf(a); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (g *Guest) cmdFileRead(a args) (any, *agentclient.Error) {
	h, err := g.handleOf(a)
	if err != nil {
		return nil, err
	}
	count := a.int("count", 4096)
	if count < 0 || count > maxReadCount {
		return nil, genericf("value '%d' is invalid for argument count", count)
	}
	if count == 0 {
		// fread of nothing cannot fail, whatever the handle.
		return agentclient.FileRead{BufB64: ""}, nil
	}
	if !h.read {
		return nil, genericf("failed to read file: Bad file descriptor")
	}
	if h.n.mode.IsDir() {
		return nil, genericf("failed to read file: Is a directory")
	}
	var b []byte
	if size := int64(len(h.n.data)); h.pos < size {
		b = h.n.data[h.pos:min(size, h.pos+count)]
	}
	h.pos += int64(len(b))
	return agentclient.FileRead{Count: len(b), BufB64: b64(b), EOF: int64(len(b)) < count}, nil
}

func (g *Guest) cmdFileWrite(a args) (any, *agentclient.Error) {
	h, err := g.handleOf(a)
	if err != nil {
		return nil, err
	}
	buf, ok := qbase64Decode(a.str("buf-b64", ""))
	if !ok {
		return nil, genericf("Base64 data contains invalid characters")
	}
	count := int64(len(buf))
	if a.has("count") {
		count = a.int("count", 0)
		if count < 0 || count > int64(len(buf)) {
			return nil, genericf("value '%d' is invalid for argument count", count)
		}
	}
	if !h.write {
		return nil, genericf("failed to write to file: Bad file descriptor")
	}
	if h.appendTo {
		h.pos = int64(len(h.n.data))
	}
	// Compared before adding: a seek to near the largest offset would make
	// h.pos+count overflow, and the panic in the copy below (under g.mu)
	// used to hang the whole simulator.
	if h.pos > maxFileSize-count {
		return nil, genericf("failed to write to file: No space left on device")
	}
	end := h.pos + count
	if end > maxFileSize {
		return nil, genericf("failed to write to file: No space left on device")
	}
	if end > int64(len(h.n.data)) {
		if end > int64(cap(h.n.data)) {
			grown := make([]byte, end, max(end, 2*int64(cap(h.n.data))))
			copy(grown, h.n.data)
			h.n.data = grown
		} else {
			h.n.data = h.n.data[:end]
		}
	}
	copy(h.n.data[h.pos:end], buf[:count])
	h.pos = end
	h.n.mtime = time.Unix(0, g.clockNowLocked())
	return agentclient.FileWrite{Count: int(count)}, nil
}

func (g *Guest) cmdFileSeek(a args) (any, *agentclient.Error) {
	h, err := g.handleOf(a)
	if err != nil {
		return nil, err
	}
	off, whence := a.int("offset", 0), a.int("whence", 0)
	var base int64
	switch whence {
	case agentclient.SeekSet:
	case agentclient.SeekCur:
		base = h.pos
	case agentclient.SeekEnd:
		base = int64(len(h.n.data))
	default:
		return nil, genericf("invalid whence code %d", whence)
	}
	if base+off < 0 {
		return nil, genericf("failed to seek file: Invalid argument")
	}
	h.pos = base + off
	return agentclient.FileSeek{Position: h.pos}, nil
}

// qbase64Decode decodes like qemu-ga: any character outside the base64
// alphabet and '=' is refused, then GLib's g_base64_decode runs, which is
// lenient: '=' counts as a zero digit that suppresses output bytes, and a
// trailing partial group is dropped ("aGk" decodes to nothing).
func qbase64Decode(s string) ([]byte, bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	out := make([]byte, 0, len(s)/4*3)
	var v uint32
	n := 0
	var last0, last1 byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		rank := strings.IndexByte(alphabet, c)
		if c == '=' {
			rank = 0
		} else if rank < 0 {
			return nil, false
		}
		last1, last0 = last0, c
		v = v<<6 | uint32(rank)
		n++
		if n == 4 {
			out = append(out, byte(v>>16))
			if last1 != '=' {
				out = append(out, byte(v>>8))
			}
			if last0 != '=' {
				out = append(out, byte(v))
			}
			n, v = 0, 0
		}
	}
	return out, true
}
