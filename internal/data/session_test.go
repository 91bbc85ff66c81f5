package data_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
)

// newSession stores user u_1 and a session s_1 with first refresh token
// hash "h0" and returns the session repo.
func newSession(t *testing.T, d *data.Data) biz.SessionRepo {
	t.Helper()
	mustUser(t, data.NewAccountRepo(d), "u_1")
	repo := data.NewSessionRepo(d)
	s := &biz.Session{ID: "s_1", UserID: "u_1", Platform: "wechat", AppID: "wx-a", CreatedAt: at(0)}
	if err := repo.Create(context.Background(), s, biz.RefreshToken{Hash: "h0", SessionID: "s_1", ExpiresAt: at(3600)}); err != nil {
		t.Fatalf("Create session: %v", err)
	}
	return repo
}

func TestSessionCreateThenGet(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		repo := newSession(t, d)
		got, err := repo.Get(context.Background(), "s_1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.ID != "s_1" || got.UserID != "u_1" || got.Platform != "wechat" || got.AppID != "wx-a" ||
			!got.CreatedAt.Equal(at(0)) || got.RevokedAt != nil || !got.Active() {
			t.Fatalf("Get = %+v, want the active session s_1 of u_1 on wechat/wx-a created at %v", got, at(0))
		}
	})
}

func TestSessionGetOfUnknownIDIsErrNotFound(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		if _, err := data.NewSessionRepo(d).Get(context.Background(), "s_nope"); !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("Get(unknown) err = %v, want biz.ErrNotFound", err)
		}
	})
}

func TestFindRefreshTokenReturnsTheTokenAndItsSession(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		repo := newSession(t, d)
		rt, s, err := repo.FindRefreshToken(context.Background(), "h0")
		if err != nil {
			t.Fatalf("FindRefreshToken: %v", err)
		}
		if rt.Hash != "h0" || rt.SessionID != "s_1" || !rt.ExpiresAt.Equal(at(3600)) || rt.RotatedAt != nil {
			t.Errorf("token = %+v, want h0 of s_1 expiring %v, not rotated", rt, at(3600))
		}
		if s == nil || s.ID != "s_1" || s.UserID != "u_1" || !s.Active() {
			t.Errorf("session = %+v, want the active s_1 of u_1", s)
		}
	})
}

func TestFindRefreshTokenOfUnknownHashIsErrNotFound(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		repo := newSession(t, d)
		if _, _, err := repo.FindRefreshToken(context.Background(), "h-unknown"); !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("FindRefreshToken(unknown) err = %v, want biz.ErrNotFound", err)
		}
	})
}

func TestRotateSucceedsOnceThenReportsFalse(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := newSession(t, d)
		ok, err := repo.Rotate(ctx, "h0", at(10), biz.RefreshToken{Hash: "h1", SessionID: "s_1", ExpiresAt: at(3610)})
		if err != nil || !ok {
			t.Fatalf("first Rotate = %v, %v; want true, nil", ok, err)
		}
		old, _, err := repo.FindRefreshToken(ctx, "h0")
		if err != nil {
			t.Fatalf("FindRefreshToken(h0): %v", err)
		}
		if old.RotatedAt == nil || !old.RotatedAt.Equal(at(10)) {
			t.Errorf("h0 RotatedAt = %v, want %v", old.RotatedAt, at(10))
		}
		next, s, err := repo.FindRefreshToken(ctx, "h1")
		if err != nil {
			t.Fatalf("FindRefreshToken(h1) after Rotate: %v", err)
		}
		if next.SessionID != "s_1" || s.ID != "s_1" || next.RotatedAt != nil || !next.ExpiresAt.Equal(at(3610)) {
			t.Errorf("h1 = %+v (session %+v), want an unrotated token of s_1 expiring %v", next, s, at(3610))
		}

		ok, err = repo.Rotate(ctx, "h0", at(20), biz.RefreshToken{Hash: "h2", SessionID: "s_1", ExpiresAt: at(3620)})
		if err != nil || ok {
			t.Fatalf("second Rotate of h0 = %v, %v; want false, nil", ok, err)
		}
		if _, _, err := repo.FindRefreshToken(ctx, "h2"); !errors.Is(err, biz.ErrNotFound) {
			t.Errorf("the losing Rotate stored its next token: FindRefreshToken(h2) err = %v, want biz.ErrNotFound", err)
		}
		if old, _, _ := repo.FindRefreshToken(ctx, "h0"); old == nil || old.RotatedAt == nil || !old.RotatedAt.Equal(at(10)) {
			t.Errorf("the losing Rotate changed h0's RotatedAt: %+v", old)
		}
	})
}

func TestRotateOfUnknownHashReportsFalse(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := newSession(t, d)
		ok, err := repo.Rotate(ctx, "h-unknown", at(10), biz.RefreshToken{Hash: "h1", SessionID: "s_1", ExpiresAt: at(3610)})
		if err != nil || ok {
			t.Fatalf("Rotate(unknown) = %v, %v; want false, nil", ok, err)
		}
	})
}

func TestRevokeSetsRevokedAtAndIsIdempotent(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := newSession(t, d)
		if err := repo.Revoke(ctx, "s_1", "logout", at(30)); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		s, err := repo.Get(ctx, "s_1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if s.Active() || !s.RevokedAt.Equal(at(30)) {
			t.Fatalf("after Revoke, session = %+v (RevokedAt %v), want revoked at %v", s, s.RevokedAt, at(30))
		}
		if err := repo.Revoke(ctx, "s_1", "again", at(40)); err != nil {
			t.Fatalf("second Revoke: %v, want nil (idempotent)", err)
		}
		s, err = repo.Get(ctx, "s_1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if s.RevokedAt == nil || !s.RevokedAt.Equal(at(30)) {
			t.Fatalf("second Revoke moved RevokedAt to %v, want it kept at %v", s.RevokedAt, at(30))
		}
		_, fs, err := repo.FindRefreshToken(ctx, "h0")
		if err != nil || fs.Active() {
			t.Fatalf("FindRefreshToken's session after Revoke = %+v, %v; want revoked", fs, err)
		}
	})
}

func TestRevokeOfUnknownSessionIsErrNotFound(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		if err := data.NewSessionRepo(d).Revoke(context.Background(), "s_nope", "logout", at(0)); !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("Revoke(unknown) err = %v, want biz.ErrNotFound", err)
		}
	})
}
