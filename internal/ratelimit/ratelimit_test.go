package ratelimit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/redis/go-redis/v9"

	"github.com/mpauth/mpauth/internal/ratelimit"
)

const redisAddr = "127.0.0.1:6379"

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// uniquePrefix returns a Redis key prefix of this test alone and deletes
// its keys when the test ends.
func uniquePrefix(t *testing.T) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := "mpauth-test:" + t.Name() + ":" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer c.Close()
		ctx := context.Background()
		if keys, err := c.Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return prefix
}

func newRedisClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// backends returns a fresh store of each kind; the Redis one under a
// prefix of its own and cleaned up after the test.
func backends(t *testing.T) map[string]ratelimit.Store {
	t.Helper()
	c := newRedisClient(t, redisAddr)
	prefix := uniquePrefix(t)
	return map[string]ratelimit.Store{
		"memory": ratelimit.NewMemory(0),
		"redis":  ratelimit.NewRedis(c, prefix),
	}
}

func TestLimiterAllowsUpToTheLimitPerKey(t *testing.T) {
	for name, store := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := ratelimit.New(store, "login", 3, time.Minute, nil)
			for i := 1; i <= 3; i++ {
				if ok, after := l.Allow(ctx, "1.2.3.4"); !ok || after != 0 {
					t.Fatalf("hit %d: ok=%v after=%v, want allowed", i, ok, after)
				}
			}
			for i := 4; i <= 5; i++ {
				ok, after := l.Allow(ctx, "1.2.3.4")
				if ok {
					t.Fatalf("hit %d allowed over a limit of 3", i)
				}
				if after <= 0 || after > time.Minute {
					t.Fatalf("hit %d: retry after %v, want within the minute window", i, after)
				}
			}
			if ok, _ := l.Allow(ctx, "5.6.7.8"); !ok {
				t.Fatalf("another key was limited by the first key's hits")
			}
			// Another limiter on the same store counts apart.
			other := ratelimit.New(store, "identity", 1, time.Minute, nil)
			if ok, _ := other.Allow(ctx, "1.2.3.4"); !ok {
				t.Fatalf("a second limiter on the store shares the first one's counts")
			}
		})
	}
}

func TestLimiterAllowsAgainAfterTheWindow(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		l := ratelimit.New(ratelimit.NewMemory(0).WithClock(c.now), "login", 2, time.Minute, nil)
		ctx := context.Background()
		l.Allow(ctx, "k")
		c.advance(20 * time.Second)
		l.Allow(ctx, "k")
		ok, after := l.Allow(ctx, "k")
		if ok || after != 40*time.Second {
			t.Fatalf("third hit: ok=%v after=%v, want refused for 40s (the window started at the first hit)", ok, after)
		}
		c.advance(after)
		if ok, _ := l.Allow(ctx, "k"); !ok {
			t.Fatalf("refused after the window ended")
		}
	})
	t.Run("redis", func(t *testing.T) {
		store := backends(t)["redis"]
		l := ratelimit.New(store, "login", 1, 300*time.Millisecond, nil)
		ctx := context.Background()
		if ok, _ := l.Allow(ctx, "k"); !ok {
			t.Fatal("first hit refused")
		}
		ok, after := l.Allow(ctx, "k")
		if ok || after <= 0 || after > 300*time.Millisecond {
			t.Fatalf("second hit: ok=%v after=%v, want refused within the window", ok, after)
		}
		// Redis expires the window; poll generously.
		deadline := time.Now().Add(10 * time.Second)
		for {
			time.Sleep(after)
			if ok, after = l.Allow(ctx, "k"); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("still refused 10s after a 300ms window")
			}
		}
	})
}

func TestRedisLimitIsSharedByInstances(t *testing.T) {
	prefix := uniquePrefix(t)
	ctx := context.Background()
	// Two instances: two clients, two stores, two limiters, one Redis.
	a := ratelimit.New(ratelimit.NewRedis(newRedisClient(t, redisAddr), prefix), "login", 4, time.Minute, nil)
	b := ratelimit.New(ratelimit.NewRedis(newRedisClient(t, redisAddr), prefix), "login", 4, time.Minute, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(l *ratelimit.Limiter) {
			defer wg.Done()
			if ok, _ := l.Allow(ctx, "10.0.0.1"); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}([]*ratelimit.Limiter{a, b}[i%2])
	}
	wg.Wait()
	if allowed != 4 {
		t.Fatalf("%d of 20 concurrent hits over two instances allowed, want exactly 4", allowed)
	}
	// Another prefix (another deployment) is not affected.
	c := ratelimit.New(ratelimit.NewRedis(newRedisClient(t, redisAddr), uniquePrefix(t)), "login", 4, time.Minute, nil)
	if ok, _ := c.Allow(ctx, "10.0.0.1"); !ok {
		t.Fatal("a limiter under another prefix is limited by this one's hits")
	}
}

func TestRedisOutageFailsOpenAndWarnsOnce(t *testing.T) {
	logs := &syncBuffer{}
	// Nothing listens on port 1.
	l := ratelimit.New(ratelimit.NewRedis(newRedisClient(t, "127.0.0.1:1"), uniquePrefix(t)), "login", 1, time.Minute, log.NewStdLogger(logs))
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allow(context.Background(), "1.2.3.4"); !ok {
			t.Fatalf("hit %d refused with Redis down: the limiter must fail open", i+1)
		}
	}
	if n := strings.Count(logs.String(), "rate-limit store failing"); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1; logs:\n%s", n, logs)
	}
}

func TestNilLimiterAllowsEverything(t *testing.T) {
	var l *ratelimit.Limiter
	for i := 0; i < 100; i++ {
		if ok, _ := l.Allow(context.Background(), "k"); !ok {
			t.Fatal("a nil (disabled) limiter refused")
		}
	}
}

func TestMemoryStaysBounded(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := ratelimit.NewMemory(100).WithClock(c.now)
	l := ratelimit.New(m, "login", 1, time.Minute, nil)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		l.Allow(ctx, fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if m.Len() > 100 {
		t.Fatalf("%d keys held, bound is 100", m.Len())
	}
	// The newest keys are still counted: the oldest were evicted.
	if ok, _ := l.Allow(ctx, "10.0.3.231"); ok {
		t.Fatal("the most recent key was evicted")
	}
	// Expired windows are dropped as time passes.
	c.advance(time.Minute)
	l.Allow(ctx, "fresh")
	if m.Len() != 1 {
		t.Fatalf("%d keys held after every window expired, want 1", m.Len())
	}
}
