package data

import (
	"context"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent"
	"github.com/mpauth/mpauth/internal/data/ent/refreshtoken"
	"github.com/mpauth/mpauth/internal/data/ent/session"
)

type sessionRepo struct{ d *Data }

// NewSessionRepo returns the biz.SessionRepo on d.
func NewSessionRepo(d *Data) biz.SessionRepo { return &sessionRepo{d} }

func (r *sessionRepo) Create(ctx context.Context, s *biz.Session, first biz.RefreshToken) error {
	if err := validate(
		fieldCheck{"session.id", session.IDValidator(s.ID)},
		fieldCheck{"session.user_id", session.UserIDValidator(s.UserID)},
		fieldCheck{"session.platform", session.PlatformValidator(s.Platform)},
		fieldCheck{"session.app_id", session.AppIDValidator(s.AppID)},
	); err != nil {
		return mapErr(err)
	}
	c, now := r.d.conn(ctx), time.Now()
	if _, err := c.ExecContext(ctx, r.d.sql.createSession, s.ID, s.CreatedAt, now, s.UserID, s.Platform, s.AppID, ""); err != nil {
		return mapErr(err)
	}
	return r.createToken(ctx, c, first)
}

func (r *sessionRepo) createToken(ctx context.Context, c sqlConn, t biz.RefreshToken) error {
	if err := validate(
		fieldCheck{"refresh_token.token_hash", refreshtoken.TokenHashValidator(t.Hash)},
		fieldCheck{"refresh_token.session_id", refreshtoken.SessionIDValidator(t.SessionID)},
	); err != nil {
		return mapErr(err)
	}
	now := time.Now()
	_, err := c.ExecContext(ctx, r.d.sql.createRefreshToken, now, now, t.Hash, t.SessionID, t.ExpiresAt)
	return mapErr(err)
}

func (r *sessionRepo) Get(ctx context.Context, id string) (*biz.Session, error) {
	s, err := r.d.client(ctx).Session.Get(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return toSession(s), nil
}

func (r *sessionRepo) GetForTokenCheck(ctx context.Context, id string) (*biz.Session, error) {
	c := r.d.sessions
	if c == nil || inTx(ctx) {
		return r.Get(ctx, id)
	}
	s, epoch := c.get(id)
	if s != nil {
		return s, nil
	}
	s, err := r.Get(ctx, id)
	if err == nil {
		c.put(s, epoch)
	}
	return s, err
}

// sessionsEnding tells the session cache that sessions are being revoked:
// it forgets them now and, through the returned func run after the write,
// again once the write is committed, so no read racing it outlives it.
func (r *sessionRepo) sessionsEnding(ctx context.Context) (written func()) {
	c := r.d.sessions
	if c == nil {
		return func() {}
	}
	c.invalidate()
	return func() { AfterCommit(ctx, c.invalidate) }
}

func (r *sessionRepo) FindRefreshToken(ctx context.Context, hash string) (*biz.RefreshToken, *biz.Session, error) {
	t, err := r.d.client(ctx).RefreshToken.Query().
		Where(refreshtoken.TokenHash(hash)).
		WithSession().
		Only(ctx)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	return &biz.RefreshToken{Hash: t.TokenHash, SessionID: t.SessionID, ExpiresAt: t.ExpiresAt, RotatedAt: t.RotatedAt},
		toSession(t.Edges.Session), nil
}

func (r *sessionRepo) Rotate(ctx context.Context, hash string, at time.Time, next biz.RefreshToken) (bool, error) {
	c := r.d.client(ctx)
	// Conditional on rotated_at IS NULL: of two concurrent refreshes of one
	// token, the row lock lets exactly one update it.
	n, err := c.RefreshToken.Update().
		Where(refreshtoken.TokenHash(hash), refreshtoken.RotatedAtIsNil()).
		SetRotatedAt(at).
		Save(ctx)
	if err != nil {
		return false, mapErr(err)
	}
	if n == 0 {
		return false, nil
	}
	return true, r.createToken(ctx, c, next)
}

func (r *sessionRepo) Revoke(ctx context.Context, id, reason string, at time.Time) error {
	defer r.sessionsEnding(ctx)()
	n, err := r.d.client(ctx).Session.Update().
		Where(session.ID(id), session.RevokedAtIsNil()).
		SetRevokedAt(at).
		SetRevokeReason(reason).
		Save(ctx)
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		if _, err := r.Get(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func toSession(s *ent.Session) *biz.Session {
	return &biz.Session{
		ID:           s.ID,
		UserID:       s.UserID,
		Platform:     s.Platform,
		AppID:        s.AppID,
		CreatedAt:    s.CreatedAt,
		RevokedAt:    s.RevokedAt,
		RevokeReason: s.RevokeReason,
	}
}

func (r *sessionRepo) RevokeUser(ctx context.Context, userID, reason string, at time.Time) ([]string, error) {
	defer r.sessionsEnding(ctx)()
	c := r.d.client(ctx)
	// Update first: an UPDATE sees (and locks) sessions committed by
	// concurrent logins, where a snapshot read in this transaction might not.
	n, err := c.Session.Update().
		Where(session.UserID(userID), session.RevokedAtIsNil()).
		SetRevokedAt(at).
		SetRevokeReason(reason).
		Save(ctx)
	if err != nil || n == 0 {
		return nil, mapErr(err)
	}
	ids, err := c.Session.Query().
		Where(session.UserID(userID), session.RevokedAt(at), session.RevokeReason(reason)).
		IDs(ctx)
	return ids, mapErr(err)
}

func (r *sessionRepo) ListByUser(ctx context.Context, userID string) ([]*biz.Session, error) {
	rows, err := r.d.client(ctx).Session.Query().
		Where(session.UserID(userID)).
		Order(ent.Desc(session.FieldCreatedAt)).
		Limit(100).
		All(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]*biz.Session, len(rows))
	for i, s := range rows {
		out[i] = toSession(s)
	}
	return out, nil
}

func (r *sessionRepo) AddRefreshToken(ctx context.Context, t biz.RefreshToken) error {
	return r.createToken(ctx, r.d.conn(ctx), t)
}
