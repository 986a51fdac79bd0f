package browser

import (
	"path"
	"strings"

	"github.com/guestdeck/guestdeck/agentclient"
)

// Guest paths: slash paths on Unix guests, drive paths (C:\Windows) on
// Windows guests. Which one a path is follows from the path itself, so the
// browser never joins a Windows name onto a Unix directory or the reverse.

// winPath reports whether p is a Windows drive path.
func winPath(p string) bool { return agentclient.IsWindowsPath(p) }

// isAbs reports whether p is absolute for a guest: slash-rooted, or a
// Windows drive path.
func isAbs(p string) bool { return strings.HasPrefix(p, "/") || winPath(p) }

// cleanPath cleans a guest path: path.Clean for a slash path; for a drive
// path, / becomes \, repeated separators and "." go, ".." goes up (never
// above the drive's root), the drive letter is upper case and only the
// root keeps a trailing \.
func cleanPath(p string) string {
	if !winPath(p) {
		if strings.HasPrefix(p, "/") {
			return path.Clean(p)
		}
		return p
	}
	drive := strings.ToUpper(p[:1]) + ":"
	var parts []string
	for seg := range strings.SplitSeq(strings.ReplaceAll(p[3:], "/", `\`), `\`) {
		switch seg {
		case "", ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, seg)
		}
	}
	return drive + `\` + strings.Join(parts, `\`)
}

// isRoot reports whether p is a root: / or a drive's C:\.
func isRoot(p string) bool { return p == "/" || (winPath(p) && len(p) == 3) }

// joinPath is dir and name joined with dir's separator, cleaned.
func joinPath(dir, name string) string {
	if winPath(dir) {
		return cleanPath(dir + `\` + name)
	}
	return path.Join(dir, name)
}

// parentPath is the directory p is in (a root's is itself).
func parentPath(p string) string {
	if winPath(p) {
		return cleanPath(p + `\..`)
	}
	return path.Dir(p)
}

// basePath is p's last element ("" for a root).
func basePath(p string) string {
	if winPath(p) {
		p = cleanPath(p)
		if isRoot(p) {
			return ""
		}
		return p[strings.LastIndexByte(p, '\\')+1:]
	}
	return path.Base(p)
}

// dirSuffix reports whether p ends in a separator (names a directory).
func dirSuffix(p string) bool {
	return strings.HasSuffix(p, "/") || (winPath(p) && strings.HasSuffix(p, `\`))
}

// dirMark is what follows a directory's name in a listing of dir.
func dirMark(dir string) string {
	if winPath(dir) {
		return `\`
	}
	return "/"
}
