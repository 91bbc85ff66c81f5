package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/provider"
	dyprovider "github.com/mpauth/mpauth/internal/provider/douyin"
)

// Douyin test apps: A and B share a union scope, C has none. The helpers
// here are the Douyin tests' own, so they do not depend on other
// platforms' test helpers.
var (
	dyAppA = provider.App{Platform: provider.Douyin, AppID: "tt07e3715e98c9aac0", Secret: `dy-secret-a"\`, UnionScope: "dev-1"}
	dyAppB = provider.App{Platform: provider.Douyin, AppID: "tt1111111111111111", Secret: "dy-secret-b", UnionScope: "dev-1"}
	dyAppC = provider.App{Platform: provider.Douyin, AppID: "tt2222222222222222", Secret: "dy-secret-c"}
)

type dyClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *dyClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *dyClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type dyEnv struct {
	sb    *Sandbox
	url   string
	clock *dyClock
}

func newDyEnv(t *testing.T, opts ...Option) *dyEnv {
	t.Helper()
	c := &dyClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	sb := New([]provider.App{dyAppA, dyAppB, dyAppC}, append([]Option{WithClock(c.Now)}, opts...)...)
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	return &dyEnv{sb: sb, url: ts.URL, clock: c}
}

func (e *dyEnv) mint(t *testing.T, app provider.App, user string) string {
	t.Helper()
	code, err := MintCode(context.Background(), e.url, provider.Douyin, app.AppID, user)
	if err != nil {
		t.Fatalf("MintCode(%s, %s): %v", app.AppID, user, err)
	}
	return code
}

func (e *dyEnv) mintAnon(t *testing.T, app provider.App, user string) string {
	t.Helper()
	code, err := MintDouyinAnonymousCode(context.Background(), e.url, app.AppID, user)
	if err != nil {
		t.Fatalf("MintDouyinAnonymousCode(%s, %s): %v", app.AppID, user, err)
	}
	return code
}

// dyProvider is the real Douyin provider pointed at the sandbox.
type dyProvider interface {
	provider.Provider
	provider.TokenFetcher
	provider.UserDataDecrypter
}

func (e *dyEnv) provider(t *testing.T, app provider.App, allowGuests bool, timeout time.Duration) dyProvider {
	t.Helper()
	app.Endpoint = e.url
	app.AllowGuests = allowGuests
	app.Timeout = timeout
	p, err := dyprovider.New(app, provider.Env{})
	if err != nil {
		t.Fatalf("douyin.New: %v", err)
	}
	return p.(dyProvider)
}

// dyAnswer is a decoded answer; the map keeps "absent" apart from "empty".
type dyAnswer struct {
	status      int
	contentType string
	raw         string
	fields      map[string]any
}

func (a dyAnswer) errNo() (int, bool) {
	v, ok := a.fields["err_no"].(float64)
	return int(v), ok
}

func (a dyAnswer) data() map[string]any {
	d, _ := a.fields["data"].(map[string]any)
	return d
}

func (e *dyEnv) post(t *testing.T, path, contentType, body string) dyAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return dyDo(t, req)
}

func dyDo(t *testing.T, req *http.Request) dyAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := dyAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(b)}
	_ = json.Unmarshal(b, &a.fields)
	return a
}

func dyJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// exchange posts a code2Session request as the real provider would.
func (e *dyEnv) exchange(t *testing.T, app provider.App, code, anon string) dyAnswer {
	t.Helper()
	body := map[string]string{"appid": app.AppID, "secret": app.Secret}
	if code != "" {
		body["code"] = code
	}
	if anon != "" {
		body["anonymous_code"] = anon
	}
	return e.post(t, "/api/apps/v2/jscode2session", "application/json", dyJSON(body))
}

var (
	dyOpenIDRe = regexp.MustCompile(`^_000[A-Za-z0-9_-]{32}$`)
	dyUUIDRe   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	dyLogIDRe  = regexp.MustCompile(`^[0-9]{14}[0-9A-F]{20}$`)
	dyCodeRe   = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	dyDataKeys = []string{"anonymous_openid", "dopenid", "openid", "session_key", "unionid"}
)

// checkDyData asserts data has exactly the five string fields of a real
// answer and returns them.
func checkDyData(t *testing.T, a dyAnswer) map[string]string {
	t.Helper()
	d := a.data()
	if d == nil {
		t.Fatalf("no data object: %s", a.raw)
	}
	out := map[string]string{}
	for k, v := range d {
		s, ok := v.(string)
		if !ok {
			t.Errorf("data.%s = %v, want a string", k, v)
		}
		out[k] = s
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range out {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, dyDataKeys) {
		t.Errorf("data keys = %v, want %v", keys, dyDataKeys)
	}
	return out
}

func TestDouyin_SuccessIsTheRealWireFormat(t *testing.T) {
	tests := []struct {
		name      string
		app       provider.App
		wantUnion bool
	}{
		{"app with a union scope gets a unionid", dyAppA, true},
		{"app without a union scope gets an empty unionid", dyAppC, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDyEnv(t)
			code := e.mint(t, tt.app, "alice")
			if !dyCodeRe.MatchString(code) {
				t.Errorf("code %q: want 32 alphanumerics", code)
			}
			a := e.exchange(t, tt.app, code, "")
			if a.status != http.StatusOK || !strings.HasPrefix(a.contentType, "application/json") {
				t.Fatalf("got %d %q: %s", a.status, a.contentType, a.raw)
			}
			if n, ok := a.errNo(); !ok || n != 0 || a.fields["err_tips"] != "success" {
				t.Errorf("err_no/err_tips = %v/%v, want 0/success", a.fields["err_no"], a.fields["err_tips"])
			}
			if id, _ := a.fields["log_id"].(string); !dyLogIDRe.MatchString(id) {
				t.Errorf("log_id %q does not look like Douyin's", id)
			}
			d := checkDyData(t, a)
			if !dyOpenIDRe.MatchString(d["openid"]) {
				t.Errorf("openid %q does not look like a Douyin openid", d["openid"])
			}
			if d["anonymous_openid"] != "" || d["dopenid"] != "" {
				t.Errorf("anonymous_openid/dopenid = %q/%q, want empty strings", d["anonymous_openid"], d["dopenid"])
			}
			if got := d["unionid"] != ""; got != tt.wantUnion {
				t.Errorf("unionid %q: present = %v, want %v", d["unionid"], got, tt.wantUnion)
			}
			if tt.wantUnion && !dyUUIDRe.MatchString(d["unionid"]) {
				t.Errorf("unionid %q: want UUID-shaped", d["unionid"])
			}
			sk := d["session_key"]
			if raw, err := base64.StdEncoding.DecodeString(sk); err != nil || len(sk) != 24 || len(raw) != 16 {
				t.Errorf("session_key %q: want 24 base64 chars of 16 bytes", sk)
			}
			if got, ok := e.sb.SessionKey(tt.app.AppID, "alice"); !ok || got != sk {
				t.Errorf("SessionKey = %q, %v; want %q", got, ok, sk)
			}
		})
	}
}

func TestDouyin_ErrorsAreTheRealWireFormat(t *testing.T) {
	tests := []struct {
		name string
		// req returns the content type and body to post.
		req       func(t *testing.T, e *dyEnv) (string, string)
		wantErrNo int
	}{
		{"body that is not JSON", func(*testing.T, *dyEnv) (string, string) {
			return "application/json", `{"appid":`
		}, 40014},
		{"form body instead of JSON", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/x-www-form-urlencoded", "appid=" + dyAppA.AppID + "&secret=x&code=" + e.mint(t, dyAppA, "alice")
		}, 40014},
		{"JSON with trailing data", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret, "code": e.mint(t, dyAppA, "alice")}) + "{}"
		}, 40014},
		{"appid missing", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"secret": dyAppA.Secret, "code": e.mint(t, dyAppA, "alice")})
		}, 40014},
		{"secret missing", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "code": e.mint(t, dyAppA, "alice")})
		}, 40014},
		{"no code and no anonymous code", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret, "code": "", "anonymous_code": ""})
		}, 40014},
		{"unknown appid", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": "tt9999999999999999", "secret": "x", "code": e.mint(t, dyAppA, "alice")})
		}, 40015},
		{"wrong secret", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": "wrong", "code": e.mint(t, dyAppA, "alice")})
		}, 40017},
		{"unknown code", func(*testing.T, *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret, "code": "nope"})
		}, 40018},
		{"code of another app", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret, "code": e.mint(t, dyAppB, "alice")})
		}, 40018},
		{"anonymous code sent as a login code", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret, "code": e.mintAnon(t, dyAppA, "alice")})
		}, 40018},
		{"login code sent as an anonymous code", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret, "anonymous_code": e.mint(t, dyAppA, "alice")})
		}, 40019},
		{"anonymous code of another app", func(t *testing.T, e *dyEnv) (string, string) {
			return "application/json", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret, "anonymous_code": e.mintAnon(t, dyAppB, "alice")})
		}, 40019},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDyEnv(t)
			ct, body := tt.req(t, e)
			a := e.post(t, "/api/apps/v2/jscode2session", ct, body)
			checkDyError(t, a, tt.wantErrNo)
		})
	}
}

func checkDyError(t *testing.T, a dyAnswer, wantErrNo int) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d, want 200 for a business error: %s", a.status, a.raw)
	}
	if n, ok := a.errNo(); !ok || n != wantErrNo {
		t.Errorf("err_no = %v, want %d: %s", a.fields["err_no"], wantErrNo, a.raw)
	}
	if tips := a.fields["err_tips"]; tips != dyTips[wantErrNo] {
		t.Errorf("err_tips = %v, want %q", tips, dyTips[wantErrNo])
	}
	for k, v := range checkDyData(t, a) {
		if v != "" {
			t.Errorf("error answer has data.%s = %q, want empty", k, v)
		}
	}
}

func TestDouyin_CodesAreSingleUseAndExpire(t *testing.T) {
	e := newDyEnv(t)
	code := e.mint(t, dyAppA, "alice")
	if a := e.exchange(t, dyAppA, code, ""); checkDyData(t, a)["openid"] == "" {
		t.Fatalf("first exchange: %s", a.raw)
	}
	checkDyError(t, e.exchange(t, dyAppA, code, ""), 40018)

	anon := e.mintAnon(t, dyAppA, "alice")
	if a := e.exchange(t, dyAppA, "", anon); checkDyData(t, a)["anonymous_openid"] == "" {
		t.Fatalf("first anonymous exchange: %s", a.raw)
	}
	checkDyError(t, e.exchange(t, dyAppA, "", anon), 40019)

	code, anon = e.mint(t, dyAppA, "bob"), e.mintAnon(t, dyAppA, "bob")
	e.clock.Advance(DefaultCodeTTL)
	checkDyError(t, e.exchange(t, dyAppA, code, ""), 40018)
	checkDyError(t, e.exchange(t, dyAppA, "", anon), 40019)
}

func TestDouyin_FailedCombinedExchangeConsumesNeitherCode(t *testing.T) {
	e := newDyEnv(t)
	code, anon := e.mint(t, dyAppA, "alice"), e.mintAnon(t, dyAppA, "alice")
	checkDyError(t, e.exchange(t, dyAppA, "bad-code", anon), 40018)
	checkDyError(t, e.exchange(t, dyAppA, code, "bad-anon"), 40019)
	d := checkDyData(t, e.exchange(t, dyAppA, code, anon))
	if d["openid"] == "" || d["anonymous_openid"] == "" {
		t.Errorf("after the failures: want both ids, got %v", d)
	}
}

func TestDouyin_OtherMethodsAreRejected(t *testing.T) {
	e := newDyEnv(t)
	for _, path := range []string{"/api/apps/v2/jscode2session", "/api/apps/v2/token"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+path+"?appid="+dyAppA.AppID, nil)
		if a := dyDo(t, req); a.status != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d %s, want 405", path, a.status, a.raw)
		}
	}
}

func TestDouyin_ProviderExchange(t *testing.T) {
	e := newDyEnv(t)
	ctx := context.Background()
	pa := e.provider(t, dyAppA, false, 2*time.Second)
	pb := e.provider(t, dyAppB, false, 2*time.Second)
	pc := e.provider(t, dyAppC, false, 2*time.Second)

	code := e.mint(t, dyAppA, "alice")
	ida, err := pa.Exchange(ctx, provider.Credentials{Code: code})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !dyOpenIDRe.MatchString(ida.OpenID) || ida.UnionID == "" || ida.AnonymousOpenID != "" || ida.Platform != provider.Douyin || ida.AppID != dyAppA.AppID {
		t.Errorf("identity = %+v", ida)
	}
	if sk, _ := e.sb.SessionKey(dyAppA.AppID, "alice"); ida.SessionKey != sk || sk == "" {
		t.Errorf("SessionKey = %q, sandbox has %q", ida.SessionKey, sk)
	}

	_, err = pa.Exchange(ctx, provider.Credentials{Code: code})
	checkDyProviderError(t, err, provider.ErrCodeInvalid, "40018")

	again, err := pa.Exchange(ctx, provider.Credentials{Code: e.mint(t, dyAppA, "alice")})
	if err != nil {
		t.Fatalf("second login: %v", err)
	}
	if again.OpenID != ida.OpenID || again.UnionID != ida.UnionID || again.SessionKey == ida.SessionKey {
		t.Errorf("second login %+v: want the same ids and a new session key than %+v", again, ida)
	}
	idb, err := pb.Exchange(ctx, provider.Credentials{Code: e.mint(t, dyAppB, "alice")})
	if err != nil {
		t.Fatalf("app B: %v", err)
	}
	if idb.OpenID == ida.OpenID || idb.UnionID != ida.UnionID {
		t.Errorf("app B %+v vs app A %+v: want another openid and the same unionid", idb, ida)
	}
	idc, err := pc.Exchange(ctx, provider.Credentials{Code: e.mint(t, dyAppC, "alice")})
	if err != nil {
		t.Fatalf("app C: %v", err)
	}
	if idc.UnionID != "" {
		t.Errorf("app C without a union scope got unionid %q", idc.UnionID)
	}

	// Another sandbox (a restart) gives the same ids.
	other := newDyEnv(t)
	ido, err := other.provider(t, dyAppA, false, 2*time.Second).Exchange(ctx, provider.Credentials{Code: other.mint(t, dyAppA, "alice")})
	if err != nil {
		t.Fatalf("other sandbox: %v", err)
	}
	if ido.OpenID != ida.OpenID || ido.UnionID != ida.UnionID {
		t.Errorf("ids changed across sandboxes: %+v vs %+v", ido, ida)
	}
}

func checkDyProviderError(t *testing.T, err, kind error, code string) *provider.Error {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err is %T", err)
	}
	if pe.Code != code {
		t.Errorf("Code = %q, want %q (%v)", pe.Code, code, err)
	}
	return pe
}

func TestDouyin_ProviderAnonymousLogins(t *testing.T) {
	ctx := context.Background()
	t.Run("real and anonymous code together give both ids, stable per user", func(t *testing.T) {
		e := newDyEnv(t)
		p := e.provider(t, dyAppA, false, 2*time.Second)
		first, err := p.Exchange(ctx, provider.Credentials{Code: e.mint(t, dyAppA, "alice"), AnonymousCode: e.mintAnon(t, dyAppA, "alice")})
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if first.OpenID == "" || first.SessionKey == "" || !dyOpenIDRe.MatchString(first.AnonymousOpenID) || first.AnonymousOpenID == first.OpenID {
			t.Fatalf("identity = %+v", first)
		}
		second, err := p.Exchange(ctx, provider.Credentials{Code: e.mint(t, dyAppA, "alice"), AnonymousCode: e.mintAnon(t, dyAppA, "alice")})
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if second.OpenID != first.OpenID || second.AnonymousOpenID != first.AnonymousOpenID {
			t.Errorf("second %+v, first %+v: want the same ids", second, first)
		}
		other, err := e.provider(t, dyAppB, false, 2*time.Second).Exchange(ctx, provider.Credentials{Code: e.mint(t, dyAppB, "alice"), AnonymousCode: e.mintAnon(t, dyAppB, "alice")})
		if err != nil {
			t.Fatalf("app B: %v", err)
		}
		if other.AnonymousOpenID == first.AnonymousOpenID {
			t.Error("the anonymous openid is the same on two apps")
		}
	})
	t.Run("anonymous code alone is a guest login when guests are allowed", func(t *testing.T) {
		e := newDyEnv(t)
		p := e.provider(t, dyAppA, true, 2*time.Second)
		guest, err := p.Exchange(ctx, provider.Credentials{AnonymousCode: e.mintAnon(t, dyAppA, "alice")})
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if guest.OpenID != "" || guest.SessionKey != "" || guest.UnionID != "" || guest.AnonymousOpenID == "" {
			t.Errorf("guest identity = %+v", guest)
		}
		full, err := p.Exchange(ctx, provider.Credentials{Code: e.mint(t, dyAppA, "alice"), AnonymousCode: e.mintAnon(t, dyAppA, "alice")})
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if full.AnonymousOpenID != guest.AnonymousOpenID {
			t.Errorf("anonymous openid %q after logging in, %q as a guest: want the same", full.AnonymousOpenID, guest.AnonymousOpenID)
		}
		if _, ok := e.sb.SessionKey(dyAppA.AppID, "alice"); !ok {
			t.Error("no session key after the real login")
		}
	})
	t.Run("anonymous code alone is refused without spending it when guests are not allowed", func(t *testing.T) {
		e := newDyEnv(t)
		anon := e.mintAnon(t, dyAppA, "alice")
		_, err := e.provider(t, dyAppA, false, 2*time.Second).Exchange(ctx, provider.Credentials{AnonymousCode: anon})
		pe := checkDyProviderError(t, err, provider.ErrGuestNotAllowed, "")
		if !strings.Contains(pe.Message, "allow_guests") {
			t.Errorf("Message = %q", pe.Message)
		}
		if _, err := e.provider(t, dyAppA, true, 2*time.Second).Exchange(ctx, provider.Credentials{AnonymousCode: anon}); err != nil {
			t.Errorf("the refused anonymous code was spent: %v", err)
		}
		if _, ok := e.sb.SessionKey(dyAppA.AppID, "alice"); ok {
			t.Error("a guest login stored a session key")
		}
	})
	t.Run("reused anonymous code is invalid", func(t *testing.T) {
		e := newDyEnv(t)
		p := e.provider(t, dyAppA, true, 2*time.Second)
		anon := e.mintAnon(t, dyAppA, "alice")
		if _, err := p.Exchange(ctx, provider.Credentials{AnonymousCode: anon}); err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		_, err := p.Exchange(ctx, provider.Credentials{AnonymousCode: anon})
		checkDyProviderError(t, err, provider.ErrCodeInvalid, "40019")
	})
}

func TestDouyin_ProviderSeesFaultsThenRecovers(t *testing.T) {
	tests := []struct {
		fault    string
		wantKind error
		wantCode string
	}{
		{FaultBusy, provider.ErrUnavailable, "-1"},
		{FaultRateLimited, provider.ErrUnavailable, "-1"},
		{FaultBlocked, provider.ErrCodeInvalid, "40018"},
		{FaultUnavailableHTTP, provider.ErrUnavailable, ""},
		{FaultMalformed, provider.ErrUnavailable, ""},
		{FaultTimeout, provider.ErrUnavailable, ""},
	}
	for _, tt := range tests {
		for _, anonymous := range []bool{false, true} {
			name := tt.fault
			if anonymous {
				name += " on a guest login"
			}
			t.Run(name, func(t *testing.T) {
				e := newDyEnv(t)
				b := dyJSON(FaultSpec{Platform: provider.Douyin, AppID: dyAppA.AppID, User: "alice", Error: tt.fault, Count: 1})
				if a := e.post(t, "/sandbox/faults", "application/json", b); a.status != http.StatusOK {
					t.Fatalf("POST /sandbox/faults: %d %s", a.status, a.raw)
				}
				p := e.provider(t, dyAppA, true, 300*time.Millisecond)
				creds := provider.Credentials{Code: e.mint(t, dyAppA, "alice")}
				if anonymous {
					creds = provider.Credentials{AnonymousCode: e.mintAnon(t, dyAppA, "alice")}
				}
				// Another user is not affected.
				if _, err := p.Exchange(context.Background(), provider.Credentials{Code: e.mint(t, dyAppA, "bob")}); err != nil {
					t.Fatalf("bob: %v", err)
				}
				_, err := p.Exchange(context.Background(), creds)
				checkDyProviderError(t, err, tt.wantKind, tt.wantCode)
				// The fault did not consume the code.
				if _, err := p.Exchange(context.Background(), creds); err != nil {
					t.Errorf("after the fault: %v", err)
				}
			})
		}
	}
}

func TestDouyin_ProviderFetchesTokensTheSandboxRemembers(t *testing.T) {
	e := newDyEnv(t)
	ctx := context.Background()
	p := e.provider(t, dyAppA, false, 2*time.Second)

	first, err := p.FetchAccessToken(ctx, false)
	if err != nil {
		t.Fatalf("FetchAccessToken: %v", err)
	}
	if !strings.HasPrefix(first.Token, "08011218") || first.ExpiresIn != 2*time.Hour {
		t.Errorf("token = %+v, want 08011218... for 2h", first)
	}
	if app, ok := e.sb.douyinTokenApp(first.Token); !ok || app != dyAppA.AppID {
		t.Errorf("sandbox knows the token as %q, %v", app, ok)
	}
	second, err := p.FetchAccessToken(ctx, true)
	if err != nil {
		t.Fatalf("FetchAccessToken: %v", err)
	}
	if second.Token == first.Token {
		t.Error("a second fetch returned the same token")
	}
	// The previous token lives five more minutes.
	e.clock.Advance(5*time.Minute - time.Second)
	if _, ok := e.sb.douyinTokenApp(first.Token); !ok {
		t.Error("the previous token died before its five minutes")
	}
	e.clock.Advance(time.Second)
	if _, ok := e.sb.douyinTokenApp(first.Token); ok {
		t.Error("the previous token outlived its five minutes")
	}
	if _, ok := e.sb.douyinTokenApp(second.Token); !ok {
		t.Error("the current token died with the previous one")
	}
	e.clock.Advance(2*time.Hour - 5*time.Minute)
	if _, ok := e.sb.douyinTokenApp(second.Token); ok {
		t.Error("the token outlived its two hours")
	}
	// A token of app B does not shorten app A's.
	third, _ := p.FetchAccessToken(ctx, false)
	if _, err := e.provider(t, dyAppB, false, 2*time.Second).FetchAccessToken(ctx, false); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, ok := e.sb.douyinTokenApp(third.Token); !ok {
		t.Error("another app's token fetch cut this app's token")
	}

	bad := dyAppA
	bad.Secret = "wrong"
	_, err = e.provider(t, bad, false, 2*time.Second).FetchAccessToken(ctx, false)
	checkDyProviderError(t, err, provider.ErrMisconfigured, "40017")
}

func TestDouyin_TokenErrorsAreTheDocumentedFormat(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantErrNo int
	}{
		{"wrong grant_type", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret, "grant_type": "authorization_code"}), 40020},
		{"grant_type missing", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": dyAppA.Secret}), 40014},
		{"unknown appid", dyJSON(map[string]string{"appid": "tt9", "secret": "x", "grant_type": "client_credential"}), 40015},
		{"wrong secret", dyJSON(map[string]string{"appid": dyAppA.AppID, "secret": "bad", "grant_type": "client_credential"}), 40017},
		{"not JSON", "appid=x", 40014},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDyEnv(t)
			a := e.post(t, "/api/apps/v2/token", "application/json", tt.body)
			want := `{"err_no":` + dyJSON(tt.wantErrNo) + `,"err_tips":` + dyJSON(dyTips[tt.wantErrNo]) + `,"data":{"access_token":"","expires_in":0}}`
			if a.status != http.StatusOK || a.raw != want {
				t.Errorf("got %d %s\nwant 200 %s", a.status, a.raw, want)
			}
		})
	}
}

func (e *dyEnv) seal(t *testing.T, user string, doc UserDataDoc) (provider.EncryptedData, dyAnswer) {
	t.Helper()
	a := e.post(t, "/sandbox/user-data", "application/json", dyJSON(SealRequest{Platform: provider.Douyin, AppID: dyAppA.AppID, User: user, UserDataDoc: doc}))
	var s SealedUserData
	_ = json.Unmarshal([]byte(a.raw), &s)
	return provider.EncryptedData{Data: s.EncryptedData, IV: s.IV}, a
}

func TestDouyin_SealedUserDataDecryptsWithTheProvider(t *testing.T) {
	e := newDyEnv(t)
	p := e.provider(t, dyAppA, true, 2*time.Second)
	id, err := p.Exchange(context.Background(), provider.Credentials{Code: e.mint(t, dyAppA, "alice")})
	if err != nil {
		t.Fatal(err)
	}

	phoneTests := []struct {
		name string
		doc  UserDataDoc
		want provider.Phone
	}{
		{"mainland number", UserDataDoc{Kind: "phone", Phone: "13580006666"}, provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"}},
		{"foreign number", UserDataDoc{Kind: "phone", Phone: "2025550123", CountryCode: "+1"}, provider.Phone{Number: "+12025550123", PureNumber: "2025550123", CountryCode: "1"}},
	}
	for _, tt := range phoneTests {
		t.Run(tt.name, func(t *testing.T) {
			d, a := e.seal(t, "alice", tt.doc)
			if a.status != http.StatusOK || d.Data == "" || d.IV == "" {
				t.Fatalf("seal: %d %s", a.status, a.raw)
			}
			ph, err := p.DecryptPhone(id.SessionKey, d)
			if err != nil {
				t.Fatalf("DecryptPhone: %v", err)
			}
			if *ph != tt.want {
				t.Errorf("phone = %+v, want %+v", *ph, tt.want)
			}
		})
	}
	t.Run("profile", func(t *testing.T) {
		d, _ := e.seal(t, "alice", UserDataDoc{Kind: "profile", Nickname: "小明", AvatarURL: "https://p3.douyinpic.com/a.jpeg"})
		pr, err := p.DecryptProfile(id.SessionKey, d)
		if err != nil {
			t.Fatalf("DecryptProfile: %v", err)
		}
		if want := (provider.Profile{Nickname: "小明", AvatarURL: "https://p3.douyinpic.com/a.jpeg"}); *pr != want {
			t.Errorf("profile = %+v, want %+v", *pr, want)
		}
	})
	t.Run("a random IV each time", func(t *testing.T) {
		d1, _ := e.seal(t, "alice", UserDataDoc{Kind: "phone", Phone: "13580006666"})
		d2, _ := e.seal(t, "alice", UserDataDoc{Kind: "phone", Phone: "13580006666"})
		if d1.IV == d2.IV || d1.Data == d2.Data {
			t.Error("two seals share the IV or the ciphertext")
		}
	})
	t.Run("watermark of another app", func(t *testing.T) {
		d, _ := e.seal(t, "alice", UserDataDoc{Kind: "phone", Phone: "13580006666", WatermarkAppID: dyAppB.AppID})
		_, err := p.DecryptPhone(id.SessionKey, d)
		checkDyProviderError(t, err, provider.ErrWatermark, "")
	})
	t.Run("a new login makes the old session key stale", func(t *testing.T) {
		again, err := p.Exchange(context.Background(), provider.Credentials{Code: e.mint(t, dyAppA, "alice")})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := e.seal(t, "alice", UserDataDoc{Kind: "phone", Phone: "13580006666"})
		_, err = p.DecryptPhone(id.SessionKey, d)
		checkDyProviderError(t, err, provider.ErrSessionKeyStale, "")
		if _, err := p.DecryptPhone(again.SessionKey, d); err != nil {
			t.Errorf("with the new key: %v", err)
		}
	})
	t.Run("a guest has nothing to seal with", func(t *testing.T) {
		if _, err := p.Exchange(context.Background(), provider.Credentials{AnonymousCode: e.mintAnon(t, dyAppA, "guest")}); err != nil {
			t.Fatal(err)
		}
		if _, a := e.seal(t, "guest", UserDataDoc{Kind: "phone", Phone: "13580006666"}); a.status != http.StatusBadRequest {
			t.Errorf("seal for a guest: %d %s, want 400", a.status, a.raw)
		}
	})
}

func TestDouyin_AnonymousCodeControlRoute(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantField  string
	}{
		{"valid", `{"app_id":"` + dyAppA.AppID + `","user":"alice"}`, http.StatusOK, ""},
		{"unknown app", `{"app_id":"tt9","user":"alice"}`, http.StatusBadRequest, "app_id"},
		{"app_id missing", `{"user":"alice"}`, http.StatusBadRequest, "app_id"},
		{"user missing", `{"app_id":"` + dyAppA.AppID + `"}`, http.StatusBadRequest, "user"},
		{"user too long", `{"app_id":"` + dyAppA.AppID + `","user":"` + strings.Repeat("u", maxUserLen+1) + `"}`, http.StatusBadRequest, "user"},
		{"unknown field", `{"app_id":"` + dyAppA.AppID + `","user":"alice","platform":"douyin"}`, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDyEnv(t)
			a := e.post(t, "/sandbox/douyin/anonymous-codes", "application/json", tt.body)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", a.status, tt.wantStatus, a.raw)
			}
			if tt.wantStatus == http.StatusOK {
				if code, _ := a.fields["code"].(string); !dyCodeRe.MatchString(code) {
					t.Errorf("code %v: want 32 alphanumerics", a.fields["code"])
				}
				if ttl, _ := a.fields["expires_in"].(float64); ttl != DefaultCodeTTL.Seconds() {
					t.Errorf("expires_in = %v, want %v", a.fields["expires_in"], DefaultCodeTTL.Seconds())
				}
				return
			}
			if a.fields["field"] != nil && a.fields["field"] != tt.wantField || tt.wantField != "" && a.fields["field"] != tt.wantField {
				t.Errorf("field = %v, want %q: %s", a.fields["field"], tt.wantField, a.raw)
			}
		})
	}
	if _, err := MintDouyinAnonymousCode(context.Background(), newDyEnv(t).url, "tt9", "alice"); err == nil || !strings.Contains(err.Error(), "app_id") {
		t.Errorf("MintDouyinAnonymousCode for an unknown app: %v, want the sandbox's app_id error", err)
	}
}

func TestDouyin_AnonymousCodesAreGarbageCollected(t *testing.T) {
	e := newDyEnv(t)
	for range 10 {
		e.mintAnon(t, dyAppA, "alice")
	}
	e.clock.Advance(2 * DefaultCodeTTL)
	e.mintAnon(t, dyAppA, "alice") // sweeps
	e.sb.mu.Lock()
	n := len(e.sb.douyinStateLocked().anon)
	e.sb.mu.Unlock()
	if n != 1 {
		t.Errorf("%d anonymous codes kept, want 1 (the live one)", n)
	}
}

func TestDouyin_LogsNoSecretsCodesKeysOrTokens(t *testing.T) {
	var buf dySyncBuffer
	e := newDyEnv(t, WithLogger(log.NewStdLogger(&buf)))
	ctx := context.Background()
	p := e.provider(t, dyAppA, true, 2*time.Second)
	code, anon := e.mint(t, dyAppA, "alice"), e.mintAnon(t, dyAppA, "alice")
	id, err := p.Exchange(ctx, provider.Credentials{Code: code, AnonymousCode: anon})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Exchange(ctx, provider.Credentials{Code: code, AnonymousCode: anon}) // reuse
	tok, err := p.FetchAccessToken(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	bad := dyAppA
	bad.Secret = "wrong-secret"
	_, _ = e.provider(t, bad, true, 2*time.Second).Exchange(ctx, provider.Credentials{Code: e.mint(t, dyAppA, "alice")})
	_, _ = e.provider(t, bad, true, 2*time.Second).FetchAccessToken(ctx, false)

	out := buf.String()
	if !strings.Contains(out, "user=alice") || !strings.Contains(out, "douyin token") {
		t.Fatalf("the test logger saw too little: %q", out)
	}
	for _, secret := range []string{dyAppA.Secret, "wrong-secret", code, anon, id.SessionKey, tok.Token} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

type dySyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *dySyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *dySyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestDouyin_ConcurrentLogins(t *testing.T) {
	e := newDyEnv(t)
	p := e.provider(t, dyAppA, true, 5*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		user := "user" + string(rune('a'+i))
		code, anon := e.mint(t, dyAppA, user), e.mintAnon(t, dyAppA, user)
		for range 2 { // each pair is exchanged twice at once: exactly one wins
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := p.Exchange(context.Background(), provider.Credentials{Code: code, AnonymousCode: anon})
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	ok, invalid := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, provider.ErrCodeInvalid):
			invalid++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 20 || invalid != 20 {
		t.Errorf("%d logins and %d refusals, want 20 and 20", ok, invalid)
	}
}
