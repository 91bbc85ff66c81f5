package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

// testPhoneCode looks like a getPhoneNumber code and holds characters that
// need escaping in JSON.
const testPhoneCode = "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144\"<&>"

// tokens is an in-test access-token broker: it hands out tokens from a list,
// moving to the next one when the current one is invalidated, and records
// every call.
type tokens struct {
	mu    sync.Mutex
	list  []string
	calls []string
	// tokenErr and invalidateErr, when set, are returned by those calls.
	tokenErr, invalidateErr error
	// fetchers records what Token was given to fetch with.
	fetchers []provider.TokenFetcher
	apps     []provider.App
}

func (b *tokens) Token(_ context.Context, app provider.App, f provider.TokenFetcher) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "token")
	b.fetchers = append(b.fetchers, f)
	b.apps = append(b.apps, app)
	if b.tokenErr != nil {
		return "", b.tokenErr
	}
	return b.list[0], nil
}

func (b *tokens) Invalidate(_ context.Context, app provider.App, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "invalidate "+token)
	b.apps = append(b.apps, app)
	if b.invalidateErr != nil {
		return b.invalidateErr
	}
	if len(b.list) > 1 && b.list[0] == token {
		b.list = b.list[1:]
	}
	return nil
}

func (b *tokens) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.calls, ", ")
}

// fakePhone starts a getuserphonenumber fake that checks every request the
// way WeChat needs it and answers with respond; it records the access
// tokens it was called with.
func fakePhone(t *testing.T, respond func(w http.ResponseWriter, token string)) (*httptest.Server, *[]string) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if r.URL.Path != PhoneNumberPath {
			t.Errorf("path = %q, want %q", r.URL.Path, PhoneNumberPath)
		}
		q := r.URL.Query()
		if len(q) != 1 || q.Get("access_token") == "" {
			t.Errorf("query = %v, want exactly access_token", q)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil || len(body) != 1 || body["code"] != testPhoneCode {
			t.Errorf("body = %s, want exactly {\"code\": %q}", b, testPhoneCode)
		}
		tok := q.Get("access_token")
		mu.Lock()
		seen = append(seen, tok)
		mu.Unlock()
		respond(w, tok)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func reply(body string) func(http.ResponseWriter, string) {
	return func(w http.ResponseWriter, _ string) {
		w.Header().Set("Content-Type", "application/json; encoding=utf-8")
		_, _ = io.WriteString(w, body)
	}
}

func newPhoneProvider(t *testing.T, endpoint string, timeout time.Duration, b provider.AccessTokens) provider.PhoneByCode {
	t.Helper()
	p, err := New(provider.App{Platform: provider.WeChat, AppID: testAppID, Secret: testSecret, Endpoint: endpoint, Timeout: timeout}, provider.Env{Tokens: b})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	pb, ok := p.(provider.PhoneByCode)
	if !ok {
		t.Fatal("the WeChat provider does not implement provider.PhoneByCode")
	}
	return pb
}

func phoneInfo(fields string) string {
	return `{"errcode":0,"errmsg":"ok","phone_info":{` + fields + `}}`
}

const wm = `"watermark":{"timestamp":1637744274,"appid":"` + testAppID + `"}`

func TestPhoneNumber(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string

		want           provider.Phone // success
		wantKind       error
		wantCode       string
		wantRetryAfter time.Duration
	}{
		{
			name: "countryCode as a string",
			body: phoneInfo(`"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86",` + wm),
			want: provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"},
		},
		{
			name: "countryCode as a number, as in the doc example",
			body: phoneInfo(`"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":86,` + wm),
			want: provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"},
		},
		{
			name: "foreign number carries the country code",
			body: phoneInfo(`"phoneNumber":"+85261234567","purePhoneNumber":"61234567","countryCode":"852",` + wm),
			want: provider.Phone{Number: "+85261234567", PureNumber: "61234567", CountryCode: "852"},
		},
		{
			name: "success without errcode",
			body: `{"phone_info":{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86",` + wm + `}}`,
			want: provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"},
		},
		{
			name: "phoneNumber as a number is tolerated",
			body: phoneInfo(`"phoneNumber":13580006666,"purePhoneNumber":13580006666,"countryCode":86,` + wm),
			want: provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"},
		},
		{name: "watermark of another app", body: phoneInfo(`"phoneNumber":"13580006666","countryCode":"86","watermark":{"timestamp":1,"appid":"wx0000000000000000"}`), wantKind: provider.ErrWatermark},
		{name: "watermark missing", body: phoneInfo(`"phoneNumber":"13580006666","countryCode":"86"`), wantKind: provider.ErrWatermark},
		{name: "phone_info missing is unavailable", body: `{"errcode":0,"errmsg":"ok"}`, wantKind: provider.ErrUnavailable},
		{name: "phoneNumber missing is unavailable", body: phoneInfo(`"countryCode":"86",` + wm), wantKind: provider.ErrUnavailable},
		{name: "phoneNumber with a control character is unavailable", body: phoneInfo(`"phoneNumber":"135\n80006666",` + wm), wantKind: provider.ErrUnavailable},
		{name: "countryCode of the wrong type is unavailable", body: phoneInfo(`"phoneNumber":"13580006666","countryCode":{},` + wm), wantKind: provider.ErrUnavailable},
		{name: "40029 invalid code", body: `{"errcode":40029,"errmsg":"invalid code, rid: 652d44d0-1d0af18b-5b069232"}`, wantKind: provider.ErrCodeInvalid, wantCode: "40029"},
		{name: "40029 as a string", body: `{"errcode":"40029","errmsg":"invalid code"}`, wantKind: provider.ErrCodeInvalid, wantCode: "40029"},
		{name: "-1 system error is unavailable", body: `{"errcode":-1,"errmsg":"system error"}`, wantKind: provider.ErrUnavailable, wantCode: "-1"},
		{name: "45011 rate limit", body: `{"errcode":45011,"errmsg":"api minute-quota reach limit mustslower retry next minute"}`, wantKind: provider.ErrRateLimited, wantCode: "45011", wantRetryAfter: time.Minute},
		{name: "40013 invalid appid is misconfigured", body: `{"errcode":40013,"errmsg":"invalid appid"}`, wantKind: provider.ErrMisconfigured, wantCode: "40013"},
		{name: "48001 api unauthorized is misconfigured", body: `{"errcode":48001,"errmsg":"api unauthorized"}`, wantKind: provider.ErrMisconfigured, wantCode: "48001"},
		{name: "unknown errcode is unavailable", body: `{"errcode":1400001,"errmsg":"quota"}`, wantKind: provider.ErrUnavailable, wantCode: "1400001"},
		{name: "errmsg echoing the token and the code is redacted", body: `{"errcode":40029,"errmsg":` + jsonString("bad code "+testPhoneCode+" token "+testToken) + `}`, wantKind: provider.ErrCodeInvalid, wantCode: "40029"},
		{name: "HTTP 500 is unavailable", status: 500, body: `{"errcode":-1}`, wantKind: provider.ErrUnavailable},
		{name: "HTTP 502 HTML is unavailable", status: 502, body: `<html><body>502 Bad Gateway</body></html>`, wantKind: provider.ErrUnavailable},
		{name: "HTML with 200 is unavailable", body: `<html>maintenance</html>`, wantKind: provider.ErrUnavailable},
		{name: "empty body is unavailable", body: ``, wantKind: provider.ErrUnavailable},
		{name: "truncated JSON is unavailable", body: `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"1358`, wantKind: provider.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := fakePhone(t, func(w http.ResponseWriter, _ string) {
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				_, _ = io.WriteString(w, tt.body)
			})
			b := &tokens{list: []string{testToken}}
			p := newPhoneProvider(t, srv.URL, 2*time.Second, b)

			got, err := p.PhoneNumber(context.Background(), testPhoneCode)
			if len(*seen) != 1 || (*seen)[0] != testToken {
				t.Errorf("fake saw tokens %v, want exactly [the broker's token]", *seen)
			}
			if log := b.log(); log != "token" {
				t.Errorf("broker calls: %s, want just token", log)
			}
			noLeak(t, err, testToken, testPhoneCode)
			if tt.wantKind != nil {
				pe := checkError(t, err, tt.wantKind, tt.wantCode)
				if got != nil {
					t.Errorf("phone = %+v, want nil on error", got)
				}
				if pe.RetryAfter != tt.wantRetryAfter {
					t.Errorf("RetryAfter = %v, want %v", pe.RetryAfter, tt.wantRetryAfter)
				}
				if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3 {
					t.Errorf("Message has %d runes", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("PhoneNumber: %v", err)
			}
			if *got != tt.want {
				t.Errorf("phone = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestPhoneNumberInvalidTokenIsInvalidatedAndRetriedOnce(t *testing.T) {
	const fresh = "85_freshTOKEN_0123456789abcdefghijklmnopqrstuvwxyz"
	ok := phoneInfo(`"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86",` + wm)
	for _, tc := range []struct{ code, msg string }{
		{"40001", "invalid credential, access_token is invalid or not latest"},
		{"42001", "access_token expired"},
		{"40014", "invalid access_token"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			srv, seen := fakePhone(t, func(w http.ResponseWriter, tok string) {
				if tok == testToken {
					fmt.Fprintf(w, `{"errcode":%s,"errmsg":"%s, rid: 1"}`, tc.code, tc.msg)
					return
				}
				_, _ = io.WriteString(w, ok)
			})
			b := &tokens{list: []string{testToken, fresh}}
			p := newPhoneProvider(t, srv.URL, 2*time.Second, b)

			got, err := p.PhoneNumber(context.Background(), testPhoneCode)
			if err != nil {
				t.Fatalf("PhoneNumber: %v", err)
			}
			if got.Number != "13580006666" {
				t.Errorf("Number = %q", got.Number)
			}
			if want := "token, invalidate " + testToken + ", token"; b.log() != want {
				t.Errorf("broker calls: %s, want %s", b.log(), want)
			}
			if want := []string{testToken, fresh}; strings.Join(*seen, ",") != strings.Join(want, ",") {
				t.Errorf("fake saw tokens %v, want %v", *seen, want)
			}
			for _, f := range b.fetchers {
				if f != p.(provider.TokenFetcher) {
					t.Errorf("broker got fetcher %T, want the provider itself", f)
				}
			}
			for _, a := range b.apps {
				if a.AppID != testAppID || a.Secret != testSecret {
					t.Errorf("broker got app %q, want %q", a.AppID, testAppID)
				}
			}
		})
	}
}

func TestPhoneNumberGivesUpAfterOneRetry(t *testing.T) {
	const second = "86_secondTOKEN_0123456789abcdefghijklmnopqrstuvwxyz"
	srv, seen := fakePhone(t, reply(`{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`))
	b := &tokens{list: []string{testToken, second, "never-used-third-token"}}
	p := newPhoneProvider(t, srv.URL, 2*time.Second, b)

	_, err := p.PhoneNumber(context.Background(), testPhoneCode)
	checkError(t, err, provider.ErrAccessTokenInvalid, "40001")
	noLeak(t, err, testToken, second, testPhoneCode)
	if len(*seen) != 2 {
		t.Errorf("fake called %d times, want 2", len(*seen))
	}
	// Both rejected tokens are reported, so the next call starts fresh.
	if want := "token, invalidate " + testToken + ", token, invalidate " + second; b.log() != want {
		t.Errorf("broker calls: %s, want %s", b.log(), want)
	}
}

func TestPhoneNumberBrokerFailures(t *testing.T) {
	rejected := `{"errcode":42001,"errmsg":"access_token expired"}`
	tests := []struct {
		name      string
		broker    *tokens
		answer    string
		wantKind  error
		wantCalls int // of the fake
		wantLog   string
	}{
		{
			name:     "broker error of the platform passes through",
			broker:   &tokens{tokenErr: &provider.Error{Kind: provider.ErrMisconfigured, Platform: provider.WeChat, Code: "40125", Message: "invalid appsecret"}},
			wantKind: provider.ErrMisconfigured, wantLog: "token",
		},
		{
			name:     "other broker error is unavailable",
			broker:   &tokens{tokenErr: errors.New("database is locked")},
			wantKind: provider.ErrUnavailable, wantLog: "token",
		},
		{
			name:     "empty token from the broker is unavailable",
			broker:   &tokens{list: []string{""}},
			wantKind: provider.ErrUnavailable, wantLog: "token",
		},
		{
			name:     "invalidate failure is unavailable without a retry",
			broker:   &tokens{list: []string{testToken, "unused-fresh-token"}, invalidateErr: errors.New("database is locked")},
			answer:   rejected,
			wantKind: provider.ErrUnavailable, wantCalls: 1, wantLog: "token, invalidate " + testToken,
		},
		{
			name:     "broker handing back the rejected token is not retried",
			broker:   &tokens{list: []string{testToken}},
			answer:   rejected,
			wantKind: provider.ErrAccessTokenInvalid, wantCalls: 1, wantLog: "token, invalidate " + testToken + ", token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := fakePhone(t, reply(tt.answer))
			p := newPhoneProvider(t, srv.URL, 2*time.Second, tt.broker)

			_, err := p.PhoneNumber(context.Background(), testPhoneCode)
			if !errors.Is(err, tt.wantKind) {
				t.Errorf("err = %v, want %v", err, tt.wantKind)
			}
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Errorf("err is %T, want *provider.Error", err)
			}
			noLeak(t, err, testToken, testPhoneCode)
			if len(*seen) != tt.wantCalls {
				t.Errorf("fake called %d times, want %d", len(*seen), tt.wantCalls)
			}
			if tt.broker.log() != tt.wantLog {
				t.Errorf("broker calls: %s, want %s", tt.broker.log(), tt.wantLog)
			}
		})
	}
}

func TestPhoneNumberWithoutBrokerIsMisconfigured(t *testing.T) {
	srv, seen := fakePhone(t, reply(`{}`))
	// New itself must work without a broker: logins do not need one.
	p := newPhoneProvider(t, srv.URL, time.Second, nil)
	_, err := p.PhoneNumber(context.Background(), testPhoneCode)
	checkError(t, err, provider.ErrMisconfigured, "")
	if len(*seen) != 0 {
		t.Errorf("fake called %d times, want 0", len(*seen))
	}
}

func TestPhoneNumberRejectsEmptyOrOversizedCodeWithoutCalls(t *testing.T) {
	srv, seen := fakePhone(t, reply(`{}`))
	b := &tokens{list: []string{testToken}}
	p := newPhoneProvider(t, srv.URL, time.Second, b)
	for _, code := range []string{"", strings.Repeat("a", maxPhoneCode+1)} {
		_, err := p.PhoneNumber(context.Background(), code)
		checkError(t, err, provider.ErrCodeInvalid, "")
	}
	if len(*seen) != 0 || b.log() != "" {
		t.Errorf("fake called %d times, broker calls %q; want none", len(*seen), b.log())
	}
}

func TestPhoneNumberServerHangingIsUnavailableWithoutTheToken(t *testing.T) {
	release := make(chan struct{})
	var hung atomic.Int32
	srv, _ := fakePhone(t, func(http.ResponseWriter, string) {
		hung.Add(1)
		<-release
	})
	t.Cleanup(func() { close(release) })
	p := newPhoneProvider(t, srv.URL, 200*time.Millisecond, &tokens{list: []string{testToken}})

	_, err := p.PhoneNumber(context.Background(), testPhoneCode)
	checkError(t, err, provider.ErrUnavailable, "")
	noLeak(t, err, testToken, testPhoneCode, "access_token")
	if hung.Load() != 1 {
		t.Errorf("fake called %d times, want 1 (a timeout is not a token problem)", hung.Load())
	}
}

func TestPhoneNumberConnectionRefusedDoesNotLeakTheURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close()
	p := newPhoneProvider(t, endpoint, time.Second, &tokens{list: []string{testToken}})

	_, err := p.PhoneNumber(context.Background(), testPhoneCode)
	checkError(t, err, provider.ErrUnavailable, "")
	noLeak(t, err, testToken, "access_token", endpoint)
}

// phoneSeeds are the documented getuserphonenumber answers and broken ones.
var phoneSeeds = []string{
	`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"xxxxxx","purePhoneNumber":"xxxxxx","countryCode":86,"watermark":{"timestamp":1637744274,"appid":"xxxx"}}}`,
	phoneInfo(`"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86",` + wm),
	`{"errcode":40029,"errmsg":"invalid code"}`,
	`{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`,
	`{"errcode":42001,"errmsg":"access_token expired"}`,
	`{"errcode":45011,"errmsg":"api minute-quota reach limit mustslower retry next minute"}`,
	`{"errcode":-1,"errmsg":"system error"}`,
	`{"errcode":"40013","errmsg":"invalid appid"}`,
	`{"errcode":0,"errmsg":"ok"}`,
	`<html></html>`,
	``,
	`{"phone_info":{"phoneNumber":"1358`,
}

func FuzzDecodePhoneNumber(f *testing.F) {
	for _, s := range phoneSeeds {
		f.Add(200, []byte(s), testAppID)
		f.Add(200, []byte(s), "xxxx")
	}
	kinds := []error{
		provider.ErrUnavailable, provider.ErrMisconfigured, provider.ErrRateLimited, provider.ErrCodeInvalid,
		provider.ErrCodeUsed, provider.ErrAccessTokenInvalid, provider.ErrWatermark,
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, appID string) {
		p, err := DecodePhoneNumber(status, body, appID)
		p2, err2 := DecodePhoneNumber(status, body, appID)
		if (p == nil) == (err == nil) || (err == nil) != (err2 == nil) || (p != nil && *p != *p2) {
			t.Fatalf("inconsistent: (%v, %v) then (%v, %v)", p, err, p2, err2)
		}
		if err == nil {
			if status != 200 || appID == "" {
				t.Fatalf("success with HTTP %d for app %q", status, appID)
			}
			for _, s := range []string{p.Number, p.PureNumber, p.CountryCode} {
				if s != "" && !printable(s, maxPhoneField) {
					t.Fatalf("unprintable field %q accepted", s)
				}
			}
			if p.Number == "" {
				t.Fatal("success without a number")
			}
			return
		}
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("err is %T", err)
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

func BenchmarkDecodePhoneNumber(b *testing.B) {
	body := []byte(phoneInfo(`"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86",` + wm))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, _ = DecodePhoneNumber(200, body, testAppID)
	}
}
