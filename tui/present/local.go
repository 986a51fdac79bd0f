package present

import "strings"

// LocalName is the name a download into a local directory gives the guest
// file at path p: its last element, slash or backslash separated (Windows
// guests). ok is false when that is no plain file name: empty, a drive
// ("C:"), "." or ".." (which name a directory, never a file in it), or a
// name holding characters Text would escape: a file called that would bring
// the guest's escapes to every later ls and shell completion. Then the
// operator names the local file.
func LocalName(p string) (name string, ok bool) {
	p = strings.TrimRight(p, `/\`)
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		p = p[i+1:]
	}
	drive := len(p) == 2 && p[1] == ':'
	if p == "" || p == "." || p == ".." || drive || !Clean(p) {
		return "", false
	}
	return p, true
}
