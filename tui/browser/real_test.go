package browser

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
	"github.com/guestdeck/guestdeck/internal/testpeers"
)

// A real qemu-ga (qga-host.sh blocks guest-exec): the browser falls back to
// open-by-path, and a file the agent may read is shown.
func TestRealAgentNoExec(t *testing.T) {
	a := testpeers.StartAgents(t, 1)
	want := "written by the browser test\nsecond line\n"
	p := filepath.Join(a.Writable, "hello.txt")
	if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	f := fleet.New(fleet.Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { f.Close() })
	f.Add(fleet.Target{Name: "qga", Address: a.Addrs()[0]})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f.RefreshOnce(ctx, nil)
	if g := f.Guest("qga"); g == nil || g.State != fleet.Ready {
		t.Fatalf("real agent not ready: %+v", g)
	}

	h := newHarness(t, f, "qga", monoOpts())
	m := h.m
	if m.canExec {
		t.Fatal("qga-host blocks guest-exec, but the browser offers listings")
	}
	h.wantMsg("no directory listing: guest-exec is disabled on this guest")
	h.prompt(a.Writable)
	h.wantMsg("is a directory: listing it needs guest-exec")
	h.prompt(p)
	if m.view == nil {
		t.Fatalf("file not opened: %q", m.msg)
	}
	if got := m.view.content; got != strings.TrimSuffix(want, "\n") {
		t.Fatalf("viewer shows %q, want %q", got, want)
	}
	h.wantMsg("text, 40 B")
	h.press("esc")
	h.prompt(filepath.Join(a.Writable, "missing.txt"))
	h.wantMsg("no such file or directory")
}
