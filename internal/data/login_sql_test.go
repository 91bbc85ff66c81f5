package data_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
)

// The login path's statements skip ent's builders, so they run ent's field
// validators themselves: a value the schema does not allow is refused on
// SQLite too (which would store it) and names the field; nothing is written.
func TestLoginWritesRefuseValuesTheSchemaDoesNotAllow(t *testing.T) {
	long := strings.Repeat("x", 200)
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		accounts, sessions, codes := data.NewAccountRepo(d), data.NewSessionRepo(d), data.NewCodeExchangeRepo(d)
		mustUser(t, accounts, "u_1")
		ident := mustIdentity(t, accounts, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: "o-1", LastLoginAt: at(0)})
		now := time.Now()
		for _, tc := range []struct {
			name, field string
			write       func() error
		}{
			{"user id too long", "user.id", func() error { _, err := accounts.CreateUser(ctx, long); return err }},
			{"openid too long", "identity.openid", func() error {
				_, err := accounts.CreateIdentity(ctx, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", OpenID: long, LastLoginAt: at(0)})
				return err
			}},
			{"empty openid", "identity.openid", func() error {
				_, err := accounts.CreateIdentity(ctx, &biz.Identity{UserID: "u_1", Platform: "wechat", AppID: "wx-a", LastLoginAt: at(0)})
				return err
			}},
			{"unionid too long at login", "identity.unionid", func() error {
				return accounts.RecordLogin(ctx, ident, biz.LoginUpdate{UnionScope: "scope", UnionID: long, At: at(1)})
			}},
			{"session app id too long", "session.app_id", func() error {
				return sessions.Create(ctx, &biz.Session{ID: "s_1", UserID: "u_1", Platform: "wechat", AppID: long, CreatedAt: now},
					biz.RefreshToken{Hash: "h1", SessionID: "s_1", ExpiresAt: now.Add(time.Hour)})
			}},
			{"code hash too long", "code_exchange.code_hash", func() error {
				_, _, err := codes.Claim(ctx, long, "wechat", "wx-a", "holder", now, now.Add(time.Minute), now.Add(time.Hour))
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.write()
				if err == nil || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("err = %v, want one naming %s", err, tc.field)
				}
				if errors.Is(err, biz.ErrConcurrentUpdate) || errors.Is(err, biz.ErrNotFound) {
					t.Fatalf("err = %v: a refused value is not a race or a missing row", err)
				}
			})
		}
		list, err := accounts.ListIdentities(ctx, "u_1")
		if err != nil || len(list) != 1 || list[0].UnionID != "" || !list[0].LastLoginAt.Equal(at(0)) {
			t.Fatalf("identities of u_1 = %+v, %v: want the one identity, unchanged", list, err)
		}
		if _, err := sessions.Get(ctx, "s_1"); !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("session s_1: err = %v, want none written", err)
		}
		if _, err := codes.Get(ctx, long); !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("code record: err = %v, want none written", err)
		}
	})
}
