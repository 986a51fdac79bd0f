package fleet_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/guestdeck/guestdeck/agentclient/sim"
	"github.com/guestdeck/guestdeck/fleet"
)

// A guest answers a read with an error of 1.3 MB, its own words, which the
// read's reply limit (1.4 MB for a 1 MiB chunk) lets through. The result
// keeps the start of them and says how much it left out: the dashboard's
// event log keeps 200 actions' results and the audit log appends each, so
// a guest's words must not be what their memory and size are made of.
func TestActionErrorTextBounded(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gdf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// 1.3 MB, two-byte characters where it is cut.
	desc := strings.Repeat("é", 10<<10) + strings.Repeat("E", 1300<<10)
	farm, err := sim.ServeDir(dir, 1, func(int) sim.Config {
		c := sim.DefaultConfig("g")
		c.Files["/tmp/x"] = sim.File{Data: "hello"}
		c.Fail = map[string]string{"guest-file-read": desc}
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	f := fleet.New(fleet.Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "g", Address: "unix:" + farm.Sockets()[0]})
	rs := f.Run(context.Background(), fleet.Action{Kind: fleet.ActRead, Path: "/tmp/x"}, []string{"g"}, nil)
	if len(rs) != 1 || rs[0].OK {
		t.Fatalf("the read did not fail: %+v", rs)
	}
	e := rs[0].Err
	if len(e) > 17<<10 {
		t.Errorf("the result's error is %d bytes", len(e))
	}
	if !strings.Contains(e, "guest-file-read: ééé") || !strings.HasSuffix(e, " more bytes)") {
		t.Errorf("the error does not keep its start and say it was cut: %.100q … %q", e, e[max(len(e)-40, 0):])
	}
	if !utf8.ValidString(e) {
		t.Error("the error was cut inside a character")
	}
}
