package ratelimit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// hitScript counts a hit and starts the key's window on its first hit, in
// one atomic step. It returns the count and the milliseconds left.
var hitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`)

// redisTimeout bounds one Redis round trip: a slow Redis must not slow
// logins down much.
const redisTimeout = 500 * time.Millisecond

// redisBackoff is how long the store stops asking a Redis that failed
// (answering errors meanwhile), so an unreachable Redis costs one timeout
// per backoff, not one per request.
const redisBackoff = time.Second

// Redis is a Store in Redis, shared by every instance using the same Redis
// and prefix. Its windows expire in Redis itself.
type Redis struct {
	client    redis.UniversalClient
	prefix    string
	downUntil atomic.Int64 // unix nanos
}

// NewRedis returns a Store keeping its counters under prefix in client.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// errBackoff is returned while the store waits before trying Redis again.
type errBackoff struct{}

func (errBackoff) Error() string { return "redis failed recently: not asking it for a moment" }

// Hit implements Store.
func (r *Redis) Hit(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	if time.Now().UnixNano() < r.downUntil.Load() {
		return 0, 0, errBackoff{}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	ms := window.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	res, err := hitScript.Run(ctx, r.client, []string{r.prefix + key}, ms).Int64Slice()
	if err == nil && len(res) != 2 {
		err = redis.Nil
	}
	if err != nil {
		r.downUntil.Store(time.Now().Add(redisBackoff).UnixNano())
		return 0, 0, err
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}
