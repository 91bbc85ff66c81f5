package kuaishou

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

const testAccessToken = "ChFvYXV0aC5hY2Nlc3NUb2tlbhJgZ0b6"

var tokenForm = map[string]string{"app_id": testAppID, "app_secret": testSecret, "grant_type": "client_credentials"}

func TestFetchAccessToken(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string

		wantTTL  time.Duration // success
		wantKind error         // failure
		wantCode string
	}{
		{
			name:    "documented success",
			status:  200,
			body:    `{"result":1,"access_token":"` + testAccessToken + `","expires_in":23435,"token_type":"bearer"}`,
			wantTTL: 23435 * time.Second,
		},
		{
			name:    "48 hours",
			status:  200,
			body:    `{"result":1,"access_token":"` + testAccessToken + `","expires_in":172800,"token_type":"bearer"}`,
			wantTTL: 48 * time.Hour,
		},
		{
			name:    "result and expires_in as strings",
			status:  200,
			body:    `{"result":"1","access_token":"` + testAccessToken + `","expires_in":"7200"}`,
			wantTTL: 2 * time.Hour,
		},
		{
			name:    "no expires_in means the documented 48 hours",
			status:  200,
			body:    `{"result":1,"access_token":"` + testAccessToken + `"}`,
			wantTTL: DefaultAccessTokenTTL,
		},
		{
			name:    "no result but a token is tolerated",
			status:  200,
			body:    `{"access_token":"` + testAccessToken + `","expires_in":100}`,
			wantTTL: 100 * time.Second,
		},
		{
			name:     "expires_in 0 is unavailable",
			status:   200,
			body:     `{"result":1,"access_token":"` + testAccessToken + `","expires_in":0}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "negative expires_in is unavailable",
			status:   200,
			body:     `{"result":1,"access_token":"` + testAccessToken + `","expires_in":-5}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "non-numeric expires_in is unavailable",
			status:   200,
			body:     `{"result":1,"access_token":"` + testAccessToken + `","expires_in":"soon"}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "absurd expires_in is unavailable",
			status:   200,
			body:     `{"result":1,"access_token":"` + testAccessToken + `","expires_in":9000000000000}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "success without access_token is unavailable",
			status:   200,
			body:     `{"result":1,"expires_in":172800}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "access_token with a space is unavailable",
			status:   200,
			body:     `{"result":1,"access_token":"a b","expires_in":172800}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "100200101 bad app_secret is misconfigured",
			status:   200,
			body:     `{"result":100200101,"error":"unauthorized_client","error_msg":"app 非法"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "100200101",
		},
		{
			name:     "100200100 parameter error is misconfigured",
			status:   200,
			body:     `{"result":100200100,"error":"invalid_request"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "100200100",
		},
		{
			name:     "100200104 grant type is misconfigured",
			status:   200,
			body:     `{"result":100200104,"error":"unsupported_grant_type"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "100200104",
		},
		{
			name:     "100200500 is unavailable",
			status:   200,
			body:     `{"result":100200500,"error":"server_error"}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "100200500",
		},
		{
			name:     "a login-code error makes no sense here and is unavailable",
			status:   200,
			body:     `{"result":100200105,"error":"invalid_grant"}`,
			wantKind: provider.ErrUnavailable,
			wantCode: "100200105",
		},
		{
			name:     "unknown result with a config error name is misconfigured",
			status:   200,
			body:     `{"result":100200199,"error":"unauthorized_client"}`,
			wantKind: provider.ErrMisconfigured,
			wantCode: "100200199",
		},
		{
			name:     "HTTP 500 is unavailable",
			status:   500,
			body:     `{"result":1,"access_token":"` + testAccessToken + `","expires_in":172800}`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "HTML is unavailable",
			status:   200,
			body:     `<html>maintenance</html>`,
			wantKind: provider.ErrUnavailable,
		},
		{
			name:     "truncated JSON is unavailable and does not leak the token",
			status:   200,
			body:     `{"result":1,"access_token":"` + testAccessToken,
			wantKind: provider.ErrUnavailable,
		},
	}
	for _, tt := range tests {
		for _, force := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s (force %v)", tt.name, force), func(t *testing.T) {
				srv, calls := fakeKuaishou(t, AccessTokenPath, tokenForm, answerWith(tt.status, "application/json", tt.body))
				p := newKuaishou(t, srv.URL, 2*time.Second)

				tok, err := p.FetchAccessToken(context.Background(), force)
				if n := calls.Load(); n != 1 {
					t.Errorf("fake called %d times, want 1", n)
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
				if want := (provider.AccessToken{Token: testAccessToken, ExpiresIn: tt.wantTTL}); tok != want {
					t.Errorf("token = %+v, want %+v", tok, want)
				}
			})
		}
	}
}

func TestFetchAccessTokenErrorEchoingTheSecretIsRedacted(t *testing.T) {
	srv, _ := fakeKuaishou(t, AccessTokenPath, tokenForm, answerWith(200, "", `{"result":100200101,"error_msg":"bad app_secret `+testSecret+`"}`))
	p := newKuaishou(t, srv.URL, 2*time.Second)

	_, err := p.FetchAccessToken(context.Background(), false)
	pe := checkError(t, err, provider.ErrMisconfigured, "100200101")
	if !strings.Contains(pe.Message, "[redacted]") {
		t.Errorf("Message = %q, want the secret replaced by [redacted]", pe.Message)
	}
}

func TestFetchAccessTokenServerHangingPastTimeoutIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv, _ := fakeKuaishou(t, AccessTokenPath, tokenForm, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	p := newKuaishou(t, srv.URL, 200*time.Millisecond)

	_, err := p.FetchAccessToken(context.Background(), true)
	checkError(t, err, provider.ErrUnavailable, "")
}

var tokenSeeds = []string{
	`{"result":1,"access_token":"xxxxxxx","expires_in":23435,"token_type":"bearer"}`,
	`{"result":"1","access_token":"xxxxxxx","expires_in":"23435"}`,
	`{"result":1,"access_token":"xxxxxxx"}`,
	`{"result":1,"access_token":"xxxxxxx","expires_in":0}`,
	`{"result":100200101,"error":"unauthorized_client","error_msg":"app 非法"}`,
	`{"result":100200500,"error":"server_error"}`,
	`{"result":1,"access_token":"xx`,
	`<html></html>`,
	``,
}

func FuzzDecodeAccessToken(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add(200, []byte(s))
	}
	f.Add(503, []byte(tokenSeeds[0]))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, err := DecodeAccessToken(status, body)
		tok2, err2 := DecodeAccessToken(status, body)
		if tok != tok2 || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("DecodeAccessToken is not deterministic")
		}
		if err != nil {
			if tok != (provider.AccessToken{}) {
				t.Fatalf("token %+v returned with error %v", tok, err)
			}
			checkFuzzError(t, err, []error{provider.ErrUnavailable, provider.ErrMisconfigured})
			return
		}
		if status != 200 {
			t.Fatalf("success with HTTP %d", status)
		}
		if !validAccessToken(tok.Token) || tok.ExpiresIn <= 0 || tok.ExpiresIn > maxAccessTokenTTL {
			t.Fatalf("unusable token accepted: %+v", tok)
		}
	})
}

func BenchmarkDecodeAccessToken(b *testing.B) {
	body := []byte(tokenSeeds[0])
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, _ = DecodeAccessToken(200, body)
	}
}
