package data_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
	"github.com/mpauth/mpauth/internal/secretbox"
)

// rawColumn reads one column of one row as stored, bypassing the repositories.
func rawColumn(t *testing.T, d *data.Data, query string, args ...any) string {
	t.Helper()
	var v string
	if err := data.SQLDB(d).QueryRowContext(context.Background(), query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func rawExec(t *testing.T, d *data.Data, query string, args ...any) {
	t.Helper()
	if _, err := data.SQLDB(d).ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func storedSessionKey(t *testing.T, d *data.Data, id int) string {
	return rawColumn(t, d, "SELECT session_key FROM identities WHERE id = ?", id)
}

func storedPlatformToken(t *testing.T, d *data.Data, platform, appID string) string {
	return rawColumn(t, d, "SELECT token FROM platform_tokens WHERE platform = ? AND app_id = ?", platform, appID)
}

// assertSealed fails unless stored is a sealed value of key kid that does
// not contain plain.
func assertSealed(t *testing.T, what, stored, plain, kid string) {
	t.Helper()
	if stored == plain || strings.Contains(stored, plain) {
		t.Fatalf("%s is stored in clear: %q", what, stored)
	}
	if !secretbox.IsSealed(stored) || secretbox.KeyIDOf(stored) != kid {
		t.Fatalf("%s stored as %q, want sealed under key %q", what, stored, kid)
	}
}

func TestSessionKeyIsStoredEncryptedAndReadBackInClear(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_1")
		const first, second = "tiDjVyqQvrNvIlwCMzQfvA==", "HyVFkGl5F5OQWJZZaNzBBg=="
		id := mustIdentity(t, repo, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-1", SessionKey: first, LastLoginAt: at(0)})
		if id.SessionKey != first {
			t.Fatalf("CreateIdentity returned session key %q, want the plaintext", id.SessionKey)
		}
		assertSealed(t, "session_key", storedSessionKey(t, d, id.ID), first, "test")

		got, err := repo.FindUserIdentity(ctx, "u_1", "wechat", "wx-a")
		if err != nil || got.SessionKey != first {
			t.Fatalf("FindUserIdentity = %+v, %v; want session key %q", got, err, first)
		}

		if err := repo.RecordLogin(ctx, id, biz.LoginUpdate{SessionKey: second, At: at(1)}); err != nil {
			t.Fatal(err)
		}
		assertSealed(t, "session_key after a login", storedSessionKey(t, d, id.ID), second, "test")
		list, err := repo.ListIdentities(ctx, "u_1")
		if err != nil || len(list) != 1 || list[0].SessionKey != second {
			t.Fatalf("ListIdentities = %+v, %v; want session key %q", list, err, second)
		}
		got, err = repo.FindUserIdentity(ctx, "u_1", "wechat", "wx-a")
		if err != nil || got.SessionKey != second {
			t.Fatalf("FindUserIdentity = %+v, %v; want session key %q", got, err, second)
		}

		// A login without a session_key keeps the stored one.
		if err := repo.RecordLogin(ctx, id, biz.LoginUpdate{At: at(2)}); err != nil {
			t.Fatal(err)
		}
		if got, _ := repo.FindUserIdentity(ctx, "u_1", "wechat", "wx-a"); got.SessionKey != second {
			t.Fatalf("session key after a login without one = %q, want %q", got.SessionKey, second)
		}

		// No session_key: nothing stored.
		none := mustIdentity(t, repo, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-none", LastLoginAt: at(0)})
		if s := storedSessionKey(t, d, none.ID); s != "" {
			t.Fatalf("an empty session key is stored as %q", s)
		}
	})
}

func TestSessionKeyCopiedToAnotherRowDoesNotOpen(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_1")
		a := mustIdentity(t, repo, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-a", SessionKey: "key-of-a", LastLoginAt: at(0)})
		b := mustIdentity(t, repo, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-b", SessionKey: "key-of-b", LastLoginAt: at(0)})
		rawExec(t, d, "UPDATE identities SET session_key = ? WHERE id = ?", storedSessionKey(t, d, a.ID), b.ID)

		if got := sessionKeyOf(t, repo, "u_1", "o-b"); got != "" {
			t.Fatalf("b's row with a's sealed key reads as %q, want no session key", got)
		}
		// A new login heals the row.
		if err := repo.RecordLogin(ctx, b, biz.LoginUpdate{SessionKey: "fresh-b", At: at(1)}); err != nil {
			t.Fatal(err)
		}
		if got := sessionKeyOf(t, repo, "u_1", "o-b"); got != "fresh-b" {
			t.Fatalf("after a new login: %q, want fresh-b", got)
		}
	})
}

func TestPlatformTokenIsStoredEncryptedAndReadBackInClear(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewPlatformTokenRepo(d)
		const tok = "78_Wgm5dAAB4bU9YJX0hgTjuyR5A-Ws7cOi8mSQ9K8mPd1Ek5C"
		if ok, err := repo.AcquireLease(ctx, "wechat", "wx-a", "i1", at(0), at(30)); err != nil || !ok {
			t.Fatalf("AcquireLease = %v, %v", ok, err)
		}
		if err := repo.Store(ctx, "wechat", "wx-a", "i1", biz.PlatformToken{Token: tok, ExpiresAt: at(7200)}); err != nil {
			t.Fatal(err)
		}
		assertSealed(t, "platform token", storedPlatformToken(t, d, "wechat", "wx-a"), tok, "test")
		got, err := repo.Get(ctx, "wechat", "wx-a")
		if err != nil || got.Token != tok || got.Invalid {
			t.Fatalf("Get = %+v, %v; want the token, valid", got, err)
		}

		// MarkInvalid compares the plaintext, not the (randomized) sealed form.
		if err := repo.MarkInvalid(ctx, "wechat", "wx-a", "another-token"); err != nil {
			t.Fatal(err)
		}
		if got, _ := repo.Get(ctx, "wechat", "wx-a"); got.Invalid {
			t.Fatal("MarkInvalid of another token flagged the stored one")
		}
		if err := repo.MarkInvalid(ctx, "wechat", "wx-a", tok); err != nil {
			t.Fatal(err)
		}
		if got, _ := repo.Get(ctx, "wechat", "wx-a"); !got.Invalid || got.Token != tok {
			t.Fatalf("after MarkInvalid(stored token): %+v, want it flagged", got)
		}
		// Of an app without a row: nothing to do.
		if err := repo.MarkInvalid(ctx, "wechat", "wx-none", tok); err != nil {
			t.Fatalf("MarkInvalid of an unknown app: %v", err)
		}

		// A token copied to another app's row does not open there.
		if _, err := repo.AcquireLease(ctx, "wechat", "wx-b", "i1", at(0), at(30)); err != nil {
			t.Fatal(err)
		}
		rawExec(t, d, "UPDATE platform_tokens SET token = ? WHERE platform = ? AND app_id = ?", storedPlatformToken(t, d, "wechat", "wx-a"), "wechat", "wx-b")
		if got, err := repo.Get(ctx, "wechat", "wx-b"); err != nil || got.Token != "" {
			t.Fatalf("wx-b's row with wx-a's sealed token: %+v, %v; want no token", got, err)
		}
	})
}

func TestLegacyPlaintextRowsStillRead(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		accounts, tokens := data.NewAccountRepo(d), data.NewPlatformTokenRepo(d)
		mustUser(t, accounts, "u_1")
		id := mustIdentity(t, accounts, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-1", LastLoginAt: at(0)})
		// Rows as a version before encryption at rest wrote them.
		rawExec(t, d, "UPDATE identities SET session_key = ? WHERE id = ?", "legacy-session-key==", id.ID)
		if _, err := tokens.AcquireLease(ctx, "wechat", "wx-a", "i1", at(0), at(30)); err != nil {
			t.Fatal(err)
		}
		rawExec(t, d, "UPDATE platform_tokens SET token = ? WHERE platform = ? AND app_id = ?", "24.legacy.token", "wechat", "wx-a")

		if got, err := accounts.FindUserIdentity(ctx, "u_1", "wechat", "wx-a"); err != nil || got.SessionKey != "legacy-session-key==" {
			t.Fatalf("legacy session key: %+v, %v", got, err)
		}
		if got, err := tokens.Get(ctx, "wechat", "wx-a"); err != nil || got.Token != "24.legacy.token" {
			t.Fatalf("legacy token: %+v, %v", got, err)
		}
		if err := tokens.MarkInvalid(ctx, "wechat", "wx-a", "24.legacy.token"); err != nil {
			t.Fatal(err)
		}
		if got, _ := tokens.Get(ctx, "wechat", "wx-a"); !got.Invalid {
			t.Fatal("MarkInvalid did not flag a legacy plaintext token")
		}
		// The next write seals.
		if err := accounts.RecordLogin(ctx, id, biz.LoginUpdate{SessionKey: "new-key", At: at(1)}); err != nil {
			t.Fatal(err)
		}
		assertSealed(t, "session_key rewritten", storedSessionKey(t, d, id.ID), "new-key", "test")
	})
}

func TestKeyRotationKeepsOldRowsReadable(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cfg := dbtest.Config(t, driver)
			k1, k2 := dbtest.Key(t, "k1"), dbtest.Key(t, "k2")

			// Before the rotation: k1 only.
			before := dbtest.OpenConfig(t, cfg, dbtest.BoxOf(t, "", k1))
			accounts, tokens := data.NewAccountRepo(before), data.NewPlatformTokenRepo(before)
			mustUser(t, accounts, "u_1")
			id := mustIdentity(t, accounts, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-1", SessionKey: "sk-under-k1", LastLoginAt: at(0)})
			if _, err := tokens.AcquireLease(ctx, "wechat", "wx-a", "i1", at(0), at(30)); err != nil {
				t.Fatal(err)
			}
			if err := tokens.Store(ctx, "wechat", "wx-a", "i1", biz.PlatformToken{Token: "tok-under-k1", ExpiresAt: at(7200)}); err != nil {
				t.Fatal(err)
			}
			assertSealed(t, "session_key", storedSessionKey(t, before, id.ID), "sk-under-k1", "k1")

			// After: k2 added and active, k1 still listed.
			after := dbtest.OpenConfig(t, cfg, dbtest.BoxOf(t, "k2", k1, k2))
			accounts2, tokens2 := data.NewAccountRepo(after), data.NewPlatformTokenRepo(after)
			if got, err := accounts2.FindUserIdentity(ctx, "u_1", "wechat", "wx-a"); err != nil || got.SessionKey != "sk-under-k1" {
				t.Fatalf("a k1 session key after the rotation: %+v, %v", got, err)
			}
			if got, err := tokens2.Get(ctx, "wechat", "wx-a"); err != nil || got.Token != "tok-under-k1" {
				t.Fatalf("a k1 token after the rotation: %+v, %v", got, err)
			}
			if err := accounts2.RecordLogin(ctx, id, biz.LoginUpdate{SessionKey: "sk-under-k2", At: at(1)}); err != nil {
				t.Fatal(err)
			}
			assertSealed(t, "session_key written after the rotation", storedSessionKey(t, after, id.ID), "sk-under-k2", "k2")
			if got, _ := accounts2.FindUserIdentity(ctx, "u_1", "wechat", "wx-a"); got.SessionKey != "sk-under-k2" {
				t.Fatalf("a k2 session key: %q", got.SessionKey)
			}

			// An instance without k2 does not read k2 values as garbage: it
			// reads no session key (the user logs in again).
			if got, err := accounts.FindUserIdentity(ctx, "u_1", "wechat", "wx-a"); err != nil || got.SessionKey != "" {
				t.Fatalf("an instance without k2: %+v, %v; want no session key", got, err)
			}
			// Once k1 is dropped, the k1 token reads as absent (it is fetched again).
			only2 := dbtest.OpenConfig(t, cfg, dbtest.BoxOf(t, "", k2))
			if got, err := data.NewPlatformTokenRepo(only2).Get(ctx, "wechat", "wx-a"); err != nil || got.Token != "" {
				t.Fatalf("a k1 token without k1: %+v, %v; want no token", got, err)
			}
		})
	}
}

func TestWithoutASecretBoxSecretsAreNotStored(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cfg := dbtest.Config(t, driver)
			dbtest.OpenConfig(t, cfg, dbtest.Box(t)) // migrated
			d, err := data.Open(cfg, log.DefaultLogger)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			repo := data.NewAccountRepo(d)
			mustUser(t, repo, "u_1")
			if _, err := repo.CreateIdentity(ctx, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-1", SessionKey: "sk", LastLoginAt: at(0)}); err == nil {
				t.Fatal("a session key was stored without a secretbox")
			}
			if _, _, err := data.NewData(cfg, nil, log.DefaultLogger); err == nil {
				t.Fatal("NewData accepted no secretbox")
			}
		})
	}
}
