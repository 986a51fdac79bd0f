package main

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/fleet"
)

// status --json writes its array in chunks on every core (writeJSONArray):
// byte for byte what one writeJSON of the whole array writes, for any
// number of guests around the chunk size, with guest strings that need
// escaping (a bidi override, an ESC, a lone invalid byte, HTML) falling
// inside and at the edges of chunks.
func TestStatusJSONArrayAsOneArray(t *testing.T) {
	hostile := []string{"web\u202egnp.exe", "\x1b]0;pwned\x07", "bad\xffbyte", "<script>&", "😀 ok"}
	guest := func(i int) *fleet.Guest {
		g := &fleet.Guest{
			Target:       fleet.Target{Name: fmt.Sprintf("g%05d", i), Address: "unix:/x", Tags: []string{hostile[i%len(hostile)]}},
			State:        fleet.Ready,
			AgentVersion: "7.2.22",
			Hostname:     hostile[(i+1)%len(hostile)],
			LastLive:     time.Unix(1700000000, 0),
			Interfaces:   []agentclient.Interface{{Name: "eth0", IPAddresses: []agentclient.IPAddress{{Address: "10.0.0.7", Type: "ipv4", Prefix: 24}}}},
		}
		if i%3 == 0 {
			g.OS = &agentclient.OSInfo{ID: "debian", PrettyName: hostile[(i+2)%len(hostile)]}
		}
		return g
	}
	c := &cli{}
	for _, n := range []int{0, 1, 2, jsonChunk - 1, jsonChunk, jsonChunk + 1, 3*jsonChunk + 7} {
		gs := make([]*fleet.Guest, n)
		for i := range gs {
			gs[i] = guest(i)
		}
		want := make([]statusJSON, 0, n)
		for _, g := range gs {
			sj := toStatusJSON(g)
			sj.OrphanFreeze = c.orphanOf(g)
			want = append(want, sj)
		}
		var wb, gb bytes.Buffer
		if err := writeJSON(&wb, want); err != nil {
			t.Fatal(err)
		}
		if err := c.writeStatusJSON(&gb, gs, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gb.Bytes(), wb.Bytes()) {
			i := 0
			for i < min(gb.Len(), wb.Len()) && gb.Bytes()[i] == wb.Bytes()[i] {
				i++
			}
			t.Errorf("%d guests: output differs from one writeJSON at byte %d: got %q, want %q",
				n, i, gb.Bytes()[i:min(i+80, gb.Len())], wb.Bytes()[i:min(i+80, wb.Len())])
		}
	}
}

// A writer that fails stops the chunked write with its error, and every
// encoder goroutine ends (the test would hang in wg.Wait otherwise).
func TestStatusJSONArrayWriteError(t *testing.T) {
	boom := errors.New("disk full")
	w := &failAfter{n: 2, err: boom}
	err := writeJSONArray(w, 20*jsonChunk, func(i int) any { return map[string]int{"i": i} })
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
	if w.writes != 3 {
		t.Errorf("%d writes, want the failing third to be the last", w.writes)
	}
}

type failAfter struct {
	n, writes int
	err       error
}

func (w *failAfter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.n {
		return 0, w.err
	}
	return len(p), nil
}
