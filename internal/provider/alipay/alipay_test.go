package alipay

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

const (
	testAppID = "2021001234567890"
	// A code with characters that must be escaped in a form: the fake
	// seeing it intact, and signed raw, proves both encodings.
	testCode   = "4b203fe6c11548bcabd8da5b+/&=%20x"
	testOpenID = "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"
	testUserID = "2088702348189888"
	testToken  = "authbseBd7129add245b4ff3901ebd5ff6d7eX88"
)

func pubPEM(tb testing.TB, k *rsa.PublicKey) string {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func bareBase64(pemText string) string {
	b, _ := pem.Decode([]byte(pemText))
	return base64.StdEncoding.EncodeToString(b.Bytes)
}

// rsa2 signs content the way Alipay does, independently of Sign.
func rsa2(tb testing.TB, k *rsa.PrivateKey, content string) string {
	tb.Helper()
	h := sha256.Sum256([]byte(content))
	sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	if err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// signed returns {"<node>":content,"sign":...} signed over content by k.
func signed(tb testing.TB, k *rsa.PrivateKey, node, content string) string {
	return `{"` + node + `":` + content + `,"sign":"` + rsa2(tb, k, content) + `"}`
}

// wantParams are the exchange's parameters but timestamp and sign.
var wantParams = map[string]string{
	"app_id":     testAppID,
	"method":     "alipay.system.oauth.token",
	"format":     "JSON",
	"charset":    "utf-8",
	"sign_type":  "RSA2",
	"version":    "1.0",
	"grant_type": "authorization_code",
	"code":       testCode,
}

// fakeGateway starts a gateway fake that checks every request the way
// Alipay would need it, recomputing the signature with the app's public
// key, and answers with respond.
func fakeGateway(t *testing.T, appPub *rsa.PublicKey, respond http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if r.URL.Path != "/gateway.do" {
			t.Errorf("path = %q, want /gateway.do", r.URL.Path)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("query = %q, want every parameter in the form body", r.URL.RawQuery)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			t.Errorf("Content-Type = %q, want a form", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("form: %v", err)
		}
		f := r.PostForm
		for k, v := range wantParams {
			if got := f.Get(k); got != v {
				t.Errorf("param %s = %q, want %q", k, got, v)
			}
		}
		if len(f) != len(wantParams)+2 {
			t.Errorf("form has %d parameters, want %d + timestamp + sign", len(f), len(wantParams))
		}
		ts, err := time.ParseInLocation("2006-01-02 15:04:05", f.Get("timestamp"), time.FixedZone("+8", 8*3600))
		if err != nil || time.Since(ts).Abs() > 2*time.Minute {
			t.Errorf("timestamp = %q, want Beijing time now (%v)", f.Get("timestamp"), err)
		}
		// The string-to-sign, rebuilt here: sorted keys, raw values, sign
		// left out, sign_type kept.
		var keys []string
		for k := range f {
			if k != "sign" && f.Get(k) != "" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+f.Get(k))
		}
		content := strings.Join(parts, "&")
		sig, _ := base64.StdEncoding.DecodeString(f.Get("sign"))
		h := sha256.Sum256([]byte(content))
		if err := rsa.VerifyPKCS1v15(appPub, crypto.SHA256, h[:], sig); err != nil {
			t.Errorf("request signature does not verify over %q", content)
		}
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
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

type appOpt func(*provider.App)

func newProvider(t *testing.T, endpoint string, alipayPub *rsa.PublicKey, opts ...appOpt) provider.Provider {
	t.Helper()
	app := provider.App{
		Platform:             provider.Alipay,
		AppID:                testAppID,
		PrivateKeyPEM:        katKeyPEM,
		PlatformPublicKeyPEM: pubPEM(t, alipayPub),
		Endpoint:             endpoint,
		Timeout:              2 * time.Second,
	}
	for _, o := range opts {
		o(&app)
	}
	p, err := New(app, provider.Env{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// checkError asserts err is a *provider.Error of the wanted kind and code,
// and that nothing secret leaks through it.
func checkError(t *testing.T, err, wantKind error, wantCode string, secrets ...string) *provider.Error {
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
	if pe.Platform != provider.Alipay {
		t.Errorf("Platform = %q, want %q", pe.Platform, provider.Alipay)
	}
	if pe.Code != wantCode {
		t.Errorf("Code = %q, want %q", pe.Code, wantCode)
	}
	for _, s := range []string{err.Error(), pe.Code, pe.Message} {
		for _, secret := range append(secrets, testCode, testToken, "authbseB") {
			if strings.Contains(s, secret) {
				t.Errorf("error text %q contains a secret (%q)", s, secret)
			}
		}
	}
	return pe
}

func TestExchange(t *testing.T) {
	alipayKey, otherKey := testKeys(t)
	const node = `alipay_system_oauth_token_response`
	success := `{"access_token":"` + testToken + `","auth_start":"2024-03-01 10:00:00","expires_in":31536000,"re_expires_in":31536000,"refresh_token":"authbseB0dfadf86f1b9423098b6c81d3ebb9F88","open_id":"` + testOpenID + `"}`
	long := strings.Repeat("很长", 300)
	type tc struct {
		name   string
		body   func(t *testing.T) string
		status int // default 200
		ctype  string
		opts   []appOpt

		// success
		wantOpenID  string
		wantUnionID string
		// failure
		wantKind    error
		wantCode    string
		wantMessage string // substring of Message, when set
	}
	signedBody := func(nodeName, content string) func(t *testing.T) string {
		return func(t *testing.T) string { return signed(t, alipayKey, nodeName, content) }
	}
	raw := func(s string) func(t *testing.T) string { return func(*testing.T) string { return s } }
	userIDApp := func(a *provider.App) { a.IdentityField = "user_id" }
	tests := []tc{
		{
			name:       "success with open_id",
			body:       signedBody(node, success),
			wantOpenID: testOpenID,
		},
		{
			name:        "success with union_id of the app group",
			body:        signedBody(node, `{"access_token":"`+testToken+`","open_id":"`+testOpenID+`","union_id":"0u1aBcD","expires_in":3600}`),
			wantOpenID:  testOpenID,
			wantUnionID: "0u1aBcD",
		},
		{
			name:       "real legacy answer with user_id only, for a user_id app",
			body:       signedBody(node, `{"access_token":"authbseBd7129add245b4ff3901ebd5ff6d7eX88","alipay_user_id":"20881080688568257150111572410488","expires_in":31536000,"re_expires_in":31536000,"refresh_token":"authbseB0dfadf86f1b9423098b6c81d3ebb9F88","user_id":"2088702348189888"}`),
			opts:       []appOpt{userIDApp},
			wantOpenID: testUserID,
		},
		{
			name:       "user_id app picks user_id when both are sent",
			body:       signedBody(node, `{"user_id":"`+testUserID+`","open_id":"`+testOpenID+`"}`),
			opts:       []appOpt{userIDApp},
			wantOpenID: testUserID,
		},
		{
			name:       "expires_in as strings, as documented",
			body:       signedBody(node, `{"access_token":"`+testToken+`","expires_in":"3600","re_expires_in":"3600","open_id":"`+testOpenID+`"}`),
			wantOpenID: testOpenID,
		},
		{
			name:       "unusable expires_in does not fail the login",
			body:       signedBody(node, `{"expires_in":{"x":1},"re_expires_in":"soon","open_id":"`+testOpenID+`"}`),
			wantOpenID: testOpenID,
		},
		{
			name:       "code 10000 in the node is success",
			body:       signedBody(node, `{"code":"10000","msg":"Success","open_id":"`+testOpenID+`"}`),
			wantOpenID: testOpenID,
		},
		{
			name:       "signature covers raw bytes: escaped quotes, braces, slashes and unicode in strings",
			body:       signedBody(node, `{"access_token":"auth\/bse\"}{\\","note":"}\"{[\u4e2d\u6587\ud83d\ude00\/<>&","nested":{"a":["}",{"b":"\"]"}]},"open_id":"`+testOpenID+`"}`),
			wantOpenID: testOpenID,
		},
		{
			name: "whitespace and newlines inside and around the node",
			body: func(t *testing.T) string {
				c := "{\n  \"open_id\" : \"" + testOpenID + "\"\n}"
				return " {\n \"" + node + "\" :  " + c + " ,\n \"sign\":\"" + rsa2(t, alipayKey, c) + "\"}\n"
			},
			wantOpenID: testOpenID,
		},
		{
			name: "sign before the node",
			body: func(t *testing.T) string {
				c := `{"open_id":"` + testOpenID + `"}`
				return `{"sign":"` + rsa2(t, alipayKey, c) + `","` + node + `":` + c + `}`
			},
			wantOpenID: testOpenID,
		},
		{
			name: "cert mode: alipay_cert_sn between node and sign",
			body: func(t *testing.T) string {
				c := `{"open_id":"` + testOpenID + `"}`
				return `{"` + node + `":` + c + `,"alipay_cert_sn":"a2b6d0f5b0c1b7e0e2a6d1d8b0f3c2a1","sign":"` + rsa2(t, alipayKey, c) + `"}`
			},
			wantOpenID: testOpenID,
		},
		{
			name: "signed before escaping slashes (Java SDK fallback)",
			body: func(t *testing.T) string {
				c := `{"access_token":"a\/b","open_id":"` + testOpenID + `"}`
				return `{"` + node + `":` + c + `,"sign":"` + rsa2(t, alipayKey, strings.ReplaceAll(c, `\/`, `/`)) + `"}`
			},
			wantOpenID: testOpenID,
		},
		{
			name: "signature over re-serialised JSON does not verify",
			body: func(t *testing.T) string {
				c := `{"note":"\u4e2d\/x","open_id":"` + testOpenID + `"}`
				var m map[string]any
				_ = json.Unmarshal([]byte(c), &m)
				re, _ := json.Marshal(m)
				return `{"` + node + `":` + c + `,"sign":"` + rsa2(t, alipayKey, string(re)) + `"}`
			},
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name:        "success without sign",
			body:        raw(`{"` + node + `":` + success + `}`),
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name:        "success with empty sign",
			body:        raw(`{"` + node + `":` + success + `,"sign":""}`),
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name:        "success with null sign",
			body:        raw(`{"` + node + `":` + success + `,"sign":null}`),
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name:        "success signed by another key",
			body:        func(t *testing.T) string { return signed(t, otherKey, node, success) },
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name:        "success signed by the app's own key",
			body:        func(t *testing.T) string { return signed(t, katKey(t), node, success) },
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name: "tampered open_id",
			body: func(t *testing.T) string {
				return `{"` + node + `":{"open_id":"attacker"},"sign":"` + rsa2(t, alipayKey, `{"open_id":"`+testOpenID+`"}`) + `"}`
			},
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name:        "sign that is not base64",
			body:        raw(`{"` + node + `":` + success + `,"sign":"!!!not base64!!!"}`),
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name:     "sign that is not a string",
			body:     raw(`{"` + node + `":` + success + `,"sign":12345}`),
			wantKind: provider.ErrUnavailable,
		},
		{
			name: "a second node after the signed one is refused",
			body: func(t *testing.T) string {
				c := `{"open_id":"` + testOpenID + `"}`
				return `{"` + node + `":` + c + `,"sign":"` + rsa2(t, alipayKey, c) + `","` + node + `":{"open_id":"attacker"}}`
			},
			wantKind: provider.ErrUnavailable,
		},
		{
			name: "a second sign is refused",
			body: func(t *testing.T) string {
				c := `{"open_id":"` + testOpenID + `"}`
				return `{"` + node + `":` + c + `,"sign":"` + rsa2(t, alipayKey, c) + `","\u0073ign":"x"}`
			},
			wantKind: provider.ErrUnavailable,
		},
		{
			name: "node key inside a string value is not the node",
			body: func(t *testing.T) string {
				c := `{"open_id":"` + testOpenID + `"}`
				return `{"decoy":"\"` + node + `\":{\"open_id\":\"attacker\"}","` + node + `":` + c + `,"sign":"` + rsa2(t, alipayKey, c) + `"}`
			},
			wantOpenID: testOpenID,
		},
		{
			name:     "node that is not an object",
			body:     func(t *testing.T) string { return signed(t, alipayKey, node, `"`+testOpenID+`"`) },
			wantKind: provider.ErrUnavailable,
		},
		{
			name:        "success without any id",
			body:        signedBody(node, `{"access_token":"`+testToken+`","expires_in":3600}`),
			wantKind:    provider.ErrUnavailable,
			wantMessage: "without user_id or open_id",
		},
		{
			name:        "open_id app gets only user_id: explains identity_field",
			body:        signedBody(node, `{"user_id":"`+testUserID+`"}`),
			wantKind:    provider.ErrUnavailable,
			wantMessage: "identity_field: user_id",
		},
		{
			name:        "user_id app gets only open_id: explains identity_field",
			body:        signedBody(node, `{"open_id":"`+testOpenID+`"}`),
			opts:        []appOpt{userIDApp},
			wantKind:    provider.ErrUnavailable,
			wantMessage: "identity_field: open_id",
		},
		{
			name:     "id with control characters",
			body:     signedBody(node, `{"open_id":"abc\u0000def"}`),
			wantKind: provider.ErrUnavailable,
		},
		{
			name:        "real invalid-code error",
			body:        signedBody("error_response", `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid","sub_msg":"授权码code无效"}`),
			wantKind:    provider.ErrCodeInvalid,
			wantCode:    "40002/isv.code-invalid",
			wantMessage: "Invalid Arguments: 授权码code无效",
		},
		{
			name:     "invalid code inside the method node",
			body:     signedBody(node, `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid","sub_msg":"授权码code无效"}`),
			wantKind: provider.ErrCodeInvalid,
			wantCode: "40002/isv.code-invalid",
		},
		{
			name: "method node preferred when error_response is present too",
			body: func(t *testing.T) string {
				c := `{"open_id":"` + testOpenID + `"}`
				return `{"error_response":{"code":"20000"},"` + node + `":` + c + `,"sign":"` + rsa2(t, alipayKey, c) + `"}`
			},
			wantOpenID: testOpenID,
		},
		{
			name:     "numeric code",
			body:     signedBody("error_response", `{"code":40002,"msg":"Invalid Arguments","sub_code":"isv.code-invalid"}`),
			wantKind: provider.ErrCodeInvalid,
			wantCode: "40002/isv.code-invalid",
		},
		{
			name:     "20000 isp.unknow-error is unavailable",
			body:     signedBody("error_response", `{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error","sub_msg":"系统繁忙"}`),
			wantKind: provider.ErrUnavailable,
			wantCode: "20000/isp.unknow-error",
		},
		{
			name:     "20000 aop.unknow-error is unavailable",
			body:     signedBody("error_response", `{"code":"20000","msg":"Service Currently Unavailable","sub_code":"aop.unknow-error"}`),
			wantKind: provider.ErrUnavailable,
			wantCode: "20000/aop.unknow-error",
		},
		{
			name:        "invalid signature is misconfigured and the echoed code is redacted",
			body:        signedBody("error_response", `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：app_id=`+testAppID+`&charset=utf-8&code=`+testCode+`&format=JSON"}`),
			wantKind:    provider.ErrMisconfigured,
			wantCode:    "40002/isv.invalid-signature",
			wantMessage: "code=[redacted]&format=JSON",
		},
		{
			name:     "signed invalid app id is misconfigured",
			body:     signedBody("error_response", `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}`),
			wantKind: provider.ErrMisconfigured,
			wantCode: "40002/isv.invalid-app-id",
		},
		{
			name:        "unsigned invalid app id (as the gateway sends it) is misconfigured",
			body:        raw(`{"` + node + `":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}`),
			wantKind:    provider.ErrMisconfigured,
			wantCode:    "40002/isv.invalid-app-id",
			wantMessage: "(unsigned)",
		},
		{
			name:        "unsigned code-invalid is not believed",
			body:        raw(`{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid"}}`),
			wantKind:    provider.ErrUnavailable,
			wantMessage: MsgBadSignature,
		},
		{
			name:     "missing signature (40001) is misconfigured",
			body:     signedBody("error_response", `{"code":"40001","msg":"Missing Required Arguments","sub_code":"isv.missing-signature"}`),
			wantKind: provider.ErrMisconfigured,
			wantCode: "40001/isv.missing-signature",
		},
		{
			name:     "insufficient isv permissions (40006) is misconfigured",
			body:     signedBody("error_response", `{"code":"40006","msg":"Insufficient Permissions","sub_code":"isv.insufficient-isv-permissions","sub_msg":"ISV权限不足，建议在开发者中心检查对应功能是否已经添加"}`),
			wantKind: provider.ErrMisconfigured,
			wantCode: "40006/isv.insufficient-isv-permissions",
		},
		{
			name:     "invalid timestamp is misconfigured",
			body:     signedBody("error_response", `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-timestamp","sub_msg":"非法的时间戳参数"}`),
			wantKind: provider.ErrMisconfigured,
			wantCode: "40002/isv.invalid-timestamp",
		},
		{
			name:     "40002 with an unknown sub_code is misconfigured",
			body:     signedBody("error_response", `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.something-new"}`),
			wantKind: provider.ErrMisconfigured,
			wantCode: "40002/isv.something-new",
		},
		{
			name:     "app call limit is rate limited",
			body:     signedBody("error_response", `{"code":"40005","msg":"Call Limited","sub_code":"isv.app-call-limited","sub_msg":"应用调用次数超限，包含调用频率超限"}`),
			wantKind: provider.ErrRateLimited,
			wantCode: "40005/isv.app-call-limited",
		},
		{
			name:     "40005 alone is rate limited",
			body:     signedBody("error_response", `{"code":"40005","msg":"Call Limited"}`),
			wantKind: provider.ErrRateLimited,
			wantCode: "40005",
		},
		{
			name:     "risk-control business failure is user blocked",
			body:     signedBody("error_response", `{"code":"40004","msg":"Business Failed","sub_code":"isv.user-risk-forbidden","sub_msg":"用户存在风险，禁止授权"}`),
			wantKind: provider.ErrUserBlocked,
			wantCode: "40004/isv.user-risk-forbidden",
		},
		{
			name:     "other business failure is unavailable",
			body:     signedBody("error_response", `{"code":"40004","msg":"Business Failed","sub_code":"isv.whatever"}`),
			wantKind: provider.ErrUnavailable,
			wantCode: "40004/isv.whatever",
		},
		{
			name:     "unknown code is unavailable",
			body:     signedBody("error_response", `{"code":"99999","msg":"?"}`),
			wantKind: provider.ErrUnavailable,
			wantCode: "99999",
		},
		{
			name:     "error_response with code 10000 is still an error",
			body:     signedBody("error_response", `{"code":"10000","msg":"Success"}`),
			wantKind: provider.ErrUnavailable,
			wantCode: "10000",
		},
		{
			name:        "long sub_msg is truncated",
			body:        signedBody("error_response", `{"code":"20000","msg":"x","sub_msg":"`+long+`"}`),
			wantKind:    provider.ErrUnavailable,
			wantCode:    "20000",
			wantMessage: "...",
		},
		{
			name:        "neither node",
			body:        raw(`{"alipay_trade_query_response":{"code":"10000"},"sign":"x"}`),
			wantKind:    provider.ErrUnavailable,
			wantMessage: "neither",
		},
		{name: "HTTP 500", status: 500, ctype: "application/json", body: signedBody("error_response", `{"code":"20000"}`), wantKind: provider.ErrUnavailable},
		{name: "HTTP 502 with HTML", status: 502, ctype: "text/html", body: raw("<html><head><title>502 Bad Gateway</title></head><body>Tengine</body></html>"), wantKind: provider.ErrUnavailable},
		{name: "HTML with 200", ctype: "text/html", body: raw("<html><body>maintenance</body></html>"), wantKind: provider.ErrUnavailable},
		{name: "empty 200 body", body: raw(""), wantKind: provider.ErrUnavailable},
		{name: "truncated JSON", body: raw(`{"` + node + `":{"access_token":"` + testToken + `","open_id":"07`), wantKind: provider.ErrUnavailable},
		{name: "JSON array", body: raw(`[{"` + node + `":{}}]`), wantKind: provider.ErrUnavailable},
		{name: "JSON null", body: raw(`null`), wantKind: provider.ErrUnavailable},
		{name: "trailing data", body: func(t *testing.T) string { return signed(t, alipayKey, node, success) + `{}` }, wantKind: provider.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = 200
			}
			srv, calls := fakeGateway(t, &katKey(t).PublicKey, answerWith(status, tt.ctype, tt.body(t)))
			p := newProvider(t, srv.URL, &alipayKey.PublicKey, tt.opts...)

			id, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
			if n := calls.Load(); n != 1 {
				t.Errorf("fake called %d times, want 1", n)
			}
			if tt.wantKind != nil {
				pe := checkError(t, err, tt.wantKind, tt.wantCode)
				if id != nil {
					t.Errorf("identity = %+v, want nil on error", id)
				}
				if tt.wantMessage != "" && !strings.Contains(pe.Message, tt.wantMessage) {
					t.Errorf("Message = %q, want it to contain %q", pe.Message, tt.wantMessage)
				}
				// Only an answer that does not verify is kept from the
				// breaker: the usual cause is this app's configured key.
				if badSig := pe.Message == MsgBadSignature; pe.Local != badSig {
					t.Errorf("Local = %v for %q, want %v", pe.Local, pe.Message, badSig)
				}
				if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3 {
					t.Errorf("Message has %d runes, want at most %d", n, maxMessage+3)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			want := provider.Identity{Platform: provider.Alipay, AppID: testAppID, OpenID: tt.wantOpenID, UnionID: tt.wantUnionID}
			if *id != want {
				t.Errorf("identity = %+v, want %+v", *id, want)
			}
		})
	}
}

func TestDecodeReturnsTheWholeToken(t *testing.T) {
	alipayKey, _ := testKeys(t)
	body := signed(t, alipayKey, ResponseNode, `{"access_token":"`+testToken+`","auth_start":"2024-03-01 10:00:00","expires_in":31536000,"re_expires_in":"3600","refresh_token":"r1","user_id":"`+testUserID+`","open_id":"`+testOpenID+`","union_id":"u1"}`)
	got, err := Decode(200, []byte(body), &alipayKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	want := Token{UserID: testUserID, OpenID: testOpenID, UnionID: "u1", AccessToken: testToken, RefreshToken: "r1",
		ExpiresIn: 31536000 * time.Second, ReExpiresIn: time.Hour, AuthStart: "2024-03-01 10:00:00"}
	if *got != want {
		t.Errorf("Decode = %+v, want %+v", *got, want)
	}
}

// The request of the platforms.md §2.3 example, signed with the KAT key,
// must carry exactly the signature openssl computed.
func TestRequestKnownAnswer(t *testing.T) {
	alipayKey, _ := testKeys(t)
	p, err := New(provider.App{Platform: provider.Alipay, AppID: "2014072300007148", PrivateKeyPEM: katKeyPEM, PlatformPublicKeyPEM: pubPEM(t, &alipayKey.PublicKey)}, provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	a := p.(*alipayProvider)
	// 2014-07-24 03:07:50 in Beijing is 19:07:50 UTC the day before; the
	// host's zone must not matter.
	a.now = func() time.Time {
		return time.Date(2014, 7, 23, 11, 7, 50, 0, time.FixedZone("PST", -8*3600)).In(time.UTC)
	}
	form, err := a.params("4b203fe6c11548bcabd8da5bb087a83b")
	if err != nil {
		t.Fatal(err)
	}
	if got := SignContent(form); got != katContent {
		t.Errorf("SignContent =\n%s\nwant\n%s", got, katContent)
	}
	if got := form.Get("sign"); got != katSign {
		t.Errorf("sign = %s\nwant (openssl) %s", got, katSign)
	}
}

func TestSignContent(t *testing.T) {
	tests := []struct {
		name   string
		params url.Values
		want   string
	}{
		{"sorted by key, sign left out, sign_type kept", url.Values{"sign": {"x"}, "b": {"2"}, "sign_type": {"RSA2"}, "a": {"1"}}, "a=1&b=2&sign_type=RSA2"},
		{"empty values left out", url.Values{"a": {""}, "b": {"2"}, "c": nil}, "b=2"},
		{"raw values: spaces, & and = stay as they are", url.Values{"timestamp": {"2014-07-24 03:07:50"}, "biz_content": {`{"a":"x&y=z"}`}}, `biz_content={"a":"x&y=z"}&timestamp=2014-07-24 03:07:50`},
		{"byte order: upper case before lower, _ after letters", url.Values{"a_b": {"1"}, "aB": {"2"}, "ab": {"3"}}, "aB=2&a_b=1&ab=3"},
		{"first value only", url.Values{"a": {"1", "2"}}, "a=1"},
		{"nothing", url.Values{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SignContent(tt.params); got != tt.want {
				t.Errorf("SignContent = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSignVerifiesWithOpenSSLKey(t *testing.T) {
	k := katKey(t)
	pub, err := ParsePublicKey(katPublicKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(&k.PublicKey) {
		t.Fatal("katPublicKeyPEM is not the public half of katKeyPEM")
	}
	if !verify(pub, []byte(katContent), katSign) {
		t.Error("the openssl signature does not verify")
	}
	if verify(pub, []byte(katContent+" "), katSign) {
		t.Error("the signature verifies over other content")
	}
}

// The real answer of platforms.md §2.7 verifies over the raw node with the
// published key, and not once tampered with.
func TestResponseSignatureRealVector(t *testing.T) {
	pub, err := ParsePublicKey(realPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		body   string
		wantOK bool
	}{
		{"real answer", realBody, true},
		{"real answer with spaces around the node", strings.Replace(realBody, `_response":{`, `_response" :  {`, 1), true},
		{"file_id changed", strings.Replace(realBody, "CAxAToWB", "CAxAToWC", 1), false},
		{"sign changed", strings.Replace(realBody, `"sign":"F+`, `"sign":"G+`, 1), false},
		{"node re-serialised with a space", strings.Replace(realBody, `"code":"10000"`, `"code": "10000"`, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sn, err := ExtractNode([]byte(tt.body), "alipay_open_file_upload_response", ErrorNode)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantOK && string(sn.Content) != realSigned {
				t.Errorf("content = %s, want %s", sn.Content, realSigned)
			}
			if got := verifyNode(pub, sn.Content, sn.Sign); got != tt.wantOK {
				t.Errorf("verify = %v, want %v", got, tt.wantOK)
			}
		})
	}
}

func TestExtractNode(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		names       []string
		wantName    string
		wantContent string
		wantSign    string
		wantCertSN  string
		wantErr     error
	}{
		{name: "plain", body: `{"a_response":{"x":1},"sign":"S"}`, names: []string{"a_response"}, wantName: "a_response", wantContent: `{"x":1}`, wantSign: "S"},
		{name: "quotes and braces in strings", body: `{"a_response":{"x":"}{\"]\\","y":["}"]},"sign":"S"}`, names: []string{"a_response"}, wantName: "a_response", wantContent: `{"x":"}{\"]\\","y":["}"]}`, wantSign: "S"},
		{name: "escaped sign value", body: `{"a_response":{},"sign":"a\/b\u002B"}`, names: []string{"a_response"}, wantName: "a_response", wantContent: `{}`, wantSign: "a/b+"},
		{name: "cert sn", body: `{"a_response":{},"alipay_cert_sn":"abc","sign":"S"}`, names: []string{"a_response"}, wantName: "a_response", wantContent: `{}`, wantSign: "S", wantCertSN: "abc"},
		{name: "preference order", body: `{"error_response":{"e":1},"a_response":{"a":1}}`, names: []string{"a_response", "error_response"}, wantName: "a_response", wantContent: `{"a":1}`},
		{name: "fallback", body: `{"error_response":{"e":1}}`, names: []string{"a_response", "error_response"}, wantName: "error_response", wantContent: `{"e":1}`},
		{name: "escaped key is decoded", body: `{"a_\u0072esponse":{"x":1}}`, names: []string{"a_response"}, wantName: "a_response", wantContent: `{"x":1}`},
		{name: "nested node of the same name is not top level", body: `{"other":{"a_response":{"bad":1}},"a_response":{"good":1}}`, names: []string{"a_response"}, wantName: "a_response", wantContent: `{"good":1}`},
		{name: "missing", body: `{"b":{}}`, names: []string{"a_response"}, wantErr: errNoNode},
		{name: "duplicate node", body: `{"a_response":{},"a_response":{}}`, names: []string{"a_response"}, wantErr: errDuplicate},
		{name: "duplicate sign", body: `{"a_response":{},"sign":"1","sign":"2"}`, names: []string{"a_response"}, wantErr: errDuplicate},
		{name: "node not an object", body: `{"a_response":[1]}`, names: []string{"a_response"}, wantErr: errNodeType},
		{name: "sign not a string", body: `{"a_response":{},"sign":{}}`, names: []string{"a_response"}, wantErr: errSignType},
		{name: "not JSON", body: `{"a_response":{}`, names: []string{"a_response"}, wantErr: errNotObject},
		{name: "array", body: `[{"a_response":{}}]`, names: []string{"a_response"}, wantErr: errNotObject},
		{name: "empty object", body: `{}`, names: []string{"a_response"}, wantErr: errNoNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sn, err := ExtractNode([]byte(tt.body), tt.names...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sn.Name != tt.wantName || string(sn.Content) != tt.wantContent || sn.Sign != tt.wantSign || sn.CertSN != tt.wantCertSN || sn.HasSign != (tt.wantSign != "") {
				t.Errorf("ExtractNode = %+v (content %s), want %s %s sign %q sn %q", sn, sn.Content, tt.wantName, tt.wantContent, tt.wantSign, tt.wantCertSN)
			}
		})
	}
}

func TestExchangeServerHangingPastTimeoutIsUnavailable(t *testing.T) {
	alipayKey, _ := testKeys(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p := newProvider(t, srv.URL, &alipayKey.PublicKey, func(a *provider.App) { a.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
	pe := checkError(t, err, provider.ErrUnavailable, "")
	if pe.Message != "timed out" {
		t.Errorf("Message = %q, want timed out", pe.Message)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want about the 100ms timeout", d)
	}
}

func TestExchangeCancelledContextIsUnavailable(t *testing.T) {
	alipayKey, _ := testKeys(t)
	srv, _ := fakeGateway(t, &katKey(t).PublicKey, answerWith(200, "", "{}"))
	p := newProvider(t, srv.URL, &alipayKey.PublicKey)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Exchange(ctx, provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeConnectionRefusedIsUnavailable(t *testing.T) {
	alipayKey, _ := testKeys(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	p := newProvider(t, u, &alipayKey.PublicKey)
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: testCode})
	checkError(t, err, provider.ErrUnavailable, "")
}

func TestExchangeRejectsEmptyOrOversizedCodeWithoutCallingAlipay(t *testing.T) {
	alipayKey, _ := testKeys(t)
	srv, calls := fakeGateway(t, &katKey(t).PublicKey, answerWith(200, "", "{}"))
	p := newProvider(t, srv.URL, &alipayKey.PublicKey)
	for _, code := range []string{"", strings.Repeat("a", maxAuthCode+1)} {
		_, err := p.Exchange(context.Background(), provider.Credentials{Code: code})
		checkError(t, err, provider.ErrCodeInvalid, "")
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("fake called %d times, want 0", n)
	}
}

func TestEndpointReplacesOnlySchemeHostPort(t *testing.T) {
	alipayKey, _ := testKeys(t)
	tests := []struct{ endpoint, want string }{
		{"", "https://openapi.alipay.com/gateway.do"},
		{"http://127.0.0.1:8001", "http://127.0.0.1:8001/gateway.do"},
		{"http://127.0.0.1:8001/", "http://127.0.0.1:8001/gateway.do"},
	}
	for _, tt := range tests {
		p := newProvider(t, tt.endpoint, &alipayKey.PublicKey)
		if got := p.(*alipayProvider).url; got != tt.want {
			t.Errorf("endpoint %q: url = %q, want %q", tt.endpoint, got, tt.want)
		}
	}
}

func TestNewValidatesTheAppConfig(t *testing.T) {
	alipayKey, _ := testKeys(t)
	alipayPEM := pubPEM(t, &alipayKey.PublicKey)
	k := katKey(t)
	pkcs8DER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8DER}))
	pkcs1PubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&alipayKey.PublicKey)}))
	base := provider.App{Platform: provider.Alipay, AppID: testAppID, PrivateKeyPEM: katKeyPEM, PlatformPublicKeyPEM: alipayPEM}
	tests := []struct {
		name      string
		edit      func(*provider.App)
		wantField string // prefix of the error; "" for success
	}{
		{"complete app", func(*provider.App) {}, ""},
		{"PKCS#8 private key", func(a *provider.App) { a.PrivateKeyPEM = pkcs8PEM }, ""},
		{"bare base64 PKCS#1 private key", func(a *provider.App) { a.PrivateKeyPEM = bareBase64(katKeyPEM) }, ""},
		{"bare base64 PKCS#8 private key with line breaks", func(a *provider.App) { a.PrivateKeyPEM = strings.Join(splitEvery(bareBase64(pkcs8PEM), 64), "\n") }, ""},
		{"PEM with literal \\n", func(a *provider.App) { a.PrivateKeyPEM = strings.ReplaceAll(strings.TrimSpace(katKeyPEM), "\n", `\n`) }, ""},
		{"bare base64 public key", func(a *provider.App) { a.PlatformPublicKeyPEM = bareBase64(alipayPEM) }, ""},
		{"PKCS#1 public key", func(a *provider.App) { a.PlatformPublicKeyPEM = pkcs1PubPEM }, ""},
		{"identity_field open_id", func(a *provider.App) { a.IdentityField = "open_id" }, ""},
		{"identity_field user_id", func(a *provider.App) { a.IdentityField = "user_id" }, ""},
		{"AES-128 key", func(a *provider.App) { a.AESKey = vectorAESKey }, ""},
		{"AES-256 key", func(a *provider.App) { a.AESKey = base64.StdEncoding.EncodeToString(make([]byte, 32)) }, ""},
		{"no app_id", func(a *provider.App) { a.AppID = "" }, "app_id:"},
		{"no private key", func(a *provider.App) { a.PrivateKeyPEM = "" }, "private_key: required"},
		{"garbage private key", func(a *provider.App) { a.PrivateKeyPEM = "not a key" }, "private_key:"},
		{"public key as private key", func(a *provider.App) { a.PrivateKeyPEM = alipayPEM }, "private_key:"},
		{"truncated private key", func(a *provider.App) { a.PrivateKeyPEM = bareBase64(katKeyPEM)[:200] }, "private_key:"},
		{"no platform public key", func(a *provider.App) { a.PlatformPublicKeyPEM = "" }, "platform_public_key: required"},
		{"garbage platform public key", func(a *provider.App) {
			a.PlatformPublicKeyPEM = "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----"
		}, "platform_public_key:"},
		{"certificate as platform public key", func(a *provider.App) {
			a.PlatformPublicKeyPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
		}, "platform_public_key: is a certificate"},
		{"the app's own public key as platform key", func(a *provider.App) { a.PlatformPublicKeyPEM = katPublicKeyPEM }, "platform_public_key: is the app's own"},
		{"unknown identity_field", func(a *provider.App) { a.IdentityField = "openid" }, "identity_field:"},
		{"AES key not base64", func(a *provider.App) { a.AESKey = "!!" }, "aes_key:"},
		{"AES key of 15 bytes", func(a *provider.App) { a.AESKey = base64.StdEncoding.EncodeToString(make([]byte, 15)) }, "aes_key:"},
		{"endpoint with a path", func(a *provider.App) { a.Endpoint = "http://127.0.0.1:8001/x" }, "endpoint:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := base
			tt.edit(&app)
			p, err := New(app, provider.Env{})
			if tt.wantField == "" {
				if err != nil || p == nil {
					t.Fatalf("New = %v, %v; want a provider", p, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantField) {
				t.Fatalf("New error = %v, want it to start with %q", err, tt.wantField)
			}
			// Key material never appears in the error.
			for _, secret := range []string{bareBase64(katKeyPEM)[:40], bareBase64(pkcs8PEM)[40:80]} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes the key", err)
				}
			}
		})
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

// decodeSeeds are answers for the fuzzers and benchmarks; keyed ones are
// signed at run time.
func decodeSeeds(tb testing.TB, k *rsa.PrivateKey) []string {
	return []string{
		signed(tb, k, ResponseNode, `{"access_token":"authbseBd7129add245b4ff3901ebd5ff6d7eX88","alipay_user_id":"20881080688568257150111572410488","expires_in":31536000,"re_expires_in":31536000,"refresh_token":"authbseB0dfadf86f1b9423098b6c81d3ebb9F88","user_id":"2088702348189888"}`),
		signed(tb, k, ResponseNode, `{"access_token":"a","expires_in":"3600","open_id":"074a1CcTG1Lelx","union_id":"u"}`),
		signed(tb, k, ResponseNode, `{"x":"}{\"\\\/\u4e2d","open_id":"o"}`),
		signed(tb, k, ErrorNode, `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid","sub_msg":"授权码code无效"}`),
		signed(tb, k, ErrorNode, `{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}`),
		signed(tb, k, ErrorNode, `{"code":40005,"msg":"Call Limited","sub_code":"isv.app-call-limited"}`),
		`{"alipay_system_oauth_token_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}`,
		`{"error_response":{"code":"40002","sub_code":"isv.code-invalid"}}`,
		`{"alipay_system_oauth_token_response":{"open_id":"o"},"sign":"AAAA"}`,
		`{"alipay_system_oauth_token_response":{"open_id":"o"},"alipay_cert_sn":"x","sign":null}`,
		`<html><body>502 Bad Gateway</body></html>`,
		``,
		`[{}]`,
		`null`,
		`{"alipay_system_oauth_token_response":{"open_id":"o`,
	}
}

func FuzzExtractNode(f *testing.F) {
	k := katKey(f)
	for _, s := range decodeSeeds(f, k) {
		f.Add([]byte(s))
	}
	f.Add([]byte(realBody))
	f.Add([]byte(`{"a":{"b":"}\"{"},"alipay_system_oauth_token_response":{"x":[1,{"y":"]"}]},"sign":"s"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sn, err := ExtractNode(body, ResponseNode, ErrorNode)
		if err != nil {
			return
		}
		// Property: the raw content is exactly what encoding/json sees as
		// the value of that key, a substring of the body, and an object.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("extracted from a body encoding/json rejects: %v", err)
		}
		if string(m[sn.Name]) != string(sn.Content) {
			t.Fatalf("content %q, encoding/json says %q", sn.Content, m[sn.Name])
		}
		if !strings.Contains(string(body), string(sn.Content)) || sn.Content[0] != '{' {
			t.Fatalf("content %q is not an object in the body", sn.Content)
		}
		if sn.Name == ErrorNode {
			if _, ok := m[ResponseNode]; ok {
				t.Fatal("fell back to error_response with the method node present")
			}
		}
		if sn.HasSign != (sn.Sign != "") {
			t.Fatal("HasSign disagrees with Sign")
		}
	})
}

func FuzzDecode(f *testing.F) {
	k := katKey(f)
	for _, s := range decodeSeeds(f, k) {
		f.Add(200, []byte(s))
	}
	f.Add(500, []byte(`{"error_response":{"code":"20000"}}`))
	kinds := []error{provider.ErrCodeInvalid, provider.ErrRateLimited, provider.ErrUserBlocked, provider.ErrUnavailable, provider.ErrMisconfigured}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, err := Decode(status, body, &k.PublicKey)
		if (tok == nil) == (err == nil) {
			t.Fatalf("Decode = (%v, %v): want exactly one of them", tok, err)
		}
		if err == nil {
			if status != 200 {
				t.Fatalf("success with HTTP %d", status)
			}
			if tok.OpenID == "" && tok.UserID == "" {
				t.Fatal("success without ids")
			}
			// A success is always signed: fuzzing cannot forge one
			// except by reusing a seed's signed node.
			sn, err := ExtractNode(body, ResponseNode, ErrorNode)
			if err != nil || !verifyNode(&k.PublicKey, sn.Content, sn.Sign) {
				t.Fatal("success without a valid signature")
			}
			return
		}
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("err is %T, want *provider.Error", err)
		}
		known := false
		for _, kind := range kinds {
			known = known || pe.Kind == kind
		}
		if !known || pe.Platform != provider.Alipay {
			t.Fatalf("unexpected error %v", err)
		}
		if utf8.RuneCountInString(pe.Message) > maxMessage+3 || utf8.RuneCountInString(pe.Code) > 2*maxCodeField+7 {
			t.Fatalf("unbounded error text %q / %q", pe.Code, pe.Message)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	k := katKey(b)
	seeds := decodeSeeds(b, k)
	for _, bb := range []struct {
		name string
		body string
	}{{"success", seeds[0]}, {"error", seeds[3]}} {
		body := []byte(bb.body)
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, _ = Decode(200, body, &k.PublicKey)
			}
		})
	}
}

func BenchmarkExtractNode(b *testing.B) {
	body := []byte(decodeSeeds(b, katKey(b))[0])
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, _ = ExtractNode(body, ResponseNode, ErrorNode)
	}
}

// TestRetryableOnlyWhenAlipayDidNotAct: only 20000 (service unavailable,
// but not a gateway timeout) and a 5xx but 504 may be retried with the same
// auth code; rate limits carry a back-off.
func TestRetryableOnlyWhenAlipayDidNotAct(t *testing.T) {
	alipayKey, _ := testKeys(t)
	errNode := func(content string) string { return signed(t, alipayKey, "error_response", content) }
	tests := []struct {
		name           string
		status         int
		body           string
		wantKind       error
		wantRetryable  bool
		wantRetryAfter time.Duration
	}{
		{name: "20000 isp.unknow-error", status: 200, body: errNode(`{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}`), wantKind: provider.ErrUnavailable, wantRetryable: true},
		{name: "20000 gateway timeout may have acted", status: 200, body: errNode(`{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.gateway-response-timeout"}`), wantKind: provider.ErrUnavailable},
		{name: "HTTP 502", status: 502, body: "<html>502</html>", wantKind: provider.ErrUnavailable, wantRetryable: true},
		{name: "HTTP 504 may have acted", status: 504, body: "<html>504</html>", wantKind: provider.ErrUnavailable},
		{name: "invalid code", status: 200, body: errNode(`{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid"}`), wantKind: provider.ErrCodeInvalid},
		{name: "unsigned 20000 is not trusted", status: 200, body: `{"error_response":{"code":"20000","sub_code":"isp.unknow-error"}}`, wantKind: provider.ErrUnavailable},
		{name: "40005 call limited", status: 200, body: errNode(`{"code":"40005","msg":"Call Limited","sub_code":"isv.app-call-limited"}`), wantKind: provider.ErrRateLimited, wantRetryAfter: provider.DefaultRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.status, []byte(tt.body), &alipayKey.PublicKey)
			var pe *provider.Error
			if !errors.As(err, &pe) || !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want a *provider.Error of kind %v", err, tt.wantKind)
			}
			if pe.Retryable != tt.wantRetryable || pe.RetryAfter != tt.wantRetryAfter {
				t.Errorf("Retryable = %v, RetryAfter = %v; want %v, %v", pe.Retryable, pe.RetryAfter, tt.wantRetryable, tt.wantRetryAfter)
			}
		})
	}
}
