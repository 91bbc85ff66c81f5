package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/data/dbtest"
)

// TestHTTPWalkthrough is the README's curl sequence: mint a sandbox code, log
// in, read /v1/me, refresh, log out — on every storage driver.
func TestHTTPWalkthrough(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			in := start(t, testConfig(t, driver))

			code := in.mintCode(t, appA, "alice")
			status, hdr, tok := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
			if status != 200 {
				t.Fatalf("login: %d %v", status, tok)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("login Cache-Control = %q, want no-store", hdr.Get("Cache-Control"))
			}
			for _, f := range []string{"access_token", "refresh_token", "user_id"} {
				if s, _ := tok[f].(string); s == "" {
					t.Fatalf("login answer lacks %s: %v", f, tok)
				}
			}
			if tok["token_type"] != "Bearer" || tok["expires_in"] != float64(900) || tok["refresh_expires_in"] != float64(86400) || tok["is_new_user"] != true {
				t.Errorf("login answer = %v", tok)
			}
			for _, f := range []string{"session_key", "openid", "unionid"} {
				if _, ok := tok[f]; ok {
					t.Errorf("login answer exposes %s", f)
				}
			}
			access, refresh, userID := tok["access_token"].(string), tok["refresh_token"].(string), tok["user_id"].(string)

			status, _, me := in.call(t, "GET", "/v1/me", access, nil)
			if status != 200 || me["user_id"] != userID {
				t.Fatalf("me: %d %v", status, me)
			}
			ids, _ := me["identities"].([]any)
			if len(ids) != 1 || ids[0].(map[string]any)["app_id"] != appA || ids[0].(map[string]any)["platform"] != "wechat" {
				t.Fatalf("me identities = %v", me["identities"])
			}
			if strings.Contains(mustJSON(me), "openid") {
				t.Errorf("/v1/me exposes an openid: %v", me)
			}

			// Same person through the second app of the union scope: same user.
			again := in.login(t, appB, "alice")
			if again["user_id"] != userID || again["is_new_user"] != false {
				t.Fatalf("login through app B = %v, want user %s", again, userID)
			}

			// A client retrying the same code gets the same login (same user,
			// same session), not the platform's "code been used".
			status, _, retried := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
			if status != 200 || retried["user_id"] != userID || retried["is_new_user"] != true || retried["refresh_token"] == refresh {
				t.Fatalf("retried code: %d %v", status, retried)
			}
			if sidOf(t, retried["access_token"].(string)) != sidOf(t, access) {
				t.Fatalf("retried code opened another session")
			}

			status, hdr, rotated := in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
			if status != 200 || rotated["user_id"] != userID || rotated["refresh_token"] == refresh || hdr.Get("Cache-Control") != "no-store" {
				t.Fatalf("refresh: %d %v", status, rotated)
			}
			status, _, e := in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
			assertError(t, status, e, 401, "REFRESH_TOKEN_INVALID")

			newAccess := rotated["access_token"].(string)
			status, _, _ = in.call(t, "POST", "/v1/auth/logout", newAccess, nil)
			if status != 200 {
				t.Fatalf("logout: %d", status)
			}
			status, _, e = in.call(t, "GET", "/v1/me", newAccess, nil)
			assertError(t, status, e, 401, "UNAUTHENTICATED")
			status, _, e = in.call(t, "GET", "/v1/me", access, nil) // same session
			assertError(t, status, e, 401, "UNAUTHENTICATED")
			status, _, e = in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": rotated["refresh_token"].(string)})
			assertError(t, status, e, 401, "REFRESH_TOKEN_INVALID")
			// Once its session has ended, the code is simply used.
			status, _, e = in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
			assertError(t, status, e, 400, "CODE_USED")
		})
	}
}

func b64url(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// sidOf reads the sid claim of an access token (without verifying it).
func sidOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.SID
}

// TestAccessTokenVerifiesAgainstServedJWKS verifies a token the way a backend
// does: only with the published key set.
func TestAccessTokenVerifiesAgainstServedJWKS(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	tok := in.login(t, appA, "bob")

	resp, err := http.Get(in.httpURL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v %s", err, raw)
	}
	if strings.Contains(string(raw), `"d"`) {
		t.Fatalf("jwks publishes private key material: %s", raw)
	}
	parsed, err := josejwt.ParseSigned(tok["access_token"].(string), []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Headers[0]
	if h.ExtraHeaders["typ"] != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", h.ExtraHeaders["typ"])
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", h.KeyID)
	}
	var claims josejwt.Claims
	var extra struct {
		SID      string `json:"sid"`
		Platform string `json:"platform"`
		AppID    string `json:"app_id"`
	}
	if err := parsed.Claims(keys[0].Key, &claims, &extra); err != nil {
		t.Fatalf("signature does not verify with the served JWKS: %v", err)
	}
	if err := claims.Validate(josejwt.Expected{Issuer: "https://auth.test", AnyAudience: []string{"test-backend"}, Time: time.Now()}); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if claims.Subject != tok["user_id"] || extra.SID == "" || extra.Platform != "wechat" || extra.AppID != appA || claims.ID == "" {
		t.Fatalf("claims = %+v %+v", claims, extra)
	}
}

// TestGRPCWalkthrough runs the same flow over gRPC, through the same
// middleware (validation, auth) as HTTP.
func TestGRPCWalkthrough(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kgrpc.DialInsecure(ctx, kgrpc.WithEndpoint(in.grpcAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth := v1.NewAuthServiceClient(conn)
	account := v1.NewAccountServiceClient(conn)

	if _, err := auth.Login(ctx, &v1.LoginRequest{Platform: "wechat", AppId: appA}); !v1.IsInvalidArgument(err) {
		t.Fatalf("login without code: %v, want INVALID_ARGUMENT", err)
	}
	if _, err := auth.Login(ctx, &v1.LoginRequest{Platform: "wechat", AppId: "wxnotconfigured", Code: "abc"}); !v1.IsUnknownApp(err) {
		t.Fatalf("login with unknown app: %v, want UNKNOWN_APP", err)
	}
	tok, err := auth.Login(ctx, &v1.LoginRequest{Platform: "wechat", AppId: appA, Code: in.mintCode(t, appA, "carol")})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.IsNewUser || tok.TokenType != "Bearer" {
		t.Fatalf("login = %v", tok)
	}
	if _, err := account.GetMe(ctx, &emptypb.Empty{}); !v1.IsUnauthenticated(err) {
		t.Fatalf("GetMe without token: %v, want UNAUTHENTICATED", err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok.AccessToken)
	me, err := account.GetMe(authed, &emptypb.Empty{})
	if err != nil || me.UserId != tok.UserId || len(me.Identities) != 1 {
		t.Fatalf("GetMe = %v, %v", me, err)
	}
	next, err := auth.Refresh(ctx, &v1.RefreshRequest{RefreshToken: tok.RefreshToken})
	if err != nil || next.UserId != tok.UserId {
		t.Fatalf("refresh = %v, %v", next, err)
	}
	if _, err := auth.Refresh(ctx, &v1.RefreshRequest{RefreshToken: tok.RefreshToken}); !v1.IsRefreshTokenInvalid(err) {
		t.Fatalf("second refresh: %v, want REFRESH_TOKEN_INVALID", err)
	}
	if _, err := auth.Logout(authed, &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := account.GetMe(authed, &emptypb.Empty{}); !v1.IsUnauthenticated(err) {
		t.Fatalf("GetMe after logout: %v, want UNAUTHENTICATED", err)
	}
}

// TestBadRequestsGetClearErrors: each bad input names the field (or the
// problem) with a stable reason and the right status.
func TestBadRequestsGetClearErrors(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	long := strings.Repeat("x", 300)
	tests := []struct {
		name       string
		path       string
		bearer     string
		body       any
		wantStatus int
		wantReason string
		wantField  string
	}{
		{"missing platform", "/v1/auth/login", "", map[string]string{"app_id": appA, "code": "c"}, 400, "INVALID_ARGUMENT", "platform"},
		{"missing app_id", "/v1/auth/login", "", map[string]string{"platform": "wechat", "code": "c"}, 400, "INVALID_ARGUMENT", "app_id"},
		{"missing code", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA}, 400, "INVALID_ARGUMENT", "code"},
		{"oversized code", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": long}, 400, "INVALID_ARGUMENT", "code"},
		{"not JSON", "/v1/auth/login", "", `{"platform":`, 400, "INVALID_ARGUMENT", ""},
		{"wrong type", "/v1/auth/login", "", `{"platform":1,"app_id":"a","code":"c"}`, 400, "INVALID_ARGUMENT", ""},
		{"unknown platform", "/v1/auth/login", "", map[string]string{"platform": "myspace", "app_id": appA, "code": "c"}, 400, "UNKNOWN_APP", ""},
		{"unknown app", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": "wx0", "code": "c"}, 400, "UNKNOWN_APP", ""},
		{"invalid code", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": "nosuchcode"}, 400, "CODE_INVALID", ""},
		{"missing refresh token", "/v1/auth/refresh", "", map[string]string{}, 400, "INVALID_ARGUMENT", "refresh_token"},
		{"unknown refresh token", "/v1/auth/refresh", "", map[string]string{"refresh_token": "rt_nope"}, 401, "REFRESH_TOKEN_INVALID", ""},
		{"me without token", "/v1/me", "", nil, 401, "UNAUTHENTICATED", ""},
		{"me with garbage token", "/v1/me", "garbage", nil, 401, "UNAUTHENTICATED", ""},
		{"logout without token", "/v1/auth/logout", "", nil, 401, "UNAUTHENTICATED", ""},
		{"oversized body", "/v1/auth/login", "", `{"platform":"` + strings.Repeat("w", 70<<10) + `"}`, 400, "INVALID_ARGUMENT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.path == "/v1/me" {
				method = "GET"
			}
			status, _, e := in.call(t, method, tt.path, tt.bearer, tt.body)
			assertError(t, status, e, tt.wantStatus, tt.wantReason)
			if tt.wantField != "" {
				md, _ := e["metadata"].(map[string]any)
				if md["field"] != tt.wantField || !strings.Contains(e["message"].(string), tt.wantField) {
					t.Errorf("error does not name field %s: %v", tt.wantField, e)
				}
			}
			if strings.Contains(mustJSON(e), long) {
				t.Errorf("error echoes the input")
			}
		})
	}
}

// TestPlatformErrorsReachTheClient: the sandbox, told to fail for a user,
// answers in WeChat's format and the client sees the mapped reason.
func TestPlatformErrorsReachTheClient(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	tests := []struct {
		fault      string
		wantStatus int
		wantReason string
	}{
		{"rate_limited", 429, "PLATFORM_RATE_LIMITED"},
		{"busy", 503, "PLATFORM_UNAVAILABLE"},
		{"blocked", 403, "USER_BLOCKED"},
		{"unavailable_http", 503, "PLATFORM_UNAVAILABLE"},
		{"malformed", 503, "PLATFORM_UNAVAILABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			user := "faulty-" + tt.fault
			// Count 2: a transient answer (busy, HTTP 503) is retried once
			// (upstream.max_retries), so it must answer twice to reach the
			// client.
			req, _ := http.NewRequest("POST", in.sandbox+"/sandbox/faults", strings.NewReader(`{"platform":"wechat","user":"`+user+`","error":"`+tt.fault+`","count":2}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("set fault: %v %v", err, resp)
			}
			resp.Body.Close()
			code := in.mintCode(t, appA, user)
			status, hdr, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
			assertError(t, status, e, tt.wantStatus, tt.wantReason)
			if tt.wantStatus == 429 && hdr.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		})
	}
}

func assertError(t *testing.T, status int, body map[string]any, wantStatus int, wantReason string) {
	t.Helper()
	if status != wantStatus || body["reason"] != wantReason || body["code"] != float64(wantStatus) {
		t.Fatalf("got %d %v, want %d %s", status, body, wantStatus, wantReason)
	}
	if m, _ := body["message"].(string); m == "" {
		t.Errorf("error without a message: %v", body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
