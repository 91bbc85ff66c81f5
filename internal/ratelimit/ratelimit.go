// Package ratelimit counts events per key in fixed windows ("at most N
// logins per minute from this address"), in memory (one instance) or in
// Redis (shared by every instance).
package ratelimit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-kratos/kratos/v2/log"
)

// Store counts hits per key in fixed windows.
type Store interface {
	// Hit counts one event for key in its current window (which starts at
	// the key's first hit and lasts window) and returns the count so far,
	// this one included, and the time left until the window ends.
	Hit(ctx context.Context, key string, window time.Duration) (count int64, resetIn time.Duration, err error)
}

// Limiter allows at most Limit events per Window for each key.
type Limiter struct {
	store  Store
	name   string
	limit  int64
	window time.Duration
	log    *log.Helper
	// failing is set while the store fails, so an outage logs one warning.
	failing atomic.Bool
}

// New returns a limiter of limit events per window per key. name namespaces
// its keys in the store (two limiters may share one store) and names it in
// logs.
func New(store Store, name string, limit int, window time.Duration, logger log.Logger) *Limiter {
	if logger == nil {
		logger = log.DefaultLogger
	}
	return &Limiter{
		store: store, name: name, limit: int64(limit), window: window,
		log: log.NewHelper(log.With(logger, "module", "ratelimit")),
	}
}

// Allow counts one event for key and reports whether it is within the
// limit, and if not, how long until the key's window ends. A nil Limiter
// allows everything. When the store fails (Redis down) it allows: a
// rate-limit outage must never block logins.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	n, reset, err := l.store.Hit(ctx, l.name+":"+key, l.window)
	if err != nil {
		if !l.failing.Swap(true) {
			l.log.Warnw("msg", "rate-limit store failing: allowing requests unlimited until it recovers", "limiter", l.name, "err", err)
		}
		return true, 0
	}
	if l.failing.Swap(false) {
		l.log.Infow("msg", "rate-limit store recovered", "limiter", l.name)
	}
	if n <= l.limit {
		return true, 0
	}
	if reset <= 0 {
		reset = time.Second
	}
	return false, reset
}
