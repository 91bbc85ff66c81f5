package biz

import (
	"context"
	"errors"
	"strings"

	"github.com/go-kratos/kratos/v2/log"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
)

// Page sizes of the listings.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// AdminUsecase serves operators (link, unlink, merge, revoke, audit) and
// backend services (users by id, identities by openid).
type AdminUsecase struct {
	tx       Transaction
	accounts AccountRepo
	sessions SessionRepo
	audit    AuditRepo
	unifier  *Unifier
	log      *log.Helper
}

// NewAdminUsecase returns an AdminUsecase.
func NewAdminUsecase(tx Transaction, accounts AccountRepo, sessions SessionRepo, audit AuditRepo, unifier *Unifier, logger log.Logger) *AdminUsecase {
	return &AdminUsecase{tx: tx, accounts: accounts, sessions: sessions, audit: audit, unifier: unifier, log: log.NewHelper(log.With(logger, "module", "biz/admin"))}
}

// UserView is everything about a user an operator or backend may see.
type UserView struct {
	User *User
	// Requested is the id asked for; User.ID differs when it is an alias.
	Requested  string
	Identities []*Identity
	Aliases    []string
	Sessions   []*Session
}

// User returns a user with aliases resolved.
func (uc *AdminUsecase) User(ctx context.Context, id string, withSessions bool) (*UserView, error) {
	var v *UserView
	err := uc.tx.InTx(ctx, func(ctx context.Context) error {
		u, err := uc.unifier.Resolve(ctx, id)
		if err != nil {
			return err
		}
		v = &UserView{User: u, Requested: id}
		if v.Identities, err = uc.accounts.ListIdentities(ctx, u.ID); err != nil {
			return err
		}
		if v.Aliases, err = uc.aliases(ctx, u.ID); err != nil {
			return err
		}
		if withSessions {
			v.Sessions, err = uc.sessions.ListByUser(ctx, u.ID)
		}
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, v1.ErrorNotFound("no user %q", id)
	}
	if err != nil {
		return nil, storageError(ctx, uc.log, "load user", err)
	}
	return v, nil
}

// aliases lists every user merged (directly or through a chain) into id.
func (uc *AdminUsecase) aliases(ctx context.Context, id string) ([]string, error) {
	var out []string
	queue := []string{id}
	for len(queue) > 0 && len(out) < 1000 {
		next, err := uc.accounts.ListAliases(ctx, queue[0])
		if err != nil {
			return nil, err
		}
		queue = append(queue[1:], next...)
		out = append(out, next...)
	}
	return out, nil
}

// IdentityOwner returns the user owning a platform identity.
func (uc *AdminUsecase) IdentityOwner(ctx context.Context, platform, appID, openID string) (string, error) {
	i, err := uc.accounts.FindIdentity(ctx, platform, appID, openID)
	if errors.Is(err, ErrNotFound) {
		return "", v1.ErrorNotFound("no identity %s/%s with that openid", platform, appID)
	}
	if err != nil {
		return "", storageError(ctx, uc.log, "find identity", err)
	}
	return i.UserID, nil
}

// FindUsers searches users.
func (uc *AdminUsecase) FindUsers(ctx context.Context, f UserFilter, p Page) ([]*User, string, error) {
	p.Size = pageSize(p.Size)
	users, next, err := uc.accounts.FindUsers(ctx, f, p)
	if errors.Is(err, ErrBadPageToken) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", storageError(ctx, uc.log, "find users", err)
	}
	return users, next, nil
}

// Audit lists audit events, newest first.
func (uc *AdminUsecase) Audit(ctx context.Context, f AuditFilter, p Page) ([]AuditEvent, string, error) {
	p.Size = pageSize(p.Size)
	events, next, err := uc.audit.List(ctx, f, p)
	if errors.Is(err, ErrBadPageToken) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", storageError(ctx, uc.log, "list audit", err)
	}
	return events, next, nil
}

func pageSize(n int) int {
	switch {
	case n <= 0:
		return defaultPageSize
	case n > maxPageSize:
		return maxPageSize
	}
	return n
}

// Change says who changes accounts and why; every operator change needs a reason.
type Change struct {
	Actor  string
	Reason string
}

func (c Change) check() error {
	if strings.TrimSpace(c.Reason) == "" {
		return v1.ErrorInvalidArgument("reason is required: say why, it is kept in the audit log").WithMetadata(map[string]string{"field": "reason"})
	}
	return nil
}

// Merge merges source into target.
func (uc *AdminUsecase) Merge(ctx context.Context, target, source string, force bool, c Change) (*User, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var out *User
	err := uc.inTx(ctx, func(ctx context.Context) (err error) {
		out, err = uc.unifier.Merge(ctx, target, source, MergeOptions{Actor: c.Actor, Reason: c.Reason, Force: force})
		return err
	})
	return out, uc.mapErr(ctx, "merge", err)
}

// Link moves an identity to target.
func (uc *AdminUsecase) Link(ctx context.Context, target, platform, appID, openID string, c Change) (*User, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var out *User
	err := uc.inTx(ctx, func(ctx context.Context) (err error) {
		out, err = uc.unifier.Link(ctx, target, platform, appID, openID, LinkOptions{Actor: c.Actor, Reason: c.Reason})
		return err
	})
	return out, uc.mapErr(ctx, "link", err)
}

// Unlink detaches an identity into a new user and returns it.
func (uc *AdminUsecase) Unlink(ctx context.Context, owner, platform, appID, openID string, c Change) (*User, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var out *User
	err := uc.inTx(ctx, func(ctx context.Context) (err error) {
		out, err = uc.unifier.Unlink(ctx, owner, platform, appID, openID, LinkOptions{Actor: c.Actor, Reason: c.Reason})
		return err
	})
	return out, uc.mapErr(ctx, "unlink", err)
}

// RevokeSessions ends every session of a user.
func (uc *AdminUsecase) RevokeSessions(ctx context.Context, userID string, c Change) ([]string, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var out []string
	err := uc.inTx(ctx, func(ctx context.Context) (err error) {
		out, err = uc.unifier.RevokeSessions(ctx, userID, LinkOptions{Actor: c.Actor, Reason: c.Reason})
		return err
	})
	return out, uc.mapErr(ctx, "revoke sessions", err)
}

// inTx runs fn in a transaction, retrying lost races like logins do.
func (uc *AdminUsecase) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return retryTx(ctx, uc.tx, fn)
}

func (uc *AdminUsecase) mapErr(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return v1.ErrorNotFound("no such user")
	case isAPIError(err):
		return err
	}
	return storageError(ctx, uc.log, op, err)
}
