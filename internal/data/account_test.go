package data_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
)

func TestCreateUserThenGetUserRoundTrips(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		created := mustUser(t, repo, "u_roundtrip")
		if created.ID != "u_roundtrip" || created.CreatedAt.IsZero() {
			t.Fatalf("CreateUser = %+v, want id u_roundtrip and a creation time", created)
		}
		got, err := repo.GetUser(ctx, "u_roundtrip")
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if got.ID != created.ID {
			t.Fatalf("GetUser id = %q, want %q", got.ID, created.ID)
		}
		if d := got.CreatedAt.Sub(created.CreatedAt).Abs(); d > time.Millisecond { // storage precision
			t.Fatalf("GetUser CreatedAt = %v, want %v", got.CreatedAt, created.CreatedAt)
		}
	})
}

func TestGetUserOfUnknownIDIsErrNotFound(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		_, err := data.NewAccountRepo(d).GetUser(context.Background(), "u_nobody")
		if !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("GetUser(unknown) err = %v, want biz.ErrNotFound", err)
		}
	})
}

func TestCreateUserWithTakenIDIsConcurrentUpdate(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_dup")
		_, err := repo.CreateUser(context.Background(), "u_dup")
		if !errors.Is(err, biz.ErrConcurrentUpdate) {
			t.Fatalf("second CreateUser err = %v, want biz.ErrConcurrentUpdate", err)
		}
	})
}

func TestCreateIdentityThenFindIdentityByNaturalKey(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_1")
		in := &biz.Identity{
			UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-alice",
			UnionScope: "scope-a", UnionID: "un-alice", SessionKey: "sk-1", LastLoginAt: at(0),
		}
		created := mustIdentity(t, repo, in)
		if created.ID == 0 {
			t.Fatalf("CreateIdentity returned no id: %+v", created)
		}
		got, err := repo.FindIdentity(ctx, "wechat", "wx-a", "o-alice")
		if err != nil {
			t.Fatalf("FindIdentity: %v", err)
		}
		want := *in
		want.ID = created.ID
		if got.ID != want.ID || got.UserID != want.UserID || got.Platform != want.Platform || got.AppID != want.AppID ||
			got.OpenID != want.OpenID || got.UnionScope != want.UnionScope || got.UnionID != want.UnionID ||
			got.SessionKey != "" || !got.LastLoginAt.Equal(want.LastLoginAt) || got.CreatedAt.IsZero() {
			// No session_key: FindIdentity does not read (decrypt) it.
			want.SessionKey = ""
			t.Fatalf("FindIdentity = %+v, want %+v", got, want)
		}

		for _, k := range []struct{ platform, appID, openID string }{
			{"wechat", "wx-a", "o-bob"},
			{"wechat", "wx-b", "o-alice"},
			{"alipay", "wx-a", "o-alice"},
		} {
			if _, err := repo.FindIdentity(ctx, k.platform, k.appID, k.openID); !errors.Is(err, biz.ErrNotFound) {
				t.Errorf("FindIdentity(%v) err = %v, want biz.ErrNotFound", k, err)
			}
		}
	})
}

func TestCreateIdentityWithDuplicateNaturalKeyIsConcurrentUpdate(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_1")
		mustUser(t, repo, "u_2")
		mustIdentity(t, repo, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-alice", LastLoginAt: at(0)})
		_, err := repo.CreateIdentity(ctx, &biz.Identity{UserID: "u_2", Platform: "wechat", AppID: "wx-a", OpenID: "o-alice", LastLoginAt: at(1)})
		if !errors.Is(err, biz.ErrConcurrentUpdate) {
			t.Fatalf("duplicate CreateIdentity err = %v, want biz.ErrConcurrentUpdate", err)
		}
		got, err := repo.FindIdentity(ctx, "wechat", "wx-a", "o-alice")
		if err != nil || got.UserID != "u_1" {
			t.Fatalf("after the duplicate, FindIdentity = %+v, %v; want the first owner u_1", got, err)
		}
	})
}

func TestSameOpenIDUnderAnotherAppIsADifferentIdentity(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_1")
		mustUser(t, repo, "u_2")
		a := mustIdentity(t, repo, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-same", LastLoginAt: at(0)})
		b, err := repo.CreateIdentity(ctx, &biz.Identity{UserID: "u_2", Platform: "wechat", AppID: "wx-b", OpenID: "o-same", LastLoginAt: at(0)})
		if err != nil {
			t.Fatalf("CreateIdentity of the same openid under another app_id: %v", err)
		}
		if a.ID == b.ID {
			t.Fatalf("both identities got id %d", a.ID)
		}
		for _, c := range []struct{ appID, wantUser string }{{"wx-a", "u_1"}, {"wx-b", "u_2"}} {
			got, err := repo.FindIdentity(ctx, "wechat", c.appID, "o-same")
			if err != nil || got.UserID != c.wantUser {
				t.Errorf("FindIdentity(wechat, %s, o-same) = %+v, %v; want user %s", c.appID, got, err, c.wantUser)
			}
		}
	})
}

func TestRecordLogin(t *testing.T) {
	cases := []struct {
		name           string
		update         biz.LoginUpdate
		wantSessionKey string
		wantScope      string
		wantUnionID    string
	}{
		{
			name:           "new session key replaces the stored one",
			update:         biz.LoginUpdate{SessionKey: "sk-new", At: at(60)},
			wantSessionKey: "sk-new",
		},
		{
			name:           "empty session key keeps the stored one",
			update:         biz.LoginUpdate{At: at(60)},
			wantSessionKey: "sk-old",
		},
		{
			name:           "late unionid is recorded",
			update:         biz.LoginUpdate{UnionScope: "scope-a", UnionID: "un-late", SessionKey: "sk-new", At: at(60)},
			wantSessionKey: "sk-new", wantScope: "scope-a", wantUnionID: "un-late",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachDriver(t, func(t *testing.T, d *data.Data) {
				ctx := context.Background()
				repo := data.NewAccountRepo(d)
				mustUser(t, repo, "u_1")
				id := mustIdentity(t, repo, &biz.Identity{
					UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-alice", SessionKey: "sk-old", LastLoginAt: at(0),
				})
				if err := repo.RecordLogin(ctx, id, c.update); err != nil {
					t.Fatalf("RecordLogin: %v", err)
				}
				got, err := repo.FindUserIdentity(ctx, "u_1", "wechat", "wx-a")
				if err != nil {
					t.Fatalf("FindUserIdentity: %v", err)
				}
				if !got.LastLoginAt.Equal(c.update.At) {
					t.Errorf("LastLoginAt = %v, want %v", got.LastLoginAt, c.update.At)
				}
				if got.SessionKey != c.wantSessionKey {
					t.Errorf("SessionKey = %q, want %q", got.SessionKey, c.wantSessionKey)
				}
				if got.UnionScope != c.wantScope || got.UnionID != c.wantUnionID {
					t.Errorf("union = (%q, %q), want (%q, %q)", got.UnionScope, got.UnionID, c.wantScope, c.wantUnionID)
				}
				if got.UserID != "u_1" || got.OpenID != "o-alice" {
					t.Errorf("RecordLogin changed the identity's owner or key: %+v", got)
				}
			})
		})
	}
}

func TestRecordLoginOfUnknownIdentityIsErrNotFound(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		err := data.NewAccountRepo(d).RecordLogin(context.Background(), &biz.Identity{ID: 424242}, biz.LoginUpdate{At: at(0)})
		if !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("RecordLogin(unknown) err = %v, want biz.ErrNotFound", err)
		}
	})
}

func TestListIdentitiesReturnsTheUsersIdentitiesInCreationOrder(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_1")
		mustUser(t, repo, "u_2")
		var want []int
		for _, app := range []string{"wx-c", "wx-a", "wx-b"} { // not alphabetical
			want = append(want, mustIdentity(t, repo, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: app, OpenID: "o-" + app, LastLoginAt: at(0)}).ID)
			mustIdentity(t, repo, &biz.Identity{UserID: "u_2", Platform: "wechat", AppID: app, OpenID: "o-other-" + app, LastLoginAt: at(0)})
		}
		got, err := repo.ListIdentities(ctx, "u_1")
		if err != nil {
			t.Fatalf("ListIdentities: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListIdentities returned %d identities, want %d", len(got), len(want))
		}
		for i, id := range got {
			if id.ID != want[i] || id.UserID != "u_1" {
				t.Errorf("ListIdentities[%d] = id %d of %s, want id %d of u_1", i, id.ID, id.UserID, want[i])
			}
		}
		none, err := repo.ListIdentities(ctx, "u_nobody")
		if err != nil || len(none) != 0 {
			t.Fatalf("ListIdentities(unknown user) = %v, %v; want empty, nil", none, err)
		}
	})
}

func TestBindUnionThenFindUnionOwner(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_1")
		if _, err := repo.FindUnionOwner(ctx, "wechat", "scope-a", "un-1"); !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("FindUnionOwner before BindUnion err = %v, want biz.ErrNotFound", err)
		}
		if err := repo.BindUnion(ctx, "wechat", "scope-a", "un-1", "u_1"); err != nil {
			t.Fatalf("BindUnion: %v", err)
		}
		owner, err := repo.FindUnionOwner(ctx, "wechat", "scope-a", "un-1")
		if err != nil || owner != "u_1" {
			t.Fatalf("FindUnionOwner = %q, %v; want u_1", owner, err)
		}
	})
}

func TestBindUnionOfAnOwnedUnionIDIsConcurrentUpdate(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_1")
		mustUser(t, repo, "u_2")
		if err := repo.BindUnion(ctx, "wechat", "scope-a", "un-1", "u_1"); err != nil {
			t.Fatalf("BindUnion: %v", err)
		}
		for _, userID := range []string{"u_2", "u_1"} {
			if err := repo.BindUnion(ctx, "wechat", "scope-a", "un-1", userID); !errors.Is(err, biz.ErrConcurrentUpdate) {
				t.Errorf("BindUnion(..., %s) of an owned unionid err = %v, want biz.ErrConcurrentUpdate", userID, err)
			}
		}
		if owner, err := repo.FindUnionOwner(ctx, "wechat", "scope-a", "un-1"); err != nil || owner != "u_1" {
			t.Fatalf("FindUnionOwner = %q, %v; want the first owner u_1", owner, err)
		}
	})
}

func TestSameUnionIDInAnotherScopeOrPlatformIsIndependent(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		binds := []struct{ platform, scope, userID string }{
			{"wechat", "scope-a", "u_1"},
			{"wechat", "scope-b", "u_2"},
			{"alipay", "scope-a", "u_3"},
		}
		for _, b := range binds {
			mustUser(t, repo, b.userID)
			if err := repo.BindUnion(ctx, b.platform, b.scope, "un-same", b.userID); err != nil {
				t.Fatalf("BindUnion(%s, %s, un-same, %s): %v", b.platform, b.scope, b.userID, err)
			}
		}
		for _, b := range binds {
			owner, err := repo.FindUnionOwner(ctx, b.platform, b.scope, "un-same")
			if err != nil || owner != b.userID {
				t.Errorf("FindUnionOwner(%s, %s, un-same) = %q, %v; want %s", b.platform, b.scope, owner, err, b.userID)
			}
		}
	})
}

func TestFindIdentityAndOwnerReadsBothInOneStatementAndLocksTheOwner(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_owner")
		mustUser(t, repo, "u_survivor")
		created := mustIdentity(t, repo, &biz.Identity{UserID: "u_owner", Platform: "wechat", AppID: "wx-a", OpenID: "o-owned",
			UnionScope: "scope-a", UnionID: "un-owned", SessionKey: "sk-1", LastLoginAt: at(0)})

		ident, mergedInto, err := repo.FindIdentityAndOwner(ctx, "wechat", "wx-a", "o-owned")
		if err != nil {
			t.Fatalf("FindIdentityAndOwner: %v", err)
		}
		if ident.ID != created.ID || ident.UserID != "u_owner" || ident.Platform != "wechat" || ident.AppID != "wx-a" || ident.OpenID != "o-owned" ||
			ident.UnionScope != "scope-a" || ident.UnionID != "un-owned" || ident.CreatedAt.IsZero() || !ident.LastLoginAt.Equal(at(0)) || ident.SessionKey != "" {
			t.Errorf("identity = %+v, want the created one without its session_key", ident)
		}
		if mergedInto != "" {
			t.Errorf("owner merged into %q, want not merged", mergedInto)
		}
		if _, _, err := repo.FindIdentityAndOwner(ctx, "wechat", "wx-a", "o-nobody"); !errors.Is(err, biz.ErrNotFound) {
			t.Errorf("unknown identity: err = %v, want biz.ErrNotFound", err)
		}

		// An owner merged away reads as an alias, for the caller to follow.
		if err := repo.MarkMerged(ctx, "u_owner", "u_survivor", at(5)); err != nil {
			t.Fatal(err)
		}
		if _, mergedInto, err = repo.FindIdentityAndOwner(ctx, "wechat", "wx-a", "o-owned"); err != nil || mergedInto != "u_survivor" {
			t.Errorf("after the merge: owner merged into %q, %v; want u_survivor", mergedInto, err)
		}

		if d.Dialect() != "mysql" {
			return // SQLite: a write transaction holds the whole database
		}
		// In a transaction the owner's row stays locked until it ends, as
		// LockUser's would: another transaction's LockUser waits.
		locked, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- data.NewTransaction(d).InTx(ctx, func(ctx context.Context) error {
				if _, _, err := repo.FindIdentityAndOwner(ctx, "wechat", "wx-a", "o-owned"); err != nil {
					return err
				}
				close(locked)
				<-release
				return nil
			})
		}()
		<-locked
		wait, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err = data.NewTransaction(d).InTx(wait, func(ctx context.Context) error {
			_, err := repo.LockUser(ctx, "u_owner")
			return err
		})
		cancel()
		if err == nil {
			t.Errorf("LockUser of the owner went through while another transaction held it")
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("the locking transaction: %v", err)
		}
		if err := data.NewTransaction(d).InTx(ctx, func(ctx context.Context) error {
			_, err := repo.LockUser(ctx, "u_owner")
			return err
		}); err != nil {
			t.Errorf("LockUser after the lock was released: %v", err)
		}
	})
}

// MySQL's _bin collations ignore trailing spaces, so an openid with one
// finds the identity stored without it; the identity returned must be the
// stored one, whose key its session_key's seal is bound to.
func TestFindIdentityAndOwnerReturnsTheKeyAsStored(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_owner")
		mustIdentity(t, repo, &biz.Identity{UserID: "u_owner", Platform: "wechat", AppID: "wx-a", OpenID: "o-stored", SessionKey: "sk-1", LastLoginAt: at(0)})
		ident, _, err := repo.FindIdentityAndOwner(ctx, "wechat", "wx-a", "o-stored ")
		switch {
		case errors.Is(err, biz.ErrNotFound) && d.Dialect() != "mysql": // SQLite compares exactly
		case err != nil:
			t.Fatalf("FindIdentityAndOwner: %v", err)
		case ident.OpenID != "o-stored":
			t.Fatalf("openid %q, want the stored %q", ident.OpenID, "o-stored")
		}
	})
}
