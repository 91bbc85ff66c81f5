package biz

import (
	"context"
	"time"

	"github.com/go-kratos/kratos/v2/log"
)

// User is one person across every app and platform.
type User struct {
	ID        string
	CreatedAt time.Time
}

// Identity is one platform account (an openid of one app) owned by a user.
type Identity struct {
	ID          int
	UserID      string
	Platform    string
	AppID       string
	OpenID      string
	UnionScope  string
	UnionID     string
	SessionKey  string
	CreatedAt   time.Time
	LastLoginAt time.Time
}

// LoginUpdate is what a returning login refreshes on its identity.
type LoginUpdate struct {
	UnionScope string
	UnionID    string
	// SessionKey replaces the stored one when non-empty.
	SessionKey string
	At         time.Time
}

// AccountRepo stores users, their identities and unionid ownership.
type AccountRepo interface {
	CreateUser(ctx context.Context, id string) (*User, error)
	GetUser(ctx context.Context, id string) (*User, error)
	// FindIdentity looks an identity up by its natural key; ErrNotFound if none.
	FindIdentity(ctx context.Context, platform, appID, openID string) (*Identity, error)
	// CreateIdentity fails with ErrConcurrentUpdate when the natural key exists.
	CreateIdentity(ctx context.Context, id *Identity) (*Identity, error)
	RecordLogin(ctx context.Context, identityID int, u LoginUpdate) error
	ListIdentities(ctx context.Context, userID string) ([]*Identity, error)
	// FindUnionOwner returns the user owning a unionid in a (platform, union
	// scope); ErrNotFound if none.
	FindUnionOwner(ctx context.Context, platform, unionScope, unionID string) (string, error)
	// BindUnion records userID as the owner; ErrConcurrentUpdate when the
	// unionid is already owned.
	BindUnion(ctx context.Context, platform, unionScope, unionID, userID string) error
}

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	Actor   string
	Action  string
	Subject string
	Reason  string
	Details map[string]any
	At      time.Time
}

// Audit actions.
const (
	AuditRefreshTokenReuse = "session.refresh_token_reuse"
	AuditIdentityConflict  = "identity.conflict"
)

// AuditRepo appends audit events.
type AuditRepo interface {
	Record(ctx context.Context, e AuditEvent) error
}

// AccountUsecase serves the signed-in user's view of their account.
type AccountUsecase struct {
	accounts AccountRepo
	log      *log.Helper
}

// NewAccountUsecase returns an AccountUsecase.
func NewAccountUsecase(accounts AccountRepo, logger log.Logger) *AccountUsecase {
	return &AccountUsecase{accounts: accounts, log: log.NewHelper(log.With(logger, "module", "biz/account"))}
}

// Me returns the user and their identities.
func (uc *AccountUsecase) Me(ctx context.Context, p *Principal) (*User, []*Identity, error) {
	u, err := uc.accounts.GetUser(ctx, p.UserID)
	if err != nil {
		return nil, nil, storageError(ctx, uc.log, "get user", err)
	}
	ids, err := uc.accounts.ListIdentities(ctx, u.ID)
	if err != nil {
		return nil, nil, storageError(ctx, uc.log, "list identities", err)
	}
	return u, ids, nil
}
