// Package history keeps a prompt's history (the dashboard's filters) in a
// small file that outlives the process: one entry a line, oldest first.
//
// The file is the operator's, but anyone may have edited it: reading it is
// bounded (MaxBytes, MaxEntries, MaxEntryBytes) and drops entries a terminal
// would interpret (control characters, escapes, bidi overrides, broken
// UTF-8), so that recalling one can neither flood memory nor inject into
// the screen. Writing it replaces it atomically (a temporary file beside
// it, renamed over it) with mode 0600, and never replaces anything but a
// regular file.
package history

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/guestdeck/guestdeck/tui/present"
)

// Bounds on what is read and kept.
const (
	MaxEntries    = 100      // entries kept, the newest
	MaxEntryBytes = 512      // a longer entry is dropped
	MaxBytes      = 64 << 10 // of the file read; the rest is ignored
)

// File is a history file. The zero value is unusable; use Open.
type File struct {
	path string
}

// Open names the history file at path; nothing is read or created yet.
func Open(path string) *File { return &File{path: path} }

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Load reads the entries, oldest first. A missing file is an empty history.
// Entries that are blank, too long or not clean text (see the package
// comment) are dropped, duplicates keep their newest place, and only the
// newest MaxEntries stay. A path that is not a regular file (a FIFO, a
// device, a directory) is an error, and is not opened for reading: a FIFO
// would block the dashboard's start.
func (f *File) Load() ([]string, error) {
	st, err := os.Lstat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", f.path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("history %s: not a regular file (%s)", f.path, st.Mode().Type())
	}
	// O_NONBLOCK and O_NOFOLLOW: the file may be swapped for a FIFO or a
	// link between the Lstat and the open.
	file, err := os.OpenFile(f.path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", f.path, err)
	}
	defer file.Close()
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("history %s: not a regular file", f.path)
	}
	data, err := io.ReadAll(io.LimitReader(file, MaxBytes))
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", f.path, err)
	}
	if len(data) == MaxBytes {
		// The last line may be cut in the middle: drop it.
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			data = data[:i]
		}
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxBytes+1)
	for sc.Scan() {
		if e, ok := clean(sc.Text()); ok {
			out = Add(out, e)
		}
	}
	return out, nil
}

// clean is an entry as kept, and whether it is kept at all.
func clean(line string) (string, bool) {
	e := strings.TrimSpace(line)
	if e == "" || len(e) > MaxEntryBytes || !present.Clean(e) {
		return "", false
	}
	return e, true
}

// Add appends e to entries as the newest, moving it there if it is already
// in, and drops the oldest beyond MaxEntries. A blank or unclean entry is
// not added.
func Add(entries []string, e string) []string {
	e, ok := clean(e)
	if !ok {
		return entries
	}
	out := slices.DeleteFunc(slices.Clone(entries), func(x string) bool { return x == e })
	out = append(out, e)
	if len(out) > MaxEntries {
		out = out[len(out)-MaxEntries:]
	}
	return out
}

// Save replaces the file with entries (the newest MaxEntries of the clean
// ones), creating its directory (0700) if need be. The file is written
// beside the old one and renamed over it, so a crash leaves the old
// history or the new one, never half; it is 0600. Where the path holds
// something other than a regular file (a FIFO, a device, a link), Save
// refuses and leaves it alone.
func (f *File) Save(entries []string) error {
	var kept []string
	for _, e := range entries {
		kept = Add(kept, e)
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if st, err := os.Lstat(f.path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("history %s: not a regular file (%s); not replacing it", f.path, st.Mode().Type())
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("history %s: %w", f.path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*") // 0600
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var b strings.Builder
	for _, e := range kept {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	done = true
	return nil
}
