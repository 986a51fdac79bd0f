package config

import (
	"errors"
	"strings"
	"testing"
)

// bad files: each must fail with exactly this message (file:line:col: cause).
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"syntax", "[defaults]\ninterval = \"5s\nx = 1\n",
			`f.toml:2:15: syntax error: strings cannot contain newlines`},
		{"syntax duplicate key", "[defaults]\ntimeout = \"1s\"\ntimeout = \"2s\"\n",
			`f.toml:3:1: syntax error: Key 'defaults.timeout' has already been defined.`},
		{"unknown key typo", "[defaults]\ninterval = \"5s\"\n  intervall = \"5s\"\n",
			`f.toml:3:3: unknown key "intervall" in [defaults]; did you mean "interval"?`},
		{"unknown key dashes", "[defaults]\nslow-interval = \"5s\"\n",
			`f.toml:2:1: unknown key "slow-interval" in [defaults]; did you mean "slow_interval"?`},
		{"unknown key far", "[defaults]\nbanana = 1\n",
			`f.toml:2:1: unknown key "banana" in [defaults]; known keys: interval, slow_interval, timeout, concurrency, freeze_timeout, theme, readonly, exclusive`},
		{"unknown top-level", "hosts = []\n",
			`f.toml:1:1: unknown key "hosts"; did you mean "host"?`},
		{"unknown key dotted", "defaults.intervl = \"5s\"\n",
			`f.toml:1:1: unknown key "intervl" in [defaults]; did you mean "interval"?`},
		{"unknown key in second host", "[[host]]\nname = \"a\"\nuri = \"qemu:///system\"\n[[host]]\nname = \"b\"\nurl = \"qemu:///system\"\n",
			`f.toml:6:1: unknown key "url" in [[host]] "b"; did you mean "uri"?`},
		{"unknown key in guest", "[[guest]]\nname = \"g\"\naddress = \"unix:/x\"\ntag = [\"a\"]\n",
			`f.toml:4:1: unknown key "tag" in [[guest]] "g"; did you mean "tags"?`},
		{"unknown key inline guest", "guest = [ {name = \"g\", address = \"unix:/x\"},\n  {name = \"h\", adress = \"unix:/y\"} ]\n",
			`f.toml:2:16: unknown key "adress" in [[guest]] "h"; did you mean "address"?`},
		{"wrong type duration", "[defaults]\ninterval = 5\n",
			`f.toml:2:12: interval in [defaults] must be a duration string like "5s", got integer 5; write "5s"`},
		{"bad duration", "[defaults]\ntimeout = \"5 seconds\"\n",
			`f.toml:2:11: timeout in [defaults]: bad duration "5 seconds"; want a form like "5s", "1m30s" or "500ms"`},
		{"zero duration", "[defaults]\nslow_interval = \"0s\"\n",
			`f.toml:2:17: slow_interval in [defaults] must be positive, got "0s"`},
		{"negative duration", "[defaults]\nfreeze_timeout = \"-5m\"\n",
			`f.toml:2:18: freeze_timeout in [defaults] must be positive, got "-5m"`},
		{"wrong type concurrency", "[defaults]\nconcurrency = \"64\"\n",
			`f.toml:2:15: concurrency in [defaults] must be a whole number, got string "64"`},
		{"zero concurrency", "[defaults]\nconcurrency = 0\n",
			`f.toml:2:15: concurrency in [defaults] must be from 1 to 1048576, got 0`},
		{"negative concurrency", "[defaults]\nconcurrency = -3\n",
			`f.toml:2:15: concurrency in [defaults] must be from 1 to 1048576, got -3`},
		{"wrong type theme", "[defaults]\ntheme = 1\n",
			`f.toml:2:9: theme in [defaults] must be a string, got integer 1`},
		{"empty theme", "[defaults]\ntheme = \"\"\n",
			`f.toml:2:9: theme in [defaults] must not be empty; use dark, light, high-contrast or a theme file path`},
		{"wrong type readonly", "[defaults]\nreadonly = \"yes\"\n",
			`f.toml:2:12: readonly in [defaults] must be true or false, got string "yes"`},
		{"defaults not a table", "defaults = 3\n",
			`f.toml:1:1: defaults must be a table ([defaults]), got integer 3`},
		{"host as table", "[host]\nname = \"a\"\n",
			`f.toml:1:1: [host] must be written [[host]]: there is one [[host]] table per host`},
		{"guest not tables", "guest = [\"a\"]\n",
			`f.toml:1:10: each guest must be a table, got string "a"`},
		{"wrong type tags", "[[guest]]\nname = \"g\"\naddress = \"unix:/x\"\ntags = \"dev\"\n",
			`f.toml:4:8: tags in [[guest]] "g" must be an array of strings, got string "dev"`},
		{"wrong type in tags", "[[guest]]\nname = \"g\"\naddress = \"unix:/x\"\ntags = [\"a\", 2]\n",
			`f.toml:4:14: tags in [[guest]] "g" must be an array of strings, got integer 2 in it`},
		{"bad tag", "[[guest]]\nname = \"g\"\naddress = \"unix:/x\"\ntags = [\"a b\"]\n",
			`f.toml:4:9: bad tag "a b" in [[guest]] "g": use letters, digits, ".", "_" and "-"`},
		{"bad name", "[[guest]]\nname = \"web/1\"\naddress = \"unix:/x\"\n",
			`f.toml:2:8: bad name "web/1" in [[guest]] "web/1": use letters, digits, ".", "_" and "-"`},
		{"guest without address", "[[guest]]\nname = \"g\"\n",
			`f.toml:1:1: [[guest]] "g" has no address; add e.g. address = "unix:/run/qga/NAME.sock" (or tcp:host:port, vsock:cid:port)`},
		{"guest without name", "\n[[guest]]\naddress = \"unix:/x\"\n",
			`f.toml:2:1: [[guest]] has no name; add name = "..."`},
		{"address unknown scheme", "[[guest]]\nname = \"g\"\naddress = \"udp:h:1\"\n",
			`f.toml:3:11: [[guest]] "g": address "udp:h:1": unknown scheme "udp"; want unix:/path, tcp:host:port or vsock:cid:port`},
		{"address bare path", "[[guest]]\nname = \"g\"\naddress = \"/run/g.sock\"\n",
			`f.toml:3:11: [[guest]] "g": address "/run/g.sock" has no scheme; did you mean "unix:/run/g.sock"?`},
		{"address relative unix", "[[guest]]\nname = \"g\"\naddress = \"unix:g.sock\"\n",
			`f.toml:3:11: [[guest]] "g": address "unix:g.sock": unix socket path must be absolute`},
		{"address tcp port", "[[guest]]\nname = \"g\"\naddress = \"tcp:h:http\"\n",
			`f.toml:3:11: [[guest]] "g": address "tcp:h:http": port "http" must be a number from 1 to 65535`},
		{"address tcp no port", "[[guest]]\nname = \"g\"\naddress = \"tcp:h\"\n",
			`f.toml:3:11: [[guest]] "g": address "tcp:h": want tcp:host:port`},
		{"address vsock cid", "[[guest]]\nname = \"g\"\naddress = \"vsock:x:1\"\n",
			`f.toml:3:11: [[guest]] "g": address "vsock:x:1": vsock cid "x" must be a number`},
		{"host without uri", "[[host]]\nname = \"h\"\n",
			`f.toml:1:1: [[host]] "h" has no uri; add e.g. uri = "qemu:///system" or "qemu+ssh://root@host/system"`},
		{"host without name", "[[host]]\nuri = \"qemu:///system\"\n",
			`f.toml:1:1: [[host]] has no name; add name = "..."`},
		{"host bad uri", "[[host]]\nname = \"h\"\nuri = \"qemu+ssh://h:x/system\"\n",
			`f.toml:3:7: [[host]] "h": cannot parse uri "qemu+ssh://h:x/system": invalid port ":x" after host`},
		{"host unsupported driver", "[[host]]\nname = \"h\"\nuri = \"xen:///system\"\n",
			`f.toml:3:7: [[host]] "h": uri "xen:///system": unsupported driver "xen"; guestdeck speaks to qemu (qemu:///system, qemu+ssh://host/system, ...)`},
		{"host unsupported transport", "[[host]]\nname = \"h\"\nuri = \"qemu+ext:///system\"\n",
			`f.toml:3:7: [[host]] "h": uri "qemu+ext:///system": unsupported transport "ext"; want unix, tcp, tls or ssh`},
		{"host bad glob", "[[host]]\nname = \"h\"\nuri = \"qemu:///system\"\ninclude = [\"web-*\", \"[x\"]\n",
			`f.toml:4:21: bad domain name pattern "[x" in include of [[host]] "h"`},
		{"host wrong type insecure", "[[host]]\nname = \"h\"\nuri = \"qemu:///system\"\ninsecure_ignore_host_key = 1\n",
			`f.toml:4:28: insecure_ignore_host_key in [[host]] "h" must be true or false, got integer 1`},
		{"duplicate guest", "[[guest]]\nname = \"a\"\naddress = \"unix:/a\"\n\n[[guest]]\nname = \"a\"\naddress = \"unix:/b\"\n",
			`f.toml:6:8: duplicate name "a": already used by the [[guest]] at line 2`},
		{"duplicate host", "[[host]]\nname = \"a\"\nuri = \"qemu:///system\"\n[[host]]\nname = \"a\"\nuri = \"qemu:///session\"\n",
			`f.toml:5:8: duplicate name "a": already used by the [[host]] at line 2`},
		{"duplicate guest vs host", "[[guest]]\nname = \"a\"\naddress = \"unix:/a\"\n[[host]]\nname = \"a\"\nuri = \"qemu:///system\"\n",
			`f.toml:5:8: duplicate name "a": already used by the [[guest]] at line 2`},
		{"keys unknown action", "[keys]\nfreeze = [\"F\"]\nfrezee = [\"F\"]\n",
			`f.toml:3:1: unknown action "frezee" in [keys]; did you mean "freeze"?`},
		{"keys unknown action far", "[keys]\nlaunch_missiles = [\"x\"]\n",
			`f.toml:2:1: unknown action "launch_missiles" in [keys]; actions: ` + strings.Join(KeyActions, ", ")},
		{"keys bad key name", "[keys]\nup = [\"k\", \"pageup\"]\n",
			`f.toml:2:12: unknown key name "pageup" for up in [keys]; did you mean "pgup"?`},
		{"keys bad modifier", "[keys]\nup = \"crtl+k\"\n",
			`f.toml:2:6: unknown modifier "crtl" in key name "crtl+k" for up in [keys]; did you mean "ctrl"?`},
		{"keys empty", "[keys]\nfreeze = []\n",
			`f.toml:2:10: freeze in [keys] has no keys; give at least one, e.g. freeze = ["x"]`},
		{"keys wrong type", "[keys]\nfreeze = 1\n",
			`f.toml:2:10: freeze in [keys] must be an array of strings, got integer 1`},
		{"first error wins", "[[guest]]\nname = \"g\"\naddress = \"bad\"\n[defaults]\ninterval = \"x\"\n",
			`f.toml:3:11: [[guest]] "g": address "bad" has no scheme; want unix:/path, tcp:host:port or vsock:cid:port`},
		{"position after multiline string", "[defaults]\ntheme = \"\"\"\nx\n\"\"\"\nfoo = 1\n",
			`f.toml:5:1: unknown key "foo" in [defaults]; known keys: interval, slow_interval, timeout, concurrency, freeze_timeout, theme, readonly, exclusive`},
		{"position after multiline array", "[[host]]\nname = \"h\"\nuri = \"qemu:///system\"\ntags = [\n  \"a\", # c ]\n  \"b\",\n]\nincluded = []\n",
			`f.toml:8:1: unknown key "included" in [[host]] "h"; did you mean "include"?`},
		{"byte order mark and CRLF", "\ufeff[defaults]\r\ninterval = \"1s\"\r\n\tbanana = 1\r\n",
			`f.toml:3:2: unknown key "banana" in [defaults]; known keys: interval, slow_interval, timeout, concurrency, freeze_timeout, theme, readonly, exclusive`},
		{"nested table header after host", "[[host]]\nname = \"h\"\nuri = \"qemu:///system\"\n[host.ssh]\nport = 22\n",
			`f.toml:4:1: unknown key "ssh" in [[host]] "h"; known keys: name, uri, include, exclude, tags, known_hosts, identity, insecure_ignore_host_key`},
		{"quoted key", "[defaults]\n\"time out\" = \"1s\"\n",
			`f.toml:2:1: unknown key "time out" in [defaults]; did you mean "timeout"?`},
		{"dotted key's first part", "\n  a.b = 1\n",
			`f.toml:2:3: unknown key "a"; known keys: defaults, keys, host, guest`},
		{"header's first part", "[nope.x]\n",
			`f.toml:1:1: unknown key "nope"; known keys: defaults, keys, host, guest`},
		{"deep header after host", "[[host]]\nname = \"h\"\nuri = \"qemu:///system\"\n[host.a.b.c.d.e]\n",
			`f.toml:4:1: unknown key "a" in [[host]] "h"; known keys: name, uri, include, exclude, tags, known_hosts, identity, insecure_ignore_host_key`},
		{"deep inline table", "[[guest]]\nname = \"g\"\naddress = \"unix:/g\"\nx = {a = {b = {c = 1}}}\n",
			`f.toml:4:1: unknown key "x" in [[guest]] "g"; known keys: name, address, tags, exclusive`},
		{"array in deep tags", "guest = [{name = \"g\", address = \"unix:/g\", tags = [\"a\", [\"b\"]]}]\n",
			`f.toml:1:57: tags in [[guest]] "g" must be an array of strings, got an array in it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f.toml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", f, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not *config.Error", err, err)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
			if tt.want == "" {
				t.Logf("%s", err)
			}
		})
	}
}
