package sandbox

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/provider"
	wxprovider "github.com/mpauth/mpauth/internal/provider/wechat"
)

// Tests of the WeChat fake beyond login: stable_token, getuserphonenumber,
// their control routes and sealed user data, then end to end with the real
// WeChat provider.

var (
	wxAccessTokenRe = regexp.MustCompile(`^[0-9]+_[A-Za-z0-9_-]{100,}$`)
	wxPhoneCodeRe   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func wxTokenRequest(app provider.App, force bool) string {
	b, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": app.AppID, "secret": app.Secret, "force_refresh": force})
	return string(b)
}

// wxStableToken asks for app's token and fails unless it gets one; it returns
// the token and expires_in.
func (e *env) wxStableToken(t *testing.T, app provider.App, force bool) (string, int) {
	t.Helper()
	a := e.post(t, "/cgi-bin/stable_token", wxTokenRequest(app, force))
	tok := a.str("access_token")
	exp, _ := a.fields["expires_in"].(float64)
	if a.status != http.StatusOK || !wxAccessTokenRe.MatchString(tok) || exp <= 0 {
		t.Fatalf("stable_token %s force=%v: %d %s", app.AppID, force, a.status, a.raw)
	}
	if _, has := a.fields["errcode"]; has {
		t.Errorf("token answer has an errcode: %s", a.raw)
	}
	return tok, int(exp)
}

func (e *env) wxMintPhone(t *testing.T, app provider.App, user, phone, cc string) string {
	t.Helper()
	code, err := MintWeChatPhoneCode(context.Background(), e.url, app.AppID, user, phone, cc)
	if err != nil {
		t.Fatalf("MintWeChatPhoneCode: %v", err)
	}
	return code
}

func (e *env) wxGetPhone(t *testing.T, token, code string) answer {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"code": code})
	return e.post(t, "/wxa/business/getuserphonenumber?"+url.Values{"access_token": {token}}.Encode(), string(b))
}

// checkWeChatAPIError checks a cgi-bin / wxa business error.
func checkWeChatAPIError(t *testing.T, a answer, errcode int, errmsg string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Errorf("status %d, want 200 (business errors are HTTP 200)", a.status)
	}
	if a.contentType != "application/json; encoding=utf-8" {
		t.Errorf("Content-Type %q, want application/json; encoding=utf-8", a.contentType)
	}
	if got, ok := a.errcode(); !ok || got != errcode {
		t.Errorf("errcode = %v (present %v), want %d: %s", got, ok, errcode, a.raw)
	}
	if msg := a.str("errmsg"); !strings.HasPrefix(msg, errmsg+", rid: ") || !ridRe.MatchString(msg) {
		t.Errorf("errmsg %q, want %q + \", rid: <rid>\"", msg, errmsg)
	}
	for _, k := range []string{"access_token", "phone_info"} {
		if _, has := a.fields[k]; has {
			t.Errorf("error body has %q: %s", k, a.raw)
		}
	}
}

// wxTokenAccepted reports whether getuserphonenumber accepts tok: a bogus
// code then gets 40029 (invalid code) instead of 40001.
func (e *env) wxTokenAccepted(t *testing.T, tok string) bool {
	t.Helper()
	code, _ := e.wxGetPhone(t, tok, "no-such-code").errcode()
	switch code {
	case 40029:
		return true
	case 40001:
		return false
	}
	t.Fatalf("getuserphonenumber with a bogus code answered errcode %d", code)
	return false
}

func TestStableToken_NormalModeReusesTheTokenUntilFiveMinutesLeft(t *testing.T) {
	e := newEnv(t)
	first, exp := e.wxStableToken(t, appA, false)
	if exp != 7200 {
		t.Errorf("expires_in = %d, want 7200", exp)
	}
	steps := []struct {
		advance  time.Duration
		wantSame bool
		wantExp  int
	}{
		{1000 * time.Second, true, 6200},
		{5900 * time.Second, true, 300}, // exactly 300 s left: still this one
		{time.Second, false, 7200},      // 299 s left: WeChat refreshes early
	}
	for _, st := range steps {
		e.clock.Advance(st.advance)
		tok, exp := e.wxStableToken(t, appA, false)
		if (tok == first) != st.wantSame || exp != st.wantExp {
			t.Fatalf("after %v: same token = %v, expires_in = %d; want %v, %d", st.advance, tok == first, exp, st.wantSame, st.wantExp)
		}
	}
	// The early-replaced token lives out its own 299 s.
	if !e.wxTokenAccepted(t, first) {
		t.Error("the replaced token was rejected before its expiry")
	}
	e.clock.Advance(299 * time.Second)
	if e.wxTokenAccepted(t, first) {
		t.Error("the replaced token was accepted after its expiry")
	}
}

func TestStableToken_ForceRefreshKeepsTheOldTokenFiveMinutes(t *testing.T) {
	e := newEnv(t)
	old, _ := e.wxStableToken(t, appA, false)
	e.clock.Advance(time.Minute)
	forced, exp := e.wxStableToken(t, appA, true)
	if forced == old || exp != 7200 {
		t.Fatalf("force_refresh: same token = %v, expires_in = %d; want a new token for 7200 s", forced == old, exp)
	}
	if again, _ := e.wxStableToken(t, appA, false); again != forced {
		t.Error("normal mode after a forced refresh did not return the new token")
	}
	e.clock.Advance(5*time.Minute - time.Second)
	if !e.wxTokenAccepted(t, old) || !e.wxTokenAccepted(t, forced) {
		t.Error("within five minutes both tokens must work")
	}
	e.clock.Advance(time.Second)
	if e.wxTokenAccepted(t, old) {
		t.Error("the replaced token still works five minutes after the forced refresh")
	}
	if !e.wxTokenAccepted(t, forced) {
		t.Error("the new token stopped working")
	}
}

func TestStableToken_TokensArePerApp(t *testing.T) {
	e := newEnv(t)
	a, _ := e.wxStableToken(t, appA, false)
	b, _ := e.wxStableToken(t, appB, false)
	if a == b {
		t.Fatal("two apps got the same token")
	}
	// A token of B cannot redeem a phone code of A.
	code := e.wxMintPhone(t, appA, "alice", "13580006666", "")
	checkWeChatAPIError(t, e.wxGetPhone(t, b, code), 40029, "invalid code")
	if a := e.wxGetPhone(t, a, code); a.str("errmsg") != "ok" {
		t.Errorf("the code was consumed by the other app's call: %s", a.raw)
	}
}

func TestStableToken_Errors(t *testing.T) {
	body := func(m map[string]any) string { b, _ := json.Marshal(m); return string(b) }
	tests := []struct {
		name    string
		method  string
		body    string
		errcode int
		errmsg  string
	}{
		{"GET", http.MethodGet, "", 43002, "require POST method"},
		{"not JSON", http.MethodPost, "grant_type=client_credential", 47001, "data format error"},
		{"force_refresh not a boolean", http.MethodPost, body(map[string]any{"grant_type": "client_credential", "appid": appA.AppID, "secret": appA.Secret, "force_refresh": "yes"}), 47001, "data format error"},
		{"appid missing", http.MethodPost, body(map[string]any{"grant_type": "client_credential", "secret": appA.Secret}), 41002, "appid missing"},
		{"secret missing", http.MethodPost, body(map[string]any{"grant_type": "client_credential", "appid": appA.AppID}), 41004, "appsecret missing"},
		{"grant_type wrong", http.MethodPost, body(map[string]any{"grant_type": "authorization_code", "appid": appA.AppID, "secret": appA.Secret}), 40002, "invalid grant_type"},
		{"unknown appid", http.MethodPost, body(map[string]any{"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": "x"}), 40013, "invalid appid"},
		{"wrong secret", http.MethodPost, body(map[string]any{"grant_type": "client_credential", "appid": appA.AppID, "secret": appB.Secret}), 40125, "invalid appsecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			req, _ := http.NewRequest(tt.method, e.url+"/cgi-bin/stable_token", strings.NewReader(tt.body))
			checkWeChatAPIError(t, do(t, req), tt.errcode, tt.errmsg)
		})
	}
}

func TestCgiBin_UnknownPathIsInvalidURL(t *testing.T) {
	e := newEnv(t)
	checkWeChatAPIError(t, e.post(t, "/cgi-bin/stable_Token", wxTokenRequest(appA, false)), 40066, "invalid url")
	checkWeChatAPIError(t, e.post(t, "/wxa/business/getUserPhoneNumber", `{}`), 40066, "invalid url")
}

func TestGetPhoneNumber_AnswersTheMintedNumber(t *testing.T) {
	tests := []struct {
		name, phone, cc         string
		wantNumber, wantCountry string
	}{
		{"mainland number by default", "13580006666", "", "13580006666", "86"},
		{"foreign number carries the country code", "61234567", "852", "+85261234567", "852"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tok, _ := e.wxStableToken(t, appA, false)
			code := e.wxMintPhone(t, appA, "alice", tt.phone, tt.cc)
			if !wxPhoneCodeRe.MatchString(code) {
				t.Errorf("phone code %q: want 64 hex characters", code)
			}
			a := e.wxGetPhone(t, tok, code)
			if a.contentType != "application/json; encoding=utf-8" {
				t.Errorf("Content-Type %q", a.contentType)
			}
			var got struct {
				ErrCode   *int   `json:"errcode"`
				ErrMsg    string `json:"errmsg"`
				PhoneInfo struct {
					PhoneNumber     string `json:"phoneNumber"`
					PurePhoneNumber string `json:"purePhoneNumber"`
					CountryCode     any    `json:"countryCode"`
					Watermark       struct {
						Timestamp int64  `json:"timestamp"`
						AppID     string `json:"appid"`
					} `json:"watermark"`
				} `json:"phone_info"`
			}
			if err := json.Unmarshal([]byte(a.raw), &got); err != nil {
				t.Fatalf("answer %s: %v", a.raw, err)
			}
			pi := got.PhoneInfo
			if got.ErrCode == nil || *got.ErrCode != 0 || got.ErrMsg != "ok" {
				t.Errorf("want errcode 0 and errmsg ok: %s", a.raw)
			}
			if pi.PhoneNumber != tt.wantNumber || pi.PurePhoneNumber != tt.phone || pi.CountryCode != tt.wantCountry {
				t.Errorf("phone_info = %+v, want %s / %s / %q (a string)", pi, tt.wantNumber, tt.phone, tt.wantCountry)
			}
			if pi.Watermark.AppID != appA.AppID || pi.Watermark.Timestamp != e.clock.Now().Unix() {
				t.Errorf("watermark = %+v, want appid %s at %d", pi.Watermark, appA.AppID, e.clock.Now().Unix())
			}
		})
	}
}

func TestGetPhoneNumber_Errors(t *testing.T) {
	tests := []struct {
		name    string
		call    func(t *testing.T, e *env) answer
		errcode int
		errmsg  string
	}{
		{"code used twice", func(t *testing.T, e *env) answer {
			tok, _ := e.wxStableToken(t, appA, false)
			code := e.wxMintPhone(t, appA, "alice", "13580006666", "")
			if a := e.wxGetPhone(t, tok, code); a.str("errmsg") != "ok" {
				t.Fatalf("first use: %s", a.raw)
			}
			return e.wxGetPhone(t, tok, code)
		}, 40029, "invalid code"},
		{"unknown code", func(t *testing.T, e *env) answer {
			tok, _ := e.wxStableToken(t, appA, false)
			return e.wxGetPhone(t, tok, strings.Repeat("0", 64))
		}, 40029, "invalid code"},
		{"expired code", func(t *testing.T, e *env) answer {
			code := e.wxMintPhone(t, appA, "alice", "13580006666", "")
			e.clock.Advance(DefaultCodeTTL)
			tok, _ := e.wxStableToken(t, appA, false)
			return e.wxGetPhone(t, tok, code)
		}, 40029, "invalid code"},
		{"empty code", func(t *testing.T, e *env) answer {
			tok, _ := e.wxStableToken(t, appA, false)
			return e.wxGetPhone(t, tok, "")
		}, 41008, "missing code"},
		{"body not JSON", func(t *testing.T, e *env) answer {
			tok, _ := e.wxStableToken(t, appA, false)
			return e.post(t, "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(tok), "code=x")
		}, 47001, "data format error"},
		{"no access_token", func(t *testing.T, e *env) answer {
			return e.post(t, "/wxa/business/getuserphonenumber", `{"code":"x"}`)
		}, 41001, "access_token missing"},
		{"unknown access_token", func(t *testing.T, e *env) answer {
			return e.wxGetPhone(t, "86_"+strings.Repeat("A", 133), e.wxMintPhone(t, appA, "alice", "13580006666", ""))
		}, 40001, "invalid credential, access_token is invalid or not latest"},
		{"access_token past its expiry", func(t *testing.T, e *env) answer {
			tok, _ := e.wxStableToken(t, appA, false)
			e.clock.Advance(7200 * time.Second)
			return e.wxGetPhone(t, tok, e.wxMintPhone(t, appA, "alice", "13580006666", ""))
		}, 40001, "invalid credential, access_token is invalid or not latest"},
		{"access_token expired by the control route", func(t *testing.T, e *env) answer {
			tok, _ := e.wxStableToken(t, appA, false)
			if n, err := ExpireWeChatTokens(context.Background(), e.url, appA.AppID); err != nil || n != 1 {
				t.Fatalf("ExpireWeChatTokens = %d, %v; want 1", n, err)
			}
			return e.wxGetPhone(t, tok, e.wxMintPhone(t, appA, "alice", "13580006666", ""))
		}, 40001, "invalid credential, access_token is invalid or not latest"},
		{"GET", func(t *testing.T, e *env) answer {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/wxa/business/getuserphonenumber?access_token=x", nil)
			return do(t, req)
		}, 43002, "require POST method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkWeChatAPIError(t, tt.call(t, newEnv(t)), tt.errcode, tt.errmsg)
		})
	}
}

func TestGetPhoneNumber_RejectedTokenDoesNotConsumeTheCode(t *testing.T) {
	e := newEnv(t)
	old, _ := e.wxStableToken(t, appA, false)
	if _, err := ExpireWeChatTokens(context.Background(), e.url, appA.AppID); err != nil {
		t.Fatal(err)
	}
	code := e.wxMintPhone(t, appA, "alice", "13580006666", "")
	checkWeChatAPIError(t, e.wxGetPhone(t, old, code), 40001, "invalid credential, access_token is invalid or not latest")
	fresh, _ := e.wxStableToken(t, appA, false)
	if fresh == old {
		t.Fatal("normal mode handed out the expired token again")
	}
	if a := e.wxGetPhone(t, fresh, code); a.str("errmsg") != "ok" {
		t.Errorf("the retry with a fresh token failed: %s", a.raw)
	}
}

func TestWeChatControlRoutes_RejectBadRequests(t *testing.T) {
	tests := []struct {
		name, path, body string
		field            string
	}{
		{"phone code: missing app", "/sandbox/wechat/phone-codes", `{"user":"alice","phone":"13580006666"}`, "app_id"},
		{"phone code: unknown app", "/sandbox/wechat/phone-codes", `{"app_id":"wx0000000000000000","user":"alice","phone":"13580006666"}`, "app_id"},
		{"phone code: empty user", "/sandbox/wechat/phone-codes", `{"app_id":"wxaaaaaaaaaaaaaaaa","phone":"13580006666"}`, "user"},
		{"phone code: user too long", "/sandbox/wechat/phone-codes", `{"app_id":"wxaaaaaaaaaaaaaaaa","user":"` + strings.Repeat("x", maxUserLen+1) + `","phone":"1"}`, "user"},
		{"phone code: missing phone", "/sandbox/wechat/phone-codes", `{"app_id":"wxaaaaaaaaaaaaaaaa","user":"alice"}`, "phone"},
		{"phone code: phone not digits", "/sandbox/wechat/phone-codes", `{"app_id":"wxaaaaaaaaaaaaaaaa","user":"alice","phone":"+8613580006666"}`, "phone"},
		{"phone code: bad country code", "/sandbox/wechat/phone-codes", `{"app_id":"wxaaaaaaaaaaaaaaaa","user":"alice","phone":"1","country_code":"+86"}`, "country_code"},
		{"phone code: unknown field", "/sandbox/wechat/phone-codes", `{"app_id":"wxaaaaaaaaaaaaaaaa","user":"alice","phone":"1","phoneNumber":"1"}`, ""},
		{"expire tokens: missing app", "/sandbox/wechat/expire-tokens", `{}`, "app_id"},
		{"expire tokens: unknown app", "/sandbox/wechat/expire-tokens", `{"app_id":"wx0000000000000000"}`, "app_id"},
		{"expire tokens: not JSON", "/sandbox/wechat/expire-tokens", `app_id=x`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.post(t, tt.path, tt.body)
			if a.status != http.StatusBadRequest || a.str("error") == "" {
				t.Fatalf("want 400 with an error, got %d %s", a.status, a.raw)
			}
			if a.str("field") != tt.field {
				t.Errorf("field = %q, want %q", a.str("field"), tt.field)
			}
		})
	}
}

// wxSeal asks the control API to seal doc for user on app.
func (e *env) wxSeal(t *testing.T, app provider.App, user string, doc UserDataDoc) SealedUserData {
	t.Helper()
	b, _ := json.Marshal(SealRequest{Platform: provider.WeChat, AppID: app.AppID, User: user, UserDataDoc: doc})
	a := e.post(t, "/sandbox/user-data", string(b))
	if a.status != http.StatusOK {
		t.Fatalf("POST /sandbox/user-data %s: %d %s", b, a.status, a.raw)
	}
	var out SealedUserData
	if err := json.Unmarshal([]byte(a.raw), &out); err != nil || out.EncryptedData == "" || out.IV == "" {
		t.Fatalf("sealed data %s: %v", a.raw, err)
	}
	return out
}

func TestSealUserData_WeChatShapesWithTheCurrentSessionKey(t *testing.T) {
	tests := []struct {
		name string
		doc  UserDataDoc
		want map[string]any // fields of the plaintext besides the watermark
		wm   string
	}{
		{"phone", UserDataDoc{Kind: "phone", Phone: "13580006666"},
			map[string]any{"phoneNumber": "13580006666", "purePhoneNumber": "13580006666", "countryCode": "86"}, appA.AppID},
		{"foreign phone", UserDataDoc{Kind: "phone", Phone: "61234567", CountryCode: "852"},
			map[string]any{"phoneNumber": "+85261234567", "purePhoneNumber": "61234567", "countryCode": "852"}, appA.AppID},
		{"profile", UserDataDoc{Kind: "profile", Nickname: "Band", AvatarURL: "https://example.com/a.png"},
			map[string]any{"nickName": "Band", "avatarUrl": "https://example.com/a.png"}, appA.AppID},
		{"profile defaults", UserDataDoc{Kind: "profile"},
			map[string]any{"nickName": "微信用户", "avatarUrl": wechatDefaultAvatar}, appA.AppID},
		{"watermark override", UserDataDoc{Kind: "phone", Phone: "13580006666", WatermarkAppID: "wx0000000000000000"},
			map[string]any{"phoneNumber": "13580006666"}, "wx0000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.login(t, appA, "alice")
			sk, _ := e.sb.SessionKey(appA.AppID, "alice")
			sealed := e.wxSeal(t, appA, "alice", tt.doc)
			if iv, err := base64.StdEncoding.DecodeString(sealed.IV); err != nil || len(iv) != 16 || len(sealed.IV) != 24 {
				t.Errorf("iv %q: want 24 base64 characters of 16 bytes", sealed.IV)
			}
			plain, err := wxprovider.Decrypt(sk, sealed.EncryptedData, sealed.IV)
			if err != nil {
				t.Fatalf("Decrypt with the user's session key: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(plain, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v (plaintext %s)", k, got[k], v, plain)
				}
			}
			wm, _ := got["watermark"].(map[string]any)
			if wm["appid"] != tt.wm || wm["timestamp"] != float64(e.clock.Now().Unix()) {
				t.Errorf("watermark = %v, want appid %s at %d", wm, tt.wm, e.clock.Now().Unix())
			}
		})
	}
}

func TestSealUserData_RandomIVAndBadPhone(t *testing.T) {
	e := newEnv(t)
	e.login(t, appA, "alice")
	doc := UserDataDoc{Kind: "phone", Phone: "13580006666"}
	a, b := e.wxSeal(t, appA, "alice", doc), e.wxSeal(t, appA, "alice", doc)
	if a.IV == b.IV || a.EncryptedData == b.EncryptedData {
		t.Error("two seals of the same document are identical: the IV is not random")
	}
	bad := e.post(t, "/sandbox/user-data", `{"platform":"wechat","app_id":"wxaaaaaaaaaaaaaaaa","user":"alice","kind":"phone","phone":"not a number"}`)
	if bad.status != http.StatusBadRequest {
		t.Errorf("sealing a malformed phone: %d %s, want 400", bad.status, bad.raw)
	}
}

// ---- end to end: the real WeChat provider against the sandbox ----

// wxBroker is a minimal provider.AccessTokens: one cached token per app,
// refreshed (forced) after Invalidate. It records its calls.
type wxBroker struct {
	mu     sync.Mutex
	cached map[string]string
	force  map[string]bool
	calls  []string
}

func newWxBroker() *wxBroker { return &wxBroker{cached: map[string]string{}, force: map[string]bool{}} }

func (b *wxBroker) Token(ctx context.Context, app provider.App, f provider.TokenFetcher) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if tok := b.cached[app.AppID]; tok != "" {
		b.calls = append(b.calls, "cached")
		return tok, nil
	}
	force := b.force[app.AppID]
	b.calls = append(b.calls, fmt.Sprintf("fetch force=%v", force))
	t, err := f.FetchAccessToken(ctx, force)
	if err != nil {
		return "", err
	}
	b.cached[app.AppID], b.force[app.AppID] = t.Token, false
	return t.Token, nil
}

func (b *wxBroker) Invalidate(_ context.Context, app provider.App, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "invalidate")
	if b.cached[app.AppID] == token {
		delete(b.cached, app.AppID)
		b.force[app.AppID] = true
	}
	return nil
}

func (b *wxBroker) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.calls, ", ")
}

// wxProviderAPI is the real WeChat provider of app, pointed at the sandbox.
type wxProviderAPI interface {
	provider.Provider
	provider.TokenFetcher
	provider.PhoneByCode
	provider.UserDataDecrypter
}

func (e *env) wxProvider(t *testing.T, app provider.App, tokens provider.AccessTokens) wxProviderAPI {
	t.Helper()
	app.Endpoint, app.Timeout = e.url, 5*time.Second
	p, err := wxprovider.New(app, provider.Env{Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	return p.(wxProviderAPI)
}

func TestE2E_StableTokenIssueAndForce(t *testing.T) {
	e := newEnv(t)
	p := e.wxProvider(t, appA, nil)
	ctx := context.Background()
	first, err := p.FetchAccessToken(ctx, false)
	if err != nil {
		t.Fatalf("FetchAccessToken: %v", err)
	}
	if first.ExpiresIn != 7200*time.Second || !wxAccessTokenRe.MatchString(first.Token) {
		t.Errorf("token = %+v, want a token for 7200 s", first)
	}
	e.clock.Advance(10 * time.Minute)
	again, err := p.FetchAccessToken(ctx, false)
	if err != nil || again.Token != first.Token || again.ExpiresIn != 6600*time.Second {
		t.Errorf("normal mode: %+v, %v; want the same token with 6600 s left", again, err)
	}
	forced, err := p.FetchAccessToken(ctx, true)
	if err != nil || forced.Token == first.Token || forced.ExpiresIn != 7200*time.Second {
		t.Errorf("forced: %+v, %v; want a new token for 7200 s", forced, err)
	}
}

func TestE2E_StableTokenWithTheWrongSecretIsMisconfigured(t *testing.T) {
	e := newEnv(t)
	bad := appA
	bad.Secret = "not-the-secret"
	p := e.wxProvider(t, bad, newWxBroker())
	_, err := p.FetchAccessToken(context.Background(), false)
	var pe *provider.Error
	if !errors.Is(err, provider.ErrMisconfigured) || !errors.As(err, &pe) || pe.Code != "40125" {
		t.Errorf("FetchAccessToken = %v, want ErrMisconfigured 40125", err)
	}
	_, err = p.PhoneNumber(context.Background(), e.wxMintPhone(t, appA, "alice", "13580006666", ""))
	if !errors.Is(err, provider.ErrMisconfigured) {
		t.Errorf("PhoneNumber = %v, want ErrMisconfigured from the token fetch", err)
	}
	if err != nil && strings.Contains(err.Error(), bad.Secret) {
		t.Errorf("error %q contains the secret", err)
	}
}

func TestE2E_PhoneNumberByCode(t *testing.T) {
	e := newEnv(t)
	b := newWxBroker()
	p := e.wxProvider(t, appA, b)
	ctx := context.Background()

	code := e.wxMintPhone(t, appA, "alice", "13580006666", "")
	got, err := p.PhoneNumber(ctx, code)
	if err != nil {
		t.Fatalf("PhoneNumber: %v", err)
	}
	if want := (provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"}); *got != want {
		t.Errorf("phone = %+v, want %+v", *got, want)
	}
	_, err = p.PhoneNumber(ctx, code)
	if !errors.Is(err, provider.ErrCodeInvalid) {
		t.Errorf("reused phone code: %v, want ErrCodeInvalid", err)
	}
	other := e.wxMintPhone(t, appB, "alice", "13580006666", "")
	if _, err := p.PhoneNumber(ctx, other); !errors.Is(err, provider.ErrCodeInvalid) {
		t.Errorf("another app's phone code: %v, want ErrCodeInvalid", err)
	}
	if want := "fetch force=false, cached, cached"; b.log() != want {
		t.Errorf("wxBroker calls: %s, want %s", b.log(), want)
	}
}

func TestE2E_ExpiredTokensAreInvalidatedAndRetriedOnce(t *testing.T) {
	e := newEnv(t)
	b := newWxBroker()
	p := e.wxProvider(t, appA, b)
	ctx := context.Background()
	if _, err := p.PhoneNumber(ctx, e.wxMintPhone(t, appA, "alice", "13580006666", "")); err != nil {
		t.Fatalf("first PhoneNumber: %v", err)
	}
	// Another backend forced refreshes: the cached token is dead.
	if _, err := ExpireWeChatTokens(ctx, e.url, appA.AppID); err != nil {
		t.Fatal(err)
	}
	got, err := p.PhoneNumber(ctx, e.wxMintPhone(t, appA, "alice", "61234567", "852"))
	if err != nil {
		t.Fatalf("PhoneNumber after the tokens expired: %v", err)
	}
	if got.Number != "+85261234567" || got.CountryCode != "852" {
		t.Errorf("phone = %+v", *got)
	}
	if want := "fetch force=false, cached, invalidate, fetch force=true"; b.log() != want {
		t.Errorf("wxBroker calls: %s, want %s", b.log(), want)
	}
}

func TestE2E_SealedUserDataDecryptsWithTheLastLoginsSessionKey(t *testing.T) {
	e := newEnv(t)
	p := e.wxProvider(t, appA, nil)
	ctx := context.Background()
	login := func() *provider.Identity {
		t.Helper()
		id, err := p.Exchange(ctx, provider.Credentials{Code: e.mint(t, appA, "alice")})
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		return id
	}
	first := login()
	data := func(s SealedUserData) provider.EncryptedData {
		return provider.EncryptedData{Data: s.EncryptedData, IV: s.IV}
	}

	phone, err := p.DecryptPhone(first.SessionKey, data(e.wxSeal(t, appA, "alice", UserDataDoc{Kind: "phone", Phone: "13580006666"})))
	if err != nil {
		t.Fatalf("DecryptPhone: %v", err)
	}
	if want := (provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"}); *phone != want {
		t.Errorf("phone = %+v, want %+v", *phone, want)
	}
	profile, err := p.DecryptProfile(first.SessionKey, data(e.wxSeal(t, appA, "alice", UserDataDoc{Kind: "profile", Nickname: "Band", AvatarURL: "https://example.com/a.png"})))
	if err != nil {
		t.Fatalf("DecryptProfile: %v", err)
	}
	if want := (provider.Profile{Nickname: "Band", AvatarURL: "https://example.com/a.png"}); *profile != want {
		t.Errorf("profile = %+v, want %+v", *profile, want)
	}

	other := data(e.wxSeal(t, appA, "alice", UserDataDoc{Kind: "phone", Phone: "13580006666", WatermarkAppID: appB.AppID}))
	if _, err := p.DecryptPhone(first.SessionKey, other); !errors.Is(err, provider.ErrWatermark) {
		t.Errorf("data watermarked for another app: %v, want ErrWatermark", err)
	}

	// A new login rotates the session key: data sealed now no longer
	// opens with the first key, and opens with the new one.
	second := login()
	sealed := data(e.wxSeal(t, appA, "alice", UserDataDoc{Kind: "profile"}))
	if _, err := p.DecryptProfile(first.SessionKey, sealed); !errors.Is(err, provider.ErrSessionKeyStale) {
		t.Errorf("with the previous session key: %v, want ErrSessionKeyStale", err)
	}
	if pr, err := p.DecryptProfile(second.SessionKey, sealed); err != nil || pr.Nickname != "微信用户" {
		t.Errorf("with the new session key: %+v, %v; want the default profile", pr, err)
	}
}

func TestLogging_WeChatAPIsNeverLogTokensCodesOrNumbers(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, WithLogger(log.NewStdLogger(&buf)))
	tok, _ := e.wxStableToken(t, appA, false)
	forced, _ := e.wxStableToken(t, appA, true)
	code := e.wxMintPhone(t, appA, "alice", "13580006666", "")
	e.wxGetPhone(t, forced, code)
	e.wxGetPhone(t, forced, code) // reuse
	e.post(t, "/cgi-bin/stable_token", wxTokenRequest(provider.App{AppID: appA.AppID, Secret: "wrong-secret"}, false))

	out := buf.String()
	if !strings.Contains(out, "user=alice") || !strings.Contains(out, "stable_token") {
		t.Fatalf("the test logger saw nothing: %q", out)
	}
	for _, secret := range []string{appA.Secret, "wrong-secret", tok, forced, code, "13580006666"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

func TestWeChatState_ExpiredTokensAndCodesAreCollected(t *testing.T) {
	e := newEnv(t)
	e.wxStableToken(t, appA, false)
	e.wxStableToken(t, appA, true)
	e.wxMintPhone(t, appA, "alice", "1", "")
	e.clock.Advance(7200*time.Second + time.Minute)
	e.wxStableToken(t, appB, false) // sweeps
	e.sb.mu.Lock()
	st := e.sb.wechatStateLocked()
	nt, nc, cur := len(st.tokens), len(st.phoneCodes), len(st.current)
	e.sb.mu.Unlock()
	if nt != 1 || nc != 0 || cur != 1 {
		t.Errorf("after expiry: %d tokens, %d phone codes, %d current; want 1, 0, 1 (app B's new token)", nt, nc, cur)
	}
}
