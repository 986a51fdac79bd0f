package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	src := `[keys]
ping = "x"

[[commands]]
name = "restart-nginx"
key = "ctrl+n"
run = "exec -- systemctl restart nginx"
dangerous = true
description = "restart nginx"

[[commands]]
name = "fz"
run = "freeze"
`
	f, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Commands) != 2 {
		t.Fatalf("commands: %+v", f.Commands)
	}
	c := f.Commands[0]
	if c.Name != "restart-nginx" || c.Key != "ctrl+n" || c.Run != "exec -- systemctl restart nginx" || c.Dangerous == nil || !*c.Dangerous ||
		c.Description != "restart nginx" {
		t.Errorf("first: %+v", c)
	}
	if c.At != (Position{4, 1}) || c.NameAt != (Position{5, 8}) || c.KeyAt != (Position{6, 7}) || c.RunAt != (Position{7, 7}) || c.DangerousAt != (Position{8, 13}) {
		t.Errorf("positions: %+v %+v %+v %+v %+v", c.At, c.NameAt, c.KeyAt, c.RunAt, c.DangerousAt)
	}
	if f.Commands[1].Dangerous != nil || f.Commands[1].Key != "" {
		t.Errorf("second: %+v", f.Commands[1])
	}
	if err := f.ErrorAt(c.KeyAt, "taken"); err.Error() != "f.toml:6:7: taken" {
		t.Errorf("ErrorAt: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	const ok = "name = \"c\"\nrun = \"ping\"\n"
	tests := []struct{ name, src, want string }{
		{"no name", "[[commands]]\nrun = \"ping\"\n", `f.toml:1:1: [[commands]] has no name; add name = "..." (what you type after ':')`},
		{"no run", "[[commands]]\nname = \"c\"\n", `f.toml:1:1: [[commands]] "c" has no run; add e.g. run = "exec -- systemctl restart nginx"`},
		{"empty run", "[[commands]]\nname = \"c\"\nrun = \" \"\n", `f.toml:3:7: run in [[commands]] "c" is empty; write what to type after ':', e.g. run = "freeze" or "exec -- systemctl restart nginx"`},
		{"multi-line run", "[[commands]]\nname = \"c\"\nrun = \"ping\\nfreeze\"\n", `f.toml:3:7: run in [[commands]] "c" must be one line`},
		{"bad name", "[[commands]]\nname = \"a b\"\nrun = \"ping\"\n", `f.toml:2:8: bad name "a b" in [[commands]] "a b": use letters, digits, ".", "_" and "-"`},
		{"bad key", "[[commands]]\n" + ok + "key = \"crtl+n\"\n", `f.toml:4:7: unknown modifier "crtl" in key name "crtl+n" for [[commands]] "c"; did you mean "ctrl"?`},
		{"shifted key", "[[commands]]\n" + ok + "key = \"shift+n\"\n", `f.toml:4:7: key name "shift+n" never matches (a shifted key arrives as the character it types) for [[commands]] "c"; write "N"`},
		{"dangerous type", "[[commands]]\n" + ok + "dangerous = \"yes\"\n", `f.toml:4:13: dangerous in [[commands]] "c" must be true or false, got string "yes"`},
		{"unknown key", "[[commands]]\n" + ok + "shell = true\n", `f.toml:4:1: unknown key "shell" in [[commands]] "c"; known keys: name, key, run, dangerous, description`},
		{"one table", "[commands]\n" + ok, `f.toml:1:1: [commands] must be written [[commands]]: there is one [[commands]] table per commands`},
		{"duplicate name", "[[commands]]\n" + ok + "[[commands]]\n" + ok, `f.toml:5:8: duplicate command name "c": already used by the [[commands]] at line 2`},
		{"two on one key", "[[commands]]\n" + ok + "key = \"ctrl+n\"\n[[commands]]\nname = \"d\"\nrun = \"info\"\nkey = \"ctrl+n\"\n",
			`f.toml:8:7: key "ctrl+n" is bound to both command "c" (line 4) and command "d"; give each its own key`},
		{"key of [keys]", "[[commands]]\n" + ok + "key = \"x\"\n[keys]\nping = [\"p\", \"x\"]\n",
			`f.toml:4:7: key "x" of command "c" is bound to ping in [keys]; give the command another key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tt.src))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
	var many strings.Builder
	for i := range maxCommands + 1 {
		fmt.Fprintf(&many, "[[commands]]\nname = \"c%d\"\nrun = \"ping\"\n", i)
	}
	if _, err := Parse("f.toml", []byte(many.String())); err == nil || !strings.Contains(err.Error(), "more than 200 [[commands]]") {
		t.Errorf("too many: %v", err)
	}
}

func TestCommandKeyOfView(t *testing.T) {
	src := "[[views]]\nname = \"frozen\"\nkey = \"alt+1\"\nfilter = \"state:frozen\"\n\n[[commands]]\nname = \"c\"\nrun = \"ping\"\nkey = \"alt+1\"\n"
	_, err := Parse("f.toml", []byte(src))
	if want := `f.toml:9:7: key "alt+1" of command "c" is the key of [[views]] "frozen"; give the command another key`; err == nil || err.Error() != want {
		t.Errorf("error\n got %v\nwant %s", err, want)
	}
}
