package agentclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// FuzzReplyReader puts arbitrary bytes on the wire before every reply (and,
// when corrupt is set, inside the reply too) and checks that the stream never
// panics, never hangs past its deadline, returns only *OpError errors, and,
// for uncorrupted replies, never hands a caller a value the server meant for
// another request. Requests carry {"n": i}; the server answers {"n": i}.
func FuzzReplyReader(f *testing.F) {
	f.Add([]byte(""), []byte(""), false, uint16(0))
	f.Add([]byte(`{"return": {"n": 99}}`+"\n"), []byte(""), false, uint16(0))
	f.Add([]byte("\xff{\"return\": 1}\n"), []byte(""), false, uint16(0))
	f.Add([]byte(`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}`+"\n"), []byte(""), false, uint16(0))
	f.Add([]byte("garbage without newline"), []byte(""), false, uint16(0))
	f.Add([]byte("\x00\x01\x02\n\n\r\n"), []byte("\n"), true, uint16(5))
	f.Add([]byte(`{"return": {"n": 1}, "id": "gd0-1"}`+"\n"), []byte("}"), true, uint16(3))
	f.Add(bytes.Repeat([]byte("A"), 5000), []byte(""), false, uint16(0))
	f.Fuzz(func(t *testing.T, junk, inside []byte, corrupt bool, cut uint16) {
		cconn, sconn := net.Pipe()
		var wg sync.WaitGroup
		defer wg.Wait()
		defer sconn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			fuzzServer(sconn, junk, inside, corrupt, int(cut))
		}()
		s := agentclient.NewStream("pipe:fuzz", cconn, agentclient.WithMaxReply(4096))
		defer s.Close()
		for i := 1; i <= 4; i++ {
			// Short: the server is in-process, and a timeout is an allowed
			// outcome. Junk glued to a reply or a corrupted id makes the
			// reply unrecognisable, so the call waits out its deadline: keep
			// that cheap for the fuzzer.
			const d = 25 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), d)
			start := time.Now()
			raw, err := s.Call(ctx, "guest-test", map[string]int{"n": i})
			cancel()
			if el := time.Since(start); el > d+2*time.Second {
				t.Fatalf("call %d took %v past its %v deadline", i, el, d)
			}
			if err != nil {
				var op *agentclient.OpError
				if !errors.As(err, &op) || op.Addr != "pipe:fuzz" {
					t.Fatalf("call %d: error %v is not an OpError naming the address", i, err)
				}
				continue
			}
			if corrupt {
				continue // bytes inside a reply can change its value undetectably
			}
			var v struct{ N int }
			if json.Unmarshal(raw, &v) != nil || v.N != i {
				t.Fatalf("call %d got %s: a reply meant for another request", i, raw)
			}
		}
	})
}

// fuzzServer answers like qemu-ga (echoing ids), writing junk before every
// reply. Requests are read on one goroutine and answered on another, so a
// backed-up pipe cannot deadlock the two sides.
func fuzzServer(conn net.Conn, junk, inside []byte, corrupt bool, cut int) {
	queue := make(chan []byte, 64)
	go func() {
		defer close(queue)
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var req struct {
				Execute   string
				Arguments json.RawMessage
				ID        json.RawMessage
			}
			if json.Unmarshal(bytes.TrimLeft(line, "\xff"), &req) != nil {
				continue
			}
			var out []byte
			if req.Execute == "guest-sync-delimited" {
				var a struct{ ID int64 }
				json.Unmarshal(req.Arguments, &a)
				out = fmt.Appendf(nil, "\xff{\"return\": %d, \"id\": %s}\n", a.ID, req.ID)
			} else {
				out = fmt.Appendf(nil, "{\"return\": %s, \"id\": %s}\n", req.Arguments, req.ID)
				if corrupt && len(out) > 0 {
					at := cut % len(out)
					out = append(out[:at:at], append(inside, out[at:]...)...)
				}
			}
			select {
			case queue <- append(bytes.Clone(junk), out...):
			default: // the client is not reading: drop, as a full channel would
			}
		}
	}()
	for b := range queue {
		if _, err := conn.Write(b); err != nil {
			return
		}
	}
}
