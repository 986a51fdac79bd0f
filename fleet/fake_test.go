package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// fakeGuest is a request -> reply model of one agent behind a func-backed
// Transport: enough of qemu-ga to drive the fleet without sockets, so tests
// can run inside a synctest bubble.
type fakeGuest struct {
	name string

	mu        sync.Mutex
	frozen    bool
	hang      bool          // calls block until their context ends
	refuse    error         // dial fails with this
	latency   time.Duration // per call
	clockSkew time.Duration
	disabled  []string
	lacking   []string
	calls     []fakeCall
	dials     []time.Time
	conns     int // open connections
	lost      bool
}

type fakeCall struct {
	At  time.Time
	Cmd string
}

var fakeCommands = []string{
	"guest-ping", "guest-info", "guest-get-time", "guest-set-time", "guest-shutdown", "guest-suspend-ram",
	"guest-suspend-disk", "guest-suspend-hybrid", "guest-file-open", "guest-file-close", "guest-file-read",
	"guest-file-write", "guest-fsfreeze-status", "guest-fsfreeze-freeze", "guest-fsfreeze-thaw",
	"guest-fsfreeze-freeze-list", "guest-fstrim", "guest-network-get-interfaces", "guest-get-vcpus", "guest-set-vcpus",
	"guest-get-osinfo", "guest-get-host-name", "guest-get-timezone", "guest-get-users", "guest-get-fsinfo",
	"guest-exec", "guest-exec-status",
}

func (g *fakeGuest) set(fn func(g *fakeGuest)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn(g)
}

func (g *fakeGuest) callTimes(cmd string) []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ts []time.Time
	for _, c := range g.calls {
		if c.Cmd == cmd {
			ts = append(ts, c.At)
		}
	}
	return ts
}

func (g *fakeGuest) count(cmd string) int { return len(g.callTimes(cmd)) }

func (g *fakeGuest) dialTimes() []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.dials)
}

// dial is a fleet Dialer for this guest.
func (g *fakeGuest) dial(ctx context.Context, t Target) (agentclient.Agent, error) {
	g.mu.Lock()
	g.dials = append(g.dials, time.Now())
	err := g.refuse
	if err == nil {
		g.conns++
		g.lost = false
	}
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return agentclient.New(&fakeTransport{g: g}), nil
}

type fakeTransport struct {
	g      *fakeGuest
	closed bool
}

func (t *fakeTransport) Addr() string { return "fake:" + t.g.name }

func (t *fakeTransport) Close() error {
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	if !t.closed {
		t.closed = true
		t.g.conns--
	}
	return nil
}

func (t *fakeTransport) opErr(cmd string, err error) error {
	return &agentclient.OpError{Addr: t.Addr(), Command: cmd, Err: err}
}

func (t *fakeTransport) Call(ctx context.Context, name string, args any) (json.RawMessage, error) {
	g := t.g
	g.mu.Lock()
	g.calls = append(g.calls, fakeCall{time.Now(), name})
	hang, lat, lost := g.hang, g.latency, g.lost || t.closed
	g.mu.Unlock()
	if lost {
		return nil, t.opErr(name, agentclient.ErrConnLost)
	}
	if hang {
		<-ctx.Done()
		return nil, t.opErr(name, agentclient.ErrTimeout)
	}
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-ctx.Done():
			return nil, t.opErr(name, agentclient.ErrTimeout)
		}
	}
	v, err := g.answer(name, args)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, nil
	}
	b, _ := json.Marshal(v)
	return b, nil
}

func (g *fakeGuest) answer(name string, args any) (any, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if slices.Contains(g.lacking, name) {
		return nil, &agentclient.Error{Class: "CommandNotFound", Desc: fmt.Sprintf("The command %s has not been found", name)}
	}
	if slices.Contains(g.disabled, name) {
		return nil, &agentclient.Error{Class: "CommandNotFound", Desc: fmt.Sprintf("Command %s has been disabled", name)}
	}
	if g.frozen && !agentclient.AllowedWhileFrozen(name) {
		return nil, &agentclient.Error{Class: "CommandNotFound", Desc: fmt.Sprintf("Command %s has been disabled: the agent is in frozen state", name)}
	}
	switch name {
	case "guest-ping", "guest-set-time":
		return struct{}{}, nil
	case "guest-info":
		var cmds []agentclient.CommandInfo
		for _, c := range fakeCommands {
			if slices.Contains(g.lacking, c) {
				continue
			}
			cmds = append(cmds, agentclient.CommandInfo{Name: c, Enabled: !slices.Contains(g.disabled, c), SuccessResponse: agentclient.SuccessResponse(c)})
		}
		return agentclient.Info{Version: "7.2.22", SupportedCommands: cmds}, nil
	case "guest-get-time":
		return time.Now().Add(g.clockSkew).UnixNano(), nil
	case "guest-fsfreeze-status":
		if g.frozen {
			return agentclient.Frozen, nil
		}
		return agentclient.Thawed, nil
	case "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list":
		g.frozen = true
		return 1, nil
	case "guest-fsfreeze-thaw":
		n := 0
		if g.frozen {
			n = 1
		}
		g.frozen = false
		return n, nil
	case "guest-shutdown", "guest-suspend-ram", "guest-suspend-disk", "guest-suspend-hybrid":
		g.lost = true // the guest hangs up as it goes
		return nil, nil
	case "guest-network-get-interfaces":
		return []agentclient.Interface{{Name: "lo"}, {Name: "eth0", IPAddresses: []agentclient.IPAddress{{Address: "10.0.0.7", Type: "ipv4", Prefix: 24}}}}, nil
	case "guest-get-vcpus":
		return []agentclient.VCPU{{LogicalID: 0, Online: true}, {LogicalID: 1, Online: true}}, nil
	case "guest-set-vcpus":
		return 1, nil
	case "guest-get-osinfo":
		return agentclient.OSInfo{ID: "debian", PrettyName: "Debian GNU/Linux 12 (bookworm)"}, nil
	case "guest-get-host-name":
		return map[string]string{"host-name": g.name}, nil
	case "guest-get-timezone":
		return agentclient.Timezone{Zone: "UTC"}, nil
	case "guest-get-users":
		return []agentclient.User{}, nil
	case "guest-get-fsinfo":
		return []agentclient.Filesystem{{Name: "vda1", Mountpoint: "/", Type: "ext4"}}, nil
	case "guest-fstrim":
		return map[string]any{"paths": []map[string]any{{"path": "/", "trimmed": 4096}}}, nil
	case "guest-file-open":
		return 1000, nil
	case "guest-file-read":
		return agentclient.FileRead{Count: 5, BufB64: "aGVsbG8=", EOF: true}, nil
	case "guest-file-close":
		return struct{}{}, nil
	}
	return nil, &agentclient.Error{Class: "CommandNotFound", Desc: fmt.Sprintf("The command %s has not been found", name)}
}

// fakeFleet builds a fleet of n fake guests g000..g{n-1} on scheme "fake".
func fakeFleet(opts Options, n int) (*Fleet, map[string]*fakeGuest) {
	guests := make(map[string]*fakeGuest, n)
	opts.Dialers = map[string]Dialer{"fake": func(ctx context.Context, t Target) (agentclient.Agent, error) {
		return guests[t.Name].dial(ctx, t)
	}}
	f := New(opts)
	var ts []Target
	for i := range n {
		name := fmt.Sprintf("g%03d", i)
		guests[name] = &fakeGuest{name: name}
		ts = append(ts, Target{Name: name, Address: "fake:" + name, Tags: []string{fmt.Sprintf("t%d", i%2)}})
	}
	f.Add(ts...)
	return f, guests
}
