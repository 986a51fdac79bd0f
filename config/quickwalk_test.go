package config

import (
	"os"
	"reflect"
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
