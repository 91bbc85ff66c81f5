package kuaishou

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
	testAppID = "ks671599070479868434"
	// The secret and the code hold characters that must be escaped in a
	// form body, so a fake that sees them intact proves url.Values works.
	testSecret = "s3cr3t+/&=VALUE#1"
	testCode   = "0F937BAD25DD870B+/=&js_code=evil%20x"
	// The session key of the phone test vector (platforms.md §4.5).
	testKey    = "z7CLMhoYKrPoolWP8SoNew=="
	testOpenID = "f18a8d2b5c7f3ec1a9e4d0a2c8b3f6e1"
)

// fakeKuaishou starts a fake of one Kuaishou endpoint that checks every
// request the way Kuaishou would need it (a form POST with exactly want in
// the body, nothing in the query) and answers with respond.
func fakeKuaishou(t *testing.T, path string, want map[string]string, respond http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if r.URL.Path != path {
			t.Errorf("path = %q, want %q", r.URL.Path, path)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("query = %q, want none (secrets go in the body)", r.URL.RawQuery)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q, want application/x-www-form-urlencoded", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		for k, v := range want {
			if got := r.PostForm.Get(k); got != v {
				t.Errorf("form %s = %q, want %q", k, got, v)
			}
		}
		if len(r.PostForm) != len(want) {
			t.Errorf("form has %d fields (%v), want exactly %d", len(r.PostForm), keys(r.PostForm), len(want))
		}
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

var sessionForm = map[string]string{"app_id": testAppID, "app_secret": testSecret, "js_code": testCode}

func fakeSession(t *testing.T, respond http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	return fakeKuaishou(t, Code2SessionPath, sessionForm, respond)
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

func newKuaishou(t *testing.T, endpoint string, timeout time.Duration) *kuaishou {
	t.Helper()
	p, err := New(provider.App{
		Platform: provider.Kuaishou,
		AppID:    testAppID,
		Secret:   testSecret,
		Endpoint: endpoint,
		Timeout:  timeout,
	}, provider.Env{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*kuaishou)
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
	if pe.Platform != provider.Kuaishou {
		t.Errorf("Platform = %q, want %q", pe.Platform, provider.Kuaishou)
	}
	if pe.Code != wantCode {
		t.Errorf("Code = %q, want %q", pe.Code, wantCode)
	}
	for _, s := range []string{err.Error(), pe.Code, pe.Message} {
		for _, secret := range []string{testSecret, testCode, testKey, testAccessToken} {
			if strings.Contains(s, secret) {
				t.Errorf("error text %q contains a secret (%q)", s, secret)
			}
		}
	}
	return pe
}

func TestExchange(t *testing.T) {
	long := strings.Repeat("x", 5000)
	ok := `"open_id":"` + testOpenID + `","session_key":"` + testKey + `"`
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string

		// success
		wantUnionID    string
		wantSessionKey string
		// failure
		wantKind    error
		wantCode    string
		wantMessage string // substring of Message, when set
	}{
		{
			name:           "documented success",
			status:         200,
			contentType:    "application/json;charset=UTF-8",
			body:           `{"result":1,"session_key":"` + testKey + `","open_id":"` + testOpenID + `"}`,
			wantSessionKey: testKey,
		},
		{
			name:           "result as a string",
			status:         200,
			contentType:    "application/json",
			body:           `{"result":"1",` + ok + `}`,
			wantSessionKey: testKey,
		},
		{
			name:           "result as a float",
			status:         200,
			body:           `{"result":1.0,` + ok + `}`,
			wantSessionKey: testKey,
		},
		{
			name:           "success with union_id",
			status:         200,
			body:           `{"result":1,` + ok + `,"union_id":"u_5e2f0c1b7a9d4e38"}`,
			wantUnionID:    "u_5e2f0c1b7a9d4e38",
			wantSessionKey: testKey,
		},
		{
			name:           "success with unionid spelled the WeChat way",
			status:         200,
			body:           `{"result":1,` + ok + `,"unionid":"u_5e2f0c1b7a9d4e38"}`,
			wantUnionID:    "u_5e2f0c1b7a9d4e38",
			wantSessionKey: testKey,
		},
		{
			name:           "success with an empty union_id",
			status:         200,
			body:           `{"result":1,` + ok + `,"union_id":""}`,
			wantSessionKey: testKey,
		},
		{
			name:           "success served as text/plain",
			status:         200,
			contentType:    "text/plain",
			body:           `{"result":1,` + ok + `}`,
			wantSessionKey: testKey,
		},
		{
			name:           "success with an empty error_msg",
			status:         200,
			body:           `{"result":1,"error_msg":"",` + ok + `}`,
			wantSessionKey: testKey,
		},
		{
			name:           "success without result is tolerated",
			status:         200,
			body:           `{` + ok + `}`,
			wantSessionKey: testKey,
		},
		{
			name:   "success without session_key is accepted",
			status: 200,
			body:   `{"result":1,"open_id":"` + testOpenID + `"}`,
		},
		{
			name:   "success with a session_key that is not base64 drops the key",
			status: 200,
			body:   `{"result":1,"open_id":"` + testOpenID + `","session_key":"!!!!!!!!!!!!!!!!!!!!!!!!"}`,
		},
		{
			name:   "success with a session_key of the wrong length drops the key",
			status: 200,
			body:   `{"result":1,"open_id":"` + testOpenID + `","session_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
		},
		{
			name:     "success without open_id is unavailable",
			status:   200,
			body:     `{"result":1,"session_key":"` + testKey + `"}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:        "100200100 parameter error is misconfigured",
			status:      200,
			body:        `{"result":100200100,"error":"invalid_request","error_msg":"缺少必要的请求参数"}`,
			wantKind:    provider.ErrMisconfigured,
			wantCode:    "100200100",
			wantMessage: "invalid_request: 缺少必要的请求参数",
		},
		{
			name:     "100200101 app_id or app_secret rejected is misconfigured",
			status:   200,
			body:     `{"result":100200101,"error":"unauthorized_client","error_msg":"app 非法"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "100200101",
		},
		{
			name:     "100200102 request rejected is an invalid code",
			status:   200,
			body:     `{"result":100200102,"error":"access_denied","error_msg":"请求被拒绝"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200102",
		},
		{
			name:     "100200103 response type is misconfigured",
			status:   200,
			body:     `{"result":100200103,"error":"unsupported_response_type"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "100200103",
		},
		{
			name:     "100200104 grant type is misconfigured",
			status:   200,
			body:     `{"result":100200104,"error":"unsupported_grant_type"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "100200104",
		},
		{
			name:        "100200105 code error is an invalid code",
			status:      200,
			body:        `{"result":100200105,"error":"invalid_grant","error_msg":"请求的 code 错误"}`,
			wantKind:    provider.ErrCodeInvalid,
			wantCode:    "100200105",
			wantMessage: "invalid_grant",
		},
		{
			name:     "result as a string on error",
			status:   200,
			body:     `{"result":"100200105","error_msg":"code error"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200105",
		},
		{
			name:     "100200106 scope error is an invalid code",
			status:   200,
			body:     `{"result":100200106,"error":"invalid_scope"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200106",
		},
		{
			name:     "100200107 invalid openid is an invalid code",
			status:   200,
			body:     `{"result":100200107,"error":"invalid_openid"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200107",
		},
		{
			name:     "100200109 authorization cancelled is an invalid code",
			status:   200,
			body:     `{"result":100200109,"error_msg":"用户取消该 app 授权"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200109",
		},
		{
			name:     "100200110 authorization expired is an invalid code",
			status:   200,
			body:     `{"result":100200110}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200110",
		},
		{
			name:     "100200111 never authorized is an invalid code",
			status:   200,
			body:     `{"result":100200111}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200111",
		},
		{
			name:     "100200500 server error is unavailable",
			status:   200,
			body:     `{"result":100200500,"error":"server_error","error_msg":"服务内部错误"}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "100200500",
		},
		{
			name:     "another 1002005xx is unavailable",
			status:   200,
			body:     `{"result":100200503,"error_msg":"busy"}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "100200503",
		},
		{
			name:     "mini-game 240001 bad code is an invalid code",
			status:   200,
			body:     `{"result":240001,"error_msg":"invalid code"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "240001",
		},
		{
			name:     "mini-game 240002 bad secret is misconfigured",
			status:   200,
			body:     `{"result":240002,"error_msg":"invalid app_secret"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "240002",
		},
		{
			name:     "mini-game 100 missing params is misconfigured",
			status:   200,
			body:     `{"result":100,"error_msg":"missing params"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "100",
		},
		{
			name:     "100200108 access token expired makes no sense here and is unavailable",
			status:   200,
			body:     `{"result":100200108}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "100200108",
		},
		{
			name:     "unknown result is unavailable",
			status:   200,
			body:     `{"result":99999,"error_msg":"something new"}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "99999",
		},
		{
			name:     "unknown result with a known error name follows the name",
			status:   200,
			body:     `{"result":100200199,"error":"invalid_grant"}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200199",
		},
		{
			name:     "result 0 is not success",
			status:   200,
			body:     `{"result":0,` + ok + `}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "0",
		},
		{
			name:     "an error result wins over an open_id in the same answer",
			status:   200,
			body:     `{"result":100200105,"error":"invalid_grant",` + ok + `}`,
			wantKind: provider.ErrCodeInvalid,
			wantCode: "100200105",
		},
		{
			name:        "no result but an error name",
			status:      200,
			body:        `{"error":"invalid_grant","error_msg":"code error"}`,
			wantKind:    provider.ErrCodeInvalid,
			wantCode:    "invalid_grant",
			wantMessage: "invalid_grant: code error",
		},
		{
			name:     "no result and no open_id is unavailable",
			status:   200,
			body:     `{"session_key":"` + testKey + `"}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:        "error_msg echoing the secret and the code is redacted",
			status:      200,
			body:        `{"result":100200105,"error_msg":"bad js_code ` + testCode + ` for app_secret ` + testSecret + `"}`,
			wantKind:    provider.ErrCodeInvalid,
			wantCode:    "100200105",
			wantMessage: "[redacted]",
		},
		{
			name:     "a non-numeric result echoing the secret is redacted",
			status:   200,
			body:     `{"result":"` + testSecret + `"}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "[redacted]",
		},
		{
			name:        "long error_msg is truncated",
			status:      200,
			body:        `{"result":100200500,"error_msg":"` + long + `"}`,
			wantKind:    provider.ErrUnavailable,
			wantCode:    "100200500",
			wantMessage: "...",
		},
		{
			name:        "HTTP 500 is unavailable",
			status:      500,
			contentType: "application/json",
			body:        `{"result":100200500,"error":"server_error"}`,
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
			name:        "HTTP 404 is unavailable",
			status:      404,
			contentType: "text/html",
			body:        "<html>not found</html>",
			wantKind:    provider.ErrUnavailable,
		},
		{
			name:     "HTTP 201 with a success body is unavailable",
			status:   201,
			body:     `{"result":1,` + ok + `}`,
			wantKind: provider.ErrUnavailable,
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
			body:     `{"result":1,"session_key":"` + testKey + `","open_id":"f18a`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "JSON array is unavailable",
			status:   200,
			body:     `[{"result":1,"open_id":"x"}]`,
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
			srv, calls := fakeSession(t, answerWith(tt.status, tt.contentType, tt.body))
			p := newKuaishou(t, srv.URL, 2*time.Second)

			id, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
			if n := calls.Load(); n != 1 {
				t.Errorf("fake called %d times, want 1", n)
			}
			if tt.wantKind != nil {
				pe := checkError(t, err, tt.wantKind, tt.wantCode)
				if id != nil {
					t.Errorf("identity = %+v, want nil on error", id)
				}
				if pe.RetryAfter != 0 {
					t.Errorf("RetryAfter = %v, want 0 (Kuaishou gives no hint)", pe.RetryAfter)
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
				Platform:   provider.Kuaishou,
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
	srv, _ := fakeSession(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	p := newKuaishou(t, srv.URL, 200*time.Millisecond)

	start := time.Now()
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
	pe := checkError(t, err, provider.ErrUnavailable, "")
	if pe.Message != "timed out" {
		t.Errorf("Message = %q, want %q", pe.Message, "timed out")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Exchange took %v, want about the 200ms timeout", d)
	}
}

func TestExchangeCancelledContextIsUnavailable(t *testing.T) {
	srv, _ := fakeSession(t, answerWith(200, "", `{"result":1,"open_id":"`+testOpenID+`"}`))
	p := newKuaishou(t, srv.URL, 2*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := p.Exchange(ctx, provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeConnectionRefusedIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close() // nothing listens there any more

	p := newKuaishou(t, endpoint, 2*time.Second)
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeRejectsEmptyOrOversizedCodeWithoutCallingKuaishou(t *testing.T) {
	srv, calls := fakeSession(t, answerWith(200, "", `{"result":100200100,"error":"invalid_request"}`))
	p := newKuaishou(t, srv.URL, 2*time.Second)

	for _, code := range []string{"", strings.Repeat("A", maxJSCode+1)} {
		_, err := p.Exchange(context.Background(), provider.Credentials{Code: code})
		checkError(t, err, provider.ErrCodeInvalid, "")
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("fake called %d times, want 0", n)
	}
}

func TestExchangeShortCodeDoesNotGarbleTheMessage(t *testing.T) {
	srv := httptest.NewServer(answerWith(200, "", `{"result":100200105,"error_msg":"code error 1"}`))
	t.Cleanup(srv.Close)
	p := newKuaishou(t, srv.URL, 2*time.Second)

	_, err := p.Exchange(context.Background(), provider.Credentials{Code: "1"})
	pe := checkError(t, err, provider.ErrCodeInvalid, "100200105")
	if pe.Message != "code error 1" {
		t.Errorf("Message = %q, want %q", pe.Message, "code error 1")
	}
}

func TestEndpointReplacesOnlySchemeHostPort(t *testing.T) {
	for _, suffix := range []string{"", "/"} {
		t.Run("endpoint suffix "+suffix, func(t *testing.T) {
			// The fake fails the test unless the path is the documented one.
			srv, calls := fakeSession(t, answerWith(200, "", `{"result":1,"open_id":"`+testOpenID+`"}`))
			p := newKuaishou(t, srv.URL+suffix, 2*time.Second)

			if _, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode}); err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("fake called %d times, want 1", n)
			}
			if got, want := p.sessionURL, srv.URL+"/oauth2/mp/code2session"; got != want {
				t.Errorf("session url = %q, want %q", got, want)
			}
			if got, want := p.tokenURL, srv.URL+"/oauth2/access_token"; got != want {
				t.Errorf("token url = %q, want %q", got, want)
			}
		})
	}
}

func TestNewWithoutEndpointCallsKuaishou(t *testing.T) {
	p := newKuaishou(t, "", 0)
	if got, want := p.sessionURL, "https://open.kuaishou.com/oauth2/mp/code2session"; got != want {
		t.Errorf("session url = %q, want %q", got, want)
	}
	if got, want := p.tokenURL, "https://open.kuaishou.com/oauth2/access_token"; got != want {
		t.Errorf("token url = %q, want %q", got, want)
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
		{"endpoint with a path", provider.App{AppID: testAppID, Secret: testSecret, Endpoint: "http://127.0.0.1:1/oauth2"}, "endpoint:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.app.Platform = provider.Kuaishou
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

func TestNewReturnsATokenFetcherAndDecrypter(t *testing.T) {
	p, err := New(provider.App{Platform: provider.Kuaishou, AppID: testAppID, Secret: testSecret}, provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(provider.TokenFetcher); !ok {
		t.Error("provider is not a provider.TokenFetcher")
	}
	if _, ok := p.(provider.UserDataDecrypter); !ok {
		t.Error("provider is not a provider.UserDataDecrypter")
	}
	if _, ok := p.(provider.PhoneByCode); ok {
		t.Error("provider claims provider.PhoneByCode, which Kuaishou does not offer")
	}
}

// TestDecode covers what the fake can't express as easily: the odd shapes
// of result, error and error_msg.
func TestDecode(t *testing.T) {
	ok := `"open_id":"` + testOpenID + `"`
	tests := []struct {
		name     string
		body     string
		wantKind error // nil: success
		wantCode string
		wantMsg  string
	}{
		{"result null with open_id is success", `{"result":null,` + ok + `}`, nil, "", ""},
		{"result empty string with open_id is success", `{"result":"",` + ok + `}`, nil, "", ""},
		{"result string with spaces", `{"result":" 1 ",` + ok + `}`, nil, "", ""},
		{"leading whitespace is fine", " \n\t{\"result\":1," + ok + "}\n", nil, "", ""},
		{"result in exponent form", `{"result":1.00200105e8}`, provider.ErrCodeInvalid, "100200105", ""},
		{"result non-numeric string is unavailable", `{"result":"abc"}`, provider.ErrUnavailable, "abc", ""},
		{"result boolean is unavailable", `{"result":true,` + ok + `}`, provider.ErrUnavailable, "true", ""},
		{"result fractional is unavailable", `{"result":1.5,` + ok + `}`, provider.ErrUnavailable, "1.5", ""},
		{"result object is unavailable", `{"result":{}}`, provider.ErrUnavailable, "{}", ""},
		{"non-numeric result with a known error name", `{"result":"fail","error":"unauthorized_client"}`, provider.ErrMisconfigured, "fail", "unauthorized_client"},
		{"error_msg not a string is kept as JSON", `{"result":100200500,"error_msg":123}`, provider.ErrUnavailable, "100200500", "123"},
		{"error_msg control characters are blanked", `{"result":100200500,"error_msg":"a\nb"}`, provider.ErrUnavailable, "100200500", "a b"},
		{"error alone", `{"result":100200500,"error":"server_error"}`, provider.ErrUnavailable, "100200500", "server_error"},
		{"no result, error_msg only", `{"error_msg":"boom"}`, provider.ErrUnavailable, "", "boom"},
		{"no result, unknown error name", `{"error":"slow_down"}`, provider.ErrUnavailable, "slow_down", "slow_down"},
		{"no result, config error name", `{"error":"invalid_request"}`, provider.ErrMisconfigured, "invalid_request", "invalid_request"},
		{"open_id of the wrong type is unavailable", `{"result":1,"open_id":12}`, provider.ErrUnavailable, "", ""},
		{"trailing garbage is unavailable", `{"result":1,` + ok + `}x`, provider.ErrUnavailable, "", ""},
		{"JSON string is unavailable", `"open_id"`, provider.ErrUnavailable, "", ""},
		{"JSON number is unavailable", `1`, provider.ErrUnavailable, "", ""},
		{"empty open_id is unavailable", `{"result":1,"open_id":""}`, provider.ErrUnavailable, "", ""},
		{"empty object is unavailable", `{}`, provider.ErrUnavailable, "", ""},
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

// seeds are the documented answers of platforms.md §4, and a few broken ones.
var seeds = []string{
	`{"result":1,"session_key":"z7CLMhoYKrPoolWP8SoNew==","open_id":"f18a8d2b5c7f3ec1a9e4d0a2c8b3f6e1"}`,
	`{"result":"1","session_key":"...","open_id":"..."}`,
	`{"result":1,"session_key":"z7CLMhoYKrPoolWP8SoNew==","open_id":"o","union_id":"u"}`,
	`{"result":100200100,"error":"invalid_request","error_msg":"缺少必要的请求参数"}`,
	`{"result":100200101,"error":"unauthorized_client","error_msg":"app 非法"}`,
	`{"result":100200102,"error":"access_denied"}`,
	`{"result":100200105,"error":"invalid_grant","error_msg":"请求的 code 错误"}`,
	`{"result":100200500,"error":"server_error","error_msg":"服务内部错误"}`,
	`{"result":240001,"error_msg":"invalid code"}`,
	`{"result":240002}`,
	`{"result":100}`,
	`{"error":"invalid_grant"}`,
	`{"result":99999,"error_msg":"?"}`,
	`{"open_id":"o"}`,
	`<html><body>502 Bad Gateway</body></html>`,
	``,
	`{"result":1,"session_key":"z7CLMhoYKrPoolWP8SoNew==","open_id":"f18a`,
	`[{"open_id":"x"}]`,
	`null`,
}

var allKinds = []error{
	provider.ErrCodeInvalid, provider.ErrCodeUsed, provider.ErrRateLimited,
	provider.ErrUserBlocked, provider.ErrUnavailable, provider.ErrMisconfigured,
}

// checkFuzzError holds for every error a decoder returns: a known kind, this
// platform, bounded printable texts.
func checkFuzzError(t *testing.T, err error, kinds []error) {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err is %T, want *provider.Error", err)
	}
	if pe.Platform != provider.Kuaishou {
		t.Fatalf("Platform = %q", pe.Platform)
	}
	known := false
	for _, k := range kinds {
		known = known || pe.Kind == k
	}
	if !known {
		t.Fatalf("unexpected kind %v", pe.Kind)
	}
	if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3 {
		t.Fatalf("Message has %d runes", n)
	}
	if n := utf8.RuneCountInString(pe.Code); n > maxCodeField+3 {
		t.Fatalf("Code has %d runes", n)
	}
	for _, r := range pe.Code + pe.Message {
		if unicode.IsControl(r) {
			t.Fatalf("control character in %q / %q", pe.Code, pe.Message)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range seeds {
		f.Add(200, []byte(s))
	}
	f.Add(500, []byte(`{"result":100200500,"error":"server_error"}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		s, err := Decode(status, body)
		if (s == nil) == (err == nil) {
			t.Fatalf("Decode = (%v, %v): want exactly one of them", s, err)
		}
		// Decoding is a pure function of its input.
		s2, err2 := Decode(status, body)
		if (err == nil) != (err2 == nil) || (s != nil && *s != *s2) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Decode is not deterministic: (%v, %v) then (%v, %v)", s, err, s2, err2)
		}
		if err == nil {
			if s.OpenID == "" {
				t.Fatal("success without open_id")
			}
			if status != 200 {
				t.Fatalf("success with HTTP %d", status)
			}
			if s.SessionKey != "" && !validSessionKey(s.SessionKey) {
				t.Fatalf("kept an unusable session_key %q", s.SessionKey)
			}
			return
		}
		checkFuzzError(t, err, allKinds)
	})
}

func BenchmarkDecode(b *testing.B) {
	bodies := []struct{ name, body string }{
		{"success", `{"result":1,"session_key":"z7CLMhoYKrPoolWP8SoNew==","open_id":"f18a8d2b5c7f3ec1a9e4d0a2c8b3f6e1"}`},
		{"error", `{"result":100200105,"error":"invalid_grant","error_msg":"请求的 code 错误"}`},
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

// TestRetryableOnlyWhenKuaishouDidNotAct: only the 1002005xx family (server
// error) and a 5xx but 504 may be retried with the same single-use code.
func TestRetryableOnlyWhenKuaishouDidNotAct(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		wantRetryable bool
	}{
		{name: "100200500 server error", status: 200, body: `{"result":100200500,"error":"server_error","error_msg":"internal"}`, wantRetryable: true},
		{name: "100200599 in the family", status: 200, body: `{"result":100200599}`, wantRetryable: true},
		{name: "HTTP 503", status: 503, body: "<html>503</html>", wantRetryable: true},
		{name: "HTTP 504 may have acted", status: 504, body: "<html>504</html>"},
		{name: "100200105 invalid grant", status: 200, body: `{"result":100200105,"error":"invalid_grant"}`},
		{name: "unknown result", status: 200, body: `{"result":99999,"error":"server_error"}`},
		{name: "truncated answer may have acted", status: 200, body: `{"result":1,"open_id":"x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, decode := range []func() error{
				func() error { _, err := Decode(tt.status, []byte(tt.body)); return err },
				func() error { _, err := DecodeAccessToken(tt.status, []byte(tt.body)); return err },
			} {
				var pe *provider.Error
				if err := decode(); !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a *provider.Error", err)
				}
				if pe.Retryable != tt.wantRetryable {
					t.Errorf("%v: Retryable = %v, want %v", pe, pe.Retryable, tt.wantRetryable)
				}
			}
		})
	}
}
