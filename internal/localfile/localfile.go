// Package localfile is where downloads land on this machine: the one policy
// for the command line's get and the dashboard's download.
//
// A download must never replace a special file. A character or block device
// or a FIFO (or a symlink to one) is written in place, as `cat > DEST` would;
// a socket is refused; a regular file, or a path that does not exist yet, is
// written to a temporary file in the same directory and renamed over the
// destination only once complete, so a failed or cancelled download leaves
// the old content (or nothing) behind. A symlink to a regular file is
// followed: its target is replaced, the link stays.
package localfile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Kind is what a destination path names, symlinks followed.
type Kind int

const (
	Missing Kind = iota // nothing there yet (or a dangling symlink)
	Regular
	Directory
	CharDevice
	BlockDevice
	FIFO
	Socket
	Irregular // anything else the system reports
)

func (k Kind) String() string {
	switch k {
	case Missing:
		return "missing"
	case Regular:
		return "regular file"
	case Directory:
		return "directory"
	case CharDevice:
		return "character device"
	case BlockDevice:
		return "block device"
	case FIFO:
		return "FIFO"
	case Socket:
		return "socket"
	}
	return "irregular file"
}

// InPlace reports whether a download into this kind writes the file itself
// rather than replacing it.
func (k Kind) InPlace() bool { return k == CharDevice || k == BlockDevice || k == FIFO }

func kindOf(m fs.FileMode) Kind {
	switch {
	case m.IsRegular():
		return Regular
	case m.IsDir():
		return Directory
	case m&fs.ModeCharDevice != 0:
		return CharDevice
	case m&fs.ModeDevice != 0:
		return BlockDevice
	case m&fs.ModeNamedPipe != 0:
		return FIFO
	case m&fs.ModeSocket != 0:
		return Socket
	}
	return Irregular
}

// Error is a local failure, worded with the path the operator named.
type Error struct {
	What string // "cannot write into /tmp/x", "/run/a.sock is a socket"
	Err  error
}

func (e *Error) Error() string { return e.What + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrRefused is wrapped by Create's errors for destinations a download is
// never written into (sockets, irregular files).
var ErrRefused = errors.New("a download is never written into one")

// Refused returns the *Error (wrapping ErrRefused) for a destination of a
// kind no download is written into: a socket, or an irregular file. It
// returns nil for every other kind.
func Refused(path string, k Kind) error {
	switch k {
	case Socket:
		return &Error{What: path + " is a socket", Err: ErrRefused}
	case Irregular:
		return &Error{What: path + " is an irregular file", Err: ErrRefused}
	}
	return nil
}

// Inspect reports what path names (symlinks followed) and the path bytes
// would go to: the final target of a symlink to an existing file, else path.
func Inspect(path string) (Kind, string, error) {
	lst, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Missing, path, nil
	}
	if err != nil {
		return 0, path, err
	}
	if lst.Mode()&fs.ModeSymlink == 0 {
		return kindOf(lst.Mode()), path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A dangling link: the download replaces the link itself rather
		// than creating a file wherever it points.
		return Missing, path, nil
	}
	if err != nil {
		return 0, path, err
	}
	st, err := os.Stat(target)
	if err != nil {
		return 0, path, err
	}
	return kindOf(st.Mode()), target, nil
}

// File is an open download destination. Write to it, then Commit; Abort on
// failure. Exactly one of them must be called.
type File struct {
	kind   Kind
	target string // where the bytes end up
	f      *os.File
	tmp    string // atomic: the temporary file renamed over target
	perm   fs.FileMode
	owner  *[2]int // atomic over an existing file: its uid and gid
	stop   func() bool
	// noReplace: Commit links the new file into place, failing if a file
	// appeared there meanwhile, instead of renaming over it.
	noReplace bool
}

// Create opens path for a download. A device or FIFO is opened for writing
// in place (a FIFO waits, until ctx ends, for a reader to appear); a regular
// or missing path gets a temporary file beside it. Sockets, directories and
// irregular files are refused with an *Error.
func Create(ctx context.Context, path string) (*File, error) {
	kind, target, err := Inspect(path)
	if err != nil {
		return nil, &Error{What: "cannot write to " + path, Err: unwrapPath(err)}
	}
	if err := Refused(path, kind); err != nil {
		return nil, err
	}
	switch kind {
	case Directory:
		return nil, &Error{What: "cannot write to " + path, Err: syscall.EISDIR}
	case CharDevice, BlockDevice, FIFO:
		return openInPlace(ctx, path, target, kind)
	}
	return createAtomic(target, kind)
}

// CreateNew is Create for a path that must not exist: it is refused with an
// *Error wrapping fs.ErrExist when something is there (a file, a device, a
// dangling symlink), and Commit fails, leaving it alone, if something
// appears there during the download. This is get without --force.
func CreateNew(path string) (*File, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, &Error{What: "not replacing " + path, Err: fs.ErrExist}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{What: "cannot write to " + path, Err: unwrapPath(err)}
	}
	lf, err := createAtomic(path, Missing)
	if err != nil {
		return nil, err
	}
	lf.noReplace = true
	return lf, nil
}

// openInPlace opens an existing device or FIFO for writing without creating
// or truncating anything, and checks that what it opened is still one.
func openInPlace(ctx context.Context, path, target string, kind Kind) (*File, error) {
	flag := os.O_WRONLY | syscall.O_NOCTTY
	if kind == FIFO {
		// A blocking open would wait for a reader beyond any cancel;
		// without a reader a non-blocking one fails with ENXIO, and is
		// retried until one comes or ctx ends.
		flag |= syscall.O_NONBLOCK
	}
	var f *os.File
	wait := 10 * time.Millisecond
	for {
		var err error
		f, err = os.OpenFile(target, flag, 0)
		if err == nil {
			break
		}
		if kind != FIFO || !errors.Is(err, syscall.ENXIO) {
			return nil, &Error{What: "cannot write to " + path, Err: unwrapPath(err)}
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, &Error{What: "no process opened FIFO " + path + " for reading", Err: ctx.Err()}
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
	st, err := f.Stat()
	if err != nil || kindOf(st.Mode()) != kind {
		f.Close()
		return nil, &Error{What: "cannot write to " + path, Err: errors.New("it changed while being opened")}
	}
	lf := &File{kind: kind, target: target, f: f}
	// A FIFO whose reader stalls (or a slow terminal) would block a write
	// beyond any cancel: ending ctx expires the write instead. Files the
	// runtime cannot poll (most devices) ignore the deadline; their writes
	// do not stall.
	lf.stop = context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	return lf, nil
}

// createAtomic makes the temporary file beside target. It is created with
// mode 0644 less the umask (a copy of a guest's file is no one else's to
// write, whatever a group-friendly umask says); replacing a regular
// file, it takes that file's permissions (and owner, where allowed) at
// Commit.
func createAtomic(target string, kind Kind) (*File, error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	lf := &File{kind: kind, target: target}
	if kind == Regular {
		if st, err := os.Stat(target); err == nil {
			lf.perm = st.Mode().Perm() | st.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				lf.owner = &[2]int{int(sys.Uid), int(sys.Gid)}
			}
		}
	}
	for range 100 {
		var rnd [6]byte
		rand.Read(rnd[:])
		name := filepath.Join(dir, "."+base+"."+hex.EncodeToString(rnd[:])+".part")
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			// The temporary name means nothing to the operator: name the directory.
			return nil, &Error{What: "cannot write into " + filepath.Clean(dir), Err: unwrapPath(err)}
		}
		lf.f, lf.tmp = f, name
		return lf, nil
	}
	return nil, &Error{What: "cannot write into " + filepath.Clean(dir), Err: errors.New("no free temporary name")}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Kind is what the destination was when it was opened.
func (f *File) Kind() Kind { return f.kind }

// InPlace reports whether bytes go straight into the destination (a device
// or FIFO), so that a failed download cannot be undone.
func (f *File) InPlace() bool { return f.tmp == "" }

// Path is where the bytes end up: the destination, or the file a symlink
// to a regular file points at.
func (f *File) Path() string { return f.target }

func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Commit finishes the download: an atomic one is synced, given the old
// file's permissions and renamed over the destination; an in-place one is
// closed.
func (f *File) Commit() error {
	if f.stop != nil {
		f.stop()
	}
	if f.InPlace() {
		if err := f.f.Close(); err != nil {
			return &Error{What: "write " + f.target, Err: unwrapPath(err)}
		}
		return nil
	}
	err := f.finishTemp()
	if err == nil {
		// Re-checked at the last moment: a special file that appeared
		// meanwhile is not replaced.
		if k, _, ierr := Inspect(f.target); ierr == nil && (k.InPlace() || k == Socket || k == Directory || k == Irregular) {
			err = &Error{What: "not replacing " + f.target, Err: fmt.Errorf("it became a %s during the download", k)}
		}
	}
	switch {
	case err == nil && f.noReplace:
		// link fails where anything exists: nothing that appeared during
		// the download is replaced.
		if lerr := os.Link(f.tmp, f.target); lerr != nil {
			if errors.Is(lerr, fs.ErrExist) {
				err = &Error{What: "not replacing " + f.target, Err: errors.New("it appeared during the download")}
			} else {
				err = &Error{What: "cannot write " + f.target, Err: unwrapLink(lerr)}
			}
		}
		os.Remove(f.tmp)
		return err
	case err == nil:
		if rerr := os.Rename(f.tmp, f.target); rerr != nil {
			err = &Error{What: "cannot write " + f.target, Err: unwrapLink(rerr)}
		}
	}
	if err != nil {
		os.Remove(f.tmp)
	}
	return err
}

func (f *File) finishTemp() error {
	var err error
	if f.owner != nil {
		// Only root may give a file away; anyone else keeps their own.
		if cerr := f.f.Chown(f.owner[0], f.owner[1]); cerr != nil && !errors.Is(cerr, fs.ErrPermission) {
			err = cerr
		}
	}
	if f.perm != 0 && err == nil {
		err = f.f.Chmod(f.perm)
	}
	if err == nil {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &Error{What: "write " + f.target, Err: unwrapPath(err)}
	}
	return nil
}

func unwrapLink(err error) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// Abort gives up: an atomic download's temporary file is removed and the
// destination left as it was; an in-place one is closed (what was written
// stays written).
func (f *File) Abort() {
	if f.stop != nil {
		f.stop()
	}
	f.f.Close()
	if f.tmp != "" {
		os.Remove(f.tmp)
	}
}
