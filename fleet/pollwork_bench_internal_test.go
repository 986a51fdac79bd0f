package fleet

import (
	"strconv"
	"testing"
	"time"

	"github.com/guestdeck/guestdeck/agentclient"
)

// steadyRecords are a steady live poll's log records as a socket agent's
// stream hands them to logRecord (qemu-ga's reply format, the transport's
// request ids): the time, which changes every poll, and the interfaces and
// vCPUs, which stay the same.
func steadyRecords(seq *uint64, now time.Time) [3]agentclient.LogRecord {
	const tag = "gd1x2y3z"
	var out [3]agentclient.LogRecord
	for i, c := range [...]struct{ cmd, rep string }{
		{"guest-get-time", `{"return": ` + strconv.FormatInt(now.UnixNano(), 10)},
		{"guest-network-get-interfaces", `{"return": [{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}, {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}], "statistics": {"tx-packets": 0, "tx-errs": 0, "rx-bytes": 0, "rx-dropped": 0, "rx-packets": 0, "rx-errs": 0, "tx-bytes": 0, "tx-dropped": 0}, "hardware-address": "00:00:00:00:00:00"}, {"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.0.12", "prefix": 24}], "hardware-address": "52:54:00:12:34:56"}]`},
		{"guest-get-vcpus", `{"return": [{"online": true, "can-offline": false, "logical-id": 0}, {"online": true, "can-offline": true, "logical-id": 1}]`},
	} {
		*seq++
		id := tag + "-" + strconv.FormatUint(*seq, 10)
		out[i] = agentclient.LogRecord{
			Addr:     "unix:/run/g.sock",
			Command:  c.cmd,
			Request:  []byte(`{"execute":"` + c.cmd + `","id":"` + id + `"}`),
			Reply:    []byte(c.rep + `, "id": "` + id + `"}`),
			Start:    now,
			Duration: 150 * time.Microsecond,
		}
	}
	return out
}

// BenchmarkLogRecord is the command log's work for one steady live poll:
// its three records through logRecord, as the stream's hook hands them.
func BenchmarkLogRecord(b *testing.B) {
	f, _ := fakeFleet(Options{}, 1)
	defer f.Close()
	s := f.session("g000")
	var seq uint64
	now := time.Now()
	// The records are built ahead (the transport's own work, not the log's).
	const n = 1024
	recs := make([][3]agentclient.LogRecord, n)
	for i := range recs {
		recs[i] = steadyRecords(&seq, now.Add(time.Duration(i)*5*time.Second))
	}
	for i := range 8 { // the log full, and every command's last entry there
		for _, r := range recs[i] {
			s.logRecord(r)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, r := range recs[i%n] {
			s.logRecord(r)
		}
		i++
	}
}

// BenchmarkApply is publishing one steady live poll: its result (a round
// trip, a skew, the interfaces and vCPUs as shown) made the guest's next
// Guest, its histories and the fleet's change signal.
func BenchmarkApply(b *testing.B) {
	f, _ := fakeFleet(Options{}, 1)
	defer f.Close()
	s := f.session("g000")
	online := true
	ifaces := []agentclient.Interface{{Name: "lo"}, {Name: "eth0"}}
	vcpus := []agentclient.VCPU{{LogicalID: 0, Online: online}, {LogicalID: 1, Online: online}}
	steady := func(i int) *pollResult {
		return &pollResult{rtt: time.Duration(100+i%7) * time.Microsecond, rttOK: true, skew: time.Duration(i%13) * time.Millisecond, skewOK: true,
			ifaces: ifaces, ifacesOK: true, vcpus: s.cur.Load().VCPUs, vcpusOK: true, liveOK: true, freeze: agentclient.Thawed}
	}
	r := steady(0)
	r.vcpus = vcpus
	s.apply(r)
	for i := range 2 * rttHistory { // the histories full
		s.apply(steady(i))
	}
	b.ReportAllocs()
	var r0 pollResult
	i := 0
	for b.Loop() {
		r := steady(i)
		s.apply(r)
		*r = r0
		i++
	}
	if g := s.cur.Load(); g.State != Ready || g.RTTHistory.Len() != rttHistory {
		b.Fatalf("after the polls: %v, %d round trips", g.State, g.RTTHistory.Len())
	}
}
