package data

import (
	"context"
	"errors"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent/platformtoken"
)

type platformTokenRepo struct{ d *Data }

// NewPlatformTokenRepo returns the biz.PlatformTokenRepo on d.
func NewPlatformTokenRepo(d *Data) biz.PlatformTokenRepo { return &platformTokenRepo{d} }

func (r *platformTokenRepo) Get(ctx context.Context, platform, appID string) (*biz.PlatformToken, error) {
	t, err := r.d.client(ctx).PlatformToken.Query().
		Where(platformtoken.Platform(platform), platformtoken.AppID(appID)).
		Only(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := &biz.PlatformToken{Token: t.Token, Invalid: t.Invalid}
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
	return mapErr(r.d.client(ctx).PlatformToken.Update().
		Where(platformtoken.Platform(platform), platformtoken.AppID(appID)).
		SetToken(t.Token).
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

func (r *platformTokenRepo) MarkInvalid(ctx context.Context, platform, appID, token string) error {
	return mapErr(r.d.client(ctx).PlatformToken.Update().
		Where(platformtoken.Platform(platform), platformtoken.AppID(appID), platformtoken.Token(token)).
		SetInvalid(true).
		Exec(ctx))
}
