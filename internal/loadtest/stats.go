package loadtest

import (
	"slices"
	"time"
)

// Percentile is the p-th percentile (0–100) of d by the nearest-rank method; 0 for no data.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	rank = max(0, min(rank, len(s)-1))
	return s[rank]
}

// Millis is d in milliseconds, for tables.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
