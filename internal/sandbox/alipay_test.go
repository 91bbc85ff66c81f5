package sandbox

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
	alipayp "github.com/mpauth/mpauth/internal/provider/alipay"
)

// Alipay test apps: A and B share an app group (union scope), C is a legacy
// user_id app, D's private key is not the one the sandbox knows (the
// provider signs with another), E has no private key in the sandbox config.
var (
	aliA = provider.App{Platform: provider.Alipay, AppID: "2021000000000001", UnionScope: "group-1", PrivateKeyPEM: AlipayDemoAppPrivateKeyPEM, PlatformPublicKeyPEM: AlipaySandboxPublicKeyPEM, AESKey: AlipayDemoAESKey}
	aliB = provider.App{Platform: provider.Alipay, AppID: "2021000000000002", UnionScope: "group-1", PrivateKeyPEM: AlipayDemoAppPrivateKeyPEM, PlatformPublicKeyPEM: AlipaySandboxPublicKeyPEM}
	aliC = provider.App{Platform: provider.Alipay, AppID: "2021000000000003", IdentityField: "user_id", PrivateKeyPEM: AlipayDemoAppPrivateKeyPEM, PlatformPublicKeyPEM: AlipaySandboxPublicKeyPEM}
	aliD = provider.App{Platform: provider.Alipay, AppID: "2021000000000004", PrivateKeyPEM: AlipayDemoAppPrivateKeyPEM, PlatformPublicKeyPEM: AlipaySandboxPublicKeyPEM}
	aliE = provider.App{Platform: provider.Alipay, AppID: "2021000000000005", PlatformPublicKeyPEM: AlipaySandboxPublicKeyPEM}
)

var (
	otherKeyOnce sync.Once
	otherKey     *rsa.PrivateKey
)

// otherAppKey is an app key the sandbox does not know.
func otherAppKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	otherKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		otherKey = k
	})
	return otherKey, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(otherKey)}))
}

func newAlipayEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	all := append([]Option{WithClock(c.Now), WithLogger(log.NewStdLogger(io.Discard))}, opts...)
	sb := New([]provider.App{aliA, aliB, aliC, aliD, aliE}, all...)
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	return &env{sb: sb, url: ts.URL, clock: c}
}

// aliProvider is the real Alipay provider of app, pointed at the sandbox.
func aliProvider(t *testing.T, e *env, app provider.App) provider.Provider {
	t.Helper()
	app.Endpoint = e.url
	app.Timeout = 2 * time.Second
	if app.AppID == aliD.AppID {
		_, app.PrivateKeyPEM = otherAppKey(t)
	}
	p, err := alipayp.New(app, provider.Env{})
	if err != nil {
		t.Fatalf("alipay.New(%s): %v", app.AppID, err)
	}
	return p
}

func aliExchange(t *testing.T, e *env, app provider.App, code string) (*provider.Identity, error) {
	t.Helper()
	return aliProvider(t, e, app).Exchange(context.Background(), provider.Credentials{Code: code})
}

func aliLogin(t *testing.T, e *env, app provider.App, user string) *provider.Identity {
	t.Helper()
	id, err := aliExchange(t, e, app, e.mint(t, app, user))
	if err != nil {
		t.Fatalf("login %s/%s: %v", app.AppID, user, err)
	}
	return id
}

func wantKind(t *testing.T, err, kind error, code string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	var pe *provider.Error
	if code != "" && (!errors.As(err, &pe) || pe.Code != code) {
		t.Errorf("err = %v, want platform code %s", err, code)
	}
}

var (
	aliCodeRe   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	aliOpenIDRe = regexp.MustCompile(`^0[0-9A-Za-z]{46}$`)
	aliUserIDRe = regexp.MustCompile(`^2088[0-9]{12}$`)
)

func TestAlipay_ProviderLogsInThroughTheSandbox(t *testing.T) {
	e := newAlipayEnv(t)
	code := e.mint(t, aliA, "alice")
	if !aliCodeRe.MatchString(code) {
		t.Errorf("code %q: want 32 lowercase hex characters", code)
	}
	id, err := aliExchange(t, e, aliA, code)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !aliOpenIDRe.MatchString(id.OpenID) || !aliOpenIDRe.MatchString(id.UnionID) || id.SessionKey != "" {
		t.Errorf("identity = %+v: want an open_id, a union_id and no session key", id)
	}
	if id.Platform != provider.Alipay || id.AppID != aliA.AppID {
		t.Errorf("identity = %+v, want Alipay app %s", id, aliA.AppID)
	}

	// Single use: the same code again is isv.code-invalid.
	_, err = aliExchange(t, e, aliA, code)
	wantKind(t, err, provider.ErrCodeInvalid, "40002/isv.code-invalid")

	tests := []struct {
		name                  string
		app                   provider.App
		user                  string
		sameOpenID, sameUnion bool
	}{
		{"same user same app: same ids", aliA, "alice", true, true},
		{"same user other app of the group: same union_id only", aliB, "alice", false, true},
		{"other user same app: other ids", aliA, "bob", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			again := aliLogin(t, e, tt.app, tt.user)
			if (again.OpenID == id.OpenID) != tt.sameOpenID || (again.UnionID == id.UnionID) != tt.sameUnion {
				t.Errorf("first %+v, then %+v", id, again)
			}
		})
	}
	t.Run("stable across restarts", func(t *testing.T) {
		if again := aliLogin(t, newAlipayEnv(t), aliA, "alice"); *again != *id {
			t.Errorf("after a restart %+v, before %+v", again, id)
		}
	})
}

func TestAlipay_UserIDAppGetsUserID(t *testing.T) {
	e := newAlipayEnv(t)
	id := aliLogin(t, e, aliC, "alice")
	if !aliUserIDRe.MatchString(id.OpenID) || id.UnionID != "" {
		t.Errorf("identity = %+v: want a 2088 user_id and no union_id", id)
	}
	if id.OpenID != alipayUserID("alice") || alipayUserID("bob") == id.OpenID {
		t.Errorf("user_id %s is not the user's stable one", id.OpenID)
	}
	// The sandbox answers in the app's mode: an app configured for user_id
	// whose provider expects open_id sees what a real mismatch looks like.
	open := aliC
	open.IdentityField = ""
	_, err := aliExchange(t, e, open, e.mint(t, aliC, "alice"))
	wantKind(t, err, provider.ErrUnavailable, "")
	if err == nil || !strings.Contains(err.Error(), "identity_field") {
		t.Errorf("err = %v, want it to explain identity_field", err)
	}
}

func TestAlipay_CodeErrors(t *testing.T) {
	e := newAlipayEnv(t, WithCodeTTL(3*time.Minute))
	expired := e.mint(t, aliA, "alice")
	e.clock.Advance(3 * time.Minute)
	tests := []struct {
		name string
		app  provider.App
		code string
		kind error
		pc   string
	}{
		{"expired code", aliA, expired, provider.ErrCodeInvalid, "40002/isv.code-invalid"},
		{"code of another app", aliB, e.mint(t, aliA, "alice"), provider.ErrCodeInvalid, "40002/isv.code-invalid"},
		{"made-up code", aliA, "4b203fe6c11548bcabd8da5bb087a83b", provider.ErrCodeInvalid, "40002/isv.code-invalid"},
		{"request signed with a key the sandbox does not know", aliD, e.mint(t, aliD, "alice"), provider.ErrMisconfigured, "40002/isv.invalid-signature"},
		{"app without a key in the sandbox config", aliE, e.mint(t, aliE, "alice"), provider.ErrMisconfigured, "40002/isv.missing-signature-config"},
		{"app the sandbox does not know (unsigned answer)", provider.App{Platform: provider.Alipay, AppID: "2021009999999999", PrivateKeyPEM: AlipayDemoAppPrivateKeyPEM, PlatformPublicKeyPEM: AlipaySandboxPublicKeyPEM}, "4b203fe6c11548bcabd8da5bb087a83b", provider.ErrMisconfigured, "40002/isv.invalid-app-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := tt.app
			if app.AppID == aliE.AppID {
				app.PrivateKeyPEM = AlipayDemoAppPrivateKeyPEM // the provider has one
			}
			id, err := aliExchange(t, e, app, tt.code)
			if id != nil {
				t.Errorf("identity = %+v, want none", id)
			}
			wantKind(t, err, tt.kind, tt.pc)
			if strings.Contains(err.Error(), tt.code) {
				t.Errorf("error %q quotes the code", err)
			}
		})
	}
}

func TestAlipay_FaultsThroughTheProvider(t *testing.T) {
	tests := []struct {
		fault string
		kind  error
		code  string
	}{
		{FaultRateLimited, provider.ErrRateLimited, "40005/isv.app-call-limited"},
		{FaultBusy, provider.ErrUnavailable, "20000/isp.unknow-error"},
		{FaultBlocked, provider.ErrUserBlocked, "40004/isv.user-risk-forbidden"},
		{FaultUnavailableHTTP, provider.ErrUnavailable, ""},
		{FaultMalformed, provider.ErrUnavailable, ""},
		{FaultTimeout, provider.ErrUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			e := newAlipayEnv(t)
			e.setFault(t, FaultSpec{Platform: provider.Alipay, User: "alice", Error: tt.fault, Count: 1})
			app := aliA
			app.Timeout = 300 * time.Millisecond
			app.Endpoint = e.url
			p, err := alipayp.New(app, provider.Env{})
			if err != nil {
				t.Fatal(err)
			}
			code := e.mint(t, aliA, "alice")
			_, err = p.Exchange(context.Background(), provider.Credentials{Code: code})
			wantKind(t, err, tt.kind, tt.code)
			// The fault did not consume the code.
			if _, err := p.Exchange(context.Background(), provider.Credentials{Code: code}); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

// gatewayCall posts form to the sandbox gateway (or GETs it with the query).
func gatewayCall(t *testing.T, e *env, method string, form url.Values) answer {
	t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		req, _ = http.NewRequest(method, e.url+"/gateway.do?"+form.Encode(), nil)
	} else {
		req, _ = http.NewRequest(method, e.url+"/gateway.do", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	}
	return do(t, req)
}

// signedForm is a valid exchange request of app signed with key.
func signedForm(t *testing.T, appID string, key *rsa.PrivateKey, code string, edit func(url.Values)) url.Values {
	t.Helper()
	f := url.Values{
		"app_id": {appID}, "method": {"alipay.system.oauth.token"}, "format": {"JSON"}, "charset": {"utf-8"},
		"sign_type": {"RSA2"}, "timestamp": {"2026-11-24 18:00:00"}, "version": {"1.0"},
		"grant_type": {"authorization_code"}, "code": {code},
	}
	if edit != nil {
		edit(f)
	}
	sig, err := alipayp.Sign(f, key)
	if err != nil {
		t.Fatal(err)
	}
	f.Set("sign", sig)
	return f
}

// checkAlipayAnswer checks the answer's shape and signature (over the raw
// node, with the public key configs get) and returns the node's fields.
func checkAlipayAnswer(t *testing.T, a answer, wantNode string, wantSigned bool) map[string]any {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", a.status, a.raw)
	}
	sn, err := alipayp.ExtractNode([]byte(a.raw), wantNode)
	if err != nil {
		t.Fatalf("no %s in %s: %v", wantNode, a.raw, err)
	}
	if sn.HasSign != wantSigned {
		t.Errorf("signed = %v, want %v: %s", sn.HasSign, wantSigned, a.raw)
	}
	if wantSigned {
		pub, err := alipayp.ParsePublicKey(AlipaySandboxPublicKeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := base64.StdEncoding.DecodeString(sn.Sign)
		h := sha256.Sum256(sn.Content)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
			t.Errorf("sign does not verify over the raw node %s", sn.Content)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(sn.Content, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAlipay_GatewayChecksRequests(t *testing.T) {
	appKey, err := alipayp.ParsePrivateKey(AlipayDemoAppPrivateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, _ := otherAppKey(t)
	tests := []struct {
		name   string
		method string
		form   func(e *env) url.Values
		// wantSub is the error's sub_code, "" for success.
		wantSub      string
		wantUnsigned bool
	}{
		{name: "form POST succeeds", form: func(e *env) url.Values { return signedForm(t, aliA.AppID, appKey, e.mint(t, aliA, "alice"), nil) }},
		{name: "parameters in the query string succeed too", method: http.MethodGet, form: func(e *env) url.Values {
			return signedForm(t, aliA.AppID, appKey, e.mint(t, aliA, "alice"), nil)
		}},
		{name: "wrong key", form: func(e *env) url.Values { return signedForm(t, aliA.AppID, wrongKey, e.mint(t, aliA, "alice"), nil) }, wantSub: "isv.invalid-signature"},
		{name: "parameter changed after signing", form: func(e *env) url.Values {
			f := signedForm(t, aliA.AppID, appKey, e.mint(t, aliA, "alice"), nil)
			f.Set("timestamp", "2026-11-24 18:00:01")
			return f
		}, wantSub: "isv.invalid-signature"},
		{name: "sign_type left out of the signature", form: func(e *env) url.Values {
			f := signedForm(t, aliA.AppID, appKey, e.mint(t, aliA, "alice"), func(f url.Values) { f.Del("sign_type") })
			f.Set("sign_type", "RSA2")
			return f
		}, wantSub: "isv.invalid-signature"},
		{name: "no sign", form: func(e *env) url.Values {
			f := signedForm(t, aliA.AppID, appKey, "x", nil)
			f.Del("sign")
			return f
		}, wantSub: "isv.missing-signature"},
		{name: "RSA (SHA1) sign_type", form: func(e *env) url.Values {
			return signedForm(t, aliA.AppID, appKey, "x", func(f url.Values) { f.Set("sign_type", "RSA") })
		}, wantSub: "isv.invalid-signature-type"},
		{name: "timestamp in another format", form: func(e *env) url.Values {
			return signedForm(t, aliA.AppID, appKey, "x", func(f url.Values) { f.Set("timestamp", "2026-11-24T18:00:00Z") })
		}, wantSub: "isv.invalid-timestamp"},
		{name: "GBK charset", form: func(e *env) url.Values {
			return signedForm(t, aliA.AppID, appKey, "x", func(f url.Values) { f.Set("charset", "GBK") })
		}, wantSub: "isv.invalid-charset"},
		{name: "no method", form: func(e *env) url.Values {
			return signedForm(t, aliA.AppID, appKey, "x", func(f url.Values) { f.Del("method") })
		}, wantSub: "isv.missing-method"},
		{name: "another method", form: func(e *env) url.Values {
			return signedForm(t, aliA.AppID, appKey, "x", func(f url.Values) { f.Set("method", "alipay.user.info.share") })
		}, wantSub: "isv.invalid-method"},
		{name: "refresh_token grant", form: func(e *env) url.Values {
			return signedForm(t, aliA.AppID, appKey, "x", func(f url.Values) { f.Set("grant_type", "refresh_token") })
		}, wantSub: "isv.grant-type-invalid"},
		{name: "no app_id", form: func(e *env) url.Values {
			return signedForm(t, "", appKey, "x", nil)
		}, wantSub: "isv.missing-app-id"},
		{name: "unknown app_id is answered unsigned", form: func(e *env) url.Values {
			return signedForm(t, "2021009999999999", appKey, "x", nil)
		}, wantSub: "isv.invalid-app-id", wantUnsigned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAlipayEnv(t)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			form := tt.form(e)
			a := gatewayCall(t, e, method, form)
			if tt.wantSub == "" {
				m := checkAlipayAnswer(t, a, "alipay_system_oauth_token_response", true)
				if _, ok := m["expires_in"].(float64); !ok {
					t.Errorf("expires_in = %v, want a JSON number like the real gateway", m["expires_in"])
				}
				for _, k := range []string{"access_token", "refresh_token", "auth_start", "open_id", "union_id"} {
					if s, _ := m[k].(string); s == "" {
						t.Errorf("success lacks %s: %s", k, a.raw)
					}
				}
				if _, has := m["user_id"]; has {
					t.Errorf("openid-mode app got a user_id: %s", a.raw)
				}
				return
			}
			m := checkAlipayAnswer(t, a, "error_response", !tt.wantUnsigned)
			if m["sub_code"] != tt.wantSub {
				t.Errorf("sub_code = %v, want %s: %s", m["sub_code"], tt.wantSub, a.raw)
			}
			if c, _ := m["code"].(string); c != "40001" && c != "40002" {
				t.Errorf("code = %v, want the string 40001 or 40002", m["code"])
			}
			if tt.wantSub == "isv.invalid-signature" && !strings.Contains(m["sub_msg"].(string), alipayp.SignContent(form)) {
				t.Errorf("sub_msg %q does not echo the string-to-sign", m["sub_msg"])
			}
		})
	}
}

func TestAlipay_SandboxKeysMatchTheExportedPEMs(t *testing.T) {
	pub, err := alipayp.ParsePublicKey(AlipayPublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(&alipaySigningKey().PublicKey) {
		t.Error("AlipaySandboxPublicKeyPEM is not the public half of the signing key")
	}
	if pub.Size() != 256 {
		t.Errorf("sandbox Alipay key has %d bits, want 2048", pub.Size()*8)
	}
	// The demo app config is accepted by the real provider.
	if _, err := alipayp.New(aliA, provider.Env{}); err != nil {
		t.Errorf("demo app config: %v", err)
	}
}

// sealPhone asks the control API to seal a phone number.
func sealPhone(t *testing.T, e *env, app provider.App, user, phone string) (answer, SealedUserData) {
	t.Helper()
	b, _ := json.Marshal(SealRequest{Platform: provider.Alipay, AppID: app.AppID, User: user, UserDataDoc: UserDataDoc{Kind: "phone", Phone: phone}})
	a := e.post(t, "/sandbox/user-data", string(b))
	var s SealedUserData
	_ = json.Unmarshal([]byte(a.raw), &s)
	return a, s
}

func TestAlipay_SealedPhoneDecryptsWithTheProvider(t *testing.T) {
	e := newAlipayEnv(t)
	// No login needed: Alipay seals with the app's key.
	a, sealed := sealPhone(t, e, aliA, "alice", "13800138000")
	if a.status != http.StatusOK || sealed.EncryptedData == "" || sealed.Sign == "" || sealed.IV != "" {
		t.Fatalf("seal: %d %s", a.status, a.raw)
	}
	d := aliProvider(t, e, aliA).(provider.UserDataDecrypter)
	tests := []struct {
		name string
		data provider.EncryptedData
		want string
		kind error
	}{
		{"as sealed", provider.EncryptedData{Data: sealed.EncryptedData, Sign: sealed.Sign}, "13800138000", nil},
		{"as the whole res.response text", provider.EncryptedData{Data: `{"response":"` + sealed.EncryptedData + `","sign":"` + sealed.Sign + `","sign_type":"RSA2","encrypt_type":"AES","charset":"UTF-8"}`}, "13800138000", nil},
		{"tampered sign", provider.EncryptedData{Data: sealed.EncryptedData, Sign: "A" + sealed.Sign[1:]}, "", provider.ErrDecrypt},
		{"tampered data", provider.EncryptedData{Data: "A" + sealed.EncryptedData[1:], Sign: sealed.Sign}, "", provider.ErrDecrypt},
		{"no sign", provider.EncryptedData{Data: sealed.EncryptedData}, "", provider.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ph, err := d.DecryptPhone("", tt.data)
			if tt.kind != nil {
				wantKind(t, err, tt.kind, "")
				return
			}
			if err != nil || ph.Number != tt.want {
				t.Fatalf("DecryptPhone = %+v, %v; want %s", ph, err, tt.want)
			}
		})
	}
	t.Run("another app's AES key does not decrypt it", func(t *testing.T) {
		other := aliB
		other.AESKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
		_, err := aliProvider(t, e, other).(provider.UserDataDecrypter).DecryptPhone("", provider.EncryptedData{Data: sealed.EncryptedData, Sign: sealed.Sign})
		wantKind(t, err, provider.ErrDecrypt, "")
	})
}

func TestAlipay_SealMatchesTheVector(t *testing.T) {
	// platforms.md §2.9: the derived AES zero-IV vector.
	app := aliA
	app.AESKey = "aYA0GP8JEW+D7/UFaskCWA=="
	s, err := alipaySeal(nil, app, "", UserDataDoc{Kind: "phone", Phone: "1597671905"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "4AOYHE0rpPnRnghunsGo+mY02DzANFLwNJJCiHfrNh2we+X5AAoad9ZH/8U2jkBBReukwx0ETW2b88v62vA4iw=="; s.EncryptedData != want {
		t.Errorf("EncryptedData = %s, want %s", s.EncryptedData, want)
	}
	pub, _ := alipayp.ParsePublicKey(AlipaySandboxPublicKeyPEM)
	sig, _ := base64.StdEncoding.DecodeString(s.Sign)
	h := sha256.Sum256([]byte(`"` + s.EncryptedData + `"`))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) != nil {
		t.Error("sign does not cover the quoted ciphertext")
	}
}

func TestAlipay_SealRejects(t *testing.T) {
	e := newAlipayEnv(t)
	tests := []struct {
		name string
		req  SealRequest
		want string
	}{
		{"profile", SealRequest{Platform: provider.Alipay, AppID: aliA.AppID, User: "alice", UserDataDoc: UserDataDoc{Kind: "profile", Nickname: "A"}}, "only encrypts phone"},
		{"app without aes_key", SealRequest{Platform: provider.Alipay, AppID: aliB.AppID, User: "alice", UserDataDoc: UserDataDoc{Kind: "phone", Phone: "13800138000"}}, "aes_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.req)
			a := e.post(t, "/sandbox/user-data", string(b))
			if a.status != http.StatusBadRequest || !strings.Contains(a.raw, tt.want) {
				t.Errorf("got %d %s, want 400 mentioning %q", a.status, a.raw, tt.want)
			}
		})
	}
}

func TestAlipay_LogsNoCodesOrTokens(t *testing.T) {
	var buf syncBuffer
	e := newAlipayEnv(t, WithLogger(log.NewStdLogger(&buf)))
	appKey, _ := alipayp.ParsePrivateKey(AlipayDemoAppPrivateKeyPEM)
	code := e.mint(t, aliA, "alice")
	a := gatewayCall(t, e, http.MethodPost, signedForm(t, aliA.AppID, appKey, code, nil))
	tok := checkAlipayAnswer(t, a, "alipay_system_oauth_token_response", true)["access_token"].(string)
	gatewayCall(t, e, http.MethodPost, signedForm(t, aliA.AppID, appKey, code, nil)) // reuse
	wrong, _ := otherAppKey(t)
	code2 := e.mint(t, aliA, "alice")
	gatewayCall(t, e, http.MethodPost, signedForm(t, aliA.AppID, wrong, code2, nil))

	out := buf.String()
	if !strings.Contains(out, "user=alice") {
		t.Fatalf("the test logger saw nothing: %q", out)
	}
	for _, secret := range []string{code, code2, tok} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}
