package provider

import "time"

// SetClock replaces r's clock (breaker open periods, call durations). Call
// it before the first Wrap.
func (r *Resilience) SetClock(now func() time.Time) { r.now = now }
