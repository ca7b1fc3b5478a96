package bridge

import "sync"

// memo remembers a pure function's answers for keys that come again and again (a patient's
// number in every webhook). Emptied when it holds max, which keeps it small and is rare.
type memo[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]V
	max int
}

// get returns the remembered answer for key, or computes and remembers it.
func (c *memo[K, V]) get(key K, compute func(K) V) V {
	c.mu.Lock()
	v, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = compute(key)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[K]V)
	}
	c.m[key] = v
	c.mu.Unlock()
	return v
}
