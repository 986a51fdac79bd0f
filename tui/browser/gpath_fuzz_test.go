package browser

import (
	"strings"
	"testing"
)

// FuzzJoinListedName: a name a Windows or Unix listing lets through, joined
// onto the directory listed, names an entry of that directory and nothing
// else: its parent is the directory and its base the name.
func FuzzJoinListedName(f *testing.F) {
	for _, s := range [][2]string{{`C:\Users`, "a.txt"}, {`C:\`, "..."}, {`d:/x/`, "a "}, {"/home", "..."}, {"/", "x\r\n"}, {`C:\a`, "CON"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, dir, name string) {
		if !isAbs(dir) || name == "" || name == "." || name == ".." {
			return
		}
		bad := "/\x00"
		if winPath(dir) {
			bad = `\/:` + "\x00"
		}
		if strings.ContainsAny(name, bad) || !winPath(dir) && dir != cleanPath(dir) {
			return // the listings drop these names (and a Unix dir is listed clean)
		}
		p := joinPath(dir, name)
		if parentPath(p) != cleanPath(dir) || basePath(p) != name {
			t.Fatalf("join(%q, %q) = %q: parent %q, base %q", dir, name, p, parentPath(p), basePath(p))
		}
	})
}
