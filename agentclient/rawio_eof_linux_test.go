//go:build !386

package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// A peer that half-closes between two calls (its EOF waits in the socket)
// and reads nothing more: the next call reports the connection lost, not
// a timeout at its deadline, with the raw reads as with the connection's
// own. A write from within the read's wait, sparing the read that finds
// nothing yet, got this wrong: the poller's readiness for the EOF, seen
// before the call, was reset, and nothing came after the request.
func TestRawIOEOFBetweenCalls(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		for _, raw := range []bool{false, true} {
			c, s := connPair(t, network)
			st := newStream("unix:test.sock", c)
			if !raw {
				st.rio = nil
			} else if st.rio == nil {
				t.Fatalf("%s: no raw I/O for the stream", network)
			}
			answered := make(chan struct{})
			go func() {
				defer close(answered)
				br := bufio.NewReader(s)
				for range 2 { // the sync, then the ping
					line, err := br.ReadBytes('\n')
					if err != nil {
						return
					}
					line = bytes.TrimLeft(line, "\xff")
					i := bytes.Index(line, []byte(`"id":`))
					id := line[i+5 : i+5+bytes.IndexByte(line[i+5:], '}')]
					if bytes.Contains(line, []byte("guest-sync-delimited")) {
						j := bytes.Index(line, []byte(`{"id":`))
						n := line[j+6 : j+6+bytes.IndexByte(line[j+6:], '}')]
						fmt.Fprintf(s, "\xff{\"return\":%s,\"id\":%s}\n", n, id)
						continue
					}
					fmt.Fprintf(s, "{\"return\":{},\"id\":%s}\n", id)
				}
				_ = s.(interface{ CloseWrite() error }).CloseWrite()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := st.Call(ctx, "guest-ping", nil); err != nil {
				t.Fatalf("%s raw %v: first ping: %v", network, raw, err)
			}
			cancel()
			<-answered // the EOF is in the socket, before the next call
			ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
			_, err := st.Call(ctx, "guest-ping", nil)
			cancel()
			if !IsConnLost(err) || IsTimeout(err) {
				t.Errorf("%s raw %v: the next call to a peer at EOF: %v; want the connection lost", network, raw, err)
			}
			st.Close()
		}
	}
}
