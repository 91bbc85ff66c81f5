package biz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/provider"
)

// CodeExchange is the shared record of one login code's exchange.
type CodeExchange struct {
	Hash       string
	Done       bool
	SessionID  string
	UserID     string
	IsNewUser  bool
	LeaseUntil time.Time
}

// CodeExchangeRepo stores code exchanges, shared by every instance.
type CodeExchangeRepo interface {
	// Claim makes holder the one instance exchanging the code: it inserts a
	// pending record, or takes over a pending one whose lease expired. When
	// another holder has it, Claim returns false and the current record.
	Claim(ctx context.Context, hash, platform, appID, holder string, now, leaseUntil, expiresAt time.Time) (bool, *CodeExchange, error)
	// Complete records the login of a claimed code (inside the login's
	// transaction, so the record and the session commit together).
	Complete(ctx context.Context, hash, holder, sessionID, userID string, isNewUser bool) error
	// Release drops holder's pending claim after a failed exchange, so a
	// retry can try the platform again.
	Release(ctx context.Context, hash, holder string) error
	Get(ctx context.Context, hash string) (*CodeExchange, error)
	// Purge deletes up to limit records that expired before `before`.
	Purge(ctx context.Context, before time.Time, limit int) error
}

const (
	// codeRetryWindow is how long a retried code returns the same login.
	// WeChat codes live 5 minutes; others' longer-lived codes fall back to
	// the platform's own answer after this.
	codeRetryWindow = 10 * time.Minute
	// codeLeaseExtra is added to the platform deadline for a claim's lease.
	codeLeaseExtra = 10 * time.Second
	// codeWaitPoll is how often a duplicate re-reads a pending record.
	codeWaitPoll = 25 * time.Millisecond
)

// codeHash identifies a login code without storing it: SHA-256 of the
// fields, each ended by a NUL, in hex.
func codeHash(platform, appID string, c provider.Credentials) string {
	var buf [256]byte // the fields of any real code fit; longer ones grow it
	b := buf[:0]
	for _, s := range [...]string{platform, appID, c.Code, c.AnonymousCode} {
		b = append(append(b, s...), 0)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// loginOnce exchanges a code exactly once across retries, concurrent
// duplicates and instances: the claimant calls the platform and records the
// login; every duplicate replays that login (same user, same session).
// hash is the code's codeHash.
func (uc *AuthUsecase) loginOnce(ctx context.Context, app provider.App, p provider.Provider, cred provider.Credentials, hash string) (*TokenPair, error) {
	timeout := app.Timeout
	if timeout <= 0 {
		timeout = provider.DefaultTimeout
	}
	for attempt := 0; attempt < 3; attempt++ {
		now := uc.now()
		claimed, rec, err := uc.codes.Claim(ctx, hash, app.Platform, app.AppID, uc.holder, now, now.Add(3*timeout+codeLeaseExtra), now.Add(codeRetryWindow))
		if err != nil {
			return nil, storageError(ctx, uc.log, "claim login code", err)
		}
		if claimed {
			uc.maybePurge(ctx, now)
			return uc.exchange(ctx, app, p, cred, hash)
		}
		if rec, err = uc.awaitExchange(ctx, hash, rec); err != nil {
			return nil, err
		}
		if rec != nil {
			return uc.replay(ctx, rec)
		}
		// The claimant gave up (its exchange failed): try ourselves.
	}
	return nil, v1.ErrorPlatformUnavailable("the login code is being exchanged by another request that keeps failing: retry later")
}

// exchange calls the platform for a claimed code and records the login.
func (uc *AuthUsecase) exchange(ctx context.Context, app provider.App, p provider.Provider, cred provider.Credentials, hash string) (*TokenPair, error) {
	release := func() {
		_ = uc.codes.Release(context.WithoutCancel(ctx), hash, uc.holder)
	}
	id, err := p.Exchange(ctx, cred)
	if err != nil {
		release()
		return nil, uc.platformError(ctx, app, err)
	}
	if ok, after := uc.limiter.AllowIdentity(ctx, app.Platform, app.AppID, id.OpenID+id.AnonymousOpenID); !ok {
		release()
		return nil, RateLimited(LimitIdentity, "too many logins for this account", after)
	}
	now := uc.now()
	refresh := NewRefreshToken()
	var (
		sess  *Session
		isNew bool
	)
	err = uc.inTx(ctx, func(ctx context.Context) error {
		userID, created, err := uc.resolveUser(ctx, app, id, now)
		if err != nil {
			return err
		}
		sess = &Session{ID: NewSessionID(), UserID: userID, Platform: app.Platform, AppID: app.AppID, CreatedAt: now}
		isNew = created
		if err := uc.sessions.Create(ctx, sess, RefreshToken{
			Hash: HashRefreshToken(refresh), SessionID: sess.ID, ExpiresAt: now.Add(uc.cfg.RefreshTokenTTL),
		}); err != nil {
			return err
		}
		return uc.codes.Complete(ctx, hash, uc.holder, sess.ID, userID, created)
	})
	if err != nil {
		release()
		return nil, storageError(ctx, uc.log, "record login", err)
	}
	return uc.issue(sess, refresh, isNew)
}

// awaitExchange waits for another request's pending exchange of the same
// code. It returns the finished record, or nil when the claim went away.
func (uc *AuthUsecase) awaitExchange(ctx context.Context, hash string, rec *CodeExchange) (*CodeExchange, error) {
	for rec != nil && !rec.Done {
		if !uc.now().Before(rec.LeaseUntil) {
			return nil, nil // the claimant died; its lease lapsed
		}
		select {
		case <-ctx.Done():
			return nil, v1.ErrorPlatformUnavailable("timed out waiting for the same code's exchange: retry")
		case <-time.After(codeWaitPoll):
		}
		var err error
		rec, err = uc.codes.Get(ctx, hash)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, storageError(ctx, uc.log, "read login code", err)
		}
	}
	return rec, nil
}

// replay answers a retried code with the login it already made: a new
// access token and a new refresh token of the same session. The refresh
// token first issued stays valid (the client may have received it).
func (uc *AuthUsecase) replay(ctx context.Context, rec *CodeExchange) (*TokenPair, error) {
	s, err := uc.sessions.Get(ctx, rec.SessionID)
	if errors.Is(err, ErrNotFound) || (err == nil && !s.Active() && s.RevokeReason != RevokeMerged) {
		return nil, v1.ErrorCodeUsed("the login code was already used and its session has ended: get a new code from the platform's login API")
	}
	if err != nil {
		return nil, storageError(ctx, uc.log, "load session", err)
	}
	now := uc.now()
	refresh := NewRefreshToken()
	rt := RefreshToken{Hash: HashRefreshToken(refresh), SessionID: s.ID, ExpiresAt: now.Add(uc.cfg.RefreshTokenTTL)}
	if s.Active() {
		err = uc.sessions.AddRefreshToken(ctx, rt)
	} else {
		// The login's user was merged since: the same login now belongs
		// to the surviving user, in a session of its own.
		err = uc.inTx(ctx, func(ctx context.Context) error {
			userID, err := uc.lockCanonical(ctx, s.UserID)
			if err != nil {
				return err
			}
			s = &Session{ID: NewSessionID(), UserID: userID, Platform: s.Platform, AppID: s.AppID, CreatedAt: now}
			rt.SessionID = s.ID
			return uc.sessions.Create(ctx, s, rt)
		})
	}
	if err != nil {
		return nil, storageError(ctx, uc.log, "replay login", err)
	}
	return uc.issue(s, refresh, rec.IsNewUser)
}

// maybePurge deletes expired code records now and then (about one claim in
// a hundred), keeping the table to the retry window's worth of logins. It
// runs in the background, one purge at a time per instance: a login never
// waits for it (inline, it was the p99 of logins once records expired).
func (uc *AuthUsecase) maybePurge(ctx context.Context, now time.Time) {
	if uc.purgeTick.Add(1)%purgeEvery != 0 || !uc.purging.CompareAndSwap(false, true) {
		return
	}
	l := uc.log.WithContext(ctx)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), purgeTimeout)
	go func() {
		defer cancel()
		defer uc.purging.Store(false)
		if err := uc.codes.Purge(ctx, now, purgeBatch); err != nil {
			l.Warnw("msg", "purging expired login codes failed", "err", err)
		}
	}()
}

const (
	purgeEvery   = 100
	purgeBatch   = 1000
	purgeTimeout = 30 * time.Second
)
