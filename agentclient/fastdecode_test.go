package agentclient

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeInterfaces checks the hand-written interface decoder against
// encoding/json: the same value, and an error exactly when it errs.
func FuzzDecodeInterfaces(f *testing.F) {
	for _, s := range []string{
		`[{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}, {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}], "statistics": {"tx-packets": 29, "tx-errs": 0, "rx-bytes": 3193, "rx-dropped": 0, "rx-packets": 29, "rx-errs": 0, "tx-bytes": 3193, "tx-dropped": 0}, "hardware-address": "00:00:00:00:00:00"}, {"name": "ifb0", "hardware-address": "1e:db:9e:70:96:b9"}]`,
		`[]`, `null`, `[null]`, `[{}]`, `{}`, `[{"name":"a\u0062"}]`, `[{"Name":"x"}]`, `[{"name":"x","name":"y"}]`,
		`[{"name":"x","statistics":{"rx-bytes":-1}}]`, `[{"name":"x","statistics":{"rx-bytes":18446744073709551615}}]`,
		`[{"name":"x","statistics":{"rx-bytes":18446744073709551616}}]`, `[{"name":"x","ip-addresses":[{"prefix":1.5}]}]`,
		`[{"name":"x","ip-addresses":[{"prefix":-0}],"extra":[1,{"a":null}]}]`, `[{"name":"x"}] x`, `[{"name":"x",}]`,
		`[{"name":"\xff"}]`, `[{"name":"x","statistics":null}]`, `[{"name":"x","ip-addresses":[]}]`, `[{"name":01}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []Interface
		werr := json.Unmarshal(b, &want)
		var got []Interface
		gerr := decodeReturn(b, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: error %v, encoding/json's %v", b, gerr, werr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %+v, encoding/json %+v", b, got, want)
		}
	})
}

// FuzzDecodeVCPUsAndTime does the same for the vCPU list and the time.
func FuzzDecodeVCPUsAndTime(f *testing.F) {
	for _, s := range []string{
		`[{"online": true, "can-offline": true, "logical-id": 1}, {"online": true, "can-offline": false, "logical-id": 0}]`,
		`[]`, `null`, `[{"online":truex}]`, `[{"online":null}]`, `[{"logical-id":1,"logical-id":2}]`, `[{"Online":true}]`,
		`1700000000123456789`, `-5`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `1e3`, `"1"`, ` 12 `, `012`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []VCPU
		werr := json.Unmarshal(b, &want)
		var got []VCPU
		gerr := decodeReturn(b, &got)
		if (werr == nil) != (gerr == nil) || werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %+v, %v; encoding/json %+v, %v", b, got, gerr, want, werr)
		}
		var wantN, gotN int64
		werr = json.Unmarshal(b, &wantN)
		gerr = decodeReturn(b, &gotN)
		if (werr == nil) != (gerr == nil) || werr == nil && gotN != wantN {
			t.Fatalf("%q: got %d, %v; encoding/json %d, %v", b, gotN, gerr, wantN, werr)
		}
	})
}
