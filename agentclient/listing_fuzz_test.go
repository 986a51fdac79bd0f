package agentclient

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseListings: whatever a guest prints as a listing, neither parser
// panics, lists more than MaxDirEntries, or lists a name that could reach
// outside the directory (a separator, a drive, or "." and, on Windows, "..",
// which ListDirWindows adds itself).
func FuzzParseListings(f *testing.F) {
	for _, s := range []string{
		"41ed 4096 1700000000\n..\x0081a4 12 1700000000\na b.txt\x00",
		"10 0 1700000000\nDocs\x0020 12 -5\nC:x\x0020 1 1\n..\\..\\x\x0020 1 1\n\r\n\x00",
		"0 0 0\n/etc/passwd\x00", "zz 1 0\nx\x00", "1 2\nx\x00", "20 1 1\ncut",
		"20 99999999999999999999 1\nbig\x00", "ffffffffff 1 1\nattr\x00", "20 -1 1\nneg\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(what string, ents []DirEntry, bad string, dots bool) {
			if len(ents) > MaxDirEntries {
				t.Fatalf("%s: %d entries", what, len(ents))
			}
			for _, e := range ents {
				if e.Name == "" || strings.ContainsAny(e.Name, bad) || e.Name == "." || dots && e.Name == ".." || e.Size < 0 {
					t.Fatalf("%s: entry %+v from %q", what, e, b)
				}
			}
		}
		ents, _ := ParseListDir(b)
		check("unix", ents, "/\x00", false)
		ents, _ = ParseWindowsListDir(b)
		check("windows", ents, "\\/:\x00", true)
	})
}

// TestListDirCapped: a guest listing millions of minimal entries lists
// MaxDirEntries of them and says the rest were cut, on Unix and Windows.
func TestListDirCapped(t *testing.T) {
	rec := []byte("20 0 0\nx\x00")
	out := bytes.Repeat(rec, 2_000_000) // 18 MB, what 16 MiB of output nearly holds
	for name, parse := range map[string]func([]byte) ([]DirEntry, error){"unix": ParseListDir, "windows": ParseWindowsListDir} {
		ents, err := parse(out)
		if len(ents) != MaxDirEntries || err == nil || !strings.Contains(err.Error(), "more than 100000 entries") {
			t.Errorf("%s: %d entries, %v", name, len(ents), err)
		}
	}
}
