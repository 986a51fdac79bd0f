package discovery

import (
	"testing"

	"github.com/digitalocean/go-libvirt"
)

// One bulk stats record is summed over its disks and interfaces; fields of
// the backing chain, other groups, wrong types and negative values are not
// counters.
func TestParseDomainStats(t *testing.T) {
	p := func(f string, v any) libvirt.TypedParam {
		return libvirt.TypedParam{Field: f, Value: libvirt.TypedParamValue{I: v}}
	}
	for _, tc := range []struct {
		name   string
		params []libvirt.TypedParam
		want   DomainCounters
	}{
		{"everything", []libvirt.TypedParam{
			p("state.state", int32(1)), p("cpu.time", uint64(5e9)), p("cpu.user", uint64(1e9)), p("vcpu.current", uint32(2)),
			p("vcpu.0.time", uint64(7)), p("balloon.current", uint64(262144)), p("balloon.maximum", uint64(524288)),
			p("block.count", uint32(2)), p("block.0.rd.bytes", uint64(100)), p("block.0.wr.bytes", uint64(10)),
			p("block.1.rd.bytes", uint64(50)), p("block.0.rd.reqs", uint64(99)), p("block.1.backingIndex", uint32(3)),
			p("net.count", uint32(1)), p("net.0.rx.bytes", uint64(7)), p("net.0.tx.bytes", uint64(8)), p("net.0.rx.pkts", uint64(1)),
		}, DomainCounters{Has: HasCPU | HasBalloon | HasBlock | HasNet, CPUTimeNs: 5e9, VCPUs: 2, BalloonKiB: 262144,
			BlockRdBytes: 150, BlockWrBytes: 10, NetRxBytes: 7, NetTxBytes: 8}},
		{"cpu without vcpus is no cpu", []libvirt.TypedParam{p("cpu.time", uint64(5e9))},
			DomainCounters{CPUTimeNs: 5e9}},
		{"wrong types and negatives", []libvirt.TypedParam{p("cpu.time", "lots"), p("vcpu.current", int32(1)),
			p("balloon.current", int64(-1)), p("block.x.rd.bytes", uint64(9)), p("block.0.rd.bytes.extra", uint64(9))},
			DomainCounters{VCPUs: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseDomainStats(tc.params); got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
