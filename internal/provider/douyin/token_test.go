package douyin

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// The documented answers of platforms.md §3.4.
const (
	tokenSuccess = `{"err_no":0,"err_tips":"success","data":{"access_token":"0801121846735352506a356a6","expires_in":7200}}`
	tokenError   = `{"err_no":40017,"err_tips":"bad secret","data":{"access_token":"","expires_in":0}}`
)

func TestFetchAccessToken(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string

		wantToken string
		wantTTL   time.Duration
		wantKind  error
		wantCode  string
	}{
		{"documented success", 200, tokenSuccess, "0801121846735352506a356a6", 2 * time.Hour, nil, ""},
		{"expires_in as a string", 200, `{"err_no":0,"data":{"access_token":"tok","expires_in":"3600"}}`, "tok", time.Hour, nil, ""},
		{"shorter expires_in is kept", 200, `{"err_no":0,"data":{"access_token":"tok","expires_in":300}}`, "tok", 5 * time.Minute, nil, ""},
		{"absent expires_in is two hours", 200, `{"err_no":0,"data":{"access_token":"tok"}}`, "tok", DefaultTokenTTL, nil, ""},
		{"zero expires_in is two hours", 200, `{"err_no":0,"data":{"access_token":"tok","expires_in":0}}`, "tok", DefaultTokenTTL, nil, ""},
		{"negative expires_in is two hours", 200, `{"err_no":0,"data":{"access_token":"tok","expires_in":-5}}`, "tok", DefaultTokenTTL, nil, ""},
		{"huge expires_in is capped", 200, `{"err_no":0,"data":{"access_token":"tok","expires_in":9223372036854775807}}`, "tok", DefaultTokenTTL, nil, ""},
		{"err_no as a string 0", 200, `{"err_no":"0","err_tips":"success","data":{"access_token":"tok","expires_in":7200}}`, "tok", 2 * time.Hour, nil, ""},
		{"documented 40017 bad secret", 200, tokenError, "", 0, provider.ErrMisconfigured, "40017"},
		{"40015 bad appid", 200, `{"err_no":40015,"err_tips":"bad appid","data":{"access_token":"","expires_in":0}}`, "", 0, provider.ErrMisconfigured, "40015"},
		{"40020 bad grant_type", 200, `{"err_no":40020,"err_tips":"bad grant_type"}`, "", 0, provider.ErrMisconfigured, "40020"},
		{"40014 bad params", 200, `{"err_no":"40014","err_tips":"bad params"}`, "", 0, provider.ErrMisconfigured, "40014"},
		{"-1 system error", 200, `{"err_no":-1,"err_tips":"system error"}`, "", 0, provider.ErrUnavailable, "-1"},
		{"40018 is not a token code", 200, `{"err_no":40018,"err_tips":"bad code"}`, "", 0, provider.ErrUnavailable, "40018"},
		{"success without a token", 200, `{"err_no":0,"err_tips":"success","data":{"access_token":"","expires_in":7200}}`, "", 0, provider.ErrUnavailable, ""},
		{"success without data", 200, `{"err_no":0,"err_tips":"success"}`, "", 0, provider.ErrUnavailable, ""},
		{"HTTP 503", 503, `<html>503</html>`, "", 0, provider.ErrUnavailable, ""},
		{"HTML with 200", 200, `<html>maintenance</html>`, "", 0, provider.ErrUnavailable, ""},
		{"truncated JSON", 200, `{"err_no":0,"data":{"access_token":"08011218`, "", 0, provider.ErrUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls, last := fakeDouyin(t, answerWith(tt.status, "application/json", tt.body))
			p := newProvider(t, newApp(srv.URL, 2*time.Second, false))

			tok, err := p.FetchAccessToken(context.Background(), false)
			if n := calls.Load(); n != 1 {
				t.Fatalf("fake called %d times, want 1", n)
			}
			c := last()
			if c.method != http.MethodPost || c.path != TokenPath || !strings.HasPrefix(c.contentType, "application/json") {
				t.Errorf("request %s %s (%s), want POST %s (application/json)", c.method, c.path, c.contentType, TokenPath)
			}
			want := map[string]any{"appid": testAppID, "secret": testSecret, "grant_type": "client_credential"}
			if !maps.Equal(c.body, want) {
				t.Errorf("body = %v, want %v", c.body, want)
			}
			if tt.wantKind != nil {
				checkError(t, err, tt.wantKind, tt.wantCode)
				if tok != (provider.AccessToken{}) {
					t.Errorf("token = %+v, want none on error", tok)
				}
				return
			}
			if err != nil {
				t.Fatalf("FetchAccessToken: %v", err)
			}
			if tok.Token != tt.wantToken || tok.ExpiresIn != tt.wantTTL {
				t.Errorf("token = %+v, want %q for %v", tok, tt.wantToken, tt.wantTTL)
			}
		})
	}
}

func TestFetchAccessTokenForceSendsTheSameRequest(t *testing.T) {
	srv, calls, last := fakeDouyin(t, answerWith(200, "", tokenSuccess))
	p := newProvider(t, newApp(srv.URL, 2*time.Second, false))
	var bodies []map[string]any
	for _, force := range []bool{false, true} {
		if _, err := p.FetchAccessToken(context.Background(), force); err != nil {
			t.Fatalf("FetchAccessToken(%v): %v", force, err)
		}
		bodies = append(bodies, last().body)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("fake called %d times, want 2 (no caching in the provider)", n)
	}
	if !maps.Equal(bodies[0], bodies[1]) {
		t.Errorf("force changed the request: %v vs %v", bodies[0], bodies[1])
	}
}

func TestFetchAccessTokenHangingServerIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv, _, _ := fakeDouyin(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	p := newProvider(t, newApp(srv.URL, 200*time.Millisecond, false))
	_, err := p.FetchAccessToken(context.Background(), false)
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestFetchAccessTokenRedactsTheSecret(t *testing.T) {
	srv, _, _ := fakeDouyin(t, answerWith(200, "", `{"err_no":40017,"err_tips":`+jsonString("bad secret "+testSecret)+`}`))
	p := newProvider(t, newApp(srv.URL, 2*time.Second, false))
	_, err := p.FetchAccessToken(context.Background(), false)
	pe := checkError(t, err, provider.ErrMisconfigured, "40017")
	if pe.Message != "bad secret [redacted]" {
		t.Errorf("Message = %q, want %q", pe.Message, "bad secret [redacted]")
	}
}

func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{
		tokenSuccess, tokenError,
		`{"err_no":0,"data":{"access_token":"tok","expires_in":"3600"}}`,
		`{"err_no":-1,"err_tips":"system error"}`,
		`{"err_no":40020,"err_tips":"bad grant_type"}`,
		`{"err_no":0,"data":{"access_token":"08011218`,
		`<html></html>`, ``, `null`,
	} {
		f.Add(200, []byte(s))
	}
	f.Add(503, []byte(tokenSuccess))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, err := DecodeToken(status, body)
		tok2, err2 := DecodeToken(status, body)
		if tok != tok2 || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("DecodeToken is not deterministic")
		}
		if err == nil {
			if tok.Token == "" || status != 200 {
				t.Fatalf("success %+v with HTTP %d", tok, status)
			}
			if tok.ExpiresIn <= 0 || tok.ExpiresIn > DefaultTokenTTL {
				t.Fatalf("ExpiresIn = %v, want in (0, %v]", tok.ExpiresIn, DefaultTokenTTL)
			}
			return
		}
		if tok != (provider.AccessToken{}) {
			t.Fatalf("token %+v with an error", tok)
		}
		checkFuzzError(t, err, provider.ErrUnavailable, provider.ErrMisconfigured)
	})
}

func BenchmarkDecodeToken(b *testing.B) {
	body := []byte(tokenSuccess)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, _ = DecodeToken(200, body)
	}
}
