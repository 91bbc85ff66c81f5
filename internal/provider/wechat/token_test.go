package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

// testToken looks like a real access token (about 150 URL-safe characters).
const testToken = "84_mpauthTESTtokenA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5z6A7b8C9d0E1f2G3h4I5j6K7l8M9n0O1p2Q3r4S5t6U7v8W9x0Y1z2A3b4C5d6E7f8G9h0I1j2K3l4M5n6-_"

// fakeStableToken starts a stable_token fake that checks every request the
// way WeChat needs it (POST, JSON body with exactly the four fields, no
// query) and answers with respond.
func fakeStableToken(t *testing.T, wantForce bool, respond http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if r.URL.Path != StableTokenPath {
			t.Errorf("path = %q, want %q", r.URL.Path, StableTokenPath)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("query = %q, want none (the secret goes in the body)", r.URL.RawQuery)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		b, _ := io.ReadAll(r.Body)
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("body %q is not JSON: %v", b, err)
		}
		want := map[string]any{"grant_type": "client_credential", "appid": testAppID, "secret": testSecret, "force_refresh": wantForce}
		if len(got) != len(want) {
			t.Errorf("body has fields %v, want exactly %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("body %s = %#v, want %#v", k, got[k], v)
			}
		}
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// fetcher returns the provider as a TokenFetcher.
func fetcher(t *testing.T, endpoint string, timeout time.Duration) provider.TokenFetcher {
	t.Helper()
	f, ok := newProvider(t, endpoint, timeout).(provider.TokenFetcher)
	if !ok {
		t.Fatal("the WeChat provider does not implement provider.TokenFetcher")
	}
	return f
}

// noLeak fails if any of secrets appears in err's text.
func noLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *provider.Error
	texts := []string{err.Error()}
	if errors.As(err, &pe) {
		texts = append(texts, pe.Code, pe.Message)
	}
	for _, s := range texts {
		for _, secret := range secrets {
			if secret != "" && strings.Contains(s, secret) {
				t.Errorf("error text %q contains a secret (%.12q...)", s, secret)
			}
		}
	}
}

func TestFetchAccessToken(t *testing.T) {
	ok := `"access_token":"` + testToken + `"`
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string

		wantExpires    time.Duration // success
		wantKind       error         // failure
		wantCode       string
		wantRetryAfter time.Duration
		wantMessage    string
	}{
		{name: "documented success", status: 200, contentType: "application/json; encoding=utf-8", body: `{` + ok + `,"expires_in":7200}`, wantExpires: 7200 * time.Second},
		{name: "normal mode near refresh returns remaining lifetime", status: 200, body: `{` + ok + `,"expires_in":312}`, wantExpires: 312 * time.Second},
		{name: "success with errcode 0", status: 200, body: `{"errcode":0,"errmsg":"ok",` + ok + `,"expires_in":7200}`, wantExpires: 7200 * time.Second},
		{name: "success served as text/plain", status: 200, contentType: "text/plain", body: `{` + ok + `,"expires_in":7200}`, wantExpires: 7200 * time.Second},
		{name: "expires_in as a string", status: 200, body: `{` + ok + `,"expires_in":"7200"}`, wantExpires: 7200 * time.Second},
		{name: "expires_in as a float", status: 200, body: `{` + ok + `,"expires_in":7200.0}`, wantExpires: 7200 * time.Second},
		{name: "expires_in missing is unavailable", status: 200, body: `{` + ok + `}`, wantKind: provider.ErrUnavailable},
		{name: "expires_in zero is unavailable", status: 200, body: `{` + ok + `,"expires_in":0}`, wantKind: provider.ErrUnavailable},
		{name: "expires_in negative is unavailable", status: 200, body: `{` + ok + `,"expires_in":-5}`, wantKind: provider.ErrUnavailable},
		{name: "expires_in absurdly long is unavailable", status: 200, body: `{` + ok + `,"expires_in":99999999999}`, wantKind: provider.ErrUnavailable},
		{name: "expires_in not a number is unavailable", status: 200, body: `{` + ok + `,"expires_in":"two hours"}`, wantKind: provider.ErrUnavailable},
		{name: "access_token missing is unavailable", status: 200, body: `{"expires_in":7200}`, wantKind: provider.ErrUnavailable},
		{name: "access_token with a space is unavailable", status: 200, body: `{"access_token":"a b","expires_in":7200}`, wantKind: provider.ErrUnavailable},
		{name: "access_token oversized is unavailable", status: 200, body: `{"access_token":"` + strings.Repeat("x", maxAccessToken+1) + `","expires_in":7200}`, wantKind: provider.ErrUnavailable},
		{name: "access_token not a string is unavailable", status: 200, body: `{"access_token":12,"expires_in":7200}`, wantKind: provider.ErrUnavailable},
		{name: "-1 system busy is unavailable", status: 200, body: `{"errcode":-1,"errmsg":"system error"}`, wantKind: provider.ErrUnavailable, wantCode: "-1"},
		{name: "40001 wrong secret is misconfigured", status: 200, body: `{"errcode":40001,"errmsg":"invalid credential"}`, wantKind: provider.ErrMisconfigured, wantCode: "40001"},
		{name: "40002 invalid grant_type is misconfigured", status: 200, body: `{"errcode":40002,"errmsg":"invalid grant_type"}`, wantKind: provider.ErrMisconfigured, wantCode: "40002"},
		{name: "40013 invalid appid is misconfigured", status: 200, body: `{"errcode":40013,"errmsg":"invalid appid, rid: 652d44d0-1d0af18b-5b069232"}`, wantKind: provider.ErrMisconfigured, wantCode: "40013", wantMessage: "invalid appid"},
		{name: "40125 invalid appsecret is misconfigured", status: 200, body: `{"errcode":40125,"errmsg":"invalid appsecret"}`, wantKind: provider.ErrMisconfigured, wantCode: "40125"},
		{name: "40164 IP not whitelisted is misconfigured", status: 200, body: `{"errcode":40164,"errmsg":"invalid ip 116.25.45.231 ipv6 ::ffff:116.25.45.231, not in whitelist rid: 1"}`, wantKind: provider.ErrMisconfigured, wantCode: "40164", wantMessage: "not in whitelist"},
		{name: "40243 secret frozen is misconfigured", status: 200, body: `{"errcode":40243,"errmsg":"AppSecret is frozen"}`, wantKind: provider.ErrMisconfigured, wantCode: "40243"},
		{name: "41002 appid missing is misconfigured", status: 200, body: `{"errcode":41002,"errmsg":"appid missing"}`, wantKind: provider.ErrMisconfigured, wantCode: "41002"},
		{name: "41004 appsecret missing is misconfigured", status: 200, body: `{"errcode":41004,"errmsg":"appsecret missing"}`, wantKind: provider.ErrMisconfigured, wantCode: "41004"},
		{name: "45009 daily limit is rate limited", status: 200, body: `{"errcode":45009,"errmsg":"reach max api daily quota limit"}`, wantKind: provider.ErrRateLimited, wantCode: "45009", wantRetryAfter: time.Minute},
		{name: "45011 minute quota is rate limited for a minute", status: 200, body: `{"errcode":45011,"errmsg":"api minute-quota reach limit mustslower retry next minute"}`, wantKind: provider.ErrRateLimited, wantCode: "45011", wantRetryAfter: time.Minute},
		{name: "errcode as a string", status: 200, body: `{"errcode":"40013","errmsg":"invalid appid"}`, wantKind: provider.ErrMisconfigured, wantCode: "40013"},
		{name: "unknown errcode is unavailable", status: 200, body: `{"errcode":99999,"errmsg":"something new"}`, wantKind: provider.ErrUnavailable, wantCode: "99999"},
		{name: "errcode wins over a token in the same answer", status: 200, body: `{"errcode":40013,` + ok + `,"expires_in":7200}`, wantKind: provider.ErrMisconfigured, wantCode: "40013"},
		{name: "errmsg echoing the secret is redacted", status: 200, body: `{"errcode":40125,"errmsg":"invalid appsecret ` + testSecret + `"}`, wantKind: provider.ErrMisconfigured, wantCode: "40125", wantMessage: "[redacted]"},
		{name: "HTTP 500 is unavailable", status: 500, body: `{"errcode":-1,"errmsg":"system error"}`, wantKind: provider.ErrUnavailable},
		{name: "HTTP 503 with HTML is unavailable", status: 503, contentType: "text/html", body: "<html><body>503 Service Temporarily Unavailable</body></html>", wantKind: provider.ErrUnavailable},
		{name: "HTML with 200 is unavailable", status: 200, contentType: "text/html", body: "<html><body>maintenance</body></html>", wantKind: provider.ErrUnavailable},
		{name: "empty body is unavailable", status: 200, body: "", wantKind: provider.ErrUnavailable},
		{name: "truncated JSON is unavailable and does not leak the token", status: 200, body: `{"access_token":"` + testToken, wantKind: provider.ErrUnavailable},
		{name: "JSON array is unavailable", status: 200, body: `[{` + ok + `}]`, wantKind: provider.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := fakeStableToken(t, false, answerWith(tt.status, tt.contentType, tt.body))
			f := fetcher(t, srv.URL, 2*time.Second)

			tok, err := f.FetchAccessToken(context.Background(), false)
			if n := calls.Load(); n != 1 {
				t.Errorf("fake called %d times, want 1", n)
			}
			noLeak(t, err, testToken)
			if tt.wantKind != nil {
				pe := checkError(t, err, tt.wantKind, tt.wantCode)
				if tok != (provider.AccessToken{}) {
					t.Errorf("token = %+v, want zero on error", tok)
				}
				if pe.RetryAfter != tt.wantRetryAfter {
					t.Errorf("RetryAfter = %v, want %v", pe.RetryAfter, tt.wantRetryAfter)
				}
				if tt.wantMessage != "" && !strings.Contains(pe.Message, tt.wantMessage) {
					t.Errorf("Message = %q, want it to contain %q", pe.Message, tt.wantMessage)
				}
				if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3 {
					t.Errorf("Message has %d runes", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("FetchAccessToken: %v", err)
			}
			if want := (provider.AccessToken{Token: testToken, ExpiresIn: tt.wantExpires}); tok != want {
				t.Errorf("token = %+v, want %+v", tok, want)
			}
		})
	}
}

func TestFetchAccessTokenSendsForceRefresh(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(map[bool]string{false: "normal", true: "forced"}[force], func(t *testing.T) {
			// The fake fails the test unless force_refresh is force.
			srv, calls := fakeStableToken(t, force, answerWith(200, "", `{"access_token":"`+testToken+`","expires_in":7200}`))
			if _, err := fetcher(t, srv.URL+"/", 2*time.Second).FetchAccessToken(context.Background(), force); err != nil {
				t.Fatalf("FetchAccessToken: %v", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("fake called %d times, want 1", n)
			}
		})
	}
}

func TestFetchAccessTokenServerHangingPastTimeoutIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv, _ := fakeStableToken(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })

	start := time.Now()
	_, err := fetcher(t, srv.URL, 200*time.Millisecond).FetchAccessToken(context.Background(), false)
	checkError(t, err, provider.ErrUnavailable, "")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v, want about the 200ms timeout", d)
	}
}

func TestFetchAccessTokenDefaultsToWeChat(t *testing.T) {
	p := newProvider(t, "", 0).(*wechat)
	if got, want := p.endpointURL(StableTokenPath), "https://api.weixin.qq.com/cgi-bin/stable_token"; got != want {
		t.Errorf("url = %q, want %q", got, want)
	}
}

// tokenSeeds are the documented stable_token answers and broken ones.
var tokenSeeds = []string{
	`{"access_token":"ACCESS_TOKEN","expires_in":7200}`,
	`{"access_token":"ACCESS_TOKEN","expires_in":"7200"}`,
	`{"errcode":0,"errmsg":"ok","access_token":"ACCESS_TOKEN","expires_in":300}`,
	`{"errcode":-1,"errmsg":"system error"}`,
	`{"errcode":40013,"errmsg":"invalid appid"}`,
	`{"errcode":40125,"errmsg":"invalid appsecret"}`,
	`{"errcode":40164,"errmsg":"invalid ip 116.25.45.231 ipv6 ::ffff:116.25.45.231, not in whitelist rid: 1"}`,
	`{"errcode":40243,"errmsg":"AppSecret is frozen"}`,
	`{"errcode":45009,"errmsg":"reach max api daily quota limit"}`,
	`{"errcode":45011,"errmsg":"api minute-quota reach limit mustslower retry next minute"}`,
	`{"errcode":"40013"}`,
	`{"access_token":"ACCESS_TOKEN"}`,
	`{"access_token":"","expires_in":7200}`,
	`<html>502</html>`,
	``,
	`null`,
	`{"access_token":"ACC`,
}

func FuzzDecodeAccessToken(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add(200, []byte(s))
	}
	f.Add(503, []byte(`<html>503</html>`))
	kinds := []error{provider.ErrUnavailable, provider.ErrMisconfigured, provider.ErrRateLimited}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, err := DecodeAccessToken(status, body)
		tok2, err2 := DecodeAccessToken(status, body)
		if tok != tok2 || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: (%v, %v) then (%v, %v)", tok, err, tok2, err2)
		}
		if err == nil {
			if status != 200 {
				t.Fatalf("success with HTTP %d", status)
			}
			if tok.Token == "" || len(tok.Token) > maxAccessToken || strings.ContainsAny(tok.Token, " \t\r\n") {
				t.Fatalf("unusable token %q accepted", tok.Token)
			}
			if tok.ExpiresIn < time.Second || tok.ExpiresIn > maxTokenLifetime {
				t.Fatalf("ExpiresIn %v out of range", tok.ExpiresIn)
			}
			return
		}
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("err is %T, want *provider.Error", err)
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
	})
}

func BenchmarkDecodeAccessToken(b *testing.B) {
	body := []byte(`{"access_token":"` + testToken + `","expires_in":7200}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, _ = DecodeAccessToken(200, body)
	}
}
