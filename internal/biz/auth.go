package biz

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	kerrors "github.com/go-kratos/kratos/v2/errors"
	"github.com/go-kratos/kratos/v2/log"
	"golang.org/x/sync/singleflight"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/token"
)

// TokenPair is what a login or refresh hands to the client.
type TokenPair struct {
	AccessToken      string
	AccessExpiresIn  time.Duration
	RefreshToken     string
	RefreshExpiresIn time.Duration
	UserID           string
	SessionID        string
	IsNewUser        bool
}

// AuthConfig holds the session settings.
type AuthConfig struct {
	RefreshTokenTTL time.Duration
	// UnionMerge is UnionMergeAuto (default) or UnionMergeConflict.
	UnionMerge string
}

// refreshReuseGrace: a rotated refresh token presented again this soon after
// its rotation is taken for the client's own retry of the same refresh
// (a lost response, two tabs racing) and only refused; later, it is treated
// as theft and revokes the session (RFC 9700 §4.14).
const refreshReuseGrace = 5 * time.Second

// sharedLoginTimeout bounds a login shared by concurrent duplicates.
const sharedLoginTimeout = 30 * time.Second

// maxTxAttempts bounds retries of a transaction that lost a race on a unique
// key or a lock to a concurrent login of the same person.
const maxTxAttempts = 12

// LoginLimiter throttles logins per platform identity, once the platform has
// said whom a code belongs to.
type LoginLimiter interface {
	// AllowIdentity reports whether one more login of this identity is
	// allowed now, and if not, when to retry.
	AllowIdentity(ctx context.Context, platform, appID, openID string) (ok bool, retryAfter time.Duration)
}

// NoLoginLimit is a LoginLimiter that allows everything.
type NoLoginLimit struct{}

// AllowIdentity allows every login.
func (NoLoginLimit) AllowIdentity(context.Context, string, string, string) (bool, time.Duration) {
	return true, 0
}

// AuthUsecase logs users in and manages their sessions.
type AuthUsecase struct {
	apps     *provider.Registry
	tx       Transaction
	accounts AccountRepo
	sessions SessionRepo
	audit    AuditRepo
	tokens   *token.Manager
	unifier  *Unifier
	limiter  LoginLimiter
	codes    CodeExchangeRepo
	cfg      AuthConfig
	now      func() time.Time
	log      *log.Helper

	// holder names this instance in code-exchange claims.
	holder    string
	flight    singleflight.Group
	purgeTick atomic.Uint64
	purging   atomic.Bool
}

// NewAuthUsecase returns an AuthUsecase.
func NewAuthUsecase(apps *provider.Registry, tx Transaction, accounts AccountRepo, sessions SessionRepo, audit AuditRepo, codes CodeExchangeRepo, tokens *token.Manager, unifier *Unifier, limiter LoginLimiter, cfg AuthConfig, logger log.Logger) *AuthUsecase {
	if cfg.UnionMerge == "" {
		cfg.UnionMerge = UnionMergeAuto
	}
	return &AuthUsecase{
		apps: apps, tx: tx, accounts: accounts, sessions: sessions, audit: audit, codes: codes, tokens: tokens, unifier: unifier, limiter: limiter, cfg: cfg,
		now:    time.Now,
		holder: randomID("i_"),
		log:    log.NewHelper(log.With(logger, "module", "biz/auth")),
	}
}

// Login exchanges a platform login code for mpauth tokens: the platform says
// who the code belongs to, the identity is mapped to its unified user
// (creating one on first login) and a session is recorded, all in one
// transaction. No token is returned unless that transaction committed.
func (uc *AuthUsecase) Login(ctx context.Context, platform, appID string, cred provider.Credentials) (*TokenPair, error) {
	app, p, ok := uc.apps.Lookup(platform, appID)
	if !ok {
		return nil, v1.ErrorUnknownApp("platform %q app_id %q is not configured on this server: check both fields", platform, appID)
	}
	switch {
	case cred.AnonymousCode != "" && platform != provider.Douyin:
		return nil, v1.ErrorInvalidArgument("anonymous_code is only for douyin: send code").WithMetadata(map[string]string{"field": "anonymous_code"})
	case cred.Code == "" && cred.AnonymousCode == "":
		return nil, v1.ErrorInvalidArgument("code is required: send the code from the platform's login API").WithMetadata(map[string]string{"field": "code"})
	}
	// Concurrent duplicates in this instance share one exchange; across
	// instances the shared code record does the same (loginOnce). The
	// shared work must not die with the first caller's connection.
	key := codeHash(app.Platform, app.AppID, cred)
	v, err, _ := uc.flight.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedLoginTimeout)
		defer cancel()
		return uc.loginOnce(ctx, app, p, cred, key)
	})
	if err != nil {
		return nil, err
	}
	return v.(*TokenPair), nil
}

// guestOpenID is how a Douyin guest (anonymous_openid) is stored as an
// identity of its app; no real openid has this prefix.
func guestOpenID(anonymousOpenID string) string { return "anonymous:" + anonymousOpenID }

// resolveUser finds or creates the user behind a platform identity and
// records this login on the identity. It reports whether the user is new.
func (uc *AuthUsecase) resolveUser(ctx context.Context, app provider.App, id *provider.Identity, now time.Time) (string, bool, error) {
	// unionids mean something only within the app's union scope.
	unionID := ""
	if app.UnionScope != "" {
		unionID = id.UnionID
	}
	openID := id.OpenID
	if openID == "" { // a guest login (Douyin anonymous_openid only)
		openID, unionID = guestOpenID(id.AnonymousOpenID), ""
	}
	ident, mergedInto, err := uc.accounts.FindIdentityAndOwner(ctx, app.Platform, app.AppID, openID)
	switch {
	case err == nil:
		userID := ident.UserID // locked, as lockCanonical would
		if mergedInto != "" {
			if userID, err = uc.lockCanonical(ctx, mergedInto); err != nil {
				return "", false, err
			}
		}
		if unionID != "" {
			if userID, err = uc.claimUnion(ctx, app, unionID, userID); err != nil {
				return "", false, err
			}
		}
		upd := LoginUpdate{UnionScope: ident.UnionScope, UnionID: ident.UnionID, SessionKey: id.SessionKey, At: now}
		if unionID != "" {
			upd.UnionScope, upd.UnionID = app.UnionScope, unionID
		}
		return userID, false, uc.accounts.RecordLogin(ctx, ident, upd)
	case !errors.Is(err, ErrNotFound):
		return "", false, err
	}

	userID, created := "", false
	if id.OpenID != "" && id.AnonymousOpenID != "" {
		// A guest logging in for real keeps the guest's user id.
		g, err := uc.accounts.FindIdentity(ctx, app.Platform, app.AppID, guestOpenID(id.AnonymousOpenID))
		switch {
		case err == nil:
			userID = g.UserID
			if unionID != "" {
				if userID, err = uc.claimUnion(ctx, app, unionID, userID); err != nil {
					return "", false, err
				}
			}
		case !errors.Is(err, ErrNotFound):
			return "", false, err
		}
	}
	if userID == "" && unionID != "" {
		owner, err := uc.accounts.FindUnionOwner(ctx, app.Platform, app.UnionScope, unionID)
		switch {
		case err == nil:
			userID = owner
		case !errors.Is(err, ErrNotFound):
			return "", false, err
		}
	}
	if userID != "" {
		// Found through a guest or a unionid: make sure it is not being
		// merged away under us.
		if userID, err = uc.lockCanonical(ctx, userID); err != nil {
			return "", false, err
		}
	} else {
		u, err := uc.accounts.CreateUser(ctx, NewUserID())
		if err != nil {
			return "", false, err
		}
		userID, created = u.ID, true
		if unionID != "" {
			// A concurrent first login of the same person through another
			// app of the scope makes this fail; the retry then finds it.
			if err := uc.accounts.BindUnion(ctx, app.Platform, app.UnionScope, unionID, userID); err != nil {
				return "", false, err
			}
		}
	}
	scope := ""
	if unionID != "" {
		scope = app.UnionScope
	}
	_, err = uc.accounts.CreateIdentity(ctx, &Identity{
		UserID: userID, Platform: app.Platform, AppID: app.AppID, OpenID: openID,
		UnionScope: scope, UnionID: unionID, SessionKey: id.SessionKey, LastLoginAt: now,
	})
	return userID, created, err
}

// lockCanonical locks a user's row and follows merge aliases (locking each),
// returning the user a login must attach to. Locking orders this login with
// any merge of the same user: the merge either committed first (we follow
// merged_into) or waits until our login is committed (and then moves what
// we attached).
func (uc *AuthUsecase) lockCanonical(ctx context.Context, id string) (string, error) {
	u, err := uc.unifier.LockResolve(ctx, id)
	if err != nil {
		return "", err
	}
	return u.ID, nil
}

// claimUnion records a late-arriving unionid of an existing user and returns
// the user the login continues as. When the unionid already belongs to
// another user the two are one person: with union_merge auto the younger user
// is merged into the older one; otherwise (or when the merge would give one
// user two identities of an app) the login proceeds as userID and the
// conflict is audited for operators.
func (uc *AuthUsecase) claimUnion(ctx context.Context, app provider.App, unionID, userID string) (string, error) {
	owner, err := uc.accounts.FindUnionOwner(ctx, app.Platform, app.UnionScope, unionID)
	switch {
	case errors.Is(err, ErrNotFound):
		return userID, uc.accounts.BindUnion(ctx, app.Platform, app.UnionScope, unionID, userID)
	case err != nil:
		return "", err
	case owner == userID:
		return userID, nil
	}
	if uc.cfg.UnionMerge == UnionMergeAuto {
		survivor, err := uc.autoMerge(ctx, app, owner, userID)
		if err == nil {
			return survivor, nil
		}
		if !v1.IsIdentityConflict(err) {
			return "", err
		}
	}
	return userID, uc.audit.Record(ctx, AuditEvent{
		Actor: "system", Action: AuditIdentityConflict, Subject: userID,
		Reason: "the identity's unionid belongs to another user",
		Details: map[string]any{
			"platform": app.Platform, "app_id": app.AppID, "union_scope": app.UnionScope,
			"union_owner": owner, "identity_owner": userID, "union_merge": uc.cfg.UnionMerge,
		},
		At: uc.now(),
	})
}

// autoMerge merges the younger of two users into the older one.
func (uc *AuthUsecase) autoMerge(ctx context.Context, app provider.App, a, b string) (string, error) {
	ua, err := uc.unifier.Resolve(ctx, a)
	if err != nil {
		return "", err
	}
	ub, err := uc.unifier.Resolve(ctx, b)
	if err != nil {
		return "", err
	}
	older, younger := ua, ub
	if ub.CreatedAt.Before(ua.CreatedAt) || (ub.CreatedAt.Equal(ua.CreatedAt) && ub.ID < ua.ID) {
		older, younger = ub, ua
	}
	survivor, err := uc.unifier.Merge(ctx, older.ID, younger.ID, MergeOptions{
		Actor:  "system",
		Reason: fmt.Sprintf("a login showed both users share a unionid in %s/%s (union_merge: auto)", app.Platform, app.UnionScope),
	})
	if err != nil {
		return "", err
	}
	return survivor.ID, nil
}

// Refresh rotates a refresh token and issues a new pair.
func (uc *AuthUsecase) Refresh(ctx context.Context, refreshToken string) (*TokenPair, error) {
	now := uc.now()
	hash := HashRefreshToken(refreshToken)
	next := NewRefreshToken()
	var (
		sess   *Session
		reused bool
	)
	err := uc.inTx(ctx, func(ctx context.Context) error {
		reused = false
		rt, s, err := uc.sessions.FindRefreshToken(ctx, hash)
		if err != nil {
			return err
		}
		if !s.Active() || !now.Before(rt.ExpiresAt) {
			return ErrRefreshTokenInvalid
		}
		if rt.RotatedAt != nil {
			if now.Sub(*rt.RotatedAt) < refreshReuseGrace {
				return ErrRefreshTokenInvalid
			}
			reused = true
			if err := uc.sessions.Revoke(ctx, s.ID, "refresh_token_reuse", now); err != nil {
				return err
			}
			return uc.audit.Record(ctx, AuditEvent{
				Actor: "system", Action: AuditRefreshTokenReuse, Subject: s.UserID,
				Reason:  "a rotated refresh token was presented again; the session was revoked",
				Details: map[string]any{"session_id": s.ID, "rotated_at": rt.RotatedAt.UTC().Format(time.RFC3339Nano)},
				At:      now,
			})
		}
		ok, err := uc.sessions.Rotate(ctx, hash, now, RefreshToken{
			Hash: HashRefreshToken(next), SessionID: s.ID, ExpiresAt: now.Add(uc.cfg.RefreshTokenTTL),
		})
		if err != nil {
			return err
		}
		if !ok { // a concurrent refresh of the same token won
			return ErrRefreshTokenInvalid
		}
		sess = s
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrRefreshTokenInvalid):
		return nil, ErrRefreshTokenInvalid
	case err != nil:
		return nil, storageError(ctx, uc.log, "refresh", err)
	case reused:
		uc.log.WithContext(ctx).Warnw("msg", "refresh token reuse: session revoked", "sid", sessIDOf(sess))
		return nil, ErrRefreshTokenInvalid
	}
	return uc.issue(sess, next, false)
}

func sessIDOf(s *Session) string {
	if s == nil {
		return ""
	}
	return s.ID
}

// Logout revokes the caller's session.
func (uc *AuthUsecase) Logout(ctx context.Context, p *Principal) error {
	if err := uc.sessions.Revoke(ctx, p.SessionID, "logout", uc.now()); err != nil && !errors.Is(err, ErrNotFound) {
		return storageError(ctx, uc.log, "logout", err)
	}
	return nil
}

// Authenticate verifies an access token and checks that its session is
// still active.
func (uc *AuthUsecase) Authenticate(ctx context.Context, accessToken string) (*Principal, error) {
	c, err := uc.tokens.Verify(accessToken)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return uc.principalOf(ctx, c)
}

// principalOf checks the session of verified claims and resolves its user.
func (uc *AuthUsecase) principalOf(ctx context.Context, c *token.Claims) (*Principal, error) {
	s, err := uc.sessions.GetForTokenCheck(ctx, c.SessionID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrUnauthenticated
	case err != nil:
		return nil, storageError(ctx, uc.log, "load session", err)
	case !s.AccessAllowed() || s.UserID != c.Subject:
		return nil, ErrUnauthenticated
	}
	userID := s.UserID
	if s.RevokeReason == RevokeMerged {
		// Only a merge ends a session this way; every merge of a user
		// ends its sessions, so active sessions always name a canonical user.
		u, err := uc.unifier.Resolve(ctx, userID)
		if err != nil {
			return nil, storageError(ctx, uc.log, "resolve user", err)
		}
		userID = u.ID
	}
	return &Principal{UserID: userID, SessionID: s.ID, Platform: s.Platform, AppID: s.AppID, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt}, nil
}

// Introspect answers RFC 7662 for a token a backend presents: the
// principal when the token is an active access token of ours, or nil (never
// an error) for expired, revoked, malformed or foreign tokens.
func (uc *AuthUsecase) Introspect(ctx context.Context, accessToken string) (*Principal, error) {
	c, err := uc.tokens.Verify(accessToken)
	if err != nil {
		return nil, nil
	}
	p, err := uc.principalOf(ctx, c)
	if errors.Is(err, ErrUnauthenticated) {
		return nil, nil
	}
	return p, err
}

func (uc *AuthUsecase) issue(s *Session, refresh string, isNew bool) (*TokenPair, error) {
	tok, claims, err := uc.tokens.Sign(token.Claims{Subject: s.UserID, SessionID: s.ID, Platform: s.Platform, AppID: s.AppID})
	if err != nil {
		uc.log.Errorw("msg", "signing an access token failed", "err", err)
		return nil, ErrInternal
	}
	return &TokenPair{
		AccessToken:      tok,
		AccessExpiresIn:  claims.ExpiresAt.Sub(claims.IssuedAt),
		RefreshToken:     refresh,
		RefreshExpiresIn: uc.cfg.RefreshTokenTTL,
		UserID:           s.UserID,
		SessionID:        s.ID,
		IsNewUser:        isNew,
	}, nil
}

// inTx runs fn in a transaction, retrying it when it lost a race to a
// concurrent transaction (see ErrConcurrentUpdate).
func (uc *AuthUsecase) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return retryTx(ctx, uc.tx, fn)
}

// retryTx runs fn in a transaction of tx, retrying it when it lost a race to
// a concurrent transaction (see ErrConcurrentUpdate).
func retryTx(ctx context.Context, tx Transaction, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		if err = tx.InTx(ctx, fn); !errors.Is(err, ErrConcurrentUpdate) {
			return err
		}
		backoff := time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
	return err
}

// platformError maps a provider failure to the API error the client sees.
func (uc *AuthUsecase) platformError(ctx context.Context, app provider.App, err error) error {
	var pe *provider.Error
	_ = errors.As(err, &pe)
	l := uc.log.WithContext(ctx)
	switch {
	case errors.Is(err, provider.ErrCodeInvalid):
		return v1.ErrorCodeInvalid("the login code is invalid or expired: get a new code from the platform's login API and retry")
	case errors.Is(err, provider.ErrCodeUsed):
		return v1.ErrorCodeUsed("the login code was already used: get a new code from the platform's login API and retry")
	case errors.Is(err, provider.ErrRateLimited):
		e := v1.ErrorPlatformRateLimited("the platform is rate-limiting logins for this app: retry later")
		if pe != nil && pe.RetryAfter > 0 {
			e = e.WithMetadata(map[string]string{"retry_after": fmt.Sprint(int(pe.RetryAfter.Seconds()))})
		}
		return e
	case errors.Is(err, provider.ErrUserBlocked):
		return v1.ErrorUserBlocked("the platform refused to log this user in")
	case errors.Is(err, provider.ErrGuestNotAllowed):
		return v1.ErrorGuestNotAllowed("this app does not accept guest logins: call tt.login with force: true and send its code")
	case errors.Is(err, provider.ErrMisconfigured):
		l.Errorw("msg", "PLATFORM REJECTED THE APP'S CONFIGURATION: fix the app's credentials", "platform", app.Platform, "app_id", app.AppID, "err", err)
		return v1.ErrorPlatformMisconfigured("the platform rejected this app's server configuration; the operator must fix it (see the server log)")
	default:
		l.Warnw("msg", "platform unavailable", "platform", app.Platform, "app_id", app.AppID, "err", err)
		return v1.ErrorPlatformUnavailable("the platform did not answer usably: retry later")
	}
}

// Login limits, named in RATE_LIMITED errors (metadata "limit") and metrics.
const (
	LimitIP       = "ip"
	LimitIdentity = "identity"
)

// RateLimited is the RATE_LIMITED error of a limit, telling the client when
// to retry.
func RateLimited(limit, what string, after time.Duration) error {
	secs := int(after.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	return v1.ErrorRateLimited("%s: retry in %d s", what, secs).WithMetadata(map[string]string{"retry_after": fmt.Sprint(secs), "limit": limit})
}

// isAPIError reports whether err already is one of the API's errors (a
// kratos error with one of our reasons).
func isAPIError(err error) bool {
	var ke *kerrors.Error
	if !errors.As(err, &ke) {
		return false
	}
	_, ok := v1.ErrorReason_value[ke.Reason]
	return ok && ke.Reason != v1.ErrorReason_STORAGE_UNAVAILABLE.String() && ke.Reason != v1.ErrorReason_INTERNAL.String()
}

// storageError turns a repository failure into an API error, logging the
// detail server-side.
func storageError(ctx context.Context, l *log.Helper, op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case isAPIError(err):
		return err
	case errors.Is(err, ErrStorageUnavailable), errors.Is(err, ErrConcurrentUpdate):
		// A transaction that kept losing races is a database under
		// contention: retryable, like an unavailable one.
		l.WithContext(ctx).Errorw("msg", op+" failed: storage unavailable", "err", err)
		return ErrStorageUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrStorageUnavailable
	default:
		l.WithContext(ctx).Errorw("msg", op+" failed", "err", err)
		return ErrInternal
	}
}
