package agentclient

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// The protocol has no directory listing; guests that allow guest-exec can run
// this script instead. stat's %f (raw mode in hex), %s, %Y and %n work the
// same in GNU coreutils and busybox, so one parser serves both.
// ListDirScript is exported so the simulator can recognise the request.
const ListDirScript = `cd -- "$1" || exit 2; for f in .* *; do [ -e "$f" ] || [ -L "$f" ] || continue; stat -c '%f %s %Y %n' -- "$f"; done`

// DirEntry is one entry of a guest directory.
type DirEntry struct {
	Name    string
	Size    int64
	Mode    fs.FileMode
	ModTime time.Time
}

// IsDir reports whether the entry is a directory.
func (e DirEntry) IsDir() bool { return e.Mode.IsDir() }

// ListDirRequest is the guest-exec request that lists dir.
func ListDirRequest(dir string) ExecRequest {
	return ExecRequest{Path: "/bin/sh", Arg: []string{"-c", ListDirScript, "sh", dir}, CaptureOutput: true}
}

// ParseListDir parses the script's output: one "MODEHEX SIZE MTIME NAME" line
// per entry. "." is dropped; ".." is kept so a browser can go up.
func ParseListDir(out []byte) ([]DirEntry, error) {
	var ents []DirEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			return nil, fmt.Errorf("directory listing: bad line %q", line)
		}
		raw, err1 := strconv.ParseUint(f[0], 16, 32)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		mt, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("directory listing: bad line %q", line)
		}
		if f[3] == "." {
			continue
		}
		ents = append(ents, DirEntry{Name: f[3], Size: size, Mode: unixMode(uint32(raw)), ModTime: time.Unix(mt, 0)})
	}
	return ents, sc.Err()
}

// unixMode converts st_mode bits to an fs.FileMode.
func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	case 0o010000:
		mode |= fs.ModeNamedPipe
	case 0o140000:
		mode |= fs.ModeSocket
	case 0o020000:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		mode |= fs.ModeDevice
	}
	return mode
}

// UnixMode converts an fs.FileMode back to st_mode bits (for the simulator).
func UnixMode(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	switch {
	case m.IsDir():
		bits |= 0o040000
	case m&fs.ModeSymlink != 0:
		bits |= 0o120000
	case m&fs.ModeNamedPipe != 0:
		bits |= 0o010000
	case m&fs.ModeSocket != 0:
		bits |= 0o140000
	case m&fs.ModeCharDevice != 0:
		bits |= 0o020000
	case m&fs.ModeDevice != 0:
		bits |= 0o060000
	default:
		bits |= 0o100000
	}
	return bits
}
