package data

import (
	"context"
	"database/sql"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent"
	"github.com/mpauth/mpauth/internal/data/ent/identity"
	"github.com/mpauth/mpauth/internal/data/ent/unionaccount"
	"github.com/mpauth/mpauth/internal/data/ent/user"
)

type accountRepo struct{ d *Data }

// NewAccountRepo returns the biz.AccountRepo on d. Session keys are sealed
// with d's secretbox.
func NewAccountRepo(d *Data) biz.AccountRepo { return &accountRepo{d} }

func (r *accountRepo) CreateUser(ctx context.Context, id string) (*biz.User, error) {
	if err := validate(fieldCheck{"user.id", user.IDValidator(id)}); err != nil {
		return nil, mapErr(err)
	}
	now := time.Now()
	if _, err := r.d.conn(ctx).ExecContext(ctx, r.d.sql.createUser, id, now, now, "", "", "", ""); err != nil {
		return nil, mapErr(err)
	}
	return &biz.User{ID: id, CreatedAt: now}, nil
}

func (r *accountRepo) GetUser(ctx context.Context, id string) (*biz.User, error) {
	u, err := r.d.client(ctx).User.Get(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return toUser(u), nil
}

func (r *accountRepo) LockUser(ctx context.Context, id string) (*biz.User, error) {
	query := r.d.sql.findUser.in(ctx)
	var (
		u          biz.User
		mergedInto sql.Null[string]
		mergedAt   sql.Null[time.Time]
	)
	if err := queryOne(ctx, r.d.conn(ctx), query, []any{id},
		&u.ID, &u.CreatedAt, &u.PhoneNumber, &u.PhoneCountryCode, &u.Nickname, &u.AvatarURL, &mergedInto, &mergedAt); err != nil {
		return nil, err
	}
	u.MergedInto, u.MergedAt = mergedInto.V, nillable(mergedAt)
	return &u, nil
}

func (r *accountRepo) SetPhone(ctx context.Context, userID, number, countryCode string, at time.Time) error {
	return updatedOne(r.d.client(ctx).User.Update().Where(user.ID(userID)).
		SetPhoneNumber(number).
		SetPhoneCountryCode(countryCode).
		SetPhoneVerifiedAt(at).
		Save(ctx))
}

func (r *accountRepo) SetProfile(ctx context.Context, userID, nickname, avatarURL string) error {
	return updatedOne(r.d.client(ctx).User.Update().Where(user.ID(userID)).
		SetNickname(nickname).
		SetAvatarURL(avatarURL).
		Save(ctx))
}

func (r *accountRepo) FindUserIdentity(ctx context.Context, userID, platform, appID string) (*biz.Identity, error) {
	i, err := r.d.client(ctx).Identity.Query().
		Where(identity.UserID(userID), identity.Platform(platform), identity.AppID(appID)).
		Order(ent.Desc(identity.FieldLastLoginAt)).
		First(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	return r.toIdentity(i), nil
}

func toUser(u *ent.User) *biz.User {
	return &biz.User{
		ID:               u.ID,
		CreatedAt:        u.CreatedAt,
		PhoneNumber:      u.PhoneNumber,
		PhoneCountryCode: u.PhoneCountryCode,
		Nickname:         u.Nickname,
		AvatarURL:        u.AvatarURL,
		MergedInto:       deref(u.MergedInto),
		MergedAt:         u.MergedAt,
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (r *accountRepo) FindIdentity(ctx context.Context, platform, appID, openID string) (*biz.Identity, error) {
	// In a transaction the row is locked (MySQL): a login and a merge
	// moving this identity serialize instead of the login recording a
	// session for the old owner.
	query := r.d.sql.findIdentity.in(ctx)
	// Not the session_key: no caller of FindIdentity needs it, and a login
	// would decrypt the key it is about to replace.
	var i biz.Identity
	if err := queryOne(ctx, r.d.conn(ctx), query, []any{platform, appID, openID},
		&i.ID, &i.CreatedAt, &i.Platform, &i.AppID, &i.OpenID, &i.UnionScope, &i.UnionID, &i.LastLoginAt, &i.UserID); err != nil {
		return nil, err
	}
	return &i, nil
}

func (r *accountRepo) FindIdentityAndOwner(ctx context.Context, platform, appID, openID string) (*biz.Identity, string, error) {
	query := r.d.sql.findIdentityAndOwner.in(ctx)
	var (
		i          biz.Identity
		mergedInto sql.Null[string]
	)
	if err := queryOne(ctx, r.d.conn(ctx), query, []any{platform, appID, openID},
		&i.ID, &i.CreatedAt, &i.Platform, &i.AppID, &i.OpenID, &i.UnionScope, &i.UnionID, &i.LastLoginAt, &i.UserID, &mergedInto); err != nil {
		return nil, "", err
	}
	return &i, mergedInto.V, nil
}

func (r *accountRepo) CreateIdentity(ctx context.Context, in *biz.Identity) (*biz.Identity, error) {
	sealed, err := r.d.seal(in.SessionKey, SessionKeyAAD(in.Platform, in.AppID, in.OpenID))
	if err != nil {
		return nil, err
	}
	if err := validate(
		fieldCheck{"identity.platform", identity.PlatformValidator(in.Platform)},
		fieldCheck{"identity.app_id", identity.AppIDValidator(in.AppID)},
		fieldCheck{"identity.openid", identity.OpenidValidator(in.OpenID)},
		fieldCheck{"identity.union_scope", identity.UnionScopeValidator(in.UnionScope)},
		fieldCheck{"identity.unionid", identity.UnionidValidator(in.UnionID)},
		fieldCheck{"identity.session_key", identity.SessionKeyValidator(sealed)},
		fieldCheck{"identity.user_id", identity.UserIDValidator(in.UserID)},
	); err != nil {
		return nil, mapErr(err)
	}
	now := time.Now()
	res, err := r.d.conn(ctx).ExecContext(ctx, r.d.sql.createIdentity,
		now, now, in.Platform, in.AppID, in.OpenID, in.UnionScope, in.UnionID, sealed, in.LastLoginAt, in.UserID)
	if err != nil {
		return nil, mapErr(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, mapErr(err)
	}
	out := *in
	out.ID, out.CreatedAt = int(id), now
	return &out, nil
}

func (r *accountRepo) RecordLogin(ctx context.Context, ident *biz.Identity, u biz.LoginUpdate) error {
	if err := validate(
		fieldCheck{"identity.union_scope", identity.UnionScopeValidator(u.UnionScope)},
		fieldCheck{"identity.unionid", identity.UnionidValidator(u.UnionID)},
	); err != nil {
		return mapErr(err)
	}
	c, now := r.d.conn(ctx), time.Now()
	if u.SessionKey == "" {
		return execOne(ctx, c, r.d.sql.recordLogin, now, u.At, u.UnionScope, u.UnionID, ident.ID)
	}
	// The seal binds the key to the identity's (immutable) natural key.
	sealed, err := r.d.seal(u.SessionKey, SessionKeyAAD(ident.Platform, ident.AppID, ident.OpenID))
	if err != nil {
		return err
	}
	if err := validate(fieldCheck{"identity.session_key", identity.SessionKeyValidator(sealed)}); err != nil {
		return mapErr(err)
	}
	return execOne(ctx, c, r.d.sql.recordLoginWithKey, now, u.At, u.UnionScope, u.UnionID, sealed, ident.ID)
}

func (r *accountRepo) ListIdentities(ctx context.Context, userID string) ([]*biz.Identity, error) {
	rows, err := r.d.client(ctx).Identity.Query().
		Where(identity.UserID(userID)).
		Order(ent.Asc(identity.FieldCreatedAt), ent.Asc(identity.FieldID)).
		All(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]*biz.Identity, len(rows))
	for i, row := range rows {
		out[i] = r.toIdentity(row)
	}
	return out, nil
}

func (r *accountRepo) FindUnionOwner(ctx context.Context, platform, unionScope, unionID string) (string, error) {
	u, err := r.d.client(ctx).UnionAccount.Query().
		Where(unionaccount.Platform(platform), unionaccount.UnionScope(unionScope), unionaccount.Unionid(unionID)).
		Only(ctx)
	if err != nil {
		return "", mapErr(err)
	}
	return u.UserID, nil
}

func (r *accountRepo) BindUnion(ctx context.Context, platform, unionScope, unionID, userID string) error {
	return mapErr(r.d.client(ctx).UnionAccount.Create().
		SetPlatform(platform).
		SetUnionScope(unionScope).
		SetUnionid(unionID).
		SetUserID(userID).
		Exec(ctx))
}

// toIdentity converts a row, opening its session_key.
func (r *accountRepo) toIdentity(i *ent.Identity) *biz.Identity {
	return &biz.Identity{
		ID:          i.ID,
		UserID:      i.UserID,
		Platform:    i.Platform,
		AppID:       i.AppID,
		OpenID:      i.Openid,
		UnionScope:  i.UnionScope,
		UnionID:     i.Unionid,
		SessionKey:  r.d.open(i.SessionKey, SessionKeyAAD(i.Platform, i.AppID, i.Openid), "identity.session_key", i.ID),
		CreatedAt:   i.CreatedAt,
		LastLoginAt: i.LastLoginAt,
	}
}
