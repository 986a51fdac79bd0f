package agentclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/guestdeck/guestdeck/internal/blocking"
)

// LibvirtAgent implements Agent for a domain managed by libvirt. libvirt owns
// the agent channel, so every command goes through the libvirt connection:
// libvirt's typed API where it has one (freeze/thaw, fsinfo, vCPUs, time,
// shutdown/reboot, hostname, guest info), and virDomainQemuAgentCommand
// with raw JSON for the rest (file ops, exec, ping, info, freeze status,
// fstrim, suspend, halt, interfaces). Interfaces go raw although libvirt
// has virDomainInterfaceAddresses: that call keeps names and addresses but
// drops the rx/tx/error statistics the agent returns. libvirt syncs with the agent
// itself and serialises agent access per domain, so calls may run
// concurrently.
//
// go-libvirt calls take no context. Each call runs on its own goroutine and
// the method returns as soon as ctx is done; the abandoned RPC finishes in
// the background and its result is dropped. It ends when libvirt answers:
// raw commands carry ctx's remaining time as libvirt's agent timeout, typed
// calls are bounded by the domain's agent timeout (libvirt may wait longer
// for an agent that hangs mid-command), and go-libvirt fails every waiter
// when the connection drops. libvirt runs one agent job per domain at a
// time, so a later call may queue behind an abandoned one; its own ctx still
// bounds it.
//
// Close does not close the libvirt connection: it belongs to whoever dialed it
// (one connection serves every domain of a host).
//
// Commands libvirt has no API for (ping, info, files, exec, fstrim, suspend,
// freeze status), and interfaces, are Client's typed methods over
// libvirtTransport, which passes them through virDomainQemuAgentCommand.
type LibvirtAgent struct {
	*Client
	l      *libvirt.Libvirt
	dom    libvirt.Domain
	addr   string
	closed atomic.Bool
}

var _ Agent = (*LibvirtAgent)(nil)

// NewLibvirt returns an Agent for dom over the connected l. addr names the
// guest in errors, conventionally "libvirt:HOST/DOMAIN".
func NewLibvirt(l *libvirt.Libvirt, dom libvirt.Domain, addr string) *LibvirtAgent {
	a := &LibvirtAgent{l: l, dom: dom, addr: addr}
	a.Client = New(libvirtTransport{a})
	return a
}

// libvirtTransport is the Transport behind LibvirtAgent's embedded Client:
// one raw command through virDomainQemuAgentCommand.
type libvirtTransport struct{ a *LibvirtAgent }

func (t libvirtTransport) Addr() string { return t.a.addr }
func (t libvirtTransport) Close() error { return t.a.Close() }

// Call sends name with args and returns its "return" value; nil for commands
// that reply nothing on success (libvirt still syncs with the agent first, so
// an agent that is gone is reported).
func (t libvirtTransport) Call(ctx context.Context, name string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": name}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, &OpError{Addr: t.a.addr, Command: name, Err: err}
	}
	raw, err := t.a.raw(ctx, name, string(b))
	if err != nil || raw == nil {
		return nil, err
	}
	var reply struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil || reply.Return == nil {
		return nil, &OpError{Addr: t.a.addr, Command: name, Err: fmt.Errorf("%w: %.200s", ErrMalformed, raw)}
	}
	return reply.Return, nil
}

func (a *LibvirtAgent) Addr() string { return a.addr }

// Domain returns the libvirt domain this agent talks to.
func (a *LibvirtAgent) Domain() libvirt.Domain { return a.dom }

// Close marks the agent closed; later calls fail with ErrClosed.
func (a *LibvirtAgent) Close() error {
	a.closed.Store(true)
	return nil
}

// LibvirtError is an error reported by libvirt for an agent operation, with
// libvirt's code and message kept. It unwraps to the agent's own *Error when
// the agent answered with one (so IsFrozen, IsDisabled, IsUnknown work), and
// to ErrSilent/ErrTimeout/ErrConnLost when libvirt says the agent or the
// domain cannot be reached.
type LibvirtError struct {
	Code    int
	Message string
	agent   *Error
	kinds   []error
}

func (e *LibvirtError) Error() string {
	return fmt.Sprintf("libvirt: %s (code %d)", e.Message, e.Code)
}

func (e *LibvirtError) Unwrap() []error {
	errs := make([]error, 0, len(e.kinds)+2)
	if e.agent != nil {
		errs = append(errs, e.agent)
	}
	errs = append(errs, e.kinds...)
	return append(errs, libvirt.Error{Code: uint32(e.Code), Message: e.Message})
}

// libvirt error codes this file reacts to (virErrorNumber).
const (
	lvErrNoSupport         = 3
	lvErrInvalidArg        = 8
	lvErrNoDomain          = 42
	lvErrOperationInvalid  = 55
	lvErrAgentUnresponsive = 86
	lvErrNoHostname        = 108
	lvErrAgentTimeout      = 112
)

// agentDescPrefix precedes the agent's own error text in libvirt's message
// for a command the agent refused: "internal error: unable to execute QEMU
// agent command 'guest-x': DESC".
const agentDescPrefix = "unable to execute QEMU agent command '"

// classifyLibvirt turns what go-libvirt returned into an error that keeps
// libvirt's message and carries the agent error classes.
func classifyLibvirt(cmd string, err error) error {
	var le libvirt.Error
	if !errors.As(err, &le) {
		if errors.Is(err, libvirt.ErrInterrupted) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EINVAL) ||
			errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			return fmt.Errorf("%w: %v", ErrConnLost, err)
		}
		return err
	}
	e := &LibvirtError{Code: int(le.Code), Message: le.Message}
	msg := le.Message
	if i := strings.Index(msg, agentDescPrefix); i >= 0 {
		rest := msg[i+len(agentDescPrefix):]
		if j := strings.Index(rest, "': "); j >= 0 {
			e.agent = &Error{Class: agentClass(rest[j+3:]), Desc: rest[j+3:]}
		}
	}
	if e.agent == nil && strings.Contains(msg, "frozen state") {
		// Typed calls report the agent's refusal with libvirt's own prefix.
		e.agent = &Error{Class: "CommandNotFound", Desc: msg}
	}
	code := e.Code
	if code == lvErrInvalidArg && strings.Contains(msg, "unsupported flags") {
		code = lvErrNoSupport // a driver without e.g. GetHostname's agent flag
	}
	switch code {
	case lvErrNoSupport:
		// The connection's driver lacks this call (the test driver has no
		// QemuAgentCommand, no GetGuestVcpus): for a poller that is the same
		// as an agent without the command.
		if e.agent == nil {
			e.agent = &Error{Class: "CommandNotFound", Desc: "The command " + cmd + " has not been found: the libvirt driver does not support it"}
		}
	case lvErrAgentUnresponsive:
		// "Guest agent is not responding": not connected, or the agent did
		// not answer libvirt's sync within libvirt's timeout.
		e.kinds = append(e.kinds, ErrSilent, ErrTimeout)
	case lvErrAgentTimeout:
		e.kinds = append(e.kinds, ErrTimeout)
	case lvErrNoDomain:
		e.kinds = append(e.kinds, ErrConnLost)
	case lvErrOperationInvalid:
		// Paused (or stopping) domain: the channel exists but nothing can
		// answer, like a silent agent. A domain that stopped for good is
		// reported by libvirt's lifecycle events.
		if strings.Contains(msg, "not running") {
			e.kinds = append(e.kinds, ErrSilent)
		}
	}
	return e
}

// agentClass guesses the agent's error class from its text: libvirt passes
// on the description but not the class.
func agentClass(desc string) string {
	if strings.Contains(desc, "has not been found") || strings.Contains(desc, "has been disabled") {
		return "CommandNotFound"
	}
	return "GenericError"
}

// do runs fn bounded by ctx and maps its error. See the type's comment for
// what happens to an abandoned call.
func (a *LibvirtAgent) do(ctx context.Context, cmd string, fn func() error) error {
	_, err := libvirtCall(ctx, a, cmd, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// libvirtCall is do for a call with a value, which comes back through
// blocking.Call: fn must not write it into the caller's variables, which
// an abandoned fn would still be writing after the caller returned (and
// read them: Time returned a clock half written, a data race).
func libvirtCall[T any](ctx context.Context, a *LibvirtAgent, cmd string, fn func() (T, error)) (T, error) {
	var zero T
	if a.closed.Load() {
		return zero, &OpError{Addr: a.addr, Command: cmd, Err: ErrClosed}
	}
	if err := ctx.Err(); err != nil {
		return zero, a.ctxErr(cmd, err)
	}
	if !a.l.IsConnected() {
		return zero, &OpError{Addr: a.addr, Command: cmd, Err: fmt.Errorf("%w: libvirt connection closed", ErrConnLost)}
	}
	v, err := blocking.Call(ctx, fn)
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return zero, a.ctxErr(cmd, err) // go-libvirt's own errors are never these
	}
	return zero, &OpError{Addr: a.addr, Command: cmd, Err: classifyLibvirt(cmd, err)}
}

func (a *LibvirtAgent) ctxErr(cmd string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		err = ErrTimeout
	}
	return &OpError{Addr: a.addr, Command: cmd, Err: err}
}

// rawTimeout is the timeout (whole seconds, at least 1) handed to
// QemuAgentCommand so that libvirt gives up about when ctx does; -1 (libvirt's
// default) without a deadline.
func rawTimeout(ctx context.Context) int32 {
	dl, ok := ctx.Deadline()
	if !ok {
		return -1
	}
	s := math.Ceil(time.Until(dl).Seconds())
	if s < 1 {
		s = 1
	}
	if s > math.MaxInt32 {
		s = math.MaxInt32
	}
	return int32(s)
}

// raw runs QemuAgentCommand and returns libvirt's reply text ({"return":...});
// nil for commands that reply nothing on success.
func (a *LibvirtAgent) raw(ctx context.Context, name, req string) (json.RawMessage, error) {
	if !SuccessResponse(name) {
		return nil, a.rawNoReply(ctx, name, req)
	}
	timeout := rawTimeout(ctx)
	res, err := libvirtCall(ctx, a, name, func() (libvirt.OptString, error) {
		return a.l.QEMUDomainAgentCommand(a.dom, req, timeout, 0)
	})
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, &OpError{Addr: a.addr, Command: name, Err: fmt.Errorf("%w: libvirt returned no reply", ErrMalformed)}
	}
	// libvirt has read the reply already (it caps one at 10 MiB); the
	// command's own limit still keeps an oversized answer out of the caller.
	if lim := callReplyLimit(ctx, requestReplyLimit(name, []byte(req))); len(res[0]) > lim {
		return nil, &OpError{Addr: a.addr, Command: name, Err: &TooLargeError{Command: name, Bytes: int64(len(res[0])), Limit: lim}}
	}
	return json.RawMessage(res[0]), nil
}

// noReplyWait is how long libvirt waits for an answer to a command that
// answers nothing on success (shutdown halt, suspend) before we call it
// accepted.
const noReplyWait = 1

// rawNoReply sends a command that answers nothing on success. libvirt's
// NOWAIT cannot be used: it applies to libvirt's guest-sync too, which then
// always fails. So: ping first (the agent must be there to take the
// command), then send with a short timeout; silence (code 86) or the agent
// going away is acceptance, an agent error is a refusal. The outcome is
// confirmed by watching the domain, as for any shutdown.
func (a *LibvirtAgent) rawNoReply(ctx context.Context, name, req string) error {
	if err := a.Ping(ctx); err != nil {
		return err
	}
	err := a.do(ctx, name, func() error {
		_, err := a.l.QEMUDomainAgentCommand(a.dom, req, noReplyWait, 0)
		return err
	})
	var le *LibvirtError
	if errors.As(err, &le) && le.agent == nil &&
		(le.Code == lvErrAgentUnresponsive || strings.Contains(le.Message, "disappeared") || strings.Contains(le.Message, "End of file")) {
		return nil
	}
	if IsConnLost(err) && !errors.Is(err, ErrClosed) {
		var le *LibvirtError
		if errors.As(err, &le) {
			return nil // domain stopped under the command: it was obeyed
		}
	}
	return err
}

func (a *LibvirtAgent) Time(ctx context.Context) (int64, error) {
	return libvirtCall(ctx, a, "guest-get-time", func() (int64, error) {
		s, ns, err := a.l.DomainGetTime(a.dom, 0)
		return s*1e9 + int64(ns), err
	})
}

// SetTime sets the guest clock through virDomainSetTime; nil asks libvirt to
// resync the guest from its RTC (the sync flag).
func (a *LibvirtAgent) SetTime(ctx context.Context, ns *int64) error {
	return a.do(ctx, "guest-set-time", func() error {
		if ns == nil {
			return a.l.DomainSetTime(a.dom, 0, 0, libvirt.DomainTimeSync)
		}
		sec, nsec := *ns/1e9, *ns%1e9
		if nsec < 0 {
			sec, nsec = sec-1, nsec+1e9
		}
		return a.l.DomainSetTime(a.dom, sec, uint32(nsec), 0)
	})
}

// Shutdown: powerdown and reboot through libvirt's API restricted to the
// agent; halt has no libvirt equivalent and goes as a raw command.
func (a *LibvirtAgent) Shutdown(ctx context.Context, mode string) error {
	switch mode {
	case "", ShutdownPowerdown:
		return a.do(ctx, "guest-shutdown", func() error {
			return a.l.DomainShutdownFlags(a.dom, libvirt.DomainShutdownGuestAgent)
		})
	case ShutdownReboot:
		return a.do(ctx, "guest-shutdown", func() error {
			return a.l.DomainReboot(a.dom, libvirt.DomainRebootGuestAgent)
		})
	case ShutdownHalt:
		return a.call(ctx, "guest-shutdown", map[string]string{"mode": mode}, nil)
	}
	return fmt.Errorf("shutdown mode %q: want powerdown, reboot or halt", mode)
}

func (a *LibvirtAgent) Freeze(ctx context.Context) (int, error) {
	return a.FreezeList(ctx, nil)
}

func (a *LibvirtAgent) FreezeList(ctx context.Context, mountpoints []string) (int, error) {
	name := "guest-fsfreeze-freeze"
	if mountpoints != nil {
		name = "guest-fsfreeze-freeze-list"
	}
	n, err := libvirtCall(ctx, a, name, func() (int32, error) {
		return a.l.DomainFsfreeze(a.dom, mountpoints, 0)
	})
	return int(n), err
}

// Thaw always thaws everything: libvirt refuses a thaw with mountpoints
// (code 74), and a partial thaw is never what a user wants.
func (a *LibvirtAgent) Thaw(ctx context.Context) (int, error) {
	n, err := libvirtCall(ctx, a, "guest-fsfreeze-thaw", func() (int32, error) {
		return a.l.DomainFsthaw(a.dom, nil, 0)
	})
	return int(n), err
}

func (a *LibvirtAgent) VCPUs(ctx context.Context) ([]VCPU, error) {
	params, err := libvirtCall(ctx, a, "guest-get-vcpus", func() ([]libvirt.TypedParam, error) {
		return a.l.DomainGetGuestVcpus(a.dom, 0)
	})
	if err != nil {
		return nil, err
	}
	p := paramMap(params)
	ids, err := parseCPUList(p.str("vcpus"))
	if err != nil {
		return nil, &OpError{Addr: a.addr, Command: "guest-get-vcpus", Err: fmt.Errorf("%w: vcpus: %v", ErrMalformed, err)}
	}
	online, err1 := parseCPUList(p.str("online"))
	offl, err2 := parseCPUList(p.str("offlinable"))
	if err := errors.Join(err1, err2); err != nil {
		return nil, &OpError{Addr: a.addr, Command: "guest-get-vcpus", Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	out := make([]VCPU, 0, len(ids))
	for _, id := range sortedIDs(ids) {
		can := offl[id]
		out = append(out, VCPU{LogicalID: id, Online: online[id], CanOffline: &can})
	}
	return out, nil
}

// SetVCPUs sets the listed vCPUs with at most two virDomainSetGuestVcpus calls
// (one for those to bring online, one for those to take offline). It returns
// how many vCPUs it set: libvirt fails the call unless all of them were.
func (a *LibvirtAgent) SetVCPUs(ctx context.Context, vcpus []VCPU) (int, error) {
	var on, off []int
	for _, v := range vcpus {
		if v.Online {
			on = append(on, v.LogicalID)
		} else {
			off = append(off, v.LogicalID)
		}
	}
	n := 0
	for _, set := range []struct {
		ids   []int
		state int32
	}{{on, 1}, {off, 0}} {
		if len(set.ids) == 0 {
			continue
		}
		cpumap := formatCPUList(set.ids)
		err := a.do(ctx, "guest-set-vcpus", func() error {
			return a.l.DomainSetGuestVcpus(a.dom, cpumap, set.state, 0)
		})
		if err != nil {
			return n, err
		}
		n += len(set.ids)
	}
	return n, nil
}

// guestInfo runs virDomainGetGuestInfo for one info type. libvirt returns an
// empty list, not an error, when the agent refused (e.g. while frozen) or
// lacks the command; ok is false then and the caller asks the agent directly
// to get either the value or the agent's real error.
func (a *LibvirtAgent) guestInfo(ctx context.Context, cmd string, typ libvirt.DomainGuestInfoTypes, key string) (params, bool, error) {
	tp, err := libvirtCall(ctx, a, cmd, func() ([]libvirt.TypedParam, error) {
		return a.l.DomainGetGuestInfo(a.dom, uint32(typ), 0)
	})
	if err != nil {
		var le *LibvirtError
		if errors.As(err, &le) && le.Code == lvErrNoSupport {
			return nil, false, nil // driver without GetGuestInfo (test driver)
		}
		return nil, false, err
	}
	p := paramMap(tp)
	_, ok := p[key]
	return p, ok, nil
}

func (a *LibvirtAgent) OSInfo(ctx context.Context) (*OSInfo, error) {
	p, ok, err := a.guestInfo(ctx, "guest-get-osinfo", libvirt.DomainGuestInfoOs, "os.kernel-release")
	if err != nil {
		return nil, err
	}
	if !ok {
		if _, any := p["os.id"]; !any {
			var v OSInfo
			return &v, a.call(ctx, "guest-get-osinfo", nil, &v)
		}
	}
	return &OSInfo{
		ID: p.str("os.id"), Name: p.str("os.name"), PrettyName: p.str("os.pretty-name"),
		Version: p.str("os.version"), VersionID: p.str("os.version-id"),
		KernelRelease: p.str("os.kernel-release"), KernelVersion: p.str("os.kernel-version"),
		Machine: p.str("os.machine"), Variant: p.str("os.variant"), VariantID: p.str("os.variant-id"),
	}, nil
}

func (a *LibvirtAgent) Hostname(ctx context.Context) (string, error) {
	h, err := libvirtCall(ctx, a, "guest-get-host-name", func() (string, error) {
		return a.l.DomainGetHostname(a.dom, libvirt.DomainGetHostnameAgent)
	})
	var le *LibvirtError
	if errors.As(err, &le) && (le.Code == lvErrNoHostname || le.Code == lvErrNoSupport) {
		// libvirt hides the agent's reason (frozen, disabled, or a driver
		// without the agent flag): ask the agent for the real answer.
		var v struct {
			HostName string `json:"host-name"`
		}
		rerr := a.call(ctx, "guest-get-host-name", nil, &v)
		if _, agentSaid := agentError(rerr); rerr == nil || agentSaid {
			return v.HostName, rerr
		}
	}
	return h, err
}

func (a *LibvirtAgent) Timezone(ctx context.Context) (*Timezone, error) {
	p, ok, err := a.guestInfo(ctx, "guest-get-timezone", libvirt.DomainGuestInfoTimezone, "timezone.offset")
	if err != nil {
		return nil, err
	}
	if !ok {
		var v Timezone
		return &v, a.call(ctx, "guest-get-timezone", nil, &v)
	}
	return &Timezone{Zone: p.str("timezone.name"), Offset: int(p.int("timezone.offset"))}, nil
}

func (a *LibvirtAgent) Users(ctx context.Context) ([]User, error) {
	p, ok, err := a.guestInfo(ctx, "guest-get-users", libvirt.DomainGuestInfoUsers, "user.count")
	if err != nil {
		return nil, err
	}
	if !ok {
		var v []User
		return v, a.call(ctx, "guest-get-users", nil, &v)
	}
	n := int(p.int("user.count"))
	out := make([]User, 0, n)
	for i := 0; i < n; i++ {
		k := "user." + strconv.Itoa(i) + "."
		out = append(out, User{
			User:   p.str(k + "name"),
			Domain: p.str(k + "domain"),
			// libvirt reports the login time in milliseconds.
			LoginTime: float64(p.int(k+"login-time")) / 1000,
		})
	}
	return out, nil
}

// FSInfo uses virDomainGetGuestInfo (which has sizes) and falls back to
// virDomainGetFSInfo where that is missing or came back empty; the fallback
// also surfaces the agent's refusal while frozen.
func (a *LibvirtAgent) FSInfo(ctx context.Context) ([]Filesystem, error) {
	p, ok, err := a.guestInfo(ctx, "guest-get-fsinfo", libvirt.DomainGuestInfoFilesystem, "fs.count")
	if err != nil {
		return nil, err
	}
	if ok {
		n := int(p.int("fs.count"))
		out := make([]Filesystem, 0, n)
		for i := 0; i < n; i++ {
			k := "fs." + strconv.Itoa(i) + "."
			fs := Filesystem{Name: p.str(k + "name"), Mountpoint: p.str(k + "mountpoint"), Type: p.str(k + "fstype")}
			if v, ok := p[k+"total-bytes"]; ok {
				t := toUint(v)
				fs.TotalBytes = &t
			}
			if v, ok := p[k+"used-bytes"]; ok {
				u := toUint(v)
				fs.UsedBytes = &u
			}
			nd := int(p.int(k + "disk.count"))
			for j := 0; j < nd; j++ {
				dk := k + "disk." + strconv.Itoa(j) + "."
				fs.Disk = append(fs.Disk, DiskAddress{Dev: p.str(dk + "device"), Serial: p.str(dk + "serial")})
			}
			out = append(out, fs)
		}
		return out, nil
	}
	infos, err := libvirtCall(ctx, a, "guest-get-fsinfo", func() ([]libvirt.DomainFsinfo, error) {
		infos, _, err := a.l.DomainGetFsinfo(a.dom, 0)
		return infos, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Filesystem, 0, len(infos))
	for _, fi := range infos {
		fs := Filesystem{Name: fi.Name, Mountpoint: fi.Mountpoint, Type: fi.Fstype}
		for _, alias := range fi.DevAliases {
			// libvirt gives the domain's disk alias (target dev), not the
			// guest's device path; keep it in Dev.
			fs.Disk = append(fs.Disk, DiskAddress{Dev: alias})
		}
		out = append(out, fs)
	}
	return out, nil
}

// Raw passes request to the agent through virDomainQemuAgentCommand. libvirt
// marks the domain tainted (custom-ga-command) the first time.
func (a *LibvirtAgent) Raw(ctx context.Context, request []byte) (json.RawMessage, error) {
	var req struct {
		Execute string `json:"execute"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, fmt.Errorf("request is not a JSON object: %w", err)
	}
	if req.Execute == "" {
		return nil, fmt.Errorf(`request has no "execute" member`)
	}
	raw, err := a.raw(ctx, req.Execute, string(request))
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return json.RawMessage(`{}`), nil
	}
	return raw, nil
}

// params is virTypedParameter list by field name.
type params map[string]any

func paramMap(tp []libvirt.TypedParam) params {
	p := make(params, len(tp))
	for _, t := range tp {
		p[t.Field] = t.Value.I
	}
	return p
}

func (p params) str(k string) string {
	s, _ := p[k].(string)
	return s
}

func (p params) int(k string) int64 {
	switch v := p[k].(type) {
	case int32:
		return int64(v)
	case uint32:
		return int64(v)
	case int64:
		return v
	case uint64:
		return int64(v)
	}
	return 0
}

func toUint(v any) uint64 {
	switch v := v.(type) {
	case int32:
		return uint64(v)
	case uint32:
		return uint64(v)
	case int64:
		return uint64(v)
	case uint64:
		return v
	}
	return 0
}

// parseCPUList parses libvirt's CPU list syntax ("0-3,^2,5") into a set.
func parseCPUList(s string) (map[int]bool, error) {
	set := map[int]bool{}
	if strings.TrimSpace(s) == "" {
		return set, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		neg := strings.HasPrefix(part, "^")
		part = strings.TrimPrefix(part, "^")
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				return nil, fmt.Errorf("bad cpu list %q", s)
			}
		}
		for i := a; i <= b; i++ {
			set[i] = !neg
			if neg {
				delete(set, i)
			}
		}
	}
	return set, nil
}

// sortedIDs returns the set's members in order.
func sortedIDs(set map[int]bool) []int {
	ids := make([]int, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// formatCPUList writes ids in libvirt's CPU list syntax ("0,2,3").
func formatCPUList(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}
