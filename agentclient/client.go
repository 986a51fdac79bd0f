// Package agentclient speaks the QEMU guest-agent protocol (qemu-ga): typed
// commands, transports (a stream socket, libvirt), the agent's errors with
// their class kept, and a wire-level simulator of a guest in ./sim.
//
// It knows nothing about fleets or screens: one Client is one guest.
package agentclient

import (
	"context"
	"encoding/json"
	"fmt"
)

// Transport carries one command to the agent and brings back its "return"
// value. Implementations keep at most one request in flight per guest, honour
// ctx's deadline, and never hand a late reply to a later call.
type Transport interface {
	// Call executes name with args (nil for none; anything json.Marshal
	// accepts, or a json.RawMessage). For commands that reply nothing on
	// success (see SuccessResponse) it returns nil, nil once accepted.
	Call(ctx context.Context, name string, args any) (json.RawMessage, error)
	// Addr names the peer for messages, e.g. "unix:/run/qga/dev-1.sock".
	Addr() string
	Close() error
}

// Agent is everything guestdeck asks of one guest's agent. Client implements
// it over any Transport; the libvirt implementation maps what it can onto
// libvirt's own API.
type Agent interface {
	Addr() string
	Close() error

	Ping(ctx context.Context) error
	Info(ctx context.Context) (*Info, error)
	Time(ctx context.Context) (int64, error) // nanoseconds since the epoch
	// SetTime sets the guest clock to ns; nil reads it from the guest's RTC.
	SetTime(ctx context.Context, ns *int64) error
	Shutdown(ctx context.Context, mode string) error
	Suspend(ctx context.Context, mode string) error

	FileOpen(ctx context.Context, path, mode string) (int64, error)
	FileClose(ctx context.Context, handle int64) error
	FileRead(ctx context.Context, handle int64, count int) (*FileRead, error)
	FileWrite(ctx context.Context, handle int64, b64 string, count int) (*FileWrite, error)
	FileSeek(ctx context.Context, handle, offset int64, whence int) (*FileSeek, error)
	FileFlush(ctx context.Context, handle int64) error

	FreezeStatus(ctx context.Context) (FreezeStatus, error)
	Freeze(ctx context.Context) (int, error)
	FreezeList(ctx context.Context, mountpoints []string) (int, error)
	Thaw(ctx context.Context) (int, error)
	Fstrim(ctx context.Context, minimum *int64) (*TrimResponse, error)

	Interfaces(ctx context.Context) ([]Interface, error)
	VCPUs(ctx context.Context) ([]VCPU, error)
	SetVCPUs(ctx context.Context, vcpus []VCPU) (int, error)

	OSInfo(ctx context.Context) (*OSInfo, error)
	Hostname(ctx context.Context) (string, error)
	Timezone(ctx context.Context) (*Timezone, error)
	Users(ctx context.Context) ([]User, error)
	FSInfo(ctx context.Context) ([]Filesystem, error)

	Exec(ctx context.Context, req ExecRequest) (int64, error)
	ExecStatus(ctx context.Context, pid int64) (*ExecStatus, error)

	// Raw sends one command as JSON ({"execute":..., "arguments":...}) and
	// returns the reply object ({"return":...}); an agent error comes back
	// as *Error.
	Raw(ctx context.Context, request []byte) (json.RawMessage, error)
}

// Client implements Agent over a Transport.
type Client struct {
	t Transport
}

// New returns a Client that speaks over t.
func New(t Transport) *Client { return &Client{t: t} }

var _ Agent = (*Client)(nil)

func (c *Client) Addr() string         { return c.t.Addr() }
func (c *Client) Close() error         { return c.t.Close() }
func (c *Client) Transport() Transport { return c.t }

// call runs one command and decodes its return value into out (if non-nil).
func (c *Client) call(ctx context.Context, name string, args, out any) error {
	if s, ok := c.t.(*Stream); ok {
		// One parse of the reply, straight into out.
		return s.callInto(ctx, name, args, out)
	}
	raw, err := c.t.Call(ctx, name, args)
	if err != nil {
		return err
	}
	if out == nil || raw == nil {
		return nil
	}
	if err := decodeReturn(raw, out); err != nil {
		return &OpError{Addr: c.t.Addr(), Command: name, Err: &returnError{err}}
	}
	return nil
}

type handleArg struct {
	Handle int64 `json:"handle"`
}

func (c *Client) Ping(ctx context.Context) error { return c.call(ctx, "guest-ping", nil, nil) }

func (c *Client) Info(ctx context.Context) (*Info, error) {
	var v Info
	return &v, c.call(ctx, "guest-info", nil, &v)
}

func (c *Client) Time(ctx context.Context) (int64, error) {
	var v int64
	return v, c.call(ctx, "guest-get-time", nil, &v)
}

func (c *Client) SetTime(ctx context.Context, ns *int64) error {
	var args any
	if ns != nil {
		args = map[string]int64{"time": *ns}
	}
	return c.call(ctx, "guest-set-time", args, nil)
}

func (c *Client) Shutdown(ctx context.Context, mode string) error {
	var args any
	if mode != "" {
		args = map[string]string{"mode": mode}
	}
	return c.call(ctx, "guest-shutdown", args, nil)
}

func (c *Client) Suspend(ctx context.Context, mode string) error {
	switch mode {
	case SuspendDisk, SuspendRAM, SuspendHybrid:
	default:
		return fmt.Errorf("suspend mode %q: want disk, ram or hybrid", mode)
	}
	return c.call(ctx, "guest-suspend-"+mode, nil, nil)
}

func (c *Client) FileOpen(ctx context.Context, path, mode string) (int64, error) {
	args := map[string]string{"path": path}
	if mode != "" {
		args["mode"] = mode
	}
	var h int64
	return h, c.call(ctx, "guest-file-open", args, &h)
}

func (c *Client) FileClose(ctx context.Context, handle int64) error {
	return c.call(ctx, "guest-file-close", handleArg{handle}, nil)
}

func (c *Client) FileRead(ctx context.Context, handle int64, count int) (*FileRead, error) {
	args := struct {
		Handle int64 `json:"handle"`
		Count  int   `json:"count,omitempty"`
	}{handle, count}
	var v FileRead
	return &v, c.call(ctx, "guest-file-read", args, &v)
}

func (c *Client) FileWrite(ctx context.Context, handle int64, b64 string, count int) (*FileWrite, error) {
	args := struct {
		Handle int64  `json:"handle"`
		Buf    string `json:"buf-b64"`
		Count  int    `json:"count,omitempty"`
	}{handle, b64, count}
	var v FileWrite
	return &v, c.call(ctx, "guest-file-write", args, &v)
}

func (c *Client) FileSeek(ctx context.Context, handle, offset int64, whence int) (*FileSeek, error) {
	args := struct {
		Handle int64 `json:"handle"`
		Offset int64 `json:"offset"`
		Whence int   `json:"whence"`
	}{handle, offset, whence}
	var v FileSeek
	return &v, c.call(ctx, "guest-file-seek", args, &v)
}

func (c *Client) FileFlush(ctx context.Context, handle int64) error {
	return c.call(ctx, "guest-file-flush", handleArg{handle}, nil)
}

func (c *Client) FreezeStatus(ctx context.Context) (FreezeStatus, error) {
	var v FreezeStatus
	return v, c.call(ctx, "guest-fsfreeze-status", nil, &v)
}

func (c *Client) Freeze(ctx context.Context) (int, error) {
	var n int
	return n, c.call(ctx, "guest-fsfreeze-freeze", nil, &n)
}

func (c *Client) FreezeList(ctx context.Context, mountpoints []string) (int, error) {
	var args any
	if mountpoints != nil {
		args = map[string][]string{"mountpoints": mountpoints}
	}
	var n int
	return n, c.call(ctx, "guest-fsfreeze-freeze-list", args, &n)
}

func (c *Client) Thaw(ctx context.Context) (int, error) {
	var n int
	return n, c.call(ctx, "guest-fsfreeze-thaw", nil, &n)
}

// Fstrim returns the per-path results where the agent reports them (newer
// agents); older agents reply {} and the result has no paths.
func (c *Client) Fstrim(ctx context.Context, minimum *int64) (*TrimResponse, error) {
	var args any
	if minimum != nil {
		args = map[string]int64{"minimum": *minimum}
	}
	var v TrimResponse
	return &v, c.call(ctx, "guest-fstrim", args, &v)
}

func (c *Client) Interfaces(ctx context.Context) ([]Interface, error) {
	var v []Interface
	return v, c.call(ctx, "guest-network-get-interfaces", nil, &v)
}

func (c *Client) VCPUs(ctx context.Context) ([]VCPU, error) {
	var v []VCPU
	return v, c.call(ctx, "guest-get-vcpus", nil, &v)
}

func (c *Client) SetVCPUs(ctx context.Context, vcpus []VCPU) (int, error) {
	// The agent rejects can-offline in set requests: send id and online only.
	type setVCPU struct {
		LogicalID int  `json:"logical-id"`
		Online    bool `json:"online"`
	}
	req := make([]setVCPU, len(vcpus))
	for i, v := range vcpus {
		req[i] = setVCPU{v.LogicalID, v.Online}
	}
	var n int
	return n, c.call(ctx, "guest-set-vcpus", map[string]any{"vcpus": req}, &n)
}

func (c *Client) OSInfo(ctx context.Context) (*OSInfo, error) {
	var v OSInfo
	return &v, c.call(ctx, "guest-get-osinfo", nil, &v)
}

func (c *Client) Hostname(ctx context.Context) (string, error) {
	var v hostName
	return v.HostName, c.call(ctx, "guest-get-host-name", nil, &v)
}

func (c *Client) Timezone(ctx context.Context) (*Timezone, error) {
	var v Timezone
	return &v, c.call(ctx, "guest-get-timezone", nil, &v)
}

func (c *Client) Users(ctx context.Context) ([]User, error) {
	var v []User
	return v, c.call(ctx, "guest-get-users", nil, &v)
}

func (c *Client) FSInfo(ctx context.Context) ([]Filesystem, error) {
	var v []Filesystem
	return v, c.call(ctx, "guest-get-fsinfo", nil, &v)
}

func (c *Client) Exec(ctx context.Context, req ExecRequest) (int64, error) {
	var v struct {
		PID int64 `json:"pid"`
	}
	return v.PID, c.call(ctx, "guest-exec", req, &v)
}

func (c *Client) ExecStatus(ctx context.Context, pid int64) (*ExecStatus, error) {
	var v ExecStatus
	return &v, c.call(ctx, "guest-exec-status", map[string]int64{"pid": pid}, &v)
}

func (c *Client) Raw(ctx context.Context, request []byte) (json.RawMessage, error) {
	var req struct {
		Execute   string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments,omitempty"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, fmt.Errorf("request is not a JSON object: %w", err)
	}
	if req.Execute == "" {
		return nil, fmt.Errorf(`request has no "execute" member`)
	}
	var args any
	if len(req.Arguments) > 0 {
		args = req.Arguments
	}
	ret, err := c.t.Call(ctx, req.Execute, args)
	if err != nil {
		return nil, err
	}
	if ret == nil {
		return json.RawMessage(`{}`), nil
	}
	return json.Marshal(struct {
		Return json.RawMessage `json:"return"`
	}{ret})
}
