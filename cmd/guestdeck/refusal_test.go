package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient/sim"
)

// A refusal whose words act on a terminal without a single JSON escape
// (DEL, C1 controls, bidi overrides and isolates, zero-width and line
// separators are all valid in a JSON string as they are, and encoding/json
// writes most of them so) is decoded on the hand-written path, which hands
// the words over as they came: the run table and stderr escape them still,
// and run --json keeps them exact, on that path as on encoding/json's.
// (status shows no refusal's words.)
func TestRefusalWordsEscapedEverywhere(t *testing.T) {
	desc := "refused\u007f\u0085\u009b31m\u202egnp.exe\u2066\u200b\u2028x" + strings.Repeat("ab", 600)
	// The simulator escapes non-ASCII as QEMU does (the fallback path);
	// rawRefuser writes the words raw (the hand-written path).
	_, simCfgFile := simGuests(t, "", simCfg("refuser", func(c *sim.Config) {
		c.Fail = map[string]string{"guest-ping": desc}
	}))
	for _, tc := range []struct{ name, cfg string }{
		{"escaped", simCfgFile},
		{"raw", fleetFile(t, "", [2]string{"refuser", "unix:" + rawRefuser(t, desc)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := gd(t, 60*time.Second, "-c", tc.cfg, "run", "ping", "refuser")
			if r.code != exitFail || !strings.Contains(r.stdout, "refused") {
				t.Errorf("run ping: exit %d, want %d with the agent's words\n%s%s", r.code, exitFail, r.stdout, r.stderr)
			}
			checkSafe(t, "run ping stdout", r.stdout)
			checkSafe(t, "run ping stderr", r.stderr)
			r = gd(t, 60*time.Second, "-c", tc.cfg, "run", "--json", "ping", "refuser")
			var res []runJSON
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 {
				t.Fatalf("run --json ping: %v\n%s%s", err, r.stdout, r.stderr)
			}
			if !strings.Contains(res[0].Error, desc) {
				t.Errorf("run --json: error %q lacks the agent's exact words", res[0].Error)
			}
			checkSafe(t, "run --json stdout", r.stdout)
		})
	}
}

// rawRefuser is an agent on a fresh socket that answers syncs and
// guest-info, and refuses everything else with desc written raw: not one
// JSON escape, every rune as its UTF-8 bytes. It returns the socket's path.
func rawRefuser(t *testing.T, desc string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "gdr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "r.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					var req struct {
						Execute   string
						Arguments struct{ ID int64 }
						ID        json.RawMessage
					}
					if json.Unmarshal(bytes.TrimLeft(sc.Bytes(), "\xff"), &req) != nil {
						continue
					}
					id := ""
					if req.ID != nil {
						id = `, "id": ` + string(req.ID)
					}
					var out string
					switch req.Execute {
					case "guest-sync-delimited":
						out = fmt.Sprintf("\xff{\"return\": %d%s}\n", req.Arguments.ID, id)
					case "guest-info":
						out = `{"return": {"version": "7.2.22", "supported_commands": [{"name": "guest-ping", "enabled": true, "success-response": true}]}` + id + "}\n"
					default:
						out = `{"error": {"class": "GenericError", "desc": "` + desc + `"}` + id + "}\n"
					}
					if _, err := io.WriteString(conn, out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return path
}
