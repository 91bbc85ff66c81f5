package data

import (
	"context"
	"errors"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent"
	"github.com/mpauth/mpauth/internal/data/ent/codeexchange"
)

type codeExchangeRepo struct{ d *Data }

// NewCodeExchangeRepo returns the biz.CodeExchangeRepo on d.
func NewCodeExchangeRepo(d *Data) biz.CodeExchangeRepo { return &codeExchangeRepo{d} }

func (r *codeExchangeRepo) Claim(ctx context.Context, hash, platform, appID, holder string, now, leaseUntil, expiresAt time.Time) (bool, *biz.CodeExchange, error) {
	if err := validate(
		fieldCheck{"code_exchange.code_hash", codeexchange.CodeHashValidator(hash)},
		fieldCheck{"code_exchange.holder", codeexchange.HolderValidator(holder)},
	); err != nil {
		return false, nil, mapErr(err)
	}
	_, err := r.d.conn(ctx).ExecContext(ctx, r.d.sql.claimCode, hash, string(codeexchange.StatePending), holder, leaseUntil, "", "", false, expiresAt)
	if err == nil {
		return true, nil, nil
	}
	if err := mapErr(err); !errors.Is(err, biz.ErrConcurrentUpdate) {
		return false, nil, err
	}
	// Taken: take over a pending claim whose holder's lease lapsed.
	n, err := r.d.client(ctx).CodeExchange.Update().
		Where(codeexchange.CodeHash(hash), codeexchange.StateEQ(codeexchange.StatePending), codeexchange.LeaseUntilLT(now)).
		SetHolder(holder).
		SetLeaseUntil(leaseUntil).
		Save(ctx)
	if err != nil {
		return false, nil, mapErr(err)
	}
	if n == 1 {
		return true, nil, nil
	}
	rec, err := r.Get(ctx, hash)
	if errors.Is(err, biz.ErrNotFound) {
		// Released between our insert and read: the caller retries the claim.
		return false, nil, nil
	}
	return false, rec, err
}

func (r *codeExchangeRepo) Complete(ctx context.Context, hash, holder, sessionID, userID string, isNewUser bool) error {
	if err := validate(
		fieldCheck{"code_exchange.session_id", codeexchange.SessionIDValidator(sessionID)},
		fieldCheck{"code_exchange.user_id", codeexchange.UserIDValidator(userID)},
	); err != nil {
		return mapErr(err)
	}
	err := execOne(ctx, r.d.conn(ctx), r.d.sql.completeCode, string(codeexchange.StateDone), sessionID, userID, isNewUser, hash, holder)
	if errors.Is(err, biz.ErrNotFound) { // our lease lapsed and another instance took the code over
		return biz.ErrConcurrentUpdate
	}
	return err
}

func (r *codeExchangeRepo) Release(ctx context.Context, hash, holder string) error {
	_, err := r.d.client(ctx).CodeExchange.Delete().
		Where(codeexchange.CodeHash(hash), codeexchange.Holder(holder), codeexchange.StateEQ(codeexchange.StatePending)).
		Exec(ctx)
	return mapErr(err)
}

func (r *codeExchangeRepo) Get(ctx context.Context, hash string) (*biz.CodeExchange, error) {
	e, err := r.d.client(ctx).CodeExchange.Query().Where(codeexchange.CodeHash(hash)).Only(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	return toCodeExchange(e), nil
}

func (r *codeExchangeRepo) Purge(ctx context.Context, before time.Time, limit int) error {
	c := r.d.client(ctx)
	ids, err := c.CodeExchange.Query().Where(codeexchange.ExpiresAtLT(before)).Limit(limit).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return mapErr(err)
	}
	_, err = c.CodeExchange.Delete().Where(codeexchange.IDIn(ids...)).Exec(ctx)
	return mapErr(err)
}

func toCodeExchange(e *ent.CodeExchange) *biz.CodeExchange {
	return &biz.CodeExchange{
		Hash:       e.CodeHash,
		Done:       e.State == codeexchange.StateDone,
		SessionID:  e.SessionID,
		UserID:     e.UserID,
		IsNewUser:  e.IsNewUser,
		LeaseUntil: e.LeaseUntil,
	}
}
