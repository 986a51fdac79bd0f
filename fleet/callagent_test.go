package fleet

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
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
		r.record("guest-get-vcpus", time.Time{}, 0, nil, rep, false, "")
	}
	es := r.entries().Entries()
	if len(es) != 3 || es[0].Reply != string(rep) || unsafeData(es[0].Reply) != unsafeData(es[2].Reply) {
		t.Errorf("entries %+v do not share one string", es)
	}
}

// withoutIDSearch is withoutID as it was, with bytes.LastIndex over the
// request: the reference for TestWithoutIDAsSearch.
func withoutIDSearch(dreq, drep, req, rep []byte) ([]byte, []byte) {
	capped := func(d []byte, parts ...[]byte) []byte {
		for _, p := range parts {
			d = append(d, p[:min(len(p), cap(d)-len(d))]...)
		}
		return d
	}
	const key = `,"id":"`
	i := bytes.LastIndex(req, []byte(key))
	if i < 0 || !bytes.HasSuffix(req, []byte(`"}`)) || i+len(key) > len(req)-2 {
		return capped(dreq, req), capped(drep, rep)
	}
	id := req[i+len(key) : len(req)-2]
	if len(id) == 0 || bytes.IndexByte(id, '"') >= 0 {
		return capped(dreq, req), capped(drep, rep)
	}
	dreq = capped(dreq, req[:i], []byte("}"))
	var m [80]byte
	for _, sep := range []string{`, "id": "`, `,"id":"`} {
		if len(sep)+len(id)+1 > len(m) {
			break
		}
		mm := append(append(append(m[:0], sep...), id...), '"')
		j := len(rep) - len(mm) - 1
		if j < 0 || !bytes.HasSuffix(rep, append(mm, '}')) {
			j = bytes.Index(rep[:min(len(rep), cap(drep)+len(mm))], mm)
		}
		if j >= 0 {
			return dreq, capped(drep, rep[:j], rep[j+len(mm):])
		}
	}
	return dreq, capped(drep, rep)
}

// withoutID finds the id as the search of the whole request line did, for
// lines built from the pieces that matter: ids of every length around the
// bound, keys and quotes repeated or misplaced, the id echoed at the end,
// inside the kept part, past it, or with the other spacing.
func TestWithoutIDAsSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	reqParts := []string{`{"execute":"guest-get-time"`, `,"id":"`, `"`, `}`, `"}`, `x`, `-`, `,"arguments":{"id":"a"}`, strings.Repeat("i", 30), strings.Repeat("x", 100)}
	repParts := []string{`{"return": 17`, `, "id": "`, `,"id":"`, `"`, `}`, `"}`, `x`, strings.Repeat("y", 150)}
	for step := range 200000 {
		var req, rep []byte
		for range rng.IntN(7) {
			req = append(req, reqParts[rng.IntN(len(reqParts))]...)
		}
		// Often a well-formed tail, and the reply echoing its id.
		id := strings.Repeat("g", rng.IntN(80))
		if rng.IntN(2) == 0 {
			req = append(req, `,"id":"`+id+`"}`...)
		}
		for range rng.IntN(5) {
			rep = append(rep, repParts[rng.IntN(len(repParts))]...)
		}
		if rng.IntN(2) == 0 {
			sep := []string{`, "id": "`, `,"id":"`}[rng.IntN(2)]
			rep = append(rep, sep+id+`"`...)
			if rng.IntN(3) > 0 {
				rep = append(rep, '}')
			} else {
				rep = append(rep, repParts[rng.IntN(len(repParts))]...)
			}
		}
		var rb, wrb [logRequestMax + 1]byte
		var pb, wpb [logReplyMax + 1]byte
		gotReq, gotRep := withoutID(rb[:0], pb[:0], req, rep)
		wantReq, wantRep := withoutIDSearch(wrb[:0], wpb[:0], req, rep)
		if !bytes.Equal(gotReq, wantReq) || !bytes.Equal(gotRep, wantRep) {
			t.Fatalf("step %d: %q %q:\n got %q %q\nwant %q %q", step, req, rep, gotReq, gotRep, wantReq, wantRep)
		}
	}
}
