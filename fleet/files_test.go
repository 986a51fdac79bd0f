package fleet_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// TestWriteFileInterrupted: an upload whose connection drops midway. Where
// the agent allows guest-exec the guest's file is as it was and the
// temporary copy is removed over a fresh connection; where it does not, the
// file holds what arrived and the error says how much. The fleet has not
// polled (as for a one-shot command): it asks guest-info before choosing,
// and a guest without guest-exec is never sent one.
func TestWriteFileInterrupted(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const old = "old content\n"
	farm, err := sim.ServeDir(dir, 2, func(i int) sim.Config {
		c := sim.DefaultConfig(fmt.Sprintf("s%d", i))
		c.Files = map[string]sim.File{"/srv/f.txt": {Data: old}}
		c.NoExec = i == 1
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 2 * time.Second, LogSize: 10000})
	t.Cleanup(func() { f.Close() })
	for i, sock := range farm.Sockets() {
		f.Add(fleet.Target{Name: fmt.Sprintf("s%d", i), Address: "unix:" + sock})
	}
	ctx := t.Context()
	body := bytes.Repeat([]byte("new content "), 100000) // 1.2 MB: 25 chunks

	for i, g := range farm.Guests() {
		name := fmt.Sprintf("s%d", i)
		g.DropBefore("guest-file-write", 3)
		n, err := f.WriteFile(ctx, name, "/srv/f.txt", bytes.NewReader(body), int64(len(body)), nil)
		var we *agentclient.WriteError
		if !errors.As(err, &we) || n != 3*agentclient.DefaultWriteChunk || we.NeedsCleanup() {
			t.Fatalf("%s: WriteFile = %d, %v; want a WriteError after 3 chunks, cleaned up", name, n, err)
		}
		var got bytes.Buffer
		if _, err := f.ReadFile(ctx, name, "/srv/f.txt", &got, nil); err != nil {
			t.Fatal(err)
		}
		switch name {
		case "s0":
			if we.State != agentclient.Untouched || we.Outcome() != "was not changed" || got.String() != old {
				t.Errorf("s0 (guest-exec): %v %q, file %d bytes", we.State, we.Outcome(), got.Len())
			}
			ents, err := f.ListDir(ctx, name, "/srv")
			if err != nil || len(ents) != 2 {
				t.Errorf("s0: /srv holds %+v, %v; want only f.txt (the temporary copy removed)", ents, err)
			}
		case "s1":
			want := "is now partial: 144 KiB of 1.1 MiB written"
			if we.State != agentclient.Partial || we.Outcome() != want || !bytes.Equal(got.Bytes(), body[:n]) {
				t.Errorf("s1 (no guest-exec): %v %q, file %d bytes; want %q", we.State, we.Outcome(), got.Len(), want)
			}
		}
		// Uninterrupted, both get the whole file.
		got.Reset()
		if _, err := f.WriteFile(ctx, name, "/srv/f.txt", bytes.NewReader(body), int64(len(body)), nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f.ReadFile(ctx, name, "/srv/f.txt", &got, nil)
		if !bytes.Equal(got.Bytes(), body) {
			t.Errorf("%s: %d bytes after a full upload, want %d", name, got.Len(), len(body))
		}
	}
	if n := farm.Guests()[0].Calls("guest-exec"); n == 0 {
		t.Error("s0 allows guest-exec but was never sent one")
	}
	f.RefreshOnce(ctx, nil)            // publishes the command logs
	log := f.Guest("s1").Log.Entries() // newest first
	var first []string
	for i := len(log) - 1; i >= 0; i-- {
		if strings.HasPrefix(log[i].Command, "guest-exec") {
			t.Errorf("s1 blocks guest-exec but was sent %s", log[i].Command)
		}
		if len(first) < 2 && strings.HasPrefix(log[i].Command, "guest-") && log[i].Command != "guest-sync-delimited" {
			first = append(first, log[i].Command)
		}
	}
	if strings.Join(first, " ") != "guest-info guest-file-open" {
		t.Errorf("s1's first commands %q, want guest-info before the upload's open", first)
	}
}
