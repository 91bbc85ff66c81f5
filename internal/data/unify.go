package data

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent"
	"github.com/mpauth/mpauth/internal/data/ent/identity"
	"github.com/mpauth/mpauth/internal/data/ent/predicate"
	"github.com/mpauth/mpauth/internal/data/ent/unionaccount"
	"github.com/mpauth/mpauth/internal/data/ent/user"
)

func (r *accountRepo) MoveIdentity(ctx context.Context, identityID int, toUserID string) error {
	return updatedOne(r.d.client(ctx).Identity.Update().Where(identity.ID(identityID)).SetUserID(toUserID).Save(ctx))
}

func (r *accountRepo) ListUnionAccounts(ctx context.Context, userID string) ([]biz.UnionAccount, error) {
	rows, err := r.d.client(ctx).UnionAccount.Query().
		Where(unionaccount.UserID(userID)).
		Order(ent.Asc(unionaccount.FieldID)).
		All(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]biz.UnionAccount, len(rows))
	for i, a := range rows {
		out[i] = biz.UnionAccount{Platform: a.Platform, UnionScope: a.UnionScope, UnionID: a.Unionid, UserID: a.UserID}
	}
	return out, nil
}

func (r *accountRepo) MoveUnionAccount(ctx context.Context, platform, unionScope, unionID, toUserID string) error {
	return mapErr(r.d.client(ctx).UnionAccount.Update().
		Where(unionaccount.Platform(platform), unionaccount.UnionScope(unionScope), unionaccount.Unionid(unionID)).
		SetUserID(toUserID).
		Exec(ctx))
}

func (r *accountRepo) MarkMerged(ctx context.Context, sourceID, targetID string, at time.Time) error {
	return updatedOne(r.d.client(ctx).User.Update().Where(user.ID(sourceID)).SetMergedInto(targetID).SetMergedAt(at).Save(ctx))
}

func (r *accountRepo) ListAliases(ctx context.Context, userID string) ([]string, error) {
	ids, err := r.d.client(ctx).User.Query().Where(user.MergedInto(userID)).Order(ent.Asc(user.FieldID)).IDs(ctx)
	return ids, mapErr(err)
}

// FindUsers pages by (created_at, id) descending; the token encodes the last
// row's position so pages stay stable while users are added.
func (r *accountRepo) FindUsers(ctx context.Context, f biz.UserFilter, p biz.Page) ([]*biz.User, string, error) {
	q := r.d.client(ctx).User.Query()
	var idPreds []predicate.Identity
	if f.Platform != "" {
		idPreds = append(idPreds, identity.Platform(f.Platform))
	}
	if f.AppID != "" {
		idPreds = append(idPreds, identity.AppID(f.AppID))
	}
	if f.OpenID != "" {
		idPreds = append(idPreds, identity.Openid(f.OpenID))
	}
	if f.UnionScope != "" {
		idPreds = append(idPreds, identity.UnionScope(f.UnionScope))
	}
	if f.UnionID != "" {
		idPreds = append(idPreds, identity.Unionid(f.UnionID))
	}
	if len(idPreds) > 0 {
		q = q.Where(user.HasIdentitiesWith(idPreds...))
	}
	if f.Phone != "" {
		q = q.Where(user.PhoneNumber(f.Phone))
	}
	if p.Token != "" {
		at, id, err := decodeCursor(p.Token)
		if err != nil {
			return nil, "", err
		}
		q = q.Where(user.Or(user.CreatedAtLT(at), user.And(user.CreatedAt(at), user.IDLT(id))))
	}
	rows, err := q.Order(ent.Desc(user.FieldCreatedAt), ent.Desc(user.FieldID)).Limit(p.Size + 1).All(ctx)
	if err != nil {
		return nil, "", mapErr(err)
	}
	next := ""
	if len(rows) > p.Size {
		rows = rows[:p.Size]
		last := rows[len(rows)-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	out := make([]*biz.User, len(rows))
	for i, u := range rows {
		out[i] = toUser(u)
	}
	return out, next, nil
}

// encodeCursor makes an opaque page token of a row position.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixNano(), 10) + "|" + id))
}

func decodeCursor(tok string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", biz.ErrBadPageToken
	}
	ns, id, ok := strings.Cut(string(raw), "|")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", biz.ErrBadPageToken
	}
	return time.Unix(0, n).UTC(), id, nil
}
