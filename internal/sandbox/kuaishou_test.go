package sandbox

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/provider"
	ksprovider "github.com/mpauth/mpauth/internal/provider/kuaishou"
)

// Kuaishou test apps: A and B share a union scope, D has none; W is a
// WeChat app, to show codes do not cross platforms.
var ksApps = []provider.App{
	{Platform: provider.Kuaishou, AppID: "ks100000000000000001", Secret: "ks-secret-a", UnionScope: "ks-open-1"},
	{Platform: provider.Kuaishou, AppID: "ks100000000000000002", Secret: "ks-secret-b", UnionScope: "ks-open-1"},
	{Platform: provider.Kuaishou, AppID: "ks100000000000000004", Secret: "ks-secret-d"},
	{Platform: provider.WeChat, AppID: "wxaaaaaaaaaaaaaaaa", Secret: "secret-a"},
}

var ksA, ksB, ksD, ksW = ksApps[0], ksApps[1], ksApps[2], ksApps[3]

var (
	ksCodeRe = regexp.MustCompile(`^[0-9A-F]{64}$`)
	ksIDRe   = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func newKSEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	sb := New(ksApps, append([]Option{WithClock(c.Now)}, opts...)...)
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	return &env{sb: sb, url: ts.URL, clock: c}
}

// ksCall posts form to path as the documented form body.
func (e *env) ksCall(t *testing.T, path string, form url.Values) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func ksForm(app provider.App, code string) url.Values {
	return url.Values{"app_id": {app.AppID}, "app_secret": {app.Secret}, "js_code": {code}}
}

func (e *env) ksExchange(t *testing.T, app provider.App, code string) answer {
	t.Helper()
	return e.ksCall(t, "/oauth2/mp/code2session", ksForm(app, code))
}

func (a answer) result() (int, bool) {
	v, ok := a.fields["result"].(float64)
	return int(v), ok
}

// checkKSError asserts a Kuaishou business error: HTTP 200 JSON with the
// result, the OAuth error name and a message, and nothing else.
func checkKSError(t *testing.T, a answer, result int, name string) {
	t.Helper()
	if a.status != http.StatusOK || !strings.HasPrefix(a.contentType, "application/json") {
		t.Errorf("got HTTP %d %q, want 200 JSON", a.status, a.contentType)
	}
	if got, ok := a.result(); !ok || got != result {
		t.Errorf("result = %v, want %d (body %s)", a.fields["result"], result, a.raw)
	}
	if a.str("error") != name || a.str("error_msg") == "" {
		t.Errorf("error %q error_msg %q, want %q and a message", a.str("error"), a.str("error_msg"), name)
	}
	for _, k := range []string{"open_id", "session_key", "union_id"} {
		if _, has := a.fields[k]; has {
			t.Errorf("error answer has %s: %s", k, a.raw)
		}
	}
}

func TestKuaishou_Code2SessionAnswersTheDocumentedShape(t *testing.T) {
	e := newKSEnv(t)
	for _, tt := range []struct {
		app       provider.App
		wantUnion bool
	}{{ksA, true}, {ksD, false}} {
		t.Run(tt.app.AppID, func(t *testing.T) {
			code := e.mint(t, tt.app, "alice")
			if !ksCodeRe.MatchString(code) {
				t.Errorf("code %q does not look like a ks.login code", code)
			}
			a := e.ksExchange(t, tt.app, code)
			if a.status != http.StatusOK || !strings.HasPrefix(a.contentType, "application/json") {
				t.Fatalf("got HTTP %d %q: %s", a.status, a.contentType, a.raw)
			}
			if r, ok := a.result(); !ok || r != 1 {
				t.Fatalf("result = %v, want 1: %s", a.fields["result"], a.raw)
			}
			if !ksIDRe.MatchString(a.str("open_id")) {
				t.Errorf("open_id = %q", a.str("open_id"))
			}
			if k, err := base64.StdEncoding.DecodeString(a.str("session_key")); err != nil || len(k) != 16 {
				t.Errorf("session_key %q is not base64 of 16 bytes", a.str("session_key"))
			}
			_, hasUnion := a.fields["union_id"]
			if hasUnion != tt.wantUnion || (hasUnion && !ksIDRe.MatchString(a.str("union_id"))) {
				t.Errorf("union_id = %v (present %v), want present %v", a.fields["union_id"], hasUnion, tt.wantUnion)
			}
			for _, k := range []string{"error", "error_msg", "openid", "unionid"} {
				if _, has := a.fields[k]; has {
					t.Errorf("success has %s: %s", k, a.raw)
				}
			}
			if got, ok := e.sb.SessionKey(tt.app.AppID, "alice"); !ok || got != a.str("session_key") {
				t.Errorf("SessionKey = %q, %v; want the one just issued", got, ok)
			}
		})
	}
}

func TestKuaishou_IdentitiesAreStableAndScoped(t *testing.T) {
	e := newKSEnv(t)
	login := func(app provider.App, user string) answer {
		t.Helper()
		a := e.ksExchange(t, app, e.mint(t, app, user))
		if r, _ := a.result(); r != 1 {
			t.Fatalf("login %s/%s: %s", app.AppID, user, a.raw)
		}
		return a
	}
	a1, a2 := login(ksA, "alice"), login(ksA, "alice")
	b1, bob := login(ksB, "alice"), login(ksA, "bob")
	if a1.str("open_id") != a2.str("open_id") || a1.str("union_id") != a2.str("union_id") {
		t.Errorf("the same user got different ids: %s / %s", a1.raw, a2.raw)
	}
	if a1.str("session_key") == a2.str("session_key") {
		t.Error("a new login kept the session key; ks.login refreshes it")
	}
	if a1.str("open_id") == b1.str("open_id") {
		t.Error("open_id is the same across apps")
	}
	if a1.str("union_id") != b1.str("union_id") {
		t.Error("union_id differs across apps of one union scope")
	}
	if a1.str("open_id") == bob.str("open_id") || a1.str("union_id") == bob.str("union_id") {
		t.Error("two users share an id")
	}
}

func TestKuaishou_Code2SessionErrors(t *testing.T) {
	tests := []struct {
		name       string
		call       func(t *testing.T, e *env) answer
		wantResult int
		wantError  string
	}{
		{"GET is a parameter error", func(t *testing.T, e *env) answer {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/oauth2/mp/code2session?"+ksForm(ksA, e.mint(t, ksA, "alice")).Encode(), nil)
			return do(t, req)
		}, 100200100, "invalid_request"},
		{"JSON body is a parameter error", func(t *testing.T, e *env) answer {
			b, _ := json.Marshal(map[string]string{"app_id": ksA.AppID, "app_secret": ksA.Secret, "js_code": e.mint(t, ksA, "alice")})
			req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth2/mp/code2session", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			return do(t, req)
		}, 100200100, "invalid_request"},
		{"missing js_code", func(t *testing.T, e *env) answer {
			return e.ksExchange(t, ksA, "")
		}, 100200100, "invalid_request"},
		{"missing app_id", func(t *testing.T, e *env) answer {
			f := ksForm(ksA, e.mint(t, ksA, "alice"))
			f.Del("app_id")
			return e.ksCall(t, "/oauth2/mp/code2session", f)
		}, 100200100, "invalid_request"},
		{"missing app_secret", func(t *testing.T, e *env) answer {
			f := ksForm(ksA, e.mint(t, ksA, "alice"))
			f.Del("app_secret")
			return e.ksCall(t, "/oauth2/mp/code2session", f)
		}, 100200100, "invalid_request"},
		{"unknown app", func(t *testing.T, e *env) answer {
			return e.ksExchange(t, provider.App{AppID: "ks999", Secret: "x"}, e.mint(t, ksA, "alice"))
		}, 100200101, "unauthorized_client"},
		{"wrong secret", func(t *testing.T, e *env) answer {
			f := ksForm(ksA, e.mint(t, ksA, "alice"))
			f.Set("app_secret", "wrong-secret")
			return e.ksCall(t, "/oauth2/mp/code2session", f)
		}, 100200101, "unauthorized_client"},
		{"the WeChat app is not a Kuaishou app", func(t *testing.T, e *env) answer {
			return e.ksExchange(t, ksW, e.mint(t, ksW, "alice"))
		}, 100200101, "unauthorized_client"},
		{"unknown code", func(t *testing.T, e *env) answer {
			return e.ksExchange(t, ksA, strings.Repeat("0", 64))
		}, 100200105, "invalid_grant"},
		{"expired code", func(t *testing.T, e *env) answer {
			code := e.mint(t, ksA, "alice")
			e.clock.Advance(DefaultCodeTTL)
			return e.ksExchange(t, ksA, code)
		}, 100200105, "invalid_grant"},
		{"code of another app", func(t *testing.T, e *env) answer {
			return e.ksExchange(t, ksA, e.mint(t, ksB, "alice"))
		}, 100200105, "invalid_grant"},
		{"a WeChat code", func(t *testing.T, e *env) answer {
			return e.ksExchange(t, ksA, e.mint(t, ksW, "alice"))
		}, 100200105, "invalid_grant"},
		{"reused code", func(t *testing.T, e *env) answer {
			code := e.mint(t, ksA, "alice")
			if r, _ := e.ksExchange(t, ksA, code).result(); r != 1 {
				t.Fatal("first exchange failed")
			}
			return e.ksExchange(t, ksA, code)
		}, 100200105, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkKSError(t, tt.call(t, newKSEnv(t)), tt.wantResult, tt.wantError)
		})
	}
}

func TestKuaishou_CodeOfAnotherAppStaysValidForItsApp(t *testing.T) {
	e := newKSEnv(t)
	code := e.mint(t, ksB, "alice")
	checkKSError(t, e.ksExchange(t, ksA, code), 100200105, "invalid_grant")
	if r, _ := e.ksExchange(t, ksB, code).result(); r != 1 {
		t.Error("the code no longer works for its own app")
	}
}

func TestKuaishou_ParametersInTheQueryOfAPostAreAccepted(t *testing.T) {
	e := newKSEnv(t)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth2/mp/code2session?"+ksForm(ksA, e.mint(t, ksA, "alice")).Encode(), nil)
	if a := do(t, req); a.str("open_id") == "" {
		t.Errorf("want success, got %s", a.raw)
	}
}

func TestKuaishou_FaultsAnswerTheErrorThenRecover(t *testing.T) {
	tests := []struct {
		fault      string
		wantResult int
		wantError  string
	}{
		{FaultBusy, 100200500, "server_error"},
		{FaultRateLimited, 100200500, "server_error"},
		{FaultBlocked, 100200102, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			e := newKSEnv(t)
			e.setFault(t, FaultSpec{Platform: provider.Kuaishou, User: "alice", Error: tt.fault, Count: 1})
			code := e.mint(t, ksA, "alice")
			checkKSError(t, e.ksExchange(t, ksA, code), tt.wantResult, tt.wantError)
			// The refused call did not consume the code.
			if a := e.ksExchange(t, ksA, code); a.str("open_id") == "" {
				t.Errorf("after the fault: want success, got %s", a.raw)
			}
		})
	}
}

func TestKuaishou_FaultOfOnePlatformDoesNotHitAnother(t *testing.T) {
	e := newKSEnv(t)
	e.setFault(t, FaultSpec{Platform: provider.WeChat, User: "alice", Error: FaultBusy})
	if a := e.ksExchange(t, ksA, e.mint(t, ksA, "alice")); a.str("open_id") == "" {
		t.Errorf("a WeChat fault broke a Kuaishou login: %s", a.raw)
	}
}

func ksTokenForm(app provider.App) url.Values {
	return url.Values{"app_id": {app.AppID}, "app_secret": {app.Secret}, "grant_type": {"client_credentials"}}
}

func TestKuaishou_AccessTokenIssuesAndRemembersTokens(t *testing.T) {
	e := newKSEnv(t)
	a1 := e.ksCall(t, "/oauth2/access_token", ksTokenForm(ksA))
	if r, _ := a1.result(); r != 1 || a1.status != http.StatusOK {
		t.Fatalf("got %d %s", a1.status, a1.raw)
	}
	if a1.fields["expires_in"] != float64(172800) || a1.str("token_type") != "bearer" {
		t.Errorf("expires_in %v token_type %q, want 172800 and bearer", a1.fields["expires_in"], a1.str("token_type"))
	}
	t1 := a1.str("access_token")
	t2 := e.ksCall(t, "/oauth2/access_token", ksTokenForm(ksA)).str("access_token")
	if t1 == "" || t1 == t2 {
		t.Fatalf("tokens %q and %q: want two different ones", t1, t2)
	}
	if !e.sb.kuaishouTokenValid(ksA.AppID, t1) || !e.sb.kuaishouTokenValid(ksA.AppID, t2) {
		t.Error("a new token invalidated the old one; both stay valid")
	}
	if e.sb.kuaishouTokenValid(ksB.AppID, t1) {
		t.Error("a token of app A is valid for app B")
	}
	if e.sb.kuaishouTokenValid(ksA.AppID, "made-up") {
		t.Error("a made-up token is valid")
	}
	e.clock.Advance(48*time.Hour - time.Second)
	if !e.sb.kuaishouTokenValid(ksA.AppID, t1) {
		t.Error("the token expired before 48 hours")
	}
	e.clock.Advance(time.Second)
	if e.sb.kuaishouTokenValid(ksA.AppID, t1) {
		t.Error("the token outlived 48 hours")
	}
}

func TestKuaishou_AccessTokenErrors(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(url.Values)
		method     string
		wantResult int
		wantError  string
	}{
		{"WeChat's singular grant_type", func(f url.Values) { f.Set("grant_type", "client_credential") }, "", 100200104, "unsupported_grant_type"},
		{"missing grant_type", func(f url.Values) { f.Del("grant_type") }, "", 100200100, "invalid_request"},
		{"missing app_secret", func(f url.Values) { f.Del("app_secret") }, "", 100200100, "invalid_request"},
		{"wrong secret", func(f url.Values) { f.Set("app_secret", "wrong-secret") }, "", 100200101, "unauthorized_client"},
		{"unknown app", func(f url.Values) { f.Set("app_id", "ks999") }, "", 100200101, "unauthorized_client"},
		{"GET", func(url.Values) {}, http.MethodGet, 100200100, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newKSEnv(t)
			f := ksTokenForm(ksA)
			tt.edit(f)
			var a answer
			if tt.method == http.MethodGet {
				req, _ := http.NewRequest(http.MethodGet, e.url+"/oauth2/access_token?"+f.Encode(), nil)
				a = do(t, req)
			} else {
				a = e.ksCall(t, "/oauth2/access_token", f)
			}
			if got, ok := a.result(); !ok || got != tt.wantResult || a.str("error") != tt.wantError {
				t.Errorf("got %s, want result %d error %s", a.raw, tt.wantResult, tt.wantError)
			}
			if _, has := a.fields["access_token"]; has {
				t.Errorf("error answer carries a token: %s", a.raw)
			}
		})
	}
}

// ksOpen decrypts sealed data the way the Kuaishou docs describe, without
// the provider, to check the fake's document shapes.
func ksOpen(t *testing.T, sessionKey string, d SealedUserData) map[string]any {
	t.Helper()
	key, _ := base64.StdEncoding.DecodeString(sessionKey)
	iv, err := base64.StdEncoding.DecodeString(d.IV)
	if err != nil || len(iv) != 16 {
		t.Fatalf("iv %q is not base64 of 16 bytes", d.IV)
	}
	data, err := base64.StdEncoding.DecodeString(d.EncryptedData)
	if err != nil || len(data) == 0 || len(data)%16 != 0 {
		t.Fatalf("encrypted_data is not base64 of AES blocks")
	}
	block, _ := aes.NewCipher(key)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(data, data)
	n := int(data[len(data)-1])
	if n < 1 || n > 16 || !bytes.Equal(data[len(data)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		t.Fatalf("bad PKCS#7 padding")
	}
	var m map[string]any
	if err := json.Unmarshal(data[:len(data)-n], &m); err != nil {
		t.Fatalf("plaintext is not a JSON object: %v", err)
	}
	return m
}

func (e *env) ksSeal(t *testing.T, req SealRequest) SealedUserData {
	t.Helper()
	b, _ := json.Marshal(req)
	a := e.post(t, "/sandbox/user-data", string(b))
	if a.status != http.StatusOK {
		t.Fatalf("POST /sandbox/user-data: %d %s", a.status, a.raw)
	}
	var d SealedUserData
	if err := json.Unmarshal([]byte(a.raw), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestKuaishou_SealUserDataInTheDocumentedShape(t *testing.T) {
	e := newKSEnv(t)
	sk := e.ksExchange(t, ksA, e.mint(t, ksA, "alice")).str("session_key")
	tests := []struct {
		name string
		doc  UserDataDoc
		want map[string]any
	}{
		{"phone: mainland by default, no watermark", UserDataDoc{Kind: "phone", Phone: "19814733741"},
			map[string]any{"countryCode": "86", "phoneNumber": "19814733741"}},
		{"phone with a country code", UserDataDoc{Kind: "phone", Phone: "2025550123", CountryCode: "1"},
			map[string]any{"countryCode": "1", "phoneNumber": "2025550123"}},
		{"profile", UserDataDoc{Kind: "profile", Nickname: "小快", AvatarURL: "https://p1.a.yximgs.com/a.jpg"},
			map[string]any{"nickName": "小快", "avatarUrl": "https://p1.a.yximgs.com/a.jpg"}},
		{"phone with a requested watermark", UserDataDoc{Kind: "phone", Phone: "19814733741", WatermarkAppID: "ks000"},
			map[string]any{"countryCode": "86", "phoneNumber": "19814733741", "watermark": map[string]any{"appid": "ks000", "timestamp": float64(e.clock.Now().Unix())}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.ksSeal(t, SealRequest{Platform: provider.Kuaishou, AppID: ksA.AppID, User: "alice", UserDataDoc: tt.doc})
			got := ksOpen(t, sk, d)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tt.want)
			if !bytes.Equal(gb, wb) {
				t.Errorf("document = %s, want %s", gb, wb)
			}
		})
	}
	// A random IV each time.
	doc := SealRequest{Platform: provider.Kuaishou, AppID: ksA.AppID, User: "alice", UserDataDoc: UserDataDoc{Kind: "phone", Phone: "1"}}
	if d1, d2 := e.ksSeal(t, doc), e.ksSeal(t, doc); d1.IV == d2.IV || d1.EncryptedData == d2.EncryptedData {
		t.Error("two seals of one document are identical")
	}
}

func TestKuaishou_SealUserDataBeforeLoginIsRefused(t *testing.T) {
	e := newKSEnv(t)
	b, _ := json.Marshal(SealRequest{Platform: provider.Kuaishou, AppID: ksA.AppID, User: "nobody", UserDataDoc: UserDataDoc{Kind: "phone", Phone: "1"}})
	if a := e.post(t, "/sandbox/user-data", string(b)); a.status != http.StatusBadRequest || a.str("field") != "user" {
		t.Errorf("got %d %s, want 400 on field user", a.status, a.raw)
	}
}

// ---- the real provider against the fake ----

func ksProvider(t *testing.T, e *env, app provider.App, timeout time.Duration) provider.Provider {
	t.Helper()
	app.Endpoint = e.url
	app.Timeout = timeout
	p, err := ksprovider.New(app, provider.Env{})
	if err != nil {
		t.Fatalf("kuaishou.New: %v", err)
	}
	return p
}

func ksExpectKind(t *testing.T, err, kind error, code string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Errorf("err = %#v, want a *provider.Error with code %q", err, code)
	}
}

func TestKuaishou_ProviderExchangesMintedCodes(t *testing.T) {
	e := newKSEnv(t)
	ctx := context.Background()
	for _, tt := range []struct {
		app       provider.App
		wantUnion bool
	}{{ksA, true}, {ksD, false}} {
		t.Run(tt.app.AppID, func(t *testing.T) {
			p := ksProvider(t, e, tt.app, 2*time.Second)
			code := e.mint(t, tt.app, "alice")
			id, err := p.Exchange(ctx, provider.Credentials{Code: code})
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			sk, _ := e.sb.SessionKey(tt.app.AppID, "alice")
			want := provider.Identity{
				Platform:   provider.Kuaishou,
				AppID:      tt.app.AppID,
				OpenID:     kuaishou.openID(tt.app.AppID, "alice"),
				SessionKey: sk,
			}
			if tt.wantUnion {
				want.UnionID = kuaishou.unionID(tt.app.UnionScope, "alice")
			}
			if *id != want {
				t.Errorf("identity = %+v, want %+v", *id, want)
			}
			// Single use: Kuaishou has no "code used" result, so a reuse
			// is an invalid code.
			_, err = p.Exchange(ctx, provider.Credentials{Code: code})
			ksExpectKind(t, err, provider.ErrCodeInvalid, "100200105")
		})
	}
}

func TestKuaishou_ProviderErrorsAgainstTheFake(t *testing.T) {
	ctx := context.Background()
	t.Run("expired code", func(t *testing.T) {
		e := newKSEnv(t)
		code := e.mint(t, ksA, "alice")
		e.clock.Advance(DefaultCodeTTL + time.Second)
		_, err := ksProvider(t, e, ksA, 2*time.Second).Exchange(ctx, provider.Credentials{Code: code})
		ksExpectKind(t, err, provider.ErrCodeInvalid, "100200105")
	})
	t.Run("wrong secret", func(t *testing.T) {
		e := newKSEnv(t)
		bad := ksA
		bad.Secret = "wrong-secret"
		_, err := ksProvider(t, e, bad, 2*time.Second).Exchange(ctx, provider.Credentials{Code: e.mint(t, ksA, "alice")})
		ksExpectKind(t, err, provider.ErrMisconfigured, "100200101")
	})
	faults := []struct {
		fault string
		kind  error
		code  string
	}{
		{FaultBusy, provider.ErrUnavailable, "100200500"},
		{FaultRateLimited, provider.ErrUnavailable, "100200500"},
		{FaultBlocked, provider.ErrCodeInvalid, "100200102"},
		{FaultUnavailableHTTP, provider.ErrUnavailable, ""},
		{FaultMalformed, provider.ErrUnavailable, ""},
		{FaultTimeout, provider.ErrUnavailable, ""},
	}
	for _, tt := range faults {
		t.Run("fault "+tt.fault, func(t *testing.T) {
			e := newKSEnv(t)
			e.setFault(t, FaultSpec{Platform: provider.Kuaishou, AppID: ksA.AppID, User: "alice", Error: tt.fault, Count: 1})
			p := ksProvider(t, e, ksA, 300*time.Millisecond)
			code := e.mint(t, ksA, "alice")
			_, err := p.Exchange(ctx, provider.Credentials{Code: code})
			ksExpectKind(t, err, tt.kind, tt.code)
			// The fault is spent and the code was not consumed.
			if _, err := p.Exchange(ctx, provider.Credentials{Code: code}); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

func TestKuaishou_ProviderFetchesAccessTokens(t *testing.T) {
	e := newKSEnv(t)
	f, ok := ksProvider(t, e, ksA, 2*time.Second).(provider.TokenFetcher)
	if !ok {
		t.Fatal("the Kuaishou provider is not a TokenFetcher")
	}
	t1, err := f.FetchAccessToken(context.Background(), false)
	if err != nil {
		t.Fatalf("FetchAccessToken: %v", err)
	}
	t2, err := f.FetchAccessToken(context.Background(), true)
	if err != nil {
		t.Fatalf("FetchAccessToken(force): %v", err)
	}
	if t1.ExpiresIn != 48*time.Hour || t1.Token == t2.Token {
		t.Errorf("tokens %+v, %+v: want two 48-hour tokens", t1, t2)
	}
	for _, tok := range []string{t1.Token, t2.Token} {
		if !e.sb.kuaishouTokenValid(ksA.AppID, tok) {
			t.Errorf("the sandbox does not know token %q", tok)
		}
	}
	bad := ksA
	bad.Secret = "wrong-secret"
	_, err = ksProvider(t, e, bad, 2*time.Second).(provider.TokenFetcher).FetchAccessToken(context.Background(), false)
	ksExpectKind(t, err, provider.ErrMisconfigured, "100200101")
}

func TestKuaishou_ProviderDecryptsSealedUserData(t *testing.T) {
	e := newKSEnv(t)
	ctx := context.Background()
	p := ksProvider(t, e, ksA, 2*time.Second)
	dec := p.(provider.UserDataDecrypter)
	id, err := p.Exchange(ctx, provider.Credentials{Code: e.mint(t, ksA, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	seal := func(doc UserDataDoc) provider.EncryptedData {
		d := e.ksSeal(t, SealRequest{Platform: provider.Kuaishou, AppID: ksA.AppID, User: "alice", UserDataDoc: doc})
		return provider.EncryptedData{Data: d.EncryptedData, IV: d.IV}
	}

	phone, err := dec.DecryptPhone(id.SessionKey, seal(UserDataDoc{Kind: "phone", Phone: "19814733741"}))
	if err != nil {
		t.Fatalf("DecryptPhone: %v", err)
	}
	if want := (provider.Phone{Number: "19814733741", PureNumber: "19814733741", CountryCode: "86"}); *phone != want {
		t.Errorf("phone = %+v, want %+v", *phone, want)
	}
	profile, err := dec.DecryptProfile(id.SessionKey, seal(UserDataDoc{Kind: "profile", Nickname: "小快", AvatarURL: "https://p1.a.yximgs.com/a.jpg"}))
	if err != nil {
		t.Fatalf("DecryptProfile: %v", err)
	}
	if want := (provider.Profile{Nickname: "小快", AvatarURL: "https://p1.a.yximgs.com/a.jpg"}); *profile != want {
		t.Errorf("profile = %+v, want %+v", *profile, want)
	}
	_, err = dec.DecryptPhone(id.SessionKey, seal(UserDataDoc{Kind: "phone", Phone: "1", WatermarkAppID: ksB.AppID}))
	ksExpectKind(t, err, provider.ErrWatermark, "")

	// A new login rotates the session key: data sealed after it does not
	// decrypt with the old one.
	if _, err := p.Exchange(ctx, provider.Credentials{Code: e.mint(t, ksA, "alice")}); err != nil {
		t.Fatal(err)
	}
	_, err = dec.DecryptPhone(id.SessionKey, seal(UserDataDoc{Kind: "phone", Phone: "19814733741"}))
	ksExpectKind(t, err, provider.ErrSessionKeyStale, "")
}

func TestKuaishou_NeverLogsSecretsCodesSessionKeysOrTokens(t *testing.T) {
	var buf syncBuffer
	e := newKSEnv(t, WithLogger(log.NewStdLogger(&buf)))
	code := e.mint(t, ksA, "alice")
	sk := e.ksExchange(t, ksA, code).str("session_key")
	e.ksExchange(t, ksA, code) // reuse
	bad := ksForm(ksA, e.mint(t, ksA, "alice"))
	bad.Set("app_secret", "wrong-secret")
	e.ksCall(t, "/oauth2/mp/code2session", bad)
	e.setFault(t, FaultSpec{Platform: provider.Kuaishou, User: "alice", Error: FaultBusy, Count: 1})
	code2 := e.mint(t, ksA, "alice")
	e.ksExchange(t, ksA, code2)
	tok := e.ksCall(t, "/oauth2/access_token", ksTokenForm(ksA)).str("access_token")

	out := buf.String()
	if !strings.Contains(out, "user=alice") || !strings.Contains(out, "kuaishou access_token") {
		t.Fatalf("the test logger saw too little: %q", out)
	}
	for _, secret := range []string{ksA.Secret, "wrong-secret", code, code2, bad.Get("js_code"), sk, tok} {
		if secret == "" || strings.Contains(out, secret) {
			t.Errorf("log contains %q (or the value is empty):\n%s", secret, out)
		}
	}
}
