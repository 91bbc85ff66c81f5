package douyin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

const (
	testAppID = "tt07e3715e98c9aac0"
	// The secret and the codes hold characters JSON must escape, so a fake
	// that sees them intact proves the body is encoded properly.
	testSecret = `s3cr3t"\<&>VALUE`
	testCode   = `fb93de745"\xBa9DyeMuM8q4QQLeD`
	testAnon   = `anon9de745<>&xBa9DyeMuM8q4QQLeD`
	// The real session_key and openid of platforms.md §3.1.
	testKey     = "fmINRdLK7DauAM72joFfZQ=="
	testOpenID  = "_000kVq7iperbx_ahVxxxxxx"
	testAnonID  = "_000anonymousQ3ZLkNWSHxs"
	testUnionID = "f7510d9a-7ba1-4ab0-8e8e-5b3c1e0f2a44"
)

// realSuccess is the real answer quoted in platforms.md §3.1.
const realSuccess = `{"err_no":0,"err_tips":"success","data":{"session_key":"fmINRdLK7DauAM72joFfZQ==","openid":"_000kVq7iperbx_ahVxxxxxx","anonymous_openid":"","unionid":"","dopenid":""}}`

// emptyData is the data object of an error answer (by analogy with the
// documented token error, platforms.md §3.1).
const emptyData = `"data":{"session_key":"","openid":"","anonymous_openid":"","unionid":"","dopenid":""}`

type fakeCall struct {
	method, path, contentType string
	body                      map[string]any
}

// fakeDouyin starts a fake that records each request and answers with
// respond.
func fakeDouyin(t *testing.T, respond http.HandlerFunc) (*httptest.Server, *atomic.Int32, func() fakeCall) {
	t.Helper()
	var calls atomic.Int32
	var last atomic.Pointer[fakeCall]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		c := fakeCall{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type")}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &c.body); err != nil {
			t.Errorf("request body %q is not a JSON object: %v", b, err)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("query %q, want none (secrets go in the body)", r.URL.RawQuery)
		}
		last.Store(&c)
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls, func() fakeCall {
		c := last.Load()
		if c == nil {
			t.Fatal("the fake was not called")
		}
		return *c
	}
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

func newApp(endpoint string, timeout time.Duration, allowGuests bool) provider.App {
	return provider.App{
		Platform:    provider.Douyin,
		AppID:       testAppID,
		Secret:      testSecret,
		Endpoint:    endpoint,
		Timeout:     timeout,
		AllowGuests: allowGuests,
	}
}

func newProvider(t *testing.T, app provider.App) *douyin {
	t.Helper()
	p, err := New(app, provider.Env{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*douyin)
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
	if pe.Platform != provider.Douyin {
		t.Errorf("Platform = %q, want %q", pe.Platform, provider.Douyin)
	}
	if pe.Code != wantCode {
		t.Errorf("Code = %q, want %q", pe.Code, wantCode)
	}
	for _, s := range []string{err.Error(), pe.Code, pe.Message} {
		for _, secret := range []string{testSecret, testCode, testAnon, testKey} {
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
		creds       provider.Credentials
		allowGuests bool
		status      int
		contentType string
		body        string

		want *provider.Identity // success (Platform and AppID filled in)
		// failure
		wantKind    error
		wantCode    string
		wantMessage string // substring of Message, when set
	}{
		{
			name:        "real success answer",
			creds:       provider.Credentials{Code: testCode},
			status:      200,
			contentType: "application/json; charset=utf-8",
			body:        realSuccess,
			want:        &provider.Identity{OpenID: testOpenID, SessionKey: testKey},
		},
		{
			name:   "success with unionid and log_id",
			creds:  provider.Credentials{Code: testCode},
			status: 200,
			body:   `{"err_no":0,"err_tips":"success","log_id":"2024102117013250E8ABC6F2D070B1C2D3","data":{"session_key":"` + testKey + `","openid":"` + testOpenID + `","anonymous_openid":"","unionid":"` + testUnionID + `","dopenid":""}}`,
			want:   &provider.Identity{OpenID: testOpenID, SessionKey: testKey, UnionID: testUnionID},
		},
		{
			name:   "code and anonymous code together give both ids",
			creds:  provider.Credentials{Code: testCode, AnonymousCode: testAnon},
			status: 200,
			body:   `{"err_no":0,"err_tips":"success","data":{"session_key":"` + testKey + `","openid":"` + testOpenID + `","anonymous_openid":"` + testAnonID + `","unionid":"","dopenid":""}}`,
			want:   &provider.Identity{OpenID: testOpenID, SessionKey: testKey, AnonymousOpenID: testAnonID},
		},
		{
			name:        "code and anonymous code on an app without guests still log in",
			creds:       provider.Credentials{Code: testCode, AnonymousCode: testAnon},
			allowGuests: false,
			status:      200,
			body:        `{"err_no":0,"err_tips":"success","data":{"session_key":"` + testKey + `","openid":"` + testOpenID + `","anonymous_openid":"` + testAnonID + `","unionid":"","dopenid":""}}`,
			want:        &provider.Identity{OpenID: testOpenID, SessionKey: testKey, AnonymousOpenID: testAnonID},
		},
		{
			name:        "guest answer with guests allowed",
			creds:       provider.Credentials{AnonymousCode: testAnon},
			allowGuests: true,
			status:      200,
			body:        `{"err_no":0,"err_tips":"success","data":{"session_key":"","openid":"","anonymous_openid":"` + testAnonID + `","unionid":"","dopenid":""}}`,
			want:        &provider.Identity{AnonymousOpenID: testAnonID},
		},
		{
			name:        "guest-only answer to a real code without guests allowed",
			creds:       provider.Credentials{Code: testCode, AnonymousCode: testAnon},
			allowGuests: false,
			status:      200,
			body:        `{"err_no":0,"err_tips":"success","data":{"session_key":"","openid":"","anonymous_openid":"` + testAnonID + `","unionid":"","dopenid":""}}`,
			wantKind:    provider.ErrGuestNotAllowed,
			wantMessage: GuestNotAllowedMessage,
		},
		{
			name:   "err_no as a string 0 is success",
			creds:  provider.Credentials{Code: testCode},
			status: 200,
			body:   `{"err_no":"0","err_tips":"success","data":{"session_key":"` + testKey + `","openid":"` + testOpenID + `"}}`,
			want:   &provider.Identity{OpenID: testOpenID, SessionKey: testKey},
		},
		{
			name:   "success served as text/plain",
			creds:  provider.Credentials{Code: testCode},
			status: 200, contentType: "text/plain",
			body: realSuccess,
			want: &provider.Identity{OpenID: testOpenID, SessionKey: testKey},
		},
		{
			name:   "empty session_key is accepted without a key",
			creds:  provider.Credentials{Code: testCode},
			status: 200,
			body:   `{"err_no":0,"err_tips":"success","data":{"session_key":"","openid":"` + testOpenID + `","anonymous_openid":"","unionid":""}}`,
			want:   &provider.Identity{OpenID: testOpenID},
		},
		{
			name:   "session_key of the wrong length is dropped",
			creds:  provider.Credentials{Code: testCode},
			status: 200,
			body:   `{"err_no":0,"data":{"session_key":"AAAAAAAAAAAAAAAAAAAAAAA=","openid":"` + testOpenID + `"}}`,
			want:   &provider.Identity{OpenID: testOpenID},
		},
		{
			name:     "success with only empty strings is unavailable",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":0,"err_tips":"success",` + emptyData + `}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "success without data is unavailable",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":0,"err_tips":"success"}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "40018 bad code (invalid, used or expired) is code invalid",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":40018,"err_tips":"bad code",` + emptyData + `}`,
			wantKind: provider.ErrCodeInvalid, wantCode: "40018", wantMessage: "bad code",
		},
		{
			name:     "err_no as a string",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":"40018","err_tips":"bad code",` + emptyData + `}`,
			wantKind: provider.ErrCodeInvalid, wantCode: "40018",
		},
		{
			name:        "40019 bad anonymous code is code invalid",
			creds:       provider.Credentials{AnonymousCode: testAnon},
			allowGuests: true,
			status:      200,
			body:        `{"err_no":40019,"err_tips":"bad anonymous_code",` + emptyData + `}`,
			wantKind:    provider.ErrCodeInvalid, wantCode: "40019",
		},
		{
			name:     "-1 system error is unavailable",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":-1,"err_tips":"system error",` + emptyData + `}`,
			wantKind: provider.ErrUnavailable, wantCode: "-1",
		},
		{
			name:     "40014 bad params is misconfigured",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":40014,"err_tips":"bad params"}`,
			wantKind: provider.ErrMisconfigured, wantCode: "40014",
		},
		{
			name:     "40015 bad appid is misconfigured",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":40015,"err_tips":"bad appid",` + emptyData + `}`,
			wantKind: provider.ErrMisconfigured, wantCode: "40015",
		},
		{
			name:     "40017 bad secret is misconfigured",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":40017,"err_tips":"bad secret",` + emptyData + `}`,
			wantKind: provider.ErrMisconfigured, wantCode: "40017",
		},
		{
			name:     "unknown err_no is unavailable",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":28001005,"err_tips":"internal error"}`,
			wantKind: provider.ErrUnavailable, wantCode: "28001005",
		},
		{
			name:     "err_no wins over an openid in the same answer",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":40018,"err_tips":"bad code","data":{"openid":"` + testOpenID + `","session_key":"` + testKey + `"}}`,
			wantKind: provider.ErrCodeInvalid, wantCode: "40018",
		},
		{
			name:        "log_id is kept for the operator",
			creds:       provider.Credentials{Code: testCode},
			status:      200,
			body:        `{"err_no":-1,"err_tips":"system error","log_id":"20240116204738BF50CE363C57B719C353"}`,
			wantKind:    provider.ErrUnavailable,
			wantCode:    "-1",
			wantMessage: "system error, log_id: 20240116204738BF50CE363C57B719C353",
		},
		{
			name:        "err_tips echoing the secret and the codes is redacted",
			creds:       provider.Credentials{Code: testCode, AnonymousCode: testAnon},
			status:      200,
			body:        `{"err_no":40018,"err_tips":` + jsonString("bad code "+testCode+" anon "+testAnon+" secret "+testSecret) + `}`,
			wantKind:    provider.ErrCodeInvalid,
			wantCode:    "40018",
			wantMessage: "[redacted]",
		},
		{
			name:        "long err_tips is truncated",
			creds:       provider.Credentials{Code: testCode},
			status:      200,
			body:        `{"err_no":-1,"err_tips":"` + long + `"}`,
			wantKind:    provider.ErrUnavailable,
			wantCode:    "-1",
			wantMessage: "...",
		},
		{
			name:        "HTTP 500 is unavailable",
			creds:       provider.Credentials{Code: testCode},
			status:      500,
			contentType: "application/json",
			body:        `{"err_no":-1,"err_tips":"system error"}`,
			wantKind:    provider.ErrUnavailable,
		},
		{
			name:        "HTTP 502 with HTML is unavailable",
			creds:       provider.Credentials{Code: testCode},
			status:      502,
			contentType: "text/html",
			body:        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
			wantKind:    provider.ErrUnavailable,
		},
		{
			name:        "HTML with 200 is unavailable",
			creds:       provider.Credentials{Code: testCode},
			status:      200,
			contentType: "text/html",
			body:        "<html><body>maintenance</body></html>",
			wantKind:    provider.ErrUnavailable,
		},
		{
			name:     "empty 200 body is unavailable",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "truncated JSON is unavailable and does not leak the session_key",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"err_no":0,"err_tips":"success","data":{"session_key":"` + testKey + `","openid":"_000k`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "legacy v1 flat answer is not a v2 answer",
			creds:    provider.Credentials{Code: testCode},
			status:   200,
			body:     `{"error":0,"session_key":"` + testKey + `","openid":"` + testOpenID + `","anonymous_openid":""}`,
			wantKind: provider.ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls, last := fakeDouyin(t, answerWith(tt.status, tt.contentType, tt.body))
			p := newProvider(t, newApp(srv.URL, 2*time.Second, tt.allowGuests))

			id, err := p.Exchange(context.Background(), tt.creds)
			if n := calls.Load(); n != 1 {
				t.Fatalf("fake called %d times, want 1", n)
			}
			c := last()
			if c.method != http.MethodPost || c.path != SessionPath || !strings.HasPrefix(c.contentType, "application/json") {
				t.Errorf("request %s %s (%s), want POST %s (application/json)", c.method, c.path, c.contentType, SessionPath)
			}
			if tt.wantKind != nil {
				pe := checkError(t, err, tt.wantKind, tt.wantCode)
				if id != nil {
					t.Errorf("identity = %+v, want nil on error", id)
				}
				if tt.wantMessage != "" && !strings.Contains(pe.Message, tt.wantMessage) {
					t.Errorf("Message = %q, want it to contain %q", pe.Message, tt.wantMessage)
				}
				if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3+len(", log_id: ")+maxLogID+3 {
					t.Errorf("Message has %d runes", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			want := *tt.want
			want.Platform, want.AppID = provider.Douyin, testAppID
			if *id != want {
				t.Errorf("identity = %+v, want %+v", *id, want)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestExchangeSendsOnlyTheCodesGiven(t *testing.T) {
	tests := []struct {
		name  string
		creds provider.Credentials
		want  map[string]any
	}{
		{"code only", provider.Credentials{Code: testCode},
			map[string]any{"appid": testAppID, "secret": testSecret, "code": testCode}},
		{"anonymous code only", provider.Credentials{AnonymousCode: testAnon},
			map[string]any{"appid": testAppID, "secret": testSecret, "anonymous_code": testAnon}},
		{"both", provider.Credentials{Code: testCode, AnonymousCode: testAnon},
			map[string]any{"appid": testAppID, "secret": testSecret, "code": testCode, "anonymous_code": testAnon}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, last := fakeDouyin(t, answerWith(200, "application/json", `{"err_no":0,"data":{"openid":"`+testOpenID+`","anonymous_openid":"`+testAnonID+`"}}`))
			p := newProvider(t, newApp(srv.URL, 2*time.Second, true))
			if _, err := p.Exchange(context.Background(), tt.creds); err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if got := last().body; !maps.Equal(got, tt.want) {
				t.Errorf("body = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExchangeRefusesWithoutCallingDouyin(t *testing.T) {
	tests := []struct {
		name        string
		creds       provider.Credentials
		allowGuests bool
		wantKind    error
	}{
		{"no code at all", provider.Credentials{}, true, provider.ErrCodeInvalid},
		{"oversized code", provider.Credentials{Code: strings.Repeat("a", maxLoginCode+1)}, true, provider.ErrCodeInvalid},
		{"oversized anonymous code", provider.Credentials{Code: testCode, AnonymousCode: strings.Repeat("a", maxLoginCode+1)}, true, provider.ErrCodeInvalid},
		{"anonymous code alone on an app without guests", provider.Credentials{AnonymousCode: testAnon}, false, provider.ErrGuestNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls, _ := fakeDouyin(t, answerWith(200, "", realSuccess))
			p := newProvider(t, newApp(srv.URL, 2*time.Second, tt.allowGuests))
			_, err := p.Exchange(context.Background(), tt.creds)
			pe := checkError(t, err, tt.wantKind, "")
			if tt.wantKind == provider.ErrGuestNotAllowed && pe.Message != GuestNotAllowedMessage {
				t.Errorf("Message = %q, want %q", pe.Message, GuestNotAllowedMessage)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("fake called %d times, want 0", n)
			}
		})
	}
}

func TestExchangeServerHangingPastTimeoutIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv, _, _ := fakeDouyin(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	p := newProvider(t, newApp(srv.URL, 200*time.Millisecond, false))

	start := time.Now()
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
	pe := checkError(t, err, provider.ErrUnavailable, "")
	if pe.Message != "timed out" {
		t.Errorf("Message = %q, want %q", pe.Message, "timed out")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v, want about the 200ms timeout", d)
	}
}

func TestExchangeCancelledContextIsUnavailable(t *testing.T) {
	srv, _, _ := fakeDouyin(t, answerWith(200, "", realSuccess))
	p := newProvider(t, newApp(srv.URL, 2*time.Second, false))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := p.Exchange(ctx, provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeConnectionRefusedIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close()

	p := newProvider(t, newApp(endpoint, 2*time.Second, false))
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeShortCodeDoesNotGarbleTheErrNo(t *testing.T) {
	srv := httptest.NewServer(answerWith(200, "", `{"err_no":40018,"err_tips":"bad code"}`))
	t.Cleanup(srv.Close)
	p := newProvider(t, newApp(srv.URL, 2*time.Second, false))

	_, err := p.Exchange(context.Background(), provider.Credentials{Code: "4"})
	pe := checkError(t, err, provider.ErrCodeInvalid, "40018")
	if pe.Message != "bad code" {
		t.Errorf("Message = %q, want %q", pe.Message, "bad code")
	}
}

func TestNewURLs(t *testing.T) {
	tests := []struct {
		name, endpoint       string
		wantSession, wantTok string
	}{
		{"default host", "", DefaultBaseURL + SessionPath, DefaultBaseURL + TokenPath},
		{"endpoint override", "http://127.0.0.1:8001", "http://127.0.0.1:8001" + SessionPath, "http://127.0.0.1:8001" + TokenPath},
		{"endpoint with a trailing slash", "http://127.0.0.1:8001/", "http://127.0.0.1:8001" + SessionPath, "http://127.0.0.1:8001" + TokenPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, newApp(tt.endpoint, 0, false))
			if p.sessionURL != tt.wantSession || p.tokenURL != tt.wantTok {
				t.Errorf("urls = %q, %q; want %q, %q", p.sessionURL, p.tokenURL, tt.wantSession, tt.wantTok)
			}
		})
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
		{"endpoint with a path", provider.App{AppID: testAppID, Secret: testSecret, Endpoint: "http://127.0.0.1:1/api"}, "endpoint:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.app.Platform = provider.Douyin
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

// TestDecode covers the odd shapes of err_no, err_tips and data.
func TestDecode(t *testing.T) {
	data := `"data":{"openid":"` + testOpenID + `"}`
	tests := []struct {
		name     string
		body     string
		wantKind error // nil: success
		wantCode string
		wantMsg  string
	}{
		{"err_no null is success", `{"err_no":null,` + data + `}`, nil, "", ""},
		{"err_no empty string is success", `{"err_no":"",` + data + `}`, nil, "", ""},
		{"err_no absent is success", `{` + data + `}`, nil, "", ""},
		{"unknown fields are ignored", `{"err_no":0,"extra":[1,2],"data":{"openid":"` + testOpenID + `","dopenid":"x","refresh":true}}`, nil, "", ""},
		{"null fields count as absent", `{"err_no":0,"data":{"openid":"` + testOpenID + `","unionid":null,"session_key":null}}`, nil, "", ""},
		{"leading whitespace is fine", " \n\t{" + data + "}\n", nil, "", ""},
		{"err_no written as a float", `{"err_no":40018.0}`, provider.ErrCodeInvalid, "40018", ""},
		{"err_no in exponent form", `{"err_no":4.0018e4}`, provider.ErrCodeInvalid, "40018", ""},
		{"err_no string with spaces", `{"err_no":" 40017 "}`, provider.ErrMisconfigured, "40017", ""},
		{"err_no string -1", `{"err_no":"-1"}`, provider.ErrUnavailable, "-1", ""},
		{"err_no non-numeric string is unavailable", `{"err_no":"abc"}`, provider.ErrUnavailable, "abc", ""},
		{"err_no boolean is unavailable", `{"err_no":true}`, provider.ErrUnavailable, "true", ""},
		{"err_no fractional is unavailable", `{"err_no":1.5}`, provider.ErrUnavailable, "1.5", ""},
		{"err_no object is unavailable", `{"err_no":{}}`, provider.ErrUnavailable, "{}", ""},
		{"40020 is misconfigured", `{"err_no":40020}`, provider.ErrMisconfigured, "40020", ""},
		{"err_tips not a string is kept as JSON", `{"err_no":-1,"err_tips":123}`, provider.ErrUnavailable, "-1", "123"},
		{"err_tips control characters are blanked", `{"err_no":-1,"err_tips":"a\nb"}`, provider.ErrUnavailable, "-1", "a b"},
		{"log_id without err_tips", `{"err_no":-1,"log_id":"L1"}`, provider.ErrUnavailable, "-1", "log_id: L1"},
		{"data null is unavailable", `{"err_no":0,"data":null}`, provider.ErrUnavailable, "", ""},
		{"data a string is unavailable", `{"err_no":0,"data":"openid"}`, provider.ErrUnavailable, "", ""},
		{"openid of the wrong type is unavailable", `{"err_no":0,"data":{"openid":12}}`, provider.ErrUnavailable, "", ""},
		{"trailing garbage is unavailable", `{` + data + `}x`, provider.ErrUnavailable, "", ""},
		{"JSON array is unavailable", `[{` + data + `}]`, provider.ErrUnavailable, "", ""},
		{"JSON null is unavailable", `null`, provider.ErrUnavailable, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Decode(200, []byte(tt.body))
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if s.OpenID != testOpenID || s.UnionID != "" || s.SessionKey != "" {
					t.Errorf("Session = %+v, want only OpenID %q", s, testOpenID)
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

func TestDecodeSessionKeyOnlyWithOpenID(t *testing.T) {
	// A guest answer never carries a session key; one that does is not
	// trusted with one (nothing to decrypt for a guest).
	s, err := Decode(200, []byte(`{"err_no":0,"data":{"session_key":"`+testKey+`","anonymous_openid":"`+testAnonID+`"}}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if want := (Session{AnonymousOpenID: testAnonID}); *s != want {
		t.Errorf("Session = %+v, want %+v", *s, want)
	}
}

// sessionSeeds are the documented answers of platforms.md §3.1 and broken
// ones.
var sessionSeeds = []string{
	realSuccess,
	`{"err_no":0,"err_tips":"success","log_id":"2024102117013250E8ABC6F2D070B1C2D3","data":{"session_key":"fmINRdLK7DauAM72joFfZQ==","openid":"_000kVq7iperbx_ahVxxxxxx","anonymous_openid":"_000anon","unionid":"u","dopenid":""}}`,
	`{"err_no":0,"err_tips":"success","data":{"session_key":"","openid":"","anonymous_openid":"_000anon","unionid":"","dopenid":""}}`,
	`{"err_no":40018,"err_tips":"bad code",` + emptyData + `}`,
	`{"err_no":"40018","err_tips":"bad code"}`,
	`{"err_no":40019,"err_tips":"bad anonymous_code"}`,
	`{"err_no":-1,"err_tips":"system error"}`,
	`{"err_no":40014,"err_tips":"bad params"}`,
	`{"err_no":40015,"err_tips":"bad appid"}`,
	`{"err_no":40017,"err_tips":"bad secret"}`,
	`{"errcode":40018,"errmsg":"bad code","error":3,"message":"bad code"}`,
	`<html><body>502 Bad Gateway</body></html>`,
	``,
	`{"err_no":0,"data":{"session_key":"fmINRdLK7DauAM72joFfZQ==","openid":"_000`,
	`[{"openid":"x"}]`,
	`null`,
}

var allKinds = []error{
	provider.ErrCodeInvalid, provider.ErrCodeUsed, provider.ErrRateLimited,
	provider.ErrUserBlocked, provider.ErrUnavailable, provider.ErrMisconfigured,
	provider.ErrGuestNotAllowed, provider.ErrAccessTokenInvalid, provider.ErrDecrypt,
	provider.ErrSessionKeyStale, provider.ErrWatermark, provider.ErrNotSupported,
}

// checkFuzzError is the property every decoder error must have.
func checkFuzzError(t *testing.T, err error, kinds ...error) {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err is %T, want *provider.Error", err)
	}
	if pe.Platform != provider.Douyin {
		t.Fatalf("Platform = %q", pe.Platform)
	}
	if !slices.Contains(kinds, pe.Kind) {
		t.Fatalf("unexpected kind %v", pe.Kind)
	}
	if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3+len(", log_id: ")+maxLogID+3 {
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
}

func FuzzDecode(f *testing.F) {
	for _, s := range sessionSeeds {
		f.Add(200, []byte(s))
	}
	f.Add(500, []byte(`{"err_no":-1,"err_tips":"system error"}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		s, err := Decode(status, body)
		s2, err2 := Decode(status, body)
		if (s == nil) == (err == nil) {
			t.Fatalf("Decode = (%v, %v): want exactly one of them", s, err)
		}
		if (err == nil) != (err2 == nil) || (s != nil && *s != *s2) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Decode is not deterministic: (%v, %v) then (%v, %v)", s, err, s2, err2)
		}
		if err == nil {
			if s.OpenID == "" && s.AnonymousOpenID == "" {
				t.Fatal("success without openid or anonymous_openid")
			}
			if status != 200 {
				t.Fatalf("success with HTTP %d", status)
			}
			if s.SessionKey != "" && (!validSessionKey(s.SessionKey) || s.OpenID == "") {
				t.Fatalf("kept an unusable session_key %q", s.SessionKey)
			}
			return
		}
		checkFuzzError(t, err, provider.ErrCodeInvalid, provider.ErrUnavailable, provider.ErrMisconfigured)
	})
}

func BenchmarkDecode(b *testing.B) {
	bodies := []struct{ name, body string }{
		{"success", realSuccess},
		{"error", `{"err_no":40018,"err_tips":"bad code","log_id":"20240116204738BF50CE363C57B719C353",` + emptyData + `}`},
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

// TestRetryableOnlyWhenDouyinDidNotAct: only -1 (system error) and a 5xx
// but 504 may be retried with the same single-use code.
func TestRetryableOnlyWhenDouyinDidNotAct(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		wantRetryable bool
	}{
		{name: "-1 system error", status: 200, body: `{"err_no":-1,"err_tips":"系统错误"}`, wantRetryable: true},
		{name: "HTTP 503", status: 503, body: "<html>503</html>", wantRetryable: true},
		{name: "HTTP 504 may have acted", status: 504, body: "<html>504</html>"},
		{name: "40018 bad code", status: 200, body: `{"err_no":40018,"err_tips":"bad code"}`},
		{name: "unknown err_no", status: 200, body: `{"err_no":99999,"err_tips":"new"}`},
		{name: "truncated answer may have acted", status: 200, body: `{"err_no":0,"data":{"openid":"x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, decode := range []func() error{
				func() error { _, err := Decode(tt.status, []byte(tt.body)); return err },
				func() error { _, err := DecodeToken(tt.status, []byte(tt.body)); return err },
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
