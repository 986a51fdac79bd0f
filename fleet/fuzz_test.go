package fleet

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// FuzzPollHostileReplies gives one guest arbitrary reply bytes for every
// command a poll asks, beside a healthy guest, and polls both once inside a
// synctest bubble (timeouts pass at once). It checks that nothing panics,
// that the poll ends within its bound, that the healthy guest still reaches
// ready with its data, that what the hostile guest's Guest holds is bounded
// by the limits of the replies it came from, and that the fleet's reply
// budget is whole again afterwards.
//
// The input is split at 0xFE into one segment per polled command (in
// polledCommands order; a missing or empty segment answers healthily). A
// segment's first byte picks how the rest is sent: low two bits 0 as the
// return value of a proper reply, 1 as a raw line, 2 as raw bytes with no
// newline (a reply that never ends), 3 as a return value repeated
// 2^(bits 2..5) times (up to 32,768: replies past their limits); what
// follows is the payload.
func FuzzPollHostileReplies(f *testing.F) {
	seg := func(mode byte, payload string) string { return string([]byte{mode}) + payload }
	join := func(s ...string) []byte { return []byte(strings.Join(s, "\xfe")) }
	f.Add([]byte(""))
	f.Add(join(seg(0, `{"version": 1}`), seg(0, `"soon"`), seg(0, `{}`), seg(0, `[1]`)))
	f.Add(join("", "", seg(0, `[{"name": "eth0", "statistics": {"rx-bytes": -1}}]`), seg(0, `[{"logical-id": 9223372036854775808, "online": true}]`)))
	f.Add(join("", "", "", "", seg(3|15<<2, `"AAAAAAAAAAAAAAAA"`)))        // osinfo far past 64 KiB
	f.Add(join("", "", seg(3|15<<2, strings.Repeat("1", 100))))            // interfaces: a 3 MB number, past 2 MiB
	f.Add(join("", "", "", "", seg(2, `{"return": {"name": "never ends`))) // osinfo never ends
	f.Add(join("", seg(1, "\xff\xff{\"return\": 5}"), seg(1, "garbage\x1b[31m")))
	f.Add(join(seg(1, `{"error": {"class": "GenericError", "desc": "\u001b]0;pwned\u0007"}}`)))
	f.Add(join("", "", "", "", "", seg(0, `{"host-name": "evil\u202e\u001b[2J"}`), seg(0, `{"zone": 5, "offset": "x"}`)))
	f.Add(join("", "", "", "", "", "", "", seg(0, `[{"user": "u", "login-time": 1e999}]`), seg(3|8<<2, `[{"name": "n", "mountpoint": "/", "type": "t", "disk": []}]`)))

	f.Fuzz(func(t *testing.T, data []byte) {
		segs := bytes.Split(data, []byte{0xFE})
		hostile := &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
			for i, c := range polledCommands {
				if c == cmd && i < len(segs) && len(segs[i]) > 0 {
					return writeHostile(w, id, segs[i][0], segs[i][1:])
				}
			}
			return healthyAgent("evil").reply(w, cmd, id)
		}}
		synctest.Test(t, func(t *testing.T) {
			opts := Options{Timeout: 3 * time.Second}
			agents := map[string]*wireAgent{"evil": hostile, "good": healthyAgent("good")}
			fl := wireFleet(opts, agents)
			defer fl.Close()
			start := time.Now()
			fl.RefreshOnce(t.Context(), nil)
			if took, bound := time.Since(start), 2*opts.Timeout; took > bound {
				t.Errorf("the refresh took %v, past the poll bound %v", took, bound)
			}
			good := fl.Guest("good")
			if good.State != Ready || good.Err != "" || good.Hostname != "good" || good.OS == nil || len(good.Interfaces) != 2 {
				t.Fatalf("healthy guest beside the hostile one: %s %q", good.State, good.Err)
			}
			evil := fl.Guest("evil")
			checkBounded(t, evil)
			if n := fl.budget.InUse(); n != 0 {
				t.Errorf("reply budget holds %d bytes after the refresh", n)
			}
		})
	})
}

// writeHostile sends payload for one request as mode says (see
// FuzzPollHostileReplies).
func writeHostile(w io.Writer, id []byte, mode byte, payload []byte) error {
	switch mode & 3 {
	case 0:
		return writeReturn(w, id, string(payload))
	case 1:
		_, err := w.Write(append(payload, '\n'))
		return err
	case 2:
		_, err := w.Write(payload)
		return err
	}
	if _, err := io.WriteString(w, `{"return": `); err != nil {
		return err
	}
	for range 1 << (mode >> 2 & 15) {
		if _, err := w.Write(payload); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, `, "id": `+string(id)+"}\n")
	return err
}

// checkBounded checks that each field of g holds no more than the reply it
// came from may carry: decoded text is never longer than its JSON, and a
// list element takes at least 2 bytes ("{}") of it. Counted as string bytes
// plus 8 per element or pointer, so the factor 4 is generous.
func checkBounded(t *testing.T, g *Guest) {
	t.Helper()
	limit := func(cmd string) int64 {
		c, _ := agentclient.Lookup(cmd)
		return int64(c.MaxReply)
	}
	for _, f := range []struct {
		name string
		v    any
		cmd  string
	}{
		{"AgentVersion", g.AgentVersion, "guest-info"},
		{"Commands", g.Commands, "guest-info"},
		{"OS", g.OS, "guest-get-osinfo"},
		{"Hostname", g.Hostname, "guest-get-host-name"},
		{"Timezone", g.Timezone, "guest-get-timezone"},
		{"Users", g.Users, "guest-get-users"},
		{"Filesystems", g.Filesystems, "guest-get-fsinfo"},
		{"Interfaces", g.Interfaces, "guest-network-get-interfaces"},
		{"VCPUs", g.VCPUs, "guest-get-vcpus"},
		{"Freeze", g.Freeze, "guest-fsfreeze-status"},
	} {
		if n := contentSize(reflect.ValueOf(f.v)); n > 4*limit(f.cmd) {
			t.Errorf("%s holds %d bytes, past 4 × %s's %d-byte limit", f.name, n, f.cmd, limit(f.cmd))
		}
	}
	// Errors quote at most a sample of what the guest sent.
	if len(g.Err) > 4<<10 {
		t.Errorf("Err is %d bytes: %.200q...", len(g.Err), g.Err)
	}
	for _, e := range g.Log.All() {
		if len(e.Request) > logRequestMax || len(e.Reply) > logReplyMax {
			t.Errorf("log entry %s holds %d+%d bytes", e.Command, len(e.Request), len(e.Reply))
		}
	}
}

// contentSize counts the bytes of strings in v, plus 8 per list element and
// per pointer followed.
func contentSize(v reflect.Value) int64 {
	switch v.Kind() {
	case reflect.String:
		return int64(v.Len())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return 0
		}
		return 8 + contentSize(v.Elem())
	case reflect.Slice:
		var n int64
		for i := range v.Len() {
			n += 8 + contentSize(v.Index(i))
		}
		return n
	case reflect.Struct:
		var n int64
		for i := range v.NumField() {
			n += contentSize(v.Field(i))
		}
		return n
	}
	return 0
}
