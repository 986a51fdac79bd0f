package fleet

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestSlowMemo: a slow refresh whose memoised replies repeat their text
// shows the values shown before, undecoded (the same lists, not equal
// copies: fails without the memo), and a reply whose text changed shows
// what it says; a reply that failed to decode leaves no memo behind, so the
// text before it, sent again, shows its own value, not the one left shown.
func TestSlowMemo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		users := new(atomic.Pointer[string])
		set := func(v string) { users.Store(&v) }
		set(`[{"user": "root", "login-time": 1700000000.5}]`)
		agent := replying(func(w io.Writer, cmd string, id []byte) (bool, error) {
			if cmd == "guest-get-users" {
				return true, writeReturn(w, id, *users.Load())
			}
			return false, nil
		})
		f := wireFleet(Options{}, map[string]*wireAgent{"g": agent})
		defer f.Close()
		look(f)
		forced(f) // the look's rest: every slow item decoded
		forced(f) // a slow refresh over the kept connection, memos made
		g0 := f.Guest("g")
		if len(g0.Users) != 1 || len(g0.Filesystems) != 1 || g0.OS == nil || g0.Timezone == nil {
			t.Fatalf("slow items not shown: users %+v, filesystems %+v, OS %v, timezone %v", g0.Users, g0.Filesystems, g0.OS, g0.Timezone)
		}
		s := f.session("g")
		if s.memos == nil {
			t.Fatal("no memo after two slow refreshes")
		}

		forced(f)
		g1 := f.Guest("g")
		if &g1.Users[0] != &g0.Users[0] || &g1.Filesystems[0] != &g0.Filesystems[0] {
			t.Errorf("the same replies decoded again: users %p -> %p, filesystems %p -> %p",
				&g0.Users[0], &g1.Users[0], &g0.Filesystems[0], &g1.Filesystems[0])
		}
		if g1.OS != g0.OS || g1.Timezone != g0.Timezone || g1.Users[0] != g0.Users[0] || len(g1.Metrics.Filesystems) != len(g0.Metrics.Filesystems) {
			t.Errorf("the memo changed what is shown: %+v %+v -> %+v %+v", g0.OS, g0.Users, g1.OS, g1.Users)
		}

		set(`[{"user": "alice", "login-time": 1700000001}, {"user": "bob", "login-time": 1700000002}]`)
		forced(f)
		if g := f.Guest("g"); len(g.Users) != 2 || g.Users[0].User != "alice" || g.Users[1].User != "bob" {
			t.Fatalf("changed users reply: shown %+v", g.Users)
		}

		// The text before, again: decoded (the memo is the new text's).
		set(`[{"user": "root", "login-time": 1700000000.5}]`)
		forced(f)
		if g := f.Guest("g"); len(g.Users) != 1 || g.Users[0].User != "root" {
			t.Fatalf("users reply as at first: shown %+v", g.Users)
		}
		// A reply that does not decode: the value before stays shown, with
		// the error, and the command is skipped until the next connection
		// asks it again (with the prefetch). The memo must not name the
		// value shown as this text's, or that reply would then show it as
		// if it had decoded (fails without: no error at the third).
		set(`{"not": "a list"}`)
		for i := range 3 {
			if i == 2 {
				s.sem <- struct{}{}
				s.dropAgent() // lost, not let go between uses
				s.parked = false
				<-s.sem
			}
			forced(f)
			g := f.Guest("g")
			if len(g.Users) != 1 || g.Users[0].User != "root" || !strings.Contains(g.Err, "guest-get-users") {
				t.Fatalf("undecodable users reply, refresh %d: shown %+v, error %q", i+1, g.Users, g.Err)
			}
		}
	})
}
