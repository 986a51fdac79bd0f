package agentclient

import (
	"context"
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
