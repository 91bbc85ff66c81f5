package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/provider"
	baiduprovider "github.com/mpauth/mpauth/internal/provider/baidu"
)

// Baidu test apps: A and B share a union scope, C has another, D has none.
var bdApps = []provider.App{
	{Platform: provider.Baidu, AppID: "4fecoAqgCIUtzIyA4FAPgoyrc4oUc25a", Secret: "bd-secret-a", UnionScope: "entity-1"},
	{Platform: provider.Baidu, AppID: "4fecoAqgCIUtzIyA4FAPgoyrc4oUc25b", Secret: "bd-secret-b", UnionScope: "entity-1"},
	{Platform: provider.Baidu, AppID: "4fecoAqgCIUtzIyA4FAPgoyrc4oUc25c", Secret: "bd-secret-c", UnionScope: "entity-2"},
	{Platform: provider.Baidu, AppID: "4fecoAqgCIUtzIyA4FAPgoyrc4oUc25d", Secret: "bd-secret-d"},
}

var bdA, bdB, bdC, bdD = bdApps[0], bdApps[1], bdApps[2], bdApps[3]

var (
	bdOpenIDRe  = regexp.MustCompile(`^[A-Za-z0-9]{26}$`)
	bdUnionIDRe = regexp.MustCompile(`^[A-Za-z0-9]{23}$`)
	bdHexRe     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	bdTokenRe   = regexp.MustCompile(`^24\.[0-9a-f]{32}\.2592000\.[0-9]+\.[0-9]+-[0-9]+$`)
)

type bdClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *bdClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *bdClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type bdEnv struct {
	sb    *Sandbox
	url   string
	clock *bdClock
}

func newBdEnv(t *testing.T, opts ...Option) *bdEnv {
	t.Helper()
	c := &bdClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	sb := New(bdApps, append([]Option{WithClock(c.Now)}, opts...)...)
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	return &bdEnv{sb: sb, url: ts.URL, clock: c}
}

func (e *bdEnv) mint(t *testing.T, app provider.App, user string) string {
	t.Helper()
	code, err := MintCode(context.Background(), e.url, provider.Baidu, app.AppID, user)
	if err != nil {
		t.Fatalf("MintCode(%s, %s): %v", app.AppID, user, err)
	}
	return code
}

// bdAnswer is a decoded body; the map keeps "absent" apart from "empty".
type bdAnswer struct {
	status int
	raw    string
	fields map[string]any
}

func (a bdAnswer) str(k string) string { s, _ := a.fields[k].(string); return s }

func (a bdAnswer) num(k string) (int, bool) {
	v, ok := a.fields[k].(float64)
	return int(v), ok
}

func bdDo(t *testing.T, req *http.Request) bdAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNotFound && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	a := bdAnswer{status: resp.StatusCode, raw: string(b)}
	_ = json.Unmarshal(b, &a.fields)
	return a
}

// post sends form as the body of a POST to path (with an optional query).
func (e *bdEnv) post(t *testing.T, path string, query, form url.Values) bdAnswer {
	t.Helper()
	u := e.url + path
	if query != nil {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return bdDo(t, req)
}

func bdLoginForm(app provider.App, code string) url.Values {
	return url.Values{"code": {code}, "client_id": {app.AppID}, "sk": {app.Secret}}
}

func bdTokenForm(app provider.App) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "client_secret": {app.Secret}, "scope": {"smartapp_snsapi_base"}}
}

func (e *bdEnv) exchange(t *testing.T, app provider.App, code string) bdAnswer {
	t.Helper()
	return e.post(t, "/oauth/jscode2sessionkey", nil, bdLoginForm(app, code))
}

func (e *bdEnv) login(t *testing.T, app provider.App, user string) bdAnswer {
	t.Helper()
	a := e.exchange(t, app, e.mint(t, app, user))
	if a.status != http.StatusOK || a.str("openid") == "" {
		t.Fatalf("login %s/%s: %d %s", app.AppID, user, a.status, a.raw)
	}
	return a
}

func (e *bdEnv) token(t *testing.T, app provider.App) string {
	t.Helper()
	a := e.post(t, "/oauth/2.0/token", nil, bdTokenForm(app))
	if a.status != http.StatusOK || a.str("access_token") == "" {
		t.Fatalf("token %s: %d %s", app.AppID, a.status, a.raw)
	}
	return a.str("access_token")
}

func (e *bdEnv) unionID(t *testing.T, token, openID string) bdAnswer {
	t.Helper()
	return e.post(t, "/rest/2.0/smartapp/getunionid", url.Values{"access_token": {token}}, url.Values{"openid": {openID}})
}

func (e *bdEnv) setFault(t *testing.T, f FaultSpec) {
	t.Helper()
	f.Platform = provider.Baidu
	b, _ := json.Marshal(f)
	resp, err := http.Post(e.url+"/sandbox/faults", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("setting fault %+v: %s", f, resp.Status)
	}
}

// checkBdError asserts a jscode2sessionkey error: HTTP 200, the errno and
// the OAuth name, no success field.
func checkBdError(t *testing.T, a bdAnswer, errno int, name string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Errorf("status = %d, want 200: %s", a.status, a.raw)
	}
	if got, ok := a.num("errno"); !ok || got != errno {
		t.Errorf("errno = %v, want %d: %s", a.fields["errno"], errno, a.raw)
	}
	if a.str("error") != name {
		t.Errorf("error = %q, want %q", a.str("error"), name)
	}
	if _, ok := a.fields["error_description"]; !ok {
		t.Errorf("no error_description: %s", a.raw)
	}
	for _, k := range []string{"openid", "session_key"} {
		if _, ok := a.fields[k]; ok {
			t.Errorf("error answer has %q: %s", k, a.raw)
		}
	}
}

func TestBaidu_SessionKeyAnswersTheDocumentedShape(t *testing.T) {
	e := newBdEnv(t)
	code := e.mint(t, bdA, "alice")
	if !bdHexRe.MatchString(code) {
		t.Errorf("code %q: want 32 hex characters", code)
	}
	a := e.exchange(t, bdA, code)
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	// Exactly openid and session_key: no status field, no unionid.
	if len(a.fields) != 2 {
		t.Errorf("fields %v, want exactly openid and session_key", a.raw)
	}
	if !bdOpenIDRe.MatchString(a.str("openid")) {
		t.Errorf("openid %q does not look like Baidu's", a.str("openid"))
	}
	sk := a.str("session_key")
	if raw, err := base64.StdEncoding.DecodeString(sk); !bdHexRe.MatchString(sk) || err != nil || len(raw) != 24 {
		t.Errorf("session_key %q: want 32 hex characters that are base64 of 24 bytes", sk)
	}
	if got, ok := e.sb.SessionKey(bdA.AppID, "alice"); !ok || got != sk {
		t.Errorf("SessionKey = %q, %v; want %q", got, ok, sk)
	}
}

func TestBaidu_ParametersInTheQueryAreAcceptedToo(t *testing.T) {
	e := newBdEnv(t)
	// easy-smartprogram POSTs with the parameters in the query; others GET.
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		q := bdLoginForm(bdA, e.mint(t, bdA, "alice"))
		req, _ := http.NewRequest(method, e.url+"/oauth/jscode2sessionkey?"+q.Encode(), nil)
		if a := bdDo(t, req); a.status != http.StatusOK || a.str("openid") == "" {
			t.Errorf("%s with a query: %d %s", method, a.status, a.raw)
		}
	}
}

func TestBaidu_IdentitiesAreStableAndScoped(t *testing.T) {
	e := newBdEnv(t)
	other := newBdEnv(t) // a second instance, as after a restart
	openID := func(e *bdEnv, app provider.App, user string) string { return e.login(t, app, user).str("openid") }
	union := func(e *bdEnv, app provider.App, user string) string {
		a := e.unionID(t, e.token(t, app), openID(e, app, user))
		d, _ := a.fields["data"].(map[string]any)
		u, _ := d["unionid"].(string)
		if !bdUnionIDRe.MatchString(u) {
			t.Fatalf("unionid %q: %s", u, a.raw)
		}
		return u
	}
	if openID(e, bdA, "alice") != openID(other, bdA, "alice") {
		t.Error("openid differs across instances")
	}
	if openID(e, bdA, "alice") == openID(e, bdB, "alice") {
		t.Error("openid is the same on two apps")
	}
	if openID(e, bdA, "alice") == openID(e, bdA, "bob") {
		t.Error("two users share an openid")
	}
	if union(e, bdA, "alice") != union(other, bdB, "alice") {
		t.Error("unionid differs between apps of one scope")
	}
	if union(e, bdA, "alice") == union(e, bdC, "alice") {
		t.Error("unionid is the same in two scopes")
	}
	if union(e, bdA, "alice") == union(e, bdA, "bob") {
		t.Error("two users share a unionid")
	}
	if union(e, bdD, "alice") != union(e, bdD, "alice") || union(e, bdD, "alice") == union(e, bdA, "alice") {
		t.Error("an app without union_scope must be its own stable scope")
	}
}

func TestBaidu_SessionKeyErrors(t *testing.T) {
	e := newBdEnv(t)
	tests := []struct {
		name     string
		form     func() url.Values
		errno    int
		errName  string
		descPart string
	}{
		{"no code", func() url.Values { f := bdLoginForm(bdA, ""); return f }, 10010100, "parameter is invalid", "Code2SessionKeyParam.Code'"},
		{"no client_id (the documented example)", func() url.Values {
			f := bdLoginForm(bdA, e.mint(t, bdA, "alice"))
			f.Del("client_id")
			return f
		}, 10010100, "parameter is invalid", "Key: 'Code2SessionKeyParam.ClientID' Error:Field validation for 'ClientID' failed on the 'required' tag"},
		{"no sk", func() url.Values {
			f := bdLoginForm(bdA, e.mint(t, bdA, "alice"))
			f.Del("sk")
			return f
		}, 10010100, "parameter is invalid", "'SK'"},
		{"unknown client_id", func() url.Values {
			f := bdLoginForm(bdA, e.mint(t, bdA, "alice"))
			f.Set("client_id", "nope")
			return f
		}, 10010101, "invalid_client", "unknown client id"},
		{"wrong sk", func() url.Values {
			f := bdLoginForm(bdA, e.mint(t, bdA, "alice"))
			f.Set("sk", "wrong")
			return f
		}, 10010101, "invalid_client", "Client authentication failed"},
		{"unknown code", func() url.Values { return bdLoginForm(bdA, "0123456789abcdef0123456789abcdef") }, 10010102, "invalid_grant", "Invalid authorization code: 0123456789abcdef"},
		{"code of another app", func() url.Values { return bdLoginForm(bdA, e.mint(t, bdB, "alice")) }, 10010102, "invalid_grant", "Invalid authorization code"},
		{"reused code", func() url.Values {
			code := e.mint(t, bdA, "alice")
			e.exchange(t, bdA, code)
			return bdLoginForm(bdA, code)
		}, 10010102, "invalid_grant", "Invalid authorization code"},
		{"expired code", func() url.Values {
			code := e.mint(t, bdA, "alice")
			e.clock.Advance(DefaultCodeTTL)
			return bdLoginForm(bdA, code)
		}, 10010102, "invalid_grant", "Invalid authorization code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.post(t, "/oauth/jscode2sessionkey", nil, tt.form())
			checkBdError(t, a, tt.errno, tt.errName)
			if !strings.Contains(a.str("error_description"), tt.descPart) {
				t.Errorf("error_description = %q, want it to contain %q", a.str("error_description"), tt.descPart)
			}
		})
	}
}

func TestBaidu_CodeOfAnotherAppStaysValidForItsApp(t *testing.T) {
	e := newBdEnv(t)
	code := e.mint(t, bdB, "alice")
	checkBdError(t, e.exchange(t, bdA, code), 10010102, "invalid_grant")
	if a := e.exchange(t, bdB, code); a.str("openid") == "" {
		t.Errorf("the code no longer works for its app: %s", a.raw)
	}
}

func TestBaidu_FaultsAnswerTheErrorThenRecover(t *testing.T) {
	tests := []struct {
		fault   string
		check   func(t *testing.T, a bdAnswer)
		wantErr string
	}{
		{FaultBusy, func(t *testing.T, a bdAnswer) { checkBdError(t, a, 10010500, "server internal error") }, ""},
		{FaultBlocked, func(t *testing.T, a bdAnswer) { checkBdError(t, a, 10010103, "access_denied") }, ""},
		{FaultRateLimited, func(t *testing.T, a bdAnswer) {
			if n, _ := a.num("error_code"); a.status != 200 || n != 18 || a.str("error_msg") != "Open api qps request limit reached" {
				t.Errorf("answer %d %s, want the gateway's error_code 18", a.status, a.raw)
			}
		}, ""},
		{FaultUnavailableHTTP, func(t *testing.T, a bdAnswer) {
			if a.status != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", a.status)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			e := newBdEnv(t)
			e.setFault(t, FaultSpec{User: "alice", Error: tt.fault, Count: 1})
			code := e.mint(t, bdA, "alice")
			if tt.fault == FaultUnavailableHTTP {
				resp, err := http.PostForm(e.url+"/oauth/jscode2sessionkey", bdLoginForm(bdA, code))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				tt.check(t, bdAnswer{status: resp.StatusCode})
			} else {
				tt.check(t, e.exchange(t, bdA, code))
			}
			// The fault answered before the code was spent: it works now.
			if a := e.exchange(t, bdA, code); a.str("openid") == "" {
				t.Errorf("after the fault: %s", a.raw)
			}
		})
	}
}

func TestBaidu_TokenEndpoint(t *testing.T) {
	e := newBdEnv(t)
	a := e.post(t, "/oauth/2.0/token", nil, bdTokenForm(bdA))
	if a.status != http.StatusOK || !bdTokenRe.MatchString(a.str("access_token")) {
		t.Fatalf("token answer %d %s", a.status, a.raw)
	}
	if n, _ := a.num("expires_in"); n != 2592000 {
		t.Errorf("expires_in = %d, want 2592000", n)
	}
	for _, k := range []string{"refresh_token", "scope", "session_key", "session_secret"} {
		if _, ok := a.fields[k]; !ok {
			t.Errorf("answer lacks %q: %s", k, a.raw)
		}
	}
	// GET with a query works too (§5.4), and issues another token.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/oauth/2.0/token?"+bdTokenForm(bdA).Encode(), nil)
	if b := bdDo(t, req); b.status != http.StatusOK || b.str("access_token") == a.str("access_token") {
		t.Errorf("GET: %d %s", b.status, b.raw)
	}

	tests := []struct {
		name   string
		change func(url.Values)
		error  string
	}{
		{"no grant_type", func(f url.Values) { f.Del("grant_type") }, "invalid_request"},
		{"no client_secret", func(f url.Values) { f.Del("client_secret") }, "invalid_request"},
		{"wrong grant_type", func(f url.Values) { f.Set("grant_type", "authorization_code") }, "unsupported_grant_type"},
		{"unknown client_id", func(f url.Values) { f.Set("client_id", "nope") }, "invalid_client"},
		{"wrong secret", func(f url.Values) { f.Set("client_secret", "nope") }, "invalid_client"},
		{"no scope", func(f url.Values) { f.Del("scope") }, "invalid_scope"},
		{"another scope", func(f url.Values) { f.Set("scope", "basic") }, "invalid_scope"},
		{"a WeChat app", func(f url.Values) { f.Set("client_id", "wxaaaaaaaaaaaaaaaa") }, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := bdTokenForm(bdA)
			tt.change(f)
			a := e.post(t, "/oauth/2.0/token", nil, f)
			if a.status != http.StatusBadRequest || a.str("error") != tt.error || a.str("error_description") == "" {
				t.Errorf("answer %d %s, want 400 %s", a.status, a.raw, tt.error)
			}
			if _, ok := a.fields["access_token"]; ok {
				t.Errorf("error answer with a token: %s", a.raw)
			}
		})
	}
}

func TestBaidu_GetUnionIDChecksTheAccessToken(t *testing.T) {
	e := newBdEnv(t)
	openID := e.login(t, bdA, "alice").str("openid")
	tok := e.token(t, bdA)
	old := e.token(t, bdA) // an earlier token stays valid

	gateway := func(t *testing.T, a bdAnswer, code int, msg string) {
		t.Helper()
		if n, _ := a.num("error_code"); a.status != 200 || n != code || a.str("error_msg") != msg {
			t.Errorf("answer %d %s, want error_code %d", a.status, a.raw, code)
		}
	}
	param := func(t *testing.T, a bdAnswer) {
		t.Helper()
		if n, _ := a.num("errno"); a.status != 200 || n != 400 || a.str("errmsg") == "" {
			t.Errorf("answer %d %s, want errno 400", a.status, a.raw)
		}
	}

	a := e.unionID(t, tok, openID)
	if n, ok := a.num("errno"); !ok || n != 0 || a.str("errmsg") != "succ" || a.str("request_id") == "" {
		t.Errorf("success %s: want errno 0, errmsg succ, a request_id", a.raw)
	}
	if _, ok := a.num("timestamp"); !ok {
		t.Errorf("no timestamp: %s", a.raw)
	}
	if b := e.unionID(t, old, openID); !strings.Contains(b.raw, `"unionid"`) {
		t.Errorf("the earlier token was rejected: %s", b.raw)
	}

	t.Run("no token", func(t *testing.T) {
		gateway(t, e.post(t, "/rest/2.0/smartapp/getunionid", nil, url.Values{"openid": {openID}}), 110, "Access token invalid or no longer valid")
	})
	t.Run("unknown token", func(t *testing.T) {
		gateway(t, e.unionID(t, "24.nope", openID), 110, "Access token invalid or no longer valid")
	})
	t.Run("no openid", func(t *testing.T) { param(t, e.unionID(t, tok, "")) })
	t.Run("unknown openid", func(t *testing.T) { param(t, e.unionID(t, tok, "l214zFqNrEuIEnp6m7Y01sw8yj")) })
	t.Run("openid of another app", func(t *testing.T) {
		param(t, e.unionID(t, e.token(t, bdC), openID))
	})
	t.Run("other OpenAPI paths", func(t *testing.T) {
		gateway(t, e.post(t, "/rest/2.0/smartapp/nope", nil, nil), 3, "Unsupported openapi method")
	})
	t.Run("expired after a month", func(t *testing.T) {
		e.clock.Advance(30*24*time.Hour + time.Second)
		gateway(t, e.unionID(t, tok, openID), 111, "Access token expired")
		fresh := e.token(t, bdA)
		if b := e.unionID(t, fresh, openID); !strings.Contains(b.raw, `"unionid"`) {
			t.Errorf("a fresh token after expiry: %s", b.raw)
		}
		// Long expired tokens are forgotten: invalid.
		e.clock.Advance(bdTokenMemory + time.Minute)
		e.token(t, bdA) // runs the garbage collection
		gateway(t, e.unionID(t, tok, openID), 110, "Access token invalid or no longer valid")
	})
}

func TestBaidu_ExpireTokensControlRoute(t *testing.T) {
	e := newBdEnv(t)
	openA := e.login(t, bdA, "alice").str("openid")
	openC := e.login(t, bdC, "alice").str("openid")
	tokA1, tokA2, tokC := e.token(t, bdA), e.token(t, bdA), e.token(t, bdC)

	n, err := ExpireBaiduTokens(context.Background(), e.url, bdA.AppID)
	if err != nil || n != 2 {
		t.Fatalf("ExpireBaiduTokens(A) = %d, %v; want 2", n, err)
	}
	for _, tok := range []string{tokA1, tokA2} {
		if a := e.unionID(t, tok, openA); !strings.Contains(a.raw, `"error_code":111`) {
			t.Errorf("expired token answered %s", a.raw)
		}
	}
	if a := e.unionID(t, tokC, openC); !strings.Contains(a.raw, `"unionid"`) {
		t.Errorf("another app's token was expired: %s", a.raw)
	}
	// An empty body expires every app's tokens.
	resp, err := http.Post(e.url+"/sandbox/baidu/expire-tokens", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Expired int }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || out.Expired != 1 {
		t.Errorf("expire all: %s, expired %d; want 1", resp.Status, out.Expired)
	}
	if _, err := ExpireBaiduTokens(context.Background(), e.url, "wxaaaaaaaaaaaaaaaa"); err == nil || !strings.Contains(err.Error(), "app_id") {
		t.Errorf("unknown app: err = %v, want an app_id error", err)
	}
	resp, err = http.Post(e.url+"/sandbox/baidu/expire-tokens", "application/json", strings.NewReader(`{"appid":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown field: %s, want 400", resp.Status)
	}
}

// bdTokens is a tiny provider.AccessTokens: one token per app, fetched on a
// miss (forced after an Invalidate), counting fetches.
type bdTokens struct {
	mu      sync.Mutex
	tokens  map[string]string
	force   map[string]bool
	fetches int
	forced  int
}

func (b *bdTokens) Token(ctx context.Context, app provider.App, f provider.TokenFetcher) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens == nil {
		b.tokens, b.force = map[string]string{}, map[string]bool{}
	}
	if t, ok := b.tokens[app.AppID]; ok {
		return t, nil
	}
	force := b.force[app.AppID]
	t, err := f.FetchAccessToken(ctx, force)
	if err != nil {
		return "", err
	}
	b.fetches++
	if force {
		b.forced++
	}
	b.tokens[app.AppID] = t.Token
	delete(b.force, app.AppID)
	return t.Token, nil
}

func (b *bdTokens) Invalidate(_ context.Context, app provider.App, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens[app.AppID] == token {
		delete(b.tokens, app.AppID)
		b.force[app.AppID] = true
	}
	return nil
}

func (b *bdTokens) counts() (int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fetches, b.forced
}

type bdProvider interface {
	provider.Provider
	provider.TokenFetcher
	provider.UserDataDecrypter
}

func (e *bdEnv) provider(t *testing.T, app provider.App, tokens provider.AccessTokens) bdProvider {
	t.Helper()
	app.Endpoint = e.url
	app.Timeout = 2 * time.Second
	p, err := baiduprovider.New(app, provider.Env{Tokens: tokens})
	if err != nil {
		t.Fatalf("baidu.New: %v", err)
	}
	return p.(bdProvider)
}

func bdLogin(t *testing.T, p provider.Provider, code string) (*provider.Identity, error) {
	t.Helper()
	return p.Exchange(context.Background(), provider.Credentials{Code: code})
}

func TestBaidu_ProviderLogsInWithUnionID(t *testing.T) {
	e := newBdEnv(t)
	tokens := &bdTokens{}
	pA, pB, pD := e.provider(t, bdA, tokens), e.provider(t, bdB, tokens), e.provider(t, bdD, tokens)

	idA, err := bdLogin(t, pA, e.mint(t, bdA, "alice"))
	if err != nil {
		t.Fatalf("login A: %v", err)
	}
	if !bdOpenIDRe.MatchString(idA.OpenID) || !bdUnionIDRe.MatchString(idA.UnionID) || idA.Platform != provider.Baidu || idA.AppID != bdA.AppID {
		t.Errorf("identity %+v", idA)
	}
	if sk, _ := e.sb.SessionKey(bdA.AppID, "alice"); idA.SessionKey != sk || sk == "" {
		t.Errorf("SessionKey = %q, want the sandbox's %q", idA.SessionKey, sk)
	}
	idB, err := bdLogin(t, pB, e.mint(t, bdB, "alice"))
	if err != nil {
		t.Fatalf("login B: %v", err)
	}
	if idB.UnionID != idA.UnionID || idB.OpenID == idA.OpenID {
		t.Errorf("A %+v and B %+v: want one unionid, two openids", idA, idB)
	}
	// Without a union scope the provider never asks for a unionid.
	idD, err := bdLogin(t, pD, e.mint(t, bdD, "alice"))
	if err != nil || idD.UnionID != "" {
		t.Errorf("login D = %+v, %v; want no unionid", idD, err)
	}
	if f, _ := tokens.counts(); f != 2 {
		t.Errorf("%d token fetches, want 2 (one per app with a union scope)", f)
	}
	// The next login reuses the token.
	if _, err := bdLogin(t, pA, e.mint(t, bdA, "bob")); err != nil {
		t.Fatal(err)
	}
	if f, _ := tokens.counts(); f != 2 {
		t.Errorf("%d token fetches after a second login, want 2", f)
	}
}

func TestBaidu_ProviderErrorsFromTheSandbox(t *testing.T) {
	e := newBdEnv(t)
	tokens := &bdTokens{}
	p := e.provider(t, bdA, tokens)

	code := e.mint(t, bdA, "alice")
	if _, err := bdLogin(t, p, code); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		code func() string
		p    provider.Provider
		kind error
	}{
		// Baidu answers a reused code like an invalid one (UNCONFIRMED).
		{"reused code", func() string { return code }, p, provider.ErrCodeInvalid},
		{"expired code", func() string { c := e.mint(t, bdA, "alice"); e.clock.Advance(DefaultCodeTTL); return c }, p, provider.ErrCodeInvalid},
		{"code of another app", func() string { return e.mint(t, bdB, "alice") }, p, provider.ErrCodeInvalid},
		{"wrong secret", func() string { return e.mint(t, bdA, "alice") }, e.provider(t, provider.App{Platform: provider.Baidu, AppID: bdA.AppID, Secret: "wrong", UnionScope: "entity-1"}, tokens), provider.ErrMisconfigured},
		{"unknown app", func() string { return e.mint(t, bdA, "alice") }, e.provider(t, provider.App{Platform: provider.Baidu, AppID: "unknown-app-key", Secret: "x"}, tokens), provider.ErrMisconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.code()
			id, err := bdLogin(t, tt.p, c)
			if !errors.Is(err, tt.kind) || id != nil {
				t.Fatalf("login = %+v, %v; want %v", id, err, tt.kind)
			}
			// Baidu quotes the code in invalid_grant; the provider must not.
			if strings.Contains(err.Error(), c) {
				t.Errorf("error quotes the code: %v", err)
			}
		})
	}
}

func TestBaidu_ProviderSeesFaultsThenRecovers(t *testing.T) {
	tests := []struct {
		fault string
		kind  error
	}{
		{FaultBusy, provider.ErrUnavailable},
		{FaultRateLimited, provider.ErrRateLimited},
		{FaultBlocked, provider.ErrUserBlocked},
		{FaultUnavailableHTTP, provider.ErrUnavailable},
		{FaultMalformed, provider.ErrUnavailable},
		{FaultTimeout, provider.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			e := newBdEnv(t)
			app := bdA
			app.Endpoint, app.Timeout = e.url, 300*time.Millisecond
			p, err := baiduprovider.New(app, provider.Env{Tokens: &bdTokens{}})
			if err != nil {
				t.Fatal(err)
			}
			e.setFault(t, FaultSpec{User: "alice", Error: tt.fault, Count: 1})
			code := e.mint(t, bdA, "alice")
			id, err := bdLogin(t, p, code)
			if !errors.Is(err, tt.kind) || id != nil {
				t.Fatalf("login = %+v, %v; want %v", id, err, tt.kind)
			}
			if strings.Contains(err.Error(), code) {
				t.Errorf("error quotes the code: %v", err)
			}
			id, err = bdLogin(t, p, code)
			if err != nil || id.UnionID == "" {
				t.Errorf("after the fault: %+v, %v", id, err)
			}
		})
	}
}

func TestBaidu_ProviderRefreshesAnExpiredToken(t *testing.T) {
	tests := []struct {
		name   string
		expire func(t *testing.T, e *bdEnv)
	}{
		{"expired by the control route", func(t *testing.T, e *bdEnv) {
			if n, err := ExpireBaiduTokens(context.Background(), e.url, ""); err != nil || n != 1 {
				t.Fatalf("ExpireBaiduTokens = %d, %v; want 1", n, err)
			}
		}},
		{"expired by time", func(t *testing.T, e *bdEnv) { e.clock.Advance(31 * 24 * time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newBdEnv(t)
			tokens := &bdTokens{}
			p := e.provider(t, bdA, tokens)
			first, err := bdLogin(t, p, e.mint(t, bdA, "alice"))
			if err != nil {
				t.Fatal(err)
			}
			tt.expire(t, e)
			again, err := bdLogin(t, p, e.mint(t, bdA, "alice"))
			if err != nil {
				t.Fatalf("login after expiry: %v", err)
			}
			if again.UnionID != first.UnionID {
				t.Errorf("unionid changed: %q then %q", first.UnionID, again.UnionID)
			}
			if f, forced := tokens.counts(); f != 2 || forced != 1 {
				t.Errorf("%d fetches (%d forced), want 2 (1 forced)", f, forced)
			}
		})
	}
}

func (e *bdEnv) seal(t *testing.T, app provider.App, user string, doc UserDataDoc) (provider.EncryptedData, bdAnswer) {
	t.Helper()
	b, _ := json.Marshal(SealRequest{Platform: provider.Baidu, AppID: app.AppID, User: user, UserDataDoc: doc})
	req, _ := http.NewRequest(http.MethodPost, e.url+"/sandbox/user-data", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	a := bdDo(t, req)
	return provider.EncryptedData{Data: a.str("encrypted_data"), IV: a.str("iv")}, a
}

func TestBaidu_SealedUserDataDecryptsWithTheProvider(t *testing.T) {
	e := newBdEnv(t)
	p := e.provider(t, bdA, &bdTokens{})
	id, err := bdLogin(t, p, e.mint(t, bdA, "alice"))
	if err != nil {
		t.Fatal(err)
	}

	d, a := e.seal(t, bdA, "alice", UserDataDoc{Kind: "phone", Phone: "13800138000"})
	if a.status != http.StatusOK || a.str("sign") != "" {
		t.Fatalf("seal phone: %d %s", a.status, a.raw)
	}
	phone, err := p.DecryptPhone(id.SessionKey, d)
	if err != nil || *phone != (provider.Phone{Number: "13800138000", PureNumber: "13800138000"}) {
		t.Errorf("DecryptPhone = %+v, %v", phone, err)
	}
	// The same data through the documented algorithm, by hand: the layout
	// and the AppKey trailer.
	content, err := baiduprovider.Decrypt(id.SessionKey, bdA.AppID, d)
	if err != nil || string(content) != `{"mobile":"13800138000"}` {
		t.Errorf("content = %s, %v", content, err)
	}

	d, _ = e.seal(t, bdA, "alice", UserDataDoc{Kind: "profile", Nickname: "小度", AvatarURL: "https://example.com/a.png"})
	profile, err := p.DecryptProfile(id.SessionKey, d)
	if err != nil || *profile != (provider.Profile{Nickname: "小度", AvatarURL: "https://example.com/a.png"}) {
		t.Errorf("DecryptProfile = %+v, %v", profile, err)
	}
	content, _ = baiduprovider.Decrypt(id.SessionKey, bdA.AppID, d)
	var doc map[string]any
	json.Unmarshal(content, &doc)
	if doc["openid"] != id.OpenID {
		t.Errorf("profile openid = %v, want %s", doc["openid"], id.OpenID)
	}
	d, _ = e.seal(t, bdA, "alice", UserDataDoc{Kind: "profile"})
	if profile, err := p.DecryptProfile(id.SessionKey, d); err != nil || profile.Nickname != "baidu_user" {
		t.Errorf("default profile = %+v, %v", profile, err)
	}

	d, _ = e.seal(t, bdA, "alice", UserDataDoc{Kind: "phone", Phone: "13800138000", WatermarkAppID: bdB.AppID})
	if _, err := p.DecryptPhone(id.SessionKey, d); !errors.Is(err, provider.ErrWatermark) {
		t.Errorf("another app's data: err = %v, want ErrWatermark", err)
	}

	d, _ = e.seal(t, bdA, "alice", UserDataDoc{Kind: "phone", Phone: "13800138000"})
	if _, err := bdLogin(t, p, e.mint(t, bdA, "alice")); err != nil { // rotates the session key
		t.Fatal(err)
	}
	if _, err := p.DecryptPhone(id.SessionKey, d); err != nil {
		t.Errorf("data sealed before the new login still opens with the old key: %v", err)
	}
	newID, _ := bdLogin(t, p, e.mint(t, bdA, "alice"))
	if _, err := p.DecryptPhone(newID.SessionKey, d); !errors.Is(err, provider.ErrSessionKeyStale) {
		t.Errorf("old data with the new key: err = %v, want ErrSessionKeyStale", err)
	}

	for _, tt := range []struct {
		name string
		doc  UserDataDoc
	}{
		{"foreign country code", UserDataDoc{Kind: "phone", Phone: "61234567", CountryCode: "852"}},
		{"not digits", UserDataDoc{Kind: "phone", Phone: "+86 138"}},
	} {
		if _, a := e.seal(t, bdA, "alice", tt.doc); a.status != http.StatusBadRequest || a.str("error") == "" {
			t.Errorf("%s: %d %s, want 400", tt.name, a.status, a.raw)
		}
	}
	if _, a := e.seal(t, bdA, "nobody", UserDataDoc{Kind: "phone", Phone: "13800138000"}); a.status != http.StatusBadRequest {
		t.Errorf("user who never logged in: %d %s, want 400", a.status, a.raw)
	}
}

type bdSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *bdSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *bdSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestBaidu_LogsNoSecretsCodesKeysOrTokens(t *testing.T) {
	var buf bdSyncBuffer
	e := newBdEnv(t, WithLogger(log.NewStdLogger(&buf)))
	code := e.mint(t, bdA, "alice")
	a := e.exchange(t, bdA, code)
	e.exchange(t, bdA, code) // reuse
	bad := bdLoginForm(bdA, e.mint(t, bdA, "alice"))
	bad.Set("sk", "wrong-sk-value")
	e.post(t, "/oauth/jscode2sessionkey", nil, bad)
	tok := e.token(t, bdA)
	e.unionID(t, tok, a.str("openid"))
	e.unionID(t, "24.bogus-token-value", a.str("openid"))
	wrong := bdTokenForm(bdA)
	wrong.Set("client_secret", "wrong-secret-value")
	e.post(t, "/oauth/2.0/token", nil, wrong)
	e.setFault(t, FaultSpec{User: "alice", Error: FaultBusy, Count: 1})
	code2 := e.mint(t, bdA, "alice")
	e.exchange(t, bdA, code2)

	out := buf.String()
	if !strings.Contains(out, "user=alice") || !strings.Contains(out, "getunionid") {
		t.Fatalf("the test logger saw too little: %q", out)
	}
	for _, secret := range []string{bdA.Secret, "wrong-sk-value", "wrong-secret-value", code, code2, bad.Get("code"), a.str("session_key"), tok, "bogus-token-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

func TestBaidu_ConcurrentLoginsWithUnionIDs(t *testing.T) {
	e := newBdEnv(t)
	tokens := &bdTokens{}
	p := e.provider(t, bdA, tokens)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"alice", "bob"}[i%2]
			code, err := MintCode(context.Background(), e.url, provider.Baidu, bdA.AppID, user)
			if err != nil {
				errs <- err
				return
			}
			id, err := p.Exchange(context.Background(), provider.Credentials{Code: code})
			if err == nil && id.UnionID == "" {
				err = errors.New("no unionid")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
