package biz

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
)

// Union merge policies (config accounts.union_merge).
const (
	// UnionMergeAuto merges the younger user into the older one when a
	// login shows that their identities share a unionid.
	UnionMergeAuto = "auto"
	// UnionMergeConflict keeps them apart and records an IDENTITY_CONFLICT
	// audit event for operators.
	UnionMergeConflict = "conflict"
)

// maxAliasChain bounds alias resolution; merges never create loops, this
// only guards against a corrupted database.
const maxAliasChain = 32

// Unifier keeps one person one user: it resolves aliases and merges users.
// Its methods run inside the caller's transaction.
type Unifier struct {
	accounts AccountRepo
	sessions SessionRepo
	audit    AuditRepo
	now      func() time.Time
}

// NewUnifier returns a Unifier.
func NewUnifier(accounts AccountRepo, sessions SessionRepo, audit AuditRepo) *Unifier {
	return &Unifier{accounts: accounts, sessions: sessions, audit: audit, now: time.Now}
}

// Resolve follows merge aliases to the user that id now is.
func (u *Unifier) Resolve(ctx context.Context, id string) (*User, error) {
	cur, err := u.accounts.GetUser(ctx, id)
	for i := 0; err == nil && cur.MergedInto != ""; i++ {
		if i == maxAliasChain {
			return nil, fmt.Errorf("alias chain of %s is longer than %d: %w", id, maxAliasChain, ErrStorageUnavailable)
		}
		cur, err = u.accounts.GetUser(ctx, cur.MergedInto)
	}
	return cur, err
}

// LockResolve follows merge aliases like Resolve, locking each user row
// until the transaction ends. A login and a merge of the same user thereby
// serialize: whichever locks the user first finishes before the other
// reads who owns what.
func (u *Unifier) LockResolve(ctx context.Context, id string) (*User, error) {
	for i := 0; i < maxAliasChain; i++ {
		cur, err := u.accounts.LockUser(ctx, id)
		if err != nil || cur.MergedInto == "" {
			return cur, err
		}
		id = cur.MergedInto
	}
	return nil, fmt.Errorf("alias chain of %s is longer than %d: %w", id, maxAliasChain, ErrStorageUnavailable)
}

// MergeOptions says who merges and why.
type MergeOptions struct {
	Actor  string
	Reason string
	// Force allows the target to end up with two identities of one app.
	Force bool
}

// ErrSameUser: both ids already are the same user.
var ErrSameUser = v1.ErrorInvalidArgument("source_user_id: the two users are already the same user").WithMetadata(map[string]string{"field": "source_user_id"})

// Merge merges source into target (both resolved through aliases first):
// source's identities and unionids move to target, target gains the phone
// and profile fields it lacks, source's sessions end, and source becomes an
// alias of target. It returns the surviving user.
func (u *Unifier) Merge(ctx context.Context, targetID, sourceID string, opt MergeOptions) (*User, error) {
	// Lock both users first: logins attaching to either wait for the merge
	// (and then follow the alias), or finish before it reads what to move.
	target, err := u.LockResolve(ctx, targetID)
	if err != nil {
		return nil, err
	}
	source, err := u.LockResolve(ctx, sourceID)
	if err != nil {
		return nil, err
	}
	if target.ID == source.ID {
		return nil, ErrSameUser
	}
	targetIDs, err := u.accounts.ListIdentities(ctx, target.ID)
	if err != nil {
		return nil, err
	}
	sourceIDs, err := u.accounts.ListIdentities(ctx, source.ID)
	if err != nil {
		return nil, err
	}
	if conflicts := sharedApps(targetIDs, sourceIDs); len(conflicts) > 0 && !opt.Force {
		return nil, v1.ErrorIdentityConflict("both users have an identity in %v: merging would give one user two accounts of one app; an operator may force it", conflicts).
			WithMetadata(map[string]string{"apps": fmt.Sprint(conflicts)})
	}
	now := u.now()
	moved := make([]map[string]any, 0, len(sourceIDs))
	for _, i := range sourceIDs {
		if err := u.accounts.MoveIdentity(ctx, i.ID, target.ID); err != nil {
			return nil, err
		}
		moved = append(moved, identityDetail(i))
	}
	unions, err := u.accounts.ListUnionAccounts(ctx, source.ID)
	if err != nil {
		return nil, err
	}
	movedUnions := make([]map[string]any, 0, len(unions))
	for _, a := range unions {
		if err := u.accounts.MoveUnionAccount(ctx, a.Platform, a.UnionScope, a.UnionID, target.ID); err != nil {
			return nil, err
		}
		movedUnions = append(movedUnions, map[string]any{"platform": a.Platform, "union_scope": a.UnionScope, "unionid": a.UnionID})
	}
	copied := map[string]any{}
	if target.PhoneNumber == "" && source.PhoneNumber != "" {
		if err := u.accounts.SetPhone(ctx, target.ID, source.PhoneNumber, source.PhoneCountryCode, now); err != nil {
			return nil, err
		}
		copied["phone_number"] = source.PhoneNumber
		copied["phone_country_code"] = source.PhoneCountryCode
		target.PhoneNumber, target.PhoneCountryCode = source.PhoneNumber, source.PhoneCountryCode
	}
	nick, avatar := target.Nickname, target.AvatarURL
	if nick == "" && source.Nickname != "" {
		nick, copied["nickname"] = source.Nickname, source.Nickname
	}
	if avatar == "" && source.AvatarURL != "" {
		avatar, copied["avatar_url"] = source.AvatarURL, source.AvatarURL
	}
	if nick != target.Nickname || avatar != target.AvatarURL {
		if err := u.accounts.SetProfile(ctx, target.ID, nick, avatar); err != nil {
			return nil, err
		}
		target.Nickname, target.AvatarURL = nick, avatar
	}
	revoked, err := u.sessions.RevokeUser(ctx, source.ID, RevokeMerged, now)
	if err != nil {
		return nil, err
	}
	if err := u.accounts.MarkMerged(ctx, source.ID, target.ID, now); err != nil {
		return nil, err
	}
	err = u.audit.Record(ctx, AuditEvent{
		Actor: opt.Actor, Action: AuditUserMerge, Subject: target.ID, Reason: opt.Reason, At: now,
		Details: map[string]any{
			"source_user_id": source.ID, "target_user_id": target.ID, "forced": opt.Force,
			"identities_moved": moved, "union_accounts_moved": movedUnions,
			"fields_copied": copied, "sessions_revoked": revoked,
			"source_requested": sourceID, "target_requested": targetID,
		},
	})
	if err != nil {
		return nil, err
	}
	return target, nil
}

// sharedApps lists the apps both users have an identity in.
func sharedApps(a, b []*Identity) []string {
	seen := map[string]bool{}
	for _, i := range a {
		seen[i.Platform+"/"+i.AppID] = true
	}
	var out []string
	for _, i := range b {
		if k := i.Platform + "/" + i.AppID; seen[k] {
			out = append(out, k)
			seen[k] = false
		}
	}
	sort.Strings(out)
	return out
}

func identityDetail(i *Identity) map[string]any {
	return map[string]any{
		"identity_id": i.ID, "platform": i.Platform, "app_id": i.AppID, "openid": i.OpenID,
		"union_scope": i.UnionScope, "unionid": i.UnionID, "from_user_id": i.UserID,
	}
}

// LinkOptions says who moves an identity and why.
type LinkOptions struct {
	Actor  string
	Reason string
}

// Link moves an identity to the user targetID (resolved through aliases).
func (u *Unifier) Link(ctx context.Context, targetID, platform, appID, openID string, opt LinkOptions) (*User, error) {
	target, err := u.Resolve(ctx, targetID)
	if err != nil {
		return nil, err
	}
	ident, err := u.accounts.FindIdentity(ctx, platform, appID, openID)
	if errors.Is(err, ErrNotFound) {
		return nil, v1.ErrorNotFound("no identity %s/%s with that openid", platform, appID)
	} else if err != nil {
		return nil, err
	}
	if ident.UserID == target.ID {
		return target, nil
	}
	if err := u.accounts.MoveIdentity(ctx, ident.ID, target.ID); err != nil {
		return nil, err
	}
	details := identityDetail(ident)
	details["to_user_id"] = target.ID
	if ident.UnionID != "" {
		// The unionid goes with the identity when no other identity of the
		// old owner carries it.
		if err := u.moveUnionIfOrphaned(ctx, ident, ident.UserID, target.ID); err != nil {
			return nil, err
		}
	}
	return target, u.audit.Record(ctx, AuditEvent{
		Actor: opt.Actor, Action: AuditIdentityLink, Subject: target.ID, Reason: opt.Reason, At: u.now(), Details: details,
	})
}

// Unlink detaches an identity from userID into a new user of its own, and
// returns that new user. The user's last identity cannot be unlinked.
func (u *Unifier) Unlink(ctx context.Context, userID, platform, appID, openID string, opt LinkOptions) (*User, error) {
	owner, err := u.Resolve(ctx, userID)
	if err != nil {
		return nil, err
	}
	ident, err := u.accounts.FindIdentity(ctx, platform, appID, openID)
	if errors.Is(err, ErrNotFound) || (err == nil && ident.UserID != owner.ID) {
		return nil, v1.ErrorNotFound("user %s has no identity %s/%s with that openid", owner.ID, platform, appID)
	} else if err != nil {
		return nil, err
	}
	ids, err := u.accounts.ListIdentities(ctx, owner.ID)
	if err != nil {
		return nil, err
	}
	if len(ids) <= 1 {
		return nil, v1.ErrorFailedPrecondition("this is the user's only identity: it cannot be unlinked")
	}
	fresh, err := u.accounts.CreateUser(ctx, NewUserID())
	if err != nil {
		return nil, err
	}
	if err := u.accounts.MoveIdentity(ctx, ident.ID, fresh.ID); err != nil {
		return nil, err
	}
	if ident.UnionID != "" {
		if err := u.moveUnionIfOrphaned(ctx, ident, owner.ID, fresh.ID); err != nil {
			return nil, err
		}
	}
	details := identityDetail(ident)
	details["to_user_id"] = fresh.ID
	return fresh, u.audit.Record(ctx, AuditEvent{
		Actor: opt.Actor, Action: AuditIdentityUnlink, Subject: owner.ID, Reason: opt.Reason, At: u.now(), Details: details,
	})
}

// moveUnionIfOrphaned moves the identity's unionid from `from` to `to` when
// `from` owns it and none of from's remaining identities carries it.
func (u *Unifier) moveUnionIfOrphaned(ctx context.Context, ident *Identity, from, to string) error {
	owner, err := u.accounts.FindUnionOwner(ctx, ident.Platform, ident.UnionScope, ident.UnionID)
	if errors.Is(err, ErrNotFound) || (err == nil && owner != from) {
		return nil
	} else if err != nil {
		return err
	}
	rest, err := u.accounts.ListIdentities(ctx, from)
	if err != nil {
		return err
	}
	for _, r := range rest {
		if r.ID != ident.ID && r.Platform == ident.Platform && r.UnionScope == ident.UnionScope && r.UnionID == ident.UnionID {
			return nil
		}
	}
	return u.accounts.MoveUnionAccount(ctx, ident.Platform, ident.UnionScope, ident.UnionID, to)
}

// RevokeSessions ends every session of a user.
func (u *Unifier) RevokeSessions(ctx context.Context, userID string, opt LinkOptions) ([]string, error) {
	user, err := u.Resolve(ctx, userID)
	if err != nil {
		return nil, err
	}
	ids, err := u.sessions.RevokeUser(ctx, user.ID, RevokeAdmin, u.now())
	if err != nil {
		return nil, err
	}
	return ids, u.audit.Record(ctx, AuditEvent{
		Actor: opt.Actor, Action: AuditSessionsRevoke, Subject: user.ID, Reason: opt.Reason, At: u.now(),
		Details: map[string]any{"sessions_revoked": ids},
	})
}
