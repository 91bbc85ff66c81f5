package data

import (
	"context"
	"errors"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent"
	"github.com/mpauth/mpauth/internal/data/ent/platformtoken"
)

type platformTokenRepo struct{ d *Data }

// NewPlatformTokenRepo returns the biz.PlatformTokenRepo on d. Tokens are
// sealed with d's secretbox.
func NewPlatformTokenRepo(d *Data) biz.PlatformTokenRepo { return &platformTokenRepo{d} }

func (r *platformTokenRepo) Get(ctx context.Context, platform, appID string) (*biz.PlatformToken, error) {
	t, err := r.d.client(ctx).PlatformToken.Query().
		Where(platformtoken.Platform(platform), platformtoken.AppID(appID)).
		Only(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := &biz.PlatformToken{Token: r.d.open(t.Token, platformTokenAAD(platform, appID), "platform_token.token", t.ID), Invalid: t.Invalid}
	if t.ExpiresAt != nil {
		out.ExpiresAt = *t.ExpiresAt
	}
	return out, nil
}

func (r *platformTokenRepo) AcquireLease(ctx context.Context, platform, appID, holder string, now, until time.Time) (bool, error) {
	c := r.d.client(ctx)
	// The row must exist for the conditional update to have something to
	// win; a concurrent insert of the same key is fine.
	err := c.PlatformToken.Create().SetPlatform(platform).SetAppID(appID).Exec(ctx)
	if err := mapErr(err); err != nil && !errors.Is(err, biz.ErrConcurrentUpdate) {
		return false, err
	}
	n, err := c.PlatformToken.Update().
		Where(
			platformtoken.Platform(platform), platformtoken.AppID(appID),
			platformtoken.Or(
				platformtoken.LeaseUntilIsNil(),
				platformtoken.LeaseUntilLT(now),
				platformtoken.LeaseHolder(holder),
			),
		).
		SetLeaseHolder(holder).
		SetLeaseUntil(until).
		Save(ctx)
	if err != nil {
		return false, mapErr(err)
	}
	return n == 1, nil
}

func (r *platformTokenRepo) Store(ctx context.Context, platform, appID, holder string, t biz.PlatformToken) error {
	sealed, err := r.d.seal(t.Token, platformTokenAAD(platform, appID))
	if err != nil {
		return err
	}
	return mapErr(r.d.client(ctx).PlatformToken.Update().
		Where(platformtoken.Platform(platform), platformtoken.AppID(appID)).
		SetToken(sealed).
		SetExpiresAt(t.ExpiresAt).
		SetInvalid(false).
		SetLeaseHolder("").
		ClearLeaseUntil().
		Exec(ctx))
}

func (r *platformTokenRepo) ReleaseLease(ctx context.Context, platform, appID, holder string) error {
	return mapErr(r.d.client(ctx).PlatformToken.Update().
		Where(platformtoken.Platform(platform), platformtoken.AppID(appID), platformtoken.LeaseHolder(holder)).
		SetLeaseHolder("").
		ClearLeaseUntil().
		Exec(ctx))
}

// MarkInvalid flags the stored token when it is still token. Sealed values
// differ on every write, so the comparison is on the plaintext; the update
// then matches the exact stored value it compared, so a token stored
// meanwhile by another instance is never flagged.
func (r *platformTokenRepo) MarkInvalid(ctx context.Context, platform, appID, token string) error {
	c := r.d.client(ctx)
	t, err := c.PlatformToken.Query().
		Where(platformtoken.Platform(platform), platformtoken.AppID(appID)).
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return mapErr(err)
	}
	if r.d.open(t.Token, platformTokenAAD(platform, appID), "platform_token.token", t.ID) != token {
		return nil
	}
	return mapErr(c.PlatformToken.Update().
		Where(platformtoken.ID(t.ID), platformtoken.Token(t.Token)).
		SetInvalid(true).
		Exec(ctx))
}
