package agentclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// A unix dial under a context that has ended fails as net.Dialer's did
// (the same words, the socket named, the timeout still a timeout, a cancel
// still context.Canceled), against a socket that is listening.
func TestDialUnixEndedContext(t *testing.T) {
	l, addr := listenUnix(t)
	path := strings.TrimPrefix(addr, "unix:")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	tests := []struct {
		name    string
		ctx     context.Context
		want    string
		is      error
		timeout bool
	}{
		{"deadline passed", expired, "agent did not answer in time: dial unix " + path + ": i/o timeout", context.DeadlineExceeded, true},
		{"canceled", canceled, addr + ": operation was canceled", context.Canceled, false},
	}
	for _, tt := range tests {
		_, err := agentclient.Dial(tt.ctx, addr)
		if err == nil {
			t.Fatalf("%s: Dial succeeded", tt.name)
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Dial = %q; want it to name %s and say %q", tt.name, err, addr, tt.want)
		}
		if !errors.Is(err, tt.is) {
			t.Errorf("%s: Dial = %v; want errors.Is %v", tt.name, err, tt.is)
		}
		if got := agentclient.IsTimeout(err); got != tt.timeout {
			t.Errorf("%s: IsTimeout(%v) = %v, want %v", tt.name, err, got, tt.timeout)
		}
	}
}
