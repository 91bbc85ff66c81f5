package wechat

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

const (
	testAppID = "wx4f4bc4dec97d474b"
	// The secret and the code hold characters that must be escaped in a
	// query string, so a fake that sees them intact proves url.Values works.
	testSecret = "s3cr3t+/&=VALUE#1"
	testCode   = "081aBc+/=&js_code=evil%20x"
	// A real session_key (16 bytes) from platforms.md §1.2.
	testKey    = "M00WVpiHL3Fdo3NOCF0efA=="
	testOpenID = "omQk44_8-cNOV_rX2ATufITJEP3Y"
)

// fakeWeChat starts a code2Session fake that checks every request the way
// WeChat would need it and answers with respond.
func fakeWeChat(t *testing.T, respond http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodGet {
			t.Errorf("method = %s, want GET", r.Method)
		}
		if r.URL.Path != "/sns/jscode2session" {
			t.Errorf("path = %q, want /sns/jscode2session", r.URL.Path)
		}
		q := r.URL.Query()
		want := map[string]string{
			"appid":      testAppID,
			"secret":     testSecret,
			"js_code":    testCode,
			"grant_type": "authorization_code",
		}
		for k, v := range want {
			if got := q.Get(k); got != v {
				t.Errorf("query %s = %q, want %q", k, got, v)
			}
		}
		if len(q) != len(want) {
			t.Errorf("query has %d parameters (%v), want exactly %d", len(q), keys(q), len(want))
		}
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func keys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func answerWith(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func newProvider(t *testing.T, endpoint string, timeout time.Duration) provider.Provider {
	t.Helper()
	p, err := New(provider.App{
		Platform: provider.WeChat,
		AppID:    testAppID,
		Secret:   testSecret,
		Endpoint: endpoint,
		Timeout:  timeout,
	}, provider.Env{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// checkError asserts err is a *provider.Error of the wanted kind and code,
// and that nothing secret leaks through it.
func checkError(t *testing.T, err, wantKind error, wantCode string) *provider.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v", wantKind)
	}
	if !errors.Is(err, wantKind) {
		t.Errorf("err = %v, want kind %v", err, wantKind)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err is %T, want *provider.Error", err)
	}
	if pe.Platform != provider.WeChat {
		t.Errorf("Platform = %q, want %q", pe.Platform, provider.WeChat)
	}
	if pe.Code != wantCode {
		t.Errorf("Code = %q, want %q", pe.Code, wantCode)
	}
	for _, s := range []string{err.Error(), pe.Code, pe.Message} {
		for _, secret := range []string{testSecret, testCode, testKey} {
			if strings.Contains(s, secret) {
				t.Errorf("error text %q contains a secret (%q)", s, secret)
			}
		}
	}
	return pe
}

func TestExchange(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string

		// success
		wantUnionID    string
		wantSessionKey string
		// failure
		wantKind       error
		wantCode       string
		wantRetryAfter time.Duration
		wantMessage    string // substring of Message, when set
	}{
		{
			name:           "success without errcode",
			status:         200,
			contentType:    "application/json; encoding=utf-8",
			body:           `{"session_key":"` + testKey + `","openid":"` + testOpenID + `"}`,
			wantSessionKey: testKey,
		},
		{
			name:           "success with errcode 0 and errmsg ok",
			status:         200,
			contentType:    "application/json",
			body:           `{"errcode":0,"errmsg":"ok","session_key":"` + testKey + `","openid":"` + testOpenID + `"}`,
			wantSessionKey: testKey,
		},
		{
			name:           "success with unionid",
			status:         200,
			contentType:    "application/json",
			body:           `{"openid":"` + testOpenID + `","session_key":"` + testKey + `","unionid":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA"}`,
			wantUnionID:    "ocMvos6NjeKLIBqg5Mr9QjxrP1FA",
			wantSessionKey: testKey,
		},
		{
			name:           "success served as text/plain",
			status:         200,
			contentType:    "text/plain",
			body:           `{"session_key":"` + testKey + `","openid":"` + testOpenID + `"}`,
			wantSessionKey: testKey,
		},
		{
			name:   "success without session_key is accepted",
			status: 200,
			body:   `{"openid":"` + testOpenID + `"}`,
		},
		{
			name:   "success with a session_key that is not base64 drops the key",
			status: 200,
			body:   `{"openid":"` + testOpenID + `","session_key":"!!!!!!!!!!!!!!!!!!!!!!!!"}`,
		},
		{
			name:   "success with a session_key of the wrong length drops the key",
			status: 200,
			body:   `{"openid":"` + testOpenID + `","session_key":"AAAAAAAAAAAAAAAAAAAAAAA="}`,
		},
		{
			name:     "success without openid is unavailable",
			status:   200,
			body:     `{"session_key":"` + testKey + `"}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "errcode as a string",
			status:   200,
			body:     `{"errcode":"40029","errmsg":"invalid code"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "40029",
		},
		{
			name:        "errmsg with a rid suffix",
			status:      200,
			body:        `{"errcode":40029,"errmsg":"invalid code, rid: 652d44d0-1d0af18b-5b069232"}`,
			wantKind:    provider.ErrCodeInvalid,
			wantCode:    "40029",
			wantMessage: "invalid code, rid: 652d44d0-1d0af18b-5b069232",
		},
		{
			name:        "errmsg with a hints suffix",
			status:      200,
			body:        `{"errcode":40163,"errmsg":"code been used, hints: [ req_id: AijFoqaLRa-pTFm4 ]"}`,
			wantKind:    provider.ErrCodeUsed,
			wantCode:    "40163",
			wantMessage: "code been used, hints:",
		},
		{
			name:     "system busy -1 is unavailable",
			status:   200,
			body:     `{"errcode":-1,"errmsg":"system error"}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "-1",
		},
		{
			name:     "40029 invalid code",
			status:   200,
			body:     `{"errcode":40029,"errmsg":"invalid code"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "40029",
		},
		{
			name:     "40163 code been used",
			status:   200,
			body:     `{"errcode":40163,"errmsg":"code been used"}`,
			wantKind: provider.ErrCodeUsed,
			wantCode: "40163",
		},
		{
			name:           "45011 minute quota is rate limited for a minute",
			status:         200,
			body:           `{"errcode":45011,"errmsg":"api minute-quota reach limit mustslower retry next minute"}`,
			wantKind:       provider.ErrRateLimited,
			wantCode:       "45011",
			wantRetryAfter: time.Minute,
		},
		{
			name:     "40226 code blocked is user blocked",
			status:   200,
			body:     `{"errcode":40226,"errmsg":"code blocked"}`,
			wantKind: provider.ErrUserBlocked,
			wantCode: "40226",
		},
		{
			name:     "40013 invalid appid is misconfigured",
			status:   200,
			body:     `{"errcode":40013,"errmsg":"invalid appid"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "40013",
		},
		{
			name:     "41008 missing code is misconfigured",
			status:   200,
			body:     `{"errcode":41008,"errmsg":"missing code"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "41008",
		},
		{
			name:     "41002 appid missing is misconfigured",
			status:   200,
			body:     `{"errcode":41002,"errmsg":"appid missing"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "41002",
		},
		{
			name:     "41004 appsecret missing is misconfigured",
			status:   200,
			body:     `{"errcode":41004,"errmsg":"appsecret missing"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "41004",
		},
		{
			name:     "40125 invalid appsecret is misconfigured",
			status:   200,
			body:     `{"errcode":40125,"errmsg":"invalid appsecret"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "40125",
		},
		{
			name:     "40164 ip not in whitelist is misconfigured",
			status:   200,
			body:     `{"errcode":40164,"errmsg":"invalid ip 116.25.45.231 ipv6 ::ffff:116.25.45.231, not in whitelist rid: 1"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "40164",
		},
		{
			name:     "40243 secret frozen is misconfigured",
			status:   200,
			body:     `{"errcode":40243,"errmsg":"AppSecret is frozen"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "40243",
		},
		{
			name:     "40066 invalid url is misconfigured",
			status:   200,
			body:     `{"errcode":40066,"errmsg":"invalid url"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "40066",
		},
		{
			name:     "40002 invalid grant_type is misconfigured",
			status:   200,
			body:     `{"errcode":40002,"errmsg":"invalid grant_type"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "40002",
		},
		{
			name:     "unknown errcode is unavailable",
			status:   200,
			body:     `{"errcode":99999,"errmsg":"something new"}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "99999",
		},
		{
			name:     "errcode wins over an openid in the same answer",
			status:   200,
			body:     `{"errcode":40029,"errmsg":"invalid code","openid":"` + testOpenID + `"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "40029",
		},
		{
			name:        "errmsg echoing the secret and the code is redacted",
			status:      200,
			body:        `{"errcode":40029,"errmsg":"bad js_code ` + testCode + ` for secret ` + testSecret + `"}`,
			wantKind:    provider.ErrCodeInvalid,
			wantCode:    "40029",
			wantMessage: "[redacted]",
		},
		{
			name:        "long errmsg is truncated",
			status:      200,
			body:        `{"errcode":-1,"errmsg":"` + long + `"}`,
			wantKind:    provider.ErrUnavailable,
			wantCode:    "-1",
			wantMessage: "...",
		},
		{
			name:        "HTTP 500 is unavailable",
			status:      500,
			contentType: "application/json",
			body:        `{"errcode":-1,"errmsg":"system error"}`,
			wantKind:    provider.ErrUnavailable,
		},
		{
			name:        "HTTP 502 with HTML is unavailable",
			status:      502,
			contentType: "text/html",
			body:        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
			wantKind:    provider.ErrUnavailable,
		},
		{
			name:     "empty 200 body is unavailable",
			status:   200,
			body:     "",
			wantKind: provider.ErrUnavailable,
		},
		{
			name:        "HTML with 200 is unavailable",
			status:      200,
			contentType: "text/html",
			body:        "<html><body>maintenance</body></html>",
			wantKind:    provider.ErrUnavailable,
		},
		{
			name:     "truncated JSON is unavailable and does not leak the session_key",
			status:   200,
			body:     `{"session_key":"` + testKey + `","openid":"omQk`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "JSON array is unavailable",
			status:   200,
			body:     `[{"openid":"` + testOpenID + `"}]`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "JSON null is unavailable",
			status:   200,
			body:     `null`,
			wantKind: provider.ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := fakeWeChat(t, answerWith(tt.status, tt.contentType, tt.body))
			p := newProvider(t, srv.URL, 2*time.Second)

			id, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
			if n := calls.Load(); n != 1 {
				t.Errorf("fake called %d times, want 1", n)
			}
			if tt.wantKind != nil {
				pe := checkError(t, err, tt.wantKind, tt.wantCode)
				if id != nil {
					t.Errorf("identity = %+v, want nil on error", id)
				}
				if pe.RetryAfter != tt.wantRetryAfter {
					t.Errorf("RetryAfter = %v, want %v", pe.RetryAfter, tt.wantRetryAfter)
				}
				if tt.wantMessage != "" && !strings.Contains(pe.Message, tt.wantMessage) {
					t.Errorf("Message = %q, want it to contain %q", pe.Message, tt.wantMessage)
				}
				if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3 {
					t.Errorf("Message has %d runes, want at most %d", n, maxMessage+3)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			want := provider.Identity{
				Platform:   provider.WeChat,
				AppID:      testAppID,
				OpenID:     testOpenID,
				UnionID:    tt.wantUnionID,
				SessionKey: tt.wantSessionKey,
			}
			if *id != want {
				t.Errorf("identity = %+v, want %+v", *id, want)
			}
		})
	}
}

func TestExchangeServerHangingPastTimeoutIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv, _ := fakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	p := newProvider(t, srv.URL, 200*time.Millisecond)

	_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeCancelledContextIsUnavailable(t *testing.T) {
	srv, _ := fakeWeChat(t, answerWith(200, "", `{"openid":"`+testOpenID+`"}`))
	p := newProvider(t, srv.URL, 2*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := p.Exchange(ctx, provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeConnectionRefusedIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close() // nothing listens there any more

	p := newProvider(t, endpoint, 2*time.Second)
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeRejectsEmptyOrOversizedCodeWithoutCallingWeChat(t *testing.T) {
	srv, calls := fakeWeChat(t, answerWith(200, "", `{"errcode":41008,"errmsg":"missing code"}`))
	p := newProvider(t, srv.URL, 2*time.Second)

	for _, code := range []string{"", strings.Repeat("a", maxJSCode+1)} {
		_, err := p.Exchange(context.Background(), provider.Credentials{Code: code})
		checkError(t, err, provider.ErrCodeInvalid, "")
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("fake called %d times, want 0", n)
	}
}

func TestExchangeShortCodeDoesNotGarbleTheErrcode(t *testing.T) {
	srv := httptest.NewServer(answerWith(200, "", `{"errcode":40029,"errmsg":"invalid code"}`))
	t.Cleanup(srv.Close)
	p := newProvider(t, srv.URL, 2*time.Second)

	_, err := p.Exchange(context.Background(), provider.Credentials{Code: "4"})
	pe := checkError(t, err, provider.ErrCodeInvalid, "40029")
	if pe.Message != "invalid code" {
		t.Errorf("Message = %q, want %q", pe.Message, "invalid code")
	}
}

func TestEndpointReplacesOnlySchemeHostPort(t *testing.T) {
	for _, suffix := range []string{"", "/"} {
		t.Run("endpoint suffix "+suffix, func(t *testing.T) {
			// The fake fails the test unless the path is /sns/jscode2session.
			srv, calls := fakeWeChat(t, answerWith(200, "", `{"openid":"`+testOpenID+`"}`))
			p := newProvider(t, srv.URL+suffix, 2*time.Second)

			if _, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode}); err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("fake called %d times, want 1", n)
			}
			if got, want := p.(*wechat).url.String(), srv.URL+"/sns/jscode2session"; got != want {
				t.Errorf("url = %q, want %q", got, want)
			}
		})
	}
}

func TestNewWithoutEndpointCallsWeChat(t *testing.T) {
	p := newProvider(t, "", 0)
	if got, want := p.(*wechat).url.String(), "https://api.weixin.qq.com/sns/jscode2session"; got != want {
		t.Errorf("url = %q, want %q", got, want)
	}
}

func TestNewRejectsIncompleteApps(t *testing.T) {
	tests := []struct {
		name    string
		app     provider.App
		wantErr string
	}{
		{"missing secret", provider.App{AppID: testAppID}, "secret: required"},
		{"missing app_id", provider.App{Secret: testSecret}, "app_id: required"},
		{"endpoint with a path", provider.App{AppID: testAppID, Secret: testSecret, Endpoint: "http://127.0.0.1:1/sns"}, "endpoint:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.app.Platform = provider.WeChat
			p, err := New(tt.app, provider.Env{})
			if err == nil {
				t.Fatalf("New = %v, want an error", p)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("err = %q contains the secret", err)
			}
		})
	}
}

// TestDecode covers what the fake can't express as easily: the odd shapes
// of errcode and errmsg.
func TestDecode(t *testing.T) {
	ok := `"openid":"` + testOpenID + `"`
	tests := []struct {
		name     string
		body     string
		wantKind error // nil: success
		wantCode string
		wantMsg  string
	}{
		{"errcode null is success", `{"errcode":null,` + ok + `}`, nil, "", ""},
		{"errcode empty string is success", `{"errcode":"",` + ok + `}`, nil, "", ""},
		{"errcode string 0 is success", `{"errcode":"0","errmsg":"ok",` + ok + `}`, nil, "", ""},
		{"leading whitespace is fine", " \n\t{" + ok + "}\n", nil, "", ""},
		{"errcode written as a float", `{"errcode":40029.0}`, provider.ErrCodeInvalid, "40029", ""},
		{"errcode in exponent form", `{"errcode":4.0029e4}`, provider.ErrCodeInvalid, "40029", ""},
		{"errcode string with spaces", `{"errcode":" 40163 "}`, provider.ErrCodeUsed, "40163", ""},
		{"errcode non-numeric string is unavailable", `{"errcode":"abc"}`, provider.ErrUnavailable, "abc", ""},
		{"errcode boolean is unavailable", `{"errcode":true}`, provider.ErrUnavailable, "true", ""},
		{"errcode fractional is unavailable", `{"errcode":1.5}`, provider.ErrUnavailable, "1.5", ""},
		{"errcode object is unavailable", `{"errcode":{}}`, provider.ErrUnavailable, "{}", ""},
		{"41099 is misconfigured", `{"errcode":41099}`, provider.ErrMisconfigured, "41099", ""},
		{"41100 is unknown", `{"errcode":41100}`, provider.ErrUnavailable, "41100", ""},
		{"errmsg not a string is kept as JSON", `{"errcode":-1,"errmsg":123}`, provider.ErrUnavailable, "-1", "123"},
		{"errmsg control characters are blanked", `{"errcode":-1,"errmsg":"a\nb"}`, provider.ErrUnavailable, "-1", "a b"},
		{"openid of the wrong type is unavailable", `{"openid":12}`, provider.ErrUnavailable, "", ""},
		{"trailing garbage is unavailable", `{` + ok + `}x`, provider.ErrUnavailable, "", ""},
		{"JSON string is unavailable", `"openid"`, provider.ErrUnavailable, "", ""},
		{"JSON number is unavailable", `0`, provider.ErrUnavailable, "", ""},
		{"empty openid is unavailable", `{"openid":""}`, provider.ErrUnavailable, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Decode(200, []byte(tt.body))
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if s.OpenID != testOpenID {
					t.Errorf("OpenID = %q, want %q", s.OpenID, testOpenID)
				}
				return
			}
			pe := checkError(t, err, tt.wantKind, tt.wantCode)
			if tt.wantMsg != "" && pe.Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", pe.Message, tt.wantMsg)
			}
		})
	}
}

// seeds are the documented answers of platforms.md §1, and a few broken ones.
var seeds = []string{
	`{"session_key":"M00WVpiHL3Fdo3NOCF0efA==","openid":"omQk44_8-cNOV_rX2ATufITJEP3Y"}`,
	`{"openid":"OPENID","session_key":"SESSIONKEY","unionid":"UNIONID"}`,
	`{"errcode":0,"errmsg":"ok","openid":"OPENID","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}`,
	`{"errcode":-1,"errmsg":"system error"}`,
	`{"errcode":40029,"errmsg":"invalid code, rid: 652d44d0-1d0af18b-5b069232"}`,
	`{"errcode":"40029","errmsg":"invalid code"}`,
	`{"errcode":40163,"errmsg":"code been used, hints: [ req_id: AijFoqaLRa-pTFm4 ]"}`,
	`{"errcode":45011,"errmsg":"api minute-quota reach limit mustslower retry next minute"}`,
	`{"errcode":40226,"errmsg":"code blocked"}`,
	`{"errcode":40013,"errmsg":"invalid appid"}`,
	`{"errcode":41002,"errmsg":"appid missing"}`,
	`{"errcode":41004,"errmsg":"appsecret missing"}`,
	`{"errcode":41008,"errmsg":"missing code"}`,
	`{"errcode":40125,"errmsg":"invalid appsecret"}`,
	`{"errcode":40066,"errmsg":"invalid url"}`,
	`{"errcode":40164,"errmsg":"invalid ip 116.25.45.231 ipv6 ::ffff:116.25.45.231, not in whitelist rid: 1"}`,
	`{"errcode":99999,"errmsg":"?"}`,
	`<html><body>502 Bad Gateway</body></html>`,
	``,
	`{"session_key":"M00WVpiHL3Fdo3NOCF0efA==","openid":"omQk`,
	`[{"openid":"x"}]`,
	`null`,
}

func FuzzDecode(f *testing.F) {
	for _, s := range seeds {
		f.Add(200, []byte(s))
	}
	f.Add(500, []byte(`{"errcode":-1,"errmsg":"system error"}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	kinds := []error{
		provider.ErrCodeInvalid, provider.ErrCodeUsed, provider.ErrRateLimited,
		provider.ErrUserBlocked, provider.ErrUnavailable, provider.ErrMisconfigured,
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		s, err := Decode(status, body)
		if (s == nil) == (err == nil) {
			t.Fatalf("Decode = (%v, %v): want exactly one of them", s, err)
		}
		if err == nil {
			if s.OpenID == "" {
				t.Fatal("success without openid")
			}
			if status != 200 {
				t.Fatalf("success with HTTP %d", status)
			}
			if s.SessionKey != "" && !validSessionKey(s.SessionKey) {
				t.Fatalf("kept an unusable session_key %q", s.SessionKey)
			}
			return
		}
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("err is %T, want *provider.Error", err)
		}
		if pe.Platform != provider.WeChat {
			t.Fatalf("Platform = %q", pe.Platform)
		}
		known := false
		for _, k := range kinds {
			known = known || pe.Kind == k
		}
		if !known {
			t.Fatalf("unknown kind %v", pe.Kind)
		}
		if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3 {
			t.Fatalf("Message has %d runes", n)
		}
		if n := utf8.RuneCountInString(pe.Code); n > provider.MaxCodeText+3 {
			t.Fatalf("Code has %d runes", n)
		}
		for _, r := range pe.Code + pe.Message {
			if unicode.IsControl(r) {
				t.Fatalf("control character in %q / %q", pe.Code, pe.Message)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	bodies := []struct{ name, body string }{
		{"success", `{"session_key":"M00WVpiHL3Fdo3NOCF0efA==","openid":"omQk44_8-cNOV_rX2ATufITJEP3Y","unionid":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA"}`},
		{"error", `{"errcode":40029,"errmsg":"invalid code, rid: 652d44d0-1d0af18b-5b069232"}`},
	}
	for _, bb := range bodies {
		body := []byte(bb.body)
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, _ = Decode(200, body)
			}
		})
	}
}

// TestRetryableOnlyWhenWeChatDidNotAct: only -1 (system busy) and a 5xx but
// 504 may be retried with the same single-use code; rate limits carry a
// back-off.
func TestRetryableOnlyWhenWeChatDidNotAct(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		body           string
		wantRetryable  bool
		wantRetryAfter time.Duration
	}{
		{name: "-1 system busy", status: 200, body: `{"errcode":-1,"errmsg":"system error"}`, wantRetryable: true},
		{name: "HTTP 503", status: 503, body: "<html>503</html>", wantRetryable: true},
		{name: "HTTP 504 may have acted", status: 504, body: "<html>504</html>"},
		{name: "40029 invalid code", status: 200, body: `{"errcode":40029,"errmsg":"invalid code"}`},
		{name: "40163 code used", status: 200, body: `{"errcode":40163,"errmsg":"code been used"}`},
		{name: "unknown errcode", status: 200, body: `{"errcode":99999,"errmsg":"new"}`},
		{name: "truncated answer may have acted", status: 200, body: `{"openid":"x`},
		{name: "45011 rate limit", status: 200, body: `{"errcode":45011,"errmsg":"api minute-quota reach limit"}`, wantRetryAfter: time.Minute},
		{name: "45009 daily limit", status: 200, body: `{"errcode":45009,"errmsg":"reach max api daily quota limit"}`, wantRetryAfter: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, decode := range []func() error{
				func() error { _, err := Decode(tt.status, []byte(tt.body)); return err },
				func() error { _, err := DecodeAccessToken(tt.status, []byte(tt.body)); return err },
				func() error { _, err := DecodePhoneNumber(tt.status, []byte(tt.body), testAppID); return err },
			} {
				var pe *provider.Error
				if err := decode(); !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a *provider.Error", err)
				}
				if pe.Retryable != tt.wantRetryable || pe.RetryAfter != tt.wantRetryAfter {
					t.Errorf("%v: Retryable = %v, RetryAfter = %v; want %v, %v", pe, pe.Retryable, pe.RetryAfter, tt.wantRetryable, tt.wantRetryAfter)
				}
			}
		})
	}
}
