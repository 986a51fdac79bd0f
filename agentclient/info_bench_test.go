package agentclient

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFirstLookReplies decodes what a fresh connection's first poll
// brings back of every guest (status --json, a dashboard's launch):
// qemu-ga 7.2's guest-info (testdata/pollreplies/guest-info.json, from the
// real agent), and a refusal, as of the commands 7.2 lacks (guest-get-load,
// guest-network-get-route) the prefetch asks anyway.
func BenchmarkFirstLookReplies(b *testing.B) {
	info, err := os.ReadFile(filepath.Join("testdata", "pollreplies", "guest-info.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("guest-info", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v Info
			if err := decodeReturn(info, &v); err != nil || len(v.SupportedCommands) != 42 {
				b.Fatal(err, len(v.SupportedCommands))
			}
		}
	})
	// As a fleet decodes it (InfoLists): the second agent on is a lookup.
	b.Run("guest-info/shared", func(b *testing.B) {
		lists := new(InfoLists)
		b.ReportAllocs()
		for b.Loop() {
			v := SharedInfo{Lists: lists}
			if err := decodeReturn(info, &v); err != nil || len(v.Info.SupportedCommands) != 42 {
				b.Fatal(err, len(v.Info.SupportedCommands))
			}
		}
	})
	refusal := []byte(`{"error": {"class": "CommandNotFound", "desc": "The command guest-get-load has not been found"}, "id": "gd-17"}`)
	b.Run("refusal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := parseReply(refusal)
			if err != nil || r.err == nil || r.err.Class != "CommandNotFound" {
				b.Fatal(err, r.err)
			}
		}
	})
}
