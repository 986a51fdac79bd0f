// Package audit is guestdeck's audit log: every mutating action, from the
// dashboard, the command line or guestdeck itself (an automatic thaw),
// appended as one JSON object per line to StateDir/audit.jsonl. An action is
// written twice under one ID: its intent before anything is sent, and its
// outcome after, so a crash in between still leaves the intent on record.
// Dry runs are written once, as phase "dry-run".
//
// The file is only ever appended to (O_APPEND, never truncated or rewritten).
// Concurrent guestdeck processes serialise their appends with flock, and an
// append that finds the file ending mid-line (a writer killed during its
// write) starts on a fresh line, so one torn line never swallows the next.
package audit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// FileName is the log's name inside the state directory.
const FileName = "audit.jsonl"

// Phases of an entry.
const (
	Intent  = "intent"  // written before anything is sent
	Outcome = "outcome" // written after, with each guest's result
	DryRun  = "dry-run" // nothing was sent
)

// Sources of an entry.
const (
	SourceCLI       = "cli"
	SourceDashboard = "dashboard"
	SourceAuto      = "auto" // guestdeck itself: a watchdog or deadline thaw
)

// Entry is one line of the log.
type Entry struct {
	Time     time.Time `json:"time"`
	ID       string    `json:"id"` // the same for an action's intent and outcome
	Phase    string    `json:"phase"`
	User     string    `json:"user"`
	UID      int       `json:"uid"`
	PID      int       `json:"pid"`
	Source   string    `json:"source"`
	Command  []string  `json:"command,omitempty"` // the command line, or the dashboard's action
	Action   string    `json:"action"`            // "freeze", "shutdown reboot", "agent guest-exec", "put /etc/motd"
	Selector []string  `json:"selector,omitempty"`
	Guests   []Guest   `json:"guests"`
	// Stopped, in an outcome, says the action was stopped part-way (the
	// dashboard's stop key): absent when it ran to the end.
	Stopped *Stop `json:"stopped,omitempty"`
}

// Stop is how an action was stopped: from At no further guest was started
// (those are in Guests with NotStarted), and the calls already sent
// finished with their real results, which are in Guests too.
type Stop struct {
	At         time.Time `json:"at"`
	By         string    `json:"by"` // StoppedByOperator
	NotStarted int       `json:"not_started"`
}

// Stop.By: the dashboard's stop key, or an interrupt of the command line
// (ctrl-c, SIGTERM, SIGHUP: its first stops starting guests, as the key).
const (
	StoppedByOperator  = "operator"
	StoppedByInterrupt = "interrupt"
)

// Words says how the action was stopped, for a person: "stopped by the
// operator at 15:04:05: 36 guests not started (nothing was sent to
// them)". By is read back from a file: the caller escapes the text.
func (s Stop) Words() string {
	n := fmt.Sprintf("%d guests", s.NotStarted)
	if s.NotStarted == 1 {
		n = "1 guest"
	}
	by := "the " + s.By
	if s.By == StoppedByInterrupt {
		by = "an interrupt"
	}
	return fmt.Sprintf("stopped by %s at %s: %s not started (nothing was sent to them)", by, s.At.Local().Format("15:04:05"), n)
}

// Shown is a guest's result for a person: "not started" for one whose
// turn never came (its Result, for older readers, is "failed").
func (g Guest) Shown() string {
	if g.NotStarted {
		return "not started"
	}
	return g.Result
}

// Guest is one guest's part of an entry.
type Guest struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	// Result: "pending" in an intent; "ok", "failed", "skipped" in an
	// outcome; "would-send" or "skipped" in a dry run.
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"` // the error, skip reason or summary
	// Sends is what was (or, in a dry run, would be) sent: agent commands
	// with their arguments. Secrets (passwords, file contents, stdin) are
	// never recorded.
	Sends []json.RawMessage `json:"sends,omitempty"`
	// NotStarted, in an outcome, says the guest's turn never came (the
	// action was stopped or cancelled first): nothing was sent to it. Its
	// Result stays "failed", which readers of older logs expect: the
	// action did not happen there.
	NotStarted bool `json:"not_started,omitempty"`
}

// Log appends to one audit file.
type Log struct {
	path string
	user string
	uid  int
	pid  int
	now  func() time.Time
}

// Open returns the log in dir (created 0700 when missing on first append).
func Open(dir string) *Log {
	l := &Log{path: filepath.Join(dir, FileName), uid: os.Getuid(), pid: os.Getpid(), now: time.Now}
	if u, err := user.Current(); err == nil {
		l.user = u.Username
	} else {
		l.user = strconv.Itoa(l.uid)
	}
	return l
}

// Path is the log file's path.
func (l *Log) Path() string { return l.path }

// NewID returns a fresh entry ID: the pid and random bits, unique across
// processes writing the same log.
func (l *Log) NewID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strconv.Itoa(l.pid) + "-" + hex.EncodeToString(b[:])
}

// Append fills in who and when and appends e as one line. The line is
// synced to disk before Append returns: an intent must be on record before
// the action it announces is sent.
func (l *Log) Append(e Entry) error {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.User, e.UID, e.PID = l.user, l.uid, l.pid
	if e.ID == "" {
		e.ID = l.NewID()
	}
	if e.Guests == nil {
		e.Guests = []Guest{}
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600) // RDWR: the torn-line check reads the last byte
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("audit log %s: lock: %w", l.path, err)
	}
	// The lock goes with the descriptor at Close.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], st.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("audit log %s: %w", l.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit log %s: %w", l.path, err)
	}
	return nil
}

// MaxLine bounds one line when reading; a longer line is reported as bad.
const MaxLine = 64 << 20

// Read calls fn for each entry of the log at path, in file order. Lines
// that do not parse (a torn write) are counted in bad and skipped. A
// missing file is no entries, not an error.
func Read(path string, fn func(Entry) error) (bad int, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, tooLong, err := readLine(r)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			var e Entry
			if tooLong || json.Unmarshal(line, &e) != nil {
				bad++
			} else if ferr := fn(e); ferr != nil {
				return bad, ferr
			}
		}
		if err == io.EOF {
			return bad, nil
		}
		if err != nil {
			return bad, fmt.Errorf("%s: %w", path, err)
		}
	}
}

// readLine reads up to '\n', keeping at most MaxLine bytes.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		part, err := r.ReadSlice('\n')
		if len(line)+len(part) > MaxLine {
			tooLong = true
		} else {
			line = append(line, part...)
		}
		if err != bufio.ErrBufferFull {
			return line, tooLong, err
		}
	}
}
