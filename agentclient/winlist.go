package agentclient

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf16"
)

// Directory listings on Windows guests. qemu-ga for Windows runs guest-exec
// through CreateProcess (with PATH search), and there is no /bin/sh. `cmd /c
// dir` prints in the console's OEM code page (names outside it come back as
// '?'), with dates in the locale's format and sizes with its separators, and
// cannot show a leading space or tell a name from the columns before it:
// nothing a parser can trust. PowerShell (in every Windows since Server
// 2008 R2) is asked instead to write the same records as ListDirScript:
// "ATTRIBUTES SIZE MTIME", a newline, the name, a NUL, as UTF-8 bytes
// straight to standard output, so no console encoding stands between a name
// and its bytes. The directory travels in base64 inside the script, so no
// quoting rule (PowerShell's, CreateProcess's) can change it.

// windowsListDirScript is the PowerShell script; %s is the directory, UTF-8
// in base64. Exported to the simulator through WindowsListDirScript.
const windowsListDirScript = `$ErrorActionPreference='Stop';$o=[Console]::OpenStandardOutput();$u=New-Object Text.UTF8Encoding $false;` +
	`$d=$u.GetString([Convert]::FromBase64String('%s'));` +
	`foreach($f in Get-ChildItem -LiteralPath $d -Force){$l=0;if(-not $f.PSIsContainer){$l=$f.Length};` +
	`$t=[long][Math]::Floor(($f.LastWriteTimeUtc-[datetime]'1970-01-01').TotalSeconds);` +
	`$b=$u.GetBytes(('{0:x} {1} {2}' -f [int]$f.Attributes,$l,$t)+"` + "`" + `n"+$f.Name+[char]0);$o.Write($b,0,$b.Length)};$o.Flush()`

// MaxWindowsEntries caps a Windows listing as MaxDirEntries caps a Unix
// one: a guest that sends more is cut there, with an error saying so.
const MaxWindowsEntries = MaxDirEntries

// Windows file attributes (FILE_ATTRIBUTE_*).
const (
	winReadOnly     = 0x1
	winDirectory    = 0x10
	winReparsePoint = 0x400
)

// IsWindows reports whether the guest's OS information names Windows:
// qemu-ga for Windows reports id "mswindows".
func IsWindows(o *OSInfo) bool {
	if o == nil {
		return false
	}
	return strings.EqualFold(o.ID, "mswindows") || strings.HasPrefix(o.Name, "Microsoft Windows")
}

// IsWindowsPath reports whether p is a drive path (C:\, d:/x).
func IsWindowsPath(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') && (p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z')
}

// WindowsListDirRequest is the guest-exec request that lists dir on a
// Windows guest.
func WindowsListDirRequest(dir string) ExecRequest {
	script := fmt.Sprintf(windowsListDirScript, base64.StdEncoding.EncodeToString([]byte(dir)))
	return ExecRequest{
		Path:          "powershell.exe",
		Arg:           []string{"-NoProfile", "-NonInteractive", "-EncodedCommand", encodeUTF16(script)},
		CaptureOutput: true,
	}
}

// encodeUTF16 is PowerShell's -EncodedCommand form: UTF-16LE in base64.
func encodeUTF16(s string) string {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// WindowsListDirTarget is the directory a WindowsListDirRequest lists, read
// back from its arguments; ok is false for any other request. The simulator
// uses it to recognise the listing.
func WindowsListDirTarget(args []string) (dir string, ok bool) {
	if len(args) != 4 || args[2] != "-EncodedCommand" {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(args[3])
	if err != nil || len(raw)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	script := string(utf16.Decode(u))
	pre, post, _ := strings.Cut(windowsListDirScript, "%s")
	if !strings.HasPrefix(script, pre) || !strings.HasSuffix(script, post) || len(script) < len(pre)+len(post) {
		return "", false
	}
	d, err := base64.StdEncoding.DecodeString(script[len(pre) : len(script)-len(post)])
	if err != nil {
		return "", false
	}
	return string(d), true
}

// ParseWindowsListDir parses the PowerShell listing: per entry
// "ATTRHEX SIZE MTIME", a newline, the name, a NUL. A name that is empty,
// "." or "..", or holds a path separator or a drive colon is no entry of
// the directory (a guest that lies): it is dropped. A record cut off at
// the end, or entries past MaxWindowsEntries, are reported as an error
// along with the entries before them.
func ParseWindowsListDir(out []byte) ([]DirEntry, error) {
	keep := func(name string) bool {
		return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `\/:`)
	}
	return parseRecords(out, keep, windowsMode)
}

// windowsMode maps attributes to a FileMode: a directory, a reparse point
// (symlink or junction) shown as a link, read-only without write bits.
func windowsMode(attr uint32) fs.FileMode {
	perm := fs.FileMode(0o666)
	if attr&winReadOnly != 0 {
		perm = 0o444
	}
	var m fs.FileMode
	switch {
	case attr&winDirectory != 0:
		m = fs.ModeDir | perm | 0o111
	case attr&winReparsePoint != 0:
		m = fs.ModeSymlink | perm
	default:
		m = perm
	}
	return m
}

// WindowsAttributes is the attribute word the simulator reports for m.
func WindowsAttributes(m fs.FileMode) uint32 {
	var a uint32
	if m.Perm()&0o222 == 0 {
		a |= winReadOnly
	}
	switch {
	case m.IsDir():
		a |= winDirectory
	case m&fs.ModeSymlink != 0:
		a |= winReparsePoint
	default:
		a |= 0x20 // FILE_ATTRIBUTE_ARCHIVE, as on a file NTFS has written
	}
	return a
}

// ListDirWindows lists dir on a Windows guest through guest-exec. Unless
// dir is a drive's root, the listing starts with "..", as the Unix
// listing's does.
func ListDirWindows(ctx context.Context, a Agent, dir string) ([]DirEntry, error) {
	if err := checkPath("list", dir); err != nil {
		return nil, err
	}
	res, err := RunExec(ctx, a, WindowsListDirRequest(dir))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if why := res.failure(); why != "" {
		return nil, fmt.Errorf("list %s: %s", dir, why)
	}
	ents, perr := ParseWindowsListDir(res.Stdout)
	if !isDriveRoot(dir) {
		ents = append([]DirEntry{{Name: "..", Mode: fs.ModeDir | 0o777}}, ents...)
	}
	if res.Truncated {
		return ents, fmt.Errorf("list %s: %w", dir, errTruncated)
	}
	if perr != nil {
		return ents, fmt.Errorf("list %s: %w", dir, perr)
	}
	return ents, nil
}

func isDriveRoot(p string) bool { return len(p) == 3 && IsWindowsPath(p) }
