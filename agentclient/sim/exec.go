package sim

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// proc is a guest-exec'd process: the simulator runs it at once and reports
// it exited once ExecDuration has passed.
type proc struct {
	done     time.Time
	code     int
	out, err []byte
	capture  bool
}

// maxExecOutput is qemu-ga's cap on captured output per stream (16 MiB).
const maxExecOutput = 16 << 20

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
	prog, ok := g.program(p)
	if !ok {
		return nil, genericf("Guest agent command failed, error was 'Failed to execute child process “%s” (No such file or directory)'", p)
	}
	var out, errOut bytes.Buffer
	code := prog(g, argv, input, &out, &errOut)
	if g.procs == nil {
		g.procs = make(map[int64]*proc)
	}
	pid := g.nextPID
	g.nextPID++
	capture, _ := a["capture-output"].(bool)
	g.procs[pid] = &proc{done: time.Now().Add(g.cfg.ExecDuration), code: code, out: out.Bytes(), err: errOut.Bytes(), capture: capture}
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
	code := pr.code
	st := execStatus{Exited: true, ExitCode: &code}
	if pr.capture {
		st.OutData, st.OutTruncated = capOutput(pr.out)
		st.ErrData, st.ErrTruncated = capOutput(pr.err)
	}
	return st, nil
}

// execStatus is agentclient.ExecStatus as the agent writes it: a stream's
// "-truncated" member is present (false included) exactly when its data is.
type execStatus struct {
	Exited       bool   `json:"exited"`
	ExitCode     *int   `json:"exitcode,omitempty"`
	OutData      string `json:"out-data,omitempty"`
	ErrData      string `json:"err-data,omitempty"`
	OutTruncated *bool  `json:"out-truncated,omitempty"`
	ErrTruncated *bool  `json:"err-truncated,omitempty"`
}

// capOutput encodes one captured stream; empty output is left out.
func capOutput(b []byte) (string, *bool) {
	if len(b) == 0 {
		return "", nil
	}
	if len(b) > maxExecOutput {
		return b64(b[:maxExecOutput]), boolp(true)
	}
	return b64(b), boolp(false)
}

// program is a simulated executable: it returns the exit code.
type program func(g *Guest, argv []string, input []byte, out, errOut *bytes.Buffer) int

// program finds the executable named by path, with PATH search for bare
// names as g_spawn does. Windows guests have none of them.
func (g *Guest) program(p string) (program, bool) {
	if g.cfg.Windows {
		return windowsProgram(p) // windows.go
	}
	name := p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		switch p[:i] {
		case "/bin", "/usr/bin":
		default:
			return nil, false
		}
		name = p[i+1:]
	}
	switch name {
	case "sh", "bash", "dash":
		return progSh, true
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
	case "true":
		return func(*Guest, []string, []byte, *bytes.Buffer, *bytes.Buffer) int { return 0 }, true
	case "false":
		return func(*Guest, []string, []byte, *bytes.Buffer, *bytes.Buffer) int { return 1 }, true
	}
	return nil, false
}

// progSh runs `sh -c SCRIPT NAME ARGS...`: the directory-listing script of
// agentclient.ListDirRequest, or a one-line simple command.
func progSh(g *Guest, argv []string, input []byte, out, errOut *bytes.Buffer) int {
	if len(argv) < 2 || argv[0] != "-c" {
		errOut.WriteString("sh: only -c is simulated\n")
		return 2
	}
	script, pos := argv[1], argv[2:]
	if script == agentclient.ListDirScript {
		dir := ""
		if len(pos) >= 2 {
			dir = pos[1]
		}
		return listDir(g, dir, out, errOut)
	}
	words := strings.Fields(script)
	if len(words) == 0 {
		return 0
	}
	prog, ok := g.program(words[0])
	if !ok {
		fmt.Fprintf(errOut, "sh: 1: %s: not found\n", words[0])
		return 127
	}
	return prog(g, words[1:], input, out, errOut)
}

// listDir prints what ListDirScript prints: for each of `.* *` in dir,
// "%f %s %Y" (raw mode in hex, size, mtime), a newline, the name and a NUL;
// exit 2 if cd fails.
func listDir(g *Guest, dir string, out, errOut *bytes.Buffer) int {
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
func progStat(g *Guest, argv []string, _ []byte, out, errOut *bytes.Buffer) int {
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
func progChmod(g *Guest, argv []string, _ []byte, _, errOut *bytes.Buffer) int {
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
func progChown(g *Guest, argv []string, _ []byte, _, errOut *bytes.Buffer) int {
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
func progMv(g *Guest, argv []string, _ []byte, _, errOut *bytes.Buffer) int {
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
func progRm(g *Guest, argv []string, _ []byte, _, errOut *bytes.Buffer) int {
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

func progCat(g *Guest, argv []string, input []byte, out, errOut *bytes.Buffer) int {
	if len(argv) == 0 {
		out.Write(input)
		return 0
	}
	t := g.files()
	code := 0
	for _, p := range argv {
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

func progLs(g *Guest, argv []string, _ []byte, out, errOut *bytes.Buffer) int {
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

func progUname(g *Guest, argv []string, _ []byte, out, errOut *bytes.Buffer) int {
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

func progEcho(_ *Guest, argv []string, _ []byte, out, _ *bytes.Buffer) int {
	out.WriteString(strings.Join(argv, " ") + "\n")
	return 0
}
