package biz

import (
	"context"
	"time"
)

// Session is one login: the `sid` of its access tokens and the family of its
// rotating refresh tokens.
type Session struct {
	ID           string
	UserID       string
	Platform     string
	AppID        string
	CreatedAt    time.Time
	RevokedAt    *time.Time
	RevokeReason string
}

// Session revocation reasons.
const (
	RevokeLogout  = "logout"
	RevokeReuse   = "refresh_token_reuse"
	RevokeMerged  = "merged"
	RevokeAdmin   = "admin"
	RevokeUnbound = "identity_unbound"
)

// Active reports whether the session can still be refreshed.
func (s *Session) Active() bool { return s.RevokedAt == nil }

// AccessAllowed reports whether the session's unexpired access tokens are
// still honoured. A merge ends the merged user's sessions for refresh, but
// their access tokens stay valid until they expire (minutes) and name the
// surviving user, so a merge does not log the person out mid-request.
func (s *Session) AccessAllowed() bool { return s.RevokedAt == nil || s.RevokeReason == RevokeMerged }

// RefreshToken is one generation of a session's refresh token.
type RefreshToken struct {
	Hash      string
	SessionID string
	ExpiresAt time.Time
	RotatedAt *time.Time
}

// SessionRepo stores sessions and their refresh tokens.
type SessionRepo interface {
	// Create stores the session with its first refresh token.
	Create(ctx context.Context, s *Session, first RefreshToken) error
	Get(ctx context.Context, id string) (*Session, error)
	// GetForTokenCheck is Get for checking an access token's session: it
	// may answer from this instance's memory for a short while
	// (data.session_cache_ttl). Sessions ended through this instance are
	// seen at once, through another within that time.
	GetForTokenCheck(ctx context.Context, id string) (*Session, error)
	// FindRefreshToken returns a refresh token generation and its session;
	// ErrNotFound if the hash is unknown.
	FindRefreshToken(ctx context.Context, hash string) (*RefreshToken, *Session, error)
	// Rotate marks the generation `hash` rotated at `at` and stores `next`,
	// but only if `hash` was not rotated yet: it reports false when another
	// request rotated it first.
	Rotate(ctx context.Context, hash string, at time.Time, next RefreshToken) (bool, error)
	Revoke(ctx context.Context, id, reason string, at time.Time) error
	// AddRefreshToken adds a refresh token to a session without rotating
	// the others (a replayed login code).
	AddRefreshToken(ctx context.Context, t RefreshToken) error
	// RevokeUser revokes every active session of a user and returns their ids.
	RevokeUser(ctx context.Context, userID, reason string, at time.Time) ([]string, error)
	ListByUser(ctx context.Context, userID string) ([]*Session, error)
}
