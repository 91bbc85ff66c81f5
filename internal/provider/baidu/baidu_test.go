package baidu

import (
	"context"
	"errors"
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

const (
	testAppKey = "4fecoAqgCIUtzIyA4FAPgoyrc4oUc25c"
	// The secret and the code hold characters that must be escaped in a
	// form, so a fake that sees them intact proves url.Values works.
	testSecret = "s3cr3t+/&=SK#1"
	testCode   = "bc1d2e+/=&code=evil%20x"
	testOpenID = "l214zFqNrEuIEnp6m7Y01sw8yj"
	// A real session_key (platforms.md §5.2): 32 base64 chars, 24 bytes.
	testKey     = "981ce8b151c0599acf7ad1a673c6ff5e"
	testUnionID = "St6PVMkgMDeh92Uq2EWfx6H"
	tokenA      = "24.a6b7dbd428f731035f771b8d15063f61.2592000.1292922000-2346678-124328"
	tokenB      = "24.385d55f8615fdfd9edb7c4b5ebdc3e39.2592000.1293440400-2346678-124328"
)

var secrets = []string{testSecret, testCode, testKey, tokenA, tokenB}

// fake is an httptest server for the three endpoints. It checks every
// request the way Baidu would need it and answers with the handler set for
// the path.
type fake struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	calls    map[string]int
	tokens   []string // access_token of each getunionid call
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t, handlers: map[string]http.HandlerFunc{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) on(path string, h http.HandlerFunc) *fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[path] = h
	return f
}

func (f *fake) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fake) unionTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.Method != http.MethodPost {
		t.Errorf("%s: method = %s, want POST", r.URL.Path, r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("%s: Content-Type = %q", r.URL.Path, ct)
	}
	if err := r.ParseForm(); err != nil {
		t.Errorf("%s: form: %v", r.URL.Path, err)
	}
	q := r.URL.Query()
	want := map[string]string{}
	wantQuery := 0
	switch r.URL.Path {
	case SessionKeyPath:
		want = map[string]string{"code": testCode, "client_id": testAppKey, "sk": testSecret}
	case TokenPath:
		want = map[string]string{"grant_type": "client_credentials", "client_id": testAppKey, "client_secret": testSecret, "scope": "smartapp_snsapi_base"}
	case UnionIDPath:
		want = map[string]string{"openid": testOpenID}
		wantQuery = 1
		if q.Get("access_token") == "" {
			t.Errorf("getunionid without access_token in the query")
		}
		f.mu.Lock()
		f.tokens = append(f.tokens, q.Get("access_token"))
		f.mu.Unlock()
	default:
		t.Errorf("unexpected path %q", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	// Credentials travel in the body, never in the query (except the
	// access token, which Baidu wants there).
	if len(q) != wantQuery {
		t.Errorf("%s: query has %d parameters, want %d", r.URL.Path, len(q), wantQuery)
	}
	for k, v := range want {
		if got := r.PostForm.Get(k); got != v {
			t.Errorf("%s: form %s = %q, want %q", r.URL.Path, k, got, v)
		}
	}
	if len(r.PostForm) != len(want) {
		t.Errorf("%s: form has %d fields, want %d", r.URL.Path, len(r.PostForm), len(want))
	}
	f.mu.Lock()
	f.calls[r.URL.Path]++
	h := f.handlers[r.URL.Path]
	f.mu.Unlock()
	if h == nil {
		t.Errorf("no handler for %s", r.URL.Path)
		http.Error(w, "no handler", http.StatusInternalServerError)
		return
	}
	h(w, r)
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

// sequence answers the given handlers in turn, repeating the last.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		hs[min(i, len(hs)-1)](w, r)
	}
}

// tokenSource is a scripted provider.AccessTokens: Token hands out the
// tokens in order (the next one after each Invalidate) and records every
// call.
type tokenSource struct {
	mu          sync.Mutex
	tokens      []string
	i           int
	err         error // returned by Token when set
	invalErr    error // returned by Invalidate when set
	invalidated []string
	fetchers    []provider.TokenFetcher
}

func (s *tokenSource) Token(_ context.Context, app provider.App, f provider.TokenFetcher) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetchers = append(s.fetchers, f)
	if s.err != nil {
		return "", s.err
	}
	return s.tokens[min(s.i, len(s.tokens)-1)], nil
}

func (s *tokenSource) Invalidate(_ context.Context, _ provider.App, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, token)
	if s.invalErr != nil {
		return s.invalErr
	}
	if s.i < len(s.tokens) && s.tokens[s.i] == token {
		s.i++
	}
	return nil
}

func newProvider(t *testing.T, endpoint, unionScope string, tokens provider.AccessTokens, timeout time.Duration) *baidu {
	t.Helper()
	p, err := New(provider.App{
		Platform:   provider.Baidu,
		AppID:      testAppKey,
		Secret:     testSecret,
		UnionScope: unionScope,
		Endpoint:   endpoint,
		Timeout:    timeout,
	}, provider.Env{Tokens: tokens})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*baidu)
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
	if pe.Platform != provider.Baidu {
		t.Errorf("Platform = %q, want %q", pe.Platform, provider.Baidu)
	}
	if pe.Code != wantCode {
		t.Errorf("Code = %q, want %q", pe.Code, wantCode)
	}
	for _, s := range []string{err.Error(), pe.Code, pe.Message} {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("error text %q contains a secret (%q)", s, secret)
			}
		}
	}
	if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3 {
		t.Errorf("Message has %d runes, want at most %d", n, maxMessage+3)
	}
	return pe
}

func TestExchange(t *testing.T) {
	long := strings.Repeat("x", 5000)
	ok := `"openid":"` + testOpenID + `","session_key":"` + testKey + `"`
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string

		wantSessionKey string // success
		wantKind       error  // failure
		wantCode       string
		wantRetryAfter time.Duration
		wantMessage    string // substring of Message, when set
	}{
		{name: "documented success has no status field", status: 200, contentType: "application/json", body: `{` + ok + `}`, wantSessionKey: testKey},
		{name: "success with errno 0", status: 200, body: `{"errno":0,` + ok + `}`, wantSessionKey: testKey},
		{name: "success with errno \"0\" and an empty error", status: 200, body: `{"errno":"0","error":"",` + ok + `}`, wantSessionKey: testKey},
		{name: "success served as text/html", status: 200, contentType: "text/html", body: `{` + ok + `}`, wantSessionKey: testKey},
		{name: "success without session_key is accepted", status: 200, body: `{"openid":"` + testOpenID + `"}`},
		{name: "session_key of 16 bytes is dropped", status: 200, body: `{"openid":"` + testOpenID + `","session_key":"M00WVpiHL3Fdo3NOCF0efA=="}`},
		{name: "session_key that is not base64 is dropped", status: 200, body: `{"openid":"` + testOpenID + `","session_key":"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"}`},
		{name: "session_key that is not a string is dropped", status: 200, body: `{"openid":"` + testOpenID + `","session_key":12}`},
		{name: "success without openid is unavailable", status: 200, body: `{"session_key":"` + testKey + `"}`, wantKind: provider.ErrUnavailable},
		{name: "openid with spaces is unavailable", status: 200, body: `{"openid":"a b"}`, wantKind: provider.ErrUnavailable},
		{name: "openid of the wrong type is unavailable", status: 200, body: `{"openid":12}`, wantKind: provider.ErrUnavailable},

		// jscode2sessionkey errno answers (§5.2).
		{name: "documented ClientID parameter error is misconfigured", status: 200,
			body:     `{"errno":10010100,"error":"parameter is invalid","error_description":"Key: 'Code2SessionKeyParam.ClientID' Error:Field validation for 'ClientID' failed on the 'required' tag"}`,
			wantKind: provider.ErrMisconfigured, wantCode: "10010100", wantMessage: "parameter is invalid: Key: 'Code2SessionKeyParam.ClientID'"},
		{name: "SK parameter error is misconfigured", status: 200,
			body:     `{"errno":10010100,"error":"parameter is invalid","error_description":"Key: 'Code2SessionKeyParam.SK' Error:Field validation for 'SK' failed on the 'required' tag"}`,
			wantKind: provider.ErrMisconfigured, wantCode: "10010100"},
		{name: "Code parameter error is an invalid code", status: 200,
			body:     `{"errno":10010100,"error":"parameter is invalid","error_description":"Key: 'Code2SessionKeyParam.Code' Error:Field validation for 'Code' failed on the 'required' tag"}`,
			wantKind: provider.ErrCodeInvalid, wantCode: "10010100"},
		{name: "10010100 without a description is misconfigured", status: 200, body: `{"errno":10010100}`, wantKind: provider.ErrMisconfigured, wantCode: "10010100"},
		{name: "10010500 server internal error is unavailable", status: 200, body: `{"errno":10010500,"error":"server internal error","error_description":"please retry"}`, wantKind: provider.ErrUnavailable, wantCode: "10010500"},
		{name: "100105xx family is unavailable", status: 200, body: `{"errno":10010503,"error":"access_denied"}`, wantKind: provider.ErrUnavailable, wantCode: "10010503"},
		{name: "errno as a string", status: 200, body: `{"errno":"10010500","error":"server internal error"}`, wantKind: provider.ErrUnavailable, wantCode: "10010500"},
		{name: "errno wins over an openid in the same answer", status: 200, body: `{"errno":10010500,` + ok + `}`, wantKind: provider.ErrUnavailable, wantCode: "10010500"},

		// OAuth-style answers (legacy endpoint, Baidu OAuth vocabulary).
		{name: "invalid_grant quoting the code is an invalid code, redacted", status: 400, contentType: "application/json",
			body:     `{"error":"invalid_grant","error_description":"Invalid authorization code: ` + testCode + `"}`,
			wantKind: provider.ErrCodeInvalid, wantCode: "invalid_grant", wantMessage: "Invalid authorization code: [redacted]"},
		{name: "invalid_grant with errno on HTTP 200", status: 200, body: `{"errno":10010102,"error":"invalid_grant","error_description":"authorization code expired"}`, wantKind: provider.ErrCodeInvalid, wantCode: "10010102"},
		{name: "invalid_grant saying the code was used", status: 200, body: `{"errno":10010103,"error":"invalid_grant","error_description":"authorization code has been used"}`, wantKind: provider.ErrCodeUsed, wantCode: "10010103"},
		{name: "unknown errno about an invalid code", status: 200, body: `{"errno":10010104,"error":"code is invalid"}`, wantKind: provider.ErrCodeInvalid, wantCode: "10010104"},
		{name: "unknown errno about a used code", status: 200, body: `{"errno":10010105,"error":"code has been used"}`, wantKind: provider.ErrCodeUsed, wantCode: "10010105"},
		{name: "unknown errno about a used code in Chinese", status: 200, body: `{"errno":10010106,"error":"code已被使用"}`, wantKind: provider.ErrCodeUsed, wantCode: "10010106"},
		{name: "invalid_client unknown client id is misconfigured", status: 400, body: `{"error":"invalid_client","error_description":"unknown client id"}`, wantKind: provider.ErrMisconfigured, wantCode: "invalid_client"},
		{name: "invalid_client bad sk with 401 is misconfigured", status: 401, body: `{"error":"invalid_client","error_description":"Client authentication failed"}`, wantKind: provider.ErrMisconfigured, wantCode: "invalid_client"},
		{name: "unknown errno about the sk is misconfigured", status: 200, body: `{"errno":10010107,"error":"sk is wrong"}`, wantKind: provider.ErrMisconfigured, wantCode: "10010107"},
		{name: "access_denied is a blocked user", status: 200, body: `{"errno":10010108,"error":"access_denied","error_description":"user is restricted"}`, wantKind: provider.ErrUserBlocked, wantCode: "10010108"},
		{name: "temporarily_unavailable is unavailable", status: 503, body: `{"error":"temporarily_unavailable"}`, wantKind: provider.ErrUnavailable, wantCode: "temporarily_unavailable"},

		// OpenAPI gateway answers.
		{name: "error_code 18 qps limit is rate limited for a second", status: 200, body: `{"error_code":18,"error_msg":"Open api qps request limit reached"}`, wantKind: provider.ErrRateLimited, wantCode: "18", wantRetryAfter: time.Second, wantMessage: "qps"},
		{name: "error_code 17 daily limit is rate limited", status: 200, body: `{"error_code":17,"error_msg":"Open api daily request limit reached"}`, wantKind: provider.ErrRateLimited, wantCode: "17", wantRetryAfter: provider.DefaultRetryAfter},
		{name: "error_code 4 is rate limited", status: 200, body: `{"error_code":4,"error_msg":"Open api request limit reached"}`, wantKind: provider.ErrRateLimited, wantCode: "4", wantRetryAfter: provider.DefaultRetryAfter},
		{name: "error_code 5 client IP is misconfigured", status: 200, body: `{"error_code":5,"error_msg":"Unauthorized client IP address"}`, wantKind: provider.ErrMisconfigured, wantCode: "5"},
		{name: "error_code 6 no permission is misconfigured", status: 200, body: `{"error_code":6,"error_msg":"No permission to access data"}`, wantKind: provider.ErrMisconfigured, wantCode: "6"},
		{name: "error_code 2 is unavailable", status: 200, body: `{"error_code":2,"error_msg":"Service temporarily unavailable"}`, wantKind: provider.ErrUnavailable, wantCode: "2"},
		{name: "error_code 110 on login is unavailable", status: 200, body: `{"error_code":110,"error_msg":"Access token invalid or no longer valid"}`, wantKind: provider.ErrUnavailable, wantCode: "110"},
		{name: "error_code not a number is unavailable", status: 200, body: `{"error_code":"oops"}`, wantKind: provider.ErrUnavailable, wantCode: "oops"},

		{name: "unknown errno is unavailable with its code", status: 200, body: `{"errno":99999,"error":"something new"}`, wantKind: provider.ErrUnavailable, wantCode: "99999", wantMessage: "something new"},
		{name: "error that is not a string is kept as JSON", status: 200, body: `{"errno":99999,"error":{"a":1}}`, wantKind: provider.ErrUnavailable, wantCode: "99999", wantMessage: `{"a":1}`},
		{name: "description echoing the secret is redacted", status: 200,
			body:     `{"errno":10010100,"error":"parameter is invalid","error_description":"bad sk ` + testSecret + `"}`,
			wantKind: provider.ErrMisconfigured, wantCode: "10010100", wantMessage: "[redacted]"},
		{name: "long description is truncated", status: 200, body: `{"errno":99999,"error_description":"` + long + `"}`, wantKind: provider.ErrUnavailable, wantCode: "99999", wantMessage: "..."},
		{name: "control characters are blanked", status: 200, body: `{"errno":99999,"error":"a\nb"}`, wantKind: provider.ErrUnavailable, wantCode: "99999", wantMessage: "a b"},

		// Transport-level oddities.
		{name: "HTTP 500 with a JSON errno is unavailable", status: 500, body: `{"errno":10010100,"error":"parameter is invalid"}`, wantKind: provider.ErrUnavailable, wantCode: "10010100"},
		{name: "HTTP 502 with HTML is unavailable", status: 502, contentType: "text/html", body: "<html><body>502 Bad Gateway</body></html>", wantKind: provider.ErrUnavailable, wantMessage: "HTTP status 502"},
		{name: "HTTP 400 with a success body is unavailable", status: 400, body: `{` + ok + `}`, wantKind: provider.ErrUnavailable},
		{name: "empty 200 body is unavailable", status: 200, body: "", wantKind: provider.ErrUnavailable},
		{name: "HTML with 200 is unavailable", status: 200, contentType: "text/html", body: "<html>maintenance</html>", wantKind: provider.ErrUnavailable},
		{name: "truncated JSON is unavailable and does not leak the key", status: 200, body: `{"session_key":"` + testKey + `","openid":"l2`, wantKind: provider.ErrUnavailable},
		{name: "JSON array is unavailable", status: 200, body: `[{` + ok + `}]`, wantKind: provider.ErrUnavailable},
		{name: "JSON null is unavailable", status: 200, body: `null`, wantKind: provider.ErrUnavailable},
		{name: "trailing garbage is unavailable", status: 200, body: `{` + ok + `}x`, wantKind: provider.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t).on(SessionKeyPath, answerWith(tt.status, tt.contentType, tt.body))
			p := newProvider(t, f.srv.URL, "", nil, 2*time.Second)

			id, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
			if n := f.count(SessionKeyPath); n != 1 {
				t.Errorf("jscode2sessionkey called %d times, want 1", n)
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
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			want := provider.Identity{Platform: provider.Baidu, AppID: testAppKey, OpenID: testOpenID, SessionKey: tt.wantSessionKey}
			if *id != want {
				t.Errorf("identity = %+v, want %+v", *id, want)
			}
		})
	}
}

func TestExchangeTransportFailuresAreUnavailable(t *testing.T) {
	t.Run("server hanging past the timeout", func(t *testing.T) {
		release := make(chan struct{})
		f := newFake(t).on(SessionKeyPath, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		t.Cleanup(func() { close(release) })
		p := newProvider(t, f.srv.URL, "", nil, 200*time.Millisecond)
		_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
		pe := checkError(t, err, provider.ErrUnavailable, "")
		if pe.Message != "timed out" {
			t.Errorf("Message = %q, want timed out", pe.Message)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		f := newFake(t).on(SessionKeyPath, answerWith(200, "", `{"openid":"`+testOpenID+`"}`))
		p := newProvider(t, f.srv.URL, "", nil, 2*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Exchange(ctx, provider.Credentials{Code: testCode})
		checkError(t, err, provider.ErrUnavailable, "")
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		endpoint := srv.URL
		srv.Close()
		p := newProvider(t, endpoint, "", nil, 2*time.Second)
		_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
		checkError(t, err, provider.ErrUnavailable, "")
	})
}

func TestExchangeRejectsEmptyOrOversizedCodeWithoutCallingBaidu(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, f.srv.URL, "", nil, 2*time.Second)
	for _, c := range []provider.Credentials{{}, {AnonymousCode: "anon"}, {Code: strings.Repeat("a", maxCode+1)}} {
		_, err := p.Exchange(context.Background(), c)
		checkError(t, err, provider.ErrCodeInvalid, "")
	}
	if n := f.count(SessionKeyPath); n != 0 {
		t.Errorf("jscode2sessionkey called %d times, want 0", n)
	}
}

func TestExchangeShortCodeDoesNotGarbleTheMessage(t *testing.T) {
	srv := httptest.NewServer(answerWith(200, "", `{"errno":10010102,"error":"invalid_grant","error_description":"Invalid authorization code: 4"}`))
	t.Cleanup(srv.Close)
	p := newProvider(t, srv.URL, "", nil, 2*time.Second)
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: "4"})
	pe := checkError(t, err, provider.ErrCodeInvalid, "10010102")
	if pe.Message != "invalid_grant: Invalid authorization code: 4" {
		t.Errorf("Message = %q", pe.Message)
	}
}

func TestExchangeWithUnionScope(t *testing.T) {
	session := answerWith(200, "application/json", `{"openid":"`+testOpenID+`","session_key":"`+testKey+`"}`)
	union := answerWith(200, "application/json", `{"data":{"unionid":"`+testUnionID+`"},"errmsg":"succ","errno":0,"request_id":"2321772211","timestamp":1563886782}`)
	invalid := answerWith(200, "application/json", `{"error_code":110,"error_msg":"Access token invalid or no longer valid"}`)
	expired := answerWith(200, "application/json", `{"error_code":111,"error_msg":"Access token expired"}`)
	tests := []struct {
		name       string
		session    http.HandlerFunc
		union      http.HandlerFunc
		source     *tokenSource
		wantUnion  string
		wantKind   error
		wantCode   string
		wantCalls  int      // getunionid calls
		wantTokens []string // tokens getunionid saw
		wantInval  []string // tokens invalidated
	}{
		{
			name: "unionid fetched with the app's access token", union: union,
			source: &tokenSource{tokens: []string{tokenA}}, wantUnion: testUnionID,
			wantCalls: 1, wantTokens: []string{tokenA},
		},
		{
			name: "invalid token is invalidated and the call retried once", union: sequence(invalid, union),
			source: &tokenSource{tokens: []string{tokenA, tokenB}}, wantUnion: testUnionID,
			wantCalls: 2, wantTokens: []string{tokenA, tokenB}, wantInval: []string{tokenA},
		},
		{
			name: "expired token is invalidated and the call retried once", union: sequence(expired, union),
			source: &tokenSource{tokens: []string{tokenA, tokenB}}, wantUnion: testUnionID,
			wantCalls: 2, wantTokens: []string{tokenA, tokenB}, wantInval: []string{tokenA},
		},
		{
			name: "token error with HTTP 401 is retried too", union: sequence(answerWith(401, "", `{"error_code":111,"error_msg":"Access token expired"}`), union),
			source: &tokenSource{tokens: []string{tokenA, tokenB}}, wantUnion: testUnionID,
			wantCalls: 2, wantTokens: []string{tokenA, tokenB}, wantInval: []string{tokenA},
		},
		{
			name: "token error as errno 110 is retried too", union: sequence(answerWith(200, "", `{"errno":110,"errmsg":"access token invalid"}`), union),
			source: &tokenSource{tokens: []string{tokenA, tokenB}}, wantUnion: testUnionID,
			wantCalls: 2, wantTokens: []string{tokenA, tokenB}, wantInval: []string{tokenA},
		},
		{
			name: "OAuth invalid_token is retried too", union: sequence(answerWith(401, "", `{"error":"invalid_token"}`), union),
			source: &tokenSource{tokens: []string{tokenA, tokenB}}, wantUnion: testUnionID,
			wantCalls: 2, wantTokens: []string{tokenA, tokenB}, wantInval: []string{tokenA},
		},
		{
			name: "second invalid answer fails the login cleanly", union: invalid,
			source:   &tokenSource{tokens: []string{tokenA, tokenB}},
			wantKind: provider.ErrUnavailable, wantCode: "110",
			wantCalls: 2, wantTokens: []string{tokenA, tokenB}, wantInval: []string{tokenA, tokenB},
		},
		{
			name: "transient getunionid error fails the login", union: answerWith(200, "", `{"errno":10010500,"errmsg":"server internal error"}`),
			source:   &tokenSource{tokens: []string{tokenA}},
			wantKind: provider.ErrUnavailable, wantCode: "10010500",
			wantCalls: 1, wantTokens: []string{tokenA},
		},
		{
			name: "parameter error 400 fails the login as unavailable", union: answerWith(200, "", `{"errno":400,"errmsg":"param error"}`),
			source:   &tokenSource{tokens: []string{tokenA}},
			wantKind: provider.ErrUnavailable, wantCode: "400",
			wantCalls: 1, wantTokens: []string{tokenA},
		},
		{
			name: "qps limit fails the login as rate limited", union: answerWith(200, "", `{"error_code":18,"error_msg":"Open api qps request limit reached"}`),
			source:   &tokenSource{tokens: []string{tokenA}},
			wantKind: provider.ErrRateLimited, wantCode: "18",
			wantCalls: 1, wantTokens: []string{tokenA},
		},
		{
			name: "no permission fails the login as misconfigured", union: answerWith(200, "", `{"error_code":6,"error_msg":"No permission to access data"}`),
			source:   &tokenSource{tokens: []string{tokenA}},
			wantKind: provider.ErrMisconfigured, wantCode: "6",
			wantCalls: 1, wantTokens: []string{tokenA},
		},
		{
			name: "success without unionid fails the login", union: answerWith(200, "", `{"data":{},"errmsg":"succ","errno":0}`),
			source: &tokenSource{tokens: []string{tokenA}}, wantKind: provider.ErrUnavailable,
			wantCalls: 1, wantTokens: []string{tokenA},
		},
		{
			name: "success with data not an object fails the login", union: answerWith(200, "", `{"data":"","errmsg":"succ","errno":0}`),
			source: &tokenSource{tokens: []string{tokenA}}, wantKind: provider.ErrUnavailable,
			wantCalls: 1, wantTokens: []string{tokenA},
		},
		{
			name: "errmsg echoing the token is redacted", union: answerWith(200, "", `{"errno":10010500,"errmsg":"bad token `+tokenA+`"}`),
			source:   &tokenSource{tokens: []string{tokenA}},
			wantKind: provider.ErrUnavailable, wantCode: "10010500",
			wantCalls: 1, wantTokens: []string{tokenA},
		},
		{
			name: "broker platform error is passed through", union: union,
			source:   &tokenSource{err: &provider.Error{Kind: provider.ErrMisconfigured, Platform: provider.Baidu, Code: "invalid_client"}},
			wantKind: provider.ErrMisconfigured, wantCode: "invalid_client",
		},
		{
			name: "broker storage error is unavailable", union: union,
			source:   &tokenSource{err: errors.New("database is locked")},
			wantKind: provider.ErrUnavailable,
		},
		{
			name: "failing invalidate is unavailable", union: invalid,
			source:    &tokenSource{tokens: []string{tokenA, tokenB}, invalErr: errors.New("database is locked")},
			wantKind:  provider.ErrUnavailable,
			wantCalls: 1, wantTokens: []string{tokenA}, wantInval: []string{tokenA},
		},
		{
			name: "failed exchange never asks for a token", session: answerWith(200, "", `{"errno":10010102,"error":"invalid_grant"}`), union: union,
			source:   &tokenSource{tokens: []string{tokenA}},
			wantKind: provider.ErrCodeInvalid, wantCode: "10010102",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session
			if tt.session != nil {
				s = tt.session
			}
			f := newFake(t).on(SessionKeyPath, s).on(UnionIDPath, tt.union)
			p := newProvider(t, f.srv.URL, "entity-1", tt.source, 2*time.Second)

			id, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
			if tt.wantKind != nil {
				checkError(t, err, tt.wantKind, tt.wantCode)
				if id != nil {
					t.Errorf("identity = %+v, want nil", id)
				}
			} else {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				want := provider.Identity{Platform: provider.Baidu, AppID: testAppKey, OpenID: testOpenID, UnionID: tt.wantUnion, SessionKey: testKey}
				if *id != want {
					t.Errorf("identity = %+v, want %+v", *id, want)
				}
			}
			if n := f.count(UnionIDPath); n != tt.wantCalls {
				t.Errorf("getunionid called %d times, want %d", n, tt.wantCalls)
			}
			if got := f.unionTokens(); strings.Join(got, ",") != strings.Join(tt.wantTokens, ",") {
				t.Errorf("getunionid saw tokens %v, want %v", got, tt.wantTokens)
			}
			if got := tt.source.invalidated; strings.Join(got, ",") != strings.Join(tt.wantInval, ",") {
				t.Errorf("invalidated %v, want %v", got, tt.wantInval)
			}
			for _, fe := range tt.source.fetchers {
				if fe != provider.TokenFetcher(p) {
					t.Errorf("broker got fetcher %T, want the provider itself", fe)
				}
			}
			if n := f.count(TokenPath); n != 0 {
				t.Errorf("the provider fetched a token itself %d times; the broker must", n)
			}
		})
	}
}

func TestFetchAccessToken(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantTTL  time.Duration
		wantKind error
		wantCode string
	}{
		{name: "documented answer", status: 200,
			body:    `{"access_token":"` + tokenA + `","expires_in":2592000,"refresh_token":"2.385d55f8615fdfd9edb7c4b5ebdc3e39.604800.1293440400-2346678-124328","scope":"smartapp_snsapi_base public","session_key":"","session_secret":""}`,
			wantTTL: 30 * 24 * time.Hour},
		{name: "expires_in as a string", status: 200, body: `{"access_token":"` + tokenA + `","expires_in":"86400"}`, wantTTL: 24 * time.Hour},
		{name: "expires_in missing uses the default", status: 200, body: `{"access_token":"` + tokenA + `"}`, wantTTL: DefaultTokenLifetime},
		{name: "expires_in 0 uses the default", status: 200, body: `{"access_token":"` + tokenA + `","expires_in":0}`, wantTTL: DefaultTokenLifetime},
		{name: "negative expires_in uses the default", status: 200, body: `{"access_token":"` + tokenA + `","expires_in":-5}`, wantTTL: DefaultTokenLifetime},
		{name: "expires_in of the wrong type uses the default", status: 200, body: `{"access_token":"` + tokenA + `","expires_in":{}}`, wantTTL: DefaultTokenLifetime},
		{name: "absurd expires_in is capped", status: 200, body: `{"access_token":"` + tokenA + `","expires_in":9007199254740992}`, wantTTL: maxTokenLifetime},
		{name: "unknown client id is misconfigured", status: 400, body: `{"error":"invalid_client","error_description":"unknown client id"}`, wantKind: provider.ErrMisconfigured, wantCode: "invalid_client"},
		{name: "bad secret is misconfigured", status: 401, body: `{"error":"invalid_client","error_description":"Client authentication failed"}`, wantKind: provider.ErrMisconfigured, wantCode: "invalid_client"},
		{name: "unsupported grant type is misconfigured", status: 400, body: `{"error":"unsupported_grant_type","error_description":"The authorization grant type is not supported"}`, wantKind: provider.ErrMisconfigured, wantCode: "unsupported_grant_type"},
		{name: "invalid scope is misconfigured", status: 400, body: `{"error":"invalid_scope","error_description":"The requested scope is invalid"}`, wantKind: provider.ErrMisconfigured, wantCode: "invalid_scope"},
		{name: "invalid_request is misconfigured", status: 400, body: `{"error":"invalid_request","error_description":"invalid refresh token"}`, wantKind: provider.ErrMisconfigured, wantCode: "invalid_request"},
		{name: "qps limit is rate limited", status: 200, body: `{"error_code":18,"error_msg":"Open api qps request limit reached"}`, wantKind: provider.ErrRateLimited, wantCode: "18"},
		{name: "temporarily unavailable", status: 503, body: `{"error":"temporarily_unavailable"}`, wantKind: provider.ErrUnavailable, wantCode: "temporarily_unavailable"},
		{name: "secret echoed is redacted", status: 401, body: `{"error":"invalid_client","error_description":"bad secret ` + testSecret + `"}`, wantKind: provider.ErrMisconfigured, wantCode: "invalid_client"},
		{name: "no access_token is unavailable", status: 200, body: `{"expires_in":2592000}`, wantKind: provider.ErrUnavailable},
		{name: "access_token with spaces is unavailable", status: 200, body: `{"access_token":"a b","expires_in":2592000}`, wantKind: provider.ErrUnavailable},
		{name: "HTTP 500 is unavailable", status: 500, body: `<html>oops</html>`, wantKind: provider.ErrUnavailable},
		{name: "truncated answer does not leak the token", status: 200, body: `{"access_token":"` + tokenA, wantKind: provider.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t).on(TokenPath, answerWith(tt.status, "application/json", tt.body))
			p := newProvider(t, f.srv.URL, "", nil, 2*time.Second)
			for _, force := range []bool{false, true} {
				tok, err := p.FetchAccessToken(context.Background(), force)
				if tt.wantKind != nil {
					checkError(t, err, tt.wantKind, tt.wantCode)
					continue
				}
				if err != nil {
					t.Fatalf("FetchAccessToken(%v): %v", force, err)
				}
				if want := (provider.AccessToken{Token: tokenA, ExpiresIn: tt.wantTTL}); tok != want {
					t.Errorf("FetchAccessToken(%v) = %+v, want %+v", force, tok, want)
				}
			}
			if n := f.count(TokenPath); n != 2 {
				t.Errorf("token endpoint called %d times, want 2", n)
			}
		})
	}
}

func TestEndpointReplacesOnlySchemeHostPort(t *testing.T) {
	for _, suffix := range []string{"", "/"} {
		p := newProvider(t, "http://127.0.0.1:8001"+suffix, "", nil, 0)
		for got, want := range map[string]string{
			p.sessionURL: "http://127.0.0.1:8001/oauth/jscode2sessionkey",
			p.tokenURL:   "http://127.0.0.1:8001/oauth/2.0/token",
			p.unionURL:   "http://127.0.0.1:8001/rest/2.0/smartapp/getunionid",
		} {
			if got != want {
				t.Errorf("endpoint %q: url = %q, want %q", suffix, got, want)
			}
		}
	}
}

func TestNewWithoutEndpointCallsBaidu(t *testing.T) {
	p := newProvider(t, "", "", nil, 0)
	for got, want := range map[string]string{
		p.sessionURL: "https://spapi.baidu.com/oauth/jscode2sessionkey",
		p.tokenURL:   "https://openapi.baidu.com/oauth/2.0/token",
		p.unionURL:   "https://openapi.baidu.com/rest/2.0/smartapp/getunionid",
	} {
		if got != want {
			t.Errorf("url = %q, want %q", got, want)
		}
	}
}

func TestNewRejectsIncompleteApps(t *testing.T) {
	tests := []struct {
		name    string
		app     provider.App
		env     provider.Env
		wantErr string
	}{
		{"missing secret", provider.App{AppID: testAppKey}, provider.Env{}, "secret: required"},
		{"missing app_id", provider.App{Secret: testSecret}, provider.Env{}, "app_id: required"},
		{"endpoint with a path", provider.App{AppID: testAppKey, Secret: testSecret, Endpoint: "http://127.0.0.1:1/oauth"}, provider.Env{}, "endpoint:"},
		{"union scope without a token broker", provider.App{AppID: testAppKey, Secret: testSecret, UnionScope: "entity-1"}, provider.Env{}, "union_scope:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.app.Platform = provider.Baidu
			p, err := New(tt.app, tt.env)
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
	if _, err := New(provider.App{Platform: provider.Baidu, AppID: testAppKey, Secret: testSecret, UnionScope: "entity-1"}, provider.Env{Tokens: &tokenSource{}}); err != nil {
		t.Errorf("New with a union scope and a broker: %v", err)
	}
}

// TestRetryableOnlyWhenBaiduDidNotAct: only the 100105xx family (server
// internal error) and a 5xx but 504 may be retried with the same code; a
// failure after the code was spent (getunionid) never is; rate limits carry
// a back-off.
func TestRetryableOnlyWhenBaiduDidNotAct(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		body           string
		wantRetryable  bool
		wantRetryAfter time.Duration
	}{
		{name: "10010500 server internal error", status: 200, body: `{"errno":10010500,"error":"server internal error"}`, wantRetryable: true},
		{name: "HTTP 503", status: 503, body: "<html>503</html>", wantRetryable: true},
		{name: "HTTP 500 with a JSON errno", status: 500, body: `{"errno":10010100,"error":"parameter is invalid"}`, wantRetryable: true},
		{name: "HTTP 504 may have acted", status: 504, body: "<html>504</html>"},
		{name: "invalid code", status: 200, body: `{"errno":10010102,"error":"invalid_grant","error_description":"authorization code expired"}`},
		{name: "unknown errno", status: 200, body: `{"errno":99999,"error":"something new"}`},
		{name: "error_code 4 rate limit", status: 200, body: `{"error_code":4,"error_msg":"Open api request limit reached"}`, wantRetryAfter: provider.DefaultRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSession(tt.status, []byte(tt.body))
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *provider.Error", err)
			}
			if pe.Retryable != tt.wantRetryable || pe.RetryAfter != tt.wantRetryAfter {
				t.Errorf("%v: Retryable = %v, RetryAfter = %v; want %v, %v", pe, pe.Retryable, pe.RetryAfter, tt.wantRetryable, tt.wantRetryAfter)
			}
		})
	}
	t.Run("getunionid failing after the code was spent", func(t *testing.T) {
		f := newFake(t).
			on(SessionKeyPath, answerWith(200, "", `{"openid":"`+testOpenID+`","session_key":"`+testKey+`"}`)).
			on(UnionIDPath, answerWith(503, "text/html", "<html>503</html>"))
		p := newProvider(t, f.srv.URL, "scope", &tokenSource{tokens: []string{"tok-1"}}, 2*time.Second)
		_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
		var pe *provider.Error
		if !errors.As(err, &pe) || !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if pe.Retryable {
			t.Errorf("a getunionid 503 after jscode2sessionkey is Retryable: a retry would resend the spent code")
		}
	})
}
