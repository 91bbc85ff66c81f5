package biz_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/errors"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/provider/wechat"
)

func TestFirstLoginCreatesAUserAndTheNextReturnsIt(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		first := e.login(e.uc, appA1, "alice")
		if !first.IsNewUser || first.UserID == "" || first.SessionID == "" {
			t.Fatalf("first login = %+v, want a new user with a session", first)
		}
		if first.AccessToken == "" || first.RefreshToken == "" || first.AccessExpiresIn <= 0 || first.RefreshExpiresIn != refreshTTL {
			t.Fatalf("first login tokens = %+v, want both tokens with their lifetimes", first)
		}
		second := e.login(e.uc, appA1, "alice")
		if second.IsNewUser || second.UserID != first.UserID {
			t.Fatalf("second login = user %s new %v, want the existing user %s", second.UserID, second.IsNewUser, first.UserID)
		}
		if second.SessionID == first.SessionID || second.RefreshToken == first.RefreshToken {
			t.Fatalf("second login reused the first session or refresh token")
		}
		if ids := e.identities(first.UserID); len(ids) != 1 {
			t.Fatalf("user has %d identities, want 1", len(ids))
		}
		if c := e.counts(); c.Users != 1 || c.Identities != 1 || c.Sessions != 2 || c.RefreshTokens != 2 {
			t.Fatalf("rows = %+v, want 1 user, 1 identity, 2 sessions, 2 refresh tokens", c)
		}
	})
}

func TestLoginsOfOnePersonThroughTwoAppsOfOneUnionScopeGiveOneUser(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		a1 := e.login(e.uc, appA1, "alice")
		a2 := e.login(e.uc, appA2, "alice")
		if a2.UserID != a1.UserID || a2.IsNewUser {
			t.Fatalf("login through %s = user %s (new %v), want %s's user %s", appA2, a2.UserID, a2.IsNewUser, appA1, a1.UserID)
		}
		ids := e.identities(a1.UserID)
		if len(ids) != 2 || ids[0].AppID != appA1 || ids[1].AppID != appA2 {
			t.Fatalf("identities = %v, want one of %s then one of %s", appIDs(ids), appA1, appA2)
		}
		if ids[0].OpenID == ids[1].OpenID {
			t.Errorf("both identities have openid %q; openids are per app", ids[0].OpenID)
		}
		if ids[0].UnionID == "" || ids[0].UnionID != ids[1].UnionID || ids[0].UnionScope != "scope-a" || ids[1].UnionScope != "scope-a" {
			t.Errorf("identities' unions = (%s %s), (%s %s); want the same unionid in scope-a", ids[0].UnionScope, ids[0].UnionID, ids[1].UnionScope, ids[1].UnionID)
		}
		owner, err := e.accounts.FindUnionOwner(context.Background(), wx, "scope-a", ids[0].UnionID)
		if err != nil || owner != a1.UserID {
			t.Errorf("FindUnionOwner = %q, %v; want %s", owner, err, a1.UserID)
		}
	})
}

func TestLoginThroughAnAppOfAnotherUnionScopeGivesAnotherUser(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		a := e.login(e.uc, appA1, "alice")
		b := e.login(e.uc, appB1, "alice")
		if b.UserID == a.UserID || !b.IsNewUser {
			t.Fatalf("login through %s (scope-b) = user %s (new %v), want a new user other than %s", appB1, b.UserID, b.IsNewUser, a.UserID)
		}
		if c := e.counts(); c.Users != 2 || c.Identities != 2 || c.Unions != 2 {
			t.Fatalf("rows = %+v, want 2 users, 2 identities, 2 union bindings", c)
		}
	})
}

func TestLoginThroughAnAppWithoutUnionScopeIgnoresTheUnionID(t *testing.T) {
	// The platform sends wx-none's logins with a scope-a unionid, but the
	// server has no union scope for the app: the unionid must not be used.
	eachDriver(t, func(t *testing.T, e *env) {
		a := e.login(e.uc, appA1, "alice")
		n := e.login(e.uc, appNone, "alice")
		if n.UserID == a.UserID || !n.IsNewUser {
			t.Fatalf("login through %s = user %s (new %v), want a new user other than %s", appNone, n.UserID, n.IsNewUser, a.UserID)
		}
		ids := e.identities(n.UserID)
		if len(ids) != 1 || ids[0].UnionID != "" || ids[0].UnionScope != "" {
			t.Fatalf("identities of the %s user = %+v, want one without a unionid", appNone, ids)
		}
		again := e.login(e.uc, appNone, "alice")
		if again.UserID != n.UserID {
			t.Fatalf("second login through %s = %s, want %s", appNone, again.UserID, n.UserID)
		}
		if c := e.counts(); c.Unions != 1 {
			t.Fatalf("%d union bindings, want 1 (only scope-a's)", c.Unions)
		}
	})
}

func TestAccessTokenNamesUserAndSessionAndNeverTheOpenID(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		p := e.login(e.uc, appA1, "alice")
		c, err := e.tokens.Verify(p.AccessToken)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.Subject != p.UserID || c.SessionID != p.SessionID || c.Platform != wx || c.AppID != appA1 {
			t.Fatalf("claims = %+v, want sub %s sid %s on %s/%s", c, p.UserID, p.SessionID, wx, appA1)
		}
		ids := e.identities(p.UserID)
		if len(ids) != 1 {
			t.Fatalf("%d identities, want 1", len(ids))
		}
		var decoded []byte
		for _, part := range strings.Split(p.AccessToken, ".")[:2] {
			b, err := base64.RawURLEncoding.DecodeString(part)
			if err != nil {
				t.Fatalf("token part not base64url: %v", err)
			}
			decoded = append(decoded, b...)
		}
		for what, secret := range map[string]string{"openid": ids[0].OpenID, "unionid": ids[0].UnionID, "session_key": ids[0].SessionKey} {
			if secret == "" {
				continue
			}
			if strings.Contains(p.AccessToken, secret) || bytes.Contains(decoded, []byte(secret)) {
				t.Errorf("the access token contains the %s", what)
			}
		}
		pr, err := e.uc.Authenticate(context.Background(), p.AccessToken)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if pr.UserID != p.UserID || pr.SessionID != p.SessionID || pr.Platform != wx || pr.AppID != appA1 {
			t.Fatalf("principal = %+v, want user %s session %s on %s/%s", pr, p.UserID, p.SessionID, wx, appA1)
		}
	})
}

func TestAuthenticateRejectsAForgedToken(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		p := e.login(e.uc, appA1, "alice")
		parts := strings.Split(p.AccessToken, ".")
		forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
		for name, tok := range map[string]string{"garbage": "not-a-token", "empty": "", "bad signature": forged} {
			if _, err := e.uc.Authenticate(context.Background(), tok); !v1.IsUnauthenticated(err) {
				t.Errorf("Authenticate(%s) err = %v, want UNAUTHENTICATED", name, err)
			}
		}
	})
}

// addFault makes the sandbox answer the next exchange of user's code with
// the given fault.
func (e *env) addFault(user, kind string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"platform": wx, "user": user, "error": kind, "count": 1})
	resp, err := http.Post(e.sandbox+"/sandbox/faults", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("adding fault %s: %v", kind, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("adding fault %s: %s", kind, resp.Status)
	}
}

func TestFailedLoginsWriteNothing(t *testing.T) {
	cases := []struct {
		name string
		// setup prepares the platform and returns the app and code to log in with.
		setup func(e *env) (appID, code string)
		is    func(error) bool
		// retryOK: the same code succeeds once the fault has cleared.
		retryOK bool
	}{
		{
			name:  "unknown app is UNKNOWN_APP",
			setup: func(e *env) (string, string) { return "wx-unknown", e.code(appA1, "bob") },
			is:    v1.IsUnknownApp,
		},
		{
			name: "code already used elsewhere is CODE_USED",
			setup: func(e *env) (string, string) {
				// Another server (or anyone holding the secret) exchanged
				// the code first: the platform answers 40163.
				code := e.code(appA1, "bob")
				p, err := wechat.New(serverApps(e.sandbox)[0], provider.Env{})
				if err != nil {
					e.t.Fatal(err)
				}
				if _, err := p.Exchange(context.Background(), provider.Credentials{Code: code}); err != nil {
					e.t.Fatalf("exchanging the code elsewhere: %v", err)
				}
				return appA1, code
			},
			is: v1.IsCodeUsed,
		},
		{
			name: "code reused after its session was logged out is CODE_USED",
			setup: func(e *env) (string, string) {
				code := e.code(appA1, "bob")
				p, err := e.uc.Login(context.Background(), wx, appA1, provider.Credentials{Code: code})
				if err != nil {
					e.t.Fatalf("first use of the code: %v", err)
				}
				if err := e.uc.Logout(context.Background(), &biz.Principal{UserID: p.UserID, SessionID: p.SessionID}); err != nil {
					e.t.Fatalf("Logout: %v", err)
				}
				return appA1, code
			},
			is: v1.IsCodeUsed,
		},
		{
			name:  "bogus code is CODE_INVALID",
			setup: func(e *env) (string, string) { return appA1, "0a3Xs8000VL9bS1KfG200vJ5Nj1Xs80V" },
			is:    v1.IsCodeInvalid,
		},
		{
			name:  "empty code is INVALID_ARGUMENT",
			setup: func(e *env) (string, string) { return appA1, "" },
			is:    v1.IsInvalidArgument,
		},
		{
			name:  "another app's code is CODE_INVALID",
			setup: func(e *env) (string, string) { return appA2, e.code(appA1, "bob") },
			is:    v1.IsCodeInvalid,
		},
		{
			name: "rate limit is PLATFORM_RATE_LIMITED",
			setup: func(e *env) (string, string) {
				code := e.code(appA1, "bob")
				e.addFault("bob", "rate_limited")
				return appA1, code
			},
			is: func(err error) bool {
				return v1.IsPlatformRateLimited(err) && errors.FromError(err).GetMetadata()["retry_after"] == "60"
			},
			retryOK: true,
		},
		{
			name: "busy platform is PLATFORM_UNAVAILABLE",
			setup: func(e *env) (string, string) {
				code := e.code(appA1, "bob")
				e.addFault("bob", "busy")
				return appA1, code
			},
			is:      v1.IsPlatformUnavailable,
			retryOK: true,
		},
		{
			name: "blocked user is USER_BLOCKED",
			setup: func(e *env) (string, string) {
				code := e.code(appA1, "bob")
				e.addFault("bob", "blocked")
				return appA1, code
			},
			is:      v1.IsUserBlocked,
			retryOK: true,
		},
		{
			name: "platform answering HTTP 503 is PLATFORM_UNAVAILABLE",
			setup: func(e *env) (string, string) {
				code := e.code(appA1, "bob")
				e.addFault("bob", "unavailable_http")
				return appA1, code
			},
			is:      v1.IsPlatformUnavailable,
			retryOK: true,
		},
		{
			name:  "wrong app secret is PLATFORM_MISCONFIGURED",
			setup: func(e *env) (string, string) { return appBad, e.code(appBad, "bob") },
			is:    v1.IsPlatformMisconfigured,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachDriver(t, func(t *testing.T, e *env) {
				// Another person's data, which a failure must not touch either.
				e.login(e.uc, appA2, "carol")
				appID, code := c.setup(e)
				before := e.counts()
				p, err := e.uc.Login(context.Background(), wx, appID, provider.Credentials{Code: code})
				if err == nil || !c.is(err) {
					t.Fatalf("Login = %+v, %v; want the error of the case", p, err)
				}
				if p != nil {
					t.Errorf("Login returned tokens with its error: %+v", p)
				}
				if after := e.counts(); after != before {
					t.Fatalf("the failed login wrote rows: before %+v, after %+v", before, after)
				}
				if c.retryOK {
					if _, err := e.uc.Login(context.Background(), wx, appID, provider.Credentials{Code: code}); err != nil {
						t.Fatalf("retrying the code once the fault cleared: %v", err)
					}
				}
			})
		})
	}
}

func TestRefreshRotatesTheRefreshToken(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		login := e.login(e.uc, appA1, "alice")
		r1, err := e.uc.Refresh(ctx, login.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if r1.UserID != login.UserID || r1.SessionID != login.SessionID || r1.IsNewUser {
			t.Fatalf("refresh = user %s session %s new %v, want the login's user %s and session %s", r1.UserID, r1.SessionID, r1.IsNewUser, login.UserID, login.SessionID)
		}
		if r1.RefreshToken == login.RefreshToken || r1.RefreshToken == "" || r1.AccessToken == "" {
			t.Fatalf("refresh did not issue a new refresh token and access token: %+v", r1)
		}
		if pr, err := e.uc.Authenticate(ctx, r1.AccessToken); err != nil || pr.SessionID != login.SessionID {
			t.Fatalf("Authenticate(refreshed access token) = %+v, %v", pr, err)
		}

		// The old token is spent; the new one works.
		if _, err := e.uc.Refresh(ctx, login.RefreshToken); !v1.IsRefreshTokenInvalid(err) {
			t.Fatalf("Refresh(old token) err = %v, want REFRESH_TOKEN_INVALID", err)
		}
		r2, err := e.uc.Refresh(ctx, r1.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh(new token): %v", err)
		}
		if r2.SessionID != login.SessionID {
			t.Fatalf("second refresh moved to session %s, want %s", r2.SessionID, login.SessionID)
		}
		if _, err := e.uc.Refresh(ctx, r1.RefreshToken); !v1.IsRefreshTokenInvalid(err) {
			t.Fatalf("Refresh(r1 again) err = %v, want REFRESH_TOKEN_INVALID", err)
		}
		if c := e.counts(); c.RefreshTokens != 3 || c.Sessions != 1 {
			t.Fatalf("rows = %+v, want 1 session with 3 refresh token generations", c)
		}
	})
}

func TestRefreshOfUnknownOrExpiredTokenIsInvalid(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if _, err := e.uc.Refresh(ctx, "rt_unknown"); !v1.IsRefreshTokenInvalid(err) {
			t.Fatalf("Refresh(unknown) err = %v, want REFRESH_TOKEN_INVALID", err)
		}
		login := e.login(e.uc, appA1, "alice")
		e.clock.Advance(refreshTTL + time.Second)
		if _, err := e.uc.Refresh(ctx, login.RefreshToken); !v1.IsRefreshTokenInvalid(err) {
			t.Fatalf("Refresh(expired) err = %v, want REFRESH_TOKEN_INVALID", err)
		}
	})
}

func TestReplayOfARotatedRefreshTokenAfterTheGraceRevokesTheSession(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		login := e.login(e.uc, appA1, "alice")
		other := e.login(e.uc, appA2, "alice") // another session of the same user
		r1, err := e.uc.Refresh(ctx, login.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}

		e.clock.Advance(biz.RefreshReuseGrace + time.Second)
		if _, err := e.uc.Refresh(ctx, login.RefreshToken); !v1.IsRefreshTokenInvalid(err) {
			t.Fatalf("replay err = %v, want REFRESH_TOKEN_INVALID", err)
		}
		if _, err := e.uc.Refresh(ctx, r1.RefreshToken); !v1.IsRefreshTokenInvalid(err) {
			t.Fatalf("after the replay, Refresh(newest token) err = %v, want REFRESH_TOKEN_INVALID (session revoked)", err)
		}
		for name, tok := range map[string]string{"login": login.AccessToken, "refreshed": r1.AccessToken} {
			if _, err := e.uc.Authenticate(ctx, tok); !v1.IsUnauthenticated(err) {
				t.Errorf("after the replay, Authenticate(%s access token) err = %v, want UNAUTHENTICATED", name, err)
			}
		}
		s, err := e.sessions.Get(ctx, login.SessionID)
		if err != nil || s.Active() {
			t.Fatalf("session after the replay = %+v, %v; want revoked", s, err)
		}
		if got := e.auditActions(); len(got) != 1 || got[0] != biz.AuditRefreshTokenReuse {
			t.Fatalf("audit log = %v, want one %s", got, biz.AuditRefreshTokenReuse)
		}
		// Only the replayed session is revoked.
		if _, err := e.uc.Authenticate(ctx, other.AccessToken); err != nil {
			t.Fatalf("the user's other session was affected: %v", err)
		}
	})
}

func TestReplayOfARotatedRefreshTokenWithinTheGraceKeepsTheSession(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		login := e.login(e.uc, appA1, "alice")
		r1, err := e.uc.Refresh(ctx, login.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}

		e.clock.Advance(biz.RefreshReuseGrace - time.Second)
		if _, err := e.uc.Refresh(ctx, login.RefreshToken); !v1.IsRefreshTokenInvalid(err) {
			t.Fatalf("replay within the grace err = %v, want REFRESH_TOKEN_INVALID", err)
		}
		if _, err := e.uc.Authenticate(ctx, r1.AccessToken); err != nil {
			t.Fatalf("Authenticate after a replay within the grace: %v (session must stay alive)", err)
		}
		r2, err := e.uc.Refresh(ctx, r1.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh(newest token) after a replay within the grace: %v", err)
		}
		if r2.SessionID != login.SessionID {
			t.Fatalf("session moved from %s to %s", login.SessionID, r2.SessionID)
		}
		if got := e.auditActions(); len(got) != 0 {
			t.Fatalf("audit log = %v, want nothing", got)
		}
	})
}

func TestLogoutRevokesTheSession(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		login := e.login(e.uc, appA1, "alice")
		other := e.login(e.uc, appA1, "alice")
		p, err := e.uc.Authenticate(ctx, login.AccessToken)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if err := e.uc.Logout(ctx, p); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		if _, err := e.uc.Authenticate(ctx, login.AccessToken); !v1.IsUnauthenticated(err) {
			t.Fatalf("Authenticate after Logout err = %v, want UNAUTHENTICATED", err)
		}
		if _, err := e.uc.Refresh(ctx, login.RefreshToken); !v1.IsRefreshTokenInvalid(err) {
			t.Fatalf("Refresh after Logout err = %v, want REFRESH_TOKEN_INVALID", err)
		}
		if err := e.uc.Logout(ctx, p); err != nil {
			t.Fatalf("second Logout: %v, want nil", err)
		}
		if _, err := e.uc.Authenticate(ctx, other.AccessToken); err != nil {
			t.Fatalf("another session of the user was logged out too: %v", err)
		}
		if _, err := e.uc.Refresh(ctx, other.RefreshToken); err != nil {
			t.Fatalf("Refresh of another session after Logout: %v", err)
		}
	})
}

func TestLateUnionIDIsBoundToTheExistingUser(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// Before: wx-late has no union scope on the server.
		first := e.login(e.uc, appLate, "lena")
		if ids := e.identities(first.UserID); len(ids) != 1 || ids[0].UnionID != "" {
			t.Fatalf("identities before = %+v, want one without a unionid", ids)
		}
		// After: the operator configures wx-late's union scope.
		scoped := e.usecase(provider.App{Platform: wx, AppID: appLate, Secret: "sec-late", UnionScope: "scope-a"})
		again := e.login(scoped, appLate, "lena")
		if again.UserID != first.UserID || again.IsNewUser {
			t.Fatalf("login with the late unionid = user %s (new %v), want the existing %s", again.UserID, again.IsNewUser, first.UserID)
		}
		ids := e.identities(first.UserID)
		if len(ids) != 1 || ids[0].UnionScope != "scope-a" || ids[0].UnionID == "" {
			t.Fatalf("identities after = %+v, want one with a scope-a unionid", ids)
		}
		owner, err := e.accounts.FindUnionOwner(ctx, wx, "scope-a", ids[0].UnionID)
		if err != nil || owner != first.UserID {
			t.Fatalf("FindUnionOwner = %q, %v; want %s", owner, err, first.UserID)
		}
		// A first login through another app of the scope joins that user.
		a1 := e.login(scoped, appA1, "lena")
		if a1.UserID != first.UserID || a1.IsNewUser {
			t.Fatalf("first login through %s = user %s (new %v), want %s", appA1, a1.UserID, a1.IsNewUser, first.UserID)
		}
		if ids := e.identities(first.UserID); len(ids) != 2 {
			t.Fatalf("user has %d identities, want 2", len(ids))
		}
		if c := e.counts(); c.Users != 1 || c.Unions != 1 || c.AuditEvents != 0 {
			t.Fatalf("rows = %+v, want 1 user, 1 union binding, no audit event", c)
		}
	})
}

func TestLateUnionIDOwnedByAnotherUserKeepsTheIdentitysUserAndIsAuditedWithUnionMergeConflict(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		late := e.login(e.uc, appLate, "mia") // no unionid yet
		owner := e.login(e.uc, appA1, "mia")  // the unionid goes to a new user
		if owner.UserID == late.UserID {
			t.Fatalf("setup: both logins gave user %s", late.UserID)
		}
		scoped := e.usecaseWith(biz.AuthConfig{RefreshTokenTTL: refreshTTL, UnionMerge: biz.UnionMergeConflict},
			provider.App{Platform: wx, AppID: appLate, Secret: "sec-late", UnionScope: "scope-a"})
		again := e.login(scoped, appLate, "mia")
		if again.UserID != late.UserID || again.IsNewUser {
			t.Fatalf("login = user %s (new %v), want the identity's own user %s", again.UserID, again.IsNewUser, late.UserID)
		}
		unionID := e.identities(owner.UserID)[0].UnionID
		if got, err := e.accounts.FindUnionOwner(ctx, wx, "scope-a", unionID); err != nil || got != owner.UserID {
			t.Fatalf("FindUnionOwner = %q, %v; want the first owner %s", got, err, owner.UserID)
		}
		if got := e.auditActions(); len(got) != 1 || got[0] != biz.AuditIdentityConflict {
			t.Fatalf("audit log = %v, want one %s", got, biz.AuditIdentityConflict)
		}
	})
}

// concurrentLogins logs user in n times at once, through apps[i%len(apps)],
// each with its own code, and returns the results and errors.
func (e *env) concurrentLogins(n int, user string, apps ...string) ([]*biz.TokenPair, []error) {
	e.t.Helper()
	codes := make([]string, n)
	for i := range codes {
		codes[i] = e.code(apps[i%len(apps)], user)
	}
	pairs, errs := make([]*biz.TokenPair, n), make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pairs[i], errs[i] = e.uc.Login(context.Background(), wx, apps[i%len(apps)], provider.Credentials{Code: codes[i]})
		}()
	}
	close(start)
	wg.Wait()
	return pairs, errs
}

// checkOneUser checks that every login succeeded as the same user, exactly
// one of them creating it, and that the user has wantIdentities identities.
func checkOneUser(t *testing.T, e *env, pairs []*biz.TokenPair, errs []error, wantIdentities int) {
	t.Helper()
	users := map[string]int{}
	newUsers, failed := 0, 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("login %d: %v", i, err)
			}
			continue
		}
		users[pairs[i].UserID]++
		if pairs[i].IsNewUser {
			newUsers++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d concurrent logins failed, want 0", failed, len(errs))
	}
	if len(users) != 1 {
		t.Fatalf("concurrent logins of one person gave %d users (%v), want 1", len(users), users)
	}
	if newUsers != 1 {
		t.Errorf("%d logins reported a new user, want exactly 1", newUsers)
	}
	for userID := range users {
		if ids := e.identities(userID); len(ids) != wantIdentities {
			t.Errorf("the user has %d identities (%v), want %d", len(ids), appIDs(ids), wantIdentities)
		}
	}
	c := e.counts()
	if c.Users != 1 || c.Identities != wantIdentities || c.Sessions != len(errs)-failed {
		t.Errorf("rows = %+v, want 1 user, %d identities, %d sessions", c, wantIdentities, len(errs)-failed)
	}
}

func TestConcurrentFirstLoginsThroughTwoAppsOfOneScopeCreateOneUser(t *testing.T) {
	eachRaceVariant(t, func(t *testing.T, e *env) {
		pairs, errs := e.concurrentLogins(50, "racer", appA1, appA2)
		checkOneUser(t, e, pairs, errs, 2)
		if c := e.counts(); c.Unions != 1 {
			t.Errorf("%d union bindings, want 1", c.Unions)
		}
	})
}

func TestConcurrentFirstLoginsThroughOneAppCreateOneUserAndOneIdentity(t *testing.T) {
	eachRaceVariant(t, func(t *testing.T, e *env) {
		pairs, errs := e.concurrentLogins(20, "racer", appA1)
		checkOneUser(t, e, pairs, errs, 1)
	})
}

func TestConcurrentFirstLoginsThroughAnAppWithoutUnionScopeCreateOneUser(t *testing.T) {
	eachRaceVariant(t, func(t *testing.T, e *env) {
		pairs, errs := e.concurrentLogins(20, "racer", appNone)
		checkOneUser(t, e, pairs, errs, 1)
	})
}

func appIDs(ids []*biz.Identity) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.AppID
	}
	return out
}

func TestConcurrentRefreshesOfOneTokenRotateItOnceAndKeepTheSession(t *testing.T) {
	eachRaceVariant(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		login := e.login(e.uc, appA1, "alice")
		const n = 10
		pairs, errs := make([]*biz.TokenPair, n), make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				pairs[i], errs[i] = e.uc.Refresh(ctx, login.RefreshToken)
			}()
		}
		close(start)
		wg.Wait()
		var winner *biz.TokenPair
		for i, err := range errs {
			switch {
			case err == nil && winner == nil:
				winner = pairs[i]
			case err == nil:
				t.Errorf("refresh %d also succeeded: one token rotated twice", i)
			case !v1.IsRefreshTokenInvalid(err):
				t.Errorf("refresh %d err = %v, want REFRESH_TOKEN_INVALID", i, err)
			}
		}
		if winner == nil {
			t.Fatalf("no concurrent refresh succeeded")
		}
		if _, err := e.uc.Authenticate(ctx, winner.AccessToken); err != nil {
			t.Fatalf("the session did not survive racing refreshes: %v", err)
		}
		if _, err := e.uc.Refresh(ctx, winner.RefreshToken); err != nil {
			t.Fatalf("Refresh(winner's token): %v", err)
		}
		if c := e.counts(); c.RefreshTokens != 3 || c.AuditEvents != 0 {
			t.Fatalf("rows = %+v, want 3 refresh token generations and no audit event", c)
		}
	})
}

func TestRetriedCodeReturnsTheSameLogin(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		code := e.code(appA1, "alice")
		first, err := e.uc.Login(ctx, wx, appA1, provider.Credentials{Code: code})
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		before := e.counts()
		again, err := e.uc.Login(ctx, wx, appA1, provider.Credentials{Code: code})
		if err != nil {
			t.Fatalf("Login with the same code again: %v", err)
		}
		if again.UserID != first.UserID || again.SessionID != first.SessionID || again.IsNewUser != first.IsNewUser {
			t.Fatalf("retry = user %s session %s new %v, want the first login's %s %s %v",
				again.UserID, again.SessionID, again.IsNewUser, first.UserID, first.SessionID, first.IsNewUser)
		}
		after := e.counts()
		if after.Users != before.Users || after.Identities != before.Identities || after.Sessions != before.Sessions {
			t.Fatalf("the retry created rows: before %+v, after %+v", before, after)
		}
		for _, rt := range []string{first.RefreshToken, again.RefreshToken} {
			if _, err := e.uc.Refresh(ctx, rt); err != nil {
				t.Errorf("Refresh of a token of the retried login: %v", err)
			}
		}
	})
}

func TestExpiredCodeRecordsArePurgedInTheBackground(t *testing.T) {
	eachDriver(t, func(t *testing.T, e *env) {
		// One purge runs every 100 claims; the first finds nothing expired.
		for i := 0; i < 100; i++ {
			e.login(e.uc, appA1, fmt.Sprintf("early-%d", i))
		}
		e.clock.Advance(11 * time.Minute) // past the retry window of those codes
		for i := 0; i < 100; i++ {
			e.login(e.uc, appA1, fmt.Sprintf("late-%d", i))
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := e.counts().CodeExchanges
			if n == 100 {
				return // the late logins' records, still within their window
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d code records, want the 100 unexpired ones after the purge", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
