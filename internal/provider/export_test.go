package provider

import "time"

// SetClock replaces r's clock (breaker open periods, call durations). Call
// it before the first Wrap.
func (r *Resilience) SetClock(now func() time.Time) { r.now = now }

// BreakerOpen reports whether platform's breaker refuses calls now.
func (r *Resilience) BreakerOpen(platform string) bool {
	b := r.breaker(platform)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == halfOpen || b.state == open && b.now().Before(b.openUntil)
}
