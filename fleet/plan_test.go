package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/fleet/audit"
	"github.com/guestdeck/guestdeck/internal/wait"
)

// wireLog records every request line the fleet's agents put on the wire.
type wireLog struct {
	mu    sync.Mutex
	lines map[string][][]byte // guest address -> request lines, in order
}

func (w *wireLog) dialer(ctx context.Context, t fleet.Target) (agentclient.Agent, error) {
	c, err := agentclient.Dial(ctx, t.Address, agentclient.WithLog(func(rec agentclient.LogRecord) {
		if rec.Request == nil {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.lines[t.Address] = append(w.lines[t.Address], slices.Clone(rec.Request))
	}))
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (w *wireLog) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = map[string][][]byte{}
}

// sent is what reached addr since the last reset, sync requests left out.
func (w *wireLog) sent(t *testing.T, addr string) []wireRequest {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []wireRequest
	for _, l := range w.lines[addr] {
		var r wireRequest
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("request line %q: %v", l, err)
		}
		if !strings.HasPrefix(r.Execute, "guest-sync") {
			out = append(out, r)
		}
	}
	return out
}

type wireRequest struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
}

// sameArgs compares planned arguments with the wire's: a placeholder ("<...>")
// stands for any value, and the planned time for any time in [lo, hi].
func sameArgs(plan, wire any, lo, hi int64) bool {
	switch p := plan.(type) {
	case string:
		if strings.HasPrefix(p, "<") && strings.HasSuffix(p, ">") {
			return wire != nil
		}
	case map[string]any:
		w, ok := wire.(map[string]any)
		if !ok || len(w) != len(p) {
			return false
		}
		for k, pv := range p {
			if k == "time" {
				n, ok := w[k].(float64)
				if !ok || int64(n) < lo-1e6 || int64(n) > hi+1e6 { // float64 keeps ns to about a µs
					return false
				}
				continue
			}
			if !sameArgs(pv, w[k], lo, hi) {
				return false
			}
		}
		return true
	case []any:
		w, ok := wire.([]any)
		if !ok || len(w) != len(p) {
			return false
		}
		for i := range p {
			if !sameArgs(p[i], w[i], lo, hi) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(plan, wire)
}

// The plan is what goes on the wire: every action, run on a simulated
// guest of its own, sends exactly its Sends, in order, with the same
// arguments (placeholders aside). A read repeats guest-file-read to the end.
func TestSendsAreWhatIsSent(t *testing.T) {
	actions := []string{"ping", "freeze", "thaw", "shutdown reboot", "shutdown", "suspend ram", "settime", "fstrim",
		"vcpus offline 1", "vcpus online 1", "read /etc/os-release", "write /tmp/plan.txt hello plan", "write /tmp/empty.txt",
		// The action table's aliases send what they stand for.
		"reboot", "shutdown halt", "suspend mem", "suspend disk", "cat /etc/os-release"}
	dir, err := os.MkdirTemp("/tmp", "gdp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, len(actions), func(i int) sim.Config { return sim.DefaultConfig(fmt.Sprintf("p%02d", i)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	w := &wireLog{lines: map[string][][]byte{}}
	opts := fastOptions()
	opts.Dialers = map[string]fleet.Dialer{"unix": w.dialer}
	f := fleet.New(opts)
	t.Cleanup(func() { f.Close() })
	var names []string
	for _, sock := range farm.Sockets() {
		n := strings.TrimSuffix(filepath.Base(sock), ".sock")
		names = append(names, n)
		f.Add(fleet.Target{Name: n, Address: "unix:" + sock})
	}
	ctx := context.Background()
	f.RefreshOnce(ctx, names)
	for i, words := range actions {
		t.Run(words, func(t *testing.T) {
			a, err := fleet.ParseAction(strings.Fields(words))
			if err != nil {
				t.Fatal(err)
			}
			g := f.Guest(names[i])
			w.reset()
			lo := time.Now().UnixNano()
			plan, skip := a.Plan(g, time.Now())
			if skip != "" {
				t.Fatalf("plan skips: %s", skip)
			}
			res := f.Run(ctx, a, []string{names[i]}, nil)[0]
			hi := time.Now().UnixNano()
			if !res.OK {
				t.Fatalf("run: %+v", res)
			}
			got := w.sent(t, g.Address)
			j := 0
			for k, p := range plan {
				var pargs any
				if p.Arguments != nil {
					b, _ := json.Marshal(p.Arguments)
					json.Unmarshal(b, &pargs)
				}
				for n := 0; ; n++ {
					if j >= len(got) {
						t.Fatalf("plan step %d %s was not sent; sent %+v", k, p.JSON(), got)
					}
					var wargs any
					if len(got[j].Arguments) > 0 {
						json.Unmarshal(got[j].Arguments, &wargs)
					}
					if got[j].Execute != p.Execute || !sameArgs(pargs, wargs, lo, hi) {
						t.Fatalf("step %d: sent %s %s, plan says %s", k, got[j].Execute, got[j].Arguments, p.JSON())
					}
					j++
					// guest-file-read repeats until the end of the file.
					if p.Execute != "guest-file-read" || j >= len(got) || got[j].Execute != "guest-file-read" {
						break
					}
				}
			}
			if j != len(got) {
				t.Errorf("sent more than the plan: %+v after %d planned", got[j:], j)
			}
			// Commands, which the capability check uses, are the plan's names.
			var execs []string
			for _, p := range plan {
				// The thaw's check and the read's size probe are optional.
				if p.Execute != "guest-fsfreeze-status" && p.Execute != "guest-file-seek" && !slices.Contains(execs, p.Execute) {
					execs = append(execs, p.Execute)
				}
			}
			if !slices.Equal(execs, a.Commands()) {
				t.Errorf("Commands() = %v, plan sends %v", a.Commands(), execs)
			}
		})
	}
}

func TestWriteSendsNeverHoldContent(t *testing.T) {
	a := fleet.Action{Kind: fleet.ActWrite, Path: "/etc/motd", Data: []byte("s3cret-content")}
	js := ""
	for _, s := range a.Sends(time.Now()) {
		js += s.JSON()
	}
	if strings.Contains(js, "s3cret") || strings.Contains(js, "czNjcmV0") || !strings.Contains(js, "<14 bytes, not recorded>") {
		t.Errorf("write plan: %s", js)
	}
	big := fleet.WriteSends("/x", 3*agentclient.DefaultWriteChunk+1)
	if s := big[1].JSON(); !strings.Contains(s, "in 4 writes") {
		t.Errorf("a 4-chunk write: %s", s)
	}
	if s := fleet.WriteSends("/x", -1)[1].JSON(); !strings.Contains(s, "not recorded") {
		t.Errorf("a write of unknown size: %s", s)
	}
}

func TestRawSendHidesSecrets(t *testing.T) {
	for _, tt := range []struct {
		req, want string
		hid       bool
	}{
		{`{"execute":"guest-info"}`, `{"execute":"guest-info"}`, false},
		{`{"execute":"guest-set-time","arguments":{"time":1732460400123456789}}`,
			`{"execute":"guest-set-time","arguments":{"time":1732460400123456789}}`, false},
		{`{"execute":"guest-exec","arguments":{"path":"/bin/cat","arg":["-n"],"input-data":"aHVudGVyMg==","env":["TOKEN=hunter2","LANG=C"],"capture-output":true}}`,
			`{"execute":"guest-exec","arguments":{"arg":["-n"],"capture-output":true,"env":["TOKEN=<not recorded>","LANG=<not recorded>"],"input-data":"<7 bytes, not recorded>","path":"/bin/cat"}}`, true},
		{`{"execute":"guest-set-user-password","arguments":{"username":"root","password":"aHVudGVyMg==","crypted":false}}`,
			`{"execute":"guest-set-user-password","arguments":{"crypted":false,"password":"<not recorded>","username":"root"}}`, true},
		{`{"execute":"guest-file-write","arguments":{"handle":7,"buf-b64":"aGVsbG8="}}`,
			`{"execute":"guest-file-write","arguments":{"buf-b64":"<5 bytes, not recorded>","handle":7}}`, true},
		{`{"execute":"guest-exec","arguments":{"path":"/bin/true","env":"A=b"}}`,
			`{"execute":"guest-exec","arguments":{"env":"<not recorded>","path":"/bin/true"}}`, true},
	} {
		s, hid, err := fleet.RawSend([]byte(tt.req))
		if err != nil || s.JSON() != tt.want || hid != tt.hid {
			t.Errorf("RawSend(%s) = %s, %v, %v\nwant %s, %v", tt.req, s.JSON(), hid, err, tt.want, tt.hid)
		}
	}
	for _, bad := range []string{`[]`, `{"arguments":{}}`, `{"execute":"guest-info","arguments":{`} {
		if _, _, err := fleet.RawSend([]byte(bad)); err == nil {
			t.Errorf("RawSend(%s): no error", bad)
		}
	}
}

// A freeze that froze no filesystem failed: the guest is not frozen as asked.
func TestFreezeOfNothingFails(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		c := sim.DefaultConfig("nofs")
		c.Filesystems = nil
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fastOptions())
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "nofs", Address: "unix:" + farm.Sockets()[0]})
	r := f.Run(context.Background(), fleet.Action{Kind: fleet.ActFreeze}, []string{"nofs"}, nil)[0]
	if r.OK || r.Skipped || !strings.Contains(r.Err, "froze 0 filesystems") {
		t.Errorf("freeze of a guest with no filesystems: %+v, want failed, froze 0 filesystems", r)
	}
	if g := f.Guest("nofs"); g.FrozenByUs || !g.ThawAt.IsZero() {
		t.Errorf("nothing frozen, yet FrozenByUs %v ThawAt %v", g.FrozenByUs, g.ThawAt)
	}
}

// The watchdog's automatic thaw is audited: intent then outcome, one ID,
// source auto. A log that cannot be written does not stop the thaw.
func TestWatchdogThawAudited(t *testing.T) {
	for _, writable := range []bool{true, false} {
		t.Run(fmt.Sprintf("writable=%v", writable), func(t *testing.T) {
			state := t.TempDir()
			if !writable {
				// A regular file where the state directory should be.
				state = filepath.Join(state, "file")
				os.WriteFile(state, nil, 0o600)
			}
			log := audit.Open(state)
			opts := fastOptions()
			opts.FreezeTimeout = 300 * time.Millisecond
			opts.Audit = log
			farm, f := simFleet(t, 1, opts)
			r := f.Run(context.Background(), fleet.Action{Kind: fleet.ActFreeze}, []string{"s00"}, nil)[0]
			if !r.OK || r.ThawAt.IsZero() || !farm.Guests()[0].Frozen() {
				t.Fatalf("freeze: %+v", r)
			}
			wait.For(t, 20*time.Second, func() (bool, string) {
				return !farm.Guests()[0].Frozen() && len(f.FrozenByUs()) == 0, "the watchdog has not thawed"
			})
			var es []audit.Entry
			audit.Read(log.Path(), func(e audit.Entry) error { es = append(es, e); return nil })
			if !writable {
				if len(es) != 0 {
					t.Fatalf("entries in an unwritable log: %+v", es)
				}
				found := false
				for _, l := range f.Guest("s00").Log.All() {
					found = found || l.Command == "audit" && l.Err && strings.Contains(l.Reply, log.Path())
				}
				if !found {
					t.Errorf("the guest's command log does not say the audit log failed: %+v", f.Guest("s00").Log.Entries())
				}
				return
			}
			if len(es) != 2 {
				t.Fatalf("want an intent and an outcome, got %+v", es)
			}
			in, out := es[0], es[1]
			if in.Phase != audit.Intent || out.Phase != audit.Outcome || in.ID != out.ID || in.Source != audit.SourceAuto ||
				!strings.HasPrefix(in.Action, "thaw") {
				t.Errorf("entries: %+v", es)
			}
			if len(in.Guests) != 1 || in.Guests[0].Name != "s00" || len(in.Guests[0].Sends) != 2 ||
				string(in.Guests[0].Sends[0]) != `{"execute":"guest-fsfreeze-thaw"}` {
				t.Errorf("intent guests: %+v", in.Guests)
			}
			if len(out.Guests) != 1 || out.Guests[0].Result != "ok" {
				t.Errorf("outcome guests: %+v", out.Guests)
			}
		})
	}
}
