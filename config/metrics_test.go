package config

import (
	"testing"
	"time"
)

// metrics_interval: a duration, 0 (number or duration) turns metrics off,
// anything else that is not a positive duration is refused.
func TestMetricsInterval(t *testing.T) {
	tests := []struct {
		src  string
		want time.Duration
		err  string
	}{
		{"", DefaultMetricsInterval, ""},
		{"[defaults]\nmetrics_interval = \"30s\"\n", 30 * time.Second, ""},
		{"[defaults]\nmetrics_interval = 0\n", 0, ""},
		{"[defaults]\nmetrics_interval = \"0s\"\n", 0, ""},
		{"[defaults]\nmetrics_interval = 10\n", 0, `f.toml:2:20: metrics_interval in [defaults] must be a duration string like "5s", got integer 10; write "10s"`},
		{"[defaults]\nmetrics_interval = \"-1s\"\n", 0, `f.toml:2:20: metrics_interval in [defaults] must be positive, got "-1s"`},
	}
	for _, tc := range tests {
		f, err := Parse("f.toml", []byte(tc.src))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.src, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if got := f.Defaults.MetricsInterval.Duration; got != tc.want {
			t.Errorf("%q: metrics_interval %v, want %v", tc.src, got, tc.want)
		}
	}
}
