package agentclient

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// The protocol has no directory listing; guests that allow guest-exec can run
// this script instead. stat's %f (raw mode in hex), %s and %Y work the same
// in GNU coreutils and busybox, so one parser serves both. The name is not
// left to stat: printf writes it raw and ends it with a NUL, the one byte no
// file name holds, so a name with a newline (or anything else) can neither
// break the listing nor forge an entry. An entry stat cannot read (gone
// meanwhile) prints nothing at all. ListDirScript is exported so the
// simulator can recognise the request.
const ListDirScript = `cd -- "$1" || exit 2; for f in .* *; do [ -e "$f" ] || [ -L "$f" ] || continue; stat -c '%f %s %Y' -- "$f" && printf '%s\0' "$f"; done; exit 0`

// DirEntry is one entry of a guest directory. Name is exactly the bytes the
// guest reported (it may hold any byte but '/' and NUL): escaping it for a
// screen is the presentation's job.
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

// MaxDirEntries caps a directory listing: 16 MiB of output holds two
// million minimal records, which as entries would take a few hundred MB.
// A guest that sends more is cut there, with an error saying so.
const MaxDirEntries = 100_000

// errTooManyEntries is a listing cut at MaxDirEntries.
var errTooManyEntries = fmt.Errorf("more than %d entries; the rest are not shown", MaxDirEntries)

// ParseListDir parses the script's output: per entry "MODEHEX SIZE MTIME",
// a newline, the name, a NUL. "." is dropped; ".." is kept so a browser can
// go up. A record cut off at the end (the agent truncated the output), or
// entries past MaxDirEntries, are reported as an error along with the
// entries before them.
func ParseListDir(out []byte) ([]DirEntry, error) {
	// No file name is empty or holds a slash: such a record is not from
	// the script but from a guest that lies ("../../x"). It is dropped, so
	// it can name nothing outside the directory, and the honest entries
	// still list.
	keep := func(name string) bool { return name != "" && name != "." && !strings.Contains(name, "/") }
	return parseRecords(out, keep, unixMode)
}

// parseRecords splits a listing into "MODEHEX SIZE MTIME\nNAME\0" records,
// the one format both listing scripts print. keep drops the names that are
// no entry of the directory; mode converts the first field.
func parseRecords(out []byte, keep func(name string) bool, mode func(uint32) fs.FileMode) ([]DirEntry, error) {
	var ents []DirEntry
	for len(out) > 0 {
		if len(ents) == MaxDirEntries {
			return ents, fmt.Errorf("directory listing: %w", errTooManyEntries)
		}
		end := bytes.IndexByte(out, 0)
		if end < 0 {
			return ents, fmt.Errorf("directory listing: %w", errCutRecord)
		}
		rec := out[:end]
		out = out[end+1:]
		nl := bytes.IndexByte(rec, '\n')
		if nl < 0 {
			return nil, badRecord(rec)
		}
		f := strings.Split(string(rec[:nl]), " ")
		name := string(rec[nl+1:])
		if len(f) != 3 {
			return nil, badRecord(rec)
		}
		if !keep(name) {
			continue
		}
		raw, err1 := strconv.ParseUint(f[0], 16, 32)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		mt, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || size < 0 {
			return nil, badRecord(rec)
		}
		ents = append(ents, DirEntry{Name: name, Size: size, Mode: mode(uint32(raw)), ModTime: time.Unix(mt, 0)})
	}
	return ents, nil
}

var errCutRecord = errors.New("the last record is cut off")

// badRecord quotes (escaped, and at most 80 bytes of) a record that does
// not parse.
func badRecord(rec []byte) error {
	more := ""
	if len(rec) > 80 {
		rec, more = rec[:80], "..."
	}
	return fmt.Errorf("directory listing: bad record %q%s", rec, more)
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
