package data_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
)

// BenchmarkLoginStatements runs the repository calls of one login as
// biz.AuthUsecase makes them (claim the code; in one transaction find the
// identity, then lock the user and record the login or create both, open a
// session with its refresh token and complete the code), so the data layer's
// cost per login — allocs/op above all, which do not depend on how busy the
// machine is — can be compared before and after a change.
func BenchmarkLoginStatements(b *testing.B) {
	for _, driver := range dbtest.Drivers() {
		for _, returning := range []bool{false, true} {
			name := map[bool]string{false: "new", true: "returning"}[returning]
			b.Run(driver+"/"+name, func(b *testing.B) {
				d := dbtest.Open(b, driver)
				login := newLoginRun(d)
				if returning {
					if err := login(0, false); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 1; i <= b.N; i++ {
					if err := login(i, returning); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// newLoginRun returns a login of the user openid-0 (returning) or of a new
// user openid-n, with code n.
func newLoginRun(d *data.Data) func(n int, returning bool) error {
	accounts, sessions, codes, tx := data.NewAccountRepo(d), data.NewSessionRepo(d), data.NewCodeExchangeRepo(d), data.NewTransaction(d)
	ctx := context.Background()
	const platform, app, holder = "wechat", "wxbench", "bench-holder"
	return func(n int, returning bool) error {
		now := time.Now()
		hash := fmt.Sprintf("%064d", n)
		if ok, _, err := codes.Claim(ctx, hash, platform, app, holder, now, now.Add(time.Minute), now.Add(10*time.Minute)); err != nil || !ok {
			return fmt.Errorf("claim %d: %v %v", n, ok, err)
		}
		openID := fmt.Sprintf("openid-%d", n)
		if returning {
			openID = "openid-0"
		}
		return tx.InTx(ctx, func(ctx context.Context) error {
			userID, created := "", false
			ident, _, err := accounts.FindIdentityAndOwner(ctx, platform, app, openID)
			switch {
			case err == nil:
				userID = ident.UserID
				if err := accounts.RecordLogin(ctx, ident, biz.LoginUpdate{SessionKey: "c2Vzc2lvbi1rZXktYmVuY2g=", At: now}); err != nil {
					return err
				}
			case returning:
				return err
			default:
				u, err := accounts.CreateUser(ctx, biz.NewUserID())
				if err != nil {
					return err
				}
				userID, created = u.ID, true
				if _, err := accounts.CreateIdentity(ctx, &biz.Identity{UserID: userID, Platform: platform, AppID: app, OpenID: openID, SessionKey: "c2Vzc2lvbi1rZXktYmVuY2g=", LastLoginAt: now}); err != nil {
					return err
				}
			}
			s := &biz.Session{ID: biz.NewSessionID(), UserID: userID, Platform: platform, AppID: app, CreatedAt: now}
			if err := sessions.Create(ctx, s, biz.RefreshToken{Hash: fmt.Sprintf("%064x", n), SessionID: s.ID, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
			return codes.Complete(ctx, hash, holder, s.ID, userID, created)
		})
	}
}
