package biz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kratos/kratos/v2/log"
	"golang.org/x/sync/singleflight"

	"github.com/mpauth/mpauth/internal/provider"
)

// PlatformToken is the stored access token of one app.
type PlatformToken struct {
	Token     string
	ExpiresAt time.Time
	Invalid   bool
}

// PlatformTokenRepo stores every app's platform access token, shared by all
// instances.
type PlatformTokenRepo interface {
	// Get returns the stored token; ErrNotFound if none was ever stored.
	Get(ctx context.Context, platform, appID string) (*PlatformToken, error)
	// AcquireLease makes holder the one refresher until `until`, if nobody
	// holds an unexpired lease. It reports whether holder got it.
	AcquireLease(ctx context.Context, platform, appID, holder string, now, until time.Time) (bool, error)
	// Store saves a fresh token and releases holder's lease.
	Store(ctx context.Context, platform, appID, holder string, t PlatformToken) error
	// ReleaseLease gives up holder's lease without a new token.
	ReleaseLease(ctx context.Context, platform, appID, holder string) error
	// MarkInvalid flags the stored token invalid if it is still `token`.
	MarkInvalid(ctx context.Context, platform, appID, token string) error
}

// Token broker timing.
const (
	// refreshAhead: a token this close to expiry is refreshed by one caller
	// while the others keep using it.
	refreshAhead = 2 * time.Minute
	// tokenLease bounds how long one instance may hold the refresh.
	tokenLease = 15 * time.Second
	// tokenWaitPoll is how often a caller without the lease re-reads the row.
	tokenWaitPoll = 50 * time.Millisecond
)

// TokenBroker implements provider.AccessTokens on the database: every
// instance shares one token per app, refreshed by one caller at a time.
type TokenBroker struct {
	repo   PlatformTokenRepo
	holder string
	now    func() time.Time
	group  singleflight.Group
	log    *log.Helper

	mu    sync.Mutex
	cache map[string]PlatformToken
}

// NewTokenBroker returns the broker of this instance.
func NewTokenBroker(repo PlatformTokenRepo, logger log.Logger) *TokenBroker {
	return &TokenBroker{
		repo:   repo,
		holder: randomID("i_"),
		now:    time.Now,
		cache:  make(map[string]PlatformToken),
		log:    log.NewHelper(log.With(logger, "module", "biz/token-broker")),
	}
}

var _ provider.AccessTokens = (*TokenBroker)(nil)

func tokenKey(app provider.App) string { return app.Platform + "/" + app.AppID }

// usable reports whether t can be handed out now, and whether it is due for
// a refresh-ahead.
func (b *TokenBroker) usable(t PlatformToken, now time.Time) (ok, due bool) {
	if t.Token == "" || t.Invalid || !now.Before(t.ExpiresAt) {
		return false, true
	}
	return true, !now.Before(t.ExpiresAt.Add(-refreshAhead))
}

// Token returns a valid token of app, fetching one with f when none is
// stored, the stored one was invalidated, or it is about to expire.
func (b *TokenBroker) Token(ctx context.Context, app provider.App, f provider.TokenFetcher) (string, error) {
	k := tokenKey(app)
	b.mu.Lock()
	cached, hit := b.cache[k]
	b.mu.Unlock()
	if hit {
		if ok, due := b.usable(cached, b.now()); ok && !due {
			return cached.Token, nil
		}
	}
	v, err, _ := b.group.Do(k, func() (any, error) { return b.load(ctx, app, f) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// load reads the shared row and, when needed, refreshes it under the lease.
func (b *TokenBroker) load(ctx context.Context, app provider.App, f provider.TokenFetcher) (string, error) {
	deadline := b.now().Add(tokenLease + 5*time.Second)
	for {
		now := b.now()
		cur, err := b.repo.Get(ctx, app.Platform, app.AppID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", err
		}
		var t PlatformToken
		if cur != nil {
			t = *cur
		}
		ok, due := b.usable(t, now)
		if ok && !due {
			b.remember(app, t)
			return t.Token, nil
		}
		got, err := b.repo.AcquireLease(ctx, app.Platform, app.AppID, b.holder, now, now.Add(tokenLease))
		if err != nil {
			return "", err
		}
		if got {
			// Re-read under the lease: another instance may have stored a
			// fresh token between our read and our lease.
			if cur, err := b.repo.Get(ctx, app.Platform, app.AppID); err == nil {
				if ok, due := b.usable(*cur, b.now()); ok && !due {
					_ = b.repo.ReleaseLease(ctx, app.Platform, app.AppID, b.holder)
					b.remember(app, *cur)
					return cur.Token, nil
				}
				t = *cur
			}
			return b.refresh(ctx, app, f, t)
		}
		// Another instance is refreshing: keep using a still-valid token,
		// or wait for the new one.
		if ok {
			return t.Token, nil
		}
		if now.After(deadline) {
			return "", &provider.Error{Kind: provider.ErrUnavailable, Platform: app.Platform, Message: "timed out waiting for another instance to refresh the access token"}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(tokenWaitPoll):
		}
	}
}

func (b *TokenBroker) refresh(ctx context.Context, app provider.App, f provider.TokenFetcher, old PlatformToken) (string, error) {
	// Force only when the platform told us the current token is bad; a
	// forced refresh is rate-limited by the platforms (WeChat: 20/day).
	fresh, err := f.FetchAccessToken(ctx, old.Invalid)
	if err != nil {
		_ = b.repo.ReleaseLease(context.WithoutCancel(ctx), app.Platform, app.AppID, b.holder)
		if ok, _ := b.usable(old, b.now()); ok {
			// Refresh-ahead failed but the token still works: keep it.
			b.log.WithContext(ctx).Warnw("msg", "refreshing a platform access token failed; using the current one", "platform", app.Platform, "app_id", app.AppID, "err", err)
			return old.Token, nil
		}
		return "", err
	}
	if fresh.Token == "" || fresh.ExpiresIn <= 0 {
		_ = b.repo.ReleaseLease(context.WithoutCancel(ctx), app.Platform, app.AppID, b.holder)
		return "", &provider.Error{Kind: provider.ErrUnavailable, Platform: app.Platform, Message: "the platform returned an empty access token"}
	}
	t := PlatformToken{Token: fresh.Token, ExpiresAt: b.now().Add(fresh.ExpiresIn)}
	if err := b.repo.Store(ctx, app.Platform, app.AppID, b.holder, t); err != nil {
		return "", fmt.Errorf("storing the access token: %w", err)
	}
	b.log.WithContext(ctx).Infow("msg", "platform access token refreshed", "platform", app.Platform, "app_id", app.AppID, "expires_in", fresh.ExpiresIn.String(), "forced", old.Invalid)
	b.remember(app, t)
	return t.Token, nil
}

func (b *TokenBroker) remember(app provider.App, t PlatformToken) {
	b.mu.Lock()
	b.cache[tokenKey(app)] = t
	b.mu.Unlock()
}

// Invalidate drops token everywhere: the next Token call forces a refresh.
func (b *TokenBroker) Invalidate(ctx context.Context, app provider.App, token string) error {
	b.mu.Lock()
	if c, ok := b.cache[tokenKey(app)]; ok && c.Token == token {
		delete(b.cache, tokenKey(app))
	}
	b.mu.Unlock()
	return b.repo.MarkInvalid(ctx, app.Platform, app.AppID, token)
}
