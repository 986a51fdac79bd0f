package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/internal/localfile"
	"github.com/guestdeck/guestdeck/tui/present"
)

// startLoad cancels the load in flight (a newer one replaces it) and returns
// the context and sequence number of the next.
func (m *Model) startLoad(what string) (context.Context, context.CancelFunc, int) {
	if m.loadCxl != nil {
		m.loadCxl()
	}
	m.seq++
	ctx, cancel := context.WithTimeout(m.life, m.opts.Timeout)
	m.loadCxl = cancel
	m.loading = what
	return ctx, cancel, m.seq
}

// list lists dir in a Cmd. pick names the entry to put the cursor on; with
// open set, that entry is then opened (a path typed in the prompt).
func (m *Model) list(dir, pick string, open bool) tea.Cmd {
	ctx, cancel, seq := m.startLoad("listing " + dir + " …")
	src, guest := m.src, m.guest
	return func() tea.Msg {
		defer cancel()
		ents, err := src.ListDir(ctx, guest, dir)
		return listedMsg{seq: seq, dir: dir, ents: ents, err: err, pick: pick, open: open}
	}
}

// errViewLimit stops a read once the viewer has all it will show.
var errViewLimit = errors.New("view limit reached")

// capWriter keeps the first limit bytes and then fails, which ends the read:
// viewing a huge file costs at most limit bytes of memory.
type capWriter struct {
	buf   []byte
	limit int64
	over  bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	room := c.limit - int64(len(c.buf))
	if int64(len(p)) > room {
		c.buf = append(c.buf, p[:room]...)
		c.over = true
		return int(room), errViewLimit
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// openFile reads up to ViewLimit bytes of p for the viewer; size is the
// file's size when a listing told it, else -1.
func (m *Model) openFile(p string, size int64) tea.Cmd {
	ctx, cancel, seq := m.startLoad("opening " + p + " …")
	src, guest, limit, st := m.src, m.guest, m.opts.ViewLimit, m.st
	return func() tea.Msg {
		defer cancel()
		w := &capWriter{limit: limit}
		_, err := src.ReadFile(ctx, guest, p, w, nil)
		if w.over && errors.Is(err, errViewLimit) {
			err = nil
		}
		if err != nil {
			return openedMsg{seq: seq, path: p, err: err}
		}
		if !w.over {
			size = int64(len(w.buf)) // read to the end: now it is known
		}
		// Rendering megabytes (hex above all) takes a while: do it here,
		// off the Update path.
		return openedMsg{seq: seq, path: p, view: newFileView(p, w.buf, size, w.over, limit, st)}
	}
}

func (m *Model) endLoad(seq int) bool {
	if seq != m.seq {
		return false // superseded or cancelled
	}
	m.loading = ""
	if m.loadCxl != nil {
		m.loadCxl()
		m.loadCxl = nil
	}
	return true
}

func (m *Model) onListed(msg listedMsg) tea.Cmd {
	if !m.endLoad(msg.seq) {
		return nil
	}
	if msg.err != nil {
		if msg.open {
			// The parent may be unlistable while the file is readable.
			return m.openFile(joinPath(msg.dir, msg.pick), -1)
		}
		m.checkExec()
		if !m.canExec && !m.frozen { // frozen: the error says so, and a path would fail too
			m.setMsg("no directory listing: "+m.noExec+"; open a file by path", msgInfo)
			return m.openPrompt(promptPath, "open: ", m.dir)
		}
		m.setMsg(errText(msg.err, "list "+msg.dir, m.guest), msgErr)
		return nil
	}
	m.dir, m.ents, m.listed = msg.dir, sortEntries(msg.dir, msg.ents), true
	m.cursor, m.top = 0, 0
	if msg.pick != "" {
		i := slices.IndexFunc(m.ents, func(e agentclient.DirEntry) bool { return e.Name == msg.pick })
		switch {
		case i >= 0:
			m.cursor = i
		case msg.open:
			m.setMsg("no such file or directory: "+joinPath(msg.dir, msg.pick), msgErr)
			return nil
		}
	}
	m.clampCursor()
	if msg.open {
		return m.openEntry()
	}
	return nil
}

// sortEntries puts ".." first, then directories, then files, by name; ".."
// of the root is dropped.
func sortEntries(dir string, ents []agentclient.DirEntry) []agentclient.DirEntry {
	out := make([]agentclient.DirEntry, 0, len(ents))
	for _, e := range ents {
		if e.Name == ".." && isRoot(dir) {
			continue
		}
		out = append(out, e)
	}
	rank := func(e agentclient.DirEntry) int {
		switch {
		case e.Name == "..":
			return 0
		case e.IsDir():
			return 1
		}
		return 2
	}
	slices.SortStableFunc(out, func(a, b agentclient.DirEntry) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func (m *Model) onOpened(msg openedMsg) tea.Cmd {
	if !m.endLoad(msg.seq) {
		return nil
	}
	if msg.err != nil {
		isDir := strings.Contains(msg.err.Error(), "Is a directory")
		if isDir && m.canExec {
			return m.list(msg.path, "", false) // a symlink to a directory
		}
		if isDir {
			m.setMsg(msg.path+" is a directory: listing it needs guest-exec ("+m.noExec+")", msgErr)
			return m.openPrompt(promptPath, "open: ", withSlash(msg.path))
		}
		m.setMsg(errText(msg.err, "open "+msg.path, m.guest), msgErr)
		if !m.canExec && m.view == nil {
			// Nothing else to do without listings: let the path be fixed.
			return m.openPrompt(promptPath, "open: ", msg.path)
		}
		return nil
	}
	m.view = msg.view
	m.view.resize(m.width, m.bodyHeight())
	m.setMsg(m.view.note(), msgInfo)
	return nil
}

// errText turns an error into one clear line naming what failed: the
// words are present.Reason's, with the agent's errno texts shortened.
func errText(err error, what, guest string) string {
	var lfe *localfile.Error
	switch {
	case errors.As(err, &lfe):
		// A failure on this machine's side of a transfer.
		if errors.Is(lfe.Err, localfile.ErrRefused) {
			return what + ": refused: " + lfe.Error()
		}
		return errText(lfe.Err, what+": "+lfe.What, guest)
	case agentclient.IsFrozen(err), agentclient.IsDisabled(err), agentclient.IsTimeout(err),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// Reason has the words for these.
	default:
		s := err.Error()
		for _, errno := range []string{"Permission denied", "No such file or directory", "Is a directory", "Not a directory"} {
			if strings.Contains(s, errno) {
				return what + ": " + strings.ToLower(errno)
			}
		}
	}
	// The fleet prefixes "guest NAME: ": the browser already names the guest.
	// The agent's own words are escaped (and escaped again where drawn).
	return what + ": " + strings.TrimPrefix(present.Reason(err, 0), "guest "+present.Text(guest, 0)+": ")
}

// Transfers.

type downloadPlan struct {
	remote string
	size   int64 // -1 unknown
}

type uploadPlan struct {
	local  string
	size   int64
	remote string
}

// errExists asks before a download writes over something local: a file it
// would replace, or a device or FIFO it would write into.
type errExists struct {
	path string
	kind localfile.Kind
}

func (e errExists) Error() string { return e.path + " exists" }

// errNoLocalName refuses a download into a directory when the guest file's
// name is no local file name (present.LocalName).
type errNoLocalName struct{ dir string }

func (e errNoLocalName) Error() string {
	// The remedy first: the line is cut to the screen's width.
	return "name the local file in " + e.dir + ": the guest file's name cannot be one " +
		"(it is . or .., or holds control or invisible characters)"
}

// question is the confirmation a download into e.path needs.
func (e errExists) question() string {
	if e.kind.InPlace() {
		return fmt.Sprintf("%s is a %s: write the download into it?", e.path, e.kind)
	}
	return e.path + " exists: overwrite it?"
}

// download copies the guest file remote to local (see localfile: a regular
// file is replaced only once the copy is complete, so an error or a cancel
// leaves it as it was; a device or FIFO is written in place; a socket is
// refused).
func download(ctx context.Context, src Source, guest, remote, local string, overwrite bool, progress func(done, total int64)) (int64, string, error) {
	kind, _, err := localfile.Inspect(local)
	if err == nil && kind == localfile.Directory {
		// Named after the guest's file only when that is a plain name.
		name, ok := present.LocalName(remote)
		if !ok {
			return 0, local, errNoLocalName{dir: local}
		}
		local = filepath.Join(local, name)
		kind, _, err = localfile.Inspect(local)
	}
	if err == nil {
		if err := localfile.Refused(local, kind); err != nil {
			return 0, local, err
		}
		if !overwrite && kind != localfile.Missing {
			return 0, local, errExists{path: local, kind: kind}
		}
	}
	f, err := localfile.Create(ctx, local)
	if err != nil {
		return 0, local, err
	}
	n, err := src.ReadFile(ctx, guest, remote, f, progress)
	if err != nil {
		f.Abort()
		return n, local, err
	}
	return n, local, f.Commit()
}

// upload copies the local file to remote on the guest.
func upload(ctx context.Context, src Source, guest string, p uploadPlan, progress func(done, total int64)) (int64, error) {
	f, err := os.Open(p.local)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return src.WriteFile(ctx, guest, p.remote, f, p.size, progress)
}

// startDownload runs a download as a job.
func (m *Model) startDownload(d downloadPlan, local string, overwrite bool) tea.Cmd {
	if m.job != nil {
		m.setMsg("a transfer is running (esc cancels it)", msgErr)
		return nil
	}
	src, guest := m.src, m.guest
	title := d.remote + " → " + local
	return m.startJob(jobDownload, title, d.size, func(ctx context.Context, prog func(done, total int64)) jobResult {
		n, final, err := download(ctx, src, guest, d.remote, local, overwrite, prog)
		return jobResult{n: n, local: final, remote: d.remote, err: err}
	}, func() { m.pendingDownload = &d })
}

// startUpload runs an upload as a job.
func (m *Model) startUpload(p uploadPlan) tea.Cmd {
	if m.opts.Readonly {
		m.setMsg("read-only mode: upload refused", msgErr)
		return nil
	}
	if m.job != nil {
		m.setMsg("a transfer is running (esc cancels it)", msgErr)
		return nil
	}
	src, guest := m.src, m.guest
	title := p.local + " → " + guest + ":" + p.remote
	return m.startJob(jobUpload, title, p.size, func(ctx context.Context, prog func(done, total int64)) jobResult {
		n, err := upload(ctx, src, guest, p, prog)
		return jobResult{n: n, local: p.local, remote: p.remote, err: err}
	}, nil)
}

func (m *Model) jobProgress(msg jobProgressMsg) tea.Cmd {
	j := m.job
	if j == nil || j.id != msg.id {
		return nil
	}
	j.doneBytes = msg.done
	if msg.total > 0 {
		j.total = msg.total
	}
	return j.wait
}

func (m *Model) jobDone(msg jobDoneMsg) tea.Cmd {
	j := m.job
	if j == nil || j.id != msg.id {
		return nil
	}
	m.job = nil
	r := msg.res
	var ex errExists
	switch {
	case errors.As(r.err, &ex) && m.pendingDownload != nil:
		d := *m.pendingDownload
		local := ex.path
		m.confirm = &confirmation{
			question: ex.question(),
			yes:      func() tea.Cmd { return m.startDownload(d, local, true) },
		}
		return nil
	case r.err != nil:
		what := "download " + r.remote
		if j.kind == jobUpload {
			what = "upload to " + r.remote
		}
		msg := errText(r.err, what, m.guest)
		var we *agentclient.WriteError
		if errors.As(r.err, &we) {
			// What the guest's file holds now is what to know next.
			msg += "; " + r.remote + " on " + m.guest + " " + we.Outcome()
		}
		m.setMsg(msg, msgErr)
		return nil
	case j.kind == jobDownload:
		m.setMsg(fmt.Sprintf("downloaded %s (%s) to %s", r.remote, formatSize(r.n), r.local), msgOK)
		return nil
	}
	m.setMsg(fmt.Sprintf("uploaded %s (%s) to %s:%s", r.local, formatSize(r.n), m.guest, r.remote), msgOK)
	if m.canExec && m.listed && parentPath(r.remote) == m.dir && m.view == nil {
		return m.list(m.dir, basePath(r.remote), false)
	}
	return nil
}

// statLocal checks an upload's source in a Cmd.
func statLocal(local string) tea.Cmd {
	return func() tea.Msg {
		st, err := os.Stat(local)
		switch {
		case err != nil:
			return statMsg{local: local, err: err}
		case st.IsDir():
			return statMsg{local: local, err: errors.New("is a directory")}
		case !st.Mode().IsRegular():
			return statMsg{local: local, err: errors.New("not a regular file")}
		}
		return statMsg{local: local, size: st.Size()}
	}
}

func (m *Model) onStat(msg statMsg) tea.Cmd {
	if msg.err != nil {
		m.setMsg(errText(msg.err, "upload "+msg.local, m.guest), msgErr)
		return nil
	}
	m.pendingUpload = &uploadPlan{local: msg.local, size: msg.size}
	dir := m.dir
	if m.view != nil {
		dir = parentPath(m.view.path)
	}
	def := joinPath(dir, filepath.Base(msg.local))
	return m.openPrompt(promptUploadTo, "to guest path: ", def)
}

// probe is what the guest says of an upload's destination before the
// question is asked.
type probe struct {
	exists, dir bool
	// unsure is why it could not be told ("" when it could): the
	// question then says so rather than claim the file is new.
	unsure string
}

// probeUpload asks the guest whether p.remote exists, in a Cmd: from a
// listing of its directory where guest-exec allows one, else by opening it
// for reading (guest-file-open, mode "r") and stopping at its first chunk.
// The answer comes back as a probedMsg; the confirmation is asked then.
func (m *Model) probeUpload(p uploadPlan) tea.Cmd {
	ctx, cancel, seq := m.startLoad("checking " + p.remote + " …")
	src, guest, canExec := m.src, m.guest, m.canExec
	return func() tea.Msg {
		defer cancel()
		return probedMsg{plan: p, found: probeRemote(ctx, src, guest, p.remote, canExec), seq: seq}
	}
}

func probeRemote(ctx context.Context, src Source, guest, remote string, canExec bool) probe {
	if canExec {
		ents, err := src.ListDir(ctx, guest, parentPath(remote))
		if err == nil {
			name := basePath(remote)
			for _, e := range ents {
				if e.Name == name {
					return probe{exists: true, dir: e.IsDir()}
				}
			}
			return probe{}
		}
	}
	w := &capWriter{limit: 0}
	_, err := src.ReadFile(ctx, guest, remote, w, nil)
	switch {
	case err == nil || errors.Is(err, errViewLimit):
		return probe{exists: true}
	case ctx.Err() != nil:
		return probe{unsure: "the guest did not say in time"}
	}
	// The agent says why in its own words only (qemu-ga quotes strerror).
	s := err.Error()
	switch {
	case strings.Contains(s, "No such file or directory"), strings.Contains(s, "cannot find the file"):
		return probe{}
	case strings.Contains(s, "Is a directory"):
		return probe{exists: true, dir: true}
	}
	return probe{unsure: strings.TrimPrefix(present.Reason(err, 0), "guest "+present.Text(guest, 0)+": ")}
}

// onProbed asks before the upload: the download's question ("PATH exists:
// overwrite it?") where the file is there, a plain one where it is not.
func (m *Model) onProbed(msg probedMsg) tea.Cmd {
	if !m.endLoad(msg.seq) {
		return nil
	}
	p, f := msg.plan, msg.found
	what := fmt.Sprintf("%s (%s)", p.local, formatSize(p.size))
	var q string
	switch {
	case f.dir:
		m.setMsg(p.remote+" is a directory on "+m.guest+": type the file's path in it", msgErr)
		m.pendingUpload = &uploadPlan{local: p.local, size: p.size}
		return m.openPrompt(promptUploadTo, "to guest path: ", joinPath(p.remote, filepath.Base(p.local)))
	case f.exists:
		q = fmt.Sprintf("%s exists: overwrite it? (upload %s to guest %s)", p.remote, what, m.guest)
	case f.unsure != "":
		q = fmt.Sprintf("upload %s to guest %s at %s? (could not tell whether it exists: %s)", what, m.guest, p.remote, f.unsure)
	default:
		q = fmt.Sprintf("upload %s to guest %s at %s?", what, m.guest, p.remote)
	}
	m.confirm = &confirmation{question: q, yes: func() tea.Cmd { return m.startUpload(p) }}
	return nil
}
