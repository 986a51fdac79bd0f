package sim

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// The Windows listing round-trips through the simulator's PowerShell:
// drive paths, names with spaces and non-ASCII letters, a read-only file,
// ".." except at a drive's root; a missing directory fails with
// PowerShell's words. `cmd /c dir` answers as an English Windows does.
func TestWindowsListing(t *testing.T) {
	cfg := WindowsConfig("w1")
	cfg.Files = map[string]File{
		`C:\Users\Administrator\Documents\Straße plan.txt`: {Data: "plan", Mode: 0o666},
		`C:\Windows\win.ini`: {Data: "; ini\r\n", Mode: 0o444},
	}
	_, sock := startGuest(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := agentclient.Dial(ctx, "unix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ents, err := agentclient.ListDirWindows(ctx, c, `C:\`)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Name != "Users" || !ents[0].IsDir() || ents[1].Name != "Windows" {
		t.Errorf(`C:\ lists %+v`, ents)
	}
	ents, err = agentclient.ListDirWindows(ctx, c, `C:\Users\Administrator\Documents`)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Name != ".." || ents[1].Name != "Straße plan.txt" || ents[1].Size != 4 || ents[1].IsDir() {
		t.Errorf("Documents lists %+v", ents)
	}
	ents, err = agentclient.ListDirWindows(ctx, c, `c:/Windows`) // forward slashes work on Windows too
	if err != nil || len(ents) != 2 || ents[1].Name != "win.ini" || ents[1].Mode.Perm()&0o222 != 0 || ents[1].Mode&fs.ModeType != 0 {
		t.Errorf("Windows lists %+v, %v", ents, err)
	}
	if _, err := agentclient.ListDirWindows(ctx, c, `C:\nope`); err == nil || !strings.Contains(err.Error(), "Cannot find path") {
		t.Errorf("missing directory: %v", err)
	}
	res, err := agentclient.RunExec(ctx, c, agentclient.ExecRequest{Path: "cmd.exe", Arg: []string{"/c", "dir", "/a", "/-c", `C:\Windows`}, CaptureOutput: true})
	if err != nil || res.ExitCode != 0 || !strings.Contains(string(res.Stdout), " Directory of C:\\Windows\r\n") ||
		!strings.Contains(string(res.Stdout), "    <DIR>          ..\r\n") || !strings.Contains(string(res.Stdout), "              7 win.ini\r\n") {
		t.Errorf("cmd /c dir: %+v %q %v", res, res.Stdout, err)
	}
}

// A guest that lies in its listing can name nothing outside the
// directory: entries with separators, a drive or dot names are dropped;
// a cut record is an error with the entries before it.
func TestParseWindowsListDirHostile(t *testing.T) {
	out := "20 5 0\nok.txt\x00" + "10 0 0\n..\x00" + "20 1 0\n..\\..\\evil\x00" + "20 1 0\nC:evil\x00" + "20 1 0\nsub/evil\x00" + "20 3 0\ncut"
	ents, err := agentclient.ParseWindowsListDir([]byte(out))
	if len(ents) != 1 || ents[0].Name != "ok.txt" || err == nil {
		t.Errorf("ents %+v err %v", ents, err)
	}
	if _, err := agentclient.ParseWindowsListDir([]byte("zz 1 0\nx\x00")); err == nil {
		t.Error("bad attributes parsed")
	}
}
