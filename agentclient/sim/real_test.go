package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// realRecord is one request sent to the real qemu-ga 7.2.22 (started by
// /work/shared/tools/qga-host.sh, so its mutating commands are blocked) and
// the bytes it answered. Strings hold raw bytes as runes U+0000..U+00FF.
type realRecord struct {
	Conn    int    `json:"conn"`
	Request string `json:"request"`
	Reply   string `json:"reply"`
	// Compare: "" = every reply line byte for byte (member order, spacing,
	// escapes); "shape" = same JSON shape (machine-specific values); "skip: why".
	Compare string `json:"compare"`
}

func latin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// realAgentConfig mirrors the real agent's setup: the commands qga-host.sh
// blocks, and the files the probe used in its writable directory.
func realAgentConfig() Config {
	c := DefaultConfig("real")
	c.Disabled = strings.Split("guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,"+
		"guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,guest-fsfreeze-thaw,guest-fstrim,"+
		"guest-set-time,guest-set-vcpus,guest-set-user-password,guest-set-memory-blocks,"+
		"guest-exec,guest-ssh-add-authorized-keys,guest-ssh-remove-authorized-keys", ",")
	c.Files = map[string]File{
		"/tmp/gdsim/w/existing.txt": {Data: "hello world\nline2\n"},
		"/tmp/gdsim/w/noperm":       {Data: "secret\n", Deny: true},
	}
	return c
}

// TestMatchesRealAgent replays what the real agent on this machine (its
// mutating commands blocked) was sent, and compares the replies.
func TestMatchesRealAgent(t *testing.T) {
	replay(t, "testdata/real-qga-7.2.22.jsonl", realAgentConfig())
}

// TestMatchesRealVM replays the mutating and error cases sent to qemu-ga 7.2
// inside a VM (tools/guest-vm: 2 vCPUs, one freezable filesystem, no hybrid
// suspend).
func TestMatchesRealVM(t *testing.T) {
	cfg := DefaultConfig("vm")
	cfg.NoSuspend = true
	replay(t, "testdata/real-qga-7.2.22-vm.jsonl", cfg)
}

func replay(t *testing.T, file string, cfg Config) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []realRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r realRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	_, sock := startGuest(t, cfg)
	var c net.Conn
	cur := 0
	for i, r := range recs {
		if r.Conn != cur {
			if c != nil {
				c.Close()
			}
			c = dial(t, sock)
			cur = r.Conn
		}
		if _, err := c.Write(latin1(r.Request)); err != nil {
			t.Fatal(err)
		}
		want := splitLines(latin1(r.Reply))
		got := readLines(t, c, len(want))
		if strings.HasPrefix(r.Compare, "skip") {
			continue
		}
		if len(got) != len(want) {
			t.Errorf("#%d %q: got %d lines %q, want %d %q", i, r.Request, len(got), got, len(want), want)
			continue
		}
		for j := range want {
			if msg := compareLine(got[j], want[j], r.Compare == "shape"); msg != "" {
				t.Errorf("#%d %q line %d: %s\n got: %q\nwant: %q", i, r.Request, j, msg, got[j], want[j])
			}
		}
	}
	c.Close()
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

// readLines reads n reply lines, or, for n == 0, checks that nothing comes
// within a short while.
func readLines(t *testing.T, c net.Conn, n int) [][]byte {
	t.Helper()
	var buf []byte
	deadline := time.Now().Add(2 * time.Second)
	if n == 0 {
		deadline = time.Now().Add(50 * time.Millisecond)
	}
	tmp := make([]byte, 4096)
	for bytes.Count(buf, []byte("\n")) < n || n == 0 {
		c.SetReadDeadline(deadline)
		k, err := c.Read(tmp)
		buf = append(buf, tmp[:k]...)
		if err != nil {
			break
		}
	}
	c.SetReadDeadline(time.Time{})
	return splitLines(buf)
}

func compareLine(got, want []byte, shapeOnly bool) string {
	gd, wd := bytes.HasPrefix(got, []byte{0xFF}), bytes.HasPrefix(want, []byte{0xFF})
	if gd != wd {
		return "0xFF delimiter differs"
	}
	var g, w map[string]any
	if err := json.Unmarshal(bytes.TrimPrefix(got, []byte{0xFF}), &g); err != nil {
		return "sim line is not JSON: " + err.Error()
	}
	if err := json.Unmarshal(bytes.TrimPrefix(want, []byte{0xFF}), &w); err != nil {
		return "real line is not JSON: " + err.Error()
	}
	if shapeOnly {
		if !sameShape(g, w) {
			return "shape differs"
		}
		return ""
	}
	if !bytes.Equal(got, want) {
		return "bytes differ"
	}
	return ""
}

// sameShape: same JSON types, same object keys; arrays compare by their first
// element, and an empty array matches any array.
func sameShape(g, w any) bool {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok || len(gv) != len(wv) {
			return false
		}
		for k := range wv {
			if _, ok := gv[k]; !ok || !sameShape(gv[k], wv[k]) {
				return false
			}
		}
		return true
	case []any:
		gv, ok := g.([]any)
		if !ok {
			return false
		}
		if len(gv) == 0 || len(wv) == 0 {
			return true
		}
		return sameShape(gv[0], wv[0])
	default:
		return reflect.TypeOf(g) == reflect.TypeOf(w)
	}
}
