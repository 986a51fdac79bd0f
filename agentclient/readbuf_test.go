package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"testing"
)

// TestReadBufferFromPoolIsItsSize: a stream takes from the shared pool only
// a read buffer of its own size. A larger one, left by a stream with a
// bigger WithReadBuffer, would read whole replies in one go that the reply
// budget is meant to charge for (TestBudgetExhausted failed so in a full
// run, depending on which test had run before it).
func TestReadBufferFromPoolIsItsSize(t *testing.T) {
	big := make([]byte, 64<<10)
	readBufs.Put(&big)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	s := newStream("pipe", c1, WithReadBuffer(4<<10))
	go func() { _, _ = c2.Write([]byte("{}\n")) }()
	if err := s.fill(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(s.rbuf) != 4<<10 {
		t.Errorf("read buffer of %d bytes, want %d", len(s.rbuf), 4<<10)
	}
}

// An idle stream holds no request or sync buffer: both go back to the pool
// with the read buffer once a call is done (at 10,000 kept connections they
// were some 6 MB of live heap).
func TestIdleStreamHoldsNoRequestBuffers(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	go fakeEchoAgent(c2)
	s := newStream("pipe", c1)
	s.needSync = true
	if _, err := s.Call(context.Background(), "guest-ping", nil); err != nil {
		t.Fatal(err)
	}
	s.Batch(context.Background(), []BatchCall{{Name: "guest-ping"}, {Name: "guest-get-time"}})
	if s.reqBuf != nil || s.reqBufp != nil || s.syncBuf != nil || s.syncBufp != nil || s.rbuf != nil {
		t.Errorf("idle stream holds buffers: request %d, sync %d, read %d bytes", cap(s.reqBuf), cap(s.syncBuf), cap(s.rbuf))
	}
}

// fakeEchoAgent answers every request line on c as qemu-ga does: a sync
// with its id (after 0xFF), anything else with an empty object, each reply
// echoing the request's id.
func fakeEchoAgent(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		line = bytes.TrimLeft(line, "\xff")
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
			ID        json.RawMessage `json:"id"`
		}
		if json.Unmarshal(line, &req) != nil {
			continue
		}
		ret, pre := json.RawMessage(`{}`), ""
		if req.Execute == "guest-sync-delimited" {
			var a struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.Unmarshal(req.Arguments, &a)
			ret, pre = a.ID, "\xff"
		}
		out := pre + `{"return": ` + string(ret)
		if req.ID != nil {
			out += `, "id": ` + string(req.ID)
		}
		if _, err := c.Write([]byte(out + "}\n")); err != nil {
			return
		}
	}
}
