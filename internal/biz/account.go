package biz

import (
	"context"
	"errors"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/provider"
)

// User is one person across every app and platform.
type User struct {
	ID               string
	CreatedAt        time.Time
	PhoneNumber      string
	PhoneCountryCode string
	Nickname         string
	AvatarURL        string
	// MergedInto is set when this user was merged into another one.
	MergedInto string
	MergedAt   *time.Time
}

// UnionAccount is a unionid owned by a user within a (platform, union scope).
type UnionAccount struct {
	Platform   string
	UnionScope string
	UnionID    string
	UserID     string
}

// UserFilter narrows a user search; empty fields match everything.
type UserFilter struct {
	Platform   string
	AppID      string
	OpenID     string
	UnionScope string
	UnionID    string
	Phone      string
}

// ErrBadPageToken: a page_token that this server did not issue.
var ErrBadPageToken = v1.ErrorInvalidArgument("page_token is not one this server issued: send the next_page_token of the previous page").WithMetadata(map[string]string{"field": "page_token"})

// Page asks for one page of a listing: Token is the opaque cursor of the
// previous page's last item.
type Page struct {
	Size  int
	Token string
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
	// LockUser reads a user and locks its row until the transaction ends
	// (MySQL: SELECT ... FOR UPDATE), so a concurrent merge of that user
	// either finishes first or waits for us.
	LockUser(ctx context.Context, id string) (*User, error)
	// FindIdentity looks an identity up by its natural key, without its
	// session_key (FindUserIdentity has it); ErrNotFound if none.
	FindIdentity(ctx context.Context, platform, appID, openID string) (*Identity, error)
	// FindIdentityAndOwner is FindIdentity and LockUser of the identity's
	// user in one statement (a returning login's read; the same locks, the
	// identity's first). It returns the identity and the user its owner was
	// merged into ("" if none); ErrNotFound if there is no identity.
	FindIdentityAndOwner(ctx context.Context, platform, appID, openID string) (ident *Identity, ownerMergedInto string, err error)
	// CreateIdentity fails with ErrConcurrentUpdate when the natural key exists.
	CreateIdentity(ctx context.Context, id *Identity) (*Identity, error)
	RecordLogin(ctx context.Context, ident *Identity, u LoginUpdate) error
	ListIdentities(ctx context.Context, userID string) ([]*Identity, error)
	// FindUserIdentity returns the user's identity in one app; ErrNotFound if none.
	FindUserIdentity(ctx context.Context, userID, platform, appID string) (*Identity, error)
	SetPhone(ctx context.Context, userID, number, countryCode string, at time.Time) error
	SetProfile(ctx context.Context, userID, nickname, avatarURL string) error
	// MoveIdentity gives one identity to another user.
	MoveIdentity(ctx context.Context, identityID int, toUserID string) error
	ListUnionAccounts(ctx context.Context, userID string) ([]UnionAccount, error)
	MoveUnionAccount(ctx context.Context, platform, unionScope, unionID, toUserID string) error
	// MarkMerged makes source an alias of target.
	MarkMerged(ctx context.Context, sourceID, targetID string, at time.Time) error
	// ListAliases returns the users merged directly into userID.
	ListAliases(ctx context.Context, userID string) ([]string, error)
	// FindUsers lists users matching f, newest first, one page at a time; it
	// returns the next page's token ("" on the last page).
	FindUsers(ctx context.Context, f UserFilter, p Page) ([]*User, string, error)
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
	AuditUserMerge         = "user.merge"
	AuditIdentityLink      = "identity.link"
	AuditIdentityUnlink    = "identity.unlink"
	AuditSessionsRevoke    = "sessions.revoke"
)

// AuditFilter narrows an audit listing; zero fields match everything.
type AuditFilter struct {
	Subject string
	Actor   string
	Action  string
	Since   time.Time
	Until   time.Time
}

// AuditRepo appends and lists audit events.
type AuditRepo interface {
	Record(ctx context.Context, e AuditEvent) error
	// List returns events newest first, one page at a time, and the next
	// page's token ("" on the last page).
	List(ctx context.Context, f AuditFilter, p Page) ([]AuditEvent, string, error)
}

// AccountUsecase serves the signed-in user's view of their account.
type AccountUsecase struct {
	apps     *provider.Registry
	tx       Transaction
	accounts AccountRepo
	unifier  *Unifier
	auth     *AuthUsecase
	now      func() time.Time
	log      *log.Helper
}

// NewAccountUsecase returns an AccountUsecase.
func NewAccountUsecase(apps *provider.Registry, tx Transaction, accounts AccountRepo, unifier *Unifier, auth *AuthUsecase, logger log.Logger) *AccountUsecase {
	return &AccountUsecase{apps: apps, tx: tx, accounts: accounts, unifier: unifier, auth: auth, now: time.Now, log: log.NewHelper(log.With(logger, "module", "biz/account"))}
}

// BindIdentity attaches the platform identity behind a login code to the
// caller: how a person links their accounts on two platforms. An identity
// that belongs to another user who has nothing else (that one identity, no
// phone) brings that user along (merged into the caller); otherwise it is an
// IDENTITY_CONFLICT.
func (uc *AccountUsecase) BindIdentity(ctx context.Context, p *Principal, platform, appID, code string) ([]*Identity, error) {
	app, prov, ok := uc.apps.Lookup(platform, appID)
	if !ok {
		return nil, v1.ErrorUnknownApp("platform %q app_id %q is not configured on this server: check both fields", platform, appID)
	}
	if code == "" {
		return nil, invalidField("code", "required: the login code of the account to bind")
	}
	id, err := prov.Exchange(ctx, provider.Credentials{Code: code})
	if err != nil {
		return nil, uc.auth.platformError(ctx, app, err)
	}
	if id.OpenID == "" {
		return nil, invalidField("code", "a guest login cannot be bound")
	}
	actor := "user:" + p.UserID
	err = retryTx(ctx, uc.tx, func(ctx context.Context) error {
		mine, err := uc.accounts.ListIdentities(ctx, p.UserID)
		if err != nil {
			return err
		}
		ident, err := uc.accounts.FindIdentity(ctx, platform, appID, id.OpenID)
		if err == nil && ident.UserID == p.UserID {
			return nil // already bound
		}
		for _, m := range mine {
			if m.Platform == platform && m.AppID == appID {
				return v1.ErrorIdentityConflict("you already have a %s account bound in app %s: unbind it first", platform, appID)
			}
		}
		switch {
		case errors.Is(err, ErrNotFound):
			unionID, scope := "", ""
			if app.UnionScope != "" && id.UnionID != "" {
				unionID, scope = id.UnionID, app.UnionScope
			}
			if _, err := uc.accounts.CreateIdentity(ctx, &Identity{
				UserID: p.UserID, Platform: platform, AppID: appID, OpenID: id.OpenID,
				UnionScope: scope, UnionID: unionID, SessionKey: id.SessionKey, LastLoginAt: uc.now(),
			}); err != nil {
				return err
			}
			if unionID != "" {
				owner, err := uc.accounts.FindUnionOwner(ctx, platform, scope, unionID)
				if errors.Is(err, ErrNotFound) {
					if err := uc.accounts.BindUnion(ctx, platform, scope, unionID, p.UserID); err != nil {
						return err
					}
				} else if err != nil {
					return err
				} else if owner != p.UserID {
					return v1.ErrorIdentityConflict("this %s account's unionid belongs to another user: ask an operator to merge the accounts", platform)
				}
			}
			return uc.unifier.audit.Record(ctx, AuditEvent{
				Actor: actor, Action: AuditIdentityLink, Subject: p.UserID, Reason: "bound by the user", At: uc.now(),
				Details: map[string]any{"platform": platform, "app_id": appID, "openid": id.OpenID, "new_identity": true},
			})
		case err != nil:
			return err
		}
		other, err := uc.unifier.Resolve(ctx, ident.UserID)
		if err != nil {
			return err
		}
		theirs, err := uc.accounts.ListIdentities(ctx, other.ID)
		if err != nil {
			return err
		}
		if len(theirs) != 1 || other.PhoneNumber != "" {
			return v1.ErrorIdentityConflict("this %s account belongs to another user with other accounts or a phone number: ask an operator to merge them", platform)
		}
		_, err = uc.unifier.Merge(ctx, p.UserID, other.ID, MergeOptions{Actor: actor, Reason: "the user bound this account"})
		return err
	})
	if err != nil {
		return nil, storageError(ctx, uc.log, "bind identity", err)
	}
	ids, err := uc.accounts.ListIdentities(ctx, p.UserID)
	if err != nil {
		return nil, storageError(ctx, uc.log, "list identities", err)
	}
	return ids, nil
}

// UnbindIdentity detaches the caller's identity in one app; it becomes a
// user of its own. The last identity cannot be unbound.
func (uc *AccountUsecase) UnbindIdentity(ctx context.Context, p *Principal, platform, appID string) error {
	err := retryTx(ctx, uc.tx, func(ctx context.Context) error {
		ident, err := uc.accounts.FindUserIdentity(ctx, p.UserID, platform, appID)
		if errors.Is(err, ErrNotFound) {
			return v1.ErrorNotFound("you have no %s account bound in app %s", platform, appID)
		} else if err != nil {
			return err
		}
		_, err = uc.unifier.Unlink(ctx, p.UserID, platform, appID, ident.OpenID, LinkOptions{Actor: "user:" + p.UserID, Reason: "unbound by the user"})
		return err
	})
	return storageError(ctx, uc.log, "unbind identity", err)
}

// PhoneInput is how the client proves a phone number: a platform phone code,
// or encrypted data.
type PhoneInput struct {
	Code      string
	Encrypted provider.EncryptedData
}

// SetPhone verifies the caller's phone number with the platform of their
// login and stores it on the user.
func (uc *AccountUsecase) SetPhone(ctx context.Context, p *Principal, in PhoneInput) (*provider.Phone, error) {
	app, prov, ok := uc.apps.Lookup(p.Platform, p.AppID)
	if !ok {
		return nil, v1.ErrorUnknownApp("the app of this login (%s %s) is no longer configured", p.Platform, p.AppID)
	}
	var (
		phone *provider.Phone
		err   error
	)
	switch {
	case in.Code != "" && in.Encrypted.Data != "":
		return nil, invalidField("code", "send either code or encrypted_data and iv, not both")
	case in.Code != "":
		pc, ok := prov.(provider.PhoneByCode)
		if !ok {
			return nil, invalidField("code", "%s offers no phone codes: send encrypted_data and iv from its phone API", p.Platform)
		}
		phone, err = pc.PhoneNumber(ctx, in.Code)
	case in.Encrypted.Data != "":
		var key string
		if key, err = uc.sessionKey(ctx, p); err != nil {
			return nil, err
		}
		dec, ok := prov.(provider.UserDataDecrypter)
		if !ok {
			return nil, invalidField("encrypted_data", "%s has no encrypted phone data", p.Platform)
		}
		phone, err = dec.DecryptPhone(key, in.Encrypted)
	default:
		return nil, invalidField("code", "send code, or encrypted_data and iv")
	}
	if err != nil {
		return nil, uc.userDataError(ctx, app, err)
	}
	if phone.Number == "" {
		phone.Number = phone.PureNumber
	}
	if err := uc.accounts.SetPhone(ctx, p.UserID, phone.Number, phone.CountryCode, uc.now()); err != nil {
		return nil, storageError(ctx, uc.log, "store phone", err)
	}
	return phone, nil
}

// ProfileInput is the user's profile: encrypted platform user info, or
// plain values from the avatar/nickname components.
type ProfileInput struct {
	Encrypted provider.EncryptedData
	Nickname  string
	AvatarURL string
}

// SetProfile stores the caller's profile.
func (uc *AccountUsecase) SetProfile(ctx context.Context, p *Principal, in ProfileInput) error {
	nickname, avatar := in.Nickname, in.AvatarURL
	if in.Encrypted.Data != "" {
		app, prov, ok := uc.apps.Lookup(p.Platform, p.AppID)
		if !ok {
			return v1.ErrorUnknownApp("the app of this login (%s %s) is no longer configured", p.Platform, p.AppID)
		}
		dec, ok := prov.(provider.UserDataDecrypter)
		if !ok {
			return invalidField("encrypted_data", "%s has no encrypted user info: send nickname and avatar_url", p.Platform)
		}
		key, err := uc.sessionKey(ctx, p)
		if err != nil {
			return err
		}
		prof, err := dec.DecryptProfile(key, in.Encrypted)
		if err != nil {
			return uc.userDataError(ctx, app, err)
		}
		nickname, avatar = prof.Nickname, prof.AvatarURL
	} else if nickname == "" && avatar == "" {
		return invalidField("nickname", "send nickname and/or avatar_url, or encrypted_data and iv")
	}
	if err := uc.accounts.SetProfile(ctx, p.UserID, nickname, avatar); err != nil {
		return storageError(ctx, uc.log, "store profile", err)
	}
	return nil
}

// sessionKey returns the session_key stored for the caller's identity in the
// app of their login.
func (uc *AccountUsecase) sessionKey(ctx context.Context, p *Principal) (string, error) {
	ident, err := uc.accounts.FindUserIdentity(ctx, p.UserID, p.Platform, p.AppID)
	switch {
	case errors.Is(err, ErrNotFound):
		return "", v1.ErrorSessionKeyStale("no session_key is stored for this login: log in again and retry")
	case err != nil:
		return "", storageError(ctx, uc.log, "load identity", err)
	}
	return ident.SessionKey, nil
}

// userDataError maps a platform's decryption or phone failure.
func (uc *AccountUsecase) userDataError(ctx context.Context, app provider.App, err error) error {
	switch {
	case errors.Is(err, provider.ErrSessionKeyStale):
		return v1.ErrorSessionKeyStale("the data does not decrypt with this login's session_key (the platform rotated it): log in again, then get the data again and retry")
	case errors.Is(err, provider.ErrDecrypt):
		return v1.ErrorDecryptFailed("encrypted_data or iv is malformed: send them exactly as the platform API returned them")
	case errors.Is(err, provider.ErrWatermark):
		return v1.ErrorWatermarkMismatch("the encrypted data was issued for another app")
	case errors.Is(err, provider.ErrCodeInvalid), errors.Is(err, provider.ErrCodeUsed):
		return v1.ErrorCodeInvalid("the phone code is invalid, expired or used: get a new one and retry")
	case errors.Is(err, provider.ErrRateLimited):
		return v1.ErrorPlatformRateLimited("the platform is rate-limiting this app: retry later")
	case errors.Is(err, provider.ErrMisconfigured):
		uc.log.WithContext(ctx).Errorw("msg", "PLATFORM REJECTED THE APP'S CONFIGURATION", "platform", app.Platform, "app_id", app.AppID, "err", err)
		return v1.ErrorPlatformMisconfigured("the platform rejected this app's server configuration; the operator must fix it (see the server log)")
	default:
		uc.log.WithContext(ctx).Warnw("msg", "platform unavailable", "platform", app.Platform, "app_id", app.AppID, "err", err)
		return v1.ErrorPlatformUnavailable("the platform did not answer usably: retry later")
	}
}

func invalidField(field, format string, args ...any) error {
	return v1.ErrorInvalidArgument(field+": "+format, args...).WithMetadata(map[string]string{"field": field})
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
