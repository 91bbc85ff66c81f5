package baidu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// DefaultTokenLifetime is assumed when a token answer has no usable
// expires_in. Real tokens live a month (2592000 s); a short guess only costs
// an early refresh, and a token that dies sooner is caught by getunionid's
// token errors anyway.
const DefaultTokenLifetime = time.Hour

// maxTokenLifetime caps expires_in (a year) so that absurd values cannot
// overflow a time.Duration or pin a token forever.
const maxTokenLifetime = 366 * 24 * time.Hour

// QPSRetryAfter is the back-off reported with the OpenAPI gateway's
// per-second quota (error_code 18).
const QPSRetryAfter = time.Second

const (
	// maxMessage bounds the platform's message we keep for the log.
	maxMessage = 200
	// maxCodeField bounds a non-numeric code we keep for the log.
	maxCodeField = 32
	// maxID bounds an openid or unionid; real ones are 23-28 characters.
	maxID = 128
	// maxToken bounds an access token; real ones are about 70 characters.
	maxToken = 512
)

// Session is a successful jscode2sessionkey answer.
type Session struct {
	OpenID string
	// SessionKey is 32 base64 characters of a 24-byte AES-192 key, or empty
	// when Baidu sent none or one we could not use (see DecodeSession).
	SessionKey string
}

// answer is the union of every body the three endpoints send:
//
//	jscode2sessionkey  {"openid","session_key"} or {"errno","error","error_description"}
//	legacy / OAuth     {"error","error_description"} (token endpoint, old login endpoint)
//	OpenAPI gateway    {"error_code","error_msg"} (quota, access token, permission)
//	getunionid         {"errno","errmsg","data":{"unionid"},"request_id","timestamp"}
//	token              {"access_token","expires_in","refresh_token","scope",...}
type answer struct {
	Errno            number          `json:"errno"`
	ErrorCode        number          `json:"error_code"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription json.RawMessage `json:"error_description"`
	ErrorMsg         json.RawMessage `json:"error_msg"`
	ErrMsg           json.RawMessage `json:"errmsg"`

	// Success fields are raw so that a field of an unexpected type fails
	// only the endpoint that needs it.
	OpenID      json.RawMessage `json:"openid"`
	SessionKey  json.RawMessage `json:"session_key"`
	AccessToken json.RawMessage `json:"access_token"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	Data        json.RawMessage `json:"data"`
}

// endpoint selects how a failure is classified.
type endpoint int

const (
	epSession endpoint = iota
	epToken
	epUnion
)

// DecodeSession turns a jscode2sessionkey answer (HTTP status and body) into
// a Session, or a *provider.Error:
//
//   - Success is an object with openid and no errno (errno 0 is accepted);
//     it must come with HTTP 200. The Content-Type is ignored.
//   - A non-zero errno, an OpenAPI error_code or an OAuth "error" is a
//     failure whatever the HTTP status (OAuth errors come with 400); see
//     classify for the mapping. With a 5xx status it is ErrUnavailable.
//   - Anything else (other statuses, empty, HTML, truncated or non-object
//     JSON, success without openid): ErrUnavailable.
//
// Error texts never quote the body: a truncated success holds the
// session_key.
func DecodeSession(status int, body []byte) (*Session, error) {
	a, err := parse(status, body)
	if err != nil {
		return nil, err
	}
	if a.failed() {
		return nil, failure(epSession, status, a)
	}
	if status != http.StatusOK {
		return nil, provider.BadStatus(platform, status)
	}
	openID := str(a.OpenID)
	if !validID(openID) {
		return nil, provider.Unavailable(platform, "success answer without a usable openid")
	}
	s := &Session{OpenID: openID}
	// The key is only ever used to decrypt user data. One we cannot use is
	// dropped and the login still accepted: the openid identifies the user,
	// and an empty SessionKey means "log in again to get one".
	if key := str(a.SessionKey); validSessionKey(key) {
		s.SessionKey = key
	}
	return s, nil
}

// DecodeToken turns an oauth/2.0/token answer into an access token, or a
// *provider.Error. Errors are OAuth style ({"error":"invalid_client",...},
// usually with HTTP 400) or the OpenAPI gateway's ({"error_code":18,...}).
// A success needs HTTP 200 and access_token; expires_in (seconds, number or
// numeric string) falls back to DefaultTokenLifetime when absent or not
// positive. refresh_token and the deprecated session_key/session_secret are
// ignored.
func DecodeToken(status int, body []byte) (provider.AccessToken, error) {
	a, err := parse(status, body)
	if err != nil {
		return provider.AccessToken{}, err
	}
	if a.failed() {
		return provider.AccessToken{}, failure(epToken, status, a)
	}
	if status != http.StatusOK {
		return provider.AccessToken{}, provider.BadStatus(platform, status)
	}
	token := str(a.AccessToken)
	if !validToken(token) {
		return provider.AccessToken{}, provider.Unavailable(platform, "token answer without a usable access_token")
	}
	ttl := DefaultTokenLifetime
	var exp number
	if len(a.ExpiresIn) > 0 && exp.UnmarshalJSON(a.ExpiresIn) == nil && exp.Numeric && exp.N > 0 {
		ttl = maxTokenLifetime
		if exp.N < int64(maxTokenLifetime/time.Second) {
			ttl = time.Duration(exp.N) * time.Second
		}
	}
	return provider.AccessToken{Token: token, ExpiresIn: ttl}, nil
}

// DecodeUnionID turns a getunionid answer into the unionid, or a
// *provider.Error. Success is errno 0 (or absent) with data.unionid. A
// rejected access token (OpenAPI error_code 110 invalid, 111 expired) is
// ErrAccessTokenInvalid: invalidate the token and retry once.
func DecodeUnionID(status int, body []byte) (string, error) {
	a, err := parse(status, body)
	if err != nil {
		return "", err
	}
	if a.failed() {
		return "", failure(epUnion, status, a)
	}
	if status != http.StatusOK {
		return "", provider.BadStatus(platform, status)
	}
	var d struct {
		UnionID string `json:"unionid"`
	}
	if t := bytes.TrimSpace(a.Data); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &d) != nil {
		return "", provider.Unavailable(platform, "getunionid answer without a data object")
	}
	if !validID(d.UnionID) {
		return "", provider.Unavailable(platform, "getunionid answer without a usable unionid")
	}
	return d.UnionID, nil
}

// parse reads a body that must be a JSON object.
func parse(status int, body []byte) (*answer, error) {
	trimmed := bytes.TrimSpace(body)
	bad := func(what string) error {
		if status != http.StatusOK {
			return provider.BadStatus(platform, status)
		}
		return provider.Unavailable(platform, "%s (%d bytes)", what, len(body))
	}
	// json.Unmarshal accepts "null" into a struct; only an object is an
	// answer.
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, bad("answer is not a JSON object")
	}
	var a answer
	if err := json.Unmarshal(trimmed, &a); err != nil {
		return nil, bad("undecodable answer")
	}
	return &a, nil
}

// failed reports whether the answer carries any of Baidu's error markers.
func (a *answer) failed() bool {
	return a.Errno.Failed() || a.ErrorCode.Failed() || text(a.Error) != ""
}

// failure builds the error of a failed answer.
func failure(ep endpoint, status int, a *answer) *provider.Error {
	name := text(a.Error)
	var parts []string
	for _, s := range []string{name, text(a.ErrorDescription), text(a.ErrorMsg), text(a.ErrMsg)} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	desc := strings.Join(parts, ": ")
	kind, retry := classify(ep, a, name, desc)
	// errno 100105xx is Baidu's documented transient "server internal
	// error": not acted on.
	retryable := kind == provider.ErrUnavailable && a.Errno.Numeric && a.Errno.N >= 10010500 && a.Errno.N <= 10010599
	if kind == provider.ErrRateLimited && retry == 0 {
		retry = provider.DefaultRetryAfter // no hint from Baidu
	}
	if status >= 500 {
		// A server error page with a JSON body is still a server error.
		kind, retry = provider.ErrUnavailable, 0
		retryable = provider.BadStatus(platform, status).Retryable
	}
	code := name
	switch {
	case a.Errno.Failed():
		code = a.Errno.Text
	case a.ErrorCode.Failed():
		code = a.ErrorCode.Text
	}
	return &provider.Error{
		Kind:       kind,
		Platform:   platform,
		Code:       provider.Clean(code, maxCodeField),
		Message:    provider.Clean(desc, maxMessage),
		RetryAfter: retry,
		Retryable:  retryable,
	}
}

// classify maps a failure to its kind. Baidu documents little (platforms.md
// §5.2-5.4), so the mapping goes, in order:
//
//  1. The OpenAPI gateway's error_code (Baidu-wide table): 4/17/18/19 quota
//     → ErrRateLimited; 110 invalid / 111 expired access token →
//     ErrAccessTokenInvalid on getunionid; 3 unsupported method, 5 client
//     IP not allowed, 6 no permission, 100 invalid parameter →
//     ErrMisconfigured; 1 unknown, 2 temporarily unavailable and anything
//     else → ErrUnavailable.
//  2. errno 10010500 "server internal error" (documented transient) and its
//     100105xx family → ErrUnavailable. On getunionid: errno 400 (parameter
//     error; the openid is Baidu's own, so Baidu is at fault) →
//     ErrUnavailable; errno 110/111 → ErrAccessTokenInvalid (UNCONFIRMED:
//     in case the smartapp API reports token errors in errno).
//  3. The OAuth error name and the description (see byText), which is how
//     invalid or used codes and bad credentials are told apart, since the
//     jscode2sessionkey errno table is UNCONFIRMED.
//  4. Anything else → ErrUnavailable (not provably the user's or our
//     configuration's fault; the code is kept for the operator).
func classify(ep endpoint, a *answer, name, desc string) (error, time.Duration) {
	if c := a.ErrorCode; c.Failed() {
		if !c.Numeric {
			return provider.ErrUnavailable, 0
		}
		switch c.N {
		case 4, 17, 19: // request / daily / total quota reached
			return provider.ErrRateLimited, 0
		case 18: // QPS quota reached
			return provider.ErrRateLimited, QPSRetryAfter
		case 110, 111: // access token invalid / expired
			if ep == epUnion {
				return provider.ErrAccessTokenInvalid, 0
			}
			return provider.ErrUnavailable, 0
		case 3, 5, 6, 100:
			return provider.ErrMisconfigured, 0
		default:
			return provider.ErrUnavailable, 0
		}
	}
	if c := a.Errno; c.Numeric {
		switch n := c.N; {
		case n >= 10010500 && n <= 10010599:
			return provider.ErrUnavailable, 0
		case ep == epUnion && (n == 110 || n == 111):
			return provider.ErrAccessTokenInvalid, 0
		case ep == epUnion && n == 400:
			return provider.ErrUnavailable, 0
		}
	}
	if k := byText(ep, a.Errno, name, desc); k != nil {
		return k, 0
	}
	return provider.ErrUnavailable, 0
}

// byText classifies by the OAuth error name (Baidu OAuth's documented
// vocabulary) and, failing that, by the words of the description. It
// returns nil when nothing matches.
//
// UNCONFIRMED: how jscode2sessionkey reports an expired, invalid or reused
// code. Baidu's OAuth server answers invalid_grant ("Invalid authorization
// code: ..."); the new endpoint's Go validator names the failed field
// ("Key: 'Code2SessionKeyParam.Code' Error:..."). Every message that talks
// about the code is taken as ErrCodeInvalid (ErrCodeUsed when it says the
// code was used): either way the client gets a new code.
func byText(ep endpoint, errno number, name, desc string) error {
	words := wordsOf(desc)
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope", "unsupported_response_type", "redirect_uri_mismatch":
		return provider.ErrMisconfigured
	case "temporarily_unavailable", "server_error", "server internal error":
		return provider.ErrUnavailable
	case "access_denied":
		if ep == epSession {
			return provider.ErrUserBlocked // UNCONFIRMED: risk control
		}
		return provider.ErrMisconfigured // the app lacks the permission
	case "invalid_token", "expired_token":
		if ep == epUnion {
			return provider.ErrAccessTokenInvalid
		}
	case "invalid_grant":
		if ep == epSession {
			return codeKind(words, desc)
		}
		return provider.ErrMisconfigured
	case "invalid_request", "parameter is invalid":
		return paramKind(ep, words, desc)
	}
	if errno.Numeric && errno.N == 10010100 { // documented parameter error
		return paramKind(ep, words, desc)
	}
	if ep == epSession {
		switch {
		case words["code"] && !mentionsClient(words):
			return codeKind(words, desc)
		case mentionsClient(words):
			return provider.ErrMisconfigured
		}
	}
	return nil
}

// paramKind classifies a parameter error: on jscode2sessionkey a bad code
// is the client's, any other field is ours.
func paramKind(ep endpoint, words map[string]bool, desc string) error {
	switch ep {
	case epSession:
		if words["code"] && !mentionsClient(words) {
			return codeKind(words, desc)
		}
		return provider.ErrMisconfigured
	case epToken:
		return provider.ErrMisconfigured
	default:
		// getunionid's parameters are Baidu's openid and token.
		return provider.ErrUnavailable
	}
}

func codeKind(words map[string]bool, desc string) error {
	if words["used"] || strings.Contains(desc, "已使用") || strings.Contains(desc, "已被使用") {
		return provider.ErrCodeUsed
	}
	return provider.ErrCodeInvalid
}

func mentionsClient(words map[string]bool) bool {
	return words["client_id"] || words["clientid"] || words["client"] || words["sk"] || words["secret"] || words["client_secret"] || words["appkey"]
}

// wordsOf splits s into lower-case words of ASCII letters, digits and '_'
// (so "code已被使用" holds the word "code").
func wordsOf(s string) map[string]bool {
	out := make(map[string]bool)
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		out[w] = true
	}
	return out
}

// number is a numeric field as Baidu sends it: a JSON number or a numeric
// string. Absent, null, "" and 0 are no error (see provider.FlexCode.Failed).
type number = provider.FlexCode

// text returns a message field (normally a string; otherwise its JSON text)
// trimmed, or "" when absent or null.
func text(raw json.RawMessage) string {
	return strings.TrimSpace(provider.JSONText(raw))
}

// str returns a JSON string field, or "" when it is absent or not a string.
func str(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// validID accepts an openid or unionid: real ones are 23-28 base62-like
// characters.
func validID(s string) bool { return printable(s, maxID) }

// validToken accepts an access token, e.g.
// "24.a6b7dbd428f731035f771b8d15063f61.2592000.1292922000-2346678-124328".
func validToken(s string) bool { return printable(s, maxToken) }

// printable reports whether s is 1..max printable ASCII characters without
// spaces.
func printable(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validSessionKey reports whether k is base64 of a 24-byte AES-192 key
// (32 characters; real ones happen to look like hex).
func validSessionKey(k string) bool {
	return provider.IsBase64Key(k, sessionKeyLen)
}
