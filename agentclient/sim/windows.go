package sim

import (
	"fmt"
	"strings"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Programs of the Windows-like guests: PowerShell running guestdeck's
// directory listing (agentclient.WindowsListDirRequest), and `cmd /c dir`
// in the format of an English Windows Server (for the demo's exec).

// windowsProgram finds a Windows executable by name or path, with or
// without .exe, case-insensitively, as CreateProcess's PATH search does.
func windowsProgram(p string) (program, bool) {
	name := strings.ToLower(p)
	if i := strings.LastIndexAny(name, `\/`); i >= 0 {
		switch name[:i] {
		case `c:\windows\system32`, `c:\windows\system32\windowspowershell\v1.0`:
		default:
			return nil, false
		}
		name = name[i+1:]
	}
	switch strings.TrimSuffix(name, ".exe") {
	case "powershell":
		return progPowerShell, true
	case "cmd":
		return progCmd, true
	}
	return nil, false
}

// progPowerShell runs only the listing script; anything else fails as a
// script PowerShell could not run here would.
func progPowerShell(g *Guest, argv []string, _ []byte, out, errOut stream) int {
	dir, ok := agentclient.WindowsListDirTarget(argv)
	if !ok {
		errOut.WriteString("powershell: only guestdeck's directory listing is simulated\r\n")
		return 1
	}
	t := g.files()
	d := t.clean(winPath(dir))
	n, found := t.nodes[d]
	if !found || !n.mode.IsDir() || n.deny {
		fmt.Fprintf(errOut, "Get-ChildItem : Cannot find path '%s' because it does not exist.\r\n", dir)
		return 1
	}
	for _, k := range t.children(d) {
		kn := t.nodes[t.join(d, k)]
		fmt.Fprintf(out, "%x %d %d\n%s\x00", agentclient.WindowsAttributes(kn.mode), winSize(kn), kn.mtime.Unix(), k)
	}
	return 0
}

// winPath is p as the simulated tree spells it: backslashes, and the
// drive letter in upper case (Windows paths are case-insensitive; the
// simulator's tree only for the drive).
func winPath(p string) string {
	p = strings.ReplaceAll(p, "/", `\`)
	if agentclient.IsWindowsPath(p) {
		p = strings.ToUpper(p[:1]) + p[1:]
	}
	return p
}

func winSize(n *node) int64 {
	if n.mode.IsDir() {
		return 0
	}
	return n.size()
}

// progCmd runs `cmd /c dir [/a] [/-c] [PATH]`.
func progCmd(g *Guest, argv []string, _ []byte, out, errOut stream) int {
	if len(argv) < 2 || !strings.EqualFold(argv[0], "/c") || !strings.EqualFold(argv[1], "dir") {
		errOut.WriteString("cmd: only /c dir is simulated\r\n")
		return 1
	}
	t := g.files()
	dir, sep := `C:\`, true
	for _, a := range argv[2:] {
		switch strings.ToLower(a) {
		case "/a":
		case "/-c":
			sep = false
		default:
			dir = a
		}
	}
	d := t.clean(winPath(dir))
	n, found := t.nodes[d]
	if !found || !n.mode.IsDir() || n.deny {
		out.WriteString(" Volume in drive C has no label.\r\n Volume Serial Number is 4E3B-2A1C\r\n\r\n")
		errOut.WriteString("File Not Found\r\n")
		return 1
	}
	num := func(v int64) string {
		s := fmt.Sprint(v)
		if !sep {
			return s
		}
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	}
	fmt.Fprintf(out, " Volume in drive C has no label.\r\n Volume Serial Number is 4E3B-2A1C\r\n\r\n Directory of %s\r\n\r\n", d)
	line := func(k *node, name string) {
		when := k.mtime.Format("01/02/2006  03:04 PM")
		if k.mode.IsDir() {
			fmt.Fprintf(out, "%s    <DIR>          %s\r\n", when, name)
			return
		}
		fmt.Fprintf(out, "%s    %14s %s\r\n", when, num(k.size()), name)
	}
	dirs, files, bytesIn := 2, 0, int64(0)
	line(n, ".")
	line(t.nodes[t.parent(d)], "..")
	for _, k := range t.children(d) {
		kn := t.nodes[t.join(d, k)]
		line(kn, k)
		if kn.mode.IsDir() {
			dirs++
		} else {
			files++
			bytesIn += kn.size()
		}
	}
	fmt.Fprintf(out, "%16d File(s) %14s bytes\r\n%16d Dir(s)  %s bytes free\r\n", files, num(bytesIn), dirs, num(44_000_000_000))
	return 0
}
