package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// wireAgent is a func-backed agent on the far side of a net.Pipe: the fleet
// talks to it through a real agentclient.Stream (read buffer, reply limits,
// the fleet's budget), so hostile bytes go through the same code as a
// socket's, and it runs inside a synctest bubble. Syncs are answered like
// qemu-ga; every other request goes to reply, which writes whatever it likes
// (nothing at all, half a line, 85 MB).
type wireAgent struct {
	reply func(w io.Writer, cmd string, id []byte) error
	noIDs bool // its syncs echo no id (as some agents): reply writes none either
}

// wireDialer dials the agents by target name with the fleet's stream
// options.
func wireDialer(f *Fleet, agents map[string]*wireAgent) Dialer {
	return func(ctx context.Context, t Target) (agentclient.Agent, error) {
		a := agents[t.Name]
		cc, sc := net.Pipe()
		go a.serve(sc)
		return agentclient.New(agentclient.NewStream("pipe:"+t.Name, cc, f.streamOptions(ctx)...)), nil
	}
}

// serve reads requests on one goroutine and answers on another, so that a
// client writing a pipelined batch and an agent writing a long reply cannot
// block each other. It ends when the client closes the connection.
func (a *wireAgent) serve(conn net.Conn) {
	type request struct {
		cmd  string
		id   []byte
		sync int64
	}
	queue := make(chan request, 256)
	go func() {
		defer close(queue)
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var m struct {
				Execute   string `json:"execute"`
				Arguments struct {
					ID int64 `json:"id"`
				} `json:"arguments"`
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(bytes.TrimLeft(line, "\xff"), &m) != nil {
				continue
			}
			queue <- request{cmd: m.Execute, id: m.ID, sync: m.Arguments.ID}
		}
	}()
	for q := range queue {
		var err error
		switch {
		case q.cmd == "guest-sync-delimited" && a.noIDs:
			_, err = fmt.Fprintf(conn, "\xff{\"return\": %d}\n", q.sync)
		case q.cmd == "guest-sync-delimited":
			_, err = fmt.Fprintf(conn, "\xff{\"return\": %d, \"id\": %s}\n", q.sync, q.id)
		default:
			err = a.reply(conn, q.cmd, q.id)
		}
		if err != nil {
			conn.Close()
			for range queue {
			}
			return
		}
	}
}

// polledCommands are the commands a poll of a thawed guest asks.
var polledCommands = []string{
	"guest-info", "guest-get-time", "guest-network-get-interfaces", "guest-get-vcpus",
	"guest-get-osinfo", "guest-get-host-name", "guest-get-timezone", "guest-get-users", "guest-get-fsinfo",
	"guest-fsfreeze-status",
}

// infoReturn is guest-info's return value listing guest-ping and every
// polled command, enabled as enabled says.
func infoReturn(enabled func(cmd string) bool) string {
	var b bytes.Buffer
	b.WriteString(`{"version": "7.2.22", "supported_commands": [`)
	for i, c := range append([]string{"guest-ping"}, polledCommands...) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"enabled": %v, "name": %q, "success-response": true}`, enabled(c), c)
	}
	b.WriteString("]}")
	return b.String()
}

// healthyReturn is a plausible return value for each polled command.
func healthyReturn(name, cmd string) string {
	switch cmd {
	case "guest-info":
		return infoReturn(func(string) bool { return true })
	case "guest-get-time":
		return fmt.Sprint(time.Now().UnixNano())
	case "guest-fsfreeze-status":
		return `"thawed"`
	case "guest-network-get-interfaces":
		return `[{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}], "hardware-address": "00:00:00:00:00:00"}, {"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.0.7", "prefix": 24}], "statistics": {"rx-bytes": 100, "tx-bytes": 50}, "hardware-address": "52:54:00:12:34:56"}]`
	case "guest-get-vcpus":
		return `[{"online": true, "can-offline": false, "logical-id": 0}, {"online": true, "can-offline": true, "logical-id": 1}]`
	case "guest-get-osinfo":
		return `{"name": "Debian GNU/Linux", "pretty-name": "Debian GNU/Linux 12 (bookworm)", "id": "debian", "kernel-release": "6.1.0-28-amd64", "machine": "x86_64"}`
	case "guest-get-host-name":
		return fmt.Sprintf(`{"host-name": %q}`, name)
	case "guest-get-timezone":
		return `{"zone": "UTC", "offset": 0}`
	case "guest-get-users":
		return `[{"user": "root", "login-time": 1700000000.5}]`
	case "guest-get-fsinfo":
		return `[{"name": "vda1", "mountpoint": "/", "type": "ext4", "used-bytes": 10, "total-bytes": 100, "disk": []}]`
	case "guest-ping":
		return `{}`
	}
	return ""
}

// writeReturn writes {"return": v, "id": id} and a newline.
func writeReturn(w io.Writer, id []byte, v string) error {
	_, err := fmt.Fprintf(w, "{\"return\": %s, \"id\": %s}\n", v, id)
	return err
}

// healthyAgent answers every command like a well-behaved agent of guest name.
func healthyAgent(name string) *wireAgent {
	return &wireAgent{reply: func(w io.Writer, cmd string, id []byte) error {
		v := healthyReturn(name, cmd)
		if v == "" {
			_, err := fmt.Fprintf(w, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command %s has not been found\"}, \"id\": %s}\n", cmd, id)
			return err
		}
		return writeReturn(w, id, v)
	}}
}

// writeHuge writes {"return": {"name": "AAA..."}, "id": id} with n bytes of A
// in chunks, holding no big buffer.
func writeHuge(w io.Writer, id []byte, n int) error {
	if _, err := io.WriteString(w, `{"return": {"name": "`); err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte("A"), 64<<10)
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := w.Write(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	_, err := fmt.Fprintf(w, "\"}, \"id\": %s}\n", id)
	return err
}

// wireFleet builds a fleet whose guests are the given wire agents.
func wireFleet(opts Options, agents map[string]*wireAgent) *Fleet {
	f := New(opts)
	f.SetDialer("wire", wireDialer(f, agents))
	for name := range agents {
		f.Add(Target{Name: name, Address: "wire:" + name})
	}
	return f
}
