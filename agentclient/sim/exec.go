package sim

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// proc is a guest-exec'd process: the simulator runs it at once and reports
// it exited once its run time (ExecDuration, plus what sleep added) has
// passed.
type proc struct {
	done     time.Time
	code     int
	signal   int // killed by this signal; code is then unused
	out, err capture
	capture  bool
}

// capture is one captured stream as qemu-ga keeps it: at most
// maxExecOutput bytes, the rest read and dropped, and whether any was.
type capture struct {
	data      []byte
	truncated bool
}

// maxExecOutput is qemu-ga's cap on captured output per stream
// (GUEST_EXEC_MAX_OUTPUT, 16 MiB).
const maxExecOutput = agentclient.MaxExecOutput

// capBuf is a process's stdout or stderr: it keeps what the agent would and
// counts the rest, so a program printing gigabytes costs 16 MiB.
type capBuf struct {
	b       bytes.Buffer
	dropped bool
}

func (c *capBuf) Write(p []byte) (int, error) {
	room := maxExecOutput - c.b.Len()
	if len(p) > room {
		c.b.Write(p[:room])
		c.dropped = true
		return len(p), nil
	}
	return c.b.Write(p)
}

func (c *capBuf) WriteString(s string) (int, error) { return c.Write([]byte(s)) }
func (c *capBuf) WriteByte(b byte) error            { _, err := c.Write([]byte{b}); return err }

// spawn is one guest-exec while it runs: its streams, and what the
// programs it runs decided beyond an exit code.
type spawn struct {
	g           *Guest
	input       []byte
	out, errOut capBuf
	runFor      time.Duration // sleep: how long it stays running
	signal      int           // kill: the signal that ended it
}

func (g *Guest) cmdExec(a args) (any, *agentclient.Error) {
	p := a.str("path", "")
	argv, _ := a["arg"].([]string)
	var input []byte
	if a.has("input-data") {
		b, ok := qbase64Decode(a.str("input-data", ""))
		if !ok {
			return nil, genericf("Base64 data contains invalid characters")
		}
		input = b
	}
	r := &spawn{g: g, input: input}
	if !r.found(p) {
		return nil, genericf("Guest agent command failed, error was 'Failed to execute child process “%s” (No such file or directory)'", p)
	}
	code := r.exec(p, argv)
	if g.procs == nil {
		g.procs = make(map[int64]*proc)
	}
	pid := g.nextPID
	g.nextPID++
	capt, _ := a["capture-output"].(bool)
	g.procs[pid] = &proc{done: time.Now().Add(g.cfg.ExecDuration + r.runFor), code: code, signal: r.signal, capture: capt,
		out: capture{r.out.b.Bytes(), r.out.dropped}, err: capture{r.errOut.b.Bytes(), r.errOut.dropped}}
	return struct {
		PID int64 `json:"pid"`
	}{pid}, nil
}

func (g *Guest) cmdExecStatus(a args) (any, *agentclient.Error) {
	pid := a.int("pid", 0)
	pr, ok := g.procs[pid]
	if !ok {
		return nil, genericf("Invalid parameter 'pid'")
	}
	if time.Now().Before(pr.done) {
		return execStatus{}, nil
	}
	// The agent forgets a process once it has reported its exit.
	delete(g.procs, pid)
	st := execStatus{Exited: true}
	if pr.signal != 0 {
		sig := pr.signal
		st.Signal = &sig
	} else {
		code := pr.code
		st.ExitCode = &code
	}
	if pr.capture {
		st.OutData, st.OutTruncated = pr.out.encode()
		st.ErrData, st.ErrTruncated = pr.err.encode()
	}
	return st, nil
}

// execStatus is agentclient.ExecStatus as the agent writes it: a stream's
// "-truncated" member is present (false included) exactly when its data is,
// as qemu-ga 7.2.22 writes it (older agents had it only when truncated,
// and false: see agentclient's execResult).
type execStatus struct {
	Exited       bool   `json:"exited"`
	ExitCode     *int   `json:"exitcode,omitempty"`
	Signal       *int   `json:"signal,omitempty"`
	OutData      string `json:"out-data,omitempty"`
	ErrData      string `json:"err-data,omitempty"`
	OutTruncated *bool  `json:"out-truncated,omitempty"`
	ErrTruncated *bool  `json:"err-truncated,omitempty"`
}

// encode writes one captured stream; empty output is left out.
func (c capture) encode() (string, *bool) {
	if len(c.data) == 0 {
		return "", nil
	}
	return b64(c.data), boolp(c.truncated)
}

// program is a simulated executable: it returns the exit code.
type program func(g *Guest, argv []string, input []byte, out, errOut stream) int

// stream is where a program writes its stdout or stderr: a *capBuf, or a
// test's bytes.Buffer.
type stream interface {
	io.Writer
	io.StringWriter
	io.ByteWriter
}

// found reports whether path names an executable the guest has.
func (r *spawn) found(p string) bool {
	if r.g.cfg.Windows {
		_, ok := windowsProgram(p) // windows.go
		return ok
	}
	name, ok := unixName(p)
	if !ok {
		return false
	}
	switch name {
	case "sh", "bash", "dash", "sleep", "kill":
		return true
	}
	_, ok = r.g.program(name)
	return ok
}

// unixName is the program a path names, with PATH search for bare names
// as g_spawn does: /bin and /usr/bin only.
func unixName(p string) (string, bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return p, true
	}
	switch p[:i] {
	case "/bin", "/usr/bin":
		return p[i+1:], true
	}
	return "", false
}

// exec runs the program p names (found said it exists) with argv.
func (r *spawn) exec(p string, argv []string) int {
	if r.g.cfg.Windows {
		prog, _ := windowsProgram(p)
		return prog(r.g, argv, r.input, &r.out, &r.errOut)
	}
	name, _ := unixName(p)
	switch name {
	case "sh", "bash", "dash":
		return r.sh(argv)
	case "sleep":
		return r.sleep(argv)
	case "kill":
		r.errOut.WriteString("kill: only kill -SIG $$ in sh -c is simulated\n")
		return 1
	}
	prog, _ := r.g.program(name)
	return prog(r.g, argv, r.input, &r.out, &r.errOut)
}

// program finds the executable named name (a bare name). Windows guests have
// none of them.
func (g *Guest) program(name string) (program, bool) {
	if g.cfg.Windows {
		return nil, false
	}
	switch name {
	case "cat":
		return progCat, true
	case "ls":
		return progLs, true
	case "uname":
		return progUname, true
	case "echo":
		return progEcho, true
	case "stat":
		return progStat, true
	case "chmod":
		return progChmod, true
	case "chown":
		return progChown, true
	case "mv":
		return progMv, true
	case "rm":
		return progRm, true
	case "head":
		return progHead, true
	case "true":
		return func(*Guest, []string, []byte, stream, stream) int { return 0 }, true
	case "false":
		return func(*Guest, []string, []byte, stream, stream) int { return 1 }, true
	}
	return nil, false
}

// sh runs `sh -c SCRIPT NAME ARGS...`: the directory-listing script of
// agentclient.ListDirRequest, or a script of simple commands separated by
// ";" or "&&", with single and double quotes, $$ (the shell's pid) and ">&2".
// Built in: exit [N], kill -SIG $$ (the shell dies of SIG), sleep N (the
// process stays running N seconds).
func (r *spawn) sh(argv []string) int {
	if len(argv) < 2 || argv[0] != "-c" {
		r.errOut.WriteString("sh: only -c is simulated\n")
		return 2
	}
	script, pos := argv[1], argv[2:]
	if script == agentclient.ListDirScript {
		dir := ""
		if len(pos) >= 2 {
			dir = pos[1]
		}
		return listDir(r.g, dir, &r.out, &r.errOut)
	}
	code := 0
	for _, step := range shSteps(script) {
		if step.and && code != 0 {
			continue
		}
		words := step.words
		if len(words) == 0 {
			continue
		}
		var done bool
		code, done = r.shCommand(words, step.toErr)
		if done || r.signal != 0 {
			return code
		}
	}
	return code
}

// shCommand runs one simple command; done means the shell exits (exit, a
// signal).
func (r *spawn) shCommand(words []string, toErr bool) (code int, done bool) {
	switch words[0] {
	case "exit":
		if len(words) > 1 {
			n, err := strconv.Atoi(words[1])
			if err != nil {
				fmt.Fprintf(&r.errOut, "sh: 1: exit: Illegal number: %s\n", words[1])
				return 2, true
			}
			return n & 0xff, true
		}
		return 0, true
	case "kill":
		if sig := killSignal(words[1:]); sig != 0 {
			r.signal = sig
			return 0, true
		}
		r.errOut.WriteString("sh: 1: kill: only kill -SIG $$ is simulated\n")
		return 2, false
	case "sleep":
		return r.sleep(words[1:]), false
	}
	prog, ok := r.g.program(words[0])
	if !ok {
		fmt.Fprintf(&r.errOut, "sh: 1: %s: not found\n", words[0])
		return 127, false
	}
	var out stream = &r.out
	if toErr {
		out = &r.errOut
	}
	return prog(r.g, words[1:], r.input, out, &r.errOut), false
}

// shPID is what $$ expands to in the simulated shell.
const shPID = "4242"

var signals = map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ABRT": 6, "KILL": 9, "SEGV": 11, "PIPE": 13, "ALRM": 14, "TERM": 15}

// killSignal is the signal of `kill -SIG $$` (by number or name), or 0.
func killSignal(args []string) int {
	if len(args) != 2 || args[1] != shPID || !strings.HasPrefix(args[0], "-") {
		return 0
	}
	s := strings.TrimPrefix(strings.TrimPrefix(args[0], "-"), "SIG")
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return n
	}
	return signals[s]
}

// sleep keeps the process running for its argument in seconds (fractions
// allowed), on top of the guest's ExecDuration.
func (r *spawn) sleep(args []string) int {
	if len(args) != 1 {
		r.errOut.WriteString("sleep: missing operand\n")
		return 1
	}
	f, err := strconv.ParseFloat(args[0], 64)
	if err != nil || f < 0 {
		fmt.Fprintf(&r.errOut, "sleep: invalid time interval '%s'\n", args[0])
		return 1
	}
	r.runFor += time.Duration(f * float64(time.Second))
	return 0
}

// shStep is one simple command of a script.
type shStep struct {
	words []string
	and   bool // after "&&": runs only if the last one succeeded
	toErr bool // ">&2": its stdout goes to stderr
}

// shSteps splits a script into simple commands: words with ” and ""
// quotes, separated by ";", "&&" or newlines; $$ expands to shPID.
func shSteps(script string) []shStep {
	var steps []shStep
	cur := shStep{}
	var word strings.Builder
	inWord := false
	flush := func() {
		if !inWord {
			return
		}
		w := word.String()
		word.Reset()
		inWord = false
		switch w {
		case ">&2", "1>&2":
			cur.toErr = true
		case "2>&1":
		default:
			cur.words = append(cur.words, w)
		}
	}
	end := func(and bool) {
		flush()
		steps = append(steps, cur)
		cur = shStep{and: and}
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(script[i+1:], c)
			if j < 0 {
				j = len(script) - i - 1
			}
			lit := script[i+1 : i+1+j]
			if c == '"' {
				lit = strings.ReplaceAll(lit, "$$", shPID)
			}
			word.WriteString(lit)
			inWord = true
			i += j + 1
		case c == ';' || c == '\n':
			end(false)
		case c == '&' && i+1 < len(script) && script[i+1] == '&':
			end(true)
			i++
		case c == ' ' || c == '\t':
			flush()
		case c == '$' && i+1 < len(script) && script[i+1] == '$':
			word.WriteString(shPID)
			inWord = true
			i++
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	end(false)
	return steps
}

// progHead is head -c N [FILE]; /dev/zero gives N zero bytes, the way to
// make output past the agent's cap.
func progHead(g *Guest, argv []string, input []byte, out, errOut stream) int {
	if len(argv) < 2 || argv[0] != "-c" {
		errOut.WriteString("head: only -c N [FILE] is simulated\n")
		return 1
	}
	n, err := strconv.ParseInt(argv[1], 10, 64)
	if err != nil || n < 0 {
		fmt.Fprintf(errOut, "head: invalid number of bytes: '%s'\n", argv[1])
		return 1
	}
	if len(argv) == 2 {
		out.Write(input[:min(int64(len(input)), n)])
		return 0
	}
	if argv[2] == "/dev/zero" {
		zero := make([]byte, 64<<10)
		for n > 0 {
			if c, ok := out.(*capBuf); ok && c.dropped {
				break // the rest would be dropped too
			}
			k := min(n, int64(len(zero)))
			out.Write(zero[:k])
			n -= k
		}
		return 0
	}
	t := g.files()
	f, ok := t.nodes[t.clean(argv[2])]
	if !ok || f.mode.IsDir() {
		fmt.Fprintf(errOut, "head: cannot open '%s' for reading: No such file or directory\n", argv[2])
		return 1
	}
	out.Write(f.data[:min(int64(len(f.data)), n)])
	return 0
}

// listDir prints what ListDirScript prints: for each of `.* *` in dir,
// "%f %s %Y" (raw mode in hex, size, mtime), a newline, the name and a NUL;
// exit 2 if cd fails.
func listDir(g *Guest, dir string, out, errOut stream) int {
	t := g.files()
	d := t.clean(dir)
	n, ok := t.nodes[d]
	if dir == "" || !ok || !n.mode.IsDir() || n.deny {
		fmt.Fprintf(errOut, "sh: 1: cd: can't cd to %s\n", dir)
		return 2
	}
	entry := func(name string, n *node) {
		fmt.Fprintf(out, "%x %d %d\n%s\x00", agentclient.UnixMode(n.mode), n.size(), n.mtime.Unix(), name)
	}
	entry(".", n)
	up := t.nodes[t.parent(d)]
	entry("..", up)
	kids := t.children(d)
	for _, hidden := range []bool{true, false} {
		for _, k := range kids {
			if strings.HasPrefix(k, ".") == hidden {
				entry(k, t.nodes[t.join(d, k)])
			}
		}
	}
	return 0
}

// size is what stat's %s says: a directory's is its block.
func (n *node) size() int64 {
	if n.mode.IsDir() {
		return 4096
	}
	return int64(len(n.data))
}

// operands splits a coreutils command line into options and operands: a
// "-x" before "--" is an option, everything after it an operand.
func operands(argv []string) (opts, args []string) {
	for i, a := range argv {
		switch {
		case a == "--":
			return opts, append(args, argv[i+1:]...)
		case len(a) > 1 && a[0] == '-':
			opts = append(opts, a)
		default:
			args = append(args, a)
		}
	}
	return opts, args
}

// unixBits is st_mode's permission part (with set-id and sticky bits).
func unixBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// progStat is GNU stat with -c FORMAT (%f %a %u %g %s %Y %n %%), not
// following symlinks; one line per operand.
func progStat(g *Guest, argv []string, _ []byte, out, errOut stream) int {
	var format string
	var rest []string
	for i := 0; i < len(argv); i++ {
		if argv[i] == "-c" && i+1 < len(argv) {
			format = argv[i+1]
			i++
			continue
		}
		rest = append(rest, argv[i])
	}
	_, files := operands(rest)
	if format == "" || len(files) == 0 {
		errOut.WriteString("stat: only -c FORMAT FILE... is simulated\n")
		return 1
	}
	t := g.files()
	code := 0
	for _, p := range files {
		n, ok := t.nodes[t.clean(p)]
		if !ok {
			fmt.Fprintf(errOut, "stat: cannot statx '%s': No such file or directory\n", p)
			code = 1
			continue
		}
		var b strings.Builder
		for i := 0; i < len(format); i++ {
			if format[i] != '%' || i+1 == len(format) {
				b.WriteByte(format[i])
				continue
			}
			i++
			switch format[i] {
			case 'f':
				fmt.Fprintf(&b, "%x", agentclient.UnixMode(n.mode)&^0o7777|unixBits(n.mode))
			case 'a':
				fmt.Fprintf(&b, "%o", unixBits(n.mode))
			case 'u':
				fmt.Fprint(&b, n.uid)
			case 'g':
				fmt.Fprint(&b, n.gid)
			case 's':
				fmt.Fprint(&b, n.size())
			case 'Y':
				fmt.Fprint(&b, n.mtime.Unix())
			case 'n':
				b.WriteString(p)
			case '%':
				b.WriteByte('%')
			default:
				b.WriteByte('?')
			}
		}
		out.WriteString(b.String() + "\n")
	}
	return code
}

// progChmod takes an octal mode only.
func progChmod(g *Guest, argv []string, _ []byte, _, errOut stream) int {
	_, args := operands(argv)
	if len(args) < 2 {
		errOut.WriteString("chmod: missing operand\n")
		return 1
	}
	bits, err := strconv.ParseUint(args[0], 8, 32)
	if err != nil || bits > 0o7777 {
		fmt.Fprintf(errOut, "chmod: invalid mode: ‘%s’\n", args[0])
		return 1
	}
	mode := fs.FileMode(bits & 0o777)
	for b, m := range map[uint64]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
		if bits&b != 0 {
			mode |= m
		}
	}
	t := g.files()
	code := 0
	for _, p := range args[1:] {
		n, ok := t.nodes[t.clean(p)]
		if !ok {
			fmt.Fprintf(errOut, "chmod: cannot access '%s': No such file or directory\n", p)
			code = 1
			continue
		}
		n.mode = n.mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) | mode
	}
	return code
}

// progChown takes numeric UID:GID only; like the kernel's chown it clears
// the set-id bits of a file.
func progChown(g *Guest, argv []string, _ []byte, _, errOut stream) int {
	_, args := operands(argv)
	if len(args) < 2 {
		errOut.WriteString("chown: missing operand\n")
		return 1
	}
	u, gr, ok := strings.Cut(args[0], ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(gr)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		fmt.Fprintf(errOut, "chown: invalid user: ‘%s’\n", args[0])
		return 1
	}
	t := g.files()
	code := 0
	for _, p := range args[1:] {
		n, ok := t.nodes[t.clean(p)]
		if !ok {
			fmt.Fprintf(errOut, "chown: cannot access '%s': No such file or directory\n", p)
			code = 1
			continue
		}
		n.uid, n.gid = uid, gid
		if !n.mode.IsDir() {
			n.mode &^= fs.ModeSetuid | fs.ModeSetgid
		}
	}
	return code
}

// progMv renames SOURCE to DEST (into DEST if it is a directory).
func progMv(g *Guest, argv []string, _ []byte, _, errOut stream) int {
	_, args := operands(argv)
	if len(args) != 2 {
		errOut.WriteString("mv: only SOURCE DEST is simulated\n")
		return 1
	}
	t := g.files()
	from, to := t.clean(args[0]), t.clean(args[1])
	n, ok := t.nodes[from]
	if !ok {
		fmt.Fprintf(errOut, "mv: cannot stat '%s': No such file or directory\n", args[0])
		return 1
	}
	if d, ok := t.nodes[to]; ok && d.mode.IsDir() {
		to = t.join(to, path.Base(from))
	}
	dir, ok := t.nodes[t.parent(to)]
	switch {
	case !ok || !dir.mode.IsDir():
		fmt.Fprintf(errOut, "mv: cannot move '%s' to '%s': No such file or directory\n", args[0], args[1])
		return 1
	case n.deny || dir.deny:
		fmt.Fprintf(errOut, "mv: cannot move '%s' to '%s': Permission denied\n", args[0], args[1])
		return 1
	case from == to:
		return 0
	case strings.HasPrefix(to, from+"/"):
		fmt.Fprintf(errOut, "mv: cannot move '%s' to a subdirectory of itself, '%s'\n", args[0], args[1])
		return 1
	}
	if old, ok := t.nodes[to]; ok && old.mode.IsDir() != n.mode.IsDir() {
		fmt.Fprintf(errOut, "mv: cannot overwrite '%s'\n", args[1])
		return 1
	}
	t.rename(from, to)
	return 0
}

// progRm removes files (not directories); -f makes a missing one fine.
func progRm(g *Guest, argv []string, _ []byte, _, errOut stream) int {
	opts, args := operands(argv)
	force := slices.ContainsFunc(opts, func(o string) bool { return strings.Contains(o, "f") })
	t := g.files()
	code := 0
	for _, p := range args {
		cp := t.clean(p)
		n, ok := t.nodes[cp]
		switch {
		case !ok && force:
		case !ok:
			fmt.Fprintf(errOut, "rm: cannot remove '%s': No such file or directory\n", p)
			code = 1
		case n.mode.IsDir():
			fmt.Fprintf(errOut, "rm: cannot remove '%s': Is a directory\n", p)
			code = 1
		case n.deny:
			fmt.Fprintf(errOut, "rm: cannot remove '%s': Permission denied\n", p)
			code = 1
		default:
			delete(t.nodes, cp)
		}
	}
	return code
}

func progCat(g *Guest, argv []string, input []byte, out, errOut stream) int {
	if len(argv) == 0 {
		out.Write(input)
		return 0
	}
	t := g.files()
	code := 0
	for _, p := range argv {
		if p == "-" {
			out.Write(input)
			continue
		}
		n, ok := t.nodes[t.clean(p)]
		switch {
		case !ok:
			fmt.Fprintf(errOut, "cat: %s: No such file or directory\n", p)
			code = 1
		case n.deny:
			fmt.Fprintf(errOut, "cat: %s: Permission denied\n", p)
			code = 1
		case n.mode.IsDir():
			fmt.Fprintf(errOut, "cat: %s: Is a directory\n", p)
			code = 1
		default:
			out.Write(n.data)
		}
	}
	return code
}

func progLs(g *Guest, argv []string, _ []byte, out, errOut stream) int {
	t := g.files()
	var paths []string
	for _, a := range argv {
		if !strings.HasPrefix(a, "-") {
			paths = append(paths, a)
		}
	}
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	code := 0
	for i, p := range paths {
		n, ok := t.nodes[t.clean(p)]
		if !ok {
			fmt.Fprintf(errOut, "ls: cannot access '%s': No such file or directory\n", p)
			code = 2
			continue
		}
		if !n.mode.IsDir() {
			fmt.Fprintln(out, p)
			continue
		}
		if len(paths) > 1 {
			if i > 0 {
				out.WriteByte('\n')
			}
			fmt.Fprintf(out, "%s:\n", p)
		}
		for _, k := range t.children(t.clean(p)) {
			if !strings.HasPrefix(k, ".") {
				fmt.Fprintln(out, k)
			}
		}
	}
	return code
}

func progUname(g *Guest, argv []string, _ []byte, out, errOut stream) int {
	os := g.cfg.OS
	if len(argv) == 0 {
		out.WriteString("Linux\n")
		return 0
	}
	var f []string
	for _, a := range argv {
		switch a {
		case "-a":
			f = append(f, "Linux", g.cfg.Hostname, os.KernelRelease, os.KernelVersion, os.Machine, "GNU/Linux")
		case "-s":
			f = append(f, "Linux")
		case "-n":
			f = append(f, g.cfg.Hostname)
		case "-r":
			f = append(f, os.KernelRelease)
		case "-v":
			f = append(f, os.KernelVersion)
		case "-m":
			f = append(f, os.Machine)
		default:
			fmt.Fprintf(errOut, "uname: invalid option -- '%s'\n", strings.TrimLeft(a, "-"))
			return 1
		}
	}
	out.WriteString(strings.Join(f, " ") + "\n")
	return 0
}

func progEcho(_ *Guest, argv []string, _ []byte, out, _ stream) int {
	out.WriteString(strings.Join(argv, " ") + "\n")
	return 0
}
