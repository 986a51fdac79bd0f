package sim

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestMemberOrderMatchesReal checks, for the replies compared by shape only,
// that every object's members come in the real agent's order.
func TestMemberOrderMatchesReal(t *testing.T) {
	f, err := os.Open("testdata/real-qga-7.2.22.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, sock := startGuest(t, realAgentConfig())
	rc := newRaw(t, sock)
	key := regexp.MustCompile(`"([a-z_-]+)": `)
	checked := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r realRecord
		json.Unmarshal(sc.Bytes(), &r)
		if r.Compare != "shape" {
			continue
		}
		rc.send(r.Request)
		got := rc.mustLine()
		// Within each distinct key set, the order must agree.
		order := func(s string) map[string][]string {
			m := map[string][]string{}
			for _, obj := range regexp.MustCompile(`\{[^{}\[\]]*\}`).FindAllString(s, -1) {
				var ks []string
				for _, k := range key.FindAllStringSubmatch(obj, -1) {
					ks = append(ks, k[1])
				}
				sorted := slices.Clone(ks)
				slices.Sort(sorted)
				m[strings.Join(sorted, ",")] = ks
			}
			return m
		}
		g, w := order(got), order(r.Reply)
		for set, wk := range w {
			if gk, ok := g[set]; ok {
				checked++
				if !slices.Equal(gk, wk) {
					t.Errorf("%s: member order %v, real agent %v", r.Request, gk, wk)
				}
			}
		}
	}
	if checked < 8 {
		t.Errorf("only %d objects compared", checked)
	}
}
