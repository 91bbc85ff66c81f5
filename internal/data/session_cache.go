package data

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
)

// defaultSessionCacheTTL is data.session_cache_ttl when the config is silent.
const defaultSessionCacheTTL = time.Second

// sessionCacheMax bounds the cache; when full it starts over (a full cache
// only costs database reads).
const sessionCacheMax = 1 << 17

// sessionCache remembers sessions read for token checks, for a short TTL, so
// a backend introspecting the same token on every request costs no database
// round trip.
//
// A session ended through this instance must be seen at once. Every
// revocation bumps the epoch, when it runs and again when its transaction
// commits; an entry is only used while the epoch is the one read before its
// database read began, so no read that may predate a revocation's commit
// survives it. Revocations are rare next to token checks, so starting over
// on each costs little.
type sessionCache struct {
	ttl   time.Duration
	now   func() time.Time
	epoch atomic.Uint64

	mu      sync.RWMutex
	entries map[string]cachedSession
}

type cachedSession struct {
	s     biz.Session
	epoch uint64
	until time.Time
}

// newSessionCache returns a cache keeping sessions for ttl, or nil (no
// caching) when ttl is not positive.
func newSessionCache(ttl time.Duration) *sessionCache {
	if ttl <= 0 {
		return nil
	}
	return &sessionCache{ttl: ttl, now: time.Now, entries: map[string]cachedSession{}}
}

// get returns a still-valid remembered session, and the epoch a database
// read made now must be stored with.
func (c *sessionCache) get(id string) (*biz.Session, uint64) {
	epoch := c.epoch.Load()
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if ok && e.epoch == epoch && c.now().Before(e.until) {
		s := e.s
		return &s, epoch
	}
	return nil, epoch
}

// put remembers s, read from the database after get returned epoch.
func (c *sessionCache) put(s *biz.Session, epoch uint64) {
	if c.epoch.Load() != epoch {
		return // a revocation ran meanwhile
	}
	c.mu.Lock()
	if len(c.entries) >= sessionCacheMax {
		c.entries = map[string]cachedSession{}
	}
	c.entries[s.ID] = cachedSession{s: *s, epoch: epoch, until: c.now().Add(c.ttl)}
	c.mu.Unlock()
}

// invalidate forgets every remembered session (a revocation happened).
func (c *sessionCache) invalidate() {
	c.epoch.Add(1)
	c.mu.Lock()
	if len(c.entries) > 0 {
		c.entries = map[string]cachedSession{}
	}
	c.mu.Unlock()
}
