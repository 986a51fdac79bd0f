package browser

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/fleet"
)

// An upload's destination is a FIFO on a guest without guest-exec: the
// read probe's guest-file-open blocks, and qemu-ga, single-threaded, then
// answers nothing at all (the simulator's hang). The probe gives up at the
// browser's timeout; the question says it could not tell rather than call
// the file new; the browser is usable at once, and again for the guest
// once its agent answers.
func TestUploadProbeOfABlockingFile(t *testing.T) {
	cfg := guestConfig("g")
	cfg.NoExec = true
	f, guests := simFleet(t, fleet.Options{}, cfg)
	opts := monoOpts()
	opts.Timeout = time.Second
	h := newHarness(t, f, "g", opts)
	m := h.m
	h.press("esc") // the path prompt a guest without a listing opens with
	src := filepath.Join(t.TempDir(), "up.txt")
	if err := os.WriteFile(src, []byte("new content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.press("u")
	h.prompt(src)
	guests["g"].SetHang(true)
	h.prompt("/run/fifo")
	if m.confirm == nil {
		t.Fatalf("no question after the probe; message %q loading %q", m.msg, m.loading)
	}
	q := m.confirm.question
	if !strings.Contains(q, "could not tell whether it exists") || strings.Contains(q, "exists: overwrite") {
		t.Errorf("question %q", q)
	}
	if m.loading != "" {
		t.Errorf("still loading %q after the probe gave up", m.loading)
	}
	h.press("n")
	h.wantMsg("cancelled")
	if n := guests["g"].Calls("guest-file-write"); n != 0 {
		t.Errorf("%d writes after no", n)
	}
	guests["g"].SetHang(false)
	h.press("o")
	h.prompt("/data/hello.txt")
	if m.view == nil || !strings.Contains(h.screen(), "line a") {
		t.Errorf("the guest's file does not open after its agent answers again:\n%s", h.screen())
	}
}
