package agentclient

import "testing"

func FuzzDecodeStats(f *testing.F) {
	for _, s := range []string{
		`[{"cpu": 0, "guestnice": 0, "idle": 4625610, "steal": 9070, "iowait": 48890, "system": 2269380, "guest": 0, "nice": 38440, "irq": 0, "type": "linux", "user": 4284350, "softirq": 1890}]`,
		`[{"name": "vda", "stats": {"discard-sectors": 0, "write-ios": 225267, "discard-ios": 0, "discard-ticks": 0, "weight-ticks": 28627186, "read-ios": 2448106, "flush-ios": 43275, "write-sectors": 41102856, "write-merges": 371855, "write-ticks": 510628, "ios-pgr": 0, "read-sectors": 1278785386, "read-merges": 552998, "total-ticks": 915632, "discard-merges": 0, "flush-ticks": 18511, "read-ticks": 28071476}, "minor": 0, "major": 254}]`,
		`[]`, `null`, `[null]`, `[{}]`, `{}`, `[{"cpu":-1,"user":1}]`, `[{"cpu":1,"user":-1}]`, `[{"user":1,"user":2}]`,
		`[{"cpu":1,"idle":18446744073709551615,"iowait":18446744073709551616}]`, `[{"cpu":1,"steal":1.5}]`,
		`[{"cpu":1,"type":"windows","extra":[1,{"a":null}]}]`, `[{"cpu":1,"iowait":null}]`, `[{"cpu":"1"}]`,
		`[{"name":"sda","stats":null}]`, `[{"name":"sda","stats":{"read-ios":1,"read-ios":2}}]`, `[{"name":"sda","stats":{"ios-pgr":-3}}]`,
		`[{"name":"sda","major":8,"minor":0,"stats":{}}] x`, `[{"name":"\u0073da","stats":{"read-sectors":01}}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecoder(t, b, decodeCPUStats)
		checkDecoder(t, b, decodeDiskStats)
	})
}
