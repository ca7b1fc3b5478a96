package api

import (
	"sync"
	"time"
)

// limiter is a token bucket per API token: a burst of a minute's allowance, refilled evenly.
type limiter struct {
	mu      sync.Mutex
	perMin  float64
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(perMinute int, now func() time.Time) *limiter {
	return &limiter{perMin: float64(perMinute), now: now, buckets: map[string]*bucket{}}
}

// allow takes one request from name's bucket, or says how long until one is available.
func (l *limiter) allow(name string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[name]
	if b == nil {
		b = &bucket{tokens: l.perMin, at: now}
		l.buckets[name] = b
	}
	b.tokens = min(l.perMin, b.tokens+now.Sub(b.at).Minutes()*l.perMin)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.perMin * float64(time.Minute)), false
}
