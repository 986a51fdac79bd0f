package agentclient

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// realReplies is every reply line of the real qemu-ga 7.2 transcripts the
// simulator is checked against (sim/testdata), split at newlines.
func realReplies(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, name := range []string{"real-qga-7.2.22.jsonl", "real-qga-7.2.22-vm.jsonl"} {
		f, err := os.Open(filepath.Join("sim", "testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec struct{ Reply string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			for line := range strings.SplitSeq(rec.Reply, "\n") {
				// The transcripts write the byte 0xFF as U+00FF.
				if line = strings.TrimLeft(line, "\u00ff"); line != "" {
					out = append(out, []byte(line))
				}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
	}
	if len(out) == 0 {
		tb.Fatal("no replies in the transcripts")
	}
	return out
}

// memberOf is the value of a top-level member of the JSON object line, as
// the envelope splits it; nil when there is none.
func memberOf(line []byte, key string) []byte {
	env, err := scanEnvelope(line)
	if err != nil {
		return nil
	}
	switch key {
	case "error":
		return env.errRaw
	case "return":
		return env.ret
	}
	return nil
}

// FuzzDecodeError: a reply's "error" value decodes exactly as
// json.Unmarshal into an Error decodes it (the value, and the error's text
// when it fails), whatever the guest sent; and where the hand-written path
// accepts it, encoding/json does too, to the same value. Seeded with every
// refusal the real agent sent in the transcripts, and with what a hostile
// one might: escapes, names in other cases or Unicode folds, duplicates,
// nulls, other types.
func FuzzDecodeError(f *testing.F) {
	for _, line := range realReplies(f) {
		if e := memberOf(line, "error"); e != nil {
			f.Add(e)
		}
	}
	for _, s := range []string{
		`{"class": "CommandNotFound", "desc": "The command guest-get-load has not been found"}`,
		`{}`, `null`, `[]`, `5`, `"x"`, `{"class": null}`, `{"class": 5}`, `{"desc": ["a"]}`,
		`{"class": "A", "class": "B"}`, `{"class": "A", "Class": "B"}`, `{"CLASS": "A"}`, `{"claſſ": "A"}`, `{"deſc": "d"}`,
		`{"desc": "K\u212a"}`, `{"class": "a\"b", "desc": "\u001b[31m"}`, `{"class": "\ud800"}`, "{\"desc\": \"bad\xffbyte\"}",
		`{"class": "A", "extra": {"x": [1, 2, {"y": null}]}, "desc": "d"}`, `{"class": "A", "extra": 01}`, `{"class": "A",}`,
		`{"class": "A"} `, ` {"class": "A"}`, `{"class": "A"}x`, `{"cla\u0073s": "A"}`, `{"ﬀ": 1, "class": "x"}`,
		`{"class": "web` + "\u202e" + `gnp.exe", "desc": "` + strings.Repeat("x", 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ref Error
		rerr := json.Unmarshal(b, &ref)
		if v, ok := decodeErrorFast(b); ok && (rerr != nil || v != ref) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v, %v", b, v, ref, rerr)
		}
		got, gerr := decodeError(b)
		switch {
		case (gerr == nil) != (rerr == nil):
			t.Fatalf("%q: decodeError %+v, %v; encoding/json %+v, %v", b, got, gerr, ref, rerr)
		case rerr != nil && gerr.Error() != rerr.Error():
			t.Fatalf("%q: decodeError fails with %q, encoding/json with %q", b, gerr, rerr)
		case rerr == nil && got != ref:
			t.Fatalf("%q: decodeError %+v, encoding/json %+v", b, got, ref)
		}
	})
}

// The refusals the real agent sends are decoded on the hand-written path
// (those without escapes in their strings, which are most), so the test
// above compares it on real input and not only on the fallback.
func TestRealRefusalsTakeTheFastPath(t *testing.T) {
	fast, all := 0, 0
	for _, line := range realReplies(t) {
		e := memberOf(line, "error")
		if e == nil {
			continue
		}
		all++
		var ref Error
		if err := json.Unmarshal(e, &ref); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if v, ok := decodeErrorFast(e); ok {
			fast++
			if !reflect.DeepEqual(v, ref) {
				t.Errorf("%s: %+v, want %+v", e, v, ref)
			}
		} else if !strings.Contains(string(e), `\`) {
			t.Errorf("%s: no escape, yet not decoded on the fast path", e)
		}
	}
	if all == 0 || fast < all/2 {
		t.Errorf("%d of %d real refusals on the fast path", fast, all)
	}
}

// FuzzSharedInfo decodes guest-info as a fleet does, through InfoLists
// after another agent's reply a: whatever a was, b decodes to exactly what
// *Info decodes it to (the hand-written path or the lenient reference) and
// to the reference's value, fails exactly when they fail, the second time
// (from the shared copy) as the first, and the value handed out for a is
// left as it was. Seeded with the real agent's replies.
func FuzzSharedInfo(f *testing.F) {
	real7 := memberOf([]byte(`{"return": `+mustRead(f, "testdata/pollreplies/guest-info.json")+`}`), "return")
	var seeds [][]byte
	for _, line := range realReplies(f) {
		if r := memberOf(line, "return"); r != nil && strings.Contains(string(r), "supported_commands") {
			seeds = append(seeds, r)
		}
	}
	seeds = append(seeds, real7,
		[]byte(`{"version": "7.2.22", "supported_commands": [{"name": "guest-ping", "enabled": true, "success-response": true}]}`),
		[]byte(`{"supported_commands": [{"success-response": true, "name": "guest-ping", "enabled": true}], "version": "7.2.22"}`),
		[]byte(`{"version": "7.2.22", "supported_commands": [{"name": "guest-p\u0069ng", "enabled": true}]}`),
		[]byte(`{"version": "7.2.22", "supported_commands": [{"name": "guest-ping", "name": "guest-exec", "enabled": true}]}`),
		[]byte(`{"version": "1", "version": "2", "supported_commands": []}`),
		[]byte(`{"version": "7.2.22", "supported_commands": [{"name": "guest-ping", "enabled": "yes"}, 5, null, {"name": "guest-info"}]}`),
		[]byte(`{"version": "7.2.22", "Supported_Commands": [{"name": "guest-ping"}], "extra": {"a": [1, {"b": null}]}}`),
		[]byte(`{"version": "web`+"\u202e"+`gnp", "supported_commands": [{"name": "\u001b]0;x\u0007", "enabled": true}]}`),
		[]byte("{\"version\": \"bad\xffbyte\", \"supported_commands\": [{\"name\": \"\xfe\"}]}"),
		[]byte(`{"version": 7, "supported_commands": null}`), []byte(`{}`), []byte(`null`), []byte(`[]`), []byte(`{"version": "x"} x`),
	)
	for i, a := range seeds {
		f.Add(a, seeds[(i+1)%len(seeds)])
		f.Add(a, a)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		lists := new(InfoLists)
		first := SharedInfo{Lists: lists}
		_ = decodeReturn(a, &first)
		before, _ := json.Marshal(first.Info)
		var want Info
		werr := decodeReturn(b, &want)
		var ref Info
		if rerr := decodeLenient(b, &ref); (rerr == nil) != (werr == nil) || werr == nil && !reflect.DeepEqual(want, ref) {
			t.Fatalf("%q: *Info %+v, %v; reference %+v, %v", b, want, werr, ref, rerr)
		}
		for turn := range 2 {
			got := SharedInfo{Lists: lists}
			gerr := decodeReturn(b, &got)
			if (gerr == nil) != (werr == nil) || werr == nil && !reflect.DeepEqual(got.Info, want) {
				t.Fatalf("%q after %q, turn %d: %+v, %v; *Info %+v, %v", b, a, turn, got.Info, gerr, want, werr)
			}
			if werr != nil && gerr.Error() != werr.Error() {
				t.Fatalf("%q after %q, turn %d: fails with %q, *Info with %q", b, a, turn, gerr, werr)
			}
		}
		if after, _ := json.Marshal(first.Info); string(after) != string(before) {
			t.Fatalf("%q after %q: the value handed out for the first changed from %s to %s", b, a, before, after)
		}
	})
}

func mustRead(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// Replies of the same text share one decoded list; another text (the same
// commands in another order) gets its own; past the bounds on the texts'
// number and size, replies are still decoded, just not shared.
func TestInfoListsShare(t *testing.T) {
	real7 := []byte(mustRead(t, filepath.Join("testdata", "pollreplies", "guest-info.json")))
	lists := new(InfoLists)
	decode := func(b []byte) Info {
		t.Helper()
		v := SharedInfo{Lists: lists}
		if err := decodeReturn(b, &v); err != nil {
			t.Fatalf("%.60s: %v", b, err)
		}
		var plain Info
		if err := decodeReturn(b, &plain); err != nil || !reflect.DeepEqual(v.Info, plain) {
			t.Fatalf("%.60s: %+v, as *Info %+v, %v", b, v.Info, plain, err)
		}
		return v.Info
	}
	a, b := decode(real7), decode(append([]byte(nil), real7...))
	if len(a.SupportedCommands) != 42 || &a.SupportedCommands[0] != &b.SupportedCommands[0] || !lists.Holds(b.SupportedCommands) {
		t.Fatalf("two replies of one text: %d commands, shared %v", len(a.SupportedCommands), &a.SupportedCommands[0] == &b.SupportedCommands[0])
	}
	if lists.Holds(slices.Clone(a.SupportedCommands)) {
		t.Error("Holds a list equal to a shared one but not it")
	}
	swapped := []byte(`{"supported_commands": ` + string(memberOfObject(t, real7, "supported_commands")) + `, "version": "7.2.22"}`)
	c := decode(swapped)
	if !reflect.DeepEqual(a, c) || &c.SupportedCommands[0] == &a.SupportedCommands[0] {
		t.Errorf("another text of the same list: equal %v, same array %v", reflect.DeepEqual(a, c), &c.SupportedCommands[0] == &a.SupportedCommands[0])
	}
	for i := range maxInfoLists {
		decode(fmt.Appendf(nil, `{"version": "v%d", "supported_commands": [{"name": "guest-ping", "enabled": true}]}`, i))
	}
	if n := len(lists.m); n != maxInfoLists {
		t.Errorf("%d texts kept, want the bound %d", n, maxInfoLists)
	}
	over := decode([]byte(`{"version": "past the bound", "supported_commands": [{"name": "guest-ping", "enabled": true}]}`))
	if over.Version != "past the bound" || lists.Holds(over.SupportedCommands) {
		t.Errorf("past the bound: %+v, shared %v", over, lists.Holds(over.SupportedCommands))
	}
	lists = new(InfoLists)
	long := []byte(`{"version": "` + strings.Repeat("x", maxInfoText) + `", "supported_commands": [{"name": "guest-ping"}]}`)
	if v := decode(long); lists.Holds(v.SupportedCommands) || len(lists.m) != 0 {
		t.Error("a text past the size bound is shared")
	}
}

// memberOfObject is the raw value of key in the JSON object b.
func memberOfObject(t *testing.T, b []byte, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m[key] == nil {
		t.Fatalf("no %s in %.60s: %v", key, b, err)
	}
	return m[key]
}

// A hostile agent can fill a fleet's InfoLists: a new text at each first
// look (it hangs up, the fleet connects again and looks anew). What stays
// for the fleet's life is bounded by the texts' number and size: 32 texts
// just under 16 KiB, each a list of as many empty commands as fit ({} is
// 3 bytes of text and 24 of CommandInfo, eight times the text), must hold
// about what the texts themselves are (half a MiB), not eight times more.
func TestInfoListsHostileTextsBounded(t *testing.T) {
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := heap()
	lists := new(InfoLists)
	for i := range maxInfoLists + 8 {
		head := fmt.Sprintf(`{"version": "%d", "supported_commands": [{}`, i)
		n := (maxInfoText - len(head) - 2) / 3
		text := []byte(head + strings.Repeat(",{}", n) + "]}")
		if len(text) > maxInfoText {
			t.Fatalf("text %d is %d bytes, past the bound", i, len(text))
		}
		v := SharedInfo{Lists: lists}
		if err := decodeReturn(text, &v); err != nil || len(v.Info.SupportedCommands) != n+1 {
			t.Fatalf("%.40s: %d commands, %v", text, len(v.Info.SupportedCommands), err)
		}
	}
	held := heap() - before
	runtime.KeepAlive(lists)
	t.Logf("%d texts kept, %d bytes held", len(lists.m), held)
	if held > 1<<20 {
		t.Errorf("the shared lists hold %d bytes after a hostile agent's texts; want at most 1 MiB (32 texts of 16 KiB)", held)
	}
}
