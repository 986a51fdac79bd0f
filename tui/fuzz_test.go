package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// fuzzPolled are the commands a poll asks; the fuzz input gives each its
// reply (fleet's own FuzzPollHostileReplies drives the same commands over a
// real stream, down to the bytes on the wire; this one follows what the
// fleet keeps of them onto the screen).
var fuzzPolled = []string{
	"guest-info", "guest-get-time", "guest-network-get-interfaces", "guest-get-vcpus",
	"guest-get-osinfo", "guest-get-host-name", "guest-get-timezone", "guest-get-users",
	"guest-get-fsinfo", "guest-fsfreeze-status",
}

// fuzzTransport answers each polled command with the fuzz input's segment
// for it: mode byte 0, the rest is the return value; 1, an error whose
// class and description are the rest; empty, a healthy answer.
type fuzzTransport struct{ segs [][]byte }

func (t *fuzzTransport) Call(_ context.Context, name string, _ any) (json.RawMessage, error) {
	for i, c := range fuzzPolled {
		if c != name || i >= len(t.segs) || len(t.segs[i]) == 0 {
			continue
		}
		seg := t.segs[i]
		if seg[0]&1 == 1 {
			return nil, &agentclient.Error{Class: string(seg[1:]), Desc: string(seg[1:])}
		}
		return json.RawMessage(seg[1:]), nil
	}
	switch name {
	case "guest-info":
		var b bytes.Buffer
		b.WriteString(`{"version": "7.2.22", "supported_commands": [`)
		for i, c := range append([]string{"guest-ping"}, fuzzPolled...) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `{"enabled": true, "name": %q, "success-response": true}`, c)
		}
		b.WriteString("]}")
		return b.Bytes(), nil
	case "guest-get-time":
		return json.RawMessage(fmt.Sprint(time.Now().UnixNano())), nil
	case "guest-fsfreeze-status":
		return json.RawMessage(`"thawed"`), nil
	}
	return json.RawMessage(`{}`), nil
}

func (t *fuzzTransport) Addr() string { return "fuzz:evil" }
func (t *fuzzTransport) Close() error { return nil }

// Whatever a guest answers to the polled commands, no frame of the
// dashboard (table, every detail tab, the event log after an info action)
// carries a control character, an escape sequence, a bidi override or an
// invisible formatting character from it.
func FuzzDashboardHostileReplies(f *testing.F) {
	seg := func(mode byte, s string) string { return string([]byte{mode}) + s }
	join := func(s ...string) []byte { return []byte(bytesJoin(s)) }
	f.Add([]byte(""))
	f.Add(join("", "", seg(0, `[{"name": "eth0\u001b]0;x\u0007", "hardware-address": "\u202e", "ip-addresses": [{"ip-address": "1.2.3.4\u001b[2J", "prefix": 999}, {"ip-address": "10.0.0.1", "prefix": -1}], "statistics": {"rx-bytes": -1}}]`)))
	f.Add(join("", "", "", seg(0, `[{"logical-id": 9223372036854775808, "online": true}, {"logical-id": 1, "online": "yes"}]`)))
	f.Add(join("", "", "", "", seg(0, `{"name": "\u009b31m", "pretty-name": "x\u200bx\ufeff", "kernel-release": "\u2066k", "machine": "\u0000"}`)))
	f.Add(join("", "", "", "", "", seg(0, `{"host-name": "evil\u202e\u001b]52;c;cm0gLXJmIH4=\u0007"}`), seg(0, `{"zone": "\u001bk", "offset": 1e999}`)))
	f.Add(join("", "", "", "", "", "", "", seg(0, `[{"user": "\u001b[31mroot", "domain": "\u2028", "login-time": -1e308}]`), seg(0, `[{"name": "\u001b", "mountpoint": "/\u202e", "type": "\u0007", "used-bytes": 18446744073709551615, "total-bytes": 1, "disk": [{"serial": "\u001b]0;t\u0007", "bus-type": "x", "bus": 0, "target": 0, "unit": 0, "pci-controller": {"domain": 0, "bus": 0, "slot": 0, "function": 0}}]}]`)))
	f.Add(join(seg(1, "\x1b]0;pwned\x07 \u202e"), "", seg(1, "GenericError\x9b2J")))
	f.Add(join(seg(0, `{"version": "\u001b[2J", "supported_commands": [{"name": "\u001b]0;x\u0007", "enabled": true, "success-response": true}]}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := &fuzzTransport{segs: bytes.Split(data, []byte{0xFE})}
		fl := fleet.New(fleet.Options{Timeout: 2 * time.Second})
		fl.SetDialer("fuzz", func(context.Context, fleet.Target) (agentclient.Agent, error) {
			return agentclient.New(tr), nil
		})
		fl.Add(fleet.Target{Name: "evil", Address: "fuzz:evil"})
		defer fl.Close()
		fl.RefreshOnce(t.Context(), nil)
		m := New(fl, Options{Styles: plainStyles(), Now: func() time.Time { return testNow }})
		m.resize(160, 40)
		screenSafe(t, "table and overview", m.View().Content)
		for _, tab := range []string{"2", "3", "4", "5"} {
			screenSafe(t, "tab "+tab, press(t, m, tab).View().Content)
		}
		info := fleet.Action{Kind: fleet.ActInfo}
		if info.Check(fl.Guest("evil")) != "" {
			return // the guest's own command list lacks guest-info
		}
		m = runAction(t, m, info)
		screenSafe(t, "event log", press(t, m, "e").View().Content)
	})
}

func bytesJoin(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(0xFE)
		}
		b.WriteString(x)
	}
	return b.String()
}
