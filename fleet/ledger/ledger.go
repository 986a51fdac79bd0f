// Package ledger is guestdeck's memory of what it did to guests that must
// outlive the process doing it: filesystems it froze and has not yet seen
// thawed, and guests it suspended that have not answered since. A process
// killed with -9 cannot thaw what it froze; the ledger is how every later
// guestdeck learns that a guest was left frozen, by whom, since when, and
// until when a thaw was promised.
//
// The ledger is one JSON file, DIR/ledger.json (DIR is config.StateDir()),
// guarded by an exclusive flock on DIR/ledger.lock for every
// read-modify-write and a shared one for reads, so concurrent guestdeck
// processes never lose each other's entries. A change is written to a
// temporary file in DIR, fsynced, renamed over ledger.json and the
// directory fsynced: a crash leaves either the old file or the new one,
// never half of one. A file that does not decode anyway (edited by hand,
// disk trouble) is reported with its path; the next writer moves it aside to
// ledger.json.corrupt-UNIXTIME and starts afresh, so one bad file cannot
// stop freezes from being recorded (and so refused).
//
// A writer is identified by its PID, the process start time (clock ticks
// after boot, /proc/PID/stat field 22) and the boot ID, so a PID reused by
// another process, or an entry from before a reboot, is never taken for a
// live guestdeck.
package ledger

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kind is what guestdeck did to the guest.
type Kind string

const (
	Freeze  Kind = "freeze"  // froze its filesystems; cleared when a thaw is confirmed
	Suspend Kind = "suspend" // suspended it; cleared when it answers again
)

// MaxFileSize bounds what Load reads; a larger file is reported corrupt.
// 4 MiB is ~10,000 entries.
const MaxFileSize = 4 << 20

// File names inside the state directory.
const (
	FileName = "ledger.json"
	lockName = "ledger.lock"
)

// Entry is one thing guestdeck did and has not seen undone.
type Entry struct {
	ID   string `json:"id"` // random; set by Add
	Kind Kind   `json:"kind"`
	// Guest is the guest's name when the entry was written: for messages
	// only. Key is what identifies the guest (see fleet): a guest renamed
	// in the fleet file keeps its key, and another guest given the old name
	// does not get it.
	Guest   string `json:"guest"`
	Key     string `json:"key"`
	Address string `json:"address"`
	Host    string `json:"host,omitempty"` // libvirt host name, "" for a direct guest
	Mode    string `json:"mode,omitempty"` // suspend: ram, disk, hybrid
	// Who is the kind of process that did it: "run --hold", "run --yes
	// freeze", "dashboard", "run suspend".
	Who string `json:"who"`
	Process
	Since time.Time `json:"since"`
	// Until is the thaw the writer promised; zero when it promised none
	// (`run --yes freeze` leaves the guest frozen on purpose).
	Until time.Time `json:"until,omitzero"`
	// Config is the fleet file the writer used ("" for the default one,
	// "--demo" for the demo), for the thaw command a message suggests.
	Config string `json:"config,omitempty"`
}

// Process identifies one run of one program.
type Process struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"pid_start"` // clock ticks after boot; 0 when unknown
	Boot  string `json:"boot_id,omitempty"`
}

// Self is this process.
func Self() Process {
	pid := os.Getpid()
	start, _ := startTime(pid)
	return Process{PID: pid, Start: start, Boot: bootID()}
}

// Alive reports whether the process still runs: same boot, and the PID's
// start time unchanged (else the PID was reused).
func (p Process) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	if p.Boot != "" {
		if b := bootID(); b != "" && b != p.Boot {
			return false
		}
	}
	start, err := startTime(p.PID)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		// No /proc (not Linux): signal 0 says whether the PID exists.
		kerr := syscall.Kill(p.PID, 0)
		return kerr == nil || errors.Is(kerr, syscall.EPERM)
	}
	return p.Start == 0 || start == p.Start
}

// Same reports whether p and q are the same run.
func (p Process) Same(q Process) bool {
	return p.PID == q.PID && p.Start == q.Start && p.Boot == q.Boot
}

// startTime reads field 22 of /proc/PID/stat. The command name (field 2)
// may hold spaces and parentheses, so fields are counted after its last ')'.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// CorruptError: the ledger file exists but does not decode.
type CorruptError struct {
	Path string
	Err  error
	// MovedTo is where a writer moved the file aside ("" for a reader,
	// which leaves it in place).
	MovedTo string
}

func (e *CorruptError) Error() string {
	s := fmt.Sprintf("freeze ledger %s is corrupt: %v", e.Path, e.Err)
	if e.MovedTo != "" {
		s += "; kept as " + e.MovedTo + " and a new ledger started (entries in it are lost: check the guests it named)"
	} else {
		s += "; guests left frozen by a crashed guestdeck cannot be shown until it is repaired or removed"
	}
	return s
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Ledger is the ledger file in one state directory. It holds no open
// files: every call opens, locks and closes, so it is safe for concurrent
// use by goroutines and processes alike.
type Ledger struct {
	dir string
	// Warn, when set, is told about a corrupt file a writer moved aside.
	Warn func(error)
}

// Open returns the ledger in dir (created 0700 on the first write).
func Open(dir string) *Ledger { return &Ledger{dir: dir} }

// Path is the ledger file.
func (l *Ledger) Path() string { return filepath.Join(l.dir, FileName) }

type fileV1 struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// Load returns every entry. A missing file is an empty ledger; a corrupt
// one returns a *CorruptError (and no entries).
func (l *Ledger) Load() ([]Entry, error) {
	unlock, err := l.lock(syscall.LOCK_SH, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // no state directory: nothing recorded yet
		}
		return nil, err
	}
	defer unlock()
	return l.read()
}

// Add records e and returns it with its ID and, when e.PID is zero, this
// process as its writer.
func (l *Ledger) Add(e Entry) (Entry, error) {
	es, err := l.AddAll([]Entry{e})
	if err != nil {
		return e, err
	}
	return es[0], nil
}

// AddAll records several entries in one write (a bulk freeze: one fsync,
// not one per guest) and returns them as Add does.
func (l *Ledger) AddAll(add []Entry) ([]Entry, error) {
	add = append([]Entry(nil), add...)
	self := Self()
	for i := range add {
		e := &add[i]
		if e.ID == "" {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, fmt.Errorf("freeze ledger: %w", err)
			}
			e.ID = hex.EncodeToString(b[:])
		}
		if e.PID == 0 {
			e.Process = self
		}
		if e.Since.IsZero() {
			e.Since = time.Now()
		}
	}
	err := l.update(func(es []Entry) []Entry { return append(es, add...) })
	return add, err
}

// Remove deletes the entries with these IDs; unknown IDs are ignored.
func (l *Ledger) Remove(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := l.RemoveWhere(func(e Entry) bool {
		for _, id := range ids {
			if e.ID == id {
				return true
			}
		}
		return false
	})
	return err
}

// RemoveWhere deletes the entries drop matches and returns them.
func (l *Ledger) RemoveWhere(drop func(Entry) bool) ([]Entry, error) {
	var gone []Entry
	err := l.update(func(es []Entry) []Entry {
		kept := es[:0]
		for _, e := range es {
			if drop(e) {
				gone = append(gone, e)
			} else {
				kept = append(kept, e)
			}
		}
		if len(gone) == 0 {
			return nil // nothing to write
		}
		return kept
	})
	return gone, err
}

// update applies fn under the exclusive lock; fn returning nil means
// nothing changed (no write).
func (l *Ledger) update(fn func([]Entry) []Entry) error {
	unlock, err := l.lock(syscall.LOCK_EX, true)
	if err != nil {
		return err
	}
	defer unlock()
	es, err := l.read()
	var ce *CorruptError
	if errors.As(err, &ce) {
		aside := fmt.Sprintf("%s.corrupt-%d", l.Path(), time.Now().UnixNano())
		if rerr := os.Rename(l.Path(), aside); rerr != nil {
			return fmt.Errorf("%w (and moving it aside failed: %v)", err, rerr)
		}
		ce.MovedTo = aside
		if l.Warn != nil {
			l.Warn(ce)
		}
		es, err = nil, nil
	}
	if err != nil {
		return err
	}
	next := fn(es)
	if next == nil {
		return nil
	}
	return l.write(next)
}

// read decodes the file; the caller holds a lock.
func (l *Ledger) read() ([]Entry, error) {
	p := l.Path()
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("freeze ledger: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &CorruptError{Path: p, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("freeze ledger: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("freeze ledger %s: %w", p, err)
	}
	if len(b) > MaxFileSize {
		return nil, &CorruptError{Path: p, Err: fmt.Errorf("larger than %d bytes", MaxFileSize)}
	}
	var v fileV1
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, &CorruptError{Path: p, Err: err}
	}
	if dec.More() {
		return nil, &CorruptError{Path: p, Err: errors.New("data after the ledger object")}
	}
	if v.Version != 1 {
		return nil, &CorruptError{Path: p, Err: fmt.Errorf("version %d (this guestdeck reads version 1)", v.Version)}
	}
	for i, e := range v.Entries {
		if e.ID == "" || e.Key == "" || (e.Kind != Freeze && e.Kind != Suspend) {
			return nil, &CorruptError{Path: p, Err: fmt.Errorf("entry %d: missing id, key or kind", i)}
		}
	}
	return v.Entries, nil
}

// write replaces the file: temp file, fsync, rename, fsync of the directory.
func (l *Ledger) write(es []Entry) error {
	if es == nil {
		es = []Entry{}
	}
	b, err := json.MarshalIndent(fileV1{Version: 1, Entries: es}, "", "  ")
	if err != nil {
		return fmt.Errorf("freeze ledger: %w", err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(l.dir, FileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("freeze ledger: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("freeze ledger: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("freeze ledger: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("freeze ledger: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.Path()); err != nil {
		return fmt.Errorf("freeze ledger: %w", err)
	}
	done = true
	if d, err := os.Open(l.dir); err == nil {
		_ = d.Sync() // the rename itself must survive a crash
		d.Close()
	}
	return nil
}

// lock takes the ledger lock (LOCK_SH or LOCK_EX), creating the directory
// and lock file when create is set. The lock is released by closing.
func (l *Ledger) lock(how int, create bool) (unlock func(), err error) {
	p := filepath.Join(l.dir, lockName)
	flags := os.O_RDONLY | syscall.O_NOFOLLOW
	if create {
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			return nil, fmt.Errorf("freeze ledger: %w", err)
		}
		flags = os.O_RDWR | os.O_CREATE | syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(p, flags, 0o600)
	if err != nil && !create && errors.Is(err, fs.ErrNotExist) {
		// No lock file yet: nobody has written; read without locking.
		if _, serr := os.Stat(l.dir); serr != nil {
			return nil, serr
		}
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("freeze ledger: lock %s: %w", p, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("freeze ledger: lock %s is not a regular file", p)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("freeze ledger: flock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}
