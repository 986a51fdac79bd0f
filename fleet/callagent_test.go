package fleet

import (
	"testing"
	"unsafe"
)

func unsafeData(s string) *byte { return unsafe.StringData(s) }

func TestWithoutID(t *testing.T) {
	tests := []struct {
		name             string
		req, rep         string
		wantReq, wantRep string
	}{
		{"qemu-ga spacing", `{"execute":"guest-get-time","id":"gdab-7"}`, `{"return": 17, "id": "gdab-7"}`,
			`{"execute":"guest-get-time"}`, `{"return": 17}`},
		{"compact spacing", `{"execute":"guest-ping","id":"gdab-8"}`, `{"return":{},"id":"gdab-8"}`,
			`{"execute":"guest-ping"}`, `{"return":{}}`},
		{"another id in the reply stays", `{"execute":"guest-ping","id":"gdab-9"}`, `{"return": {}, "id": "gdab-90"}`,
			`{"execute":"guest-ping"}`, `{"return": {}, "id": "gdab-90"}`},
		{"a guest string that looks like it stays", `{"execute":"guest-get-host-name","id":"x-1"}`, `{"return": {"host-name": "a, \"id\": \"x-1\""}}`,
			`{"execute":"guest-get-host-name"}`, `{"return": {"host-name": "a, \"id\": \"x-1\""}}`},
		{"no id sent", `{"execute":"guest-ping"}`, `{"return": {}}`, `{"execute":"guest-ping"}`, `{"return": {}}`},
		{"cut to what is kept", `{"execute":"guest-get-osinfo","id":"i-2"}`, `{"return": "` + string(make([]byte, 300)) + `", "id": "i-2"}`,
			`{"execute":"guest-get-osinfo"}`, (`{"return": "` + string(make([]byte, 300)))[:logReplyMax+1]},
	}
	for _, tt := range tests {
		var rb [logRequestMax + 1]byte
		var pb [logReplyMax + 1]byte
		req, rep := withoutID(rb[:0], pb[:0], []byte(tt.req), []byte(tt.rep))
		if string(req) != tt.wantReq || string(rep) != tt.wantRep {
			t.Errorf("%s:\n got %q %q\nwant %q %q", tt.name, req, rep, tt.wantReq, tt.wantRep)
		}
	}
}

// TestLogSharesRepeatedText: a poll's lines equal to the last poll's are
// the same strings, not copies.
func TestLogSharesRepeatedText(t *testing.T) {
	r := logRing{size: 8}
	rep := []byte(`{"return": [{"online": true}]}`)
	for range 3 {
		prev := r.last("guest-get-vcpus")
		r.add(LogEntry{Command: "guest-get-vcpus", Reply: r.text(prev.Reply, rep, logReplyMax)})
	}
	es := r.entries().Entries()
	if len(es) != 3 || es[0].Reply != string(rep) || unsafeData(es[0].Reply) != unsafeData(es[2].Reply) {
		t.Errorf("entries %+v do not share one string", es)
	}
}
