package main

import (
	"context"
	"fmt"
	"time"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/redis/go-redis/v9"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/ratelimit"
	"github.com/mpauth/mpauth/internal/server"
)

// Abuse and overload protection (config `limits`, `redis`).

// loginWindow is the window of the login limits (per minute).
const loginWindow = time.Minute

// newRedis connects to the configured Redis; nil when none is configured.
// A Redis that is down at start does not stop the server: what uses it
// fails open.
func newRedis(bc *conf.Bootstrap, logger log.Logger) (*redis.Client, func(), error) {
	r := bc.GetRedis()
	if r.GetAddr() == "" {
		return nil, func() {}, nil
	}
	c := redis.NewClient(&redis.Options{
		Addr: r.GetAddr(), Password: r.GetPassword(), DB: int(r.GetDb()),
		DialTimeout: time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		ContextTimeoutEnabled: true,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		log.NewHelper(logger).Warnw("msg", "redis is not reachable: limits are not enforced until it is", "addr", r.GetAddr(), "err", err)
	}
	return c, func() { _ = c.Close() }, nil
}

// limitStore returns where a limiter counts: Redis (shared by every
// instance) when configured, else this process's memory.
func limitStore(bc *conf.Bootstrap, rdb *redis.Client) ratelimit.Store {
	if rdb == nil {
		return ratelimit.NewMemory(0)
	}
	prefix := bc.GetRedis().GetKeyPrefix()
	if prefix == "" {
		prefix = conf.DefaultRedisKeyPrefix
	}
	return ratelimit.NewRedis(rdb, prefix)
}

// loginLimiter returns a per-minute limiter, nil (no limit) when perMinute
// is not positive: -1 turns a limit off, and Load turns 0 into the default
// (a config built by hand without Load has no limits).
func loginLimiter(bc *conf.Bootstrap, rdb *redis.Client, name string, perMinute int32, logger log.Logger) *ratelimit.Limiter {
	if perMinute <= 0 {
		return nil
	}
	return ratelimit.New(limitStore(bc, rdb), name, int(perMinute), loginWindow, logger)
}

// newProtection returns the servers' abuse and overload protection.
func newProtection(bc *conf.Bootstrap, rdb *redis.Client, logger log.Logger) (*server.Protection, error) {
	l := bc.GetLimits()
	proxies, err := conf.ParseTrustedProxies(l.GetTrustedProxies())
	if err != nil {
		return nil, err
	}
	p := &server.Protection{
		LoginPerIP:     loginLimiter(bc, rdb, "login-ip", l.GetLoginPerIpPerMinute(), logger),
		TrustedProxies: proxies,
	}
	if !l.GetDisableOverloadProtection() {
		p.Overload = server.NewOverloadLimiter()
	}
	return p, nil
}

// identityLimiter is biz.LoginLimiter on a ratelimit.Limiter.
type identityLimiter struct{ l *ratelimit.Limiter }

func (i identityLimiter) AllowIdentity(ctx context.Context, platform, appID, openID string) (bool, time.Duration) {
	return i.l.Allow(ctx, fmt.Sprintf("%s/%s/%s", platform, appID, openID))
}

// identityLoginLimiter is the per-(app, openid) login limit.
func identityLoginLimiter(bc *conf.Bootstrap, rdb *redis.Client, logger log.Logger) biz.LoginLimiter {
	l := loginLimiter(bc, rdb, "login-identity", bc.GetLimits().GetLoginPerIdentityPerMinute(), logger)
	if l == nil {
		return biz.NoLoginLimit{}
	}
	return identityLimiter{l}
}
