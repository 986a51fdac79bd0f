package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// The quick walk (no positions, keys in name order) decodes a good file to
// exactly the File the located walk in file order does: decode returns it
// without ever locating the file.
func TestQuickWalkSameFile(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	sources := map[string]string{
		"sim fleet": simFleet(50),
		"everything quick": `
[defaults]
interval = "2s"
slow_interval = "1m"
metrics_interval = "0"
timeout = "1s"
concurrency = 8
freeze_timeout = "30s"
theme = "light"
readonly = true
exclusive = true
identity = "~/.ssh/id_fleet"
insecure_ignore_host_key = true

[[host]]
name = "hv1"
uri = "qemu+ssh://root@hv1/system"
include = ["web-*", "db-?"]
exclude = ["web-old"]
tags = ["prod", "eu"]
known_hosts = "~/.ssh/kh"

[[host]]
name = "local"
uri = "qemu:///system"

[[guest]]
name = "g1"
address = "unix:/run/qga/g1.sock"
tags = ["a", "b"]
exclusive = false

[[guest]]
tags = ["t"]
address = "ssh://root@box/run/qga/g2.sock"
name = "g2"
identity = "~/.ssh/id_g2"

[[guest]]
name = "g3"
address = "tcp:127.0.0.1:4444"

[[sockets]]
pattern = "/var/run/qemu-server/*.qga"
naming = "proxmox"
rescan = "30s"
tags = ["pve"]

[[sockets]]
name = "remote"
pattern = "ssh://root@pve1/var/run/qemu-server/*.qga"
`,
	}
	if data, err := os.ReadFile("../examples/fleet.toml"); err == nil {
		sources["examples/fleet.toml"] = string(data)
	}
	quick := 0
	for name, src := range sources {
		var raw map[string]any
		if _, err := toml.Decode(src, &raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !quickWalk(raw) {
			continue // keeps positions: never walked quickly
		}
		quick++
		q := &decoder{file: "f.toml"}
		got := q.walk(raw)
		l := &decoder{file: "f.toml", spots: locate(src)}
		want := l.walk(raw)
		if len(q.errs) > 0 || len(l.errs) > 0 {
			t.Fatalf("%s: not a good file: quick %v, located %v", name, q.errs, l.errs)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the quick walk decoded\n%+v\nthe located walk\n%+v", name, got, want)
		}
	}
	if quick < 2 {
		t.Fatalf("only %d sources walked quickly: the test compares nothing", quick)
	}
}

// A problem the quick walk meets is said as the located walk says it, at
// its line: the quick walk's placeholder never reaches the operator.
func TestQuickWalkProblemLocated(t *testing.T) {
	src := simFleet(40)
	lines := strings.Split(src, "\n")
	// Guest 30's name line: the header, then name (5 lines a guest, after
	// the comment line).
	n := 1 + 29*5 + 2
	if !strings.HasPrefix(lines[n], `name = "sim-00030"`) {
		t.Fatalf("line %d is %q: the layout changed", n+1, lines[n])
	}
	for _, tc := range []struct {
		name, line, want string
	}{
		{"duplicate", `name = "sim-00003"`, fmt.Sprintf(`f.toml:%d:8: duplicate name "sim-00003": already used by the [[guest]] at line 14`, n+1)},
		{"bad name", `name = "sim 30"`, fmt.Sprintf(`f.toml:%d:8: bad name "sim 30" in [[guest]] "sim 30"`, n+1)},
		{"unknown key", `nmae = "sim-00030"`, fmt.Sprintf(`f.toml:%d:1: unknown key "nmae" in [[guest]]; did you mean "name"?`, n+1)},
	} {
		edited := slices.Clone(lines)
		edited[n] = tc.line
		data := []byte(strings.Join(edited, "\n"))
		if _, ok := quickTOML(string(data)); !ok {
			t.Fatalf("%s: quickTOML refused the file: the test is not about the quick walk", tc.name)
		}
		_, err := Parse("f.toml", data)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v\nwant it to start %s", tc.name, err, tc.want)
		}
	}
}
