package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/provider"
)

// Test apps: A and B share a union scope, C has another, D has none.
var testApps = []provider.App{
	{Platform: provider.WeChat, AppID: "wxaaaaaaaaaaaaaaaa", Secret: "secret-a", UnionScope: "open-1"},
	{Platform: provider.WeChat, AppID: "wxbbbbbbbbbbbbbbbb", Secret: "secret-b", UnionScope: "open-1"},
	{Platform: provider.WeChat, AppID: "wxcccccccccccccccc", Secret: "secret-c", UnionScope: "open-2"},
	{Platform: provider.WeChat, AppID: "wxdddddddddddddddd", Secret: "secret-d"},
}

var appA, appB, appC, appD = testApps[0], testApps[1], testApps[2], testApps[3]

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	sb    *Sandbox
	url   string
	clock *clock
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	sb := New(testApps, append([]Option{WithClock(c.Now)}, opts...)...)
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	return &env{sb: sb, url: ts.URL, clock: c}
}

func (e *env) mint(t *testing.T, app provider.App, user string) string {
	t.Helper()
	code, err := MintCode(context.Background(), e.url, app.Platform, app.AppID, user)
	if err != nil {
		t.Fatalf("MintCode(%s, %s): %v", app.AppID, user, err)
	}
	return code
}

// answer is a decoded jscode2session body; the map keeps "field absent"
// apart from "field empty".
type answer struct {
	status      int
	contentType string
	raw         string
	fields      map[string]any
}

func (a answer) str(k string) string { s, _ := a.fields[k].(string); return s }

func (a answer) errcode() (int, bool) {
	v, ok := a.fields["errcode"].(float64)
	return int(v), ok
}

func (e *env) call(t *testing.T, method string, q url.Values) answer {
	t.Helper()
	req, err := http.NewRequest(method, e.url+"/sns/jscode2session?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
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
	a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(b)}
	_ = json.Unmarshal(b, &a.fields)
	return a
}

func query(app provider.App, code string) url.Values {
	return url.Values{"appid": {app.AppID}, "secret": {app.Secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
}

func (e *env) exchange(t *testing.T, app provider.App, code string) answer {
	t.Helper()
	return e.call(t, http.MethodGet, query(app, code))
}

// login mints and exchanges, failing unless the exchange succeeds.
func (e *env) login(t *testing.T, app provider.App, user string) answer {
	t.Helper()
	a := e.exchange(t, app, e.mint(t, app, user))
	if _, has := a.fields["errcode"]; has || a.status != http.StatusOK || a.str("openid") == "" {
		t.Fatalf("login %s/%s: want success, got %d %s", app.AppID, user, a.status, a.raw)
	}
	return a
}

var (
	wechatIDRe = regexp.MustCompile(`^o[A-Za-z0-9_-]{27}$`)
	codeRe     = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	ridRe      = regexp.MustCompile(`, rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)
)

func TestExchange_MintedCodeReturnsIdentityWithoutErrcode(t *testing.T) {
	tests := []struct {
		name        string
		app         provider.App
		wantUnionID bool
	}{
		{"app with union scope gets unionid", appA, true},
		{"app without union scope gets no unionid", appD, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			code := e.mint(t, tt.app, "alice")
			if !codeRe.MatchString(code) {
				t.Errorf("code %q: want 32 URL-safe alphanumerics", code)
			}
			a := e.exchange(t, tt.app, code)
			if a.status != http.StatusOK {
				t.Fatalf("status %d, body %s", a.status, a.raw)
			}
			for _, k := range []string{"errcode", "errmsg"} {
				if _, has := a.fields[k]; has {
					t.Errorf("success body has %q: %s", k, a.raw)
				}
			}
			if !wechatIDRe.MatchString(a.str("openid")) {
				t.Errorf("openid %q does not look like a WeChat openid", a.str("openid"))
			}
			sk := a.str("session_key")
			if raw, err := base64.StdEncoding.DecodeString(sk); len(sk) != 24 || err != nil || len(raw) != 16 {
				t.Errorf("session_key %q: want 24 base64 chars of 16 bytes", sk)
			}
			_, hasUnion := a.fields["unionid"]
			if hasUnion != tt.wantUnionID {
				t.Errorf("unionid present = %v, want %v: %s", hasUnion, tt.wantUnionID, a.raw)
			}
			if hasUnion && !wechatIDRe.MatchString(a.str("unionid")) {
				t.Errorf("unionid %q does not look like a WeChat unionid", a.str("unionid"))
			}
			if got, ok := e.sb.SessionKey(tt.app.AppID, "alice"); !ok || got != sk {
				t.Errorf("SessionKey = %q, %v; want %q", got, ok, sk)
			}
		})
	}
}

func TestIdentity_StableAndScoped(t *testing.T) {
	e := newEnv(t)
	other := newEnv(t) // a second instance, as after a restart
	tests := []struct {
		name string
		// first and second log in and return the two answers compared.
		first, second func(t *testing.T) answer
		sameOpenID    bool
		sameUnionID   bool
	}{
		{
			name:       "same user same app twice: same ids, new session_key",
			first:      func(t *testing.T) answer { return e.login(t, appA, "alice") },
			second:     func(t *testing.T) answer { return e.login(t, appA, "alice") },
			sameOpenID: true, sameUnionID: true,
		},
		{
			name:       "same user same app on another sandbox instance: same ids",
			first:      func(t *testing.T) answer { return e.login(t, appA, "alice") },
			second:     func(t *testing.T) answer { return other.login(t, appA, "alice") },
			sameOpenID: true, sameUnionID: true,
		},
		{
			name:       "different apps same scope: different openids, same unionid",
			first:      func(t *testing.T) answer { return e.login(t, appA, "alice") },
			second:     func(t *testing.T) answer { return e.login(t, appB, "alice") },
			sameOpenID: false, sameUnionID: true,
		},
		{
			name:       "different scopes: different unionids",
			first:      func(t *testing.T) answer { return e.login(t, appA, "alice") },
			second:     func(t *testing.T) answer { return e.login(t, appC, "alice") },
			sameOpenID: false, sameUnionID: false,
		},
		{
			name:       "different users same app: different ids",
			first:      func(t *testing.T) answer { return e.login(t, appA, "alice") },
			second:     func(t *testing.T) answer { return e.login(t, appA, "bob") },
			sameOpenID: false, sameUnionID: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.first(t), tt.second(t)
			if got := a.str("openid") == b.str("openid"); got != tt.sameOpenID {
				t.Errorf("openids %q, %q: same = %v, want %v", a.str("openid"), b.str("openid"), got, tt.sameOpenID)
			}
			if got := a.str("unionid") == b.str("unionid"); got != tt.sameUnionID {
				t.Errorf("unionids %q, %q: same = %v, want %v", a.str("unionid"), b.str("unionid"), got, tt.sameUnionID)
			}
			if a.str("session_key") == b.str("session_key") {
				t.Errorf("two logins got the same session_key %q", a.str("session_key"))
			}
		})
	}
}

func TestSessionKey_NewLoginReplacesIt(t *testing.T) {
	e := newEnv(t)
	if _, ok := e.sb.SessionKey(appA.AppID, "alice"); ok {
		t.Fatal("SessionKey before any login: want none")
	}
	e.login(t, appA, "alice")
	second := e.login(t, appA, "alice").str("session_key")
	if got, ok := e.sb.SessionKey(appA.AppID, "alice"); !ok || got != second {
		t.Errorf("SessionKey = %q, %v; want the latest %q", got, ok, second)
	}
	if _, ok := e.sb.SessionKey(appB.AppID, "alice"); ok {
		t.Error("SessionKey of an app the user never logged in to: want none")
	}
}

func TestExchange_Errors(t *testing.T) {
	tests := []struct {
		name string
		// request returns the method and query of the call under test,
		// after any setup on e.
		request func(t *testing.T, e *env) (string, url.Values)
		errcode int
		errmsg  string
	}{
		{
			name: "second exchange of a code is 40163",
			request: func(t *testing.T, e *env) (string, url.Values) {
				code := e.mint(t, appA, "alice")
				e.exchange(t, appA, code)
				return http.MethodGet, query(appA, code)
			},
			errcode: 40163, errmsg: "code been used",
		},
		{
			name: "expired code is 40029",
			request: func(t *testing.T, e *env) (string, url.Values) {
				code := e.mint(t, appA, "alice")
				e.clock.Advance(DefaultCodeTTL + time.Second)
				return http.MethodGet, query(appA, code)
			},
			errcode: 40029, errmsg: "invalid code",
		},
		{
			name: "code expires exactly at the TTL",
			request: func(t *testing.T, e *env) (string, url.Values) {
				code := e.mint(t, appA, "alice")
				e.clock.Advance(DefaultCodeTTL)
				return http.MethodGet, query(appA, code)
			},
			errcode: 40029, errmsg: "invalid code",
		},
		{
			name: "used code that expired is 40029",
			request: func(t *testing.T, e *env) (string, url.Values) {
				code := e.mint(t, appA, "alice")
				e.exchange(t, appA, code)
				e.clock.Advance(DefaultCodeTTL + time.Second)
				return http.MethodGet, query(appA, code)
			},
			errcode: 40029, errmsg: "invalid code",
		},
		{
			name: "code of app A used with app B is 40029",
			request: func(t *testing.T, e *env) (string, url.Values) {
				return http.MethodGet, query(appB, e.mint(t, appA, "alice"))
			},
			errcode: 40029, errmsg: "invalid code",
		},
		{
			name: "unknown code is 40029",
			request: func(t *testing.T, e *env) (string, url.Values) {
				return http.MethodGet, query(appA, "0a3Xs8000VL9bS1KfG200vJ5Nj1Xs80V")
			},
			errcode: 40029, errmsg: "invalid code",
		},
		{
			name: "wrong secret is 40125",
			request: func(t *testing.T, e *env) (string, url.Values) {
				q := query(appA, e.mint(t, appA, "alice"))
				q.Set("secret", appB.Secret)
				return http.MethodGet, q
			},
			errcode: 40125, errmsg: "invalid appsecret",
		},
		{
			name: "unknown appid is 40013",
			request: func(t *testing.T, e *env) (string, url.Values) {
				q := query(appA, e.mint(t, appA, "alice"))
				q.Set("appid", "wx0000000000000000")
				return http.MethodGet, q
			},
			errcode: 40013, errmsg: "invalid appid",
		},
		{
			name: "missing appid is 41002",
			request: func(t *testing.T, e *env) (string, url.Values) {
				q := query(appA, "x")
				q.Del("appid")
				return http.MethodGet, q
			},
			errcode: 41002, errmsg: "appid missing",
		},
		{
			name: "missing secret is 41004",
			request: func(t *testing.T, e *env) (string, url.Values) {
				q := query(appA, "x")
				q.Del("secret")
				return http.MethodGet, q
			},
			errcode: 41004, errmsg: "appsecret missing",
		},
		{
			name: "missing js_code is 41008",
			request: func(t *testing.T, e *env) (string, url.Values) {
				return http.MethodGet, query(appA, "")
			},
			errcode: 41008, errmsg: "missing code",
		},
		{
			name: "wrong grant_type is 40002",
			request: func(t *testing.T, e *env) (string, url.Values) {
				q := query(appA, e.mint(t, appA, "alice"))
				q.Set("grant_type", "client_credential")
				return http.MethodGet, q
			},
			errcode: 40002, errmsg: "invalid grant_type",
		},
		{
			name: "POST is 41002 like the real API",
			request: func(t *testing.T, e *env) (string, url.Values) {
				return http.MethodPost, query(appA, e.mint(t, appA, "alice"))
			},
			errcode: 41002, errmsg: "appid missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			method, q := tt.request(t, e)
			a := e.call(t, method, q)
			checkWeChatError(t, a, tt.errcode, tt.errmsg)
		})
	}
}

// checkWeChatError checks a business error the way the real API sends it.
func checkWeChatError(t *testing.T, a answer, errcode int, errmsg string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Errorf("status %d, want 200 (business errors are HTTP 200)", a.status)
	}
	if a.contentType != "text/plain" {
		t.Errorf("Content-Type %q, want text/plain", a.contentType)
	}
	got, ok := a.errcode()
	if !ok || got != errcode {
		t.Errorf("errcode = %v (present %v), want %d: %s", got, ok, errcode, a.raw)
	}
	msg := a.str("errmsg")
	if !strings.HasPrefix(msg, errmsg+", rid: ") || !ridRe.MatchString(msg) {
		t.Errorf("errmsg %q, want %q + \", rid: <rid>\"", msg, errmsg)
	}
	for _, k := range []string{"openid", "session_key", "unionid"} {
		if _, has := a.fields[k]; has {
			t.Errorf("error body has %q: %s", k, a.raw)
		}
	}
}

func TestExchange_CodeForAnotherAppStaysValidForItsApp(t *testing.T) {
	e := newEnv(t)
	code := e.mint(t, appA, "alice")
	checkWeChatError(t, e.exchange(t, appB, code), 40029, "invalid code")
	if a := e.exchange(t, appA, code); a.str("openid") == "" {
		t.Errorf("exchange with its own app after a misuse: %s", a.raw)
	}
}

func TestExchange_WrongPathCaseIsInvalidURL(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.url+"/sns/jsCode2Session?"+query(appA, "x").Encode(), nil)
	checkWeChatError(t, do(t, req), 40066, "invalid url")
}

func (e *env) post(t *testing.T, path string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func (e *env) setFault(t *testing.T, f FaultSpec) {
	t.Helper()
	b, _ := json.Marshal(f)
	if a := e.post(t, "/sandbox/faults", string(b)); a.status != http.StatusOK {
		t.Fatalf("POST /sandbox/faults %s: %d %s", b, a.status, a.raw)
	}
}

func (e *env) clearFaults(t *testing.T) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, e.url+"/sandbox/faults", nil)
	if a := do(t, req); a.status != http.StatusOK {
		t.Fatalf("DELETE /sandbox/faults: %d %s", a.status, a.raw)
	}
}

func TestFaults_AnswerTheErrorThenRecover(t *testing.T) {
	tests := []struct {
		name    string
		fault   string
		count   int // 0: until cleared
		errcode int
		errmsg  string
	}{
		{"rate_limited twice", FaultRateLimited, 2, 45011, "api minute-quota reach limit mustslower retry next minute"},
		{"busy once", FaultBusy, 1, -1, "system error"},
		{"blocked three times", FaultBlocked, 3, 40226, "code blocked"},
		{"busy until cleared", FaultBusy, 0, -1, "system error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.setFault(t, FaultSpec{Platform: provider.WeChat, User: "alice", Error: tt.fault, Count: tt.count})
			code := e.mint(t, appA, "alice")

			// Another user is not affected.
			e.login(t, appA, "bob")

			times := tt.count
			if times == 0 {
				times = 4
			}
			for i := range times {
				checkWeChatError(t, e.exchange(t, appA, code), tt.errcode, tt.errmsg)
				if t.Failed() {
					t.Fatalf("exchange %d of %d", i+1, times)
				}
			}
			if tt.count == 0 {
				e.clearFaults(t)
			}
			// The fault did not consume the code: retrying it succeeds.
			if a := e.exchange(t, appA, code); a.str("openid") == "" {
				t.Fatalf("after the fault: want success, got %s", a.raw)
			}
			if a := e.get(t, "/sandbox/faults"); !strings.Contains(a.raw, `"faults":[]`) {
				t.Errorf("faults left over: %s", a.raw)
			}
		})
	}
}

func TestFaults_AppSpecificOnlyHitsThatApp(t *testing.T) {
	e := newEnv(t)
	e.setFault(t, FaultSpec{Platform: provider.WeChat, AppID: appA.AppID, User: "alice", Error: FaultBlocked})
	e.login(t, appB, "alice")
	checkWeChatError(t, e.exchange(t, appA, e.mint(t, appA, "alice")), 40226, "code blocked")
}

func TestFaults_TransportFailures(t *testing.T) {
	tests := []struct {
		name  string
		fault string
		check func(t *testing.T, a answer, err error)
	}{
		{"unavailable_http answers 503 HTML", FaultUnavailableHTTP, func(t *testing.T, a answer, err error) {
			if err != nil || a.status != http.StatusServiceUnavailable || !strings.HasPrefix(a.contentType, "text/html") {
				t.Errorf("got %v, %d %q", err, a.status, a.contentType)
			}
		}},
		{"malformed answers 200 with a body that is not JSON", FaultMalformed, func(t *testing.T, a answer, err error) {
			if err != nil || a.status != http.StatusOK || json.Valid([]byte(a.raw)) {
				t.Errorf("got %v, %d %q", err, a.status, a.raw)
			}
		}},
		{"timeout holds the request until the caller gives up", FaultTimeout, func(t *testing.T, a answer, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, %d %q; want the caller's deadline", err, a.status, a.raw)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.setFault(t, FaultSpec{Platform: provider.WeChat, User: "alice", Error: tt.fault, Count: 1})
			code := e.mint(t, appA, "alice")
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/sns/jscode2session?"+query(appA, code).Encode(), nil)
			var a answer
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a = answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(b)}
			}
			tt.check(t, a, err)
			if a := e.exchange(t, appA, code); a.str("openid") == "" {
				t.Errorf("after the fault: want success, got %s", a.raw)
			}
		})
	}
}

func (e *env) get(t *testing.T, path string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
	return do(t, req)
}

func TestControlAPI_RejectsBadRequests(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		body      string
		wantField string // "" for errors about the body as a whole
	}{
		{"code: unknown platform", "/sandbox/codes", `{"platform":"myspace","app_id":"wxaaaaaaaaaaaaaaaa","user":"alice"}`, "platform"},
		{"code: missing platform", "/sandbox/codes", `{"app_id":"wxaaaaaaaaaaaaaaaa","user":"alice"}`, "platform"},
		{"code: unknown app", "/sandbox/codes", `{"platform":"wechat","app_id":"wx0000000000000000","user":"alice"}`, "app_id"},
		{"code: missing app", "/sandbox/codes", `{"platform":"wechat","user":"alice"}`, "app_id"},
		{"code: empty user", "/sandbox/codes", `{"platform":"wechat","app_id":"wxaaaaaaaaaaaaaaaa","user":""}`, "user"},
		{"code: user too long", "/sandbox/codes", `{"platform":"wechat","app_id":"wxaaaaaaaaaaaaaaaa","user":"` + strings.Repeat("x", maxUserLen+1) + `"}`, "user"},
		{"code: unknown field", "/sandbox/codes", `{"platform":"wechat","appid":"wxaaaaaaaaaaaaaaaa","user":"alice"}`, ""},
		{"code: not JSON", "/sandbox/codes", `platform=wechat`, ""},
		{"fault: unknown error", "/sandbox/faults", `{"platform":"wechat","user":"alice","error":"exploded"}`, "error"},
		{"fault: negative count", "/sandbox/faults", `{"platform":"wechat","user":"alice","error":"busy","count":-1}`, "count"},
		{"fault: unknown app", "/sandbox/faults", `{"platform":"wechat","app_id":"wx0000000000000000","user":"alice","error":"busy"}`, "app_id"},
		{"fault: empty user", "/sandbox/faults", `{"platform":"wechat","error":"busy"}`, "user"},
		{"fault: unknown platform", "/sandbox/faults", `{"platform":"myspace","user":"alice","error":"busy"}`, "platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.post(t, tt.path, tt.body)
			if a.status != http.StatusBadRequest || a.contentType != "application/json" {
				t.Fatalf("got %d %q %s, want 400 JSON", a.status, a.contentType, a.raw)
			}
			if a.str("error") == "" || a.str("field") != tt.wantField {
				t.Errorf("error %q field %q, want field %q", a.str("error"), a.str("field"), tt.wantField)
			}
			if tt.wantField != "" && !strings.HasPrefix(a.str("error"), tt.wantField+": ") {
				t.Errorf("error %q does not name field %q", a.str("error"), tt.wantField)
			}
		})
	}
}

func TestControlAPI_ListsAppsAndFaultsWithoutSecrets(t *testing.T) {
	e := newEnv(t)
	e.setFault(t, FaultSpec{Platform: provider.WeChat, AppID: appA.AppID, User: "alice", Error: FaultBusy, Count: 2})
	e.setFault(t, FaultSpec{Platform: provider.WeChat, User: "bob", Error: FaultBlocked})
	tests := []struct {
		name, path string
		want       []string
	}{
		{"index", "/sandbox/", []string{`"wechat"`, `"app_id":"wxaaaaaaaaaaaaaaaa"`, `"union_scope":"open-1"`, `"code_ttl_seconds":300`}},
		{"apps", "/sandbox/apps", []string{`"app_id":"wxaaaaaaaaaaaaaaaa"`, `"app_id":"wxdddddddddddddddd"`, `"faked":true`}},
		{"faults", "/sandbox/faults", []string{
			`{"platform":"wechat","app_id":"wxaaaaaaaaaaaaaaaa","user":"alice","error":"busy","count":2}`,
			`{"platform":"wechat","user":"bob","error":"blocked"}`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.get(t, tt.path)
			if a.status != http.StatusOK {
				t.Fatalf("%d %s", a.status, a.raw)
			}
			for _, w := range tt.want {
				if !strings.Contains(a.raw, w) {
					t.Errorf("body lacks %s: %s", w, a.raw)
				}
			}
			for _, app := range testApps {
				if strings.Contains(a.raw, app.Secret) {
					t.Errorf("body leaks the secret of %s: %s", app.AppID, a.raw)
				}
			}
		})
	}
}

func TestControlAPI_ClearFaultsByFilter(t *testing.T) {
	e := newEnv(t)
	e.setFault(t, FaultSpec{Platform: provider.WeChat, User: "alice", Error: FaultBusy})
	e.setFault(t, FaultSpec{Platform: provider.WeChat, User: "bob", Error: FaultBusy})
	req, _ := http.NewRequest(http.MethodDelete, e.url+"/sandbox/faults?user=alice", nil)
	if a := do(t, req); a.raw != "{\"cleared\":1}\n" {
		t.Fatalf("DELETE ?user=alice: %s", a.raw)
	}
	e.login(t, appA, "alice")
	checkWeChatError(t, e.exchange(t, appA, e.mint(t, appA, "bob")), -1, "system error")
}

func TestControlAPI_UnknownRouteIsJSON404(t *testing.T) {
	e := newEnv(t)
	a := e.get(t, "/sandbox/codes")
	if a.status != http.StatusNotFound || a.str("error") == "" {
		t.Errorf("GET /sandbox/codes: %d %s", a.status, a.raw)
	}
}

func TestCodes_ExpiredOnesAreGarbageCollected(t *testing.T) {
	e := newEnv(t, WithCodeTTL(time.Minute))
	for i := range 50 {
		e.mint(t, appA, fmt.Sprint("user", i))
	}
	e.clock.Advance(time.Minute)
	e.mint(t, appA, "alice")
	e.sb.mu.Lock()
	n := len(e.sb.codes)
	e.sb.mu.Unlock()
	if n != 1 {
		t.Errorf("%d codes kept, want only the live one", n)
	}
}

func TestConcurrentLogins(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	openids := make([]string, 16)
	for i := range openids {
		wg.Go(func() {
			code, err := MintCode(context.Background(), e.url, provider.WeChat, appA.AppID, "alice")
			if err != nil {
				t.Error(err)
				return
			}
			req, _ := http.NewRequest(http.MethodGet, e.url+"/sns/jscode2session?"+query(appA, code).Encode(), nil)
			openids[i] = do(t, req).str("openid")
		})
	}
	wg.Wait()
	for _, o := range openids {
		if o == "" || o != openids[0] {
			t.Fatalf("openids %v: want all equal and non-empty", openids)
		}
	}
}

func TestServer_StartEndpointStop(t *testing.T) {
	sb := New(testApps, WithAddr("127.0.0.1:0"))
	if got := sb.Endpoint(); got != "" {
		t.Fatalf("Endpoint before binding = %q, want empty", got)
	}
	done := make(chan error, 1)
	go func() { done <- sb.Start(context.Background()) }()

	var base string
	for deadline := time.Now().Add(5 * time.Second); base == "" && time.Now().Before(deadline); {
		base = sb.Endpoint()
		time.Sleep(5 * time.Millisecond)
	}
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[1-9][0-9]*$`).MatchString(base) {
		t.Fatalf("Endpoint = %q", base)
	}
	if got, err := sb.Listen(); err != nil || got != base {
		t.Errorf("Listen after Start = %q, %v; want %q", got, err, base)
	}

	code, err := MintCode(context.Background(), base+"/", provider.WeChat, appA.AppID, "alice")
	if err != nil {
		t.Fatalf("MintCode: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/sns/jscode2session?"+query(appA, code).Encode(), nil)
	if a := do(t, req); a.str("openid") == "" {
		t.Errorf("exchange over the real listener: %s", a.raw)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sb.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v after Stop, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after Stop")
	}
	if _, err := MintCode(context.Background(), base, provider.WeChat, appA.AppID, "alice"); err == nil {
		t.Error("MintCode after Stop: want a connection error")
	}
}

func TestServer_ListenBeforeStartAndStopReleasesHeldRequests(t *testing.T) {
	sb := New(testApps, WithAddr("127.0.0.1:0"))
	base, err := sb.Listen()
	if err != nil {
		t.Fatal(err)
	}
	if sb.Endpoint() != base {
		t.Fatalf("Endpoint %q != Listen %q", sb.Endpoint(), base)
	}
	done := make(chan error, 1)
	go func() { done <- sb.Start(context.Background()) }()

	e := &env{sb: sb, url: base}
	e.setFault(t, FaultSpec{Platform: provider.WeChat, User: "alice", Error: FaultTimeout})
	code := e.mint(t, appA, "alice")
	held := make(chan struct{})
	go func() {
		defer close(held)
		req, _ := http.NewRequest(http.MethodGet, base+"/sns/jscode2session?"+query(appA, code).Encode(), nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the request reach the fault

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := sb.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v: the held request was not released", d)
	}
	<-held
	if err := <-done; err != nil {
		t.Errorf("Start: %v", err)
	}
}

func TestServer_StopBeforeStart(t *testing.T) {
	sb := New(testApps, WithAddr("127.0.0.1:0"))
	base, err := sb.Listen()
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Errorf("Start after Stop = %v, want nil", err)
	}
	if _, err := MintCode(context.Background(), base, provider.WeChat, appA.AppID, "alice"); err == nil {
		t.Error("the listener bound by Listen is still open after Stop")
	}
}

func TestMintCode_ReportsSandboxErrors(t *testing.T) {
	e := newEnv(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name, baseURL, appID, user string
		wantInErr                  []string
	}{
		{"unknown app names the field", e.url, "wx0000000000000000", "alice", []string{"400 Bad Request", `app_id: no wechat app "wx0000000000000000" is configured`}},
		{"empty user names the field", e.url, appA.AppID, "", []string{"400", "user: required"}},
		{"no sandbox listening", closed.URL, appA.AppID, "alice", []string{"is the sandbox running"}},
		{"not a sandbox", e.url + "/elsewhere", appA.AppID, "alice", []string{"404"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := MintCode(context.Background(), tt.baseURL, provider.WeChat, tt.appID, tt.user)
			if err == nil {
				t.Fatalf("got code %q, want an error", code)
			}
			for _, w := range tt.wantInErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLogging_NeverLogsSecretsCodesOrSessionKeys(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, WithLogger(log.NewStdLogger(&buf)))
	code := e.mint(t, appA, "alice")
	sk := e.exchange(t, appA, code).str("session_key")
	e.exchange(t, appA, code) // reuse
	bad := query(appA, e.mint(t, appA, "alice"))
	bad.Set("secret", "wrong-secret")
	e.call(t, http.MethodGet, bad)
	e.setFault(t, FaultSpec{Platform: provider.WeChat, User: "alice", Error: FaultBusy, Count: 1})
	code2 := e.mint(t, appA, "alice")
	e.exchange(t, appA, code2)

	out := buf.String()
	if !strings.Contains(out, "user=alice") {
		t.Fatalf("the test logger saw nothing: %q", out)
	}
	for _, secret := range []string{appA.Secret, "wrong-secret", code, code2, bad.Get("js_code"), sk} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}
