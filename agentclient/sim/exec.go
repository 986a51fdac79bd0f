package sim

import (
	"bytes"
	"fmt"
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
		return nil, false
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
// "%f %s %Y %n" (raw mode in hex, size, mtime, name); exit 2 if cd fails.
func listDir(g *Guest, dir string, out, errOut *bytes.Buffer) int {
	t := g.files()
	d := t.clean(dir)
	n, ok := t.nodes[d]
	if dir == "" || !ok || !n.mode.IsDir() || n.deny {
		fmt.Fprintf(errOut, "sh: 1: cd: can't cd to %s\n", dir)
		return 2
	}
	line := func(name string, n *node) {
		size := int64(len(n.data))
		if n.mode.IsDir() {
			size = 4096
		}
		fmt.Fprintf(out, "%x %d %d %s\n", agentclient.UnixMode(n.mode), size, n.mtime.Unix(), name)
	}
	line(".", n)
	up := t.nodes[t.parent(d)]
	line("..", up)
	kids := t.children(d)
	for _, hidden := range []bool{true, false} {
		for _, k := range kids {
			if strings.HasPrefix(k, ".") == hidden {
				line(k, t.nodes[t.join(d, k)])
			}
		}
	}
	return 0
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
