package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Recent is the end of a log as Tail read it.
type Recent struct {
	// Entries are the newest entries, newest first.
	Entries []Entry
	// Bad counts the lines in the part read that do not parse (a torn
	// write, or a line longer than the part read).
	Bad int
	// Older reports that the log has entries before those returned: the
	// read stopped at n entries or at maxBytes.
	Older bool
}

// Tail reads the newest entries of the log at path: at most n of them,
// from at most the last maxBytes of the file, so a log of years costs what
// a day's does. A missing file is no entries, not an error.
func Tail(path string, n int, maxBytes int64) (Recent, error) {
	var out Recent
	// O_NONBLOCK: a FIFO put at the path must not hold the read (and the
	// pane waiting on it) forever; it is refused just below.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		return out, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return out, err
	}
	if !st.Mode().IsRegular() {
		return out, fmt.Errorf("%s: not a regular file", path)
	}
	size := st.Size()
	start := max(size-maxBytes, 0)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	if start > 0 {
		// The read began inside a line: that line is older than the window.
		out.Older = true
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			out.Bad++ // one line longer than the whole window
			return out, nil
		}
		buf = buf[i+1:]
	}
	for len(buf) > 0 && n > 0 {
		buf = bytes.TrimRight(buf, "\n")
		i := bytes.LastIndexByte(buf, '\n')
		line := buf[i+1:]
		buf = buf[:max(i, 0)]
		if i < 0 {
			buf = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Entry
		if json.Unmarshal(line, &e) != nil {
			out.Bad++
			continue
		}
		out.Entries = append(out.Entries, e)
		if len(out.Entries) == n {
			out.Older = out.Older || len(bytes.TrimSpace(buf)) > 0
			break
		}
	}
	return out, nil
}
