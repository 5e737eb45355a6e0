package loadtest

import (
	"math"
	"slices"
	gosync "sync"
	"time"
)

// latencies collects durations from many goroutines and answers percentiles.
type latencies struct {
	mu gosync.Mutex
	ds []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ds = append(l.ds, d)
	l.mu.Unlock()
}

// summary returns the count and the p50, p99 and max, in milliseconds.
func (l *latencies) summary() Latency {
	l.mu.Lock()
	ds := slices.Clone(l.ds)
	l.mu.Unlock()
	return summarize(ds)
}

// Latency is a distribution of durations, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	return Latency{Count: len(ds), P50: ms(percentile(ds, 0.50)), P99: ms(percentile(ds, 0.99)), Max: ms(ds[len(ds)-1])}
}

// percentile returns the nearest-rank percentile p (0 to 1) of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

// round rounds x to digits decimal places, so the JSON stays readable.
func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// median returns the median of ds (the lower one of an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[(len(s)-1)/2]
}
