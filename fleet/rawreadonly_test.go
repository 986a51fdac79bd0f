package fleet

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestRawReadonly: in read-only mode Raw asks the command table, as the CLI
// does, and refuses with its message: a command that may change the guest
// and one the table does not know are not sent; one that only reports is.
func TestRawReadonly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, guests := fakeFleet(Options{Readonly: true, Timeout: time.Second}, 1)
		defer f.Close()
		for _, tt := range []struct {
			req, err string
		}{
			{`{"execute":"guest-exec-status","arguments":{"pid":1}}`, "guest g000: refused: read-only mode allows only commands that report, and guest-exec-status may change the guest"},
			{`{"execute":"guest-made-up"}`, `guest g000: refused: read-only mode allows only commands that report, and "guest-made-up" is not a command guestdeck knows`},
			{`{"execute":"guest-get-time"}`, ""},
		} {
			_, err := f.Raw(t.Context(), "g000", []byte(tt.req))
			if got := errText(err); got != tt.err {
				t.Errorf("Raw(%s): %q, want %q", tt.req, got, tt.err)
			}
		}
		g := guests["g000"]
		if n := g.count("guest-exec-status") + g.count("guest-made-up"); n != 0 {
			t.Errorf("%d refused commands were sent", n)
		}
		if g.count("guest-get-time") == 0 {
			t.Error("guest-get-time was not sent")
		}
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
