// Package alipay exchanges an Alipay mini-program auth code (my.getAuthCode)
// for the user's identity with alipay.system.oauth.token on the OpenAPI v1
// gateway:
//
//	POST https://openapi.alipay.com/gateway.do   (form: app_id, method, format,
//	     charset, sign_type, timestamp, version, grant_type, code, sign)
//
// Requests are signed with the app private key (RSA2) and every answer's
// signature is checked against the Alipay public key before anything in it
// is believed. The wire format is described in section 2 of platforms.md;
// Decode implements it and is kept free of I/O so it can be fuzzed and
// benchmarked.
//
// Only public-key mode is supported. Certificate mode (app_cert_sn,
// alipay_root_cert_sn in requests, alipay_cert_sn in answers, §2.8) is not:
// configure the app with the Alipay public key (支付宝公钥), not certificates.
package alipay

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mpauth/mpauth/internal/provider"
)

// DefaultGatewayURL is Alipay's OpenAPI host; App.Endpoint replaces it in
// tests and against the sandbox. (Alipay's own developer sandbox is
// https://openapi-sandbox.dl.alipaydev.com.)
const DefaultGatewayURL = "https://openapi.alipay.com"

// GatewayPath is the OpenAPI v1 gateway path.
const GatewayPath = "/gateway.do"

// Method is the code exchange API and ResponseNode the key of its answer.
const (
	Method       = "alipay.system.oauth.token"
	ResponseNode = "alipay_system_oauth_token_response"
	// ErrorNode is where the gateway puts errors it raises itself.
	ErrorNode = "error_response"
)

// Identity fields (App.IdentityField).
const (
	IdentityOpenID = "open_id" // default: apps created after the openid migration
	IdentityUserID = "user_id" // legacy 2088... user ids
)

// TimestampLayout is the gateway's timestamp format, in Beijing time.
const TimestampLayout = "2006-01-02 15:04:05"

// beijing is UTC+8, fixed: no dependency on the tzdata of the host.
var beijing = time.FixedZone("CST", 8*3600)

// MsgBadSignature is the Message of an answer whose signature is missing or
// does not verify against the Alipay public key.
const MsgBadSignature = "response signature invalid (possible attack)"

const (
	platform = provider.Alipay
	// maxMessage bounds the platform's msg/sub_msg we keep for the log.
	maxMessage = 200
	// maxCodeField bounds the platform's code/sub_code we keep.
	maxCodeField = 64
	// maxAuthCode bounds the auth code we forward; real ones are 32 chars.
	maxAuthCode = 1024
	// maxID bounds the user ids we accept.
	maxID = 256
)

// Token is a successful alipay.system.oauth.token answer. Ids absent from
// the answer are empty (openid-mode apps get no user_id, §2.6).
type Token struct {
	UserID  string
	OpenID  string
	UnionID string
	// AccessToken and RefreshToken are secrets (alipay.user.info.share).
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	ReExpiresIn  time.Duration
	AuthStart    string
}

type alipayProvider struct {
	app   provider.App
	field string
	key   *rsa.PrivateKey
	pub   *rsa.PublicKey
	aes   cipher.Block // nil without an AES key
	url   string
	// client and now are replaced by tests.
	client *http.Client
	now    func() time.Time
}

// The provider also decrypts my.getPhoneNumber data.
var _ provider.UserDataDecrypter = (*alipayProvider)(nil)

// New returns the provider of one Alipay mini-program. It checks the app's
// keys now, so a bad config fails at startup, naming the field.
func New(app provider.App, _ provider.Env) (provider.Provider, error) {
	if app.AppID == "" {
		return nil, errors.New("app_id: required (the Alipay mini-program AppID, e.g. 2021001234567890)")
	}
	if app.PrivateKeyPEM == "" {
		return nil, errors.New("private_key: required (the app private key 应用私钥 that signs requests: RSA PEM, PKCS#1 or PKCS#8, or its bare base64)")
	}
	key, err := ParsePrivateKey(app.PrivateKeyPEM)
	if err != nil {
		return nil, errors.New("private_key: " + err.Error())
	}
	if app.PlatformPublicKeyPEM == "" {
		return nil, errors.New("platform_public_key: required (the Alipay public key 支付宝公钥 that verifies answers: PUBLIC KEY PEM or its bare base64)")
	}
	pub, err := ParsePublicKey(app.PlatformPublicKeyPEM)
	if err != nil {
		return nil, errors.New("platform_public_key: " + err.Error())
	}
	if pub.Equal(&key.PublicKey) {
		return nil, errors.New("platform_public_key: is the app's own public key (应用公钥); use the Alipay public key (支付宝公钥) shown next to it in the console")
	}
	field := app.IdentityField
	switch field {
	case "":
		field = IdentityOpenID
	case IdentityOpenID, IdentityUserID:
	default:
		return nil, errors.New(`identity_field: must be "open_id" (default) or "user_id" for Alipay, got ` + strconv.Quote(provider.Clean(field, 40)))
	}
	var block cipher.Block
	if app.AESKey != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(app.AESKey))
		if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
			return nil, errors.New("aes_key: must be the base64 of a 16, 24 or 32-byte AES key (the app's 接口内容加密 key)")
		}
		block, _ = aes.NewCipher(k)
	}
	if err := provider.ValidateEndpoint(app.Endpoint); err != nil {
		return nil, errors.New("endpoint: " + err.Error())
	}
	a := app
	a.Endpoint = strings.TrimSuffix(a.Endpoint, "/")
	u := a.URL(DefaultGatewayURL, GatewayPath)
	if _, err := url.Parse(u); err != nil {
		return nil, errors.New("endpoint: invalid URL")
	}
	return &alipayProvider{
		app:    app,
		field:  field,
		key:    key,
		pub:    pub,
		aes:    block,
		url:    u,
		client: provider.NewHTTPClient(app.Timeout),
		now:    time.Now,
	}, nil
}

// params returns the signed form of an exchange (§2.2, §2.3).
func (a *alipayProvider) params(code string) (url.Values, error) {
	p := url.Values{
		"app_id":     {a.app.AppID},
		"method":     {Method},
		"format":     {"JSON"},
		"charset":    {"utf-8"},
		"sign_type":  {"RSA2"},
		"timestamp":  {a.now().In(beijing).Format(TimestampLayout)},
		"version":    {"1.0"},
		"grant_type": {"authorization_code"},
		"code":       {code},
	}
	sig, err := Sign(p, a.key)
	if err != nil {
		return nil, err
	}
	p.Set("sign", sig)
	return p, nil
}

// Exchange calls alipay.system.oauth.token with the auth code and returns
// who it belongs to: OpenID is the app's identity field (open_id or
// user_id), UnionID the app group's union_id when Alipay sends one. Alipay
// has no session_key. Errors are *provider.Error; test their kind with
// errors.Is.
func (a *alipayProvider) Exchange(ctx context.Context, c provider.Credentials) (*provider.Identity, error) {
	code := c.Code
	if code == "" || len(code) > maxAuthCode {
		return nil, &provider.Error{Kind: provider.ErrCodeInvalid, Platform: platform, Message: "empty or oversized auth code"}
	}
	form, err := a.params(code)
	if err != nil {
		return nil, &provider.Error{Kind: provider.ErrMisconfigured, Platform: platform, Message: "signing the request with private_key failed"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, provider.Unavailable(platform, "building the request failed")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	req.Header.Set("Accept", "application/json")
	status, body, err := provider.Do(ctx, a.client, platform, req)
	if err != nil {
		return nil, err
	}
	// The gateway echoes its string-to-sign, code included, in
	// isv.invalid-signature messages: redact the code.
	t, err := decode(status, body, a.pub, code)
	if err != nil {
		return nil, err
	}
	id := t.OpenID
	if a.field == IdentityUserID {
		id = t.UserID
	}
	if id == "" {
		msg := "answer has no open_id: the app seems to be a legacy user_id app; set identity_field: user_id"
		if a.field == IdentityUserID {
			msg = "answer has no user_id: apps migrated to openid no longer get one; set identity_field: open_id"
		}
		return nil, provider.Unavailable(platform, "%s", msg)
	}
	return &provider.Identity{
		Platform: platform,
		AppID:    a.app.AppID,
		OpenID:   id,
		UnionID:  t.UnionID,
	}, nil
}

// node is the union of the token node and an error node.
type node struct {
	Code         flexString `json:"code"`
	Msg          flexString `json:"msg"`
	SubCode      flexString `json:"sub_code"`
	SubMsg       flexString `json:"sub_msg"`
	UserID       flexString `json:"user_id"`
	OpenID       flexString `json:"open_id"`
	UnionID      flexString `json:"union_id"`
	AccessToken  flexString `json:"access_token"`
	RefreshToken flexString `json:"refresh_token"`
	ExpiresIn    seconds    `json:"expires_in"`
	ReExpiresIn  seconds    `json:"re_expires_in"`
	AuthStart    flexString `json:"auth_start"`
}

// Decode turns an alipay.system.oauth.token answer (HTTP status and body)
// into a Token, checking its signature with the Alipay public key, or
// returns a *provider.Error:
//
//   - any status but 200, a body that is not one valid JSON object, or one
//     with neither alipay_system_oauth_token_response nor error_response:
//     ErrUnavailable (the gateway answers 200 with JSON, errors included).
//   - the signature covers the raw bytes of that node (§2.7; the method
//     node is preferred when both are present). Missing or wrong:
//     ErrUnavailable with MsgBadSignature. The one exception is an unsigned
//     isv.invalid-app-id (or missing-signature-config) error: the gateway
//     cannot sign for an app it has no key of, so it answers those unsigned;
//     they are ErrMisconfigured, with "(unsigned)" in the message.
//   - a code other than "10000" (string or number) is an error, mapped by
//     sub_code then code (see kindOf); error_response always is one.
//   - expires_in and re_expires_in may be numbers or strings.
//
// Error texts never quote the body (a success holds the access token).
func Decode(status int, body []byte, alipayPublicKey *rsa.PublicKey) (*Token, error) {
	return decode(status, body, alipayPublicKey)
}

func decode(status int, body []byte, pub *rsa.PublicKey, secrets ...string) (*Token, error) {
	if status != http.StatusOK {
		return nil, provider.BadStatus(platform, status)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, provider.Unavailable(platform, "empty answer")
	}
	sn, err := ExtractNode(trimmed, ResponseNode, ErrorNode)
	switch {
	case errors.Is(err, errNoNode):
		return nil, provider.Unavailable(platform, "answer has neither %s nor %s (%d bytes)", ResponseNode, ErrorNode, len(body))
	case err != nil:
		return nil, provider.Unavailable(platform, "undecodable answer: %v (%d bytes)", err, len(body))
	}
	if !sn.HasSign {
		return nil, unsigned(sn, secrets)
	}
	if !verifyNode(pub, sn.Content, sn.Sign) {
		return nil, badSignature()
	}
	// From here on the node is Alipay's: decode exactly the bytes verified.
	var n node
	if err := json.Unmarshal(sn.Content, &n); err != nil {
		return nil, provider.Unavailable(platform, "undecodable %s (%d bytes)", sn.Name, len(sn.Content))
	}
	if sn.Name == ErrorNode || (n.Code.s != "" && n.Code.s != "10000") {
		return nil, apiError(n, secrets)
	}
	t := &Token{
		UserID:       n.UserID.s,
		OpenID:       n.OpenID.s,
		UnionID:      n.UnionID.s,
		AccessToken:  n.AccessToken.s,
		RefreshToken: n.RefreshToken.s,
		ExpiresIn:    n.ExpiresIn.d,
		ReExpiresIn:  n.ReExpiresIn.d,
		AuthStart:    n.AuthStart.s,
	}
	if t.UserID == "" && t.OpenID == "" {
		return nil, provider.Unavailable(platform, "success answer without user_id or open_id")
	}
	for _, id := range []string{t.UserID, t.OpenID, t.UnionID} {
		if !validID(id) {
			return nil, provider.Unavailable(platform, "success answer with a malformed user id")
		}
	}
	return t, nil
}

// unsigned classifies an answer without a signature.
func unsigned(sn SignedNode, secrets []string) error {
	var n node
	if json.Unmarshal(sn.Content, &n) == nil && (sn.Name == ErrorNode || (n.Code.s != "" && n.Code.s != "10000")) {
		if sub := normSub(n.SubCode.s); sub == "invalid-app-id" || sub == "missing-signature-config" {
			e := apiError(n, secrets)
			e.Kind = provider.ErrMisconfigured
			e.Message = provider.Clean("(unsigned) "+e.Message, maxMessage)
			return e
		}
	}
	return badSignature()
}

// badSignature is the error of an answer that does not verify. It is Local,
// so it does not count towards opening Alipay's breaker: the usual cause is
// one app's alipay_public_key, which must not stop every other Alipay app's
// logins, and a forged answer says nothing about Alipay's health either.
func badSignature() *provider.Error {
	e := provider.Unavailable(platform, "%s", MsgBadSignature)
	e.Local = true
	return e
}

// apiError builds the error of a (verified) error node.
func apiError(n node, secrets []string) *provider.Error {
	code := provider.Clean(provider.Redact(n.Code.s, secrets...), maxCodeField)
	if sub := provider.Clean(provider.Redact(n.SubCode.s, secrets...), maxCodeField); sub != "" {
		code += "/" + sub
	}
	msg := n.Msg.s
	if n.SubMsg.s != "" {
		if msg != "" {
			msg += ": "
		}
		msg += n.SubMsg.s
	}
	e := &provider.Error{
		Kind:     kindOf(n.Code.s, n.SubCode.s),
		Platform: platform,
		Code:     code,
		Message:  provider.Clean(provider.Redact(msg, secrets...), maxMessage),
		// 20000 "service unavailable" (isp.unknow-error, ...) was not acted
		// on, except a gateway timeout: the business system may have.
		Retryable: strings.TrimSpace(n.Code.s) == "20000" && normSub(n.SubCode.s) != "gateway-response-timeout" &&
			errors.Is(kindOf(n.Code.s, n.SubCode.s), provider.ErrUnavailable),
	}
	if errors.Is(e.Kind, provider.ErrRateLimited) {
		// Alipay gives no back-off hint.
		e.RetryAfter = provider.DefaultRetryAfter
	}
	return e
}

// normSub lowercases a sub_code and drops its isv./isp./aop. family.
func normSub(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, p := range []string{"isv.", "isp.", "aop."} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// kindOf maps an error's code and sub_code (§2.5) to the kind of failure.
// The sub_code is more precise and is looked at first.
func kindOf(code, subCode string) error {
	switch sub := normSub(subCode); sub {
	// isv.code-invalid is the documented one (wrong app, used, or expired);
	// the others are UNCONFIRMED variants accepted in case the gateway
	// ever tells those cases apart.
	case "code-invalid", "code-expired", "code-used", "auth-code-invalid", "auth-code-expired", "invalid-code", "invalid-auth-code":
		return provider.ErrCodeInvalid
	// Call limits (gateway code 40005): from copies of Alipay's common error
	// list, not from platforms.md.
	case "app-call-limited", "method-call-limited":
		return provider.ErrRateLimited
	case "unknow-error", "unknown-error", "gateway-response-timeout", "system-error":
		return provider.ErrUnavailable
	case "invalid-signature", "missing-signature", "invalid-signature-type", "missing-signature-type",
		"missing-signature-config", "missing-signature-key", "invalid-app-id", "missing-app-id",
		"insufficient-isv-permissions", "insufficient-user-permissions", "ip-forbidden",
		"invalid-method", "missing-method", "invalid-timestamp", "missing-timestamp",
		"invalid-charset", "invalid-format", "missing-version", "invalid-parameter",
		"grant-type-invalid", "refresh-token-invalid", "refresh-token-time-out",
		"invalid-app-auth-token", "app-auth-token-time-out", "invalid-auth-token",
		"auth-token-time-out", "not-support-app-auth", "forbidden-api", "invalid-auth-relations",
		"app-cert-expired", "suspected-attack":
		return provider.ErrMisconfigured
	default:
		// UNCONFIRMED: no documented sub_code says "this user is refused".
		// Risk-control refusals of a user (business failures) are
		// recognised by their wording.
		if strings.TrimSpace(code) == "40004" {
			for _, w := range []string{"risk", "frozen", "forbid", "block", "user-status"} {
				if strings.Contains(sub, w) {
					return provider.ErrUserBlocked
				}
			}
		}
	}
	switch strings.TrimSpace(code) {
	case "40005":
		return provider.ErrRateLimited
	case "20001", "40001", "40002", "40003", "40006":
		// Missing/invalid arguments or permissions: what we send is fixed,
		// so it is the app's setup (keys, app_id, products) that is wrong.
		return provider.ErrMisconfigured
	default:
		// 20000 (retry later), 40004 business failures and codes we don't
		// know: not the user's fault and not provably ours.
		return provider.ErrUnavailable
	}
}

// validID accepts ids of bounded length without control characters.
func validID(s string) bool {
	if len(s) > maxID {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// flexString is a string field that the gateway might send as a number
// ("code": 10000): the number's text is kept. null and absent are "".
type flexString struct{ s string }

func (f *flexString) UnmarshalJSON(b []byte) error {
	f.s = ""
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil
	case b[0] == '"':
		return json.Unmarshal(b, &f.s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		f.s = string(b)
		return nil
	case string(b) == "true" || string(b) == "false":
		f.s = string(b)
		return nil
	default:
		return errors.New("not a string")
	}
}

// seconds is expires_in: documented as a string ("3600"), sent as a number
// (31536000). Anything unusable is 0: the login does not depend on it.
type seconds struct{ d time.Duration }

func (s *seconds) UnmarshalJSON(b []byte) error {
	s.d = 0
	str := string(b)
	if len(b) > 0 && b[0] == '"' {
		if json.Unmarshal(b, &str) != nil {
			return nil
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(str), 64)
	if err != nil || f < 0 || f > math.MaxInt64/float64(time.Second) || f != math.Trunc(f) {
		return nil
	}
	s.d = time.Duration(f) * time.Second
	return nil
}
